/* tcp_win.c - streams on Winsock with overlapped I/O, for the IOCP backend.
 *
 * The stream's side of iocp.h: the receive that waits for data (0 bytes,
 * or into the read buffer), filling the read buffer with non-blocking
 * recv(), overlapped WSASend straight from the write queue's chunks,
 * AcceptEx posted ahead on a listener, and what a completion means for each.
 */
#include "iocp.h"

#include <ws2tcpip.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Overlapped operations ignore the blocking mode; FIONBIO is for the plain
 * recv() that fills the buffer, which must say WSAEWOULDBLOCK when the
 * socket is empty instead of blocking the loop. */
static int make_nonblocking(SOCKET s)
{
    u_long on = 1;
    if (ioctlsocket(s, FIONBIO, &on) != 0)
        return evq_socket_last_error();
    return 0;
}

static SOCKET overlapped_socket(int family)
{
    return WSASocketW(family, SOCK_STREAM, IPPROTO_TCP, NULL, 0,
                      WSA_FLAG_OVERLAPPED | WSA_FLAG_NO_HANDLE_INHERIT);
}

static int connect_one(const struct addrinfo *ai, SOCKET *out)
{
    /* WSA_FLAG_OVERLAPPED: every WSARecv and WSASend after the connect is
     * overlapped. */
    SOCKET s = overlapped_socket(ai->ai_family);
    if (s == INVALID_SOCKET)
        return evq_socket_last_error();
    if (connect(s, ai->ai_addr, (int)ai->ai_addrlen) != 0) { /* blocks: chapter 4 */
        int rc = evq_socket_last_error();
        closesocket(s);
        return rc;
    }
    *out = s;
    return 0;
}

static int resolve(const char *host, uint16_t port, int flags, struct addrinfo **list)
{
    int rc = evq_net_init();
    if (rc != 0)
        return rc;
    char service[8];
    snprintf(service, sizeof service, "%u", (unsigned)port);
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_protocol = IPPROTO_TCP;
    hints.ai_flags = AI_NUMERICSERV | flags;
    int gai = getaddrinfo(host, service, &hints, list); /* blocks: chapter 4 */
    return gai != 0 ? evq_error_from_gai(gai) : 0;
}

/* A connected or accepted socket becomes a stream: non-blocking for recv(),
 * tied to the port for the overlapped operations. */
static int adopt(struct sys_poll *sys, SOCKET s, evq_tcp *tcp)
{
    tcp->socket = s;
    int rc = make_nonblocking(s);
    if (rc == 0)
        rc = iocp_attach(sys, tcp);
    if (rc != 0) {
        closesocket(s);
        tcp->socket = INVALID_SOCKET;
    }
    return rc;
}

int sys_tcp_connect(struct sys_poll *sys, const char *host, uint16_t port, evq_tcp *tcp)
{
    struct addrinfo *list = NULL;
    int rc = resolve(host, port, 0, &list);
    if (rc != 0)
        return rc;
    SOCKET s = INVALID_SOCKET;
    rc = EVQ_EAI_NONAME;
    for (const struct addrinfo *ai = list; ai; ai = ai->ai_next) {
        if ((rc = connect_one(ai, &s)) == 0)
            break;
    }
    freeaddrinfo(list);
    if (rc != 0)
        return rc;
    return adopt(sys, s, tcp);
}

/* ---- the listener: AcceptEx posted ahead ---- */

/* ANCHOR: accept_ex */
/* AcceptEx accepts into a socket made beforehand, of the listener's family.
 * The output buffer gets no data (receive length 0: complete as soon as a
 * connection arrives) and the two addresses, each with 16 spare bytes. */
static int post_accept(struct sys_stream *listener, struct iocp_accept *slot)
{
    slot->socket = overlapped_socket(listener->family);
    if (slot->socket == INVALID_SOCKET)
        return evq_socket_last_error();
    memset(&slot->op.overlapped, 0, sizeof slot->op.overlapped);
    slot->done = false;
    DWORD unused;
    if (!listener->accept_ex(listener->tcp->socket, slot->socket, slot->addresses, 0,
                             IOCP_ACCEPT_ADDRESS_SIZE, IOCP_ACCEPT_ADDRESS_SIZE, &unused,
                             &slot->op.overlapped)) {
        int error = WSAGetLastError();
        if (error != WSA_IO_PENDING) { /* not started: no completion will come */
            closesocket(slot->socket);
            slot->socket = INVALID_SOCKET;
            return evq_error_from_wsa(error);
        }
    }
    slot->op.lent = sizeof slot->addresses;
    iocp_started(listener->poll, &slot->op);
    return 0;
}
/* ANCHOR_END: accept_ex */

/* ANCHOR: accept_done */
static void accept_completed(struct sys_stream *listener, struct iocp_accept *slot, int status)
{
    /* The accepted socket knows nothing of its listener until told: without
     * SO_UPDATE_ACCEPT_CONTEXT, getsockname, shutdown and friends fail. */
    if (status == 0 && setsockopt(slot->socket, SOL_SOCKET, SO_UPDATE_ACCEPT_CONTEXT,
                                  (const char *)&listener->tcp->socket,
                                  sizeof listener->tcp->socket) != 0)
        status = evq_socket_last_error();
    if (status == 0) {
        slot->done = true;
        slot->order = listener->accepts_completed++;
        return;
    }
    /* A connection reset before we took it (ERROR_NETNAME_DELETED), or the
     * listener being cancelled: nobody to hand over. Post again unless the
     * listener is going away. */
    closesocket(slot->socket);
    slot->socket = INVALID_SOCKET;
    if (status != EVQ_ECANCELED && post_accept(listener, slot) != 0)
        listener->read_status = status;
}
/* ANCHOR_END: accept_done */

int sys_tcp_listen(struct sys_poll *sys, const char *host, uint16_t port, int backlog,
                   evq_tcp *tcp)
{
    struct addrinfo *list = NULL;
    int rc = resolve(host, port, AI_PASSIVE, &list);
    if (rc != 0)
        return rc;
    SOCKET s = overlapped_socket(list->ai_family);
    int family = list->ai_family;
    if (s == INVALID_SOCKET)
        rc = evq_socket_last_error();
    /* No SO_REUSEADDR: on Windows it lets another socket steal the port. */
    else if (bind(s, list->ai_addr, (int)list->ai_addrlen) != 0 || listen(s, backlog) != 0)
        rc = evq_socket_last_error();
    freeaddrinfo(list);
    if (rc == 0)
        rc = adopt(sys, s, tcp); /* closes s on failure */
    else if (s != INVALID_SOCKET)
        closesocket(s);
    if (rc != 0)
        return rc;

    struct sys_stream *listener = tcp->sys;
    listener->family = family;
    /* AcceptEx lives in the provider, not in ws2_32: ask the socket for it. */
    GUID guid = WSAID_ACCEPTEX;
    DWORD got = 0;
    listener->accepts = calloc(IOCP_ACCEPTS_POSTED, sizeof *listener->accepts);
    if (!listener->accepts)
        rc = EVQ_ENOMEM;
    else if (WSAIoctl(s, SIO_GET_EXTENSION_FUNCTION_POINTER, &guid, sizeof guid,
                      &listener->accept_ex, sizeof listener->accept_ex, &got, NULL, NULL) != 0)
        rc = evq_socket_last_error();
    for (int i = 0; rc == 0 && i < IOCP_ACCEPTS_POSTED; i++) {
        struct iocp_accept *slot = &listener->accepts[i];
        slot->op.kind = IOCP_ACCEPT;
        slot->op.stream = listener;
        rc = post_accept(listener, slot);
    }
    if (rc != 0) {
        sys_tcp_close(sys, tcp);
        tcp->sys = NULL;
        tcp->socket = INVALID_SOCKET;
    }
    return rc;
}

static struct iocp_accept *first_accepted(struct sys_stream *listener)
{
    struct iocp_accept *first = NULL;
    for (int i = 0; i < IOCP_ACCEPTS_POSTED; i++) {
        struct iocp_accept *slot = &listener->accepts[i];
        if (slot->done && (!first || slot->order < first->order))
            first = slot;
    }
    return first;
}

int sys_tcp_accept(struct sys_poll *sys, evq_tcp *listener_tcp, evq_tcp *tcp)
{
    struct sys_stream *listener = listener_tcp->sys;
    struct iocp_accept *slot = first_accepted(listener);
    if (!slot) {
        int rc = listener->read_status; /* AcceptEx could not be posted again */
        listener->read_status = 0;
        return rc != 0 ? rc : EVQ_EWOULDBLOCK;
    }
    SOCKET s = slot->socket;
    slot->socket = INVALID_SOCKET;
    slot->done = false;
    int rc = adopt(sys, s, tcp);
    /* The slot is free again: keep the kernel accepting ahead. */
    int posted = post_accept(listener, slot);
    if (posted != 0)
        listener->read_status = posted;
    return rc;
}

/* Count one receive or send call and let the test hook see it first. The
 * hook's EINTR stands for a call interrupted before it moved a byte: it is
 * counted, and made again. */
static int before_call(evq_tcp *tcp, enum evq_io_direction direction, size_t *len)
{
    for (;;) {
        if (direction == EVQ_IO_RECEIVE)
            tcp->receive_calls++;
        else
            tcp->send_calls++;
        int rc = sys_io_hook(tcp, direction, len);
        if (rc != EVQ_EINTR)
            return rc;
    }
}

/* ---- receiving ---- */

/* ANCHOR: fill */
/* Plain recv() on the non-blocking socket into the read buffer, until the
 * socket is empty (0), the buffer is full at read_max (0), or the end: EOF
 * or an error, which comes after the bytes added before it. */
static int fill_from_socket(evq_tcp *tcp)
{
    for (;;) {
        char *space;
        size_t len;
        int rc = read_buffer_reserve(&tcp->read_buf, tcp->limits.read_initial,
                                     tcp->limits.read_max, &space, &len);
        if (rc != 0)
            return rc;
        if (len == 0) {
            tcp->read_drained = false; /* more may wait in the socket */
            return 0; /* full: the reader consumes first */
        }
        if (len > INT_MAX)
            len = INT_MAX;
        if ((rc = before_call(tcp, EVQ_IO_RECEIVE, &len)) != 0)
            return rc;
        int got = recv(tcp->socket, space, (int)len, 0);
        if (got > 0) {
            read_buffer_commit(&tcp->read_buf, (size_t)got);
            continue;
        }
        if (got == 0)
            return EVQ_EOF;
        int error = WSAGetLastError();
        if (error == WSAEWOULDBLOCK) {
            sys_fill_found_empty(tcp); /* no recv() again until a completion says so */
            return 0;
        }
        if (error != WSAEINTR)
            return evq_error_from_wsa(error);
    }
}
/* ANCHOR_END: fill */

/* WSARecv into stream->receive_buffer (len 0: the doorbell alone). */
static int post_receive(struct sys_stream *stream, size_t len)
{
    struct iocp_op *op = &stream->receive;
    memset(&op->overlapped, 0, sizeof op->overlapped);
    stream->receive_buffer.len = (ULONG)len;
    op->flags = 0;
    if (WSARecv(stream->tcp->socket, &stream->receive_buffer, 1, NULL, &op->flags,
                &op->overlapped, NULL) != 0) {
        int error = WSAGetLastError();
        if (error != WSA_IO_PENDING) /* not started: no completion will come */
            return evq_error_from_wsa(error);
    }
    /* Started (at once or pending: the packet comes through the port
     * either way). Marking it after the call is no race: only a wait, on
     * this same thread, can dequeue the packet. */
    op->lent = len;
    iocp_started(stream->poll, op);
    return 0;
}

/* ANCHOR: zero_byte */
/* The doorbell. With zero_byte_receive the kernel is lent nothing: a
 * WSARecv of 0 bytes completes when data (or the FIN, or an error) has
 * arrived, the buffer is allocated only then, and the one an idle stream
 * had is given back here: it pins no memory at all. Without it, the
 * receive goes into the empty read buffer, which the kernel owns until the
 * completion: the first bytes land without a copy, but read_initial bytes
 * stay pinned for as long as the peer is silent. A buffer that still holds
 * bytes the caller has seen always gets the 0-byte doorbell: a consume or
 * a compaction must be free to move them. */
void iocp_start_receive(struct sys_stream *stream)
{
    evq_tcp *tcp = stream->tcp;
    if (stream->receive.in_flight || stream->accepts || stream->read_status != 0 ||
        tcp->read_status != 0 || read_buffer_unseen(&tcp->read_buf) > 0 ||
        read_buffer_full(&tcp->read_buf, tcp->limits.read_max))
        return; /* already waiting, a listener, ended, or ready already */
    static char nowhere; /* a valid address for a buffer of 0 bytes */
    size_t len = 0;
    int rc = 0;
    if (tcp->limits.zero_byte_receive || read_buffer_length(&tcp->read_buf) > 0) {
        read_buffer_release(&tcp->read_buf); /* if empty: nothing to keep */
        stream->receive_buffer.buf = &nowhere;
    } else {
        rc = read_buffer_reserve(&tcp->read_buf, tcp->limits.read_initial, tcp->limits.read_max,
                                 &stream->receive_buffer.buf, &len);
    }
    if (rc == 0 && (rc = before_call(tcp, EVQ_IO_RECEIVE, &len)) == 0)
        rc = post_receive(stream, len);
    if (rc != 0) {
        stream->read_status = rc; /* reported by the next fill, after the bytes before it */
        tcp->read_drained = false;
    }
}
/* ANCHOR_END: zero_byte */

/* ANCHOR: resubmit */
static void receive_completed(struct sys_stream *stream, int status, DWORD bytes)
{
    evq_tcp *tcp = stream->tcp;
    size_t asked = stream->receive_buffer.len;
    tcp->read_drained = false; /* the kernel says: something came */
    if (status != 0) {
        stream->read_status = status; /* a reset: after the bytes buffered before it */
    } else if (asked > 0 && bytes == 0) {
        stream->read_status = EVQ_EOF; /* a receive into a buffer that got nothing: FIN */
    } else {
        if (bytes > 0)
            read_buffer_commit(&tcp->read_buf, bytes); /* what arrived, not what was asked */
        /* A 0-byte receive only says "something is there"; a receive that
         * filled all it was lent (a completion larger than the buffer) left
         * the rest in the socket; and one that got less may have a FIN right
         * behind. Fetch it all now, growing the buffer up to read_max, so
         * that the event says HUP with the last data, as epoll's RDHUP. */
        stream->read_status = fill_from_socket(tcp);
    }
    if (stream->read_status != 0)
        tcp->read_drained = false; /* the next fill must report it */
    /* Nothing new came of it (a reader already took the data this doorbell
     * rang for) and someone still waits: ask again, or no event could ever
     * come. iocp_start_receive does nothing if the stream is ready. */
    if (stream->read_status == 0 && (tcp->armed & EVQ_READABLE))
        iocp_start_receive(stream);
}
/* ANCHOR_END: resubmit */

int sys_tcp_fill(evq_tcp *tcp)
{
    struct sys_stream *stream = tcp->sys;
    if (stream->read_status != 0) {
        /* What a completion met, after the bytes it brought: said once,
         * evq.c keeps it. */
        int rc = stream->read_status;
        stream->read_status = 0;
        return rc;
    }
    /* A receive into the buffer is in flight: the kernel owns its free
     * space, and a recv() now could hand out bytes that arrived after the
     * ones it is holding. Its completion brings them. A 0-byte receive
     * takes no data, so recv() beside it is safe. */
    if (stream->receive.in_flight && stream->receive.lent > 0)
        return 0;
    return fill_from_socket(tcp);
}

/* ---- sending ---- */

/* One overlapped WSASend of the queue's first segments. The chunks are not
 * copied: the queue never moves queued bytes, and pops them only once the
 * kernel is done with them - at once if the send completed at once (its
 * packet still comes through the port: the OVERLAPPED stays lent until
 * then), else when the completion is dequeued. */
/* ANCHOR: send_queue */
static int start_send(evq_tcp *tcp)
{
    struct sys_stream *stream = tcp->sys;
    struct write_segment segments[SYS_SEND_SEGMENTS];
    size_t count = write_queue_segments(&tcp->write_queue, segments, SYS_SEND_SEGMENTS);
    size_t total = 0, lent = 0, used = 0;
    for (size_t i = 0; i < count; i++)
        total += segments[i].len;
    int rc = before_call(tcp, EVQ_IO_SEND, &total);
    if (rc != 0) /* the hook's EWOULDBLOCK: a full socket, try at the next WRITABLE */
        return rc == EVQ_EWOULDBLOCK ? 0 : rc;
    for (; used < count && lent < total; used++) { /* the hook may have lowered total */
        size_t len = segments[used].len < total - lent ? segments[used].len : total - lent;
        stream->send_buffers[used].buf = (char *)segments[used].data;
        stream->send_buffers[used].len = (ULONG)len;
        lent += len;
    }
    struct iocp_op *op = &stream->send;
    memset(&op->overlapped, 0, sizeof op->overlapped);
    bool pending = false;
    if (WSASend(tcp->socket, stream->send_buffers, (DWORD)used, NULL, 0, &op->overlapped,
                NULL) != 0) {
        int error = WSAGetLastError();
        if (error == WSAEWOULDBLOCK) /* "too many outstanding overlapped I/O requests" */
            return 0;                /* nothing started: the next WRITABLE tries again */
        if (error != WSA_IO_PENDING)
            return evq_error_from_wsa(error); /* WSAECONNRESET... never a signal here */
        pending = true;
    }
    op->lent = lent;
    iocp_started(stream->poll, op);
    DWORD sent = 0, flags = 0;
    if (!pending && WSAGetOverlappedResult(tcp->socket, &op->overlapped, &sent, FALSE, &flags)) {
        write_queue_pop(&tcp->write_queue, sent < lent ? sent : lent); /* taken now */
        op->lent = 0;
    }
    return 0;
}
/* ANCHOR_END: send_queue */

static int send_fin_if_drained(evq_tcp *tcp)
{
    if (!tcp->shutdown_requested || tcp->shutdown_done || !write_queue_empty(&tcp->write_queue))
        return 0;
    tcp->shutdown_done = true;
    return shutdown(tcp->socket, SD_SEND) != 0 ? evq_socket_last_error() : 0;
}

int sys_tcp_flush(evq_tcp *tcp)
{
    /* With a send in flight, its packet must come back before the next
     * WSASend (one OVERLAPPED); the wait then sends the rest. The FIN does
     * not wait for the packet: an empty queue means the kernel took it all. */
    int rc = 0;
    if (!write_queue_empty(&tcp->write_queue) && !tcp->sys->send.in_flight)
        rc = start_send(tcp);
    return rc != 0 ? rc : send_fin_if_drained(tcp);
}

/* ANCHOR: send_done */
static void send_completed(struct sys_stream *stream, int status, DWORD bytes, size_t lent)
{
    evq_tcp *tcp = stream->tcp;
    /* Only what the kernel says it sent leaves the queue (a short send
     * leaves the rest at the front, for the next WSASend); lent is 0 when
     * start_send popped the bytes already. */
    write_queue_pop(&tcp->write_queue, bytes < lent ? bytes : lent);
    if (status == 0)
        status = send_fin_if_drained(tcp);
    if (status != 0 && tcp->write_status == 0) {
        tcp->write_status = status; /* reported as EVQ_ERR by the wait, then by writes */
        write_queue_clear(&tcp->write_queue);
    }
}
/* ANCHOR_END: send_done */

void iocp_completed(struct sys_stream *stream, struct iocp_op *op, DWORD bytes)
{
    /* The packet brought the byte count; the outcome is in the OVERLAPPED. */
    DWORD unused_bytes, unused_flags;
    int status = 0;
    if (!WSAGetOverlappedResult(stream->tcp->socket, &op->overlapped, &unused_bytes, FALSE,
                                &unused_flags))
        status = evq_error_from_wsa(WSAGetLastError());
    size_t lent = op->lent;
    op->lent = 0; /* ours again */
    switch (op->kind) {
    case IOCP_RECEIVE:
        receive_completed(stream, status, bytes);
        break;
    case IOCP_SEND:
        send_completed(stream, status, bytes, lent);
        break;
    case IOCP_ACCEPT:
        accept_completed(stream, (struct iocp_accept *)op, status);
        break;
    }
}

uint32_t iocp_readiness(const struct sys_stream *stream, unsigned armed)
{
    const evq_tcp *tcp = stream->tcp;
    uint32_t ready = 0;
    if (armed & EVQ_READABLE) {
        int status = stream->read_status != 0 ? stream->read_status : tcp->read_status;
        if (stream->accepts) {
            for (int i = 0; i < IOCP_ACCEPTS_POSTED; i++)
                if (stream->accepts[i].done)
                    ready |= EVQ_READABLE;
        } else if (read_buffer_unseen(&tcp->read_buf) > 0 ||
                   read_buffer_full(&tcp->read_buf, tcp->limits.read_max)) {
            ready |= EVQ_READABLE; /* evq.c's read_is_ready: bytes not yet seen */
        }
        if (status == EVQ_EOF)
            ready |= EVQ_READABLE | EVQ_HUP;
        else if (status != 0)
            ready |= EVQ_READABLE | EVQ_HUP | EVQ_ERR;
    }
    /* The kernel's WRITABLE: no send in flight, so a flush can hand it more. */
    if ((armed & EVQ_WRITABLE) && !stream->send.in_flight)
        ready |= tcp->write_status != 0 ? EVQ_WRITABLE | EVQ_ERR : EVQ_WRITABLE;
    return ready;
}

size_t sys_tcp_kernel_lent(const evq_tcp *tcp)
{
    const struct sys_stream *stream = tcp->sys;
    if (!stream)
        return 0;
    size_t lent = stream->receive.lent + stream->send.lent;
    for (int i = 0; stream->accepts && i < IOCP_ACCEPTS_POSTED; i++)
        lent += stream->accepts[i].op.lent;
    return lent;
}

/* ---- closing ---- */

void sys_tcp_detach(evq_tcp *tcp)
{
    /* The queue is closing: cancel, and let sys_poll_close collect the
     * cancelled completions before the port goes. */
    if (tcp->sys && iocp_busy(tcp->sys))
        CancelIoEx((HANDLE)tcp->socket, NULL);
}

void iocp_stream_free(struct sys_stream *stream)
{
    read_buffer_free(&stream->kept_read);
    write_queue_clear(&stream->kept_write);
    for (int i = 0; stream->accepts && i < IOCP_ACCEPTS_POSTED; i++) {
        if (stream->accepts[i].socket != INVALID_SOCKET)
            closesocket(stream->accepts[i].socket);
    }
    free(stream->accepts);
    free(stream);
}

/* ANCHOR: retire */
void sys_tcp_close(struct sys_poll *sys, evq_tcp *tcp)
{
    struct sys_stream *stream = tcp->sys;
    if (stream && iocp_busy(stream)) {
        /* CancelIoEx only asks: "The application must not free or reuse the
         * OVERLAPPED structure associated with the canceled I/O operations
         * until they have completed." The stream keeps the buffers the
         * kernel may still touch (evq.c frees what is left in the evq_tcp),
         * and the queue frees it all when the last completion is dequeued. */
        CancelIoEx((HANDLE)tcp->socket, NULL);
        closesocket(tcp->socket);
        if (stream->receive.in_flight && stream->receive.lent > 0) {
            stream->kept_read = tcp->read_buf;
            memset(&tcp->read_buf, 0, sizeof tcp->read_buf);
        }
        if (stream->send.in_flight) {
            stream->kept_write = tcp->write_queue;
            memset(&tcp->write_queue, 0, sizeof tcp->write_queue);
        }
        stream->tcp = NULL;
        if (sys)
            iocp_retire(sys, stream);
        /* else: the queue is gone and gave up waiting for this I/O (see
         * sys_poll_close); leaking is the only safe thing left. */
        return;
    }
    if (tcp->socket != INVALID_SOCKET)
        closesocket(tcp->socket);
    if (stream)
        iocp_stream_free(stream);
}
/* ANCHOR_END: retire */

/* tcp_win.c - the socket primitives on Winsock, for the IOCP backend: the
 * same connect, listen, accept, recv, send and shutdown as tcp_posix.c,
 * and the overlapped operations behind them (iocp.h): ConnectEx, the
 * receive that waits for data (0 bytes, or into the read buffer), WSASend
 * straight from the write queue's chunks, AcceptEx posted ahead on a
 * listener, and what a completion means for each.
 */
#include "iocp.h"

#include <ws2tcpip.h>

#include <limits.h>
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

/* WSA_FLAG_OVERLAPPED: every WSARecv, WSASend and AcceptEx on it is
 * overlapped. Not inherited by programs this process runs. */
static SOCKET overlapped_socket(int family)
{
    return WSASocketW(family, SOCK_STREAM, IPPROTO_TCP, NULL, 0,
                      WSA_FLAG_OVERLAPPED | WSA_FLAG_NO_HANDLE_INHERIT);
}

/* The address as the socket calls take it: copied out of the opaque bytes
 * of evq.h into storage aligned for any family. */
static int sockaddr_of(const evq_address *address, struct sockaddr_storage *out)
{
    memset(out, 0, sizeof *out);
    memcpy(out, address->bytes, address->length);
    return (int)address->length;
}

/* ---- connecting: ConnectEx ---- */

/* ANCHOR: connect_ex */
/* ConnectEx is the overlapped connect, and three things make it unlike
 * connect(): it is not exported by ws2_32 (the socket's provider hands
 * out a pointer to it, through WSAIoctl); it wants a socket that is bound
 * already (to the wildcard address of its family, port 0: "any"); and the
 * connected socket knows nothing of its connection until told
 * (SO_UPDATE_CONNECT_CONTEXT, in sys_connect_result). */
static int post_connect(struct sys_stream *stream, const struct sockaddr_storage *to, int length)
{
    SOCKET s = stream->tcp->socket;
    struct sockaddr_storage any;
    memset(&any, 0, sizeof any);
    any.ss_family = to->ss_family; /* 0.0.0.0:0 or [::]:0 */
    int any_length = to->ss_family == AF_INET6 ? (int)sizeof(struct sockaddr_in6)
                                               : (int)sizeof(struct sockaddr_in);
    LPFN_CONNECTEX connect_ex = NULL;
    GUID guid = WSAID_CONNECTEX;
    DWORD got = 0;
    if (bind(s, (struct sockaddr *)&any, any_length) != 0 ||
        WSAIoctl(s, SIO_GET_EXTENSION_FUNCTION_POINTER, &guid, sizeof guid, &connect_ex,
                 sizeof connect_ex, &got, NULL, NULL) != 0)
        return evq_socket_last_error();
    struct iocp_op *op = &stream->connect;
    memset(&op->overlapped, 0, sizeof op->overlapped);
    stream->connect_status = EVQ_EINPROGRESS; /* until its completion says otherwise */
    /* TRUE (connected at once) or WSA_IO_PENDING: the completion comes
     * through the port either way. The address is read during the call. */
    if (!connect_ex(s, (const struct sockaddr *)to, length, NULL, 0, NULL, &op->overlapped) &&
        WSAGetLastError() != WSA_IO_PENDING)
        return evq_socket_last_error(); /* not started: no completion will come */
    iocp_started(op);
    return 0;
}
/* ANCHOR_END: connect_ex */

int sys_connect_start(struct sys_poll *sys, evq_tcp *tcp, const evq_address *address)
{
    struct sockaddr_storage to;
    int length = sockaddr_of(address, &to);
    tcp->socket = overlapped_socket(to.ss_family);
    if (tcp->socket == INVALID_SOCKET)
        return evq_socket_last_error();
    int rc = make_nonblocking(tcp->socket); /* for the recv() of a fill, once connected */
    if (rc == 0)
        rc = sys_stream_attach(sys, tcp); /* tied to the port: its completions come there */
    if (rc == 0)
        rc = post_connect(tcp->sys, &to, length);
    if (rc != 0) {
        closesocket(tcp->socket);
        tcp->socket = INVALID_SOCKET;
    }
    return rc;
}

/* The ConnectEx has come back (its completion made the stream WRITABLE).
 * Connected: tell the socket, or shutdown, getpeername and friends fail. */
int sys_connect_result(evq_tcp *tcp)
{
    int rc = tcp->sys->connect_status;
    if (rc == 0 && setsockopt(tcp->socket, SOL_SOCKET, SO_UPDATE_CONNECT_CONTEXT, NULL, 0) != 0)
        rc = evq_socket_last_error();
    return rc;
}

/* ---- listening ---- */

int sys_socket_listen(const evq_address *address, int backlog, bool shared, evq_socket *out)
{
    if (shared) /* see evq_tcp_listen_shared: nothing spreads connections here */
        return EVQ_ENOTSUP;
    struct sockaddr_storage local;
    int length = sockaddr_of(address, &local);
    SOCKET s = overlapped_socket(local.ss_family);
    if (s == INVALID_SOCKET)
        return evq_socket_last_error();
    /* No SO_REUSEADDR: on Windows it lets another socket steal the port. */
    if (bind(s, (struct sockaddr *)&local, length) != 0 || listen(s, backlog) != 0) {
        int rc = evq_socket_last_error();
        closesocket(s);
        return rc;
    }
    *out = s;
    return 0;
}

/* ---- the listener: AcceptEx posted ahead ---- */

/* ANCHOR: accept_ex */
/* AcceptEx accepts into a socket made beforehand, of the listener's family.
 * The output buffer gets no data (receive length 0: complete as soon as a
 * connection arrives) and the two addresses, each with 16 spare bytes. The
 * test hook stands in front of the socket's creation (EVQ_IO_ACCEPT): it
 * is what fails when descriptors run out. */
static int post_accept(struct sys_stream *listener, struct iocp_accept *slot)
{
    size_t unused = 0;
    int rc = sys_io_hook(listener->tcp, EVQ_IO_ACCEPT, &unused);
    if (rc != 0)
        return rc;
    slot->socket = overlapped_socket(listener->family);
    if (slot->socket == INVALID_SOCKET)
        return evq_socket_last_error(); /* WSAEMFILE, WSAENOBUFS */
    memset(&slot->op.overlapped, 0, sizeof slot->op.overlapped);
    slot->done = false;
    DWORD unused_bytes;
    if (!listener->accept_ex(listener->tcp->socket, slot->socket, slot->addresses, 0,
                             IOCP_ACCEPT_ADDRESS_SIZE, IOCP_ACCEPT_ADDRESS_SIZE, &unused_bytes,
                             &slot->op.overlapped)) {
        int error = WSAGetLastError();
        if (error != WSA_IO_PENDING) { /* not started: no completion will come */
            closesocket(slot->socket);
            slot->socket = INVALID_SOCKET;
            return evq_error_from_wsa(error);
        }
    }
    slot->op.lent = sizeof slot->addresses;
    iocp_started(&slot->op);
    return 0;
}
/* ANCHOR_END: accept_ex */

void iocp_post_accepts(struct sys_stream *listener)
{
    for (int i = 0; i < IOCP_ACCEPTS_POSTED; i++) {
        struct iocp_accept *slot = &listener->accepts[i];
        if (slot->socket != INVALID_SOCKET)
            continue; /* posted, or holding a connection */
        int rc = post_accept(listener, slot);
        if (rc != 0) {
            /* The next accept says it (poll.c then pauses the listener):
             * no completion will announce it, so the listener counts as
             * ready at once. */
            listener->accept_error = rc;
            listener->tcp->accept_drained = false;
            return;
        }
    }
}

/* ANCHOR: accept_done */
static void accept_completed(struct sys_stream *listener, struct iocp_accept *slot, int status)
{
    /* The accepted socket knows nothing of its listener until told: without
     * SO_UPDATE_ACCEPT_CONTEXT, getsockname, shutdown and friends fail. */
    if (status == 0 &&
        setsockopt(slot->socket, SOL_SOCKET, SO_UPDATE_ACCEPT_CONTEXT,
                   (const char *)&listener->tcp->socket, sizeof listener->tcp->socket) != 0)
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
    if (status != EVQ_ECANCELED && (status = post_accept(listener, slot)) != 0)
        listener->accept_error = status; /* this completion's edge announces it */
}
/* ANCHOR_END: accept_done */

int sys_listener_start(evq_tcp *tcp)
{
    struct sys_stream *listener = tcp->sys;
    struct sockaddr_storage local;
    int length = sizeof local;
    if (getsockname(tcp->socket, (struct sockaddr *)&local, &length) != 0)
        return evq_socket_last_error();
    listener->family = local.ss_family; /* AcceptEx's sockets must be of it */
    /* AcceptEx lives in the provider, not in ws2_32: ask the socket for it. */
    GUID guid = WSAID_ACCEPTEX;
    DWORD got = 0;
    if (WSAIoctl(tcp->socket, SIO_GET_EXTENSION_FUNCTION_POINTER, &guid, sizeof guid,
                 &listener->accept_ex, sizeof listener->accept_ex, &got, NULL, NULL) != 0)
        return evq_socket_last_error();
    listener->accepts = calloc(IOCP_ACCEPTS_POSTED, sizeof *listener->accepts);
    if (!listener->accepts)
        return EVQ_ENOMEM;
    for (int i = 0; i < IOCP_ACCEPTS_POSTED; i++) {
        struct iocp_accept *slot = &listener->accepts[i];
        slot->socket = INVALID_SOCKET;
        slot->op.kind = IOCP_ACCEPT;
        slot->op.stream = listener;
    }
    iocp_post_accepts(listener);
    int rc = listener->accept_error;
    listener->accept_error = 0;
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

int sys_socket_accept(evq_tcp *tcp, evq_socket *out)
{
    struct sys_stream *listener = tcp->sys;
    struct iocp_accept *slot = first_accepted(listener);
    if (!slot) {
        int rc = listener->accept_error; /* AcceptEx could not be posted again */
        listener->accept_error = 0;
        return rc != 0 ? rc : EVQ_EWOULDBLOCK;
    }
    SOCKET s = slot->socket;
    slot->socket = INVALID_SOCKET;
    slot->done = false;
    /* The slot is free again: keep the kernel accepting ahead. */
    int posted = post_accept(listener, slot);
    if (posted != 0)
        listener->accept_error = posted;
    int rc = make_nonblocking(s);
    if (rc != 0) {
        closesocket(s);
        return rc;
    }
    *out = s;
    return 0;
}

/* ---- receiving ---- */

/* ANCHOR: fill */
/* One plain recv() on the non-blocking socket (stream.c's fill loops). */
int sys_socket_receive(evq_tcp *tcp, char *space, size_t len, size_t *got)
{
    int received = recv(tcp->socket, space, len > INT_MAX ? INT_MAX : (int)len, 0);
    if (received == SOCKET_ERROR)
        return evq_socket_last_error(); /* WSAEWOULDBLOCK -> EVQ_EWOULDBLOCK */
    *got = (size_t)received;
    return 0;
}
/* ANCHOR_END: fill */

/* A receive call like any other for the counters and the test hook, whose
 * EINTR stands for a call interrupted before it moved a byte: counted, and
 * made again. */
static int before_receive(evq_tcp *tcp, size_t *len)
{
    for (;;) {
        tcp->receive_calls++;
        int rc = sys_io_hook(tcp, EVQ_IO_RECEIVE, len);
        if (rc != EVQ_EINTR)
            return rc;
    }
}

/* WSARecv into stream->receive_buffer (len 0: a zero-byte receive). */
static int post_receive(struct sys_stream *stream, size_t len)
{
    struct iocp_op *op = &stream->receive;
    memset(&op->overlapped, 0, sizeof op->overlapped);
    stream->receive_buffer.len = (ULONG)len;
    op->flags = 0;
    if (WSARecv(stream->tcp->socket, &stream->receive_buffer, 1, NULL, &op->flags, &op->overlapped,
                NULL) != 0) {
        int error = WSAGetLastError();
        if (error != WSA_IO_PENDING) /* not started: no completion will come */
            return evq_error_from_wsa(error);
    }
    /* Started (at once or pending: the packet comes through the port
     * either way). Marking it after the call is no race: another thread's
     * wait may dequeue the packet at once, but takes it under the stream's
     * lock (sys_event_take), which this thread holds. */
    op->lent = len;
    iocp_started(op);
    return 0;
}

/* ANCHOR: zero_byte */
/* The pending receive, which tells the stream that data has come. With
 * zero_byte_receive the kernel is lent nothing: a
 * WSARecv of 0 bytes completes when data (or the FIN, or an error) has
 * arrived, the buffer is allocated only then, and the one an idle stream
 * had is given back here: it pins no memory at all. Without it, the
 * receive goes into the empty read buffer, which the kernel owns until the
 * completion: the first bytes land without a copy, but read_initial bytes
 * stay pinned for as long as the peer is silent. A buffer that still holds
 * bytes the caller has seen always gets a zero-byte receive: a consume or
 * a compaction must be free to move them. */
void iocp_start_receive(struct sys_stream *stream)
{
    evq_tcp *tcp = stream->tcp;
    if (stream->receive.in_flight || stream_read_readiness(tcp) != 0)
        return;          /* already waiting, or ready (unseen bytes, full, or ended) */
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
    if (rc == 0 && (rc = before_receive(tcp, &len)) == 0)
        rc = post_receive(stream, len);
    if (rc != 0)
        stream_receive_completed(tcp, rc, false); /* reported after the bytes before it */
}
/* ANCHOR_END: zero_byte */

/* ANCHOR: resubmit */
static void receive_completed(struct sys_stream *stream, int status, DWORD bytes)
{
    evq_tcp *tcp = stream->tcp;
    size_t asked = stream->receive_buffer.len;
    if (status == 0 && asked > 0 && bytes == 0)
        status = EVQ_EOF; /* a receive into a buffer that got nothing: FIN */
    if (status == 0 && bytes > 0)
        read_buffer_commit(&tcp->read_buf, bytes); /* what arrived, not what was asked */
    /* A 0-byte receive only says "something is there"; a receive that
     * filled all it was lent (a completion larger than the buffer) left the
     * rest in the socket; and one that got less may have a FIN right
     * behind. This is the edge: the stream's turn (poll.c) reads the rest,
     * growing the buffer up to read_max, so that the event says HUP with
     * the last data, as epoll's RDHUP - or, if a reader already took the
     * data this receive announced, finds the socket empty and posts the
     * next receive (sys_watch_read). A reset comes after the bytes
     * buffered before it. */
    stream_receive_completed(tcp, status, asked > 0 && bytes < asked);
}
/* ANCHOR_END: resubmit */

bool sys_tcp_receiving(const evq_tcp *tcp)
{
    /* A 0-byte receive takes no data, so recv() beside it is safe. */
    return tcp->sys->receive.in_flight && tcp->sys->receive.lent > 0;
}

/* ---- sending ---- */

/* ANCHOR: send_queue */
/* One overlapped WSASend of the queue's first segments. The chunks are not
 * copied: the queue never moves queued bytes, and pops them only once the
 * kernel is done with them - at once if the send completed at once (its
 * packet still comes through the port: the OVERLAPPED stays lent until
 * then), else when the completion is dequeued (send_completed). */
int sys_socket_send(evq_tcp *tcp, struct write_segment *segments, size_t count, size_t *sent)
{
    struct sys_stream *stream = tcp->sys;
    size_t lent = 0;
    for (size_t i = 0; i < count; i++) {
        stream->send_buffers[i].buf = (char *)segments[i].data;
        stream->send_buffers[i].len = (ULONG)segments[i].len;
        lent += segments[i].len;
    }
    struct iocp_op *op = &stream->send;
    memset(&op->overlapped, 0, sizeof op->overlapped);
    bool pending = false;
    if (WSASend(tcp->socket, stream->send_buffers, (DWORD)count, NULL, 0, &op->overlapped, NULL) !=
        0) {
        int error = WSAGetLastError();
        if (error == WSAEWOULDBLOCK) /* "too many outstanding overlapped I/O requests" */
            return EVQ_EWOULDBLOCK;  /* nothing started: the next WRITABLE tries again */
        if (error != WSA_IO_PENDING)
            return evq_error_from_wsa(error); /* WSAECONNRESET... never a signal here */
        pending = true;
    }
    op->lent = lent;
    iocp_started(op);
    *sent = 0;
    DWORD done = 0, flags = 0;
    if (!pending && WSAGetOverlappedResult(tcp->socket, &op->overlapped, &done, FALSE, &flags)) {
        *sent = done < lent ? done : lent; /* taken now: the queue pops it */
        op->lent = 0;
    }
    return 0;
}
/* ANCHOR_END: send_queue */

/* ANCHOR: send_done */
static void send_completed(struct sys_stream *stream, int status, DWORD bytes, size_t lent)
{
    evq_tcp *tcp = stream->tcp;
    /* Only what the kernel says it sent leaves the queue (a short send
     * leaves the rest at the front, for the next WSASend); lent is 0 when
     * the bytes were popped already. The wait then reports WRITABLE (no
     * send in flight): poll.c flushes the rest, and the FIN after it. */
    write_queue_pop(&tcp->write_queue, bytes < lent ? bytes : lent);
    if (status != 0 && tcp->write_status == 0)
        stream_write_failed(tcp, status); /* reported as EVQ_ERR by the wait, then by writes */
}
/* ANCHOR_END: send_done */

bool sys_tcp_sending(const evq_tcp *tcp)
{
    return tcp->sys->send.in_flight;
}

int sys_socket_shutdown(evq_tcp *tcp)
{
    return shutdown(tcp->socket, SD_SEND) != 0 ? evq_socket_last_error() : 0;
}

/* ---- completions ---- */

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
    case IOCP_CONNECT:
        stream->connect_status = status; /* read by sys_connect_result; ignored once abandoned */
        break;
    }
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

/* tcp_uring.c - the socket primitives of chapter 4's seam on io_uring: the
 * same connect, listen, accept, receive, send and shutdown as tcp_posix.c
 * and tcp_win.c, and the operations behind them (uring_backend.h): CONNECT
 * per address, the receive that waits for data in one of three forms,
 * SENDMSG straight from the write queue's chunks, one ACCEPT at a time
 * kept armed on a listener, and what each completion means for the
 * stream.
 *
 * A connection's socket stays blocking, unlike on every other backend:
 * io_uring reads O_NONBLOCK. It waits for a blocking socket by itself (a
 * poll inside the kernel, or a worker thread that blocks), but an
 * operation on a non-blocking one may complete with -EAGAIN - measured
 * here: a SENDMSG to a client that reads slowly, about one run in two of
 * a_half_closed_client_still_gets_its_whole_answer. The plain calls this
 * file makes itself (the fill's recv() after a completion, accept4() on
 * the listener) must not block the loop: recv() says MSG_DONTWAIT, and
 * the listener, which never sees a send or a receive, is non-blocking.
 */
#define _GNU_SOURCE /* accept4, ENONET */
#include "uring_backend.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static socklen_t sockaddr_of(const evq_address *address, struct sockaddr_storage *out)
{
    memset(out, 0, sizeof *out);
    memcpy(out, address->bytes, address->length);
    return (socklen_t)address->length;
}

/* ---- connecting ---- */

/* ANCHOR: connect */
/* One CONNECT per address, on a new (blocking) socket. The address is
 * the stream's (the kernel copies it when the SQE is submitted), and the
 * SQE goes to the kernel at once: a connect under way is visible without
 * a wait (a peer's accept). Its completion is the outcome: 0 or -errno. */
int sys_connect_start(struct sys_poll *sys, evq_tcp *tcp, const evq_address *address)
{
    struct sys_stream *stream = tcp->sys;
    if (stream->connect.in_flight)
        return EVQ_EALREADY; /* never: the last one's completion came before the next address */
    socklen_t length = sockaddr_of(address, &stream->connect_to);
    int fd = socket(stream->connect_to.ss_family, SOCK_STREAM | SOCK_CLOEXEC, IPPROTO_TCP);
    if (fd < 0)
        return evq_error_from_errno(errno);
    struct io_uring_sqe *sqe;
    int rc = uring_sqe(sys, &sqe);
    if (rc != 0) {
        evq_socket_close(fd);
        return rc;
    }
    evq_uring_prep_connect(sqe, fd, (const struct sockaddr *)&stream->connect_to, length,
                           uring_tag(stream, URING_CONNECT));
    uring_started(stream, &stream->connect);
    stream->connect_status = EVQ_EINPROGRESS; /* until its completion says otherwise */
    tcp->socket = fd;
    uring_submit_now(sys);
    return 0;
}
/* ANCHOR_END: connect */

int sys_connect_result(evq_tcp *tcp)
{
    return tcp->sys->connect_status;
}

/* ---- listening and accepting ---- */

int sys_socket_listen(const evq_address *address, int backlog, evq_socket *out)
{
    struct sockaddr_storage local;
    socklen_t length = sockaddr_of(address, &local);
    int fd = socket(local.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
    if (fd < 0)
        return evq_error_from_errno(errno);
    int one = 1; /* restarted at once, a server binds its port again */
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(fd, (const struct sockaddr *)&local, length) != 0 || listen(fd, backlog) != 0) {
        int rc = evq_error_from_errno(errno);
        evq_socket_close(fd);
        return rc;
    }
    *out = fd;
    return 0;
}

int sys_listener_start(evq_tcp *listener)
{
    (void)listener; /* the ACCEPT is armed when the listener is first armed READABLE */
    return 0;
}

/* Linux accept(2): network errors already pending on the new connection
 * come back from accept; that connection is gone, the listener is fine
 * ("treat them like EAGAIN"). io_uring's ACCEPT passes them on the same. */
static bool pending_network_error(int error)
{
    switch (error) {
    case ENETDOWN:
    case EPROTO:
    case ENOPROTOOPT:
    case EHOSTDOWN:
    case ENONET:
    case EHOSTUNREACH:
    case EOPNOTSUPP:
    case ENETUNREACH:
        return true;
    default:
        return false;
    }
}

/* ANCHOR: accept */
/* One ACCEPT in flight on a listener the caller has armed: the kernel's
 * "a connection has come", with that connection. It is not multishot: a
 * multishot ACCEPT takes every connection the moment it arrives, between
 * two waits, however many - nothing would be left in the backlog, and a
 * server at its connection limit, or at the descriptor limit, could not
 * stop it. One at a time keeps the accepting bounded (IOCP keeps four
 * AcceptEx posted), and evq_tcp_accept takes the others with accept4(),
 * as a fill takes the bytes behind a receive's with recv(). */
void uring_start_accept(struct sys_stream *listener)
{
    if (listener->accept.in_flight || listener->accept_error != 0 || listener->accepted_count > 0)
        return; /* armed; at the descriptor limit (poll.c rests the listener); or one waits */
    struct io_uring_sqe *sqe;
    if (uring_sqe(listener->poll, &sqe) != 0) {
        listener->accept_error = EVQ_ENOMEM; /* said by the next accept; poll.c rests it */
        return;
    }
    evq_uring_prep_accept(sqe, listener->tcp->socket, NULL, NULL, SOCK_CLOEXEC, false,
                          uring_tag(listener, URING_ACCEPT));
    uring_started(listener, &listener->accept);
}

static int accepted_push(struct sys_stream *listener, int fd)
{
    if (listener->accepted_count == listener->accepted_capacity) {
        size_t capacity = listener->accepted_capacity ? 2 * listener->accepted_capacity : 4;
        int *grown = malloc(capacity * sizeof *grown);
        if (!grown)
            return EVQ_ENOMEM;
        for (size_t i = 0; i < listener->accepted_count; i++) /* oldest first, from index 0 */
            grown[i] =
                listener->accepted[(listener->accepted_head + i) % listener->accepted_capacity];
        free(listener->accepted);
        listener->accepted = grown;
        listener->accepted_head = 0;
        listener->accepted_capacity = capacity;
    }
    size_t tail =
        (listener->accepted_head + listener->accepted_count) % listener->accepted_capacity;
    listener->accepted[tail] = fd;
    listener->accepted_count++;
    return 0;
}

static void accept_completed(struct sys_stream *listener, const struct io_uring_cqe *cqe)
{
    int error = cqe->res < 0 ? -cqe->res : 0;
    if (cqe->res >= 0) {
        if (accepted_push(listener, cqe->res) != 0) {
            evq_socket_close(cqe->res);
            listener->accept_error = EVQ_ENOMEM;
        }
    } else if (error != ECANCELED && error != ECONNABORTED && error != EINTR && error != EAGAIN &&
               !pending_network_error(error)) {
        /* EMFILE, ENFILE, ENOBUFS, ENOMEM: the connection stays in the
         * backlog; the next accept says it and poll.c rests the listener,
         * whose next arming submits the ACCEPT again. */
        listener->accept_error = evq_uring_error(cqe->res);
    }
    /* A connection that was gone, -EAGAIN (the listener is non-blocking,
     * and accept4() took the connection first), or a cancel (the thread
     * that submitted the ACCEPT exited) is no news: wait for the next
     * while armed. */
    if (listener->armed & EVQ_READABLE)
        uring_start_accept(listener);
}
/* ANCHOR_END: accept */

int sys_socket_accept(evq_tcp *tcp, evq_socket *out)
{
    struct sys_stream *listener = tcp->sys;
    for (;;) {
        size_t unused = 0;
        int rc = sys_io_hook(tcp, EVQ_IO_ACCEPT, &unused); /* stands for the kernel's accept */
        if (rc == EVQ_EINTR)
            continue;
        if (rc != 0)
            return rc;
        if (listener->accepted_count > 0) { /* the one an ACCEPT brought */
            *out = listener->accepted[listener->accepted_head];
            listener->accepted_head = (listener->accepted_head + 1) % listener->accepted_capacity;
            listener->accepted_count--;
            return 0;
        }
        if (listener->accept_error != 0) {
            rc = listener->accept_error;
            listener->accept_error = 0;
            return rc;
        }
        /* The ones behind it, as tcp_posix.c takes them (blocking, as
         * the ACCEPT's: see the top of this file). */
        int fd = accept4(tcp->socket, NULL, NULL, SOCK_CLOEXEC);
        if (fd >= 0) {
            *out = fd;
            return 0;
        }
        if (errno == EINTR || errno == ECONNABORTED)
            continue; /* that connection is gone; the next may be fine */
        if (errno == EAGAIN || errno == EWOULDBLOCK || pending_network_error(errno))
            return EVQ_EWOULDBLOCK;
        return evq_error_from_errno(errno); /* EMFILE: stream.c rests the listener */
    }
}

/* ---- receiving ---- */

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

/* ANCHOR: start_receive */
/* The receive that waits for data, in the form uring_backend.h describes:
 * provided buffers if the stream's limits ask for an idle stream to hold
 * nothing (zero_byte_receive, IOCP's name for it); else into the read
 * buffer - unless it holds bytes the caller has seen, which a consume or a
 * compaction must stay free to move: then a POLL_ADD, which lends nothing. */
void uring_start_receive(struct sys_stream *stream)
{
    evq_tcp *tcp = stream->tcp;
    bool provided = tcp->limits.zero_byte_receive || uring_provided_always(stream->poll);
    /* Waiting on provided buffers, an idle stream holds no buffer: an empty
     * one is given back (it is never the kernel's on that path). */
    if (provided && !(stream->receive.in_flight && stream->receive.lent > 0))
        read_buffer_release(&tcp->read_buf);
    if (stream->receive.in_flight || tcp->socket == EVQ_INVALID_SOCKET ||
        tcp->connect_phase != CONNECT_DONE || stream->parked_head != URING_NO_BUFFER ||
        stream_read_readiness(tcp) != 0)
        return; /* already waiting, not connected, or ready (unseen bytes, full, ended) */
    enum uring_receive_form form = RECEIVE_POLL;
    evq_uring_pbuf *buffers = NULL;
    char *space = NULL;
    size_t len = 0;
    int rc = 0;
    if (provided) {
        buffers = uring_buffers(stream->poll);
        if (buffers && buffers->available > 0) {
            form = RECEIVE_PROVIDED;
            len = buffers->size;
        }
    } else if (read_buffer_length(&tcp->read_buf) == 0) {
        rc = read_buffer_reserve(&tcp->read_buf, tcp->limits.read_initial, tcp->limits.read_max,
                                 &space, &len);
        form = RECEIVE_INTO_BUFFER;
    }
    struct io_uring_sqe *sqe = NULL;
    if (rc == 0 && (rc = before_receive(tcp, &len)) == 0)
        rc = uring_sqe(stream->poll, &sqe);
    if (rc != 0) {
        stream_receive_completed(tcp, rc); /* reported after the bytes before it */
        return;
    }
    uint64_t tag = uring_tag(stream, URING_RECEIVE);
    if (form == RECEIVE_INTO_BUFFER) {
        evq_uring_prep_recv(sqe, tcp->socket, space, len, 0, tag);
        stream->receive.lent = len; /* the kernel's until the completion is reaped */
    } else if (form == RECEIVE_PROVIDED) {
        evq_uring_prep_recv_multishot(sqe, tcp->socket, buffers->group, tag);
    } else {
        evq_uring_prep_poll_add(sqe, tcp->socket, POLLIN, tag);
    }
    stream->receive_form = form;
    uring_started(stream, &stream->receive);
}
/* ANCHOR_END: start_receive */

/* ANCHOR: take */
/* Bytes a completion brought in a provided buffer: into the read buffer,
 * as far as read_max allows, and the buffer straight back to the ring.
 * What does not fit stays in its buffer, parked on the stream in order
 * behind any parked before it, and the multishot receive is cancelled: the
 * reader must make room first (sys_socket_receive takes parked bytes). */
static void take_provided(struct sys_stream *stream, uint16_t id, const unsigned char *data,
                          uint32_t len)
{
    evq_tcp *tcp = stream->tcp;
    uint32_t done = 0;
    while (stream->parked_head == URING_NO_BUFFER && done < len) {
        char *space;
        size_t room = 0;
        if (read_buffer_reserve(&tcp->read_buf, tcp->limits.read_initial, tcp->limits.read_max,
                                &space, &room) != 0 ||
            room == 0)
            break; /* full at read_max (or no memory now) */
        size_t n = room < len - done ? room : len - done;
        memcpy(space, data + done, n);
        read_buffer_commit(&tcp->read_buf, n);
        done += (uint32_t)n;
    }
    if (done == len) {
        evq_uring_pbuf_recycle(uring_buffers(stream->poll), id);
        return;
    }
    struct uring_parked *parked = uring_parked_entries(stream->poll);
    parked[id] = (struct uring_parked){URING_NO_BUFFER, done, len};
    if (stream->parked_tail != URING_NO_BUFFER)
        parked[stream->parked_tail].next = id;
    else
        stream->parked_head = id;
    stream->parked_tail = id;
    uring_cancel(stream, URING_RECEIVE);
}
/* ANCHOR_END: take */

/* Parked bytes into the reader's space; emptied buffers go back. */
static size_t take_parked(struct sys_stream *stream, char *space, size_t len)
{
    evq_uring_pbuf *buffers = uring_buffers(stream->poll);
    struct uring_parked *parked = uring_parked_entries(stream->poll);
    size_t got = 0;
    while (got < len && stream->parked_head != URING_NO_BUFFER) {
        uint16_t id = stream->parked_head;
        struct uring_parked *entry = &parked[id];
        size_t n = entry->end - entry->start < len - got ? entry->end - entry->start : len - got;
        memcpy(space + got, buffers->memory + (size_t)id * buffers->size + entry->start, n);
        entry->start += (uint32_t)n;
        got += n;
        if (entry->start == entry->end) {
            stream->parked_head = entry->next;
            if (stream->parked_head == URING_NO_BUFFER)
                stream->parked_tail = URING_NO_BUFFER;
            evq_uring_pbuf_recycle(buffers, id);
        }
    }
    return got;
}

/* ANCHOR: provided_done */
static void provided_completed(struct sys_stream *stream, const struct io_uring_cqe *cqe)
{
    evq_tcp *tcp = stream->tcp;
    uint16_t id;
    unsigned char *data;
    uint32_t len;
    if (evq_uring_pbuf_take(uring_buffers(stream->poll), cqe, &id, &data, &len) == 0)
        take_provided(stream, id, data, len);
    if (cqe->flags & IORING_CQE_F_MORE)
        return; /* still armed */
    /* The multishot receive has ended. After data (the CQ was full), a
     * cancel or -EAGAIN, nothing is wrong: the next arming starts another. */
    if (cqe->res > 0 || cqe->res == -ECANCELED || cqe->res == -EAGAIN)
        return;
    /* -ENOBUFS: the ring ran dry, and the data waits in the socket (or
     * none came: the kernel also says it when the ring is dry at the
     * start). Nothing of the kernel's is in flight any more, so the fill
     * takes it with recv() now; the next arming waits with provided
     * buffers again, or with POLL_ADD while the ring is still dry. */
    if (cqe->res == -ENOBUFS)
        uring_counters(stream->poll)->dry++;
    int status = cqe->res == -ENOBUFS ? 0 : cqe->res == 0 ? EVQ_EOF : evq_uring_error(cqe->res);
    if (stream->parked_head != URING_NO_BUFFER) {
        if (status != 0)
            stream->receive_end = status; /* after the parked bytes */
        return;
    }
    stream_receive_completed(tcp, status);
}
/* ANCHOR_END: provided_done */

/* ANCHOR: receive_done */
static void receive_completed(struct sys_stream *stream, const struct io_uring_cqe *cqe)
{
    evq_tcp *tcp = stream->tcp;
    if (stream->receive_form == RECEIVE_PROVIDED) {
        provided_completed(stream, cqe);
    } else if (cqe->res != -ECANCELED && cqe->res != -EAGAIN) {
        /* (Cancelled - its thread exited - or -EAGAIN: nothing happened.) */
        int status = 0;
        if (stream->receive_form == RECEIVE_INTO_BUFFER) {
            size_t lent = stream->receive.lent;
            stream->receive.lent = 0; /* ours again */
            if (cqe->res > 0)         /* what arrived, not what was asked */
                read_buffer_commit(&tcp->read_buf,
                                   (size_t)cqe->res < lent ? (size_t)cqe->res : lent);
            else
                status = cqe->res == 0 ? EVQ_EOF : evq_uring_error(cqe->res);
        }
        /* A receive that filled all it was lent left the rest in the
         * socket, one that got less may have a FIN right behind, and a
         * POLL_ADD brought nothing at all: stream.c fetches it all now
         * (recv() until EAGAIN), so that the event says HUP with the last
         * data, as epoll's RDHUP does. */
        stream_receive_completed(tcp, status);
    } else if (stream->receive_form == RECEIVE_INTO_BUFFER) {
        stream->receive.lent = 0;
    }
    /* Over, and nothing new came of it (a reader took the data first), and
     * someone still waits: wait again, or no event could ever come. */
    if (!stream->receive.in_flight && (stream->armed & EVQ_READABLE))
        uring_start_receive(stream);
}
/* ANCHOR_END: receive_done */

/* One plain recv() on the non-blocking socket (stream.c's fill loops) -
 * after the bytes parked in provided buffers, and never beside an armed
 * multishot receive, whose completions bring the data in order. */
int sys_socket_receive(evq_tcp *tcp, char *space, size_t len, size_t *got)
{
    struct sys_stream *stream = tcp->sys;
    if (stream->parked_head != URING_NO_BUFFER) {
        *got = take_parked(stream, space, len);
        return 0;
    }
    if (stream->receive_end != 0) { /* the end that came behind the parked bytes */
        int end = stream->receive_end;
        stream->receive_end = 0;
        *got = 0;
        return end == EVQ_EOF ? 0 : end;
    }
    if (stream->receive.in_flight && stream->receive_form == RECEIVE_PROVIDED)
        return EVQ_EWOULDBLOCK;
    ssize_t received = recv(tcp->socket, space, len, MSG_DONTWAIT); /* the socket blocks */
    if (received < 0)
        return evq_error_from_errno(errno); /* EAGAIN -> EVQ_EWOULDBLOCK, EINTR -> EVQ_EINTR */
    *got = (size_t)received;
    return 0;
}

bool sys_tcp_receiving(const evq_tcp *tcp)
{
    const struct sys_stream *stream = tcp->sys;
    if (!stream->receive.in_flight)
        return false;
    switch (stream->receive_form) {
    case RECEIVE_INTO_BUFFER:
        return stream->receive.lent > 0; /* the free space is the kernel's */
    case RECEIVE_PROVIDED:
        return stream->parked_head == URING_NO_BUFFER && stream->receive_end == 0;
    default:
        return false; /* a POLL_ADD takes no data: recv() beside it is safe */
    }
}

/* ---- sending ---- */

/* ANCHOR: send */
/* One SENDMSG of the queue's first segments. The chunks are not copied:
 * the queue never moves queued bytes, and pops them only once the kernel
 * is done with them. The SQE is submitted at once - a write sends now,
 * wait or no wait - and if the kernel finished it during that enter (the
 * socket had room), its result is the send's, as send()'s would be:
 * stream.c pops what went, or sees the error. Otherwise the completion
 * comes to a later wait (send_completed), and until then the chunks are
 * the kernel's. */
int sys_socket_send(evq_tcp *tcp, struct write_segment *segments, size_t count, size_t *sent)
{
    struct sys_stream *stream = tcp->sys;
    size_t lent = 0;
    for (size_t i = 0; i < count; i++) {
        stream->send_iov[i].iov_base = (void *)segments[i].data;
        stream->send_iov[i].iov_len = segments[i].len;
        lent += segments[i].len;
    }
    memset(&stream->send_message, 0, sizeof stream->send_message);
    stream->send_message.msg_iov = stream->send_iov;
    stream->send_message.msg_iovlen = count;
    struct io_uring_sqe *sqe;
    int rc = uring_sqe(stream->poll, &sqe);
    if (rc != 0)
        return rc;
    /* MSG_NOSIGNAL: a vanished peer is -EPIPE in the completion, never a
     * SIGPIPE. */
    evq_uring_prep_sendmsg(sqe, tcp->socket, &stream->send_message, EVQ_SEND_FLAGS,
                           uring_tag(stream, URING_SEND));
    stream->send.lent = lent;
    uring_started(stream, &stream->send);
    uring_submit_now(stream->poll);
    *sent = 0; /* popped when the completion says how many went */
    int32_t res;
    if (!uring_reap_now(stream, URING_SEND, &res))
        return 0; /* in flight */
    stream->send.lent = 0;
    uring_counters(stream->poll)->inline_sends++;
    if (res >= 0) {
        if ((size_t)res < lent)
            uring_counters(stream->poll)->short_sends++;
        *sent = (size_t)res < lent ? (size_t)res : lent; /* short: the rest stays queued */
        return 0;
    }
    /* -EAGAIN: nothing taken, the rest waits for WRITABLE; EVQ_EPIPE,
     * EVQ_ECONNRESET: never a signal. */
    return evq_uring_error(res);
}
/* ANCHOR_END: send */

/* ANCHOR: send_done */
static void send_completed(struct sys_stream *stream, const struct io_uring_cqe *cqe)
{
    evq_tcp *tcp = stream->tcp;
    size_t lent = stream->send.lent;
    stream->send.lent = 0;
    /* Only what the kernel says it sent leaves the queue: a completion short
     * of what was asked (the socket filled up) leaves the rest at the
     * front, for the next SENDMSG. The wait then reports WRITABLE (no send
     * in flight): poll.c flushes the rest, and the FIN after it. */
    if (cqe->res >= 0 && (size_t)cqe->res < lent)
        uring_counters(stream->poll)->short_sends++;
    if (cqe->res > 0)
        write_queue_pop(&tcp->write_queue, (size_t)cqe->res < lent ? (size_t)cqe->res : lent);
    else if (cqe->res < 0 && cqe->res != -ECANCELED && cqe->res != -EAGAIN &&
             tcp->write_status == 0)
        stream_write_failed(tcp, evq_uring_error(cqe->res)); /* EVQ_ERR by the wait, then writes */
}
/* ANCHOR_END: send_done */

bool sys_tcp_sending(const evq_tcp *tcp)
{
    return tcp->sys->send.in_flight;
}

int sys_socket_shutdown(evq_tcp *tcp)
{
    /* A plain call: stream.c asks for it only once the write queue is empty,
     * so every SENDMSG before it has completed. */
    return shutdown(tcp->socket, SHUT_WR) != 0 ? evq_error_from_errno(errno) : 0;
}

size_t sys_tcp_kernel_lent(const evq_tcp *tcp)
{
    const struct sys_stream *stream = tcp->sys;
    return stream ? stream->receive.lent + stream->send.lent : 0;
}

/* ---- completions ---- */

void uring_completed(struct sys_stream *stream, enum uring_op_kind kind,
                     const struct io_uring_cqe *cqe)
{
    switch (kind) {
    case URING_RECEIVE:
        receive_completed(stream, cqe);
        break;
    case URING_SEND:
        send_completed(stream, cqe);
        break;
    case URING_ACCEPT:
        accept_completed(stream, cqe);
        break;
    case URING_CONNECT:
        /* Read by sys_connect_result; ignored once abandoned. */
        stream->connect_status = cqe->res == 0 ? 0 : evq_uring_error(cqe->res);
        break;
    case URING_CHECK:
        /* A POLL_ADD's events (a NOP's res is 0): a connection that died
         * under a stream with nothing in flight. Its reads must ask the
         * socket again, which says how it ended. */
        if (cqe->res > 0 && (cqe->res & (POLLERR | POLLHUP))) {
            stream->check_seen =
                (cqe->res & POLLERR ? EVQ_ERR : 0) | (cqe->res & POLLHUP ? EVQ_HUP : 0);
            stream->tcp->read_drained = false;
        }
        break;
    default:
        break;
    }
}

void uring_dropped(struct sys_poll *sys, enum uring_op_kind kind, const struct io_uring_cqe *cqe)
{
    /* A receive cancelled at close may have taken a buffer on its way out:
     * the ring must get it back, or it runs dry for every other stream. */
    uint16_t id;
    unsigned char *data;
    uint32_t len;
    evq_uring_pbuf *buffers = (cqe->flags & IORING_CQE_F_BUFFER) ? uring_buffers(sys) : NULL;
    if (kind == URING_RECEIVE && buffers &&
        evq_uring_pbuf_take(buffers, cqe, &id, &data, &len) == 0)
        evq_uring_pbuf_recycle(buffers, id);
    if (kind == URING_ACCEPT && cqe->res >= 0)
        evq_socket_close(cqe->res); /* accepted for a listener that is gone */
}

void uring_stream_release(struct sys_stream *stream)
{
    while (stream->accepted_count > 0) {
        evq_socket_close(stream->accepted[stream->accepted_head]);
        stream->accepted_head = (stream->accepted_head + 1) % stream->accepted_capacity;
        stream->accepted_count--;
    }
    struct uring_parked *parked = uring_parked_entries(stream->poll);
    while (stream->parked_head != URING_NO_BUFFER) {
        uint16_t id = stream->parked_head;
        stream->parked_head = parked[id].next;
        evq_uring_pbuf_recycle(uring_buffers(stream->poll), id);
    }
    stream->parked_tail = URING_NO_BUFFER;
    stream->receive_end = 0;
}

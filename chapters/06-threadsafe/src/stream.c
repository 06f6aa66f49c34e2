/* stream.c - the portable stream: limits and counters, making streams
 * (connect, listen, accept), the read buffer's fill and what a read, a peek
 * and a consume take from it, the write queue, its flush and the FIN after
 * it, the budget of a turn, and close. How a connect gets from a name to a
 * socket is connect.c's. The rules live here once; the backend only lends
 * small primitives (sys.h: one recv, one send, one shutdown). When the
 * caller hears of what, is poll.c's business.
 *
 * Every public function holds the stream's lock (poll.c, "locks"): the
 * stream's owner calls them while other threads wait on the queue, and a
 * waiter may be working on the same stream for a kernel edge. Each also
 * holds a reference while it runs, so that a close on another thread
 * cannot free the stream under it ("calls", below).
 */
#include "sys.h"

#include "deadline.h"
#include "resolver.h"

#include <stdlib.h>
#include <string.h>

/* ---- calls ---- */

/* ANCHOR: calls */
/* Who may call what on one stream, from which thread:
 *   - close, and the registration calls (poll.c), from any thread, at any
 *     time: each holds a reference while it runs, and the stream's memory
 *     goes with the last one - so a close on thread B while thread A is
 *     inside a call makes A's call finish (or return EVQ_ECLOSED), and the
 *     memory is freed when A has left;
 *   - the data calls (read, peek, consume, write, shutdown; accept on a
 *     listener) by one thread at a time - the owner, the thread that got
 *     the stream's event: a second thread's data call while one is in
 *     progress returns EVQ_EBUSY at once. Two readers would split one byte
 *     stream between them at random, and a peek's pointer would be freed
 *     under its reader: a code says so, where a lock would hide it.
 * A call that starts after evq_tcp_close has returned uses a freed handle,
 * as read() after close() does: nothing can make that safe. */
void stream_hold(evq_tcp *tcp)
{
    atomic_fetch_add_explicit(&tcp->refs, 1, memory_order_relaxed);
}

static void stream_free(evq_tcp *tcp)
{
    evq_mutex_destroy(&tcp->lock);
    free(tcp);
}

void stream_release(evq_tcp *tcp)
{
    /* acq_rel: whatever the others did to the stream happens before the
     * free, on whichever thread lets go last. */
    if (atomic_fetch_sub_explicit(&tcp->refs, 1, memory_order_acq_rel) == 1)
        stream_free(tcp);
}

/* ANCHOR_END: calls */

/* ANCHOR: data_call */
/* A data call is a reference of its own weight (STREAM_DATA_CALL) in the
 * same counter: one atomic add both keeps the memory and says whether
 * another data call is in progress - no second atomic on the path every
 * read and write takes. */
static int data_call_begin(evq_tcp *tcp)
{
    unsigned before = atomic_fetch_add_explicit(&tcp->refs, STREAM_DATA_CALL, memory_order_acquire);
    if (before >= STREAM_DATA_CALL) { /* another thread is inside a data call on this stream */
        atomic_fetch_sub_explicit(&tcp->refs, STREAM_DATA_CALL, memory_order_relaxed);
        return EVQ_EBUSY; /* that call and the caller's handle still hold it: never the last */
    }
    return 0;
}

static void data_call_end(evq_tcp *tcp)
{
    if (atomic_fetch_sub_explicit(&tcp->refs, STREAM_DATA_CALL, memory_order_acq_rel) ==
        STREAM_DATA_CALL)
        stream_free(tcp);
}
/* ANCHOR_END: data_call */

/* ---- limits and counters ---- */

/* ANCHOR: limits_default */
void evq_tcp_get_default_limits(evq_tcp_limits *out)
{
    if (!out)
        return;
    memset(out, 0, sizeof *out);
    out->read_initial = STREAM_READ_INITIAL;
    out->read_max = STREAM_READ_MAX;
    out->write_high = STREAM_WRITE_HIGH;
    out->write_low = STREAM_WRITE_LOW;
    out->turn_budget = STREAM_TURN_BUDGET;
}
/* ANCHOR_END: limits_default */

static bool limits_valid(const evq_tcp_limits *limits)
{
    return limits->read_initial > 0 && limits->read_max >= limits->read_initial &&
           limits->write_high > 0 && limits->write_low < limits->write_high &&
           limits->turn_budget > 0;
}

int evq_tcp_set_limits(evq_tcp *tcp, const evq_tcp_limits *limits)
{
    if (!tcp || !limits || !limits_valid(limits))
        return EVQ_EINVAL;
    stream_hold(tcp);
    evq_mutex_lock(&tcp->lock);
    tcp->limits = *limits;
    poll_stream_changed(tcp); /* a larger budget or read_max: more may be done now */
    evq_mutex_unlock(&tcp->lock);
    stream_release(tcp);
    return 0;
}

int evq_tcp_get_stats(const evq_tcp *tcp, evq_tcp_stats *out)
{
    if (!tcp || !out)
        return EVQ_EINVAL;
    memset(out, 0, sizeof *out);
    evq_tcp *locked = (evq_tcp *)tcp; /* the lock is not the caller's business */
    stream_hold(locked);
    evq_mutex_lock(&locked->lock);
    out->read_buffered = read_buffer_length(&tcp->read_buf);
    out->read_capacity = tcp->read_buf.capacity;
    out->read_capacity_peak = tcp->read_buf.capacity_peak;
    out->write_queued = tcp->write_queue.queued;
    out->write_queued_peak = tcp->write_queue.queued_peak;
    out->kernel_lent = sys_tcp_kernel_lent(tcp);
    out->receive_calls = tcp->receive_calls;
    out->send_calls = tcp->send_calls;
    out->kernel_events = tcp->kernel_events;
    evq_mutex_unlock(&locked->lock);
    stream_release(locked);
    return 0;
}

/* ---- making streams ---- */

/* A stream that is not yet on any queue, with the default limits. */
static evq_tcp *stream_new(void)
{
    evq_tcp *tcp = calloc(1, sizeof *tcp);
    if (!tcp)
        return NULL;
    if (evq_mutex_init(&tcp->lock) != 0) {
        free(tcp);
        return NULL;
    }
    atomic_init(&tcp->refs, 1); /* the caller's handle, until evq_tcp_close */
    tcp->socket = EVQ_INVALID_SOCKET;
    tcp->deadline_slot = DEADLINE_NONE;
    evq_tcp_get_default_limits(&tcp->limits);
    return tcp;
}

/* `socket` becomes `tcp`, a stream of `poll` (entered). On failure both
 * are freed. */
static int stream_open(evq_poll *poll, evq_tcp *tcp, evq_socket socket, evq_tcp **out)
{
    tcp->socket = socket;
    int rc = poll_add_stream(poll, tcp);
    if (rc != 0) {
        evq_socket_close(socket);
        stream_release(tcp);
        return rc;
    }
    *out = tcp;
    return 0;
}

/* A new stream for a queue that is still open: the caller is inside the
 * queue (poll_enter) until it calls poll_leave, whatever this returns. */
static int stream_for(evq_poll *poll, evq_tcp **tcp)
{
    int rc = poll_enter(poll);
    if (rc != 0)
        return rc;
    *tcp = stream_new();
    return *tcp ? 0 : EVQ_ENOMEM;
}

/* ANCHOR: connect */
/* The stream joins the queue with no socket yet; connect.c looks the name
 * up and starts connecting - now, for a numeric host or a cached name, or
 * when the pool's answer comes. Either way this returns at once. */
int evq_tcp_connect(evq_poll *poll, const char *host, uint16_t port, evq_tcp **out)
{
    if (out)
        *out = NULL;
    if (!poll || !host || !out || port == 0)
        return EVQ_EINVAL;
    evq_tcp *tcp = NULL;
    int rc = stream_for(poll, &tcp);
    if (rc == EVQ_ECLOSED)
        return rc;
    if (rc == 0 && (rc = poll_add_stream(poll, tcp)) != 0)
        stream_release(tcp);
    if (rc == 0) {
        evq_mutex_lock(&tcp->lock); /* a waiter may collect its lookup's answer at once */
        rc = connect_begin(tcp, host, port);
        evq_mutex_unlock(&tcp->lock);
        if (rc != 0) /* EVQ_EFULL: no lookup, no stream */
            evq_tcp_close(tcp);
        else
            *out = tcp;
    }
    poll_leave(poll);
    return rc;
}
/* ANCHOR_END: connect */

/* A listening socket on the first address of host:port that works, each
 * tried in turn. The name is resolved on this thread: see evq.h. */
static int listen_socket(evq_poll *poll, const char *host, uint16_t port, int backlog,
                         evq_socket *out)
{
    evq_address_list addresses = {0};
    /* The resolver is one thread's: waiters wait for a listen that resolves. */
    int rc = resolver_lookup_now(poll_lock_resolver(poll), host, port, &addresses);
    poll_unlock_resolver(poll);
    for (size_t i = 0; i < addresses.count; i++) { /* none if the lookup failed */
        if ((rc = sys_socket_listen(&addresses.items[i], backlog, out)) == 0)
            break;
    }
    evq_address_list_free(&addresses);
    return rc;
}

int evq_tcp_listen(evq_poll *poll, const char *host, uint16_t port, int backlog, evq_tcp **out)
{
    if (out)
        *out = NULL;
    if (!poll || !host || !out)
        return EVQ_EINVAL;
    evq_tcp *tcp = NULL;
    int rc = stream_for(poll, &tcp);
    if (rc == EVQ_ECLOSED)
        return rc;
    if (rc == 0) {
        tcp->listener = true;
        evq_socket socket = EVQ_INVALID_SOCKET;
        int backlog_or_max = backlog > 0 ? backlog : SOMAXCONN;
        if ((rc = listen_socket(poll, host, port, backlog_or_max, &socket)) != 0)
            stream_release(tcp);
        else
            rc = stream_open(poll, tcp, socket, out);
    }
    if (rc == 0) {
        evq_mutex_lock(&tcp->lock);
        rc = sys_listener_start(tcp);
        evq_mutex_unlock(&tcp->lock);
        if (rc != 0) {
            evq_tcp_close(tcp);
            *out = NULL;
        }
    }
    poll_leave(poll);
    return rc;
}

int evq_tcp_local_port(const evq_tcp *tcp, uint16_t *port)
{
    if (port)
        *port = 0;
    if (!tcp || !port)
        return EVQ_EINVAL;
    evq_tcp *locked = (evq_tcp *)tcp;
    stream_hold(locked);
    evq_mutex_lock(&locked->lock);
    int rc = tcp->socket == EVQ_INVALID_SOCKET ? EVQ_EBADF : evq_net_local_port(tcp->socket, port);
    evq_mutex_unlock(&locked->lock);
    stream_release(locked);
    return rc;
}

/* ANCHOR: accept_api */
/* One connection from the backlog, within the turn's share. The listener's
 * edge said connections came; only EWOULDBLOCK says none is left - until
 * then the listener counts as ready (accept_drained), and its caller, if it
 * stops early, hears READABLE again when it arms it. */
static int accept_one(evq_tcp *listener, evq_socket *socket)
{
    if (listener->turn_accepted >= STREAM_ACCEPTS_PER_TURN)
        return EVQ_EWOULDBLOCK; /* this turn's share: the next turn takes the rest */
    int rc = sys_socket_accept(listener, socket);
    if (rc == 0)
        listener->turn_accepted++;
    else if (rc == EVQ_EWOULDBLOCK)
        listener->accept_drained = true; /* the next connection is a new edge */
    else if (rc == EVQ_EMFILE || rc == EVQ_ENOBUFS)
        poll_pause_accepting(listener); /* the connection stays in the backlog: poll.c says why */
    return rc;
}

int evq_tcp_accept(evq_tcp *listener, evq_tcp **out)
{
    if (out)
        *out = NULL;
    if (!listener || !out || !listener->listener)
        return EVQ_EINVAL;
    int rc = data_call_begin(listener);
    if (rc != 0)
        return rc;
    evq_mutex_lock(&listener->lock);
    evq_poll *poll = listener->poll;
    evq_tcp *tcp = NULL;
    /* Inside the queue before the listener's lock goes: the new stream
     * joins it after. */
    rc = !poll || listener->closed ? EVQ_ECLOSED : poll_enter(poll);
    bool entered = rc == 0;
    if (rc == 0 && !(tcp = stream_new()))
        rc = EVQ_ENOMEM;
    evq_socket socket = EVQ_INVALID_SOCKET;
    if (rc == 0 && (rc = accept_one(listener, &socket)) == 0) {
        /* The listener's settings pass on: a server sets its limits (and a
         * test its hook) once, on the listener. */
        tcp->limits = listener->limits;
        tcp->io_hook = listener->io_hook;
        tcp->io_hook_context = listener->io_hook_context;
    }
    poll_stream_changed(listener);
    evq_mutex_unlock(&listener->lock);
    if (rc == 0)
        rc = stream_open(poll, tcp, socket, out);
    else if (tcp)
        stream_release(tcp);
    if (entered)
        poll_leave(poll);
    data_call_end(listener);
    return rc;
}
/* ANCHOR_END: accept_api */

/* ---- reading ---- */

/* ANCHOR: eintr */
/* One recv(), retried while a signal interrupts it: EINTR means "no byte
 * moved, try again", never an error to report. Every attempt counts in the
 * stream's stats (receive_calls), so a test can see the retries. The test
 * hook stands for the kernel here: it may shorten the call or fail it;
 * *len comes back as what the kernel was asked for. */
static int receive(evq_tcp *tcp, char *space, size_t *len, size_t *got)
{
    for (;;) {
        tcp->receive_calls++;
        int rc = sys_io_hook(tcp, EVQ_IO_RECEIVE, len);
        if (rc == 0)
            rc = sys_socket_receive(tcp, space, *len, got); /* EAGAIN -> EVQ_EWOULDBLOCK */
        if (rc != EVQ_EINTR)
            return rc;
    }
}
/* ANCHOR_END: eintr */

/* Receive into the buffer until the socket is empty: only then will the
 * kernel's next edge be about new data. Empty is EWOULDBLOCK, or a receive
 * that got fewer bytes than it asked for - epoll(7): "if you call read(2)
 * by asking to read a certain amount of data and read(2) returns a lower
 * number of bytes, you can be sure of having exhausted the read I/O space"
 * (for a stream socket; bytes that come after it are a new edge) - unless
 * the kernel has said the peer's FIN came: then read on, to the EOF, which
 * no further edge would announce. A fill also stops when the buffer is full
 * at read_max (the reader must consume first) and when the turn's budget
 * is spent (the other streams' turn): then the socket may hold more, and
 * read_drained stays false, so the queue comes back to it by itself.
 * Returns 0, or the end met after the bytes it added: EVQ_EOF or the
 * connection's error. The socket stays non-blocking throughout (minimio,
 * cfsamson's teaching queue, switched it back to blocking to read, and a
 * spurious wake-up then hung the whole loop). */
/* ANCHOR: fill */
static int fill_from_socket(evq_tcp *tcp)
{
    for (;;) {
        size_t budget = tcp->limits.turn_budget;
        if (tcp->turn_received >= budget) {
            tcp->read_drained = false; /* more may wait: the next turn reads it */
            return 0;
        }
        char *space;
        size_t len;
        int rc = read_buffer_reserve(&tcp->read_buf, tcp->limits.read_initial, tcp->limits.read_max,
                                     &space, &len);
        if (rc != 0)
            return rc;
        if (len == 0) {
            tcp->read_drained = false; /* full: more may wait in the socket */
            return 0;
        }
        if (len > budget - tcp->turn_received)
            len = budget - tcp->turn_received;
        size_t got = 0;
        if ((rc = receive(tcp, space, &len, &got)) == EVQ_EWOULDBLOCK) {
            /* Empty now: no recv() again until the kernel says otherwise;
             * an empty buffer shrinks back (buffer.h, "shrink when idle"). */
            tcp->read_drained = true;
            read_buffer_shrink(&tcp->read_buf, tcp->limits.read_initial);
            return 0;
        }
        if (rc != 0)
            return rc; /* a reset: after the bytes already buffered */
        if (got == 0)  /* the peer shut down writing; we may still send */
            return tcp->event_error != 0 ? tcp->event_error : EVQ_EOF;
        read_buffer_commit(&tcp->read_buf, got);
        tcp->turn_received += got;
        if (got < len && !tcp->peer_closed) {
            tcp->read_drained = true; /* a short read: empty (see above) */
            return 0;
        }
    }
}
/* ANCHOR_END: fill */

/* Fill before a read or a peek, or in the queue's turn. EOF or an error met
 * there is kept, to be reported after the bytes before it; a failed
 * allocation is only this call's. */
static int fill(evq_tcp *tcp)
{
    if (tcp->read_status != 0)
        return 0; /* the read side has ended: nothing more will come */
    /* The socket was found empty and the kernel has not said otherwise
     * since: a recv() now could only say EAGAIN again. Bytes that came
     * since are not lost: their edge clears read_drained (poll.c,
     * remember_edges), whoever holds the stream at that moment. */
    if (tcp->read_drained)
        return 0;
    /* Not connected yet: nothing can have come. */
    if (tcp->connect_phase != CONNECT_DONE)
        return 0;
    /* IOCP is receiving into the buffer: its completion brings the bytes,
     * and until then the kernel owns the free space. */
    if (sys_tcp_receiving(tcp))
        return 0;
    int rc = fill_from_socket(tcp);
    if (rc == EVQ_ENOMEM)
        return rc;
    tcp->read_status = rc;
    return 0;
}

void stream_fill(evq_tcp *tcp)
{
    fill(tcp); /* out of memory: the reader's own fill says it */
}

void stream_receive_completed(evq_tcp *tcp, int status, bool emptied)
{
    tcp->read_drained = emptied && status == 0; /* else the kernel says: something came */
    if (tcp->read_status == 0 && status != 0 && status != EVQ_ENOMEM)
        tcp->read_status = status; /* out of memory: the next fill tries again */
}

/* Something the caller has not seen is here without the kernel: bytes past
 * read_buf.seen, or the end (EOF or an error, which stays: the kernel, too,
 * reports a socket at EOF readable every time). Bytes it has seen are not:
 * a parser that peeked at half a request and re-armed must sleep until more
 * comes, not be woken at once for ever. The exception: a buffer full at
 * read_max cannot take new bytes, so waiting for them would never end. */
uint32_t stream_read_readiness(const evq_tcp *tcp)
{
    if (tcp->read_status == EVQ_EOF)
        return EVQ_READABLE | EVQ_HUP; /* a socket at EOF stays HUP */
    if (tcp->read_status != 0)
        return EVQ_READABLE | EVQ_HUP | EVQ_ERR;
    if (read_buffer_unseen(&tcp->read_buf) > 0 ||
        read_buffer_full(&tcp->read_buf, tcp->limits.read_max))
        return EVQ_READABLE;
    return 0;
}

/* The checks every read and write shares. */
static int check_io(const evq_tcp *tcp)
{
    if (tcp->listener)
        return EVQ_EINVAL; /* a listener accepts; it has no bytes */
    if (!tcp->poll || tcp->closed)
        return EVQ_ECLOSED; /* its queue was closed; or it was, on another thread, meanwhile */
    return 0;
}

/* What a read says when the buffer is empty. */
static int empty_status(const evq_tcp *tcp)
{
    return tcp->read_status != 0 ? tcp->read_status : EVQ_EWOULDBLOCK;
}

/* Drop n bytes. An emptied buffer is freed if no more data can come, and
 * shrinks back to read_initial only if the socket was found empty too
 * (shrink when idle: a streaming reader, whose fills end with the buffer
 * full, keeps its grown buffer instead of growing it again every time). */
static void consume(evq_tcp *tcp, size_t n)
{
    read_buffer_consume(&tcp->read_buf, n);
    if (n == 0 || read_buffer_length(&tcp->read_buf) > 0)
        return; /* n == 0: touch nothing (IOCP may be receiving into it) */
    if (tcp->read_status != 0)
        read_buffer_release(&tcp->read_buf); /* emptied for good: no memory for it at all */
    else if (tcp->read_drained)
        read_buffer_shrink(&tcp->read_buf, tcp->limits.read_initial);
}

static int read_locked(evq_tcp *tcp, void *buf, size_t len, size_t *n)
{
    int rc = check_io(tcp);
    if (rc != 0)
        return rc;
    /* Only go to the kernel when the buffer cannot satisfy the read: a
     * caller reading in small pieces costs no system call per piece. */
    if (read_buffer_length(&tcp->read_buf) < len && (rc = fill(tcp)) != 0)
        return rc;
    size_t have = read_buffer_length(&tcp->read_buf);
    if (have == 0)
        return empty_status(tcp);
    size_t take = have < len ? have : len;
    memcpy(buf, read_buffer_data(&tcp->read_buf), take);
    consume(tcp, take);
    *n = take;
    return 0;
}

int evq_tcp_read(evq_tcp *tcp, void *buf, size_t len, size_t *n)
{
    if (n)
        *n = 0;
    /* len 0 is refused: a read of nothing could not tell "no data" from EOF. */
    if (!tcp || !buf || !n || len == 0)
        return EVQ_EINVAL;
    int rc = data_call_begin(tcp);
    if (rc != 0)
        return rc;
    evq_mutex_lock(&tcp->lock);
    rc = read_locked(tcp, buf, len, n);
    evq_mutex_unlock(&tcp->lock);
    data_call_end(tcp);
    return rc;
}

static int peek_locked(evq_tcp *tcp, const void **data, size_t *len)
{
    int rc = check_io(tcp);
    if (rc != 0 || (rc = fill(tcp)) != 0)
        return rc;
    size_t have = read_buffer_length(&tcp->read_buf);
    if (have == 0)
        return empty_status(tcp);
    *data = read_buffer_data(&tcp->read_buf);
    *len = have;
    read_buffer_mark_seen(&tcp->read_buf); /* READABLE again only for more than this */
    return 0;
}

int evq_tcp_peek(evq_tcp *tcp, const void **data, size_t *len)
{
    if (data)
        *data = NULL;
    if (len)
        *len = 0;
    if (!tcp || !data || !len)
        return EVQ_EINVAL;
    int rc = data_call_begin(tcp);
    if (rc != 0)
        return rc;
    evq_mutex_lock(&tcp->lock);
    rc = peek_locked(tcp, data, len);
    evq_mutex_unlock(&tcp->lock);
    data_call_end(tcp);
    return rc;
}

int evq_tcp_consume(evq_tcp *tcp, size_t n)
{
    if (!tcp)
        return EVQ_EINVAL;
    int rc = data_call_begin(tcp);
    if (rc != 0)
        return rc;
    evq_mutex_lock(&tcp->lock);
    rc = check_io(tcp);
    if (rc == 0 && n > read_buffer_length(&tcp->read_buf))
        rc = EVQ_EINVAL; /* more than peek showed */
    if (rc == 0)
        consume(tcp, n);
    evq_mutex_unlock(&tcp->lock);
    data_call_end(tcp);
    return rc;
}

/* ---- writing ---- */

/* One send of the queue's first segments, at most `most` bytes, retried on
 * EINTR and counted as a receive is. The hook may shorten it: the segments
 * are cut to the length it allows; *asked is what the kernel was offered.
 * sendmsg() and WSASend gather them, so a queue of many small writes costs
 * one system call, not one each. */
static int send_some(evq_tcp *tcp, size_t most, size_t *sent, size_t *asked)
{
    for (;;) {
        struct write_segment segments[SYS_SEND_SEGMENTS];
        size_t count = write_queue_segments(&tcp->write_queue, segments, SYS_SEND_SEGMENTS);
        size_t len = 0;
        for (size_t i = 0; i < count; i++)
            len += segments[i].len;
        if (len > most)
            len = most;
        tcp->send_calls++;
        int rc = sys_io_hook(tcp, EVQ_IO_SEND, &len);
        if (rc == 0) {
            size_t used = 0;
            for (size_t left = len; used < count && left > 0; used++) {
                if (segments[used].len > left)
                    segments[used].len = left;
                left -= segments[used].len;
            }
            *asked = len;
            rc = sys_socket_send(tcp, segments, used, sent);
        }
        if (rc != EVQ_EINTR)
            return rc;
    }
}

bool stream_output_pending(const evq_tcp *tcp)
{
    return tcp->write_status == 0 && (!write_queue_empty(&tcp->write_queue) ||
                                      (tcp->shutdown_requested && !tcp->shutdown_done));
}

void stream_write_failed(evq_tcp *tcp, int error)
{
    tcp->write_status = error;
    write_queue_clear(&tcp->write_queue);
    /* The connection failed: the next read must ask the socket again, which
     * hands out the bytes that came before the failure, then the end. A
     * readiness backend's error edge would clear this too, but IOCP has no
     * receive to complete on a stream that only writes. */
    tcp->read_drained = false;
}

/* ANCHOR: flush_fin */
/* Send what is queued, within the turn's budget, until the socket is full:
 * a send that took fewer bytes than it was offered (epoll(7)'s rule again),
 * or EWOULDBLOCK. Then the next WRITABLE edge says when it has room
 * (write_blocked). A flush stopped by the budget leaves the socket with
 * room: the queue comes back to it by itself, in the stream's next turn. */
int stream_flush(evq_tcp *tcp)
{
    if (tcp->write_status != 0)
        return tcp->write_status;
    if (tcp->connect_phase != CONNECT_DONE)
        return 0; /* queued until connected: the connect's WRITABLE flushes it */
    int rc = 0;
    /* IOCP: with a send in flight, its completion must come back before
     * the next one starts (one OVERLAPPED); that completion is the edge. */
    while (rc == 0 && !write_queue_empty(&tcp->write_queue) && !sys_tcp_sending(tcp) &&
           tcp->turn_sent < tcp->limits.turn_budget) {
        size_t sent = 0, asked = 0;
        if ((rc = send_some(tcp, tcp->limits.turn_budget - tcp->turn_sent, &sent, &asked)) != 0)
            break;
        write_queue_pop(&tcp->write_queue, sent);
        tcp->turn_sent += sent;
        if (sent < asked && !sys_tcp_sending(tcp))
            tcp->write_blocked = true; /* short: the socket is full */
        if (tcp->write_blocked)
            break;
    }
    if (rc == EVQ_EWOULDBLOCK) {
        tcp->write_blocked = true; /* the socket is full: the rest waits for its edge */
        rc = 0;
    }
    if (rc == 0 && write_queue_empty(&tcp->write_queue) && tcp->shutdown_requested &&
        !tcp->shutdown_done) {
        /* Everything is sent (IOCP: the kernel has taken it all): now the
         * FIN. The read side stays open. */
        tcp->shutdown_done = true;
        rc = sys_socket_shutdown(tcp);
    }
    if (rc != 0)
        stream_write_failed(tcp, rc); /* EPIPE, ECONNRESET: the peer is gone */
    return rc;
}
/* ANCHOR_END: flush_fin */

/* ANCHOR: write */
static int write_locked(evq_tcp *tcp, const void *buf, size_t len, size_t *n)
{
    int rc = check_io(tcp);
    if (rc != 0)
        return rc;
    if (tcp->write_status != 0) {
        tcp->write_error_told = true; /* told here: no event for it as well */
        return tcp->write_status;
    }
    if (tcp->shutdown_requested || len == 0)
        return tcp->shutdown_requested ? EVQ_EPIPE : 0; /* EPIPE: as after SHUT_WR */
    /* Take what fits under write_high: nothing fits is the backpressure. */
    bool was_empty = write_queue_empty(&tcp->write_queue);
    size_t taken = 0;
    if ((rc = write_queue_push(&tcp->write_queue, buf, len, tcp->limits.write_high, &taken)) != 0)
        return rc;
    if (taken == 0)
        return EVQ_EWOULDBLOCK;
    /* Send now what the kernel takes. If bytes were queued already, the
     * kernel was full (or a send is in flight, or the turn's budget is
     * spent): the queue flushes them itself, and asking now would only cost
     * a call to hear EAGAIN. */
    if (was_empty && !tcp->write_blocked && (rc = stream_flush(tcp)) != 0) {
        tcp->write_error_told = true;
        return rc;
    }
    poll_stream_changed(tcp); /* a flush the budget stopped: the queue's next turn */
    *n = taken;
    return 0;
}

int evq_tcp_write(evq_tcp *tcp, const void *buf, size_t len, size_t *n)
{
    if (n)
        *n = 0;
    if (!tcp || (!buf && len > 0) || !n)
        return EVQ_EINVAL;
    int rc = data_call_begin(tcp);
    if (rc != 0)
        return rc;
    evq_mutex_lock(&tcp->lock);
    rc = write_locked(tcp, buf, len, n);
    evq_mutex_unlock(&tcp->lock);
    data_call_end(tcp);
    return rc;
}
/* ANCHOR_END: write */

size_t evq_tcp_queued(const evq_tcp *tcp)
{
    if (!tcp)
        return 0;
    evq_tcp *locked = (evq_tcp *)tcp;
    stream_hold(locked);
    evq_mutex_lock(&locked->lock);
    size_t queued = tcp->write_queue.queued;
    evq_mutex_unlock(&locked->lock);
    stream_release(locked);
    return queued;
}

int evq_tcp_shutdown(evq_tcp *tcp)
{
    if (!tcp)
        return EVQ_EINVAL;
    int rc = data_call_begin(tcp);
    if (rc != 0)
        return rc;
    evq_mutex_lock(&tcp->lock);
    rc = check_io(tcp);
    if (rc == 0 && tcp->write_status != 0)
        rc = tcp->write_status;
    if (rc == 0 && !tcp->shutdown_requested) { /* twice is harmless */
        tcp->shutdown_requested = true;
        /* With bytes queued, the flush that empties the queue sends the FIN. */
        if (write_queue_empty(&tcp->write_queue))
            rc = stream_flush(tcp);
    }
    evq_mutex_unlock(&tcp->lock);
    data_call_end(tcp);
    return rc;
}

/* ANCHOR: tcp_close */
void evq_tcp_close(evq_tcp *tcp)
{
    if (!tcp)
        return;
    stream_hold(tcp); /* a close on another thread at the same moment finds it closed */
    evq_mutex_lock(&tcp->lock);
    bool first = !tcp->closed;
    if (first) {
        poll_close_stream(tcp); /* out of the kernel and the key table, then the socket closed */
        evq_address_list_free(&tcp->addresses);
        read_buffer_free(&tcp->read_buf);
        write_queue_clear(&tcp->write_queue); /* unsent bytes are dropped, as evq.h says */
    }
    evq_mutex_unlock(&tcp->lock);
    /* A waiter may still hold it - an event whose key it looked up a moment
     * ago, a place on the ready list - and another thread may be inside a
     * call on it: each finds it closed, and the memory goes with the last
     * reference. */
    if (first)
        stream_release(tcp); /* the caller's handle */
    stream_release(tcp);
}
/* ANCHOR_END: tcp_close */

/* ---- the test hook (evq_testing.h) ---- */

void evq_tcp_set_io_hook(evq_tcp *tcp, evq_io_hook hook, void *context)
{
    if (!tcp)
        return;
    stream_hold(tcp);
    evq_mutex_lock(&tcp->lock);
    tcp->io_hook = hook;
    tcp->io_hook_context = context;
    evq_mutex_unlock(&tcp->lock);
    stream_release(tcp);
}

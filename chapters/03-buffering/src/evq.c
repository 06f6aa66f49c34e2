/* evq.c - the portable half of the queue: argument checks, the book of
 * registrations, the wait loop (deadline, interruptions, shutdown), the list
 * of streams a queue must let go of when it is closed, and, since chapter 3,
 * the streams' buffers: what the kernel is armed for, the write queue's
 * flush when the kernel says writable, backpressure, and what the caller is
 * told. It never mentions an operating system; the backend behind sys.h
 * does.
 */
#include "sys.h"
#include "evq_testing.h"

#include "evq_clock.h"
#include "evq_log.h"
#include "evq_thread.h"

#include <stdlib.h>
#include <string.h>

struct evq_poll {
    struct sys_poll *sys;
    evq_tcp *streams; /* every stream made on this queue and not yet closed */
    struct sys_event kernel_events[SYS_MAX_EVENTS]; /* one kernel wait's findings */
    evq_tcp *ready_head; /* armed READABLE with unseen bytes already buffered: see sys.h */
    evq_clock clock;
    evq_wait_hook wait_hook;
    void *wait_hook_context;
    /* The only state another thread touches (shutdown and close): */
    evq_mutex lock;
    evq_cond waiter_left;
    bool closed;
    bool waiting; /* a thread is inside evq_poll_wait */
};

const char *evq_backend(void)
{
    return EVQ_BACKEND_NAME;
}

static bool interests_valid(unsigned interests)
{
    return interests != 0 && (interests & ~(unsigned)(EVQ_READABLE | EVQ_WRITABLE)) == 0;
}

static bool poll_is_closed(evq_poll *poll)
{
    evq_mutex_lock(&poll->lock);
    bool closed = poll->closed;
    evq_mutex_unlock(&poll->lock);
    return closed;
}

int evq_poll_open(evq_poll **out)
{
    if (!out)
        return EVQ_EINVAL;
    *out = NULL;
    evq_poll *poll = calloc(1, sizeof *poll);
    if (!poll)
        return EVQ_ENOMEM;
    int rc = evq_mutex_init(&poll->lock);
    if (rc != 0) {
        free(poll);
        return rc;
    }
    if ((rc = evq_cond_init(&poll->waiter_left)) != 0) {
        evq_mutex_destroy(&poll->lock);
        free(poll);
        return rc;
    }
    if ((rc = sys_poll_open(&poll->sys)) != 0) {
        evq_cond_destroy(&poll->waiter_left);
        evq_mutex_destroy(&poll->lock);
        free(poll);
        return rc;
    }
    poll->clock = evq_clock_system();
    *out = poll;
    return 0;
}

static size_t deliver(evq_poll *poll, size_t got, evq_event *events);
static size_t deliver_buffered(evq_poll *poll, evq_event *events, size_t capacity);

/* One kernel wait, or what the test hook makes of it; then what it found,
 * turned into the caller's events (*n may be 0 when every kernel event was
 * the library's own business, such as a flush). */
static int kernel_wait(evq_poll *poll, evq_event *events, size_t capacity, int timeout_ms,
                       size_t *n, bool *woken)
{
    *n = 0;
    *woken = false;
    /* A stream is ready in our own buffer: look at the kernel, do not sleep. */
    if (poll->ready_head)
        timeout_ms = 0;
    if (poll->wait_hook) {
        int rc = poll->wait_hook(poll->wait_hook_context, &timeout_ms);
        if (rc != 0)
            return rc;
    }
    /* One kernel event gives at most one caller event, so asking for no
     * more than `capacity` keeps the caller's array from overflowing. */
    size_t room = capacity < SYS_MAX_EVENTS ? capacity : SYS_MAX_EVENTS;
    size_t got = 0;
    int rc = sys_poll_wait(poll->sys, poll->kernel_events, room, timeout_ms, &got, woken);
    if (rc == 0) {
        *n = deliver(poll, got, events);
        *n += deliver_buffered(poll, events + *n, capacity - *n);
    }
    return rc;
}

/* ANCHOR: wait_loop */
/* The deadline is fixed once, on the monotonic clock. After an interruption
 * (EINTR; an APC on Windows) the kernel is asked again for the time that is
 * LEFT: retrying with the whole timeout would let a steady stream of signals
 * keep the wait from ever timing out. A kernel wait that returns early with
 * nothing for the caller (a flush of a write queue; IOCP dequeues
 * completions that are not events) goes back to sleep for the rest of the
 * time, too. */
static int wait_until_deadline(evq_poll *poll, evq_event *events, size_t capacity, int timeout_ms,
                               size_t *n)
{
    uint64_t deadline = 0;
    if (timeout_ms > 0)
        deadline = evq_sat_add(evq_clock_read(&poll->clock), evq_ms_to_ns((uint64_t)timeout_ms));
    int remaining = timeout_ms;
    for (;;) {
        bool woken = false;
        int rc = kernel_wait(poll, events, capacity, remaining, n, &woken);
        if (poll_is_closed(poll))
            return EVQ_ECLOSED; /* shut down while we slept */
        if (rc != 0 && rc != EVQ_EINTR)
            return rc;
        if (rc == 0 && (*n > 0 || woken))
            return 0;
        if (timeout_ms < 0)
            continue; /* no deadline: wait again, for ever */
        remaining = evq_remaining_ms(deadline, evq_clock_read(&poll->clock));
        /* Time is up. After an interruption, look once more (timeout 0), so
         * that a signal never hides events that were already there. */
        if (remaining == 0 && rc != EVQ_EINTR)
            return 0;
    }
}
/* ANCHOR_END: wait_loop */

int evq_poll_wait(evq_poll *poll, evq_event *events, size_t capacity, int timeout_ms, size_t *n)
{
    if (n)
        *n = 0;
    if (!poll || !events || !n || capacity == 0 || timeout_ms < -1)
        return EVQ_EINVAL;

    evq_mutex_lock(&poll->lock);
    int rc = poll->closed ? EVQ_ECLOSED : poll->waiting ? EVQ_EBUSY : 0;
    if (rc == 0)
        poll->waiting = true;
    evq_mutex_unlock(&poll->lock);
    if (rc != 0)
        return rc;

    rc = wait_until_deadline(poll, events, capacity, timeout_ms, n);
    if (rc != 0)
        *n = 0;

    /* Once `waiting` is false and the lock released, evq_poll_close may free
     * the queue: touch nothing of it after this block. */
    evq_mutex_lock(&poll->lock);
    poll->waiting = false;
    evq_cond_broadcast(&poll->waiter_left);
    evq_mutex_unlock(&poll->lock);
    return rc;
}

int evq_poll_wake(evq_poll *poll)
{
    if (!poll)
        return EVQ_EINVAL;
    if (poll_is_closed(poll))
        return EVQ_ECLOSED;
    return sys_poll_wake(poll->sys);
}

int evq_poll_shutdown(evq_poll *poll)
{
    if (!poll)
        return EVQ_EINVAL;
    evq_mutex_lock(&poll->lock);
    bool was_closed = poll->closed;
    poll->closed = true;
    /* The waker stays signalled until a wait consumes it, so a thread that
     * is about to block (past its check of `closed`, not yet in the kernel)
     * returns at once too. */
    int rc = !was_closed && poll->waiting ? sys_poll_wake(poll->sys) : 0;
    evq_mutex_unlock(&poll->lock);
    return rc;
}

/* ANCHOR: close */
void evq_poll_close(evq_poll *poll)
{
    if (!poll)
        return;
    evq_poll_shutdown(poll);
    /* A thread blocked in evq_poll_wait is woken by the shutdown and leaves
     * with EVQ_ECLOSED; free nothing until it has. */
    evq_mutex_lock(&poll->lock);
    while (poll->waiting)
        evq_cond_wait(&poll->waiter_left, &poll->lock);
    evq_mutex_unlock(&poll->lock);

    /* The streams belong to the caller, who closes them later: cut them
     * loose so that they never reach for this memory again. */
    poll->ready_head = NULL;
    while (poll->streams) {
        evq_tcp *tcp = poll->streams;
        tcp->on_ready_list = false;
        tcp->ready_prev = tcp->ready_next = NULL;
        sys_deregister(poll->sys, tcp); /* armed by the caller, or for its write queue */
        sys_tcp_detach(tcp);
        tcp->registered = false;
        tcp->caller_armed = tcp->kernel_armed = 0;
        tcp->poll = NULL;
        poll->streams = tcp->next;
        tcp->prev = tcp->next = NULL;
    }
    sys_poll_close(poll->sys); /* IOCP: waits for cancelled I/O to come back */
    evq_cond_destroy(&poll->waiter_left);
    evq_mutex_destroy(&poll->lock);
    free(poll);
}
/* ANCHOR_END: close */

/* ---- what the kernel is armed for, and what the caller hears ---- */

/* Something the caller has not seen is here without the kernel: bytes past
 * read_buf.seen, or the end (EOF or an error, which stays: the kernel, too,
 * reports a socket at EOF readable every time). Bytes it has seen are not:
 * a parser that peeked at half a request and re-armed must sleep until more
 * comes, not be woken at once for ever. The exception: a buffer full at
 * read_max cannot take new bytes, so waiting for them would never end. */
static bool read_is_ready(const evq_tcp *tcp)
{
    return read_buffer_unseen(&tcp->read_buf) > 0 || tcp->read_status != 0 ||
           read_buffer_full(&tcp->read_buf, tcp->limits.read_max);
}

static void ready_list_add(evq_tcp *tcp)
{
    if (tcp->on_ready_list)
        return;
    tcp->on_ready_list = true;
    tcp->ready_prev = NULL;
    tcp->ready_next = tcp->poll->ready_head;
    if (tcp->ready_next)
        tcp->ready_next->ready_prev = tcp;
    tcp->poll->ready_head = tcp;
}

static void ready_list_remove(evq_tcp *tcp)
{
    if (!tcp->on_ready_list)
        return;
    if (tcp->ready_prev)
        tcp->ready_prev->ready_next = tcp->ready_next;
    else
        tcp->poll->ready_head = tcp->ready_next;
    if (tcp->ready_next)
        tcp->ready_next->ready_prev = tcp->ready_prev;
    tcp->ready_prev = tcp->ready_next = NULL;
    tcp->on_ready_list = false;
}

/* ANCHOR: interest */
/* The kernel watches for what the caller armed, plus WRITABLE while bytes
 * are queued - whether or not the caller registered the stream at all:
 * the queue must drain by itself. */
static unsigned kernel_interests(const evq_tcp *tcp)
{
    unsigned wanted = tcp->caller_armed;
    if (!write_queue_empty(&tcp->write_queue))
        wanted |= EVQ_WRITABLE;
    return wanted;
}

/* Bring the kernel in line, with a system call only when something changed.
 * Bytes already in the read buffer are invisible to the kernel: a stream
 * armed READABLE with some the caller has not seen goes on the ready list,
 * which the wait reports without another receive. */
static int update_kernel(evq_tcp *tcp)
{
    if ((tcp->caller_armed & EVQ_READABLE) && read_is_ready(tcp))
        ready_list_add(tcp);
    unsigned wanted = kernel_interests(tcp);
    if (wanted == tcp->kernel_armed)
        return 0;
    int rc = sys_arm(tcp->poll->sys, tcp, wanted);
    /* After a failure the kernel's arming is unknown: call it nothing, so
     * that the next update tries again (an extra kernel event is harmless:
     * deliver() tells the caller only what it armed). */
    tcp->kernel_armed = rc == 0 ? wanted : 0;
    return rc;
}
/* ANCHOR_END: interest */

/* A send failed: every later write returns the error, and the bytes still
 * queued can never be delivered, so their memory goes now. */
static void fail_writes(evq_tcp *tcp, int rc)
{
    tcp->write_status = rc;
    write_queue_clear(&tcp->write_queue);
}

/* What the caller is told about a kernel event: only what it armed, and
 * WRITABLE only once the queue has drained to write_low (backpressure). A
 * send that failed in the background is told once, as EVQ_ERR. */
static uint32_t caller_readiness(evq_tcp *tcp, uint32_t kernel_ready)
{
    if (tcp->caller_armed == 0)
        return 0;
    uint32_t ready = kernel_ready & tcp->caller_armed;
    if (tcp->write_queue.queued > tcp->limits.write_low)
        ready &= ~(uint32_t)EVQ_WRITABLE;
    if (tcp->write_status != 0 && !tcp->write_error_told) {
        ready |= EVQ_ERR | (tcp->caller_armed & EVQ_WRITABLE);
        tcp->write_error_told = true;
    }
    if (ready != 0)
        ready |= kernel_ready & (EVQ_ERR | EVQ_HUP);
    return ready;
}

/* ANCHOR: flush */
/* Each kernel event has disarmed its stream (one-shot). Send what is queued
 * if the socket has room (on an error too: the send returns it). Tell the
 * caller what concerns it, using up its arming; then re-arm the kernel for
 * what is still wanted - the caller's arming untouched if the event was
 * only the queue's. */
static size_t deliver(evq_poll *poll, size_t got, evq_event *events)
{
    size_t out = 0;
    for (size_t i = 0; i < got; i++) {
        evq_tcp *tcp = poll->kernel_events[i].tcp;
        uint32_t kernel_ready = poll->kernel_events[i].ready;
        tcp->kernel_armed = 0;
        if ((kernel_ready & (EVQ_WRITABLE | EVQ_ERR | EVQ_HUP)) &&
            !write_queue_empty(&tcp->write_queue)) {
            int rc = sys_tcp_flush(tcp);
            if (rc != 0)
                fail_writes(tcp, rc);
        }
        uint32_t ready = caller_readiness(tcp, kernel_ready);
        if (ready != 0) {
            tcp->caller_armed = 0;
            ready_list_remove(tcp);
        }
        /* A failed re-arm would leave the stream silent: tell the caller,
         * whose evq_reregister tries again and returns the code. */
        if (update_kernel(tcp) != 0 && ready == 0 && tcp->caller_armed != 0) {
            ready = EVQ_ERR | tcp->caller_armed;
            tcp->caller_armed = 0;
            ready_list_remove(tcp);
        }
        if (ready != 0) {
            events[out].token = tcp->token;
            events[out].ready = ready;
            out++;
        }
    }
    return out;
}
/* ANCHOR_END: flush */

/* Streams armed READABLE with unseen bytes already buffered, as many as
 * there is room for; the rest stay on the list for the next wait. */
static size_t deliver_buffered(evq_poll *poll, evq_event *events, size_t capacity)
{
    size_t out = 0;
    while (poll->ready_head && out < capacity) {
        evq_tcp *tcp = poll->ready_head;
        ready_list_remove(tcp);
        if (!(tcp->caller_armed & EVQ_READABLE) || !read_is_ready(tcp))
            continue; /* read or peeked at, or disarmed, since it was put there */
        events[out].token = tcp->token;
        /* The end already found by a fill says so again, with the flags
         * the kernel gave it the first time (a socket at EOF stays HUP). */
        events[out].ready = EVQ_READABLE | (tcp->read_status == EVQ_EOF ? EVQ_HUP
                                            : tcp->read_status != 0     ? EVQ_HUP | EVQ_ERR
                                                                        : 0);
        out++;
        tcp->caller_armed = 0;
        update_kernel(tcp); /* disarm the kernel's READABLE: reported already */
    }
    return out;
}

/* ---- registrations ---- */

/* The checks every registration call shares, in the order a caller would
 * want to hear about them. */
static int check_registration(evq_poll *poll, evq_tcp *tcp)
{
    if (!poll || !tcp)
        return EVQ_EINVAL;
    if (poll_is_closed(poll))
        return EVQ_ECLOSED;
    if (tcp->poll != poll)
        return EVQ_EINVAL; /* a stream of another queue, or of a closed one */
    return 0;
}

static bool interests_valid_for(const evq_tcp *tcp, unsigned interests)
{
    /* A listener is only ever readable (a connection to accept). */
    return interests_valid(interests) && !(tcp->listener && (interests & EVQ_WRITABLE));
}

int evq_register(evq_poll *poll, evq_tcp *tcp, evq_token token, unsigned interests)
{
    int rc = check_registration(poll, tcp);
    if (rc != 0)
        return rc;
    if (!interests_valid_for(tcp, interests))
        return EVQ_EINVAL;
    if (tcp->registered)
        return EVQ_EEXIST;
    tcp->token = token;
    tcp->caller_armed = interests;
    if ((rc = update_kernel(tcp)) != 0) {
        tcp->caller_armed = 0;
        ready_list_remove(tcp);
        return rc;
    }
    tcp->registered = true;
    return 0;
}

int evq_reregister(evq_poll *poll, evq_tcp *tcp, evq_token token, unsigned interests)
{
    int rc = check_registration(poll, tcp);
    if (rc != 0)
        return rc;
    if (!interests_valid_for(tcp, interests))
        return EVQ_EINVAL;
    if (!tcp->registered)
        return EVQ_ENOENT;
    tcp->token = token;
    tcp->caller_armed = interests;
    return update_kernel(tcp);
}

int evq_deregister(evq_poll *poll, evq_tcp *tcp)
{
    int rc = check_registration(poll, tcp);
    if (rc != 0)
        return rc;
    if (!tcp->registered)
        return EVQ_ENOENT;
    tcp->registered = false;
    tcp->caller_armed = 0;
    ready_list_remove(tcp);
    return update_kernel(tcp); /* the write queue may still need WRITABLE */
}

/* ---- streams ---- */

/* ANCHOR: limits_default */
void evq_tcp_limits_default(evq_tcp_limits *out)
{
    if (!out)
        return;
    memset(out, 0, sizeof *out);
    out->read_initial = 4 * 1024;
    out->read_max = 256 * 1024;
    out->write_high = 1024 * 1024;
    out->write_low = 256 * 1024;
}
/* ANCHOR_END: limits_default */

static bool limits_valid(const evq_tcp_limits *limits)
{
    return limits->read_initial > 0 && limits->read_max >= limits->read_initial &&
           limits->write_high > 0 && limits->write_low < limits->write_high;
}

int evq_tcp_set_limits(evq_tcp *tcp, const evq_tcp_limits *limits)
{
    if (!tcp || !limits || !limits_valid(limits))
        return EVQ_EINVAL;
    tcp->limits = *limits;
    return 0;
}

int evq_tcp_stats_get(const evq_tcp *tcp, evq_tcp_stats *out)
{
    if (!tcp || !out)
        return EVQ_EINVAL;
    memset(out, 0, sizeof *out);
    out->read_buffered = read_buffer_length(&tcp->read_buf);
    out->read_capacity = tcp->read_buf.capacity;
    out->read_capacity_peak = tcp->read_buf.capacity_peak;
    out->write_queued = tcp->write_queue.queued;
    out->write_queued_peak = tcp->write_queue.queued_peak;
    out->kernel_lent = sys_tcp_kernel_lent(tcp);
    out->receive_calls = tcp->receive_calls;
    out->send_calls = tcp->send_calls;
    return 0;
}

/* A stream that is not yet on any queue, with the default limits. */
static evq_tcp *stream_new(void)
{
    evq_tcp *tcp = calloc(1, sizeof *tcp);
    if (!tcp)
        return NULL;
    tcp->socket = EVQ_INVALID_SOCKET;
    tcp->batch_slot = SIZE_MAX;
    evq_tcp_limits_default(&tcp->limits);
    return tcp;
}

static void stream_attach(evq_poll *poll, evq_tcp *tcp)
{
    tcp->poll = poll;
    tcp->next = poll->streams;
    if (poll->streams)
        poll->streams->prev = tcp;
    poll->streams = tcp;
}

int evq_tcp_connect(evq_poll *poll, const char *host, uint16_t port, evq_tcp **out)
{
    if (out)
        *out = NULL;
    if (!poll || !host || !out || port == 0)
        return EVQ_EINVAL;
    if (poll_is_closed(poll))
        return EVQ_ECLOSED;
    evq_tcp *tcp = stream_new();
    if (!tcp)
        return EVQ_ENOMEM;
    int rc = sys_tcp_connect(poll->sys, host, port, tcp);
    if (rc != 0) {
        free(tcp);
        return rc;
    }
    stream_attach(poll, tcp);
    *out = tcp;
    return 0;
}

int evq_tcp_listen(evq_poll *poll, const char *host, uint16_t port, int backlog, evq_tcp **out)
{
    if (out)
        *out = NULL;
    if (!poll || !host || !out)
        return EVQ_EINVAL;
    if (poll_is_closed(poll))
        return EVQ_ECLOSED;
    evq_tcp *tcp = stream_new();
    if (!tcp)
        return EVQ_ENOMEM;
    tcp->listener = true;
    int rc = sys_tcp_listen(poll->sys, host, port, backlog, tcp);
    if (rc != 0) {
        free(tcp);
        return rc;
    }
    stream_attach(poll, tcp);
    *out = tcp;
    return 0;
}

int evq_tcp_local_port(const evq_tcp *tcp, uint16_t *port)
{
    if (port)
        *port = 0;
    if (!tcp || !port)
        return EVQ_EINVAL;
    if (tcp->socket == EVQ_INVALID_SOCKET)
        return EVQ_EBADF;
    return evq_net_local_port(tcp->socket, port);
}

int evq_tcp_accept(evq_tcp *listener, evq_tcp **out)
{
    if (out)
        *out = NULL;
    if (!listener || !out || !listener->listener)
        return EVQ_EINVAL;
    evq_poll *poll = listener->poll;
    if (!poll || poll_is_closed(poll))
        return EVQ_ECLOSED;
    evq_tcp *tcp = stream_new();
    if (!tcp)
        return EVQ_ENOMEM;
    /* The listener's settings pass on: a server sets its limits (and a
     * test its hook) once, on the listener. */
    tcp->limits = listener->limits;
    tcp->io_hook = listener->io_hook;
    tcp->io_hook_context = listener->io_hook_context;
    int rc = sys_tcp_accept(poll->sys, listener, tcp);
    if (rc != 0) {
        free(tcp);
        return rc;
    }
    stream_attach(poll, tcp);
    *out = tcp;
    return 0;
}

/* The checks every read and write shares. */
static int check_io(const evq_tcp *tcp)
{
    if (tcp->listener)
        return EVQ_EINVAL; /* a listener accepts; it has no bytes */
    if (!tcp->poll)
        return EVQ_ECLOSED;
    return 0;
}

/* Receive into the buffer (sys_tcp_fill: until the socket would block or
 * the buffer is full). EOF or an error met there is kept, to be reported
 * after the bytes before it; a failed allocation is only this call's. */
static int fill(evq_tcp *tcp)
{
    if (tcp->read_status != 0)
        return 0; /* the read side has ended: nothing more will come */
    /* The last recv() said EAGAIN and the kernel has not reported the socket
     * readable since: a recv() now could only say EAGAIN again. New data is
     * not lost: re-arming makes the kernel look at the socket as it is (see
     * sys_arm in poll_epoll.c and poll_kqueue.c), and its event clears this. */
    if (tcp->read_drained)
        return 0;
    int rc = sys_tcp_fill(tcp);
    if (rc == EVQ_ENOMEM)
        return rc;
    tcp->read_status = rc;
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

int evq_tcp_read(evq_tcp *tcp, void *buf, size_t len, size_t *n)
{
    if (n)
        *n = 0;
    /* len 0 is refused: a read of nothing could not tell "no data" from EOF. */
    if (!tcp || !buf || !n || len == 0)
        return EVQ_EINVAL;
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

int evq_tcp_peek(evq_tcp *tcp, const void **data, size_t *len)
{
    if (data)
        *data = NULL;
    if (len)
        *len = 0;
    if (!tcp || !data || !len)
        return EVQ_EINVAL;
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

int evq_tcp_consume(evq_tcp *tcp, size_t n)
{
    if (!tcp)
        return EVQ_EINVAL;
    int rc = check_io(tcp);
    if (rc != 0)
        return rc;
    if (n > read_buffer_length(&tcp->read_buf))
        return EVQ_EINVAL; /* more than peek showed */
    consume(tcp, n);
    return 0;
}

/* ANCHOR: write */
int evq_tcp_write(evq_tcp *tcp, const void *buf, size_t len, size_t *n)
{
    if (n)
        *n = 0;
    if (!tcp || (!buf && len > 0) || !n)
        return EVQ_EINVAL;
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
     * kernel was full (or a send is in flight): the wait flushes them at
     * WRITABLE, and asking now would only cost a call to hear EAGAIN. */
    if (was_empty && (rc = sys_tcp_flush(tcp)) != 0) {
        fail_writes(tcp, rc);
        tcp->write_error_told = true;
        return rc;
    }
    /* The rest stays queued: the kernel must now watch for WRITABLE. */
    if ((rc = update_kernel(tcp)) != 0) {
        fail_writes(tcp, rc);
        return rc;
    }
    *n = taken;
    return 0;
}
/* ANCHOR_END: write */

size_t evq_tcp_queued(const evq_tcp *tcp)
{
    return tcp ? tcp->write_queue.queued : 0;
}

int evq_tcp_shutdown(evq_tcp *tcp)
{
    if (!tcp)
        return EVQ_EINVAL;
    int rc = check_io(tcp);
    if (rc != 0)
        return rc;
    if (tcp->write_status != 0)
        return tcp->write_status;
    if (tcp->shutdown_requested)
        return 0; /* twice is harmless */
    tcp->shutdown_requested = true;
    /* With bytes queued, the flush that empties the queue sends the FIN. */
    if (write_queue_empty(&tcp->write_queue) && (rc = sys_tcp_flush(tcp)) != 0) {
        fail_writes(tcp, rc);
        return rc;
    }
    return 0;
}

void evq_tcp_close(evq_tcp *tcp)
{
    if (!tcp)
        return;
    evq_poll *poll = tcp->poll;
    if (poll) {
        /* Out of the kernel before the socket is closed: a descriptor closed
         * while still registered can live on in an epoll set through a
         * dup(), and kqueue implementations differ on whether close() drops
         * knotes. The write queue may have armed it without the caller. */
        sys_deregister(poll->sys, tcp);
        ready_list_remove(tcp);
        if (tcp->prev)
            tcp->prev->next = tcp->next;
        else
            poll->streams = tcp->next;
        if (tcp->next)
            tcp->next->prev = tcp->prev;
    }
    sys_tcp_close(poll ? poll->sys : NULL, tcp);
    read_buffer_free(&tcp->read_buf);
    write_queue_clear(&tcp->write_queue); /* unsent bytes are dropped, as evq.h says */
    free(tcp);
}

/* ---- test hooks (evq_testing.h) ---- */

void evq_poll_set_wait_hook(evq_poll *poll, evq_wait_hook hook, void *context)
{
    if (!poll)
        return;
    poll->wait_hook = hook;
    poll->wait_hook_context = context;
}

void evq_poll_set_clock(evq_poll *poll, evq_clock clock)
{
    if (poll && clock.now_ns)
        poll->clock = clock;
}

size_t evq_poll_retired_streams(const evq_poll *poll)
{
    return poll ? sys_poll_retired(poll->sys) : 0;
}

void evq_tcp_set_io_hook(evq_tcp *tcp, evq_io_hook hook, void *context)
{
    if (!tcp)
        return;
    tcp->io_hook = hook;
    tcp->io_hook_context = context;
}

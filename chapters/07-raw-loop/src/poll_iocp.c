/* poll_iocp.c - the queue on a Windows I/O completion port.
 *
 * The port reports finished operations, not readiness; iocp.h says why each
 * completion is this backend's edge. This file is the queue's side: the
 * port and its waker, each stream's IOCP state from the moment its socket
 * is tied to the port until the kernel has given back the last of its
 * memory, and the wait: dequeue completions, and hand each, under its
 * stream's lock, to tcp_win.c (sys_event_take) - the portable queue does
 * the rest, as it does for epoll's and kqueue's edges.
 *
 * Several threads may dequeue from one port at once (the port's concurrency
 * value is 0: as many running at once as there are processors), each
 * packet going to one of them. What they share here - the count of
 * operations in flight, the retired list, and whether a stream is retired
 * - is the port's lock's, taken after a stream's (poll.c, "locks").
 */
#include "iocp.h"

#include "key_table.h"

#include "evq_clock.h"
#include "evq_log.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* Closing the queue waits this long, in steps of CLOSE_POLL_MS, for
 * cancelled operations to come back (see sys_poll_close). */
#define CLOSE_GIVE_UP_MS 10000
#define CLOSE_POLL_MS    100

struct sys_poll {
    HANDLE port;
    volatile LONG wake_pending;    /* a waker packet is in the port */
    volatile LONG64 control_calls; /* sockets tied to the port */
    evq_mutex lock;                /* the three below, and each stream's tcp pointer */
    size_t in_flight;              /* operations started and not yet taken back */
    struct sys_stream *retired;    /* closed streams whose I/O is still in flight */
    size_t retired_count;
};

/* A stream's completions carry its key (key_table.h) as their completion
 * key; the waker's packet carries KEY_NONE, which no stream can have. No
 * token value is set aside for it. */
_Static_assert(sizeof(ULONG_PTR) >= sizeof(uint64_t), "a key fits in a completion key");
#define WAKER_KEY ((ULONG_PTR)KEY_NONE)

static struct iocp_op *op_from_overlapped(OVERLAPPED *overlapped)
{
    return (struct iocp_op *)((char *)overlapped - offsetof(struct iocp_op, overlapped));
}

int sys_poll_open(struct sys_poll **out)
{
    struct sys_poll *sys = calloc(1, sizeof *sys);
    if (!sys)
        return EVQ_ENOMEM;
    int rc = evq_mutex_init(&sys->lock);
    if (rc != 0) {
        free(sys);
        return rc;
    }
    /* Concurrency 0: as many threads running at once as there are
     * processors - several may wait on this queue. */
    sys->port = CreateIoCompletionPort(INVALID_HANDLE_VALUE, NULL, 0, 0);
    if (!sys->port) {
        rc = evq_error_from_win32(GetLastError());
        evq_mutex_destroy(&sys->lock);
        free(sys);
        return rc;
    }
    *out = sys;
    return 0;
}

uint64_t sys_poll_control_calls(const struct sys_poll *sys)
{
    return (uint64_t)InterlockedCompareExchange64((volatile LONG64 *)&sys->control_calls, 0, 0);
}

/* ---- a stream's IOCP state, and its lifetime ---- */

static void op_init(struct iocp_op *op, struct sys_stream *stream, enum iocp_op_kind kind)
{
    op->stream = stream;
    op->kind = kind;
}

int sys_stream_open(struct sys_poll *sys, evq_tcp *tcp)
{
    struct sys_stream *stream = calloc(1, sizeof *stream);
    if (!stream)
        return EVQ_ENOMEM;
    stream->tcp = tcp;
    stream->poll = sys;
    op_init(&stream->receive, stream, IOCP_RECEIVE);
    op_init(&stream->send, stream, IOCP_SEND);
    op_init(&stream->connect, stream, IOCP_CONNECT);
    tcp->sys = stream;
    /* A connecting stream has no socket yet: each one it tries is tied to
     * the port when it is made (tcp_win.c, sys_connect_start). */
    int rc = tcp->socket != INVALID_SOCKET ? sys_stream_attach(sys, tcp) : 0;
    if (rc != 0) {
        tcp->sys = NULL;
        free(stream);
    }
    return rc;
}

/* ANCHOR: attach */
/* The registration, once per socket, as on the other backends - but there
 * is nothing to ask for: a handle is tied to one port for its whole life
 * (there is no way to untie it), which is why a stream belongs to the
 * queue it was made on, and every operation started on it completes there.
 * FILE_SKIP_COMPLETION_PORT_ON_SUCCESS is deliberately NOT set: an
 * operation that finishes at once still comes back through the port, so
 * there is exactly one place where the kernel returns an OVERLAPPED. */
int sys_stream_attach(struct sys_poll *sys, evq_tcp *tcp)
{
    /* Nothing is read but through a receive posted when the caller arms
     * READABLE (sys_watch_read), which completes at once if bytes wait:
     * that is this backend's look at what is already there. */
    tcp->read_drained = true;
    InterlockedIncrement64(&sys->control_calls);
    if (!CreateIoCompletionPort((HANDLE)tcp->socket, sys->port, (ULONG_PTR)tcp->key, 0))
        return evq_error_from_win32(GetLastError());
    return 0;
}
/* ANCHOR_END: attach */

void iocp_started(struct iocp_op *op)
{
    op->in_flight = true;
    op->stream->in_flight++;
    evq_mutex_lock(&op->stream->poll->lock);
    op->stream->poll->in_flight++;
    evq_mutex_unlock(&op->stream->poll->lock);
}

static void stream_free(struct sys_stream *stream)
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

static void retired_free(struct sys_poll *sys, struct sys_stream *stream)
{
    for (struct sys_stream **link = &sys->retired; *link; link = &(*link)->retired_next) {
        if (*link == stream) {
            *link = stream->retired_next;
            sys->retired_count--;
            stream_free(stream);
            return;
        }
    }
}

/* ANCHOR: returned */
/* A completion is taken: the OVERLAPPED and what it pointed at are ours
 * again. Returns false if the stream was retired (and maybe freed now).
 * Under the port's lock. */
static bool op_returned(struct sys_poll *sys, struct iocp_op *op)
{
    struct sys_stream *stream = op->stream;
    op->in_flight = false; /* dequeued: the OVERLAPPED and buffer are ours again */
    stream->in_flight--;
    sys->in_flight--;
    if (stream->tcp)
        return true;
    /* Closed while in flight: the last completion to come back frees the
     * stream, its kept read buffer, write chunks and accept sockets. */
    if (!iocp_busy(stream))
        retired_free(sys, stream);
    return false;
}
/* ANCHOR_END: returned */

void sys_stream_detach(struct sys_poll *sys, evq_tcp *tcp)
{
    (void)sys;
    /* The queue is closing: cancel, and let sys_poll_close collect the
     * cancelled completions before the port goes. */
    if (iocp_busy(tcp->sys) && tcp->socket != INVALID_SOCKET)
        CancelIoEx((HANDLE)tcp->socket, NULL);
}

/* ANCHOR: abandon */
/* A ConnectEx still in flight (the deadline passed) is cancelled and its
 * socket closed; the OVERLAPPED stays the kernel's until its completion,
 * ERROR_OPERATION_ABORTED, is dequeued - the stream keeps it until then
 * (and sys_stream_close retires it if the stream is closed first). */
void sys_connect_abandon(struct sys_poll *sys, evq_tcp *tcp)
{
    (void)sys;
    struct sys_stream *stream = tcp->sys;
    if (stream->connect.in_flight)
        CancelIoEx((HANDLE)tcp->socket, &stream->connect.overlapped);
    closesocket(tcp->socket);
    tcp->socket = INVALID_SOCKET;
}
/* ANCHOR_END: abandon */

/* ANCHOR: retire */
void sys_stream_close(struct sys_poll *sys, evq_tcp *tcp)
{
    struct sys_stream *stream = tcp->sys;
    if (stream && iocp_busy(stream)) {
        /* CancelIoEx only asks: "The application must not free or reuse the
         * OVERLAPPED structure associated with the canceled I/O operations
         * until they have completed." The stream keeps the buffers the
         * kernel may still touch (stream.c frees what is left in the
         * evq_tcp), and the queue frees it all when the last completion is
         * dequeued. */
        if (tcp->socket != INVALID_SOCKET) { /* a cancelled ConnectEx's socket is gone already */
            CancelIoEx((HANDLE)tcp->socket, NULL);
            closesocket(tcp->socket);
        }
        if (stream->receive.in_flight && stream->receive.lent > 0) {
            stream->kept_read = tcp->read_buf;
            memset(&tcp->read_buf, 0, sizeof tcp->read_buf);
        }
        if (stream->send.in_flight) {
            stream->kept_write = tcp->write_queue;
            memset(&tcp->write_queue, 0, sizeof tcp->write_queue);
        }
        if (sys) {
            evq_mutex_lock(&sys->lock); /* a waiter's dequeue reads stream->tcp under it */
            stream->tcp = NULL;
            stream->retired_next = sys->retired;
            sys->retired = stream;
            sys->retired_count++;
            evq_mutex_unlock(&sys->lock);
        } else {
            /* The queue is gone and gave up waiting for this I/O (see
             * sys_poll_close); leaking is the only safe thing left. */
            stream->tcp = NULL;
        }
        return;
    }
    if (tcp->socket != INVALID_SOCKET) /* none while resolving, or after a failed connect */
        closesocket(tcp->socket);
    if (stream)
        stream_free(stream);
}
/* ANCHOR_END: retire */

size_t sys_poll_retired(const struct sys_poll *sys)
{
    evq_mutex *lock = (evq_mutex *)&sys->lock;
    evq_mutex_lock(lock);
    size_t count = sys->retired_count;
    evq_mutex_unlock(lock);
    return count;
}

/* The caller waits to read and nothing tells it yet: start what will. */
void sys_watch_read(struct sys_poll *sys, evq_tcp *tcp)
{
    (void)sys;
    if (tcp->sys->accepts)
        iocp_post_accepts(tcp->sys); /* every empty slot, after a failure */
    else
        iocp_start_receive(tcp->sys);
}

/* ---- the wait ---- */

/* ANCHOR: wait */
/* Dequeue up to `capacity` packets, into this thread's own array: another
 * thread may be dequeuing beside it. Alertable (TRUE): an APC queued to
 * this thread runs and ends the wait with WAIT_IO_COMPLETION, Windows'
 * EINTR. A packet of a stream closed while it was in flight is taken back
 * here (the last one frees what the kernel held), whichever thread
 * dequeues it; every other is handed to poll.c, which finds the stream by
 * the packet's key and takes it under the stream's lock - or, if the
 * stream closed in between, gives the operation back (sys_event_drop). */
int sys_poll_wait(struct sys_poll *sys, struct sys_event *events, size_t capacity, int timeout_ms,
                  size_t *n, bool *woken)
{
    DWORD timeout = timeout_ms < 0 ? INFINITE : (DWORD)timeout_ms;
    OVERLAPPED_ENTRY entries[SYS_MAX_EVENTS];
    ULONG room = capacity < SYS_MAX_EVENTS ? (ULONG)capacity : SYS_MAX_EVENTS;
    ULONG got = 0;
    if (!GetQueuedCompletionStatusEx(sys->port, entries, room, &got, timeout, TRUE)) {
        DWORD error = GetLastError();
        if (error == WAIT_IO_COMPLETION)
            return EVQ_EINTR; /* poll.c retries with the time that is left */
        if (error != WAIT_TIMEOUT)
            return evq_error_from_win32(error);
        got = 0;
    }
    size_t out = 0;
    for (ULONG i = 0; i < got; i++) {
        if (entries[i].lpCompletionKey == WAKER_KEY) {
            InterlockedExchange(&sys->wake_pending, 0);
            *woken = true;
            continue;
        }
        struct iocp_op *op = op_from_overlapped(entries[i].lpOverlapped);
        evq_mutex_lock(&sys->lock);
        evq_tcp *tcp = op->stream->tcp;
        if (!tcp)
            op_returned(sys, op); /* closed while in flight: nobody to tell */
        evq_mutex_unlock(&sys->lock);
        if (!tcp)
            continue;
        events[out].key = (uint64_t)entries[i].lpCompletionKey;
        events[out].edges = 0;
        events[out].error = 0; /* a completion's error is in its OVERLAPPED */
        events[out].operation = op;
        events[out].bytes = entries[i].dwNumberOfBytesTransferred;
        out++;
    }
    *n = out;
    return 0;
}
/* ANCHOR_END: wait */

/* ANCHOR: take */
/* Under the stream's lock: the kernel gives the operation back, tcp_win.c
 * applies what it did to the buffers, and the completion is an edge - an
 * AcceptEx says READABLE, a send or a ConnectEx WRITABLE; a receive has
 * said all it knows already (stream_receive_completed). A stream closed
 * between the key's lookup and now was retired: its operation is only
 * taken back. */
uint32_t sys_event_take(struct sys_poll *sys, evq_tcp *tcp, struct sys_event *event)
{
    (void)tcp;
    struct iocp_op *op = event->operation;
    struct sys_stream *stream = op->stream;
    evq_mutex_lock(&sys->lock);
    bool alive = op_returned(sys, op);
    evq_mutex_unlock(&sys->lock);
    if (!alive)
        return 0;
    iocp_completed(stream, op, (DWORD)event->bytes);
    switch (op->kind) {
    case IOCP_RECEIVE:
        return SYS_DONE; /* the completion has set read_drained itself */
    case IOCP_ACCEPT:
        return SYS_DONE | EVQ_READABLE; /* a connection waits: accept_drained is cleared */
    default:
        return SYS_DONE | EVQ_WRITABLE; /* a send or the connect is over */
    }
}
/* ANCHOR_END: take */

/* ANCHOR: drop */
/* The packet's key is stale. Either the stream closed after the dequeue
 * (retired: the operation is taken back, and the last one frees what the
 * kernel held - on this thread, whichever it is), or it is alive and this
 * is the ConnectEx of a socket it gave up for the next address: taken
 * back under the stream's lock, which guards its count of operations, and
 * not applied (the outcome is the old socket's). */
void sys_event_drop(struct sys_poll *sys, struct sys_event *event)
{
    struct iocp_op *op = event->operation;
    evq_mutex_lock(&sys->lock);
    evq_tcp *tcp = op->stream->tcp;
    if (tcp)
        stream_hold(tcp); /* close clears stream->tcp under this lock before it lets go */
    else
        op_returned(sys, op);
    evq_mutex_unlock(&sys->lock);
    if (!tcp)
        return;
    evq_mutex_lock(&tcp->lock);
    evq_mutex_lock(&sys->lock);
    op_returned(sys, op); /* retired meanwhile, or not: either way it is ours again */
    evq_mutex_unlock(&sys->lock);
    evq_mutex_unlock(&tcp->lock);
    stream_release(tcp);
}
/* ANCHOR_END: drop */

int sys_poll_wake(struct sys_poll *sys)
{
    /* One packet in the port is enough to end a wait; without this, ten
     * wakes would make the next ten waits return at once. */
    if (InterlockedExchange(&sys->wake_pending, 1) == 1)
        return 0;
    if (!PostQueuedCompletionStatus(sys->port, 0, WAKER_KEY, NULL)) {
        InterlockedExchange(&sys->wake_pending, 0);
        return evq_error_from_win32(GetLastError());
    }
    return 0;
}

/* ANCHOR: drain */
void sys_poll_close(struct sys_poll *sys)
{
    /* Every stream's I/O has been cancelled (sys_stream_detach,
     * sys_stream_close). Before the port goes, wait until the kernel has
     * handed back every OVERLAPPED, and free each retired stream with its
     * last one. Cancellation is prompt; the time limit only guards against
     * a driver that never answers, and then leaking is the safe choice:
     * freeing would let the kernel write into memory that is no longer ours. */
    uint64_t give_up = evq_clock_now_ns() + evq_ms_to_ns(CLOSE_GIVE_UP_MS);
    OVERLAPPED_ENTRY entries[SYS_MAX_EVENTS];
    while (sys->in_flight > 0 && evq_clock_now_ns() < give_up) {
        ULONG got = 0;
        if (!GetQueuedCompletionStatusEx(sys->port, entries, SYS_MAX_EVENTS, &got, CLOSE_POLL_MS,
                                         FALSE))
            continue;
        for (ULONG i = 0; i < got; i++) {
            if (entries[i].lpCompletionKey == WAKER_KEY)
                continue;
            struct iocp_op *op = op_from_overlapped(entries[i].lpOverlapped);
            op->lent = 0;         /* a detached stream's I/O: what it carried is dropped */
            op_returned(sys, op); /* no waiter is left: the lock is not needed */
        }
    }
    if (sys->in_flight > 0)
        EVQ_DEBUG("iocp: %zu operations never came back; leaking their buffers", sys->in_flight);
    CloseHandle(sys->port);
    evq_mutex_destroy(&sys->lock);
    free(sys);
}
/* ANCHOR_END: drain */

/* poll_iocp.c - the queue on a Windows I/O completion port.
 *
 * The port reports finished operations, not readiness; iocp.h says how the
 * backend builds readiness on top. This file is the queue's side: the port
 * and its waker, each stream's IOCP state from the moment its socket is
 * tied to the port until the kernel has given back the last of its
 * memory, the emulated one-shot arming, and the wait: dequeue completions,
 * hand each to tcp_win.c, then translate what changed into readiness for
 * the portable queue - which keeps the one ready list every backend shares.
 */
#include "iocp.h"

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
    volatile LONG wake_pending; /* a waker packet is in the port */
    size_t in_flight;           /* operations started and not yet dequeued */
    struct sys_stream *retired; /* closed streams whose I/O is still in flight */
    size_t retired_count;
    OVERLAPPED_ENTRY entries[SYS_MAX_EVENTS];
    struct sys_stream *batch[SYS_MAX_EVENTS]; /* the streams the wait being collected touched */
};

/* A stream's completions carry the stream as their key; the waker's packet
 * carries the queue's own address, which no stream can have. No token value
 * is set aside for it. */
#define WAKER_KEY(sys) ((ULONG_PTR)(sys))

static struct iocp_op *op_from_overlapped(OVERLAPPED *overlapped)
{
    return (struct iocp_op *)((char *)overlapped - offsetof(struct iocp_op, overlapped));
}

int sys_poll_open(struct sys_poll **out)
{
    struct sys_poll *sys = calloc(1, sizeof *sys);
    if (!sys)
        return EVQ_ENOMEM;
    /* Concurrency 1: one thread waits on a queue in this chapter. */
    sys->port = CreateIoCompletionPort(INVALID_HANDLE_VALUE, NULL, 0, 1);
    if (!sys->port) {
        int rc = evq_error_from_win32(GetLastError());
        free(sys);
        return rc;
    }
    *out = sys;
    return 0;
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
    op_init(&stream->check, stream, IOCP_CHECK);
    tcp->sys = stream;
    /* A connecting stream has no socket yet: each one it tries is tied to
     * the port when it is made (tcp_win.c, sys_connect_start). */
    int rc = tcp->socket != INVALID_SOCKET ? iocp_associate(stream) : 0;
    if (rc != 0) {
        tcp->sys = NULL;
        free(stream);
    }
    return rc;
}

/* A handle is tied to one port for its whole life (there is no way to
 * untie it): that is why a stream belongs to the queue it was made on.
 * FILE_SKIP_COMPLETION_PORT_ON_SUCCESS is deliberately NOT set: an
 * operation that finishes at once still comes back through the port, so
 * there is exactly one place where the kernel returns an OVERLAPPED. */
int iocp_associate(struct sys_stream *stream)
{
    HANDLE socket = (HANDLE)stream->tcp->socket;
    if (!CreateIoCompletionPort(socket, stream->poll->port, (ULONG_PTR)stream, 0))
        return evq_error_from_win32(GetLastError());
    return 0;
}

void iocp_started(struct iocp_op *op)
{
    op->in_flight = true;
    op->stream->in_flight++;
    op->stream->poll->in_flight++;
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
/* A completion is dequeued: the OVERLAPPED and what it pointed at are ours
 * again. Returns false if the stream was retired (and maybe freed now). */
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
    tcp->sys->armed = 0;
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
    stream->armed = 0;
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
        stream->tcp = NULL;
        stream->armed = 0;
        if (sys) {
            stream->retired_next = sys->retired;
            sys->retired = stream;
            sys->retired_count++;
        }
        /* else: the queue is gone and gave up waiting for this I/O (see
         * sys_poll_close); leaking is the only safe thing left. */
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
    return sys->retired_count;
}

/* ---- readiness, emulated ---- */

/* ANCHOR: translate */
/* What the stream is ready for now, among `armed`: the translation the
 * readiness backends make from kernel flags, made here from the state the
 * completions left. */
static uint32_t readiness(const struct sys_stream *stream, unsigned armed)
{
    const evq_tcp *tcp = stream->tcp;
    uint32_t ready = 0;
    if ((armed & EVQ_READABLE) && stream->accepts) {
        for (int i = 0; i < IOCP_ACCEPTS_POSTED; i++) {
            if (stream->accepts[i].done)
                ready |= EVQ_READABLE;
        }
        if (stream->accept_error != 0)
            ready |= EVQ_READABLE | EVQ_ERR;
    } else if (armed & EVQ_READABLE) {
        ready |= stream_read_readiness(tcp); /* bytes not yet seen, or the end */
    }
    /* The kernel's WRITABLE: no send in flight, so a flush can hand it more
     * (and no ConnectEx: its completion is the connect's WRITABLE). */
    if ((armed & EVQ_WRITABLE) && !stream->send.in_flight && !stream->connect.in_flight)
        ready |= tcp->write_status != 0 ? EVQ_WRITABLE | EVQ_ERR : EVQ_WRITABLE;
    return ready;
}
/* ANCHOR_END: translate */

/* ANCHOR: arm */
/* One-shot without kernel help: `armed` is what may still produce an event;
 * the wait clears it when it reports the stream. Arming READABLE starts a
 * receive if none is in flight (or, on a listener, fills the AcceptEx
 * slots) - the kernel needs one before it can say anything. Arming for
 * something that holds already posts a packet to the port, so that the
 * next wait reports it, in turn with everything else. (Bytes already
 * buffered need none: the portable ready list reports those, as it does on
 * every backend.) */
int sys_arm(struct sys_poll *sys, evq_tcp *tcp, unsigned interests)
{
    struct sys_stream *stream = tcp->sys;
    stream->armed = interests;
    if (interests & EVQ_READABLE) {
        if (stream->accepts)
            iocp_post_accepts(stream);
        else
            iocp_start_receive(stream);
    }
    unsigned at_once = interests & (stream->accepts ? EVQ_READABLE | EVQ_WRITABLE : EVQ_WRITABLE);
    if (readiness(stream, at_once) != 0 && !stream->check.in_flight) {
        if (!PostQueuedCompletionStatus(sys->port, 0, (ULONG_PTR)stream, &stream->check.overlapped))
            return evq_error_from_win32(GetLastError());
        iocp_started(&stream->check);
    }
    return 0;
}
/* ANCHOR_END: arm */

/* ---- the wait ---- */

/* ANCHOR: dispatch */
/* One packet: the waker, or an operation of a stream, whose outcome goes to
 * tcp_win.c. The stream joins the batch the wait reports on. */
static void dispatch(struct sys_poll *sys, const OVERLAPPED_ENTRY *entry, size_t *touched,
                     bool *woken)
{
    if (entry->lpCompletionKey == WAKER_KEY(sys)) {
        InterlockedExchange(&sys->wake_pending, 0);
        *woken = true;
        return;
    }
    struct iocp_op *op = op_from_overlapped(entry->lpOverlapped);
    struct sys_stream *stream = op->stream;
    if (!op_returned(sys, op))
        return; /* closed while in flight: nobody to tell */
    if (op->kind != IOCP_CHECK)
        iocp_completed(stream, op, entry->dwNumberOfBytesTransferred);
    if (!stream->in_batch) {
        stream->in_batch = true;
        sys->batch[(*touched)++] = stream;
    }
}
/* ANCHOR_END: dispatch */

/* ANCHOR: wait */
int sys_poll_wait(struct sys_poll *sys, struct sys_event *events, size_t capacity, int timeout_ms,
                  size_t *n, bool *woken)
{
    DWORD timeout = timeout_ms < 0 ? INFINITE : (DWORD)timeout_ms;
    /* At most `capacity` packets: each touches one stream, and each stream
     * touched gives at most one event, so the caller's room is never
     * exceeded and nothing is held back for later - what stays in the
     * port is the next wait's. Alertable (TRUE): an APC queued to this
     * thread runs and ends the wait with WAIT_IO_COMPLETION, Windows' EINTR. */
    ULONG room = capacity < SYS_MAX_EVENTS ? (ULONG)capacity : SYS_MAX_EVENTS;
    ULONG got = 0;
    if (!GetQueuedCompletionStatusEx(sys->port, sys->entries, room, &got, timeout, TRUE)) {
        DWORD error = GetLastError();
        if (error == WAIT_IO_COMPLETION)
            return EVQ_EINTR; /* poll.c retries with the time that is left */
        if (error != WAIT_TIMEOUT)
            return evq_error_from_win32(error);
        got = 0;
    }
    size_t touched = 0;
    for (ULONG i = 0; i < got; i++)
        dispatch(sys, &sys->entries[i], &touched, woken);
    /* Report each stream the packets touched that is ready for what it is
     * armed for, and disarm it (one-shot). */
    size_t out = 0;
    for (size_t i = 0; i < touched; i++) {
        struct sys_stream *stream = sys->batch[i];
        stream->in_batch = false;
        uint32_t ready = stream->tcp ? readiness(stream, stream->armed) : 0;
        if (ready == 0)
            continue;
        events[out].tcp = stream->tcp;
        events[out].ready = ready;
        events[out].error = 0; /* a completion's error is in the stream's state already */
        out++;
        stream->armed = 0;
    }
    *n = out;
    return 0;
}
/* ANCHOR_END: wait */

int sys_poll_wake(struct sys_poll *sys)
{
    /* One packet in the port is enough to end a wait; without this, ten
     * wakes would make the next ten waits return at once. */
    if (InterlockedExchange(&sys->wake_pending, 1) == 1)
        return 0;
    if (!PostQueuedCompletionStatus(sys->port, 0, WAKER_KEY(sys), NULL)) {
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
    while (sys->in_flight > 0 && evq_clock_now_ns() < give_up) {
        ULONG got = 0;
        if (!GetQueuedCompletionStatusEx(sys->port, sys->entries, SYS_MAX_EVENTS, &got,
                                         CLOSE_POLL_MS, FALSE))
            continue;
        for (ULONG i = 0; i < got; i++) {
            if (sys->entries[i].lpCompletionKey == WAKER_KEY(sys))
                continue;
            struct iocp_op *op = op_from_overlapped(sys->entries[i].lpOverlapped);
            op->lent = 0; /* a detached stream's I/O: what it carried is dropped */
            op_returned(sys, op);
        }
    }
    if (sys->in_flight > 0)
        EVQ_DEBUG("iocp: %zu operations never came back; leaking their buffers", sys->in_flight);
    CloseHandle(sys->port);
    free(sys);
}
/* ANCHOR_END: drain */

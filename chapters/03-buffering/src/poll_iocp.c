/* poll_iocp.c - the queue on a Windows I/O completion port.
 *
 * The port reports finished operations, not readiness; iocp.h says how the
 * library builds readiness on top. This file is the queue's side: the port
 * and its waker, the wait (dequeue completions, hand them to the streams,
 * then report the streams that became ready), the emulated one-shot arming,
 * and the retired streams it must keep until the kernel lets go of them.
 */
#include "iocp.h"

#include "evq_clock.h"
#include "evq_log.h"

#include <stddef.h>
#include <stdlib.h>

struct sys_poll {
    HANDLE port;
    volatile LONG wake_pending; /* a waker packet is in the port */
    size_t in_flight;           /* operations started and not yet dequeued */
    struct sys_stream *ready_head, *ready_tail;
    struct sys_stream *retired; /* closed streams whose I/O is still in flight */
    size_t retired_count;
    OVERLAPPED_ENTRY entries[SYS_MAX_EVENTS];
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

/* ---- the ready list: armed streams with something to report ---- */

static void ready_remove(struct sys_poll *sys, struct sys_stream *stream)
{
    if (!stream->on_ready_list)
        return;
    if (stream->ready_prev)
        stream->ready_prev->ready_next = stream->ready_next;
    else
        sys->ready_head = stream->ready_next;
    if (stream->ready_next)
        stream->ready_next->ready_prev = stream->ready_prev;
    else
        sys->ready_tail = stream->ready_prev;
    stream->ready_prev = stream->ready_next = NULL;
    stream->on_ready_list = false;
}

static void ready_push_if_ready(struct sys_poll *sys, struct sys_stream *stream)
{
    if (stream->on_ready_list || !stream->tcp || !iocp_readiness(stream, stream->tcp->armed))
        return;
    stream->on_ready_list = true;
    stream->ready_prev = sys->ready_tail;
    if (sys->ready_tail)
        sys->ready_tail->ready_next = stream;
    else
        sys->ready_head = stream;
    sys->ready_tail = stream;
}

/* ---- streams ---- */

int iocp_attach(struct sys_poll *sys, evq_tcp *tcp)
{
    struct sys_stream *stream = calloc(1, sizeof *stream);
    if (!stream)
        return EVQ_ENOMEM;
    stream->tcp = tcp;
    stream->poll = sys;
    stream->receive.stream = stream;
    stream->receive.kind = IOCP_RECEIVE;
    stream->send.stream = stream;
    stream->send.kind = IOCP_SEND;
    /* A handle is tied to one port for its whole life (there is no way to
     * untie it): that is why a stream belongs to the queue it was connected
     * on. FILE_SKIP_COMPLETION_PORT_ON_SUCCESS is deliberately NOT set: an
     * operation that finishes at once still comes back through the port, so
     * there is exactly one place where the kernel returns an OVERLAPPED. */
    if (!CreateIoCompletionPort((HANDLE)tcp->socket, sys->port, (ULONG_PTR)stream, 0)) {
        int rc = evq_error_from_win32(GetLastError());
        free(stream);
        return rc;
    }
    tcp->sys = stream;
    return 0;
}

void iocp_started(struct sys_poll *sys, struct iocp_op *op)
{
    op->in_flight = true;
    op->stream->in_flight++;
    sys->in_flight++;
}

void iocp_check_ready(struct sys_stream *stream)
{
    ready_push_if_ready(stream->poll, stream);
}

/* A completion is dequeued: the OVERLAPPED and what it pointed at are ours
 * again. Returns false if the stream was retired (and maybe freed now). */
static bool op_returned(struct sys_poll *sys, struct iocp_op *op);

void iocp_retire(struct sys_poll *sys, struct sys_stream *stream)
{
    ready_remove(sys, stream);
    stream->retired_next = sys->retired;
    sys->retired = stream;
    sys->retired_count++;
}

static void retired_free(struct sys_poll *sys, struct sys_stream *stream)
{
    for (struct sys_stream **link = &sys->retired; *link; link = &(*link)->retired_next) {
        if (*link == stream) {
            *link = stream->retired_next;
            sys->retired_count--;
            iocp_stream_free(stream);
            return;
        }
    }
}

/* ANCHOR: arm */
/* One-shot without kernel help: `armed` is what may still produce an event;
 * the wait clears it when it reports the stream. Arming READABLE starts a
 * receive if none is in flight - the kernel needs one before it can say
 * anything. A stream that is ready already (buffered data, no send in
 * flight) goes straight onto the ready list. */
int sys_arm(struct sys_poll *sys, evq_tcp *tcp, unsigned interests)
{
    tcp->armed = interests;
    if (interests == 0) {
        ready_remove(sys, tcp->sys);
        return 0;
    }
    if (interests & EVQ_READABLE)
        iocp_start_receive(tcp->sys);
    ready_push_if_ready(sys, tcp->sys);
    return 0;
}
/* ANCHOR_END: arm */

int sys_deregister(struct sys_poll *sys, evq_tcp *tcp)
{
    /* A receive in flight stays in flight: what it brings waits in the
     * buffer for a read or a new arming. */
    tcp->armed = 0;
    if (tcp->sys)
        ready_remove(sys, tcp->sys);
    return 0;
}

size_t sys_poll_retired(const struct sys_poll *sys)
{
    return sys->retired_count;
}

/* ---- the wait ---- */

/* ANCHOR: returned */
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

/* ANCHOR: dispatch */
static void dispatch(struct sys_poll *sys, const OVERLAPPED_ENTRY *entry, bool *woken)
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
    iocp_completed(stream, op, entry->dwNumberOfBytesTransferred);
    ready_push_if_ready(sys, stream);
}
/* ANCHOR_END: dispatch */

/* Report up to `capacity` ready streams, disarming each (one-shot). The
 * others stay on the list for the next wait. */
static size_t take_ready(struct sys_poll *sys, struct sys_event *events, size_t capacity)
{
    size_t out = 0;
    while (out < capacity && sys->ready_head) {
        struct sys_stream *stream = sys->ready_head;
        ready_remove(sys, stream);
        evq_tcp *tcp = stream->tcp;
        uint32_t ready = iocp_readiness(stream, tcp->armed);
        if (ready == 0) {
            /* Read or written since it was queued. Still armed for reading
             * with the buffer emptied: the kernel needs a receive again, or
             * nothing could ever be reported. */
            if (tcp->armed & EVQ_READABLE) {
                iocp_start_receive(stream);
                ready_push_if_ready(sys, stream); /* a receive that failed to start */
            }
            continue;
        }
        events[out].tcp = tcp;
        events[out].ready = ready;
        out++;
        tcp->armed = 0;
    }
    return out;
}

/* ANCHOR: wait */
int sys_poll_wait(struct sys_poll *sys, struct sys_event *events, size_t capacity,
                  int timeout_ms, size_t *n, bool *woken)
{
    /* A stream already on the ready list is an event now: do not sleep. */
    DWORD timeout = sys->ready_head ? 0 : timeout_ms < 0 ? INFINITE : (DWORD)timeout_ms;
    ULONG got = 0;
    /* Completions are not events: all of them are dequeued (up to the
     * array's size) whatever the caller's capacity, and only take_ready()
     * is bounded by it. Alertable (TRUE): an APC queued to this thread runs
     * and ends the wait with WAIT_IO_COMPLETION, Windows' EINTR. */
    if (!GetQueuedCompletionStatusEx(sys->port, sys->entries, SYS_MAX_EVENTS, &got, timeout,
                                     TRUE)) {
        DWORD error = GetLastError();
        if (error == WAIT_IO_COMPLETION)
            return EVQ_EINTR; /* evq.c retries with the time that is left */
        if (error != WAIT_TIMEOUT)
            return evq_error_from_win32(error);
        got = 0;
    }
    for (ULONG i = 0; i < got; i++)
        dispatch(sys, &sys->entries[i], woken);
    *n = take_ready(sys, events, capacity);
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
    /* Every stream's I/O has been cancelled (sys_tcp_detach, sys_tcp_close).
     * Before the port goes, wait until the kernel has handed back every
     * OVERLAPPED, and free each retired stream with its last one.
     * Cancellation is prompt; the time limit only guards against a driver
     * that never answers, and then leaking is the safe choice: freeing
     * would let the kernel write into memory that is no longer ours. */
    uint64_t give_up = evq_clock_now_ns() + 10 * EVQ_NS_PER_S;
    while (sys->in_flight > 0 && evq_clock_now_ns() < give_up) {
        ULONG got = 0;
        if (!GetQueuedCompletionStatusEx(sys->port, sys->entries, SYS_MAX_EVENTS, &got, 100, FALSE))
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

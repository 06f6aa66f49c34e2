/* evq_testing.h - hooks that let a test see inside evq_poll_wait.
 *
 * Not part of the API a program uses: the tests in tests/ch06 (and chapter 7's, on this copy) need them to
 * prove what cannot be seen from outside - that an interrupted wait is
 * retried with the time that is left (not the whole timeout again), that
 * a stream closed with a read in flight is freed only once the kernel has
 * handed its buffer back, where each name lookup went, and how many
 * kernel waits and registration calls the queue made.
 */
#ifndef EVQ_TESTING_H
#define EVQ_TESTING_H

#include <stddef.h>
#include <stdint.h>

#include "evq.h"
#include "evq_clock.h"

/* Called by evq_poll_wait just before each kernel wait, with the timeout it
 * is about to pass (-1: none). The hook may change *timeout_ms (a test turns
 * a long wait into a poll, so that it does not sleep). Returning EVQ_EINTR
 * stands for a signal that interrupted the kernel wait at once: the kernel
 * is not called and the wait loop handles EVQ_EINTR as it would errno ==
 * EINTR. Any other non-zero value is returned as the kernel's error. */
typedef int (*evq_wait_hook)(void *context, int *timeout_ms);

/* Install (or, with NULL, remove) the hook. Call before any wait. */
void evq_poll_set_wait_hook(evq_poll *poll, evq_wait_hook hook, void *context);

/* ANCHOR: poll_hooks */
/* Two places where a test holds a thread, to make a race happen the same
 * way every time. The dispatch hook runs in evq_poll_wait after a kernel
 * wait returned events, before their keys are looked up (a stream closed
 * meanwhile on another thread must be dropped); the add hook runs in
 * evq_tcp_connect, evq_tcp_listen and evq_tcp_accept once the call is
 * inside the queue, before the new stream joins it (evq_poll_close on
 * another thread must wait for it, and the call must return EVQ_ECLOSED).
 * NULL removes one. Install before the threads start. */
typedef void (*evq_poll_hook)(void *context);
void evq_poll_set_dispatch_hook(evq_poll *poll, evq_poll_hook hook, void *context);
void evq_poll_set_add_hook(evq_poll *poll, evq_poll_hook hook, void *context);
/* ANCHOR_END: poll_hooks */

/* The key the kernel carries for the stream's events now: its slot in the
 * queue's key table in the low 32 bits, the slot's generation in the high
 * 32 (UINT64_MAX for NULL). A test sees a slot reused with it. */
uint64_t evq_tcp_get_key(const evq_tcp *stream);

/* The references the stream has now: the caller's handle (until
 * evq_tcp_close), one per call in progress on it - a call blocked on the
 * stream's lock included - and one per waiter holding it. A test waits for
 * a thread to be inside a call with it. */
unsigned evq_tcp_get_references(const evq_tcp *stream);

/* Read time from `clock` instead of the monotonic clock (an evq_fake_clock
 * moved by the hook). Call before any wait, and before any deadline is set
 * or any name looked up: deadlines and the resolver's cache use it too. */
void evq_poll_set_clock(evq_poll *poll, evq_clock clock);

/* Streams closed while the kernel still owned one of their OVERLAPPEDs and
 * buffers (IOCP), which the queue frees when the completion is dequeued.
 * Always 0 on epoll and kqueue: a readiness queue lends nothing to the
 * kernel. */
size_t evq_poll_retired_streams(const evq_poll *poll);

/* Called before every receive and send system call a stream makes (recv /
 * send; WSARecv / WSASend on IOCP), with EVQ_IO_RECEIVE or EVQ_IO_SEND and
 * the byte count about to be asked for. The hook may lower *len (never to
 * 0) to force short reads and partial writes. Returning EVQ_EINTR stands
 * for a signal that interrupted the call before it moved a byte: the call
 * is not made, and the library handles it as errno == EINTR (it retries).
 * Any other non-zero value is taken as the call's error (EVQ_ECONNRESET:
 * a reset in the middle of a transfer).
 * On a listener, EVQ_IO_ACCEPT comes before each accept() (IOCP: before the
 * socket for the next AcceptEx is made, which is what fails when
 * descriptors run out); *len means nothing, and a non-zero value is that
 * call's error (EVQ_EMFILE: out of descriptors). */
enum evq_io_direction { EVQ_IO_RECEIVE, EVQ_IO_SEND, EVQ_IO_ACCEPT };
typedef int (*evq_io_hook)(void *context, enum evq_io_direction direction, size_t *len);

/* Install (or, with NULL, remove) the hook on one stream. Streams accepted
 * from a listener get the listener's hook. */
void evq_tcp_set_io_hook(evq_tcp *stream, evq_io_hook hook, void *context);

/* Where the queue's name lookups went, and what became of them. */
typedef struct evq_lookup_stats {
    uint64_t numeric;    /* answered on the caller's thread: a numeric address */
    uint64_t cache_hits; /* answered on the caller's thread: the cache */
    uint64_t submitted;  /* sent to the resolver's threads */
    uint64_t delivered;  /* answers evq_poll_wait collected */
    uint64_t cancelled;  /* lookups of streams closed (or timed out) while resolving */
    uint64_t dropped;    /* answers a worker threw away: cancelled while running, or shut down */
    size_t running_peak; /* the most lookups running at once */
    size_t live;         /* lookups held now: queued, running, or answered and not collected */
    size_t workers;      /* resolver threads started */
} evq_lookup_stats;

void evq_poll_get_lookup_stats(evq_poll *poll, evq_lookup_stats *out);

/* ANCHOR: kernel_stats */
/* What the queue asked of its kernel. A stream's kernel events (edges, or
 * IOCP completions) are in evq_tcp_stats.kernel_events. */
typedef struct evq_kernel_stats {
    uint64_t waits;         /* kernel waits (epoll_wait, kevent, GetQueuedCompletionStatusEx) */
    uint64_t control_calls; /* registration calls: epoll_ctl, kevent() with changes,
                               CreateIoCompletionPort for a socket */
} evq_kernel_stats;

void evq_poll_get_kernel_stats(evq_poll *poll, evq_kernel_stats *out);
/* ANCHOR_END: kernel_stats */

#endif

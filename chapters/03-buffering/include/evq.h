/* evq.h - chapter 2: a one-shot event queue on epoll, kqueue or IOCP.
 *
 * One API, three kernel interfaces behind it (chosen at build time: the
 * library is ch03_epoll, ch03_kqueue or ch03_iocp). The shape is mio's:
 *
 *     evq_poll_open(&poll);
 *     evq_tcp_connect(poll, "127.0.0.1", port, &stream);   // blocking, then non-blocking
 *     evq_register(poll, stream, 7, EVQ_READABLE);        // 7: the caller's token
 *     evq_poll_wait(poll, events, 16, -1, &n);             // events[i].token == 7
 *     evq_tcp_read(stream, buf, sizeof buf, &got);         // until EVQ_EWOULDBLOCK
 *     evq_reregister(poll, stream, 7, EVQ_READABLE);      // one-shot: arm again
 *
 * The contract, the same on every backend:
 *
 * - One-shot. After an event, the stream is disarmed - for every interest,
 *   not only the one that fired - until evq_reregister() arms it again.
 *   Each arming produces at most one event. Readiness is level-style: a
 *   stream re-armed while its data is still unread is reported again.
 * - wait() writes at most `capacity` events; more ready streams are reported
 *   by the next calls. A timeout is rounded up to whole milliseconds, -1
 *   waits for ever, 0 only looks. An interrupted wait (a signal on POSIX, an
 *   APC on Windows) is retried with the time that is left. A wait that
 *   returns with *n == 0 before its timeout was woken by evq_poll_wake().
 * - A token is any 64-bit value, 0 and UINT64_MAX included: it comes back
 *   untouched. The waker is not a token and never shows up as an event.
 * - EVQ_READABLE: a read will not return EVQ_EWOULDBLOCK (it returns data,
 *   EVQ_EOF or the connection's error). EVQ_WRITABLE: a write will not
 *   return EVQ_EWOULDBLOCK. EVQ_HUP: the peer has closed its side (reads
 *   return EVQ_EOF once the data before it is read). EVQ_ERR: the connection
 *   failed (reads and writes return its error). HUP and ERR are never asked
 *   for; they come with the interest they concern.
 * - EOF and errors reach the reader after the data before them, and stay:
 *   once a read returns EVQ_EOF or an error, every later read returns the
 *   same code. Writing to a peer that has gone returns an error (EVQ_EPIPE,
 *   EVQ_ECONNRESET...), never a SIGPIPE.
 * - Threads: one thread uses a queue and its streams. Only evq_poll_wake(),
 *   evq_poll_shutdown() and evq_poll_close() may be called from another
 *   thread while it waits (chapter 6 makes registration thread-safe). A
 *   second thread calling evq_poll_wait() while one waits gets EVQ_EBUSY.
 * - Misuse returns a code, never undefined behaviour: EVQ_EINVAL (NULL,
 *   capacity 0, an interest other than READABLE/WRITABLE, a stream of
 *   another queue), EVQ_EEXIST (registered twice), EVQ_ENOENT (re-register
 *   or deregister a stream that is not registered), EVQ_ECLOSED (a queue
 *   that was shut down, or a stream whose queue was closed).
 *
 * What this chapter does NOT do yet, on purpose: DNS and connect block
 * (chapter 4), each stream has one fixed buffer on IOCP and the caller
 * reads into its own array everywhere (chapter 3), and every event costs a
 * re-arm system call (chapter 5 goes edge-triggered).
 */
#ifndef EVQ_H
#define EVQ_H

#include <stddef.h>
#include <stdint.h>

#include "evq_error.h"

typedef struct evq_poll evq_poll; /* an epoll fd, a kqueue or a completion port */
typedef struct evq_tcp evq_tcp;   /* a TCP stream; the library owns it (IOCP needs its buffers) */
typedef uint64_t evq_token;       /* the caller's id for a stream, returned with its events */

/* ANCHOR: types */
/* Interests (what evq_register asks for) and readiness (what an event says).
 * The error bit is EVQ_ERR, not EVQ_ERROR: that name is the logger's macro. */
enum evq_ready {
    EVQ_READABLE = 1 << 0,
    EVQ_WRITABLE = 1 << 1,
    EVQ_ERR = 1 << 2, /* readiness only */
    EVQ_HUP = 1 << 3, /* readiness only */
};

typedef struct evq_event {
    evq_token token; /* as given to evq_register / evq_reregister */
    uint32_t ready;  /* EVQ_READABLE | EVQ_WRITABLE | EVQ_ERR | EVQ_HUP */
} evq_event;
/* ANCHOR_END: types */

/* The backend this library was built for: "epoll", "kqueue" or "iocp". */
const char *evq_backend(void);

/* ---- the queue ---------------------------------------------------------- */

int evq_poll_open(evq_poll **out);

/* Wait up to timeout_ms (-1: no limit) for events; *n is how many were
 * written to events[0 .. capacity-1]. Returns 0 with *n == 0 on a timeout
 * or a wake-up. EVQ_ECLOSED once the queue is shut down (a wait blocked at
 * that moment returns it too). */
int evq_poll_wait(evq_poll *poll, evq_event *events, size_t capacity, int timeout_ms, size_t *n);

/* Make the wait in progress, or else the next one, return. Any thread.
 * Several wakes before a wait count as one. */
int evq_poll_wake(evq_poll *poll);

/* Mark the queue closed and wake a thread blocked in evq_poll_wait (it
 * returns EVQ_ECLOSED); every later call on the queue returns EVQ_ECLOSED
 * and evq_tcp_close() still works. The memory stays valid until
 * evq_poll_close(). Any thread; calling it twice is harmless. */
int evq_poll_shutdown(evq_poll *poll);

/* Shut the queue down, wait for a thread blocked in evq_poll_wait to leave
 * it, then free everything. Safe while another thread is blocked in
 * evq_poll_wait; not while another thread may still *start* a call on this
 * queue (stop those threads first: evq_poll_shutdown, then join them).
 * Streams made on this queue stay valid: their I/O is cancelled, reads and
 * writes return EVQ_ECLOSED, and evq_tcp_close() frees them. NULL is
 * ignored. */
void evq_poll_close(evq_poll *poll);

/* ---- registrations -------------------------------------------------------- */

/* Arm `stream` (made on this queue) for `interests`, one-shot. */
int evq_register(evq_poll *poll, evq_tcp *stream, evq_token token, unsigned interests);
/* Arm a registered stream again, with a new token and interests. */
int evq_reregister(evq_poll *poll, evq_tcp *stream, evq_token token, unsigned interests);
/* Remove a registered stream: no events for it until it is registered again. */
int evq_deregister(evq_poll *poll, evq_tcp *stream);

/* ---- streams ------------------------------------------------------------ */

/* Resolve host (blocking getaddrinfo), connect (blocking), then make the
 * socket non-blocking. The stream belongs to `poll` for its whole life: on
 * IOCP a socket is tied to one completion port for good. EVQ_ECONNREFUSED,
 * EVQ_EAI_NONAME, ... on failure. */
int evq_tcp_connect(evq_poll *poll, const char *host, uint16_t port, evq_tcp **out);

/* Copy up to len (> 0) received bytes into buf. EVQ_EWOULDBLOCK: nothing to
 * read now (wait for EVQ_READABLE); EVQ_EOF: the peer closed. */
int evq_tcp_read(evq_tcp *stream, void *buf, size_t len, size_t *n);

/* Send up to len bytes; *n says how many were taken (possibly fewer than
 * len). EVQ_EWOULDBLOCK: nothing taken now (wait for EVQ_WRITABLE). On IOCP
 * "taken" means copied into the stream's buffer for an overlapped send: an
 * error that send meets later is returned by the next write. */
int evq_tcp_write(evq_tcp *stream, const void *buf, size_t len, size_t *n);

/* Deregister if needed, close the socket and free the stream. On IOCP an
 * operation still in flight is cancelled, and the queue frees its buffers
 * once the kernel has given them back. NULL is ignored. */
void evq_tcp_close(evq_tcp *stream);

#endif

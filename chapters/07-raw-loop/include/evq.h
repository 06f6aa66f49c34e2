/* evq.h - chapter 7: chapter 6's queue, which chapter 7's program runs on,
 * with one addition: evq_tcp_listen_shared, a listener per loop thread on one
 * port. Chapter 6's description follows.
 *
 * Chapter 6: a one-shot event queue on epoll, kqueue or IOCP, with
 * buffered streams, a listener, and nothing that blocks: names are resolved
 * on a thread pool, connects are non-blocking, and every stream may have a
 * deadline. The kernel is edge-triggered underneath: a socket is registered
 * once, arming is the library's own bookkeeping (no system call), several
 * threads may wait on one queue, and any thread may register, re-arm and
 * close streams while they do.
 *
 * One API, three kernel interfaces behind it (chosen at build time: the
 * library is ch07_epoll, ch07_kqueue or ch07_iocp). The shape is mio's:
 *
 *     evq_poll_open(&poll);
 *     evq_tcp_connect(poll, "example.org", port, &stream); // returns at once
 *     evq_tcp_set_deadline(stream, 5000);                  // lookup + connect: 5 s
 *     evq_register(poll, stream, 7, EVQ_WRITABLE);         // 7: the caller's token
 *     evq_poll_wait(poll, events, 16, -1, &n);             // connected: WRITABLE
 *     evq_tcp_read(stream, buf, sizeof buf, &got);         // until EVQ_EWOULDBLOCK
 *     evq_reregister(poll, stream, 7, EVQ_READABLE);       // one-shot: arm again
 *
 * The contract, the same on every backend:
 *
 * - One-shot. After an event, the stream is disarmed - for every interest,
 *   not only the one that fired - until evq_reregister() arms it again.
 *   Each arming produces at most one event. A stream re-armed with
 *   something its caller has not seen yet is reported again at once; one
 *   re-armed with nothing new sleeps until something new comes. Arming
 *   makes no system call: the socket has been in the kernel, edge-triggered,
 *   since the stream joined the queue, and what the kernel said meanwhile
 *   is remembered in the stream.
 * - wait() writes at most `capacity` events; more ready streams are reported
 *   by the next calls, first come, first served. Streams ready in the
 *   library's own buffers and streams the kernel reports share the
 *   capacity: neither can starve the other. One turn moves at most
 *   turn_budget bytes each way for a stream (evq_tcp_limits), so one peer
 *   that floods cannot hold the others up. A timeout is rounded up to whole milliseconds, -1
 *   waits for ever, 0 only looks. An interrupted wait (a signal on POSIX, an
 *   APC on Windows) is retried with the time that is left. A wait that
 *   returns with *n == 0 before its timeout was woken by evq_poll_wake():
 *   the queue's own wake-ups (a lookup that finished on the pool) and
 *   deadlines with nothing to tell send it back to sleep for the time left.
 * - A token is any 64-bit value, 0 and UINT64_MAX included: it comes back
 *   untouched. The waker is not a token and never shows up as an event.
 * - EVQ_READABLE: something the caller has not seen - bytes no peek has
 *   shown yet - or the end: EVQ_EOF or the connection's error (reported
 *   every time the stream is armed, as the kernel keeps a socket at its
 *   end readable). A read (on a listener, an accept) will not return
 *   EVQ_EWOULDBLOCK. Bytes a peek has shown and the caller left in the
 *   buffer do not count: a parser that needs more re-arms and sleeps until
 *   more comes (were they counted, it would be woken at once, for ever).
 *   One exception, read_api below: a full buffer is READABLE every time.
 *   EVQ_WRITABLE: the write queue has room (it holds write_low bytes or
 *   fewer), so a write takes bytes; on a stream made by evq_tcp_connect,
 *   not before the connection is made. EVQ_HUP: the peer has closed its side
 *   (reads return EVQ_EOF once the data before it is read). EVQ_ERR: the
 *   connection failed (reads and writes return its error). HUP and ERR are
 *   never asked for; they come with the interest they concern.
 *   EVQ_TIMEOUT: the stream's deadline (evq_tcp_set_deadline) has passed;
 *   never asked for either, it comes once, with whatever the stream is
 *   armed for, the first time it is armed after the deadline.
 * - Connecting. evq_tcp_connect never blocks: see its comment below. A
 *   connect that fails (every address tried) is reported as EVQ_ERR |
 *   EVQ_HUP with whatever is armed, every time the stream is armed, and
 *   every read and write returns its code.
 * - EOF and errors reach the reader after the data before them, and stay:
 *   once a read returns EVQ_EOF or an error, every later read returns the
 *   same code. A send that fails in the background is reported once as an
 *   event (EVQ_ERR) and then by every write. Writing to a peer that has
 *   gone returns an error (EVQ_EPIPE, EVQ_ECONNRESET...), never a SIGPIPE.
 * - Interrupted reads and writes (EINTR) are retried inside the library.
 * - Threads. Any number of threads may call evq_poll_wait() on one queue at
 *   once. Each event is handed to exactly one of them, and the stream it
 *   names then belongs to that thread - its owner - until the owner arms it
 *   again (evq_reregister) or closes it: no other thread is told of it
 *   meanwhile. While they wait, ANY thread may:
 *     - make streams: evq_tcp_connect, evq_tcp_listen, evq_tcp_accept;
 *     - register, re-arm, deregister any stream, set its deadline, and
 *       close it - at any time, whoever owns it. A close that races with a
 *       call in progress on another thread lets that call finish: it
 *       completes, or returns EVQ_ECLOSED, and the stream's memory lasts
 *       until it has left. An event the kernel gave a waiter before the
 *       close is dropped, never told (the kernel is handed a key, not the
 *       stream's address: see key_table.h);
 *     - wake, shut down or close the queue (below).
 *   The data calls on one stream - read, peek, consume, write, shutdown,
 *   and accept on a listener - are made by one thread at a time (the
 *   owner): a second thread's data call while one is in progress returns
 *   EVQ_EBUSY at once. A peek's pointer is its caller's until that
 *   caller's next call on the stream; a close from another thread ends it.
 *   What no library of handles can make safe: a call that STARTS after
 *   evq_tcp_close (or evq_poll_close) has returned uses freed memory, as
 *   read() after close() uses a descriptor that may be another file's by
 *   then. Close a stream when no thread will start a call on it any more.
 *   The queue starts threads of its own, the resolver's, on the first
 *   lookup that needs one; the resolve function runs on them.
 * - Misuse returns a code, never undefined behaviour: EVQ_EINVAL (NULL,
 *   capacity 0, an interest other than READABLE/WRITABLE, a stream of
 *   another queue), EVQ_EEXIST (registered twice), EVQ_ENOENT (re-register
 *   or deregister a stream that is not registered), EVQ_ECLOSED (a queue
 *   that was shut down, a stream whose queue was closed, or a stream closed
 *   on another thread while the call waited for it), EVQ_EBUSY (a data
 *   call while another thread is in one on the same stream).
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
    EVQ_ERR = 1 << 2,     /* readiness only */
    EVQ_HUP = 1 << 3,     /* readiness only */
    EVQ_TIMEOUT = 1 << 4, /* readiness only: the stream's deadline has passed */
};

typedef struct evq_event {
    evq_token token; /* as given to evq_register / evq_reregister */
    uint32_t ready;  /* EVQ_READABLE | EVQ_WRITABLE | EVQ_ERR | EVQ_HUP | EVQ_TIMEOUT */
} evq_event;
/* ANCHOR_END: types */

/* The backend this library was built for: "epoll", "kqueue" or "iocp". */
const char *evq_backend(void);

/* ---- names and addresses -------------------------------------------------- */

/* ANCHOR: address */
/* One TCP address, IPv4 or IPv6, with its port: the bytes of a struct
 * sockaddr_in or sockaddr_in6, `length` of them, as connect() takes them.
 * Opaque here, so that this header needs no socket header; a resolve
 * function fills it with evq_address_list_add. */
#define EVQ_ADDRESS_MAX 28 /* sizeof(struct sockaddr_in6), the largest */
typedef struct evq_address {
    uint32_t length;                      /* 16 (IPv4) or 28 (IPv6) */
    unsigned char bytes[EVQ_ADDRESS_MAX]; /* copied in and out with memcpy */
} evq_address;

/* Addresses in the order the resolver gave them (the order to try them in).
 * {0} is an empty list; evq_address_list_free leaves it empty again. */
typedef struct evq_address_list {
    evq_address *items;
    size_t count;
    size_t capacity;
} evq_address_list;
/* ANCHOR_END: address */

struct sockaddr; /* <sys/socket.h>, <winsock2.h>: only a resolve function needs them */

/* Append a copy of `address` (length bytes). EVQ_EAFNOSUPPORT for a family
 * other than AF_INET and AF_INET6 (nothing is added), EVQ_EINVAL for a
 * length too short for its family, EVQ_ENOMEM. */
int evq_address_list_add(evq_address_list *list, const struct sockaddr *address, size_t length);

/* Make `to` (empty) a copy of `from`. EVQ_ENOMEM leaves `to` empty. */
int evq_address_list_copy(evq_address_list *to, const evq_address_list *from);

/* Free the items; the list is empty and reusable afterwards. NULL is ignored. */
void evq_address_list_free(evq_address_list *list);

/* ANCHOR: resolve_fn */
/* A resolver function: turn host (UTF-8: a name, or a numeric IPv4 or IPv6
 * address) and port into TCP addresses, appended to `out` (empty on entry)
 * with evq_address_list_add.
 *
 * - Returns 0 with at least one address, or an EVQ_E* code: EVQ_EAI_NONAME
 *   (no such name: an answer), EVQ_EAI_AGAIN (try later: not an answer),
 *   EVQ_EAI_FAIL, EVQ_ENOMEM, EVQ_EINVAL... On failure, whatever it added
 *   to `out` is freed by the caller; 0 with no address counts as
 *   EVQ_EAI_NONAME.
 * - It runs on the worker threads of the queue's resolver, on several at
 *   once: it must be thread-safe. It may block (that is why it runs there)
 *   but must return: a running lookup cannot be interrupted, and closing
 *   the queue waits for it. (evq_tcp_listen calls it on its caller's
 *   thread: a server's own address, once.)
 * - `context` is the pointer given with it, untouched. */
typedef int (*evq_resolve_fn)(const char *host, uint16_t port, evq_address_list *out,
                              void *context);
/* ANCHOR_END: resolve_fn */

/* The system's resolver: getaddrinfo() on POSIX, GetAddrInfoW() on Windows
 * (the name converted from UTF-8 to UTF-16), TCP addresses of both families
 * in the order the system prefers. `localhost` and numeric addresses are
 * answered from the hosts file and the string itself, without the network.
 * `context` is not used. */
int evq_resolve_system(const char *host, uint16_t port, evq_address_list *out, void *context);

/* ---- the queue ---------------------------------------------------------- */

/* ANCHOR: options */
/* What a queue is opened with (evq_poll_get_default_options gives the
 * defaults, in brackets). The resolver's threads start on the first lookup
 * that needs one: a program that never resolves a name pays for none. */
typedef struct evq_poll_options {
    unsigned resolver_threads; /* lookups run at once, 1..64 [4, as libuv's UV_THREADPOOL_SIZE] */
    size_t resolver_queue;     /* lookups pending at most; past it, evq_tcp_connect says
                                  EVQ_EFULL rather than wait [1024] */
    size_t cache_entries;      /* names kept, least recently used forgotten first; 0: none [256] */
    uint32_t cache_max_age_ms; /* an answer is used this long [30000] */
    uint32_t
        cache_negative_age_ms; /* "no such name" is believed this long; 0: never kept [10000] */
    evq_resolve_fn resolve;    /* [evq_resolve_system]; a test injects a fake */
    void *resolve_context;     /* handed to resolve, untouched [NULL] */
} evq_poll_options;
/* ANCHOR_END: options */

void evq_poll_get_default_options(evq_poll_options *out);
/* EVQ_EINVAL for options outside the ranges above. */
int evq_poll_open_with_options(evq_poll **out, const evq_poll_options *options);
/* evq_poll_open_with_options with the defaults. */
int evq_poll_open(evq_poll **out);

/* Wait up to timeout_ms (-1: no limit) for events; *n is how many were
 * written to events[0 .. capacity-1]. Returns 0 with *n == 0 on a timeout
 * or a wake-up. EVQ_ECLOSED once the queue is shut down (a wait blocked at
 * that moment returns it too). */
int evq_poll_wait(evq_poll *poll, evq_event *events, size_t capacity, int timeout_ms, size_t *n);

/* Make a wait in progress (at least one, when several threads wait), or
 * else the next one, return with *n == 0. Any thread. Several wakes before
 * a wait count as one. */
int evq_poll_wake(evq_poll *poll);

/* Mark the queue closed and wake every thread blocked in evq_poll_wait
 * (each returns EVQ_ECLOSED); every later call on the queue returns EVQ_ECLOSED
 * and evq_tcp_close() still works. Lookups still queued are never run,
 * running ones are dropped when they return. The memory stays valid until
 * evq_poll_close(). Any thread; calling it twice is harmless. */
int evq_poll_shutdown(evq_poll *poll);

/* Shut the queue down, wait for every thread blocked in evq_poll_wait to
 * leave it and for every call inside it to finish (a call that makes a
 * stream, or registers one, on another thread at that moment returns
 * EVQ_ECLOSED), wait for the resolver's threads to finish the lookups they
 * are in (a lookup cannot be interrupted), then free everything. Not while
 * another thread may still *start* a call on this queue after it returns
 * (stop those threads first: evq_poll_shutdown, then join them).
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

/* ANCHOR: limits */
/* How much a stream may buffer, and when. Defaults (evq_tcp_get_default_limits):
 * reads start at 4 KiB and double up to 256 KiB; the write queue holds at
 * most 1 MiB and says WRITABLE again once it has drained to 256 KiB; one
 * turn moves at most 64 KiB each way. */
typedef struct evq_tcp_limits {
    size_t read_initial; /* the read buffer's size when it is (re)allocated, > 0 */
    size_t read_max;     /* it doubles while a fill finds it full, up to this (>= read_initial) */
    size_t write_high;   /* the write queue never holds more than this (> 0) */
    size_t write_low; /* WRITABLE is reported once the queue is at or below this (< write_high) */
    int zero_byte_receive; /* IOCP: wait for data with a 0-byte WSARecv (no buffer lent); ignored
                              elsewhere */
    size_t turn_budget;    /* bytes the queue receives, and sends, for the stream in one turn,
                              at most (> 0): the fairness budget (see evq_tcp_read) */
} evq_tcp_limits;
/* ANCHOR_END: limits */

/* evq_tcp_get_* copies settings or counters out; evq_tcp_set_* copies them in. */
void evq_tcp_get_default_limits(evq_tcp_limits *out);
/* Change a stream's limits (a listener passes its limits on to the streams
 * it accepts). EVQ_EINVAL for limits that break the rules above. Shrinking
 * below what is buffered now keeps the data: the new limits apply as the
 * buffers drain. */
int evq_tcp_set_limits(evq_tcp *stream, const evq_tcp_limits *limits);

/* What a stream holds now, and the most it ever held: for tests, for the
 * benchmarks' memory figures, and for a server that wants to watch itself. */
typedef struct evq_tcp_stats {
    size_t read_buffered;      /* bytes received and not yet consumed */
    size_t read_capacity;      /* bytes allocated for the read buffer now (0: none) */
    size_t read_capacity_peak; /* the most it was ever */
    size_t write_queued;       /* bytes taken by evq_tcp_write, not yet confirmed sent */
    size_t write_queued_peak;  /* the most it was ever (never above write_high) */
    size_t kernel_lent;        /* IOCP: bytes of buffer the kernel owns now; 0 elsewhere */
    uint64_t receive_calls;    /* recv/WSARecv calls made, EINTR retries included */
    uint64_t send_calls;       /* send/WSASend calls made, EINTR retries included */
    uint64_t kernel_events;    /* events the kernel reported for it: edges, or IOCP completions */
} evq_tcp_stats;
int evq_tcp_get_stats(const evq_tcp *stream, evq_tcp_stats *out);

/* ANCHOR: connect_api */
/* A stream connecting to host:port, returned at once: nothing here blocks.
 * A numeric host (127.0.0.1, ::1) or a name the cache knows is answered on
 * this thread and the connect starts now; any other name goes to the
 * resolver's threads, and the connect starts when the answer comes (during
 * evq_poll_wait). Each address of the answer is tried in turn, each with a
 * new non-blocking socket, until one connects. Register the stream as any
 * other: the outcome is an event.
 *   - connected: EVQ_WRITABLE, if armed for it (READABLE comes with data);
 *   - failed: EVQ_ERR | EVQ_HUP with whatever is armed, and every read and
 *     write returns why - the last address's error (EVQ_ECONNREFUSED,
 *     EVQ_ETIMEDOUT, EVQ_EHOSTUNREACH, EVQ_ENETUNREACH...) or the lookup's
 *     (EVQ_EAI_NONAME, EVQ_EAI_AGAIN...).
 * Until then reads say EVQ_EWOULDBLOCK, and writes are queued (up to
 * write_high) and sent once connected. Nothing limits how long it takes
 * but the kernel's own connect timeout (minutes): give the stream a
 * deadline (evq_tcp_set_deadline), which covers the lookup and every
 * address. Closing the stream cancels all of it. The stream belongs to
 * `poll` for its whole life (on IOCP a socket is tied to one completion
 * port for good). Returns EVQ_EINVAL (bad arguments, a host longer than
 * 255 bytes), EVQ_EFULL (resolver_queue lookups pending), EVQ_ENOMEM or
 * EVQ_ECLOSED, and then no stream is made. Default limits. */
int evq_tcp_connect(evq_poll *poll, const char *host, uint16_t port, evq_tcp **out);
/* ANCHOR_END: connect_api */

/* ANCHOR: deadline_api */
/* The stream's deadline: timeout_ms from now, on the queue's clock, in
 * place of any deadline it had (a deadline that passed and was not yet
 * told is forgotten too); -1 clears it. When it passes, the stream is
 * ready with EVQ_TIMEOUT - told once, with whatever it is armed for, as
 * soon as it is armed. A stream still resolving or connecting then gives
 * up at once (lookup cancelled, socket closed) and reads and writes return
 * EVQ_ETIMEDOUT. Otherwise nothing else happens to the stream: what a
 * timeout means (408, a close) is the caller's to decide. One deadline per
 * stream, kept by the queue: evq_poll_wait sleeps no longer than the
 * nearest one. EVQ_EINVAL (NULL, timeout_ms < -1), EVQ_ECLOSED. */
int evq_tcp_set_deadline(evq_tcp *stream, int timeout_ms);
/* ANCHOR_END: deadline_api */

/* A listening stream on host:port (port 0: the system picks one; see
 * evq_tcp_local_port; backlog <= 0: the system's maximum, SOMAXCONN). A
 * name is resolved here, on this thread, with the queue's resolve function
 * (a server resolves its own address once, before its loop runs): the one
 * call that may block.
 * READABLE on a listener means evq_tcp_accept will not return
 * EVQ_EWOULDBLOCK; it is never WRITABLE (registering it so is EVQ_EINVAL).
 * Reads, writes and shutdown on a listener are EVQ_EINVAL. */
int evq_tcp_listen(evq_poll *poll, const char *host, uint16_t port, int backlog, evq_tcp **out);
/* ANCHOR: listen_shared */
/* evq_tcp_listen, but the port may be shared: every loop thread of a server
 * opens its own listener on the same host:port, on its own queue, and the
 * kernel spreads the incoming connections over them (SO_REUSEPORT on Linux,
 * SO_REUSEPORT_LB where FreeBSD has it). Port 0 picks a free port for the
 * first listener; pass that port to the others. EVQ_ENOTSUP on Windows,
 * which has no such option (its SO_REUSEADDR lets a second socket take the
 * port over, and spreads nothing). */
int evq_tcp_listen_shared(evq_poll *poll, const char *host, uint16_t port, int backlog,
                          evq_tcp **out);
/* ANCHOR_END: listen_shared */
int evq_tcp_local_port(const evq_tcp *stream, uint16_t *port);
/* Take one pending connection: a new, non-blocking, unregistered stream on
 * the listener's queue, with the listener's limits. EVQ_EWOULDBLOCK: none
 * pending now (also for a connection that failed while it waited: Linux's
 * accept() reports its network error, and it is gone). On IOCP the
 * connection was accepted ahead with AcceptEx. EVQ_EMFILE (or EVQ_ENOBUFS):
 * out of descriptors - the connection stays in the backlog, and the
 * listener rests: it is not reported READABLE for a moment (100 ms),
 * whatever its arming, so that a loop that re-arms it does not spin. */
int evq_tcp_accept(evq_tcp *listener, evq_tcp **out);

/* ANCHOR: read_api */
/* Reading. The stream keeps its own buffer: a fill moves bytes from the
 * socket into it until the socket would block (or the buffer is full at
 * read_max). EOF and errors come after the data before them, and then
 * every time. The stream also remembers which buffered bytes the caller
 * has been shown: READABLE reports only what it has not seen, so a parser
 * can leave half a message in place and sleep until the rest comes. */

/* Copy up to len (> 0) buffered bytes into buf; copied bytes are consumed.
 * EVQ_EWOULDBLOCK: nothing to read now - wait for EVQ_READABLE (once the
 * socket was found empty, the library does not ask it again until the
 * kernel says it is readable); EVQ_EOF: the peer shut down writing. */
int evq_tcp_read(evq_tcp *stream, void *buf, size_t len, size_t *n);

/* Fill, then show every buffered byte without copying, and mark them seen:
 * *data stays valid until the next call on this stream. Same codes as a
 * read. */
int evq_tcp_peek(evq_tcp *stream, const void **data, size_t *len);
/* Drop the first n buffered bytes (n <= what peek showed: else EVQ_EINVAL).
 * A buffer full at read_max whose bytes were all seen cannot take new ones,
 * so waiting for them would never end: it is READABLE at once every time
 * it is armed. Consume, or give up on a message that large. An emptied
 * buffer shrinks back to read_initial once the socket is found empty (an
 * idle stream costs that); a stream that keeps receiving keeps its size. */
int evq_tcp_consume(evq_tcp *stream, size_t n);
/* ANCHOR_END: read_api */

/* ANCHOR: write_api */
/* Writing. The stream keeps a queue: a write sends what the socket takes
 * now and queues the rest, and the queue sends the rest by itself during
 * evq_poll_wait (it asks the kernel for write readiness only while bytes are
 * queued, whatever the caller registered). The queue holds at most
 * write_high bytes: that is the backpressure. */

/* Take up to len bytes: *n is how many (fewer than len when the queue
 * filled up). EVQ_EWOULDBLOCK: the queue is full, nothing taken - stop
 * producing and wait for EVQ_WRITABLE, which comes once the queue has
 * drained to write_low. A send that failed in the background (the peer
 * reset) is returned here, and as EVQ_ERR in one event. */
int evq_tcp_write(evq_tcp *stream, const void *buf, size_t len, size_t *n);

/* Bytes taken and not yet confirmed sent: still queued, or (IOCP) lent to a
 * send the kernel has not completed yet. */
size_t evq_tcp_queued(const evq_tcp *stream);

/* Half-close: once the queue is empty, send FIN (shutdown(SHUT_WR)). The
 * stream can still read; later writes return EVQ_EPIPE. */
int evq_tcp_shutdown(evq_tcp *stream);
/* ANCHOR_END: write_api */

/* Deregister if needed, close the socket and free the stream; queued bytes
 * not yet sent are dropped (shut down and wait for the queue to empty
 * first to deliver them). Any thread, at any time: calls in progress on
 * other threads finish first, or return EVQ_ECLOSED, and the memory goes
 * when the last has left; an event a waiter already took for it is
 * dropped. On IOCP an operation still in flight is cancelled, and the
 * queue frees its buffers once the kernel has given them back, on
 * whichever thread dequeues the last completion. NULL is ignored. */
void evq_tcp_close(evq_tcp *stream);

#endif

/* sys.h - the internal interface between the portable queue (evq.c) and one
 * backend: poll_epoll.c, poll_kqueue.c or poll_iocp.c for the queue, and
 * tcp_posix.c or tcp_win.c for streams.
 *
 * As redis' aeApi* functions: every backend file defines the same handful
 * of sys_* functions, and the build picks one. evq.c checks arguments,
 * keeps the registration book, owns the wait loop (deadline, EINTR,
 * shutdown) and, since chapter 3, the streams' buffers and the rule that
 * decides what the kernel is armed for and what the caller hears; the
 * backends only talk to their kernel, and translate its flags into
 * EVQ_READABLE... in one place each.
 *
 * Chapter 3's rule, in evq.c: the kernel is armed for
 *     (what the caller armed and has not yet been told about)
 *   | (EVQ_WRITABLE while the write queue holds bytes)
 * whether or not the caller registered the stream at all. The wait flushes
 * the queue when the kernel says WRITABLE, and tells the caller only what
 * the caller armed (WRITABLE only once the queue is at or below write_low).
 * A kernel event with nothing for the caller re-arms the kernel without
 * touching the caller's one-shot arming.
 */
#ifndef EVQ_SYS_H
#define EVQ_SYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buffer.h"
#include "evq.h"
#include "evq_net.h"
#include "evq_testing.h"

/* The most kernel events one wait collects. A caller's array larger than
 * this gets at most this many events per call; a smaller one is never
 * exceeded, because the kernel is never offered more room than the caller
 * has (the bug of the well-known teaching version, which offered 1024). */
#define SYS_MAX_EVENTS 256

/* The most queued segments one send hands the kernel (sendmsg's iovec,
 * WSASend's WSABUF array): 64 chunks of 16 KiB, 1 MiB, the default cap. */
#define SYS_SEND_SEGMENTS 64

/* A backend's state for one queue (an epoll fd and its event array, a
 * kqueue, a completion port). Each poll_*.c defines it. */
struct sys_poll;

/* A stream's I/O state on a completion backend (IOCP): it outlives the
 * evq_tcp when the stream is closed with I/O in flight. tcp_win.c. */
struct sys_stream;

struct evq_tcp {
    evq_socket socket;
    evq_poll *poll;       /* the queue it was made on; NULL once that queue is closed */
    evq_tcp *prev, *next; /* in that queue's list of streams */
    bool listener;        /* made by evq_tcp_listen: accepts, never reads or writes */

    /* The caller's side (evq.c). */
    bool registered;
    evq_token token;
    unsigned caller_armed; /* what the caller armed and has not yet been told about */
    /* On the queue's list of streams armed READABLE that have something
     * the caller has not seen without the kernel's help (bytes past
     * read_buf.seen, a final status, or a buffer full at read_max): the
     * kernel cannot see our buffer, so evq.c reports these. */
    bool on_ready_list;
    evq_tcp *ready_prev, *ready_next;
    /* The kernel's side. `kernel_armed` (evq.c): what the kernel was last
     * armed for by sys_arm and has not reported yet (0 after an event: one
     * kernel event disarms the whole stream, on every backend). */
    unsigned kernel_armed;

    /* Backend bookkeeping. `armed`: the interests that can still produce an
     * event before the next arming (kqueue: knotes not yet fired; IOCP: the
     * emulated arming). `batch_slot`: kqueue's index of this stream's event
     * in the wait being collected, SIZE_MAX outside a wait. `in_kernel`:
     * epoll: the socket is in the epoll set (ADD done, DEL not yet). */
    unsigned armed;
    size_t batch_slot;
    bool in_kernel;

    /* Buffers and limits (buffer.h). */
    evq_tcp_limits limits;
    struct read_buffer read_buf;
    int read_status; /* 0, or the EVQ_EOF or error every later read returns */
    /* The last fill ended in EWOULDBLOCK, and the kernel has not said the
     * socket is readable since: another recv() could only say EWOULDBLOCK
     * again, so evq.c makes none. Set by sys_tcp_fill; cleared by the
     * backend's wait when the kernel reports the socket readable (or hung
     * up, or failed), and by a completion on IOCP. */
    bool read_drained;
    struct write_queue write_queue;
    int write_status;        /* 0, or the error every later write returns */
    bool write_error_told;   /* that error has been reported in an event (or by a write) */
    bool shutdown_requested; /* evq_tcp_shutdown: FIN once the queue is empty */
    bool shutdown_done;      /* FIN sent */

    /* Counters (evq_tcp_stats) and the test hook (evq_testing.h). */
    uint64_t receive_calls, send_calls;
    evq_io_hook io_hook;
    void *io_hook_context;

    struct sys_stream *sys; /* IOCP only; NULL elsewhere */
};

/* What one kernel wait says about one stream: EVQ_READABLE, EVQ_WRITABLE,
 * EVQ_HUP, EVQ_ERR for what it was armed with (tcp->kernel_armed). */
struct sys_event {
    evq_tcp *tcp;
    uint32_t ready;
};

/* ANCHOR: interface */
/* ---- the queue: poll_<backend>.c ---- */
int sys_poll_open(struct sys_poll **out);
/* Free the backend state. Every stream has been deregistered and detached
 * first; IOCP waits here for the kernel to return what it still holds. */
void sys_poll_close(struct sys_poll *sys);
/* One kernel wait: at most `capacity` events (at most one per stream), and
 * *woken set if the waker fired. EVQ_EINTR when interrupted: evq.c retries. */
int sys_poll_wait(struct sys_poll *sys, struct sys_event *events, size_t capacity,
                  int timeout_ms, size_t *n, bool *woken);
int sys_poll_wake(struct sys_poll *sys);
/* Arm the kernel, one-shot, for exactly `interests` (0: for nothing), in
 * place of whatever it was armed for. evq.c calls it only when the wanted
 * set differs from tcp->kernel_armed. */
int sys_arm(struct sys_poll *sys, evq_tcp *tcp, unsigned interests);
/* Take the stream out of the kernel for good (before its socket closes);
 * harmless if it is not there. */
int sys_deregister(struct sys_poll *sys, evq_tcp *tcp);
size_t sys_poll_retired(const struct sys_poll *sys);

/* ---- streams: tcp_posix.c / tcp_win.c ---- */
/* Connect tcp->socket (blocking), make it non-blocking, tie it to the queue. */
int sys_tcp_connect(struct sys_poll *sys, const char *host, uint16_t port, evq_tcp *tcp);
/* A non-blocking listening socket on host:port, tied to the queue. */
int sys_tcp_listen(struct sys_poll *sys, const char *host, uint16_t port, int backlog,
                   evq_tcp *tcp);
/* Accept one pending connection into `tcp` (zeroed, limits and hook copied
 * from the listener): non-blocking, tied to the queue. EVQ_EWOULDBLOCK when
 * none is pending. */
int sys_tcp_accept(struct sys_poll *sys, evq_tcp *listener, evq_tcp *tcp);
/* Move received bytes into tcp->read_buf (read_buffer_reserve with
 * tcp->limits) until the kernel has no more now (then call
 * sys_fill_found_empty) or the buffer is full at read_max (then clear
 * tcp->read_drained). Returns 0, or the final status met after the bytes
 * it added: EVQ_EOF or the connection's error (evq.c keeps it in
 * read_status and reports it once the buffered bytes are read). Never
 * EVQ_EWOULDBLOCK. */
int sys_tcp_fill(evq_tcp *tcp);
/* Hand queued bytes (tcp->write_queue) to the kernel: a readiness backend
 * sends what the socket takes now and pops it; a completion backend starts
 * one overlapped send of the first segments unless one is in flight, and
 * pops them when it completes. Once the queue is empty and
 * tcp->shutdown_requested, send FIN (once: tcp->shutdown_done). Returns 0
 * (the rest waits for the kernel) or the send's error; evq.c then keeps it
 * in write_status and clears the queue. A completion backend that meets an
 * error in a completion sets write_status, clears the queue and reports
 * EVQ_ERR for the stream from sys_poll_wait. */
int sys_tcp_flush(evq_tcp *tcp);
/* Bytes of the stream's buffers the kernel owns now (IOCP); 0 elsewhere. */
size_t sys_tcp_kernel_lent(const evq_tcp *tcp);
/* The stream's queue is closing: cancel what the stream has in flight. */
void sys_tcp_detach(evq_tcp *tcp);
/* Close the socket and free the backend part. `sys` is the stream's queue,
 * NULL if that queue is already closed. evq.c then frees tcp->read_buf,
 * tcp->write_queue and the evq_tcp itself: a backend that lent part of them
 * to the kernel takes that part out of the evq_tcp first (it frees it when
 * the kernel gives it back). */
void sys_tcp_close(struct sys_poll *sys, evq_tcp *tcp);
/* ANCHOR_END: interface */

/* The test hook (evq_tcp_set_io_hook), for the backends to call before every
 * receive and send system call: *len may come back lower, never 0 or
 * higher. Returns 0 or the code the hook stands for (EVQ_EINTR, an error). */
static inline int sys_io_hook(evq_tcp *tcp, enum evq_io_direction direction, size_t *len)
{
    if (!tcp->io_hook)
        return 0;
    size_t asked = *len;
    int rc = tcp->io_hook(tcp->io_hook_context, direction, len);
    if (*len == 0 || *len > asked)
        *len = asked;
    return rc;
}

/* A fill met EWOULDBLOCK: the socket is empty now. Remember it (no recv()
 * until the kernel says otherwise), and an empty buffer shrinks back: the
 * stream looks idle (buffer.h, "shrink when idle"). */
static inline void sys_fill_found_empty(evq_tcp *tcp)
{
    tcp->read_drained = true;
    read_buffer_shrink(&tcp->read_buf, tcp->limits.read_initial);
}

#endif

/* sys.h - the internal interface between the portable queue (evq.c) and one
 * backend: poll_epoll.c, poll_kqueue.c or poll_iocp.c for the queue, and
 * tcp_posix.c or tcp_win.c for streams.
 *
 * As redis' aeApi* functions: every backend file defines the same handful
 * of sys_* functions, and the build picks one. evq.c checks arguments,
 * keeps the registration book and owns the wait loop (deadline, EINTR,
 * shutdown); the backends only talk to their kernel, and translate its
 * flags into EVQ_READABLE... in one place each.
 */
#ifndef EVQ_SYS_H
#define EVQ_SYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "evq.h"
#include "evq_net.h"

/* The most kernel events one wait collects. A caller's array larger than
 * this gets at most this many events per call; a smaller one is never
 * exceeded, because the kernel is never offered more room than the caller
 * has (the bug of the well-known teaching version, which offered 1024). */
#define SYS_MAX_EVENTS 256

/* A backend's state for one queue (an epoll fd and its event array, a
 * kqueue, a completion port). Each poll_*.c defines it. */
struct sys_poll;

/* A stream's buffers on a completion backend (IOCP): they outlive the
 * evq_tcp when the stream is closed with I/O in flight. tcp_win.c. */
struct sys_stream;

struct evq_tcp {
    evq_socket socket;
    evq_poll *poll;       /* the queue it was connected on; NULL once that queue is closed */
    evq_tcp *prev, *next; /* in that queue's list of streams */
    bool registered;
    evq_token token;
    unsigned interests; /* as last registered */
    /* Backend bookkeeping. `armed`: the interests that can still produce an
     * event before the next re-arm (kqueue: knotes not yet fired; IOCP: the
     * emulated arming). `batch_slot`: kqueue's index of this stream's event
     * in the wait being collected, SIZE_MAX outside a wait. */
    unsigned armed;
    size_t batch_slot;
    int read_status;        /* 0, or the EVQ_EOF or error every later read returns */
    struct sys_stream *sys; /* IOCP only; NULL elsewhere */
};

/* ANCHOR: interface */
/* ---- the queue: poll_<backend>.c ---- */
int sys_poll_open(struct sys_poll **out);
/* Free the backend state. Every stream has been deregistered and detached
 * first; IOCP waits here for the kernel to return what it still holds. */
void sys_poll_close(struct sys_poll *sys);
/* One kernel wait: at most `capacity` events into `events`, *woken set if
 * the waker fired. EVQ_EINTR when interrupted; the caller retries. */
int sys_poll_wait(struct sys_poll *sys, evq_event *events, size_t capacity, int timeout_ms,
                  size_t *n, bool *woken);
int sys_poll_wake(struct sys_poll *sys);
int sys_register(struct sys_poll *sys, evq_tcp *tcp, unsigned interests);
int sys_reregister(struct sys_poll *sys, evq_tcp *tcp, unsigned interests);
int sys_deregister(struct sys_poll *sys, evq_tcp *tcp);
size_t sys_poll_retired(const struct sys_poll *sys);

/* ---- streams: tcp_posix.c / tcp_win.c ---- */
/* Connect tcp->socket (blocking), make it non-blocking, tie it to the queue. */
int sys_tcp_connect(struct sys_poll *sys, const char *host, uint16_t port, evq_tcp *tcp);
int sys_tcp_read(evq_tcp *tcp, void *buf, size_t len, size_t *n);
int sys_tcp_write(evq_tcp *tcp, const void *buf, size_t len, size_t *n);
/* The stream's queue is closing: cancel what the stream has in flight. */
void sys_tcp_detach(evq_tcp *tcp);
/* Close the socket and free the backend part. `sys` is the stream's queue,
 * NULL if that queue is already closed. evq.c frees the evq_tcp itself. */
void sys_tcp_close(struct sys_poll *sys, evq_tcp *tcp);
/* ANCHOR_END: interface */

#endif

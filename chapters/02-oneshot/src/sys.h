/* sys.h - the seam: what every backend implements, and nothing more.
 *
 * As redis' aeApi* functions: each poll_<os>.c (poll_epoll.c,
 * poll_kqueue.c, poll_iocp.c) defines the same sys_poll_* / sys_stream_* /
 * sys_arm functions for the queue, and each tcp_<os>.c (tcp_posix.c,
 * tcp_win.c) the same small socket primitives; the build picks one of each.
 * The portable files (poll.c, stream.c) check arguments, keep the
 * registrations and own the wait loop (deadline, EINTR, shutdown); a
 * backend only talks to its kernel, translates its flags into
 * EVQ_READABLE... in one place, and keeps its own state per stream.
 */
#ifndef EVQ_SYS_H
#define EVQ_SYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "stream.h"

/* The most kernel events one wait collects. A caller's array larger than
 * this gets at most this many events per call; a smaller one is never
 * exceeded, because the kernel is never offered more room than the caller
 * has (minimio, the queue of cfsamson's "Epoll, Kqueue and IOCP Explained",
 * offered 1024 whatever the caller's array held). */
#define SYS_MAX_EVENTS 256

struct sys_poll;   /* the backend's state for one queue: each poll_<os>.c */
struct sys_stream; /* the backend's state for one stream: each poll_<os>.c */
struct addrinfo;   /* one resolved address (resolve.h); only tcp_<os>.c looks inside */

/* What one kernel wait says about one stream: EVQ_READABLE, EVQ_WRITABLE,
 * EVQ_HUP, EVQ_ERR for what it was armed with (tcp->interests), and the
 * connection's error when the kernel says it with the event (0 if not). */
struct sys_event {
    evq_tcp *tcp;
    uint32_t ready;
    int error;
};

/* ANCHOR: interface */
/* ---- the queue: poll_<os>.c ---- */
int sys_poll_open(struct sys_poll **out);
/* Free the backend state. Every stream has been detached first; IOCP waits
 * here for the kernel to return what it still holds. */
void sys_poll_close(struct sys_poll *sys);
/* One kernel wait: at most `capacity` events (at most one per stream), and
 * *woken set if the waker fired. EVQ_EINTR when interrupted: poll.c retries. */
int sys_poll_wait(struct sys_poll *sys, struct sys_event *events, size_t capacity, int timeout_ms,
                  size_t *n, bool *woken);
int sys_poll_wake(struct sys_poll *sys);
size_t sys_poll_retired(const struct sys_poll *sys);

/* A socket becomes a stream of this queue: the backend makes its state
 * (IOCP: ties the socket to the port for good, and gives it its buffers). */
int sys_stream_open(struct sys_poll *sys, evq_tcp *tcp);
/* Arm the kernel, one-shot, for exactly `interests` (0: for nothing), in
 * place of whatever it was armed for. */
int sys_arm(struct sys_poll *sys, evq_tcp *tcp, unsigned interests);
/* The queue is closing under the stream: out of the kernel, I/O cancelled. */
void sys_stream_detach(struct sys_poll *sys, evq_tcp *tcp);
/* Out of the kernel, close the socket, free the backend state. `sys` is
 * NULL if the queue is already closed. IOCP keeps what the kernel still
 * owns until the completions come back. */
void sys_stream_close(struct sys_poll *sys, evq_tcp *tcp);
/* ANCHOR_END: interface */

/* ---- sockets: tcp_posix.c / tcp_win.c ---- */
/* A socket connected to one address (blocking: chapter 4 changes that),
 * then non-blocking; writing to a vanished peer never raises SIGPIPE. */
int sys_socket_connect(const struct addrinfo *address, evq_socket *out);
/* Copy up to len received bytes: EVQ_EWOULDBLOCK, EVQ_EOF or an error. */
int sys_tcp_read(evq_tcp *tcp, void *buf, size_t len, size_t *n);
/* Send (IOCP: start sending) up to len bytes; *n is how many were taken. */
int sys_tcp_write(evq_tcp *tcp, const void *buf, size_t len, size_t *n);

#endif

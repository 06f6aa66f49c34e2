/* sys.h - the seam: what every backend implements, and nothing more.
 *
 * As redis' aeApi* functions: each poll_<os>.c (poll_epoll.c,
 * poll_kqueue.c, poll_iocp.c) defines the same sys_poll_* / sys_stream_* /
 * sys_arm functions for the queue, and each tcp_<os>.c (tcp_posix.c,
 * tcp_win.c) the same small socket primitives; the build picks one of each.
 * The portable files (poll.c, stream.c) check arguments, keep the
 * registrations, the ready list, the wait loop, the buffers and every rule
 * about them; a backend only talks to its kernel, translates its flags into
 * EVQ_READABLE... in one place, and keeps its own state per stream.
 *
 * Chapter 3's rule, in poll.c: the kernel is armed for
 *     (what the caller armed and has not yet been told about)
 *   | (EVQ_WRITABLE while output waits: queued bytes or a FIN)
 * whether or not the caller registered the stream at all. The wait flushes
 * the queue when the kernel says WRITABLE, and tells the caller only what
 * the caller armed (WRITABLE only once the queue is at or below write_low).
 * A kernel event with nothing for the caller re-arms the kernel without
 * touching the caller's one-shot arming.
 *
 * Chapter 4 adds the connect: while a stream connects, the kernel is armed
 * for EVQ_WRITABLE only (the connect's outcome), and a stream that is still
 * resolving its name, or has given up its socket, is not in the kernel at
 * all. Each address tried is a new socket: sys_connect_start makes it and
 * starts the connect, sys_connect_result reads the outcome after the
 * kernel's event, sys_connect_abandon takes the socket out and closes it.
 */
#ifndef EVQ_SYS_H
#define EVQ_SYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buffer.h"
#include "stream.h"

/* The most kernel events one wait collects. A caller's array larger than
 * this gets at most this many events per call; a smaller one is never
 * exceeded, because the kernel is never offered more room than the caller
 * has (minimio, the queue of cfsamson's "Epoll, Kqueue and IOCP Explained",
 * offered 1024 whatever the caller's array held). */
#define SYS_MAX_EVENTS 256

/* The most queued segments one send hands the kernel (sendmsg's iovec,
 * WSASend's WSABUF array): a whole default write queue, in one call. */
#define SYS_SEND_SEGMENTS 64
_Static_assert(STREAM_WRITE_HIGH <= SYS_SEND_SEGMENTS * WRITE_CHUNK_SIZE,
               "one send must be able to take a whole default write queue");

struct sys_poll;   /* the backend's state for one queue: each poll_<os>.c */
struct sys_stream; /* the backend's state for one stream: each poll_<os>.c */

/* What one kernel wait says about one stream: EVQ_READABLE, EVQ_WRITABLE,
 * EVQ_HUP, EVQ_ERR for what it was armed with (tcp->kernel_armed), and the
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

/* A stream joins this queue: the backend makes its state (IOCP: ties the
 * socket to the port for good; a connecting stream has no socket yet). */
int sys_stream_open(struct sys_poll *sys, evq_tcp *tcp);
/* Arm the kernel, one-shot, for exactly `interests` (0: for nothing), in
 * place of whatever it was armed for. poll.c calls it when the wanted set
 * differs from tcp->kernel_armed, or to make the kernel look again. */
int sys_arm(struct sys_poll *sys, evq_tcp *tcp, unsigned interests);
/* The queue is closing under the stream: out of the kernel, I/O cancelled. */
void sys_stream_detach(struct sys_poll *sys, evq_tcp *tcp);
/* Out of the kernel, close the socket, free the backend state. `sys` is
 * NULL if the queue is already closed. IOCP keeps what the kernel still
 * owns (taking it out of the evq_tcp) until the completions come back. */
void sys_stream_close(struct sys_poll *sys, evq_tcp *tcp);

/* Give up the stream's socket while it connects: out of the kernel, the
 * connect cancelled (IOCP: CancelIoEx; its completion still comes back),
 * the socket closed; tcp->socket is EVQ_INVALID_SOCKET afterwards. */
void sys_connect_abandon(struct sys_poll *sys, evq_tcp *tcp);

/* ---- sockets: tcp_posix.c / tcp_win.c ---- */
/* A new non-blocking socket for `address`, in tcp->socket, connecting: 0
 * while in progress (the kernel reports the outcome as WRITABLE), or the
 * error at once (no socket is left). Writing to a vanished peer will never
 * raise SIGPIPE. IOCP: tied to the port, bound, ConnectEx posted. */
int sys_connect_start(struct sys_poll *sys, evq_tcp *tcp, const evq_address *address);
/* After the kernel reported the connecting socket: 0 connected, or why not. */
int sys_connect_result(evq_tcp *tcp);
/* A non-blocking socket listening on one address. */
int sys_socket_listen(const evq_address *address, int backlog, evq_socket *out);
/* The listener's stream is open: start accepting (IOCP posts AcceptEx). */
int sys_listener_start(evq_tcp *listener);
/* One pending connection, non-blocking. EVQ_EWOULDBLOCK: none now. */
int sys_socket_accept(evq_tcp *listener, evq_socket *out);
/* One recv(): *got is 0 at EOF. EVQ_EWOULDBLOCK, EVQ_EINTR, or the error. */
int sys_socket_receive(evq_tcp *tcp, char *space, size_t len, size_t *got);
/* One send of these segments: *sent is what the queue may drop now.
 * EVQ_EWOULDBLOCK: nothing taken (the socket is full). A completion backend
 * starts an overlapped send and drops the bytes when it completes. */
int sys_socket_send(evq_tcp *tcp, struct write_segment *segments, size_t count, size_t *sent);
/* shutdown(SHUT_WR): the FIN. */
int sys_socket_shutdown(evq_tcp *tcp);
/* IOCP: the kernel is receiving into the read buffer (its free space is
 * lent: no fill may touch the buffer), or a send is in flight (the next
 * waits for its completion). Always false on a readiness backend. */
bool sys_tcp_receiving(const evq_tcp *tcp);
bool sys_tcp_sending(const evq_tcp *tcp);
/* Bytes of the stream's buffers the kernel owns now (IOCP); 0 elsewhere. */
size_t sys_tcp_kernel_lent(const evq_tcp *tcp);
/* ANCHOR_END: interface */

/* The test hook (evq_tcp_set_io_hook), for the calls the hook stands in
 * front of: *len may come back lower, never 0 or higher. Returns 0 or the
 * code the hook stands for (EVQ_EINTR, an error). */
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

#endif

/* sys.h - the seam: what every backend implements, and nothing more.
 *
 * As redis' aeApi* functions: each poll_<os>.c (poll_epoll.c,
 * poll_kqueue.c, poll_iocp.c) defines the same sys_poll_* / sys_stream_*
 * functions for the queue, and each tcp_<os>.c (tcp_posix.c, tcp_win.c) the
 * same small socket primitives; the build picks one of each. The portable
 * files (poll.c, stream.c) check arguments, keep the registrations, the
 * ready list, the wait loop, the buffers and every rule about them; a
 * backend only talks to its kernel, translates its flags into EVQ_READABLE...
 * in one place, and keeps its own state per stream.
 *
 * Chapter 5's rule: a socket is put in the kernel once, when it joins the
 * queue (or, connecting, when it is made), for both directions,
 * edge-triggered (EPOLLET, EV_CLEAR), and taken out only when it is closed.
 * The kernel then says each change once - "bytes came", "there is room" -
 * as an edge; the queue remembers the edges it could not act on at once and
 * does the rest itself (poll.c). There is no arming call any more: the
 * caller's one-shot arming is the queue's own bookkeeping. On IOCP the edge
 * is the completion of an operation the queue started; there is nothing to
 * register but the socket's tie to the port.
 *
 * Several threads may wait at once: sys_poll_wait writes into arrays its
 * caller owns (on that thread's stack), never into the backend's state.
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

/* The edge bits of a sys_event besides EVQ_READABLE and EVQ_WRITABLE:
 * EVQ_HUP is the peer's FIN (read on to the EOF), EVQ_ERR an error, and
 * SYS_END that the connection is over both ways (epoll's EPOLLHUP, EV_EOF
 * on kqueue's write filter): every later read or write returns at once. */
#define SYS_END (1u << 8)
/* A completion backend's edge: an operation finished and sys_event_take
 * has applied what it did (bytes committed, the socket found empty...);
 * there is nothing more to remember, but the stream has its turn. */
#define SYS_DONE (1u << 9)

/* ANCHOR: sys_event */
/* What one kernel wait says about one stream: the stream's key (as the
 * backend gave it to the kernel: key_table.h), the edges (EVQ_READABLE,
 * EVQ_WRITABLE, EVQ_HUP, EVQ_ERR, SYS_END), and the connection's error when
 * the kernel says it with the event (0 if not). A completion backend also
 * says which of the stream's operations finished, and with how many bytes:
 * sys_event_take applies it to the stream. */
struct sys_event {
    uint64_t key;
    uint32_t edges;
    int error;
    void *operation; /* a completion backend's */
    size_t bytes;
};
/* ANCHOR_END: sys_event */

/* ANCHOR: interface */
/* ---- the queue: poll_<os>.c ---- */
int sys_poll_open(struct sys_poll **out);
/* Free the backend state. Every stream has been detached first; IOCP waits
 * here for the kernel to return what it still holds. */
void sys_poll_close(struct sys_poll *sys);
/* One kernel wait, into the caller's `events` (at most `capacity`), and
 * *woken set if the waker fired. Any number of threads at once; nothing of
 * a stream is touched here. EVQ_EINTR when interrupted: poll.c retries. */
int sys_poll_wait(struct sys_poll *sys, struct sys_event *events, size_t capacity, int timeout_ms,
                  size_t *n, bool *woken);
/* Under the stream's lock, for every event whose key found its stream,
 * closed since or not: what the event did to the stream (IOCP: the
 * completion's bytes land in its buffers, and the kernel's hold on that
 * operation ends). Returns the edges. */
uint32_t sys_event_take(struct sys_poll *sys, evq_tcp *tcp, struct sys_event *event);
/* An event whose key is stale (its stream closed, or gave up that socket):
 * nothing to tell, but a completion backend takes its operation back. Any
 * thread, no stream lock. */
void sys_event_drop(struct sys_poll *sys, struct sys_event *event);
int sys_poll_wake(struct sys_poll *sys);
size_t sys_poll_retired(const struct sys_poll *sys);
/* Registration system calls made so far: epoll_ctl, kevent() with
 * changes, CreateIoCompletionPort for a socket (evq_testing.h). */
uint64_t sys_poll_control_calls(const struct sys_poll *sys);

/* A stream joins this queue (it has its key): the backend makes its
 * state, and a stream that has a socket goes into the kernel - once, both directions,
 * edge-triggered (IOCP: the socket is tied to the port for good). A
 * connecting stream has no socket yet: sys_connect_start adds each one. */
int sys_stream_open(struct sys_poll *sys, evq_tcp *tcp);
/* A socket into the kernel: once, both directions, edge-triggered (IOCP:
 * tied to the port). sys_stream_open calls it for a stream that has a
 * socket, sys_connect_start for each socket a connect makes. */
int sys_stream_attach(struct sys_poll *sys, evq_tcp *tcp);
/* The caller armed READABLE and the stream has nothing to tell: a
 * completion backend starts what will say that data came (a receive; on a
 * listener, AcceptEx in every empty slot). Nothing on a readiness backend:
 * its kernel watches all the time. Under the stream's lock. */
void sys_watch_read(struct sys_poll *sys, evq_tcp *tcp);
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
/* A new non-blocking socket for `address`, in tcp->socket, connecting and
 * in the kernel (as sys_stream_open puts one): 0 while in progress (the
 * kernel reports the outcome as a WRITABLE edge), or the error at once (no
 * socket is left). Writing to a vanished peer will never raise SIGPIPE.
 * IOCP: tied to the port, bound, ConnectEx posted. */
int sys_connect_start(struct sys_poll *sys, evq_tcp *tcp, const evq_address *address);
/* After the kernel reported the connecting socket: 0 connected, or why not;
 * EVQ_EINPROGRESS if it is still connecting (an edge left over from the
 * stream's previous socket). */
int sys_connect_result(evq_tcp *tcp);
/* A non-blocking socket listening on one address; `shared`: other sockets
 * may listen on the same port (evq_tcp_listen_shared), EVQ_ENOTSUP where the
 * system cannot spread connections over them. */
int sys_socket_listen(const evq_address *address, int backlog, bool shared, evq_socket *out);
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

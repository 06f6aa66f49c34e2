/* tcp_posix.c - the socket primitives on POSIX, for the readiness backends
 * (epoll, kqueue): one connect, listen, accept, recv, sendmsg or shutdown
 * each. The socket is non-blocking from the moment it is made or
 * accepted; the loops around these calls (fill until EAGAIN, flush until
 * the queue is empty, retry on EINTR, the next address) are stream.c's and
 * connect.c's.
 */
#if defined(__APPLE__)
#define _DARWIN_C_SOURCE /* SO_NOSIGPIPE, through evq_socket_set_nosigpipe */
#elif defined(__linux__)
#define _GNU_SOURCE /* accept4, ENONET */
#elif !defined(__FreeBSD__) && !defined(__NetBSD__) && !defined(__OpenBSD__)
#define _POSIX_C_SOURCE 200809L
#endif
#include "sys.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

/* Not inherited by programs this process runs. */
static int set_cloexec(int fd)
{
    int flags = fcntl(fd, F_GETFD);
    if (flags < 0 || fcntl(fd, F_SETFD, flags | FD_CLOEXEC) != 0)
        return evq_error_from_errno(errno);
    return 0;
}

/* The address as the socket calls take it: copied out of the opaque bytes
 * of evq.h into storage aligned for any family. */
static socklen_t sockaddr_of(const evq_address *address, struct sockaddr_storage *out)
{
    memset(out, 0, sizeof *out);
    memcpy(out, address->bytes, address->length);
    return (socklen_t)address->length;
}

/* A new TCP socket of the address's family, close-on-exec. */
static int new_socket(const struct sockaddr_storage *address, int *out)
{
    int fd = socket(address->ss_family, SOCK_STREAM, IPPROTO_TCP);
    if (fd < 0)
        return evq_error_from_errno(errno);
    int rc = set_cloexec(fd);
    if (rc != 0) {
        close(fd);
        return rc;
    }
    *out = fd;
    return 0;
}

/* From here on nothing blocks: the queue says when to read and write.
 * SO_NOSIGPIPE (macOS, BSD) and MSG_NOSIGNAL (Linux, in every send) turn
 * writing to a vanished peer into EPIPE instead of a SIGPIPE that kills
 * the process. On failure the socket is closed. */
static int make_stream_socket(int fd)
{
    int rc = evq_socket_set_nonblocking(fd, true);
    if (rc == 0)
        rc = evq_socket_set_nosigpipe(fd);
    if (rc != 0)
        close(fd);
    return rc;
}

/* ANCHOR: connect_one */
/* The socket is non-blocking before connect() is called, so connect()
 * returns at once: EINPROGRESS, the handshake goes on in the kernel, and
 * the socket turns WRITABLE when it is over, either way. EINTR means the
 * same (POSIX: "the connection request shall not be aborted, and the
 * connection shall be established asynchronously"): calling connect()
 * again would say EALREADY. Any other error is this address's, now. */
int sys_connect_start(struct sys_poll *sys, evq_tcp *tcp, const evq_address *address)
{
    struct sockaddr_storage to;
    socklen_t length = sockaddr_of(address, &to);
    int fd = -1;
    int rc = new_socket(&to, &fd);
    if (rc != 0 || (rc = make_stream_socket(fd)) != 0)
        return rc;
    if (connect(fd, (const struct sockaddr *)&to, length) != 0 && errno != EINPROGRESS &&
        errno != EINTR) {
        rc = evq_error_from_errno(errno); /* ECONNREFUSED at once, ENETUNREACH... */
        close(fd);
        return rc;
    }
    tcp->socket = fd; /* connecting, or (rarely, on loopback) connected already */
    /* Into the kernel now, once: its WRITABLE edge is the outcome (or at
     * once, if it is connected already: adding a socket reports what holds). */
    if ((rc = sys_stream_attach(sys, tcp)) != 0) {
        close(fd);
        tcp->socket = EVQ_INVALID_SOCKET;
    }
    return rc;
}

/* The kernel said WRITABLE (or ERR, HUP): the handshake is over. Its
 * outcome is the socket's pending error, SO_ERROR: 0 means connected.
 * Where a kqueue provider read that error to put it in the event (and so
 * cleared it: libkqueue on Linux), the event's copy says it. An edge of the
 * stream's previous socket, taken by another waiter before that socket was
 * closed, can arrive while this one still connects: SO_ERROR is 0 then
 * too, and only the peer's address (ENOTCONN without one) tells. */
int sys_connect_result(evq_tcp *tcp)
{
    int rc = evq_socket_pending_error(tcp->socket);
    if (rc == 0)
        rc = tcp->event_error;
    struct sockaddr_storage peer;
    socklen_t length = sizeof peer;
    if (rc == 0 && getpeername(tcp->socket, (struct sockaddr *)&peer, &length) != 0)
        rc = errno == ENOTCONN ? EVQ_EINPROGRESS : evq_error_from_errno(errno);
    return rc;
}
/* ANCHOR_END: connect_one */

/* ANCHOR: reuseport */
/* Several listeners on one port, the kernel choosing one per connection:
 * FreeBSD 12's SO_REUSEPORT_LB, Linux's SO_REUSEPORT (3.9 and later; on the
 * BSDs SO_REUSEPORT lets sockets share a port but hands every connection to
 * the last one bound). */
#if defined(SO_REUSEPORT_LB)
#define SHARED_PORT_OPTION SO_REUSEPORT_LB
#elif defined(__linux__) && defined(SO_REUSEPORT)
#define SHARED_PORT_OPTION SO_REUSEPORT
#endif

int sys_socket_listen(const evq_address *address, int backlog, bool shared, evq_socket *out)
{
#ifndef SHARED_PORT_OPTION
    if (shared)
        return EVQ_ENOTSUP;
#endif
    struct sockaddr_storage local;
    socklen_t length = sockaddr_of(address, &local);
    int fd = -1;
    int rc = new_socket(&local, &fd);
    if (rc != 0)
        return rc;
    /* A server restarted at once can bind the port again, even with old
     * connections still in TIME_WAIT. */
    int one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0)
        rc = evq_error_from_errno(errno);
#ifdef SHARED_PORT_OPTION
    else if (shared && setsockopt(fd, SOL_SOCKET, SHARED_PORT_OPTION, &one, sizeof one) != 0)
        rc = evq_error_from_errno(errno);
#endif
    else if (bind(fd, (const struct sockaddr *)&local, length) != 0 || listen(fd, backlog) != 0)
        rc = evq_error_from_errno(errno);
    else
        rc = evq_socket_set_nonblocking(fd, true);
    if (rc != 0) {
        close(fd);
        return rc;
    }
    *out = fd;
    return 0;
}
/* ANCHOR_END: reuseport */

int sys_listener_start(evq_tcp *listener)
{
    (void)listener; /* a readiness backend accepts when the listener is readable */
    return 0;
}

/* ANCHOR: network_errors */
/* Linux accept(2): "Linux accept() passes already-pending network errors
 * on the new socket as an error code from accept() ... For reliable
 * operation the application should detect the network errors defined for
 * the protocol after accept() and treat them like EAGAIN by retrying." The
 * connection they belong to is gone; the listener is fine. */
static bool pending_network_error(int error)
{
    switch (error) {
    case ENETDOWN:
    case EPROTO:
    case ENOPROTOOPT:
    case EHOSTDOWN:
#ifdef ENONET
    case ENONET:
#endif
    case EHOSTUNREACH:
    case EOPNOTSUPP:
    case ENETUNREACH:
        return true;
    default:
        return false;
    }
}
/* ANCHOR_END: network_errors */

/* ANCHOR: accept_nonblocking */
/* The accepted socket must be non-blocking (Linux does not inherit it from
 * the listener) and close-on-exec: accept4() sets both in the same call.
 * Elsewhere (macOS) accept() and fcntl() calls; a fork from another thread
 * in between could leak the descriptor to the child. */
static int accept_nonblocking(int listener, int *out)
{
#if defined(SOCK_NONBLOCK) && defined(SOCK_CLOEXEC)
    int fd = accept4(listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0)
        return -1;
#else
    int fd = accept(listener, NULL, NULL);
    if (fd < 0)
        return -1;
    int flags = 0;
    if (set_cloexec(fd) != 0 || (flags = fcntl(fd, F_GETFL)) < 0 ||
        fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) {
        int error = errno; /* a blocking socket in the loop would hang it: drop it */
        close(fd);
        errno = error;
        return -1;
    }
#endif
    *out = fd;
    return 0;
}
/* ANCHOR_END: accept_nonblocking */

/* ANCHOR: accept */
int sys_socket_accept(evq_tcp *listener, evq_socket *out)
{
    for (;;) {
        size_t unused = 0;
        int rc = sys_io_hook(listener, EVQ_IO_ACCEPT, &unused);
        int fd = -1;
        if (rc == 0 && accept_nonblocking(listener->socket, &fd) == 0) {
            if ((rc = evq_socket_set_nosigpipe(fd)) != 0) { /* SO_NOSIGPIPE is not inherited */
                close(fd);
                return rc;
            }
            *out = fd;
            return 0;
        }
        if (rc == 0)
            rc = pending_network_error(errno) ? EVQ_EWOULDBLOCK : evq_error_from_errno(errno);
        /* EINTR: a signal, try again. ECONNABORTED: the connection was
         * reset while it waited in the backlog (BSD and macOS say so; Linux
         * hands it over, and its first recv() says ECONNRESET) - the next
         * one may be fine. EMFILE goes back to stream.c, which pauses the
         * listener. */
        if (rc != EVQ_EINTR && rc != EVQ_ECONNABORTED)
            return rc; /* EAGAIN -> EVQ_EWOULDBLOCK */
    }
}
/* ANCHOR_END: accept */

/* ANCHOR: read */
int sys_socket_receive(evq_tcp *tcp, char *space, size_t len, size_t *got)
{
    ssize_t received = recv(tcp->socket, space, len, 0);
    if (received < 0)
        return evq_error_from_errno(errno); /* EAGAIN -> EVQ_EWOULDBLOCK, EINTR -> EVQ_EINTR */
    *got = (size_t)received;
    return 0;
}
/* ANCHOR_END: read */

int sys_socket_send(evq_tcp *tcp, struct write_segment *segments, size_t count, size_t *sent)
{
    struct iovec iov[SYS_SEND_SEGMENTS];
    for (size_t i = 0; i < count; i++) {
        iov[i].iov_base = (void *)segments[i].data;
        iov[i].iov_len = segments[i].len;
    }
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    msg.msg_iov = iov;
    msg.msg_iovlen = count;
    /* MSG_NOSIGNAL (Linux; SO_NOSIGPIPE elsewhere): a vanished peer is
     * EPIPE, not a SIGPIPE that kills the process. */
    ssize_t written = sendmsg(tcp->socket, &msg, EVQ_SEND_FLAGS);
    if (written < 0)
        return evq_error_from_errno(errno); /* EAGAIN: the socket is full */
    *sent = (size_t)written;
    return 0;
}

int sys_socket_shutdown(evq_tcp *tcp)
{
    return shutdown(tcp->socket, SHUT_WR) != 0 ? evq_error_from_errno(errno) : 0;
}

bool sys_tcp_receiving(const evq_tcp *tcp)
{
    (void)tcp;
    return false; /* recv() copies: the kernel never holds our buffer */
}

bool sys_tcp_sending(const evq_tcp *tcp)
{
    (void)tcp;
    return false; /* sendmsg() copies: nothing stays in flight */
}

size_t sys_tcp_kernel_lent(const evq_tcp *tcp)
{
    (void)tcp;
    return 0;
}

/* tcp_posix.c - streams on POSIX sockets, for the readiness backends
 * (epoll, kqueue): connect, then a read or a write is one recv() or send()
 * on the non-blocking socket - the queue only said it would not block.
 */
#if defined(__APPLE__)
#define _DARWIN_C_SOURCE /* SO_NOSIGPIPE, through evq_socket_set_nosigpipe */
#elif !defined(__FreeBSD__) && !defined(__NetBSD__) && !defined(__OpenBSD__)
#define _POSIX_C_SOURCE 200809L /* struct addrinfo, poll */
#endif
#include "sys.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

/* Not inherited by programs this process runs. */
static int set_cloexec(int fd)
{
    int flags = fcntl(fd, F_GETFD);
    if (flags < 0 || fcntl(fd, F_SETFD, flags | FD_CLOEXEC) != 0)
        return evq_error_from_errno(errno);
    return 0;
}

/* A new socket of the address's family, close-on-exec. */
static int new_socket(const struct addrinfo *address, int *out)
{
    int fd = socket(address->ai_family, address->ai_socktype, address->ai_protocol);
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

/* POSIX: "If connect() is interrupted by a signal that is caught while
 * blocked waiting to establish a connection, connect() shall fail and set
 * errno to [EINTR], but the connection request shall not be aborted, and
 * the connection shall be established asynchronously." Calling connect()
 * again would fail with EALREADY; wait for the outcome instead. */
static int finish_interrupted_connect(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLOUT};
    while (poll(&p, 1, -1) < 0) {
        if (errno != EINTR)
            return evq_error_from_errno(errno);
    }
    return evq_socket_pending_error(fd);
}

/* ANCHOR: connect_one */
int sys_socket_connect(const struct addrinfo *address, evq_socket *out)
{
    int fd = -1;
    int rc = new_socket(address, &fd);
    if (rc != 0)
        return rc;
    if (connect(fd, address->ai_addr, address->ai_addrlen) != 0) { /* blocks: chapter 4 */
        rc = errno == EINTR ? finish_interrupted_connect(fd) : evq_error_from_errno(errno);
        if (rc != 0) {
            close(fd);
            return rc;
        }
    }
    if ((rc = make_stream_socket(fd)) != 0)
        return rc;
    *out = fd;
    return 0;
}
/* ANCHOR_END: connect_one */

/* ANCHOR: read */
int sys_tcp_read(evq_tcp *tcp, void *buf, size_t len, size_t *n)
{
    /* The socket stays non-blocking: an empty socket says EAGAIN at once.
     * (minimio, cfsamson's teaching queue, switched it back to blocking to
     * read, and a spurious wake-up would then hang the whole loop.) */
    for (;;) {
        ssize_t got = recv(tcp->socket, buf, len, 0);
        if (got > 0) {
            *n = (size_t)got;
            return 0;
        }
        if (got == 0)
            return EVQ_EOF;
        if (errno != EINTR)
            return evq_error_from_errno(errno); /* EAGAIN -> EVQ_EWOULDBLOCK */
    }
}
/* ANCHOR_END: read */

int sys_tcp_write(evq_tcp *tcp, const void *buf, size_t len, size_t *n)
{
    for (;;) {
        /* MSG_NOSIGNAL (Linux; SO_NOSIGPIPE elsewhere): a vanished peer is
         * EPIPE, not a SIGPIPE that kills the process. */
        ssize_t sent = send(tcp->socket, buf, len, EVQ_SEND_FLAGS);
        if (sent >= 0) {
            *n = (size_t)sent;
            return 0;
        }
        if (errno != EINTR)
            return evq_error_from_errno(errno);
    }
}

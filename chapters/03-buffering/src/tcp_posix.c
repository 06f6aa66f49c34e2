/* tcp_posix.c - streams on POSIX sockets, for the readiness backends (epoll,
 * kqueue). A read or a write is one recv() or send() on the non-blocking
 * socket: the queue only said it would not block.
 */
#if defined(__APPLE__)
#define _DARWIN_C_SOURCE /* SO_NOSIGPIPE, through evq_socket_set_nosigpipe */
#elif !defined(__FreeBSD__) && !defined(__NetBSD__) && !defined(__OpenBSD__)
#define _POSIX_C_SOURCE 200809L /* getaddrinfo, poll */
#endif
#include "sys.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

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

static int connect_one(const struct addrinfo *ai, int *out)
{
    int fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
    if (fd < 0)
        return evq_error_from_errno(errno);
    /* Not inherited by programs this process runs. */
    fcntl(fd, F_SETFD, FD_CLOEXEC);
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        int rc = errno == EINTR ? finish_interrupted_connect(fd) : evq_error_from_errno(errno);
        if (rc != 0) {
            close(fd);
            return rc;
        }
    }
    *out = fd;
    return 0;
}

/* ANCHOR: connect */
int sys_tcp_connect(struct sys_poll *sys, const char *host, uint16_t port, evq_tcp *tcp)
{
    (void)sys; /* a readiness queue needs nothing from a socket until it is registered */
    char service[8];
    snprintf(service, sizeof service, "%u", (unsigned)port);
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    struct addrinfo *list = NULL;
    int gai = getaddrinfo(host, service, &hints, &list); /* blocks: chapter 4 fixes that */
    if (gai != 0)
        return evq_error_from_gai(gai);

    int fd = -1;
    int rc = EVQ_EAI_NONAME;
    for (const struct addrinfo *ai = list; ai; ai = ai->ai_next) {
        if ((rc = connect_one(ai, &fd)) == 0) /* blocks too: chapter 4 */
            break;
    }
    freeaddrinfo(list);
    if (rc != 0)
        return rc;
    /* From here on nothing blocks: the queue says when to read and write.
     * SO_NOSIGPIPE (macOS, BSD) and MSG_NOSIGNAL (Linux, in every send)
     * turn writing to a vanished peer into EPIPE instead of a SIGPIPE that
     * kills the process. */
    if ((rc = evq_socket_set_nonblocking(fd, true)) != 0 ||
        (rc = evq_socket_set_nosigpipe(fd)) != 0) {
        close(fd);
        return rc;
    }
    tcp->socket = fd;
    return 0;
}
/* ANCHOR_END: connect */

/* ANCHOR: read */
int sys_tcp_read(evq_tcp *tcp, void *buf, size_t len, size_t *n)
{
    /* The socket stays non-blocking: an empty socket says EAGAIN at once.
     * (The well-known teaching version switched it back to blocking to
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
        ssize_t sent = send(tcp->socket, buf, len, EVQ_SEND_FLAGS);
        if (sent >= 0) {
            *n = (size_t)sent;
            return 0;
        }
        if (errno != EINTR)
            return evq_error_from_errno(errno);
    }
}

void sys_tcp_detach(evq_tcp *tcp)
{
    (void)tcp; /* nothing is in flight on a readiness backend */
}

void sys_tcp_close(struct sys_poll *sys, evq_tcp *tcp)
{
    (void)sys;
    if (tcp->socket >= 0)
        evq_socket_close(tcp->socket); /* never retried: see evq_net.h */
}

/* tcp_posix.c - streams on POSIX sockets, for the readiness backends (epoll,
 * kqueue). The socket is non-blocking from the moment it is connected or
 * accepted: a fill receives into the stream's buffer until recv() says
 * EAGAIN, a flush sends the write queue with sendmsg() until the queue is
 * empty or the socket is full, and EINTR is retried everywhere.
 */
#if defined(__APPLE__)
#define _DARWIN_C_SOURCE /* SO_NOSIGPIPE, through evq_socket_set_nosigpipe */
#elif defined(__linux__)
#define _GNU_SOURCE /* accept4; implies getaddrinfo, poll */
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
#include <sys/uio.h>
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

/* ANCHOR: eintr */
/* One recv(), retried while a signal interrupts it: EINTR means "no byte
 * moved, try again", never an error to report. Every attempt counts in the
 * stream's stats (receive_calls), so a test can see the retries. The test
 * hook stands for the kernel here: it may shorten the call or fail it. */
static int receive(evq_tcp *tcp, char *space, size_t len, ssize_t *got)
{
    for (;;) {
        tcp->receive_calls++;
        int rc = sys_io_hook(tcp, EVQ_IO_RECEIVE, &len);
        if (rc == 0) {
            if ((*got = recv(tcp->socket, space, len, 0)) >= 0)
                return 0;
            rc = evq_error_from_errno(errno); /* EAGAIN -> EVQ_EWOULDBLOCK */
        }
        if (rc != EVQ_EINTR)
            return rc;
    }
}
/* ANCHOR_END: eintr */

/* One sendmsg() of the queue's first segments, retried on EINTR. The hook
 * may shorten it: the iovec is cut to the length it allows. */
static int send_segments(evq_tcp *tcp, struct iovec *iov, size_t count, ssize_t *sent)
{
    size_t total = 0;
    for (size_t i = 0; i < count; i++)
        total += iov[i].iov_len;
    for (;;) {
        tcp->send_calls++;
        size_t len = total;
        int rc = sys_io_hook(tcp, EVQ_IO_SEND, &len);
        if (rc == 0) {
            size_t used = 0;
            for (size_t left = len; used < count && left > 0; used++) {
                if (iov[used].iov_len > left)
                    iov[used].iov_len = left;
                left -= iov[used].iov_len;
            }
            struct msghdr msg;
            memset(&msg, 0, sizeof msg);
            msg.msg_iov = iov;
            msg.msg_iovlen = used;
            /* MSG_NOSIGNAL (Linux; SO_NOSIGPIPE elsewhere): a vanished peer
             * is EPIPE, not a SIGPIPE that kills the process. */
            if ((*sent = sendmsg(tcp->socket, &msg, EVQ_SEND_FLAGS)) >= 0)
                return 0;
            rc = evq_error_from_errno(errno);
        }
        if (rc != EVQ_EINTR)
            return rc;
    }
}

/* Resolve host:port for bind() (passive: NULL host means every address). */
static int resolve(const char *host, uint16_t port, int flags, struct addrinfo **list)
{
    char service[8];
    snprintf(service, sizeof service, "%u", (unsigned)port);
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV | flags;
    int gai = getaddrinfo(host, service, &hints, list);
    return gai != 0 ? evq_error_from_gai(gai) : 0;
}

static int listen_one(const struct addrinfo *ai, int backlog, int *out)
{
    int fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
    if (fd < 0)
        return evq_error_from_errno(errno);
    fcntl(fd, F_SETFD, FD_CLOEXEC);
    /* A server restarted at once can bind the port again, even with old
     * connections still in TIME_WAIT. */
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    int rc = 0;
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, backlog) != 0)
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

int sys_tcp_listen(struct sys_poll *sys, const char *host, uint16_t port, int backlog,
                   evq_tcp *tcp)
{
    (void)sys;
    struct addrinfo *list = NULL;
    int rc = resolve(host, port, AI_PASSIVE, &list);
    if (rc != 0)
        return rc;
    int fd = -1;
    rc = EVQ_EAI_NONAME;
    for (const struct addrinfo *ai = list; ai; ai = ai->ai_next) {
        if ((rc = listen_one(ai, backlog > 0 ? backlog : SOMAXCONN, &fd)) == 0)
            break;
    }
    freeaddrinfo(list);
    if (rc != 0)
        return rc;
    tcp->socket = fd;
    return 0;
}

/* ANCHOR: accept */
/* The accepted socket must be non-blocking (Linux does not inherit it from
 * the listener) and close-on-exec: accept4() sets both in the same call.
 * Elsewhere (macOS) accept() and two fcntl() calls; a fork from another
 * thread in between could leak the descriptor to the child. */
static int accept_nonblocking(int listener)
{
#if defined(SOCK_NONBLOCK) && defined(SOCK_CLOEXEC)
    return accept4(listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
#else
    int fd = accept(listener, NULL, NULL);
    if (fd >= 0) {
        fcntl(fd, F_SETFD, FD_CLOEXEC);
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    }
    return fd;
#endif
}

int sys_tcp_accept(struct sys_poll *sys, evq_tcp *listener, evq_tcp *tcp)
{
    (void)sys;
    for (;;) {
        int fd = accept_nonblocking(listener->socket);
        if (fd >= 0) {
            int rc = evq_socket_set_nosigpipe(fd); /* SO_NOSIGPIPE is not inherited */
            if (rc != 0) {
                close(fd);
                return rc;
            }
            tcp->socket = fd;
            return 0;
        }
        /* EINTR: a signal, try again. ECONNABORTED: the connection was
         * reset while it waited in the backlog (BSD and macOS say so; Linux
         * drops it silently) - the next one may be fine. */
        if (errno != EINTR && errno != ECONNABORTED)
            return evq_error_from_errno(errno); /* EAGAIN -> EVQ_EWOULDBLOCK */
    }
}
/* ANCHOR_END: accept */

/* ANCHOR: fill */
int sys_tcp_fill(evq_tcp *tcp)
{
    /* The socket stays non-blocking: an empty socket says EAGAIN at once.
     * (The well-known teaching version switched it back to blocking to
     * read, and a spurious wake-up would then hang the whole loop.) Receive
     * until EAGAIN: only then is the socket known to be empty, so the next
     * kernel event is about new data. */
    for (;;) {
        char *space;
        size_t len;
        int rc = read_buffer_reserve(&tcp->read_buf, tcp->limits.read_initial,
                                     tcp->limits.read_max, &space, &len);
        if (rc != 0)
            return rc;
        if (len == 0) {
            tcp->read_drained = false; /* more may wait in the socket */
            return 0; /* full at read_max: the reader must consume first */
        }
        ssize_t got = 0; /* set by receive() whenever it returns 0 */
        if ((rc = receive(tcp, space, len, &got)) == EVQ_EWOULDBLOCK) {
            sys_fill_found_empty(tcp); /* no recv() again until the kernel says so */
            return 0;
        }
        if (rc != 0)
            return rc; /* a reset: after the bytes already buffered */
        if (got == 0)
            return EVQ_EOF; /* the peer shut down writing; we may still send */
        read_buffer_commit(&tcp->read_buf, (size_t)got);
    }
}
/* ANCHOR_END: fill */

/* ANCHOR: flush_posix */
int sys_tcp_flush(evq_tcp *tcp)
{
    while (!write_queue_empty(&tcp->write_queue)) {
        /* The queue's first chunks in one call: sendmsg() gathers them, so a
         * queue of many small writes costs one system call, not one each. */
        struct write_segment segments[SYS_SEND_SEGMENTS];
        struct iovec iov[SYS_SEND_SEGMENTS];
        size_t count = write_queue_segments(&tcp->write_queue, segments, SYS_SEND_SEGMENTS);
        for (size_t i = 0; i < count; i++) {
            iov[i].iov_base = (void *)segments[i].data;
            iov[i].iov_len = segments[i].len;
        }
        ssize_t sent = 0;
        int rc = send_segments(tcp, iov, count, &sent);
        if (rc == EVQ_EWOULDBLOCK)
            return 0; /* the socket is full: the rest waits for WRITABLE */
        if (rc != 0)
            return rc; /* EPIPE, ECONNRESET: the peer is gone */
        write_queue_pop(&tcp->write_queue, (size_t)sent);
    }
    if (tcp->shutdown_requested && !tcp->shutdown_done) {
        /* Everything is sent: now the FIN. The read side stays open. */
        tcp->shutdown_done = true;
        if (shutdown(tcp->socket, SHUT_WR) != 0)
            return evq_error_from_errno(errno);
    }
    return 0;
}
/* ANCHOR_END: flush_posix */

size_t sys_tcp_kernel_lent(const evq_tcp *tcp)
{
    (void)tcp;
    return 0; /* send() and recv() copy: the kernel never keeps our memory */
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

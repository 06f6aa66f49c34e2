/* filter_fd.c - EVFILT_READ and EVFILT_WRITE on sockets, pipes and FIFOs.
 *
 * epoll only says "something happened on this descriptor"; what the filter
 * reports is read from the descriptor when kevent() is about to return it,
 * as FreeBSD's filt_soread/filt_sowrite read the socket buffer:
 *
 *   readable, EV_EOF  poll(): POLLIN, POLLRDHUP (peer shut down writing), POLLHUP
 *   read data         FIONREAD: bytes waiting; on a listening TCP socket the
 *                     accept queue, which TCP_INFO reports as tcpi_unacked
 *   writable          poll(): POLLOUT
 *   write data        SO_SNDBUF - SIOCOUTQ on a socket, F_GETPIPE_SZ - FIONREAD
 *                     on a pipe: the free space in the send buffer
 *   fflags on EV_EOF  the socket error, inferred (see socket_error_guess)
 */
#define _GNU_SOURCE
#include "kqueue_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdbool.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>

static struct knote **slot_of(struct watch *w, short filter)
{
    return filter == EVFILT_READ ? &w->read : &w->write;
}

/* Edge-triggered for every caller descriptor: an edge activates the knote,
 * and the knote itself stays queued for as long as the filter says true.
 * A registration that can no longer be removed (its file closed while a dup
 * keeps it open) then costs nothing: it never reports the same state twice. */
static uint32_t interest_of(const struct watch *w)
{
    uint32_t events = 0;
    if (w->read)
        events |= EPOLLIN | EPOLLRDHUP;
    if (w->write)
        events |= EPOLLOUT;
    return events ? events | EPOLLET : 0;
}

static bool tcp_info_of(int fd, struct tcp_info *info)
{
    socklen_t length = sizeof *info;
    return getsockopt(fd, IPPROTO_TCP, TCP_INFO, info, &length) == 0;
}

static bool has_peer(int fd)
{
    struct sockaddr_storage address;
    socklen_t length = sizeof address;
    return getpeername(fd, (struct sockaddr *)&address, &length) == 0;
}

static void describe(struct watch *w, const struct stat *st)
{
    w->device = st->st_dev;
    w->inode = st->st_ino;
    if (S_ISSOCK(st->st_mode)) {
        int protocol = 0;
        socklen_t length = sizeof protocol;
        w->type = DESCRIPTOR_SOCKET;
        w->tcp = getsockopt(w->fd, SOL_SOCKET, SO_PROTOCOL, &protocol, &length) == 0 &&
                 protocol == IPPROTO_TCP;
        w->peer_seen = w->tcp && has_peer(w->fd);
    } else if (S_ISFIFO(st->st_mode)) {
        w->type = DESCRIPTOR_PIPE;
    } else {
        w->type = DESCRIPTOR_OTHER;
    }
}

/* ANCHOR: same_file */
/* Does w->fd still name the file it named when the knote was added? A
 * descriptor closed without EV_DELETE, and its number given to a new socket,
 * fails this: BSD dropped the knotes at close(), so the emulation drops them
 * now. Sockets and pipes each have their own inode, so (st_dev, st_ino) names
 * the file. */
static bool same_file(const struct watch *w)
{
    struct stat st;
    return fstat(w->fd, &st) == 0 && st.st_dev == w->device && st.st_ino == w->inode;
}
/* ANCHOR_END: same_file */

static int descriptor_find(struct kq *kq, const struct kevent *change, struct knote **found)
{
    *found = NULL;
    /* As FreeBSD's kqueue_register: an ident that is not an open descriptor
     * is EBADF, whatever the flags. */
    if (change->ident > INT_MAX)
        return EBADF;
    int fd = (int)change->ident;
    struct watch *w = kq_watch_find(kq, fd);
    if (w && w->kind != WATCH_DESCRIPTOR)
        return EINVAL; /* this kqueue's own timerfd */
    if (fd == kq->epoll_fd || fd == kq->doorbell_fd)
        return EINVAL; /* this kqueue's own descriptors */
    struct stat st;
    if (fstat(fd, &st) != 0) {
        if (w)
            kq_watch_drop(kq, w); /* closed without EV_DELETE */
        return EBADF;
    }
    if (w && (st.st_dev != w->device || st.st_ino != w->inode)) {
        kq_watch_drop(kq, w); /* closed without EV_DELETE, number reused */
        w = NULL;
    }
    if (w)
        *found = *slot_of(w, change->filter);
    return 0;
}

static int descriptor_attach(struct kq *kq, struct knote *kn, const struct kevent *change)
{
    int fd = (int)change->ident;
    struct watch *w = kq_watch_find(kq, fd);
    if (!w) {
        struct stat st;
        if (fstat(fd, &st) != 0)
            return EBADF;
        w = kq_watch_create(kq, fd, WATCH_DESCRIPTOR);
        if (!w)
            return ENOMEM;
        describe(w, &st);
    }
    *slot_of(w, kn->kev.filter) = kn;
    kn->watch = w;
    int error = kq_watch_set_interest(kq, w, interest_of(w));
    if (error) {
        *slot_of(w, kn->kev.filter) = NULL;
        kn->watch = NULL;
        if (!w->read && !w->write)
            kq_watch_free(kq, w);
        /* epoll refuses regular files and directories (EPERM), and itself
         * (EINVAL); FreeBSD says EINVAL for a descriptor a filter cannot
         * watch. */
        return error == EPERM || error == EEXIST ? EINVAL : error;
    }
    return 0;
}

static void descriptor_detach(struct kq *kq, struct knote *kn)
{
    struct watch *w = kn->watch;
    *slot_of(w, kn->kev.filter) = NULL;
    kn->watch = NULL;
    if (!w->read && !w->write)
        kq_watch_free(kq, w);
    else
        (void)kq_watch_set_interest(kq, w, interest_of(w));
}

/* FreeBSD saves fflags and data for NOTE_LOWAT, which the emulation does
 * not implement: the low-water mark is always 1 byte. */
static int descriptor_touch(struct kq *kq, struct knote *kn, struct kevent *change)
{
    return 0;
}

static short poll_descriptor(int fd, short events)
{
    struct pollfd p = {.fd = fd, .events = events};
    int rc;
    do {
        rc = poll(&p, 1, 0);
    } while (rc < 0 && errno == EINTR);
    return rc < 0 ? 0 : p.revents;
}

/* A TCP socket that was never connected polls as hung up (its state is
 * CLOSE); BSD reports nothing on it. Remember once the socket has had a peer. */
static bool never_connected(struct watch *w)
{
    if (!w->tcp)
        return false;
    if (!w->peer_seen)
        w->peer_seen = has_peer(w->fd);
    return !w->peer_seen;
}

/* ANCHOR: socket_error */
/* On BSD fflags carries so_error and the error stays pending for the next
 * recv() or getsockopt(SO_ERROR). Linux has exactly one way to read a
 * socket's pending error, getsockopt(SO_ERROR), and it clears the error: the
 * caller's recv() would then see a clean EOF instead of ECONNRESET, and a
 * failed non-blocking connect would look successful to SO_ERROR. So the
 * emulation never reads it. POLLERR says that an error is pending; which one
 * is inferred from the socket's history: a TCP socket that never had a peer
 * was refused, one that had a peer was reset. The true value is still there
 * for the caller's own SO_ERROR or recv(). */
static unsigned socket_error_guess(struct watch *w)
{
    if (w->type != DESCRIPTOR_SOCKET)
        return 0;
    return never_connected(w) ? ECONNREFUSED : ECONNRESET;
}
/* ANCHOR_END: socket_error */

/* The accept queue of a listening socket, which FIONREAD does not report. */
static int64_t pending_connections(const struct watch *w, short revents)
{
    struct tcp_info info;
    if (w->tcp && tcp_info_of(w->fd, &info) && info.tcpi_state == TCP_LISTEN)
        return info.tcpi_unacked;      /* for a listener: connections ready for accept() */
    return (revents & POLLIN) ? 1 : 0; /* another kind of listener: at least one */
}

/* ANCHOR: read_event */
static enum filter_result read_event(struct kq *kq, struct knote *kn, struct kevent *out)
{
    struct watch *w = kn->watch;
    if (!same_file(w))
        return FILTER_GONE;
    short revents = poll_descriptor(w->fd, POLLIN | POLLRDHUP);
    int available = 0;
    int64_t data;
    if (ioctl(w->fd, FIONREAD, &available) == 0)
        data = available;
    else /* a listening socket refuses FIONREAD (EINVAL) */
        data = w->type == DESCRIPTOR_SOCKET ? pending_connections(w, revents) : 0;
    bool error = revents & POLLERR;
    bool eof = (revents & (POLLRDHUP | POLLHUP)) && (error || !never_connected(w));
    if (!(revents & POLLIN) && !eof && !error)
        return FILTER_NOT_READY;
    out->data = data;
    /* EV_EOF may come with data still to read: FreeBSD's "It is possible for
     * EOF to be returned (indicating the connection is gone) while there is
     * still data pending in the socket buffer." */
    if (eof) {
        out->flags |= EV_EOF;
        out->fflags = error ? socket_error_guess(w) : 0;
    }
    return FILTER_READY;
}
/* ANCHOR_END: read_event */

/* Has this TCP socket stopped sending (shutdown(SHUT_WR), FIN sent, closed)?
 * BSD sets EV_EOF on the write filter then; Linux polls it as writable. */
static bool tcp_cannot_send(int fd)
{
    struct tcp_info info;
    if (!tcp_info_of(fd, &info))
        return false;
    switch (info.tcpi_state) {
    case TCP_FIN_WAIT1:
    case TCP_FIN_WAIT2:
    case TCP_TIME_WAIT:
    case TCP_CLOSE:
    case TCP_LAST_ACK:
    case TCP_CLOSING:
        return true;
    default:
        return false;
    }
}

static int64_t send_space(const struct watch *w)
{
    int queued = 0, capacity = 0;
    socklen_t length = sizeof capacity;
    if (w->type == DESCRIPTOR_SOCKET) {
        /* SO_SNDBUF counts kernel bookkeeping too (Linux doubles what was
         * set), so this is an upper bound on what one write would take. */
        if (getsockopt(w->fd, SOL_SOCKET, SO_SNDBUF, &capacity, &length) != 0 ||
            ioctl(w->fd, SIOCOUTQ, &queued) != 0)
            return 0;
    } else if (w->type == DESCRIPTOR_PIPE) {
        capacity = fcntl(w->fd, F_GETPIPE_SZ);
        if (capacity < 0 || ioctl(w->fd, FIONREAD, &queued) != 0)
            return 0;
    }
    return capacity > queued ? capacity - queued : 0;
}

static enum filter_result write_event(struct kq *kq, struct knote *kn, struct kevent *out)
{
    struct watch *w = kn->watch;
    if (!same_file(w))
        return FILTER_GONE;
    short revents = poll_descriptor(w->fd, POLLOUT);
    bool error = revents & POLLERR;
    bool eof;
    if (w->type == DESCRIPTOR_PIPE)
        eof = error; /* Linux: POLLERR on a pipe's write end means no reader is left */
    else if (!error && never_connected(w))
        return FILTER_NOT_READY; /* BSD: an unconnected socket is not writable */
    else
        eof = (revents & POLLHUP) || (w->tcp && tcp_cannot_send(w->fd));
    if (!(revents & POLLOUT) && !eof && !error)
        return FILTER_NOT_READY;
    out->data = send_space(w);
    if (eof) {
        out->flags |= EV_EOF;
        out->fflags = error ? socket_error_guess(w) : 0;
    }
    return FILTER_READY;
}

const struct filter_ops kqueue_filter_read = {
    .filter = EVFILT_READ,
    .find = descriptor_find,
    .attach = descriptor_attach,
    .detach = descriptor_detach,
    .touch = descriptor_touch,
    .event = read_event,
    .clear = NULL,
    .deferred_evaluation = true,
};

const struct filter_ops kqueue_filter_write = {
    .filter = EVFILT_WRITE,
    .find = descriptor_find,
    .attach = descriptor_attach,
    .detach = descriptor_detach,
    .touch = descriptor_touch,
    .event = write_event,
    .clear = NULL,
    .deferred_evaluation = true,
};

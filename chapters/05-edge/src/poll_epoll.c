/* poll_epoll.c - the queue on Linux epoll, one-shot (EPOLLONESHOT).
 *
 * Arming: EPOLL_CTL_ADD the first time, with EPOLLONESHOT; after one event
 * the kernel disables the whole descriptor (every interest) until
 * EPOLL_CTL_MOD arms it again - exactly what sys.h asks, so nothing is
 * emulated here. Per stream it keeps one bit: whether the socket is in the
 * set. The waker is an eventfd in the same epoll set.
 */
#define _GNU_SOURCE /* epoll_create1, eventfd, EPOLLRDHUP */
#include "sys.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

struct sys_poll {
    int epoll_fd;
    int wake_fd; /* eventfd; its epoll_event.data.ptr is this struct, never a stream */
    struct epoll_event events[SYS_MAX_EVENTS];
};

/* What epoll needs to know of a stream that the portable files do not:
 * whether its socket is in the epoll set (ADD done, DEL not yet), which
 * decides between EPOLL_CTL_ADD and EPOLL_CTL_MOD. */
struct sys_stream {
    bool in_kernel;
};

int sys_poll_open(struct sys_poll **out)
{
    struct sys_poll *sys = calloc(1, sizeof *sys);
    if (!sys)
        return EVQ_ENOMEM;
    sys->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    sys->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    int rc = sys->epoll_fd < 0 || sys->wake_fd < 0 ? evq_error_from_errno(errno) : 0;
    if (rc == 0) {
        /* The waker is identified by a pointer no stream can have (the
         * queue's own state), not by a token value: every token, 0 and
         * UINT64_MAX included, belongs to the caller. Level-triggered, so it
         * stays ready until a wait drains it. */
        struct epoll_event ev = {0};
        ev.events = EPOLLIN;
        ev.data.ptr = sys;
        if (epoll_ctl(sys->epoll_fd, EPOLL_CTL_ADD, sys->wake_fd, &ev) != 0)
            rc = evq_error_from_errno(errno);
    }
    if (rc != 0) {
        sys_poll_close(sys);
        return rc;
    }
    *out = sys;
    return 0;
}

void sys_poll_close(struct sys_poll *sys)
{
    if (sys->wake_fd >= 0)
        close(sys->wake_fd);
    if (sys->epoll_fd >= 0)
        close(sys->epoll_fd);
    free(sys);
}

/* ANCHOR: translate */
/* Kernel flags to the library's readiness, in one place. EPOLLERR and
 * EPOLLHUP come whether asked for or not; they mean the next read or write
 * returns at once (EOF, or the error), so they make the stream ready for
 * whatever it was armed for. EPOLLRDHUP (asked for with READABLE) is the
 * peer's FIN: readable, and reads end in EOF. */
static uint32_t ready_from_epoll(uint32_t flags, unsigned interests)
{
    uint32_t ready = 0;
    if (flags & EPOLLIN)
        ready |= EVQ_READABLE;
    if (flags & EPOLLOUT)
        ready |= EVQ_WRITABLE;
    if (flags & EPOLLRDHUP)
        ready |= EVQ_READABLE | EVQ_HUP;
    if (flags & EPOLLHUP)
        ready |= EVQ_HUP | interests;
    if (flags & EPOLLERR)
        ready |= EVQ_ERR | interests;
    return ready;
}
/* ANCHOR_END: translate */

/* ANCHOR: wait */
int sys_poll_wait(struct sys_poll *sys, struct sys_event *events, size_t capacity, int timeout_ms,
                  size_t *n, bool *woken)
{
    /* Never offer the kernel more room than the caller has: every event it
     * hands back has already disarmed its stream (one-shot), so one that
     * does not fit in the caller's array would be lost for good. */
    int room = capacity < SYS_MAX_EVENTS ? (int)capacity : SYS_MAX_EVENTS;
    int got = epoll_wait(sys->epoll_fd, sys->events, room, timeout_ms);
    if (got < 0)
        return evq_error_from_errno(errno); /* EINTR -> EVQ_EINTR: poll.c retries */
    size_t out = 0;
    for (int i = 0; i < got; i++) {
        /* struct epoll_event is packed on x86-64 (and only there): `data`
         * sits at offset 4, misaligned. Read members by value, as here;
         * never keep a pointer to one (&ev->data.u64 is a misaligned
         * uint64_t * - undefined behaviour, and a bus error on some CPUs),
         * and never copy the array into a struct of your own layout. */
        void *owner = sys->events[i].data.ptr;
        uint32_t flags = sys->events[i].events;
        if (owner == sys) {
            uint64_t count;
            if (read(sys->wake_fd, &count, sizeof count) < 0 && errno != EAGAIN)
                return evq_error_from_errno(errno);
            *woken = true;
            continue;
        }
        evq_tcp *tcp = owner;
        events[out].tcp = tcp;
        events[out].ready = ready_from_epoll(flags, tcp->kernel_armed);
        events[out].error = 0; /* EPOLLERR: the next recv() or send() returns it */
        /* The socket may hold bytes that came after the last fill's EAGAIN. */
        if (events[out].ready & (EVQ_READABLE | EVQ_HUP | EVQ_ERR))
            tcp->read_drained = false;
        out++;
    }
    *n = out;
    return 0;
}
/* ANCHOR_END: wait */

int sys_poll_wake(struct sys_poll *sys)
{
    uint64_t one = 1;
    for (;;) {
        if (write(sys->wake_fd, &one, sizeof one) == (ssize_t)sizeof one)
            return 0;
        if (errno == EAGAIN)
            return 0; /* the counter is full: it is already signalled */
        if (errno != EINTR)
            return evq_error_from_errno(errno);
    }
}

int sys_stream_open(struct sys_poll *sys, evq_tcp *tcp)
{
    (void)sys; /* the socket joins the epoll set when it is first armed */
    tcp->sys = calloc(1, sizeof *tcp->sys);
    return tcp->sys ? 0 : EVQ_ENOMEM;
}

static int remove_from_set(struct sys_poll *sys, evq_tcp *tcp)
{
    if (!tcp->sys->in_kernel)
        return 0;
    /* A non-NULL event pointer for kernels before 2.6.9, which required one. */
    struct epoll_event unused = {0};
    if (epoll_ctl(sys->epoll_fd, EPOLL_CTL_DEL, tcp->socket, &unused) != 0)
        return evq_error_from_errno(errno);
    tcp->sys->in_kernel = false;
    return 0;
}

/* ANCHOR: arm */
int sys_arm(struct sys_poll *sys, evq_tcp *tcp, unsigned interests)
{
    /* Nothing wanted: out of the set. (Armed with no events is not silent:
     * EPOLLERR and EPOLLHUP are reported whether asked for or not.) */
    if (interests == 0)
        return remove_from_set(sys, tcp);
    struct epoll_event ev = {0};
    ev.events = EPOLLONESHOT;
    if (interests & EVQ_READABLE)
        ev.events |= EPOLLIN | EPOLLRDHUP;
    if (interests & EVQ_WRITABLE)
        ev.events |= EPOLLOUT;
    /* The stream itself, not the token: the wait needs its state, and a
     * re-registration may change the token without touching the kernel. */
    ev.data.ptr = tcp;
    /* After an event EPOLLONESHOT has disabled the descriptor, but it is
     * still in the set: MOD, not ADD, arms it again. Both look at the
     * socket's state now, not only at what happens next: data that came
     * while the stream was disarmed is reported at once (fs/eventpoll.c,
     * ep_insert and ep_modify: "If the item is "hot" and it is not
     * registered inside the ready list, push it inside"). stream.c's
     * read_drained relies on that: no wake-up is lost. */
    int op = tcp->sys->in_kernel ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    if (epoll_ctl(sys->epoll_fd, op, tcp->socket, &ev) != 0)
        return evq_error_from_errno(errno);
    tcp->sys->in_kernel = true;
    return 0;
}
/* ANCHOR_END: arm */

void sys_stream_detach(struct sys_poll *sys, evq_tcp *tcp)
{
    remove_from_set(sys, tcp); /* nothing is in flight on a readiness backend */
}

void sys_stream_close(struct sys_poll *sys, evq_tcp *tcp)
{
    if (sys && tcp->sys)
        remove_from_set(sys, tcp);         /* before close(): see poll_close_stream */
    if (tcp->socket != EVQ_INVALID_SOCKET) /* none while resolving, or after a failed connect */
        evq_socket_close(tcp->socket);     /* never retried: see evq_net.h */
    free(tcp->sys);
    tcp->sys = NULL;
}

/* ANCHOR: abandon */
/* The next address gets a new descriptor, quite possibly with the same
 * number: the old one leaves the epoll set before it is closed, and the
 * stream is out of the set until the new one is armed (EPOLL_CTL_ADD). */
void sys_connect_abandon(struct sys_poll *sys, evq_tcp *tcp)
{
    remove_from_set(sys, tcp);
    evq_socket_close(tcp->socket); /* close() on a connecting socket cancels the connect */
    tcp->socket = EVQ_INVALID_SOCKET;
}
/* ANCHOR_END: abandon */

size_t sys_poll_retired(const struct sys_poll *sys)
{
    (void)sys;
    return 0; /* nothing is ever lent to the kernel */
}

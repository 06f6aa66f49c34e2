/* poll_epoll.c - the queue on Linux epoll, edge-triggered (EPOLLET).
 *
 * A socket is added once (EPOLL_CTL_ADD) with EPOLLIN | EPOLLOUT |
 * EPOLLRDHUP | EPOLLET and stays until it is closed (EPOLL_CTL_DEL): no
 * EPOLL_CTL_MOD per event. The kernel then reports each change once - new
 * bytes, room again after a full send buffer, the peer's FIN - and poll.c
 * remembers what it says. Per stream it keeps one bit: whether the socket
 * is in the set. The waker is an eventfd in the same epoll set.
 *
 * Several threads may call epoll_wait on one epoll descriptor at once;
 * each ready item is handed to one of them. The event array is each
 * caller's own.
 */
#define _GNU_SOURCE /* epoll_create1, eventfd, EPOLLRDHUP */
#include "sys.h"

#include "key_table.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

struct sys_poll {
    int epoll_fd;
    int wake_fd; /* eventfd; its epoll_event.data.u64 is KEY_NONE, never a stream's key */
    atomic_uint_fast64_t control_calls;
};

/* What epoll needs to know of a stream that the portable files do not:
 * whether its socket is in the epoll set (ADD done, DEL not yet). */
struct sys_stream {
    bool in_kernel;
};

int sys_poll_open(struct sys_poll **out)
{
    struct sys_poll *sys = calloc(1, sizeof *sys);
    if (!sys)
        return EVQ_ENOMEM;
    atomic_init(&sys->control_calls, 0);
    sys->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    sys->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    int rc = sys->epoll_fd < 0 || sys->wake_fd < 0 ? evq_error_from_errno(errno) : 0;
    if (rc == 0) {
        /* The waker is identified by a key no stream can have, not by a
         * token value: every token, 0 and UINT64_MAX included, belongs to
         * the caller. Level-triggered, so it stays ready until a wait
         * drains it. */
        struct epoll_event ev = {0};
        ev.events = EPOLLIN;
        ev.data.u64 = KEY_NONE;
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

uint64_t sys_poll_control_calls(const struct sys_poll *sys)
{
    return atomic_load(&((struct sys_poll *)sys)->control_calls);
}

/* ANCHOR: translate */
/* Kernel flags to edges, in one place. EPOLLRDHUP is the peer's FIN: read
 * on to the EOF. EPOLLHUP (both directions shut, or a reset) and EPOLLERR
 * come whether asked for or not: the connection is over, and every later
 * read or write returns at once - readable and writable. */
static uint32_t edges_from_epoll(uint32_t flags)
{
    uint32_t edges = 0;
    if (flags & EPOLLIN)
        edges |= EVQ_READABLE;
    if (flags & EPOLLOUT)
        edges |= EVQ_WRITABLE;
    if (flags & EPOLLRDHUP)
        edges |= EVQ_READABLE | EVQ_HUP;
    if (flags & EPOLLHUP)
        edges |= EVQ_READABLE | EVQ_WRITABLE | EVQ_HUP | SYS_END;
    if (flags & EPOLLERR)
        edges |= EVQ_READABLE | EVQ_WRITABLE | EVQ_ERR;
    return edges;
}
/* ANCHOR_END: translate */

/* ANCHOR: wait */
int sys_poll_wait(struct sys_poll *sys, struct sys_event *events, size_t capacity, int timeout_ms,
                  size_t *n, bool *woken)
{
    /* On this thread's stack: another may be in epoll_wait beside it. An
     * edge that does not fit stays on epoll's ready list for the next. */
    struct epoll_event ready[SYS_MAX_EVENTS];
    int room = capacity < SYS_MAX_EVENTS ? (int)capacity : SYS_MAX_EVENTS;
    int got = epoll_wait(sys->epoll_fd, ready, room, timeout_ms);
    if (got < 0)
        return evq_error_from_errno(errno); /* EINTR -> EVQ_EINTR: poll.c retries */
    size_t out = 0;
    for (int i = 0; i < got; i++) {
        /* struct epoll_event is packed on x86-64 (and only there): `data`
         * sits at offset 4, misaligned. Read members by value, as here;
         * never keep a pointer to one (&ev->data.u64 is a misaligned
         * uint64_t * - undefined behaviour, and a bus error on some CPUs),
         * and never copy the array into a struct of your own layout. */
        uint64_t data = ready[i].data.u64;
        uint32_t flags = ready[i].events;
        if (data == KEY_NONE) {
            uint64_t count;
            if (read(sys->wake_fd, &count, sizeof count) < 0 && errno != EAGAIN)
                return evq_error_from_errno(errno);
            *woken = true;
            continue;
        }
        events[out].key = data; /* poll.c finds the stream, if it is still there */
        events[out].edges = edges_from_epoll(flags);
        events[out].error = 0; /* EPOLLERR: the next recv() or send() returns it */
        events[out].operation = NULL;
        events[out].bytes = 0;
        out++;
    }
    *n = out;
    return 0;
}
/* ANCHOR_END: wait */

uint32_t sys_event_take(struct sys_poll *sys, evq_tcp *tcp, struct sys_event *event)
{
    (void)sys;
    (void)tcp; /* an edge changes nothing by itself: poll.c remembers it */
    return event->edges;
}

void sys_event_drop(struct sys_poll *sys, struct sys_event *event)
{
    (void)sys;
    (void)event; /* the kernel lent nothing */
}

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

/* ANCHOR: attach */
/* Once per socket: both directions, edge-triggered. EPOLLOUT is asked for
 * from the start although most sockets are writable at once: its edge comes
 * only when room returns after the send buffer was full, which is the one
 * moment a queue with bytes waiting must hear of. Adding a socket that
 * holds something already reports it at once (fs/eventpoll.c, ep_insert:
 * "If the file is already "ready" we drop it inside the ready list"), so no
 * edge that came before the ADD is lost. The data is the stream's key, not
 * the token (a re-registration changes the token without the kernel
 * hearing of it) and not its address (an edge a waiter holds may outlive
 * the stream: the key then finds nothing). */
int sys_stream_attach(struct sys_poll *sys, evq_tcp *tcp)
{
    struct epoll_event ev = {0};
    ev.events = EPOLLIN | EPOLLRDHUP | EPOLLET;
    if (!tcp->listener)
        ev.events |= EPOLLOUT;
    ev.data.u64 = tcp->key;
    atomic_fetch_add(&sys->control_calls, 1);
    if (epoll_ctl(sys->epoll_fd, EPOLL_CTL_ADD, tcp->socket, &ev) != 0)
        return evq_error_from_errno(errno);
    tcp->sys->in_kernel = true;
    return 0;
}
/* ANCHOR_END: attach */

int sys_stream_open(struct sys_poll *sys, evq_tcp *tcp)
{
    tcp->sys = calloc(1, sizeof *tcp->sys);
    if (!tcp->sys)
        return EVQ_ENOMEM;
    int rc = tcp->socket != EVQ_INVALID_SOCKET ? sys_stream_attach(sys, tcp) : 0;
    if (rc != 0) {
        free(tcp->sys);
        tcp->sys = NULL;
    }
    return rc;
}

void sys_watch_read(struct sys_poll *sys, evq_tcp *tcp)
{
    (void)sys;
    (void)tcp; /* the kernel has watched the socket since it was added */
}

static void remove_from_set(struct sys_poll *sys, evq_tcp *tcp)
{
    if (!tcp->sys->in_kernel)
        return;
    /* A non-NULL event pointer for kernels before 2.6.9, which required one. */
    struct epoll_event unused = {0};
    atomic_fetch_add(&sys->control_calls, 1);
    epoll_ctl(sys->epoll_fd, EPOLL_CTL_DEL, tcp->socket, &unused); /* it goes with close() anyway */
    tcp->sys->in_kernel = false;
}

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
 * number: the old one leaves the epoll set before it is closed, and an
 * edge of it that a wait has already taken carries the stream's old key,
 * whose generation the new socket no longer has (poll_rekey_stream). */
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

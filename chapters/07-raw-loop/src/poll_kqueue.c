/* poll_kqueue.c - the queue on BSD/macOS kqueue, edge-triggered (EV_CLEAR).
 *
 * Written against FreeBSD's kqueue(2); on Linux it builds unchanged against
 * the book's emulation (appendix B), or against libkqueue.
 *
 * kqueue's unit is a knote, one per (descriptor, filter): a stream is two,
 * EVFILT_READ and EVFILT_WRITE, added together once with EV_ADD | EV_CLEAR
 * and deleted together when the socket is closed. kqueue(2) on EV_CLEAR:
 * "After the event is retrieved by the user, its state is reset" - the
 * knote reports again only when its filter fires anew: an edge. So there is
 * nothing to re-add or delete per event, and each knote that fires is one
 * sys_event: a stream whose two knotes fired in one wait is two events,
 * which poll.c takes one after the other.
 *
 * Several threads may call kevent() on one kqueue at once; each activated
 * knote is handed to one of them. The event list is each caller's own.
 */
#if defined(__linux__)
#define _POSIX_C_SOURCE 200809L /* close() */
#endif
#include "sys.h"

#include "key_table.h"

#include <sys/types.h> /* before <sys/event.h> on older BSDs */
#include <sys/event.h>
#include <sys/time.h>

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

/* udata carries a 64-bit key (key_table.h). */
_Static_assert(sizeof(void *) >= sizeof(uint64_t), "a key fits in udata");

/* The waker: an EVFILT_USER knote. No stream uses that filter, so the
 * filter alone identifies it; no token value is set aside. */
#define WAKER_IDENT 1

struct sys_poll {
    int kq;
    atomic_uint_fast64_t control_calls;
};

/* What kqueue needs to know of a stream that the portable files do not:
 * whether its knotes are in the kqueue. */
struct sys_stream {
    bool in_kernel;
};

static const struct timespec no_wait = {0, 0};

int sys_poll_open(struct sys_poll **out)
{
    struct sys_poll *sys = calloc(1, sizeof *sys);
    if (!sys)
        return EVQ_ENOMEM;
    atomic_init(&sys->control_calls, 0);
    sys->kq = kqueue();
    if (sys->kq < 0) {
        int rc = evq_error_from_errno(errno);
        free(sys);
        return rc;
    }
    /* EV_CLEAR: retrieving the triggered waker resets it, so it drains itself. */
    struct kevent waker;
    EV_SET(&waker, WAKER_IDENT, EVFILT_USER, EV_ADD | EV_CLEAR, 0, 0, NULL);
    if (kevent(sys->kq, &waker, 1, NULL, 0, &no_wait) != 0) {
        int rc = evq_error_from_errno(errno);
        sys_poll_close(sys);
        return rc;
    }
    *out = sys;
    return 0;
}

void sys_poll_close(struct sys_poll *sys)
{
    if (sys->kq >= 0)
        close(sys->kq);
    free(sys);
}

uint64_t sys_poll_control_calls(const struct sys_poll *sys)
{
    return atomic_load(&((struct sys_poll *)sys)->control_calls);
}

/* ANCHOR: apply */
/* Apply `count` changes (at most 2: one stream's knotes); results[i] is the
 * errno of changes[i] (0 when it applied). Without EV_RECEIPT a failed
 * change comes back as an EV_ERROR entry too, when the event list has room,
 * but a change that succeeded says nothing, and the same call goes on to
 * collect pending events into the list - events this function has no room
 * for. EV_RECEIPT adds the two things wanted here: an entry for every
 * change (data 0 on success), and no pending events drained (FreeBSD
 * kqueue(2)). */
static int apply_changes(struct sys_poll *sys, struct kevent *changes, int count, int *results)
{
    struct kevent receipts[2];
    for (int i = 0; i < count; i++) {
        changes[i].flags |= EV_RECEIPT;
        results[i] = EINVAL; /* "no receipt", if the kernel should skip one */
    }
    atomic_fetch_add(&sys->control_calls, 1);
    int got;
    while ((got = kevent(sys->kq, changes, count, receipts, count, &no_wait)) < 0) {
        if (errno != EINTR)
            return evq_error_from_errno(errno);
    }
    for (int r = 0; r < got; r++) {
        for (int i = 0; i < count; i++) {
            if (receipts[r].filter == changes[i].filter)
                results[i] = (receipts[r].flags & EV_ERROR) ? (int)receipts[r].data : 0;
        }
    }
    return 0;
}
/* ANCHOR_END: apply */

/* ANCHOR: attach */
/* Once per socket, one kevent() call: the read knote and (but on a
 * listener) the write knote, each EV_CLEAR. Adding a knote runs its filter
 * at once - kqueue(2): "The filter is executed upon the initial
 * registration of a kevent in order to detect whether a preexisting
 * condition is present" - so bytes that came before the add are reported.
 * udata is the stream's key (key_table.h), not its address: an event a
 * waiter holds may outlive the stream. The token lives in the stream, so
 * that an event carries whatever token the last registration gave. */
int sys_stream_attach(struct sys_poll *sys, evq_tcp *tcp)
{
    struct kevent changes[2];
    int count = 0;
    void *udata = (void *)(uintptr_t)tcp->key;
    EV_SET(&changes[count++], (uintptr_t)tcp->socket, EVFILT_READ, EV_ADD | EV_CLEAR, 0, 0, udata);
    if (!tcp->listener)
        EV_SET(&changes[count++], (uintptr_t)tcp->socket, EVFILT_WRITE, EV_ADD | EV_CLEAR, 0, 0,
               udata);
    int results[2];
    int rc = apply_changes(sys, changes, count, results);
    for (int i = 0; rc == 0 && i < count; i++) {
        if (results[i] != 0)
            rc = evq_error_from_errno(results[i]);
    }
    tcp->sys->in_kernel = rc == 0 || results[0] == 0; /* what got in must go out */
    return rc;
}
/* ANCHOR_END: attach */

int sys_stream_open(struct sys_poll *sys, evq_tcp *tcp)
{
    struct sys_stream *stream = calloc(1, sizeof *stream);
    if (!stream)
        return EVQ_ENOMEM;
    tcp->sys = stream;
    int rc = tcp->socket != EVQ_INVALID_SOCKET ? sys_stream_attach(sys, tcp) : 0;
    if (rc != 0) {
        tcp->sys = NULL;
        free(stream);
    }
    return rc;
}

void sys_watch_read(struct sys_poll *sys, evq_tcp *tcp)
{
    (void)sys;
    (void)tcp; /* the read knote has watched the socket since it was added */
}

/* Both knotes out (before close(): see poll_close_stream). ENOENT is no
 * failure: a listener has no write knote, and close() may have gone first
 * on providers that drop knotes with the descriptor. */
static void remove_knotes(struct sys_poll *sys, evq_tcp *tcp)
{
    if (!tcp->sys || !tcp->sys->in_kernel)
        return;
    struct kevent changes[2];
    int count = 0;
    EV_SET(&changes[count++], (uintptr_t)tcp->socket, EVFILT_READ, EV_DELETE, 0, 0, NULL);
    if (!tcp->listener)
        EV_SET(&changes[count++], (uintptr_t)tcp->socket, EVFILT_WRITE, EV_DELETE, 0, 0, NULL);
    int results[2];
    apply_changes(sys, changes, count, results);
    tcp->sys->in_kernel = false;
}

void sys_stream_detach(struct sys_poll *sys, evq_tcp *tcp)
{
    remove_knotes(sys, tcp); /* nothing is in flight on a readiness backend */
}

void sys_stream_close(struct sys_poll *sys, evq_tcp *tcp)
{
    if (sys)
        remove_knotes(sys, tcp);
    if (tcp->socket != EVQ_INVALID_SOCKET) /* none while resolving, or after a failed connect */
        evq_socket_close(tcp->socket);     /* never retried: see evq_net.h */
    free(tcp->sys);
    tcp->sys = NULL;
}

/* ANCHOR: abandon */
/* The next address gets a new descriptor, quite possibly with the same
 * number: the old one's knotes are deleted before it is closed (kqueue
 * implementations differ on whether close() drops them), and an event of
 * theirs that a wait has already taken - the other knote of the same
 * failure, in the same batch - carries the stream's old key, whose
 * generation has moved on (poll_rekey_stream). */
void sys_connect_abandon(struct sys_poll *sys, evq_tcp *tcp)
{
    remove_knotes(sys, tcp);
    evq_socket_close(tcp->socket); /* close() on a connecting socket cancels the connect */
    tcp->socket = EVQ_INVALID_SOCKET;
}
/* ANCHOR_END: abandon */

/* ANCHOR: translate */
/* One knote's report to edges. EV_EOF on the read filter is the peer's FIN:
 * read on to the EOF. On the write filter it says only that writing is
 * over - also after our own shutdown(SHUT_WR) - which the next write says
 * too. With it, kqueue(2): "returns the socket error (if any) in fflags" -
 * a reset: every read and write fails from now on. The wait hands that
 * error on with the event: libkqueue reads it with getsockopt(SO_ERROR),
 * which on Linux also clears it, so the next recv() would say EOF where
 * FreeBSD's says ECONNRESET. */
static uint32_t edges_from_kevent(const struct kevent *kev)
{
    bool read_filter = kev->filter == EVFILT_READ;
    uint32_t edges = read_filter ? EVQ_READABLE : EVQ_WRITABLE;
    if ((kev->flags & EV_EOF) && read_filter)
        edges |= EVQ_HUP;
    if ((kev->flags & EV_EOF) && kev->fflags != 0)
        edges |= EVQ_READABLE | EVQ_WRITABLE | EVQ_ERR;
    return edges;
}
/* ANCHOR_END: translate */

/* ANCHOR: wait */
int sys_poll_wait(struct sys_poll *sys, struct sys_event *events, size_t capacity, int timeout_ms,
                  size_t *n, bool *woken)
{
    struct timespec timeout = {timeout_ms / 1000, (long)(timeout_ms % 1000) * 1000000L};
    /* On this thread's stack: another may be in kevent() beside it. A
     * knote that does not fit stays active for the next wait. */
    struct kevent ready[SYS_MAX_EVENTS];
    int room = capacity < SYS_MAX_EVENTS ? (int)capacity : SYS_MAX_EVENTS;
    int got = kevent(sys->kq, NULL, 0, ready, room, timeout_ms < 0 ? NULL : &timeout);
    if (got < 0)
        return evq_error_from_errno(errno); /* EINTR -> EVQ_EINTR: poll.c retries */
    size_t out = 0;
    for (int i = 0; i < got; i++) {
        const struct kevent *kev = &ready[i];
        if (kev->filter == EVFILT_USER) {
            *woken = true;
            continue;
        }
        events[out].key = (uint64_t)(uintptr_t)kev->udata;
        events[out].edges = edges_from_kevent(kev);
        events[out].error =
            (kev->flags & EV_EOF) && kev->fflags != 0 ? evq_error_from_errno((int)kev->fflags) : 0;
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
    struct kevent trigger;
    EV_SET(&trigger, WAKER_IDENT, EVFILT_USER, 0, NOTE_TRIGGER, 0, NULL);
    while (kevent(sys->kq, &trigger, 1, NULL, 0, &no_wait) != 0) {
        if (errno != EINTR)
            return evq_error_from_errno(errno);
    }
    return 0;
}

size_t sys_poll_retired(const struct sys_poll *sys)
{
    (void)sys;
    return 0; /* nothing is ever lent to the kernel */
}

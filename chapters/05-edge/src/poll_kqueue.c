/* poll_kqueue.c - the queue on BSD/macOS kqueue, one-shot (EV_ONESHOT).
 *
 * Written against FreeBSD's kqueue(2); on Linux it builds unchanged against
 * the book's emulation (appendix B).
 *
 * The one difference from epoll that matters here: kqueue's unit is a
 * knote, one per (descriptor, filter), so a stream armed for READABLE and
 * WRITABLE is two knotes, and EV_ONESHOT deletes only the one that fired.
 * evq.h promises that an event disarms the whole stream, so the wait
 * (1) merges the read and write knotes of one stream into one event,
 * and (2) deletes the knote that did not fire. The stream's own state
 * (struct sys_stream) says which knotes are armed, so that arming adds only
 * the missing ones and deletes exactly the armed ones no longer wanted
 * (EV_DELETE on a missing knote is an ENOENT error).
 */
#if defined(__linux__)
#define _POSIX_C_SOURCE 200809L /* close() */
#endif
#include "sys.h"

#include <sys/types.h> /* before <sys/event.h> on older BSDs */
#include <sys/event.h>
#include <sys/time.h>

#include <errno.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

/* The waker: an EVFILT_USER knote. No stream uses that filter, so the
 * filter alone identifies it; no token value is set aside. */
#define WAKER_IDENT 1

struct sys_poll {
    int kq;
    struct kevent events[SYS_MAX_EVENTS];
    evq_tcp *batch[SYS_MAX_EVENTS]; /* the stream behind each event being collected */
    struct kevent changes[SYS_MAX_EVENTS];
};

/* What kqueue needs to know of a stream that the portable files do not. */
struct sys_stream {
    unsigned armed;    /* knotes added and not yet fired: EVQ_READABLE, EVQ_WRITABLE */
    size_t batch_slot; /* its event's index in the wait being collected; SIZE_MAX outside */
};

static const struct timespec no_wait = {0, 0};

int sys_poll_open(struct sys_poll **out)
{
    struct sys_poll *sys = calloc(1, sizeof *sys);
    if (!sys)
        return EVQ_ENOMEM;
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

static short filter_of(unsigned interest)
{
    return interest == EVQ_READABLE ? EVFILT_READ : EVFILT_WRITE;
}

/* ANCHOR: apply */
/* Apply `count` changes for one stream's knotes; results[i] is the errno of
 * changes[i] (0 when it applied). Without EV_RECEIPT a failed change comes
 * back as an EV_ERROR entry too, when the event list has room, but a
 * change that succeeded says nothing, and the same call goes on to collect
 * pending events into the list - events this function has no room for.
 * EV_RECEIPT adds the two things wanted here: an entry for every change
 * (data 0 on success), and no pending events drained (FreeBSD kqueue(2)). */
static int apply_changes(struct sys_poll *sys, struct kevent *changes, int count, int *results)
{
    struct kevent receipts[2];
    for (int i = 0; i < count; i++) {
        changes[i].flags |= EV_RECEIPT;
        results[i] = EINVAL; /* "no receipt", if the kernel should skip one */
    }
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

/* ANCHOR: arm */
/* Make the stream's knotes match `wanted`: add a one-shot knote per wanted
 * filter that is not armed yet, delete the armed ones no longer wanted. A
 * knote that is armed already is left alone. kqueue(2) says re-adding it
 * "will modify the parameters of the original event" - here to the very
 * same ones, so it would only cost a system call; and libkqueue refuses to
 * modify an EVFILT_WRITE knote without EV_CLEAR (with a receipt carrying a
 * stale error), which failed the arming and lost a stream's queued bytes.
 * An armed knote needs no second look either: it has been watching all
 * along, and is queued already if its condition holds. */
static int arm(struct sys_poll *sys, evq_tcp *tcp, unsigned wanted)
{
    static const unsigned each[2] = {EVQ_READABLE, EVQ_WRITABLE};
    struct sys_stream *stream = tcp->sys;
    struct kevent changes[2];
    unsigned change_of[2];
    int count = 0;
    for (int i = 0; i < 2; i++) {
        unsigned interest = each[i];
        unsigned short flags;
        if ((wanted & interest) && !(stream->armed & interest))
            flags = EV_ADD | EV_ONESHOT;
        else if (!(wanted & interest) && (stream->armed & interest))
            flags = EV_DELETE;
        else
            continue;
        /* udata: the stream. The token lives in the stream, so that the
         * event carries whatever token the last registration gave. */
        EV_SET(&changes[count], (uintptr_t)tcp->socket, filter_of(interest), flags, 0, 0, tcp);
        change_of[count++] = interest;
    }
    if (count == 0)
        return 0;
    int results[2];
    int rc = apply_changes(sys, changes, count, results);
    if (rc != 0)
        return rc;
    for (int i = 0; i < count; i++) {
        bool added = changes[i].flags & EV_ADD;
        if (results[i] == 0 || (!added && results[i] == ENOENT))
            stream->armed = added ? stream->armed | change_of[i] : stream->armed & ~change_of[i];
        else if (rc == 0)
            rc = evq_error_from_errno(results[i]);
    }
    return rc;
}
/* ANCHOR_END: arm */

/* A fired one-shot knote is gone, so re-arming is a new registration, and
 * kqueue(2): "The filter is executed upon the initial registration of a
 * kevent in order to detect whether a preexisting condition is present" -
 * data that came while the stream was disarmed is reported at once (the
 * emulation does the same: kqueue_register in
 * appendix/b-kqueue-linux/src/kevent.c). stream.c's read_drained relies on
 * it: no wake-up is lost. */
int sys_arm(struct sys_poll *sys, evq_tcp *tcp, unsigned interests)
{
    int rc = arm(sys, tcp, interests);
    if (rc != 0)
        arm(sys, tcp, 0); /* all or nothing: drop a knote that did get added */
    return rc;
}

int sys_stream_open(struct sys_poll *sys, evq_tcp *tcp)
{
    (void)sys; /* knotes are added when the stream is first armed */
    struct sys_stream *stream = calloc(1, sizeof *stream);
    if (!stream)
        return EVQ_ENOMEM;
    stream->batch_slot = SIZE_MAX;
    tcp->sys = stream;
    return 0;
}

void sys_stream_detach(struct sys_poll *sys, evq_tcp *tcp)
{
    arm(sys, tcp, 0); /* nothing is in flight on a readiness backend */
}

void sys_stream_close(struct sys_poll *sys, evq_tcp *tcp)
{
    if (sys && tcp->sys)
        arm(sys, tcp, 0);                  /* before close(): see poll_close_stream */
    if (tcp->socket != EVQ_INVALID_SOCKET) /* none while resolving, or after a failed connect */
        evq_socket_close(tcp->socket);     /* never retried: see evq_net.h */
    free(tcp->sys);
    tcp->sys = NULL;
}

/* ANCHOR: abandon */
/* The next address gets a new descriptor, quite possibly with the same
 * number: the old one's knotes are deleted before it is closed (kqueue
 * implementations differ on whether close() drops them), so that none of
 * them can fire for the new socket. */
void sys_connect_abandon(struct sys_poll *sys, evq_tcp *tcp)
{
    arm(sys, tcp, 0);
    evq_socket_close(tcp->socket); /* close() on a connecting socket cancels the connect */
    tcp->socket = EVQ_INVALID_SOCKET;
}
/* ANCHOR_END: abandon */

/* ANCHOR: translate */
/* One knote's report to the library's readiness. EV_EOF: the peer closed its
 * side (read filter) or stopped reading (write filter); with it, kqueue(2):
 * "returns the socket error (if any) in fflags" - a reset. The wait hands
 * that error on with the event: libkqueue reads it with getsockopt(
 * SO_ERROR), which on Linux also clears it, so the next recv() would say
 * EOF where FreeBSD's says ECONNRESET. */
static uint32_t ready_from_kevent(const struct kevent *kev)
{
    uint32_t ready = kev->filter == EVFILT_READ ? EVQ_READABLE : EVQ_WRITABLE;
    if (kev->flags & EV_EOF) {
        ready |= EVQ_HUP;
        if (kev->fflags != 0)
            ready |= EVQ_ERR;
    }
    return ready;
}
/* ANCHOR_END: translate */

/* ANCHOR: wait_collect */
int sys_poll_wait(struct sys_poll *sys, struct sys_event *events, size_t capacity, int timeout_ms,
                  size_t *n, bool *woken)
{
    struct timespec timeout = {timeout_ms / 1000, (long)(timeout_ms % 1000) * 1000000L};
    /* Room for no more knotes than the caller has room for events: a fired
     * EV_ONESHOT knote is gone, so one we could not hand over would be lost. */
    int room = capacity < SYS_MAX_EVENTS ? (int)capacity : SYS_MAX_EVENTS;
    int got = kevent(sys->kq, NULL, 0, sys->events, room, timeout_ms < 0 ? NULL : &timeout);
    if (got < 0)
        return evq_error_from_errno(errno); /* EINTR -> EVQ_EINTR: poll.c retries */

    /* Pass 1: one event per stream, even when both of its knotes fired.
     * Merging only shrinks the count, so it never exceeds `room`. */
    size_t out = 0;
    for (int i = 0; i < got; i++) {
        const struct kevent *kev = &sys->events[i];
        if (kev->filter == EVFILT_USER) {
            *woken = true;
            continue;
        }
        evq_tcp *tcp = kev->udata;
        struct sys_stream *stream = tcp->sys;
        stream->armed &=
            kev->filter == EVFILT_READ ? ~(unsigned)EVQ_READABLE : ~(unsigned)EVQ_WRITABLE;
        if (stream->batch_slot == SIZE_MAX) {
            stream->batch_slot = out;
            sys->batch[out] = tcp;
            events[out].tcp = tcp;
            events[out].ready = 0;
            events[out].error = 0;
            out++;
        }
        events[stream->batch_slot].ready |= ready_from_kevent(kev);
        if ((kev->flags & EV_EOF) && kev->fflags != 0)
            events[stream->batch_slot].error = evq_error_from_errno((int)kev->fflags);
        /* The socket may hold bytes that came after the last fill's EAGAIN. */
        if (kev->filter == EVFILT_READ || (kev->flags & EV_EOF))
            tcp->read_drained = false;
    }
    /* ANCHOR_END: wait_collect */
    /* ANCHOR: wait_disarm */
    /* Pass 2: an event disarms the whole stream, as EPOLLONESHOT does, so
     * delete the knote that did not fire. Otherwise a stream armed for both
     * could report READABLE now and WRITABLE later, without a re-arm. */
    int count = 0;
    for (size_t k = 0; k < out; k++) {
        evq_tcp *tcp = sys->batch[k];
        struct sys_stream *stream = tcp->sys;
        stream->batch_slot = SIZE_MAX;
        if (stream->armed != 0) {
            EV_SET(&sys->changes[count++], (uintptr_t)tcp->socket, filter_of(stream->armed),
                   EV_DELETE | EV_RECEIPT, 0, 0, NULL);
            stream->armed = 0;
        }
    }
    /* The receipts land in sys->events, which pass 1 has finished with. A
     * failure here (ENOENT cannot happen: the knote exists) leaves a knote
     * that may report one extra event; it is not worth failing the wait. */
    if (count > 0)
        kevent(sys->kq, sys->changes, count, sys->events, count, &no_wait);
    *n = out;
    return 0;
}
/* ANCHOR_END: wait_disarm */

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

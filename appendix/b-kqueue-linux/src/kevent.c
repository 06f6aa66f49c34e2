/* kevent.c - kevent(): apply the changelist, then collect events.
 *
 * The order of work follows FreeBSD's kqueue_kevent(): every change is
 * applied first; a failed change (or any change with EV_RECEIPT) becomes an
 * EV_ERROR entry if there is room, or fails the call if there is not; if any
 * entry was written the call returns at once; otherwise it scans the active
 * queue and, if that yields nothing, waits in epoll_wait() for the time left.
 */
#define _GNU_SOURCE
#include "kqueue_internal.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

/* epoll events taken per epoll_wait(); more stay in epoll for the next one. */
enum { EPOLL_BATCH = 64 };

static const struct filter_ops *filter_of(short filter)
{
    switch (filter) {
    case EVFILT_READ:
        return &kqueue_filter_read;
    case EVFILT_WRITE:
        return &kqueue_filter_write;
    case EVFILT_USER:
        return &kqueue_filter_user;
    case EVFILT_TIMER:
        return &kqueue_filter_timer;
    default:
        return NULL;
    }
}

/* A change to a knote that exists (and is not being deleted). */
static int knote_modify(struct kq *kq, struct knote *kn, struct kevent *change)
{
    if (change->flags & EV_ENABLE) {
        kn->status &= ~(unsigned)KNOTE_DISABLED;
    } else if (change->flags & EV_DISABLE) {
        kn->status |= KNOTE_DISABLED;
        knote_dequeue(kq, kn);
    }
    /* Every change replaces udata, EV_ENABLE and NOTE_TRIGGER included. */
    kn->kev.udata = change->udata;
    return kn->ops->touch(kq, kn, change);
}

static int knote_add(struct kq *kq, const struct filter_ops *ops, struct kevent *change,
                     struct knote **added)
{
    struct knote *kn = knote_new(ops, change);
    if (!kn)
        return ENOMEM;
    int error = ops->attach(kq, kn, change);
    if (error) {
        knote_free(kn);
        return error;
    }
    change->fflags = 0; /* as FreeBSD: the receipt of a new knote shows none */
    *added = kn;
    return 0;
}

/* ANCHOR: register */
/* One change, as FreeBSD's kqueue_register(). Returns 0 or an errno value. */
static int kqueue_register(struct kq *kq, struct kevent *change)
{
    if ((change->flags & (EV_ENABLE | EV_DISABLE)) == (EV_ENABLE | EV_DISABLE))
        return EINVAL;
    const struct filter_ops *ops = filter_of(change->filter);
    if (!ops)
        return EINVAL;
    struct knote *kn;
    int error = ops->find(kq, change, &kn);
    if (error)
        return error;
    if (kn && (change->flags & EV_DELETE)) {
        knote_drop(kq, kn);
        return 0;
    }
    if (kn)
        error = knote_modify(kq, kn, change);
    else if (change->flags & EV_ADD)
        error = knote_add(kq, ops, change, &kn);
    else
        error = ENOENT;
    if (error)
        return error;
    /* "The filter is executed upon the initial registration of a kevent in
     * order to detect whether a preexisting condition is present" - and on
     * every later change. A descriptor filter costs system calls, and runs
     * again when the knote is retrieved, so it is only queued here. */
    struct kevent scratch = kn->kev;
    if (!(kn->status & KNOTE_DISABLED) &&
        (ops->deferred_evaluation || ops->event(kq, kn, &scratch) == FILTER_READY))
        knote_activate(kq, kn);
    return 0;
}
/* ANCHOR_END: register */

/* ANCHOR: deliver */
/* Take knotes off the active queue and run each filter once more: "If the
 * filter indicates that the condition that triggered the event no longer
 * holds, the kevent is removed from the kqueue and is not returned." */
static int kqueue_deliver(struct kq *kq, struct kevent *eventlist, int nevents)
{
    int count = 0;
    /* A level-triggered knote goes back on the tail; visit each knote once. */
    size_t budget = kq->queue_length;
    while (count < nevents && budget-- > 0) {
        struct knote *kn = knote_dequeue_first(kq);
        if (!kn)
            break;
        struct kevent event = kn->kev;
        enum filter_result result = kn->ops->event(kq, kn, &event);
        if (result == FILTER_GONE) {
            knote_drop(kq, kn);
            continue;
        }
        if (result == FILTER_NOT_READY) {
            kn->status &= ~(unsigned)KNOTE_ACTIVE;
            continue;
        }
        eventlist[count++] = event;
        if (kn->kev.flags & EV_ONESHOT) {
            knote_drop(kq, kn);
        } else if (kn->kev.flags & (EV_CLEAR | EV_DISPATCH)) {
            if ((kn->kev.flags & EV_CLEAR) && kn->ops->clear)
                kn->ops->clear(kn);
            if (kn->kev.flags & EV_DISPATCH)
                kn->status |= KNOTE_DISABLED;
            kn->status &= ~(unsigned)KNOTE_ACTIVE; /* wait for the next edge */
        } else {
            knote_enqueue(kq, kn); /* level: stays queued while the filter says true */
        }
    }
    return count;
}
/* ANCHOR_END: deliver */

/* ANCHOR: doorbell */
/* Threads blocked in epoll_wait() do not see the active queue. When it holds
 * knotes and someone is waiting, make the doorbell (an eventfd in the epoll
 * set, level-triggered) readable so that epoll_wait() returns; when it is
 * empty again, or nobody waits, drain it, or every epoll_wait() would return
 * at once. */
static void doorbell_update(struct kq *kq)
{
    bool wanted = kq->queue_length > 0 && kq->waiters > 0;
    uint64_t value = 1;
    if (wanted && !kq->doorbell_rung) {
        if (write(kq->doorbell_fd, &value, sizeof value) == (ssize_t)sizeof value)
            kq->doorbell_rung = true;
    } else if (!wanted && kq->doorbell_rung) {
        if (read(kq->doorbell_fd, &value, sizeof value) == (ssize_t)sizeof value)
            kq->doorbell_rung = false;
    }
}
/* ANCHOR_END: doorbell */

static int64_t monotonic_ns(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
}

/* When a wait with this timeout ends, on the monotonic clock; INT64_MAX for
 * NULL ("waits indefinitely") or a timeout too long to count. */
static int deadline_of(const struct timespec *timeout, int64_t *deadline)
{
    *deadline = INT64_MAX;
    if (!timeout)
        return 0;
    if (timeout->tv_sec < 0 || timeout->tv_nsec < 0 || timeout->tv_nsec >= 1000000000)
        return EINVAL;
    int64_t now = monotonic_ns();
    if (timeout->tv_sec < (INT64_MAX - now) / 1000000000 - 1)
        *deadline = now + (int64_t)timeout->tv_sec * 1000000000 + timeout->tv_nsec;
    return 0;
}

/* Milliseconds for epoll_wait() until deadline, rounded up so that the wait
 * is never shorter than asked; 0 once the deadline has passed. */
static int remaining_ms(int64_t deadline)
{
    if (deadline == INT64_MAX)
        return -1;
    int64_t left = deadline - monotonic_ns();
    if (left <= 0)
        return 0;
    int64_t ms = left / 1000000 + (left % 1000000 != 0);
    return ms > INT_MAX ? INT_MAX : (int)ms;
}

/* ANCHOR: scan */
/* Called with kq->lock held; returns the number of events or -1 with errno. */
static int kqueue_scan(struct kq *kq, struct kevent *eventlist, int nevents,
                       const struct timespec *timeout)
{
    int64_t deadline;
    int error = deadline_of(timeout, &deadline);
    if (error) {
        errno = error;
        return -1;
    }
    struct epoll_event ready[EPOLL_BATCH];
    int harvested = epoll_wait(kq->epoll_fd, ready, EPOLL_BATCH, 0);
    for (;;) {
        for (int i = 0; i < harvested; i++)
            kq_activate_from_epoll(kq, ready[i].data.u64, ready[i].events);
        int count = kqueue_deliver(kq, eventlist, nevents);
        int wait_ms = count > 0 ? 0 : remaining_ms(deadline);
        if (wait_ms == 0)
            return count;
        kq->waiters++;
        doorbell_update(kq);
        pthread_mutex_unlock(&kq->lock);
        harvested = epoll_wait(kq->epoll_fd, ready, EPOLL_BATCH, wait_ms);
        int wait_errno = errno;
        pthread_mutex_lock(&kq->lock);
        kq->waiters--;
        /* BSD does not restart kevent() after a signal: EINTR, with every
         * change already applied. */
        if (harvested < 0) {
            errno = wait_errno;
            return -1;
        }
    }
}
/* ANCHOR_END: scan */

/* ANCHOR: changes */
/* Apply every change; a failure, or any change with EV_RECEIPT, becomes an
 * EV_ERROR entry while there is room. Returns the number of entries, or -1
 * with errno set when a change failed with no room to report it. */
static int kqueue_apply(struct kq *kq, const struct kevent *changelist, int nchanges,
                        struct kevent *eventlist, int nevents)
{
    int entries = 0;
    for (int i = 0; i < nchanges; i++) {
        struct kevent change = changelist[i]; /* eventlist may be the same array */
        if (change.filter == 0)
            continue; /* FreeBSD skips such an entry */
        change.flags &= (unsigned short)~EV_SYSFLAGS;
        int error = kqueue_register(kq, &change);
        if (error == 0 && !(change.flags & EV_RECEIPT))
            continue;
        if (entries == nevents) {
            if (error == 0)
                break; /* a receipt with no room: "subsequent changes will not get processed" */
            errno = error;
            return -1;
        }
        change.flags = EV_ERROR;
        change.data = error;
        eventlist[entries++] = change;
    }
    return entries;
}
/* ANCHOR_END: changes */

/* ANCHOR: kevent */
int kevent(int kq_descriptor, const struct kevent *changelist, int nchanges,
           struct kevent *eventlist, int nevents, const struct timespec *timeout)
{
    if (nchanges < 0 || nevents < 0 || (nchanges > 0 && !changelist) ||
        (nevents > 0 && !eventlist)) {
        errno = nchanges < 0 || nevents < 0 ? EINVAL : EFAULT;
        return -1;
    }
    struct kq *kq = kq_acquire(kq_descriptor);
    if (!kq) {
        errno = EBADF;
        return -1;
    }
    pthread_mutex_lock(&kq->lock);
    int result = kqueue_apply(kq, changelist, nchanges, eventlist, nevents);
    /* Entries written, or no room for events: "return immediately". */
    if (result == 0 && nevents > 0)
        result = kqueue_scan(kq, eventlist, nevents, timeout);
    int saved_errno = errno;
    doorbell_update(kq);
    pthread_mutex_unlock(&kq->lock);
    kq_release(kq);
    errno = saved_errno;
    return result;
}
/* ANCHOR_END: kevent */

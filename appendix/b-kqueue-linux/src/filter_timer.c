/* filter_timer.c - EVFILT_TIMER on a timerfd per timer.
 *
 * A kqueue timer is periodic unless EV_ONESHOT, its period in data
 * (milliseconds unless NOTE_SECONDS, NOTE_USECONDS or NOTE_NSECONDS), and
 * each delivery reports in data how many times it expired since the last
 * one. A timerfd does exactly that: the kernel keeps the schedule (next
 * expiry = previous expiry + period, so no drift), and read() returns the
 * number of expirations since the last read. The timerfd sits in the
 * kqueue's epoll set; when epoll reports it, the count is read and added to
 * the knote.
 */
#define _GNU_SOURCE
#include "kqueue_internal.h"

#include <errno.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

/* ANCHOR: period */
/* The timerfd schedule for a kevent's data and fflags, checked as FreeBSD's
 * filt_timervalidate: a negative period or an unknown flag is EINVAL.
 * (NOTE_ABSTIME is not emulated, so it is an unknown flag here.) */
static int timer_schedule(int64_t data, unsigned fflags, bool oneshot, struct itimerspec *out)
{
    if (data < 0)
        return EINVAL;
    /* FreeBSD: a periodic timer of 0 would fire without pause; it becomes 1. */
    if (data == 0 && !oneshot)
        data = 1;
    int64_t per_second;
    switch (fflags) {
    case 0:
    case NOTE_MSECONDS:
        per_second = 1000;
        break;
    case NOTE_SECONDS:
        per_second = 1;
        break;
    case NOTE_USECONDS:
        per_second = 1000000;
        break;
    case NOTE_NSECONDS:
        per_second = 1000000000;
        break;
    default:
        return EINVAL;
    }
    struct timespec period = {
        .tv_sec = (time_t)(data / per_second),
        .tv_nsec = (long)(data % per_second * (1000000000 / per_second)),
    };
    /* An it_value of zero disarms a timerfd: a one-shot of 0 fires after 1 ns. */
    if (period.tv_sec == 0 && period.tv_nsec == 0)
        period.tv_nsec = 1;
    out->it_value = period;
    out->it_interval = oneshot ? (struct timespec){0, 0} : period;
    return 0;
}
/* ANCHOR_END: period */

static int timer_find(struct kq *kq, const struct kevent *change, struct knote **found)
{
    *found = knote_hash_find(kq, change->ident, EVFILT_TIMER);
    return 0;
}

static int timer_attach(struct kq *kq, struct knote *kn, const struct kevent *change)
{
    struct itimerspec schedule;
    int error = timer_schedule(change->data, change->fflags, change->flags & EV_ONESHOT, &schedule);
    if (error)
        return error;
    int fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (fd < 0)
        return errno;
    struct watch *w = kq_watch_create(kq, fd, WATCH_TIMER);
    if (!w) {
        close(fd);
        return ENOMEM;
    }
    w->timer = kn;
    kn->watch = w;
    /* Level-triggered: until the count is read, epoll keeps reporting it. */
    error = kq_watch_set_interest(kq, w, EPOLLIN);
    if (!error && timerfd_settime(fd, 0, &schedule, NULL) != 0)
        error = errno;
    if (error) {
        kn->watch = NULL;
        kq_watch_free(kq, w);
        close(fd);
        return error;
    }
    /* FreeBSD sets EV_CLEAR on relative timers: each delivery starts the
     * count again. */
    kn->kev.flags |= EV_CLEAR;
    knote_hash_insert(kq, kn);
    return 0;
}

static void timer_detach(struct kq *kq, struct knote *kn)
{
    knote_hash_remove(kq, kn);
    int fd = kn->watch->fd;
    kq_watch_free(kq, kn->watch);
    kn->watch = NULL;
    close(fd);
}

/* Re-adding a timer restarts it with the new period, "throwing away any
 * undelivered record of previous timer expiration" (FreeBSD's
 * filt_timertouch). Its EV_ONESHOT stays what it was when first added. */
static int timer_touch(struct kq *kq, struct knote *kn, struct kevent *change)
{
    if (!(change->flags & EV_ADD))
        return 0;
    struct itimerspec schedule;
    int error = timer_schedule(change->data, change->fflags, kn->kev.flags & EV_ONESHOT, &schedule);
    if (error)
        return error;
    knote_dequeue(kq, kn);
    kn->status &= ~(unsigned)KNOTE_ACTIVE;
    kn->expirations = 0;
    /* Setting a timerfd also resets its count of unread expirations. */
    if (timerfd_settime(kn->watch->fd, 0, &schedule, NULL) != 0)
        return errno;
    return 0;
}

/* epoll reported the timerfd: move its count to the knote. Two threads may
 * both have seen the report; the second read finds nothing (EAGAIN). */
void kq_timer_expired(struct kq *kq, struct watch *w)
{
    uint64_t count = 0;
    if (read(w->fd, &count, sizeof count) != (ssize_t)sizeof count || count == 0)
        return;
    struct knote *kn = w->timer;
    kn->expirations = count > UINT64_MAX - kn->expirations ? UINT64_MAX : kn->expirations + count;
    knote_activate(kq, kn);
}

static enum filter_result timer_event(struct kq *kq, struct knote *kn, struct kevent *out)
{
    if (kn->expirations == 0)
        return FILTER_NOT_READY;
    out->data = kn->expirations > INT64_MAX ? INT64_MAX : (int64_t)kn->expirations;
    return FILTER_READY;
}

static void timer_clear(struct knote *kn)
{
    kn->expirations = 0;
}

const struct filter_ops kqueue_filter_timer = {
    .filter = EVFILT_TIMER,
    .find = timer_find,
    .attach = timer_attach,
    .detach = timer_detach,
    .touch = timer_touch,
    .event = timer_event,
    .clear = timer_clear,
    .deferred_evaluation = false,
};

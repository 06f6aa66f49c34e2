/* filter_user.c - EVFILT_USER: an event that only the program triggers.
 *
 * Nothing in the kernel backs it: a flag on the knote, set by NOTE_TRIGGER
 * and cleared on delivery when the knote has EV_CLEAR. Waking a thread that
 * sleeps in epoll_wait() is the doorbell's job (kevent.c): triggering queues
 * the knote, and a queued knote rings the doorbell when threads are waiting.
 */
#include "kqueue_internal.h"

#include <errno.h>

static int user_find(struct kq *kq, const struct kevent *change, struct knote **found)
{
    *found = knote_hash_find(kq, change->ident, EVFILT_USER);
    return 0;
}

/* FreeBSD stores fflags and data as given and does not look at NOTE_TRIGGER
 * when the knote is added (macOS does); a knote is triggered by a later change. */
static int user_attach(struct kq *kq, struct knote *kn, const struct kevent *change)
{
    kn->user_fflags = change->fflags & NOTE_FFLAGSMASK;
    kn->user_data = change->data;
    kn->triggered = false;
    knote_hash_insert(kq, kn);
    return 0;
}

static void user_detach(struct kq *kq, struct knote *kn)
{
    knote_hash_remove(kq, kn);
}

/* ANCHOR: user_touch */
/* Any change to an existing EVFILT_USER knote, whatever its flags (the usual
 * trigger is EV_SET(&kev, id, EVFILT_USER, 0, NOTE_TRIGGER, 0, NULL)). */
static int user_touch(struct kq *kq, struct knote *kn, struct kevent *change)
{
    if (change->fflags & NOTE_TRIGGER)
        kn->triggered = true;
    unsigned operation = change->fflags & NOTE_FFCTRLMASK;
    unsigned value = change->fflags & NOTE_FFLAGSMASK;
    switch (operation) {
    case NOTE_FFAND:
        kn->user_fflags &= value;
        break;
    case NOTE_FFOR:
        kn->user_fflags |= value;
        break;
    case NOTE_FFCOPY:
        kn->user_fflags = value;
        break;
    default: /* NOTE_FFNOP */
        break;
    }
    change->fflags = value; /* what an EV_RECEIPT entry shows, as on FreeBSD */
    kn->user_data = change->data;
    if (change->flags & EV_CLEAR)
        kn->triggered = false;
    return 0;
}
/* ANCHOR_END: user_touch */

/* Without EV_CLEAR a triggered knote stays triggered, and every kevent()
 * returns it again: the filter is level-triggered like any other. */
static enum filter_result user_event(struct kq *kq, struct knote *kn, struct kevent *out)
{
    if (!kn->triggered)
        return FILTER_NOT_READY;
    out->fflags = kn->user_fflags;
    out->data = kn->user_data;
    return FILTER_READY;
}

static void user_clear(struct knote *kn)
{
    kn->triggered = false;
}

const struct filter_ops kqueue_filter_user = {
    .filter = EVFILT_USER,
    .find = user_find,
    .attach = user_attach,
    .detach = user_detach,
    .touch = user_touch,
    .event = user_event,
    .clear = user_clear,
    .deferred_evaluation = false,
};

/* knote.c - the knote table, the active queue, and the epoll registrations
 * ("watches") behind descriptor and timer knotes.
 *
 * Knotes are found the way FreeBSD finds them: those whose ident is a
 * descriptor through a table indexed by descriptor (here: the watch of that
 * descriptor), the others (EVFILT_USER, EVFILT_TIMER) through a small hash of
 * idents. Every function here runs with kq->lock held.
 */
#define _GNU_SOURCE
#include "kqueue_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

struct knote *knote_new(const struct filter_ops *ops, const struct kevent *change)
{
    struct knote *kn = calloc(1, sizeof *kn);
    if (!kn)
        return NULL;
    kn->kev = *change;
    /* FreeBSD keeps the flags that describe the knote (EV_ONESHOT, EV_CLEAR,
     * EV_DISPATCH, EV_RECEIPT) and returns them with every event; the actions
     * are not part of it. fflags and data are the filter's output. */
    kn->kev.flags &= (unsigned short)~(EV_ADD | EV_DELETE | EV_ENABLE | EV_DISABLE);
    kn->kev.fflags = 0;
    kn->kev.data = 0;
    kn->ops = ops;
    /* "Adding an event automatically enables it, unless overridden by the
     * EV_DISABLE flag." */
    if (change->flags & EV_DISABLE)
        kn->status = KNOTE_DISABLED;
    return kn;
}

void knote_free(struct knote *kn)
{
    free(kn);
}

static size_t ident_bucket(uintptr_t ident)
{
    return (size_t)((ident ^ (ident >> 8)) % KNOTE_HASH_SIZE);
}

struct knote *knote_hash_find(struct kq *kq, uintptr_t ident, short filter)
{
    for (struct knote *kn = kq->ident_hash[ident_bucket(ident)]; kn; kn = kn->hash_next) {
        if (kn->kev.ident == ident && kn->kev.filter == filter)
            return kn;
    }
    return NULL;
}

void knote_hash_insert(struct kq *kq, struct knote *kn)
{
    size_t bucket = ident_bucket(kn->kev.ident);
    kn->hash_next = kq->ident_hash[bucket];
    kq->ident_hash[bucket] = kn;
}

void knote_hash_remove(struct kq *kq, struct knote *kn)
{
    struct knote **link = &kq->ident_hash[ident_bucket(kn->kev.ident)];
    while (*link && *link != kn)
        link = &(*link)->hash_next;
    if (*link)
        *link = kn->hash_next;
    kn->hash_next = NULL;
}

/* ANCHOR: queue */
void knote_enqueue(struct kq *kq, struct knote *kn)
{
    kn->queue_prev = kq->queue_tail;
    kn->queue_next = NULL;
    if (kq->queue_tail)
        kq->queue_tail->queue_next = kn;
    else
        kq->queue_head = kn;
    kq->queue_tail = kn;
    kq->queue_length++;
    kn->status |= KNOTE_QUEUED;
}

/* The filter fired. A disabled knote remembers it (KNOTE_ACTIVE) but stays
 * off the queue until EV_ENABLE runs the filter again. */
void knote_activate(struct kq *kq, struct knote *kn)
{
    kn->status |= KNOTE_ACTIVE;
    if (!(kn->status & (KNOTE_QUEUED | KNOTE_DISABLED)))
        knote_enqueue(kq, kn);
}
/* ANCHOR_END: queue */

void knote_dequeue(struct kq *kq, struct knote *kn)
{
    if (!(kn->status & KNOTE_QUEUED))
        return;
    if (kn->queue_prev)
        kn->queue_prev->queue_next = kn->queue_next;
    else
        kq->queue_head = kn->queue_next;
    if (kn->queue_next)
        kn->queue_next->queue_prev = kn->queue_prev;
    else
        kq->queue_tail = kn->queue_prev;
    kn->queue_prev = kn->queue_next = NULL;
    kq->queue_length--;
    kn->status &= ~(unsigned)KNOTE_QUEUED;
}

struct knote *knote_dequeue_first(struct kq *kq)
{
    struct knote *kn = kq->queue_head;
    if (kn)
        knote_dequeue(kq, kn);
    return kn;
}

void knote_drop(struct kq *kq, struct knote *kn)
{
    knote_dequeue(kq, kn);
    kn->ops->detach(kq, kn);
    knote_free(kn);
}

void kq_drop_all(struct kq *kq)
{
    for (size_t fd = 0; fd < kq->watch_capacity; fd++) {
        if (kq->watches[fd])
            kq_watch_drop(kq, kq->watches[fd]);
    }
    for (size_t bucket = 0; bucket < KNOTE_HASH_SIZE; bucket++) {
        while (kq->ident_hash[bucket])
            knote_drop(kq, kq->ident_hash[bucket]);
    }
}

/* ---- watches: what the epoll set holds ------------------------------------- */

struct watch *kq_watch_find(struct kq *kq, int fd)
{
    if (fd < 0 || (size_t)fd >= kq->watch_capacity)
        return NULL;
    return kq->watches[fd];
}

static int grow_watch_table(struct kq *kq, int fd)
{
    size_t needed = (size_t)fd + 1;
    if (needed <= kq->watch_capacity)
        return 0;
    size_t capacity = kq->watch_capacity ? kq->watch_capacity : 64;
    while (capacity < needed)
        capacity *= 2;
    struct watch **table = realloc(kq->watches, capacity * sizeof *table);
    if (!table)
        return ENOMEM;
    memset(table + kq->watch_capacity, 0, (capacity - kq->watch_capacity) * sizeof *table);
    kq->watches = table;
    kq->watch_capacity = capacity;
    return 0;
}

struct watch *kq_watch_create(struct kq *kq, int fd, enum watch_kind kind)
{
    if (fd < 0 || grow_watch_table(kq, fd) != 0)
        return NULL;
    /* A descriptor number the kernel has just handed out cannot belong to a
     * live watch: the one still recorded here is for a file that was closed
     * without EV_DELETE. BSD dropped its knotes on close(); drop them now. */
    if (kq->watches[fd])
        kq_watch_drop(kq, kq->watches[fd]);
    struct watch *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->fd = fd;
    w->kind = kind;
    /* UINT32_MAX is never used, so no token equals KQ_DOORBELL_TOKEN. */
    w->generation = kq->next_generation++;
    if (kq->next_generation == UINT32_MAX)
        kq->next_generation = 1;
    kq->watches[fd] = w;
    return w;
}

void kq_watch_free(struct kq *kq, struct watch *w)
{
    /* After close() the number may name another file, or nothing: then epoll
     * has already forgotten ours (ENOENT, EBADF), which is fine. */
    if (w->registered_events)
        (void)epoll_ctl(kq->epoll_fd, EPOLL_CTL_DEL, w->fd, NULL);
    if (kq->watches[w->fd] == w)
        kq->watches[w->fd] = NULL;
    free(w);
}

/* Drop every knote on w, and w itself. */
void kq_watch_drop(struct kq *kq, struct watch *w)
{
    /* Dropping the last knote frees w: read the pointers first. */
    struct knote *read = w->read, *write = w->write, *timer = w->timer;
    if (!read && !write && !timer) {
        kq_watch_free(kq, w);
        return;
    }
    if (read)
        knote_drop(kq, read);
    if (write)
        knote_drop(kq, write);
    if (timer)
        knote_drop(kq, timer);
}

/* ANCHOR: token */
/* epoll hands back data.u64 some time after the call that returns it, and
 * another thread may have dropped the watch (and reused the descriptor for a
 * new one) in between. So the token names the descriptor and the watch's
 * generation, never a pointer, and is looked up again under the lock. */
uint64_t kq_watch_token(const struct watch *w)
{
    return (uint64_t)w->generation << 32 | (uint32_t)w->fd;
}

void kq_activate_from_epoll(struct kq *kq, uint64_t token, uint32_t events)
{
    if (token == KQ_DOORBELL_TOKEN)
        return; /* only wakes the thread; the queue is what counts */
    struct watch *w = kq_watch_find(kq, (int)(uint32_t)token);
    if (!w || w->generation != (uint32_t)(token >> 32))
        return; /* stale: that watch is gone */
    if (w->kind == WATCH_TIMER) {
        kq_timer_expired(kq, w);
        return;
    }
    if (w->read && (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
        knote_activate(kq, w->read);
    if (w->write && (events & (EPOLLOUT | EPOLLHUP | EPOLLERR)))
        knote_activate(kq, w->write);
}
/* ANCHOR_END: token */

int kq_watch_set_interest(struct kq *kq, struct watch *w, uint32_t events)
{
    if (events == w->registered_events)
        return 0;
    if (events == 0) {
        (void)epoll_ctl(kq->epoll_fd, EPOLL_CTL_DEL, w->fd, NULL);
        w->registered_events = 0;
        return 0;
    }
    struct epoll_event ev = {.events = events, .data.u64 = kq_watch_token(w)};
    int op = w->registered_events ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    int rc = epoll_ctl(kq->epoll_fd, op, w->fd, &ev);
    /* epoll keys a registration by (file, descriptor number), and the file
     * may have been closed (MOD: ENOENT) or the old registration may live on
     * through a dup() of a file closed without EV_DELETE (ADD: EEXIST). Either
     * way the registration to have is this one. */
    if (rc != 0 && op == EPOLL_CTL_MOD && errno == ENOENT)
        rc = epoll_ctl(kq->epoll_fd, EPOLL_CTL_ADD, w->fd, &ev);
    else if (rc != 0 && op == EPOLL_CTL_ADD && errno == EEXIST)
        rc = epoll_ctl(kq->epoll_fd, EPOLL_CTL_MOD, w->fd, &ev);
    if (rc != 0)
        return errno;
    w->registered_events = events;
    return 0;
}

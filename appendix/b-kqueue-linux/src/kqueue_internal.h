/* kqueue_internal.h - the emulation's own data: a kqueue, its knotes, and the
 * descriptors it has put in its epoll set.
 *
 * The design is FreeBSD's kern_event.c in miniature. A knote is identified by
 * (ident, filter). Something "activates" it (an epoll event, a timer expiry,
 * NOTE_TRIGGER), which puts it on the kqueue's active queue; kevent() takes
 * knotes off that queue, runs the filter once more to see whether the
 * condition still holds, and returns those that do. epoll only tells the
 * emulation which knotes to look at: every registration is edge-triggered,
 * and level-triggered behaviour comes from keeping a delivered knote queued.
 *
 * Everything in struct kq is guarded by kq->lock, except the fields marked
 * "registry", which kqueue.c guards with its own lock.
 */
#ifndef EVQ_KQUEUE_INTERNAL_H
#define EVQ_KQUEUE_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <sys/event.h>

/* A knote's status, as FreeBSD's KN_ACTIVE, KN_QUEUED and KN_DISABLED. */
enum {
    KNOTE_ACTIVE = 1u << 0,   /* the filter fired and has not been found false since */
    KNOTE_QUEUED = 1u << 1,   /* on the active queue */
    KNOTE_DISABLED = 1u << 2, /* EV_DISABLE, or delivered with EV_DISPATCH */
};

struct kq;
struct knote;

/* What a filter answers when kevent() is about to return its knote. */
enum filter_result {
    FILTER_NOT_READY, /* the condition no longer holds: dequeue, return nothing */
    FILTER_READY,     /* return the event the filter filled in */
    FILTER_GONE,      /* the descriptor was closed: drop the knote, as BSD does on close() */
};

/* One filter, in the shape of FreeBSD's struct filterops. */
struct filter_ops {
    short filter;
    /* Find the knote a change names; may refuse the change (EBADF...). */
    int (*find)(struct kq *kq, const struct kevent *change, struct knote **found);
    /* Set up a new knote; on error the caller frees it. */
    int (*attach)(struct kq *kq, struct knote *kn, const struct kevent *change);
    /* Undo attach (the knote is being dropped). */
    void (*detach)(struct kq *kq, struct knote *kn);
    /* Apply a change to an existing knote (data, fflags, NOTE_TRIGGER...). */
    int (*touch)(struct kq *kq, struct knote *kn, struct kevent *change);
    /* Run the filter: is the condition true now? Fill in *out if so. */
    enum filter_result (*event)(struct kq *kq, struct knote *kn, struct kevent *out);
    /* EV_CLEAR: forget the state just delivered (NULL: nothing to forget). */
    void (*clear)(struct knote *kn);
    /* Running this filter costs system calls: on registration, queue the knote
     * and let kevent() run the filter, instead of running it twice. */
    bool deferred_evaluation;
};

extern const struct filter_ops kqueue_filter_read;
extern const struct filter_ops kqueue_filter_write;
extern const struct filter_ops kqueue_filter_user;
extern const struct filter_ops kqueue_filter_timer;

enum watch_kind {
    WATCH_DESCRIPTOR, /* a caller's socket, pipe or FIFO */
    WATCH_TIMER,      /* the timerfd behind one EVFILT_TIMER knote */
};

enum descriptor_type { DESCRIPTOR_SOCKET, DESCRIPTOR_PIPE, DESCRIPTOR_OTHER };

/* A descriptor in the kqueue's epoll set. A caller's descriptor carries at
 * most one EVFILT_READ and one EVFILT_WRITE knote: epoll allows one
 * registration per descriptor, so both share it. */
struct watch {
    int fd;
    uint32_t generation; /* tells this watch from an earlier one on the same fd */
    enum watch_kind kind;
    uint32_t registered_events; /* the epoll interest; 0 when not in the epoll set */
    dev_t device;               /* which file fd named when watched (fstat) */
    ino_t inode;
    enum descriptor_type type;
    bool tcp;
    bool peer_seen;      /* a TCP socket that has had a peer (was connected) */
    struct knote *read;  /* WATCH_DESCRIPTOR */
    struct knote *write; /* WATCH_DESCRIPTOR */
    struct knote *timer; /* WATCH_TIMER */
};

struct knote {
    struct kevent kev; /* ident, filter, udata, and the flags it keeps */
    unsigned status;   /* KNOTE_* */
    const struct filter_ops *ops;
    struct knote *queue_prev, *queue_next; /* the active queue */
    struct knote *hash_next;               /* EVFILT_USER and EVFILT_TIMER, by ident */
    struct watch *watch;                   /* descriptors and timers */
    /* EVFILT_USER */
    bool triggered;
    unsigned user_fflags;
    int64_t user_data;
    /* EVFILT_TIMER */
    uint64_t expirations; /* since the last delivery */
};

enum { KNOTE_HASH_SIZE = 64 };

struct kq {
    pthread_mutex_t lock;
    int epoll_fd;    /* our own duplicate of the descriptor kqueue() returned */
    int doorbell_fd; /* eventfd: wakes threads in epoll_wait when the queue fills */
    bool doorbell_rung;
    int waiters; /* threads in epoll_wait on this kqueue */
    uint32_t next_generation;
    struct watch **watches; /* indexed by descriptor */
    size_t watch_capacity;
    struct knote *ident_hash[KNOTE_HASH_SIZE];
    struct knote *queue_head, *queue_tail;
    size_t queue_length;
    /* registry (kqueue.c) */
    int references;
    struct kq *stale_next; /* kqueue(): closed kqueues to free */
};

/* epoll_event.data.u64 of the doorbell; every other value is a kq_watch_token(). */
#define KQ_DOORBELL_TOKEN UINT64_MAX

/* kqueue.c */
struct kq *kq_acquire(int descriptor);
void kq_release(struct kq *kq);

/* knote.c: the knote table and the active queue. */
struct knote *knote_new(const struct filter_ops *ops, const struct kevent *change);
void knote_free(struct knote *kn);
struct knote *knote_hash_find(struct kq *kq, uintptr_t ident, short filter);
void knote_hash_insert(struct kq *kq, struct knote *kn);
void knote_hash_remove(struct kq *kq, struct knote *kn);
void knote_enqueue(struct kq *kq, struct knote *kn);
void knote_dequeue(struct kq *kq, struct knote *kn);
struct knote *knote_dequeue_first(struct kq *kq);
void knote_activate(struct kq *kq, struct knote *kn);
void knote_drop(struct kq *kq, struct knote *kn);
void kq_drop_all(struct kq *kq);

/* knote.c: watches, the epoll side. */
struct watch *kq_watch_find(struct kq *kq, int fd);
struct watch *kq_watch_create(struct kq *kq, int fd, enum watch_kind kind);
void kq_watch_free(struct kq *kq, struct watch *w);
void kq_watch_drop(struct kq *kq, struct watch *w);
int kq_watch_set_interest(struct kq *kq, struct watch *w, uint32_t events);
uint64_t kq_watch_token(const struct watch *w);
void kq_activate_from_epoll(struct kq *kq, uint64_t token, uint32_t events);

/* filter_timer.c: an expired timerfd. */
void kq_timer_expired(struct kq *kq, struct watch *w);

#endif

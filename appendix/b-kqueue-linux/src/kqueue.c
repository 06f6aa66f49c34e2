/* kqueue.c - kqueue(): the descriptor, and what the emulation keeps behind it.
 *
 * kqueue() returns a real descriptor: an epoll instance. The caller will
 * close() it like any descriptor, and the emulation cannot see that happen.
 * So the emulation keeps a registry from descriptor numbers to its kqueues
 * and, each time a number is used, checks that it still names the epoll
 * instance it created. A number found stale is forgotten and its kqueue
 * freed; kqueue() also sweeps the registry, so a closed kqueue holds its
 * memory and its own descriptors (an epoll duplicate, a doorbell, a timerfd
 * per timer) only until the next kqueue() call.
 */
#define _GNU_SOURCE
#include "kqueue_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct kq **registry; /* indexed by the descriptor kqueue() returned */
static size_t registry_capacity;
static pthread_once_t fork_handlers_once = PTHREAD_ONCE_INIT;

static struct kq *kq_create(int descriptor)
{
    struct kq *kq = calloc(1, sizeof *kq);
    if (!kq)
        return NULL;
    kq->references = 1; /* the registry's */
    kq->next_generation = 1;
    kq->epoll_fd = -1;
    kq->doorbell_fd = -1;
    if (pthread_mutex_init(&kq->lock, NULL) != 0) {
        free(kq);
        errno = ENOMEM;
        return NULL;
    }
    /* A private duplicate: a thread inside kevent() keeps using the same
     * epoll instance even if another thread closes the caller's descriptor
     * and the number is reused, as a BSD kevent() holds a file reference. */
    kq->epoll_fd = fcntl(descriptor, F_DUPFD_CLOEXEC, 0);
    kq->doorbell_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = KQ_DOORBELL_TOKEN};
    if (kq->epoll_fd < 0 || kq->doorbell_fd < 0 ||
        epoll_ctl(kq->epoll_fd, EPOLL_CTL_ADD, kq->doorbell_fd, &ev) != 0) {
        int saved_errno = errno;
        if (kq->epoll_fd >= 0)
            close(kq->epoll_fd);
        if (kq->doorbell_fd >= 0)
            close(kq->doorbell_fd);
        pthread_mutex_destroy(&kq->lock);
        free(kq);
        errno = saved_errno;
        return NULL;
    }
    return kq;
}

static void kq_destroy(struct kq *kq)
{
    kq_drop_all(kq);
    free(kq->watches);
    close(kq->doorbell_fd);
    close(kq->epoll_fd);
    pthread_mutex_destroy(&kq->lock);
    free(kq);
}

/* ANCHOR: owns */
/* Does descriptor still name the epoll instance this kq created? fstat()
 * cannot tell: every epoll instance is the same anonymous inode. But only
 * ours holds our doorbell, so EPOLL_CTL_MOD of the doorbell succeeds there
 * and fails anywhere else: ENOENT in another epoll instance, EINVAL on a
 * descriptor that is not epoll, EBADF on a closed one. */
static bool kq_owns(const struct kq *kq, int descriptor)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = KQ_DOORBELL_TOKEN};
    return epoll_ctl(descriptor, EPOLL_CTL_MOD, kq->doorbell_fd, &ev) == 0;
}
/* ANCHOR_END: owns */

/* Forget a stale entry; the caller drops the registry's reference. */
static struct kq *registry_take(int descriptor)
{
    struct kq *kq = registry[descriptor];
    registry[descriptor] = NULL;
    return kq;
}

static int registry_grow(int descriptor)
{
    size_t needed = (size_t)descriptor + 1;
    if (needed <= registry_capacity)
        return 0;
    size_t capacity = registry_capacity ? registry_capacity : 16;
    while (capacity < needed)
        capacity *= 2;
    struct kq **table = realloc(registry, capacity * sizeof *table);
    if (!table)
        return ENOMEM;
    memset(table + registry_capacity, 0, (capacity - registry_capacity) * sizeof *table);
    registry = table;
    registry_capacity = capacity;
    return 0;
}

/* A child created with fork() does not inherit kqueues on BSD: forget them
 * in the child, so that kevent() there fails with EBADF. The child's copies
 * of the emulation's descriptors are close-on-exec. */
static void registry_lock_for_fork(void)
{
    pthread_mutex_lock(&registry_lock);
}

static void registry_unlock_after_fork(void)
{
    pthread_mutex_unlock(&registry_lock);
}

static struct kq **registry_of_parent; /* kept reachable, never used */

static void registry_forget_in_child(void)
{
    registry_of_parent = registry;
    registry = NULL;
    registry_capacity = 0;
    pthread_mutex_unlock(&registry_lock);
}

static void install_fork_handlers(void)
{
    pthread_atfork(registry_lock_for_fork, registry_unlock_after_fork, registry_forget_in_child);
}

/* ANCHOR: sweep */
/* Record kq under descriptor (with registry_lock held). The number was free
 * a moment ago, so whatever the registry holds for it belongs to a kqueue the
 * caller closed; other closed ones are swept out while here. Returns them,
 * linked, for kq_release() once the lock is dropped. */
static struct kq *registry_insert(int descriptor, struct kq *kq)
{
    struct kq *stale = NULL;
    for (size_t fd = 0; fd < registry_capacity; fd++) {
        if (registry[fd] && ((int)fd == descriptor || !kq_owns(registry[fd], (int)fd))) {
            struct kq *closed = registry_take((int)fd);
            closed->stale_next = stale;
            stale = closed;
        }
    }
    registry[descriptor] = kq;
    return stale;
}
/* ANCHOR_END: sweep */

/* ANCHOR: kqueue */
int kqueue(void)
{
    pthread_once(&fork_handlers_once, install_fork_handlers);
    int descriptor = epoll_create1(EPOLL_CLOEXEC);
    if (descriptor < 0)
        return -1;
    struct kq *kq = kq_create(descriptor);
    int error = kq ? 0 : errno;
    struct kq *stale = NULL;
    pthread_mutex_lock(&registry_lock);
    if (!error)
        error = registry_grow(descriptor);
    if (!error)
        stale = registry_insert(descriptor, kq);
    pthread_mutex_unlock(&registry_lock);
    for (struct kq *next; stale; stale = next) {
        next = stale->stale_next;
        kq_release(stale);
    }
    if (error) {
        if (kq)
            kq_release(kq);
        close(descriptor);
        errno = error;
        return -1;
    }
    return descriptor;
}
/* ANCHOR_END: kqueue */

/* The kqueue behind a descriptor, with a reference for the caller; NULL if
 * the descriptor is not one of ours (any more). */
struct kq *kq_acquire(int descriptor)
{
    struct kq *kq = NULL;
    pthread_mutex_lock(&registry_lock);
    if (descriptor >= 0 && (size_t)descriptor < registry_capacity && registry[descriptor]) {
        kq = registry[descriptor];
        kq->references++;
    }
    pthread_mutex_unlock(&registry_lock);
    if (!kq || kq_owns(kq, descriptor))
        return kq;
    /* Closed by the caller since: forget it, and drop our reference too. */
    pthread_mutex_lock(&registry_lock);
    bool forgotten = (size_t)descriptor < registry_capacity && registry[descriptor] == kq;
    if (forgotten)
        registry_take(descriptor);
    pthread_mutex_unlock(&registry_lock);
    if (forgotten)
        kq_release(kq);
    kq_release(kq);
    return NULL;
}

void kq_release(struct kq *kq)
{
    pthread_mutex_lock(&registry_lock);
    bool last = --kq->references == 0;
    pthread_mutex_unlock(&registry_lock);
    if (last)
        kq_destroy(kq);
}

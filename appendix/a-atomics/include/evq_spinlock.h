/* evq_spinlock.h - two spin locks: the textbook one on atomic_flag, and a
 * test-and-test-and-set lock with back-off, which is the one to use.
 *
 * A spin lock never sleeps in the kernel: a thread that finds it taken keeps
 * its core and retries. That is cheap when the holder is running on another
 * core and lets go within a microsecond, and wasteful when the holder has
 * been preempted: a waiter that only spins burns its time slice for nothing
 * (the appendix measures how much), so the back-off here ends in a yield once
 * the wait grows past a few microseconds. Hold one for a short, bounded piece
 * of work (the registration lock holds one across a single epoll_ctl).
 */
#ifndef EVQ_SPINLOCK_H
#define EVQ_SPINLOCK_H

#include <stdatomic.h>
#include <stdbool.h>

/* test-and-set on atomic_flag, the only type C11 promises is lock-free.
 * C11 has no way to *read* an atomic_flag without setting it (C23 adds
 * atomic_flag_test), so every retry is a write that pulls the cache line
 * away from the holder; the back-off between retries keeps that rare. */
typedef struct evq_flaglock {
    atomic_flag held;
} evq_flaglock;

#define EVQ_FLAGLOCK_INIT                                                                          \
    {                                                                                              \
        ATOMIC_FLAG_INIT                                                                           \
    }

void evq_flaglock_init(evq_flaglock *lock);
void evq_flaglock_lock(evq_flaglock *lock);
bool evq_flaglock_try_lock(evq_flaglock *lock);
void evq_flaglock_unlock(evq_flaglock *lock);

/* test-and-test-and-set on atomic_bool: waiters read the flag (a shared copy
 * of the cache line each) and only try to write it when it looks free. */
typedef struct evq_spinlock {
    atomic_bool held;
} evq_spinlock;

void evq_spinlock_init(evq_spinlock *lock);
void evq_spinlock_lock(evq_spinlock *lock);
/* true if taken; false at once if another thread holds it. */
bool evq_spinlock_try_lock(evq_spinlock *lock);
void evq_spinlock_unlock(evq_spinlock *lock);

#endif

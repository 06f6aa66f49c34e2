/* spinlock.c - test-and-set and test-and-test-and-set spin locks. */
#include "evq_spinlock.h"

#include "evq_backoff.h"

/* atomic_bool must be lock-free, or "spinning" on it would take a hidden lock
 * inside the C library. It is on every CPU this book builds for. */
_Static_assert(ATOMIC_BOOL_LOCK_FREE == 2, "atomic_bool is not always lock-free here");

void evq_flaglock_init(evq_flaglock *lock)
{
    /* ATOMIC_FLAG_INIT may only initialise a declaration; a lock in memory
     * from malloc starts clear this way. */
    atomic_flag_clear_explicit(&lock->held, memory_order_relaxed);
}

/* ANCHOR: flaglock */
void evq_flaglock_lock(evq_flaglock *lock)
{
    evq_backoff backoff = EVQ_BACKOFF_INIT;
    /* test_and_set returns the old value: false means the flag was clear and
     * is ours now. Acquire: what the last holder wrote before it unlocked is
     * visible to us from here on. */
    while (atomic_flag_test_and_set_explicit(&lock->held, memory_order_acquire))
        evq_backoff_wait(&backoff);
}

void evq_flaglock_unlock(evq_flaglock *lock)
{
    /* Release: our writes in the critical section reach the next holder. */
    atomic_flag_clear_explicit(&lock->held, memory_order_release);
}
/* ANCHOR_END: flaglock */

bool evq_flaglock_try_lock(evq_flaglock *lock)
{
    return !atomic_flag_test_and_set_explicit(&lock->held, memory_order_acquire);
}

void evq_spinlock_init(evq_spinlock *lock)
{
    atomic_init(&lock->held, false);
}

/* ANCHOR: spinlock */
void evq_spinlock_lock(evq_spinlock *lock)
{
    evq_backoff backoff = EVQ_BACKOFF_INIT;
    for (;;) {
        /* test-and-set: one write, which takes the cache line exclusively. */
        if (!atomic_exchange_explicit(&lock->held, true, memory_order_acquire))
            return;
        /* test: wait with loads until the lock looks free. Loads share the
         * line, so waiters do not steal it from the holder on every retry.
         * Relaxed: this read only decides when to try again; the exchange
         * above is what acquires. */
        do {
            evq_backoff_wait(&backoff);
        } while (atomic_load_explicit(&lock->held, memory_order_relaxed));
    }
}

void evq_spinlock_unlock(evq_spinlock *lock)
{
    atomic_store_explicit(&lock->held, false, memory_order_release);
}
/* ANCHOR_END: spinlock */

bool evq_spinlock_try_lock(evq_spinlock *lock)
{
    /* Look before writing: a failed try should not take the line either. */
    if (atomic_load_explicit(&lock->held, memory_order_relaxed))
        return false;
    return !atomic_exchange_explicit(&lock->held, true, memory_order_acquire);
}

/* registration.c - a flag taken with compare-and-swap, a "closed" flag read
 * while holding it, the work, and a release. */
#include "evq_registration.h"

#include "evq_backoff.h"
#include "evq_error.h"

void evq_registration_init(evq_registration_lock *lock)
{
    atomic_init(&lock->busy, false);
    atomic_init(&lock->closed, false);
}

/* ANCHOR: take */
/* One attempt to turn busy from false to true. Strong, not weak: a caller of
 * try_begin must not be told "busy" when the lock was free. */
static bool try_take(evq_registration_lock *lock)
{
    bool expected = false;
    /* Acquire on success: everything the previous holder wrote before its
     * release store (including closed = true) is visible now. Relaxed on
     * failure: we learnt only that someone holds it. */
    return atomic_compare_exchange_strong_explicit(&lock->busy, &expected, true,
                                                   memory_order_acquire, memory_order_relaxed);
}

static void take(evq_registration_lock *lock)
{
    evq_backoff backoff = EVQ_BACKOFF_INIT;
    while (!try_take(lock)) {
        /* Wait with loads until it looks free, as the spin lock does. */
        do {
            evq_backoff_wait(&backoff);
        } while (atomic_load_explicit(&lock->busy, memory_order_relaxed));
    }
}

static void give_back(evq_registration_lock *lock)
{
    /* Release: the work done under the lock is visible to the next taker. */
    atomic_store_explicit(&lock->busy, false, memory_order_release);
}
/* ANCHOR_END: take */

/* ANCHOR: begin */
int evq_registration_begin(evq_registration_lock *lock)
{
    take(lock);
    /* Read closed only while holding busy. A closer sets it while holding busy
     * too, so the two cannot interleave: either the close came first and we
     * see true here, or we came first and the close waits for our end.
     * Relaxed is enough: the acquire in take() already ordered this load
     * after the closer's release of busy. */
    if (atomic_load_explicit(&lock->closed, memory_order_relaxed)) {
        give_back(lock);
        return EVQ_ECLOSED;
    }
    return 0;
}

void evq_registration_end(evq_registration_lock *lock)
{
    give_back(lock);
}

void evq_registration_close(evq_registration_lock *lock)
{
    take(lock); /* waits for a registration in progress */
    /* Release, for evq_registration_is_closed(), which reads without busy. */
    atomic_store_explicit(&lock->closed, true, memory_order_release);
    give_back(lock);
}
/* ANCHOR_END: begin */

int evq_registration_try_begin(evq_registration_lock *lock)
{
    /* closed is never cleared, so a true read without the lock is final:
     * after a close, every try says "closed", never "busy". */
    if (evq_registration_is_closed(lock))
        return EVQ_ECLOSED;
    if (!try_take(lock))
        return EVQ_EBUSY;
    if (atomic_load_explicit(&lock->closed, memory_order_relaxed)) {
        give_back(lock);
        return EVQ_ECLOSED;
    }
    return 0;
}

bool evq_registration_is_closed(evq_registration_lock *lock)
{
    return atomic_load_explicit(&lock->closed, memory_order_acquire);
}

/* cas.c - compare-and-swap loops: read, compute, and store only if the value
 * is still the one read; otherwise try again with the value found. */
#include "evq_atomics.h"

/* ANCHOR: max_update */
bool evq_max_update(_Atomic uint64_t *maximum, uint64_t candidate)
{
    uint64_t seen = atomic_load_explicit(maximum, memory_order_relaxed);
    while (candidate > seen) {
        /* Store candidate only if *maximum still equals seen. On failure the
         * CAS writes the value it found into seen, and the loop re-checks
         * against it: a larger value from another thread ends the loop.
         * weak: it may fail even when the values match (on LL/SC CPUs such
         * as Arm); the loop retries anyway, and weak is cheaper there. */
        if (atomic_compare_exchange_weak_explicit(maximum, &seen, candidate, memory_order_relaxed,
                                                  memory_order_relaxed))
            return true;
    }
    return false;
}
/* ANCHOR_END: max_update */

/* ANCHOR: permit */
bool evq_permit_try_take(_Atomic uint32_t *permits)
{
    uint32_t left = atomic_load_explicit(permits, memory_order_relaxed);
    do {
        if (left == 0)
            return false; /* a fetch_sub here would wrap to 4294967295 */
    } while (!atomic_compare_exchange_weak_explicit(permits, &left, left - 1, memory_order_acquire,
                                                    memory_order_relaxed));
    /* Acquire on success: a permit usually stands for a resource (a worker, a
     * buffer); what the last thread to give it back wrote is visible now. */
    return true;
}

void evq_permit_give(_Atomic uint32_t *permits)
{
    atomic_fetch_add_explicit(permits, 1, memory_order_release);
}
/* ANCHOR_END: permit */

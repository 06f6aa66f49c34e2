/* publish.c - handing a result from one thread to another with a flag:
 * the store of the flag releases, the load that sees it acquires. */
#include "evq_atomics.h"

#include <string.h>

void evq_result_slot_init(evq_result_slot *slot)
{
    memset(&slot->result, 0, sizeof slot->result);
    atomic_init(&slot->ready, false);
}

/* ANCHOR: publish */
void evq_result_slot_publish(evq_result_slot *slot, const evq_lookup_result *result)
{
    slot->result = *result; /* plain stores, several of them */
    /* Release: every write above is visible to a thread whose acquire load
     * reads this true. Without it, the compiler or the CPU may make the flag
     * visible before the result. */
    atomic_store_explicit(&slot->ready, true, memory_order_release);
}

bool evq_result_slot_poll(evq_result_slot *slot, evq_lookup_result *out)
{
    /* Acquire: once we see true, the reads below cannot be answered from
     * before the publisher's writes (no stale or half-written result). */
    if (!atomic_load_explicit(&slot->ready, memory_order_acquire))
        return false;
    *out = slot->result;
    return true;
}
/* ANCHOR_END: publish */

/* publish_wrong.c - the publication of publish.c with the wrong memory order:
 * the flag is stored and loaded relaxed. THIS PROGRAM IS WRONG ON PURPOSE.
 *
 * Relaxed orders nothing but the flag itself, so the reader may see the flag
 * raised and still read the result from before the writer's stores: the
 * compiler may move the plain stores below the flag's store, or the loads
 * above the flag's load, and a weakly ordered CPU (Arm, POWER) may make them
 * visible in another order. On x86 the hardware keeps stores in order and the
 * compilers seldom move them, so this nearly always *appears* to work - which
 * is why it is not a test. In C11 terms the read of the result is a data race
 * and the program's behaviour is undefined; ThreadSanitizer says so (the tsan
 * preset runs it and requires that report).
 */
#include "evq_atomics.h"
#include "evq_thread.h"

#include <stdio.h>

static evq_result_slot slot;

/* ANCHOR: wrong */
static void publish_relaxed(evq_result_slot *s, const evq_lookup_result *result)
{
    s->result = *result;
    atomic_store_explicit(&s->ready, true, memory_order_relaxed); /* WRONG */
}

static bool poll_relaxed(evq_result_slot *s, evq_lookup_result *out)
{
    if (!atomic_load_explicit(&s->ready, memory_order_relaxed)) /* WRONG */
        return false;
    *out = s->result; /* may read the result from before the publish */
    return true;
}
/* ANCHOR_END: wrong */

static void resolver(void *arg)
{
    (void)arg;
    evq_lookup_result r = {0, 1, {0x7f000001u, 0, 0, 0}, 42};
    publish_relaxed(&slot, &r);
}

int main(void)
{
    evq_result_slot_init(&slot);
    evq_thread thread;
    if (evq_thread_start(&thread, resolver, NULL) != 0)
        return 1;
    evq_lookup_result r;
    while (!poll_relaxed(&slot, &r))
        evq_thread_yield();
    evq_thread_join(&thread);
    printf("request %llu: %u address(es), first 0x%08x\n", (unsigned long long)r.request_id,
           r.address_count, r.addresses[0]);
    printf("It looked right this time. That proves nothing: see the comment at the top.\n");
    return 0;
}

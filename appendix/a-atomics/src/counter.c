/* counter.c - a relaxed counter: atomic, but ordering nothing else. */
#include "evq_atomics.h"

void evq_counter_init(evq_counter *counter, uint64_t value)
{
    /* atomic_init is a plain store: no other thread may see the counter yet. */
    atomic_init(&counter->value, value);
}

/* ANCHOR: counter */
uint64_t evq_counter_add(evq_counter *counter, uint64_t n)
{
    /* One indivisible read-modify-write: no increment is lost, whatever the
     * number of threads. Relaxed, because nobody reads the counter to learn
     * that some *other* memory is ready: it only has to count. */
    return atomic_fetch_add_explicit(&counter->value, n, memory_order_relaxed);
}

uint64_t evq_counter_read(evq_counter *counter)
{
    /* Some value the counter really had, recent but maybe not the latest.
     * After joining the threads that add, it is the final one: the join
     * orders their increments before this load. */
    return atomic_load_explicit(&counter->value, memory_order_relaxed);
}
/* ANCHOR_END: counter */

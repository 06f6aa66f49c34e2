/* counter.c - why a counter shared by threads must be one read-modify-write.
 *
 * Four threads count to N each, twice: with atomic_fetch_add, and with an
 * atomic load followed by an atomic store. Both are free of data races (every
 * access is atomic, so the program is well defined), but only the first is a
 * counter: between another thread's load and store, our increment can land
 * and then be overwritten.
 *
 *     atomics_counter [N]      (default 1000000)
 */
#include "evq_args.h"
#include "evq_atomics.h"
#include "evq_thread.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

#define THREADS 4

static evq_counter counted;                /* atomic_fetch_add */
static _Atomic uint64_t loaded_and_stored; /* load, then store */
static uint64_t rounds = 1000000;

static void count(void *arg)
{
    (void)arg;
    for (uint64_t i = 0; i < rounds; i++)
        evq_counter_add(&counted, 1);
}

/* ANCHOR: lost_update */
static void count_badly(void *arg)
{
    (void)arg;
    for (uint64_t i = 0; i < rounds; i++) {
        uint64_t seen = atomic_load_explicit(&loaded_and_stored, memory_order_relaxed);
        /* Another thread may store seen + 1 right here; we store it again. */
        atomic_store_explicit(&loaded_and_stored, seen + 1, memory_order_relaxed);
    }
}
/* ANCHOR_END: lost_update */

static int run(evq_thread_fn fn)
{
    evq_thread threads[THREADS];
    for (int i = 0; i < THREADS; i++)
        if (evq_thread_start(&threads[i], fn, NULL) != 0)
            return -1;
    for (int i = 0; i < THREADS; i++)
        evq_thread_join(&threads[i]);
    return 0;
}

int main(int argc, char **argv)
{
    unsigned long arg = (unsigned long)rounds;
    if (argc > 2 || (argc == 2 && !evq_parse_ulong(argv[1], 1, ULONG_MAX, &arg))) {
        fprintf(stderr, "usage: %s [rounds > 0]\n", argv[0]);
        return 2;
    }
    rounds = arg;
    evq_counter_init(&counted, 0);
    atomic_init(&loaded_and_stored, 0);
    if (run(count) != 0 || run(count_badly) != 0) {
        fprintf(stderr, "could not start threads\n");
        return 1;
    }
    const uint64_t want = rounds * THREADS;
    const uint64_t good = evq_counter_read(&counted);
    const uint64_t bad = atomic_load(&loaded_and_stored);
    printf("%d threads x %llu increments = %llu\n", THREADS, (unsigned long long)rounds,
           (unsigned long long)want);
    printf("  atomic_fetch_add:          %llu\n", (unsigned long long)good);
    printf("  atomic_load + atomic_store: %llu (%llu increments lost)\n", (unsigned long long)bad,
           (unsigned long long)(want - bad));
    return good == want ? 0 : 1;
}

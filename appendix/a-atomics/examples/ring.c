/* ring.c - three producer threads send numbered values through the lock-free
 * ring to the main thread, which checks that each arrives once and in its
 * producer's order.
 *
 *     atomics_ring [N]      (default 1000000 values per producer)
 */
#include "evq_args.h"
#include "evq_clock.h"
#include "evq_error.h"
#include "evq_mpsc_ring.h"
#include "evq_thread.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

#define PRODUCERS 3
#define CAPACITY  256

static evq_mpsc_ring ring;
static uint64_t per_producer = 1000000;

static void produce(void *arg)
{
    uint64_t id = (uint64_t)(uintptr_t)arg;
    for (uint64_t seq = 0; seq < per_producer; seq++) {
        /* Full: the consumer is behind. A loop thread would do other work;
         * here we let it run. */
        while (evq_mpsc_ring_try_push(&ring, id << 40 | seq) == EVQ_EFULL)
            evq_thread_yield();
    }
}

int main(int argc, char **argv)
{
    unsigned long arg = (unsigned long)per_producer;
    if (argc > 2 || (argc == 2 && !evq_parse_ulong(argv[1], 1, ULONG_MAX, &arg))) {
        fprintf(stderr, "usage: %s [per producer > 0]\n", argv[0]);
        return 2;
    }
    per_producer = arg;
    if (evq_mpsc_ring_init(&ring, CAPACITY) != 0)
        return 1;
    evq_thread threads[PRODUCERS];
    uint64_t start = evq_clock_now_ns();
    for (uintptr_t i = 0; i < PRODUCERS; i++)
        if (evq_thread_start(&threads[i], produce, (void *)i) != 0)
            return 1;
    uint64_t next[PRODUCERS] = {0}, received = 0, wrong = 0;
    while (received < PRODUCERS * per_producer) {
        uint64_t value;
        if (evq_mpsc_ring_try_pop(&ring, &value) != 0) {
            evq_thread_yield(); /* empty: a loop thread would wait for its waker */
            continue;
        }
        received++;
        uint64_t id = value >> 40, seq = value & ((UINT64_C(1) << 40) - 1);
        if (id >= PRODUCERS || seq != next[id]++)
            wrong++;
    }
    for (int i = 0; i < PRODUCERS; i++)
        evq_thread_join(&threads[i]);
    double seconds = (double)evq_elapsed_ns(evq_clock_now_ns(), start) / 1e9;
    printf("%d producers x %llu values through a ring of %d: %llu received, %llu out of "
           "place, %.2f s\n",
           PRODUCERS, (unsigned long long)per_producer, CAPACITY, (unsigned long long)received,
           (unsigned long long)wrong, seconds);
    evq_mpsc_ring_destroy(&ring);
    return wrong == 0 ? 0 : 1;
}

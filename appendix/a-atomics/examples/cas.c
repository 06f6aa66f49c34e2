/* cas.c - compare-and-swap loops: four "loop threads" report how long each of
 * their turns took and keep the longest turn any of them saw; a pool of three
 * permits limits how many of them run a "lookup" at the same time.
 *
 *     atomics_cas [N]      (default 1000000 turns per thread)
 */
#include "evq_args.h"
#include "evq_atomics.h"
#include "evq_thread.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

#define THREADS 4
#define PERMITS 3

static _Atomic uint64_t longest_turn;
static _Atomic uint32_t permits;
static _Atomic uint64_t lookups_running;
static _Atomic uint64_t most_lookups_running;
static uint64_t turns = 1000000;

struct loop_thread {
    evq_thread thread;
    uint64_t seed;
    uint64_t own_longest; /* the longest turn this thread saw */
    uint64_t lookups;     /* how often it got a permit */
};

static void loop(void *arg)
{
    struct loop_thread *t = arg;
    for (uint64_t i = 0; i < turns; i++) {
        /* A made-up turn length in nanoseconds (xorshift). */
        t->seed ^= t->seed << 13;
        t->seed ^= t->seed >> 7;
        t->seed ^= t->seed << 17;
        uint64_t turn_ns = t->seed % 1000000;
        if (turn_ns > t->own_longest)
            t->own_longest = turn_ns;
        evq_max_update(&longest_turn, turn_ns);

        if (evq_permit_try_take(&permits)) {
            uint64_t running = atomic_fetch_add(&lookups_running, 1) + 1;
            evq_max_update(&most_lookups_running, running);
            t->lookups++;
            atomic_fetch_sub(&lookups_running, 1);
            evq_permit_give(&permits);
        }
    }
}

int main(int argc, char **argv)
{
    unsigned long arg = (unsigned long)turns;
    if (argc > 2 || (argc == 2 && !evq_parse_ulong(argv[1], 1, ULONG_MAX, &arg))) {
        fprintf(stderr, "usage: %s [turns > 0]\n", argv[0]);
        return 2;
    }
    turns = arg;
    atomic_init(&longest_turn, 0);
    atomic_init(&permits, PERMITS);
    atomic_init(&lookups_running, 0);
    atomic_init(&most_lookups_running, 0);
    struct loop_thread threads[THREADS];
    for (int i = 0; i < THREADS; i++) {
        threads[i] = (struct loop_thread){.seed = 0x9e3779b97f4a7c15u * (uint64_t)(i + 1)};
        if (evq_thread_start(&threads[i].thread, loop, &threads[i]) != 0)
            return 1;
    }
    uint64_t longest = 0, lookups = 0;
    for (int i = 0; i < THREADS; i++) {
        evq_thread_join(&threads[i].thread);
        if (threads[i].own_longest > longest)
            longest = threads[i].own_longest;
        lookups += threads[i].lookups;
    }
    uint64_t shared = atomic_load(&longest_turn);
    uint64_t most = atomic_load(&most_lookups_running);
    printf("longest turn: %llu ns shared, %llu ns from the threads' own records\n",
           (unsigned long long)shared, (unsigned long long)longest);
    printf("lookups: %llu, at most %llu at once with %d permits\n", (unsigned long long)lookups,
           (unsigned long long)most, PERMITS);
    return shared == longest && most <= PERMITS && atomic_load(&permits) == PERMITS ? 0 : 1;
}

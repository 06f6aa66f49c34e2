/* evq_random.h - a small seeded generator (xorshift64*) for tests, fuzz
 * harnesses and benchmarks: the same seed gives the same sequence on every
 * system, so a failing mix or cut can be run again. Not for anything that
 * must be unpredictable. */
#ifndef EVQ_RANDOM_H
#define EVQ_RANDOM_H

#include <stdint.h>

typedef struct evq_random {
    uint64_t state; /* never 0 */
} evq_random;

static inline void evq_random_seed(evq_random *random, uint64_t seed)
{
    random->state = seed * UINT64_C(0x9E3779B97F4A7C15) + 1;
    if (random->state == 0)
        random->state = 1;
}

static inline uint64_t evq_random_next(evq_random *random)
{
    uint64_t x = random->state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    random->state = x;
    return x * UINT64_C(0x2545F4914F6CDD1D);
}

/* A number in [0, bound), bound > 0 (slightly biased when bound does not
 * divide 2^64: fine for choosing test cases). */
static inline uint64_t evq_random_below(evq_random *random, uint64_t bound)
{
    return evq_random_next(random) % bound;
}

#endif

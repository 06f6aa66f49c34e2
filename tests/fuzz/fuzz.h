/* fuzz.h - what every fuzz target in tests/fuzz/ shares.
 *
 * A target is one function, LLVMFuzzerTestOneInput, built two ways:
 *   - with clang's libFuzzer (the `fuzz` preset): libFuzzer supplies main()
 *     and calls the function with inputs it mutates, under ASan and UBSan;
 *   - as a plain program with replay.c's main() (every other build, every
 *     compiler): the function is called once per file of the target's
 *     committed corpus, and on a fixed number of mutations of each, and a
 *     ctest test runs that in the default suite.
 * A broken rule calls FUZZ_CHECK's fuzz_fail(), which says where and aborts:
 * libFuzzer saves the input as a crash, and the replay test fails.
 */
#ifndef EVQ_FUZZ_H
#define EVQ_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static inline void fuzz_fail(const char *file, int line, const char *what)
{
    fprintf(stderr, "%s:%d: FUZZ_CHECK(%s) failed\n", file, line, what);
    fflush(stderr);
    abort();
}

#define FUZZ_CHECK(condition)                                                                      \
    do {                                                                                           \
        if (!(condition))                                                                          \
            fuzz_fail(__FILE__, __LINE__, #condition);                                             \
    } while (0)

/* A small deterministic generator (xorshift64*), for targets that derive
 * choices such as cut points from their input. */
typedef struct fuzz_random {
    uint64_t state;
} fuzz_random;

static inline void fuzz_random_seed(fuzz_random *random, uint64_t seed)
{
    random->state = seed * UINT64_C(0x9E3779B97F4A7C15) + 1; /* never 0 */
    if (random->state == 0)
        random->state = 1;
}

static inline uint64_t fuzz_random_next(fuzz_random *random)
{
    uint64_t x = random->state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    random->state = x;
    return x * UINT64_C(0x2545F4914F6CDD1D);
}

/* A number in [0, bound), bound > 0. */
static inline uint64_t fuzz_random_below(fuzz_random *random, uint64_t bound)
{
    return fuzz_random_next(random) % bound;
}

#endif

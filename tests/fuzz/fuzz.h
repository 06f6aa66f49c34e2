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

#include "evq_random.h" /* choices such as cut points, derived from the input */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

_Noreturn static inline void fuzz_fail(const char *file, int line, const char *what)
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

#endif

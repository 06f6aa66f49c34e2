/* evq_test.h - the project's tiny test helper (no framework).
 *
 * A test file defines cases with EVQ_TEST and lists them in main:
 *
 *     EVQ_TEST(fifo_order) {
 *         CHECK_INT(queue_len(&q), ==, 0);
 *         REQUIRE_OK(queue_push(&q, 1));
 *     }
 *
 *     int main(int argc, char **argv) {
 *         static const evq_test_case cases[] = { EVQ_CASE(fifo_order) };
 *         return evq_test_main(argc, argv, cases, EVQ_COUNT(cases));
 *     }
 *
 * `prog` runs every case, `prog NAME...` runs the named ones, `prog --list`
 * prints the names. It prints one line per case and "N passed, N failed", and
 * exits non-zero if anything failed - except when the environment variable
 * EVQ_TEST_KNOWN_DEVIATION holds a reason: then a failure is a known
 * deviation of the platform (CMake sets it for the tests a provider's list
 * names), reported with the reason and the exit code EVQ_TEST_EXIT_SKIPPED,
 * which ctest counts as skipped. CMake's evq_add_test_program() reads the
 * EVQ_TEST(name) lines from the source and registers one ctest test per case
 * (so EVQ_TEST must start a line).
 *
 * CHECK_* record a failure and go on; REQUIRE_* record it and return from the
 * case (so they are for use in the case function itself). Both are safe to
 * call from helper threads.
 *
 * SKIP("reason %s", ...) ends the case as skipped, for a case that cannot run
 * here (a kernel interface this machine does not offer, such as io_uring
 * disabled by a sysctl or a seccomp filter). The case prints "    skip:
 * reason" and "skip NAME"; a program whose cases were all skipped exits with
 * EVQ_TEST_EXIT_SKIPPED (77), which ctest reports as "Skipped" (every test
 * registered through cmake/EvqHelpers.cmake has SKIP_RETURN_CODE 77), not as
 * passed and not as failed. A case that failed a check before it skipped
 * counts as failed. Skip only for what the machine lacks, never for a bug.
 */
#ifndef EVQ_TEST_H
#define EVQ_TEST_H

#include <stddef.h>
#include <string.h>

#include "evq_error.h"
#include "evq_log.h" /* EVQ_PRINTF_LIKE */

typedef struct evq_test_case {
    const char *name;
    void (*fn)(void);
} evq_test_case;

#define EVQ_TEST(name) static void test_##name(void)
/* Cases that exist only on some systems: put them (and their EVQ_CASE) under
 * the matching #ifdef; CMake registers them only where they are compiled. */
#define EVQ_TEST_POSIX(name)   EVQ_TEST(name)
#define EVQ_TEST_LINUX(name)   EVQ_TEST(name)
#define EVQ_TEST_WINDOWS(name) EVQ_TEST(name)
#define EVQ_CASE(name)                                                                             \
    {                                                                                              \
#name, test_##name                                                                         \
    }
#define EVQ_COUNT(array) (sizeof(array) / sizeof((array)[0]))

/* The exit code of a known deviation that failed, and of a program whose
 * cases all SKIP()ped (ctest's SKIP_RETURN_CODE; the autotools convention). */
#define EVQ_TEST_EXIT_SKIPPED 77

int evq_test_main(int argc, char **argv, const evq_test_case *cases, size_t count);

/* Record a failure of the running case; returns 0 so that macros can chain. */
int evq_test_fail(const char *file, int line, const char *format, ...) EVQ_PRINTF_LIKE(3, 4);

/* Number of failures recorded so far in the running case. */
int evq_test_failures(void);

/* Print a note under the running case (shown with the case's result). */
void evq_test_note(const char *format, ...) EVQ_PRINTF_LIKE(1, 2);

/* Mark the running case skipped, with a reason (printed once). Use SKIP(),
 * which also returns from the case. */
void evq_test_skip(const char *format, ...) EVQ_PRINTF_LIKE(1, 2);

/* The program name as run (argv[0]). */
const char *evq_test_program(void);

#define CHECK(cond) evq_test_check_((cond) ? 1 : 0, #cond, __FILE__, __LINE__)

/* Each argument is evaluated exactly once (CHECK_INT(write(fd, "x", 1), ==, 1)
 * writes one byte): the function compares, from the operator's spelling, which
 * must be one of == != < <= > >=. */
#define CHECK_INT(a, op, b)                                                                        \
    evq_test_check_int_((long long)(a), #op, (long long)(b), #a, #b, __FILE__, __LINE__)

#define CHECK_UINT(a, op, b)                                                                       \
    evq_test_check_uint_((unsigned long long)(a), #op, (unsigned long long)(b), #a, #b, __FILE__,  \
                         __LINE__)

/* Each argument is evaluated once, as in every check here: the comparison is
 * made inside the function (CHECK_STR(next_line(), ==, "x") must not read
 * two lines). */
#define CHECK_STR(a, op, b) evq_test_check_str_(a, #op, b, #a, #b, __FILE__, __LINE__)

#define CHECK_MEM(a, b, len) evq_test_check_mem_(a, b, len, #a, #b, __FILE__, __LINE__)

/* expr must return 0 (EVQ_OK); otherwise the EVQ_E* name is printed. */
#define CHECK_OK(expr) evq_test_check_code_((expr), 0, #expr, __FILE__, __LINE__)
/* expr must return exactly the given EVQ_E* code. */
#define CHECK_ERR(expr, code) evq_test_check_code_((expr), (code), #expr, __FILE__, __LINE__)

#define EVQ_TEST_REQUIRE_(check)                                                                   \
    do {                                                                                           \
        if (!(check))                                                                              \
            return;                                                                                \
    } while (0)

#define SKIP(...)                                                                                  \
    do {                                                                                           \
        evq_test_skip(__VA_ARGS__);                                                                \
        return;                                                                                    \
    } while (0)

#define REQUIRE(cond)           EVQ_TEST_REQUIRE_(CHECK(cond))
#define REQUIRE_INT(a, op, b)   EVQ_TEST_REQUIRE_(CHECK_INT(a, op, b))
#define REQUIRE_UINT(a, op, b)  EVQ_TEST_REQUIRE_(CHECK_UINT(a, op, b))
#define REQUIRE_STR(a, op, b)   EVQ_TEST_REQUIRE_(CHECK_STR(a, op, b))
#define REQUIRE_MEM(a, b, len)  EVQ_TEST_REQUIRE_(CHECK_MEM(a, b, len))
#define REQUIRE_OK(expr)        EVQ_TEST_REQUIRE_(CHECK_OK(expr))
#define REQUIRE_ERR(expr, code) EVQ_TEST_REQUIRE_(CHECK_ERR(expr, code))

/* Implementation details of the macros above. */
int evq_test_check_(int ok, const char *expr, const char *file, int line);
int evq_test_check_int_(long long a, const char *op, long long b, const char *as, const char *bs,
                        const char *file, int line);
int evq_test_check_uint_(unsigned long long a, const char *op, unsigned long long b, const char *as,
                         const char *bs, const char *file, int line);
int evq_test_check_str_(const char *a, const char *op, const char *b, const char *as,
                        const char *bs, const char *file, int line);
int evq_test_check_mem_(const void *a, const void *b, size_t len, const char *as, const char *bs,
                        const char *file, int line);
int evq_test_check_code_(int got, int want, const char *expr, const char *file, int line);

#endif

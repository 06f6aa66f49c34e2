/* test.c - the runner and checks behind evq_test.h. */
#if !defined(_WIN32) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L /* sigaction, alarm */
#endif
#include "evq_test.h"
#include "evq_clock.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#ifndef _WIN32
#include <signal.h>
#include <unistd.h>
#endif

static atomic_int case_failures;
static atomic_int case_skipped;
static const char *program_name = "test";

int evq_test_failures(void)
{
    return atomic_load(&case_failures);
}

const char *evq_test_program(void)
{
    return program_name;
}

static void vreport(const char *prefix, const char *file, int line, const char *format,
                    va_list args)
{
    char message[2048];
    int used = 0;
    if (file)
        used = snprintf(message, sizeof message, "%s%s:%d: ", prefix, file, line);
    else
        used = snprintf(message, sizeof message, "%s", prefix);
    if (used < 0 || (size_t)used >= sizeof message)
        used = 0;
    vsnprintf(message + used, sizeof message - (size_t)used, format, args);
    /* One call per line so that lines from helper threads do not interleave. */
    fprintf(stdout, "%s\n", message);
    fflush(stdout);
}

int evq_test_fail(const char *file, int line, const char *format, ...)
{
    atomic_fetch_add(&case_failures, 1);
    va_list args;
    va_start(args, format);
    vreport("    ", file, line, format, args);
    va_end(args);
    return 0;
}

void evq_test_note(const char *format, ...)
{
    va_list args;
    va_start(args, format);
    vreport("    note: ", NULL, 0, format, args);
    va_end(args);
}

void evq_test_skip(const char *format, ...)
{
    atomic_store(&case_skipped, 1);
    va_list args;
    va_start(args, format);
    vreport("    skip: ", NULL, 0, format, args);
    va_end(args);
}

int evq_test_check_(int ok, const char *expr, const char *file, int line)
{
    if (ok)
        return 1;
    return evq_test_fail(file, line, "CHECK(%s) failed", expr);
}

/* Whether "a op b" holds, given how a compares to b (-1, 0, 1). */
static int comparison_holds(int order, const char *op, int *known)
{
    *known = 1;
    if (strcmp(op, "==") == 0)
        return order == 0;
    if (strcmp(op, "!=") == 0)
        return order != 0;
    if (strcmp(op, "<") == 0)
        return order < 0;
    if (strcmp(op, "<=") == 0)
        return order <= 0;
    if (strcmp(op, ">") == 0)
        return order > 0;
    if (strcmp(op, ">=") == 0)
        return order >= 0;
    *known = 0;
    return 0;
}

int evq_test_check_int_(long long a, const char *op, long long b, const char *as, const char *bs,
                        const char *file, int line)
{
    int known;
    if (comparison_holds((a > b) - (a < b), op, &known))
        return 1;
    if (!known)
        return evq_test_fail(file, line, "CHECK_INT(%s %s %s): %s is not a comparison", as, op, bs,
                             op);
    return evq_test_fail(file, line, "CHECK_INT(%s %s %s) failed: %lld %s %lld is false", as, op,
                         bs, a, op, b);
}

int evq_test_check_uint_(unsigned long long a, const char *op, unsigned long long b, const char *as,
                         const char *bs, const char *file, int line)
{
    int known;
    if (comparison_holds((a > b) - (a < b), op, &known))
        return 1;
    if (!known)
        return evq_test_fail(file, line, "CHECK_UINT(%s %s %s): %s is not a comparison", as, op, bs,
                             op);
    return evq_test_fail(file, line, "CHECK_UINT(%s %s %s) failed: %llu %s %llu is false", as, op,
                         bs, a, op, b);
}

int evq_test_check_str_(const char *a, const char *op, const char *b, const char *as,
                        const char *bs, const char *file, int line)
{
    int known;
    /* NULL compares as "" (and prints as (null)), so a check never crashes. */
    int order = strcmp(a ? a : "", b ? b : "");
    if (comparison_holds((order > 0) - (order < 0), op, &known))
        return 1;
    if (!known)
        return evq_test_fail(file, line, "CHECK_STR(%s %s %s): %s is not a comparison", as, op, bs,
                             op);
    return evq_test_fail(file, line, "CHECK_STR(%s %s %s) failed: \"%s\" %s \"%s\" is false", as,
                         op, bs, a ? a : "(null)", op, b ? b : "(null)");
}

int evq_test_check_mem_(const void *a, const void *b, size_t len, const char *as, const char *bs,
                        const char *file, int line)
{
    const unsigned char *pa = a, *pb = b;
    for (size_t i = 0; i < len; i++) {
        if (pa[i] != pb[i])
            return evq_test_fail(file, line,
                                 "CHECK_MEM(%s, %s, %zu) failed: first difference at byte %zu: "
                                 "0x%02x != 0x%02x",
                                 as, bs, len, i, pa[i], pb[i]);
    }
    return 1;
}

int evq_test_check_code_(int got, int want, const char *expr, const char *file, int line)
{
    if (got == want)
        return 1;
    return evq_test_fail(file, line, "%s returned %s (%d: %s), expected %s (%d)", expr,
                         evq_error_name(got), got, evq_strerror(got), evq_error_name(want), want);
}

static const evq_test_case *find_case(const evq_test_case *cases, size_t count, const char *name)
{
    for (size_t i = 0; i < count; i++) {
        if (strcmp(cases[i].name, name) == 0)
            return &cases[i];
    }
    return NULL;
}

enum case_result { CASE_PASSED, CASE_FAILED, CASE_SKIPPED };

static enum case_result run_case(const evq_test_case *test)
{
    atomic_store(&case_failures, 0);
    atomic_store(&case_skipped, 0);
    uint64_t start = evq_clock_now_ns();
    test->fn();
    uint64_t took_us = evq_elapsed_ns(evq_clock_now_ns(), start) / 1000;
    enum case_result result = atomic_load(&case_failures) != 0 ? CASE_FAILED
                              : atomic_load(&case_skipped)     ? CASE_SKIPPED
                                                               : CASE_PASSED;
    static const char *const words[] = {"ok  ", "FAIL", "skip"};
    printf("%s %s (%llu.%03llu ms)\n", words[result], test->name,
           (unsigned long long)(took_us / 1000), (unsigned long long)(took_us % 1000));
    fflush(stdout);
    return result;
}

#ifndef _WIN32
/* A known deviation may hang rather than fail: a platform that never
 * reports an edge leaves the test waiting for it. Past the bound the case
 * is ended as the skip it would have been, with its reason; the message is
 * written before the alarm, so the handler only calls write and _exit
 * (async-signal-safe). */
enum { DEVIATION_BOUND_S = 30 };
static char deviation_message[512];
static size_t deviation_message_len;

static void deviation_overran(int signal_number)
{
    (void)signal_number;
    ssize_t ignored = write(STDOUT_FILENO, deviation_message, deviation_message_len);
    (void)ignored;
    _exit(EVQ_TEST_EXIT_SKIPPED);
}

static void bound_a_known_deviation(const char *deviation)
{
    int len = snprintf(deviation_message, sizeof deviation_message,
                       "\nSKIPPED: known deviation of %s (no end after %d s)\n", deviation,
                       (int)DEVIATION_BOUND_S);
    if (len < 0)
        len = 0;
    deviation_message_len = (size_t)len < sizeof deviation_message ? (size_t)len
                                                                   : sizeof deviation_message - 1;
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = deviation_overran;
    sigemptyset(&action.sa_mask);
    if (sigaction(SIGALRM, &action, NULL) == 0)
        alarm(DEVIATION_BOUND_S);
}
#endif

int evq_test_main(int argc, char **argv, const evq_test_case *cases, size_t count)
{
    if (argc > 0 && argv[0])
        program_name = argv[0];
    /* Output goes to a pipe under ctest: make every line appear as written. */
    setvbuf(stdout, NULL, _IONBF, 0);

    if (argc > 1 && strcmp(argv[1], "--list") == 0) {
        for (size_t i = 0; i < count; i++)
            printf("%s\n", cases[i].name);
        return 0;
    }

    /* Set by CMake for a test its provider's list names (evq_set_test_properties). */
    const char *deviation = getenv("EVQ_TEST_KNOWN_DEVIATION");
#ifndef _WIN32
    if (deviation && *deviation)
        bound_a_known_deviation(deviation);
#endif
    int tally[3] = {0, 0, 0}; /* by enum case_result */
    if (argc > 1) {
        for (int i = 1; i < argc; i++) {
            const evq_test_case *test = find_case(cases, count, argv[i]);
            if (!test) {
                printf("FAIL %s (no such case; --list shows them)\n", argv[i]);
                tally[CASE_FAILED]++;
                continue;
            }
            tally[run_case(test)]++;
        }
    } else {
        for (size_t i = 0; i < count; i++)
            tally[run_case(&cases[i])]++;
    }
    int passed = tally[CASE_PASSED], failed = tally[CASE_FAILED], skipped = tally[CASE_SKIPPED];
    if (skipped > 0)
        printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
    else
        printf("%d passed, %d failed\n", passed, failed);
    /* ANCHOR: known_deviation */
    /* A case the platform is known to get wrong keeps its rule: it still
     * runs, and its failure is reported as what it is. */
    if (deviation && *deviation) {
        if (failed > 0) {
            printf("SKIPPED: known deviation of %s\n", deviation);
            return EVQ_TEST_EXIT_SKIPPED;
        }
        printf("note: listed as a known deviation of %s, but passed\n", deviation);
    }
    /* ANCHOR_END: known_deviation */
    if (failed == 0 && passed == 0 && skipped > 0)
        return EVQ_TEST_EXIT_SKIPPED; /* every case SKIP()ped: what this machine lacks */
    return failed == 0 && passed > 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

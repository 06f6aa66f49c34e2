/* bench.c - see bench.h. */
#if defined(__linux__)
#define _GNU_SOURCE /* malloc_trim */
#elif !defined(_WIN32) && !defined(__APPLE__) && !defined(__FreeBSD__)
#define _POSIX_C_SOURCE 200809L /* sysconf */
#endif
#include "bench.h"

#include "evq_args.h"
#include "evq_clock.h"
#include "evq_net.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(_WIN32)
#include <malloc.h>
#include <windows.h>
#include <psapi.h>
#else
#include <unistd.h>
#if defined(__linux__)
#include <malloc.h>
#endif
#endif

bench_memory bench_memory_now(void)
{
    bench_memory m = {0, 0};
#if defined(_WIN32)
    PROCESS_MEMORY_COUNTERS counters;
    if (GetProcessMemoryInfo(GetCurrentProcess(), &counters, sizeof counters)) {
        m.asked = counters.PagefileUsage; /* the commit charge */
        m.resident = counters.WorkingSetSize;
    }
#elif defined(__linux__)
    /* statm: size resident shared text lib data dt, in pages. */
    FILE *file = fopen("/proc/self/statm", "r");
    unsigned long size = 0, resident = 0;
    if (file) {
        if (fscanf(file, "%lu %lu", &size, &resident) == 2) {
            size_t page = (size_t)sysconf(_SC_PAGESIZE);
            m.asked = (size_t)size * page;
            m.resident = (size_t)resident * page;
        }
        fclose(file);
    }
#endif
    return m;
}

void bench_release_free_memory(void)
{
#if defined(_WIN32)
    _heapmin();
#elif defined(__GLIBC__)
    malloc_trim(0);
#endif
}

static unsigned char pattern[BENCH_PATTERN_SPAN + 251];

int bench_init(void)
{
    for (size_t i = 0; i < sizeof pattern; i++)
        pattern[i] = (unsigned char)(i % 251);
    evq_net_raise_descriptor_limit(); /* hundreds of connections, two descriptors each */
    return evq_net_init();
}

const unsigned char *bench_pattern(uint64_t at)
{
    return pattern + at % 251;
}

bool bench_pattern_matches(uint64_t at, const void *buf, size_t len)
{
    return len <= BENCH_PATTERN_SPAN && memcmp(buf, bench_pattern(at), len) == 0;
}

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double bench_median(double *values, size_t count)
{
    if (count == 0)
        return 0;
    qsort(values, count, sizeof *values, compare_doubles);
    return count % 2 ? values[count / 2] : (values[count / 2 - 1] + values[count / 2]) / 2;
}

bool bench_arguments_ok(int argc, char **argv, const char *const *known)
{
    if (argc % 2 == 0)
        return false; /* every name needs its value */
    for (int i = 1; i < argc; i += 2) {
        bool found = false;
        for (const char *const *k = known; *k; k++)
            found = found || strcmp(argv[i], *k) == 0;
        if (!found)
            return false;
    }
    return true;
}

bool bench_option(int argc, char **argv, const char *name, unsigned long low,
                  unsigned long high, unsigned long *out)
{
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], name) == 0)
            return evq_parse_ulong(argv[i + 1], low, high, out);
    }
    return true; /* not given: the default stays */
}

double bench_seconds_since(uint64_t t0)
{
    return (double)evq_sat_sub(evq_clock_now_ns(), t0) / 1e9;
}

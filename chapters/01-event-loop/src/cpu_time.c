/* cpu_time.c - CPU time of the calling thread, on POSIX and Windows. */
#if !defined(_WIN32) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L /* clock_gettime, CLOCK_THREAD_CPUTIME_ID */
#endif
#include "evq_cpu_time.h"

#ifdef _WIN32

#include <windows.h>

static uint64_t filetime_to_u64(FILETIME t)
{
    return ((uint64_t)t.dwHighDateTime << 32) | t.dwLowDateTime;
}

uint64_t evq_cpu_time_ns(void)
{
    FILETIME created, exited, kernel, user;
    if (!GetThreadTimes(GetCurrentThread(), &created, &exited, &kernel, &user))
        return 0;
    return (filetime_to_u64(kernel) + filetime_to_u64(user)) * 100; /* 100 ns units */
}

#else

#include <time.h>

uint64_t evq_cpu_time_ns(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0)
        return 0;
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

#endif

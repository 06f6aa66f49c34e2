/* clock.c - the monotonic clock on POSIX and Windows. */
#if !defined(_WIN32) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L
#endif
#include "evq_clock.h"

#ifdef _WIN32
#include <windows.h>
#else
#include <time.h>
#endif

#ifdef _WIN32
uint64_t evq_clock_now_ns(void)
{
    /* QueryPerformanceFrequency is fixed at boot; reading it every time keeps
     * this function free of hidden state. Split the conversion so that
     * counter * 1e9 cannot overflow. */
    LARGE_INTEGER frequency, counter;
    QueryPerformanceFrequency(&frequency);
    QueryPerformanceCounter(&counter);
    uint64_t f = (uint64_t)frequency.QuadPart;
    uint64_t c = (uint64_t)counter.QuadPart;
    return (c / f) * EVQ_NS_PER_S + (c % f) * EVQ_NS_PER_S / f;
}
#else
uint64_t evq_clock_now_ns(void)
{
    struct timespec ts;
    /* CLOCK_MONOTONIC never jumps with settimeofday or NTP steps. */
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * EVQ_NS_PER_S + (uint64_t)ts.tv_nsec;
}
#endif

static uint64_t system_now(void *context)
{
    (void)context;
    return evq_clock_now_ns();
}

evq_clock evq_clock_system(void)
{
    evq_clock clock = {system_now, 0};
    return clock;
}

static uint64_t fake_now(void *context)
{
    return ((evq_fake_clock *)context)->now;
}

evq_clock evq_fake_clock_as_clock(evq_fake_clock *fake)
{
    evq_clock clock = {fake_now, fake};
    return clock;
}

void evq_fake_clock_advance_ns(evq_fake_clock *fake, uint64_t ns)
{
    fake->now = evq_sat_add(fake->now, ns);
}

void evq_fake_clock_advance_ms(evq_fake_clock *fake, uint64_t ms)
{
    evq_fake_clock_advance_ns(fake, evq_ms_to_ns(ms));
}

void evq_fake_clock_set_ns(evq_fake_clock *fake, uint64_t now)
{
    fake->now = now;
}

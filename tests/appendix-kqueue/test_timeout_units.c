/* test_timeout_units.c - kevent()'s timeout is a struct timespec: whole
 * seconds plus NANOseconds, and the wait lasts all of it. "If timeout is a
 * non-NULL pointer, it specifies a maximum interval to wait for an event"
 * (kqueue(2)).
 *
 * The other timeout cases wait less than a second, where tv_sec is 0: a
 * provider that scales tv_sec wrongly passes them all, and one whose inner
 * epoll_wait() gets a timeout in the wrong unit passes every time bound -
 * its own loop waits again until the deadline - while it wakes up every
 * millisecond. Here tv_sec and tv_nsec are both set, the lower bound on the
 * time is asserted (never an upper bound: a busy machine may wait longer),
 * and, where the system counts them per thread, so are the times the
 * thread slept in the kernel.
 */
#if defined(__linux__)
#define _GNU_SOURCE /* RUSAGE_THREAD */
#elif defined(__APPLE__)
#define _DARWIN_C_SOURCE
#endif
#include <stdint.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "evq_clock.h"
#include "evq_test.h"
#include "kq_test.h"

/* Voluntary context switches of this thread so far: one each time it has
 * blocked in the kernel (a wait that sleeps, then wakes). -1 where the
 * system does not count them per thread. */
static long voluntary_switches(void)
{
#ifdef RUSAGE_THREAD
    struct rusage usage;
    if (getrusage(RUSAGE_THREAD, &usage) == 0)
        return usage.ru_nvcsw;
#endif
    return -1;
}

/* A few sleeps at most: the wait itself, and slack for a page fault that
 * had to wait for I/O. A timeout in the wrong unit inside the provider
 * sleeps about once per millisecond: ~1500 times. */
#define MOST_SLEEPS 5

static void wait_on_an_empty_kqueue(time_t seconds, long nanoseconds)
{
    int kq = kq_open();
    REQUIRE(kq >= 0);
    struct kevent events[4];
    struct timespec timeout = {seconds, nanoseconds};
    uint64_t wanted_ns = (uint64_t)seconds * EVQ_NS_PER_S + (uint64_t)nanoseconds;
    long sleeps_before = voluntary_switches();
    uint64_t start = evq_clock_now_ns();
    CHECK_INT(kevent(kq, NULL, 0, events, 4, &timeout), ==, 0);
    uint64_t elapsed = evq_clock_now_ns() - start;
    long sleeps_after = voluntary_switches();
    CHECK_UINT(elapsed, >=, wanted_ns);
    if (sleeps_before >= 0 && sleeps_after >= 0) {
        CHECK_INT(sleeps_after - sleeps_before, >=, 1);
        CHECK_INT(sleeps_after - sleeps_before, <=, MOST_SLEEPS);
    } else {
        evq_test_note("no per-thread count of sleeps here: only the time is checked");
    }
    close(kq);
}

/* 1.5 s: one second and 500 000 000 nanoseconds. */
EVQ_TEST(seconds_and_nanoseconds_are_both_waited)
{
    wait_on_an_empty_kqueue(1, 500000000L);
}

int main(int argc, char **argv)
{
    static const evq_test_case cases[] = {
        EVQ_CASE(seconds_and_nanoseconds_are_both_waited),
    };
    return evq_test_main(argc, argv, cases, EVQ_COUNT(cases));
}

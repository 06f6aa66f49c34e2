/* evq_clock.h - a monotonic clock in nanoseconds, saturating time arithmetic,
 * timeout conversion that rounds up, and an injectable clock for tests.
 *
 * Why saturating: instants are unsigned. "now - last" where last is (through a
 * stale read, another thread, or a clock injected by a test) later than now
 * wraps to ~584 years, and a loop that checks "elapsed >= interval" fires every
 * turn forever; a loop that computes "interval - elapsed" as a sleep time
 * sleeps for centuries. A saturating difference returns 0 instead.
 */
#ifndef EVQ_CLOCK_H
#define EVQ_CLOCK_H

#include <limits.h>
#include <stdint.h>

#define EVQ_NS_PER_MS UINT64_C(1000000)
#define EVQ_NS_PER_S  UINT64_C(1000000000)

/* Nanoseconds on a monotonic clock with an arbitrary origin (never wall time). */
uint64_t evq_clock_now_ns(void);

/* a - b, or 0 when b is later than a. The only subtraction of instants to use. */
static inline uint64_t evq_sat_sub(uint64_t a, uint64_t b)
{
    return a > b ? a - b : 0;
}

/* a + b, or UINT64_MAX when the sum does not fit ("never"). */
static inline uint64_t evq_sat_add(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/* Time from `since` to `now`: 0 if `since` is in the future. */
static inline uint64_t evq_elapsed_ns(uint64_t now, uint64_t since)
{
    return evq_sat_sub(now, since);
}

/* A non-negative millisecond timeout to nanoseconds. */
static inline uint64_t evq_ms_to_ns(uint64_t ms)
{
    return ms > UINT64_MAX / EVQ_NS_PER_MS ? UINT64_MAX : ms * EVQ_NS_PER_MS;
}

/* Nanoseconds to a millisecond timeout for poll/epoll_wait/GetQueuedCompletionStatus,
 * rounded UP: 1 ns becomes 1 ms, never 0 ms (a 0 ms timeout is a busy poll that
 * returns before the deadline and makes the caller spin). Clamped to INT_MAX. */
static inline int evq_ns_to_timeout_ms(uint64_t ns)
{
    uint64_t ms = ns / EVQ_NS_PER_MS + (ns % EVQ_NS_PER_MS != 0);
    return ms > (uint64_t)INT_MAX ? INT_MAX : (int)ms;
}

/* Milliseconds left until `deadline`, rounded up; 0 once it has passed. */
static inline int evq_remaining_ms(uint64_t deadline, uint64_t now)
{
    return evq_ns_to_timeout_ms(evq_sat_sub(deadline, now));
}

/* An injectable clock: code under test reads time through one of these, so a
 * test can advance time by hand instead of sleeping. */
typedef struct evq_clock {
    uint64_t (*now_ns)(void *context);
    void *context;
} evq_clock;

static inline uint64_t evq_clock_read(const evq_clock *clock)
{
    return clock->now_ns(clock->context);
}

/* The real monotonic clock as an evq_clock. */
evq_clock evq_clock_system(void);

/* A clock that only moves when told to. Not thread-safe: tests drive it from
 * the thread that reads it. */
typedef struct evq_fake_clock {
    uint64_t now;
} evq_fake_clock;

evq_clock evq_fake_clock_as_clock(evq_fake_clock *fake);
void evq_fake_clock_advance_ns(evq_fake_clock *fake, uint64_t ns);
void evq_fake_clock_advance_ms(evq_fake_clock *fake, uint64_t ms);
void evq_fake_clock_set_ns(evq_fake_clock *fake, uint64_t now);

#endif

/* test_timer.c - EVFILT_TIMER: "Establishes an arbitrary timer identified by
 * ident. When adding a timer, data specifies ... the timeout period. The
 * timer will be periodic unless EV_ONESHOT ... is specified. On return, data
 * contains the number of times the timeout has expired since the last call
 * to kevent()." Milliseconds unless told otherwise.
 *
 * The assertions are on counts and order; the only time bounds are lower
 * bounds (a timer never fires before its period) and generous upper bounds
 * on how long to wait for something that must happen. */
#if defined(__APPLE__)
#define _DARWIN_C_SOURCE
#elif !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L
#endif
#include <errno.h>
#include <stdint.h>
#include <unistd.h>

#include "evq_test.h"
#include "evq_thread.h"
#include "kq_test.h"

static int marker;

EVQ_TEST(oneshot_timer_fires_once_and_is_gone)
{
    int kq = kq_open();
    REQUIRE(kq >= 0);
    int64_t start = monotonic_ms();
    CHECK_INT(kq_change(kq, 1, EVFILT_TIMER, EV_ADD | EV_ONESHOT, 0, 20, &marker), ==, 0);
    struct kevent event;
    REQUIRE(kq_wait_for(kq, 1, EVFILT_TIMER, 0, &event, 5000));
    CHECK_INT(monotonic_ms() - start, >=, 19);
    CHECK_INT(event.data, ==, 1);
    CHECK(event.udata == &marker);
    CHECK(!kq_wait_for(kq, 1, EVFILT_TIMER, 0, &event, 100));
    CHECK_INT(kq_change(kq, 1, EVFILT_TIMER, EV_DELETE, 0, 0, NULL), ==, ENOENT);
    close(kq);
}

/* data counts the expirations since the last delivery, and a delivery
 * starts the count again. The checks start right after an expiry, so that a
 * whole period (100 ms) separates them from the next one. */
EVQ_TEST(periodic_timer_counts_expirations)
{
    int kq = kq_open();
    REQUIRE(kq >= 0);
    CHECK_INT(kq_change(kq, 2, EVFILT_TIMER, EV_ADD, 0, 100, NULL), ==, 0);
    struct kevent event, events[4];
    REQUIRE(kq_wait_for(kq, 2, EVFILT_TIMER, 0, &event, 5000));
    CHECK_INT(event.data, >=, 1);
    CHECK_INT(kq_poll(kq, events, 4), ==, 0); /* collected: the count restarts */
    /* EV_ENABLE runs the filter again; the count is 0, so nothing fires. */
    CHECK_INT(kq_change(kq, 2, EVFILT_TIMER, EV_ENABLE, 0, 0, NULL), ==, 0);
    CHECK_INT(kq_poll(kq, events, 4), ==, 0);
    evq_sleep_ms(350); /* three more periods, uncollected */
    REQUIRE_INT(kq_poll(kq, events, 4), ==, 1);
    CHECK_INT(events[0].data, >=, 3);
    REQUIRE(kq_wait_for(kq, 2, EVFILT_TIMER, 0, &event, 5000)); /* and it goes on */
    CHECK_INT(kq_change(kq, 2, EVFILT_TIMER, EV_DELETE, 0, 0, NULL), ==, 0);
    close(kq);
}

EVQ_TEST(deleted_timer_stops)
{
    int kq = kq_open();
    REQUIRE(kq >= 0);
    CHECK_INT(kq_change(kq, 3, EVFILT_TIMER, EV_ADD, 0, 5, NULL), ==, 0);
    struct kevent event;
    REQUIRE(kq_wait_for(kq, 3, EVFILT_TIMER, 0, &event, 5000));
    CHECK_INT(kq_change(kq, 3, EVFILT_TIMER, EV_DELETE, 0, 0, NULL), ==, 0);
    CHECK(!kq_wait_for(kq, 3, EVFILT_TIMER, 0, &event, 100));
    close(kq);
}

/* "If an existing timer is re-added, the existing timer will be effectively
 * canceled (throwing away any undelivered record of previous timer
 * expiration) and re-started using the new parameters." */
EVQ_TEST(readded_timer_restarts_and_forgets)
{
    int kq = kq_open();
    REQUIRE(kq >= 0);
    /* Disabled, so that expirations pile up undelivered in the knote. */
    CHECK_INT(kq_change(kq, 4, EVFILT_TIMER, EV_ADD | EV_DISABLE, 0, 5, NULL), ==, 0);
    evq_sleep_ms(30);
    struct kevent events[4];
    CHECK_INT(kq_poll(kq, events, 4), ==, 0);
    CHECK_INT(kq_change(kq, 4, EVFILT_TIMER, EV_ADD, 0, 60000, NULL), ==, 0);
    CHECK_INT(kq_change(kq, 4, EVFILT_TIMER, EV_ENABLE, 0, 0, NULL), ==, 0);
    CHECK_INT(kq_poll(kq, events, 4), ==, 0);
    CHECK_INT(kq_change(kq, 4, EVFILT_TIMER, EV_DELETE, 0, 0, NULL), ==, 0);
    close(kq);
}

/* A disabled timer keeps counting; EV_ENABLE delivers the count. */
EVQ_TEST(disabled_timer_keeps_counting)
{
    int kq = kq_open();
    REQUIRE(kq >= 0);
    CHECK_INT(kq_change(kq, 5, EVFILT_TIMER, EV_ADD | EV_DISABLE, 0, 20, NULL), ==, 0);
    evq_sleep_ms(100); /* five periods */
    struct kevent events[4];
    CHECK_INT(kq_poll(kq, events, 4), ==, 0);
    CHECK_INT(kq_change(kq, 5, EVFILT_TIMER, EV_ENABLE, 0, 0, NULL), ==, 0);
    REQUIRE_INT(kq_poll(kq, events, 4), ==, 1);
    CHECK_INT(events[0].data, >=, 2);
    CHECK_INT(kq_change(kq, 5, EVFILT_TIMER, EV_DELETE, 0, 0, NULL), ==, 0);
    close(kq);
}

/* Two timers, two knotes: each reports only its own expirations, in order. */
EVQ_TEST(timers_fire_in_order_of_their_periods)
{
    int kq = kq_open();
    REQUIRE(kq >= 0);
    CHECK_INT(kq_change(kq, 61, EVFILT_TIMER, EV_ADD | EV_ONESHOT, 0, 80, NULL), ==, 0);
    CHECK_INT(kq_change(kq, 62, EVFILT_TIMER, EV_ADD | EV_ONESHOT, 0, 10, NULL), ==, 0);
    struct kevent events[4];
    int n = kq_wait(kq, events, 4, 5000);
    REQUIRE_INT(n, >=, 1);
    /* Alone, the first to come must be the 10 ms timer (a thread delayed
     * past 80 ms may collect both at once, in either order). */
    if (n == 1)
        CHECK_UINT(events[0].ident, ==, 62);
    else
        CHECK(kq_find(events, n, 62, EVFILT_TIMER) != NULL);
    close(kq);
}

/* "data ... may not be negative": EINVAL, as filt_timervalidate says. */
EVQ_TEST(negative_period_is_einval)
{
    int kq = kq_open();
    REQUIRE(kq >= 0);
    CHECK_INT(kq_change(kq, 6, EVFILT_TIMER, EV_ADD, 0, -1, NULL), ==, EINVAL);
    CHECK_INT(kq_change(kq, 6, EVFILT_TIMER, EV_DELETE, 0, 0, NULL), ==, ENOENT);
    close(kq);
}

int main(int argc, char **argv)
{
    static const evq_test_case cases[] = {
        EVQ_CASE(oneshot_timer_fires_once_and_is_gone),
        EVQ_CASE(periodic_timer_counts_expirations),
        EVQ_CASE(deleted_timer_stops),
        EVQ_CASE(readded_timer_restarts_and_forgets),
        EVQ_CASE(disabled_timer_keeps_counting),
        EVQ_CASE(timers_fire_in_order_of_their_periods),
        EVQ_CASE(negative_period_is_einval),
    };
    return evq_test_main(argc, argv, cases, EVQ_COUNT(cases));
}

/* Tests of evq_clock.h: saturating arithmetic, rounding up, the fake clock. */
#include "evq_clock.h"
#include "evq_test.h"

EVQ_TEST(sat_sub_never_wraps)
{
    CHECK_UINT(evq_sat_sub(10, 3), ==, 7);
    CHECK_UINT(evq_sat_sub(3, 10), ==, 0);
    CHECK_UINT(evq_sat_sub(0, UINT64_MAX), ==, 0);
    CHECK_UINT(evq_sat_sub(UINT64_MAX, 0), ==, UINT64_MAX);
    /* The naked subtraction this replaces: */
    uint64_t naked = (uint64_t)3 - (uint64_t)10;
    CHECK_UINT(naked, >, UINT64_C(1) << 63);
}

EVQ_TEST(sat_add_clamps_to_never)
{
    CHECK_UINT(evq_sat_add(1, 2), ==, 3);
    CHECK_UINT(evq_sat_add(UINT64_MAX - 1, 5), ==, UINT64_MAX);
    CHECK_UINT(evq_sat_add(UINT64_MAX, UINT64_MAX), ==, UINT64_MAX);
}

EVQ_TEST(elapsed_of_future_instant_is_zero)
{
    CHECK_UINT(evq_elapsed_ns(100, 250), ==, 0);
    CHECK_UINT(evq_elapsed_ns(250, 100), ==, 150);
}

EVQ_TEST(timeout_rounds_up)
{
    CHECK_INT(evq_ns_to_timeout_ms(0), ==, 0);
    CHECK_INT(evq_ns_to_timeout_ms(1), ==, 1);
    CHECK_INT(evq_ns_to_timeout_ms(999999), ==, 1);
    CHECK_INT(evq_ns_to_timeout_ms(1000000), ==, 1);
    CHECK_INT(evq_ns_to_timeout_ms(1000001), ==, 2);
    CHECK_INT(evq_ns_to_timeout_ms(UINT64_MAX), ==, INT_MAX);
    CHECK_UINT(evq_ms_to_ns(UINT64_MAX), ==, UINT64_MAX);
    CHECK_UINT(evq_ms_to_ns(7), ==, 7000000);
}

EVQ_TEST(remaining_ms_saturates)
{
    CHECK_INT(evq_remaining_ms(5 * EVQ_NS_PER_MS, 2 * EVQ_NS_PER_MS), ==, 3);
    CHECK_INT(evq_remaining_ms(5 * EVQ_NS_PER_MS, 2 * EVQ_NS_PER_MS + 1), ==, 3);
    CHECK_INT(evq_remaining_ms(5 * EVQ_NS_PER_MS, 9 * EVQ_NS_PER_MS), ==, 0);
}

EVQ_TEST(monotonic_never_goes_back)
{
    uint64_t previous = evq_clock_now_ns();
    for (int i = 0; i < 100000; i++) {
        uint64_t now = evq_clock_now_ns();
        REQUIRE_UINT(now, >=, previous);
        previous = now;
    }
}

EVQ_TEST(system_clock_reads_monotonic_time)
{
    evq_clock clock = evq_clock_system();
    uint64_t a = evq_clock_now_ns();
    uint64_t b = evq_clock_read(&clock);
    uint64_t c = evq_clock_now_ns();
    CHECK_UINT(a, <=, b);
    CHECK_UINT(b, <=, c);
}

EVQ_TEST(fake_clock_moves_only_when_told)
{
    evq_fake_clock fake = {0};
    evq_clock clock = evq_fake_clock_as_clock(&fake);
    CHECK_UINT(evq_clock_read(&clock), ==, 0);
    evq_fake_clock_advance_ms(&fake, 3);
    CHECK_UINT(evq_clock_read(&clock), ==, 3 * EVQ_NS_PER_MS);
    evq_fake_clock_advance_ns(&fake, 5);
    CHECK_UINT(evq_clock_read(&clock), ==, 3 * EVQ_NS_PER_MS + 5);
    evq_fake_clock_set_ns(&fake, UINT64_MAX - 1);
    evq_fake_clock_advance_ns(&fake, 10);
    CHECK_UINT(evq_clock_read(&clock), ==, UINT64_MAX);
}

int main(int argc, char **argv)
{
    static const evq_test_case cases[] = {
        EVQ_CASE(sat_sub_never_wraps),
        EVQ_CASE(sat_add_clamps_to_never),
        EVQ_CASE(elapsed_of_future_instant_is_zero),
        EVQ_CASE(timeout_rounds_up),
        EVQ_CASE(remaining_ms_saturates),
        EVQ_CASE(monotonic_never_goes_back),
        EVQ_CASE(system_clock_reads_monotonic_time),
        EVQ_CASE(fake_clock_moves_only_when_told),
    };
    return evq_test_main(argc, argv, cases, EVQ_COUNT(cases));
}

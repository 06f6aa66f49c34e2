/* Tests of periodic tasks: evq_periodic_due() on its own, then the loop's two
 * tasks, all on a fake clock that moves only when the test says so. */
#include "evq_loop.h"
#include "evq_test.h"

#define MS EVQ_NS_PER_MS

EVQ_TEST(fires_once_per_interval)
{
    uint64_t last = 0, runs = 0;
    /* 10 s in 1 ms steps, a 100 ms task: it runs at 100, 200, ... 10000. */
    for (uint64_t now = 1 * MS; now <= 10000 * MS; now += 1 * MS) {
        uint64_t due = evq_periodic_due(&last, now, 100 * MS);
        if (due > 0) {
            CHECK_UINT(due, ==, 1);
            CHECK_UINT(now % (100 * MS), ==, 0);
            CHECK_UINT(last, ==, now);
            runs++;
        }
    }
    CHECK_UINT(runs, ==, 100);
}

EVQ_TEST(never_twice_for_one_interval)
{
    uint64_t last = 0;
    CHECK_UINT(evq_periodic_due(&last, 150 * MS, 100 * MS), ==, 1);
    CHECK_UINT(last, ==, 100 * MS); /* on the grid, not at 150 */
    /* Many turns in the same interval: none of them runs it again. */
    for (uint64_t now = 150 * MS; now < 200 * MS; now += 7 * MS)
        CHECK_UINT(evq_periodic_due(&last, now, 100 * MS), ==, 0);
    CHECK_UINT(evq_periodic_due(&last, 150 * MS, 100 * MS), ==, 0); /* the same instant again */
    CHECK_UINT(evq_periodic_due(&last, 200 * MS, 100 * MS), ==, 1);
}

EVQ_TEST(late_turns_do_not_drift)
{
    /* Turns every 30 ms, a 100 ms task. On its grid it runs at 120, 210, 300,
     * 420... : once per interval, 60 times in 6 s. Had each run set last =
     * now, every run's lateness would push the next one back for good (120,
     * 240, 360...: every 120 ms, 50 runs). */
    uint64_t last = 0, runs = 0;
    for (uint64_t now = 30 * MS; now <= 6000 * MS; now += 30 * MS) {
        if (evq_periodic_due(&last, now, 100 * MS) > 0) {
            runs++;
            CHECK_UINT(last % (100 * MS), ==, 0);
            CHECK_UINT(now - last, <, 30 * MS);
        }
    }
    CHECK_UINT(runs, ==, 60);
}

EVQ_TEST(catch_up_after_a_stall_runs_once_and_stays_on_the_grid)
{
    uint64_t last = 0;
    /* The loop was stuck for 10.5 intervals: one run, told that ten passed. */
    CHECK_UINT(evq_periodic_due(&last, 1050 * MS, 100 * MS), ==, 10);
    CHECK_UINT(last, ==, 1000 * MS);
    CHECK_UINT(evq_periodic_due(&last, 1050 * MS, 100 * MS), ==, 0); /* no burst */
    CHECK_UINT(evq_periodic_due(&last, 1099 * MS, 100 * MS), ==, 0);
    CHECK_UINT(evq_periodic_due(&last, 1100 * MS, 100 * MS), ==, 1); /* back on the grid */
}

EVQ_TEST(saturating_difference_never_wraps)
{
    /* `last` later than `now`: an instant read after loop_time (another
     * thread, a fresh clock read inside a handler). Not due, and untouched. */
    uint64_t last = 500 * MS, now = 495 * MS;
    CHECK_UINT(evq_periodic_due(&last, now, 100 * MS), ==, 0);
    CHECK_UINT(last, ==, 500 * MS);
    /* What the naked subtraction would have said: due, ~1.8e11 intervals. */
    uint64_t naked = now - last;
    CHECK_UINT(naked / (100 * MS), >, UINT64_C(100000000000));

    /* At the top of the range nothing overflows either. */
    last = UINT64_MAX - 150;
    CHECK_UINT(evq_periodic_due(&last, UINT64_MAX, 100), ==, 1);
    CHECK_UINT(last, ==, UINT64_MAX - 50);
    CHECK_UINT(evq_periodic_due(&last, UINT64_MAX, 100), ==, 0);
    CHECK_UINT(evq_periodic_due(&last, 0, 100), ==, 0);
}

EVQ_TEST(zero_interval_is_never_due)
{
    uint64_t last = 0;
    CHECK_UINT(evq_periodic_due(&last, 1000, 0), ==, 0); /* no division by zero */
    CHECK_UINT(last, ==, 0);
}

/* ---- the loop's two periodic tasks ------------------------------------------------- */

struct fixture {
    evq_fake_clock fake;
    evq_channel inbox;
    atomic_bool stop;
    evq_loop loop;
    uint64_t reports_seen;
    uint64_t last_report_at;
};

static void count_report(void *context, const evq_loop_stats *stats)
{
    struct fixture *f = context;
    f->reports_seen++;
    f->last_report_at = f->fake.now;
    (void)stats;
}

static int fixture_init(struct fixture *f, uint64_t start_ns)
{
    memset(f, 0, sizeof *f);
    evq_fake_clock_set_ns(&f->fake, start_ns);
    int rc = evq_channel_init(&f->inbox, 16);
    if (rc != 0)
        return rc;
    evq_loop_config config = evq_loop_default_config(&f->inbox, &f->stop);
    config.clock = evq_fake_clock_as_clock(&f->fake);
    config.wait = EVQ_LOOP_SPIN; /* never sleeps: turns are driven by the test */
    config.housekeeping_interval_ns = 250 * MS;
    config.report_interval_ns = 1000 * MS;
    config.hooks.on_report = count_report;
    config.hooks.context = f;
    return evq_loop_init(&f->loop, &config);
}

static void fixture_destroy(struct fixture *f)
{
    evq_loop_destroy(&f->loop);
    evq_channel_destroy(&f->inbox);
}

EVQ_TEST(loop_runs_each_task_at_its_own_interval)
{
    struct fixture f;
    REQUIRE_OK(fixture_init(&f, 0));
    /* 3 s of turns every 10 ms: housekeeping 12 times, the report 3 times. */
    for (int i = 0; i < 300; i++) {
        evq_fake_clock_advance_ms(&f.fake, 10);
        evq_loop_turn(&f.loop);
    }
    CHECK_UINT(f.loop.stats.housekeeping_runs, ==, 12);
    CHECK_UINT(f.loop.stats.reports, ==, 3);
    CHECK_UINT(f.reports_seen, ==, 3);
    CHECK_UINT(f.last_report_at, ==, 3000 * MS);
    CHECK_UINT(f.loop.stats.missed_intervals, ==, 0);
    CHECK_UINT(f.loop.last.housekeeping, ==, 3000 * MS);
    fixture_destroy(&f);
}

EVQ_TEST(loop_tasks_first_run_one_interval_after_init)
{
    struct fixture f;
    REQUIRE_OK(fixture_init(&f, 7 * MS));
    evq_fake_clock_advance_ms(&f.fake, 249);
    evq_loop_turn(&f.loop);
    CHECK_UINT(f.loop.stats.housekeeping_runs, ==, 0);
    evq_fake_clock_advance_ms(&f.fake, 1);
    evq_loop_turn(&f.loop);
    CHECK_UINT(f.loop.stats.housekeeping_runs, ==, 1);
    CHECK_UINT(f.loop.stats.reports, ==, 0);
    fixture_destroy(&f);
}

EVQ_TEST(loop_catches_up_after_a_long_stall)
{
    struct fixture f;
    REQUIRE_OK(fixture_init(&f, 0));
    evq_fake_clock_advance_ms(&f.fake, 10);
    evq_loop_turn(&f.loop);
    /* The loop thread was stuck for 5.5 s (a blocking call in a handler). */
    evq_fake_clock_advance_ms(&f.fake, 5500);
    evq_loop_turn(&f.loop);
    CHECK_UINT(f.loop.stats.housekeeping_runs, ==, 1); /* once each, no burst */
    CHECK_UINT(f.loop.stats.reports, ==, 1);
    /* 5510 ms: housekeeping missed 22 - 1 = 21 runs, the report 5 - 1 = 4. */
    CHECK_UINT(f.loop.stats.missed_intervals, ==, 25);
    CHECK_UINT(f.loop.last.housekeeping, ==, 5500 * MS);
    CHECK_UINT(f.loop.last.report, ==, 5000 * MS);
    /* And the next runs are on the original grid. */
    CHECK_UINT(evq_loop_next_deadline(&f.loop), ==, 5750 * MS);
    evq_fake_clock_set_ns(&f.fake, 5749 * MS);
    evq_loop_turn(&f.loop);
    CHECK_UINT(f.loop.stats.housekeeping_runs, ==, 1);
    evq_fake_clock_set_ns(&f.fake, 5750 * MS);
    evq_loop_turn(&f.loop);
    CHECK_UINT(f.loop.stats.housekeeping_runs, ==, 2);
    fixture_destroy(&f);
}

EVQ_TEST(loop_survives_a_clock_that_goes_back)
{
    struct fixture f;
    REQUIRE_OK(fixture_init(&f, 10000 * MS)); /* the tasks' `last`: 10 s */
    /* An instant earlier than `last` (a clock injected wrongly, a bad
     * hardware counter): no task runs, and the loop neither spins nor
     * sleeps for centuries. */
    evq_fake_clock_set_ns(&f.fake, 9000 * MS);
    for (int i = 0; i < 10; i++)
        evq_loop_turn(&f.loop);
    CHECK_UINT(f.loop.stats.housekeeping_runs, ==, 0);
    CHECK_UINT(f.loop.stats.reports, ==, 0);
    CHECK_UINT(evq_loop_next_deadline(&f.loop), ==, 10250 * MS);
    fixture_destroy(&f);
}

int main(int argc, char **argv)
{
    static const evq_test_case cases[] = {
        EVQ_CASE(fires_once_per_interval),
        EVQ_CASE(never_twice_for_one_interval),
        EVQ_CASE(late_turns_do_not_drift),
        EVQ_CASE(catch_up_after_a_stall_runs_once_and_stays_on_the_grid),
        EVQ_CASE(saturating_difference_never_wraps),
        EVQ_CASE(zero_interval_is_never_due),
        EVQ_CASE(loop_runs_each_task_at_its_own_interval),
        EVQ_CASE(loop_tasks_first_run_one_interval_after_init),
        EVQ_CASE(loop_catches_up_after_a_long_stall),
        EVQ_CASE(loop_survives_a_clock_that_goes_back),
    };
    return evq_test_main(argc, argv, cases, EVQ_COUNT(cases));
}

/* Tests of the loop's wait: how long a blocking loop decides to sleep when
 * its next deadline is already behind loop_time. The instants are unsigned,
 * so "deadline - loop_time" wraps to centuries; only a saturating
 * difference says "don't sleep". */
#include "evq_loop.h"
#include "evq_test.h"

#define MS EVQ_NS_PER_MS

struct fixture {
    evq_fake_clock fake;
    evq_channel inbox;
    atomic_bool stop;
    evq_loop loop;
};

/* A blocking loop on a fake clock at 10 s, whose longest sleep is an hour:
 * a wrapped timeout would be cut to that hour, not to something short. */
static int fixture_init(struct fixture *f)
{
    memset(f, 0, sizeof *f);
    evq_fake_clock_set_ns(&f->fake, 10000 * MS);
    int rc = evq_channel_init(&f->inbox, 16);
    if (rc != 0)
        return rc;
    evq_loop_config config = evq_loop_default_config(&f->inbox, &f->stop);
    config.clock = evq_fake_clock_as_clock(&f->fake);
    config.wait = EVQ_LOOP_BLOCK;
    config.max_wait_ns = 3600 * EVQ_NS_PER_S;
    return evq_loop_init(&f->loop, &config);
}

static void fixture_destroy(struct fixture *f)
{
    evq_loop_destroy(&f->loop);
    evq_channel_destroy(&f->inbox);
}

/* A timer due 5 ms before loop_time, still in the heap when the turn is
 * over. evq_loop_add_timer cannot make one (its deadline is loop_time plus
 * a delay), and a turn fires every due timer it finds; but the heap takes
 * absolute deadlines, and one computed from an instant read earlier (a
 * stale clock read, a stamp from another thread) is already behind. The
 * wait must return at once, without sleeping: stats.waits stays 0. A plain
 * subtraction makes that ~584 years, cut to max_wait (an hour here). A wake
 * is left pending first, so that such a wait ends at once and the case
 * fails instead of hanging. */
EVQ_TEST(a_deadline_already_behind_means_no_wait)
{
    struct fixture f;
    REQUIRE_OK(fixture_init(&f));
    evq_loop_turn(&f.loop);
    REQUIRE_UINT(f.loop.loop_time, ==, 10000 * MS);
    REQUIRE_OK(evq_timers_add(&f.loop.timers, f.loop.loop_time - 5 * MS, 1, NULL));
    CHECK_UINT(evq_loop_next_deadline(&f.loop), ==, 9995 * MS);

    evq_channel_wake(&f.inbox);
    evq_loop_wait(&f.loop);
    CHECK_UINT(f.loop.stats.waits, ==, 0);

    /* The next turn, at the same instant, fires the late timer. */
    evq_loop_turn(&f.loop);
    CHECK_UINT(f.loop.stats.timers_fired, ==, 1);
    fixture_destroy(&f);
}

int main(int argc, char **argv)
{
    static const evq_test_case cases[] = {
        EVQ_CASE(a_deadline_already_behind_means_no_wait),
    };
    return evq_test_main(argc, argv, cases, EVQ_COUNT(cases));
}

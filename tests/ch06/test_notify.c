/* Tests of the waker contract between the pool and the loop: a notify comes
 * after its result is published (a loop woken by it finds the result), a
 * result that lands after a collect has looked gets a notify of its own,
 * results behind a first one share its notify, and a collect that fills
 * its array leaves the rest for the next call. Together: no result waits
 * unseen while the loop sleeps. */
#include "resolver_test.h"

#include "evq_test.h"

#include <stdatomic.h>
#include <stdio.h>

/* A notify that holds its worker until the loop has looked: the loop's
 * collect runs while the worker sits just after its notify, the worst
 * moment for a notify that came before the result was published. */
struct handshake {
    test_waker waker;
    evq_mutex lock;
    evq_cond looked;
    unsigned acked;
};

static void notify_then_wait_for_the_loop(void *context)
{
    struct handshake *h = context;
    waker_notify(&h->waker);
    unsigned mine = waker_count(&h->waker);
    uint64_t deadline = evq_clock_now_ns() + evq_ms_to_ns(TEST_WAIT_MS);
    evq_mutex_lock(&h->lock);
    while (h->acked < mine) {
        int left = evq_remaining_ms(deadline, evq_clock_now_ns());
        if (left == 0)
            break;
        evq_cond_timedwait(&h->looked, &h->lock, (uint32_t)left);
    }
    evq_mutex_unlock(&h->lock);
}

static void ack(struct handshake *h, unsigned count)
{
    evq_mutex_lock(&h->lock);
    h->acked = count;
    evq_cond_broadcast(&h->looked);
    evq_mutex_unlock(&h->lock);
}

EVQ_TEST(a_loop_woken_by_a_notify_finds_the_result_there)
{
    pool_fixture f;
    fixture_init(&f, 1, true);
    struct handshake h = {0};
    waker_init(&h.waker);
    evq_mutex_init(&h.lock);
    evq_cond_init(&h.looked);
    f.config.notify = notify_then_wait_for_the_loop;
    f.config.notify_context = &h;
    REQUIRE(fixture_start(&f));
    for (unsigned round = 1; round <= 3; round++) {
        char host[16];
        snprintf(host, sizeof host, "round-%u", round);
        REQUIRE(submit_to_pool(f.r, host, 80, NULL));
        REQUIRE(waker_wait(&h.waker, round - 1, TEST_WAIT_MS)); /* a notify per round */
        /* The worker is still inside its notify: the result must already
         * be on the list, or this loop would go back to sleep without it. */
        resolver_result result;
        size_t n = resolver_collect(f.r, &result, 1);
        CHECK_UINT(n, ==, 1);
        results_free(&result, n);
        ack(&h, round);
    }
    fixture_close(&f);
    evq_cond_destroy(&h.looked);
    evq_mutex_destroy(&h.lock);
    waker_destroy(&h.waker);
}

EVQ_TEST(a_result_landing_after_collect_looked_gets_its_own_notify)
{
    pool_fixture f;
    fixture_init(&f, 2, false);
    REQUIRE(fixture_start(&f));
    int a_owner, b_owner;
    REQUIRE(submit_to_pool(f.r, "a.example", 80, &a_owner));
    REQUIRE(submit_to_pool(f.r, "b.example", 80, &b_owner));
    REQUIRE(fake_wait_blocked(&f.fake, 2));

    resolver_result result;
    fake_release(&f.fake, "a.example");
    REQUIRE(waker_wait(&f.waker, 0, TEST_WAIT_MS));
    REQUIRE_UINT(resolver_collect(f.r, &result, 1), ==, 1); /* the list is empty again */
    CHECK(result.owner == &a_owner);
    results_free(&result, 1);
    CHECK_UINT(resolver_collect(f.r, &result, 1), ==, 0); /* the loop has looked: nothing */

    unsigned seen = waker_count(&f.waker);
    fake_release(&f.fake, "b.example");              /* lands after the look */
    CHECK(waker_wait(&f.waker, seen, TEST_WAIT_MS)); /* so it must wake the loop */
    REQUIRE_UINT(resolver_collect(f.r, &result, 1), ==, 1);
    CHECK(result.owner == &b_owner);
    results_free(&result, 1);
    fixture_close(&f);
}

EVQ_TEST(a_collect_that_fills_its_array_leaves_the_rest_for_the_next_call)
{
    pool_fixture f;
    fixture_init(&f, 1, false);
    REQUIRE(fixture_start(&f));
    char host[16];
    for (int i = 0; i < 3; i++) {
        snprintf(host, sizeof host, "batch-%d", i);
        REQUIRE(submit_to_pool(f.r, host, 80, NULL));
    }
    REQUIRE(fake_wait_blocked(&f.fake, 1));
    fake_open_gate(&f.fake);
    resolver_stats stats;
    resolver_stats_get(f.r, &stats);
    for (int i = 0; i < TEST_WAIT_MS && stats.finished < 3; i++) {
        evq_sleep_ms(1);
        resolver_stats_get(f.r, &stats);
    }
    REQUIRE_UINT(stats.finished, ==, 3);
    /* One batch, one notify: the second and third landed on a list that
     * already had something to collect. */
    CHECK_UINT(stats.notified, ==, 1);
    CHECK_UINT(waker_count(&f.waker), ==, 1);

    resolver_result results[3];
    CHECK_UINT(resolver_collect(f.r, results, 2), ==, 2);     /* full: maybe more */
    CHECK_UINT(resolver_collect(f.r, results + 2, 2), ==, 1); /* fewer than asked: all */
    results_free(results, 3);
    CHECK_UINT(resolver_collect(f.r, results, 2), ==, 0);

    REQUIRE(submit_to_pool(f.r, "after", 80, NULL));
    CHECK(waker_wait(&f.waker, 1, TEST_WAIT_MS)); /* the emptied list notifies again */
    CHECK(collect_one(&f, results));
    results_free(results, 1);
    fixture_close(&f);
}

EVQ_TEST(many_results_in_small_batches_none_waits_unseen)
{
    enum { COUNT = 300 };
    pool_fixture f;
    fixture_init(&f, 4, true);
    REQUIRE(fixture_start(&f));
    static resolver_result results[COUNT];
    size_t got = 0;
    for (unsigned i = 0; i < COUNT; i++) {
        char host[16];
        snprintf(host, sizeof host, "many-%u", i);
        REQUIRE(submit_to_pool(f.r, host, 80, NULL));
        if (i % 10 == 9) /* collect while workers are still finishing */
            got += collect_until(f.r, &f.waker, results + got, (i + 1) - got, i % 20 == 9 ? 1 : 7);
    }
    got += collect_until(f.r, &f.waker, results + got, COUNT - got, 3);
    CHECK_UINT(got, ==, COUNT);
    results_free(results, got);
    resolver_stats stats;
    resolver_stats_get(f.r, &stats);
    CHECK_UINT(stats.delivered, ==, COUNT);
    CHECK_UINT(stats.notified, >=, 1);
    CHECK_UINT(stats.notified, <=, COUNT);
    CHECK_UINT(waker_count(&f.waker), ==, stats.notified);
    fixture_close(&f);
}

int main(int argc, char **argv)
{
    static const evq_test_case cases[] = {
        EVQ_CASE(a_loop_woken_by_a_notify_finds_the_result_there),
        EVQ_CASE(a_result_landing_after_collect_looked_gets_its_own_notify),
        EVQ_CASE(a_collect_that_fills_its_array_leaves_the_rest_for_the_next_call),
        EVQ_CASE(many_results_in_small_batches_none_waits_unseen),
    };
    return evq_test_main(argc, argv, cases, EVQ_COUNT(cases));
}

/* Tests of cancellation and shutdown: a queued lookup is freed at once, a
 * running one is dropped by its worker, a finished one is freed before
 * anyone collects it; none of them is ever delivered. Shutting the pool
 * down leaves queued lookups unrun, and closing it waits for the running
 * ones and frees everything (the asan preset checks the "everything"). */
#include "resolver_test.h"

#include "evq_test.h"

#include <stdatomic.h>
#include <stdio.h>

EVQ_TEST(cancel_while_queued_frees_at_once_and_never_delivers)
{
    pool_fixture f;
    fixture_init(&f, 1, false);
    REQUIRE(fixture_start(&f));
    int running_owner, queued_owner;
    REQUIRE(submit_to_pool(f.r, "running.example", 80, &running_owner));
    REQUIRE(fake_wait_blocked(&f.fake, 1)); /* the only worker is busy */
    resolver_request *queued = submit_to_pool(f.r, "queued.example", 80, &queued_owner);
    REQUIRE(queued);
    resolver_stats stats;
    resolver_stats_get(f.r, &stats);
    REQUIRE_UINT(stats.queued, ==, 1);
    REQUIRE_UINT(stats.live, ==, 2);

    CHECK_OK(resolver_cancel(queued));
    resolver_stats_get(f.r, &stats);
    CHECK_UINT(stats.queued, ==, 0);
    CHECK_UINT(stats.live, ==, 1); /* freed now, not when a worker gets to it */

    fake_open_gate(&f.fake);
    resolver_result result;
    REQUIRE(collect_one(&f, &result));
    CHECK(result.owner == &running_owner);
    results_free(&result, 1);
    CHECK_UINT(resolver_collect(f.r, &result, 1), ==, 0);
    CHECK_UINT(atomic_load(&f.fake.calls), ==, 1); /* the cancelled name was never looked up */
    resolver_stats_get(f.r, &stats);
    CHECK_UINT(stats.live, ==, 0);
    CHECK_UINT(stats.cancelled, ==, 1);
    CHECK_UINT(stats.delivered, ==, 1);
    fixture_close(&f);
}

EVQ_TEST(cancel_while_running_drops_the_result_on_its_worker)
{
    pool_fixture f;
    fixture_init(&f, 1, false);
    REQUIRE(fixture_start(&f));
    int cancelled_owner, next_owner;
    resolver_request *cancelled = submit_to_pool(f.r, "cancelled.example", 80, &cancelled_owner);
    REQUIRE(cancelled);
    REQUIRE(fake_wait_blocked(&f.fake, 1)); /* inside "getaddrinfo" now */

    CHECK_OK(resolver_cancel(cancelled));
    resolver_stats stats;
    resolver_stats_get(f.r, &stats);
    /* Still allocated: its worker holds it. Freeing it here would pull the
     * memory out from under the call (ASan: heap-use-after-free). */
    CHECK_UINT(stats.live, ==, 1);
    CHECK_UINT(stats.running, ==, 1);

    /* The same (only) worker takes the next lookup after it has dropped the
     * cancelled one, so collecting that one proves the drop happened. */
    REQUIRE(submit_to_pool(f.r, "next.example", 80, &next_owner));
    fake_open_gate(&f.fake);
    resolver_result result;
    REQUIRE(collect_one(&f, &result));
    CHECK(result.owner == &next_owner); /* never the cancelled one */
    results_free(&result, 1);
    CHECK_UINT(resolver_collect(f.r, &result, 1), ==, 0);
    resolver_stats_get(f.r, &stats);
    CHECK_UINT(stats.live, ==, 0);
    CHECK_UINT(stats.dropped, ==, 1);
    CHECK_UINT(stats.delivered, ==, 1);
    CHECK_UINT(stats.notified, ==, 1); /* a dropped result wakes nobody */
    CHECK_UINT(waker_count(&f.waker), ==, 1);
    CHECK_UINT(atomic_load(&f.fake.calls), ==, 2);
    fixture_close(&f);
}

EVQ_TEST(cancel_after_finishing_before_collect_frees_and_never_delivers)
{
    pool_fixture f;
    fixture_init(&f, 1, true);
    REQUIRE(fixture_start(&f));
    resolver_request *request = submit_to_pool(f.r, "done.example", 80, NULL);
    REQUIRE(request);
    REQUIRE(waker_wait(&f.waker, 0, TEST_WAIT_MS)); /* finished: listed, not collected */
    CHECK_OK(resolver_cancel(request));
    resolver_result result;
    CHECK_UINT(resolver_collect(f.r, &result, 1), ==, 0);
    resolver_stats stats;
    resolver_stats_get(f.r, &stats);
    CHECK_UINT(stats.live, ==, 0);
    CHECK_UINT(stats.finished, ==, 0);
    CHECK_UINT(stats.delivered, ==, 0);
    fixture_close(&f);
}

/* Submit `count` lookups named prefix-0, prefix-1, ... to a pool whose gate
 * is closed, and wait until `running` of them are held inside the fake. */
static bool fill(pool_fixture *f, const char *prefix, int count, unsigned running,
                 resolver_request **requests)
{
    for (int i = 0; i < count; i++) {
        char host[32];
        snprintf(host, sizeof host, "%s-%d", prefix, i);
        if (!(requests[i] = submit_to_pool(f->r, host, 80, NULL)))
            return false;
    }
    return fake_wait_blocked(&f->fake, running);
}

EVQ_TEST(shutdown_leaves_queued_lookups_unrun_and_close_frees_them)
{
    pool_fixture f;
    fixture_init(&f, 2, false);
    REQUIRE(fixture_start(&f));
    resolver_request *requests[6];
    REQUIRE(fill(&f, "shut", 6, 2, requests)); /* two running, four queued */

    resolver_shutdown(f.r);
    resolver_result answer;
    resolver_request *late;
    CHECK_ERR(resolver_submit(f.r, "late", 80, NULL, &answer, &late), EVQ_ECLOSED);
    CHECK_OK(resolver_cancel(requests[5])); /* handles stay valid until close */
    resolver_stats stats;
    resolver_stats_get(f.r, &stats);
    CHECK_UINT(stats.queued, ==, 3);
    fake_open_gate(&f.fake);
    resolver_close(f.r); /* joins: the two running calls return, and are dropped */
    f.r = NULL;
    CHECK_UINT(atomic_load(&f.fake.calls), ==, 2); /* no worker took a queued one */
    CHECK_UINT(atomic_load(&f.fake.in_flight), ==, 0);
    CHECK_UINT(waker_count(&f.waker), ==, 0); /* nothing delivered, nobody woken */
    fixture_close(&f);
}

/* The owner of a lookup still holds its handle after a shutdown - a stream
 * closed after evq_poll_shutdown cancels its lookup - whether the lookup
 * was queued, running, or finished running since: every handle stays
 * valid until it is cancelled or the pool is closed. (A worker that freed
 * its request on the way out left the owner a dangling handle.) */
EVQ_TEST(handles_stay_valid_after_shutdown_until_cancelled)
{
    pool_fixture f;
    fixture_init(&f, 1, false);
    REQUIRE(fixture_start(&f));
    resolver_request *running = submit_to_pool(f.r, "running.example", 80, NULL);
    REQUIRE(running);
    REQUIRE(fake_wait_blocked(&f.fake, 1));
    resolver_request *queued = submit_to_pool(f.r, "queued.example", 80, NULL);
    REQUIRE(queued);
    resolver_shutdown(f.r);
    fake_open_gate(&f.fake);
    resolver_stats stats;
    resolver_stats_get(f.r, &stats);
    for (int i = 0; i < TEST_WAIT_MS && stats.running > 0; i++) {
        evq_sleep_ms(1);
        resolver_stats_get(f.r, &stats);
    }
    REQUIRE_UINT(stats.running, ==, 0); /* its worker has returned, and left */
    CHECK_UINT(stats.dropped, ==, 1);    /* never delivered... */
    CHECK_UINT(stats.live, ==, 2);       /* ...but still there for its owner */
    resolver_result result;
    CHECK_UINT(resolver_collect(f.r, &result, 1), ==, 0);
    CHECK_OK(resolver_cancel(running)); /* ASan: a use after free, were it freed */
    CHECK_OK(resolver_cancel(queued));
    resolver_stats_get(f.r, &stats);
    CHECK_UINT(stats.live, ==, 0);
    CHECK_UINT(waker_count(&f.waker), ==, 0);
    fixture_close(&f);
}

EVQ_TEST(close_with_lookups_queued_and_running_waits_for_the_running_ones)
{
    pool_fixture f;
    fixture_init(&f, 4, false);
    REQUIRE(fixture_start(&f));
    resolver_request *requests[8];
    REQUIRE(fill(&f, "close", 8, 4, requests)); /* four running, four queued */

    gate_opener opener;
    REQUIRE_OK(gate_opener_start(&opener, &f.fake));
    resolver_close(f.r); /* returns only once every worker has left the fake */
    f.r = NULL;
    CHECK_UINT(atomic_load(&f.fake.in_flight), ==, 0);
    CHECK_UINT(atomic_load(&f.fake.calls), >=, 4);
    CHECK_UINT(atomic_load(&f.fake.calls), <=, 8);
    gate_opener_join(&opener);
    fixture_close(&f);
}

int main(int argc, char **argv)
{
    static const evq_test_case cases[] = {
        EVQ_CASE(cancel_while_queued_frees_at_once_and_never_delivers),
        EVQ_CASE(cancel_while_running_drops_the_result_on_its_worker),
        EVQ_CASE(cancel_after_finishing_before_collect_frees_and_never_delivers),
        EVQ_CASE(shutdown_leaves_queued_lookups_unrun_and_close_frees_them),
        EVQ_CASE(handles_stay_valid_after_shutdown_until_cancelled),
        EVQ_CASE(close_with_lookups_queued_and_running_waits_for_the_running_ones),
    };
    return evq_test_main(argc, argv, cases, EVQ_COUNT(cases));
}

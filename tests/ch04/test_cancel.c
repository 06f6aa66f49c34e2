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
    fake_resolver fake;
    fake_init(&fake, false);
    test_waker waker;
    waker_init(&waker);
    resolver_config config = test_config(1, &fake, &waker);
    resolver *r;
    REQUIRE_OK(resolver_open(&config, &r));
    int running_owner, queued_owner;
    resolver_result answer, result;
    resolver_request *running, *queued;
    REQUIRE_ERR(resolver_submit(r, "running.example", 80, &running_owner, &answer, &running),
                EVQ_EINPROGRESS);
    REQUIRE(fake_wait_blocked(&fake, 1)); /* the only worker is busy */
    REQUIRE_ERR(resolver_submit(r, "queued.example", 80, &queued_owner, &answer, &queued),
                EVQ_EINPROGRESS);
    resolver_stats stats;
    resolver_stats_get(r, &stats);
    REQUIRE_UINT(stats.queued, ==, 1);
    REQUIRE_UINT(stats.live, ==, 2);

    CHECK_OK(resolver_cancel(queued));
    resolver_stats_get(r, &stats);
    CHECK_UINT(stats.queued, ==, 0);
    CHECK_UINT(stats.live, ==, 1); /* freed now, not when a worker gets to it */

    fake_open_gate(&fake);
    REQUIRE_UINT(collect_until(r, &waker, &result, 1, 1), ==, 1);
    CHECK(result.owner == &running_owner);
    results_free(&result, 1);
    CHECK_UINT(resolver_collect(r, &result, 1), ==, 0);
    CHECK_UINT(atomic_load(&fake.calls), ==, 1); /* the cancelled name was never looked up */
    resolver_stats_get(r, &stats);
    CHECK_UINT(stats.live, ==, 0);
    CHECK_UINT(stats.cancelled, ==, 1);
    CHECK_UINT(stats.delivered, ==, 1);
    resolver_close(r);
    waker_destroy(&waker);
    fake_destroy(&fake);
}

EVQ_TEST(cancel_while_running_drops_the_result_on_its_worker)
{
    fake_resolver fake;
    fake_init(&fake, false);
    test_waker waker;
    waker_init(&waker);
    resolver_config config = test_config(1, &fake, &waker);
    resolver *r;
    REQUIRE_OK(resolver_open(&config, &r));
    int cancelled_owner, next_owner;
    resolver_result answer, result;
    resolver_request *cancelled, *next;
    REQUIRE_ERR(resolver_submit(r, "cancelled.example", 80, &cancelled_owner, &answer, &cancelled),
                EVQ_EINPROGRESS);
    REQUIRE(fake_wait_blocked(&fake, 1)); /* inside "getaddrinfo" now */

    CHECK_OK(resolver_cancel(cancelled));
    resolver_stats stats;
    resolver_stats_get(r, &stats);
    /* Still allocated: its worker holds it. Freeing it here would pull the
     * memory out from under the call (ASan: heap-use-after-free). */
    CHECK_UINT(stats.live, ==, 1);
    CHECK_UINT(stats.running, ==, 1);

    /* The same (only) worker takes the next lookup after it has dropped the
     * cancelled one, so collecting that one proves the drop happened. */
    REQUIRE_ERR(resolver_submit(r, "next.example", 80, &next_owner, &answer, &next),
                EVQ_EINPROGRESS);
    fake_open_gate(&fake);
    REQUIRE_UINT(collect_until(r, &waker, &result, 1, 1), ==, 1);
    CHECK(result.owner == &next_owner); /* never the cancelled one */
    results_free(&result, 1);
    CHECK_UINT(resolver_collect(r, &result, 1), ==, 0);
    resolver_stats_get(r, &stats);
    CHECK_UINT(stats.live, ==, 0);
    CHECK_UINT(stats.dropped, ==, 1);
    CHECK_UINT(stats.delivered, ==, 1);
    CHECK_UINT(stats.notified, ==, 1); /* a dropped result wakes nobody */
    CHECK_UINT(waker_count(&waker), ==, 1);
    CHECK_UINT(atomic_load(&fake.calls), ==, 2);
    resolver_close(r);
    waker_destroy(&waker);
    fake_destroy(&fake);
}

EVQ_TEST(cancel_after_finishing_before_collect_frees_and_never_delivers)
{
    fake_resolver fake;
    fake_init(&fake, true);
    test_waker waker;
    waker_init(&waker);
    resolver_config config = test_config(1, &fake, &waker);
    resolver *r;
    REQUIRE_OK(resolver_open(&config, &r));
    resolver_result answer, result;
    resolver_request *request;
    REQUIRE_ERR(resolver_submit(r, "done.example", 80, NULL, &answer, &request), EVQ_EINPROGRESS);
    REQUIRE(waker_wait(&waker, 0, TEST_WAIT_MS)); /* finished: on the list, not collected */
    CHECK_OK(resolver_cancel(request));
    CHECK_UINT(resolver_collect(r, &result, 1), ==, 0);
    resolver_stats stats;
    resolver_stats_get(r, &stats);
    CHECK_UINT(stats.live, ==, 0);
    CHECK_UINT(stats.finished, ==, 0);
    CHECK_UINT(stats.delivered, ==, 0);
    resolver_close(r);
    waker_destroy(&waker);
    fake_destroy(&fake);
}

EVQ_TEST(shutdown_leaves_queued_lookups_unrun_and_close_frees_them)
{
    fake_resolver fake;
    fake_init(&fake, false);
    test_waker waker;
    waker_init(&waker);
    resolver_config config = test_config(2, &fake, &waker);
    resolver *r;
    REQUIRE_OK(resolver_open(&config, &r));
    resolver_result answer, result;
    resolver_request *requests[6];
    char host[16];
    for (int i = 0; i < 6; i++) {
        snprintf(host, sizeof host, "shut-%d", i);
        REQUIRE_ERR(resolver_submit(r, host, 80, NULL, &answer, &requests[i]), EVQ_EINPROGRESS);
    }
    REQUIRE(fake_wait_blocked(&fake, 2)); /* two running, four queued */

    resolver_shutdown(r);
    CHECK_ERR(resolver_submit(r, "late", 80, NULL, &answer, &requests[0]), EVQ_ECLOSED);
    CHECK_OK(resolver_cancel(requests[5])); /* handles stay valid until close */
    resolver_stats stats;
    resolver_stats_get(r, &stats);
    CHECK_UINT(stats.queued, ==, 3);
    fake_open_gate(&fake);
    resolver_close(r); /* joins: the two running calls return, and are dropped */
    CHECK_UINT(atomic_load(&fake.calls), ==, 2); /* no worker took a queued one */
    CHECK_UINT(atomic_load(&fake.in_flight), ==, 0);
    CHECK_UINT(waker_count(&waker), ==, 0); /* nothing delivered, nobody woken */
    (void)result;
    waker_destroy(&waker);
    fake_destroy(&fake);
}

struct releaser {
    fake_resolver *fake;
    atomic_bool closing;
};

static void release_once_closing(void *arg)
{
    struct releaser *releaser = arg;
    for (int i = 0; i < TEST_WAIT_MS && !atomic_load(&releaser->closing); i++)
        evq_sleep_ms(1);
    evq_sleep_ms(20); /* let resolver_close get to its joins (not asserted: either way holds) */
    fake_open_gate(releaser->fake);
}

EVQ_TEST(close_with_lookups_queued_and_running_waits_for_the_running_ones)
{
    fake_resolver fake;
    fake_init(&fake, false);
    test_waker waker;
    waker_init(&waker);
    resolver_config config = test_config(4, &fake, &waker);
    resolver *r;
    REQUIRE_OK(resolver_open(&config, &r));
    resolver_result answer;
    resolver_request *request;
    char host[16];
    for (int i = 0; i < 8; i++) {
        snprintf(host, sizeof host, "close-%d", i);
        REQUIRE_ERR(resolver_submit(r, host, 80, NULL, &answer, &request), EVQ_EINPROGRESS);
    }
    REQUIRE(fake_wait_blocked(&fake, 4)); /* four running, four queued */

    struct releaser releaser = {.fake = &fake};
    atomic_init(&releaser.closing, false);
    evq_thread thread;
    REQUIRE_OK(evq_thread_start(&thread, release_once_closing, &releaser));
    atomic_store(&releaser.closing, true);
    resolver_close(r); /* returns only once every worker has left the fake */
    CHECK_UINT(atomic_load(&fake.in_flight), ==, 0);
    CHECK_UINT(atomic_load(&fake.calls), >=, 4);
    CHECK_UINT(atomic_load(&fake.calls), <=, 8);
    evq_thread_join(&thread);
    CHECK_UINT(atomic_load(&fake.gate_timeouts), ==, 0);
    waker_destroy(&waker);
    fake_destroy(&fake);
}

EVQ_TEST(close_before_any_lookup_starts_no_thread)
{
    fake_resolver fake;
    fake_init(&fake, true);
    resolver_config config = test_config(4, &fake, NULL);
    resolver *r;
    REQUIRE_OK(resolver_open(&config, &r));
    resolver_close(r);
    CHECK_UINT(atomic_load(&fake.calls), ==, 0);
    fake_destroy(&fake);
}

int main(int argc, char **argv)
{
    static const evq_test_case cases[] = {
        EVQ_CASE(cancel_while_queued_frees_at_once_and_never_delivers),
        EVQ_CASE(cancel_while_running_drops_the_result_on_its_worker),
        EVQ_CASE(cancel_after_finishing_before_collect_frees_and_never_delivers),
        EVQ_CASE(shutdown_leaves_queued_lookups_unrun_and_close_frees_them),
        EVQ_CASE(close_with_lookups_queued_and_running_waits_for_the_running_ones),
        EVQ_CASE(close_before_any_lookup_starts_no_thread),
    };
    return evq_test_main(argc, argv, cases, EVQ_COUNT(cases));
}

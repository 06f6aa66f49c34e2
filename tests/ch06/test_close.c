/* test_close.c - chapter 4: closing a stream that is still resolving or
 * connecting, and closing the queue with lookups queued and running. A
 * queued lookup is cancelled and never run; a running one finishes on its
 * worker, which drops its answer; a connect in flight is cancelled (close
 * on POSIX, CancelIoEx on IOCP). No event ever names a closed stream, and
 * nothing leaks or is used after it is freed (the asan preset checks both).
 */
#include "connect_test.h"

#include "evq_test.h"

#include <stdatomic.h>
#include <stdio.h>

/* Wait, a bounded number of times, until the queue has collected or
 * dropped `settled` answers; every event must be for `expected` (or there
 * must be none, with expected == NULL). Returns the events seen. */
static size_t settle(evq_poll *poll, uint64_t settled, const evq_token *expected)
{
    size_t seen = 0;
    for (int round = 0; round < 200; round++) {
        evq_event events[4];
        size_t n = 0;
        CHECK_OK(evq_poll_wait(poll, events, 4, 20, &n));
        for (size_t i = 0; i < n; i++) {
            CHECK(expected != NULL);
            if (expected)
                CHECK_UINT(events[i].token, ==, *expected);
        }
        seen += n;
        evq_lookup_stats stats = lookup_stats(poll);
        if (stats.delivered + stats.dropped >= settled && stats.live == 0 && (!expected || seen))
            break;
    }
    return seen;
}

EVQ_TEST(closing_while_queued_cancels_the_lookup_before_it_runs)
{
    fake_net net;
    fake_net_init(&net, false);
    evq_poll *poll = fake_net_open(&net, 1, 16);
    REQUIRE(poll);
    evq_tcp *running = NULL, *queued = NULL;
    REQUIRE_OK(evq_tcp_connect(poll, "noname.running", 80, &running));
    REQUIRE(fake_wait_blocked(&net.fake, 1)); /* the one worker is busy with it */
    REQUIRE_OK(evq_tcp_connect(poll, "queued.example", 80, &queued));
    REQUIRE_OK(evq_register(poll, running, 1, EVQ_READABLE));
    REQUIRE_OK(evq_register(poll, queued, 2, EVQ_READABLE));
    CHECK_UINT(lookup_stats(poll).live, ==, 2);

    evq_tcp_close(queued);
    evq_lookup_stats stats = lookup_stats(poll);
    CHECK_UINT(stats.cancelled, ==, 1);
    CHECK_UINT(stats.live, ==, 1); /* freed now, not when a worker gets to it */
    fake_open_gate(&net.fake);
    const evq_token first = 1;
    CHECK_UINT(settle(poll, 1, &first), ==, 1); /* the running one's failure, nothing else */
    CHECK_UINT(atomic_load(&net.fake.calls), ==, 1); /* the queued name was never looked up */
    evq_tcp_close(running);
    fake_net_close(&net);
}

EVQ_TEST(closing_while_resolving_drops_the_answer_on_its_worker)
{
    fake_net net;
    fake_net_init(&net, false);
    evq_poll *poll = fake_net_open(&net, 2, 16);
    REQUIRE(poll);
    evq_tcp *stream = NULL;
    REQUIRE_OK(evq_tcp_connect(poll, "resolving.example", 80, &stream));
    REQUIRE_OK(evq_register(poll, stream, 3, EVQ_READABLE | EVQ_WRITABLE));
    REQUIRE(fake_wait_blocked(&net.fake, 1)); /* inside "getaddrinfo" */
    evq_tcp_close(stream);
    /* Its request is its worker's until the call returns: still held. */
    CHECK_UINT(lookup_stats(poll).live, ==, 1);
    fake_open_gate(&net.fake);
    CHECK_UINT(settle(poll, 1, NULL), ==, 0); /* no event for the closed stream */
    evq_lookup_stats stats = lookup_stats(poll);
    CHECK_UINT(stats.dropped, ==, 1);
    CHECK_UINT(stats.delivered, ==, 0);
    CHECK_UINT(stats.live, ==, 0);
    fake_net_close(&net);
}

EVQ_TEST(closing_while_connecting_cancels_the_connect)
{
    ch06_stalled stall;
    REQUIRE_OK(ch06_stall_open(&stall));
    evq_poll *poll;
    REQUIRE_OK(evq_poll_open(&poll));
    evq_tcp *stream = NULL, *other = NULL;
    evq_socket peer;
    REQUIRE_OK(ch06_pair(poll, &other, &peer)); /* something else that does get events */
    REQUIRE_OK(evq_tcp_connect(poll, "127.0.0.1", stall.port, &stream));
    REQUIRE_OK(evq_register(poll, stream, 4, EVQ_READABLE | EVQ_WRITABLE));
    size_t n = 0;
    REQUIRE_OK(evq_tcp_write(stream, "never sent", 10, &n));
    evq_event event;
    CHECK_OK(evq_poll_wait(poll, &event, 1, 20, &n));
    CHECK_UINT(n, ==, 0);
    evq_tcp_close(stream); /* IOCP: CancelIoEx, and retired until it comes back */
    REQUIRE_OK(evq_register(poll, other, 5, EVQ_READABLE));
    REQUIRE_OK(evq_net_send_all(peer, "x", 1));
    for (int round = 0; round < 100; round++) {
        CHECK_OK(evq_poll_wait(poll, &event, 1, 20, &n));
        if (n == 1)
            CHECK_UINT(event.token, ==, 5); /* never 4 */
        if (n == 1 && evq_poll_retired_streams(poll) == 0)
            break;
        if (n == 1)
            REQUIRE_OK(evq_reregister(poll, other, 5, EVQ_READABLE));
    }
    CHECK_UINT(evq_poll_retired_streams(poll), ==, 0); /* the cancelled ConnectEx came back */
    evq_tcp_close(other);
    evq_socket_close(peer);
    evq_poll_close(poll);
    ch06_stall_close(&stall);
}

EVQ_TEST(closing_the_queue_with_lookups_queued_and_running_waits_for_its_threads)
{
    enum { STREAMS = 6 };
    fake_net net;
    fake_net_init(&net, false);
    evq_poll *poll = fake_net_open(&net, 2, 16);
    REQUIRE(poll);
    evq_tcp *streams[STREAMS];
    for (int i = 0; i < STREAMS; i++) {
        char host[32];
        snprintf(host, sizeof host, "closing-%d.example", i);
        REQUIRE_OK(evq_tcp_connect(poll, host, 80, &streams[i]));
        REQUIRE_OK(evq_register(poll, streams[i], (evq_token)i, EVQ_READABLE));
    }
    REQUIRE(fake_wait_blocked(&net.fake, 2)); /* two running, four queued */
    gate_opener opener;
    REQUIRE_OK(gate_opener_start(&opener, &net.fake));
    evq_poll_close(poll); /* returns once both workers have left the fake */
    net.poll = NULL;
    CHECK_UINT(atomic_load(&net.fake.in_flight), ==, 0);
    CHECK_UINT(atomic_load(&net.fake.calls), ==, 2); /* the queued ones never ran */
    /* The streams outlive their queue, and are closed as chapter 3's are. */
    char byte;
    size_t n = 0;
    CHECK_ERR(evq_tcp_read(streams[0], &byte, 1, &n), EVQ_ECLOSED);
    CHECK_ERR(evq_tcp_set_deadline(streams[0], 10), EVQ_ECLOSED);
    for (int i = 0; i < STREAMS; i++)
        evq_tcp_close(streams[i]);
    gate_opener_join(&opener);
    fake_net_close(&net);
}

EVQ_TEST(a_shut_down_queue_delivers_no_answer)
{
    fake_net net;
    fake_net_init(&net, false);
    evq_poll *poll = fake_net_open(&net, 1, 16);
    REQUIRE(poll);
    evq_tcp *stream = NULL;
    REQUIRE_OK(evq_tcp_connect(poll, "late.example", 80, &stream));
    REQUIRE(fake_wait_blocked(&net.fake, 1));
    REQUIRE_OK(evq_poll_shutdown(poll));
    evq_tcp *refused = (evq_tcp *)&net;
    CHECK_ERR(evq_tcp_connect(poll, "later.example", 80, &refused), EVQ_ECLOSED);
    CHECK(refused == NULL);
    fake_open_gate(&net.fake);
    evq_event event;
    size_t n = 0;
    CHECK_ERR(evq_poll_wait(poll, &event, 1, 100, &n), EVQ_ECLOSED);
    /* The worker has returned with the answer, which is dropped... */
    uint64_t give_up = evq_clock_now_ns() + evq_ms_to_ns(TEST_WAIT_MS);
    while (lookup_stats(poll).dropped == 0 && evq_clock_now_ns() < give_up)
        evq_sleep_ms(1);
    CHECK_UINT(lookup_stats(poll).dropped, ==, 1);
    /* ...and the stream, closed now, cancels a lookup that is still there. */
    evq_tcp_close(stream);
    fake_net_close(&net); /* the worker's answer is dropped, and freed */
}

int main(int argc, char **argv)
{
    static const evq_test_case cases[] = {
        EVQ_CASE(closing_while_queued_cancels_the_lookup_before_it_runs),
        EVQ_CASE(closing_while_resolving_drops_the_answer_on_its_worker),
        EVQ_CASE(closing_while_connecting_cancels_the_connect),
        EVQ_CASE(closing_the_queue_with_lookups_queued_and_running_waits_for_its_threads),
        EVQ_CASE(a_shut_down_queue_delivers_no_answer),
    };
    return evq_test_main(argc, argv, cases, EVQ_COUNT(cases));
}

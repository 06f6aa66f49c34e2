/* test_connect.c - chapter 4: evq_tcp_connect never blocks. A name goes to
 * the resolver's threads (here a fake the test holds at a gate), a numeric
 * host is parsed inline, each address is tried in turn, and the outcome -
 * connected, refused, unanswered - is an event and a code, never a wait.
 * The resolver's wake-up never ends the caller's wait with *n == 0.
 */
#include "connect_test.h"

#include "evq_test.h"

#include <stdatomic.h>
#include <stdio.h>

/* ---- the outcome is an event ---- */

EVQ_TEST(a_refused_connect_is_an_error_event_every_time_it_is_armed)
{
    evq_poll *poll;
    REQUIRE_OK(evq_poll_open(&poll));
    evq_socket refuser;
    uint16_t port;
    REQUIRE_OK(evq_net_refusing_loopback(&refuser, &port));
    evq_tcp *stream = NULL;
    REQUIRE_OK(evq_tcp_connect(poll, "127.0.0.1", port, &stream));
    REQUIRE_OK(evq_register(poll, stream, 7, EVQ_READABLE));
    evq_event event;
    REQUIRE(ch05_wait_one(poll, &event, 5000));
    CHECK_UINT(event.token, ==, 7);
    CHECK_UINT(event.ready, ==, EVQ_READABLE | EVQ_ERR | EVQ_HUP);
    char buf[4];
    size_t n = 0;
    CHECK_ERR(evq_tcp_read(stream, buf, sizeof buf, &n), EVQ_ECONNREFUSED);
    CHECK_ERR(evq_tcp_write(stream, "x", 1, &n), EVQ_ECONNREFUSED);
    CHECK_ERR(evq_tcp_shutdown(stream), EVQ_ECONNREFUSED);
    /* A failed connect stays failed: armed again, for anything, it is
     * reported again, as a socket at its end is readable every time. */
    REQUIRE_OK(evq_reregister(poll, stream, 8, EVQ_WRITABLE));
    REQUIRE(ch05_wait_one(poll, &event, 5000));
    CHECK_UINT(event.token, ==, 8);
    CHECK_UINT(event.ready, ==, EVQ_WRITABLE | EVQ_ERR | EVQ_HUP);
    evq_tcp_close(stream);
    evq_socket_close(refuser);
    evq_poll_close(poll);
}

EVQ_TEST(a_connect_returns_before_the_connection_is_made)
{
    ch05_stalled stall;
    REQUIRE_OK(ch05_stall_open(&stall));
    evq_poll *poll;
    REQUIRE_OK(evq_poll_open(&poll));
    /* Nobody answers: a blocking connect would sit here for minutes (the
     * test's own timeout would end it). */
    evq_tcp *stream = NULL;
    REQUIRE_OK(evq_tcp_connect(poll, "127.0.0.1", stall.port, &stream));
    char buf[4];
    size_t n = 0;
    CHECK_ERR(evq_tcp_read(stream, buf, sizeof buf, &n), EVQ_EWOULDBLOCK);
    CHECK_OK(evq_tcp_write(stream, "queued", 6, &n)); /* taken: sent once connected */
    CHECK_UINT(n, ==, 6);
    CHECK_UINT(evq_tcp_queued(stream), ==, 6);
    REQUIRE_OK(evq_register(poll, stream, 1, EVQ_READABLE | EVQ_WRITABLE));
    /* Still connecting: nothing to report. (Had the backlog not stalled
     * it, WRITABLE would come here.) */
    evq_event event;
    CHECK_OK(evq_poll_wait(poll, &event, 1, 100, &n));
    CHECK_UINT(n, ==, 0);
    evq_tcp_close(stream);
    evq_poll_close(poll);
    ch05_stall_close(&stall);
}

EVQ_TEST(an_unanswered_connect_ends_at_its_deadline)
{
    ch05_stalled stall;
    REQUIRE_OK(ch05_stall_open(&stall));
    evq_poll *poll;
    REQUIRE_OK(evq_poll_open(&poll));
    ch05_time time;
    ch05_time_install(poll, &time);
    evq_tcp *stream = NULL;
    REQUIRE_OK(evq_tcp_connect(poll, "127.0.0.1", stall.port, &stream));
    REQUIRE_OK(evq_tcp_set_deadline(stream, 1500));
    REQUIRE_OK(evq_register(poll, stream, 3, EVQ_WRITABLE));
    evq_event event;
    size_t n = 0;
    REQUIRE_OK(evq_poll_wait(poll, &event, 1, -1, &n));
    REQUIRE_UINT(n, ==, 1);
    CHECK_UINT(event.token, ==, 3);
    CHECK_UINT(event.ready, ==, EVQ_TIMEOUT | EVQ_ERR | EVQ_HUP | EVQ_WRITABLE);
    CHECK_INT(time.asked[0], ==, 1500); /* the kernel slept until the deadline, no longer */
    char buf[4];
    CHECK_ERR(evq_tcp_read(stream, buf, sizeof buf, &n), EVQ_ETIMEDOUT);
    CHECK_ERR(evq_tcp_write(stream, "x", 1, &n), EVQ_ETIMEDOUT);
    /* Told once: armed again, the failure is reported, not the timeout. */
    REQUIRE_OK(evq_reregister(poll, stream, 4, EVQ_READABLE));
    REQUIRE_OK(evq_poll_wait(poll, &event, 1, 0, &n));
    REQUIRE_UINT(n, ==, 1);
    CHECK_UINT(event.ready, ==, EVQ_ERR | EVQ_HUP | EVQ_READABLE);
    evq_tcp_close(stream);
    CHECK_UINT(evq_poll_retired_streams(poll), <=, 1); /* IOCP: the cancelled ConnectEx */
    evq_poll_close(poll);
    ch05_stall_close(&stall);
}

/* ---- each address in turn ---- */

EVQ_TEST(several_addresses_the_first_refusing_the_second_accepting)
{
    fake_net net;
    fake_net_init(&net, true);
    REQUIRE_OK(fake_net_refusing(&net));
    REQUIRE_OK(fake_net_listen(&net, 4));
    evq_poll *poll = fake_net_open(&net, 2, 16);
    REQUIRE(poll);

    evq_tcp *stream = NULL;
    evq_socket peer;
    REQUIRE_OK(evq_tcp_connect(poll, "two.example", 80, &stream));
    REQUIRE_OK(evq_register(poll, stream, 9, EVQ_WRITABLE));
    evq_event event;
    REQUIRE(ch05_wait_one(poll, &event, 5000));
    CHECK_UINT(event.token, ==, 9);
    REQUIRE_UINT(event.ready, ==, EVQ_WRITABLE); /* connected: the refusal was not the end */
    REQUIRE_OK(evq_net_accept(net.listener, &peer));
    size_t n = 0;
    CHECK_OK(evq_tcp_write(stream, "ping", 4, &n));
    char buf[8];
    size_t got = 0;
    CHECK_OK(evq_net_recv(peer, buf, sizeof buf, &got));
    CHECK_MEM(buf, "ping", 4);
    evq_lookup_stats stats = lookup_stats(poll);
    CHECK_UINT(stats.submitted, ==, 1);
    CHECK_UINT(stats.delivered, ==, 1);
    evq_tcp_close(stream);
    evq_socket_close(peer);
    fake_net_close(&net);
}

/* The outcome of a connect by name to every address of net's answer, in
 * that order; the net is closed. */
static int connect_to_all(fake_net *net)
{
    evq_poll *poll = fake_net_open(net, 1, 16);
    evq_tcp *stream = NULL;
    int rc = poll ? evq_tcp_connect(poll, "all.example", 80, &stream) : EVQ_EIO;
    if (rc == 0)
        rc = ch05_wait_connected(poll, stream);
    evq_tcp_close(stream);
    fake_net_close(net);
    return rc;
}

EVQ_TEST(when_every_address_fails_the_last_ones_error_is_the_streams)
{
    /* A multicast address: no TCP connection can go there, and the system
     * says so at once, with an error of its own (Linux: ENETUNREACH). */
    fake_net refusing_last, unreachable_last;
    fake_net_init(&refusing_last, true);
    fake_net_init(&unreachable_last, true);
    REQUIRE_OK(fake_net_add(&refusing_last, 0xe0000001, 80)); /* 224.0.0.1 */
    REQUIRE_OK(fake_net_refusing(&refusing_last));
    REQUIRE_OK(fake_net_refusing(&unreachable_last));
    REQUIRE_OK(fake_net_add(&unreachable_last, 0xe0000001, 80));

    CHECK_ERR(connect_to_all(&refusing_last), EVQ_ECONNREFUSED);
    int rc = connect_to_all(&unreachable_last);
    evq_test_note("a connect to 224.0.0.1: %s", evq_error_name(rc));
    CHECK_INT(rc, <, 0);
    CHECK_INT(rc, !=, EVQ_ECONNREFUSED); /* not the first address's */
}

EVQ_TEST(a_failed_lookup_is_an_error_event_with_its_code)
{
    fake_net net;
    fake_net_init(&net, true);
    evq_poll *poll = fake_net_open(&net, 1, 16);
    REQUIRE(poll);
    evq_tcp *stream = NULL;
    REQUIRE_OK(evq_tcp_connect(poll, "noname.example", 80, &stream));
    CHECK_ERR(ch05_wait_connected(poll, stream), EVQ_EAI_NONAME);
    evq_tcp_close(stream);
    fake_net_close(&net);
}

/* ---- inline, or through the pool ---- */

EVQ_TEST(a_numeric_host_is_parsed_inline_and_never_reaches_the_pool)
{
    evq_poll *poll;
    REQUIRE_OK(evq_poll_open(&poll));
    evq_tcp *stream = NULL;
    evq_socket peer;
    REQUIRE_OK(ch05_pair(poll, &stream, &peer));
    evq_lookup_stats stats = lookup_stats(poll);
    CHECK_UINT(stats.numeric, ==, 1);
    CHECK_UINT(stats.submitted, ==, 0);
    CHECK_UINT(stats.workers, ==, 0); /* no thread was ever started */
    evq_tcp_close(stream);
    evq_socket_close(peer);
    evq_poll_close(poll);
}

EVQ_TEST(writes_before_the_connect_are_sent_once_connected)
{
    fake_net net;
    fake_net_init(&net, false);
    REQUIRE_OK(fake_net_listen(&net, 4));
    evq_poll *poll = fake_net_open(&net, 1, 16);
    REQUIRE(poll);

    evq_tcp *stream = NULL;
    evq_socket peer;
    REQUIRE_OK(evq_tcp_connect(poll, "slow.example", 80, &stream));
    size_t n = 0;
    REQUIRE_OK(evq_tcp_write(stream, "hello, ", 7, &n));
    REQUIRE_OK(evq_tcp_write(stream, "world", 5, &n));
    REQUIRE_OK(evq_tcp_shutdown(stream)); /* the FIN goes after them, once connected */
    char buf[16];
    CHECK_ERR(evq_tcp_read(stream, buf, sizeof buf, &n), EVQ_EWOULDBLOCK);
    REQUIRE(fake_wait_blocked(&net.fake, 1));
    fake_open_gate(&net.fake);
    REQUIRE_OK(ch05_wait_connected(poll, stream));
    REQUIRE_OK(evq_net_accept(net.listener, &peer));
    size_t got = 0;
    CHECK_OK(evq_net_recv_until_eof(peer, buf, sizeof buf, &got));
    CHECK_UINT(got, ==, 12);
    CHECK_MEM(buf, "hello, world", 12);
    evq_tcp_close(stream);
    evq_socket_close(peer);
    fake_net_close(&net);
}

EVQ_TEST(a_full_resolver_queue_is_efull_and_makes_no_stream)
{
    fake_net net;
    fake_net_init(&net, false);
    evq_poll *poll = fake_net_open(&net, 1, 2);
    REQUIRE(poll);
    evq_tcp *a = NULL, *b = NULL, *c = (evq_tcp *)&net;
    REQUIRE_OK(evq_tcp_connect(poll, "a.example", 80, &a));
    REQUIRE_OK(evq_tcp_connect(poll, "b.example", 80, &b));
    CHECK_ERR(evq_tcp_connect(poll, "c.example", 80, &c), EVQ_EFULL); /* at once, no wait */
    CHECK(c == NULL);
    /* Numeric hosts never queue: the pool's bound does not concern them. */
    evq_socket refuser;
    uint16_t port;
    REQUIRE_OK(evq_net_refusing_loopback(&refuser, &port));
    CHECK_OK(evq_tcp_connect(poll, "127.0.0.1", port, &c));
    evq_tcp_close(a);
    evq_tcp_close(b);
    evq_tcp_close(c);
    evq_socket_close(refuser);
    fake_net_close(&net);
}

EVQ_TEST(bad_options_and_hosts_are_einval)
{
    evq_poll_options options;
    evq_poll_get_default_options(&options);
    CHECK_UINT(options.resolver_threads, ==, 4);
    evq_poll *poll = (evq_poll *)&options;
    CHECK_ERR(evq_poll_open_with_options(&poll, NULL), EVQ_EINVAL);
    CHECK(poll == NULL);
    options.resolver_threads = 0;
    CHECK_ERR(evq_poll_open_with_options(&poll, &options), EVQ_EINVAL);
    options.resolver_threads = 65;
    CHECK_ERR(evq_poll_open_with_options(&poll, &options), EVQ_EINVAL);
    evq_poll_get_default_options(&options);
    options.resolver_queue = 0;
    CHECK_ERR(evq_poll_open_with_options(&poll, &options), EVQ_EINVAL);
    evq_poll_get_default_options(&options);
    options.resolve = NULL;
    CHECK_ERR(evq_poll_open_with_options(&poll, &options), EVQ_EINVAL);
    CHECK_ERR(evq_poll_open_with_options(NULL, &options), EVQ_EINVAL);

    REQUIRE_OK(evq_poll_open(&poll));
    char long_name[300];
    memset(long_name, 'a', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    evq_tcp *stream = (evq_tcp *)&options;
    CHECK_ERR(evq_tcp_connect(poll, "", 80, &stream), EVQ_EINVAL);
    CHECK(stream == NULL);
    CHECK_ERR(evq_tcp_connect(poll, long_name, 80, &stream), EVQ_EINVAL);
    evq_poll_close(poll);
}

/* ---- the *n == 0 contract ---- */

static void release_when_blocked(void *arg)
{
    fake_resolver *fake = arg;
    if (fake_wait_blocked(fake, 1)) {
        evq_sleep_ms(20); /* the loop is asleep in the kernel by now (likely; not relied on) */
        fake_open_gate(fake);
    }
}

static int count_waits(void *context, int *timeout_ms)
{
    (void)timeout_ms;
    atomic_fetch_add((atomic_int *)context, 1);
    return 0;
}

EVQ_TEST(the_resolvers_wake_up_never_ends_a_wait_with_nothing)
{
    fake_net net;
    fake_net_init(&net, false);
    REQUIRE_OK(fake_net_listen(&net, 4));
    evq_poll *poll = fake_net_open(&net, 1, 16);
    REQUIRE(poll);
    atomic_int waits;
    atomic_init(&waits, 0);
    evq_poll_set_wait_hook(poll, count_waits, &waits);

    evq_tcp *stream = NULL;
    REQUIRE_OK(evq_tcp_connect(poll, "wake.example", 80, &stream));
    REQUIRE_OK(evq_register(poll, stream, 5, EVQ_WRITABLE));
    evq_thread thread;
    REQUIRE_OK(evq_thread_start(&thread, release_when_blocked, &net.fake));
    /* One call: the answer wakes the kernel (one kernel wait ends), the
     * connect starts, and the wait sleeps on until the connect's WRITABLE
     * (another). Returning *n == 0 at the resolver's wake-up would tell
     * the caller "evq_poll_wake() was called", which nobody did. */
    evq_event event;
    size_t n = 0;
    CHECK_OK(evq_poll_wait(poll, &event, 1, 10000, &n));
    CHECK_UINT(n, ==, 1);
    CHECK_UINT(event.token, ==, 5);
    CHECK_UINT(event.ready, ==, EVQ_WRITABLE);
    CHECK_INT(atomic_load(&waits), >=, 2);
    evq_lookup_stats stats = lookup_stats(poll);
    CHECK_UINT(stats.delivered, ==, 1);
    evq_thread_join(&thread);

    /* evq_poll_wake still ends a wait with nothing, lookups or not. */
    evq_tcp *other = NULL;
    fake_close_gate(&net.fake);
    REQUIRE_OK(evq_tcp_connect(poll, "other.example", 80, &other));
    REQUIRE(fake_wait_blocked(&net.fake, 1));
    REQUIRE_OK(evq_poll_wake(poll));
    CHECK_OK(evq_poll_wait(poll, &event, 1, 10000, &n));
    CHECK_UINT(n, ==, 0);
    evq_tcp_close(other);
    evq_tcp_close(stream);
    fake_net_close(&net);
}

/* ---- many lookups, a few threads ---- */

EVQ_TEST(a_thousand_connects_by_name_on_four_resolver_threads)
{
    enum { CONNECTS = 1000 };
    fake_net net;
    fake_net_init(&net, false);
    REQUIRE_OK(fake_net_refusing(&net));
    evq_poll *poll = fake_net_open(&net, 4, CONNECTS);
    REQUIRE(poll);
    static evq_tcp *streams[CONNECTS];
    static bool told[CONNECTS];
    for (int i = 0; i < CONNECTS; i++) {
        char host[32];
        snprintf(host, sizeof host, "host-%d.example", i);
        told[i] = false;
        REQUIRE_OK(evq_tcp_connect(poll, host, 80, &streams[i]));
        REQUIRE_OK(evq_register(poll, streams[i], (evq_token)i, EVQ_READABLE));
    }
    /* Four lookups inside the fake, the rest queued: never a fifth thread. */
    REQUIRE(fake_wait_blocked(&net.fake, 4));
    CHECK_UINT(atomic_load(&net.fake.in_flight), ==, 4);
    fake_open_gate(&net.fake);
    size_t total = 0;
    uint64_t give_up = evq_clock_now_ns() + 20 * EVQ_NS_PER_S;
    while (total < CONNECTS && evq_clock_now_ns() < give_up) {
        evq_event events[64];
        size_t n = 0;
        REQUIRE_OK(evq_poll_wait(poll, events, 64, 1000, &n));
        for (size_t e = 0; e < n; e++) {
            REQUIRE(events[e].token < CONNECTS);
            CHECK(!told[events[e].token]); /* once each */
            CHECK_UINT(events[e].ready, ==, EVQ_READABLE | EVQ_ERR | EVQ_HUP);
            told[events[e].token] = true;
            total++;
        }
    }
    CHECK_UINT(total, ==, CONNECTS);
    CHECK_UINT(atomic_load(&net.fake.max_in_flight), ==, 4);
    evq_lookup_stats stats = lookup_stats(poll);
    CHECK_UINT(stats.running_peak, ==, 4);
    CHECK_UINT(stats.workers, ==, 4);
    CHECK_UINT(stats.delivered, ==, CONNECTS);
    CHECK_UINT(stats.live, ==, 0);
    char byte;
    size_t n = 0;
    CHECK_ERR(evq_tcp_read(streams[CONNECTS - 1], &byte, 1, &n), EVQ_ECONNREFUSED);
    for (int i = 0; i < CONNECTS; i++)
        evq_tcp_close(streams[i]);
    fake_net_close(&net);
}

/* ---- the cache ---- */

EVQ_TEST(a_cached_name_connects_at_once_and_an_expired_one_asks_again)
{
    fake_net net;
    fake_net_init(&net, true);
    REQUIRE_OK(fake_net_listen(&net, 8));
    evq_poll *poll = fake_net_open(&net, 4, 16); /* the default cache: 30 s */
    REQUIRE(poll);
    evq_fake_clock clock;
    evq_fake_clock_set_ns(&clock, 1000 * EVQ_NS_PER_S);
    evq_poll_set_clock(poll, evq_fake_clock_as_clock(&clock));

    evq_tcp *first = NULL, *second = NULL, *third = NULL;
    REQUIRE_OK(evq_tcp_connect(poll, "cached.example", 80, &first));
    REQUIRE_OK(ch05_wait_connected(poll, first)); /* the pool's answer, now cached */
    CHECK_UINT(atomic_load(&net.fake.calls), ==, 1);

    evq_fake_clock_advance_ms(&clock, 29999);
    REQUIRE_OK(evq_tcp_connect(poll, "cached.example", 80, &second));
    evq_lookup_stats stats = lookup_stats(poll);
    CHECK_UINT(stats.cache_hits, ==, 1);
    CHECK_UINT(stats.submitted, ==, 1);
    CHECK_UINT(atomic_load(&net.fake.calls), ==, 1);
    /* Answered inline, so the connect has started already: its socket
     * exists (and is bound) before any wait. */
    uint16_t local = 0;
    CHECK_OK(evq_tcp_local_port(second, &local));
    REQUIRE_OK(ch05_wait_connected(poll, second));

    evq_fake_clock_advance_ms(&clock, 1); /* 30 s: too old */
    REQUIRE_OK(evq_tcp_connect(poll, "cached.example", 80, &third));
    CHECK_ERR(evq_tcp_local_port(third, &local), EVQ_EBADF); /* no socket: resolving */
    stats = lookup_stats(poll);
    CHECK_UINT(stats.submitted, ==, 2);
    REQUIRE_OK(ch05_wait_connected(poll, third));
    CHECK_UINT(atomic_load(&net.fake.calls), ==, 2);
    evq_tcp_close(first);
    evq_tcp_close(second);
    evq_tcp_close(third);
    fake_net_close(&net);
}

int main(int argc, char **argv)
{
    static const evq_test_case cases[] = {
        EVQ_CASE(a_refused_connect_is_an_error_event_every_time_it_is_armed),
        EVQ_CASE(a_connect_returns_before_the_connection_is_made),
        EVQ_CASE(an_unanswered_connect_ends_at_its_deadline),
        EVQ_CASE(several_addresses_the_first_refusing_the_second_accepting),
        EVQ_CASE(when_every_address_fails_the_last_ones_error_is_the_streams),
        EVQ_CASE(a_failed_lookup_is_an_error_event_with_its_code),
        EVQ_CASE(a_numeric_host_is_parsed_inline_and_never_reaches_the_pool),
        EVQ_CASE(writes_before_the_connect_are_sent_once_connected),
        EVQ_CASE(a_full_resolver_queue_is_efull_and_makes_no_stream),
        EVQ_CASE(bad_options_and_hosts_are_einval),
        EVQ_CASE(the_resolvers_wake_up_never_ends_a_wait_with_nothing),
        EVQ_CASE(a_thousand_connects_by_name_on_four_resolver_threads),
        EVQ_CASE(a_cached_name_connects_at_once_and_an_expired_one_asks_again),
    };
    return evq_test_main(argc, argv, cases, EVQ_COUNT(cases));
}

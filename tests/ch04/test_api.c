/* test_api.c - chapter 3: the API's promises about its arguments - tokens
 * come back untouched (0 and UINT64_MAX too), the waker is never mistaken
 * for a token, and every misuse gets its own EVQ_E* code.
 */
#include "ch04_test.h"

EVQ_TEST(backend_name_matches_the_build)
{
    CHECK_STR(evq_backend(), ==, EVQ_BACKEND_NAME);
}

/* Tokens are the caller's: the extremes, and a pattern that would show a
 * truncation to 32 bits or a sign extension. */
EVQ_TEST(tokens_round_trip_including_0_and_max)
{
    static const evq_token tokens[] = {0, UINT64_MAX, UINT64_C(0x8000000000000001),
                                       UINT64_C(0x00000000FFFFFFFF)};
    enum { COUNT = sizeof tokens / sizeof tokens[0] };
    evq_poll *poll;
    REQUIRE_OK(evq_poll_open(&poll));
    evq_tcp *streams[COUNT] = {0};
    evq_socket peers[COUNT];
    for (size_t i = 0; i < COUNT; i++) /* connected first: ch04_wait_connected */
        REQUIRE_OK(ch04_pair(poll, &streams[i], &peers[i]));
    for (size_t i = 0; i < COUNT; i++) {
        REQUIRE_OK(evq_register(poll, streams[i], tokens[i], EVQ_READABLE));
        REQUIRE_OK(evq_net_send_all(peers[i], "x", 1));
    }
    bool seen[COUNT] = {false};
    size_t total = 0;
    for (int round = 0; round < 10 && total < COUNT; round++) {
        evq_event events[8];
        size_t n = ch04_wait_some(poll, events, 8, 1000);
        for (size_t e = 0; e < n; e++) {
            size_t match = COUNT;
            for (size_t i = 0; i < COUNT; i++)
                match = events[e].token == tokens[i] ? i : match;
            REQUIRE(match < COUNT); /* a token we never gave: mangled or invented */
            CHECK(!seen[match]);
            CHECK_UINT(events[e].ready & EVQ_READABLE, ==, EVQ_READABLE);
            seen[match] = true;
            total++;
        }
    }
    CHECK_UINT(total, ==, COUNT);
    for (size_t i = 0; i < COUNT; i++) {
        evq_tcp_close(streams[i]);
        evq_socket_close(peers[i]);
    }
    evq_poll_close(poll);
}

/* A queue whose waker used token 0 (or UINT64_MAX) would report a wake-up
 * as the caller's event, or swallow the caller's event as a wake-up. */
static void waker_against_token(evq_token token)
{
    evq_poll *poll;
    evq_tcp *stream;
    evq_socket peer;
    REQUIRE_OK(evq_poll_open(&poll));
    REQUIRE_OK(ch04_pair(poll, &stream, &peer));
    REQUIRE_OK(evq_register(poll, stream, token, EVQ_READABLE));

    /* Nothing to read: a wake-up is not an event, whatever the token. */
    evq_event events[4];
    size_t n = 99;
    REQUIRE_OK(evq_poll_wake(poll));
    CHECK_OK(evq_poll_wait(poll, events, 4, 5000, &n));
    CHECK_UINT(n, ==, 0);

    /* Data and a wake-up together: the event must not be taken for the wake. */
    REQUIRE_OK(evq_net_send_all(peer, "x", 1));
    evq_sleep_ms(20); /* let the data land first; the checks hold either way */
    REQUIRE_OK(evq_poll_wake(poll));
    n = ch04_wait_some(poll, events, 4, 5000);
    if (n == 0) /* the wake-up came back on its own: the data comes next */
        n = ch04_wait_some(poll, events, 4, 5000);
    REQUIRE_UINT(n, ==, 1);
    CHECK_UINT(events[0].token, ==, token);
    CHECK_UINT(events[0].ready & EVQ_READABLE, ==, EVQ_READABLE);

    evq_tcp_close(stream);
    evq_socket_close(peer);
    evq_poll_close(poll);
}

EVQ_TEST(waker_never_collides_with_token_0)
{
    waker_against_token(0);
}

EVQ_TEST(waker_never_collides_with_token_max)
{
    waker_against_token(UINT64_MAX);
}

/* Counts kernel waits and turns each into a poll; from the second one on,
 * the fake clock jumps past any deadline. */
struct counting_hook {
    evq_fake_clock clock;
    int calls;
};

static int count_kernel_waits(void *context, int *timeout_ms)
{
    struct counting_hook *hook = context;
    if (++hook->calls >= 2)
        evq_fake_clock_advance_ms(&hook->clock, 60000);
    *timeout_ms = 0;
    return 0;
}

EVQ_TEST(wakes_before_a_wait_count_as_one)
{
    evq_poll *poll;
    REQUIRE_OK(evq_poll_open(&poll));
    struct counting_hook hook = {{0}, 0};
    evq_poll_set_clock(poll, evq_fake_clock_as_clock(&hook.clock));
    evq_poll_set_wait_hook(poll, count_kernel_waits, &hook);
    /* More wakes than one kernel wait collects (256), so that uncoalesced
     * wake-ups (one IOCP packet each) would outlast the first wait. */
    for (int i = 0; i < 1000; i++)
        REQUIRE_OK(evq_poll_wake(poll));
    evq_event events[4];
    size_t n = 99;
    CHECK_OK(evq_poll_wait(poll, events, 4, -1, &n)); /* returns: a wake-up is pending */
    CHECK_UINT(n, ==, 0);
    CHECK_INT(hook.calls, ==, 1);
    /* The other 999 wakes were absorbed. A queue that kept them would end
     * this wait at its first kernel call; without them the first call finds
     * nothing, the (fake) time is not up, and a second call is needed. */
    hook.calls = 0;
    CHECK_OK(evq_poll_wait(poll, events, 4, 1000, &n));
    CHECK_UINT(n, ==, 0);
    CHECK_INT(hook.calls, ==, 2);
    evq_poll_close(poll);
}

EVQ_TEST(null_arguments_are_einval)
{
    evq_poll *poll;
    REQUIRE_OK(evq_poll_open(&poll));
    evq_tcp *stream;
    evq_socket peer;
    REQUIRE_OK(ch04_pair(poll, &stream, &peer));
    evq_event events[2];
    size_t n = 7;
    char buf[8];

    CHECK_ERR(evq_poll_open(NULL), EVQ_EINVAL);
    CHECK_ERR(evq_poll_wait(NULL, events, 2, 0, &n), EVQ_EINVAL);
    CHECK_UINT(n, ==, 0); /* *n is cleared even on failure */
    CHECK_ERR(evq_poll_wait(poll, NULL, 2, 0, &n), EVQ_EINVAL);
    CHECK_ERR(evq_poll_wait(poll, events, 2, 0, NULL), EVQ_EINVAL);
    CHECK_ERR(evq_poll_wake(NULL), EVQ_EINVAL);
    CHECK_ERR(evq_poll_shutdown(NULL), EVQ_EINVAL);
    CHECK_ERR(evq_register(NULL, stream, 1, EVQ_READABLE), EVQ_EINVAL);
    CHECK_ERR(evq_register(poll, NULL, 1, EVQ_READABLE), EVQ_EINVAL);
    CHECK_ERR(evq_reregister(NULL, stream, 1, EVQ_READABLE), EVQ_EINVAL);
    CHECK_ERR(evq_reregister(poll, NULL, 1, EVQ_READABLE), EVQ_EINVAL);
    CHECK_ERR(evq_deregister(NULL, stream), EVQ_EINVAL);
    CHECK_ERR(evq_deregister(poll, NULL), EVQ_EINVAL);

    evq_tcp *out = (evq_tcp *)&n; /* must be set to NULL on failure */
    CHECK_ERR(evq_tcp_connect(NULL, "127.0.0.1", 80, &out), EVQ_EINVAL);
    CHECK(out == NULL);
    CHECK_ERR(evq_tcp_connect(poll, NULL, 80, &out), EVQ_EINVAL);
    CHECK_ERR(evq_tcp_connect(poll, "127.0.0.1", 80, NULL), EVQ_EINVAL);
    CHECK_ERR(evq_tcp_connect(poll, "127.0.0.1", 0, &out), EVQ_EINVAL);

    CHECK_ERR(evq_tcp_read(NULL, buf, sizeof buf, &n), EVQ_EINVAL);
    CHECK_ERR(evq_tcp_read(stream, NULL, sizeof buf, &n), EVQ_EINVAL);
    CHECK_ERR(evq_tcp_read(stream, buf, sizeof buf, NULL), EVQ_EINVAL);
    CHECK_ERR(evq_tcp_read(stream, buf, 0, &n), EVQ_EINVAL); /* 0 bytes could not tell EOF */
    CHECK_ERR(evq_tcp_write(NULL, "x", 1, &n), EVQ_EINVAL);
    CHECK_ERR(evq_tcp_write(stream, NULL, 1, &n), EVQ_EINVAL);
    CHECK_ERR(evq_tcp_write(stream, "x", 1, NULL), EVQ_EINVAL);
    CHECK_OK(evq_tcp_write(stream, NULL, 0, &n)); /* nothing to send is no error */
    CHECK_UINT(n, ==, 0);

    evq_tcp_close(NULL); /* ignored, like free(NULL) */
    evq_poll_close(NULL);
    evq_tcp_close(stream);
    evq_socket_close(peer);
    evq_poll_close(poll);
}

EVQ_TEST(bad_capacity_timeout_and_interests_are_einval)
{
    evq_poll *poll;
    REQUIRE_OK(evq_poll_open(&poll));
    evq_tcp *stream;
    evq_socket peer;
    REQUIRE_OK(ch04_pair(poll, &stream, &peer));
    evq_event events[2];
    size_t n;
    CHECK_ERR(evq_poll_wait(poll, events, 0, 0, &n), EVQ_EINVAL);
    CHECK_ERR(evq_poll_wait(poll, events, 2, -2, &n), EVQ_EINVAL);
    CHECK_ERR(evq_register(poll, stream, 1, 0), EVQ_EINVAL);
    CHECK_ERR(evq_register(poll, stream, 1, EVQ_ERR), EVQ_EINVAL); /* readiness, not interest */
    CHECK_ERR(evq_register(poll, stream, 1, EVQ_HUP | EVQ_READABLE), EVQ_EINVAL);
    CHECK_ERR(evq_register(poll, stream, 1, 1u << 7), EVQ_EINVAL);
    REQUIRE_OK(evq_register(poll, stream, 1, EVQ_READABLE));
    CHECK_ERR(evq_reregister(poll, stream, 1, 0), EVQ_EINVAL);
    evq_tcp_close(stream);
    evq_socket_close(peer);
    evq_poll_close(poll);
}

EVQ_TEST(register_twice_is_eexist)
{
    evq_poll *poll;
    REQUIRE_OK(evq_poll_open(&poll));
    evq_tcp *stream;
    evq_socket peer;
    REQUIRE_OK(ch04_pair(poll, &stream, &peer));
    REQUIRE_OK(evq_register(poll, stream, 1, EVQ_READABLE));
    CHECK_ERR(evq_register(poll, stream, 2, EVQ_WRITABLE), EVQ_EEXIST);
    /* Still registered once, with the first token. */
    REQUIRE_OK(evq_net_send_all(peer, "x", 1));
    evq_event event;
    REQUIRE(ch04_wait_one(poll, &event, 5000));
    CHECK_UINT(event.token, ==, 1);
    /* After an event the stream is disarmed but still registered. */
    CHECK_ERR(evq_register(poll, stream, 3, EVQ_READABLE), EVQ_EEXIST);
    evq_tcp_close(stream);
    evq_socket_close(peer);
    evq_poll_close(poll);
}

EVQ_TEST(unknown_streams_are_enoent)
{
    evq_poll *poll;
    REQUIRE_OK(evq_poll_open(&poll));
    evq_tcp *stream;
    evq_socket peer;
    REQUIRE_OK(ch04_pair(poll, &stream, &peer));
    CHECK_ERR(evq_reregister(poll, stream, 1, EVQ_READABLE), EVQ_ENOENT);
    CHECK_ERR(evq_deregister(poll, stream), EVQ_ENOENT);
    REQUIRE_OK(evq_register(poll, stream, 1, EVQ_READABLE));
    REQUIRE_OK(evq_deregister(poll, stream));
    CHECK_ERR(evq_deregister(poll, stream), EVQ_ENOENT);
    CHECK_ERR(evq_reregister(poll, stream, 1, EVQ_READABLE), EVQ_ENOENT);
    /* And it can be registered again. */
    CHECK_OK(evq_register(poll, stream, 1, EVQ_READABLE));
    evq_tcp_close(stream);
    evq_socket_close(peer);
    evq_poll_close(poll);
}

EVQ_TEST(a_stream_of_another_queue_is_einval)
{
    evq_poll *a, *b;
    REQUIRE_OK(evq_poll_open(&a));
    REQUIRE_OK(evq_poll_open(&b));
    evq_tcp *stream;
    evq_socket peer;
    REQUIRE_OK(ch04_pair(a, &stream, &peer));
    CHECK_ERR(evq_register(b, stream, 1, EVQ_READABLE), EVQ_EINVAL);
    REQUIRE_OK(evq_register(a, stream, 1, EVQ_READABLE));
    CHECK_ERR(evq_reregister(b, stream, 1, EVQ_READABLE), EVQ_EINVAL);
    CHECK_ERR(evq_deregister(b, stream), EVQ_EINVAL);
    evq_tcp_close(stream);
    evq_socket_close(peer);
    evq_poll_close(a);
    evq_poll_close(b);
}

EVQ_TEST(a_closed_queue_is_eclosed)
{
    evq_poll *poll;
    REQUIRE_OK(evq_poll_open(&poll));
    evq_tcp *stream, *unregistered;
    evq_socket peer, peer2;
    REQUIRE_OK(ch04_pair(poll, &stream, &peer));
    REQUIRE_OK(ch04_pair(poll, &unregistered, &peer2));
    REQUIRE_OK(evq_register(poll, stream, 1, EVQ_READABLE));
    REQUIRE_OK(evq_poll_shutdown(poll));
    CHECK_OK(evq_poll_shutdown(poll)); /* twice is harmless */

    evq_event events[2];
    size_t n;
    evq_tcp *out;
    CHECK_ERR(evq_poll_wait(poll, events, 2, 0, &n), EVQ_ECLOSED);
    CHECK_ERR(evq_poll_wait(poll, events, 2, -1, &n), EVQ_ECLOSED); /* does not block */
    CHECK_ERR(evq_poll_wake(poll), EVQ_ECLOSED);
    CHECK_ERR(evq_register(poll, unregistered, 1, EVQ_READABLE), EVQ_ECLOSED);
    CHECK_ERR(evq_reregister(poll, stream, 1, EVQ_READABLE), EVQ_ECLOSED);
    CHECK_ERR(evq_deregister(poll, stream), EVQ_ECLOSED);
    CHECK_ERR(evq_tcp_connect(poll, "127.0.0.1", 9, &out), EVQ_ECLOSED);
    /* Closing streams of a shut-down queue still works (and frees them). */
    evq_tcp_close(stream);
    evq_tcp_close(unregistered);
    evq_socket_close(peer);
    evq_socket_close(peer2);
    evq_poll_close(poll);
}

/* Chapter 3's calls: limits that break a rule, consuming more than is
 * buffered, NULLs - each a code, nothing changed. */
EVQ_TEST(buffered_stream_misuse_is_einval)
{
    evq_tcp_limits defaults;
    evq_tcp_get_default_limits(&defaults);
    CHECK_UINT(defaults.read_initial, ==, 4096);
    CHECK_UINT(defaults.read_max, ==, 256 * 1024);
    CHECK_UINT(defaults.write_high, ==, 1024 * 1024);
    CHECK_UINT(defaults.write_low, ==, 256 * 1024);
    evq_tcp_get_default_limits(NULL); /* ignored */

    evq_poll *poll;
    evq_tcp *stream;
    evq_socket peer;
    REQUIRE_OK(evq_poll_open(&poll));
    REQUIRE_OK(ch04_pair(poll, &stream, &peer));
    evq_tcp_limits bad[5] = {defaults, defaults, defaults, defaults, defaults};
    bad[0].read_initial = 0;                     /* a buffer of nothing */
    bad[1].read_max = defaults.read_initial - 1; /* a cap below the start */
    bad[2].write_high = 0;                       /* a queue that takes nothing */
    bad[3].write_low = defaults.write_high;      /* low must be below high */
    bad[4].write_low = defaults.write_high + 1;
    for (size_t i = 0; i < 5; i++)
        CHECK_ERR(evq_tcp_set_limits(stream, &bad[i]), EVQ_EINVAL);
    CHECK_ERR(evq_tcp_set_limits(stream, NULL), EVQ_EINVAL);
    CHECK_ERR(evq_tcp_set_limits(NULL, &defaults), EVQ_EINVAL);
    evq_tcp_limits smallest = ch04_limits(1, 1, 1, 0);
    CHECK_OK(evq_tcp_set_limits(stream, &smallest)); /* the edges are allowed */

    evq_tcp_stats stats;
    CHECK_ERR(evq_tcp_get_stats(NULL, &stats), EVQ_EINVAL);
    CHECK_ERR(evq_tcp_get_stats(stream, NULL), EVQ_EINVAL);

    const void *data = &data;
    size_t len = 7;
    CHECK_ERR(evq_tcp_peek(NULL, &data, &len), EVQ_EINVAL);
    CHECK(data == NULL && len == 0);
    CHECK_ERR(evq_tcp_peek(stream, NULL, &len), EVQ_EINVAL);
    CHECK_ERR(evq_tcp_peek(stream, &data, NULL), EVQ_EINVAL);
    CHECK_ERR(evq_tcp_consume(NULL, 0), EVQ_EINVAL);
    CHECK_ERR(evq_tcp_consume(stream, 1), EVQ_EINVAL); /* nothing is buffered */
    CHECK_OK(evq_tcp_consume(stream, 0));
    CHECK_ERR(evq_tcp_shutdown(NULL), EVQ_EINVAL);
    CHECK_UINT(evq_tcp_queued(NULL), ==, 0);
    evq_tcp_set_io_hook(NULL, NULL, NULL); /* ignored */

    REQUIRE_OK(evq_net_send_all(peer, "abc", 3));
    REQUIRE_OK(evq_register(poll, stream, 1, EVQ_READABLE));
    evq_event event;
    REQUIRE(ch04_wait_one(poll, &event, 5000));
    REQUIRE_OK(evq_tcp_peek(stream, &data, &len));
    CHECK_UINT(len, ==, 1);                            /* read_max is 1 now */
    CHECK_ERR(evq_tcp_consume(stream, 2), EVQ_EINVAL); /* more than peek showed */
    CHECK_OK(evq_tcp_consume(stream, 1));
    evq_tcp_close(stream);
    evq_socket_close(peer);
    evq_poll_close(poll);
}

EVQ_TEST(streams_outliving_their_queue_are_eclosed)
{
    evq_poll *poll, *other;
    REQUIRE_OK(evq_poll_open(&poll));
    REQUIRE_OK(evq_poll_open(&other));
    evq_tcp *stream;
    evq_socket peer;
    REQUIRE_OK(ch04_pair(poll, &stream, &peer));
    REQUIRE_OK(evq_register(poll, stream, 1, EVQ_READABLE | EVQ_WRITABLE));
    REQUIRE_OK(evq_net_send_all(peer, "abc", 3));
    evq_poll_close(poll); /* the stream is still the caller's */

    char buf[8];
    size_t n = 5;
    CHECK_ERR(evq_tcp_read(stream, buf, sizeof buf, &n), EVQ_ECLOSED);
    CHECK_UINT(n, ==, 0);
    CHECK_ERR(evq_tcp_write(stream, "x", 1, &n), EVQ_ECLOSED);
    const void *data;
    size_t len;
    CHECK_ERR(evq_tcp_peek(stream, &data, &len), EVQ_ECLOSED);
    CHECK_ERR(evq_tcp_consume(stream, 0), EVQ_ECLOSED);
    CHECK_ERR(evq_tcp_shutdown(stream), EVQ_ECLOSED);
    CHECK_ERR(evq_register(other, stream, 1, EVQ_READABLE), EVQ_EINVAL);
    evq_tcp_close(stream); /* frees it: ASan's leak check and valgrind see no leak */
    evq_socket_close(peer);
    evq_poll_close(other);
}

/* Chapter 4: the connect does not block, so a refusal is not the return
 * value of evq_tcp_connect any more but the stream's outcome: an event,
 * then the code from reads and writes. */
EVQ_TEST(connect_to_a_closed_port_is_econnrefused)
{
    evq_poll *poll;
    REQUIRE_OK(evq_poll_open(&poll));
    /* A port nothing listens on, held so that no socket of ours is given it. */
    evq_socket refuser;
    uint16_t port;
    REQUIRE_OK(evq_net_refusing_loopback(&refuser, &port));
    evq_tcp *stream = NULL;
    REQUIRE_OK(evq_tcp_connect(poll, "127.0.0.1", port, &stream));
    CHECK_ERR(ch04_wait_connected(poll, stream), EVQ_ECONNREFUSED);
    size_t n = 0;
    CHECK_ERR(evq_tcp_write(stream, "x", 1, &n), EVQ_ECONNREFUSED);
    evq_tcp_close(stream);
    evq_socket_close(refuser);
    evq_poll_close(poll);
}

EVQ_TEST(connect_by_name_resolves_localhost)
{
    evq_poll *poll;
    REQUIRE_OK(evq_poll_open(&poll));
    evq_socket listener, peer;
    uint16_t port;
    REQUIRE_OK(evq_net_listen_loopback(0, 1, &listener, &port));
    evq_tcp *stream = NULL;
    /* "localhost" may resolve to ::1 first; the IPv4 listener refuses that
     * one and connect goes on to 127.0.0.1. Chapter 4: the name is looked
     * up on the resolver's threads, and the connect ends during the wait -
     * before the accept, which the kernel's backlog makes possible. */
    CHECK_OK(evq_tcp_connect(poll, "localhost", port, &stream));
    if (stream && CHECK_OK(ch04_wait_connected(poll, stream))) {
        REQUIRE_OK(evq_net_accept(listener, &peer));
        evq_socket_close(peer);
    }
    evq_tcp_close(stream);
    evq_socket_close(listener);
    evq_poll_close(poll);
}

int main(int argc, char **argv)
{
    static const evq_test_case cases[] = {
        EVQ_CASE(backend_name_matches_the_build),
        EVQ_CASE(tokens_round_trip_including_0_and_max),
        EVQ_CASE(waker_never_collides_with_token_0),
        EVQ_CASE(waker_never_collides_with_token_max),
        EVQ_CASE(wakes_before_a_wait_count_as_one),
        EVQ_CASE(null_arguments_are_einval),
        EVQ_CASE(bad_capacity_timeout_and_interests_are_einval),
        EVQ_CASE(register_twice_is_eexist),
        EVQ_CASE(unknown_streams_are_enoent),
        EVQ_CASE(a_stream_of_another_queue_is_einval),
        EVQ_CASE(a_closed_queue_is_eclosed),
        EVQ_CASE(buffered_stream_misuse_is_einval),
        EVQ_CASE(streams_outliving_their_queue_are_eclosed),
        EVQ_CASE(connect_to_a_closed_port_is_econnrefused),
        EVQ_CASE(connect_by_name_resolves_localhost),
    };
    return evq_test_main(argc, argv, cases, EVQ_COUNT(cases));
}

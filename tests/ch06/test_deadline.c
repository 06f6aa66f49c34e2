/* test_deadline.c - chapter 4: one deadline per stream, kept by the queue.
 * When it passes, the stream is told EVQ_TIMEOUT once, with its token, the
 * first time it is armed; the wait sleeps until the nearest deadline and
 * no longer, and a deadline with nothing to tell sends it back to sleep.
 * Time is a fake clock moved by the wait hook (ch06_time): nothing here
 * sleeps for a deadline.
 */
#include "connect_test.h"

#include "evq_test.h"

/* A queue on fake time with `count` connected streams (and their peers). */
struct timed {
    evq_poll *poll;
    ch06_time time;
    evq_tcp *streams[4];
    evq_socket peers[4];
    int count;
};

static bool timed_open(struct timed *t, int count)
{
    memset(t, 0, sizeof *t);
    if (!CHECK_OK(evq_poll_open(&t->poll)))
        return false;
    for (int i = 0; i < count; i++) {
        if (!CHECK_OK(ch06_pair(t->poll, &t->streams[i], &t->peers[i])))
            return false;
        t->count++;
    }
    ch06_time_install(t->poll, &t->time); /* after the connects: they needed real time */
    return true;
}

static void timed_close(struct timed *t)
{
    for (int i = 0; i < t->count; i++) {
        evq_tcp_close(t->streams[i]);
        evq_socket_close(t->peers[i]);
    }
    evq_poll_close(t->poll);
}

EVQ_TEST(a_deadline_is_told_once_as_evq_timeout)
{
    struct timed t;
    REQUIRE(timed_open(&t, 1));
    REQUIRE_OK(evq_tcp_set_deadline(t.streams[0], 500));
    REQUIRE_OK(evq_register(t.poll, t.streams[0], 11, EVQ_READABLE));
    evq_event event;
    size_t n = 0;
    REQUIRE_OK(evq_poll_wait(t.poll, &event, 1, -1, &n));
    REQUIRE_UINT(n, ==, 1);
    CHECK_UINT(event.token, ==, 11);
    CHECK_UINT(event.ready, ==, EVQ_TIMEOUT); /* nothing else: the stream is fine */
    CHECK_INT(t.time.asked[0], ==, 500);

    /* Once: armed again, the stream sleeps - and the wait keeps to its own
     * timeout (1000 ms of fake time, one kernel wait). */
    REQUIRE_OK(evq_reregister(t.poll, t.streams[0], 12, EVQ_READABLE));
    int waits = t.time.waits;
    REQUIRE_OK(evq_poll_wait(t.poll, &event, 1, 1000, &n));
    CHECK_UINT(n, ==, 0);
    CHECK_INT(t.time.waits - waits, ==, 1);
    CHECK_INT(t.time.asked[waits], ==, 1000);
    /* And the stream works as before: data is READABLE, with no timeout. */
    REQUIRE_OK(evq_net_send_all(t.peers[0], "x", 1));
    t.time.endless_jump_ms = 0;
    REQUIRE(ch06_wait_one(t.poll, &event, 5000));
    CHECK_UINT(event.ready, ==, EVQ_READABLE);
    timed_close(&t);
}

EVQ_TEST(the_wait_sleeps_until_the_nearest_deadline_and_they_pass_in_order)
{
    struct timed t;
    REQUIRE(timed_open(&t, 3));
    static const int after_ms[3] = {300, 100, 200};
    for (int i = 0; i < 3; i++) {
        REQUIRE_OK(evq_tcp_set_deadline(t.streams[i], after_ms[i]));
        REQUIRE_OK(evq_register(t.poll, t.streams[i], (evq_token)i, EVQ_READABLE));
    }
    static const evq_token order[3] = {1, 2, 0};
    for (int k = 0; k < 3; k++) {
        evq_event event;
        size_t n = 0;
        int waits = t.time.waits;
        REQUIRE_OK(evq_poll_wait(t.poll, &event, 1, -1, &n));
        REQUIRE_UINT(n, ==, 1);
        CHECK_UINT(event.token, ==, order[k]);
        CHECK_UINT(event.ready, ==, EVQ_TIMEOUT);
        /* Each kernel wait asked for exactly the time to the next deadline
         * (100 ms apart): never the caller's "for ever", never more. */
        CHECK_INT(t.time.asked[waits], ==, 100);
    }
    timed_close(&t);
}

EVQ_TEST(equal_deadlines_pass_in_the_order_they_were_set)
{
    struct timed t;
    REQUIRE(timed_open(&t, 3));
    static const int set_order[3] = {2, 0, 1};
    for (int k = 0; k < 3; k++) {
        int i = set_order[k];
        REQUIRE_OK(evq_tcp_set_deadline(t.streams[i], 250));
        REQUIRE_OK(evq_register(t.poll, t.streams[i], (evq_token)i, EVQ_READABLE));
    }
    for (int k = 0; k < 3; k++) {
        evq_event event;
        size_t n = 0;
        REQUIRE_OK(evq_poll_wait(t.poll, &event, 1, -1, &n)); /* capacity 1: one at a time */
        REQUIRE_UINT(n, ==, 1);
        CHECK_UINT(event.token, ==, (evq_token)set_order[k]);
    }
    timed_close(&t);
}

EVQ_TEST(a_deadline_that_passes_disarmed_waits_for_the_next_arming)
{
    struct timed t;
    REQUIRE(timed_open(&t, 1));
    REQUIRE_OK(evq_register(t.poll, t.streams[0], 21, EVQ_READABLE));
    REQUIRE_OK(evq_deregister(t.poll, t.streams[0]));
    REQUIRE_OK(evq_tcp_set_deadline(t.streams[0], 200));
    /* It passes during this wait, with nobody to tell: the wait does not
     * end early for it, but sleeps on to its own timeout. */
    evq_event event;
    size_t n = 0;
    REQUIRE_OK(evq_poll_wait(t.poll, &event, 1, 1000, &n));
    CHECK_UINT(n, ==, 0);
    CHECK_INT(t.time.waits, ==, 2);
    CHECK_INT(t.time.asked[0], ==, 200); /* woken for the deadline... */
    CHECK_INT(t.time.asked[1], ==, 800); /* ...then back to sleep for what was left */
    REQUIRE_OK(evq_register(t.poll, t.streams[0], 22, EVQ_WRITABLE));
    REQUIRE_OK(evq_poll_wait(t.poll, &event, 1, 0, &n));
    REQUIRE_UINT(n, ==, 1);
    CHECK_UINT(event.token, ==, 22);
    CHECK(event.ready & EVQ_TIMEOUT); /* with the WRITABLE it was armed for */
    timed_close(&t);
}

EVQ_TEST(setting_again_replaces_the_deadline_and_minus_one_clears_it)
{
    struct timed t;
    REQUIRE(timed_open(&t, 1));
    REQUIRE_OK(evq_tcp_set_deadline(t.streams[0], 100));
    REQUIRE_OK(evq_tcp_set_deadline(t.streams[0], 700)); /* in its place, not beside it */
    REQUIRE_OK(evq_register(t.poll, t.streams[0], 31, EVQ_READABLE));
    evq_event event;
    size_t n = 0;
    REQUIRE_OK(evq_poll_wait(t.poll, &event, 1, -1, &n));
    REQUIRE_UINT(n, ==, 1);
    CHECK_INT(t.time.asked[0], ==, 700);

    REQUIRE_OK(evq_tcp_set_deadline(t.streams[0], 100));
    REQUIRE_OK(evq_tcp_set_deadline(t.streams[0], -1));
    REQUIRE_OK(evq_reregister(t.poll, t.streams[0], 32, EVQ_READABLE));
    REQUIRE_OK(evq_poll_wait(t.poll, &event, 1, 5000, &n));
    CHECK_UINT(n, ==, 0); /* no deadline at all */

    /* A deadline that passed and was not told yet is forgotten when a new
     * one is set: the caller has moved on (a server that made progress). */
    REQUIRE_OK(evq_deregister(t.poll, t.streams[0]));
    REQUIRE_OK(evq_tcp_set_deadline(t.streams[0], 0));
    REQUIRE_OK(evq_poll_wait(t.poll, &event, 1, 10, &n)); /* it passes, disarmed */
    REQUIRE_OK(evq_tcp_set_deadline(t.streams[0], 1000));
    REQUIRE_OK(evq_register(t.poll, t.streams[0], 33, EVQ_READABLE));
    REQUIRE_OK(evq_poll_wait(t.poll, &event, 1, 500, &n));
    CHECK_UINT(n, ==, 0);
    timed_close(&t);
}

EVQ_TEST(closing_a_stream_takes_its_deadline_away)
{
    struct timed t;
    REQUIRE(timed_open(&t, 3));
    for (int i = 0; i < 3; i++) {
        REQUIRE_OK(evq_tcp_set_deadline(t.streams[i], 100 * (i + 1)));
        REQUIRE_OK(evq_register(t.poll, t.streams[i], (evq_token)i, EVQ_READABLE));
    }
    evq_tcp_close(t.streams[0]); /* the nearest: at the top of the heap */
    evq_tcp_close(t.streams[1]);
    t.streams[0] = t.streams[1] = NULL;
    evq_event event;
    size_t n = 0;
    REQUIRE_OK(evq_poll_wait(t.poll, &event, 1, -1, &n));
    REQUIRE_UINT(n, ==, 1);
    CHECK_UINT(event.token, ==, 2);
    CHECK_INT(t.time.asked[0], ==, 300);
    timed_close(&t);
}

EVQ_TEST(a_deadline_while_resolving_cancels_the_lookup)
{
    fake_net net;
    fake_net_init(&net, false);
    evq_poll *poll = fake_net_open(&net, 4, 16);
    REQUIRE(poll);
    ch06_time time;
    ch06_time_install(poll, &time);
    evq_tcp *running = NULL, *queued[4];
    REQUIRE_OK(evq_tcp_connect(poll, "noname.slow", 80, &running));
    REQUIRE_OK(evq_tcp_set_deadline(running, 2000));
    REQUIRE(fake_wait_blocked(&net.fake, 1));
    for (int i = 0; i < 4; i++) /* the other three workers, and one queued */
        REQUIRE_OK(evq_tcp_connect(poll, i < 3 ? "noname.busy" : "noname.queued", 80, &queued[i]));
    REQUIRE(fake_wait_blocked(&net.fake, 4));
    REQUIRE_OK(evq_tcp_set_deadline(queued[3], 1000));
    REQUIRE_OK(evq_register(poll, running, 1, EVQ_READABLE));
    REQUIRE_OK(evq_register(poll, queued[3], 2, EVQ_WRITABLE));

    evq_event events[2];
    size_t n = 0;
    REQUIRE_OK(evq_poll_wait(poll, events, 2, -1, &n));
    REQUIRE_UINT(n, ==, 1);
    CHECK_UINT(events[0].token, ==, 2);
    CHECK_UINT(events[0].ready, ==, EVQ_TIMEOUT | EVQ_ERR | EVQ_HUP | EVQ_WRITABLE);
    REQUIRE_OK(evq_poll_wait(poll, events, 2, -1, &n));
    REQUIRE_UINT(n, ==, 1);
    CHECK_UINT(events[0].token, ==, 1);
    CHECK_UINT(events[0].ready, ==, EVQ_TIMEOUT | EVQ_ERR | EVQ_HUP | EVQ_READABLE);
    char byte;
    CHECK_ERR(evq_tcp_read(running, &byte, 1, &n), EVQ_ETIMEDOUT);
    evq_lookup_stats stats = lookup_stats(poll);
    CHECK_UINT(stats.cancelled, ==, 2);
    CHECK_UINT(stats.live, ==, 4); /* the running one stays its worker's, and the busy three */
    evq_tcp_close(running);
    for (int i = 0; i < 4; i++)
        evq_tcp_close(queued[i]);
    fake_net_close(&net);
    CHECK_UINT(atomic_load(&net.fake.calls), ==, 4); /* never the queued one */
}

EVQ_TEST(deadline_misuse_is_a_code)
{
    struct timed t;
    REQUIRE(timed_open(&t, 1));
    CHECK_ERR(evq_tcp_set_deadline(NULL, 10), EVQ_EINVAL);
    CHECK_ERR(evq_tcp_set_deadline(t.streams[0], -2), EVQ_EINVAL);
    CHECK_OK(evq_tcp_set_deadline(t.streams[0], -1)); /* none to clear: fine */
    CHECK_OK(evq_tcp_set_deadline(t.streams[0], INT32_MAX));
    REQUIRE_OK(evq_poll_shutdown(t.poll));
    CHECK_ERR(evq_tcp_set_deadline(t.streams[0], 10), EVQ_ECLOSED);
    timed_close(&t);
}

int main(int argc, char **argv)
{
    static const evq_test_case cases[] = {
        EVQ_CASE(a_deadline_is_told_once_as_evq_timeout),
        EVQ_CASE(the_wait_sleeps_until_the_nearest_deadline_and_they_pass_in_order),
        EVQ_CASE(equal_deadlines_pass_in_the_order_they_were_set),
        EVQ_CASE(a_deadline_that_passes_disarmed_waits_for_the_next_arming),
        EVQ_CASE(setting_again_replaces_the_deadline_and_minus_one_clears_it),
        EVQ_CASE(closing_a_stream_takes_its_deadline_away),
        EVQ_CASE(a_deadline_while_resolving_cancels_the_lookup),
        EVQ_CASE(deadline_misuse_is_a_code),
    };
    return evq_test_main(argc, argv, cases, EVQ_COUNT(cases));
}

/* test_kernel_calls.c - chapter 3: what the kernel is asked, counted through
 * the wait hook (evq_testing.h), where the caller sees nothing wrong.
 *
 * The portable layer tells the caller only what it armed, so a backend that
 * keeps waking up for nothing looks correct from outside: every wait still
 * returns 0 events at its timeout. Under it, a level-triggered epoll set
 * (EPOLLONESHOT dropped) goes round ~90 000 times in a 50 ms wait; a
 * kqueue knote left behind by an event wakes the wait once more; a timeout
 * passed to kevent() in the wrong unit wakes it hundreds of times. Each
 * case counts the kernel waits one evq_poll_wait makes.
 */
#include "ch06_test.h"

#include <string.h>

/* The wait hook: count the kernel waits, remember the first timeout. */
struct kernel_waits {
    int calls;
    int first_timeout_ms;
};

static int count_kernel_wait(void *context, int *timeout_ms)
{
    struct kernel_waits *k = context;
    if (k->calls++ == 0)
        k->first_timeout_ms = *timeout_ms;
    return 0;
}

static void kernel_waits_reset(struct kernel_waits *k)
{
    k->calls = 0;
    k->first_timeout_ms = -2;
}

/* A kernel wait that ends a hair before its deadline is topped up with one
 * more (the time left is rounded up to 1 ms): two per evq_poll_wait at most
 * when nothing happens. */
#define MOST_WAITS_WHEN_IDLE 2

/* IOCP and io_uring: arming READABLE starts a receive, and data arriving
 * completes it; the completion ends a kernel wait with nothing for the
 * caller (it is not an event). A readiness backend has nothing in flight
 * to complete. */
static int completions_in_flight(void)
{
    return strcmp(evq_backend(), "iocp") == 0 || strcmp(evq_backend(), "uring") == 0 ? 1 : 0;
}

/* kqueue: a stream is two knotes. On Linux (the emulation, libkqueue) an
 * edge of the socket fires its write knote too - epoll reports the whole
 * state with each edge - and with capacity 1 the second knote's event
 * takes one more kernel wait. FreeBSD fires the read knote alone. */
static int second_knote(void)
{
    return strcmp(evq_backend(), "kqueue") == 0 ? 1 : 0;
}

/* A queue whose kernel waits are counted, and a stream on it connected to
 * a peer socket the test drives. */
struct counted {
    evq_poll *poll;
    evq_tcp *stream;
    evq_socket peer;
    struct kernel_waits k;
};

static int counted_open(struct counted *c)
{
    memset(c, 0, sizeof *c);
    kernel_waits_reset(&c->k);
    int rc = evq_poll_open(&c->poll);
    if (rc != 0)
        return rc;
    evq_poll_set_wait_hook(c->poll, count_kernel_wait, &c->k);
    return ch06_pair(c->poll, &c->stream, &c->peer);
}

static void counted_close(struct counted *c)
{
    evq_tcp_close(c->stream);
    evq_socket_close(c->peer);
    evq_poll_close(c->poll);
}

/* Waits of wait_ms in which nothing happens for the caller: no event, and
 * the kernel asked once (MOST_WAITS_WHEN_IDLE at most) each time. */
static void check_quiet_waits(struct counted *c, int rounds, int wait_ms)
{
    for (int round = 0; round < rounds; round++) {
        evq_event events[4];
        size_t n = 99;
        kernel_waits_reset(&c->k);
        CHECK_OK(evq_poll_wait(c->poll, events, 4, wait_ms, &n));
        CHECK_UINT(n, ==, 0);
        CHECK_INT(c->k.calls, >=, 1);
        CHECK_INT(c->k.calls, <=, MOST_WAITS_WHEN_IDLE);
    }
}

/* One-shot: after its event, a stream whose data is left unread is disarmed
 * in the kernel too, so the kernel sleeps through the next waits. A
 * level-triggered registration (EPOLLONESHOT dropped, EV_ONESHOT dropped)
 * would report the socket again at every kernel wait - which the portable
 * layer hides from the caller, but not from this count. */
EVQ_TEST(unread_data_wakes_the_kernel_once)
{
    struct counted c;
    REQUIRE_OK(counted_open(&c));
    REQUIRE_OK(evq_register(c.poll, c.stream, 1, EVQ_READABLE));
    REQUIRE_OK(evq_net_send_all(c.peer, "ping", 4));
    evq_event event;
    REQUIRE(ch06_wait_one(c.poll, &event, 5000));
    CHECK_UINT(event.ready & EVQ_READABLE, ==, EVQ_READABLE);

    check_quiet_waits(&c, 3, 50); /* the 4 bytes are still unread */

    /* Re-armed, it reports the same bytes: nothing was lost. */
    REQUIRE_OK(evq_reregister(c.poll, c.stream, 2, EVQ_READABLE));
    REQUIRE(ch06_wait_one(c.poll, &event, 5000));
    CHECK_UINT(event.token, ==, 2);
    char buf[8];
    size_t len = 0;
    CHECK_OK(ch06_read_available(c.stream, buf, sizeof buf, &len));
    CHECK_UINT(len, ==, 4);
    CHECK_MEM(buf, "ping", 4);
    counted_close(&c);
}

/* The same for WRITABLE, which a connected socket stays all the time: once
 * reported, it wakes nothing until the stream is armed again. */
EVQ_TEST(a_socket_that_stays_writable_wakes_the_kernel_once)
{
    struct counted c;
    REQUIRE_OK(counted_open(&c));
    REQUIRE_OK(evq_register(c.poll, c.stream, 1, EVQ_WRITABLE));
    evq_event event;
    REQUIRE(ch06_wait_one(c.poll, &event, 5000));
    CHECK_UINT(event.ready, ==, EVQ_WRITABLE);
    check_quiet_waits(&c, 3, 50);
    counted_close(&c);
}

/* Armed for both, only WRITABLE was told: the event disarms READABLE too.
 * Chapter 5's socket is in the kernel all the time, so data arriving later
 * is an edge, and it wakes the kernel wait - once (chapter 4's one-shot
 * kernel, disarmed, slept through it: there the bound was one wait). The
 * queue remembers the edge, tells the caller nothing (it armed nothing),
 * and the wait goes back to sleep; a level-triggered registration would be
 * woken again at every wait after it, which the count shows. */
EVQ_TEST(data_while_disarmed_wakes_the_kernel_once_and_is_kept)
{
    struct counted c;
    REQUIRE_OK(counted_open(&c));
    REQUIRE_OK(evq_register(c.poll, c.stream, 5, EVQ_READABLE | EVQ_WRITABLE));
    evq_event event;
    REQUIRE(ch06_wait_one(c.poll, &event, 5000));
    REQUIRE_UINT(event.ready, ==, EVQ_WRITABLE); /* nothing to read yet */

    REQUIRE_OK(evq_net_send_all(c.peer, "x", 1));
    evq_sleep_ms(20); /* the byte is in the socket before the wait starts */
    kernel_waits_reset(&c.k);
    size_t n = 99;
    CHECK_OK(evq_poll_wait(c.poll, &event, 1, 200, &n));
    CHECK_UINT(n, ==, 0);
    CHECK_INT(c.k.calls, >=, 1);
    CHECK_INT(c.k.calls, <=, 2 + completions_in_flight() + second_knote()); /* the edge, the rest */
    check_quiet_waits(&c, 3, 50); /* nothing more after that, on any backend */

    /* Re-armed, the byte is reported without a new edge: it was remembered. */
    REQUIRE_OK(evq_reregister(c.poll, c.stream, 6, EVQ_READABLE));
    REQUIRE(ch06_wait_one(c.poll, &event, 5000));
    CHECK_UINT(event.token, ==, 6);
    CHECK_UINT(event.ready & EVQ_READABLE, ==, EVQ_READABLE);
    char buf[4];
    size_t len = 0;
    CHECK_OK(ch06_read_available(c.stream, buf, sizeof buf, &len));
    CHECK_UINT(len, ==, 1);
    counted_close(&c);
}

/* A 1.5 s wait on an empty queue is one kernel wait of 1500 ms (two if the
 * kernel ends it a hair early), and ends no sooner than 1.5 s. A timeout
 * handed to the kernel in the wrong unit (kevent's tv_nsec filled with
 * microseconds: 1 s + 0.5 ms) returns early; the wait loop hides that from
 * the caller by waiting again for the time left - hundreds of times, each
 * 1000 times too short. Only the lower bound on time is asserted: a busy
 * machine may wait longer. */
EVQ_TEST(a_long_wait_on_an_empty_queue_is_one_kernel_wait)
{
    evq_poll *poll;
    struct kernel_waits k;
    kernel_waits_reset(&k);
    REQUIRE_OK(evq_poll_open(&poll));
    evq_poll_set_wait_hook(poll, count_kernel_wait, &k);
    evq_event events[4];
    size_t n = 99;
    uint64_t start = evq_clock_now_ns();
    CHECK_OK(evq_poll_wait(poll, events, 4, 1500, &n));
    uint64_t elapsed = evq_clock_now_ns() - start;
    CHECK_UINT(n, ==, 0);
    CHECK_UINT(elapsed, >=, 1500 * EVQ_NS_PER_MS);
    CHECK_INT(k.first_timeout_ms, ==, 1500);
    CHECK_INT(k.calls, >=, 1);
    CHECK_INT(k.calls, <=, MOST_WAITS_WHEN_IDLE);
    evq_poll_close(poll);
}

int main(int argc, char **argv)
{
    static const evq_test_case cases[] = {
        EVQ_CASE(unread_data_wakes_the_kernel_once),
        EVQ_CASE(a_socket_that_stays_writable_wakes_the_kernel_once),
        EVQ_CASE(data_while_disarmed_wakes_the_kernel_once_and_is_kept),
        EVQ_CASE(a_long_wait_on_an_empty_queue_is_one_kernel_wait),
    };
    return evq_test_main(argc, argv, cases, EVQ_COUNT(cases));
}

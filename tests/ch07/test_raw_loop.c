/* test_raw_loop.c - chapter 7's template (loop/raw_loop.h) on a real queue,
 * with a fake clock: the queue's wait hook records each timeout the loop
 * asks for and, instead of sleeping, moves the clock on by it. So "the loop
 * slept until the next thing was due" is an assertion on numbers, not on
 * how long a test took.
 */
#include "raw_loop.h"

#include "evq_testing.h"

#include "evq_net.h"
#include "evq_test.h"
#include "evq_thread.h"

#include <stdatomic.h>
#include <string.h>

#define MS EVQ_NS_PER_MS

/* ---- a loop on a fake clock ---------------------------------------------------- */

struct fixture {
    evq_poll *poll;
    evq_fake_clock clock;
    atomic_bool stop;
    raw_loop loop;
    raw_channel inbox;
    /* what the wait hook saw */
    int timeouts[64];
    size_t waits;
    /* what the hooks saw, in order: 'E'vent, 'M'essage, 'T'imer, 'P'eriodic, 'S'top */
    char order[256];
    size_t steps;
    uint64_t timer_data[16];
    size_t timers;
    uint64_t periodic_intervals[16];
    uint64_t periodic_at[16];
    size_t periodic;
    int stops_asked;
    int stops_until_done; /* on_stop says true on this call (1: the first) */
    uint64_t rearm_delay; /* on_timer adds a timer with this delay, once per turn */
    bool rearm;
};

static void step(struct fixture *f, char what)
{
    if (f->steps + 1 < sizeof f->order)
        f->order[f->steps++] = what;
}

static int fake_sleep(void *context, int *timeout_ms)
{
    struct fixture *f = context;
    if (f->waits < EVQ_COUNT(f->timeouts))
        f->timeouts[f->waits] = *timeout_ms;
    f->waits++;
    if (*timeout_ms > 0)
        evq_fake_clock_advance_ms(&f->clock, (uint64_t)*timeout_ms);
    else if (*timeout_ms < 0)
        evq_poll_wake(f->poll); /* "for ever": end it as another thread would */
    *timeout_ms = 0;            /* the kernel only looks: the test never sleeps */
    return 0;
}

static void on_event(void *context, raw_loop *loop, const evq_event *event)
{
    (void)loop;
    (void)event;
    step(context, 'E');
}

static void on_message(void *context, raw_loop *loop, const raw_message *message)
{
    (void)loop;
    (void)message;
    step(context, 'M');
}

static void on_timer(void *context, raw_loop *loop, uint64_t id, uint64_t data)
{
    struct fixture *f = context;
    (void)id;
    step(f, 'T');
    if (f->timers < EVQ_COUNT(f->timer_data))
        f->timer_data[f->timers] = data;
    f->timers++;
    if (f->rearm)
        CHECK_OK(raw_loop_add_timer(loop, f->rearm_delay, data + 1, NULL));
}

static void on_periodic(void *context, raw_loop *loop, uint64_t intervals)
{
    struct fixture *f = context;
    step(f, 'P');
    if (f->periodic < EVQ_COUNT(f->periodic_intervals)) {
        f->periodic_intervals[f->periodic] = intervals;
        f->periodic_at[f->periodic] = raw_loop_now(loop);
    }
    f->periodic++;
}

static bool on_stop(void *context, raw_loop *loop)
{
    struct fixture *f = context;
    (void)loop;
    step(f, 'S');
    return ++f->stops_asked >= f->stops_until_done;
}

static void fixture_open(struct fixture *f, uint64_t max_wait_ns)
{
    memset(f, 0, sizeof *f);
    REQUIRE_OK(evq_poll_open(&f->poll));
    evq_fake_clock_set_ns(&f->clock, 1000 * MS);
    evq_poll_set_clock(f->poll, evq_fake_clock_as_clock(&f->clock));
    evq_poll_set_wait_hook(f->poll, fake_sleep, f);
    atomic_init(&f->stop, false);
    f->stops_until_done = 1;
    REQUIRE_OK(raw_channel_init(&f->inbox, 4, f->poll));
    raw_loop_config config = {
        .poll = f->poll,
        .clock = evq_fake_clock_as_clock(&f->clock),
        .stop = &f->stop,
        .inbox = &f->inbox,
        .message_budget = 2,
        .max_wait_ns = max_wait_ns,
        .hooks = {on_event, on_message, on_timer, on_stop, f},
    };
    REQUIRE_OK(raw_loop_init(&f->loop, &config));
}

static void fixture_close(struct fixture *f)
{
    raw_loop_destroy(&f->loop);
    evq_poll_close(f->poll);
    raw_channel_destroy(&f->inbox);
}

static bool turn(struct fixture *f)
{
    bool done = true;
    CHECK_OK(raw_loop_turn(&f->loop, &done));
    return done;
}

/* ---- saturating differences ---------------------------------------------------- */

EVQ_TEST(periodic_due_never_subtracts_a_later_instant)
{
    uint64_t last = 5000;
    /* A `last` later than now (another thread's clock read, a test's clock):
     * no time has passed. A naked now - last would be ~584 years. */
    CHECK_UINT(raw_periodic_due(&last, 4000, 100), ==, 0);
    CHECK_UINT(last, ==, 5000);
    CHECK_UINT(raw_periodic_due(&last, 5099, 100), ==, 0);
    CHECK_UINT(raw_periodic_due(&last, 5100, 100), ==, 1);
    CHECK_UINT(last, ==, 5100);
    /* A stall of 3.5 intervals: one run, told 3, and back on the grid. */
    CHECK_UINT(raw_periodic_due(&last, 5450, 100), ==, 3);
    CHECK_UINT(last, ==, 5400);
    CHECK_UINT(raw_periodic_due(&last, UINT64_MAX, 0), ==, 0); /* interval 0: never */
}

/* ---- the wait ------------------------------------------------------------------ */

EVQ_TEST(the_loop_sleeps_until_the_next_thing_is_due_and_no_longer)
{
    struct fixture f;
    fixture_open(&f, 0);
    REQUIRE_OK(raw_loop_every(&f.loop, 100 * MS, on_periodic));
    REQUIRE_OK(raw_loop_add_timer(&f.loop, 30 * MS, 7, NULL));

    CHECK(!turn(&f)); /* asks to sleep 30 ms: the timer first */
    CHECK_INT(f.timeouts[0], ==, 30);
    CHECK_UINT(f.timers, ==, 1);
    CHECK_UINT(f.timer_data[0], ==, 7);
    CHECK_UINT(f.periodic, ==, 0);

    CHECK(!turn(&f)); /* then the periodic task, 70 ms later */
    CHECK_INT(f.timeouts[1], ==, 70);
    CHECK_UINT(f.periodic, ==, 1);
    CHECK_UINT(f.periodic_intervals[0], ==, 1);
    CHECK_UINT(f.periodic_at[0], ==, 1100 * MS);

    CHECK(!turn(&f)); /* and again, on its grid */
    CHECK_INT(f.timeouts[2], ==, 100);
    CHECK_UINT(f.periodic, ==, 2);
    fixture_close(&f);
}

EVQ_TEST(with_nothing_due_the_loop_sleeps_without_a_limit_or_max_wait)
{
    struct fixture f;
    fixture_open(&f, 0);
    CHECK(!turn(&f));
    CHECK_INT(f.timeouts[0], ==, -1);
    fixture_close(&f);

    fixture_open(&f, 250 * MS);
    CHECK(!turn(&f));
    CHECK_INT(f.timeouts[0], ==, 250);
    fixture_close(&f);
}

EVQ_TEST(a_timeout_is_rounded_up_so_the_loop_never_wakes_early)
{
    struct fixture f;
    fixture_open(&f, 0);
    REQUIRE_OK(raw_loop_add_timer(&f.loop, 1, 1, NULL)); /* 1 ns */
    /* Waiting 0 ms for a deadline 1 ns away would find nothing due and go
     * round again, and again: a spin. One millisecond, then the timer. */
    CHECK(!turn(&f));
    CHECK_INT(f.timeouts[0], ==, 1);
    CHECK_UINT(f.timers, ==, 1);
    fixture_close(&f);
}

EVQ_TEST(a_stalled_loop_runs_a_periodic_task_once_and_stays_on_its_grid)
{
    struct fixture f;
    fixture_open(&f, 0);
    REQUIRE_OK(raw_loop_every(&f.loop, 100 * MS, on_periodic));
    evq_fake_clock_advance_ms(&f.clock, 450); /* the program was stopped for 450 ms */
    CHECK(!turn(&f));
    CHECK_INT(f.timeouts[0], ==, 0); /* due already: no sleep */
    CHECK_UINT(f.periodic, ==, 1);
    CHECK_UINT(f.periodic_intervals[0], ==, 4);
    CHECK_UINT(raw_loop_get_stats(&f.loop)->missed_intervals, ==, 3);
    CHECK(!turn(&f));
    CHECK_INT(f.timeouts[1], ==, 50); /* 1500 ms is next, not 1550 */
    CHECK_UINT(f.periodic_at[1], ==, 1500 * MS);
    fixture_close(&f);
}

EVQ_TEST(a_timer_that_adds_a_timer_of_zero_delay_does_not_keep_the_loop_awake)
{
    struct fixture f;
    fixture_open(&f, 0);
    f.rearm = true;
    f.rearm_delay = 0;
    REQUIRE_OK(raw_loop_add_timer(&f.loop, 0, 1, NULL));
    CHECK(!turn(&f));
    CHECK_UINT(f.timers, ==, 1); /* the one it added waits for the next turn */
    CHECK(!turn(&f));
    CHECK_UINT(f.timers, ==, 2);
    CHECK_UINT(f.timer_data[1], ==, 2);
    fixture_close(&f);
}

EVQ_TEST(timers_fire_in_deadline_order_then_in_the_order_added)
{
    struct fixture f;
    fixture_open(&f, 0);
    uint64_t cancelled;
    REQUIRE_OK(raw_loop_add_timer(&f.loop, 20 * MS, 3, NULL));
    REQUIRE_OK(raw_loop_add_timer(&f.loop, 10 * MS, 1, NULL));
    REQUIRE_OK(raw_loop_add_timer(&f.loop, 10 * MS, 2, NULL));
    REQUIRE_OK(raw_loop_add_timer(&f.loop, 15 * MS, 99, &cancelled));
    CHECK_OK(raw_loop_cancel_timer(&f.loop, cancelled));
    CHECK_ERR(raw_loop_cancel_timer(&f.loop, cancelled), EVQ_ENOENT);
    evq_fake_clock_advance_ms(&f.clock, 25);
    CHECK(!turn(&f));
    CHECK_UINT(f.timers, ==, 3);
    CHECK_UINT(f.timer_data[0], ==, 1);
    CHECK_UINT(f.timer_data[1], ==, 2);
    CHECK_UINT(f.timer_data[2], ==, 3);
    fixture_close(&f);
}

/* ---- one turn's order ------------------------------------------------------------ */

EVQ_TEST(a_turn_hands_on_events_then_messages_then_timers_then_periodic_tasks)
{
    struct fixture f;
    fixture_open(&f, 0);
    evq_tcp *listener;
    REQUIRE_OK(evq_tcp_listen(f.poll, "127.0.0.1", 0, 8, &listener));
    uint16_t port;
    REQUIRE_OK(evq_tcp_local_port(listener, &port));
    REQUIRE_OK(evq_register(f.poll, listener, 1, EVQ_READABLE));
    REQUIRE_OK(raw_loop_every(&f.loop, 100 * MS, on_periodic));
    REQUIRE_OK(raw_loop_add_timer(&f.loop, 100 * MS, 5, NULL));
    raw_message message = {.kind = 1};
    REQUIRE_OK(raw_channel_send(&f.inbox, &message));
    evq_socket client;
    REQUIRE_OK(evq_net_connect_loopback(port, &client));
    evq_fake_clock_advance_ms(&f.clock, 100);
    /* A real connection takes a moment to reach the listener: turn until
     * the event has come (each turn only looks: the clock does not move). */
    for (int i = 0; i < 2000 && !strchr(f.order, 'E'); i++) {
        CHECK(!turn(&f));
        if (!strchr(f.order, 'E'))
            evq_sleep_ms(1);
    }
    /* The message, timer and periodic task ran on the first turn (after the
     * event if it had come by then); the order within a turn is fixed. */
    const char *first_turn = f.order[0] == 'E' ? "EMTP" : "MTP";
    CHECK_MEM(f.order, first_turn, strlen(first_turn));
    CHECK(strchr(f.order, 'E') != NULL);
    evq_tcp_close(listener);
    evq_socket_close(client);
    fixture_close(&f);
}

EVQ_TEST(the_message_budget_leaves_the_rest_for_the_next_turn_without_sleeping)
{
    struct fixture f;
    fixture_open(&f, 0);
    raw_message message = {.kind = 1};
    for (int i = 0; i < 4; i++)
        REQUIRE_OK(raw_channel_send(&f.inbox, &message));
    CHECK_ERR(raw_channel_send(&f.inbox, &message), EVQ_EFULL); /* capacity 4 */
    CHECK(!turn(&f));
    CHECK_UINT(raw_loop_get_stats(&f.loop)->messages, ==, 2); /* budget 2 */
    CHECK(!turn(&f));
    CHECK_INT(f.timeouts[1], ==, 0); /* two were left: no sleep */
    CHECK_UINT(raw_loop_get_stats(&f.loop)->messages, ==, 4);
    CHECK(!turn(&f));
    CHECK_INT(f.timeouts[2], ==, -1); /* empty: sleep until something comes */
    fixture_close(&f);
}

/* ---- other threads -------------------------------------------------------------- */

struct sender {
    raw_channel *channel;
    int messages;
    int sent;
};

static void send_messages(void *arg)
{
    struct sender *s = arg;
    raw_message message = {.kind = 2};
    while (s->sent < s->messages) {
        message.value[0] = (uint64_t)s->sent;
        if (raw_channel_send(s->channel, &message) == 0)
            s->sent++;
        else
            evq_thread_yield(); /* full: the loop is behind */
    }
}

struct counting {
    uint64_t next;
    uint64_t out_of_order;
    uint64_t received;
};

static void count_message(void *context, raw_loop *loop, const raw_message *message)
{
    struct counting *c = context;
    (void)loop;
    if (message->value[0] != c->next)
        c->out_of_order++;
    c->next = message->value[0] + 1;
    c->received++;
}

EVQ_TEST(a_send_wakes_the_loop_asleep_in_the_queue)
{
    /* Real clock, a loop that would sleep for ever: only the channel's wake
     * can bring it round. 10 000 messages from another thread, in order. */
    evq_poll *poll;
    REQUIRE_OK(evq_poll_open(&poll));
    raw_channel channel;
    REQUIRE_OK(raw_channel_init(&channel, 16, poll));
    atomic_bool stop;
    atomic_init(&stop, false);
    struct counting counting = {0};
    raw_loop loop;
    raw_loop_config config = {
        .poll = poll,
        .clock = evq_clock_system(),
        .stop = &stop,
        .inbox = &channel,
        .hooks = {.on_message = count_message, .context = &counting},
    };
    REQUIRE_OK(raw_loop_init(&loop, &config));
    struct sender sender = {&channel, 10000, 0};
    evq_thread thread;
    REQUIRE_OK(evq_thread_start(&thread, send_messages, &sender));
    uint64_t started = evq_clock_now_ns();
    while (counting.received < 10000 && evq_clock_now_ns() - started < 20 * EVQ_NS_PER_S) {
        bool done = false;
        REQUIRE_OK(raw_loop_turn(&loop, &done));
    }
    evq_thread_join(&thread);
    CHECK_UINT(counting.received, ==, 10000);
    CHECK_UINT(counting.out_of_order, ==, 0);
    raw_loop_destroy(&loop);
    evq_poll_close(poll);
    raw_channel_destroy(&channel);
}

EVQ_TEST(the_flag_asks_on_stop_every_turn_until_it_says_done)
{
    struct fixture f;
    fixture_open(&f, 0);
    f.stops_until_done = 3; /* two turns of work still in flight */
    CHECK(!turn(&f));
    CHECK_INT(f.stops_asked, ==, 0);
    atomic_store(&f.stop, true);
    CHECK(!turn(&f));
    CHECK(!turn(&f));
    CHECK(turn(&f));
    CHECK_INT(f.stops_asked, ==, 3);
    CHECK(raw_loop_stopping(&f.loop));
    fixture_close(&f);
}

struct waiter {
    raw_loop loop;
    int rc;
};

static void run_waiter(void *arg)
{
    struct waiter *w = arg;
    w->rc = raw_loop_run(&w->loop);
}

EVQ_TEST(the_flag_reaches_every_loop_asleep_on_a_shared_queue)
{
    /* Four loops wait on one queue with no limit. The flag is set and the
     * queue woken once: a wake ends one wait, so the loops must pass the word
     * on, or three of them sleep for ever. */
    evq_poll *poll;
    REQUIRE_OK(evq_poll_open(&poll));
    atomic_bool stop;
    atomic_init(&stop, false);
    struct waiter waiters[4];
    evq_thread threads[4];
    for (int i = 0; i < 4; i++) {
        raw_loop_config config = {.poll = poll, .clock = evq_clock_system(), .stop = &stop};
        REQUIRE_OK(raw_loop_init(&waiters[i].loop, &config));
        waiters[i].rc = -1;
        REQUIRE_OK(evq_thread_start(&threads[i], run_waiter, &waiters[i]));
    }
    evq_sleep_ms(50); /* let them fall asleep (not needed for correctness) */
    atomic_store(&stop, true);
    REQUIRE_OK(evq_poll_wake(poll));
    for (int i = 0; i < 4; i++) {
        evq_thread_join(&threads[i]); /* the test's timeout catches a loop left asleep */
        CHECK_OK(waiters[i].rc);
        CHECK(raw_loop_stopping(&waiters[i].loop));
        raw_loop_destroy(&waiters[i].loop);
    }
    evq_poll_close(poll);
}

EVQ_TEST(a_queue_shut_down_under_the_loop_ends_it)
{
    struct fixture f;
    fixture_open(&f, 0);
    REQUIRE_OK(evq_poll_shutdown(f.poll));
    CHECK(turn(&f));
    CHECK(raw_loop_stopping(&f.loop));
    fixture_close(&f);
}

EVQ_TEST(loop_misuse_is_a_code)
{
    raw_loop loop;
    raw_loop_config config = {0};
    CHECK_ERR(raw_loop_init(&loop, &config), EVQ_EINVAL);
    CHECK_ERR(raw_channel_init(NULL, 1, NULL), EVQ_EINVAL);
    struct fixture f;
    fixture_open(&f, 0);
    CHECK_ERR(raw_loop_every(&f.loop, 0, on_periodic), EVQ_EINVAL);
    for (int i = 0; i < RAW_LOOP_PERIODIC_MAX; i++)
        CHECK_OK(raw_loop_every(&f.loop, MS, on_periodic));
    CHECK_ERR(raw_loop_every(&f.loop, MS, on_periodic), EVQ_EFULL);
    CHECK_ERR(raw_loop_cancel_timer(&f.loop, 12345), EVQ_ENOENT);
    fixture_close(&f);
}

int main(int argc, char **argv)
{
    static const evq_test_case cases[] = {
        EVQ_CASE(periodic_due_never_subtracts_a_later_instant),
        EVQ_CASE(the_loop_sleeps_until_the_next_thing_is_due_and_no_longer),
        EVQ_CASE(with_nothing_due_the_loop_sleeps_without_a_limit_or_max_wait),
        EVQ_CASE(a_timeout_is_rounded_up_so_the_loop_never_wakes_early),
        EVQ_CASE(a_stalled_loop_runs_a_periodic_task_once_and_stays_on_its_grid),
        EVQ_CASE(a_timer_that_adds_a_timer_of_zero_delay_does_not_keep_the_loop_awake),
        EVQ_CASE(timers_fire_in_deadline_order_then_in_the_order_added),
        EVQ_CASE(a_turn_hands_on_events_then_messages_then_timers_then_periodic_tasks),
        EVQ_CASE(the_message_budget_leaves_the_rest_for_the_next_turn_without_sleeping),
        EVQ_CASE(a_send_wakes_the_loop_asleep_in_the_queue),
        EVQ_CASE(the_flag_asks_on_stop_every_turn_until_it_says_done),
        EVQ_CASE(the_flag_reaches_every_loop_asleep_on_a_shared_queue),
        EVQ_CASE(a_queue_shut_down_under_the_loop_ends_it),
        EVQ_CASE(loop_misuse_is_a_code),
    };
    return evq_test_main(argc, argv, cases, EVQ_COUNT(cases));
}

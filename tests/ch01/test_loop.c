/* Tests of the raw event loop: the inbox, records in parts, timers, the next
 * deadline, and the termination flag. Turns are driven by hand on a fake
 * clock, except where the point is a real thread and a real sleep. */
#include "evq_loop.h"
#include "evq_test.h"

#include <stdio.h>

#define MS EVQ_NS_PER_MS

struct fixture {
    evq_fake_clock fake;
    uint64_t step_ns; /* > 0: the clock moves this much at every read */
    uint64_t clock_reads;
    evq_channel inbox;
    atomic_bool stop;
    evq_loop loop;
    evq_loop_config config;
    /* what the hooks saw */
    char records[1024];
    char timers[256];
    uint64_t stop_at_timer; /* a timer handler sets the flag when this id fires */
    uint64_t rearm_data;    /* timers with this data re-arm themselves with delay 0 */
};

static uint64_t fixture_now(void *context)
{
    struct fixture *f = context;
    f->clock_reads++;
    f->fake.now += f->step_ns;
    return f->fake.now;
}

static void append(char *log, size_t size, const char *text)
{
    size_t used = strlen(log);
    snprintf(log + used, size - used, "%s%s", used ? "|" : "", text);
}

static void on_record(void *context, uint32_t sender, const char *text, size_t length)
{
    struct fixture *f = context;
    char line[300];
    snprintf(line, sizeof line, "%u:%s", (unsigned)sender, text);
    append(f->records, sizeof f->records, line);
    if (strlen(text) != length)
        append(f->records, sizeof f->records, "BAD LENGTH");
}

static void on_timer(void *context, evq_loop *loop, uint64_t id, uint64_t data)
{
    struct fixture *f = context;
    char line[64];
    snprintf(line, sizeof line, "%llu@%llu", (unsigned long long)data,
             (unsigned long long)(loop->loop_time / MS));
    append(f->timers, sizeof f->timers, line);
    if (id == f->stop_at_timer)
        atomic_store_explicit(&f->stop, true, memory_order_relaxed);
    if (f->rearm_data && data == f->rearm_data)
        evq_loop_add_timer(loop, 0, data, NULL);
}

/* A loop on a fake clock that spins (the test drives every turn). */
static int fixture_init(struct fixture *f)
{
    memset(f, 0, sizeof *f);
    int rc = evq_channel_init(&f->inbox, 64);
    if (rc != 0)
        return rc;
    f->config = evq_loop_default_config(&f->inbox, &f->stop);
    f->config.clock = (evq_clock){fixture_now, f};
    f->config.wait = EVQ_LOOP_SPIN;
    f->config.hooks = (evq_loop_hooks){on_record, on_timer, NULL, f};
    return 0;
}

static void fixture_destroy(struct fixture *f)
{
    evq_loop_destroy(&f->loop);
    evq_channel_destroy(&f->inbox);
}

static void send_text(struct fixture *f, uint32_t sender, const char *text, bool more,
                      uint64_t sent_at)
{
    evq_message m = {0};
    m.sender = sender;
    m.flags = more ? EVQ_MESSAGE_PART : 0;
    m.sent_at_ns = sent_at;
    evq_message_set_text(&m, text, strlen(text));
    evq_channel_try_send(&f->inbox, &m);
}

EVQ_TEST(config_is_checked)
{
    struct fixture f;
    REQUIRE_OK(fixture_init(&f));
    evq_loop_config bad = f.config;
    bad.inbox = NULL;
    CHECK_ERR(evq_loop_init(&f.loop, &bad), EVQ_EINVAL);
    bad = f.config;
    bad.stop = NULL;
    CHECK_ERR(evq_loop_init(&f.loop, &bad), EVQ_EINVAL);
    bad = f.config;
    bad.report_interval_ns = 0;
    CHECK_ERR(evq_loop_init(&f.loop, &bad), EVQ_EINVAL);
    bad = f.config;
    bad.drain_budget = 0;
    CHECK_ERR(evq_loop_init(&f.loop, &bad), EVQ_EINVAL);
    CHECK_ERR(evq_loop_init(&f.loop, NULL), EVQ_EINVAL);
    REQUIRE_OK(evq_loop_init(&f.loop, &f.config));
    fixture_destroy(&f);
}

EVQ_TEST(reads_the_clock_once_per_turn)
{
    struct fixture f;
    REQUIRE_OK(fixture_init(&f));
    f.step_ns = 10 * MS;
    REQUIRE_OK(evq_loop_init(&f.loop, &f.config));
    uint64_t reads_before = f.clock_reads;
    for (int i = 0; i < 7; i++) {
        send_text(&f, 0, "tick", false, 0);
        evq_loop_turn(&f.loop);
    }
    CHECK_UINT(f.clock_reads - reads_before, ==, 7);
    CHECK_UINT(f.loop.stats.turns, ==, 7);
    fixture_destroy(&f);
}

EVQ_TEST(messages_are_handled_in_fifo_order)
{
    struct fixture f;
    REQUIRE_OK(fixture_init(&f));
    REQUIRE_OK(evq_loop_init(&f.loop, &f.config));
    send_text(&f, 0, "a", false, 0);
    send_text(&f, 1, "b", false, 0);
    send_text(&f, 0, "c", false, 0);
    evq_loop_turn(&f.loop);
    CHECK_STR(f.records, ==, "0:a|1:b|0:c");
    CHECK_UINT(f.loop.stats.messages, ==, 3);
    CHECK_UINT(f.loop.stats.records, ==, 3);
    CHECK_UINT(f.loop.stats.records_across_turns, ==, 0);
    fixture_destroy(&f);
}

EVQ_TEST(a_record_in_parts_survives_across_turns)
{
    struct fixture f;
    REQUIRE_OK(fixture_init(&f));
    REQUIRE_OK(evq_loop_init(&f.loop, &f.config));
    send_text(&f, 2, "hel", true, 0);
    send_text(&f, 5, "whole", false, 0);
    evq_loop_turn(&f.loop);
    CHECK_STR(f.records, ==, "5:whole"); /* sender 2's record is pending */
    CHECK_INT(f.loop.pending[2].state, ==, EVQ_RECORD_ASSEMBLING);

    evq_loop_turn(&f.loop); /* nothing new: still pending */
    send_text(&f, 2, "lo, ", true, 0);
    evq_loop_turn(&f.loop);
    send_text(&f, 2, "world", false, 0);
    evq_loop_turn(&f.loop);
    CHECK_STR(f.records, ==, "5:whole|2:hello, world");
    CHECK_UINT(f.loop.stats.records, ==, 2);
    CHECK_UINT(f.loop.stats.records_across_turns, ==, 1);
    CHECK_INT(f.loop.pending[2].state, ==, EVQ_RECORD_IDLE);
    fixture_destroy(&f);
}

EVQ_TEST(interleaved_senders_keep_their_records_apart)
{
    struct fixture f;
    REQUIRE_OK(fixture_init(&f));
    REQUIRE_OK(evq_loop_init(&f.loop, &f.config));
    send_text(&f, 0, "A1", true, 0);
    send_text(&f, 1, "B1", true, 0);
    send_text(&f, 0, "A2", false, 0);
    send_text(&f, 1, "B2", false, 0);
    evq_loop_turn(&f.loop);
    CHECK_STR(f.records, ==, "0:A1A2|1:B1B2");
    fixture_destroy(&f);
}

EVQ_TEST(a_stale_partial_record_is_dropped_and_its_tail_skipped)
{
    struct fixture f;
    REQUIRE_OK(fixture_init(&f));
    f.config.pending_timeout_ns = 500 * MS;
    f.config.housekeeping_interval_ns = 100 * MS;
    REQUIRE_OK(evq_loop_init(&f.loop, &f.config));
    send_text(&f, 3, "never fin", true, 0);
    evq_loop_turn(&f.loop);
    for (int i = 0; i < 6; i++) { /* 600 ms of silence from sender 3 */
        evq_fake_clock_advance_ms(&f.fake, 100);
        evq_loop_turn(&f.loop);
    }
    CHECK_UINT(f.loop.stats.records_dropped, ==, 1);
    CHECK_INT(f.loop.pending[3].state, ==, EVQ_RECORD_DISCARDING);
    /* The tail turns up after all: skipped, not glued onto a new record. */
    send_text(&f, 3, "ished", false, 0);
    send_text(&f, 3, "next", false, 0);
    evq_loop_turn(&f.loop);
    CHECK_STR(f.records, ==, "3:next");
    fixture_destroy(&f);
}

EVQ_TEST(a_record_too_long_is_dropped_whole)
{
    struct fixture f;
    REQUIRE_OK(fixture_init(&f));
    f.config.drain_budget = 1000;
    REQUIRE_OK(evq_loop_init(&f.loop, &f.config));
    /* 10 parts of 40 bytes: 400 > EVQ_RECORD_MAX. Sent in small batches,
     * since the inbox holds 64. */
    char part[41];
    memset(part, 'z', 40);
    part[40] = '\0';
    for (int i = 0; i < 10; i++) {
        send_text(&f, 4, part, i < 9, 0);
        evq_loop_turn(&f.loop);
    }
    send_text(&f, 4, "short", false, 0);
    evq_loop_turn(&f.loop);
    CHECK_STR(f.records, ==, "4:short");
    CHECK_UINT(f.loop.stats.records_dropped, ==, 1);
    fixture_destroy(&f);
}

EVQ_TEST(an_unknown_sender_is_refused_not_a_crash)
{
    struct fixture f;
    REQUIRE_OK(fixture_init(&f));
    REQUIRE_OK(evq_loop_init(&f.loop, &f.config));
    send_text(&f, EVQ_LOOP_MAX_SENDERS, "who?", false, 0);
    send_text(&f, UINT32_MAX, "who?", false, 0);
    evq_loop_turn(&f.loop);
    CHECK_STR(f.records, ==, "");
    CHECK_UINT(f.loop.stats.messages, ==, 2);
    CHECK_UINT(f.loop.stats.records_dropped, ==, 2);
    fixture_destroy(&f);
}

EVQ_TEST(latency_of_a_message_stamped_after_loop_time_is_zero)
{
    struct fixture f;
    REQUIRE_OK(fixture_init(&f));
    evq_fake_clock_set_ns(&f.fake, 1000 * MS);
    REQUIRE_OK(evq_loop_init(&f.loop, &f.config));
    /* The producer read its clock after this turn's loop_time: 5 ms "later". */
    send_text(&f, 0, "from the future", false, 1005 * MS);
    evq_loop_turn(&f.loop);
    CHECK_UINT(f.loop.stats.max_latency_ns, ==, 0); /* not 584 years */
    send_text(&f, 0, "waited 3 ms", false, 997 * MS);
    evq_loop_turn(&f.loop);
    CHECK_UINT(f.loop.stats.max_latency_ns, ==, 3 * MS);
    fixture_destroy(&f);
}

EVQ_TEST(drain_budget_leaves_the_rest_for_the_next_turn)
{
    struct fixture f;
    REQUIRE_OK(fixture_init(&f));
    f.config.drain_budget = 4;
    REQUIRE_OK(evq_loop_init(&f.loop, &f.config));
    for (int i = 0; i < 10; i++)
        send_text(&f, 0, "m", false, 0);
    evq_loop_turn(&f.loop);
    CHECK_UINT(f.loop.stats.messages, ==, 4);
    CHECK_UINT(evq_loop_next_deadline(&f.loop), ==, f.loop.loop_time); /* don't sleep */
    evq_loop_turn(&f.loop);
    evq_loop_turn(&f.loop);
    CHECK_UINT(f.loop.stats.messages, ==, 10);
    evq_loop_turn(&f.loop);
    CHECK_UINT(evq_loop_next_deadline(&f.loop), >, f.loop.loop_time);
    fixture_destroy(&f);
}

/* ---- timers in the loop ------------------------------------------------------------- */

EVQ_TEST(timers_fire_at_their_deadline_in_order)
{
    struct fixture f;
    REQUIRE_OK(fixture_init(&f));
    REQUIRE_OK(evq_loop_init(&f.loop, &f.config));
    uint64_t cancelled;
    REQUIRE_OK(evq_loop_add_timer(&f.loop, 30 * MS, 3, NULL));
    REQUIRE_OK(evq_loop_add_timer(&f.loop, 10 * MS, 1, NULL));
    REQUIRE_OK(evq_loop_add_timer(&f.loop, 20 * MS, 2, &cancelled));
    REQUIRE_OK(evq_loop_add_timer(&f.loop, 30 * MS, 4, NULL)); /* ties with 3 */
    CHECK_OK(evq_loop_cancel_timer(&f.loop, cancelled));
    CHECK_UINT(evq_loop_next_deadline(&f.loop), ==, 10 * MS);

    for (int i = 0; i < 5; i++) {
        evq_fake_clock_advance_ms(&f.fake, 9);
        evq_loop_turn(&f.loop);
    }
    CHECK_STR(f.timers, ==, "1@18|3@36|4@36");
    CHECK_UINT(f.loop.stats.timers_fired, ==, 3);
    CHECK_ERR(evq_loop_cancel_timer(&f.loop, cancelled), EVQ_ENOENT);
    fixture_destroy(&f);
}

EVQ_TEST(a_timer_rearmed_with_no_delay_waits_for_the_next_turn)
{
    struct fixture f;
    REQUIRE_OK(fixture_init(&f));
    f.rearm_data = 9;
    REQUIRE_OK(evq_loop_init(&f.loop, &f.config));
    REQUIRE_OK(evq_loop_add_timer(&f.loop, 0, 9, NULL));
    /* If a timer added by a handler could fire in the same turn, the first
     * turn would never end. */
    evq_loop_turn(&f.loop);
    evq_loop_turn(&f.loop);
    evq_loop_turn(&f.loop);
    CHECK_UINT(f.loop.stats.timers_fired, ==, 3);
    CHECK_UINT(evq_timers_count(&f.loop.timers), ==, 1);
    fixture_destroy(&f);
}

EVQ_TEST(next_deadline_is_the_earliest_of_timers_and_tasks)
{
    struct fixture f;
    REQUIRE_OK(fixture_init(&f));
    REQUIRE_OK(evq_loop_init(&f.loop, &f.config)); /* housekeeping 250 ms, report 1 s */
    CHECK_UINT(evq_loop_next_deadline(&f.loop), ==, 250 * MS);
    uint64_t id;
    REQUIRE_OK(evq_loop_add_timer(&f.loop, 40 * MS, 0, &id));
    CHECK_UINT(evq_loop_next_deadline(&f.loop), ==, 40 * MS);
    REQUIRE_OK(evq_loop_cancel_timer(&f.loop, id));
    CHECK_UINT(evq_loop_next_deadline(&f.loop), ==, 250 * MS);
    /* A timer "forever" away does not overflow anything. */
    REQUIRE_OK(evq_loop_add_timer(&f.loop, UINT64_MAX, 0, NULL));
    CHECK_UINT(evq_loop_next_deadline(&f.loop), ==, 250 * MS);
    fixture_destroy(&f);
}

/* ---- the termination flag ----------------------------------------------------------- */

EVQ_TEST(a_flag_set_before_run_means_no_turn)
{
    struct fixture f;
    REQUIRE_OK(fixture_init(&f));
    REQUIRE_OK(evq_loop_init(&f.loop, &f.config));
    atomic_store(&f.stop, true);
    evq_loop_run(&f.loop);
    CHECK_UINT(f.loop.stats.turns, ==, 0);
    fixture_destroy(&f);
}

EVQ_TEST(a_flag_set_during_a_turn_ends_the_loop_after_that_turn)
{
    struct fixture f;
    REQUIRE_OK(fixture_init(&f));
    f.step_ns = 10 * MS; /* turn k sees loop_time = 10 k ms */
    REQUIRE_OK(evq_loop_init(&f.loop, &f.config));
    REQUIRE_OK(evq_loop_add_timer(&f.loop, 35 * MS, 7, &f.stop_at_timer));
    REQUIRE_OK(evq_loop_add_timer(&f.loop, 35 * MS, 8, NULL)); /* due in the same turn */
    REQUIRE_OK(evq_loop_add_timer(&f.loop, 45 * MS, 9, NULL)); /* due a turn later */
    evq_loop_run(&f.loop);
    /* Init read 10 ms, so the timers are due at 45, 45 and 55; turns see 20,
     * 30, 40, 50. The flag is set in the fourth turn, which finishes (timer 8
     * still fires) and is the last: timer 9 never does. */
    CHECK_UINT(f.loop.stats.turns, ==, 4);
    CHECK_STR(f.timers, ==, "7@50|8@50");
    fixture_destroy(&f);
}

struct stopper {
    atomic_bool *stop;
    evq_channel *inbox; /* NULL: set the flag only, as a signal handler must */
};

static void stop_later(void *arg)
{
    struct stopper *stopper = arg;
    evq_sleep_ms(30);
    atomic_store_explicit(stopper->stop, true, memory_order_relaxed);
    if (stopper->inbox)
        evq_channel_wake(stopper->inbox);
}

/* A loop on the real clock that blocks, with nothing to do for an hour. */
static int blocking_fixture_init(struct fixture *f, uint64_t max_wait_ns)
{
    int rc = fixture_init(f);
    if (rc != 0)
        return rc;
    f->config.clock = evq_clock_system();
    f->config.wait = EVQ_LOOP_BLOCK;
    f->config.housekeeping_interval_ns = 3600 * EVQ_NS_PER_S;
    f->config.report_interval_ns = 3600 * EVQ_NS_PER_S;
    f->config.max_wait_ns = max_wait_ns;
    return evq_loop_init(&f->loop, &f->config);
}

EVQ_TEST(a_flag_and_a_wake_from_another_thread_end_a_blocked_loop)
{
    struct fixture f;
    REQUIRE_OK(blocking_fixture_init(&f, 3600 * EVQ_NS_PER_S));
    struct stopper stopper = {&f.stop, &f.inbox};
    evq_thread thread;
    REQUIRE_OK(evq_thread_start(&thread, stop_later, &stopper));
    evq_loop_run(&f.loop); /* without the wake: an hour; ctest gives up long before */
    evq_thread_join(&thread);
    /* Asleep in its first turn, woken, and out: no second sleep. */
    CHECK_UINT(f.loop.stats.turns, <=, 2);
    CHECK_UINT(f.loop.stats.waits, <=, 1);
    fixture_destroy(&f);
}

EVQ_TEST(a_bare_flag_is_seen_within_max_wait)
{
    struct fixture f;
    /* No wake, as from a signal handler: the loop sees the flag when its
     * capped sleep ends. */
    REQUIRE_OK(blocking_fixture_init(&f, 20 * MS));
    struct stopper stopper = {&f.stop, NULL};
    evq_thread thread;
    REQUIRE_OK(evq_thread_start(&thread, stop_later, &stopper));
    evq_loop_run(&f.loop); /* returns only once it has seen the flag */
    evq_thread_join(&thread);
    CHECK(atomic_load(&f.stop));
    /* Every turn but perhaps the last ended in a (capped) sleep: it never spun. */
    CHECK_UINT(f.loop.stats.waits, <=, f.loop.stats.turns);
    CHECK_UINT(f.loop.stats.waits + 1, >=, f.loop.stats.turns);
    fixture_destroy(&f);
}

EVQ_TEST(a_blocking_loop_sleeps_until_the_next_deadline)
{
    struct fixture f;
    REQUIRE_OK(blocking_fixture_init(&f, 3600 * EVQ_NS_PER_S));
    uint64_t start = f.loop.loop_time;
    REQUIRE_OK(evq_loop_add_timer(&f.loop, 30 * MS, 1, &f.stop_at_timer));
    evq_loop_run(&f.loop);
    /* One turn finds nothing and sleeps until the timer's deadline (never
     * less); the next fires it. A loop that spun would count thousands of
     * turns here, one that slept the hour to the next periodic task would
     * not finish. */
    CHECK_UINT(f.loop.stats.timers_fired, ==, 1);
    CHECK_UINT(f.loop.loop_time - start, >=, 30 * MS);
    CHECK_UINT(f.loop.stats.turns, ==, 2);
    CHECK_UINT(f.loop.stats.waits, ==, 1);
    fixture_destroy(&f);
}

EVQ_TEST(a_spinning_loop_never_sleeps)
{
    struct fixture f;
    REQUIRE_OK(fixture_init(&f));
    f.step_ns = 1 * MS;
    REQUIRE_OK(evq_loop_init(&f.loop, &f.config));
    REQUIRE_OK(evq_loop_add_timer(&f.loop, 500 * MS, 1, &f.stop_at_timer));
    evq_loop_run(&f.loop);
    /* Init read 1 ms, so the timer is due at 501; turn k sees k + 1 ms. */
    CHECK_UINT(f.loop.stats.turns, ==, 500);
    CHECK_UINT(f.loop.stats.waits, ==, 0);
    fixture_destroy(&f);
}

int main(int argc, char **argv)
{
    static const evq_test_case cases[] = {
        EVQ_CASE(config_is_checked),
        EVQ_CASE(reads_the_clock_once_per_turn),
        EVQ_CASE(messages_are_handled_in_fifo_order),
        EVQ_CASE(a_record_in_parts_survives_across_turns),
        EVQ_CASE(interleaved_senders_keep_their_records_apart),
        EVQ_CASE(a_stale_partial_record_is_dropped_and_its_tail_skipped),
        EVQ_CASE(a_record_too_long_is_dropped_whole),
        EVQ_CASE(an_unknown_sender_is_refused_not_a_crash),
        EVQ_CASE(latency_of_a_message_stamped_after_loop_time_is_zero),
        EVQ_CASE(drain_budget_leaves_the_rest_for_the_next_turn),
        EVQ_CASE(timers_fire_at_their_deadline_in_order),
        EVQ_CASE(a_timer_rearmed_with_no_delay_waits_for_the_next_turn),
        EVQ_CASE(next_deadline_is_the_earliest_of_timers_and_tasks),
        EVQ_CASE(a_flag_set_before_run_means_no_turn),
        EVQ_CASE(a_flag_set_during_a_turn_ends_the_loop_after_that_turn),
        EVQ_CASE(a_flag_and_a_wake_from_another_thread_end_a_blocked_loop),
        EVQ_CASE(a_bare_flag_is_seen_within_max_wait),
        EVQ_CASE(a_blocking_loop_sleeps_until_the_next_deadline),
        EVQ_CASE(a_spinning_loop_never_sleeps),
    };
    return evq_test_main(argc, argv, cases, EVQ_COUNT(cases));
}

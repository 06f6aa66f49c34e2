/* Tests of the simplest loop: a FIFO queue of events and its dispatcher. */
#include "evq_queue.h"
#include "evq_test.h"

#include <stdio.h>

EVQ_TEST(pops_in_fifo_order)
{
    evq_queue queue;
    REQUIRE_OK(evq_queue_init(&queue, 8));
    CHECK_OK(evq_queue_push_timer(&queue, 7));
    CHECK_OK(evq_queue_push_message(&queue, "first"));
    CHECK_OK(evq_queue_push_timer(&queue, 0));
    CHECK_OK(evq_queue_push_message(&queue, "second"));
    CHECK_UINT(evq_queue_count(&queue), ==, 4);

    evq_event event;
    REQUIRE(evq_queue_pop(&queue, &event));
    CHECK_INT(event.kind, ==, EVQ_EVENT_TIMER);
    CHECK_UINT(event.timer, ==, 7);
    REQUIRE(evq_queue_pop(&queue, &event));
    CHECK_INT(event.kind, ==, EVQ_EVENT_MESSAGE);
    CHECK_STR(event.text, ==, "first");
    REQUIRE(evq_queue_pop(&queue, &event));
    CHECK_INT(event.kind, ==, EVQ_EVENT_TIMER);
    CHECK_UINT(event.timer, ==, 0);
    REQUIRE(evq_queue_pop(&queue, &event));
    CHECK_STR(event.text, ==, "second");
    CHECK(!evq_queue_pop(&queue, &event));
    evq_queue_destroy(&queue);
}

EVQ_TEST(full_queue_refuses_and_keeps_what_it_has)
{
    evq_queue queue;
    REQUIRE_OK(evq_queue_init(&queue, 3));
    CHECK_OK(evq_queue_push_timer(&queue, 1));
    CHECK_OK(evq_queue_push_timer(&queue, 2));
    CHECK_OK(evq_queue_push_message(&queue, "three"));
    CHECK_ERR(evq_queue_push_timer(&queue, 4), EVQ_EFULL);
    CHECK_ERR(evq_queue_push_message(&queue, "four"), EVQ_EFULL);
    CHECK_UINT(evq_queue_count(&queue), ==, 3);

    evq_event event;
    REQUIRE(evq_queue_pop(&queue, &event));
    CHECK_UINT(event.timer, ==, 1);
    CHECK_OK(evq_queue_push_timer(&queue, 4)); /* room again */
    REQUIRE(evq_queue_pop(&queue, &event));
    CHECK_UINT(event.timer, ==, 2);
    REQUIRE(evq_queue_pop(&queue, &event));
    CHECK_STR(event.text, ==, "three");
    REQUIRE(evq_queue_pop(&queue, &event));
    CHECK_UINT(event.timer, ==, 4);
    evq_queue_destroy(&queue);
}

EVQ_TEST(ring_wraps_around_many_times)
{
    evq_queue queue;
    REQUIRE_OK(evq_queue_init(&queue, 5));
    uint64_t pushed = 0, popped = 0;
    evq_event event;
    /* Push three, pop two, over and over: head and tail pass the end of
     * the array many times, and the order must hold throughout. */
    for (int round = 0; round < 100; round++) {
        while (evq_queue_count(&queue) < 5 && pushed < popped + 5)
            REQUIRE_OK(evq_queue_push_timer(&queue, pushed++));
        for (int i = 0; i < 2; i++) {
            REQUIRE(evq_queue_pop(&queue, &event));
            REQUIRE_UINT(event.timer, ==, popped);
            popped++;
        }
    }
    while (evq_queue_pop(&queue, &event))
        REQUIRE_UINT(event.timer, ==, popped++);
    CHECK_UINT(popped, ==, pushed);
    CHECK_UINT(pushed, >, 100);
    evq_queue_destroy(&queue);
}

EVQ_TEST(rejects_bad_input_with_a_code)
{
    evq_queue queue;
    CHECK_ERR(evq_queue_init(&queue, 0), EVQ_EINVAL);
    REQUIRE_OK(evq_queue_init(&queue, 2));
    char long_text[EVQ_EVENT_TEXT_MAX + 1];
    memset(long_text, 'x', sizeof long_text - 1);
    long_text[sizeof long_text - 1] = '\0';
    CHECK_ERR(evq_queue_push_message(&queue, long_text), EVQ_EMSGSIZE);
    long_text[EVQ_EVENT_TEXT_MAX - 1] = '\0'; /* exactly fits with its NUL */
    CHECK_OK(evq_queue_push_message(&queue, long_text));
    CHECK_ERR(evq_queue_push_message(&queue, NULL), EVQ_EINVAL);
    CHECK_UINT(evq_queue_count(&queue), ==, 1);
    evq_queue_destroy(&queue);
}

/* ---- the dispatcher -------------------------------------------------------------- */

struct recorder {
    evq_queue *queue;
    char log[512];
    size_t dispatched;
    atomic_bool stop;
    size_t stop_after; /* set the flag after this many events (0: never) */
    bool echo_timers;  /* a timer handler pushes a message */
};

static void note(struct recorder *r, const char *what)
{
    size_t used = strlen(r->log);
    snprintf(r->log + used, sizeof r->log - used, "%s%s", used ? " " : "", what);
    if (++r->dispatched == r->stop_after)
        atomic_store_explicit(&r->stop, true, memory_order_relaxed);
}

static void record_timer(void *context, uint64_t timer)
{
    struct recorder *r = context;
    char text[32];
    snprintf(text, sizeof text, "t%llu", (unsigned long long)timer);
    note(r, text);
    if (r->echo_timers) {
        snprintf(text, sizeof text, "echo%llu", (unsigned long long)timer);
        evq_queue_push_message(r->queue, text);
    }
}

static void record_message(void *context, const char *text)
{
    note(context, text);
}

EVQ_TEST(run_dispatches_until_empty)
{
    evq_queue queue;
    REQUIRE_OK(evq_queue_init(&queue, 8));
    struct recorder r = {.queue = &queue};
    evq_queue_handlers handlers = {record_timer, record_message, &r};
    evq_queue_push_message(&queue, "hello");
    evq_queue_push_timer(&queue, 1);
    evq_queue_push_message(&queue, "bye");
    CHECK_UINT(evq_queue_run(&queue, &handlers, &r.stop), ==, 3);
    CHECK_STR(r.log, ==, "hello t1 bye");
    CHECK_UINT(evq_queue_count(&queue), ==, 0);
    CHECK_UINT(evq_queue_run(&queue, &handlers, NULL), ==, 0); /* empty: returns at once */
    evq_queue_destroy(&queue);
}

EVQ_TEST(run_dispatches_what_handlers_push_after_what_was_queued)
{
    evq_queue queue;
    REQUIRE_OK(evq_queue_init(&queue, 8));
    struct recorder r = {.queue = &queue, .echo_timers = true};
    evq_queue_handlers handlers = {record_timer, record_message, &r};
    evq_queue_push_timer(&queue, 1);
    evq_queue_push_timer(&queue, 2);
    evq_queue_push_message(&queue, "m");
    CHECK_UINT(evq_queue_run(&queue, &handlers, NULL), ==, 5);
    CHECK_STR(r.log, ==, "t1 t2 m echo1 echo2");
    evq_queue_destroy(&queue);
}

EVQ_TEST(run_stops_when_told_and_leaves_the_rest_queued)
{
    evq_queue queue;
    REQUIRE_OK(evq_queue_init(&queue, 8));
    struct recorder r = {.queue = &queue, .stop_after = 2};
    evq_queue_handlers handlers = {record_timer, record_message, &r};
    for (uint64_t i = 1; i <= 5; i++)
        evq_queue_push_timer(&queue, i);
    CHECK_UINT(evq_queue_run(&queue, &handlers, &r.stop), ==, 2);
    CHECK_STR(r.log, ==, "t1 t2");
    CHECK_UINT(evq_queue_count(&queue), ==, 3);

    /* Already set: not one more event. Cleared: it carries on in order. */
    CHECK_UINT(evq_queue_run(&queue, &handlers, &r.stop), ==, 0);
    atomic_store(&r.stop, false);
    CHECK_UINT(evq_queue_run(&queue, &handlers, &r.stop), ==, 3);
    CHECK_STR(r.log, ==, "t1 t2 t3 t4 t5");
    evq_queue_destroy(&queue);
}

EVQ_TEST(run_skips_events_without_a_handler)
{
    evq_queue queue;
    REQUIRE_OK(evq_queue_init(&queue, 4));
    struct recorder r = {.queue = &queue};
    evq_queue_handlers handlers = {NULL, record_message, &r};
    evq_queue_push_timer(&queue, 9);
    evq_queue_push_message(&queue, "only");
    CHECK_UINT(evq_queue_run(&queue, &handlers, NULL), ==, 2);
    CHECK_STR(r.log, ==, "only");
    evq_queue_destroy(&queue);
}

int main(int argc, char **argv)
{
    static const evq_test_case cases[] = {
        EVQ_CASE(pops_in_fifo_order),
        EVQ_CASE(full_queue_refuses_and_keeps_what_it_has),
        EVQ_CASE(ring_wraps_around_many_times),
        EVQ_CASE(rejects_bad_input_with_a_code),
        EVQ_CASE(run_dispatches_until_empty),
        EVQ_CASE(run_dispatches_what_handlers_push_after_what_was_queued),
        EVQ_CASE(run_stops_when_told_and_leaves_the_rest_queued),
        EVQ_CASE(run_skips_events_without_a_handler),
    };
    return evq_test_main(argc, argv, cases, EVQ_COUNT(cases));
}

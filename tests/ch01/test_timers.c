/* Tests of the timer heap: order, ties, cancel. */
#include "evq_timers.h"
#include "evq_test.h"

#include <stdbool.h>

/* A small deterministic generator, so that "random" runs are repeatable. */
static uint64_t next_random(uint64_t *state)
{
    *state = *state * 6364136223846793005u + 1442695040888963407u;
    return *state >> 33;
}

EVQ_TEST(empty_heap_has_no_deadline)
{
    evq_timers timers;
    evq_timers_init(&timers);
    evq_timer timer;
    CHECK_UINT(evq_timers_next_deadline(&timers), ==, UINT64_MAX);
    CHECK(evq_timers_peek(&timers) == NULL);
    CHECK_ERR(evq_timers_pop(&timers, &timer), EVQ_ENOENT);
    CHECK_UINT(evq_timers_count(&timers), ==, 0);
    evq_timers_destroy(&timers);
}

EVQ_TEST(pops_in_deadline_order)
{
    evq_timers timers;
    evq_timers_init(&timers);
    uint64_t state = 42;
    for (uint64_t i = 0; i < 500; i++)
        REQUIRE_OK(evq_timers_add(&timers, next_random(&state) % 1000, i, NULL));
    CHECK_UINT(evq_timers_count(&timers), ==, 500);

    evq_timer previous = {0, 0, 0}, timer;
    bool seen[500] = {false};
    for (int i = 0; i < 500; i++) {
        CHECK_UINT(evq_timers_next_deadline(&timers), ==, evq_timers_peek(&timers)->deadline_ns);
        REQUIRE_OK(evq_timers_pop(&timers, &timer));
        REQUIRE_UINT(timer.deadline_ns, >=, previous.deadline_ns);
        if (timer.deadline_ns == previous.deadline_ns)
            REQUIRE_UINT(timer.id, >, previous.id); /* ties: in insertion order */
        REQUIRE_UINT(timer.data, <, 500);
        REQUIRE(!seen[timer.data]);
        seen[timer.data] = true;
        previous = timer;
    }
    CHECK_UINT(evq_timers_count(&timers), ==, 0);
    evq_timers_destroy(&timers);
}

EVQ_TEST(equal_deadlines_fire_in_insertion_order)
{
    evq_timers timers;
    evq_timers_init(&timers);
    /* Interleave two deadlines so that the heap has to move things around. */
    for (uint64_t i = 0; i < 64; i++)
        REQUIRE_OK(evq_timers_add(&timers, i % 2 ? 500 : 100, i, NULL));
    evq_timer timer;
    for (uint64_t expected = 0; expected < 64; expected += 2) {
        REQUIRE_OK(evq_timers_pop(&timers, &timer));
        CHECK_UINT(timer.deadline_ns, ==, 100);
        CHECK_UINT(timer.data, ==, expected);
    }
    for (uint64_t expected = 1; expected < 64; expected += 2) {
        REQUIRE_OK(evq_timers_pop(&timers, &timer));
        CHECK_UINT(timer.deadline_ns, ==, 500);
        CHECK_UINT(timer.data, ==, expected);
    }
    evq_timers_destroy(&timers);
}

EVQ_TEST(ids_count_up_from_one)
{
    evq_timers timers;
    evq_timers_init(&timers);
    uint64_t a, b, c;
    REQUIRE_OK(evq_timers_add(&timers, 30, 0, &a));
    REQUIRE_OK(evq_timers_add(&timers, 10, 0, &b)); /* moves to the top */
    REQUIRE_OK(evq_timers_add(&timers, 20, 0, &c));
    CHECK_UINT(a, ==, 1);
    CHECK_UINT(b, ==, 2);
    CHECK_UINT(c, ==, 3);
    CHECK_UINT(evq_timers_peek(&timers)->id, ==, b);
    REQUIRE_OK(evq_timers_add(&timers, 0, 0, NULL)); /* id may be NULL */
    evq_timers_destroy(&timers);
}

EVQ_TEST(cancel_removes_only_that_timer)
{
    evq_timers timers;
    evq_timers_init(&timers);
    uint64_t ids[10];
    for (uint64_t i = 0; i < 10; i++)
        REQUIRE_OK(evq_timers_add(&timers, 100 * (10 - i), i, &ids[i]));
    CHECK_OK(evq_timers_cancel(&timers, ids[3]));
    CHECK_OK(evq_timers_cancel(&timers, ids[9])); /* the earliest, at the top */
    CHECK_OK(evq_timers_cancel(&timers, ids[0])); /* the latest */
    CHECK_UINT(evq_timers_count(&timers), ==, 7);

    evq_timer timer;
    const uint64_t expected[] = {8, 7, 6, 5, 4, 2, 1};
    for (size_t i = 0; i < 7; i++) {
        REQUIRE_OK(evq_timers_pop(&timers, &timer));
        CHECK_UINT(timer.data, ==, expected[i]);
    }
    evq_timers_destroy(&timers);
}

EVQ_TEST(cancel_of_a_fired_timer_is_enoent)
{
    evq_timers timers;
    evq_timers_init(&timers);
    uint64_t early, late;
    REQUIRE_OK(evq_timers_add(&timers, 10, 1, &early));
    REQUIRE_OK(evq_timers_add(&timers, 20, 2, &late));
    evq_timer timer;
    REQUIRE_OK(evq_timers_pop(&timers, &timer)); /* `early` fires */
    CHECK_UINT(timer.id, ==, early);

    CHECK_ERR(evq_timers_cancel(&timers, early), EVQ_ENOENT);
    CHECK_UINT(evq_timers_count(&timers), ==, 1); /* and `late` is untouched */
    CHECK_OK(evq_timers_cancel(&timers, late));
    CHECK_ERR(evq_timers_cancel(&timers, late), EVQ_ENOENT); /* twice */
    CHECK_ERR(evq_timers_cancel(&timers, 0), EVQ_ENOENT);    /* never an id */
    CHECK_ERR(evq_timers_cancel(&timers, 12345), EVQ_ENOENT);
    CHECK_UINT(evq_timers_count(&timers), ==, 0);
    evq_timers_destroy(&timers);
}

/* Random adds, cancels and pops against a plain array that knows the answer:
 * after any mix of them the heap hands out exactly the live timers, in order. */
EVQ_TEST(random_adds_cancels_and_pops_match_a_model)
{
    enum { ROUNDS = 4000, MAX_LIVE = 256 };
    evq_timers timers;
    evq_timers_init(&timers);
    evq_timer model[MAX_LIVE];
    size_t live = 0;
    uint64_t state = 7;
    for (int round = 0; round < ROUNDS; round++) {
        uint64_t choice = next_random(&state) % 10;
        if ((choice < 5 && live < MAX_LIVE) || live == 0) {
            evq_timer t = {next_random(&state) % 50, 0, (uint64_t)round};
            REQUIRE_OK(evq_timers_add(&timers, t.deadline_ns, t.data, &t.id));
            model[live++] = t;
        } else if (choice < 8) {
            size_t victim = (size_t)(next_random(&state) % live);
            REQUIRE_OK(evq_timers_cancel(&timers, model[victim].id));
            model[victim] = model[--live];
        } else {
            size_t first = 0; /* the model's earliest: smallest (deadline, id) */
            for (size_t i = 1; i < live; i++)
                if (model[i].deadline_ns < model[first].deadline_ns ||
                    (model[i].deadline_ns == model[first].deadline_ns &&
                     model[i].id < model[first].id))
                    first = i;
            evq_timer timer;
            REQUIRE_OK(evq_timers_pop(&timers, &timer));
            REQUIRE_UINT(timer.id, ==, model[first].id);
            REQUIRE_UINT(timer.deadline_ns, ==, model[first].deadline_ns);
            model[first] = model[--live];
        }
        REQUIRE_UINT(evq_timers_count(&timers), ==, live);
    }
    evq_timers_destroy(&timers);
}

int main(int argc, char **argv)
{
    static const evq_test_case cases[] = {
        EVQ_CASE(empty_heap_has_no_deadline),
        EVQ_CASE(pops_in_deadline_order),
        EVQ_CASE(equal_deadlines_fire_in_insertion_order),
        EVQ_CASE(ids_count_up_from_one),
        EVQ_CASE(cancel_removes_only_that_timer),
        EVQ_CASE(cancel_of_a_fired_timer_is_enoent),
        EVQ_CASE(random_adds_cancels_and_pops_match_a_model),
    };
    return evq_test_main(argc, argv, cases, EVQ_COUNT(cases));
}

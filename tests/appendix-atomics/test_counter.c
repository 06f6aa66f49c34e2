/* test_counter.c - the relaxed counter loses nothing and hands out every
 * ticket exactly once. */
#include "atomics_test.h"
#include "evq_atomics.h"

#include <stdint.h>
#include <stdlib.h>

#define THREADS 4

struct adder {
    team *team;
    evq_counter *counter;
    uint64_t step;     /* what this thread adds each time */
    uint64_t count;    /* how many times */
    uint64_t *tickets; /* optional: the value before each add */
};

static void add_many(void *arg)
{
    struct adder *a = arg;
    team_wait_for_go(a->team);
    for (uint64_t i = 0; i < a->count; i++) {
        uint64_t before = evq_counter_add(a->counter, a->step);
        if (a->tickets)
            a->tickets[i] = before;
    }
}

EVQ_TEST(add_returns_the_value_before)
{
    evq_counter counter;
    evq_counter_init(&counter, 40);
    CHECK_UINT(evq_counter_add(&counter, 2), ==, 40);
    CHECK_UINT(evq_counter_add(&counter, 0), ==, 42);
    CHECK_UINT(evq_counter_read(&counter), ==, 42);
    /* Unsigned arithmetic wraps, as with a plain uint64_t. */
    evq_counter_init(&counter, UINT64_MAX);
    CHECK_UINT(evq_counter_add(&counter, 2), ==, UINT64_MAX);
    CHECK_UINT(evq_counter_read(&counter), ==, 1);
}

EVQ_TEST(total_is_exact_under_contention)
{
    const uint64_t per_thread = SCALED(1000000);
    evq_counter counter;
    evq_counter_init(&counter, 0);
    team t;
    team_init(&t);
    struct adder adders[THREADS];
    for (size_t i = 0; i < THREADS; i++) {
        /* Different steps: a lost update shows up even if it lost a 1. */
        adders[i] = (struct adder){&t, &counter, (uint64_t)i + 1, per_thread, NULL};
        REQUIRE_OK(team_start(&t, add_many, &adders[i]));
    }
    team_join(&t);
    /* per_thread * (1 + 2 + 3 + 4) */
    CHECK_UINT(evq_counter_read(&counter), ==, per_thread * 10);
}

EVQ_TEST(every_ticket_is_handed_out_once)
{
    const uint64_t per_thread = SCALED(250000);
    const uint64_t total = per_thread * THREADS;
    evq_counter counter;
    evq_counter_init(&counter, 0);
    uint64_t *tickets = calloc(total, sizeof *tickets);
    unsigned char *seen = calloc(total, 1);
    REQUIRE(tickets && seen);
    team t;
    team_init(&t);
    struct adder adders[THREADS];
    for (size_t i = 0; i < THREADS; i++) {
        adders[i] = (struct adder){&t, &counter, 1, per_thread, tickets + i * per_thread};
        if (!CHECK_OK(team_start(&t, add_many, &adders[i])))
            break;
    }
    team_join(&t);
    uint64_t duplicates = 0, out_of_range = 0, missing = 0;
    for (uint64_t i = 0; i < total; i++) {
        if (tickets[i] >= total)
            out_of_range++;
        else if (seen[tickets[i]])
            duplicates++;
        else
            seen[tickets[i]] = 1;
    }
    for (uint64_t i = 0; i < total; i++)
        missing += !seen[i];
    CHECK_UINT(duplicates, ==, 0);
    CHECK_UINT(out_of_range, ==, 0);
    CHECK_UINT(missing, ==, 0);
    CHECK_UINT(evq_counter_read(&counter), ==, total);
    free(seen);
    free(tickets);
}

int main(int argc, char **argv)
{
    static const evq_test_case cases[] = {
        EVQ_CASE(add_returns_the_value_before),
        EVQ_CASE(total_is_exact_under_contention),
        EVQ_CASE(every_ticket_is_handed_out_once),
    };
    return evq_test_main(argc, argv, cases, EVQ_COUNT(cases));
}

/* test_ring.c - the MPSC ring: first in first out, a full ring refuses and
 * keeps what it has, the position counters wrap around, and across millions
 * of pushes from several threads no value is lost, duplicated or reordered
 * within its producer. */
#include "atomics_test.h"
#include "evq_mpsc_ring.h"

#include <stdint.h>
#include <stdlib.h>

EVQ_TEST(capacity_must_be_a_power_of_two_of_at_least_two)
{
    evq_mpsc_ring ring;
    const size_t bad[] = {0, 1, 3, 6, 1000, SIZE_MAX, (SIZE_MAX / 2) + 1};
    for (size_t i = 0; i < EVQ_COUNT(bad); i++)
        CHECK_ERR(evq_mpsc_ring_init(&ring, bad[i]), EVQ_EINVAL);
    const size_t good[] = {2, 4, 1024};
    for (size_t i = 0; i < EVQ_COUNT(good); i++) {
        REQUIRE_OK(evq_mpsc_ring_init(&ring, good[i]));
        CHECK_UINT(evq_mpsc_ring_capacity(&ring), ==, good[i]);
        evq_mpsc_ring_destroy(&ring);
    }
}

EVQ_TEST(empty_ring_would_block)
{
    evq_mpsc_ring ring;
    REQUIRE_OK(evq_mpsc_ring_init(&ring, 4));
    uint64_t value = 7;
    CHECK_ERR(evq_mpsc_ring_try_pop(&ring, &value), EVQ_EWOULDBLOCK);
    CHECK_UINT(value, ==, 7); /* untouched */
    REQUIRE_OK(evq_mpsc_ring_try_push(&ring, 0));
    CHECK_OK(evq_mpsc_ring_try_pop(&ring, &value));
    CHECK_UINT(value, ==, 0);
    CHECK_ERR(evq_mpsc_ring_try_pop(&ring, &value), EVQ_EWOULDBLOCK);
    evq_mpsc_ring_destroy(&ring);
}

/* Fill, refuse, drain one, refill, drain: in order, any number of laps. */
static void check_laps(evq_mpsc_ring *ring, size_t laps)
{
    const size_t capacity = evq_mpsc_ring_capacity(ring);
    uint64_t next_in = 0, next_out = 0, value;
    for (size_t lap = 0; lap < laps; lap++) {
        while (next_in - next_out < capacity)
            REQUIRE_OK(evq_mpsc_ring_try_push(ring, UINT64_MAX - next_in++));
        CHECK_ERR(evq_mpsc_ring_try_push(ring, 12345), EVQ_EFULL);
        CHECK_ERR(evq_mpsc_ring_try_push(ring, 12345), EVQ_EFULL); /* still */
        /* Drain about half, so that the full point moves around the ring. */
        size_t take = capacity / 2 + lap % 2;
        for (size_t i = 0; i < take; i++) {
            REQUIRE_OK(evq_mpsc_ring_try_pop(ring, &value));
            REQUIRE_UINT(value, ==, UINT64_MAX - next_out++);
        }
    }
    while (next_out < next_in) {
        REQUIRE_OK(evq_mpsc_ring_try_pop(ring, &value));
        REQUIRE_UINT(value, ==, UINT64_MAX - next_out++);
    }
    CHECK_ERR(evq_mpsc_ring_try_pop(ring, &value), EVQ_EWOULDBLOCK);
}

EVQ_TEST(full_ring_refuses_and_keeps_its_values)
{
    evq_mpsc_ring ring;
    REQUIRE_OK(evq_mpsc_ring_init(&ring, 8));
    check_laps(&ring, 50);
    evq_mpsc_ring_destroy(&ring);
}

EVQ_TEST(smallest_ring_of_two)
{
    evq_mpsc_ring ring;
    REQUIRE_OK(evq_mpsc_ring_init(&ring, 2));
    check_laps(&ring, 50);
    evq_mpsc_ring_destroy(&ring);
}

/* Positions start a few steps below SIZE_MAX: the counters wrap to 0 while
 * the ring is full, half full and empty, and nothing changes. */
EVQ_TEST(position_counters_wrap_around)
{
    const size_t capacities[] = {2, 4, 8};
    for (size_t c = 0; c < EVQ_COUNT(capacities); c++) {
        for (size_t below = 0; below <= 2 * capacities[c]; below++) {
            evq_mpsc_ring ring;
            REQUIRE_OK(evq_mpsc_ring_init_at(&ring, capacities[c], SIZE_MAX - below));
            check_laps(&ring, 6);
            evq_mpsc_ring_destroy(&ring);
        }
    }
}

/* ---- many producers --------------------------------------------------------- */

#define PRODUCER_SHIFT 40 /* a value is producer << 40 | its sequence number */

struct run {
    team team;
    evq_mpsc_ring ring;
    uint64_t per_producer;
    atomic_bool give_up; /* the consumer timed out: producers stop too */
};

struct producer {
    struct run *run;
    uint64_t id;
    uint64_t full; /* how often it found the ring full */
};

static void produce(void *arg)
{
    struct producer *p = arg;
    struct run *run = p->run;
    team_wait_for_go(&run->team);
    for (uint64_t seq = 0; seq < run->per_producer; seq++) {
        uint64_t value = p->id << PRODUCER_SHIFT | seq;
        while (evq_mpsc_ring_try_push(&run->ring, value) == EVQ_EFULL) {
            p->full++;
            if (atomic_load_explicit(&run->give_up, memory_order_relaxed))
                return;
            evq_thread_yield(); /* let the consumer (maybe on our core) run */
        }
    }
}

/* Producers push from several threads while this thread consumes. Each
 * producer's values must arrive exactly once and in its own order (the ring
 * keeps the order in which positions were claimed). */
static void run_producers(size_t producers, size_t capacity, uint64_t per_producer, size_t first)
{
    static struct run run;
    run.per_producer = per_producer;
    atomic_init(&run.give_up, false);
    team_init(&run.team);
    REQUIRE_OK(evq_mpsc_ring_init_at(&run.ring, capacity, first));
    struct producer p[TEAM_MAX] = {0};
    uint64_t next[TEAM_MAX] = {0}; /* the sequence expected next from each */
    REQUIRE(producers <= TEAM_MAX);
    for (size_t i = 0; i < producers; i++) {
        p[i] = (struct producer){&run, i, 0};
        if (!CHECK_OK(team_start(&run.team, produce, &p[i])))
            break;
    }
    const size_t started = run.team.started; /* team_join() resets it */
    const uint64_t total = per_producer * started;
    uint64_t received = 0, out_of_order = 0, unknown = 0, empty = 0;
    uint64_t sum = 0, want_sum = 0;
    uint64_t start = evq_clock_now_ns();
    team_go(&run.team);
    while (received < total) {
        uint64_t value;
        if (evq_mpsc_ring_try_pop(&run.ring, &value) != 0) {
            if (++empty % 64 == 0) {
                if (past_wait_limit(start)) {
                    atomic_store(&run.give_up, true);
                    break;
                }
                evq_thread_yield();
            }
            continue;
        }
        received++;
        sum += value;
        uint64_t id = value >> PRODUCER_SHIFT;
        uint64_t seq = value & ((UINT64_C(1) << PRODUCER_SHIFT) - 1);
        if (id >= started)
            unknown++;
        else if (seq != next[id]++)
            out_of_order++; /* lost, duplicated or reordered */
    }
    team_join(&run.team);
    uint64_t value, full = 0;
    CHECK_ERR(evq_mpsc_ring_try_pop(&run.ring, &value), EVQ_EWOULDBLOCK); /* no extras */
    for (size_t i = 0; i < started; i++) {
        full += p[i].full;
        want_sum += ((uint64_t)i << PRODUCER_SHIFT) * per_producer;
        want_sum += per_producer * (per_producer - 1) / 2; /* 0 + 1 + ... */
    }
    CHECK_UINT(started, ==, producers);
    CHECK(!atomic_load(&run.give_up));
    CHECK_UINT(received, ==, total);
    CHECK_UINT(unknown, ==, 0);
    CHECK_UINT(out_of_order, ==, 0);
    for (size_t i = 0; i < producers; i++)
        CHECK_UINT(next[i], ==, per_producer);
    CHECK_UINT(sum, ==, want_sum);
    evq_test_note("%zu producers, capacity %zu: %llu values, ring full %llu times", producers,
                  capacity, (unsigned long long)received, (unsigned long long)full);
    evq_mpsc_ring_destroy(&run.ring);
}

EVQ_TEST(many_producers_nothing_lost_or_duplicated)
{
    /* 4 x 1 million values; 5 threads on this 2-core machine. */
    run_producers(4, 1024, SCALED(1000000), 0);
}

EVQ_TEST(many_producers_on_a_tiny_ring)
{
    /* Capacity 2: the ring is full nearly all the time, every slot is reused
     * every other push, and a producer that read a stale tail meets a slot
     * that has moved on by laps. */
    run_producers(3, 2, SCALED(200000), 0);
}

EVQ_TEST(many_producers_across_the_counter_wrap)
{
    run_producers(4, 64, SCALED(100000), SIZE_MAX - 5000);
}

/* Several producers race to fill an empty ring with nobody consuming: exactly
 * `capacity` pushes succeed, and the ring then holds those values. */
struct filler {
    team *team;
    evq_mpsc_ring *ring;
    uint64_t id, pushed;
};

static void fill_until_full(void *arg)
{
    struct filler *f = arg;
    team_wait_for_go(f->team);
    while (evq_mpsc_ring_try_push(f->ring, f->id << PRODUCER_SHIFT | f->pushed) == 0)
        f->pushed++;
}

EVQ_TEST(racing_to_fill_stops_at_capacity)
{
    const size_t capacity = 4096;
    for (int round = 0; round < 20; round++) {
        evq_mpsc_ring ring;
        REQUIRE_OK(evq_mpsc_ring_init(&ring, capacity));
        team t;
        team_init(&t);
        struct filler fillers[4];
        for (uint64_t i = 0; i < 4; i++) {
            fillers[i] = (struct filler){&t, &ring, i, 0};
            REQUIRE_OK(team_start(&t, fill_until_full, &fillers[i]));
        }
        team_join(&t);
        uint64_t pushed = 0, next[4] = {0}, value;
        for (size_t i = 0; i < 4; i++)
            pushed += fillers[i].pushed;
        REQUIRE_UINT(pushed, ==, capacity);
        for (size_t i = 0; i < capacity; i++) {
            REQUIRE_OK(evq_mpsc_ring_try_pop(&ring, &value));
            uint64_t id = value >> PRODUCER_SHIFT;
            REQUIRE_UINT(id, <, 4);
            REQUIRE_UINT(value & ((UINT64_C(1) << PRODUCER_SHIFT) - 1), ==, next[id]++);
        }
        for (size_t i = 0; i < 4; i++)
            CHECK_UINT(next[i], ==, fillers[i].pushed);
        CHECK_ERR(evq_mpsc_ring_try_pop(&ring, &value), EVQ_EWOULDBLOCK);
        evq_mpsc_ring_destroy(&ring);
    }
}

int main(int argc, char **argv)
{
    static const evq_test_case cases[] = {
        EVQ_CASE(capacity_must_be_a_power_of_two_of_at_least_two),
        EVQ_CASE(empty_ring_would_block),
        EVQ_CASE(full_ring_refuses_and_keeps_its_values),
        EVQ_CASE(smallest_ring_of_two),
        EVQ_CASE(position_counters_wrap_around),
        EVQ_CASE(many_producers_nothing_lost_or_duplicated),
        EVQ_CASE(many_producers_on_a_tiny_ring),
        EVQ_CASE(many_producers_across_the_counter_wrap),
        EVQ_CASE(racing_to_fill_stops_at_capacity),
    };
    return evq_test_main(argc, argv, cases, EVQ_COUNT(cases));
}

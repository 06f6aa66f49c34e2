/* test_cas.c - compare-and-swap loops under contention: the maximum is the
 * maximum, and permits are never overdrawn. */
#include "atomics_test.h"
#include "evq_atomics.h"

#define THREADS 4

struct proposer {
    team *team;
    _Atomic uint64_t *maximum;
    uint64_t first, count; /* proposes first, first + THREADS, ... */
    uint64_t raised;       /* how many of its calls returned true */
    uint64_t went_down;    /* times the maximum was below a value already in */
};

static void propose(void *arg)
{
    struct proposer *p = arg;
    team_wait_for_go(p->team);
    /* Rising values from every thread at once, so that threads keep
     * overtaking each other and the CAS keeps failing and retrying. */
    for (uint64_t i = 0; i < p->count; i++) {
        uint64_t candidate = p->first + i * THREADS;
        p->raised += evq_max_update(p->maximum, candidate);
        /* A maximum never goes down: once our call returned, it is at least
         * our candidate. (A plain "if larger, store" breaks this: a thread
         * that compared before another's store overwrites it with less.) */
        if (atomic_load_explicit(p->maximum, memory_order_relaxed) < candidate)
            p->went_down++;
    }
    /* Smaller values afterwards must change nothing. */
    for (uint64_t i = 0; i < p->count; i++)
        p->raised += evq_max_update(p->maximum, i);
}

EVQ_TEST(max_update_single_thread)
{
    _Atomic uint64_t maximum;
    atomic_init(&maximum, 10);
    CHECK(!evq_max_update(&maximum, 3));
    CHECK(!evq_max_update(&maximum, 10)); /* equal is not larger */
    CHECK(evq_max_update(&maximum, 11));
    CHECK(evq_max_update(&maximum, UINT64_MAX));
    CHECK(!evq_max_update(&maximum, 12));
    CHECK_UINT(atomic_load(&maximum), ==, UINT64_MAX);
}

EVQ_TEST(max_update_keeps_the_largest)
{
    const uint64_t per_thread = SCALED(500000);
    _Atomic uint64_t maximum;
    atomic_init(&maximum, 0);
    team t;
    team_init(&t);
    struct proposer proposers[THREADS];
    for (uint64_t i = 0; i < THREADS; i++) {
        proposers[i] = (struct proposer){&t, &maximum, i + 1, per_thread, 0, 0};
        REQUIRE_OK(team_start(&t, propose, &proposers[i]));
    }
    team_join(&t);
    /* The largest proposal: thread THREADS-1's last, THREADS + (n-1)*THREADS. */
    CHECK_UINT(atomic_load(&maximum), ==, per_thread * THREADS);
    /* Every successful call raised the value, so there can be no more of them
     * than distinct values proposed, and at least one (the final value). */
    uint64_t raised = 0, went_down = 0;
    for (size_t i = 0; i < THREADS; i++) {
        raised += proposers[i].raised;
        went_down += proposers[i].went_down;
    }
    CHECK_UINT(went_down, ==, 0);
    CHECK_UINT(raised, >=, 1);
    CHECK_UINT(raised, <=, per_thread * THREADS);
}

/* Two threads, one per core, propose at the same moment, round after round:
 * in round r they propose 2r + 1 and 2r + 2, and after the round the maximum
 * must be exactly 2r + 2, whoever came last. */
struct duel {
    barrier barrier;
    _Atomic uint64_t maximum;
    uint64_t rounds;
    atomic_uint_fast64_t wrong;
};

static void duel_side(struct duel *d, uint64_t side)
{
    for (uint64_t r = 0; r < d->rounds; r++) {
        evq_max_update(&d->maximum, 2 * r + 1 + side);
        barrier_wait(&d->barrier);
        if (side == 0 && atomic_load(&d->maximum) != 2 * r + 2)
            atomic_fetch_add(&d->wrong, 1);
        barrier_wait(&d->barrier); /* checked before the next round starts */
    }
}

static void duel_other_side(void *arg)
{
    duel_side(arg, 1);
}

EVQ_TEST(max_update_head_to_head)
{
    static struct duel d;
    d.rounds = SCALED(100000);
    barrier_init(&d.barrier, 2);
    atomic_init(&d.maximum, 0);
    atomic_init(&d.wrong, 0);
    evq_thread other;
    REQUIRE_OK(evq_thread_start(&other, duel_other_side, &d));
    duel_side(&d, 0);
    CHECK_OK(evq_thread_join(&other));
    CHECK_UINT(atomic_load(&d.wrong), ==, 0);
    CHECK_UINT(atomic_load(&d.maximum), ==, 2 * d.rounds);
}

EVQ_TEST(permits_single_thread)
{
    _Atomic uint32_t permits;
    atomic_init(&permits, 2);
    CHECK(evq_permit_try_take(&permits));
    CHECK(evq_permit_try_take(&permits));
    CHECK(!evq_permit_try_take(&permits));
    CHECK_UINT(atomic_load(&permits), ==, 0); /* not 4294967295 */
    evq_permit_give(&permits);
    CHECK(evq_permit_try_take(&permits));
    CHECK(!evq_permit_try_take(&permits));
}

struct taker {
    team *team;
    _Atomic uint32_t *permits;
    uint64_t limit;
    uint64_t taken;
};

static void take_all_you_can(void *arg)
{
    struct taker *t = arg;
    team_wait_for_go(t->team);
    /* Bounded: more than `limit` takes means the count went below 0 and
     * wrapped; stop there rather than take 4 billion. */
    while (t->taken <= t->limit && evq_permit_try_take(t->permits))
        t->taken++;
}

EVQ_TEST(permits_are_shared_out_exactly)
{
    const uint32_t total = (uint32_t)SCALED(400000);
    _Atomic uint32_t permits;
    atomic_init(&permits, total);
    team t;
    team_init(&t);
    struct taker takers[THREADS];
    for (size_t i = 0; i < THREADS; i++) {
        takers[i] = (struct taker){&t, &permits, total, 0};
        REQUIRE_OK(team_start(&t, take_all_you_can, &takers[i]));
    }
    team_join(&t);
    uint64_t taken = 0;
    for (size_t i = 0; i < THREADS; i++)
        taken += takers[i].taken;
    CHECK_UINT(taken, ==, total);
    CHECK_UINT(atomic_load(&permits), ==, 0);
}

#define PERMITS 3

struct user {
    team *team;
    _Atomic uint32_t *permits;
    atomic_int *in_use;
    atomic_int *most_in_use;
    uint64_t rounds, granted, refused;
};

static void take_use_give(void *arg)
{
    struct user *u = arg;
    team_wait_for_go(u->team);
    for (uint64_t i = 0; i < u->rounds; i++) {
        if (!evq_permit_try_take(u->permits)) {
            u->refused++;
            continue;
        }
        u->granted++;
        int now = atomic_fetch_add(u->in_use, 1) + 1;
        int most = atomic_load(u->most_in_use);
        while (now > most && !atomic_compare_exchange_weak(u->most_in_use, &most, now)) {
        }
        atomic_fetch_sub(u->in_use, 1);
        evq_permit_give(u->permits);
    }
}

EVQ_TEST(permits_bound_the_holders)
{
    const uint64_t rounds = SCALED(200000);
    _Atomic uint32_t permits;
    atomic_int in_use, most_in_use;
    atomic_init(&permits, PERMITS);
    atomic_init(&in_use, 0);
    atomic_init(&most_in_use, 0);
    team t;
    team_init(&t);
    /* More threads than permits, and more than cores. */
    struct user users[2 * THREADS];
    for (size_t i = 0; i < 2 * THREADS; i++) {
        users[i] = (struct user){&t, &permits, &in_use, &most_in_use, rounds, 0, 0};
        REQUIRE_OK(team_start(&t, take_use_give, &users[i]));
    }
    team_join(&t);
    uint64_t granted = 0, refused = 0;
    for (size_t i = 0; i < 2 * THREADS; i++) {
        granted += users[i].granted;
        refused += users[i].refused;
    }
    CHECK_UINT(granted + refused, ==, rounds * 2 * THREADS);
    CHECK_UINT(granted, >=, 1);
    CHECK_INT(atomic_load(&most_in_use), <=, PERMITS);
    CHECK_INT(atomic_load(&most_in_use), >=, 1);
    CHECK_UINT(atomic_load(&permits), ==, PERMITS); /* all given back */
}

/* With one permit, take and give are lock and unlock: the acquire in take
 * and the release in give must hand plain memory from holder to holder.
 * (ThreadSanitizer reports a race here if either order is weakened.) */
struct one_permit {
    team team;
    _Atomic uint32_t permit;
    uint64_t rounds;
    uint64_t count; /* plain: only the permit holder touches it */
};

static void count_with_permit(void *arg)
{
    struct one_permit *s = arg;
    team_wait_for_go(&s->team);
    for (uint64_t i = 0; i < s->rounds; i++) {
        while (!evq_permit_try_take(&s->permit))
            evq_thread_yield();
        s->count++;
        evq_permit_give(&s->permit);
    }
}

EVQ_TEST(one_permit_is_a_lock)
{
    static struct one_permit s;
    s.rounds = SCALED(200000);
    s.count = 0;
    atomic_init(&s.permit, 1);
    team_init(&s.team);
    for (size_t i = 0; i < THREADS; i++)
        REQUIRE_OK(team_start(&s.team, count_with_permit, &s));
    team_join(&s.team);
    CHECK_UINT(s.count, ==, s.rounds * THREADS);
    CHECK_UINT(atomic_load(&s.permit), ==, 1);
}

int main(int argc, char **argv)
{
    static const evq_test_case cases[] = {
        EVQ_CASE(max_update_single_thread),       EVQ_CASE(max_update_keeps_the_largest),
        EVQ_CASE(max_update_head_to_head),        EVQ_CASE(permits_single_thread),
        EVQ_CASE(permits_are_shared_out_exactly), EVQ_CASE(permits_bound_the_holders),
        EVQ_CASE(one_permit_is_a_lock),
    };
    return evq_test_main(argc, argv, cases, EVQ_COUNT(cases));
}

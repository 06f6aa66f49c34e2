/* test_spinlock.c - both spin locks give mutual exclusion: plain counters
 * changed only under the lock end exact, and an invariant between two plain
 * fields holds every time a holder looks. */
#include "atomics_test.h"
#include "evq_spinlock.h"

/* What the locks protect: plain, non-atomic memory. Without mutual exclusion
 * increments are lost and `mirror` falls out of step with `count`; without
 * acquire/release a holder may see one updated and not the other (on Arm),
 * and ThreadSanitizer reports a race (everywhere). */
struct protected_data {
    uint64_t count;
    uint64_t mirror; /* == count * 3 whenever the lock is free */
};

enum lock_kind { FLAGLOCK, SPINLOCK };

struct shared {
    team team;
    enum lock_kind kind;
    evq_flaglock flaglock;
    evq_spinlock spinlock;
    struct protected_data data;
    uint64_t rounds;
    atomic_uint_fast64_t broken; /* invariant violations seen under the lock */
};

static void lock(struct shared *s)
{
    if (s->kind == FLAGLOCK)
        evq_flaglock_lock(&s->flaglock);
    else
        evq_spinlock_lock(&s->spinlock);
}

static void unlock(struct shared *s)
{
    if (s->kind == FLAGLOCK)
        evq_flaglock_unlock(&s->flaglock);
    else
        evq_spinlock_unlock(&s->spinlock);
}

static void hammer(void *arg)
{
    struct shared *s = arg;
    team_wait_for_go(&s->team);
    for (uint64_t i = 0; i < s->rounds; i++) {
        lock(s);
        if (s->data.mirror != s->data.count * 3)
            atomic_fetch_add_explicit(&s->broken, 1, memory_order_relaxed);
        s->data.count++;
        s->data.mirror += 3;
        unlock(s);
    }
}

static void run_hammer(enum lock_kind kind, size_t threads, uint64_t rounds)
{
    static struct shared s; /* big enough to keep off the stack; one at a time */
    s.kind = kind;
    evq_flaglock_init(&s.flaglock);
    evq_spinlock_init(&s.spinlock);
    s.data.count = 0;
    s.data.mirror = 0;
    s.rounds = rounds;
    atomic_init(&s.broken, 0);
    team_init(&s.team);
    for (size_t i = 0; i < threads; i++)
        if (!CHECK_OK(team_start(&s.team, hammer, &s)))
            break;
    size_t started = s.team.started;
    team_join(&s.team);
    CHECK_UINT(s.data.count, ==, rounds * started);
    CHECK_UINT(s.data.mirror, ==, rounds * started * 3);
    CHECK_UINT(atomic_load(&s.broken), ==, 0);
    CHECK_UINT(started, ==, threads);
}

EVQ_TEST(flaglock_excludes)
{
    run_hammer(FLAGLOCK, 4, SCALED(1000000));
}

EVQ_TEST(spinlock_excludes)
{
    run_hammer(SPINLOCK, 4, SCALED(1000000));
}

/* Eight threads on a machine with fewer cores: holders are preempted while
 * they hold the lock, and only the yield in the back-off lets them finish. */
EVQ_TEST(flaglock_excludes_oversubscribed)
{
    run_hammer(FLAGLOCK, 8, SCALED(250000));
}

EVQ_TEST(spinlock_excludes_oversubscribed)
{
    run_hammer(SPINLOCK, 8, SCALED(250000));
}

struct trier {
    struct shared *shared;
    bool got;
};

static void try_once(void *arg)
{
    struct trier *t = arg;
    if (t->shared->kind == FLAGLOCK) {
        t->got = evq_flaglock_try_lock(&t->shared->flaglock);
        if (t->got)
            evq_flaglock_unlock(&t->shared->flaglock);
    } else {
        t->got = evq_spinlock_try_lock(&t->shared->spinlock);
        if (t->got)
            evq_spinlock_unlock(&t->shared->spinlock);
    }
}

/* try_lock from another thread: refused while we hold it, granted after. */
static void check_try_lock(enum lock_kind kind)
{
    static struct shared s;
    s.kind = kind;
    evq_flaglock_init(&s.flaglock);
    evq_spinlock_init(&s.spinlock);
    struct trier trier = {&s, true};
    evq_thread thread;

    lock(&s);
    REQUIRE_OK(evq_thread_start(&thread, try_once, &trier));
    REQUIRE_OK(evq_thread_join(&thread));
    CHECK(!trier.got);
    unlock(&s);

    REQUIRE_OK(evq_thread_start(&thread, try_once, &trier));
    REQUIRE_OK(evq_thread_join(&thread));
    CHECK(trier.got);
    /* The trier unlocked again: we can take it. */
    if (kind == FLAGLOCK)
        CHECK(evq_flaglock_try_lock(&s.flaglock));
    else
        CHECK(evq_spinlock_try_lock(&s.spinlock));
}

EVQ_TEST(flaglock_try_lock)
{
    check_try_lock(FLAGLOCK);
}

EVQ_TEST(spinlock_try_lock)
{
    check_try_lock(SPINLOCK);
}

EVQ_TEST(static_initialiser_is_unlocked)
{
    static evq_flaglock lock = EVQ_FLAGLOCK_INIT;
    CHECK(evq_flaglock_try_lock(&lock));
    CHECK(!evq_flaglock_try_lock(&lock));
    evq_flaglock_unlock(&lock);
    CHECK(evq_flaglock_try_lock(&lock));
}

int main(int argc, char **argv)
{
    static const evq_test_case cases[] = {
        EVQ_CASE(flaglock_excludes),
        EVQ_CASE(spinlock_excludes),
        EVQ_CASE(flaglock_excludes_oversubscribed),
        EVQ_CASE(spinlock_excludes_oversubscribed),
        EVQ_CASE(flaglock_try_lock),
        EVQ_CASE(spinlock_try_lock),
        EVQ_CASE(static_initialiser_is_unlocked),
    };
    return evq_test_main(argc, argv, cases, EVQ_COUNT(cases));
}

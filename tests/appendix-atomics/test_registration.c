/* test_registration.c - the registration lock: registrations exclude one
 * another, none runs after close, close waits for the one in progress, and
 * what registrations wrote is visible to the closer. */
#include "atomics_test.h"
#include "evq_registration.h"

/* A stand-in for the queue's table of streams: plain memory that only a
 * registration (under the lock) changes. */
struct table {
    uint64_t size;
    uint64_t checksum; /* sum of the ids registered */
};

EVQ_TEST(begin_end_single_thread)
{
    evq_registration_lock lock;
    evq_registration_init(&lock);
    CHECK(!evq_registration_is_closed(&lock));
    REQUIRE_OK(evq_registration_begin(&lock));
    /* Held: a try from this thread is refused too (it is not recursive). */
    CHECK_ERR(evq_registration_try_begin(&lock), EVQ_EBUSY);
    evq_registration_end(&lock);
    REQUIRE_OK(evq_registration_try_begin(&lock));
    evq_registration_end(&lock);
}

EVQ_TEST(refuses_after_close)
{
    evq_registration_lock lock;
    evq_registration_init(&lock);
    evq_registration_close(&lock);
    CHECK(evq_registration_is_closed(&lock));
    CHECK_ERR(evq_registration_begin(&lock), EVQ_ECLOSED);
    CHECK_ERR(evq_registration_try_begin(&lock), EVQ_ECLOSED);
    /* A refusal leaves the lock free: close can take it again. */
    evq_registration_close(&lock);
    CHECK_ERR(evq_registration_begin(&lock), EVQ_ECLOSED);
    CHECK(evq_registration_is_closed(&lock));
}

struct holder_probe {
    evq_registration_lock *lock;
    int result;
};

static void try_begin_once(void *arg)
{
    struct holder_probe *p = arg;
    p->result = evq_registration_try_begin(p->lock);
    if (p->result == 0)
        evq_registration_end(p->lock);
}

EVQ_TEST(try_begin_is_busy_while_another_thread_registers)
{
    evq_registration_lock lock;
    evq_registration_init(&lock);
    struct holder_probe probe = {&lock, 1};
    evq_thread thread;
    REQUIRE_OK(evq_registration_begin(&lock));
    REQUIRE_OK(evq_thread_start(&thread, try_begin_once, &probe));
    REQUIRE_OK(evq_thread_join(&thread));
    CHECK_ERR(probe.result, EVQ_EBUSY);
    evq_registration_end(&lock);
    REQUIRE_OK(evq_thread_start(&thread, try_begin_once, &probe));
    REQUIRE_OK(evq_thread_join(&thread));
    CHECK_OK(probe.result);
}

struct closer {
    evq_registration_lock *lock;
    struct table *table;
    atomic_bool returned;
    struct table seen; /* the table as the closer saw it after close */
};

static void close_and_look(void *arg)
{
    struct closer *c = arg;
    evq_registration_close(c->lock);
    atomic_store(&c->returned, true);
    /* Plain reads: safe only because close waited for the registration and
     * acquired what it wrote. ThreadSanitizer checks that claim. */
    c->seen = *c->table;
}

EVQ_TEST(close_waits_for_the_registration_in_progress)
{
    evq_registration_lock lock;
    evq_registration_init(&lock);
    struct table table = {0, 0};
    struct closer closer = {&lock, &table, false, {0, 0}};
    atomic_init(&closer.returned, false);
    evq_thread thread;

    REQUIRE_OK(evq_registration_begin(&lock));
    REQUIRE_OK(evq_thread_start(&thread, close_and_look, &closer));
    /* Give the closer time to get stuck. If close did not wait for us, it
     * would return within this sleep; a correct one cannot. */
    evq_sleep_ms(50);
    CHECK(!atomic_load(&closer.returned));
    table.size = 1; /* the registration's work, after the closer started */
    table.checksum = 42;
    evq_registration_end(&lock);
    REQUIRE_OK(evq_thread_join(&thread));

    CHECK(atomic_load(&closer.returned));
    CHECK_UINT(closer.seen.size, ==, 1);
    CHECK_UINT(closer.seen.checksum, ==, 42);
    CHECK_ERR(evq_registration_begin(&lock), EVQ_ECLOSED);
}

#define REGISTRARS 4

struct race {
    team team;
    evq_registration_lock lock;
    struct table table;
    atomic_uint_fast64_t progress; /* registrations so far, for the closer */
};

struct registrar {
    struct race *race;
    uint64_t id;
    uint64_t registered, checksum;
    int refusal;       /* the first non-zero result */
    int refusal_again; /* one more try after that */
    bool timed_out;
};

static void register_until_closed(void *arg)
{
    struct registrar *r = arg;
    struct race *race = r->race;
    team_wait_for_go(&race->team);
    uint64_t start = evq_clock_now_ns();
    for (;;) {
        int rc = evq_registration_begin(&race->lock);
        if (rc != 0) {
            r->refusal = rc;
            break;
        }
        uint64_t stream = r->id * 1000000007u + r->registered;
        race->table.size++;
        race->table.checksum += stream;
        evq_registration_end(&race->lock);
        r->registered++;
        r->checksum += stream;
        atomic_fetch_add_explicit(&race->progress, 1, memory_order_relaxed);
        if (past_wait_limit(start)) {
            r->timed_out = true;
            return;
        }
    }
    r->refusal_again = evq_registration_begin(&race->lock);
}

/* Registrars hammer the lock from several threads while the main thread
 * closes it in the middle: every registration that began is complete in the
 * table the closer sees, none happens after, every registrar is refused. */
EVQ_TEST(close_in_the_middle_of_registrations)
{
    static struct race race;
    const uint64_t close_after = SCALED(200000);
    team_init(&race.team);
    evq_registration_init(&race.lock);
    race.table = (struct table){0, 0};
    atomic_init(&race.progress, 0);
    struct registrar registrars[REGISTRARS] = {0};
    for (size_t i = 0; i < REGISTRARS; i++) {
        registrars[i].race = &race;
        registrars[i].id = i + 1;
        REQUIRE_OK(team_start(&race.team, register_until_closed, &registrars[i]));
    }
    team_go(&race.team);
    uint64_t start = evq_clock_now_ns();
    while (atomic_load_explicit(&race.progress, memory_order_relaxed) < close_after &&
           !past_wait_limit(start))
        evq_thread_yield();
    evq_registration_close(&race.lock);
    struct table at_close = race.table; /* plain read: see the previous test */
    team_join(&race.team);

    uint64_t registered = 0, checksum = 0;
    for (size_t i = 0; i < REGISTRARS; i++) {
        CHECK(!registrars[i].timed_out);
        CHECK_ERR(registrars[i].refusal, EVQ_ECLOSED);
        CHECK_ERR(registrars[i].refusal_again, EVQ_ECLOSED);
        registered += registrars[i].registered;
        checksum += registrars[i].checksum;
    }
    CHECK_UINT(registered, >=, close_after);
    CHECK_UINT(at_close.size, ==, registered); /* nothing after close */
    CHECK_UINT(at_close.checksum, ==, checksum);
    CHECK_UINT(race.table.size, ==, registered);
    CHECK_UINT(race.table.checksum, ==, checksum);
}

int main(int argc, char **argv)
{
    static const evq_test_case cases[] = {
        EVQ_CASE(begin_end_single_thread),
        EVQ_CASE(refuses_after_close),
        EVQ_CASE(try_begin_is_busy_while_another_thread_registers),
        EVQ_CASE(close_waits_for_the_registration_in_progress),
        EVQ_CASE(close_in_the_middle_of_registrations),
    };
    return evq_test_main(argc, argv, cases, EVQ_COUNT(cases));
}

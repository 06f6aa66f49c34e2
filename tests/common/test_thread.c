/* Tests of evq_thread.h: threads run and join, the mutex excludes, the
 * condition variable wakes and times out. */
#include "evq_clock.h"
#include "evq_test.h"
#include "evq_thread.h"

#include <stdatomic.h>

#define THREADS    4
#define INCREMENTS 20000

struct shared {
    evq_mutex mutex;
    evq_cond cond;
    long counter; /* protected by mutex, deliberately not atomic */
    int ready;
    unsigned ids[THREADS];
};

static void add_many(void *arg)
{
    struct shared *shared = arg;
    for (int i = 0; i < INCREMENTS; i++) {
        evq_mutex_lock(&shared->mutex);
        shared->counter++;
        evq_mutex_unlock(&shared->mutex);
    }
}

EVQ_TEST(mutex_makes_a_plain_counter_exact)
{
    struct shared shared = {0};
    REQUIRE_OK(evq_mutex_init(&shared.mutex));
    evq_thread threads[THREADS];
    for (int i = 0; i < THREADS; i++)
        REQUIRE_OK(evq_thread_start(&threads[i], add_many, &shared));
    for (int i = 0; i < THREADS; i++)
        CHECK_OK(evq_thread_join(&threads[i]));
    CHECK_INT(shared.counter, ==, (long)THREADS * INCREMENTS);
    evq_mutex_destroy(&shared.mutex);
}

static void signal_ready(void *arg)
{
    struct shared *shared = arg;
    evq_mutex_lock(&shared->mutex);
    shared->ready = 1;
    evq_cond_signal(&shared->cond);
    evq_mutex_unlock(&shared->mutex);
}

EVQ_TEST(cond_wakes_a_waiter)
{
    struct shared shared = {0};
    REQUIRE_OK(evq_mutex_init(&shared.mutex));
    REQUIRE_OK(evq_cond_init(&shared.cond));
    evq_thread thread;
    evq_mutex_lock(&shared.mutex);
    REQUIRE_OK(evq_thread_start(&thread, signal_ready, &shared));
    /* Bounded: at most 100 waits of 100 ms before the test gives up. */
    for (int i = 0; i < 100 && !shared.ready; i++)
        evq_cond_timedwait(&shared.cond, &shared.mutex, 100);
    CHECK_INT(shared.ready, ==, 1);
    evq_mutex_unlock(&shared.mutex);
    CHECK_OK(evq_thread_join(&thread));
    evq_cond_destroy(&shared.cond);
    evq_mutex_destroy(&shared.mutex);
}

EVQ_TEST(cond_timedwait_times_out_no_earlier_than_asked)
{
    evq_mutex mutex;
    evq_cond cond;
    REQUIRE_OK(evq_mutex_init(&mutex));
    REQUIRE_OK(evq_cond_init(&cond));
    evq_mutex_lock(&mutex);
    uint64_t start = evq_clock_now_ns();
    int rc = 0;
    /* Spurious wake-ups may return 0 early: wait until the time is used up. */
    while (evq_elapsed_ns(evq_clock_now_ns(), start) < 20 * EVQ_NS_PER_MS)
        rc = evq_cond_timedwait(&cond, &mutex, 20);
    evq_mutex_unlock(&mutex);
    CHECK_ERR(rc, EVQ_ETIMEDOUT);
    CHECK_UINT(evq_elapsed_ns(evq_clock_now_ns(), start), >=, 20 * EVQ_NS_PER_MS);
    evq_cond_destroy(&cond);
    evq_mutex_destroy(&mutex);
}

static void record_id(void *arg)
{
    unsigned *slot = arg;
    *slot = evq_thread_id();
}

EVQ_TEST(thread_ids_are_distinct)
{
    struct shared shared = {0};
    evq_thread threads[THREADS];
    for (int i = 0; i < THREADS; i++)
        REQUIRE_OK(evq_thread_start(&threads[i], record_id, &shared.ids[i]));
    for (int i = 0; i < THREADS; i++)
        CHECK_OK(evq_thread_join(&threads[i]));
    unsigned self = evq_thread_id();
    CHECK_UINT(self, ==, evq_thread_id());
    for (int i = 0; i < THREADS; i++) {
        CHECK_UINT(shared.ids[i], !=, 0);
        CHECK_UINT(shared.ids[i], !=, self);
        for (int j = i + 1; j < THREADS; j++)
            CHECK_UINT(shared.ids[i], !=, shared.ids[j]);
    }
}

EVQ_TEST(sleep_sleeps_at_least_as_long_as_asked)
{
    uint64_t start = evq_clock_now_ns();
    evq_sleep_ms(15);
    CHECK_UINT(evq_elapsed_ns(evq_clock_now_ns(), start), >=, 15 * EVQ_NS_PER_MS);
}

int main(int argc, char **argv)
{
    static const evq_test_case cases[] = {
        EVQ_CASE(mutex_makes_a_plain_counter_exact),
        EVQ_CASE(cond_wakes_a_waiter),
        EVQ_CASE(cond_timedwait_times_out_no_earlier_than_asked),
        EVQ_CASE(thread_ids_are_distinct),
        EVQ_CASE(sleep_sleeps_at_least_as_long_as_asked),
    };
    return evq_test_main(argc, argv, cases, EVQ_COUNT(cases));
}

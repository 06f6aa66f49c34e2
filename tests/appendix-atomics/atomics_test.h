/* atomics_test.h - what the appendix's tests share: iteration counts scaled
 * for slow builds, and a team of threads that start at the same moment. */
#ifndef ATOMICS_TEST_H
#define ATOMICS_TEST_H

#include "evq_backoff.h"
#include "evq_clock.h"
#include "evq_test.h"
#include "evq_thread.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

/* ThreadSanitizer makes every atomic operation a call into its runtime and
 * AddressSanitizer slows plain code: the build divides the iteration counts
 * (EVQ_ATOMICS_SCALE, set in CMakeLists.txt), never the assertions, which
 * stay exact at any scale. */
#ifndef EVQ_ATOMICS_SCALE
#define EVQ_ATOMICS_SCALE 1
#endif
#define SCALED(n) ((n) / EVQ_ATOMICS_SCALE > 0 ? (n) / EVQ_ATOMICS_SCALE : 1)

/* No wait in these tests may take longer than this: a lost wakeup or a
 * livelock fails the case instead of hanging until ctest's timeout. */
#define WAIT_LIMIT_NS (30 * EVQ_NS_PER_S)

#define TEAM_MAX 16

/* Threads that all wait at a gate and start together, so that they really
 * contend instead of running one after the other as they are created. */
typedef struct team {
    evq_thread threads[TEAM_MAX];
    size_t started;
    atomic_bool go;
} team;

static inline void team_init(team *t)
{
    t->started = 0;
    atomic_init(&t->go, false);
}

/* In each thread, before its work. */
static inline void team_wait_for_go(team *t)
{
    while (!atomic_load_explicit(&t->go, memory_order_acquire))
        evq_thread_yield();
}

static inline int team_start(team *t, evq_thread_fn fn, void *arg)
{
    if (t->started == TEAM_MAX)
        return EVQ_EINVAL;
    int rc = evq_thread_start(&t->threads[t->started], fn, arg);
    if (rc == 0)
        t->started++;
    return rc;
}

static inline void team_go(team *t)
{
    atomic_store_explicit(&t->go, true, memory_order_release);
}

/* Open the gate (if not yet) and join every thread started. */
static inline void team_join(team *t)
{
    team_go(t);
    for (size_t i = 0; i < t->started; i++)
        CHECK_OK(evq_thread_join(&t->threads[i]));
    t->started = 0;
}

/* A reusable barrier: `parties` threads wait until all have arrived. Tests
 * use it to make threads collide on purpose, round after round. */
typedef struct barrier {
    unsigned parties;
    atomic_uint arrived;
    atomic_uint generation;
} barrier;

static inline void barrier_init(barrier *b, unsigned parties)
{
    b->parties = parties;
    atomic_init(&b->arrived, 0);
    atomic_init(&b->generation, 0);
}

static inline void barrier_wait(barrier *b)
{
    unsigned generation = atomic_load_explicit(&b->generation, memory_order_acquire);
    if (atomic_fetch_add_explicit(&b->arrived, 1, memory_order_acq_rel) + 1 == b->parties) {
        /* The last one in resets the count, then lets the others go. */
        atomic_store_explicit(&b->arrived, 0, memory_order_relaxed);
        atomic_fetch_add_explicit(&b->generation, 1, memory_order_release);
        return;
    }
    evq_backoff backoff = EVQ_BACKOFF_INIT;
    while (atomic_load_explicit(&b->generation, memory_order_acquire) == generation)
        evq_backoff_wait(&backoff);
}

/* Whether WAIT_LIMIT_NS has passed since `start` (for bounded waits). */
static inline bool past_wait_limit(uint64_t start)
{
    return evq_elapsed_ns(evq_clock_now_ns(), start) > WAIT_LIMIT_NS;
}

#endif

/* bench_atomics.c - what the spin locks, the registration lock and the ring
 * cost next to evq_mutex (a pthread mutex, or an SRW lock on Windows) and a
 * mutex + condition variable queue, measured in one run.
 *
 *     atomics_bench locks [repeats]   lock/unlock cost, 1, 2 and 8 threads
 *     atomics_bench ring [repeats]    ring vs mutex queue throughput
 *
 * Each configuration runs `repeats` times (default 5) and reports the median
 * and the range; ratios are against the mutex in the same configuration of
 * the same run. Every run checks its result (the counter is exact, every value
 * arrives) and the program exits non-zero if one is wrong. Build Release.
 */
#include "evq_atomics.h"
#include "evq_backoff.h"
#include "evq_clock.h"
#include "evq_error.h"
#include "evq_mpsc_ring.h"
#include "evq_registration.h"
#include "evq_spinlock.h"
#include "evq_thread.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_THREADS 8
#define MAX_REPEATS 15

static int failures;

/* ---- a gate: threads start together, timing starts when they do ------------- */

typedef struct gate {
    atomic_uint ready;
    atomic_bool go;
} gate;

static void gate_init(gate *g)
{
    atomic_init(&g->ready, 0);
    atomic_init(&g->go, false);
}

static void gate_wait(gate *g)
{
    atomic_fetch_add(&g->ready, 1);
    while (!atomic_load_explicit(&g->go, memory_order_acquire))
        evq_thread_yield();
}

static uint64_t gate_open(gate *g, unsigned threads)
{
    while (atomic_load(&g->ready) < threads)
        evq_thread_yield();
    uint64_t start = evq_clock_now_ns();
    atomic_store_explicit(&g->go, true, memory_order_release);
    return start;
}

static int compare_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

struct stats {
    double median, low, high;
};

static struct stats summarise(uint64_t *samples, int n, double scale)
{
    qsort(samples, (size_t)n, sizeof *samples, compare_u64);
    struct stats s = {(double)samples[n / 2] * scale, (double)samples[0] * scale,
                      (double)samples[n - 1] * scale};
    return s;
}

/* ---- locks -------------------------------------------------------------------------- */

enum lock_kind {
    LOCK_MUTEX,
    LOCK_FLAG,
    LOCK_SPIN,
    LOCK_SPIN_NO_YIELD,
    LOCK_REGISTRATION,
    LOCK_KINDS
};
static const char *const lock_names[LOCK_KINDS] = {"evq_mutex", "flaglock (TAS)", "spinlock (TTAS)",
                                                   "spinlock, no yield", "registration lock"};

/* The TTAS spin lock without the yield in its back-off: it pauses, at most
 * EVQ_BACKOFF_SPIN_LIMIT times in a row, for as long as it takes. Only here,
 * to measure what pure spinning costs when the holder is not running. */
static void spin_lock_no_yield(evq_spinlock *lock)
{
    unsigned spins = 1;
    while (atomic_exchange_explicit(&lock->held, true, memory_order_acquire)) {
        do {
            for (unsigned i = 0; i < spins; i++)
                evq_cpu_pause();
            if (spins < EVQ_BACKOFF_SPIN_LIMIT)
                spins *= 2;
        } while (atomic_load_explicit(&lock->held, memory_order_relaxed));
    }
}

/* A run stops early after this long (pure spinning can take minutes when
 * oversubscribed); ns/op is then computed from the operations done. */
#define RUN_LIMIT_NS (2 * EVQ_NS_PER_S)

struct lock_run {
    enum lock_kind kind;
    evq_mutex mutex;
    evq_flaglock flaglock;
    evq_spinlock spinlock;
    evq_registration_lock registration;
    gate gate;
    uint64_t ops_per_thread;
    unsigned inside;  /* rounds of arithmetic inside the critical section */
    unsigned outside; /* and between two critical sections */
    uint64_t deadline;
    uint64_t counter; /* plain: changed only in the critical section */
    atomic_uint_fast64_t done, sink;
    atomic_bool cut_short;
};

/* Work inside or between critical sections that the compiler cannot remove:
 * dependent multiply-adds, a few cycles each. */
static uint64_t work(uint64_t x, unsigned rounds)
{
    for (unsigned i = 0; i < rounds; i++)
        x = x * 6364136223846793005u + 1442695040888963407u;
    return x;
}

static void lock_worker(void *arg)
{
    struct lock_run *run = arg;
    const unsigned inside = run->inside, outside = run->outside;
    uint64_t x = 1, i;
    gate_wait(&run->gate);
    for (i = 0; i < run->ops_per_thread; i++) {
        if (i % 1024 == 1023 && evq_clock_now_ns() > run->deadline) {
            atomic_store(&run->cut_short, true);
            break;
        }
        switch (run->kind) {
        case LOCK_MUTEX:
            evq_mutex_lock(&run->mutex);
            run->counter++;
            x = work(x, inside);
            evq_mutex_unlock(&run->mutex);
            break;
        case LOCK_FLAG:
            evq_flaglock_lock(&run->flaglock);
            run->counter++;
            x = work(x, inside);
            evq_flaglock_unlock(&run->flaglock);
            break;
        case LOCK_SPIN:
            evq_spinlock_lock(&run->spinlock);
            run->counter++;
            x = work(x, inside);
            evq_spinlock_unlock(&run->spinlock);
            break;
        case LOCK_SPIN_NO_YIELD:
            spin_lock_no_yield(&run->spinlock);
            run->counter++;
            x = work(x, inside);
            evq_spinlock_unlock(&run->spinlock);
            break;
        case LOCK_REGISTRATION:
            if (evq_registration_begin(&run->registration) == 0) {
                run->counter++;
                x = work(x, inside);
                evq_registration_end(&run->registration);
            }
            break;
        case LOCK_KINDS:
            break;
        }
        x = work(x, outside);
    }
    atomic_fetch_add(&run->done, i);
    atomic_fetch_add_explicit(&run->sink, x, memory_order_relaxed);
}

struct lock_config {
    unsigned threads, inside, outside;
    uint64_t total_ops;
    const char *what;
};

/* One timed run: picoseconds per lock/unlock pair, all threads together
 * (wall time / pairs: the throughput of the lock). */
static uint64_t time_locks(enum lock_kind kind, const struct lock_config *cfg, bool *cut_short)
{
    static struct lock_run run;
    run.kind = kind;
    if (evq_mutex_init(&run.mutex) != 0)
        exit(2);
    evq_flaglock_init(&run.flaglock);
    evq_spinlock_init(&run.spinlock);
    evq_registration_init(&run.registration);
    gate_init(&run.gate);
    run.ops_per_thread = cfg->total_ops / cfg->threads;
    run.inside = cfg->inside;
    run.outside = cfg->outside;
    run.counter = 0;
    atomic_init(&run.done, 0);
    atomic_init(&run.sink, 0);
    atomic_init(&run.cut_short, false);
    evq_thread workers[MAX_THREADS];
    /* Set before the gate opens; the gate's release/acquire publishes it. */
    run.deadline = evq_clock_now_ns() + RUN_LIMIT_NS + 5 * EVQ_NS_PER_S;
    for (unsigned i = 0; i < cfg->threads; i++)
        if (evq_thread_start(&workers[i], lock_worker, &run) != 0)
            exit(2);
    while (atomic_load(&run.gate.ready) < cfg->threads)
        evq_thread_yield();
    run.deadline = evq_clock_now_ns() + RUN_LIMIT_NS;
    uint64_t start = gate_open(&run.gate, cfg->threads);
    for (unsigned i = 0; i < cfg->threads; i++)
        evq_thread_join(&workers[i]);
    uint64_t elapsed = evq_elapsed_ns(evq_clock_now_ns(), start);
    uint64_t done = atomic_load(&run.done);
    if (run.counter != done || done == 0) {
        fprintf(stderr, "%s, %u threads: counter %llu after %llu lock/unlock pairs\n",
                lock_names[kind], cfg->threads, (unsigned long long)run.counter,
                (unsigned long long)done);
        failures++;
    }
    *cut_short = *cut_short || atomic_load(&run.cut_short);
    evq_mutex_destroy(&run.mutex);
    return done ? elapsed * 1000 / done : 0;
}

static void bench_locks(int repeats)
{
    static const struct lock_config configs[] = {
        {1, 0, 0, 20000000, "1 thread (uncontended)"},
        {2, 0, 0, 4000000, "2 threads, empty section"},
        {2, 0, 64, 2000000, "2 threads, work between"},
        {2, 64, 0, 2000000, "2 threads, work inside"},
        {8, 0, 0, 4000000, "8 threads, empty section"},
        {8, 64, 0, 2000000, "8 threads, work inside"},
    };
    enum { CONFIGS = sizeof configs / sizeof configs[0] };
    static struct stats stats[CONFIGS][LOCK_KINDS];
    static bool cut_short[CONFIGS][LOCK_KINDS];

    /* What the work costs alone, so that it can be told apart from the lock. */
    uint64_t t0 = evq_clock_now_ns();
    uint64_t x = work(1, 64 * 1000000u);
    double work_ns = (double)evq_elapsed_ns(evq_clock_now_ns(), t0) / 1e6;
    printf("work: 64 multiply-adds = %.1f ns on one thread (checksum %llu)\n\n", work_ns,
           (unsigned long long)(x & 0xff));

    for (int c = 0; c < CONFIGS; c++) {
        for (int k = 0; k < LOCK_KINDS; k++) {
            uint64_t samples[MAX_REPEATS];
            for (int r = 0; r < repeats; r++)
                samples[r] = time_locks((enum lock_kind)k, &configs[c], &cut_short[c][k]);
            stats[c][k] = summarise(samples, repeats, 0.001);
        }
        fprintf(stderr, "  measured: %s\n", configs[c].what);
    }

    printf("ns per lock/unlock pair, median of %d runs (ratio to evq_mutex in the same "
           "configuration)\n\n| configuration |",
           repeats);
    for (int k = 0; k < LOCK_KINDS; k++)
        printf(" %s |", lock_names[k]);
    printf("\n|---|");
    for (int k = 0; k < LOCK_KINDS; k++)
        printf("---|");
    printf("\n");
    for (int c = 0; c < CONFIGS; c++) {
        printf("| %s |", configs[c].what);
        for (int k = 0; k < LOCK_KINDS; k++) {
            printf(" %.1f", stats[c][k].median);
            if (k > 0)
                printf(" (%.2fx)", stats[c][k].median / stats[c][0].median);
            printf("%s |", cut_short[c][k] ? " *" : "");
        }
        printf("\n");
    }
    printf("\nrange [min-max] of the %d runs:\n\n| configuration |", repeats);
    for (int k = 0; k < LOCK_KINDS; k++)
        printf(" %s |", lock_names[k]);
    printf("\n|---|");
    for (int k = 0; k < LOCK_KINDS; k++)
        printf("---|");
    printf("\n");
    for (int c = 0; c < CONFIGS; c++) {
        printf("| %s |", configs[c].what);
        for (int k = 0; k < LOCK_KINDS; k++)
            printf(" %.1f-%.1f |", stats[c][k].low, stats[c][k].high);
        printf("\n");
    }
    printf("\nwork inside/between: 64 multiply-adds. * = a run stopped after %d s; its ns/op "
           "counts the pairs it completed.\n",
           (int)(RUN_LIMIT_NS / EVQ_NS_PER_S));
}

/* ---- ring vs mutex + condition variable queue ----------------------------------- */

#define QUEUE_CAPACITY 1024

/* The classic blocking bounded queue: producers sleep while it is full, the
 * consumer while it is empty; signals only when someone sleeps. */
typedef struct mutex_queue {
    evq_mutex lock;
    evq_cond not_empty, not_full;
    uint64_t values[QUEUE_CAPACITY];
    size_t head, count;
    unsigned consumer_waiting, producers_waiting;
} mutex_queue;

static void mutex_queue_push(mutex_queue *q, uint64_t value)
{
    evq_mutex_lock(&q->lock);
    while (q->count == QUEUE_CAPACITY) {
        q->producers_waiting++;
        evq_cond_wait(&q->not_full, &q->lock);
        q->producers_waiting--;
    }
    q->values[(q->head + q->count) % QUEUE_CAPACITY] = value;
    q->count++;
    if (q->consumer_waiting)
        evq_cond_signal(&q->not_empty);
    evq_mutex_unlock(&q->lock);
}

static uint64_t mutex_queue_pop(mutex_queue *q)
{
    evq_mutex_lock(&q->lock);
    while (q->count == 0) {
        q->consumer_waiting++;
        evq_cond_wait(&q->not_empty, &q->lock);
        q->consumer_waiting--;
    }
    uint64_t value = q->values[q->head];
    q->head = (q->head + 1) % QUEUE_CAPACITY;
    q->count--;
    if (q->producers_waiting)
        evq_cond_signal(&q->not_full);
    evq_mutex_unlock(&q->lock);
    return value;
}

/* The same queue without sleeping: a full or empty queue is reported at
 * once and the caller yields, as with the ring. It separates what the lock
 * costs from what sleeping and waking cost. */
static bool mutex_queue_try_push(mutex_queue *q, uint64_t value)
{
    evq_mutex_lock(&q->lock);
    bool room = q->count < QUEUE_CAPACITY;
    if (room) {
        q->values[(q->head + q->count) % QUEUE_CAPACITY] = value;
        q->count++;
    }
    evq_mutex_unlock(&q->lock);
    return room;
}

static bool mutex_queue_try_pop(mutex_queue *q, uint64_t *value)
{
    evq_mutex_lock(&q->lock);
    bool some = q->count > 0;
    if (some) {
        *value = q->values[q->head];
        q->head = (q->head + 1) % QUEUE_CAPACITY;
        q->count--;
    }
    evq_mutex_unlock(&q->lock);
    return some;
}

enum queue_kind { QUEUE_BLOCKING, QUEUE_TRY, QUEUE_RING, QUEUE_KINDS };
static const char *const queue_names[QUEUE_KINDS] = {
    "mutex + condvar queue", "mutex queue, try + yield", "MPSC ring, try + yield"};

struct queue_run {
    enum queue_kind kind;
    evq_mpsc_ring ring;
    mutex_queue queue;
    gate gate;
    uint64_t per_producer;
};

struct producer_arg {
    struct queue_run *run;
    uint64_t id;
};

static void queue_producer(void *arg)
{
    struct producer_arg *p = arg;
    struct queue_run *run = p->run;
    gate_wait(&run->gate);
    for (uint64_t seq = 0; seq < run->per_producer; seq++) {
        uint64_t value = p->id << 40 | seq;
        switch (run->kind) {
        case QUEUE_BLOCKING:
            mutex_queue_push(&run->queue, value);
            break;
        case QUEUE_TRY:
            while (!mutex_queue_try_push(&run->queue, value))
                evq_thread_yield(); /* full: let the consumer run */
            break;
        case QUEUE_RING:
            while (evq_mpsc_ring_try_push(&run->ring, value) == EVQ_EFULL)
                evq_thread_yield();
            break;
        case QUEUE_KINDS:
            break;
        }
    }
}

static uint64_t consume_one(struct queue_run *run)
{
    uint64_t value = 0;
    evq_backoff backoff = EVQ_BACKOFF_INIT;
    switch (run->kind) {
    case QUEUE_BLOCKING:
        value = mutex_queue_pop(&run->queue);
        break;
    case QUEUE_TRY:
        while (!mutex_queue_try_pop(&run->queue, &value))
            evq_backoff_wait(&backoff); /* empty: pause, then yield */
        break;
    case QUEUE_RING:
        while (evq_mpsc_ring_try_pop(&run->ring, &value) != 0)
            evq_backoff_wait(&backoff);
        break;
    case QUEUE_KINDS:
        break;
    }
    return value;
}

/* One timed run: values per second from the producers to the consumer. */
static uint64_t time_queue(enum queue_kind kind, unsigned producers, uint64_t total)
{
    static struct queue_run run;
    run.kind = kind;
    run.per_producer = total / producers;
    gate_init(&run.gate);
    if (evq_mpsc_ring_init(&run.ring, QUEUE_CAPACITY) != 0 || evq_mutex_init(&run.queue.lock) ||
        evq_cond_init(&run.queue.not_empty) || evq_cond_init(&run.queue.not_full))
        exit(2);
    run.queue.head = run.queue.count = 0;
    run.queue.consumer_waiting = run.queue.producers_waiting = 0;
    evq_thread threads[MAX_THREADS];
    struct producer_arg args[MAX_THREADS];
    for (unsigned i = 0; i < producers; i++) {
        args[i] = (struct producer_arg){&run, i};
        if (evq_thread_start(&threads[i], queue_producer, &args[i]) != 0)
            exit(2);
    }
    const uint64_t expected = run.per_producer * producers;
    uint64_t next[MAX_THREADS] = {0}, wrong = 0;
    uint64_t start = gate_open(&run.gate, producers);
    for (uint64_t received = 0; received < expected; received++) {
        uint64_t value = consume_one(&run);
        uint64_t id = value >> 40;
        if (id >= producers || (value & ((UINT64_C(1) << 40) - 1)) != next[id]++)
            wrong++;
    }
    uint64_t elapsed = evq_elapsed_ns(evq_clock_now_ns(), start);
    for (unsigned i = 0; i < producers; i++)
        evq_thread_join(&threads[i]);
    if (wrong) {
        fprintf(stderr, "%s, %u producers: %llu values out of place\n", queue_names[kind],
                producers, (unsigned long long)wrong);
        failures++;
    }
    evq_mpsc_ring_destroy(&run.ring);
    evq_cond_destroy(&run.queue.not_full);
    evq_cond_destroy(&run.queue.not_empty);
    evq_mutex_destroy(&run.queue.lock);
    return expected * 1000000000u / (elapsed ? elapsed : 1);
}

static void bench_ring(int repeats)
{
    static const unsigned producer_counts[] = {1, 3, 7};
    enum { CONFIGS = sizeof producer_counts / sizeof producer_counts[0] };
    const uint64_t total = 4000000;
    static struct stats stats[CONFIGS][QUEUE_KINDS];
    for (int c = 0; c < CONFIGS; c++) {
        uint64_t samples[QUEUE_KINDS][MAX_REPEATS];
        for (int r = 0; r < repeats; r++) {
            /* Interleaved, so that a burst of other work on the machine hits
             * every kind rather than one. */
            for (int k = 0; k < QUEUE_KINDS; k++)
                samples[k][r] = time_queue((enum queue_kind)k, producer_counts[c], total);
        }
        for (int k = 0; k < QUEUE_KINDS; k++)
            stats[c][k] = summarise(samples[k], repeats, 1e-6);
    }
    printf("million values per second, median [min-max] of %d runs (ratio to the mutex + "
           "condvar queue)\n\n| producers + consumer |",
           repeats);
    for (int k = 0; k < QUEUE_KINDS; k++)
        printf(" %s |", queue_names[k]);
    printf("\n|---|");
    for (int k = 0; k < QUEUE_KINDS; k++)
        printf("---|");
    printf("\n");
    for (int c = 0; c < CONFIGS; c++) {
        printf("| %u + 1 |", producer_counts[c]);
        for (int k = 0; k < QUEUE_KINDS; k++) {
            printf(" %.2f [%.2f-%.2f]", stats[c][k].median, stats[c][k].low, stats[c][k].high);
            if (k > 0)
                printf(" (%.2fx)", stats[c][k].median / stats[c][0].median);
            printf(" |");
        }
        printf("\n");
    }
    printf("\n%llu values per run, capacity %d. The try + yield consumers never sleep: they "
           "keep a core busy while the queue is empty.\n",
           (unsigned long long)total, QUEUE_CAPACITY);
}

int main(int argc, char **argv)
{
    const char *what = argc > 1 ? argv[1] : "locks";
    int repeats = argc > 2 ? atoi(argv[2]) : 5;
    if (repeats < 1 || repeats > MAX_REPEATS) {
        fprintf(stderr, "repeats: 1 to %d\n", MAX_REPEATS);
        return 2;
    }
    if (strcmp(what, "locks") == 0) {
        bench_locks(repeats);
    } else if (strcmp(what, "ring") == 0) {
        bench_ring(repeats);
    } else {
        fprintf(stderr, "usage: %s locks|ring [repeats]\n", argv[0]);
        return 2;
    }
    return failures ? 1 : 0;
}

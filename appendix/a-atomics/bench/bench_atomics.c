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

enum lock_kind { LOCK_MUTEX, LOCK_FLAG, LOCK_SPIN, LOCK_REGISTRATION, LOCK_KINDS };
static const char *const lock_names[LOCK_KINDS] = {"evq_mutex", "flaglock (TAS)", "spinlock (TTAS)",
                                                   "registration lock"};

struct lock_run {
    enum lock_kind kind;
    evq_mutex mutex;
    evq_flaglock flaglock;
    evq_spinlock spinlock;
    evq_registration_lock registration;
    gate gate;
    uint64_t ops_per_thread;
    unsigned work;    /* rounds of arithmetic outside the lock */
    uint64_t counter; /* plain: the critical section */
    atomic_uint_fast64_t sink;
};

/* Work a thread does between two critical sections, which the compiler
 * cannot remove: a few dependent multiply-adds. */
static uint64_t outside_work(uint64_t x, unsigned rounds)
{
    for (unsigned i = 0; i < rounds; i++)
        x = x * 6364136223846793005u + 1442695040888963407u;
    return x;
}

static void lock_worker(void *arg)
{
    struct lock_run *run = arg;
    uint64_t x = 1;
    gate_wait(&run->gate);
    for (uint64_t i = 0; i < run->ops_per_thread; i++) {
        switch (run->kind) {
        case LOCK_MUTEX:
            evq_mutex_lock(&run->mutex);
            run->counter++;
            evq_mutex_unlock(&run->mutex);
            break;
        case LOCK_FLAG:
            evq_flaglock_lock(&run->flaglock);
            run->counter++;
            evq_flaglock_unlock(&run->flaglock);
            break;
        case LOCK_SPIN:
            evq_spinlock_lock(&run->spinlock);
            run->counter++;
            evq_spinlock_unlock(&run->spinlock);
            break;
        case LOCK_REGISTRATION:
            if (evq_registration_begin(&run->registration) == 0) {
                run->counter++;
                evq_registration_end(&run->registration);
            }
            break;
        case LOCK_KINDS:
            break;
        }
        x = outside_work(x, run->work);
    }
    atomic_fetch_add_explicit(&run->sink, x, memory_order_relaxed);
}

/* One timed run: nanoseconds per lock/unlock pair (all threads together). */
static uint64_t time_locks(enum lock_kind kind, unsigned threads, uint64_t ops_per_thread,
                           unsigned work)
{
    static struct lock_run run;
    run.kind = kind;
    if (evq_mutex_init(&run.mutex) != 0)
        exit(2);
    evq_flaglock_init(&run.flaglock);
    evq_spinlock_init(&run.spinlock);
    evq_registration_init(&run.registration);
    gate_init(&run.gate);
    run.ops_per_thread = ops_per_thread;
    run.work = work;
    run.counter = 0;
    atomic_init(&run.sink, 0);
    evq_thread workers[MAX_THREADS];
    for (unsigned i = 0; i < threads; i++)
        if (evq_thread_start(&workers[i], lock_worker, &run) != 0)
            exit(2);
    uint64_t start = gate_open(&run.gate, threads);
    for (unsigned i = 0; i < threads; i++)
        evq_thread_join(&workers[i]);
    uint64_t elapsed = evq_elapsed_ns(evq_clock_now_ns(), start);
    if (run.counter != ops_per_thread * threads) {
        fprintf(stderr, "%s, %u threads: counter %llu, expected %llu\n", lock_names[kind], threads,
                (unsigned long long)run.counter, (unsigned long long)(ops_per_thread * threads));
        failures++;
    }
    evq_mutex_destroy(&run.mutex);
    return elapsed * 1000 / (ops_per_thread * threads); /* picoseconds per op */
}

static void bench_locks(int repeats)
{
    struct config {
        unsigned threads;
        unsigned work;
        uint64_t total_ops;
        const char *what;
    } configs[] = {
        {1, 0, 20000000, "uncontended"},
        {2, 0, 4000000, "contended, one core each"},
        {8, 0, 2000000, "oversubscribed (8 threads)"},
        {1, 64, 4000000, "uncontended"},
        {2, 64, 4000000, "contended, one core each"},
        {8, 64, 2000000, "oversubscribed (8 threads)"},
    };
    /* What the outside work costs alone, so the reader can subtract it. */
    uint64_t t0 = evq_clock_now_ns();
    uint64_t x = outside_work(1, 64 * 1000000u);
    uint64_t work_ps = evq_elapsed_ns(evq_clock_now_ns(), t0) * 1000 / 1000000;
    printf("outside work: 64 multiply-adds = %.1f ns (checksum %llu)\n\n", (double)work_ps / 1000,
           (unsigned long long)(x & 0xff));

    printf("| threads | work between | %s ns/op |", lock_names[0]);
    for (int k = 1; k < LOCK_KINDS; k++)
        printf(" %s ns/op (x mutex) |", lock_names[k]);
    printf("\n|---|---|---|");
    for (int k = 1; k < LOCK_KINDS; k++)
        printf("---|");
    printf("\n");
    for (size_t c = 0; c < sizeof configs / sizeof configs[0]; c++) {
        const struct config *cfg = &configs[c];
        struct stats stats[LOCK_KINDS];
        for (int k = 0; k < LOCK_KINDS; k++) {
            uint64_t samples[MAX_REPEATS];
            for (int r = 0; r < repeats; r++)
                samples[r] = time_locks((enum lock_kind)k, cfg->threads,
                                        cfg->total_ops / cfg->threads, cfg->work);
            stats[k] = summarise(samples, repeats, 0.001);
        }
        printf("| %u (%s) | %s |", cfg->threads, cfg->what, cfg->work ? "64 mul-add" : "none");
        printf(" %.1f [%.1f-%.1f] |", stats[0].median, stats[0].low, stats[0].high);
        for (int k = 1; k < LOCK_KINDS; k++)
            printf(" %.1f [%.1f-%.1f] (%.2fx) |", stats[k].median, stats[k].low, stats[k].high,
                   stats[k].median / stats[0].median);
        printf("\n");
        fflush(stdout);
    }
    printf("\nns/op: wall time of the whole run / lock-unlock pairs of all threads, median "
           "[min-max] of %d runs.\n",
           repeats);
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

struct queue_run {
    bool use_ring;
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
        if (run->use_ring) {
            /* Full: the consumer is behind; let it (or another producer) run. */
            while (evq_mpsc_ring_try_push(&run->ring, value) == EVQ_EFULL)
                evq_thread_yield();
        } else {
            mutex_queue_push(&run->queue, value);
        }
    }
}

/* One timed run: values per second through the queue. */
static uint64_t time_queue(bool use_ring, unsigned producers, uint64_t total)
{
    static struct queue_run run;
    run.use_ring = use_ring;
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
    uint64_t next[MAX_THREADS] = {0}, received = 0, wrong = 0;
    uint64_t start = gate_open(&run.gate, producers);
    while (received < expected) {
        uint64_t value;
        if (use_ring) {
            evq_backoff backoff = EVQ_BACKOFF_INIT;
            while (evq_mpsc_ring_try_pop(&run.ring, &value) != 0)
                evq_backoff_wait(&backoff); /* empty: pause, then yield */
        } else {
            value = mutex_queue_pop(&run.queue);
        }
        received++;
        uint64_t id = value >> 40;
        if (id >= producers || (value & ((UINT64_C(1) << 40) - 1)) != next[id]++)
            wrong++;
    }
    uint64_t elapsed = evq_elapsed_ns(evq_clock_now_ns(), start);
    for (unsigned i = 0; i < producers; i++)
        evq_thread_join(&threads[i]);
    if (wrong) {
        fprintf(stderr, "%s, %u producers: %llu values out of place\n",
                use_ring ? "ring" : "mutex queue", producers, (unsigned long long)wrong);
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
    const unsigned producer_counts[] = {1, 3, 7};
    const uint64_t total = 4000000;
    printf("| producers + 1 consumer | mutex + condvar queue, M values/s | ring, M values/s "
           "| ring / mutex |\n|---|---|---|---|\n");
    for (size_t c = 0; c < sizeof producer_counts / sizeof producer_counts[0]; c++) {
        unsigned producers = producer_counts[c];
        uint64_t samples[2][MAX_REPEATS];
        for (int r = 0; r < repeats; r++) {
            /* Alternate, so that a burst of other work on the machine hits
             * both sides rather than one. */
            samples[0][r] = time_queue(false, producers, total);
            samples[1][r] = time_queue(true, producers, total);
        }
        struct stats queue = summarise(samples[0], repeats, 1e-6);
        struct stats ring = summarise(samples[1], repeats, 1e-6);
        printf("| %u + 1 | %.2f [%.2f-%.2f] | %.2f [%.2f-%.2f] | %.2fx |\n", producers,
               queue.median, queue.low, queue.high, ring.median, ring.low, ring.high,
               ring.median / queue.median);
        fflush(stdout);
    }
    printf("\n%llu values per run, queue capacity %d, median [min-max] of %d runs.\n",
           (unsigned long long)total, QUEUE_CAPACITY, repeats);
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

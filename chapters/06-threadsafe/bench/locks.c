/* locks.c - chapter 6's lock choice, measured: what guards a registration
 * (a slot in the stream table, and the socket into epoll) when any thread
 * may register while others wait.
 *
 *     ch06_bench_locks [--ms M] [--runs R]
 *
 * Three guards around the same work - take a slot in a table of keys, add
 * the socket to epoll (EPOLL_CTL_ADD), then delete it and free the slot:
 *   spin   appendix A's registration lock (compare-and-swap on a flag, with
 *          backoff; a "closed" flag checked under it) around all of it;
 *   mutex  one mutex around all of it;
 *   none   mio's way: nothing around epoll_ctl (the kernel call is
 *          thread-safe: eventpoll has its own lock), and the table under a
 *          mutex of its own, held for the slot only - chapter 6's queue.
 * For 1, 2, 4 and 8 registering threads (on however many cores the machine
 * has: 2 here): registrations per second, the median of R runs of M
 * milliseconds each. Then a waiter's latency while 4 threads register: a
 * thread in epoll_wait on the same epoll set is woken every millisecond
 * (an eventfd written by a pinger thread) and looks its key up in the
 * table under the guard, as chapter 6's waiters do; the table prints the
 * median and 99th percentile from the write to the lookup done.
 */
#define _GNU_SOURCE /* eventfd */
#include "bench.h"

#include "evq_registration.h"

#include "evq_clock.h"
#include "evq_thread.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

enum guard { GUARD_SPIN, GUARD_MUTEX, GUARD_NONE, GUARDS };
static const char *const guard_names[GUARDS] = {"spin (appendix A)", "mutex",
                                                "none (mio; table mutex)"};

enum { MAX_THREADS = 8, SOCKETS_PER_THREAD = 64, TABLE_SLOTS = 4096, LATENCY_SAMPLES = 20000 };

/* ---- the table: slots with a free list, as key_table.c ---- */

struct table {
    uint32_t next_free[TABLE_SLOTS];
    uint32_t generation[TABLE_SLOTS];
    uint32_t free_head;
};

static void table_init(struct table *t)
{
    for (uint32_t i = 0; i < TABLE_SLOTS; i++) {
        t->next_free[i] = i + 1;
        t->generation[i] = 0;
    }
    t->free_head = 0;
}

static uint64_t table_add(struct table *t)
{
    uint32_t index = t->free_head;
    t->free_head = t->next_free[index];
    return index | (uint64_t)t->generation[index] << 32;
}

static void table_remove(struct table *t, uint64_t key)
{
    uint32_t index = (uint32_t)key;
    t->generation[index]++;
    t->next_free[index] = t->free_head;
    t->free_head = index;
}

static bool table_lookup(const struct table *t, uint64_t key)
{
    return t->generation[(uint32_t)key] == (uint32_t)(key >> 32);
}

/* ---- one configuration ---- */

struct shared {
    enum guard guard;
    int epoll_fd;
    evq_registration_lock spin; /* GUARD_SPIN */
    pthread_mutex_t mutex;      /* GUARD_MUTEX: everything; GUARD_NONE: the table */
    struct table table;
    atomic_bool stop;
    atomic_uint_fast64_t registrations;
    atomic_int failures;
};

/* ANCHOR: guards */
static void guard_take(struct shared *s)
{
    if (s->guard == GUARD_SPIN) {
        if (evq_registration_begin(&s->spin) != 0)
            atomic_fetch_add(&s->failures, 1); /* never closed here */
    } else {
        pthread_mutex_lock(&s->mutex); /* GUARD_NONE: the table's own */
    }
}

static void guard_give(struct shared *s)
{
    if (s->guard == GUARD_SPIN)
        evq_registration_end(&s->spin);
    else
        pthread_mutex_unlock(&s->mutex);
}

/* One registration and its removal. spin and mutex hold their guard
 * across the kernel call; none holds the table's mutex for the slot only,
 * and calls epoll_ctl with no lock of its own held. */
static void register_once(struct shared *s, int fd)
{
    struct epoll_event ev = {.events = EPOLLIN | EPOLLET};
    bool whole = s->guard != GUARD_NONE;
    guard_take(s);
    ev.data.u64 = table_add(&s->table);
    if (!whole)
        guard_give(s);
    if (epoll_ctl(s->epoll_fd, EPOLL_CTL_ADD, fd, &ev) != 0 ||
        epoll_ctl(s->epoll_fd, EPOLL_CTL_DEL, fd, &ev) != 0)
        atomic_fetch_add(&s->failures, 1);
    if (!whole)
        guard_take(s);
    table_remove(&s->table, ev.data.u64);
    guard_give(s);
}
/* ANCHOR_END: guards */

struct registrar {
    struct shared *shared;
    int fds[SOCKETS_PER_THREAD];
    uint64_t count;
};

static void registrar_run(void *arg)
{
    struct registrar *r = arg;
    uint64_t count = 0;
    while (!atomic_load_explicit(&r->shared->stop, memory_order_relaxed)) {
        register_once(r->shared, r->fds[count % SOCKETS_PER_THREAD]);
        count++;
    }
    r->count = count;
}

static int shared_open(struct shared *s, enum guard guard)
{
    memset(s, 0, sizeof *s);
    s->guard = guard;
    evq_registration_init(&s->spin);
    pthread_mutex_init(&s->mutex, NULL);
    table_init(&s->table);
    s->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    return s->epoll_fd >= 0 ? 0 : -1;
}

static void shared_close(struct shared *s)
{
    close(s->epoll_fd);
    pthread_mutex_destroy(&s->mutex);
}

static int registrars_start(struct shared *s, struct registrar *r, evq_thread *threads, int count)
{
    for (int t = 0; t < count; t++) {
        r[t] = (struct registrar){.shared = s};
        for (int i = 0; i < SOCKETS_PER_THREAD; i++) {
            r[t].fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
            if (r[t].fds[i] < 0)
                return -1;
        }
    }
    for (int t = 0; t < count; t++) {
        if (evq_thread_start(&threads[t], registrar_run, &r[t]) != 0)
            return -1;
    }
    return 0;
}

static uint64_t registrars_stop(struct shared *s, struct registrar *r, evq_thread *threads,
                                int count)
{
    atomic_store(&s->stop, true);
    uint64_t total = 0;
    for (int t = 0; t < count; t++) {
        evq_thread_join(&threads[t]);
        total += r[t].count;
        for (int i = 0; i < SOCKETS_PER_THREAD; i++)
            close(r[t].fds[i]);
    }
    return total;
}

/* Registrations per second with `threads` registering threads. */
static double rate(enum guard guard, int threads, double seconds)
{
    struct shared s;
    struct registrar r[MAX_THREADS];
    evq_thread handles[MAX_THREADS];
    if (shared_open(&s, guard) != 0 || registrars_start(&s, r, handles, threads) != 0)
        return -1;
    uint64_t t0 = evq_clock_now_ns();
    evq_sleep_ms((uint32_t)(seconds * 1000));
    uint64_t total = registrars_stop(&s, r, handles, threads);
    double elapsed = bench_seconds_since(t0);
    int failures = atomic_load(&s.failures);
    shared_close(&s);
    return failures ? -1 : (double)total / elapsed;
}

/* ---- a waiter's latency while registrations storm ---- */

struct latency {
    struct shared *shared;
    int event_fd;
    uint64_t key;
    atomic_uint_fast64_t sent_at; /* ns: the pinger's write */
    double samples[LATENCY_SAMPLES];
    size_t count;
};

static void waiter_run(void *arg)
{
    struct latency *l = arg;
    struct shared *s = l->shared;
    while (!atomic_load(&s->stop) && l->count < LATENCY_SAMPLES) {
        struct epoll_event ev;
        int got = epoll_wait(s->epoll_fd, &ev, 1, 50);
        if (got != 1)
            continue;
        uint64_t value;
        if (read(l->event_fd, &value, sizeof value) != (ssize_t)sizeof value)
            continue;
        guard_take(s); /* the waiter's key lookup, under the table's guard */
        bool found = table_lookup(&s->table, ev.data.u64);
        guard_give(s);
        uint64_t now = evq_clock_now_ns();
        uint64_t sent = atomic_load(&l->sent_at);
        if (found && now > sent)
            l->samples[l->count++] = (double)(now - sent) / 1000.0;
    }
}

static void pinger_run(void *arg)
{
    struct latency *l = arg;
    while (!atomic_load(&l->shared->stop)) {
        uint64_t one = 1;
        atomic_store(&l->sent_at, evq_clock_now_ns());
        if (write(l->event_fd, &one, sizeof one) < 0 && errno != EAGAIN)
            break;
        evq_sleep_ms(1);
    }
}

static int latency(enum guard guard, int registrars, double seconds, double *median, double *p99,
                   size_t *samples)
{
    struct shared s;
    struct latency *l = calloc(1, sizeof *l);
    struct registrar r[MAX_THREADS];
    evq_thread handles[MAX_THREADS], waiter, pinger;
    if (!l || shared_open(&s, guard) != 0)
        return -1;
    l->shared = &s;
    l->event_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    guard_take(&s);
    l->key = table_add(&s.table);
    guard_give(&s);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLET, .data.u64 = l->key};
    if (l->event_fd < 0 || epoll_ctl(s.epoll_fd, EPOLL_CTL_ADD, l->event_fd, &ev) != 0)
        return -1;
    if (evq_thread_start(&waiter, waiter_run, l) != 0 ||
        evq_thread_start(&pinger, pinger_run, l) != 0 ||
        (registrars > 0 && registrars_start(&s, r, handles, registrars) != 0))
        return -1;
    evq_sleep_ms((uint32_t)(seconds * 1000));
    if (registrars > 0)
        registrars_stop(&s, r, handles, registrars);
    atomic_store(&s.stop, true);
    evq_thread_join(&pinger);
    evq_thread_join(&waiter);
    size_t count = l->count;
    *samples = count;
    if (count > 0) {
        *median = bench_median(l->samples, count); /* sorted now */
        *p99 = l->samples[(size_t)((double)(count - 1) * 0.99)];
    }
    close(l->event_fd);
    free(l);
    shared_close(&s);
    return count > 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
    static const char *const known[] = {"--ms", "--runs", NULL};
    unsigned long ms = 500, runs = 3;
    if (!bench_arguments_ok(argc, argv, known) ||
        !bench_option(argc, argv, "--ms", 10, 60000, &ms) ||
        !bench_option(argc, argv, "--runs", 1, 50, &runs)) {
        fprintf(stderr, "Usage: ch06_bench_locks [--ms M (500)] [--runs R (3)]\n");
        return 2;
    }
    double seconds = (double)ms / 1000.0;
    if (bench_init() != 0)
        return 1;
    static const int thread_counts[] = {1, 2, 4, 8};
    enum { COUNTS = 4 };
    printf("## Registrations per second (ADD + DEL, a table slot each), %lu runs of %.1f s, "
           "median; %ld cores\n\n",
           runs, seconds, sysconf(_SC_NPROCESSORS_ONLN));
    printf("| guard | 1 thread | 2 threads | 4 threads | 8 threads |\n|---|---|---|---|---|\n");
    double per[GUARDS][COUNTS];
    for (int g = 0; g < GUARDS; g++) {
        for (int c = 0; c < COUNTS; c++) {
            double values[50];
            for (unsigned long run = 0; run < runs; run++) {
                values[run] = rate((enum guard)g, thread_counts[c], seconds);
                if (values[run] < 0) {
                    fprintf(stderr, "%s: a registration failed\n", guard_names[g]);
                    return 1;
                }
            }
            per[g][c] = bench_median(values, runs);
        }
    }
    for (int g = 0; g < GUARDS; g++) {
        printf("| %s |", guard_names[g]);
        for (int c = 0; c < COUNTS; c++)
            printf(" %.0f k (%.2f) |", per[g][c] / 1000.0, per[g][c] / per[GUARD_MUTEX][c]);
        printf("\n");
    }
    printf("\n(in brackets: against the mutex, same thread count, same run)\n\n");

    printf("## A waiter's wake-up latency, µs (eventfd written every 1 ms; the waiter looks "
           "its key up under the guard): median / p99 (wake-ups measured in %.1f s)\n\n",
           seconds * (double)runs);
    printf("| guard | no registrations | 4 threads registering |\n|---|---|---|\n");
    for (int g = 0; g < GUARDS; g++) {
        double quiet_median = 0, quiet_p99 = 0, storm_median = 0, storm_p99 = 0;
        size_t quiet_n = 0, storm_n = 0;
        if (latency((enum guard)g, 0, seconds * (double)runs, &quiet_median, &quiet_p99,
                    &quiet_n) != 0 ||
            latency((enum guard)g, 4, seconds * (double)runs, &storm_median, &storm_p99,
                    &storm_n) != 0) {
            fprintf(stderr, "%s: the latency run failed\n", guard_names[g]);
            return 1;
        }
        printf("| %s | %.0f / %.0f (%zu) | %.0f / %.0f (%zu) |\n", guard_names[g], quiet_median,
               quiet_p99, quiet_n, storm_median, storm_p99, storm_n);
    }
    return 0;
}

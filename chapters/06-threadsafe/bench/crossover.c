/* crossover.c - when is a lookup cheaper done inline, on the loop's thread,
 * than handed to the pool? Measured in one run:
 *
 *     ch06_bench_crossover [--lookups N] [--runs R] [--in-flight K]
 *
 * Inline, the loop's thread is blocked for the whole lookup: measured as
 * wall time per call, for a cache hit (resolver_submit answering from the
 * cache), the real getaddrinfo on "localhost" and on "127.0.0.1", and a
 * fake resolver that spins for a set cost (0 ns to 1 ms).
 *
 * Through the pool, the same fake runs on the workers, and the loop's
 * thread pays for submit, the wake-up and collect: measured as the loop
 * thread's CPU time per lookup with K lookups in flight (the loop sleeps
 * while it waits, as it would in evq_poll_wait; the wake-up here is a
 * condition variable, a futex on Linux, as the queue's waker is one
 * system call). Also the round trip of one lookup alone (submit, worker,
 * notify, collect): the latency a single caller sees.
 *
 * The pool wins, for the loop, from the cost where the inline time passes
 * the pool's loop-side time. Medians of R runs; one run on a shared machine
 * is an indication, not a claim.
 */
#if !defined(_WIN32) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L /* clock_gettime(CLOCK_THREAD_CPUTIME_ID) */
#endif
#include "resolver.h"

#include "evq_args.h"
#include "evq_clock.h"
#include "evq_net.h"
#include "evq_thread.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef _WIN32
#include <windows.h>
#else
#include <time.h>
#endif

#define MAX_RUNS 15

/* CPU time of the calling thread, in ns. Windows counts it in scheduler
 * ticks, so its figures are only meaningful over many lookups. */
#ifdef _WIN32
static uint64_t thread_cpu_ns(void)
{
    FILETIME created, exited, kernel, user;
    GetThreadTimes(GetCurrentThread(), &created, &exited, &kernel, &user);
    uint64_t k = ((uint64_t)kernel.dwHighDateTime << 32) | kernel.dwLowDateTime;
    uint64_t u = ((uint64_t)user.dwHighDateTime << 32) | user.dwLowDateTime;
    return (k + u) * 100;
}
#else
static uint64_t thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * EVQ_NS_PER_S + (uint64_t)ts.tv_nsec;
}
#endif

/* Whether this system measures thread CPU time at all: spin 20 ms and see
 * whether the clock moved (under Wine, GetThreadTimes says 0 for ever). */
static bool thread_cpu_works(void)
{
    uint64_t cpu0 = thread_cpu_ns(), start = evq_clock_now_ns();
    while (evq_clock_now_ns() - start < 20 * EVQ_NS_PER_MS) {
    }
    return thread_cpu_ns() - cpu0 >= EVQ_NS_PER_MS;
}

/* ---- a resolver with a set cost ---- */

static int spin_resolve(const char *host, uint16_t port, evq_address_list *out, void *context)
{
    (void)host;
    uint64_t cost = *(const uint64_t *)context;
    uint64_t start = evq_clock_now_ns();
    while (evq_clock_now_ns() - start < cost) {
    }
    struct sockaddr_in v4;
    memset(&v4, 0, sizeof v4);
    v4.sin_family = AF_INET;
    v4.sin_port = htons(port);
    v4.sin_addr.s_addr = htonl(0x7f000001);
    return evq_address_list_add(out, (const struct sockaddr *)&v4, sizeof v4);
}

/* A lookup that waits instead of computing, as one that asks a DNS server
 * over the network does: the worker sleeps, the CPU is free. */
static int sleep_resolve(const char *host, uint16_t port, evq_address_list *out, void *context)
{
    static uint64_t no_cost = 0;
    evq_sleep_ms(*(const uint32_t *)context);
    return spin_resolve(host, port, out, &no_cost);
}

/* ---- the loop's waker: a counter and a condition ---- */

struct waker {
    evq_mutex lock;
    evq_cond cond;
    unsigned count;
};

static void waker_notify(void *context)
{
    struct waker *w = context;
    evq_mutex_lock(&w->lock);
    w->count++;
    evq_cond_signal(&w->cond);
    evq_mutex_unlock(&w->lock);
}

static unsigned waker_count(struct waker *w)
{
    evq_mutex_lock(&w->lock);
    unsigned count = w->count;
    evq_mutex_unlock(&w->lock);
    return count;
}

static void waker_wait(struct waker *w, unsigned seen)
{
    evq_mutex_lock(&w->lock);
    while (w->count == seen)
        evq_cond_timedwait(&w->cond, &w->lock, 1000);
    evq_mutex_unlock(&w->lock);
}

/* One lookup as a lone caller makes it: submit, sleep until notified,
 * collect. (The count is read before each collect: a notify that comes
 * after the collect looked is never missed.) */
static int lookup_through_pool(resolver *r, struct waker *w, const char *host)
{
    resolver_result answer, result;
    resolver_request *request;
    unsigned seen = waker_count(w);
    int rc = resolver_submit(r, host, 80, NULL, &answer, &request);
    if (rc != EVQ_EINPROGRESS) {
        evq_address_list_free(&answer.addresses);
        return rc;
    }
    while (resolver_collect(r, &result, 1) == 0) {
        waker_wait(w, seen);
        seen = waker_count(w);
    }
    evq_address_list_free(&result.addresses);
    return 0;
}

static double median(double *values, size_t count)
{
    for (size_t i = 1; i < count; i++) /* insertion sort: a handful of runs */
        for (size_t j = i; j > 0 && values[j - 1] > values[j]; j--) {
            double t = values[j];
            values[j] = values[j - 1];
            values[j - 1] = t;
        }
    return count % 2 ? values[count / 2] : (values[count / 2 - 1] + values[count / 2]) / 2;
}

/* ---- inline ---- */

/* ns per call of a resolve function on this thread. */
static double inline_ns(evq_resolve_fn resolve, void *context, const char *host, unsigned n)
{
    uint64_t start = evq_clock_now_ns();
    for (unsigned i = 0; i < n; i++) {
        evq_address_list list = {0};
        if (resolve(host, 80, &list, context) != 0) {
            fprintf(stderr, "inline lookup of %s failed\n", host);
            return -1;
        }
        evq_address_list_free(&list);
    }
    return (double)(evq_clock_now_ns() - start) / n;
}

/* ns per cache hit: resolver_submit answering from the cache. */
static double cache_hit_ns(unsigned n)
{
    static uint64_t cost = 0;
    struct waker w = {0};
    evq_mutex_init(&w.lock);
    evq_cond_init(&w.cond);
    resolver_config config;
    resolver_config_default(&config);
    config.threads = 1;
    config.resolve = spin_resolve;
    config.resolve_context = &cost;
    config.notify = waker_notify;
    config.notify_context = &w;
    resolver *r;
    if (resolver_open(&config, &r) != 0)
        return -1;
    resolver_result answer;
    resolver_request *request;
    lookup_through_pool(r, &w, "cached.example"); /* now it is in the cache */

    uint64_t start = evq_clock_now_ns();
    for (unsigned i = 0; i < n; i++) {
        if (resolver_submit(r, "cached.example", 80, NULL, &answer, &request) != 0)
            return -1;
        evq_address_list_free(&answer.addresses);
    }
    double ns = (double)(evq_clock_now_ns() - start) / n;
    resolver_close(r);
    evq_cond_destroy(&w.cond);
    evq_mutex_destroy(&w.lock);
    return ns;
}

/* ---- through the pool ---- */

struct pool_figures {
    double loop_cpu_ns;        /* the loop thread's CPU time per lookup, K in flight */
    double wall_ns;            /* wall time per lookup, K in flight */
    double single_loop_cpu_ns; /* the loop thread's CPU time per lookup, one at a time */
    double round_trip_ns;      /* one lookup alone: submit to collect, wall */
};

static int pool_run(evq_resolve_fn resolve, void *context, unsigned n, unsigned in_flight,
                    struct pool_figures *out)
{
    struct waker w = {0};
    evq_mutex_init(&w.lock);
    evq_cond_init(&w.cond);
    resolver_config config;
    resolver_config_default(&config); /* 4 workers */
    config.resolve = resolve;
    config.resolve_context = context;
    config.notify = waker_notify;
    config.notify_context = &w;
    config.cache_entries = 0; /* every lookup goes through the pool */
    config.max_pending = in_flight;
    resolver *r;
    int rc = resolver_open(&config, &r);
    if (rc != 0)
        return rc;
    resolver_result results[64];
    resolver_result answer;
    resolver_request *request;

    /* Warm up: start the workers, touch the allocator. */
    for (unsigned i = 0; i < 8; i++)
        lookup_through_pool(r, &w, "pool.example");

    /* K in flight: the loop submits while there is room, collects what has
     * finished, and sleeps on the waker when there is nothing. */
    uint64_t cpu0 = thread_cpu_ns(), wall0 = evq_clock_now_ns();
    unsigned submitted = 0, collected = 0;
    while (collected < n) {
        while (submitted < n && submitted - collected < in_flight) {
            rc = resolver_submit(r, "pool.example", 80, NULL, &answer, &request);
            if (rc != EVQ_EINPROGRESS)
                goto done;
            submitted++;
        }
        unsigned seen = waker_count(&w);
        size_t got = resolver_collect(r, results, 64);
        for (size_t i = 0; i < got; i++)
            evq_address_list_free(&results[i].addresses);
        collected += (unsigned)got;
        if (got == 0)
            waker_wait(&w, seen);
    }
    out->loop_cpu_ns = (double)(thread_cpu_ns() - cpu0) / n;
    out->wall_ns = (double)(evq_clock_now_ns() - wall0) / n;

    /* One at a time: the latency of a lookup through the pool. */
    unsigned samples = n < 400 ? n : 400;
    double *trips = malloc(samples * sizeof *trips);
    if (!trips) {
        rc = EVQ_ENOMEM;
        goto done;
    }
    cpu0 = thread_cpu_ns();
    for (unsigned i = 0; i < samples; i++) {
        uint64_t t0 = evq_clock_now_ns();
        lookup_through_pool(r, &w, "pool.example");
        trips[i] = (double)(evq_clock_now_ns() - t0);
    }
    out->single_loop_cpu_ns = (double)(thread_cpu_ns() - cpu0) / samples;
    out->round_trip_ns = median(trips, samples);
    free(trips);
    rc = 0;
done:
    resolver_close(r);
    evq_cond_destroy(&w.cond);
    evq_mutex_destroy(&w.lock);
    return rc;
}

static void usage(const char *program)
{
    fprintf(stderr,
            "Usage: %s [--lookups N] [--runs R] [--in-flight K]\n"
            "  --lookups N    lookups per measurement (100..1000000, default 20000)\n"
            "  --runs R       runs, medians reported (1..%d, default 3)\n"
            "  --in-flight K  lookups in flight through the pool (1..64, default 64)\n",
            program, MAX_RUNS);
}

static const char *ns_text(double ns, char *buf, size_t size)
{
    if (ns == -2)
        snprintf(buf, size, "n/a");
    else if (ns < 0)
        snprintf(buf, size, "failed");
    else if (ns < 10000)
        snprintf(buf, size, "%.0f ns", ns);
    else if (ns < 10000000)
        snprintf(buf, size, "%.1f us", ns / 1e3);
    else
        snprintf(buf, size, "%.1f ms", ns / 1e6);
    return buf;
}

int main(int argc, char **argv)
{
    unsigned long lookups = 20000, runs = 3, in_flight = 64;
    for (int i = 1; i < argc; i++) {
        unsigned long *target = NULL, low = 1, high = 1;
        if (strcmp(argv[i], "--lookups") == 0)
            target = &lookups, low = 100, high = 1000000;
        else if (strcmp(argv[i], "--runs") == 0)
            target = &runs, low = 1, high = MAX_RUNS;
        else if (strcmp(argv[i], "--in-flight") == 0)
            target = &in_flight, low = 1, high = 64;
        else if (strcmp(argv[i], "--help") == 0) {
            usage(argv[0]);
            return 0;
        }
        if (!target || i + 1 >= argc || !evq_parse_ulong(argv[++i], low, high, target)) {
            usage(argv[0]);
            return 2;
        }
    }
    if (evq_net_init() != 0)
        return 1;
    bool cpu_ok = thread_cpu_works();
    unsigned n = (unsigned)lookups;
    unsigned slow_n = n / 10 < 100 ? 100 : n / 10; /* for the costly rows */
    char a[32], b[32], c[32], d[32], e[32], f_[32];

    printf("## Inline lookups: the loop's thread is blocked this long (median of %lu runs)\n\n",
           runs);
    printf("| lookup | ns per lookup |\n|---|---:|\n");
    struct {
        const char *name;
        double values[MAX_RUNS];
    } rows[] = {{"cache hit (resolver_submit, answered inline)", {0}},
                {"getaddrinfo(\"127.0.0.1\") inline", {0}},
                {"getaddrinfo(\"localhost\") inline", {0}}};
    for (unsigned long run = 0; run < runs; run++) {
        rows[0].values[run] = cache_hit_ns(n);
        rows[1].values[run] = inline_ns(evq_resolve_system, NULL, "127.0.0.1", slow_n);
        rows[2].values[run] = inline_ns(evq_resolve_system, NULL, "localhost", slow_n);
    }
    double hit_ns = median(rows[0].values, runs);
    double localhost_ns = median(rows[2].values, runs);
    for (size_t i = 0; i < 3; i++)
        printf("| %s | %s |\n", rows[i].name, ns_text(median(rows[i].values, runs), a, sizeof a));

    static const uint64_t costs[] = {0, 1000, 3000, 10000, 30000, 100000, 1000000};
    enum { COSTS = sizeof costs / sizeof costs[0] };
    printf("\n## A lookup of a set cost: inline vs through the pool (4 workers)\n\n");
    printf("Loop CPU: the loop thread's CPU time per lookup (submit, wake-up, collect), with %lu\n"
           "lookups in flight, and with one at a time. Wall: time per lookup with %lu in flight;\n"
           "round trip: one lookup alone, submit to collect.\n\n",
           in_flight, in_flight);
    printf("| lookup cost | inline: loop blocked | pool: loop CPU, %lu in flight |"
           " pool: loop CPU, one at a time | pool: wall, %lu in flight | pool: round trip |\n",
           in_flight, in_flight);
    printf("|---:|---:|---:|---:|---:|---:|\n");
    uint64_t crossover_batched = 0, crossover_single = 0;
    bool found_batched = false, found_single = false;
    double single_cpu_all[COSTS];
    for (size_t k = 0; k < COSTS; k++) {
        unsigned count = costs[k] >= 30000 ? slow_n / (costs[k] >= 1000000 ? 10 : 1) : n;
        if (count < 100)
            count = 100;
        double inline_v[MAX_RUNS], cpu_v[MAX_RUNS], single_v[MAX_RUNS], wall_v[MAX_RUNS],
            trip_v[MAX_RUNS];
        uint64_t cost = costs[k];
        for (unsigned long run = 0; run < runs; run++) {
            struct pool_figures f = {0};
            inline_v[run] = inline_ns(spin_resolve, &cost, "x", count);
            if (pool_run(spin_resolve, &cost, count, (unsigned)in_flight, &f) != 0)
                f.loop_cpu_ns = f.wall_ns = f.single_loop_cpu_ns = f.round_trip_ns = -1;
            cpu_v[run] = f.loop_cpu_ns;
            single_v[run] = f.single_loop_cpu_ns;
            wall_v[run] = f.wall_ns;
            trip_v[run] = f.round_trip_ns;
        }
        double inline_m = median(inline_v, runs);
        double cpu_m = cpu_ok ? median(cpu_v, runs) : -2,
               single_m = cpu_ok ? median(single_v, runs) : -2;
        single_cpu_all[k] = single_m;
        if (cpu_ok && !found_batched && inline_m > cpu_m)
            found_batched = true, crossover_batched = cost;
        if (cpu_ok && !found_single && inline_m > single_m)
            found_single = true, crossover_single = cost;
        printf("| %s | %s | %s | %s | %s | %s |\n", ns_text((double)cost, a, sizeof a),
               ns_text(inline_m, b, sizeof b), ns_text(cpu_m, c, sizeof c),
               ns_text(single_m, d, sizeof d), ns_text(median(wall_v, runs), e, sizeof e),
               ns_text(median(trip_v, runs), f_, sizeof f_));
        fflush(stdout);
    }
    double single_side = median(single_cpu_all, COSTS);
    if (!cpu_ok)
        printf("\nThis system does not measure a thread's CPU time (Wine's GetThreadTimes\n"
               "reports none): the loop's share of the pool is not known here.\n");
    else
        printf("\nThe pool wins for the loop's thread (less of its time per lookup than inline)\n"
               "from a lookup cost of %s with %lu in flight, and of %s one at a time (a lone\n"
               "lookup pays a whole wake-up: about %s of the loop's CPU).\n",
               found_batched ? ns_text((double)crossover_batched, a, sizeof a) : "(none measured)",
               in_flight,
               found_single ? ns_text((double)crossover_single, b, sizeof b) : "(none measured)",
               ns_text(single_side, c, sizeof c));
    printf("A cache hit costs %s inline; getaddrinfo(\"localhost\") costs %s inline.\n",
           ns_text(hit_ns, d, sizeof d), ns_text(localhost_ns, e, sizeof e));

    /* Lookups that wait: the pool overlaps them, the loop would serialise them. */
    static uint32_t wait_ms = 1;
    unsigned waits = 200;
    double inline_w[MAX_RUNS], wall_w[MAX_RUNS], cpu_w[MAX_RUNS];
    for (unsigned long run = 0; run < runs; run++) {
        struct pool_figures f = {0};
        inline_w[run] = inline_ns(sleep_resolve, &wait_ms, "x", waits);
        if (pool_run(sleep_resolve, &wait_ms, waits, (unsigned)in_flight, &f) != 0)
            f.wall_ns = f.loop_cpu_ns = -1;
        wall_w[run] = f.wall_ns;
        cpu_w[run] = cpu_ok ? f.loop_cpu_ns : -2;
    }
    printf("\n## Lookups that wait %u ms (a DNS server's answer): %u of them, %lu in flight\n\n",
           (unsigned)wait_ms, waits, in_flight);
    printf("| | wall per lookup | loop's thread per lookup |\n|---|---:|---:|\n");
    double inline_wm = median(inline_w, runs);
    printf("| inline | %s | %s (blocked) |\n", ns_text(inline_wm, a, sizeof a),
           ns_text(inline_wm, b, sizeof b));
    printf("| pool, 4 workers | %s | %s (CPU) |\n", ns_text(median(wall_w, runs), c, sizeof c),
           ns_text(median(cpu_w, runs), d, sizeof d));
    return 0;
}

/* responsiveness.c - does the loop keep time while names are looked up?
 *
 *     ch06_bench_responsiveness_<backend> [--lookups N] [--lookup-ms M]
 *                                         [--period-ms P] [--runs R]
 *
 * A loop with a periodic timer - every P ms (10), its wait's timeout the
 * time to the next tick, chapter 1's way - makes N connects (100) by name.
 * Every lookup takes M ms (200): a resolve function that sleeps, as a slow
 * DNS server would make it, then answers with a local listener that never
 * accepts (the connects complete in its backlog). Measured: how late each
 * tick fires while the connects are under way - p50, p99, max - two ways,
 * in the same run, alternating:
 *
 * - chapter 4: evq_tcp_connect, the lookups on the queue's resolver
 *   threads (4, the default: N / 4 x M ms of lookups in all);
 * - blocking, as chapter 3's evq_tcp_connect did: the loop calls the same
 *   resolve function itself, one connect per turn (N x M ms), and connects
 *   to the address it returned;
 * and, as the floor, the same loop with no connect at all for as long as
 * chapter 4's lookups take: the wait's timeout is whole milliseconds,
 * rounded up, so a tick is up to 1 ms late by design (never early).
 *
 * Medians over R runs of each figure. One run on a shared machine is an
 * indication, not a claim.
 */
#include "bench.h"
#include "evq.h"

#include "evq_clock.h"
#include "evq_net.h"
#include "evq_thread.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_RUNS 9

/* ---- the slow resolver ---- */

struct slow_dns {
    uint32_t lookup_ms;
    uint16_t port; /* the listener's: every name is 127.0.0.1 here */
};

static int slow_resolve(const char *host, uint16_t port, evq_address_list *out, void *context)
{
    (void)host;
    (void)port;
    const struct slow_dns *dns = context;
    evq_sleep_ms(dns->lookup_ms);
    struct sockaddr_in v4;
    memset(&v4, 0, sizeof v4);
    v4.sin_family = AF_INET;
    v4.sin_port = htons(dns->port);
    v4.sin_addr.s_addr = htonl(0x7f000001);
    return evq_address_list_add(out, (const struct sockaddr *)&v4, sizeof v4);
}

/* ---- the ticks ---- */

struct ticks {
    double *late_ms;
    size_t count, capacity;
};

static int ticks_add(struct ticks *t, double late_ms)
{
    if (t->count == t->capacity) {
        size_t capacity = t->capacity ? t->capacity * 2 : 1024;
        double *late = realloc(t->late_ms, capacity * sizeof *late);
        if (!late)
            return EVQ_ENOMEM;
        t->late_ms = late;
        t->capacity = capacity;
    }
    t->late_ms[t->count++] = late_ms;
    return 0;
}

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The q-th quantile (0..1) of the sorted values. */
static double quantile(const double *sorted, size_t count, double q)
{
    if (count == 0)
        return 0;
    size_t i = (size_t)(q * (double)(count - 1) + 0.5);
    return sorted[i < count ? i : count - 1];
}

struct figures {
    double seconds; /* until the last connect was done */
    double ticks, p50, p99, max;
};

/* ---- the loop, both ways ---- */

enum way { FLOOR, POOL, BLOCKING, WAYS };

struct run {
    evq_poll *poll;
    struct slow_dns *dns;
    unsigned lookups;
    uint32_t period_ms;
    enum way way;
    evq_tcp **streams;
    uint64_t floor_ns; /* FLOOR: how long to tick with nothing else to do */
};

/* The blocking way's connect: the lookup here, on the loop's thread. */
static int connect_blocking(struct run *run, evq_tcp **out)
{
    evq_address_list list = {0};
    int rc = slow_resolve("bench.example", 80, &list, run->dns);
    evq_address_list_free(&list);
    return rc != 0 ? rc : evq_tcp_connect(run->poll, "127.0.0.1", run->dns->port, out);
}

/* ANCHOR: loop */
static int run_loop(struct run *run, struct figures *out)
{
    struct ticks ticks = {0};
    unsigned started = 0, done = 0;
    int rc = 0;
    uint64_t start = evq_clock_now_ns(), period = evq_ms_to_ns(run->period_ms);
    uint64_t next_tick = start + period;
    if (run->way == FLOOR)
        run->lookups = 0;
    if (run->way == POOL) { /* all at once: nothing here waits for a lookup */
        for (; rc == 0 && started < run->lookups; started++) {
            rc = evq_tcp_connect(run->poll, "bench.example", 80, &run->streams[started]);
            if (rc == 0)
                rc = evq_register(run->poll, run->streams[started], started, EVQ_WRITABLE);
        }
    }
    while (rc == 0 && (done < run->lookups ||
                       (run->way == FLOOR && evq_clock_now_ns() - start < run->floor_ns))) {
        if (run->way == BLOCKING && started < run->lookups) { /* one per turn, as a loop would */
            rc = connect_blocking(run, &run->streams[started]);
            if (rc == 0)
                rc = evq_register(run->poll, run->streams[started], started, EVQ_WRITABLE);
            started++;
        }
        evq_event events[64];
        size_t n = 0;
        int timeout = evq_remaining_ms(next_tick, evq_clock_now_ns());
        if (rc == 0)
            rc = evq_poll_wait(run->poll, events, 64, timeout, &n);
        done += (unsigned)n; /* connected (or failed: counted the same) */
        for (uint64_t now = evq_clock_now_ns(); rc == 0 && now >= next_tick;
             next_tick += period)
            rc = ticks_add(&ticks, (double)(now - next_tick) / 1e6);
    }
    /* ANCHOR_END: loop */
    out->seconds = (double)(evq_clock_now_ns() - start) / 1e9;
    qsort(ticks.late_ms, ticks.count, sizeof *ticks.late_ms, compare_doubles);
    out->ticks = (double)ticks.count;
    out->p50 = quantile(ticks.late_ms, ticks.count, 0.50);
    out->p99 = quantile(ticks.late_ms, ticks.count, 0.99);
    out->max = ticks.count ? ticks.late_ms[ticks.count - 1] : 0;
    free(ticks.late_ms);
    for (unsigned i = 0; i < started; i++) {
        evq_tcp_close(run->streams[i]);
        run->streams[i] = NULL;
    }
    return rc;
}

/* One measurement, with a listener of its own: the connects of the last
 * one still fill the backlog of theirs (it never accepts). */
static int measure(enum way way, uint32_t lookup_ms, unsigned lookups, uint32_t period_ms,
                   struct figures *out)
{
    struct slow_dns dns = {lookup_ms, 0};
    evq_socket listener;
    int rc = evq_net_listen_loopback(0, (int)lookups + 16, &listener, &dns.port);
    if (rc != 0)
        return rc;
    evq_poll_options options;
    evq_poll_get_default_options(&options);
    options.resolve = slow_resolve;
    options.resolve_context = &dns;
    options.cache_entries = 0; /* every lookup is a slow one */
    struct run run = {NULL, &dns, lookups, period_ms, way, NULL, 0};
    run.floor_ns = evq_ms_to_ns((uint64_t)(lookups + 3) / 4 * lookup_ms);
    run.streams = calloc(lookups, sizeof *run.streams);
    rc = run.streams ? evq_poll_open_with_options(&run.poll, &options) : EVQ_ENOMEM;
    if (rc == 0)
        rc = run_loop(&run, out);
    evq_poll_close(run.poll);
    free(run.streams);
    evq_socket_close(listener);
    return rc;
}

static const char *ms_text(double ms, char *buf, size_t size)
{
    if (ms < 10)
        snprintf(buf, size, "%.2f ms", ms);
    else
        snprintf(buf, size, "%.0f ms", ms);
    return buf;
}

int main(int argc, char **argv)
{
    static const char *const known[] = {"--lookups", "--lookup-ms", "--period-ms", "--runs", NULL};
    unsigned long lookups = 100, lookup_ms = 200, period_ms = 10, runs = 1;
    if (!bench_arguments_ok(argc, argv, known) ||
        !bench_option(argc, argv, "--lookups", 1, 10000, &lookups) ||
        !bench_option(argc, argv, "--lookup-ms", 0, 10000, &lookup_ms) ||
        !bench_option(argc, argv, "--period-ms", 1, 1000, &period_ms) ||
        !bench_option(argc, argv, "--runs", 1, MAX_RUNS, &runs)) {
        fprintf(stderr,
                "Usage: %s [--lookups N] [--lookup-ms M] [--period-ms P] [--runs R]\n"
                "  defaults: 100 lookups of 200 ms, a 10 ms timer, 1 run\n",
                argv[0]);
        return 2;
    }
    if (bench_init() != 0)
        return 1;
    struct figures ways[WAYS][MAX_RUNS];
    for (unsigned long r = 0; r < runs; r++) {
        for (int way = 0; way < WAYS; way++) {
            int rc = measure((enum way)way, (uint32_t)lookup_ms, (unsigned)lookups,
                             (uint32_t)period_ms, &ways[way][r]);
            if (rc != 0) {
                fprintf(stderr, "run %lu failed: %s\n", r + 1, evq_strerror(rc));
                return 1;
            }
        }
    }

    printf("## Timer lateness while %lu connects look their name up (%lu ms each), "
           "a %lu ms timer, %s, median of %lu run(s)\n\n",
           lookups, lookup_ms, period_ms, evq_backend(), runs);
    printf("| connects by name | all done in | ticks | p50 late | p99 late | max late |\n");
    printf("|---|---:|---:|---:|---:|---:|\n");
    static const char *const names[WAYS] = {
        "none (the floor: the wait's timeout in whole ms, rounded up)",
        "chapter 4: `evq_tcp_connect`, lookups on 4 resolver threads",
        "blocking: the lookup on the loop's thread (chapter 3's connect)"};
    double p99[WAYS];
    for (int way = 0; way < WAYS; way++) {
        double v[5][MAX_RUNS];
        for (unsigned long r = 0; r < runs; r++) {
            v[0][r] = ways[way][r].seconds;
            v[1][r] = ways[way][r].ticks;
            v[2][r] = ways[way][r].p50;
            v[3][r] = ways[way][r].p99;
            v[4][r] = ways[way][r].max;
        }
        double m[5];
        for (int k = 0; k < 5; k++)
            m[k] = bench_median(v[k], runs);
        p99[way] = m[3];
        char a[32], b[32], c[32];
        printf("| %s | %.2f s | %.0f | %s | %s | %s |\n", names[way], m[0], m[1],
               ms_text(m[2], a, sizeof a), ms_text(m[3], b, sizeof b), ms_text(m[4], c, sizeof c));
    }
    printf("\np99 lateness: blocking / chapter 4 = %.0fx; chapter 4 / the floor = %.2fx. "
           "The goal, p99 <= 1 ms on chapter 4: %s.\n",
           p99[POOL] > 0 ? p99[BLOCKING] / p99[POOL] : 0.0,
           p99[FLOOR] > 0 ? p99[POOL] / p99[FLOOR] : 0.0, p99[POOL] <= 1.0 ? "met" : "NOT met");
    return 0;
}

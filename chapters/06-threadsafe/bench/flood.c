/* flood.c - what the turn budget buys: one peer floods its connection
 * while 99 others make small round trips, on one loop, for several values
 * of evq_tcp_limits.turn_budget, measured in the same run.
 *
 *     ch06_bench_flood_<backend> [--quiet N] [--seconds S] [--runs R]
 *
 * The server is one thread waiting on the queue, written the edge-triggered
 * way: each event's stream is read until EVQ_EWOULDBLOCK, then re-armed. A
 * quiet stream's bytes are echoed; the flooding stream's are thrown away. A
 * flooding thread sends 64 KiB blocks as fast as its socket takes them; the
 * client thread sends one byte on each of N quiet connections, then reads
 * every echo - one round. Reported per budget: the quiet clients' round
 * time (median and 99th percentile) and how fast the flood was read.
 * read_max is 256 KiB, or the budget if that is larger: a fill stops at a
 * full buffer too, so a budget as large as read_max is no budget at all
 * (the last two rows: the default read_max, and a 4 MiB one).
 */
#include "bench.h"
#include "evq.h"

#include "evq_clock.h"
#include "evq_net.h"
#include "evq_thread.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_QUIET      500
#define MAX_ROUNDS     200000
#define LISTENER_TOKEN UINT64_MAX

static const size_t budgets[] = {4096, 16384, 65536, 262144, 4194304};
#define BUDGETS  (sizeof budgets / sizeof budgets[0])
#define READ_MAX ((size_t)256 * 1024)

/* read_max for a budget: the default's, or the budget if larger (a fill
 * stops at a full buffer too: a larger budget needs a larger buffer). */
static size_t read_max_for(size_t budget)
{
    return budget > READ_MAX ? budget : READ_MAX;
}

struct run {
    size_t budget;
    unsigned quiet;
    evq_poll *poll;
    evq_tcp *listener;
    evq_tcp *streams[MAX_QUIET + 1];
    atomic_uint accepted;
    atomic_bool stop;
    uint64_t flood_bytes; /* the server thread's */
    evq_socket flood_peer;
};

static void fail(const char *what, int rc)
{
    fprintf(stderr, "flood: %s failed (%s)\n", what, evq_strerror(rc));
    exit(1);
}

/* The loop: read each event's stream out, echo a quiet one, re-arm. */
static void server_run(void *arg)
{
    struct run *r = arg;
    static char buf[65536];
    for (;;) {
        evq_event events[64];
        size_t n = 0;
        int rc = evq_poll_wait(r->poll, events, 64, 100, &n);
        if (rc == EVQ_ECLOSED)
            return;
        if (rc != 0)
            fail("evq_poll_wait", rc);
        for (size_t e = 0; e < n; e++) {
            if (events[e].token == LISTENER_TOKEN) {
                evq_tcp *stream;
                while ((rc = evq_tcp_accept(r->listener, &stream)) == 0) {
                    unsigned i = atomic_load(&r->accepted);
                    r->streams[i] = stream;
                    atomic_store(&r->accepted, i + 1);
                    if ((rc = evq_register(r->poll, stream, i, EVQ_READABLE)) != 0)
                        fail("evq_register", rc);
                }
                if (rc != EVQ_EWOULDBLOCK && rc != EVQ_ECLOSED)
                    fail("evq_tcp_accept", rc);
                evq_reregister(r->poll, r->listener, LISTENER_TOKEN, EVQ_READABLE);
                continue;
            }
            evq_tcp *stream = r->streams[events[e].token];
            size_t got = 0;
            while ((rc = evq_tcp_read(stream, buf, sizeof buf, &got)) == 0) {
                if (events[e].token == 0) { /* the flood: thrown away */
                    r->flood_bytes += got;
                    continue;
                }
                size_t put = 0;
                if ((rc = evq_tcp_write(stream, buf, got, &put)) != 0 || put != got)
                    fail("evq_tcp_write", rc);
            }
            if (rc != EVQ_EWOULDBLOCK)
                continue; /* the end: the run is over */
            rc = evq_reregister(r->poll, stream, events[e].token, EVQ_READABLE);
            if (rc != 0 && rc != EVQ_ECLOSED)
                fail("evq_reregister", rc);
        }
    }
}

static void flood_run(void *arg)
{
    struct run *r = arg;
    static char block[65536];
    while (!atomic_load(&r->stop) && evq_net_send_all(r->flood_peer, block, sizeof block) == 0) {
    }
}

static void connect_one(struct run *r, uint16_t port, evq_socket *out)
{
    unsigned before = atomic_load(&r->accepted);
    if (evq_net_connect_loopback(port, out) != 0)
        fail("connect", EVQ_EIO);
    while (atomic_load(&r->accepted) == before) /* accepted in this order: token = index */
        evq_sleep_ms(1);
}

static int by_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* One budget, one run: the quiet rounds' median and p99 (ms), the flood's
 * MiB/s. */
static void measure(size_t budget, unsigned quiet, double seconds, double out[3])
{
    static struct run r;
    memset(&r, 0, sizeof r);
    r.budget = budget;
    r.quiet = quiet;
    atomic_init(&r.accepted, 0);
    atomic_init(&r.stop, false);
    int rc;
    uint16_t port = 0;
    if ((rc = evq_poll_open(&r.poll)) != 0 ||
        (rc = evq_tcp_listen(r.poll, "127.0.0.1", 0, 1024, &r.listener)) != 0 ||
        (rc = evq_tcp_local_port(r.listener, &port)) != 0)
        fail("the listener", rc);
    evq_tcp_limits limits;
    evq_tcp_get_default_limits(&limits);
    limits.read_max = read_max_for(budget);
    limits.turn_budget = budget;
    if ((rc = evq_tcp_set_limits(r.listener, &limits)) != 0 ||
        (rc = evq_register(r.poll, r.listener, LISTENER_TOKEN, EVQ_READABLE)) != 0)
        fail("the listener's limits", rc);
    evq_thread server;
    if ((rc = evq_thread_start(&server, server_run, &r)) != 0)
        fail("the server thread", rc);
    static evq_socket peers[MAX_QUIET];
    connect_one(&r, port, &r.flood_peer); /* token 0 */
    for (unsigned i = 0; i < quiet; i++)
        connect_one(&r, port, &peers[i]);
    evq_thread flooder;
    if ((rc = evq_thread_start(&flooder, flood_run, &r)) != 0)
        fail("the flooding thread", rc);
    evq_sleep_ms(100); /* the flood under way */

    static double rounds[MAX_ROUNDS];
    size_t count = 0;
    uint64_t t0 = evq_clock_now_ns();
    while (bench_seconds_since(t0) < seconds && count < MAX_ROUNDS) {
        uint64_t start = evq_clock_now_ns();
        char byte = (char)count;
        for (unsigned i = 0; i < quiet; i++) {
            if (evq_net_send_all(peers[i], &byte, 1) != 0)
                fail("a quiet send", EVQ_EIO);
        }
        for (unsigned i = 0; i < quiet; i++) {
            char echo = 0;
            size_t n = 0;
            if (evq_net_recv(peers[i], &echo, 1, &n) != 0 || n != 1 || echo != byte)
                fail("a quiet echo", EVQ_EIO);
        }
        rounds[count++] = bench_seconds_since(start) * 1e3;
    }
    double elapsed = bench_seconds_since(t0);
    atomic_store(&r.stop, true);
    evq_poll_shutdown(r.poll); /* the server leaves */
    evq_thread_join(&server);
    /* Closed with bytes unread: a reset, and the flooding thread's send
     * (blocked, perhaps) fails - it ends. */
    evq_tcp_close(r.streams[0]);
    r.streams[0] = NULL;
    evq_thread_join(&flooder);
    evq_socket_close(r.flood_peer);
    qsort(rounds, count, sizeof rounds[0], by_double);
    out[0] = rounds[count / 2];
    out[1] = rounds[(size_t)((double)(count - 1) * 0.99)];
    out[2] = (double)r.flood_bytes / (1 << 20) / elapsed; /* includes the 100 ms before */
    for (unsigned i = 0; i < quiet; i++)
        evq_socket_close(peers[i]);
    unsigned n = atomic_load(&r.accepted);
    for (unsigned i = 1; i < n; i++)
        evq_tcp_close(r.streams[i]);
    evq_tcp_close(r.listener);
    evq_poll_close(r.poll);
}

int main(int argc, char **argv)
{
    static const char *const known[] = {"--quiet", "--seconds", "--runs", NULL};
    unsigned long quiet = 99, seconds = 2, runs = 3;
    if (!bench_arguments_ok(argc, argv, known) ||
        !bench_option(argc, argv, "--quiet", 1, MAX_QUIET, &quiet) ||
        !bench_option(argc, argv, "--seconds", 1, 60, &seconds) ||
        !bench_option(argc, argv, "--runs", 1, 99, &runs)) {
        fprintf(stderr, "usage: %s [--quiet N] [--seconds S] [--runs R]\n", argv[0]);
        return 2;
    }
    if (bench_init() != 0)
        return 1;
    static double results[BUDGETS][3][99];
    for (unsigned long run = 0; run < runs; run++) {
        for (size_t b = 0; b < BUDGETS; b++) {
            double out[3];
            measure(budgets[b], (unsigned)quiet, (double)seconds, out);
            for (int k = 0; k < 3; k++)
                results[b][k][run] = out[k];
        }
    }
    printf("%s: 1 flooding peer and %lu quiet ones (1-byte echo rounds), one loop thread; "
           "%lu s x %lu runs (medians)\n\n",
           evq_backend(), quiet, seconds, runs);
    printf("| turn budget | read_max | quiet round, median | quiet round, p99 | flood read |\n");
    printf("|---:|---:|---:|---:|---:|\n");
    for (size_t b = 0; b < BUDGETS; b++) {
        double m[3];
        for (int k = 0; k < 3; k++)
            m[k] = bench_median(results[b][k], runs);
        printf("| %zu KiB%s | %zu KiB | %.2f ms | %.2f ms | %.0f MiB/s |\n", budgets[b] / 1024,
               budgets[b] >= read_max_for(budgets[b]) ? " (no budget)" : "",
               read_max_for(budgets[b]) / 1024, m[0], m[1], m[2]);
    }
    return 0;
}

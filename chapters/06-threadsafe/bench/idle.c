/* idle.c - what an idle connection costs: N connections to a chapter-3
 * listener, each having sent one small request that the server read,
 * consumed and answered; then everything sits still and the bench counts.
 *
 *     ch06_bench_idle_<backend> [--connections N] [--runs R]
 *
 * Per connection it reports the stream's buffers (evq_tcp_stats:
 * read_capacity + write_queued, and of those kernel_lent) and how much the process grew, both in
 * address space asked for and in resident memory (/proc/self/statm on
 * Linux; commit charge and working set on Windows), for fixed read
 * buffers of three sizes and for
 * the default strategy (4 KiB growing to 256 KiB, shrunk when emptied); on
 * IOCP each of them with and without zero-byte receives.
 *
 * The baseline, in the same run: the same N connections accepted and
 * answered with plain blocking sockets and a stack buffer, no library. Its
 * resident growth is what a connection costs this process with nothing
 * buffered; the column "above baseline" is the difference. (A ratio to a
 * baseline near zero would say nothing, so memory is compared in bytes.)
 * Kernel socket memory is not in either figure: an idle socket's kernel
 * queues are empty.
 */
#include "bench.h"
#include "evq.h"

#include "evq_clock.h"
#include "evq_net.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KIB ((size_t)1024)
#define LISTENER_TOKEN UINT64_MAX /* any value works; streams get 0..N-1 */

static const char request[] = "GET /idle HTTP/1.1\r\nHost: bench\r\n\r\n";
static const char response[] = "HTTP/1.1 204 No Content\r\n\r\n";

struct config {
    const char *name;
    size_t read_initial, read_max; /* 0: no library (the baseline) */
    int zero_byte_receive;
    bool iocp_only;
};

static const struct config configs[] = {
    {"plain sockets, no library (baseline)", 0, 0, 0, false},
    {"fixed 4 KiB read buffer", 4 * KIB, 4 * KIB, 0, false},
    {"fixed 64 KiB read buffer", 64 * KIB, 64 * KIB, 0, false},
    {"fixed 1 MiB read buffer", 1024 * KIB, 1024 * KIB, 0, false},
    {"default: 4 KiB growing to 256 KiB", 4 * KIB, 256 * KIB, 0, false},
    {"fixed 4 KiB, zero-byte receive", 4 * KIB, 4 * KIB, 1, true},
    {"fixed 64 KiB, zero-byte receive", 64 * KIB, 64 * KIB, 1, true},
    {"fixed 1 MiB, zero-byte receive", 1024 * KIB, 1024 * KIB, 1, true},
    {"default, zero-byte receive", 4 * KIB, 256 * KIB, 1, true},
};
#define CONFIGS (sizeof configs / sizeof configs[0])

struct result {
    double asked;     /* growth per connection, bytes: address space (commit) */
    double resident;  /* growth per connection, bytes: resident */
    double buffers;   /* read_capacity per connection, idle */
    double lent;      /* kernel_lent per connection */
};

struct server {
    evq_poll *poll;
    evq_tcp *listener;
    evq_tcp **streams;
    size_t accepted, answered;
};

/* One event on the listener: accept all that is pending. */
static int on_listener(struct server *s, size_t capacity)
{
    for (;;) {
        evq_tcp *stream;
        int rc = evq_tcp_accept(s->listener, &stream);
        if (rc == EVQ_EWOULDBLOCK)
            break;
        if (rc != 0)
            return rc;
        if (s->accepted == capacity) {
            evq_tcp_close(stream);
            return EVQ_EFULL;
        }
        s->streams[s->accepted] = stream;
        if ((rc = evq_register(s->poll, stream, s->accepted, EVQ_READABLE)) != 0)
            return rc;
        s->accepted++;
    }
    return evq_reregister(s->poll, s->listener, LISTENER_TOKEN, EVQ_READABLE);
}

/* One event on a connection: once the whole request is there, consume it
 * and answer. Either way the stream is armed again and stays so: idle. */
static int on_stream(struct server *s, evq_tcp *stream, evq_token token)
{
    const void *data;
    size_t len;
    int rc = evq_tcp_peek(stream, &data, &len);
    if (rc == 0 && len >= sizeof request - 1) {
        size_t sent = 0;
        if ((rc = evq_tcp_consume(stream, len)) == 0 &&
            (rc = evq_tcp_write(stream, response, sizeof response - 1, &sent)) == 0)
            s->answered++;
    }
    if (rc != 0 && rc != EVQ_EWOULDBLOCK)
        return rc;
    return evq_reregister(s->poll, stream, token, EVQ_READABLE);
}

static int pump(struct server *s, size_t capacity, size_t until_answered)
{
    uint64_t give_up = evq_clock_now_ns() + 10 * EVQ_NS_PER_S;
    while (s->answered < until_answered && evq_clock_now_ns() < give_up) {
        evq_event events[64];
        size_t n = 0;
        int rc = evq_poll_wait(s->poll, events, 64, 1000, &n);
        for (size_t i = 0; rc == 0 && i < n; i++) {
            if (events[i].token == LISTENER_TOKEN)
                rc = on_listener(s, capacity);
            else
                rc = on_stream(s, s->streams[events[i].token], events[i].token);
        }
        if (rc != 0)
            return rc;
    }
    return s->answered == until_answered ? 0 : EVQ_ETIMEDOUT;
}

static int with_library(const struct config *c, evq_socket *clients, size_t count,
                        struct result *out)
{
    struct server s = {0};
    int rc;
    if (!(s.streams = calloc(count, sizeof *s.streams)))
        return EVQ_ENOMEM;
    if ((rc = evq_poll_open(&s.poll)) != 0)
        goto out_streams;
    uint16_t port = 0;
    evq_tcp_limits limits;
    evq_tcp_get_default_limits(&limits);
    limits.read_initial = c->read_initial;
    limits.read_max = c->read_max;
    limits.zero_byte_receive = c->zero_byte_receive;
    if ((rc = evq_tcp_listen(s.poll, "127.0.0.1", 0, 1024, &s.listener)) != 0 ||
        (rc = evq_tcp_set_limits(s.listener, &limits)) != 0 ||
        (rc = evq_tcp_local_port(s.listener, &port)) != 0 ||
        (rc = evq_register(s.poll, s.listener, LISTENER_TOKEN, EVQ_READABLE)) != 0)
        goto out_poll;

    bench_release_free_memory();
    bench_memory before = bench_memory_now();
    /* One at a time: connect, send the request, turn the loop until the
     * server has answered it. Every connection ends armed for READABLE. */
    for (size_t i = 0; rc == 0 && i < count; i++) {
        if ((rc = evq_net_connect_loopback(port, &clients[i])) == 0 &&
            (rc = evq_net_send_all(clients[i], request, sizeof request - 1)) == 0)
            rc = pump(&s, count, i + 1);
    }
    if (rc != 0)
        goto out_poll;
    bench_memory after = bench_memory_now();

    double buffers = 0, lent = 0;
    for (size_t i = 0; i < s.accepted; i++) {
        evq_tcp_stats stats;
        if ((rc = evq_tcp_get_stats(s.streams[i], &stats)) != 0)
            goto out_poll;
        /* On IOCP the lent bytes are the read buffer's (or the write
         * queue's, empty here): part of read_capacity, not on top of it. */
        buffers += (double)(stats.read_capacity + stats.write_queued);
        lent += (double)stats.kernel_lent;
    }
    out->asked = ((double)after.asked - (double)before.asked) / (double)count;
    out->resident = ((double)after.resident - (double)before.resident) / (double)count;
    out->buffers = buffers / (double)count;
    out->lent = lent / (double)count;
out_poll:
    for (size_t i = 0; i < s.accepted; i++)
        evq_tcp_close(s.streams[i]);
    evq_tcp_close(s.listener);
    evq_poll_close(s.poll);
out_streams:
    free(s.streams);
    return rc;
}

/* The same connections with no library: accept, one recv into a stack
 * buffer, one send, and keep the socket. */
static int plain(evq_socket *clients, evq_socket *servers, size_t count, struct result *out)
{
    evq_socket listener;
    uint16_t port;
    int rc = evq_net_listen_loopback(0, 1024, &listener, &port);
    if (rc != 0)
        return rc;
    bench_release_free_memory();
    bench_memory before = bench_memory_now();
    for (size_t i = 0; rc == 0 && i < count; i++) {
        char buf[256];
        size_t got = 0, have = 0;
        if ((rc = evq_net_connect_loopback(port, &clients[i])) != 0 ||
            (rc = evq_net_send_all(clients[i], request, sizeof request - 1)) != 0 ||
            (rc = evq_net_accept(listener, &servers[i])) != 0)
            break;
        while (rc == 0 && have < sizeof request - 1) {
            rc = evq_net_recv(servers[i], buf + have, sizeof buf - have, &got);
            if (rc == 0 && got == 0)
                rc = EVQ_EOF;
            have += got;
        }
        if (rc == 0)
            rc = evq_net_send_all(servers[i], response, sizeof response - 1);
    }
    bench_memory after = bench_memory_now();
    out->asked = ((double)after.asked - (double)before.asked) / (double)count;
    out->resident = ((double)after.resident - (double)before.resident) / (double)count;
    evq_socket_close(listener);
    return rc;
}

static void close_all(evq_socket *sockets, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        if (sockets[i] != EVQ_INVALID_SOCKET)
            evq_socket_close(sockets[i]);
        sockets[i] = EVQ_INVALID_SOCKET;
    }
}

static int usage(const char *program)
{
    fprintf(stderr,
            "usage: %s [--connections N] [--runs R]\n"
            "  N idle connections per configuration (1..5000, default 500),\n"
            "  R rounds of every configuration, alternating (1..20, default 3)\n",
            program);
    return 2;
}

int main(int argc, char **argv)
{
    static const char *const known[] = {"--connections", "--runs", NULL};
    unsigned long count = 500, runs = 3;
    if (!bench_arguments_ok(argc, argv, known) ||
        !bench_option(argc, argv, "--connections", 1, 5000, &count) ||
        !bench_option(argc, argv, "--runs", 1, 20, &runs))
        return usage(argv[0]);
    if (bench_init() != 0)
        return 1;
    bool iocp = strcmp(evq_backend(), "iocp") == 0;
    size_t n = (size_t)count;
    evq_socket *clients = malloc(n * sizeof *clients);
    evq_socket *servers = malloc(n * sizeof *servers);
    if (!clients || !servers)
        return 1;
    for (size_t i = 0; i < n; i++)
        clients[i] = servers[i] = EVQ_INVALID_SOCKET;

    static double resident[CONFIGS][20], asked[CONFIGS][20];
    static struct result last[CONFIGS];
    for (unsigned long r = 0; r < runs; r++) {
        for (size_t i = 0; i < CONFIGS; i++) {
            if (configs[i].iocp_only && !iocp)
                continue;
            struct result res = {0};
            int rc = configs[i].read_max == 0 ? plain(clients, servers, n, &res)
                                              : with_library(&configs[i], clients, n, &res);
            close_all(clients, n);
            close_all(servers, n);
            if (rc != 0) {
                fprintf(stderr, "%s: %s\n", configs[i].name, evq_strerror(rc));
                return 1;
            }
            resident[i][r] = res.resident;
            asked[i][r] = res.asked;
            last[i] = res;
        }
    }

    printf("%lu idle connections, each after one request and answer; %lu rounds, backend %s\n\n",
           count, runs, evq_backend());
    printf("Per connection; growth figures are medians, \"above baseline\" subtracts the\n"
           "plain sockets' growth measured in the same run.\n\n");
    printf("| configuration | buffers held | of which lent to the kernel | address space "
           "growth | above baseline | resident growth | above baseline |\n");
    printf("|---|---:|---:|---:|---:|---:|---:|\n");
    double base_rss = 0, base_asked = 0;
    for (size_t i = 0; i < CONFIGS; i++) {
        if (configs[i].iocp_only && !iocp)
            continue;
        double rss = bench_median(resident[i], (size_t)runs);
        double as = bench_median(asked[i], (size_t)runs);
        if (i == 0) {
            base_rss = rss;
            base_asked = as;
            printf("| %s | - | - | %.0f B | - | %.0f B | - |\n", configs[i].name, as, rss);
            continue;
        }
        printf("| %s | %.0f B | %.0f B | %.0f B | %+.0f B | %.0f B | %+.0f B |\n",
               configs[i].name, last[i].buffers, last[i].lent, as, as - base_asked, rss,
               rss - base_rss);
    }
    free(clients);
    free(servers);
    return 0;
}

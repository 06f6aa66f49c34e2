/* bench_ch04_idle.c - what an idle connection costs on chapter 4's queue
 * on io_uring, with and without provided buffers, in the same run.
 *
 *     uring_bench_ch04_idle [--connections N] [--runs R]
 *
 * N connections to a listener on the queue (ch04_uring); each sends one
 * small request, which the server reads, consumes and answers; then every
 * connection sits armed for READABLE, idle, and the bench counts per
 * connection: the stream's buffers (evq_tcp_stats: read_capacity and
 * write_queued), of those what is lent to the kernel (kernel_lent), and
 * how much the process's resident memory grew (/proc/self/statm) - for a
 * receive into each stream's read buffer (the default), and for a multishot
 * receive on the queue's provided buffers (zero_byte_receive), whose ring
 * of 64 x 4 KiB is one cost for all the connections, shown apart.
 * Rounds alternate the two; growth figures are medians.
 */
#include "bench.h"
#include "evq.h"
#include "uring_testing.h"

#include "evq_clock.h"
#include "evq_net.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LISTENER_TOKEN UINT64_MAX

static const char request[] = "GET /idle HTTP/1.1\r\nHost: bench\r\n\r\n";
static const char response[] = "HTTP/1.1 204 No Content\r\n\r\n";

struct config {
    const char *name;
    int provided;
};
static const struct config configs[] = {
    {"receive into each stream's read buffer (default)", 0},
    {"multishot receive on provided buffers", 1},
};
#define CONFIGS (sizeof configs / sizeof configs[0])

struct result {
    double buffers;  /* read_capacity + write_queued per connection */
    double lent;     /* kernel_lent per connection */
    double resident; /* resident growth per connection, bytes */
    size_t ring;     /* the provided buffers, all connections together */
};

struct server {
    evq_poll *poll;
    evq_tcp *listener;
    evq_tcp **streams;
    size_t accepted, answered, capacity;
};

static int on_listener(struct server *s)
{
    for (;;) {
        evq_tcp *stream;
        int rc = evq_tcp_accept(s->listener, &stream);
        if (rc == EVQ_EWOULDBLOCK)
            break;
        if (rc != 0)
            return rc;
        if (s->accepted == s->capacity) {
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
    return evq_reregister(s->poll, stream, token, EVQ_READABLE); /* idle, armed */
}

static int pump(struct server *s, size_t until_answered)
{
    uint64_t give_up = evq_clock_now_ns() + 10 * EVQ_NS_PER_S;
    while (s->answered < until_answered && evq_clock_now_ns() < give_up) {
        evq_event events[64];
        size_t n = 0;
        int rc = evq_poll_wait(s->poll, events, 64, 1000, &n);
        for (size_t i = 0; rc == 0 && i < n; i++) {
            if (events[i].token == LISTENER_TOKEN)
                rc = on_listener(s);
            else
                rc = on_stream(s, s->streams[events[i].token], events[i].token);
        }
        if (rc != 0)
            return rc;
    }
    return s->answered == until_answered ? 0 : EVQ_ETIMEDOUT;
}

static int run(const struct config *c, evq_socket *clients, size_t count, struct result *out)
{
    struct server s = {0};
    s.capacity = count;
    int rc;
    if (!(s.streams = calloc(count, sizeof *s.streams)))
        return EVQ_ENOMEM;
    if ((rc = evq_poll_open(&s.poll)) != 0)
        goto out_streams;
    uint16_t port = 0;
    evq_tcp_limits limits;
    evq_tcp_get_default_limits(&limits);
    limits.zero_byte_receive = c->provided;
    if ((rc = evq_tcp_listen(s.poll, "127.0.0.1", 0, 1024, &s.listener)) != 0 ||
        (rc = evq_tcp_set_limits(s.listener, &limits)) != 0 ||
        (rc = evq_tcp_local_port(s.listener, &port)) != 0 ||
        (rc = evq_register(s.poll, s.listener, LISTENER_TOKEN, EVQ_READABLE)) != 0)
        goto out_poll;
    /* The first connection opens the provided-buffer ring: outside the
     * measurement, which then covers what each connection adds. */
    evq_socket first = EVQ_INVALID_SOCKET;
    if ((rc = evq_net_connect_loopback(port, &first)) != 0 ||
        (rc = evq_net_send_all(first, request, sizeof request - 1)) != 0 || (rc = pump(&s, 1)) != 0)
        goto out_first;
    bench_release_free_memory();
    bench_memory before = bench_memory_now();
    for (size_t i = 0; rc == 0 && i + 1 < count; i++) {
        if ((rc = evq_net_connect_loopback(port, &clients[i])) == 0 &&
            (rc = evq_net_send_all(clients[i], request, sizeof request - 1)) == 0)
            rc = pump(&s, i + 2);
    }
    if (rc != 0)
        goto out_first;
    bench_memory after = bench_memory_now();
    double buffers = 0, lent = 0;
    for (size_t i = 1; i < s.accepted; i++) {
        evq_tcp_stats stats;
        if ((rc = evq_tcp_get_stats(s.streams[i], &stats)) != 0)
            goto out_first;
        buffers += (double)(stats.read_capacity + stats.write_queued);
        lent += (double)stats.kernel_lent;
    }
    evq_uring_queue_stats ring;
    evq_uring_get_queue_stats(s.poll, &ring);
    size_t measured = count - 1;
    out->buffers = buffers / (double)measured;
    out->lent = lent / (double)measured;
    out->resident = ((double)after.resident - (double)before.resident) / (double)measured;
    out->ring = ring.buffers * 4096 + ring.buffers * 16; /* the buffers and their ring entries */
out_first:
    if (first != EVQ_INVALID_SOCKET)
        evq_socket_close(first);
out_poll:
    for (size_t i = 0; i < s.accepted; i++)
        evq_tcp_close(s.streams[i]);
    evq_tcp_close(s.listener);
    evq_poll_close(s.poll);
out_streams:
    free(s.streams);
    return rc;
}

static int usage(const char *program)
{
    fprintf(stderr,
            "usage: %s [--connections N] [--runs R]\n"
            "  N idle connections per configuration (2..5000, default 1000),\n"
            "  R rounds of both configurations, alternating (1..20, default 3)\n",
            program);
    return 2;
}

int main(int argc, char **argv)
{
    static const char *const known[] = {"--connections", "--runs", NULL};
    unsigned long count = 1000, runs = 3;
    if (!bench_arguments_ok(argc, argv, known) ||
        !bench_option(argc, argv, "--connections", 2, 5000, &count) ||
        !bench_option(argc, argv, "--runs", 1, 20, &runs))
        return usage(argv[0]);
    if (bench_init() != 0)
        return 1;
    size_t n = (size_t)count;
    evq_socket *clients = malloc(n * sizeof *clients);
    if (!clients)
        return 1;
    static double resident[CONFIGS][20];
    static struct result last[CONFIGS];
    for (unsigned long r = 0; r < runs; r++) {
        for (size_t i = 0; i < CONFIGS; i++) {
            for (size_t k = 0; k < n; k++)
                clients[k] = EVQ_INVALID_SOCKET;
            struct result res = {0};
            int rc = run(&configs[i], clients, n, &res);
            for (size_t k = 0; k < n; k++) {
                if (clients[k] != EVQ_INVALID_SOCKET)
                    evq_socket_close(clients[k]);
            }
            if (rc != 0) {
                fprintf(stderr, "%s: %s\n", configs[i].name, evq_strerror(rc));
                return 1;
            }
            resident[i][r] = res.resident;
            last[i] = res;
        }
    }
    printf("chapter 4's queue on io_uring: %lu idle connections, each after one request and "
           "answer, armed for READABLE; %lu rounds\n\n",
           count - 1, runs);
    printf("| receive | buffers held | of which lent to the kernel | resident growth | vs the "
           "default | shared: provided buffers |\n");
    printf("|---|---:|---:|---:|---:|---:|\n");
    double base = 0;
    for (size_t i = 0; i < CONFIGS; i++) {
        double rss = bench_median(resident[i], (size_t)runs);
        if (i == 0)
            base = rss;
        char shared[64] = "-";
        if (last[i].ring > 0)
            snprintf(shared, sizeof shared, "%zu KiB (%.0f B per connection)", last[i].ring / 1024,
                     (double)last[i].ring / (double)(count - 1));
        printf("| %s | %.0f B | %.0f B | %.0f B | %.3f | %s |\n", configs[i].name, last[i].buffers,
               last[i].lent, rss, base > 0 ? rss / base : 0.0, shared);
    }
    free(clients);
    return 0;
}

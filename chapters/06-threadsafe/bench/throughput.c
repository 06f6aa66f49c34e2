/* throughput.c - a large transfer over loopback through a chapter-3 stream,
 * against plain blocking sockets measured in the same run.
 *
 *     ch06_bench_throughput_<backend> [--mib N] [--runs R]
 *
 * Receiving: a peer thread sends N MiB with blocking send() on a raw socket;
 * the main thread receives them on an evq stream (register READABLE, wait,
 * peek + consume until EVQ_EWOULDBLOCK, re-register), once for each read
 * buffer limit below (and on IOCP once more with zero-byte receives). A
 * "busy reader" also computes a checksum of every byte (FNV-1a, a few
 * cycles a byte): slower than the sender, so that bytes pile up in the
 * socket and every fill ends with the buffer full - the stream a parser
 * that touches every byte would see.
 * Sending: the main thread writes N MiB into a stream's write queue
 * (default limits: high 1 MiB, low 256 KiB) and a peer thread receives them
 * with blocking recv(). The baseline: both ends blocking, send() and recv()
 * of 64 KiB, the same N MiB on the same kind of loopback connection.
 *
 * Every byte is checked against the pattern the sender sent. The
 * configurations alternate, R rounds of each; the table shows medians and
 * the ratio to the baseline's median. recv calls, sends and waits come from
 * evq_tcp_stats and the loop itself.
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

#define KIB ((size_t)1024)
#define MIB (KIB * KIB)
#define CHUNK (64 * KIB)           /* what each send() / evq_tcp_write offers */
#define GIVE_UP_NS (60 * EVQ_NS_PER_S) /* a transfer that takes longer has failed */

enum kind { BASELINE, RECEIVE, SEND };

struct config {
    const char *name;
    enum kind kind;
    size_t read_initial, read_max; /* 0: the defaults */
    int zero_byte_receive;
    bool iocp_only;
    bool busy; /* the receiver checksums every byte */
};

static const struct config configs[] = {
    {"blocking send/recv, 64 KiB (baseline)", BASELINE, 0, 0, 0, false, false},
    {"receive, read_max 4 KiB", RECEIVE, 4 * KIB, 4 * KIB, 0, false, false},
    {"receive, 4 KiB growing to 64 KiB", RECEIVE, 4 * KIB, 64 * KIB, 0, false, false},
    {"receive, 4 KiB growing to 1 MiB", RECEIVE, 4 * KIB, MIB, 0, false, false},
    {"receive, fixed 64 KiB", RECEIVE, 64 * KIB, 64 * KIB, 0, false, false},
    {"receive, fixed 1 MiB", RECEIVE, MIB, MIB, 0, false, false},
    {"receive, read_max 4 KiB, zero-byte", RECEIVE, 4 * KIB, 4 * KIB, 1, true, false},
    {"receive, 4 KiB growing to 64 KiB, zero-byte", RECEIVE, 4 * KIB, 64 * KIB, 1, true, false},
    {"receive, 4 KiB growing to 1 MiB, zero-byte", RECEIVE, 4 * KIB, MIB, 1, true, false},
    {"busy reader, 4 KiB growing to 64 KiB", RECEIVE, 4 * KIB, 64 * KIB, 0, false, true},
    {"busy reader, fixed 64 KiB", RECEIVE, 64 * KIB, 64 * KIB, 0, false, true},
    {"send, write queue 1 MiB / 256 KiB", SEND, 0, 0, 0, false, false},
};
#define CONFIGS (sizeof configs / sizeof configs[0])

struct result {
    double seconds;
    double calls; /* recv calls (receiving, baseline) or send calls (sending) */
    double waits;
    size_t read_peak;
};

/* The raw end of the connection, run on its own thread. */
struct peer {
    evq_socket socket;
    uint64_t total;
    bool sending;
    uint64_t calls;
    int rc;
    atomic_bool finished;
    evq_poll *wake; /* woken when finished, so that the loop need not poll */
};

static void peer_run(void *arg)
{
    struct peer *p = arg;
    uint64_t done = 0;
    if (p->sending) {
        while (p->rc == 0 && done < p->total) {
            size_t len = p->total - done < CHUNK ? (size_t)(p->total - done) : CHUNK;
            p->rc = evq_net_send_all(p->socket, bench_pattern(done), len);
            p->calls++;
            done += len;
        }
        evq_socket_close(p->socket); /* EOF for the receiver */
        p->socket = EVQ_INVALID_SOCKET;
    } else {
        static unsigned char buf[CHUNK];
        for (;;) {
            size_t got = 0;
            p->rc = evq_net_recv(p->socket, buf, sizeof buf, &got);
            p->calls++;
            if (p->rc != 0 || got == 0)
                break;
            if (!bench_pattern_matches(done, buf, got)) {
                p->rc = EVQ_EIO;
                break;
            }
            done += got;
        }
        if (p->rc == 0 && done != p->total)
            p->rc = EVQ_EIO;
    }
    atomic_store(&p->finished, true);
    if (p->wake)
        evq_poll_wake(p->wake);
}

static int baseline(uint64_t total, struct result *out)
{
    evq_socket receiver;
    struct peer p = {.total = total, .sending = true};
    int rc = evq_net_tcp_pair(&p.socket, &receiver);
    if (rc != 0)
        return rc;
    static unsigned char buf[CHUNK];
    evq_thread thread;
    uint64_t t0 = evq_clock_now_ns(), done = 0, calls = 0;
    if ((rc = evq_thread_start(&thread, peer_run, &p)) != 0)
        goto out;
    while (rc == 0 && done < total) {
        size_t got = 0;
        rc = evq_net_recv(receiver, buf, sizeof buf, &got);
        calls++;
        if (rc == 0 && got == 0)
            rc = EVQ_EOF; /* early */
        else if (rc == 0 && !bench_pattern_matches(done, buf, got))
            rc = EVQ_EIO;
        done += got;
    }
    out->seconds = bench_seconds_since(t0);
    evq_thread_join(&thread);
    if (rc == 0)
        rc = p.rc;
    out->calls = (double)calls;
out:
    evq_socket_close(receiver);
    if (p.socket != EVQ_INVALID_SOCKET)
        evq_socket_close(p.socket);
    return rc;
}

/* A stream and its raw peer: the stream connects to a raw listener. */
static int stream_pair(evq_poll *poll, evq_tcp **stream, evq_socket *peer)
{
    evq_socket listener;
    uint16_t port;
    int rc = evq_net_listen_loopback(0, 4, &listener, &port);
    if (rc != 0)
        return rc;
    if ((rc = evq_tcp_connect(poll, "127.0.0.1", port, stream)) == 0 &&
        (rc = evq_net_accept(listener, peer)) != 0)
        evq_tcp_close(*stream);
    evq_socket_close(listener);
    return rc;
}

/* The busy reader's work: FNV-1a of every byte, kept so that it is done. */
static uint32_t checksum;
static void checksum_bytes(const void *data, size_t len)
{
    const unsigned char *bytes = data;
    uint32_t hash = checksum;
    for (size_t i = 0; i < len; i++)
        hash = (hash ^ bytes[i]) * 16777619u;
    checksum = hash;
}

/* ANCHOR: receive_loop */
/* Receive until EOF: every event, look at all that is buffered, consume it,
 * and again until the stream would block; then arm it again. */
static int receive_all(evq_poll *poll, evq_tcp *stream, uint64_t total, bool busy,
                       uint64_t *waits)
{
    uint64_t done = 0, give_up = evq_clock_now_ns() + GIVE_UP_NS;
    int rc = evq_register(poll, stream, 1, EVQ_READABLE);
    while (rc == 0 && evq_clock_now_ns() < give_up) {
        evq_event event;
        size_t n = 0;
        if ((rc = evq_poll_wait(poll, &event, 1, 1000, &n)) != 0)
            break;
        ++*waits;
        for (;;) {
            const void *data;
            size_t len;
            rc = evq_tcp_peek(stream, &data, &len);
            if (rc != 0)
                break;
            if (!bench_pattern_matches(done, data, len))
                return EVQ_EIO;
            if (busy)
                checksum_bytes(data, len);
            done += len;
            if ((rc = evq_tcp_consume(stream, len)) != 0)
                return rc;
        }
        if (rc == EVQ_EOF)
            return done == total ? 0 : EVQ_EIO;
        if (rc == EVQ_EWOULDBLOCK && n > 0)
            rc = evq_reregister(poll, stream, 1, EVQ_READABLE);
        else if (rc == EVQ_EWOULDBLOCK)
            rc = 0; /* a timeout: still armed */
    }
    return rc != 0 ? rc : EVQ_ETIMEDOUT;
}
/* ANCHOR_END: receive_loop */

/* Write the whole transfer into the stream's queue as fast as it takes it;
 * then half-close and keep the loop turning until the peer has it all. */
static int send_all(evq_poll *poll, evq_tcp *stream, struct peer *p, uint64_t *waits)
{
    uint64_t done = 0, give_up = evq_clock_now_ns() + GIVE_UP_NS;
    int rc = 0;
    bool armed = false;
    while (rc == 0 && !atomic_load(&p->finished) && evq_clock_now_ns() < give_up) {
        while (done < p->total) {
            size_t len = p->total - done < CHUNK ? (size_t)(p->total - done) : CHUNK, n = 0;
            rc = evq_tcp_write(stream, bench_pattern(done), len, &n);
            if (rc != 0)
                break;
            done += n;
            if (done == p->total)
                rc = evq_tcp_shutdown(stream); /* FIN once the queue is empty */
        }
        if (rc == EVQ_EWOULDBLOCK) { /* the queue is full: wait for WRITABLE */
            rc = armed ? evq_reregister(poll, stream, 1, EVQ_WRITABLE)
                       : evq_register(poll, stream, 1, EVQ_WRITABLE);
            armed = true;
        }
        if (rc != 0)
            break;
        evq_event event;
        size_t n = 0;
        /* The queue drains in here; the peer wakes us when it has it all. */
        rc = evq_poll_wait(poll, &event, 1, 1000, &n);
        ++*waits;
    }
    if (rc == 0 && !atomic_load(&p->finished))
        rc = EVQ_ETIMEDOUT;
    return rc;
}

static int through_stream(const struct config *c, uint64_t total, struct result *out)
{
    evq_poll *poll;
    int rc = evq_poll_open(&poll);
    if (rc != 0)
        return rc;
    evq_tcp *stream = NULL;
    struct peer p = {.total = total, .sending = c->kind == RECEIVE, .wake = poll};
    if ((rc = stream_pair(poll, &stream, &p.socket)) != 0)
        goto out_poll;
    evq_tcp_limits limits;
    evq_tcp_get_default_limits(&limits);
    if (c->read_max) {
        limits.read_initial = c->read_initial;
        limits.read_max = c->read_max;
    }
    limits.zero_byte_receive = c->zero_byte_receive;
    if ((rc = evq_tcp_set_limits(stream, &limits)) != 0)
        goto out_stream;

    evq_thread thread;
    uint64_t waits = 0, t0 = evq_clock_now_ns();
    if ((rc = evq_thread_start(&thread, peer_run, &p)) != 0)
        goto out_stream;
    if (c->kind == RECEIVE)
        rc = receive_all(poll, stream, total, c->busy, &waits);
    else
        rc = send_all(poll, stream, &p, &waits);
    out->seconds = bench_seconds_since(t0);
    if (rc != 0) { /* unblock a peer still blocked in send() or recv() */
        evq_tcp_close(stream);
        stream = NULL;
    }
    evq_thread_join(&thread);
    if (rc == 0)
        rc = p.rc;
    evq_tcp_stats stats;
    if (rc == 0 && (rc = evq_tcp_get_stats(stream, &stats)) == 0) {
        out->calls = (double)(c->kind == RECEIVE ? stats.receive_calls : stats.send_calls);
        out->read_peak = stats.read_capacity_peak;
        out->waits = (double)waits;
    }
out_stream:
    evq_tcp_close(stream);
    if (p.socket != EVQ_INVALID_SOCKET)
        evq_socket_close(p.socket);
out_poll:
    evq_poll_close(poll);
    return rc;
}

static int usage(const char *program)
{
    fprintf(stderr,
            "usage: %s [--mib N] [--runs R]\n"
            "  N MiB per transfer (1..4096, default 128), R rounds of every\n"
            "  configuration, alternating (1..50, default 3)\n",
            program);
    return 2;
}

int main(int argc, char **argv)
{
    static const char *const known[] = {"--mib", "--runs", NULL};
    unsigned long mib = 128, runs = 3;
    if (!bench_arguments_ok(argc, argv, known) ||
        !bench_option(argc, argv, "--mib", 1, 4096, &mib) ||
        !bench_option(argc, argv, "--runs", 1, 50, &runs))
        return usage(argv[0]);
    if (bench_init() != 0)
        return 1;
    bool iocp = strcmp(evq_backend(), "iocp") == 0;
    uint64_t total = (uint64_t)mib * MIB;
    static double seconds[CONFIGS][50];
    static struct result last[CONFIGS];

    for (unsigned long r = 0; r < runs; r++) {
        for (size_t i = 0; i < CONFIGS; i++) {
            if (configs[i].iocp_only && !iocp)
                continue;
            struct result res = {0};
            int rc = configs[i].kind == BASELINE ? baseline(total, &res)
                                                 : through_stream(&configs[i], total, &res);
            if (rc != 0) {
                fprintf(stderr, "%s: %s\n", configs[i].name, evq_strerror(rc));
                return 1;
            }
            seconds[i][r] = res.seconds;
            last[i] = res;
        }
    }

    printf("%lu MiB over loopback, %lu rounds, backend %s; medians (checksum %08x)\n\n", mib,
           runs, evq_backend(), (unsigned)checksum);
    printf("| configuration | MiB/s | vs baseline | recv (send) calls / MiB | waits / MiB "
           "| read buffer peak |\n");
    printf("|---|---:|---:|---:|---:|---:|\n");
    double base = 0;
    for (size_t i = 0; i < CONFIGS; i++) {
        if (configs[i].iocp_only && !iocp)
            continue;
        double rate = (double)mib / bench_median(seconds[i], (size_t)runs);
        if (i == 0)
            base = rate;
        const struct result *res = &last[i];
        char peak[32] = "-";
        if (configs[i].kind != BASELINE)
            snprintf(peak, sizeof peak, "%zu KiB", res->read_peak / KIB);
        printf("| %s | %.0f | %.2fx | %.1f | %.1f | %s |\n", configs[i].name, rate,
               rate / base, res->calls / (double)mib, res->waits / (double)mib, peak);
    }
    return 0;
}

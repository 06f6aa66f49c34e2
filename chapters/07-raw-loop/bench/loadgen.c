/* loadgen.c - chapter 7's load generator: an echo ping-pong (or keep-alive
 * HTTP) client on raw epoll, the same for every server it measures.
 *
 *     ch07_bench_loadgen --port P [--connections N] [--size B] [--depth D]
 *                        [--seconds S] [--warmup S] [--round-trips N]
 *                        [--timeout S] [--http PATH] [--server-pid PID] [--csv]
 *
 * Echo (the default): N connections each keep D messages of B bytes in
 * flight; each echo that comes back completes a round trip and sends the
 * next message. Every byte is checked: a connection's bytes are a stream of
 * pseudo-random bytes starting at its own place in a 65 521-byte cycle, so a
 * lost, doubled, reordered or misdelivered byte is a mismatch, and the
 * program exits 1 naming the connection and the offset.
 *
 * HTTP (--http PATH): each message is "GET PATH HTTP/1.1" on a keep-alive
 * connection (D requests pipelined); an answer is complete at the end of its
 * Content-Length; answers other than 200 are counted and make the exit
 * status 1.
 *
 * A run connects, warms up (--warmup, default 0.5 s), measures (--seconds,
 * default 3), then stops sending and waits for every message in flight
 * (5 s at most: a message still missing then is a failure). With
 * --round-trips N each connection sends exactly N messages and the run ends
 * when all have come back (or fails after --timeout, default 60 s).
 *
 * Reported for the measured window: round trips per second, latency
 * percentiles (p50, p99, max: from sending a message to the end of its echo)
 * and, with --server-pid, the server's CPU time per round trip, read from
 * /proc/<pid>/task/<tid>/schedstat (all threads, and child processes) at the
 * start and the end of the window, and the share of one core it used; the
 * client's own share too (it must not be the bottleneck: see the README).
 * --csv prints the numbers as one CSV line on stdout and the text on stderr.
 *
 * The client is deliberately cheap: level-triggered epoll, one recv() per
 * readable event and one send() per batch of messages, so per round trip it
 * makes fewer system calls than an edge-triggered server that drains to
 * EAGAIN.
 */
#define _GNU_SOURCE /* memmem */
#include "latency.h"
#include "proc_cpu.h"

#include "evq_args.h"
#include "evq_clock.h"
#include "evq_error.h"
#include "evq_net.h"
#include "evq_random.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define PATTERN_PERIOD      65521u              /* prime: never lines up with a buffer size */
#define READ_SIZE           ((size_t)64 * 1024) /* one recv() */
#define HTTP_BUFFER         ((size_t)16 * 1024) /* the longest answer (head and body) */
#define MAX_IN_FLIGHT_BYTES ((size_t)16 << 20)  /* size * depth */
#define DRAIN_SECONDS       5.0
#define MAX_EVENTS          1024

struct options {
    unsigned long port, connections, size, depth, round_trips, server_pid;
    double seconds, warmup, timeout;
    const char *http_path; /* NULL: echo */
    bool csv;
};

struct connection {
    int fd;
    unsigned index;
    size_t base;        /* where this connection's stream starts in the source */
    uint64_t issued;    /* messages handed to the socket (or waiting to be) */
    uint64_t completed; /* messages whose echo (answer) has come back whole */
    uint64_t sent;      /* bytes of the stream the socket has taken */
    uint64_t received;  /* echo: bytes of the stream received and checked */
    uint64_t *sent_at;  /* when message k was issued, at [k % depth] */
    bool want_writable;
    char *in; /* http: the start of an answer not complete yet */
    size_t in_len;
};

struct generator {
    struct options options;
    int epoll_fd;
    struct connection *connections;
    size_t message_size;   /* echo: --size; http: the request's length */
    unsigned char *source; /* what every connection sends, cyclic */
    size_t source_period;
    bool issuing; /* new messages may still be sent */
    bool measuring;
    uint64_t in_flight; /* issued - completed, every connection */
    uint64_t completed; /* every connection, whole run */
    uint64_t measured;  /* completed while measuring */
    uint64_t non_200;   /* http answers with another status */
    uint64_t window_start_ns, window_end_ns;
    uint64_t server_cpu_start, server_cpu_end;
    bool server_cpu_known;
    uint64_t client_cpu_start, client_cpu_end;
    uint64_t machine_busy_start, machine_busy_end;
    bool machine_busy_known;
    struct latency_histogram histogram;
    unsigned char scratch[READ_SIZE];
};

static FILE *text_out; /* stdout, or stderr with --csv */

static _Noreturn void fail(const char *format, ...)
{
    va_list args;
    va_start(args, format);
    fprintf(stderr, "loadgen: ");
    vfprintf(stderr, format, args);
    fprintf(stderr, "\n");
    va_end(args);
    exit(1);
}

/* ---- options ----------------------------------------------------------------------- */
static int usage(FILE *to, const char *program, int status)
{
    fprintf(to,
            "Usage: %s --port P [options]\n"
            "\n"
            "Echo ping-pong (or keep-alive HTTP) load on 127.0.0.1:P; every echo is checked.\n"
            "\n"
            "  --connections N  connections (default 100)\n"
            "  --size B         bytes per echo message (default 64)\n"
            "  --depth D        messages in flight per connection: pipelining (default 1)\n"
            "  --seconds S      measured time (default 3)\n"
            "  --warmup S       time before measuring (default 0.5)\n"
            "  --round-trips N  instead of a time: N messages per connection, then stop\n"
            "  --timeout S      with --round-trips: fail after S seconds (default 60)\n"
            "  --http PATH      HTTP mode: GET PATH with keep-alive, count 200 answers\n"
            "  --server-pid PID report the server's CPU time (process and children)\n"
            "  --csv            one CSV line on stdout: round_trips_per_s,p50_us,p99_us,\n"
            "                   max_us,cpu_us_per_rt,server_cpu_pct,client_cpu_pct,\n"
            "                   other_cpu_pct,round_trips,seconds (text: to stderr)\n"
            "\n"
            "Exit status: 0, 1 on any mismatch, lost message, refused or closed\n"
            "connection or non-200 answer, 2 on bad arguments.\n",
            program);
    return status;
}

static bool parse_options(int argc, char **argv, struct options *o)
{
    *o = (struct options){
        .connections = 100, .size = 64, .depth = 1, .seconds = 3, .warmup = 0.5, .timeout = 60};
    bool have_port = false;
    for (int i = 1; i < argc; i++) {
        const char *name = argv[i], *value = i + 1 < argc ? argv[i + 1] : NULL;
        bool ok = value != NULL;
        if (strcmp(name, "--csv") == 0) {
            o->csv = true;
            continue;
        } else if (!ok) {
            return false;
        } else if (strcmp(name, "--port") == 0) {
            ok = evq_parse_ulong(value, 1, 65535, &o->port);
            have_port = true;
        } else if (strcmp(name, "--connections") == 0) {
            ok = evq_parse_ulong(value, 1, 100000, &o->connections);
        } else if (strcmp(name, "--size") == 0) {
            ok = evq_parse_ulong(value, 1, MAX_IN_FLIGHT_BYTES, &o->size);
        } else if (strcmp(name, "--depth") == 0) {
            ok = evq_parse_ulong(value, 1, 4096, &o->depth);
        } else if (strcmp(name, "--round-trips") == 0) {
            ok = evq_parse_ulong(value, 1, UINT32_MAX, &o->round_trips);
        } else if (strcmp(name, "--server-pid") == 0) {
            ok = evq_parse_ulong(value, 1, INT32_MAX, &o->server_pid);
        } else if (strcmp(name, "--seconds") == 0) {
            ok = evq_parse_double(value, 0, 86400, &o->seconds);
        } else if (strcmp(name, "--timeout") == 0) {
            ok = evq_parse_double(value, 0, 86400, &o->timeout);
        } else if (strcmp(name, "--warmup") == 0) {
            /* 0 is allowed here: no warm-up */
            ok = strcmp(value, "0") == 0 ? (o->warmup = 0, true)
                                         : evq_parse_double(value, 0, 3600, &o->warmup);
        } else if (strcmp(name, "--http") == 0) {
            ok = value[0] == '/' && strlen(value) < 1024 && strpbrk(value, " \r\n") == NULL;
            o->http_path = value;
        } else {
            return false;
        }
        if (!ok)
            return false;
        i++;
    }
    if (o->http_path == NULL && o->size * o->depth > MAX_IN_FLIGHT_BYTES)
        return false;
    return have_port;
}

/* ---- what is sent ------------------------------------------------------------------ */
/* The bytes of a connection's stream from `offset` on; valid for the span
 * make_source() allocated past the period (at least one read's worth and
 * everything a connection can have in flight). */
static const unsigned char *source_at(const struct generator *g, const struct connection *c,
                                      uint64_t offset)
{
    return g->source + (c->base + offset) % g->source_period;
}

static void make_source(struct generator *g)
{
    static char request[1200];
    size_t span = READ_SIZE;
    if (g->options.http_path != NULL) {
        int len = snprintf(request, sizeof request, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
                           g->options.http_path);
        g->message_size = g->source_period = (size_t)len;
    } else {
        g->message_size = g->options.size;
        g->source_period = PATTERN_PERIOD;
    }
    if (g->message_size * g->options.depth > span)
        span = g->message_size * g->options.depth;
    g->source = malloc(g->source_period + span);
    if (g->source == NULL)
        fail("out of memory");
    /* One period (the request, or seeded pseudo-random bytes), then copies
     * of its start for the span past it. */
    evq_random random;
    evq_random_seed(&random, 7);
    for (size_t i = 0; i < g->source_period; i++)
        g->source[i] = g->options.http_path != NULL ? (unsigned char)request[i]
                                                    : (unsigned char)evq_random_next(&random);
    for (size_t i = g->source_period; i < g->source_period + span; i++)
        g->source[i] = g->source[i - g->source_period];
}

/* ---- the measured window ----------------------------------------------------------- */
static uint64_t process_cpu_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (uint64_t)t.tv_sec * EVQ_NS_PER_S + (uint64_t)t.tv_nsec;
}

static void start_window(struct generator *g, uint64_t now)
{
    latency_reset(&g->histogram);
    g->measuring = true;
    g->measured = 0;
    g->window_start_ns = now;
    g->client_cpu_start = process_cpu_ns();
    g->machine_busy_known = proc_machine_busy_ns(&g->machine_busy_start) == 0;
    g->server_cpu_known = g->options.server_pid != 0 &&
                          proc_tree_cpu_ns((pid_t)g->options.server_pid, &g->server_cpu_start) == 0;
}

static void end_window(struct generator *g, uint64_t now)
{
    g->measuring = false;
    g->window_end_ns = now;
    g->client_cpu_end = process_cpu_ns();
    if (g->machine_busy_known)
        g->machine_busy_known = proc_machine_busy_ns(&g->machine_busy_end) == 0;
    if (g->server_cpu_known)
        g->server_cpu_known =
            proc_tree_cpu_ns((pid_t)g->options.server_pid, &g->server_cpu_end) == 0;
}

/* ---- one connection ---------------------------------------------------------------- */
static void complete(struct generator *g, struct connection *c, uint64_t now)
{
    uint64_t sent_at = c->sent_at[c->completed % g->options.depth];
    c->completed++;
    g->completed++;
    g->in_flight--;
    if (g->measuring) {
        g->measured++;
        latency_record(&g->histogram, evq_sat_sub(now, sent_at));
    }
}

/* Send what has been issued and not taken yet; ask for EPOLLOUT only while
 * the socket is full. */
static void flush(struct generator *g, struct connection *c)
{
    uint64_t end = c->issued * g->message_size;
    while (c->sent < end) {
        ssize_t n = send(c->fd, source_at(g, c, c->sent), (size_t)(end - c->sent), MSG_NOSIGNAL);
        if (n >= 0)
            c->sent += (uint64_t)n;
        else if (errno == EAGAIN || errno == EWOULDBLOCK)
            break;
        else if (errno != EINTR)
            fail("connection %u: send: %s", c->index, strerror(errno));
    }
    bool want = c->sent < end;
    if (want != c->want_writable) {
        struct epoll_event event = {.events = EPOLLIN | (want ? EPOLLOUT : 0), .data.ptr = c};
        if (epoll_ctl(g->epoll_fd, EPOLL_CTL_MOD, c->fd, &event) != 0)
            fail("epoll_ctl: %s", strerror(errno));
        c->want_writable = want;
    }
}

/* Keep `depth` messages in flight, all sent in one send(). */
static void refill(struct generator *g, struct connection *c, uint64_t now)
{
    bool more = false;
    while (g->issuing && c->issued - c->completed < g->options.depth &&
           (g->options.round_trips == 0 || c->issued < g->options.round_trips)) {
        c->sent_at[c->issued % g->options.depth] = now;
        c->issued++;
        g->in_flight++;
        more = true;
    }
    if (more)
        flush(g, c);
}

/* recv() once (level-triggered: more data is reported again). Returns the
 * byte count; fails the run on EOF or an error. */
static size_t receive(struct generator *g, struct connection *c, void *buffer, size_t capacity)
{
    for (;;) {
        ssize_t n = recv(c->fd, buffer, capacity, 0);
        if (n > 0)
            return (size_t)n;
        if (n == 0 && g->non_200 > 0)
            fail("connection %u: the server closed it with %" PRIu64 " message(s) unanswered, "
                 "after %" PRIu64 " answer(s) with a status other than 200",
                 c->index, c->issued - c->completed, g->non_200);
        if (n == 0)
            fail("connection %u: the server closed it with %" PRIu64 " message(s) unanswered",
                 c->index, c->issued - c->completed);
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return 0;
        if (errno != EINTR)
            fail("connection %u: recv: %s", c->index, strerror(errno));
    }
}

static void on_echo_readable(struct generator *g, struct connection *c, uint64_t now)
{
    size_t n = receive(g, c, g->scratch, sizeof g->scratch);
    if (n == 0)
        return;
    /* Check what was sent first: a server that answers something else
     * entirely is a mismatch at its first wrong byte, whatever the length. */
    uint64_t outstanding = c->issued * g->message_size - c->received;
    size_t checked = n < outstanding ? n : (size_t)outstanding;
    const unsigned char *expected = source_at(g, c, c->received);
    if (memcmp(g->scratch, expected, checked) != 0) {
        size_t at = 0;
        while (g->scratch[at] == expected[at])
            at++;
        fail("connection %u: echo mismatch at byte %" PRIu64 " of its stream: got 0x%02x, "
             "sent 0x%02x",
             c->index, c->received + at, g->scratch[at], expected[at]);
    }
    if (checked < n)
        fail("connection %u: %" PRIu64 " bytes came back, %" PRIu64 " were sent", c->index,
             c->received + n, c->issued * g->message_size);
    c->received += n;
    while (c->completed < c->received / g->message_size)
        complete(g, c, now);
}

/* The length of the whole answer at the start of data[0, len), or 0 while
 * it is incomplete. Fails on what this client does not speak. */
static size_t parse_answer(struct generator *g, struct connection *c, const char *data, size_t len)
{
    const char *end = memmem(data, len, "\r\n\r\n", 4);
    if (end == NULL)
        return 0;
    size_t head = (size_t)(end - data) + 4;
    if (head < 13 || memcmp(data, "HTTP/1.", 7) != 0 || data[8] != ' ')
        fail("connection %u: not an HTTP/1.x answer: %.40s", c->index, data);
    if (memcmp(data + 9, "200", 3) != 0 || data[12] != ' ')
        g->non_200++;
    size_t body = SIZE_MAX;
    /* The header lines: from after the status line to `end`, where the last
     * one's "\r\n" is (so memchr always finds a '\n' before end + 2). */
    const char *line = (const char *)memchr(data, '\n', head) + 1;
    while (line < end) {
        if (strncasecmp(line, "Content-Length:", 15) == 0)
            body = strtoul(line + 15, NULL, 10);
        else if (strncasecmp(line, "Transfer-Encoding:", 18) == 0)
            fail("connection %u: a chunked answer (not supported: the server must send "
                 "Content-Length)",
                 c->index);
        line = (const char *)memchr(line, '\n', (size_t)(end + 2 - line)) + 1;
    }
    if (body == SIZE_MAX)
        fail("connection %u: an answer without Content-Length", c->index);
    if (body > HTTP_BUFFER - head)
        fail("connection %u: an answer longer than %zu bytes", c->index, HTTP_BUFFER);
    return len >= head + body ? head + body : 0;
}

static void on_http_readable(struct generator *g, struct connection *c, uint64_t now)
{
    if (c->in_len == HTTP_BUFFER)
        fail("connection %u: an answer head longer than %zu bytes", c->index, HTTP_BUFFER);
    size_t n = receive(g, c, c->in + c->in_len, HTTP_BUFFER - c->in_len);
    c->in_len += n;
    size_t used = 0, answer;
    while ((answer = parse_answer(g, c, c->in + used, c->in_len - used)) > 0) {
        if (c->completed == c->issued)
            fail("connection %u: an answer to a request it did not send", c->index);
        complete(g, c, now);
        used += answer;
    }
    memmove(c->in, c->in + used, c->in_len - used);
    c->in_len -= used;
}

/* ---- setup ------------------------------------------------------------------------- */
static void raise_descriptor_limit(unsigned long needed)
{
    struct rlimit limit;
    if (getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur >= needed)
        return;
    if (limit.rlim_max != RLIM_INFINITY && limit.rlim_max < needed)
        fail("%lu descriptors needed, the hard limit (ulimit -Hn) is %llu", needed,
             (unsigned long long)limit.rlim_max);
    limit.rlim_cur = needed;
    if (setrlimit(RLIMIT_NOFILE, &limit) != 0)
        fail("setrlimit(RLIMIT_NOFILE, %lu): %s", needed, strerror(errno));
}

static void connect_all(struct generator *g)
{
    const struct options *o = &g->options;
    g->connections = calloc(o->connections, sizeof *g->connections);
    uint64_t *sent_at = calloc(o->connections * o->depth, sizeof *sent_at);
    char *in = o->http_path != NULL ? malloc(o->connections * HTTP_BUFFER) : NULL;
    if (g->connections == NULL || sent_at == NULL || (o->http_path != NULL && in == NULL))
        fail("out of memory");
    for (unsigned i = 0; i < o->connections; i++) {
        struct connection *c = &g->connections[i];
        c->index = i;
        c->sent_at = sent_at + (size_t)i * o->depth;
        c->in = in != NULL ? in + (size_t)i * HTTP_BUFFER : NULL;
        /* Each connection its own place in the cycle (7919 is prime, so
         * the places differ for up to 65 521 connections). */
        c->base = o->http_path != NULL ? 0 : (size_t)i * 7919u % PATTERN_PERIOD;
        /* Blocking connects one after the other: on loopback the kernel
         * completes each handshake at once (the listener's backlog holds
         * them until the server accepts). */
        evq_socket fd;
        int rc = evq_net_connect_loopback((uint16_t)o->port, &fd);
        if (rc != 0)
            fail("connection %u to 127.0.0.1:%lu: %s", i, o->port, evq_strerror(rc));
        c->fd = fd;
        struct epoll_event event = {.events = EPOLLIN, .data.ptr = c};
        if (evq_socket_set_nonblocking(fd, true) != 0 || evq_socket_set_nodelay(fd, true) != 0 ||
            epoll_ctl(g->epoll_fd, EPOLL_CTL_ADD, fd, &event) != 0)
            fail("connection %u: setup: %s", i, strerror(errno));
    }
}

static void close_all(struct generator *g)
{
    for (unsigned i = 0; i < g->options.connections; i++)
        close(g->connections[i].fd);
    if (g->options.http_path != NULL)
        free(g->connections[0].in);
    free(g->connections[0].sent_at);
    free(g->connections);
    free(g->source);
    close(g->epoll_fd);
}

/* ---- the run ----------------------------------------------------------------------- */
static void run(struct generator *g)
{
    const struct options *o = &g->options;
    enum { WARMUP, MEASURE, DRAIN } phase = WARMUP;
    uint64_t now = evq_clock_now_ns();
    uint64_t deadline; /* of the current phase */
    if (o->round_trips != 0) {
        phase = MEASURE;
        deadline = now + (uint64_t)(o->timeout * 1e9);
        start_window(g, now);
    } else if (o->warmup > 0) {
        deadline = now + (uint64_t)(o->warmup * 1e9);
    } else {
        phase = MEASURE;
        deadline = now + (uint64_t)(o->seconds * 1e9);
        start_window(g, now);
    }
    g->issuing = true;
    for (unsigned i = 0; i < o->connections; i++)
        refill(g, &g->connections[i], now);

    struct epoll_event events[MAX_EVENTS];
    for (;;) {
        int n = epoll_wait(g->epoll_fd, events, MAX_EVENTS, evq_remaining_ms(deadline, now));
        if (n < 0 && errno != EINTR)
            fail("epoll_wait: %s", strerror(errno));
        for (int i = 0; i < n; i++) {
            struct connection *c = events[i].data.ptr;
            uint64_t at = evq_clock_now_ns();
            if (events[i].events & EPOLLOUT)
                flush(g, c);
            if (events[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
                if (o->http_path != NULL)
                    on_http_readable(g, c, at);
                else
                    on_echo_readable(g, c, at);
                refill(g, c, at);
            }
        }
        now = evq_clock_now_ns();
        if (o->round_trips != 0) {
            if (g->completed == (uint64_t)o->connections * o->round_trips) {
                end_window(g, now);
                return;
            }
            if (now >= deadline)
                fail("%" PRIu64 " message(s) unanswered after %.1f s (--timeout): the server "
                     "lost them or stalled",
                     g->in_flight, o->timeout);
        } else if (phase == WARMUP && now >= deadline) {
            phase = MEASURE;
            deadline = now + (uint64_t)(o->seconds * 1e9);
            start_window(g, now);
        } else if (phase == MEASURE && now >= deadline) {
            end_window(g, now);
            phase = DRAIN;
            g->issuing = false;
            deadline = now + (uint64_t)(DRAIN_SECONDS * 1e9);
        }
        if (phase == DRAIN && g->in_flight == 0)
            return;
        if (phase == DRAIN && now >= deadline)
            fail("%" PRIu64 " message(s) unanswered %.0f s after the end: the server lost them "
                 "or stalled",
                 g->in_flight, DRAIN_SECONDS);
    }
}

static void report(struct generator *g)
{
    const struct options *o = &g->options;
    double seconds = (double)(g->window_end_ns - g->window_start_ns) / 1e9;
    double rate = seconds > 0 ? (double)g->measured / seconds : 0;
    double p50 = (double)latency_percentile_ns(&g->histogram, 50) / 1e3;
    double p99 = (double)latency_percentile_ns(&g->histogram, 99) / 1e3;
    double max = (double)g->histogram.max_ns / 1e3;
    /* CPU shares in % of one core over the window. */
    double to_pct = seconds > 0 ? 1 / (seconds * 1e7) : 0;
    double client_ns = (double)(g->client_cpu_end - g->client_cpu_start);
    double server_ns = (double)(g->server_cpu_end - g->server_cpu_start);
    bool server_known = g->server_cpu_known && g->measured > 0;
    double other_pct = -1; /* unknown */
    if (g->machine_busy_known && (server_known || o->server_pid == 0)) {
        double busy = (double)(g->machine_busy_end - g->machine_busy_start);
        other_pct = (busy - client_ns - (server_known ? server_ns : 0)) * to_pct;
        if (other_pct < 0)
            other_pct = 0; /* /proc/stat counts in ticks */
    }
    const char *what = o->http_path != NULL ? "request" : "round trip";

    if (o->http_path != NULL)
        fprintf(text_out, "loadgen: HTTP GET %s, 127.0.0.1:%lu, %lu connections, depth %lu",
                o->http_path, o->port, o->connections, o->depth);
    else
        fprintf(text_out,
                "loadgen: echo, 127.0.0.1:%lu, %lu connections, %lu-byte messages, depth %lu",
                o->port, o->connections, o->size, o->depth);
    fprintf(text_out, ": %.2f s measured\n", seconds);
    fprintf(text_out, "  %-13s %" PRIu64 " (%.0f per second), %s\n",
            o->http_path != NULL ? "requests" : "round trips", g->measured, rate,
            o->http_path != NULL ? "every answer 200" : "every echo checked");
    fprintf(text_out, "  latency       p50 %.1f us, p99 %.1f us, max %.1f us\n", p50, p99, max);
    if (server_known)
        fprintf(text_out,
                "  server CPU    %.3f us per %s (%.0f %% of one core), pid %lu and its "
                "children\n",
                server_ns / 1e3 / (double)g->measured, what, server_ns * to_pct, o->server_pid);
    else if (o->server_pid != 0)
        fprintf(text_out, "  server CPU    unknown (no /proc/%lu/task/*/schedstat)\n",
                o->server_pid);
    fprintf(text_out, "  client CPU    %.0f %% of one core\n", client_ns * to_pct);
    if (other_pct >= 0)
        fprintf(text_out, "  other load    %.0f %% of one core (the rest of the machine)\n",
                other_pct);

    if (o->csv) {
        printf("%.0f,%.1f,%.1f,%.1f,", rate, p50, p99, max);
        if (server_known)
            printf("%.3f,%.1f,", server_ns / 1e3 / (double)g->measured, server_ns * to_pct);
        else
            printf(",,");
        printf("%.1f,", client_ns * to_pct);
        if (other_pct >= 0)
            printf("%.1f", other_pct);
        printf(",%" PRIu64 ",%.3f\n", g->measured, seconds);
    }
}

int main(int argc, char **argv)
{
    static struct generator generator; /* 122 KiB: not on the stack */
    struct generator *g = &generator;
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
            return usage(stdout, argv[0], 0);
    if (!parse_options(argc, argv, &g->options))
        return usage(stderr, argv[0], 2);
    text_out = g->options.csv ? stderr : stdout;

    raise_descriptor_limit(g->options.connections + 16);
    g->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    if (g->epoll_fd < 0)
        fail("epoll_create1: %s", strerror(errno));
    make_source(g);
    connect_all(g);
    run(g);
    report(g);
    close_all(g);
    if (g->non_200 > 0) {
        fprintf(stderr, "loadgen: %" PRIu64 " answer(s) had a status other than 200\n", g->non_200);
        return 1;
    }
    return 0;
}

/* requests.c - requests per second of a small keep-alive HTTP server written
 * three ways on the same queue, measured in the same run.
 *
 *     ch06_bench_requests_<backend> [--connections N] [--seconds S] [--runs R]
 *
 * The client (the main thread, plain blocking sockets) keeps N keep-alive
 * connections busy: each round it sends one request on every connection,
 * then reads every answer and checks it (byte for byte, or its body). The
 * server runs on its own thread, on this chapter's queue, written:
 *
 * - the chapter-2 way (the baseline): each connection owns a fixed 1 KiB
 *   array; each event makes one evq_tcp_read into it, the whole array is
 *   searched for the end of the request from its first byte, and the answer
 *   is written once - whatever the stream did not take would be dropped
 *   (counted, and reported). Bytes after the first request are dropped too.
 *   Chapter 2's library had no listener, so this is its discipline (caller
 *   arrays, one read, one write) on chapter 3's streams.
 * - the chapter-3 way: peek at the stream's own buffer, search only what is
 *   new (a `pending` record remembers how far the last search got), answer
 *   into the write queue, consume the request, and go on while whole
 *   requests are buffered; if the queue is full, wait for WRITABLE first.
 * - the chapter's demo server (demo/http_server.c) as it is: the resumable
 *   HTTP parser on the stream's buffer, routes, headers, keep-alive, asked
 *   for /bytes/13 (a 13-byte body, as the others' "hello, world\n"; its
 *   head is longer: Content-Type and Connection too). Its body is checked
 *   against the pattern.
 *
 * Reported: requests per second (median of R rounds of S seconds each, the
 * two ways alternating), the ratio to the chapter-2 way, and per request
 * the server's recv and send calls (evq_tcp_stats) and waits.
 */
#include "bench.h"
#include "evq.h"
#include "http_server.h"

#include "evq_clock.h"
#include "evq_net.h"
#include "evq_thread.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LISTENER_TOKEN UINT64_MAX
#define MAX_CONNECTIONS 1000

static const char response[] = "HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\nhello, world\n";
#define RESPONSE_LEN (sizeof response - 1)

enum style { CHAPTER_2, CHAPTER_3, DEMO_SERVER, STYLES };
static const char *const style_names[] = {
    "chapter-2 way: fixed array, one read, re-parse, one write (baseline)",
    "chapter-3 way: peek, pending record, write queue, consume",
    "the demo server (demo/http_server.c), /bytes/13",
};
#define DEMO_BODY_LEN 13


/* What the chapter-3 server remembers about a connection between turns of
 * the loop: how far it has searched the buffered bytes for the end of a
 * request, and how much of an answer the write queue has not taken yet. */
struct pending {
    size_t scanned; /* bytes of the buffered request already searched */
    size_t unsent;  /* bytes at the end of `response` still to write */
};


struct connection {
    evq_tcp *stream;
    char in[1024]; /* chapter 2: the caller's array */
    size_t in_len;
    struct pending pending; /* chapter 3 */
};

struct server {
    enum style style;
    evq_poll *poll;
    evq_tcp *listener;
    struct connection *connections;
    size_t count;
    atomic_bool stop;
    int rc;
    uint64_t requests, dropped, waits, receive_calls, send_calls;
};

/* The end of an HTTP request's head in data[0..len), searching from `from`:
 * the offset just past "\r\n\r\n", or 0 when it is not there yet. */
static size_t head_end(const char *data, size_t len, size_t from)
{
    for (size_t i = from; i + 4 <= len; i++) {
        if (memcmp(data + i, "\r\n\r\n", 4) == 0)
            return i + 4;
    }
    return 0;
}

static int chapter2_on_readable(struct server *s, struct connection *c, evq_token token)
{
    size_t n = 0;
    int rc = evq_tcp_read(c->stream, c->in + c->in_len, sizeof c->in - c->in_len, &n);
    if (rc != 0 && rc != EVQ_EWOULDBLOCK)
        return rc;
    c->in_len += n;
    if (head_end(c->in, c->in_len, 0) != 0) { /* from the start, every time */
        size_t sent = 0;
        rc = evq_tcp_write(c->stream, response, RESPONSE_LEN, &sent);
        if (rc != 0 && rc != EVQ_EWOULDBLOCK)
            return rc;
        s->dropped += RESPONSE_LEN - sent;
        s->requests++;
        c->in_len = 0; /* and whatever came after the request with it */
    } else if (c->in_len == sizeof c->in) {
        return EVQ_EMSGSIZE;
    }
    return evq_reregister(s->poll, c->stream, token, EVQ_READABLE);
}


static int chapter3_on_event(struct server *s, struct connection *c, evq_token token)
{
    struct pending *p = &c->pending;
    for (;;) {
        if (p->unsent > 0) { /* an answer the queue did not take at once */
            size_t sent = 0;
            int rc = evq_tcp_write(c->stream, response + RESPONSE_LEN - p->unsent, p->unsent,
                                   &sent);
            if (rc != 0 && rc != EVQ_EWOULDBLOCK)
                return rc;
            p->unsent -= sent;
            if (p->unsent > 0) /* backpressure: read no more until it drains */
                return evq_reregister(s->poll, c->stream, token, EVQ_WRITABLE);
        }
        const void *data;
        size_t len;
        int rc = evq_tcp_peek(c->stream, &data, &len);
        if (rc == EVQ_EWOULDBLOCK)
            break;
        if (rc != 0)
            return rc;
        /* Search only what is new; back up 3 bytes in case the "\r\n\r\n"
         * straddles the old end. */
        size_t from = p->scanned > 3 ? p->scanned - 3 : 0;
        size_t end = head_end(data, len, from);
        if (end == 0) {
            p->scanned = len;
            if (len > 8192)
                return EVQ_EMSGSIZE;
            break; /* the rest comes on a later turn */
        }
        if ((rc = evq_tcp_consume(c->stream, end)) != 0)
            return rc;
        p->scanned = 0;
        p->unsent = RESPONSE_LEN;
        s->requests++;
        /* Nothing left over: answer and wait for the next event instead of
         * peeking again - a peek at an empty buffer costs a recv that can
         * only say EAGAIN (the re-armed stream reports new bytes anyway). */
        if (end == len) {
            size_t sent = 0;
            rc = evq_tcp_write(c->stream, response, RESPONSE_LEN, &sent);
            if (rc != 0 && rc != EVQ_EWOULDBLOCK)
                return rc;
            p->unsent -= sent;
            if (p->unsent > 0)
                return evq_reregister(s->poll, c->stream, token, EVQ_WRITABLE);
            break;
        }
    }
    return evq_reregister(s->poll, c->stream, token, EVQ_READABLE);
}


static int on_listener(struct server *s)
{
    for (;;) {
        evq_tcp *stream;
        int rc = evq_tcp_accept(s->listener, &stream);
        if (rc == EVQ_EWOULDBLOCK)
            break;
        if (rc != 0)
            return rc;
        if (s->count == MAX_CONNECTIONS) {
            evq_tcp_close(stream);
            return EVQ_EFULL;
        }
        struct connection *c = &s->connections[s->count];
        memset(c, 0, sizeof *c);
        c->stream = stream;
        if ((rc = evq_register(s->poll, stream, s->count, EVQ_READABLE)) != 0)
            return rc;
        s->count++;
    }
    return evq_reregister(s->poll, s->listener, LISTENER_TOKEN, EVQ_READABLE);
}

static void server_run(void *arg)
{
    struct server *s = arg;
    int rc = 0;
    while (rc == 0 && !atomic_load(&s->stop)) {
        evq_event events[64];
        size_t n = 0;
        rc = evq_poll_wait(s->poll, events, 64, 1000, &n);
        s->waits++;
        for (size_t i = 0; rc == 0 && i < n; i++) {
            evq_token token = events[i].token;
            if (token == LISTENER_TOKEN)
                rc = on_listener(s);
            else if (s->style == CHAPTER_2)
                rc = chapter2_on_readable(s, &s->connections[token], token);
            else
                rc = chapter3_on_event(s, &s->connections[token], token);
        }
    }
    for (size_t i = 0; i < s->count; i++) {
        evq_tcp_stats stats;
        if (evq_tcp_get_stats(s->connections[i].stream, &stats) == 0) {
            s->receive_calls += stats.receive_calls;
            s->send_calls += stats.send_calls;
        }
        evq_tcp_close(s->connections[i].stream);
    }
    s->rc = rc;
}

struct result {
    double per_second;
    double receive_calls, send_calls, waits; /* per request */
    uint64_t dropped;
};

/* Read one answer: its head, then Content-Length bytes of body. With one
 * request in flight per connection nothing follows it. Checks "200". */
static int read_answer(evq_socket socket, char *buf, size_t capacity, size_t *answer_len)
{
    size_t have = 0, end = 0, total = 0;
    while (total == 0 || have < total) {
        size_t got = 0;
        if (have == capacity)
            return EVQ_EMSGSIZE;
        int rc = evq_net_recv(socket, buf + have, capacity - have, &got);
        if (rc == 0 && got == 0)
            rc = EVQ_EOF;
        if (rc != 0)
            return rc;
        have += got;
        if (total == 0 && (end = head_end(buf, have, 0)) != 0) {
            const char *field = NULL;
            for (size_t i = 0; i + 16 <= end && !field; i++) {
                if (memcmp(buf + i, "\r\nContent-Length", 16) == 0)
                    field = buf + i + 16;
            }
            if (!field || *field != ':')
                return EVQ_EIO;
            total = end + strtoul(field + 1, NULL, 10);
        }
    }
    if (have != total || memcmp(buf, "HTTP/1.1 200 ", 13) != 0)
        return EVQ_EIO;
    *answer_len = have;
    return 0;
}

/* Keep every connection busy for `seconds`; *requests is how many were
 * answered. Every answer must end with `expected`; exact: and be nothing
 * else (our own servers' answers are compared byte for byte). */
static int drive(evq_socket *clients, size_t count, double seconds, const char *path,
                 const void *expected, size_t expected_len, bool exact, uint64_t *requests)
{
    static char buf[64 * 1024];
    char line[128];
    int len = snprintf(line, sizeof line, "GET %s HTTP/1.1\r\nHost: bench\r\n\r\n", path);
    uint64_t t0 = evq_clock_now_ns();
    int rc = 0;
    while (rc == 0 && bench_seconds_since(t0) < seconds) {
        for (size_t i = 0; rc == 0 && i < count; i++)
            rc = evq_net_send_all(clients[i], line, (size_t)len);
        for (size_t i = 0; rc == 0 && i < count; i++) {
            size_t got = 0;
            rc = read_answer(clients[i], buf, sizeof buf, &got);
            if (rc == 0 && (got < expected_len || (exact && got != expected_len) ||
                            memcmp(buf + got - expected_len, expected, expected_len) != 0))
                rc = EVQ_EIO;
        }
        if (rc == 0)
            *requests += count;
    }
    return rc;
}

static int run(enum style style, size_t count, double seconds, struct result *out)
{
    static struct connection connections[MAX_CONNECTIONS];
    static evq_socket clients[MAX_CONNECTIONS];
    struct server s = {.style = style, .connections = connections};
    uint16_t port = 0;
    int rc = evq_poll_open(&s.poll);
    if (rc != 0)
        return rc;
    if ((rc = evq_tcp_listen(s.poll, "127.0.0.1", 0, 1024, &s.listener)) != 0 ||
        (rc = evq_tcp_local_port(s.listener, &port)) != 0 ||
        (rc = evq_register(s.poll, s.listener, LISTENER_TOKEN, EVQ_READABLE)) != 0)
        goto out_poll;
    size_t opened = 0;
    for (; rc == 0 && opened < count; opened++) {
        if ((rc = evq_net_connect_loopback(port, &clients[opened])) != 0)
            break;
        evq_socket_set_nodelay(clients[opened], true);
    }
    evq_thread thread;
    if (rc != 0 || (rc = evq_thread_start(&thread, server_run, &s)) != 0)
        goto out_clients;

    uint64_t requests = 0;
    rc = drive(clients, count, seconds, "/hello", response, RESPONSE_LEN, true, &requests);
    out->per_second = (double)requests / seconds;
    atomic_store(&s.stop, true);
    evq_poll_wake(s.poll);
    evq_thread_join(&thread);
    if (rc == 0)
        rc = s.rc;
    if (rc == 0 && s.requests != requests)
        rc = EVQ_EIO; /* the server counted what the client did not see */
    if (requests > 0) {
        out->receive_calls = (double)s.receive_calls / (double)requests;
        out->send_calls = (double)s.send_calls / (double)requests;
        out->waits = (double)s.waits / (double)requests;
    }
    out->dropped = s.dropped;
out_clients:
    for (size_t i = 0; i < opened; i++)
        evq_socket_close(clients[i]);
out_poll:
    evq_tcp_close(s.listener);
    evq_poll_close(s.poll);
    return rc;
}

/* The demo server, started as the tests start it (its own thread, port 0). */
static int run_demo(size_t count, double seconds, struct result *out)
{
    static evq_socket clients[MAX_CONNECTIONS];
    unsigned char body[DEMO_BODY_LEN];
    http_body_pattern(0, body, sizeof body);
    http_server_config config;
    http_server_config_init(&config);
    http_server *server = NULL;
    int rc = http_server_start(&config, &server);
    if (rc != 0)
        return rc;
    size_t opened = 0;
    for (; rc == 0 && opened < count; opened++) {
        if ((rc = evq_net_connect_loopback(http_server_port(server), &clients[opened])) != 0)
            break;
        evq_socket_set_nodelay(clients[opened], true);
    }
    uint64_t requests = 0;
    if (rc == 0)
        rc = drive(clients, count, seconds, "/bytes/13", body, sizeof body, false, &requests);
    out->per_second = (double)requests / seconds;
    /* Stop first: the server adds up each connection's calls as it closes
     * it, and the clients' closing would add events to count. */
    http_server_stats stats;
    int stopped = http_server_stop(server, &stats);
    for (size_t i = 0; i < opened; i++)
        evq_socket_close(clients[i]);
    if (rc == 0)
        rc = stopped;
    if (rc == 0 && stats.requests != requests)
        rc = EVQ_EIO; /* the server counted what the client did not see */
    if (requests > 0) {
        out->receive_calls = (double)stats.receive_calls / (double)requests;
        out->send_calls = (double)stats.send_calls / (double)requests;
        out->waits = (double)stats.waits / (double)requests;
    }
    out->dropped = 0; /* a write queue drops nothing */
    return rc;
}

static int usage(const char *program)
{
    fprintf(stderr,
            "usage: %s [--connections N] [--seconds S] [--runs R]\n"
            "  N keep-alive connections (1..%d, default 50), S seconds per round\n"
            "  (1..60, default 2), R rounds of each server, alternating (1..20, default 3)\n",
            program, MAX_CONNECTIONS);
    return 2;
}

int main(int argc, char **argv)
{
    static const char *const known[] = {"--connections", "--seconds", "--runs", NULL};
    unsigned long count = 50, seconds = 2, runs = 3;
    if (!bench_arguments_ok(argc, argv, known) ||
        !bench_option(argc, argv, "--connections", 1, MAX_CONNECTIONS, &count) ||
        !bench_option(argc, argv, "--seconds", 1, 60, &seconds) ||
        !bench_option(argc, argv, "--runs", 1, 20, &runs))
        return usage(argv[0]);
    if (bench_init() != 0)
        return 1;
    static double rates[STYLES][20];
    struct result last[STYLES] = {{0}};
    for (unsigned long r = 0; r < runs; r++) {
        for (int style = CHAPTER_2; style < STYLES; style++) {
            struct result res = {0};
            int rc = style == DEMO_SERVER
                         ? run_demo((size_t)count, (double)seconds, &res)
                         : run((enum style)style, (size_t)count, (double)seconds, &res);
            if (rc != 0) {
                fprintf(stderr, "%s: %s\n", style_names[style], evq_strerror(rc));
                return 1;
            }
            rates[style][r] = res.per_second;
            last[style] = res;
        }
    }
    printf("%lu keep-alive connections, one request in flight on each; %lu rounds of %lu s, "
           "backend %s\n\n",
           count, runs, seconds, evq_backend());
    printf("| server | requests/s (median) | vs chapter-2 way | recv calls / req | send calls / "
           "req | waits / req | answer bytes dropped |\n");
    printf("|---|---:|---:|---:|---:|---:|---:|\n");
    double base = bench_median(rates[CHAPTER_2], (size_t)runs);
    for (int style = CHAPTER_2; style < STYLES; style++) {
        double rate = style == CHAPTER_2 ? base : bench_median(rates[style], (size_t)runs);
        printf("| %s | %.0f | %.2fx | %.2f | %.2f | %.3f | %llu |\n", style_names[style], rate,
               rate / base, last[style].receive_calls, last[style].send_calls, last[style].waits,
               (unsigned long long)last[style].dropped);
    }
    return 0;
}

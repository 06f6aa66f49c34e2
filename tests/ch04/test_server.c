/* test_server.c - the chapter's HTTP server (demo/http_server.c) against
 * blocking clients: requests cut into pieces and kept across loop turns,
 * a thousand half-sent requests completed in random order, refusals with a
 * reason, a large answer to a slow reader (the write queue stays under its
 * limit), keep-alive and pipelining, clients that leave early, a clean
 * stop, and (chapter 4) a deadline for every state, on a clock the test
 * moves. The clients here are plain blocking sockets that read the responses
 * on their own, so they do not trust the server's code to check the server.
 */
#if !defined(_WIN32) && !defined(_POSIX_C_SOURCE) && !defined(__APPLE__)
#define _POSIX_C_SOURCE 200809L
#endif
#include "http_server.h"

#include "evq_clock.h"
#include "evq_net.h"
#include "evq_test.h"
#include "evq_thread.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef _WIN32
#include <sys/resource.h>
#endif

enum { WAIT_LIMIT_MS = 20000 };

/* ---- the server and its counters ---------------------------------------------------- */
static http_server *start_server(const http_server_config *config)
{
    http_server_config defaults;
    http_server_config_init(&defaults);
    http_server *server = NULL;
    int rc = http_server_start(config ? config : &defaults, &server);
    if (rc != 0)
        evq_test_fail(__FILE__, __LINE__, "http_server_start: %s", evq_error_name(rc));
    return server;
}

static uint64_t stat_at(const http_server_stats *stats, size_t offset)
{
    uint64_t value;
    memcpy(&value, (const char *)stats + offset, sizeof value);
    return value;
}

/* Wait (bounded) until a counter equals `want`; returns the last value. The
 * server publishes its counters at the end of every loop turn. */
static uint64_t wait_stat(http_server *server, size_t offset, uint64_t want)
{
    uint64_t give_up = evq_clock_now_ns() + evq_ms_to_ns(WAIT_LIMIT_MS), value = 0;
    for (;;) {
        http_server_stats stats;
        http_server_get_stats(server, &stats);
        value = stat_at(&stats, offset);
        if (value == want || evq_clock_now_ns() > give_up)
            return value;
        evq_sleep_ms(1);
    }
}
#define WAIT_STAT(server, field, want)                                                             \
    wait_stat(server, offsetof(http_server_stats, field), (uint64_t)(want))

/* Wait (bounded) until the server's write queue has been full at least
 * once: a client that has not read yet makes that certain, without relying
 * on which side is faster. */
static bool wait_queue_full(http_server *server)
{
    uint64_t give_up = evq_clock_now_ns() + evq_ms_to_ns(WAIT_LIMIT_MS);
    http_server_stats stats;
    do {
        http_server_get_stats(server, &stats);
        if (stats.short_writes > 0)
            return true;
        evq_sleep_ms(1);
    } while (evq_clock_now_ns() < give_up);
    return false;
}

/* Stop the server; its last counters go to *stats. */
static void stop_server(http_server *server, http_server_stats *stats)
{
    http_server_stats ignored;
    CHECK_OK(http_server_stop(server, stats ? stats : &ignored));
}

/* ---- a blocking client that reads responses by itself -------------------------------- */
typedef struct client {
    evq_socket socket;
    size_t length; /* bytes received and not yet used */
    char buffer[8192];
} client;

typedef struct response {
    int status;
    char head[1024];
    uint64_t content_length;
    bool says_close;
    uint64_t body_length;
    char text[1024];          /* the body's first bytes, NUL-terminated */
    uint32_t checksum;        /* FNV-1a of the whole body */
    uint64_t pattern_differs; /* first offset where the body is not the /bytes pattern */
} response;

static uint32_t fnv1a(uint32_t hash, const unsigned char *bytes, size_t length)
{
    for (size_t i = 0; i < length; i++)
        hash = (hash ^ bytes[i]) * 16777619u;
    return hash;
}
#define FNV_START 2166136261u

/* The checksum /bytes/N must have. */
static uint32_t pattern_checksum(uint64_t length)
{
    unsigned char piece[4096];
    uint32_t hash = FNV_START;
    for (uint64_t offset = 0; offset < length; offset += sizeof piece) {
        size_t n = length - offset < sizeof piece ? (size_t)(length - offset) : sizeof piece;
        http_body_pattern(offset, piece, n);
        hash = fnv1a(hash, piece, n);
    }
    return hash;
}

static client *client_open(uint16_t port)
{
    client *c = calloc(1, sizeof *c);
    if (!c) {
        evq_test_fail(__FILE__, __LINE__, "out of memory");
        return NULL;
    }
    int rc = evq_net_connect_loopback(port, &c->socket);
    if (rc == 0)
        rc = evq_socket_set_recv_timeout(c->socket, WAIT_LIMIT_MS);
    if (rc != 0) {
        evq_test_fail(__FILE__, __LINE__, "connect: %s", evq_error_name(rc));
        free(c);
        return NULL;
    }
    return c;
}

static void client_close(client *c)
{
    if (c) {
        evq_socket_close(c->socket);
        free(c);
    }
}

/* A small receive window: less of an answer hides in the kernel's buffers,
 * so a slow reader makes the server's write queue fill sooner. */
static void client_small_window(client *c)
{
    int size = 64 * 1024;
    setsockopt(c->socket, SOL_SOCKET, SO_RCVBUF, (const char *)&size, sizeof size);
}

static int client_send(client *c, const char *text)
{
    return evq_net_send_all(c->socket, text, strlen(text));
}

/* Receive at most `piece` more bytes into the buffer; EVQ_EOF at EOF. */
static int client_fill(client *c, size_t piece)
{
    size_t room = sizeof c->buffer - c->length, got = 0;
    if (room == 0)
        return EVQ_EMSGSIZE;
    int rc = evq_net_recv(c->socket, c->buffer + c->length, piece < room ? piece : room, &got);
    if (rc != 0)
        return rc;
    if (got == 0)
        return EVQ_EOF;
    c->length += got;
    return 0;
}

static void client_drop(client *c, size_t n)
{
    memmove(c->buffer, c->buffer + n, c->length - n);
    c->length -= n;
}

static const char *find_header(const char *head, const char *name)
{
    const char *at = strstr(head, name);
    return at ? at + strlen(name) : NULL;
}

/* The length of the head at the start of buffer[0, length), 0 if incomplete. */
static size_t head_end(const char *buffer, size_t length)
{
    for (size_t i = 3; i < length; i++) {
        if (memcmp(buffer + i - 3, "\r\n\r\n", 4) == 0)
            return i + 1;
    }
    return 0;
}

/* Read one response. head_only: the request was HEAD (no body follows).
 * piece and pause_ms make a slow reader: at most `piece` bytes per recv,
 * and a pause after each. */
static int read_response(client *c, response *r, bool head_only, size_t piece, uint32_t pause_ms)
{
    memset(r, 0, sizeof *r);
    r->checksum = FNV_START;
    r->pattern_differs = UINT64_MAX;
    size_t head_length;
    while ((head_length = head_end(c->buffer, c->length)) == 0) {
        int rc = client_fill(c, sizeof c->buffer);
        if (rc != 0)
            return rc;
    }
    if (head_length >= sizeof r->head)
        return EVQ_EMSGSIZE;
    memcpy(r->head, c->buffer, head_length);
    r->head[head_length] = '\0';
    client_drop(c, head_length);
    if (sscanf(r->head, "HTTP/1.1 %d ", &r->status) != 1)
        return EVQ_EIO;
    const char *length = find_header(r->head, "\r\nContent-Length: ");
    if (!length)
        return EVQ_EIO;
    r->content_length = strtoull(length, NULL, 10);
    r->says_close = strstr(r->head, "\r\nConnection: close\r\n") != NULL;
    uint64_t left = head_only ? 0 : r->content_length;
    unsigned char expected[sizeof c->buffer];
    while (left > 0) {
        if (c->length == 0) {
            int rc = client_fill(c, piece);
            if (rc != 0)
                return rc;
            if (pause_ms)
                evq_sleep_ms(pause_ms);
        }
        size_t n = c->length < left ? c->length : (size_t)left;
        if (r->body_length < sizeof r->text - 1) {
            size_t keep = sizeof r->text - 1 - (size_t)r->body_length;
            memcpy(r->text + r->body_length, c->buffer, n < keep ? n : keep);
        }
        http_body_pattern(r->body_length, expected, n);
        if (r->pattern_differs == UINT64_MAX && memcmp(expected, c->buffer, n) != 0) {
            size_t i = 0;
            while (expected[i] == (unsigned char)c->buffer[i])
                i++;
            r->pattern_differs = r->body_length + i;
        }
        r->checksum = fnv1a(r->checksum, (const unsigned char *)c->buffer, n);
        r->body_length += n;
        left -= n;
        client_drop(c, n);
    }
    return 0;
}

/* The server closes: EOF with nothing before it (a reset is a failure: the
 * server must close gracefully). */
static int expect_closed(client *c)
{
    if (c->length > 0)
        return EVQ_EMSGSIZE;
    int rc = client_fill(c, sizeof c->buffer);
    return rc == EVQ_EOF ? 0 : rc == 0 ? EVQ_EMSGSIZE : rc;
}

/* ---- descriptors ------------------------------------------------------------------------ */
/* Room for `wanted` connections in this process (a client socket and a
 * server socket each, plus some). POSIX: raise RLIMIT_NOFILE's soft limit
 * as far as the hard limit allows; returns how many connections fit. */
static unsigned allow_connections(unsigned wanted)
{
#ifdef _WIN32
    return wanted; /* sockets are not counted against a small per-process limit */
#else
    struct rlimit limit;
    rlim_t need = (rlim_t)wanted * 2 + 64;
    if (getrlimit(RLIMIT_NOFILE, &limit) != 0)
        return 0;
    if (limit.rlim_cur != RLIM_INFINITY && limit.rlim_cur < need) {
        limit.rlim_cur =
            limit.rlim_max != RLIM_INFINITY && limit.rlim_max < need ? limit.rlim_max : need;
        if (setrlimit(RLIMIT_NOFILE, &limit) != 0)
            return 0;
    }
    if (limit.rlim_cur != RLIM_INFINITY && limit.rlim_cur < need) {
        unsigned fit = limit.rlim_cur > 64 ? (unsigned)((limit.rlim_cur - 64) / 2) : 0;
        evq_test_note("RLIMIT_NOFILE's hard limit is %llu: %u connections instead of %u",
                      (unsigned long long)limit.rlim_max, fit, wanted);
        return fit;
    }
    return wanted;
#endif
}

/* ---- a seeded PRNG (splitmix64), so that a failing order can be replayed ---------------- */
static uint64_t next_random(uint64_t *state)
{
    uint64_t z = (*state += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

static uint64_t test_seed(void)
{
    const char *text = getenv("EVQ_TEST_SEED");
    uint64_t seed = text && *text ? strtoull(text, NULL, 10) : evq_clock_now_ns();
    evq_test_note("seed %llu (EVQ_TEST_SEED=%llu repeats this order)", (unsigned long long)seed,
                  (unsigned long long)seed);
    return seed;
}

/* ---- the cases ---------------------------------------------------------------------------- */
EVQ_TEST(routes_answer)
{
    http_server *server = start_server(NULL);
    REQUIRE(server != NULL);
    client *c = client_open(http_server_port(server));
    REQUIRE(c != NULL);
    response r;
    CHECK_OK(client_send(c, "GET / HTTP/1.1\r\nHost: t\r\n\r\n"));
    CHECK_OK(read_response(c, &r, false, sizeof c->buffer, 0));
    CHECK_INT(r.status, ==, 200);
    CHECK(strstr(r.text, "Hello") != NULL);
    CHECK(strstr(r.text, evq_backend()) != NULL);
    CHECK(!r.says_close);

    CHECK_OK(client_send(c, "GET /bytes/1000 HTTP/1.1\r\n\r\n"));
    CHECK_OK(read_response(c, &r, false, sizeof c->buffer, 0));
    CHECK_INT(r.status, ==, 200);
    CHECK_UINT(r.body_length, ==, 1000);
    CHECK_UINT(r.pattern_differs, ==, UINT64_MAX);

    /* HEAD: the headers GET would have, and no body - the next answer
     * starts right after them. */
    CHECK_OK(client_send(c, "HEAD /bytes/5000 HTTP/1.1\r\n\r\n"));
    CHECK_OK(read_response(c, &r, true, sizeof c->buffer, 0));
    CHECK_INT(r.status, ==, 200);
    CHECK_UINT(r.content_length, ==, 5000);

    CHECK_OK(client_send(c, "GET /bytes/0 HTTP/1.1\r\n\r\n"));
    CHECK_OK(read_response(c, &r, false, sizeof c->buffer, 0));
    CHECK_INT(r.status, ==, 200);
    CHECK_UINT(r.content_length, ==, 0);

    /* A valid request for what is not there keeps the connection. */
    CHECK_OK(client_send(c, "GET /nothing/here HTTP/1.1\r\n\r\n"));
    CHECK_OK(read_response(c, &r, false, sizeof c->buffer, 0));
    CHECK_INT(r.status, ==, 404);
    CHECK(strstr(r.text, "no such path") != NULL);
    CHECK(!r.says_close);

    CHECK_OK(client_send(c, "GET /bytes/67108865 HTTP/1.1\r\nConnection: close\r\n\r\n"));
    CHECK_OK(read_response(c, &r, false, sizeof c->buffer, 0));
    CHECK_INT(r.status, ==, 400);
    CHECK(strstr(r.text, "above") != NULL);
    CHECK(r.says_close);
    CHECK_OK(expect_closed(c));
    client_close(c);

    http_server_stats stats;
    stop_server(server, &stats);
    CHECK_UINT(stats.requests, ==, 6);
    CHECK_UINT(stats.answered_ok, ==, 4);
    CHECK_UINT(stats.refused, ==, 2);
    CHECK_UINT(stats.open_now, ==, 0);
}

/* A request sent one byte at a time, each byte in a loop turn of its own
 * (the test waits until the server has searched it). Catches a server that
 * keeps the parse state in the turn instead of the record (it never sees
 * the head complete), one that parses from byte 0 every turn (it searches
 * the head's length squared over two bytes), and a queue that reports a
 * stream readable again while its buffered bytes are unchanged (the server
 * would spin, and count far more resumed parses). */
EVQ_TEST(one_byte_at_a_time_with_a_turn_between_bytes)
{
    http_server *server = start_server(NULL);
    REQUIRE(server != NULL);
    client *c = client_open(http_server_port(server));
    REQUIRE(c != NULL);
    static const char request[] = "GET /bytes/300 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                  "Connection: close\r\n\r\n";
    size_t length = strlen(request);
    for (size_t i = 0; i < length; i++) {
        REQUIRE_OK(evq_net_send_all(c->socket, request + i, 1));
        if (!CHECK_UINT(WAIT_STAT(server, bytes_searched, i + 1), ==, i + 1))
            break;
    }
    response r;
    CHECK_OK(read_response(c, &r, false, sizeof c->buffer, 0));
    CHECK_INT(r.status, ==, 200);
    CHECK_UINT(r.body_length, ==, 300);
    CHECK_UINT(r.pattern_differs, ==, UINT64_MAX);
    CHECK_OK(expect_closed(c));
    client_close(c);
    http_server_stats stats;
    stop_server(server, &stats);
    CHECK_UINT(stats.bytes_searched, ==, length);
    CHECK_UINT(stats.head_bytes, ==, length);
    CHECK_UINT(stats.resumed_parses, ==, length - 1);
    CHECK_UINT(stats.parses, ==, length); /* one per byte: none for bytes already seen */
}

/* Half a request, a pause, then the rest one byte at a time: every parse
 * is for bytes the one before had not seen, and the half head waits in the
 * stream's read buffer without costing a parse. Catches a server that
 * parses in place on a level-style queue (a stream re-armed with unconsumed
 * bytes reported again at once): it parses the same half head over and
 * over while the client pauses - thousands of times where one is right. */
EVQ_TEST(a_waiting_half_request_is_not_parsed_again)
{
    http_server *server = start_server(NULL);
    REQUIRE(server != NULL);
    client *c = client_open(http_server_port(server));
    REQUIRE(c != NULL);
    static const char request[] = "GET /bytes/10 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    size_t length = strlen(request), half = 20;
    REQUIRE_OK(evq_net_send_all(c->socket, request, half));
    CHECK_UINT(WAIT_STAT(server, bytes_searched, half), ==, half);
    CHECK_UINT(WAIT_STAT(server, heads_waiting, 1), ==, 1);
    evq_sleep_ms(100); /* time for a spinning server to show it */
    http_server_stats stats;
    http_server_get_stats(server, &stats);
    CHECK_UINT(stats.parses, <=, 2); /* one send, one parse; two if it arrived split */
    for (size_t i = half; i < length; i++) {
        REQUIRE_OK(evq_net_send_all(c->socket, request + i, 1));
        if (!CHECK_UINT(WAIT_STAT(server, bytes_searched, i + 1), ==, i + 1))
            break;
        evq_sleep_ms(1);
    }
    response r;
    CHECK_OK(read_response(c, &r, false, sizeof c->buffer, 0));
    CHECK_INT(r.status, ==, 200);
    CHECK_UINT(r.body_length, ==, 10);
    client_close(c);
    stop_server(server, &stats);
    evq_test_note("%llu parses for a head of %zu bytes, %zu of them sent one by one",
                  (unsigned long long)stats.parses, length, length - half);
    CHECK_UINT(stats.parses, <=, length - half + 2);
    CHECK_UINT(stats.requests, ==, 1);
}

/* A thousand connections hold half a request each, at the same time; then
 * they are completed in a random order. Each asks for a different length,
 * so an answer sent to the wrong connection is noticed. */
EVQ_TEST(a_thousand_half_requests_completed_in_random_order)
{
    unsigned count = allow_connections(1000);
    REQUIRE_UINT(count, >=, 100);
    http_server *server = start_server(NULL);
    REQUIRE(server != NULL);
    uint16_t port = http_server_port(server);
    client **clients = calloc(count, sizeof *clients);
    unsigned *order = calloc(count, sizeof *order);
    char(*requests)[96] = calloc(count, sizeof *requests);
    REQUIRE(clients && order && requests);
    unsigned opened = 0;
    for (; opened < count; opened++) {
        unsigned i = opened;
        snprintf(requests[i], sizeof requests[i],
                 "GET /bytes/%u HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Client: %u\r\n\r\n", i * 7, i);
        if (!(clients[i] = client_open(port)))
            break;
        size_t half = strlen(requests[i]) / 2;
        if (!CHECK_OK(evq_net_send_all(clients[i]->socket, requests[i], half)))
            break;
        order[i] = i;
    }
    if (CHECK_UINT(opened, ==, count) &&
        CHECK_UINT(WAIT_STAT(server, heads_waiting, count), ==, count)) {
        uint64_t state = test_seed();
        for (unsigned i = count - 1; i > 0; i--) { /* Fisher-Yates */
            unsigned j = (unsigned)(next_random(&state) % (i + 1));
            unsigned t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
        for (unsigned k = 0; k < count; k++) {
            unsigned i = order[k];
            size_t half = strlen(requests[i]) / 2;
            if (!CHECK_OK(client_send(clients[i], requests[i] + half)))
                break;
        }
        unsigned right = 0;
        for (unsigned k = 0; k < count && evq_test_failures() == 0; k++) {
            unsigned i = order[k];
            response r;
            if (CHECK_OK(read_response(clients[i], &r, false, sizeof clients[i]->buffer, 0)) &&
                CHECK_INT(r.status, ==, 200) && CHECK_UINT(r.body_length, ==, i * 7) &&
                CHECK_UINT(r.pattern_differs, ==, UINT64_MAX))
                right++;
            else
                evq_test_note("client %u (completed %u-th)", i, k);
        }
        CHECK_UINT(right, ==, count);
    }
    for (unsigned i = 0; i < opened; i++)
        client_close(clients[i]);
    free(clients);
    free(order);
    free(requests);
    http_server_stats stats;
    stop_server(server, &stats);
    CHECK_UINT(stats.accepted, ==, opened);
    CHECK_UINT(stats.open_peak, ==, opened);
    CHECK_UINT(stats.requests, ==, opened);
    CHECK_UINT(stats.answered_ok, ==, opened);
    CHECK_UINT(stats.heads_waiting, ==, 0);
}

/* A head over the limit: 431 and a reason, then a clean close (EOF, not a
 * reset) although the client sent far more than the server parsed: the
 * server reads and drops the rest before it closes. Catches a server that
 * waits for the end of the head before checking its size (no answer until
 * the timeout) and one that buffers the whole head (bytes_searched). */
EVQ_TEST(an_oversized_head_gets_431_and_a_clean_close)
{
    http_server *server = start_server(NULL);
    REQUIRE(server != NULL);
    client *c = client_open(http_server_port(server));
    REQUIRE(c != NULL);
    size_t length = 64 * 1024;
    char *head = malloc(length);
    REQUIRE(head != NULL);
    memset(head, 'a', length);
    memcpy(head, "GET / HTTP/1.1\r\nX-Big: ", 23);
    /* The server answers after 8 KiB and reads the rest while it lingers. */
    CHECK_OK(evq_net_send_all(c->socket, head, length));
    free(head);
    response r;
    CHECK_OK(read_response(c, &r, false, sizeof c->buffer, 0));
    CHECK_INT(r.status, ==, 431);
    CHECK(strstr(r.text, "larger than the server accepts\n") != NULL);
    CHECK(r.says_close);
    CHECK_OK(expect_closed(c));
    client_close(c);
    http_server_stats stats;
    stop_server(server, &stats);
    CHECK_UINT(stats.refused, ==, 1);
    CHECK_UINT(stats.requests, ==, 0);
    CHECK_UINT(stats.bytes_searched, ==, HTTP_SERVER_DEFAULT_MAX_HEAD + 1);
}

EVQ_TEST(malformed_requests_get_400_and_a_clean_close)
{
    static const struct {
        const char *text;
        int status;
        const char *reason;
    } cases[] = {
        {"GARBAGE\r\n\r\n", 400, "METHOD SP TARGET SP HTTP/1.x\n"},
        /* refused when its first line is in, without the end of the head */
        {"HELLO THERE\r\n", 400, "METHOD SP TARGET SP HTTP/1.x\n"},
        {"GET / HTTP/1.1\r\nNo colon here\r\n\r\n", 400, "no colon\n"},
        {"GET / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc", 400, "Content-Length)\n"},
        {"POST / HTTP/1.1\r\n\r\n", 405, "only GET and HEAD"},
        {"GET / HTTP/2.0\r\n\r\n", 505, "HTTP/1.0 and HTTP/1.1"},
    };
    http_server *server = start_server(NULL);
    REQUIRE(server != NULL);
    for (size_t i = 0; i < EVQ_COUNT(cases); i++) {
        client *c = client_open(http_server_port(server));
        REQUIRE(c != NULL);
        response r;
        if (!CHECK_OK(client_send(c, cases[i].text)) ||
            !CHECK_OK(read_response(c, &r, false, sizeof c->buffer, 0)) ||
            !CHECK_INT(r.status, ==, cases[i].status) ||
            !CHECK(strstr(r.text, cases[i].reason) != NULL) || !CHECK(r.says_close) ||
            !CHECK_OK(expect_closed(c)))
            evq_test_note("case %zu: %s -> %s", i, cases[i].text, r.text);
        client_close(c);
    }
    http_server_stats stats;
    stop_server(server, &stats);
    CHECK_UINT(stats.refused, ==, EVQ_COUNT(cases));
    CHECK_UINT(stats.closed, ==, EVQ_COUNT(cases));
}

/* 8 MiB to a client that reads 16 KiB at a time and pauses: the kernel's
 * buffers fill, the server's writes become partial, and its write queue
 * must stay within write_high (it waits for WRITABLE instead of queueing
 * the whole body). The body must arrive whole, in order. */
EVQ_TEST(a_large_body_to_a_slow_reader)
{
    http_server_config config;
    http_server_config_init(&config);
    config.limits.write_high = 256 * 1024;
    config.limits.write_low = 64 * 1024;
    http_server *server = start_server(&config);
    REQUIRE(server != NULL);
    client *c = client_open(http_server_port(server));
    REQUIRE(c != NULL);
    client_small_window(c);
    uint64_t size = UINT64_C(8) << 20;
    CHECK_OK(client_send(c, "GET /bytes/8388608 HTTP/1.1\r\nConnection: close\r\n\r\n"));
    CHECK(wait_queue_full(server)); /* more than the kernel's buffers hold */
    response r;
    CHECK_OK(read_response(c, &r, false, 16 * 1024, 1));
    CHECK_INT(r.status, ==, 200);
    CHECK_UINT(r.body_length, ==, size);
    CHECK_UINT(r.checksum, ==, pattern_checksum(size));
    CHECK_UINT(r.pattern_differs, ==, UINT64_MAX);
    evq_test_note("body checksum %08x (FNV-1a of %llu bytes)", (unsigned)r.checksum,
                  (unsigned long long)r.body_length);
    CHECK_OK(expect_closed(c));
    client_close(c);
    http_server_stats stats;
    stop_server(server, &stats);
    evq_test_note("%llu short writes, write queue peak %zu of %zu",
                  (unsigned long long)stats.short_writes, stats.write_queued_peak,
                  stats.write_high);
    CHECK_UINT(stats.short_writes, >, 0); /* else this test proved nothing */
    CHECK_UINT(stats.write_queued_peak, >, 0);
    CHECK_UINT(stats.write_queued_peak, <=, config.limits.write_high);
    CHECK_UINT(stats.bytes_written, >, size);
}

EVQ_TEST(keep_alive_two_requests_on_one_connection)
{
    http_server *server = start_server(NULL);
    REQUIRE(server != NULL);
    client *c = client_open(http_server_port(server));
    REQUIRE(c != NULL);
    response r;
    CHECK_OK(client_send(c, "GET /bytes/123 HTTP/1.1\r\n\r\n"));
    CHECK_OK(read_response(c, &r, false, sizeof c->buffer, 0));
    CHECK_INT(r.status, ==, 200);
    CHECK_UINT(r.body_length, ==, 123);
    CHECK(!r.says_close);
    /* HTTP/1.0 asks for keep-alive by name. */
    CHECK_OK(client_send(c, "GET /bytes/45 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
    CHECK_OK(read_response(c, &r, false, sizeof c->buffer, 0));
    CHECK_UINT(r.body_length, ==, 45);
    CHECK(!r.says_close);
    CHECK_OK(client_send(c, "GET / HTTP/1.0\r\n\r\n")); /* and closes without it */
    CHECK_OK(read_response(c, &r, false, sizeof c->buffer, 0));
    CHECK_INT(r.status, ==, 200);
    CHECK(r.says_close);
    CHECK_OK(expect_closed(c));
    client_close(c);
    http_server_stats stats;
    stop_server(server, &stats);
    CHECK_UINT(stats.accepted, ==, 1);
    CHECK_UINT(stats.requests, ==, 3);
}

/* Three requests in one send. Catches a server that waits for READABLE
 * before it looks at bytes already in its buffer: the second and third
 * requests arrived with the first, the socket is never readable again, and
 * they would never be answered. The first answer is large and the write
 * queue small, so the next request is taken up after WRITABLE, too. */
EVQ_TEST(pipelined_requests_in_one_send)
{
    http_server_config config;
    http_server_config_init(&config);
    config.limits.write_high = 64 * 1024;
    config.limits.write_low = 16 * 1024;
    http_server *server = start_server(&config);
    REQUIRE(server != NULL);
    client *c = client_open(http_server_port(server));
    REQUIRE(c != NULL);
    client_small_window(c);
    CHECK_OK(client_send(c, "GET /bytes/8388608 HTTP/1.1\r\n\r\n"
                            "HEAD / HTTP/1.1\r\n\r\n"
                            "GET /bytes/77 HTTP/1.1\r\nConnection: close\r\n\r\n"));
    CHECK(wait_queue_full(server));
    response r;
    CHECK_OK(read_response(c, &r, false, sizeof c->buffer, 0));
    CHECK_INT(r.status, ==, 200);
    CHECK_UINT(r.body_length, ==, 8388608);
    CHECK_UINT(r.checksum, ==, pattern_checksum(8388608));
    CHECK_OK(read_response(c, &r, true, sizeof c->buffer, 0));
    CHECK_INT(r.status, ==, 200);
    CHECK_UINT(r.body_length, ==, 0);
    CHECK_OK(read_response(c, &r, false, sizeof c->buffer, 0));
    CHECK_INT(r.status, ==, 200);
    CHECK_UINT(r.body_length, ==, 77);
    CHECK(r.says_close);
    CHECK_OK(expect_closed(c));
    client_close(c);
    http_server_stats stats;
    stop_server(server, &stats);
    CHECK_UINT(stats.requests, ==, 3);
    CHECK_UINT(stats.short_writes, >, 0);
}

/* A client that sends its request and half-closes (as `printf ... | nc`
 * does) still gets all of a large answer. The write queue is made large
 * enough to take the whole answer at once, so the server sees the EOF in
 * the same turn, with megabytes still queued. Catches a server that closes
 * on EOF at once: evq_tcp_close drops what is queued. */
EVQ_TEST(a_half_closed_client_still_gets_its_whole_answer)
{
    http_server_config config;
    http_server_config_init(&config);
    config.limits.write_high = 16 << 20;
    config.limits.write_low = 1 << 20;
    http_server *server = start_server(&config);
    REQUIRE(server != NULL);
    client *c = client_open(http_server_port(server));
    REQUIRE(c != NULL);
    client_small_window(c);
    CHECK_OK(client_send(c, "GET /bytes/8000000 HTTP/1.1\r\n\r\n"));
#ifdef _WIN32
    CHECK_INT(shutdown(c->socket, SD_SEND), ==, 0);
#else
    CHECK_INT(shutdown(c->socket, SHUT_WR), ==, 0);
#endif
    response r;
    CHECK_OK(read_response(c, &r, false, sizeof c->buffer, 0));
    CHECK_INT(r.status, ==, 200);
    CHECK_UINT(r.body_length, ==, 8000000);
    CHECK_UINT(r.checksum, ==, pattern_checksum(8000000));
    CHECK_OK(expect_closed(c));
    client_close(c);
    http_server_stats stats;
    stop_server(server, &stats);
    CHECK_UINT(stats.disconnected, ==, 0);
}

/* ANCHOR: linger_test */
/* The lingering close (RFC 1122, 4.2.2.13). A client asks for 8 MB with
 * Connection: close and, while the answer is on its way, sends more (the
 * start of a request that will never be answered). A server writing its
 * answer does not read, so those bytes wait in the socket. Closed as soon
 * as its write queue is empty, the socket still holds them unread: close()
 * sends RST instead of FIN, the kernel drops what it has not sent of the
 * answer, and the client meets a reset before the end of the body. The
 * server shuts down writing, reads and drops until the client closes, and
 * only then closes: every byte arrives, then a FIN. */
EVQ_TEST(a_client_still_sending_gets_its_whole_answer_and_a_fin)
{
    http_server *server = start_server(NULL);
    REQUIRE(server != NULL);
    client *c = client_open(http_server_port(server));
    REQUIRE(c != NULL);
    client_small_window(c);
    CHECK_OK(client_send(c, "GET /bytes/8000000 HTTP/1.1\r\nConnection: close\r\n\r\n"));
    CHECK_OK(client_fill(c, 1));                      /* the answer has begun */
    CHECK_OK(client_send(c, "GET / HTTP/1.1\r\nHo")); /* never read while it is written */
    response r;
    CHECK_OK(read_response(c, &r, false, sizeof c->buffer, 0));
    CHECK_INT(r.status, ==, 200);
    CHECK_UINT(r.body_length, ==, 8000000);
    CHECK_UINT(r.checksum, ==, pattern_checksum(8000000));
    CHECK_OK(expect_closed(c)); /* a FIN, not a reset */
    client_close(c);
    http_server_stats stats;
    stop_server(server, &stats);
    CHECK_UINT(stats.requests, ==, 1);
}
/* ANCHOR_END: linger_test */

/* One client leaves in the middle of its request, another in the middle of
 * a large answer; a third, whose request was half-sent all along, is
 * answered, and the server has closed both of the others. */
EVQ_TEST(clients_that_leave_early_do_not_disturb_others)
{
    http_server_config config;
    http_server_config_init(&config);
    config.limits.write_high = 64 * 1024;
    config.limits.write_low = 16 * 1024;
    http_server *server = start_server(&config);
    REQUIRE(server != NULL);
    uint16_t port = http_server_port(server);
    client *stays = client_open(port), *leaves = client_open(port), *reader = client_open(port);
    REQUIRE(stays && leaves && reader);
    CHECK_OK(client_send(stays, "GET /bytes/99 HTTP/1.1\r\nHo"));
    CHECK_OK(client_send(leaves, "GET / HTTP/1.1\r\nHo"));
    CHECK_UINT(WAIT_STAT(server, heads_waiting, 2), ==, 2);
    client_close(leaves);
    CHECK_UINT(WAIT_STAT(server, disconnected, 1), ==, 1);
    CHECK_UINT(WAIT_STAT(server, open_now, 2), ==, 2);

    /* The reader takes a little of 16 MiB, then goes. */
    CHECK_OK(client_send(reader, "GET /bytes/16777216 HTTP/1.1\r\n\r\n"));
    CHECK_OK(client_fill(reader, sizeof reader->buffer));
    client_close(reader);
    CHECK_UINT(WAIT_STAT(server, disconnected, 2), ==, 2);
    CHECK_UINT(WAIT_STAT(server, open_now, 1), ==, 1);

    CHECK_OK(client_send(stays, "st: x\r\n\r\n"));
    response r;
    CHECK_OK(read_response(stays, &r, false, sizeof stays->buffer, 0));
    CHECK_INT(r.status, ==, 200);
    CHECK_UINT(r.body_length, ==, 99);
    client_close(stays);
    http_server_stats stats;
    stop_server(server, &stats);
    CHECK_UINT(stats.requests, ==, 2);
    CHECK_UINT(stats.disconnected, ==, 2);
}

#ifndef _WIN32
/* The same with a reset instead of a FIN (POSIX: Wine 8 sends a FIN). */
EVQ_TEST_POSIX(a_client_that_resets_mid_request_does_not_disturb_others)
{
    http_server *server = start_server(NULL);
    REQUIRE(server != NULL);
    uint16_t port = http_server_port(server);
    client *stays = client_open(port), *resets = client_open(port);
    REQUIRE(stays && resets);
    CHECK_OK(client_send(stays, "GET /bytes/5 HTTP/1.1\r\n"));
    CHECK_OK(client_send(resets, "GET /bytes/5 HTTP/1.1\r\n"));
    CHECK_UINT(WAIT_STAT(server, heads_waiting, 2), ==, 2);
    CHECK_OK(evq_socket_close_with_reset(resets->socket));
    free(resets);
    CHECK_UINT(WAIT_STAT(server, disconnected, 1), ==, 1);
    CHECK_UINT(WAIT_STAT(server, open_now, 1), ==, 1);
    CHECK_OK(client_send(stays, "\r\n"));
    response r;
    CHECK_OK(read_response(stays, &r, false, sizeof stays->buffer, 0));
    CHECK_INT(r.status, ==, 200);
    CHECK_UINT(r.body_length, ==, 5);
    client_close(stays);
    stop_server(server, NULL);
}
#endif

/* Stop with connections in every state - idle, half a request, and an
 * answer stuck behind a client that does not read: the loop wakes, every
 * stream is closed and freed (ASan checks), and the clients see the end. */
EVQ_TEST(stop_closes_every_connection)
{
    http_server_config config;
    http_server_config_init(&config);
    config.limits.write_high = 64 * 1024;
    config.limits.write_low = 16 * 1024;
    http_server *server = start_server(&config);
    REQUIRE(server != NULL);
    uint16_t port = http_server_port(server);
    client *idle = client_open(port), *half = client_open(port), *stuck = client_open(port);
    REQUIRE(idle && half && stuck);
    CHECK_OK(client_send(half, "GET / HT"));
    CHECK_OK(client_send(stuck, "GET /bytes/67108864 HTTP/1.1\r\n\r\n"));
    CHECK_UINT(WAIT_STAT(server, heads_waiting, 1), ==, 1);
    CHECK(wait_queue_full(server)); /* the stuck answer has filled the queue */
    http_server_stats stats;
    http_server_get_stats(server, &stats);
    CHECK_UINT(stats.open_now, ==, 3);
    stop_server(server, &stats);
    CHECK_UINT(stats.open_now, ==, 0);
    CHECK_UINT(stats.closed, ==, 3);
    CHECK_UINT(stats.heads_waiting, ==, 0);
    /* The clients see the end: EOF (or a reset for the one with unread data). */
    CHECK(expect_closed(idle) == 0);
    CHECK(expect_closed(half) == 0);
    client_close(idle);
    client_close(half);
    client_close(stuck);
}

EVQ_TEST(bad_configs_are_einval)
{
    http_server_config config;
    http_server *server = NULL;
    CHECK_ERR(http_server_start(NULL, &server), EVQ_EINVAL);
    http_server_config_init(&config);
    CHECK_ERR(http_server_start(&config, NULL), EVQ_EINVAL);
    config.max_head = 0;
    CHECK_ERR(http_server_start(&config, &server), EVQ_EINVAL);
    http_server_config_init(&config);
    config.max_head = config.limits.read_max; /* no room for the byte that says 431 */
    CHECK_ERR(http_server_start(&config, &server), EVQ_EINVAL);
    http_server_config_init(&config);
    config.max_connections = 0;
    CHECK_ERR(http_server_start(&config, &server), EVQ_EINVAL);
    http_server_config_init(&config);
    config.backlog = 0;
    CHECK_ERR(http_server_start(&config, &server), EVQ_EINVAL);
    http_server_config_init(&config);
    config.limits.write_low = config.limits.write_high; /* the library's own rule */
    CHECK_ERR(http_server_start(&config, &server), EVQ_EINVAL);
    http_server_config_init(&config);
    config.send_timeout_ms = 0; /* chapter 4: every state has a deadline */
    CHECK_ERR(http_server_start(&config, &server), EVQ_EINVAL);
    http_server_config_init(&config);
    config.clock.now_ns = NULL;
    CHECK_ERR(http_server_start(&config, &server), EVQ_EINVAL);
    CHECK(server == NULL);
    CHECK_OK(http_server_stop(NULL, NULL));
}

/* ---- chapter 4: deadlines, on a clock the test moves ---------------------------------- */
/* The server's clock: read on the server's thread (its reads counted),
 * moved on the test's. */
typedef struct test_clock {
    atomic_uint_least64_t now;
    atomic_uint reads;
} test_clock;

static uint64_t test_clock_now(void *context)
{
    test_clock *clock = context;
    atomic_fetch_add(&clock->reads, 1);
    return atomic_load(&clock->now);
}

/* A server whose deadlines run on `clock` (head, idle, send, linger in ms). */
static http_server *start_timed(test_clock *clock, http_server_config *config, uint32_t head,
                                uint32_t idle, uint32_t send, uint32_t linger)
{
    atomic_init(&clock->now, 1000 * EVQ_NS_PER_S);
    atomic_init(&clock->reads, 0);
    config->clock = (evq_clock){test_clock_now, clock};
    config->head_timeout_ms = head;
    config->idle_timeout_ms = idle;
    config->send_timeout_ms = send;
    config->linger_timeout_ms = linger;
    return start_server(config);
}

/* Wake the loop until `turns` more of its turns have been published. */
static bool loop_turns(http_server *server, uint64_t turns)
{
    uint64_t give_up = evq_clock_now_ns() + evq_ms_to_ns(WAIT_LIMIT_MS);
    http_server_stats stats;
    http_server_get_stats(server, &stats);
    uint64_t until = stats.waits + turns;
    while (stats.waits < until && evq_clock_now_ns() < give_up) {
        CHECK_OK(http_server_wake(server));
        evq_sleep_ms(1);
        http_server_get_stats(server, &stats);
    }
    return CHECK_UINT(stats.waits, >=, until);
}

/* Move the server's time on by `ms`, and return once every deadline that
 * passed has been handled and published.
 * First, the turn under way ends: what a client saw (an answer, a FIN) was
 * sent during a turn that may still read the clock to set a deadline after
 * it, and must read the time before the move, as it would have in real
 * time. Then the move; then the loop must have looked at the new time - a
 * read of the moved clock, and two more published turns: the second began
 * after that read, and its wait's first look at the clock saw the new time,
 * so whatever passed was told and handled there. */
static void advance(http_server *server, test_clock *clock, uint32_t ms)
{
    loop_turns(server, 1);
    atomic_fetch_add(&clock->now, evq_ms_to_ns(ms));
    unsigned reads = atomic_load(&clock->reads);
    uint64_t give_up = evq_clock_now_ns() + evq_ms_to_ns(WAIT_LIMIT_MS);
    while (atomic_load(&clock->reads) == reads && evq_clock_now_ns() < give_up) {
        CHECK_OK(http_server_wake(server));
        evq_sleep_ms(1);
    }
    CHECK_UINT(atomic_load(&clock->reads), !=, reads);
    loop_turns(server, 2);
}

static http_server_stats stats_now(http_server *server)
{
    http_server_stats stats;
    http_server_get_stats(server, &stats);
    return stats;
}

/* Slowloris: a head sent in pieces, slowly. Its deadline counts from the
 * accept, and the bytes that trickle in do not move it: 408, then close. */
EVQ_TEST(a_head_that_never_ends_gets_408_at_its_deadline)
{
    test_clock clock;
    http_server_config config;
    http_server_config_init(&config);
    http_server *server = start_timed(&clock, &config, 10000, 5000, 30000, 2000);
    REQUIRE(server != NULL);
    client *c = client_open(http_server_port(server));
    REQUIRE(c != NULL);
    CHECK_OK(client_send(c, "GET / HTTP/1.1\r\nHost: t\r\n"));
    CHECK_UINT(WAIT_STAT(server, resumed_parses, 1), ==, 1);
    advance(server, &clock, 6000);
    CHECK_OK(client_send(c, "X-Slow: 1\r\n")); /* more bytes, still no end */
    CHECK_UINT(WAIT_STAT(server, resumed_parses, 2), ==, 2);
    advance(server, &clock, 3999);
    CHECK_UINT(stats_now(server).head_timeouts, ==, 0); /* 9.999 s: not yet */
    advance(server, &clock, 1);
    response r;
    CHECK_OK(read_response(c, &r, false, sizeof c->buffer, 0));
    CHECK_INT(r.status, ==, 408);
    CHECK(r.says_close);
    CHECK_OK(expect_closed(c));
    client_close(c);
    CHECK_UINT(WAIT_STAT(server, closed, 1), ==, 1);
    http_server_stats stats;
    stop_server(server, &stats);
    CHECK_UINT(stats.head_timeouts, ==, 1);
    CHECK_UINT(stats.heads_waiting, ==, 0);
}

/* Between requests, a kept-alive connection may be silent for the idle
 * timeout, and is then closed without a word; a connection that never
 * sent anything is closed at its head deadline, without a 408. */
EVQ_TEST(a_silent_connection_is_closed_quietly_at_its_deadline)
{
    test_clock clock;
    http_server_config config;
    http_server_config_init(&config);
    http_server *server = start_timed(&clock, &config, 10000, 2000, 30000, 2000);
    REQUIRE(server != NULL);
    client *c = client_open(http_server_port(server));
    client *silent = client_open(http_server_port(server));
    REQUIRE(c != NULL && silent != NULL);
    CHECK_UINT(WAIT_STAT(server, accepted, 2), ==, 2);
    response r;
    CHECK_OK(client_send(c, "GET / HTTP/1.1\r\n\r\n"));
    CHECK_OK(read_response(c, &r, false, sizeof c->buffer, 0));
    CHECK_INT(r.status, ==, 200);
    advance(server, &clock, 1999);
    CHECK_OK(client_send(c, "GET /bytes/10 HTTP/1.1\r\n\r\n")); /* just in time */
    CHECK_OK(read_response(c, &r, false, sizeof c->buffer, 0));
    CHECK_UINT(r.body_length, ==, 10);
    advance(server, &clock, 1999); /* 2 s after the first answer, not after the second */
    CHECK_UINT(stats_now(server).idle_timeouts, ==, 0);
    advance(server, &clock, 1);
    CHECK_OK(expect_closed(c));
    CHECK_UINT(stats_now(server).idle_timeouts, ==, 1);
    advance(server, &clock, 6001); /* 10 s after the silent one's accept */
    CHECK_OK(expect_closed(silent));
    client_close(c);
    client_close(silent);
    http_server_stats stats;
    stop_server(server, &stats);
    CHECK_UINT(stats.idle_timeouts, ==, 2);
    CHECK_UINT(stats.head_timeouts, ==, 0);
    CHECK_UINT(stats.closed, ==, 2);
}

/* A client that asks for a large answer and stops reading: the answer's
 * deadline moves each time the client takes some, and when it stops for
 * good the connection is dropped - its write queue freed with it. */
EVQ_TEST(a_client_that_stops_reading_is_dropped_at_its_send_deadline)
{
    test_clock clock;
    http_server_config config;
    http_server_config_init(&config);
    config.limits.write_high = 64 * 1024;
    config.limits.write_low = 16 * 1024;
    http_server *server = start_timed(&clock, &config, 10000, 5000, 3000, 2000);
    REQUIRE(server != NULL);
    client *c = client_open(http_server_port(server));
    REQUIRE(c != NULL);
    client_small_window(c);
    CHECK_OK(client_send(c, "GET /bytes/60000000 HTTP/1.1\r\n\r\n"));
    CHECK(wait_queue_full(server));
    advance(server, &clock, 2000);
    /* Progress: the client reads 8 MiB, more than the kernel's buffers
     * between them hold (about 4 MiB here), so the server must have written
     * more: at t = 2 s, its deadline moves to 5 s. Then it stops reading. */
    uint64_t written = stats_now(server).bytes_written;
    for (size_t got = 0; got < (size_t)8 << 20; got += c->length) {
        c->length = 0;
        REQUIRE_OK(client_fill(c, sizeof c->buffer));
    }
    uint64_t give_up = evq_clock_now_ns() + evq_ms_to_ns(WAIT_LIMIT_MS);
    while (stats_now(server).bytes_written == written && evq_clock_now_ns() < give_up)
        evq_sleep_ms(1); /* published once the turn that wrote it is over */
    CHECK_UINT(stats_now(server).bytes_written, >, written);
    advance(server, &clock, 2999); /* 5 s from the start, under 3 s from the progress */
    http_server_stats stats = stats_now(server);
    CHECK_UINT(stats.send_timeouts, ==, 0);
    CHECK_UINT(stats.open_now, ==, 1);
    /* Let the last bytes in flight settle (the kernels may take a little
     * more after the client stopped), then 3 s with no progress at all. A
     * send that still completes late (Wine's sockets can, under load) is
     * progress and moves the deadline, as it must: then 3 s more, a bounded
     * number of times - but 3 s without a byte must end the connection. */
    do {
        written = stats_now(server).bytes_written;
        loop_turns(server, 2);
        evq_sleep_ms(10);
    } while (stats_now(server).bytes_written != written);
    for (int tries = 0; tries < 8; tries++) {
        written = stats_now(server).bytes_written;
        advance(server, &clock, 3000);
        stats = stats_now(server);
        if (stats.send_timeouts != 0 || stats.bytes_written == written)
            break;
    }
    CHECK_UINT(stats.send_timeouts, ==, 1);
    CHECK_UINT(stats.open_now, ==, 0); /* closed: its buffers are gone */
    CHECK_UINT(stats.disconnected, ==, 1);
    client_close(c);
    stop_server(server, NULL);
}

/* A closing connection whose client never closes its side: the lingering
 * close ends at its deadline. */
EVQ_TEST(a_lingering_close_ends_at_its_deadline)
{
    test_clock clock;
    http_server_config config;
    http_server_config_init(&config);
    http_server *server = start_timed(&clock, &config, 10000, 5000, 30000, 1000);
    REQUIRE(server != NULL);
    client *c = client_open(http_server_port(server));
    REQUIRE(c != NULL);
    response r;
    CHECK_OK(client_send(c, "BAD\r\n\r\n"));
    CHECK_OK(read_response(c, &r, false, sizeof c->buffer, 0));
    CHECK_INT(r.status, ==, 400);
    CHECK_OK(expect_closed(c)); /* the server's FIN; ours never comes */
    advance(server, &clock, 999);
    CHECK_UINT(stats_now(server).closed, ==, 0);
    advance(server, &clock, 1);
    http_server_stats stats = stats_now(server);
    CHECK_UINT(stats.closed, ==, 1);
    CHECK_UINT(stats.linger_timeouts, ==, 1);
    client_close(c);
    stop_server(server, NULL);
}

int main(int argc, char **argv)
{
    static const evq_test_case cases[] = {
        EVQ_CASE(routes_answer),
        EVQ_CASE(one_byte_at_a_time_with_a_turn_between_bytes),
        EVQ_CASE(a_waiting_half_request_is_not_parsed_again),
        EVQ_CASE(a_thousand_half_requests_completed_in_random_order),
        EVQ_CASE(an_oversized_head_gets_431_and_a_clean_close),
        EVQ_CASE(malformed_requests_get_400_and_a_clean_close),
        EVQ_CASE(a_large_body_to_a_slow_reader),
        EVQ_CASE(keep_alive_two_requests_on_one_connection),
        EVQ_CASE(pipelined_requests_in_one_send),
        EVQ_CASE(a_half_closed_client_still_gets_its_whole_answer),
        EVQ_CASE(a_client_still_sending_gets_its_whole_answer_and_a_fin),
        EVQ_CASE(clients_that_leave_early_do_not_disturb_others),
#ifndef _WIN32
        EVQ_CASE(a_client_that_resets_mid_request_does_not_disturb_others),
#endif
        EVQ_CASE(stop_closes_every_connection),
        EVQ_CASE(bad_configs_are_einval),
        EVQ_CASE(a_head_that_never_ends_gets_408_at_its_deadline),
        EVQ_CASE(a_silent_connection_is_closed_quietly_at_its_deadline),
        EVQ_CASE(a_client_that_stops_reading_is_dropped_at_its_send_deadline),
        EVQ_CASE(a_lingering_close_ends_at_its_deadline),
    };
    return evq_test_main(argc, argv, cases, EVQ_COUNT(cases));
}

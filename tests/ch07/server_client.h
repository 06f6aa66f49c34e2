/* server_client.h - what chapter 7's server tests share: the server
 * started in-process (on an injected clock when a test moves time), bounded
 * waits on its counters, and blocking clients that check the answers on
 * their own (they do not trust the server's code to check the server):
 * an HTTP response reader, an echo pattern with its checksum.
 *
 * Static inline: each test program takes what it uses.
 */
#ifndef SERVER_CLIENT_H
#define SERVER_CLIENT_H

#include "server.h"

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

enum { WAIT_LIMIT_MS = 20000 };

/* Built with a sanitizer, or run under Wine: smaller runs. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SERVER_TEST_SLOW 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SERVER_TEST_SLOW 1
#endif
#endif
#if !defined(SERVER_TEST_SLOW) && defined(_WIN32)
#define SERVER_TEST_SLOW 1
#endif
#ifndef SERVER_TEST_SLOW
#define SERVER_TEST_SLOW 0
#endif

/* ---- the server ------------------------------------------------------------------------ */
/* The test config: both protocols on port 0, no stats line printed. */
static inline void test_config(server_config *config)
{
    server_config_init(config);
    config->stats_out = NULL;
}

static inline server *start_server(const server_config *config)
{
    server *s = NULL;
    int rc = server_start(config, &s);
    if (rc != 0)
        evq_test_fail(__FILE__, __LINE__, "server_start: %s", evq_error_name(rc));
    return s;
}

/* Start on `threads` loops in `design`. NULL also when the design is not
 * available here - per-thread on Windows, which must say EVQ_ENOTSUP -
 * and *refused tells which. */
static inline server *start_design(server_config *config, unsigned threads,
                                   enum server_design design, bool *refused)
{
    config->threads = threads;
    config->design = design;
    server *s = NULL;
    int rc = server_start(config, &s);
    *refused = false;
#ifdef _WIN32
    if (design == SERVER_PER_THREAD && threads > 1) {
        CHECK_ERR(rc, EVQ_ENOTSUP); /* no SO_REUSEPORT */
        *refused = true;
        return NULL;
    }
#endif
    CHECK_OK(rc);
    return s;
}

static inline server_stats stats_now(server *s)
{
    server_stats stats;
    server_get_stats(s, &stats);
    return stats;
}

/* Wait (bounded) until a counter reaches at least `want`; returns its value. */
static inline uint64_t wait_stat(server *s, size_t offset, uint64_t want)
{
    uint64_t give_up = evq_clock_now_ns() + evq_ms_to_ns(WAIT_LIMIT_MS), value = 0;
    for (;;) {
        server_stats stats = stats_now(s);
        memcpy(&value, (const char *)&stats + offset, sizeof value);
        if (value >= want || evq_clock_now_ns() > give_up)
            return value;
        evq_sleep_ms(1);
    }
}
#define WAIT_STAT(s, field, want) wait_stat(s, offsetof(server_stats, field), (uint64_t)(want))

static inline uint64_t wait_open(server *s, uint64_t want)
{
    uint64_t give_up = evq_clock_now_ns() + evq_ms_to_ns(WAIT_LIMIT_MS);
    while (server_open_now(s) != want && evq_clock_now_ns() < give_up)
        evq_sleep_ms(1);
    return server_open_now(s);
}

/* A clock the test moves, read by the loops' threads. */
typedef struct test_clock {
    atomic_uint_least64_t now;
} test_clock;

static inline uint64_t test_clock_now(void *context)
{
    return atomic_load(&((test_clock *)context)->now);
}

static inline void use_test_clock(server_config *config, test_clock *clock)
{
    atomic_init(&clock->now, 1000 * EVQ_NS_PER_S);
    config->clock = (evq_clock){test_clock_now, clock};
}

/* Move the server's time on by `ms`, and return once every deadline that
 * passed has been handled: first the turn under way ends (what the client
 * saw was sent in a turn that may still set a deadline, on the old time),
 * then the move, then full turns of every loop on the new time. */
static inline void advance(server *s, test_clock *clock, uint32_t ms)
{
    CHECK_OK(server_sync(s));
    atomic_fetch_add(&clock->now, evq_ms_to_ns(ms));
    CHECK_OK(server_sync(s));
    CHECK_OK(server_sync(s));
}

/* ---- a blocking client ------------------------------------------------------------------ */
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

#define FNV_START 2166136261u
static inline uint32_t fnv1a(uint32_t hash, const unsigned char *bytes, size_t length)
{
    for (size_t i = 0; i < length; i++)
        hash = (hash ^ bytes[i]) * 16777619u;
    return hash;
}

/* The checksum /bytes/N must have. */
static inline uint32_t pattern_checksum(uint64_t length)
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

static inline client *client_open(uint16_t port)
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

static inline void client_close(client *c)
{
    if (c) {
        evq_socket_close(c->socket);
        free(c);
    }
}

/* A small receive window: less of an answer hides in the kernel's buffers,
 * so a client that does not read makes the server's write queue fill sooner. */
static inline void client_small_window(client *c)
{
    int size = 64 * 1024;
    setsockopt(c->socket, SOL_SOCKET, SO_RCVBUF, (const char *)&size, sizeof size);
}

static inline int client_send(client *c, const char *text)
{
    return evq_net_send_all(c->socket, text, strlen(text));
}

/* Receive at most `piece` more bytes into the buffer; EVQ_EOF at EOF. */
static inline int client_fill(client *c, size_t piece)
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

static inline void client_drop(client *c, size_t n)
{
    memmove(c->buffer, c->buffer + n, c->length - n);
    c->length -= n;
}

/* The length of the head at the start of buffer[0, length), 0 if incomplete. */
static inline size_t head_end(const char *buffer, size_t length)
{
    for (size_t i = 3; i < length; i++) {
        if (memcmp(buffer + i - 3, "\r\n\r\n", 4) == 0)
            return i + 1;
    }
    return 0;
}

/* Read one response. head_only: the request was HEAD (no body follows). At
 * most `piece` bytes per recv: a slow reader. */
static inline int read_response(client *c, response *r, bool head_only, size_t piece)
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
    const char *length = strstr(r->head, "\r\nContent-Length: ");
    if (!length)
        return EVQ_EIO;
    r->content_length = strtoull(length + 18, NULL, 10);
    r->says_close = strstr(r->head, "\r\nConnection: close\r\n") != NULL;
    uint64_t left = head_only ? 0 : r->content_length;
    unsigned char expected[sizeof c->buffer];
    while (left > 0) {
        if (c->length == 0) {
            int rc = client_fill(c, piece);
            if (rc != 0)
                return rc;
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

/* The server closes gracefully: EOF with nothing before it. */
static inline int expect_closed(client *c)
{
    if (c->length > 0)
        return EVQ_EMSGSIZE;
    int rc = client_fill(c, sizeof c->buffer);
    return rc == EVQ_EOF ? 0 : rc == 0 ? EVQ_EMSGSIZE : rc;
}

/* The connection ends, gracefully or not: EOF or an error such as a reset
 * (anything received before it is dropped). A receive timeout is not an end. */
static inline int expect_end(client *c)
{
    for (;;) {
        c->length = 0;
        int rc = client_fill(c, sizeof c->buffer);
        if (rc == EVQ_EOF)
            return 0;
        if (rc == EVQ_ETIMEDOUT || rc == EVQ_EWOULDBLOCK)
            return rc;
        if (rc != 0)
            return 0;
    }
}

/* ---- the echo pattern ----------------------------------------------------------------------- */
/* Byte `offset` of connection `id`'s stream: a different stream per
 * connection, so that bytes crossing connections would show. */
static inline unsigned char echo_byte(uint32_t id, uint64_t offset)
{
    uint32_t x = (uint32_t)(offset + (uint64_t)id * 7919u) * 2654435761u;
    return (unsigned char)((x >> 24) ^ id);
}

static inline void echo_fill(uint32_t id, uint64_t offset, unsigned char *out, size_t length)
{
    for (size_t i = 0; i < length; i++)
        out[i] = echo_byte(id, offset + i);
}

/* ---- the echo load ------------------------------------------------------------------------------
 */
enum { ECHO_CONNECTIONS = 100, ECHO_THREADS = 4, ECHO_PIECE = 32 * 1024 };
#define ECHO_TOTAL (UINT64_C(16) << 20)

typedef struct echo_job {
    uint16_t port;
    uint32_t first_id, count;
    uint64_t per_connection;
    uint64_t echoed; /* bytes received back and checked */
    uint64_t wrong;  /* bytes that were not what was sent there */
    uint32_t hash;   /* FNV-1a over every connection's echo, in id order per piece */
    int error;
} echo_job;

/* One client thread: its connections all open at once, each sends a piece
 * and then reads its echo back, round after round. */
static inline void echo_client(void *arg)
{
    echo_job *job = arg;
    evq_socket sockets[ECHO_CONNECTIONS];
    unsigned char *out = malloc(ECHO_PIECE), *in = malloc(ECHO_PIECE);
    uint32_t opened = 0;
    job->hash = FNV_START;
    for (; opened < job->count && job->error == 0; opened++) {
        job->error = evq_net_connect_loopback(job->port, &sockets[opened]);
        if (job->error == 0)
            job->error = evq_socket_set_recv_timeout(sockets[opened], WAIT_LIMIT_MS);
        if (job->error != 0)
            break;
    }
    for (uint64_t offset = 0; offset < job->per_connection && job->error == 0 && out && in;
         offset += ECHO_PIECE) {
        uint64_t left = job->per_connection - offset;
        size_t piece = left < ECHO_PIECE ? (size_t)left : ECHO_PIECE;
        for (uint32_t i = 0; i < job->count && job->error == 0; i++) {
            echo_fill(job->first_id + i, offset, out, piece);
            job->error = evq_net_send_all(sockets[i], out, piece);
        }
        for (uint32_t i = 0; i < job->count && job->error == 0; i++) {
            size_t have = 0;
            while (have < piece && job->error == 0) {
                size_t got = 0;
                job->error = evq_net_recv(sockets[i], in + have, piece - have, &got);
                if (job->error == 0 && got == 0)
                    job->error = EVQ_EOF;
                have += got;
            }
            echo_fill(job->first_id + i, offset, out, have);
            for (size_t k = 0; k < have; k++)
                job->wrong += out[k] != in[k];
            job->hash = fnv1a(job->hash, in, have);
            job->echoed += have;
        }
    }
    for (uint32_t i = 0; i < opened; i++)
        evq_socket_close(sockets[i]);
    free(out);
    free(in);
}

/* Run the echo load on `port`: `connections` clients on ECHO_THREADS
 * threads, `total` bytes in all. Returns the bytes checked. */
static inline uint64_t run_echo_load(uint16_t port, uint32_t connections, uint64_t total)
{
    echo_job jobs[ECHO_THREADS];
    evq_thread threads[ECHO_THREADS];
    uint32_t per_thread = connections / ECHO_THREADS;
    uint64_t per_connection = (total + connections - 1) / connections;
    for (int t = 0; t < ECHO_THREADS; t++) {
        jobs[t] =
            (echo_job){port, (uint32_t)t * per_thread, per_thread, per_connection, 0, 0, 0, 0};
        CHECK_OK(evq_thread_start(&threads[t], echo_client, &jobs[t]));
    }
    uint64_t echoed = 0, wrong = 0;
    for (int t = 0; t < ECHO_THREADS; t++) {
        CHECK_OK(evq_thread_join(&threads[t]));
        CHECK_OK(jobs[t].error);
        echoed += jobs[t].echoed;
        wrong += jobs[t].wrong;
    }
    CHECK_UINT(wrong, ==, 0);
    CHECK_UINT(echoed, ==, per_connection * per_thread * ECHO_THREADS);
    return echoed;
}

#endif

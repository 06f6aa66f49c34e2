/* server.h - chapter 7's server: two protocols on the raw-loop template
 * (loop/raw_loop.h), on N loop threads.
 *
 *   echo   every byte read is written back, in order. A connection whose
 *          answer the client does not take is not read until it drains
 *          (its write queue holds write_high bytes at most).
 *   http   chapter 6's HTTP/1.1 server (routes /, /bytes/N; 400, 404, 405,
 *          408, 431, 505; keep-alive, pipelining; head, idle, send and
 *          linger deadlines), refitted onto the template.
 *
 * Threads, two designs (config.design):
 *   per-thread  N queues, each with its own listeners on the same ports
 *               (evq_tcp_listen_shared: the kernel spreads the connections)
 *               and its own connection table: nothing is shared, no lock.
 *               Not on Windows (no SO_REUSEPORT): EVQ_ENOTSUP.
 *   shared      one queue, one listener per protocol, N loops waiting on
 *               it: each event goes to one loop, which owns the connection
 *               until it re-arms it; the connection table is locked.
 *
 * Stopping (server_request_stop, which a signal handler calls too): the
 * listeners close at once, idle and reading connections close, answers in
 * flight get grace_ms to finish, then whatever is left is cut; the loops
 * return and server_stop hands back the totals.
 *
 * Tests start it in-process on port 0 with an injected clock; the program
 * ch07_server_<backend> (main.c) runs it from the command line.
 */
#ifndef SERVER_H
#define SERVER_H

#include "evq.h"
#include "evq_clock.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define SERVER_MAX_THREADS             64
#define SERVER_DEFAULT_MAX_HEAD        8192u
#define SERVER_DEFAULT_MAX_CONNECTIONS 10000u
#define SERVER_MAX_BYTES               (UINT64_C(64) << 20) /* the most /bytes/N serves */
#define SERVER_DEFAULT_HEAD_TIMEOUT    10000u               /* ms */
#define SERVER_DEFAULT_IDLE_TIMEOUT    5000u                /* ms */
#define SERVER_DEFAULT_SEND_TIMEOUT    30000u               /* ms */
#define SERVER_DEFAULT_LINGER_TIMEOUT  2000u                /* ms */
#define SERVER_DEFAULT_GRACE           2000u                /* ms */
#define SERVER_DEFAULT_STATS_INTERVAL  1000u                /* ms */

enum server_protocol { SERVER_ECHO = 0, SERVER_HTTP = 1, SERVER_PROTOCOLS = 2 };
enum server_design { SERVER_PER_THREAD, SERVER_SHARED };

typedef struct server_config {
    const char *host;                /* "127.0.0.1" */
    bool serve[SERVER_PROTOCOLS];    /* which protocols listen */
    uint16_t port[SERVER_PROTOCOLS]; /* 0: any free port (see server_port) */
    unsigned threads;                /* loop threads, 1..SERVER_MAX_THREADS */
    enum server_design design;       /* ignored with one thread */
    uint32_t stats_interval_ms;      /* the stats line's period; 0: none */
    FILE *stats_out;                 /* where stats lines go (NULL: counted, not printed) */
    uint32_t grace_ms;               /* how long answers in flight may finish after a stop */
    uint32_t max_connections;        /* open at once per queue; more wait in the backlog */
    int backlog;                     /* listen() backlog, > 0 */
    size_t max_head;                 /* the largest request head accepted (else 431) */
    evq_tcp_limits limits;           /* every connection's buffers */
    uint32_t head_timeout_ms;        /* HTTP deadlines, each > 0 (chapter 6) */
    uint32_t idle_timeout_ms;
    uint32_t send_timeout_ms; /* echo too: a client that stops reading is dropped */
    uint32_t linger_timeout_ms;
    evq_clock clock; /* the loops' and the queues' clock: tests inject one */
} server_config;

/* The defaults: 127.0.0.1, both protocols on port 0, one thread, per-thread
 * design on POSIX and shared on Windows, stats every second to stdout... */
void server_config_init(server_config *config);

/* What the server has done, summed over its loops. Counters only grow. */
typedef struct server_stats {
    uint64_t accepted;        /* connections accepted */
    uint64_t closed;          /* connections closed */
    uint64_t disconnected;    /* of those: the client left mid-request or mid-answer */
    uint64_t requests;        /* HTTP request heads complete, plus echo reads */
    uint64_t echo_reads;      /* of those: echo reads (each peek with new bytes) */
    uint64_t bytes_in;        /* bytes of requests (HTTP heads) and echo input consumed */
    uint64_t bytes_out;       /* bytes taken by evq_tcp_write */
    uint64_t answered_ok;     /* HTTP 200 answers started */
    uint64_t refused;         /* HTTP 4xx/5xx answers started */
    uint64_t short_writes;    /* writes that took less than offered: the queue was full */
    uint64_t read_pauses;     /* echo: reading stopped because the write queue was full */
    uint64_t head_timeouts;   /* 408 */
    uint64_t idle_timeouts;   /* closed for sending nothing in time */
    uint64_t send_timeouts;   /* dropped: the client stopped reading */
    uint64_t linger_timeouts; /* closing connections whose client never closed */
    uint64_t stale_events;    /* events whose connection had gone */
    uint64_t stop_closed;     /* closed by the stop at once: idle or reading */
    uint64_t stop_finished;   /* answers in flight at the stop that finished in the grace */
    uint64_t stop_cut;        /* answers in flight cut when the grace ended */
    uint64_t stats_lines;     /* stats lines made (printed when stats_out is set) */
    uint64_t reports;         /* per-loop reports sent through the channel */
} server_stats;

typedef struct server server;

/* Listen on every port asked for, then run the loops on threads of their
 * own. EVQ_EINVAL for a bad config, EVQ_ENOTSUP for per-thread on Windows,
 * or what failed (EVQ_EADDRINUSE...). */
int server_start(const server_config *config, server **out);

/* The port a protocol listens on (0 if it is not served). */
uint16_t server_port(const server *s, enum server_protocol protocol);

/* The counters now, summed over the loops. Any thread. */
void server_get_stats(server *s, server_stats *out);
uint64_t server_open_now(server *s);

/* The term flag: set it and wake every queue. Any thread, a signal-handling
 * thread or Windows' console handler included; calling it again is
 * harmless. */
void server_request_stop(server *s);

/* Tests: one full turn of every loop after this call (a message through
 * each loop's channel, answered twice), so that a clock the test moved has
 * been looked at and whatever fell due has been handled. */
int server_sync(server *s);

/* Tests: wake every queue (a loop that sleeps until a deadline on a clock
 * the test moved looks at it again). */
int server_wake(server *s);

/* server_request_stop, wait for the loops to finish, close everything and
 * free it. *totals (may be NULL) gets the last counters. 0, or the error
 * that ended a loop early. NULL is ignored. */
int server_stop(server *s, server_stats *totals);

/* The body of /bytes/N: out[i] is byte offset + i of every such body. */
void http_body_pattern(uint64_t offset, unsigned char *out, size_t length);

#endif

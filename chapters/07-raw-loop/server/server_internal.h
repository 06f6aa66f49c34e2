/* server_internal.h - what server.c (the machinery: loops, listeners, the
 * connection table, deadlines, the stop, the stats) shares with the two
 * protocols, echo.c and http.c. Not for programs: they use server.h.
 */
#ifndef SERVER_INTERNAL_H
#define SERVER_INTERNAL_H

#include "server.h"

#include "http_parse.h"
#include "raw_loop.h"

#include "evq_thread.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

enum { CHUNK = 64 * 1024 };        /* a piece of a /bytes body, made on demand */
enum { LATENCY_BUCKETS = 64 * 4 }; /* powers of two, four steps each */
enum connection_state { READING, WRITING, CLOSING };

/* What a protocol's turn asks for next. The dispatcher (server.c) does it,
 * as the very last thing it does with the connection: once a connection is
 * re-armed, its next event may already be with another loop of a shared
 * queue, so nothing may touch it after. Negative: an EVQ_E* error, and the
 * connection is closed. */
enum next_step {
    NEXT_READABLE = EVQ_READABLE, /* arm for READABLE */
    NEXT_WRITABLE = EVQ_WRITABLE, /* arm for WRITABLE */
    NEXT_CLOSE = 0x100,           /* close it now */
};

/* ANCHOR: connection */
/* One connection's state between loop turns: the bytes of a partial request
 * are not here - they stay in the stream's read buffer, where evq_tcp_peek
 * shows them again next turn - only positions and what the answer is. */
struct connection {
    evq_tcp *stream;
    evq_token token; /* the table slot and its generation */
    enum server_protocol protocol;
    enum connection_state state;
    uint64_t request_at; /* the turn the request's bytes were read (latency) */
    uint64_t active_at;  /* echo: the last turn with progress (lazy deadlines) */
    bool in_grace;       /* the stop found it busy: it may finish within the grace */
    /* HTTP, READING: the parse position, and the head's deadline base. */
    http_parser parser;
    size_t shown;      /* bytes of this head the parser has had */
    bool head_started; /* some bytes of a request are here */
    uint64_t since;    /* the accept, or the end of the previous answer */
    bool idle;         /* no byte of the next head yet: the idle deadline applies */
    /* HTTP, WRITING: the answer is prefix[] followed by pattern_length bytes. */
    char prefix[512];
    size_t prefix_length;
    uint64_t pattern_length;
    uint64_t taken; /* bytes of the answer that evq_tcp_write took */
    bool close_after;
    size_t lingered; /* CLOSING: bytes read and dropped */
};
/* ANCHOR_END: connection */

/* The token -> connection table of one queue, with the queue's listeners.
 * We choose the tokens: a token is an index into `slots` (low half) and the
 * slot's generation (high half), bumped when the slot is freed, so an event
 * for a closed connection is recognised and dropped. Per-thread design: one
 * table per loop, never locked. Shared design: one table that every loop of
 * the queue uses, under `lock`. */
struct slot {
    uint32_t generation; /* never 0: generation 0 is the listeners' */
    uint32_t next_free;
    struct connection *connection; /* NULL when free */
};

struct table {
    bool locked; /* shared design: lock around every use */
    evq_mutex lock;
    evq_poll *poll;
    raw_channel inbox; /* the queue's channel: reports to the stats, test syncs */
    evq_tcp *listener[SERVER_PROTOCOLS];
    bool listeners_paused; /* max_connections are open: not re-armed */
    struct slot *slots;
    uint32_t capacity, free_head, open;
    bool stop_walked; /* the stop has closed the listeners and woken every connection */
    bool shut_down;   /* evq_poll_shutdown done: every loop on the queue returns */
};

/* One counter per field of server_stats, written by its loop only (a load
 * and a store, no locked instruction) and read by anyone. */
#define STAT(field)        (offsetof(server_stats, field) / sizeof(uint64_t))
#define STAT_FIELDS        (sizeof(server_stats) / sizeof(uint64_t))
#define COUNT(w, field, n) worker_count((w), STAT(field), (n))

/* One loop thread. */
struct worker {
    struct server *server;
    struct table *table;
    unsigned index;
    raw_loop loop;
    evq_thread thread;
    int result;
    atomic_uint_least64_t count[STAT_FIELDS];
    /* The stats interval's own numbers, sent to the stats each interval. */
    uint64_t interval_requests, interval_in, interval_out;
    uint32_t latency[LATENCY_BUCKETS]; /* this interval's latencies, log-scaled */
    bool stop_begun;                   /* on_stop has run once */
    atomic_uint pings;                 /* test syncs answered */
    unsigned char chunk[CHUNK];
};

struct server {
    server_config config;
    unsigned queues; /* per-thread: threads; shared: 1 */
    struct table *tables;
    struct worker *workers;
    uint16_t port[SERVER_PROTOCOLS];
    atomic_bool stop;              /* the term flag */
    atomic_uint_least64_t stop_at; /* when it was set (the config's clock) */
    /* The stats: reports from every loop, summed until all are in. */
    evq_mutex report_lock;
    uint64_t report_sum[4];
    uint64_t report_p99;
    uint64_t reported; /* bit i: loop i has reported this interval */
    uint64_t lines;
};

static inline void worker_count(struct worker *w, size_t field, uint64_t n)
{
    uint64_t v = atomic_load_explicit(&w->count[field], memory_order_relaxed);
    atomic_store_explicit(&w->count[field], v + n, memory_order_relaxed);
}

/* A request, bytes in, bytes out: into the totals and this interval's numbers. */
static inline void count_request(struct worker *w)
{
    COUNT(w, requests, 1);
    w->interval_requests++;
}

static inline void count_in(struct worker *w, uint64_t n)
{
    COUNT(w, bytes_in, n);
    w->interval_in += n;
}

static inline void count_out(struct worker *w, uint64_t n)
{
    COUNT(w, bytes_out, n);
    w->interval_out += n;
}

/* server.c, for the protocols. */
uint64_t worker_now(const struct worker *w);
bool server_stopping(const struct server *s);
/* A deadline for the connection, through the stop's rule: once the server
 * stops, none lasts past the grace, and a connection the stop has not met
 * yet gets 0 (its next event applies the stop). */
int connection_deadline(struct worker *w, struct connection *c, int timeout_ms);
/* Shut down writing and linger (shared by both protocols). */
int connection_begin_close(struct worker *w, struct connection *c);
int connection_linger(struct worker *w, struct connection *c);
void record_latency(struct worker *w, uint64_t since);

/* The protocols: a new connection (its first step), and an event. */
int echo_start(struct worker *w, struct connection *c);
int echo_event(struct worker *w, struct connection *c, uint32_t ready);
int http_start(struct worker *w, struct connection *c);
int http_event(struct worker *w, struct connection *c, uint32_t ready);
/* Whether an answer is in flight (the stop gives it the grace). */
bool echo_busy(const struct connection *c);
bool http_busy(const struct connection *c);

#endif

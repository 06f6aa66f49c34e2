/* http_server.h - the chapter's HTTP/1.1 server, on one thread with one
 * evq queue: requests that arrive in pieces are parsed across loop turns,
 * large answers are written as fast as the client reads them and no faster,
 * and every state a connection can be in has a deadline, so that no client
 * can hold the server's memory for ever by doing nothing (slowloris).
 *
 * Routes (GET and HEAD):
 *   /          a short text
 *   /bytes/N   N bytes (N <= HTTP_SERVER_MAX_BYTES) of http_body_pattern():
 *              large answers, so the write queue fills and writes are partial
 *   otherwise  404
 * A malformed head gets 400, a head over max_head gets 431, another method
 * 405, HTTP/2 505 - each with a one-line reason as the body - and then the
 * connection is closed cleanly. Keep-alive and pipelined requests are
 * served in order, one at a time.
 *
 * Deadlines (each a per-stream deadline of the queue, evq_tcp_set_deadline):
 *   head    the whole request head within head_timeout_ms of the accept or
 *           of the end of the previous answer, however its bytes trickle
 *           in - else 408 and close (a connection that sent nothing is
 *           closed without a word);
 *   idle    a kept-alive connection that sends nothing for idle_timeout_ms
 *           after an answer is closed (when shorter than the head's);
 *   send    an answer that makes no progress for send_timeout_ms - the
 *           client stopped reading - is dropped, and its memory with it;
 *   linger  a closing connection waits linger_timeout_ms at most for the
 *           client to close its side.
 *
 * Tests start it in-process on port 0 with http_server_start (it runs on a
 * thread of its own) and stop it with http_server_stop; the program
 * ch06_server_<backend> does the same from the command line.
 */
#ifndef HTTP_SERVER_H
#define HTTP_SERVER_H

#include "evq.h"
#include "evq_clock.h"

#include <stddef.h>
#include <stdint.h>

#define HTTP_SERVER_DEFAULT_MAX_HEAD        8192u
#define HTTP_SERVER_DEFAULT_MAX_CONNECTIONS 4096u
#define HTTP_SERVER_MAX_BYTES               (UINT64_C(64) << 20) /* the most /bytes/N serves */
#define HTTP_SERVER_DEFAULT_HEAD_TIMEOUT    10000u /* ms, as the delay server's --header-timeout */
#define HTTP_SERVER_DEFAULT_IDLE_TIMEOUT    5000u  /* ms, as Apache's KeepAliveTimeout */
#define HTTP_SERVER_DEFAULT_SEND_TIMEOUT    30000u /* ms */
#define HTTP_SERVER_DEFAULT_LINGER_TIMEOUT  2000u  /* ms */

typedef struct http_server http_server;

typedef struct http_server_config {
    const char *host;         /* address to listen on; "127.0.0.1" by default */
    uint16_t port;            /* 0: any free port (see http_server_port) */
    int backlog;              /* listen() backlog, > 0 */
    size_t max_head;          /* the largest request head accepted (else 431), > 0 */
    uint32_t max_connections; /* open at once; more wait in the backlog, > 0 */
    evq_tcp_limits limits;    /* every connection's buffers; read_max must exceed max_head */
    uint32_t head_timeout_ms; /* the deadlines above, each > 0 */
    uint32_t idle_timeout_ms;
    uint32_t send_timeout_ms;
    uint32_t linger_timeout_ms;
    evq_clock clock; /* the queue's clock and the server's: a test injects a fake one */
} http_server_config;

/* The defaults: 127.0.0.1, port 0, backlog 1024, 8 KiB heads, 4096
 * connections, evq_tcp_get_default_limits, the HTTP_SERVER_DEFAULT_*
 * deadlines, the system's monotonic clock. */
void http_server_config_init(http_server_config *config);

/* What the server has done. Counters only grow; the "now" fields are gauges. */
typedef struct http_server_stats {
    uint64_t accepted;        /* connections accepted */
    uint64_t open_now;        /* connections open now */
    uint64_t open_peak;       /* the most open at once */
    uint64_t closed;          /* connections closed */
    uint64_t disconnected;    /* of those: the client left mid-request or mid-answer */
    uint64_t requests;        /* complete request heads */
    uint64_t answered_ok;     /* 200 answers started */
    uint64_t refused;         /* 4xx/5xx answers started (parser or route) */
    uint64_t heads_waiting;   /* connections holding part of a request head now */
    uint64_t parses;          /* calls to the parser (each on bytes the last one had not) */
    uint64_t resumed_parses;  /* of those: parses that stopped at "need more" */
    uint64_t bytes_searched;  /* request bytes the parser searched (each once) */
    uint64_t head_bytes;      /* request bytes consumed as heads */
    uint64_t bytes_written;   /* response bytes taken by evq_tcp_write */
    uint64_t short_writes;    /* writes that took less than offered: the queue was full */
    uint64_t stale_events;    /* events for a token whose connection had gone */
    uint64_t head_timeouts;   /* heads not complete in time: 408 */
    uint64_t idle_timeouts;   /* connections closed for sending nothing in time */
    uint64_t send_timeouts;   /* answers dropped: the client stopped reading */
    uint64_t linger_timeouts; /* closing connections whose client never closed */
    uint64_t waits;           /* evq_poll_wait calls that returned */
    uint64_t receive_calls;   /* recv/WSARecv calls of the connections closed so far */
    uint64_t send_calls;      /* send/WSASend calls of the connections closed so far */
    size_t write_queued_peak; /* the longest write queue of any connection */
    size_t write_high;        /* its limit, from the config */
} http_server_stats;

/* Listen, then serve on a new thread. EVQ_EINVAL for a bad config, or the
 * code of what failed (EVQ_EADDRINUSE...). */
int http_server_start(const http_server_config *config, http_server **out);

/* The port it listens on (useful with port 0). */
uint16_t http_server_port(const http_server *server);

/* A copy of the counters as of the end of the server's last loop turn. Any
 * thread. */
void http_server_get_stats(http_server *server, http_server_stats *out);

/* Make the loop go round once (evq_poll_wake): a test that moved an
 * injected clock wakes it to look at its deadlines. Any thread. */
int http_server_wake(http_server *server);

/* Ask the loop to stop (a flag, then evq_poll_wake), wait for it, close
 * every connection and free everything. *final_stats (may be NULL) gets
 * the last counters. Returns 0, or the error that ended the loop early.
 * NULL is ignored. */
int http_server_stop(http_server *server, http_server_stats *final_stats);

/* The body of /bytes/N: out[i] is byte offset + i of every such body. */
void http_body_pattern(uint64_t offset, unsigned char *out, size_t length);

#endif

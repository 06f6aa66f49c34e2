/* evq_delay_server.h - the book's delay server, embedded in a process.
 *
 * An HTTP/1.1 server on 127.0.0.1: `GET /{delay_ms}/{message}` answers
 * `200 OK` with the body `message` (percent-decoded) after `delay_ms`
 * milliseconds, counted from the moment the request head is complete. It is
 * the slow peer that the book's client demos and many tests talk to. It is
 * deliberately not built on any chapter's queue: it uses poll()/WSAPoll on
 * one thread of its own.
 *
 * Bad input gets an answer, never a crash:
 *   malformed request line or path -> 400 with a one-line reason in the body
 *   delay above max_delay_ms         -> 400
 *   request head over 8 KiB          -> 431
 *   a method other than GET          -> 405
 *   an HTTP major version other than 1 -> 505
 *   a request head not complete header_timeout_ms after the connection was
 *     accepted, or after the answer before it was sent -> connection closed
 *     (with a 408 if it had sent part of a request; an idle keep-alive
 *     connection is closed silently). The deadline is for the whole head,
 *     as nginx's client_header_timeout: bytes that trickle in do not move
 *     it, so a client sending a byte a second cannot hold a connection.
 * After an error response the connection is closed.
 *
 * Connections: HTTP/1.1 keeps the connection open unless the request says
 * `Connection: close`; HTTP/1.0 closes it unless the request says
 * `Connection: keep-alive`. Pipelined requests are answered in the order
 * they came, one at a time: the next one's delay starts when the answer
 * before it has been sent. The end of the client's stream (a half-close,
 * shutdown(SHUT_WR), as `nc -N` does) means "no more requests": every
 * request received before it is still answered, in order, delayed ones
 * too, and then the connection is closed. A client that closed its socket
 * looks the same until an answer is written to it. A client that resets
 * the connection has gone away: its answer is dropped and the
 * `disconnected` counter goes up, as it does for a request cut off by the
 * end of the stream. An answer the client does not read for
 * header_timeout_ms (its socket buffers full) is abandoned.
 * Lines may end in CRLF or a bare LF; a CR anywhere else is rejected. The
 * path is visible ASCII (other bytes percent-encoded); header values may
 * not hold control characters other than HTAB - the same byte rules as
 * chapter 3's parser. The details of the grammar are in
 * common/delayserver/delay_http.h.
 *
 * Response: `HTTP/1.1 200 OK`, `Content-Type: text/plain`, `Content-Length`,
 * `Connection: keep-alive` or `close`, then the message bytes.
 */
#ifndef EVQ_DELAY_SERVER_H
#define EVQ_DELAY_SERVER_H

#include "evq_clock.h"

#include <stddef.h>
#include <stdint.h>

#define EVQ_DELAY_SERVER_MAX_HEAD                  8192
#define EVQ_DELAY_SERVER_DEFAULT_MAX_DELAY_MS      60000u
#define EVQ_DELAY_SERVER_DEFAULT_HEADER_TIMEOUT_MS 10000u
#define EVQ_DELAY_SERVER_DEFAULT_MAX_CLIENTS       4096u

typedef struct evq_delay_server evq_delay_server;

typedef struct evq_delay_server_config {
    uint16_t port;              /* 0: pick a free port (read it with evq_delay_server_port) */
    uint32_t max_delay_ms;      /* 0: EVQ_DELAY_SERVER_DEFAULT_MAX_DELAY_MS */
    uint32_t header_timeout_ms; /* 0: EVQ_DELAY_SERVER_DEFAULT_HEADER_TIMEOUT_MS */
    uint32_t max_clients;       /* 0: EVQ_DELAY_SERVER_DEFAULT_MAX_CLIENTS */
    /* Every deadline (delays, the head deadline, stalls, lingering) is read
     * from this clock; {NULL}: the monotonic clock. The server thread calls
     * it, so an injected clock must be safe to read from another thread. A
     * test that moves its clock forward must then make the server look (send
     * it a byte): the server sleeps in poll() for the time its clock said was
     * left. */
    evq_clock clock;
} evq_delay_server_config;

/* Fill a config with the defaults (port 0). */
void evq_delay_server_config_init(evq_delay_server_config *config);

/* Bind 127.0.0.1:config->port, start the server thread, and return once it
 * accepts connections. config may be NULL for the defaults. Returns 0, or
 * EVQ_EINVAL (out is NULL), EVQ_EADDRINUSE, EVQ_ENOMEM or another socket
 * error. */
int evq_delay_server_start(const evq_delay_server_config *config, evq_delay_server **out);

/* The port the server listens on. */
uint16_t evq_delay_server_port(const evq_delay_server *server);

/* Stop accepting, close every connection (pending delayed answers are
 * dropped), join the server thread and free everything. NULL is ignored. */
void evq_delay_server_stop(evq_delay_server *server);

/* Counters, for tests and the CLI's summary. Safe from any thread; each
 * counter is updated by the server thread as it goes, so a test that waits
 * for one polls it. */
typedef struct evq_delay_server_stats {
    uint64_t accepted;     /* connections accepted */
    uint64_t answered;     /* 200 responses (counted when their delay has passed) */
    uint64_t rejected;     /* error responses: 400, 405, 431, 505 */
    uint64_t timed_out;    /* closed by the head deadline, or by a stalled answer */
    uint64_t open;         /* connections open right now */
    uint64_t peak_open;    /* most connections open at once */
    uint64_t disconnected; /* clients that reset before their answer, or ended mid-request */
    uint64_t received;     /* request bytes read (a test that injects a clock waits on it) */
} evq_delay_server_stats;

void evq_delay_server_get_stats(evq_delay_server *server, evq_delay_server_stats *out);

/* A blocking client for tests and demos: one request on a fresh connection,
 * the whole response (status line, headers, body) into response[capacity],
 * NUL-terminated. Returns 0 or an EVQ_E* code. The parsed status and a
 * pointer to the body inside `response` are optional outputs.
 *
 * The message is percent-encoded (every byte but A-Z a-z 0-9 - . _ ~), the
 * request says `Connection: close`, and the response is read until its
 * Content-Length is complete or the server closes. An error status (400...)
 * is a successful call with *status set. Errors: EVQ_EINVAL (NULL message or
 * response, capacity 0), EVQ_EMSGSIZE (the response does not fit), EVQ_EOF
 * (the server closed before a whole response), EVQ_EIO (not an HTTP
 * response), EVQ_ETIMEDOUT (nothing for delay_ms + 15 s), socket errors. */
int evq_delay_client_get(uint16_t port, uint32_t delay_ms, const char *message, char *response,
                         size_t capacity, int *status, const char **body);

#endif

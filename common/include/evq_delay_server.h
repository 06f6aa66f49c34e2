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
 *   a client that sends nothing more for header_timeout_ms -> connection closed
 * After an error response the connection is closed.
 */
#ifndef EVQ_DELAY_SERVER_H
#define EVQ_DELAY_SERVER_H

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
} evq_delay_server_config;

/* Fill a config with the defaults (port 0). */
void evq_delay_server_config_init(evq_delay_server_config *config);

/* Bind 127.0.0.1:config->port, start the server thread, and return once it
 * accepts connections. config may be NULL for the defaults. */
int evq_delay_server_start(const evq_delay_server_config *config, evq_delay_server **out);

/* The port the server listens on. */
uint16_t evq_delay_server_port(const evq_delay_server *server);

/* Stop accepting, close every connection (pending delayed answers are
 * dropped), join the server thread and free everything. NULL is ignored. */
void evq_delay_server_stop(evq_delay_server *server);

/* Counters, for tests and the CLI's summary. */
typedef struct evq_delay_server_stats {
    uint64_t accepted;  /* connections accepted */
    uint64_t answered;  /* 200 responses sent */
    uint64_t rejected;  /* 4xx responses sent */
    uint64_t timed_out; /* connections closed by the header timeout */
    uint64_t open;      /* connections open right now */
    uint64_t peak_open; /* most connections open at once */
} evq_delay_server_stats;

void evq_delay_server_get_stats(evq_delay_server *server, evq_delay_server_stats *out);

/* A blocking client for tests and demos: one request on a fresh connection,
 * the whole response (status line, headers, body) into response[capacity],
 * NUL-terminated. Returns 0 or an EVQ_E* code. The parsed status and a
 * pointer to the body inside `response` are optional outputs. */
int evq_delay_client_get(uint16_t port, uint32_t delay_ms, const char *message, char *response,
                         size_t capacity, int *status, const char **body);

#endif

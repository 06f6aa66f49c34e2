/* delay_test_client.h - a raw HTTP client for the delay server's tests: send
 * any bytes, read responses one at a time (keep-alive and pipelining leave
 * the next one in the buffer), and wait for the server's counters. It is a
 * second, independent reading of the responses: the tests do not trust the
 * library's own client to check the server. */
#ifndef DELAY_TEST_CLIENT_H
#define DELAY_TEST_CLIENT_H

#include "evq_clock.h"
#include "evq_delay_server.h"
#include "evq_net.h"
#include "evq_thread.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct raw_connection {
    evq_socket socket;
    size_t length; /* bytes received and not yet returned */
    char buffer[65536];
} raw_connection;

typedef struct raw_response {
    int status;
    char head[1024]; /* status line and headers, NUL-terminated */
    size_t body_length;
    char body[EVQ_DELAY_SERVER_MAX_HEAD + 64]; /* NUL-terminated too */
    bool says_close;                           /* Connection: close */
} raw_response;

/* Connect to 127.0.0.1:port (blocking, with a 20 s receive timeout). The
 * connection is malloc'd: the buffer is large. */
int raw_connect(uint16_t port, raw_connection **out);
void raw_close(raw_connection *connection);
int raw_send(raw_connection *connection, const char *text);
int raw_send_bytes(raw_connection *connection, const void *data, size_t length);

/* shutdown(SHUT_WR) / SD_SEND: "no more requests", the socket stays open
 * for the answers (what `nc -N` does after its input ends). */
int raw_shutdown_sending(raw_connection *connection);

/* Read exactly one response. EVQ_EOF if the server closed first. */
int raw_read_response(raw_connection *connection, raw_response *response);

/* Read until the server closes: 0 if it closes with no more bytes (a reset
 * counts as closing too: some systems reset after a shutdown), EVQ_EMSGSIZE
 * if bytes came first, or the error. */
int raw_expect_closed(raw_connection *connection);

/* Whether a header line "name: value" is in the head (case-sensitive). */
bool raw_has_header(const raw_response *response, const char *line);

/* Wait (at most 20 s) until a counter reaches at least / at most a value;
 * returns the last value read. */
#define WAIT_STAT_AT_LEAST(server, field, value)                                                   \
    raw_wait_stat(server, offsetof(evq_delay_server_stats, field), value, true)
#define WAIT_STAT_AT_MOST(server, field, value)                                                    \
    raw_wait_stat(server, offsetof(evq_delay_server_stats, field), value, false)
uint64_t raw_wait_stat(evq_delay_server *server, size_t offset, uint64_t value, bool at_least);

/* Start a server with a small header timeout and this maximum delay (0:
 * the default). */
evq_delay_server *raw_start_server(uint32_t header_timeout_ms, uint32_t max_delay_ms);

/* A request for /{delay}/{message} as the library's client would send it,
 * and one check that the server answers it with 200 and the message. */
bool raw_server_still_answers(uint16_t port);

/* Make room for this many open descriptors (POSIX: raise RLIMIT_NOFILE's
 * soft limit up to the hard one). Returns false when it cannot. */
bool raw_allow_open_files(unsigned count);

/* A clock the test moves by hand and the server thread reads: a fake clock
 * behind a mutex (evq_fake_clock is for one thread only). */
typedef struct shared_clock {
    evq_mutex lock;
    uint64_t now;
} shared_clock;

int shared_clock_init(shared_clock *clock, uint64_t start_ns);
void shared_clock_destroy(shared_clock *clock);
evq_clock shared_clock_as_clock(shared_clock *clock);
void shared_clock_advance_ms(shared_clock *clock, uint64_t ms);

#endif

/* ch03_test.h - helpers the chapter 3 tests share: a stream connected to a
 * peer socket the test drives by hand, and bounded waits.
 *
 * Everything is static inline so that each test program takes only what it
 * uses (one executable per test source and backend).
 */
#ifndef CH02_TEST_H
#define CH02_TEST_H

#include "evq.h"
#include "evq_testing.h"

#include "evq_clock.h"
#include "evq_net.h"
#include "evq_test.h"
#include "evq_thread.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

/* A stream made by evq_tcp_connect on `poll`, and the blocking socket that
 * accepted it: the test writes, closes or resets the peer by hand. */
static inline int ch03_pair(evq_poll *poll, evq_tcp **stream, evq_socket *peer)
{
    evq_socket listener;
    uint16_t port;
    int rc = evq_net_listen_loopback(0, 8, &listener, &port);
    if (rc != 0)
        return rc;
    rc = evq_tcp_connect(poll, "127.0.0.1", port, stream);
    if (rc == 0 && (rc = evq_net_accept(listener, peer)) != 0) {
        evq_tcp_close(*stream);
        *stream = NULL;
    }
    evq_socket_close(listener);
    return rc;
}

/* Wait until at least one event arrives, for at most `limit_ms` in total.
 * Returns the number of events (0: none came in time). */
static inline size_t ch03_wait_some(evq_poll *poll, evq_event *events, size_t capacity,
                                    int limit_ms)
{
    uint64_t give_up = evq_clock_now_ns() + evq_ms_to_ns((uint64_t)limit_ms);
    size_t n = 0;
    while (n == 0 && evq_clock_now_ns() < give_up) {
        int rc = evq_poll_wait(poll, events, capacity, 100, &n);
        if (rc != 0) {
            CHECK_OK(rc);
            return 0;
        }
    }
    return n;
}

/* Wait for exactly one event (capacity 1), at most `limit_ms`. */
static inline bool ch03_wait_one(evq_poll *poll, evq_event *event, int limit_ms)
{
    return ch03_wait_some(poll, event, 1, limit_ms) == 1;
}

/* Read everything the stream has now into buf[*len ..]: until
 * EVQ_EWOULDBLOCK (returned as 0) or a final code (EVQ_EOF, an error). */
static inline int ch03_read_available(evq_tcp *stream, char *buf, size_t capacity, size_t *len)
{
    for (;;) {
        size_t n = 0;
        if (*len == capacity)
            return EVQ_EMSGSIZE;
        int rc = evq_tcp_read(stream, buf + *len, capacity - *len, &n);
        if (rc == EVQ_EWOULDBLOCK)
            return 0;
        if (rc != 0)
            return rc;
        *len += n;
    }
}

#endif

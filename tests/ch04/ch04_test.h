/* ch04_test.h - helpers the chapter 3 tests share: a stream connected to a
 * peer socket the test drives by hand, bounded waits, a byte pattern that
 * shows loss, duplication and reordering, and small limits.
 *
 * Everything is static inline so that each test program takes only what it
 * uses (one executable per test source and backend).
 */
#ifndef CH04_TEST_H
#define CH04_TEST_H

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
static inline int ch04_pair(evq_poll *poll, evq_tcp **stream, evq_socket *peer)
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
static inline size_t ch04_wait_some(evq_poll *poll, evq_event *events, size_t capacity,
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
static inline bool ch04_wait_one(evq_poll *poll, evq_event *event, int limit_ms)
{
    return ch04_wait_some(poll, event, 1, limit_ms) == 1;
}

/* Read everything the stream has now into buf[*len ..]: until
 * EVQ_EWOULDBLOCK (returned as 0) or a final code (EVQ_EOF, an error). */
static inline int ch04_read_available(evq_tcp *stream, char *buf, size_t capacity, size_t *len)
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

/* Byte `i` of a test stream: depends on the position, so a lost, doubled or
 * reordered byte anywhere changes what is seen from then on. */
static inline unsigned char ch04_pattern(uint64_t i)
{
    uint64_t x = (i + 1) * UINT64_C(0x9E3779B97F4A7C15);
    x ^= x >> 29;
    return (unsigned char)(x >> 11);
}

static inline void ch04_pattern_fill(unsigned char *buf, size_t len, uint64_t offset)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = ch04_pattern(offset + i);
}

/* Index of the first byte of buf that is not the pattern at `offset`, or len. */
static inline size_t ch04_pattern_mismatch(const unsigned char *buf, size_t len, uint64_t offset)
{
    for (size_t i = 0; i < len; i++) {
        if (buf[i] != ch04_pattern(offset + i))
            return i;
    }
    return len;
}

/* Limits small enough for a test to reach every edge quickly. */
static inline evq_tcp_limits ch04_limits(size_t read_initial, size_t read_max, size_t write_high,
                                         size_t write_low)
{
    evq_tcp_limits limits;
    evq_tcp_get_default_limits(&limits);
    limits.read_initial = read_initial;
    limits.read_max = read_max;
    limits.write_high = write_high;
    limits.write_low = write_low;
    return limits;
}

static inline evq_tcp_stats ch04_stats(const evq_tcp *stream)
{
    evq_tcp_stats stats;
    memset(&stats, 0, sizeof stats);
    CHECK_OK(evq_tcp_get_stats(stream, &stats));
    return stats;
}

/* Send `len` pattern bytes from `offset` on a blocking socket. */
static inline int ch04_send_pattern(evq_socket peer, size_t len, uint64_t offset)
{
    unsigned char chunk[4096];
    while (len > 0) {
        size_t part = len < sizeof chunk ? len : sizeof chunk;
        ch04_pattern_fill(chunk, part, offset);
        int rc = evq_net_send_all(peer, chunk, part);
        if (rc != 0)
            return rc;
        offset += part;
        len -= part;
    }
    return 0;
}

#endif

/* ch04_test.h - helpers the chapter 4 tests share: a stream connected to a
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

/* The token ch04_wait_connected arms with: no test uses it for a stream. */
#define CH04_CONNECT_TOKEN UINT64_C(0xC044EC7)

/* evq_tcp_connect returns before the connection is made: the connect ends
 * during evq_poll_wait, which reports it as WRITABLE. Arm the stream for
 * it, wait, and deregister it again, so that a test starts from a
 * connected, unregistered stream as chapter 3's connect gave it. Call it
 * while no other stream is armed (it would take their events). Returns 0,
 * or the connect's error. */
static inline int ch04_wait_connected(evq_poll *poll, evq_tcp *stream)
{
    int rc = evq_register(poll, stream, CH04_CONNECT_TOKEN, EVQ_WRITABLE);
    if (rc != 0)
        return rc;
    evq_event event;
    if (!ch04_wait_one(poll, &event, 10000)) {
        evq_deregister(poll, stream);
        return EVQ_ETIMEDOUT;
    }
    if (event.token != CH04_CONNECT_TOKEN)
        return EVQ_EIO; /* another stream's event: the helper was misused */
    rc = evq_deregister(poll, stream);
    if (rc == 0 && (event.ready & EVQ_ERR)) {
        char byte;
        size_t n = 0;
        rc = evq_tcp_read(stream, &byte, 1, &n); /* the connect's error */
    }
    return rc;
}

/* A stream made by evq_tcp_connect on `poll`, connected, and the blocking
 * socket that accepted it: the test writes, closes or resets the peer by
 * hand. */
static inline int ch04_pair(evq_poll *poll, evq_tcp **stream, evq_socket *peer)
{
    evq_socket listener;
    uint16_t port;
    int rc = evq_net_listen_loopback(0, 8, &listener, &port);
    if (rc != 0)
        return rc;
    /* The kernel completes the handshake from the backlog: connected
     * first, then accepted, so that a broken connect fails here instead of
     * leaving the accept blocked. */
    rc = evq_tcp_connect(poll, "127.0.0.1", port, stream);
    if (rc == 0 && (rc = ch04_wait_connected(poll, *stream)) == 0)
        rc = evq_net_accept(listener, peer);
    if (rc != 0 && *stream) {
        evq_tcp_close(*stream);
        *stream = NULL;
    }
    evq_socket_close(listener);
    return rc;
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

/* A listener that never accepts, with a backlog of 0 already filled by
 * non-blocking connects: a connect to it stalls in the handshake (its SYN
 * is dropped, and retried for minutes), as one to an address nobody
 * answers does - but on loopback, made here, never an outside address. */
#define CH04_FILLERS 4
typedef struct ch04_stalled {
    evq_socket listener;
    evq_socket fillers[CH04_FILLERS];
    uint16_t port;
} ch04_stalled;

static inline int ch04_stall_open(ch04_stalled *stall)
{
    for (int i = 0; i < CH04_FILLERS; i++)
        stall->fillers[i] = EVQ_INVALID_SOCKET;
    int rc = evq_net_listen_loopback(0, 0, &stall->listener, &stall->port);
    if (rc != 0)
        return rc;
    struct sockaddr_in to;
    memset(&to, 0, sizeof to);
    to.sin_family = AF_INET;
    to.sin_port = htons(stall->port);
    to.sin_addr.s_addr = htonl(0x7f000001);
    for (int i = 0; i < CH04_FILLERS && rc == 0; i++) {
        evq_socket s = socket(AF_INET, SOCK_STREAM, IPPROTO_TCP);
        if (s == EVQ_INVALID_SOCKET)
            return evq_socket_last_error();
        stall->fillers[i] = s;
        if ((rc = evq_socket_set_nonblocking(s, true)) == 0 &&
            connect(s, (const struct sockaddr *)&to, sizeof to) != 0) {
            rc = evq_socket_last_error(); /* in progress: the backlog takes it, or drops it */
            if (rc == EVQ_EINPROGRESS || rc == EVQ_EWOULDBLOCK)
                rc = 0;
        }
    }
    evq_sleep_ms(20); /* let loopback deliver their SYNs: the queue is full before ours */
    return rc;
}

static inline void ch04_stall_close(ch04_stalled *stall)
{
    for (int i = 0; i < CH04_FILLERS; i++) {
        if (stall->fillers[i] != EVQ_INVALID_SOCKET)
            evq_socket_close(stall->fillers[i]);
    }
    evq_socket_close(stall->listener);
}

/* Time for deadline tests, without sleeping: the queue reads a fake clock,
 * and each kernel wait only looks (timeout 0) while the clock jumps by the
 * timeout the queue asked for - as if it had slept that long and nothing
 * had happened. A wait with no timeout (-1) jumps `endless_jump_ms`. The
 * timeouts asked for are kept, in order. */
#define CH04_TIMEOUTS_KEPT 32
typedef struct ch04_time {
    evq_fake_clock clock;
    int endless_jump_ms;
    int waits;                     /* kernel waits so far */
    int asked[CH04_TIMEOUTS_KEPT]; /* the timeout of each (-1: none) */
} ch04_time;

static inline int ch04_time_hook(void *context, int *timeout_ms)
{
    ch04_time *time = (ch04_time *)context;
    if (time->waits < CH04_TIMEOUTS_KEPT)
        time->asked[time->waits] = *timeout_ms;
    time->waits++;
    int jump = *timeout_ms >= 0 ? *timeout_ms : time->endless_jump_ms;
    evq_fake_clock_advance_ms(&time->clock, (uint64_t)jump);
    *timeout_ms = 0;
    return 0;
}

/* Install the fake clock (at 1000 s) and the hook: before any deadline is
 * set or any name looked up. */
static inline void ch04_time_install(evq_poll *poll, ch04_time *time)
{
    memset(time, 0, sizeof *time);
    time->endless_jump_ms = 1000;
    evq_fake_clock_set_ns(&time->clock, 1000 * EVQ_NS_PER_S);
    evq_poll_set_clock(poll, evq_fake_clock_as_clock(&time->clock));
    evq_poll_set_wait_hook(poll, ch04_time_hook, time);
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

/* test_read.c - chapter 3: the read side of a buffered stream - a fill that
 * goes on until the socket would block, a buffer that starts small, grows
 * to read_max and no further and shrinks when emptied, interrupted and
 * short receives, a reset after data, and EOF from a peer that only shut
 * down its writing half.
 */
#include "ch06_test.h"

#ifndef _WIN32
#include <sys/socket.h>
#define SHUT_WRITE SHUT_WR
#else
#define SHUT_WRITE SD_SEND
#endif

/* Wait (at most 5 s) for READABLE on a registered stream, then re-arm. */
static bool readable(evq_poll *poll, evq_tcp *stream)
{
    evq_event event;
    if (!ch06_wait_one(poll, &event, 5000))
        return false;
    CHECK_UINT(event.ready & EVQ_READABLE, ==, EVQ_READABLE);
    CHECK_OK(evq_reregister(poll, stream, 1, EVQ_READABLE));
    return true;
}

/* Read `total` pattern bytes (from `offset` in the pattern) through
 * peek/consume, waiting as needed, and check every one. Returns the bytes
 * read. */
static size_t read_pattern(evq_poll *poll, evq_tcp *stream, size_t offset, size_t total,
                           size_t max_capacity)
{
    size_t done = 0;
    for (int round = 0; round < 100000 && done < total; round++) {
        const void *data;
        size_t len;
        int rc = evq_tcp_peek(stream, &data, &len);
        if (rc == EVQ_EWOULDBLOCK) {
            if (!readable(poll, stream))
                break;
            continue;
        }
        if (!CHECK_OK(rc) || !CHECK_UINT(ch06_pattern_mismatch(data, len, offset + done), ==, len))
            break;
        CHECK_UINT(ch06_stats(stream).read_capacity, <=, max_capacity);
        done += len;
        if (!CHECK_OK(evq_tcp_consume(stream, len)))
            break;
    }
    return done;
}

/* One READABLE, one peek: what was in the socket is there, read in as many
 * receives as the buffer took to grow. Catches the chapter-2 read (one recv
 * per call), which would show only read_initial bytes. Chapter 5 stops a
 * fill at a short receive (epoll(7): the socket was empty at that moment),
 * and reading opens the peer's window: bytes it sends then come with an
 * edge of their own - so the rest may come in a second event, and every
 * byte arrives, in order. */
EVQ_TEST(a_fill_reads_until_the_socket_would_block)
{
    enum { SENT = 48 * 1024 };
    evq_poll *poll;
    evq_tcp *stream;
    evq_socket peer;
    REQUIRE_OK(evq_poll_open(&poll));
    REQUIRE_OK(ch06_pair(poll, &stream, &peer));
    REQUIRE_OK(evq_register(poll, stream, 1, EVQ_READABLE));
    REQUIRE_OK(ch06_send_pattern(peer, SENT, 0));
    evq_sleep_ms(20); /* loopback: every byte lands in the receive queue */
    evq_event event;
    REQUIRE(ch06_wait_one(poll, &event, 5000));
    const void *data;
    size_t len = 0;
    REQUIRE_OK(evq_tcp_peek(stream, &data, &len));
    CHECK_UINT(len, >, 4 * 4096); /* several receives into a growing buffer */
    CHECK_UINT(ch06_pattern_mismatch(data, len, 0), ==, len);
    evq_tcp_stats stats = ch06_stats(stream);
    CHECK_UINT(stats.read_buffered, ==, len);
    /* 4 + 4 + 8 + 16 ... KiB as the buffer doubled. */
    CHECK_UINT(stats.receive_calls, >=, 4);
    size_t got = len;
    REQUIRE_OK(evq_tcp_consume(stream, len));
    while (got < SENT) {
        REQUIRE_OK(evq_reregister(poll, stream, 1, EVQ_READABLE));
        REQUIRE(ch06_wait_one(poll, &event, 5000));
        REQUIRE_OK(evq_tcp_peek(stream, &data, &len));
        CHECK_UINT(ch06_pattern_mismatch(data, len, got), ==, len);
        REQUIRE_OK(evq_tcp_consume(stream, len));
        got += len;
    }
    CHECK_UINT(got, ==, SENT);
    evq_tcp_close(stream);
    evq_socket_close(peer);
    evq_poll_close(poll);
}

/* Start small, grow to read_max and no further, shrink once idle.
 * Catches an unbounded buffer (the 40000 bytes in one block), one that
 * never grows (never reaches 8192), and one that never shrinks. Emptied
 * while more waits in the socket it keeps its size (shrink when idle:
 * test_readiness.c has the cases). */
EVQ_TEST(the_buffer_grows_to_read_max_and_no_further)
{
    enum { SENT = 40000, INITIAL = 1024, MAX = 8192 };
    evq_poll *poll;
    evq_tcp *stream;
    evq_socket peer;
    REQUIRE_OK(evq_poll_open(&poll));
    REQUIRE_OK(ch06_pair(poll, &stream, &peer));
    evq_tcp_limits limits = ch06_limits(INITIAL, MAX, 1 << 20, 1 << 18);
    REQUIRE_OK(evq_tcp_set_limits(stream, &limits));
    CHECK_UINT(ch06_stats(stream).read_capacity, ==, 0); /* never read: costs nothing */
    REQUIRE_OK(evq_register(poll, stream, 1, EVQ_READABLE));
    REQUIRE_OK(ch06_send_pattern(peer, SENT, 0));
    evq_sleep_ms(20);
    REQUIRE(readable(poll, stream));

    const void *data;
    size_t len = 0;
    REQUIRE_OK(evq_tcp_peek(stream, &data, &len));
    CHECK_UINT(len, ==, MAX); /* full at read_max: the rest waits in the kernel */
    CHECK_UINT(ch06_pattern_mismatch(data, len, 0), ==, len);
    evq_tcp_stats stats = ch06_stats(stream);
    CHECK_UINT(stats.read_capacity, ==, MAX);
    REQUIRE_OK(evq_tcp_consume(stream, len));
    CHECK_UINT(ch06_stats(stream).read_capacity, ==, MAX); /* emptied, not idle: kept */

    CHECK_UINT(MAX + read_pattern(poll, stream, MAX, SENT - MAX, MAX), ==, SENT);
    stats = ch06_stats(stream);
    CHECK_UINT(stats.read_capacity_peak, ==, MAX);
    CHECK_UINT(stats.read_capacity, ==, INITIAL); /* what an idle stream keeps */
    CHECK_UINT(stats.read_buffered, ==, 0);
    evq_tcp_close(stream);
    evq_socket_close(peer);
    evq_poll_close(poll);
}

/* A few unread bytes at the end of a full block are moved to the front
 * instead of doubling the block. Catches growth without compaction. */
EVQ_TEST(unread_bytes_move_to_the_front_before_the_buffer_grows)
{
    enum { INITIAL = 4096 };
    evq_poll *poll;
    evq_tcp *stream;
    evq_socket peer;
    REQUIRE_OK(evq_poll_open(&poll));
    REQUIRE_OK(ch06_pair(poll, &stream, &peer));
    evq_tcp_limits limits = ch06_limits(INITIAL, 65536, 1 << 20, 1 << 18);
    REQUIRE_OK(evq_tcp_set_limits(stream, &limits));
    REQUIRE_OK(evq_register(poll, stream, 1, EVQ_READABLE));
    /* Less than a block: a block found full would grow at once, to see
     * whether more is waiting (a fill goes on until EAGAIN). */
    enum { FIRST = INITIAL - 100, KEPT = 96 };
    REQUIRE_OK(ch06_send_pattern(peer, FIRST, 0));
    evq_sleep_ms(20);
    REQUIRE(readable(poll, stream));
    const void *data;
    size_t len = 0;
    REQUIRE_OK(evq_tcp_peek(stream, &data, &len));
    REQUIRE_UINT(len, ==, FIRST);
    REQUIRE_OK(evq_tcp_consume(stream, FIRST - KEPT)); /* a parser kept 96 bytes */

    /* 100 bytes fit at the end; then the block is full with 196 unread. */
    REQUIRE_OK(ch06_send_pattern(peer, 3000, FIRST));
    evq_sleep_ms(20);
    REQUIRE(readable(poll, stream));
    REQUIRE_OK(evq_tcp_peek(stream, &data, &len));
    CHECK_UINT(len, ==, KEPT + 3000);
    CHECK_UINT(ch06_pattern_mismatch(data, len, FIRST - KEPT), ==, len);
    CHECK_UINT(ch06_stats(stream).read_capacity, ==, INITIAL);
    evq_tcp_close(stream);
    evq_socket_close(peer);
    evq_poll_close(poll);
}

EVQ_TEST(peek_then_consume_keeps_the_rest)
{
    evq_poll *poll;
    evq_tcp *stream;
    evq_socket peer;
    REQUIRE_OK(evq_poll_open(&poll));
    REQUIRE_OK(ch06_pair(poll, &stream, &peer));
    REQUIRE_OK(evq_register(poll, stream, 1, EVQ_READABLE));
    REQUIRE_OK(evq_net_send_all(peer, "hello world", 11));
    REQUIRE(readable(poll, stream));
    const void *data;
    size_t len = 0;
    REQUIRE_OK(evq_tcp_peek(stream, &data, &len));
    REQUIRE_UINT(len, ==, 11);
    CHECK_MEM(data, "hello world", 11);
    CHECK_OK(evq_tcp_consume(stream, 6));
    REQUIRE_OK(evq_tcp_peek(stream, &data, &len));
    REQUIRE_UINT(len, ==, 5);
    CHECK_MEM(data, "world", 5);
    CHECK_ERR(evq_tcp_consume(stream, 6), EVQ_EINVAL); /* more than is buffered */
    CHECK_OK(evq_tcp_consume(stream, 0));
    char buf[8];
    size_t n = 0;
    CHECK_OK(evq_tcp_read(stream, buf, 3, &n)); /* read and peek share the buffer */
    CHECK_UINT(n, ==, 3);
    CHECK_MEM(buf, "wor", 3);
    CHECK_OK(evq_tcp_consume(stream, 2));
    CHECK_ERR(evq_tcp_read(stream, buf, sizeof buf, &n), EVQ_EWOULDBLOCK);
    CHECK_ERR(evq_tcp_peek(stream, &data, &len), EVQ_EWOULDBLOCK);
    CHECK(data == NULL && len == 0);
    evq_tcp_close(stream);
    evq_socket_close(peer);
    evq_poll_close(poll);
}

/* Bytes left in the stream's buffer are invisible to the kernel: the
 * socket is empty, yet a read would return data. Re-armed then, the stream
 * is reported again (level-style, as evq.h promises). Catches a queue that
 * asks only the kernel: this wait would never end. */
EVQ_TEST(rearmed_with_bytes_in_the_buffer_is_reported_again)
{
    evq_poll *poll;
    evq_tcp *stream;
    evq_socket peer;
    REQUIRE_OK(evq_poll_open(&poll));
    REQUIRE_OK(ch06_pair(poll, &stream, &peer));
    REQUIRE_OK(evq_register(poll, stream, 1, EVQ_READABLE));
    REQUIRE_OK(evq_net_send_all(peer, "abc", 3));
    evq_event event;
    REQUIRE(ch06_wait_one(poll, &event, 5000));
    char buf[4];
    size_t n = 0;
    REQUIRE_OK(evq_tcp_read(stream, buf, 1, &n)); /* the fill took "abc"; "bc" stays */
    REQUIRE_OK(evq_reregister(poll, stream, 2, EVQ_READABLE));
    REQUIRE(ch06_wait_one(poll, &event, 2000));
    CHECK_UINT(event.token, ==, 2);
    CHECK_UINT(event.ready, ==, EVQ_READABLE);
    /* One arming, one event: not reported again until re-armed. */
    size_t count = 99;
    CHECK_OK(evq_poll_wait(poll, &event, 1, 50, &count));
    CHECK_UINT(count, ==, 0);
    CHECK_OK(evq_tcp_read(stream, buf, sizeof buf, &n));
    CHECK_UINT(n, ==, 2);
    CHECK_MEM(buf, "bc", 2);
    /* Re-armed after the buffer was read dry: nothing to report. */
    REQUIRE_OK(evq_reregister(poll, stream, 3, EVQ_READABLE));
    CHECK_OK(evq_poll_wait(poll, &event, 1, 50, &count));
    CHECK_UINT(count, ==, 0);
    evq_tcp_close(stream);
    evq_socket_close(peer);
    evq_poll_close(poll);
}

/* ---- the io hook: interrupted, short and failing receives ---- */

struct receive_hook {
    int interruptions;  /* this many EVQ_EINTR first */
    size_t cap;         /* then at most this many bytes per call (0: no cap) */
    size_t reset_after; /* then EVQ_ECONNRESET once this many were allowed (0: never) */
    size_t allowed;
    int calls;
};

static int on_receive(void *context, enum evq_io_direction direction, size_t *len)
{
    struct receive_hook *hook = context;
    if (direction != EVQ_IO_RECEIVE)
        return 0;
    hook->calls++;
    if (hook->interruptions > 0) {
        hook->interruptions--;
        return EVQ_EINTR;
    }
    if (hook->cap > 0 && *len > hook->cap)
        *len = hook->cap;
    if (hook->reset_after > 0) {
        if (hook->allowed == hook->reset_after)
            return EVQ_ECONNRESET;
        if (*len > hook->reset_after - hook->allowed)
            *len = hook->reset_after - hook->allowed;
        hook->allowed += *len; /* the peer sent more than this: recv fills it */
    }
    return 0;
}

/* A signal during recv() is not an error. Catches a read that returns
 * EVQ_EINTR to the caller, or keeps it as the stream's final status. */
EVQ_TEST(interrupted_receives_are_retried)
{
    evq_poll *poll;
    evq_tcp *stream;
    evq_socket peer;
    REQUIRE_OK(evq_poll_open(&poll));
    REQUIRE_OK(ch06_pair(poll, &stream, &peer));
    struct receive_hook hook = {.interruptions = 3};
    evq_tcp_set_io_hook(stream, on_receive, &hook);
    REQUIRE_OK(evq_register(poll, stream, 1, EVQ_READABLE));
    REQUIRE_OK(ch06_send_pattern(peer, 1000, 0));
    evq_sleep_ms(20);
    REQUIRE(readable(poll, stream));
    unsigned char buf[2000];
    size_t n = 0;
    CHECK_OK(evq_tcp_read(stream, buf, sizeof buf, &n));
    CHECK_UINT(n, ==, 1000);
    CHECK_UINT(ch06_pattern_mismatch(buf, n, 0), ==, n);
    CHECK_INT(hook.interruptions, ==, 0);
    /* The three interrupted attempts count as calls: the stats show them. */
    CHECK_UINT(ch06_stats(stream).receive_calls, >=, 3 + 1);
    CHECK_UINT(ch06_stats(stream).receive_calls, ==, (uint64_t)hook.calls);
    evq_tcp_close(stream);
    evq_socket_close(peer);
    evq_poll_close(poll);
}

/* recv() may return fewer bytes than asked for, at any point. Catches a
 * fill that takes a short receive for "the socket is empty" (it would stop
 * at 7 bytes) or loses the bytes after it. */
EVQ_TEST(short_receives_are_stitched_together)
{
    enum { SENT = 10000 };
    evq_poll *poll;
    evq_tcp *stream;
    evq_socket peer;
    REQUIRE_OK(evq_poll_open(&poll));
    REQUIRE_OK(ch06_pair(poll, &stream, &peer));
    struct receive_hook hook = {.cap = 7};
    evq_tcp_set_io_hook(stream, on_receive, &hook);
    REQUIRE_OK(evq_register(poll, stream, 1, EVQ_READABLE));
    REQUIRE_OK(ch06_send_pattern(peer, SENT, 0));
    evq_sleep_ms(20);
    REQUIRE(readable(poll, stream));
    CHECK_UINT(read_pattern(poll, stream, 0, SENT, 256 * 1024), ==, SENT);
    CHECK_UINT(ch06_stats(stream).receive_calls, >=, SENT / 7);
    evq_tcp_close(stream);
    evq_socket_close(peer);
    evq_poll_close(poll);
}

/* A connection reset in the middle of a transfer: the bytes before it are
 * read, then the error, every time after; the emptied buffer is freed.
 * Catches a read that reports the reset first (losing 5000 bytes) and one
 * that keeps the buffer of a stream that can never read again. */
EVQ_TEST(a_reset_mid_transfer_comes_after_the_data)
{
    enum { BEFORE = 5000 };
    evq_poll *poll;
    evq_tcp *stream;
    evq_socket peer;
    REQUIRE_OK(evq_poll_open(&poll));
    REQUIRE_OK(ch06_pair(poll, &stream, &peer));
    struct receive_hook hook = {.reset_after = BEFORE};
    evq_tcp_set_io_hook(stream, on_receive, &hook);
    REQUIRE_OK(evq_register(poll, stream, 1, EVQ_READABLE));
    REQUIRE_OK(ch06_send_pattern(peer, 20000, 0));
    evq_sleep_ms(20);
    REQUIRE(readable(poll, stream));
    unsigned char buf[1024];
    size_t total = 0;
    int rc = 0;
    for (int i = 0; i < 100; i++) {
        size_t n = 0;
        rc = evq_tcp_read(stream, buf, sizeof buf, &n);
        if (rc != 0)
            break;
        REQUIRE_UINT(ch06_pattern_mismatch(buf, n, total), ==, n);
        total += n;
    }
    CHECK_ERR(rc, EVQ_ECONNRESET);
    CHECK_UINT(total, ==, BEFORE);
    size_t n = 0;
    CHECK_ERR(evq_tcp_read(stream, buf, sizeof buf, &n), EVQ_ECONNRESET); /* it stays */
    int calls = hook.calls;
    CHECK_ERR(evq_tcp_read(stream, buf, sizeof buf, &n), EVQ_ECONNRESET);
    CHECK_INT(hook.calls, ==, calls); /* from memory: the kernel is not asked again */
    CHECK_UINT(ch06_stats(stream).read_capacity, ==, 0);
    evq_tcp_close(stream);
    evq_socket_close(peer);
    evq_poll_close(poll);
}

/* EOF is the peer's half-close, not the end of the connection: this side
 * reads the data, then EVQ_EOF, and can still send. Catches a stream that
 * treats EOF as "closed" and refuses (or loses) the reply. */
EVQ_TEST(eof_from_a_half_close_and_the_reply_still_goes_out)
{
    evq_poll *poll;
    evq_tcp *stream;
    evq_socket peer;
    REQUIRE_OK(evq_poll_open(&poll));
    REQUIRE_OK(ch06_pair(poll, &stream, &peer));
    REQUIRE_OK(evq_register(poll, stream, 1, EVQ_READABLE));
    REQUIRE_OK(evq_net_send_all(peer, "bye", 3));
    REQUIRE_INT(shutdown(peer, SHUT_WRITE), ==, 0);
    char buf[16];
    size_t len = 0;
    int rc = 0;
    uint32_t seen = 0;
    for (int round = 0; round < 20; round++) {
        evq_event event;
        REQUIRE(ch06_wait_one(poll, &event, 5000));
        seen |= event.ready;
        rc = ch06_read_available(stream, buf, sizeof buf, &len);
        if (rc != 0)
            break;
        REQUIRE_OK(evq_reregister(poll, stream, 1, EVQ_READABLE));
    }
    CHECK_ERR(rc, EVQ_EOF);
    CHECK_UINT(len, ==, 3);
    CHECK_MEM(buf, "bye", 3);
    CHECK_UINT(seen & EVQ_HUP, ==, EVQ_HUP);
    size_t n = 0;
    REQUIRE_OK(evq_tcp_write(stream, "reply", 5, &n));
    CHECK_UINT(n, ==, 5);
    REQUIRE_OK(evq_tcp_shutdown(stream)); /* our FIN, after the reply */
    for (int i = 0; i < 100 && evq_tcp_queued(stream) > 0; i++) {
        evq_event event;
        CHECK_OK(evq_poll_wait(poll, &event, 1, 50, &n));
    }
    char got[16];
    size_t received = 0;
    REQUIRE_OK(evq_socket_set_recv_timeout(peer, 10000)); /* a missing FIN fails, not hangs */
    CHECK_OK(evq_net_recv_until_eof(peer, got, sizeof got, &received));
    CHECK_UINT(received, ==, 5);
    CHECK_MEM(got, "reply", 5);
    evq_tcp_close(stream);
    evq_socket_close(peer);
    evq_poll_close(poll);
}

int main(int argc, char **argv)
{
    static const evq_test_case cases[] = {
        EVQ_CASE(a_fill_reads_until_the_socket_would_block),
        EVQ_CASE(the_buffer_grows_to_read_max_and_no_further),
        EVQ_CASE(unread_bytes_move_to_the_front_before_the_buffer_grows),
        EVQ_CASE(peek_then_consume_keeps_the_rest),
        EVQ_CASE(rearmed_with_bytes_in_the_buffer_is_reported_again),
        EVQ_CASE(interrupted_receives_are_retried),
        EVQ_CASE(short_receives_are_stitched_together),
        EVQ_CASE(a_reset_mid_transfer_comes_after_the_data),
        EVQ_CASE(eof_from_a_half_close_and_the_reply_still_goes_out),
    };
    return evq_test_main(argc, argv, cases, EVQ_COUNT(cases));
}

/* test_readiness.c - chapter 3: what READABLE means for a buffered stream,
 * and what it costs. READABLE is "something you have not seen": bytes a
 * peek has shown do not wake the reader again (a parser that needs more
 * sleeps until more comes), except in a buffer full at read_max. A socket
 * found empty is not asked again until the kernel says it is readable, and
 * no data is lost by that. An emptied buffer shrinks only when the stream
 * looks idle, and consuming nothing touches nothing.
 */
#include "ch06_test.h"

#ifndef _WIN32
#include <sys/socket.h>
#define SHUT_WRITE SHUT_WR
#else
#define SHUT_WRITE SD_SEND
#endif

/* No event within `ms`: the stream stays quiet. */
static bool quiet_for(evq_poll *poll, int ms)
{
    evq_event event;
    size_t n = 99;
    CHECK_OK(evq_poll_wait(poll, &event, 1, ms, &n));
    return n == 0;
}

/* Exactly len bytes from a blocking socket (its receive timeout bounds it). */
static int recv_exactly(evq_socket socket, char *buf, size_t len)
{
    for (size_t got = 0; got < len;) {
        size_t n = 0;
        int rc = evq_net_recv(socket, buf + got, len - got, &n);
        if (rc != 0)
            return rc;
        if (n == 0)
            return EVQ_EOF;
        got += n;
    }
    return 0;
}

static uint64_t receive_calls(const evq_tcp *stream)
{
    return ch06_stats(stream).receive_calls;
}

/* A parser peeks at the start of a request, needs more, consumes nothing
 * and re-arms: it must sleep until more bytes come, then see old and new
 * together. The level-style version (READABLE while anything is buffered)
 * reports the stream again at once, for ever: 24228 parses for a 63-byte
 * request sent a byte at a time, as the demo server measured. */
EVQ_TEST(peeked_bytes_do_not_wake_the_reader_again)
{
    static const char request[] = "GET /index HTTP/1.1\r\n\r\n";
    evq_poll *poll;
    evq_tcp *stream;
    evq_socket peer;
    REQUIRE_OK(evq_poll_open(&poll));
    REQUIRE_OK(ch06_pair(poll, &stream, &peer));
    REQUIRE_OK(evq_register(poll, stream, 1, EVQ_READABLE));
    size_t sent = 0, events = 0;
    for (size_t part = 5; sent < sizeof request - 1; part = 6) {
        if (part > sizeof request - 1 - sent)
            part = sizeof request - 1 - sent;
        REQUIRE_OK(evq_net_send_all(peer, request + sent, part));
        sent += part;
        evq_event event;
        REQUIRE(ch06_wait_one(poll, &event, 5000)); /* new bytes: it wakes */
        events++;
        CHECK_UINT(event.ready & EVQ_READABLE, ==, EVQ_READABLE);
        const void *data;
        size_t len = 0;
        REQUIRE_OK(evq_tcp_peek(stream, &data, &len));
        REQUIRE_UINT(len, ==, sent); /* everything so far, nothing consumed */
        CHECK_MEM(data, request, len);
        REQUIRE_OK(evq_reregister(poll, stream, 1, EVQ_READABLE));
        CHECK(quiet_for(poll, 30)); /* nothing new: it sleeps */
    }
    CHECK_UINT(events, ==, 4); /* 5 + 6 + 6 + 6 bytes: one wake-up each */
    REQUIRE_OK(evq_tcp_consume(stream, sent));

    /* Seen, then copied out in part: the rest was seen too, so still quiet.
     * A fill that a read made and the caller never saw is news, though. */
    REQUIRE_OK(evq_net_send_all(peer, "abc", 3));
    evq_event event;
    REQUIRE(ch06_wait_one(poll, &event, 5000));
    const void *data;
    size_t len = 0;
    REQUIRE_OK(evq_tcp_peek(stream, &data, &len));
    REQUIRE_UINT(len, ==, 3);
    char buf[4];
    size_t n = 0;
    REQUIRE_OK(evq_tcp_read(stream, buf, 1, &n));
    REQUIRE_OK(evq_reregister(poll, stream, 1, EVQ_READABLE));
    CHECK(quiet_for(poll, 30));
    REQUIRE_OK(evq_tcp_read(stream, buf, 2, &n));
    CHECK_MEM(buf, "bc", 2);
    evq_tcp_close(stream);
    evq_socket_close(peer);
    evq_poll_close(poll);
}

/* A buffer full at read_max whose bytes have all been seen can take
 * nothing more, so no new data can ever make it readable: it is reported
 * at once every time it is armed, until the caller consumes. The peer sent
 * exactly read_max bytes, so the socket is empty and the kernel has
 * nothing to say either: the version that only reports unseen bytes never
 * reports this stream again (the second wait fails after 2 s). */
EVQ_TEST(a_full_buffer_of_seen_bytes_is_readable_every_time)
{
    enum { INITIAL = 1024, MAX = 4096 };
    evq_poll *poll;
    evq_tcp *stream;
    evq_socket peer;
    REQUIRE_OK(evq_poll_open(&poll));
    REQUIRE_OK(ch06_pair(poll, &stream, &peer));
    evq_tcp_limits limits = ch06_limits(INITIAL, MAX, 1 << 20, 1 << 18);
    REQUIRE_OK(evq_tcp_set_limits(stream, &limits));
    REQUIRE_OK(evq_register(poll, stream, 1, EVQ_READABLE));
    REQUIRE_OK(ch06_send_pattern(peer, MAX, 0));
    evq_sleep_ms(20);
    evq_event event;
    REQUIRE(ch06_wait_one(poll, &event, 5000));
    const void *data;
    size_t len = 0;
    for (int round = 0; round < 3; round++) {
        REQUIRE_OK(evq_tcp_peek(stream, &data, &len));
        REQUIRE_UINT(len, ==, MAX); /* full, and every byte seen */
        REQUIRE_OK(evq_reregister(poll, stream, 1, EVQ_READABLE));
        REQUIRE(ch06_wait_one(poll, &event, 2000));
        CHECK_UINT(event.ready & EVQ_READABLE, ==, EVQ_READABLE);
    }
    /* Consumed a little: there is room, so it waits for new bytes again. */
    REQUIRE_OK(evq_tcp_consume(stream, 100));
    REQUIRE_OK(evq_reregister(poll, stream, 1, EVQ_READABLE));
    CHECK(quiet_for(poll, 30));
    REQUIRE_OK(ch06_send_pattern(peer, 100, MAX));
    REQUIRE(ch06_wait_one(poll, &event, 5000));
    REQUIRE_OK(evq_tcp_peek(stream, &data, &len));
    CHECK_UINT(len, ==, MAX);
    CHECK_UINT(ch06_pattern_mismatch(data, len, 100), ==, len);
    evq_tcp_close(stream);
    evq_socket_close(peer);
    evq_poll_close(poll);
}

/* One request, one answer, five times: one receive call each - the one
 * that brings the request, and that got fewer bytes than it asked for,
 * which epoll(7) calls proof enough that the socket is empty (chapter 4
 * made a second, to hear EWOULDBLOCK; on IOCP: the WSARecv into the
 * buffer, whose completion brought fewer bytes than it was lent). The
 * parser's second peek, after it consumed the request, makes none: the
 * socket was just found empty and no edge has come since. The version
 * without the drained mark makes two; the one that reads until EWOULDBLOCK
 * makes two as well. */
EVQ_TEST(a_request_and_its_answer_cost_one_receive_call)
{
    static const char request[] = "GET /hello HTTP/1.1\r\nHost: localhost\r\n\r\n";
    enum { REQUESTS = 5 };
    evq_poll *poll;
    evq_tcp *stream;
    evq_socket peer;
    REQUIRE_OK(evq_poll_open(&poll));
    REQUIRE_OK(ch06_pair(poll, &stream, &peer));
    REQUIRE_OK(evq_socket_set_recv_timeout(peer, 10000)); /* a lost answer fails, not hangs */
    REQUIRE_OK(evq_register(poll, stream, 1, EVQ_READABLE));
    uint64_t before = receive_calls(stream);
    for (int i = 0; i < REQUESTS; i++) {
        REQUIRE_OK(evq_net_send_all(peer, request, sizeof request - 1));
        evq_event event;
        REQUIRE(ch06_wait_one(poll, &event, 5000));
        const void *data;
        size_t len = 0;
        REQUIRE_OK(evq_tcp_peek(stream, &data, &len));
        REQUIRE_UINT(len, ==, sizeof request - 1);
        REQUIRE_OK(evq_tcp_consume(stream, len));
        CHECK_ERR(evq_tcp_peek(stream, &data, &len), EVQ_EWOULDBLOCK);
        size_t n = 0;
        REQUIRE_OK(evq_tcp_write(stream, "HTTP/1.1 200 OK\r\n\r\n", 19, &n));
        char answer[19];
        REQUIRE_OK(recv_exactly(peer, answer, sizeof answer));
        REQUIRE_OK(evq_reregister(poll, stream, 1, EVQ_READABLE));
    }
    uint64_t calls = receive_calls(stream) - before;
    evq_test_note("%llu receive calls for %d requests", (unsigned long long)calls, REQUESTS);
    CHECK_UINT(calls, ==, REQUESTS);
    evq_tcp_close(stream);
    evq_socket_close(peer);
    evq_poll_close(poll);
}

/* The drained mark must not lose a wake-up. After a fill found the socket
 * empty, reads make no system call; data that comes while the stream is
 * disarmed, while it is armed, and a FIN after it, are all reported and
 * read. A mark that a kernel event does not clear would answer
 * EWOULDBLOCK for ever; a re-arm that does not look at the socket's
 * present state would never report the byte that came while disarmed. */
EVQ_TEST(data_after_the_socket_was_found_empty_is_still_delivered)
{
    evq_poll *poll;
    evq_tcp *stream;
    evq_socket peer;
    REQUIRE_OK(evq_poll_open(&poll));
    REQUIRE_OK(ch06_pair(poll, &stream, &peer));
    REQUIRE_OK(evq_register(poll, stream, 1, EVQ_READABLE));
    REQUIRE_OK(evq_net_send_all(peer, "a", 1));
    evq_event event;
    REQUIRE(ch06_wait_one(poll, &event, 5000));
    char buf[8];
    size_t n = 0;
    REQUIRE_OK(evq_tcp_read(stream, buf, sizeof buf, &n));
    REQUIRE_UINT(n, ==, 1);
    uint64_t calls = receive_calls(stream);
    CHECK_ERR(evq_tcp_read(stream, buf, sizeof buf, &n), EVQ_EWOULDBLOCK);
    CHECK_UINT(receive_calls(stream), ==, calls); /* found empty: not asked again */

    /* Comes while disarmed: the re-arm finds it. */
    REQUIRE_OK(evq_net_send_all(peer, "b", 1));
    evq_sleep_ms(30);
    CHECK_ERR(evq_tcp_read(stream, buf, sizeof buf, &n), EVQ_EWOULDBLOCK); /* no event yet */
    REQUIRE_OK(evq_reregister(poll, stream, 2, EVQ_READABLE));
    REQUIRE(ch06_wait_one(poll, &event, 5000));
    CHECK_UINT(event.token, ==, 2);
    REQUIRE_OK(evq_tcp_read(stream, buf, sizeof buf, &n));
    CHECK_UINT(n, ==, 1);
    CHECK_MEM(buf, "b", 1);
    CHECK_ERR(evq_tcp_read(stream, buf, sizeof buf, &n), EVQ_EWOULDBLOCK);

    /* Comes while armed. */
    REQUIRE_OK(evq_reregister(poll, stream, 3, EVQ_READABLE));
    REQUIRE_OK(evq_net_send_all(peer, "c", 1));
    REQUIRE(ch06_wait_one(poll, &event, 5000));
    CHECK_UINT(event.token, ==, 3);
    REQUIRE_OK(evq_tcp_read(stream, buf, sizeof buf, &n));
    CHECK_UINT(n, ==, 1);
    CHECK_MEM(buf, "c", 1);
    CHECK_ERR(evq_tcp_read(stream, buf, sizeof buf, &n), EVQ_EWOULDBLOCK);

    /* The end comes after the mark, too. */
    REQUIRE_INT(shutdown(peer, SHUT_WRITE), ==, 0);
    REQUIRE_OK(evq_reregister(poll, stream, 4, EVQ_READABLE));
    REQUIRE(ch06_wait_one(poll, &event, 5000));
    CHECK_UINT(event.token, ==, 4);
    CHECK_ERR(evq_tcp_read(stream, buf, sizeof buf, &n), EVQ_EOF);
    evq_tcp_close(stream);
    evq_socket_close(peer);
    evq_poll_close(poll);
}

/* A reader that keeps receiving keeps its grown buffer: every fill ends
 * with the buffer full (more waits in the socket), so consuming it all is
 * not idleness. Only when a fill finds the socket empty does it go back to
 * read_initial. The version that shrinks on every empty grows 1 -> 8 KiB
 * again for each block: four receives per 8 KiB instead of one. */
EVQ_TEST(a_streaming_reader_keeps_its_grown_buffer)
{
    enum { INITIAL = 1024, MAX = 8192, BLOCKS = 8, SENT = BLOCKS * MAX };
    evq_poll *poll;
    evq_tcp *stream;
    evq_socket peer;
    REQUIRE_OK(evq_poll_open(&poll));
    REQUIRE_OK(ch06_pair(poll, &stream, &peer));
    evq_tcp_limits limits = ch06_limits(INITIAL, MAX, 1 << 20, 1 << 18);
    limits.turn_budget = 2 * SENT; /* one turn reads it all: this case is about the buffer */
    REQUIRE_OK(evq_tcp_set_limits(stream, &limits));
    REQUIRE_OK(evq_register(poll, stream, 1, EVQ_READABLE));
    REQUIRE_OK(ch06_send_pattern(peer, SENT, 0)); /* all in the socket before the first fill */
    evq_sleep_ms(20);
    evq_event event;
    REQUIRE(ch06_wait_one(poll, &event, 5000));
    size_t done = 0;
    for (int block = 0; block < BLOCKS; block++) {
        const void *data;
        size_t len = 0;
        REQUIRE_OK(evq_tcp_peek(stream, &data, &len));
        REQUIRE_UINT(len, ==, MAX);
        CHECK_UINT(ch06_pattern_mismatch(data, len, done), ==, len);
        REQUIRE_OK(evq_tcp_consume(stream, len));
        done += len;
        CHECK_UINT(ch06_stats(stream).read_capacity, ==, MAX); /* data keeps coming: kept */
    }
    /* The socket is empty now (the last fill ended full exactly, so the
     * next one finds nothing): idle, back to read_initial. */
    const void *data;
    size_t len = 0;
    CHECK_ERR(evq_tcp_peek(stream, &data, &len), EVQ_EWOULDBLOCK);
    evq_tcp_stats stats = ch06_stats(stream);
    CHECK_UINT(stats.read_capacity, ==, INITIAL);
    /* 1 + 1 + 2 + 4 KiB to reach 8 KiB (plus one on IOCP, whose first
     * receive is lent only 1 KiB), one per block after that, one EAGAIN. */
    evq_test_note("%llu receive calls for %d blocks", (unsigned long long)stats.receive_calls,
                  BLOCKS);
    CHECK_UINT(stats.receive_calls, <=, 4 + (BLOCKS - 1) + 1 + 1);
    evq_tcp_close(stream);
    evq_socket_close(peer);
    evq_poll_close(poll);
}

/* A burst makes the buffer grow; the fill that ends it finds the socket
 * empty with room left, so consuming the last byte gives the memory back
 * at once: an idle connection costs read_initial, as buffer.h says. The
 * version that never shrinks keeps 16 KiB here. */
EVQ_TEST(an_idle_reader_goes_back_to_read_initial)
{
    enum { INITIAL = 1024, MAX = 64 * 1024, SENT = 10000 };
    evq_poll *poll;
    evq_tcp *stream;
    evq_socket peer;
    REQUIRE_OK(evq_poll_open(&poll));
    REQUIRE_OK(ch06_pair(poll, &stream, &peer));
    evq_tcp_limits limits = ch06_limits(INITIAL, MAX, 1 << 20, 1 << 18);
    REQUIRE_OK(evq_tcp_set_limits(stream, &limits));
    REQUIRE_OK(evq_register(poll, stream, 1, EVQ_READABLE));
    for (int burst = 0; burst < 2; burst++) {
        REQUIRE_OK(ch06_send_pattern(peer, SENT, (uint64_t)burst * SENT));
        evq_sleep_ms(20);
        evq_event event;
        REQUIRE(ch06_wait_one(poll, &event, 5000));
        const void *data;
        size_t len = 0;
        REQUIRE_OK(evq_tcp_peek(stream, &data, &len));
        REQUIRE_UINT(len, ==, SENT);
        CHECK_UINT(ch06_pattern_mismatch(data, len, (uint64_t)burst * SENT), ==, len);
        CHECK_UINT(ch06_stats(stream).read_capacity, ==, 16 * 1024); /* 1 KiB doubled to fit */
        REQUIRE_OK(evq_tcp_consume(stream, len));
        CHECK_UINT(ch06_stats(stream).read_capacity, ==, INITIAL); /* idle: given back */
        REQUIRE_OK(evq_reregister(poll, stream, 1, EVQ_READABLE));
    }
    CHECK_UINT(ch06_stats(stream).read_capacity_peak, ==, 16 * 1024);
    evq_tcp_close(stream);
    evq_socket_close(peer);
    evq_poll_close(poll);
}

/* consume(0) on an empty buffer must not touch the block: on IOCP the
 * kernel may be receiving into it right now (kernel_lent says so), and a
 * realloc would free memory it is writing to. Lowering read_initial makes
 * the old consume, which shrank every emptied block, reallocate here. */
EVQ_TEST(consuming_nothing_touches_nothing)
{
    evq_poll *poll;
    evq_tcp *stream;
    evq_socket peer;
    REQUIRE_OK(evq_poll_open(&poll));
    REQUIRE_OK(ch06_pair(poll, &stream, &peer));
    REQUIRE_OK(evq_register(poll, stream, 1, EVQ_READABLE));
    REQUIRE_OK(ch06_send_pattern(peer, 100, 0));
    evq_event event;
    REQUIRE(ch06_wait_one(poll, &event, 5000));
    unsigned char buf[256];
    size_t n = 0;
    REQUIRE_OK(evq_tcp_read(stream, buf, sizeof buf, &n));
    REQUIRE_UINT(n, ==, 100);
    evq_tcp_limits limits;
    evq_tcp_get_default_limits(&limits);
    size_t capacity = ch06_stats(stream).read_capacity;
    REQUIRE_UINT(capacity, ==, limits.read_initial);
    limits.read_initial = 1024;
    REQUIRE_OK(evq_tcp_set_limits(stream, &limits));
    REQUIRE_OK(evq_reregister(poll, stream, 1, EVQ_READABLE)); /* IOCP: lends the block */
    evq_tcp_stats before = ch06_stats(stream);
    CHECK_OK(evq_tcp_consume(stream, 0));
    evq_tcp_stats after = ch06_stats(stream);
    CHECK_UINT(after.read_capacity, ==, capacity);
    CHECK_UINT(after.kernel_lent, ==, before.kernel_lent);
    /* And the stream still reads correctly into that block. */
    REQUIRE_OK(ch06_send_pattern(peer, 200, 100));
    REQUIRE(ch06_wait_one(poll, &event, 5000));
    REQUIRE_OK(evq_tcp_read(stream, buf, sizeof buf, &n));
    CHECK_UINT(n, ==, 200);
    CHECK_UINT(ch06_pattern_mismatch(buf, n, 100), ==, n);
    evq_tcp_close(stream);
    evq_socket_close(peer);
    evq_poll_close(poll);
}

/* The end of the stream behind bytes the caller has seen is reported with
 * HUP every time the stream is armed, whichever path reports it: the
 * kernel (epoll and kqueue report a socket at EOF again on every re-arm) or
 * the library's own ready list (an end a fill found; IOCP's emulated
 * readiness). A caller waiting for "more" of a half request learns from
 * the flag that no more will come. */
EVQ_TEST(the_end_behind_seen_bytes_still_says_hup)
{
    evq_poll *poll;
    evq_tcp *stream;
    evq_socket peer;
    REQUIRE_OK(evq_poll_open(&poll));
    REQUIRE_OK(ch06_pair(poll, &stream, &peer));
    REQUIRE_OK(evq_net_send_all(peer, "GET /half", 9));
    evq_socket_close(peer); /* a FIN behind the half request */
    REQUIRE_OK(evq_register(poll, stream, 3, EVQ_READABLE));
    const void *data;
    size_t len = 0;
    evq_event event;
    /* Peek until the fill has met the FIN too (it may come a moment later). */
    for (int turn = 0; turn < 50; turn++) {
        REQUIRE(ch06_wait_one(poll, &event, 5000));
        CHECK_UINT(event.token, ==, 3);
        REQUIRE_OK(evq_tcp_peek(stream, &data, &len));
        REQUIRE_UINT(len, ==, 9); /* the bytes come first, EOF after them */
        REQUIRE_OK(evq_reregister(poll, stream, 3, EVQ_READABLE));
        if (event.ready & EVQ_HUP)
            break;
    }
    /* Armed again with only seen bytes and the end buffered: reported, and
     * as the end. */
    REQUIRE(ch06_wait_one(poll, &event, 5000));
    CHECK_UINT(event.ready, ==, EVQ_READABLE | EVQ_HUP);
    REQUIRE_OK(evq_tcp_consume(stream, len));
    CHECK_ERR(evq_tcp_peek(stream, &data, &len), EVQ_EOF);
    evq_tcp_close(stream);
    evq_poll_close(poll);
}

int main(int argc, char **argv)
{
    static const evq_test_case cases[] = {
        EVQ_CASE(peeked_bytes_do_not_wake_the_reader_again),
        EVQ_CASE(a_full_buffer_of_seen_bytes_is_readable_every_time),
        EVQ_CASE(a_request_and_its_answer_cost_one_receive_call),
        EVQ_CASE(data_after_the_socket_was_found_empty_is_still_delivered),
        EVQ_CASE(a_streaming_reader_keeps_its_grown_buffer),
        EVQ_CASE(an_idle_reader_goes_back_to_read_initial),
        EVQ_CASE(consuming_nothing_touches_nothing),
        EVQ_CASE(the_end_behind_seen_bytes_still_says_hup),
    };
    return evq_test_main(argc, argv, cases, EVQ_COUNT(cases));
}

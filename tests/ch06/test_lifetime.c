/* test_lifetime.c - chapter 3: who owns what, and until when. Closing a
 * stream with an operation in flight, closing a queue with streams still
 * registered: no leak, no use after free (ASan and valgrind on Linux watch
 * the epoll, kqueue and io_uring builds; on the completion backends, IOCP
 * and io_uring, the queue's count of retired streams shows the kernel's
 * buffers being kept and then given back).
 */
#include "ch06_test.h"

#if defined(EVQ_BACKEND_IOCP) || defined(EVQ_BACKEND_URING)
enum { COMPLETION_BACKEND = 1 };
#else
enum { COMPLETION_BACKEND = 0 };
#endif

/* ANCHOR: retire_test */
/* Closing a stream whose receive is in flight: on IOCP the kernel still owns
 * the OVERLAPPED and the buffer, so the queue keeps them ("retired") until
 * the cancelled completion is dequeued. A version that freed them at once
 * would show 0 retired here - and let the kernel write into freed memory. */
EVQ_TEST(closing_a_stream_with_a_read_in_flight)
{
    evq_poll *poll;
    evq_tcp *stream;
    evq_socket peer;
    REQUIRE_OK(evq_poll_open(&poll));
    REQUIRE_OK(ch06_pair(poll, &stream, &peer));
    REQUIRE_OK(evq_register(poll, stream, 1, EVQ_READABLE)); /* IOCP: WSARecv posted */
    evq_tcp_close(stream);
    CHECK_UINT(evq_poll_retired_streams(poll), ==, COMPLETION_BACKEND);

    evq_event event;
    size_t n = 0;
    for (int i = 0; i < 50 && evq_poll_retired_streams(poll) > 0; i++) {
        CHECK_OK(evq_poll_wait(poll, &event, 1, 100, &n));
        CHECK_UINT(n, ==, 0); /* the cancellation is not an event */
    }
    CHECK_UINT(evq_poll_retired_streams(poll), ==, 0); /* freed once it came back */
    REQUIRE_OK(evq_net_send_all(peer, "late", 4));     /* nobody is listening: no harm */
    CHECK_OK(evq_poll_wait(poll, &event, 1, 20, &n));
    CHECK_UINT(n, ==, 0);
    evq_socket_close(peer);
    evq_poll_close(poll);
}
/* ANCHOR_END: retire_test */

/* The same, but the queue is closed before the completion was dequeued:
 * evq_poll_close collects it and frees the retired stream. */
EVQ_TEST(closing_the_queue_collects_retired_streams)
{
    evq_poll *poll;
    evq_tcp *stream;
    evq_socket peer;
    REQUIRE_OK(evq_poll_open(&poll));
    REQUIRE_OK(ch06_pair(poll, &stream, &peer));
    REQUIRE_OK(evq_register(poll, stream, 1, EVQ_READABLE | EVQ_WRITABLE));
    size_t n = 0;
    REQUIRE_OK(evq_tcp_write(stream, "in flight", 9, &n)); /* IOCP: WSASend too */
    evq_tcp_close(stream);
    CHECK_UINT(evq_poll_retired_streams(poll), ==, COMPLETION_BACKEND);
    evq_poll_close(poll); /* drains; leak checkers would see what it missed */
    evq_socket_close(peer);
}

/* A queue closed with streams registered, one of them with data waiting and
 * one with a write just started: nothing leaks, and the streams, still the
 * caller's, are closed afterwards. */
EVQ_TEST(closing_the_queue_with_streams_registered)
{
    enum { STREAMS = 3 };
    evq_poll *poll;
    REQUIRE_OK(evq_poll_open(&poll));
    evq_tcp *streams[STREAMS];
    evq_socket peers[STREAMS];
    static const unsigned interests[STREAMS] = {EVQ_READABLE, EVQ_WRITABLE,
                                                EVQ_READABLE | EVQ_WRITABLE};
    for (int i = 0; i < STREAMS; i++) /* connected first: ch06_wait_connected */
        REQUIRE_OK(ch06_pair(poll, &streams[i], &peers[i]));
    for (int i = 0; i < STREAMS; i++)
        REQUIRE_OK(evq_register(poll, streams[i], (evq_token)i, interests[i]));
    REQUIRE_OK(evq_net_send_all(peers[0], "unread", 6));
    size_t n = 0;
    REQUIRE_OK(evq_tcp_write(streams[1], "unsent?", 7, &n));
    evq_poll_close(poll);
    for (int i = 0; i < STREAMS; i++) {
        char buf[8];
        CHECK_ERR(evq_tcp_read(streams[i], buf, sizeof buf, &n), EVQ_ECLOSED);
        evq_tcp_close(streams[i]);
        evq_socket_close(peers[i]);
    }
}

/* An event already pending in the kernel for a stream that is then closed
 * never comes out of a wait (it would carry a pointer to freed memory: the
 * queue deregisters before closing, as kqueue on Linux requires). */
EVQ_TEST(a_closed_stream_never_reports_again)
{
    evq_poll *poll;
    REQUIRE_OK(evq_poll_open(&poll));
    evq_tcp *closed, *open;
    evq_socket closed_peer, open_peer;
    REQUIRE_OK(ch06_pair(poll, &closed, &closed_peer));
    REQUIRE_OK(ch06_pair(poll, &open, &open_peer));
    REQUIRE_OK(evq_register(poll, closed, 1, EVQ_READABLE | EVQ_WRITABLE));
    REQUIRE_OK(evq_register(poll, open, 2, EVQ_READABLE));
    REQUIRE_OK(evq_net_send_all(closed_peer, "x", 1));
    evq_sleep_ms(20); /* pending in the kernel by now (likely; not relied on) */
    evq_tcp_close(closed);
    /* A new stream may get the same descriptor number: still no stale event. */
    evq_tcp *reused;
    evq_socket reused_peer;
    REQUIRE_OK(ch06_pair(poll, &reused, &reused_peer));
    REQUIRE_OK(evq_register(poll, reused, 3, EVQ_READABLE));
    REQUIRE_OK(evq_net_send_all(open_peer, "y", 1));

    evq_event event;
    REQUIRE(ch06_wait_one(poll, &event, 5000));
    CHECK_UINT(event.token, ==, 2);
    size_t n = 99;
    for (int i = 0; i < 3; i++) {
        CHECK_OK(evq_poll_wait(poll, &event, 1, 20, &n));
        CHECK_UINT(n, ==, 0);
    }
    evq_tcp_close(open);
    evq_tcp_close(reused);
    evq_socket_close(closed_peer);
    evq_socket_close(open_peer);
    evq_socket_close(reused_peer);
    evq_poll_close(poll);
}

/* Many streams connected, registered and closed in a loop, half of them
 * with I/O in flight: the queue's bookkeeping stays exact. */
EVQ_TEST(many_streams_come_and_go)
{
    evq_poll *poll;
    REQUIRE_OK(evq_poll_open(&poll));
    for (int i = 0; i < 40; i++) {
        evq_tcp *stream;
        evq_socket peer;
        REQUIRE_OK(ch06_pair(poll, &stream, &peer));
        REQUIRE_OK(evq_register(poll, stream, (evq_token)i, EVQ_READABLE));
        if (i % 2 == 0) {
            REQUIRE_OK(evq_net_send_all(peer, "z", 1));
            evq_event event;
            REQUIRE(ch06_wait_one(poll, &event, 5000));
            CHECK_UINT(event.token, ==, (evq_token)i);
        }
        evq_tcp_close(stream);
        evq_socket_close(peer);
    }
    evq_event event;
    size_t n;
    for (int i = 0; i < 50 && evq_poll_retired_streams(poll) > 0; i++)
        CHECK_OK(evq_poll_wait(poll, &event, 1, 100, &n));
    CHECK_UINT(evq_poll_retired_streams(poll), ==, 0);
    evq_poll_close(poll);
}

#if defined(EVQ_BACKEND_IOCP)
/* IOCP, chapter 3: a second write while the first one's WSASend is still in
 * flight is queued behind it (chapter 2 refused it with EVQ_EWOULDBLOCK:
 * one fixed buffer per direction), and both arrive, in order. (Chapter 5:
 * WRITABLE says the queue has room, which it has at once; the queue sends
 * "second" in its own turn, after the first send's completion - during a
 * wait, so the test waits until the queue is empty.) */
EVQ_TEST_WINDOWS(iocp_writes_queue_behind_the_one_in_flight)
{
    evq_poll *poll;
    evq_tcp *stream;
    evq_socket peer;
    REQUIRE_OK(evq_poll_open(&poll));
    REQUIRE_OK(ch06_pair(poll, &stream, &peer));
    size_t n = 0;
    REQUIRE_OK(evq_tcp_write(stream, "first", 5, &n));
    CHECK_UINT(n, ==, 5);
    CHECK_OK(evq_tcp_write(stream, "second", 6, &n));
    CHECK_UINT(n, ==, 6);
    REQUIRE_OK(evq_register(poll, stream, 1, EVQ_WRITABLE));
    evq_event event;
    REQUIRE(ch06_wait_one(poll, &event, 5000));
    CHECK_UINT(event.ready & EVQ_WRITABLE, ==, EVQ_WRITABLE);
    for (int i = 0; i < 500 && evq_tcp_queued(stream) > 0; i++)
        CHECK_OK(evq_poll_wait(poll, &event, 1, 10, &n));
    CHECK_UINT(evq_tcp_queued(stream), ==, 0);
    char buf[16];
    size_t got = 0;
    while (got < 11) {
        REQUIRE_OK(evq_net_recv(peer, buf + got, sizeof buf - got, &n));
        REQUIRE_UINT(n, >, 0);
        got += n;
    }
    CHECK_MEM(buf, "firstsecond", 11);
    evq_tcp_close(stream);
    evq_socket_close(peer);
    evq_poll_close(poll);
}
#endif

int main(int argc, char **argv)
{
    static const evq_test_case cases[] = {
        EVQ_CASE(closing_a_stream_with_a_read_in_flight),
        EVQ_CASE(closing_the_queue_collects_retired_streams),
        EVQ_CASE(closing_the_queue_with_streams_registered),
        EVQ_CASE(a_closed_stream_never_reports_again),
        EVQ_CASE(many_streams_come_and_go),
#if defined(EVQ_BACKEND_IOCP)
        EVQ_CASE(iocp_writes_queue_behind_the_one_in_flight),
#endif
    };
    return evq_test_main(argc, argv, cases, EVQ_COUNT(cases));
}

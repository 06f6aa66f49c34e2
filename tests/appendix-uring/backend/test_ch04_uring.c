/* test_ch04_uring.c - what only chapter 4's io_uring backend has to get
 * right: the provided-buffer ring (an idle stream holds no buffer; a ring
 * run dry loses nothing; bytes the read buffer has no room for wait, in
 * order), closing streams whose receives the kernel still holds (a
 * multishot one armed, one that took a buffer on its way out), a send
 * completion short of what it was lent, a listener that accepts no further
 * ahead than one connection, and the codes where io_uring is refused. The
 * chapter's own suite runs on this backend too (tests/ch04); these are
 * ch04.uring.<case> beside it.
 */
#include "ch04_test.h"
#include "evq_uring_testing.h"
#include "uring_testing.h"

#include <errno.h>
#include <stdlib.h>

/* Limits with provided buffers: the stream waits for data with a multishot
 * receive on the queue's ring (zero_byte_receive: "lend no buffer"). */
static evq_tcp_limits provided(size_t read_initial, size_t read_max)
{
    evq_tcp_limits limits = ch04_limits(read_initial, read_max, 1024 * 1024, 256 * 1024);
    limits.zero_byte_receive = 1;
    return limits;
}

static evq_uring_queue_stats queue_stats(evq_poll *poll)
{
    evq_uring_queue_stats stats;
    evq_uring_get_queue_stats(poll, &stats);
    return stats;
}

static evq_uring_stream_stats stream_stats(const evq_tcp *stream)
{
    evq_uring_stream_stats stats;
    evq_uring_get_stream_stats(stream, &stats);
    return stats;
}

/* Wait (bounded) until no stream is retired: every cancelled completion has
 * come back. No wait along the way may report an event. Then one short wait
 * more, for a completion still on its way: none may find its stream freed -
 * a retired stream goes with its operations' last completions, never with
 * the cancel's own, which may come first (then the cancelled receive's
 * -ECANCELED would find no stream, and its buffer would have been freed
 * while the kernel could still write into it). */
static void wait_until_nothing_is_retired(evq_poll *poll)
{
    evq_event event;
    size_t n = 0;
    for (int i = 0; i < 50 && evq_poll_retired_streams(poll) > 0; i++) {
        CHECK_OK(evq_poll_wait(poll, &event, 1, 100, &n));
        CHECK_UINT(n, ==, 0); /* a cancellation is not an event */
    }
    CHECK_UINT(evq_poll_retired_streams(poll), ==, 0);
    CHECK_OK(evq_poll_wait(poll, &event, 1, 20, &n));
    CHECK_UINT(n, ==, 0);
    CHECK_UINT(queue_stats(poll).orphans, ==, 0);
}

/* Read everything the stream has now, checking the pattern from *offset. */
static void read_pattern(evq_tcp *stream, size_t *offset)
{
    unsigned char buf[4096];
    for (int i = 0; i < 10000; i++) {
        size_t n = 0;
        int rc = evq_tcp_read(stream, buf, sizeof buf, &n);
        if (rc == EVQ_EWOULDBLOCK)
            return;
        REQUIRE_OK(rc);
        REQUIRE_UINT(ch04_pattern_mismatch(buf, n, *offset), ==, n);
        *offset += n;
    }
}

/* ANCHOR: idle_test */
/* With provided buffers an idle stream holds no memory for receiving: the
 * kernel has a multishot receive and no buffer of the stream's, and the
 * read buffer is given back each time the stream is armed again with it
 * empty. The bytes that come in a provided buffer are copied to the read
 * buffer and the buffer goes straight back to the ring. A version that
 * keeps the emptied read buffer shows read_capacity 4096 here; one that
 * does not give the provided buffer back shows buffers_free one short per
 * round. */
EVQ_TEST(provided_buffers_an_idle_stream_holds_no_buffer)
{
    evq_poll *poll;
    evq_tcp *stream;
    evq_socket peer;
    REQUIRE_OK(evq_poll_open(&poll));
    REQUIRE_OK(ch04_pair(poll, &stream, &peer));
    evq_tcp_limits limits = provided(4096, 64 * 1024);
    REQUIRE_OK(evq_tcp_set_limits(stream, &limits));
    REQUIRE_OK(evq_register(poll, stream, 1, EVQ_READABLE));
    REQUIRE_UINT(stream_stats(stream).receive, ==, EVQ_URING_RECEIVE_PROVIDED);
    size_t offset = 0;
    for (int round = 0; round < 3; round++) {
        evq_tcp_stats idle = ch04_stats(stream);
        CHECK_UINT(idle.read_capacity, ==, 0);
        CHECK_UINT(idle.kernel_lent, ==, 0);
        REQUIRE_OK(ch04_send_pattern(peer, 10000, offset));
        evq_event event;
        REQUIRE(ch04_wait_one(poll, &event, 5000));
        read_pattern(stream, &offset);
        CHECK_UINT(ch04_stats(stream).read_capacity, >, 0); /* data came: a buffer */
        REQUIRE_OK(evq_reregister(poll, stream, 1, EVQ_READABLE));
        evq_uring_queue_stats ring = queue_stats(poll);
        CHECK_UINT(ring.buffers_free, ==, ring.buffers); /* every provided buffer is back */
    }
    CHECK_UINT(offset, ==, 30000);
    CHECK_UINT(ch04_stats(stream).read_capacity, ==, 0);
    CHECK_UINT(ch04_stats(stream).receive_calls, ==, 1); /* one multishot receive, never re-armed */
    evq_tcp_close(stream);
    evq_socket_close(peer);
    evq_poll_close(poll);
}
/* ANCHOR_END: idle_test */

/* ANCHOR: dry_test */
/* More streams with data at once than the ring has buffers (64): the
 * kernel fills every buffer before the loop has copied any out, and ends
 * the other receives with -ENOBUFS - a multishot receive is over once it
 * says that. Those streams' bytes are still in their sockets: the backend
 * reads them with recv() then and there, and arms again (on provided
 * buffers once some are back, with POLL_ADD until then). Every byte of every
 * stream arrives, in order. A version that takes -ENOBUFS for the stream's
 * error fails those reads with EVQ_ENOBUFS; one that only marks the
 * receive over never reports those streams again. */
EVQ_TEST(a_dry_ring_loses_nothing)
{
    enum { STREAMS = 100, ROUNDS = 3, BYTES = 3000 };
    evq_poll *poll;
    REQUIRE_OK(evq_poll_open(&poll));
    evq_tcp *streams[STREAMS];
    evq_socket peers[STREAMS];
    size_t offsets[STREAMS] = {0};
    evq_tcp_limits limits = provided(4096, 64 * 1024);
    int made = 0;
    for (; made < STREAMS; made++) {
        if (!CHECK_OK(ch04_pair(poll, &streams[made], &peers[made])))
            break;
        CHECK_OK(evq_tcp_set_limits(streams[made], &limits));
        CHECK_OK(evq_register(poll, streams[made], (evq_token)made, EVQ_READABLE));
    }
    if (made == STREAMS) {
        evq_event events[STREAMS];
        size_t n = 0;
        CHECK_OK(evq_poll_wait(poll, events, STREAMS, 0, &n)); /* the receives are armed */
        for (int round = 0; round < ROUNDS; round++) {
            for (int i = 0; i < STREAMS; i++)
                REQUIRE_OK(ch04_send_pattern(peers[i], BYTES, offsets[i]));
            size_t reported = 0;
            uint64_t give_up = evq_clock_now_ns() + 10 * EVQ_NS_PER_S;
            while (reported < STREAMS && evq_clock_now_ns() < give_up) {
                REQUIRE_OK(evq_poll_wait(poll, events, STREAMS, 100, &n));
                for (size_t e = 0; e < n; e++) {
                    size_t i = (size_t)events[e].token;
                    read_pattern(streams[i], &offsets[i]);
                    if (offsets[i] == (size_t)(round + 1) * BYTES)
                        reported++;
                    REQUIRE_OK(evq_reregister(poll, streams[i], i, EVQ_READABLE));
                }
            }
            REQUIRE_UINT(reported, ==, STREAMS);
        }
        evq_uring_queue_stats ring = queue_stats(poll);
        evq_test_note("%llu receives met a dry ring", (unsigned long long)ring.dry);
        CHECK_UINT(ring.dry, >, 0); /* the trap was met */
        CHECK_UINT(ring.buffers_free, ==, ring.buffers);
        for (int i = 0; i < STREAMS; i++)
            CHECK_UINT(offsets[i], ==, ROUNDS * BYTES);
    }
    for (int i = 0; i < made; i++) {
        evq_tcp_close(streams[i]);
        evq_socket_close(peers[i]);
    }
    evq_poll_close(poll);
}
/* ANCHOR_END: dry_test */

/* The peer sends more than the read buffer may hold (read_max 4 KiB): the
 * bytes of the provided buffers that do not fit stay in those buffers,
 * parked in order, the multishot receive is cancelled, and each read takes
 * the next ones; then the stream waits on the ring again. Every byte
 * arrives once and in order, the read buffer never grows past read_max,
 * and every provided buffer goes back. A version that gives a parked
 * buffer back before its bytes are read lets the kernel overwrite them. */
EVQ_TEST(provided_buffers_park_what_the_read_buffer_cannot_take)
{
    enum { MAX = 4096, SENT = 200 * 1024 };
    evq_poll *poll;
    evq_tcp *stream;
    evq_socket peer;
    REQUIRE_OK(evq_poll_open(&poll));
    REQUIRE_OK(ch04_pair(poll, &stream, &peer));
    evq_tcp_limits limits = provided(1024, MAX);
    REQUIRE_OK(evq_tcp_set_limits(stream, &limits));
    REQUIRE_OK(evq_register(poll, stream, 1, EVQ_READABLE));
    REQUIRE_OK(ch04_send_pattern(peer, SENT, 0));
    size_t offset = 0, parked_peak = 0;
    for (int turn = 0; turn < 10000 && offset < SENT; turn++) {
        evq_event event;
        REQUIRE(ch04_wait_one(poll, &event, 5000));
        size_t parked = stream_stats(stream).parked;
        if (parked > parked_peak)
            parked_peak = parked;
        const void *data;
        size_t len = 0;
        REQUIRE_OK(evq_tcp_peek(stream, &data, &len));
        REQUIRE_UINT(len, <=, MAX);
        REQUIRE_UINT(ch04_pattern_mismatch(data, len, offset), ==, len);
        REQUIRE_OK(evq_tcp_consume(stream, len));
        offset += len;
        REQUIRE_OK(evq_reregister(poll, stream, 1, EVQ_READABLE));
    }
    CHECK_UINT(offset, ==, SENT);
    evq_test_note("at most %zu bytes parked", parked_peak);
    CHECK_UINT(parked_peak, >, 0); /* the trap was met */
    CHECK_UINT(ch04_stats(stream).read_capacity_peak, <=, MAX);
    CHECK_UINT(stream_stats(stream).parked, ==, 0);
    evq_uring_queue_stats ring = queue_stats(poll);
    CHECK_UINT(ring.buffers_free, ==, ring.buffers);
    evq_tcp_close(stream);
    evq_socket_close(peer);
    evq_poll_close(poll);
}

/* ANCHOR: close_armed_test */
/* Closing a stream whose multishot receive is armed: the request holds its
 * own reference to the socket (close() cancels nothing), so the backend
 * cancels it, and the stream is retired until the receive's final
 * completion, -ECANCELED, has come back. Freed at once, the stream would
 * be the completion's (ASan: use after free), and retired_streams would
 * say 0 at once. */
EVQ_TEST(closing_a_stream_whose_multishot_receive_is_armed)
{
    evq_poll *poll;
    evq_tcp *stream, *other;
    evq_socket peer, other_peer;
    REQUIRE_OK(evq_poll_open(&poll));
    REQUIRE_OK(ch04_pair(poll, &stream, &peer));
    REQUIRE_OK(ch04_pair(poll, &other, &other_peer));
    evq_tcp_limits limits = provided(4096, 64 * 1024);
    REQUIRE_OK(evq_tcp_set_limits(stream, &limits));
    REQUIRE_OK(evq_register(poll, stream, 1, EVQ_READABLE));
    REQUIRE_OK(evq_register(poll, other, 2, EVQ_READABLE));
    evq_event event;
    size_t n = 0;
    CHECK_OK(evq_poll_wait(poll, &event, 1, 0, &n)); /* submitted: armed in the kernel */
    REQUIRE_UINT(stream_stats(stream).receive, ==, EVQ_URING_RECEIVE_PROVIDED);
    evq_tcp_close(stream);
    CHECK_UINT(evq_poll_retired_streams(poll), ==, 1);
    wait_until_nothing_is_retired(poll);
    /* The peer's data after the close goes nowhere, and the queue works on. */
    REQUIRE_OK(evq_net_send_all(peer, "late", 4));
    REQUIRE_OK(evq_net_send_all(other_peer, "x", 1));
    REQUIRE(ch04_wait_one(poll, &event, 5000));
    CHECK_UINT(event.token, ==, 2);
    evq_uring_queue_stats ring = queue_stats(poll);
    CHECK_UINT(ring.buffers_free, ==, ring.buffers);
    evq_tcp_close(other);
    evq_socket_close(peer);
    evq_socket_close(other_peer);
    evq_poll_close(poll);
}
/* ANCHOR_END: close_armed_test */

/* ANCHOR: kept_buffer_test */
/* A stream closed while its receive into the read buffer is in the kernel:
 * close() and ASYNC_CANCEL only ask, and until the receive's completion is
 * reaped the kernel may still write into that buffer - here it does, with
 * the 4 bytes the peer sends before the cancel has even been submitted
 * (the kernel runs the receive when this thread's send returns). So the
 * backend keeps the buffer with the retired stream. A version that lets
 * stream.c free it has the kernel write into whatever the allocator hands
 * out next: a block of the same size, filled with 0xAB, comes back with
 * the peer's bytes in it. (Under ASan the freed block is held back from
 * reuse, so the check only catches it in the other builds.) */
EVQ_TEST(a_receive_in_flight_keeps_its_buffer_after_close)
{
    enum { SIZE = 3000 }; /* an allocation size nothing else in the test asks for */
    evq_poll *poll;
    evq_tcp *stream;
    evq_socket peer;
    REQUIRE_OK(evq_poll_open(&poll));
    REQUIRE_OK(ch04_pair(poll, &stream, &peer));
    evq_tcp_limits limits = ch04_limits(SIZE, SIZE, 1024 * 1024, 256 * 1024);
    REQUIRE_OK(evq_tcp_set_limits(stream, &limits));
    REQUIRE_OK(evq_register(poll, stream, 1, EVQ_READABLE));
    evq_event event;
    size_t n = 0;
    CHECK_OK(evq_poll_wait(poll, &event, 1, 0, &n)); /* the receive is in the kernel */
    REQUIRE_UINT(ch04_stats(stream).kernel_lent, ==, SIZE);
    evq_tcp_close(stream);
    CHECK_UINT(evq_poll_retired_streams(poll), ==, 1);
    unsigned char *next = malloc(SIZE);
    REQUIRE(next != NULL);
    memset(next, 0xAB, SIZE);
    REQUIRE_OK(evq_net_send_all(peer, "late", 4));
    evq_sleep_ms(10);
    unsigned char expected[4] = {0xAB, 0xAB, 0xAB, 0xAB};
    CHECK_MEM(next, expected, 4);
    wait_until_nothing_is_retired(poll);
    free(next);
    evq_socket_close(peer);
    evq_poll_close(poll);
}
/* ANCHOR_END: kept_buffer_test */

/* ANCHOR: cancelled_buffer_test */
/* The same with data on its way: the peer's bytes have been received into
 * a provided buffer (its completion is in the CQ) when the stream is
 * closed. That buffer is the program's until it gives it back, and nobody
 * will read it: the backend gives it back when the retired stream's
 * completion is reaped. Without that, each such close costs the ring a
 * buffer for good (buffers_free one short) until every receive meets a dry
 * ring. */
EVQ_TEST(a_receive_cancelled_at_close_returns_its_buffer)
{
    evq_poll *poll;
    REQUIRE_OK(evq_poll_open(&poll));
    evq_tcp_limits limits = provided(4096, 64 * 1024);
    for (int round = 0; round < 5; round++) {
        evq_tcp *stream;
        evq_socket peer;
        REQUIRE_OK(ch04_pair(poll, &stream, &peer));
        REQUIRE_OK(evq_tcp_set_limits(stream, &limits));
        REQUIRE_OK(evq_register(poll, stream, 1, EVQ_READABLE));
        evq_event event;
        size_t n = 0;
        CHECK_OK(evq_poll_wait(poll, &event, 1, 0, &n)); /* armed in the kernel */
        REQUIRE_OK(ch04_send_pattern(peer, 3000, 0));    /* into a provided buffer */
        evq_sleep_ms(10);
        evq_tcp_close(stream); /* before any wait reaps it */
        CHECK_UINT(evq_poll_retired_streams(poll), ==, 1);
        wait_until_nothing_is_retired(poll);
        evq_uring_queue_stats ring = queue_stats(poll);
        CHECK_UINT(ring.buffers_free, ==, ring.buffers);
        evq_socket_close(peer);
    }
    evq_poll_close(poll);
}
/* ANCHOR_END: cancelled_buffer_test */

/* ANCHOR: short_send_test */
/* A send completion short of what it was lent: the peer does not read, so
 * the socket takes only part of 8 MiB and the SENDMSG completes with what
 * it took. Only those bytes leave the write queue; the rest is sent by
 * later SENDMSGs as the peer reads. Every byte arrives once and in order.
 * A version that pops what it lent instead of what went loses the
 * difference (the peer sees a gap: the pattern breaks). */
EVQ_TEST(a_send_completion_short_of_what_was_asked_keeps_the_rest)
{
    enum { TOTAL = 8 * 1024 * 1024 };
    evq_poll *poll;
    evq_tcp *stream;
    evq_socket peer;
    REQUIRE_OK(evq_poll_open(&poll));
    REQUIRE_OK(ch04_pair(poll, &stream, &peer));
    evq_tcp_limits limits = ch04_limits(4096, 64 * 1024, TOTAL, 1024);
    REQUIRE_OK(evq_tcp_set_limits(stream, &limits));
    unsigned char *data = malloc(TOTAL);
    REQUIRE(data != NULL);
    ch04_pattern_fill(data, TOTAL, 0);
    size_t taken = 0;
    CHECK_OK(evq_tcp_write(stream, data, TOTAL, &taken));
    CHECK_UINT(taken, ==, TOTAL);
    free(data);
    CHECK_UINT(evq_tcp_queued(stream), <, TOTAL); /* some went at once */
    CHECK_UINT(evq_tcp_queued(stream), >, 0);     /* and a short completion kept the rest */
    CHECK_UINT(queue_stats(poll).short_sends, >, 0);
    /* Read it all, slowly and through a small window, while the queue
     * sends the rest: the SENDMSGs that wait for room complete short too. */
    int window = 64 * 1024;
    setsockopt(peer, SOL_SOCKET, SO_RCVBUF, (const char *)&window, sizeof window);
    REQUIRE_OK(evq_register(poll, stream, 1, EVQ_WRITABLE));
    REQUIRE_OK(evq_socket_set_nonblocking(peer, true));
    uint64_t inline_shorts = queue_stats(poll).short_sends;
    unsigned char *got = malloc(64 * 1024);
    REQUIRE(got != NULL);
    size_t received = 0;
    uint64_t give_up = evq_clock_now_ns() + 30 * EVQ_NS_PER_S;
    while (received < TOTAL && evq_clock_now_ns() < give_up) {
        evq_event event;
        size_t n = 0;
        CHECK_OK(evq_poll_wait(poll, &event, 1, 1, &n));
        if (n == 1)
            CHECK_OK(evq_reregister(poll, stream, 1, EVQ_WRITABLE));
        size_t len = 0;
        int rc = evq_net_recv(peer, got, 64 * 1024, &len);
        if (rc == EVQ_EWOULDBLOCK)
            continue;
        if (!CHECK_OK(rc) || !CHECK_UINT(len, >, 0))
            break;
        if (!CHECK_UINT(ch04_pattern_mismatch(got, len, received), ==, len))
            break;
        received += len;
    }
    CHECK_UINT(received, ==, TOTAL);
    CHECK_UINT(evq_tcp_queued(stream), ==, 0);
    evq_uring_queue_stats ring = queue_stats(poll);
    evq_test_note("%llu short send completions (%llu of them at once, at submission)",
                  (unsigned long long)ring.short_sends, (unsigned long long)inline_shorts);
    CHECK_UINT(ring.short_sends, >, inline_shorts); /* and some from later waits */
    free(got);
    evq_tcp_close(stream);
    evq_socket_close(peer);
    evq_poll_close(poll);
}
/* ANCHOR_END: short_send_test */

/* ANCHOR: accept_test */
/* A listener's ACCEPT takes one connection ahead of the caller, no more:
 * ten clients wait, the listener is reported, the caller takes none, and
 * the backend holds one accepted connection - the other nine are still in
 * the kernel's backlog, where a server at its limit leaves them. Then one
 * accept loop takes all ten (the one accepted ahead, then accept4()). A
 * multishot ACCEPT would have taken all ten between two waits. */
EVQ_TEST(a_listener_accepts_one_connection_ahead_at_most)
{
    enum { CLIENTS = 10 };
    evq_poll *poll;
    evq_tcp *listener;
    REQUIRE_OK(evq_poll_open(&poll));
    REQUIRE_OK(evq_tcp_listen(poll, "127.0.0.1", 0, 16, &listener));
    uint16_t port = 0;
    REQUIRE_OK(evq_tcp_local_port(listener, &port));
    REQUIRE_OK(evq_register(poll, listener, 9, EVQ_READABLE));
    evq_event event;
    size_t n = 0;
    CHECK_OK(evq_poll_wait(poll, &event, 1, 0, &n)); /* the ACCEPT is in the kernel */
    evq_socket clients[CLIENTS];
    for (int i = 0; i < CLIENTS; i++)
        REQUIRE_OK(evq_net_connect_loopback(port, &clients[i]));
    REQUIRE(ch04_wait_one(poll, &event, 5000));
    CHECK_UINT(event.token, ==, 9);
    for (int i = 0; i < 3; i++) /* turns of a loop that does not accept */
        CHECK_OK(evq_poll_wait(poll, &event, 1, 20, &n));
    CHECK_UINT(stream_stats(listener).accepted_ahead, ==, 1);
    int accepted = 0;
    for (;;) {
        evq_tcp *stream = NULL;
        int rc = evq_tcp_accept(listener, &stream);
        if (rc == EVQ_EWOULDBLOCK)
            break;
        if (!CHECK_OK(rc))
            break;
        accepted++;
        evq_tcp_close(stream);
    }
    CHECK_INT(accepted, ==, CLIENTS);
    for (int i = 0; i < CLIENTS; i++)
        evq_socket_close(clients[i]);
    evq_tcp_close(listener);
    evq_poll_close(poll);
}
/* ANCHOR_END: accept_test */

/* Where io_uring is refused the queue says so with a code - EVQ_EACCES
 * (kernel.io_uring_disabled, a seccomp profile, a security module) or
 * EVQ_ENOTSUP (no io_uring, or too old) - and makes nothing. */
EVQ_TEST(an_unavailable_io_uring_is_a_code)
{
    static const struct {
        int setup_errno;
        int code;
    } cases[] = {{EPERM, EVQ_EACCES}, {EACCES, EVQ_EACCES}, {ENOSYS, EVQ_ENOTSUP}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        evq_uring_testing_fail_setup(cases[i].setup_errno);
        evq_poll *poll = (evq_poll *)&poll;
        CHECK_ERR(evq_poll_open(&poll), cases[i].code);
        CHECK(poll == NULL);
    }
    evq_uring_testing_fail_setup(0);
    evq_poll *poll = NULL;
    CHECK_OK(evq_poll_open(&poll)); /* and it works again */
    evq_poll_close(poll);
}

/* The ring the queue runs on: no SINGLE_ISSUER, DEFER_TASKRUN or
 * COOP_TASKRUN - chapter 4's queue passes between threads - and a wait
 * that finds nothing is one io_uring_enter. */
EVQ_TEST(the_ring_is_shared_between_threads_and_a_wait_is_one_enter)
{
    evq_poll *poll;
    REQUIRE_OK(evq_poll_open(&poll));
    evq_uring_queue_stats before = queue_stats(poll);
    CHECK_UINT(before.setup_flags & (IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
                                     IORING_SETUP_COOP_TASKRUN),
               ==, 0);
    evq_event event;
    size_t n = 0;
    CHECK_OK(evq_poll_wait(poll, &event, 1, 10, &n));
    CHECK_UINT(n, ==, 0);
    CHECK_UINT(queue_stats(poll).enter_calls - before.enter_calls, ==, 1);
    evq_poll_close(poll);
}

/* ANCHOR: handover_test */
/* A queue passed from one thread to another, as chapter 4 allows: one
 * stream's receive was submitted by the main thread's wait, another's is
 * only prepared, and the main thread then computes (no system call for
 * 600 ms) while a second thread waits on the queue and a third sends the
 * first stream's data. Two things must hold. The waiting thread may submit
 * what the main thread prepared: with IORING_SETUP_SINGLE_ISSUER (and
 * DEFER_TASKRUN, which needs it) only the ring's creator may, and the
 * waiter's io_uring_enter fails with EEXIST. And the first receive, which
 * the kernel finishes in the thread that submitted it (task work), is
 * finished although that thread is busy elsewhere: the kernel interrupts
 * it (with COOP_TASKRUN it would wait for the thread's next system call or
 * interrupt - measured here, up to 0.7 ms). */
struct handover {
    evq_poll *poll;
    evq_socket peer;
    int rc;
    size_t n;
    evq_event event;
};

static void wait_elsewhere(void *arg)
{
    struct handover *h = arg;
    h->rc = evq_poll_wait(h->poll, &h->event, 1, 300, &h->n);
}

static void send_later(void *arg)
{
    struct handover *h = arg;
    evq_sleep_ms(50); /* the main thread is busy by now */
    CHECK_OK(evq_net_send_all(h->peer, "x", 1));
}

EVQ_TEST(a_queue_passed_to_another_thread_gets_its_completions)
{
    struct handover h = {0};
    evq_tcp *stream, *second;
    evq_socket second_peer;
    REQUIRE_OK(evq_poll_open(&h.poll));
    REQUIRE_OK(ch04_pair(h.poll, &stream, &h.peer));
    REQUIRE_OK(ch04_pair(h.poll, &second, &second_peer));
    REQUIRE_OK(evq_register(h.poll, stream, 1, EVQ_READABLE));
    evq_event event;
    size_t n = 0;
    CHECK_OK(evq_poll_wait(h.poll, &event, 1, 0, &n));         /* submitted by this thread */
    REQUIRE_OK(evq_register(h.poll, second, 2, EVQ_READABLE)); /* the waiter submits it */
    evq_thread waiter, sender;
    REQUIRE_OK(evq_thread_start(&waiter, wait_elsewhere, &h));
    REQUIRE_OK(evq_thread_start(&sender, send_later, &h));
    /* Busy, in user space: clock_gettime is the vDSO's, no system call. */
    uint64_t until = evq_clock_now_ns() + 600 * EVQ_NS_PER_MS;
    while (evq_clock_now_ns() < until)
        continue;
    evq_thread_join(&waiter);
    evq_thread_join(&sender);
    CHECK_OK(h.rc);
    CHECK_UINT(h.n, ==, 1);
    CHECK_UINT(h.event.token, ==, 1);
    evq_tcp_close(stream);
    evq_tcp_close(second);
    evq_socket_close(h.peer);
    evq_socket_close(second_peer);
    evq_poll_close(h.poll);
}
/* ANCHOR_END: handover_test */

int main(int argc, char **argv)
{
    static const evq_test_case cases[] = {
        EVQ_CASE(provided_buffers_an_idle_stream_holds_no_buffer),
        EVQ_CASE(a_dry_ring_loses_nothing),
        EVQ_CASE(provided_buffers_park_what_the_read_buffer_cannot_take),
        EVQ_CASE(closing_a_stream_whose_multishot_receive_is_armed),
        EVQ_CASE(a_receive_in_flight_keeps_its_buffer_after_close),
        EVQ_CASE(a_receive_cancelled_at_close_returns_its_buffer),
        EVQ_CASE(a_send_completion_short_of_what_was_asked_keeps_the_rest),
        EVQ_CASE(a_listener_accepts_one_connection_ahead_at_most),
        EVQ_CASE(an_unavailable_io_uring_is_a_code),
        EVQ_CASE(the_ring_is_shared_between_threads_and_a_wait_is_one_enter),
        EVQ_CASE(a_queue_passed_to_another_thread_gets_its_completions),
    };
    return evq_test_main(argc, argv, cases, EVQ_COUNT(cases));
}

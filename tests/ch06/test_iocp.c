/* test_iocp.c - chapter 3: what only a completion backend has to get right.
 * The 0-byte receive that lends the kernel no buffer, a completion that
 * brings less than is waiting, the receive that announces data a reader
 * already took, AcceptEx posted ahead, and the memory a closed stream must
 * keep until the kernel gives it back. On epoll and kqueue only the
 * portable half runs: nothing is ever lent to the kernel there.
 */
#include "ch06_test.h"

#include <stdlib.h>

/* A readiness backend lends nothing: an idle stream, a busy one and a
 * listener all say kernel_lent == 0, and nothing is ever retired. */
EVQ_TEST(kernel_lent_is_what_the_backend_lends)
{
    evq_poll *poll;
    evq_tcp *stream;
    evq_socket peer;
    REQUIRE_OK(evq_poll_open(&poll));
    REQUIRE_OK(ch06_pair(poll, &stream, &peer));
    REQUIRE_OK(evq_register(poll, stream, 1, EVQ_READABLE));
    evq_tcp_stats stats = ch06_stats(stream);
#if defined(EVQ_BACKEND_IOCP) || defined(EVQ_BACKEND_URING)
    /* The default: a receive into the read buffer waits for the peer. */
    evq_tcp_limits limits;
    evq_tcp_get_default_limits(&limits);
    CHECK_UINT(stats.kernel_lent, ==, limits.read_initial);
    CHECK_UINT(stats.read_capacity, ==, limits.read_initial);
#else
    CHECK_UINT(stats.kernel_lent, ==, 0);
#endif
    evq_tcp_close(stream);
    evq_socket_close(peer);
    evq_poll_close(poll);
}

#if defined(EVQ_BACKEND_IOCP)

static evq_tcp_limits zero_byte_limits(size_t read_initial, size_t read_max)
{
    evq_tcp_limits limits = ch06_limits(read_initial, read_max, 1024 * 1024, 256 * 1024);
    limits.zero_byte_receive = 1;
    return limits;
}

/* Wait for the one event of `stream` (token 1) and read until EWOULDBLOCK,
 * checking the pattern from *offset on. */
static void read_pattern_after_event(evq_poll *poll, evq_tcp *stream, size_t *offset)
{
    evq_event event;
    REQUIRE(ch06_wait_one(poll, &event, 5000));
    CHECK_UINT(event.token, ==, 1);
    CHECK_UINT(event.ready & EVQ_READABLE, ==, EVQ_READABLE);
    unsigned char buf[4096];
    for (int i = 0; i < 1000; i++) {
        size_t n = 0;
        int rc = evq_tcp_read(stream, buf, sizeof buf, &n);
        if (rc == EVQ_EWOULDBLOCK)
            return;
        REQUIRE_OK(rc);
        CHECK_UINT(ch06_pattern_mismatch(buf, n, *offset), ==, n);
        *offset += n;
    }
    CHECK(!"the stream never ran dry");
}

/* ANCHOR: zero_byte_test */
/* With zero_byte_receive an idle stream costs no buffer: the kernel holds a
 * 0-byte WSARecv, and the read buffer is allocated when data has come and
 * given back when the next zero-byte receive is posted. The version that receives
 * into the buffer shows kernel_lent == read_capacity == read_initial here
 * (kernel_lent_is_what_the_backend_lends). */
EVQ_TEST_WINDOWS(iocp_zero_byte_receive_pins_no_buffer)
{
    evq_poll *poll;
    evq_tcp *stream;
    evq_socket peer;
    REQUIRE_OK(evq_poll_open(&poll));
    REQUIRE_OK(ch06_pair(poll, &stream, &peer));
    evq_tcp_limits limits = zero_byte_limits(4096, 64 * 1024);
    REQUIRE_OK(evq_tcp_set_limits(stream, &limits));
    REQUIRE_OK(evq_register(poll, stream, 1, EVQ_READABLE));
    evq_tcp_stats idle = ch06_stats(stream);
    CHECK_UINT(idle.kernel_lent, ==, 0);
    CHECK_UINT(idle.read_capacity, ==, 0);

    size_t offset = 0;
    for (int round = 0; round < 3; round++) {
        REQUIRE_OK(ch06_send_pattern(peer, 10000, offset));
        read_pattern_after_event(poll, stream, &offset);
        CHECK_UINT(ch06_stats(stream).read_capacity, >, 0); /* data came: a buffer */
        REQUIRE_OK(evq_reregister(poll, stream, 1, EVQ_READABLE));
        idle = ch06_stats(stream); /* drained and waiting again: nothing pinned */
        CHECK_UINT(idle.kernel_lent, ==, 0);
        CHECK_UINT(idle.read_capacity, ==, 0);
    }
    CHECK_UINT(offset, ==, 30000);
    evq_tcp_close(stream);
    evq_socket_close(peer);
    evq_poll_close(poll);
}
/* ANCHOR_END: zero_byte_test */

/* A receive lent 1 KiB completes full while 48 KiB wait in the socket: the
 * stream's turn fetches the rest at once, growing the buffer, so the event
 * finds far more than the completion brought. The version that only counts
 * the completion's bytes shows 1024 here (and, with a one-shot reader that
 * reads only what the event announced, would strand the rest). The same
 * with the 0-byte receive, which brings nothing by itself. (Reading opens
 * the peer's window: bytes it sends then come later, with a completion of
 * their own - chapter 5's fill stops at a short receive - so the check is
 * that the first event holds many receives' worth, and that all 48 KiB
 * arrive in order.) */
static void completion_larger_than_the_buffer(int zero_byte)
{
    enum { TOTAL = 48 * 1024 };
    evq_poll *poll;
    evq_tcp *stream;
    evq_socket peer;
    REQUIRE_OK(evq_poll_open(&poll));
    REQUIRE_OK(ch06_pair(poll, &stream, &peer));
    evq_tcp_limits limits = zero_byte_limits(1024, 64 * 1024);
    limits.zero_byte_receive = zero_byte;
    REQUIRE_OK(evq_tcp_set_limits(stream, &limits));
    REQUIRE_OK(ch06_send_pattern(peer, TOTAL, 0)); /* all in the socket before the receive */
    REQUIRE_OK(evq_register(poll, stream, 1, EVQ_READABLE));
    evq_event event;
    REQUIRE(ch06_wait_one(poll, &event, 5000));
    evq_tcp_stats stats = ch06_stats(stream);
    CHECK_UINT(stats.read_buffered, >, 8 * 1024);
    CHECK_UINT(stats.read_capacity, >=, 16 * 1024); /* 1 KiB doubled as it filled */
    CHECK_UINT(stats.kernel_lent, ==, 0);

    size_t got = 0;
    for (int round = 0; round < 100 && got < TOTAL; round++) {
        const void *data;
        size_t len = 0;
        int rc = evq_tcp_peek(stream, &data, &len);
        if (rc == EVQ_EWOULDBLOCK) { /* the rest comes with its own completion */
            REQUIRE_OK(evq_reregister(poll, stream, 1, EVQ_READABLE));
            REQUIRE(ch06_wait_one(poll, &event, 5000));
            continue;
        }
        REQUIRE_OK(rc);
        CHECK_UINT(ch06_pattern_mismatch(data, len, got), ==, len);
        REQUIRE_OK(evq_tcp_consume(stream, len));
        got += len;
    }
    CHECK_UINT(got, ==, TOTAL);
    evq_tcp_close(stream);
    evq_socket_close(peer);
    evq_poll_close(poll);
}

EVQ_TEST_WINDOWS(iocp_a_completion_larger_than_the_buffer_is_read_completely)
{
    completion_larger_than_the_buffer(0);
}

EVQ_TEST_WINDOWS(iocp_a_zero_byte_completion_is_read_completely)
{
    completion_larger_than_the_buffer(1);
}

/* Chapter 4's reader could take the data before the wait had dequeued the
 * 0-byte receive that announced it, and the completion then found an empty
 * socket. Chapter 5's receive is the stream's look at the socket: until its
 * completion, the socket counts as found empty (read_drained), so a read
 * ahead of it says EWOULDBLOCK and takes nothing; the completion announces
 * the byte, the reader takes it, and the next receive - posted when the
 * stream is armed again - announces the next. A version that stopped
 * posting receives would never hear of "b"; one that reported every
 * completion would report a read that says EWOULDBLOCK. */
EVQ_TEST_WINDOWS(iocp_a_read_ahead_of_the_completion_takes_nothing)
{
    evq_poll *poll;
    evq_tcp *stream;
    evq_socket peer;
    REQUIRE_OK(evq_poll_open(&poll));
    REQUIRE_OK(ch06_pair(poll, &stream, &peer));
    evq_tcp_limits limits = zero_byte_limits(4096, 64 * 1024);
    REQUIRE_OK(evq_tcp_set_limits(stream, &limits));
    REQUIRE_OK(evq_register(poll, stream, 1, EVQ_READABLE));
    REQUIRE_OK(evq_net_send_all(peer, "a", 1));
    evq_sleep_ms(50); /* the completion is in the port by now (likely; not relied on) */
    char buf[8];
    size_t n = 0;
    CHECK_ERR(evq_tcp_read(stream, buf, sizeof buf, &n), EVQ_EWOULDBLOCK); /* ahead of it */
    evq_event event;
    REQUIRE(ch06_wait_one(poll, &event, 5000));
    CHECK_UINT(event.ready & EVQ_READABLE, ==, EVQ_READABLE);
    REQUIRE_OK(evq_tcp_read(stream, buf, sizeof buf, &n));
    CHECK_UINT(n, ==, 1);
    CHECK_MEM(buf, "a", 1);
    REQUIRE_OK(evq_reregister(poll, stream, 1, EVQ_READABLE));
    for (int i = 0; i < 3; i++) {
        CHECK_OK(evq_poll_wait(poll, &event, 1, 20, &n));
        CHECK_UINT(n, ==, 0);
    }
    REQUIRE_OK(evq_net_send_all(peer, "b", 1));
    REQUIRE(ch06_wait_one(poll, &event, 5000));
    CHECK_UINT(event.ready & EVQ_READABLE, ==, EVQ_READABLE);
    REQUIRE_OK(evq_tcp_read(stream, buf, sizeof buf, &n));
    CHECK_UINT(n, ==, 1);
    CHECK_MEM(buf, "b", 1);
    evq_tcp_close(stream);
    evq_socket_close(peer);
    evq_poll_close(poll);
}

/* More clients than AcceptEx posted, all connected before the loop looks:
 * each accept posts the next AcceptEx, so every one is taken, in the order
 * they came, and each accepted socket knows its addresses (that needs
 * SO_UPDATE_ACCEPT_CONTEXT). A listener that posts AcceptEx only once
 * accepts four and then never reports again. */
EVQ_TEST_WINDOWS(iocp_accept_ex_takes_every_connection_in_order)
{
    enum { CLIENTS = 7 };
    evq_poll *poll;
    evq_tcp *listener;
    REQUIRE_OK(evq_poll_open(&poll));
    REQUIRE_OK(evq_tcp_listen(poll, "127.0.0.1", 0, 16, &listener));
    uint16_t port = 0;
    REQUIRE_OK(evq_tcp_local_port(listener, &port));
    CHECK_UINT(ch06_stats(listener).kernel_lent, >, 0); /* the AcceptEx address buffers */
    evq_socket clients[CLIENTS];
    for (int i = 0; i < CLIENTS; i++) {
        REQUIRE_OK(evq_net_connect_loopback(port, &clients[i]));
        char id = (char)('0' + i);
        REQUIRE_OK(evq_net_send_all(clients[i], &id, 1));
        evq_sleep_ms(5); /* one at a time, so that "in order" means something */
    }
    REQUIRE_OK(evq_register(poll, listener, 9, EVQ_READABLE));
    for (int i = 0; i < CLIENTS; i++) {
        evq_event event;
        REQUIRE(ch06_wait_one(poll, &event, 5000));
        CHECK_UINT(event.token, ==, 9);
        evq_tcp *accepted = NULL;
        REQUIRE_OK(evq_tcp_accept(listener, &accepted));
        uint16_t local = 0;
        CHECK_OK(evq_tcp_local_port(accepted, &local));
        CHECK_UINT(local, ==, port);
        REQUIRE_OK(evq_register(poll, accepted, 1, EVQ_READABLE));
        REQUIRE(ch06_wait_one(poll, &event, 5000));
        CHECK_UINT(event.token, ==, 1);
        char id = 0;
        size_t n = 0;
        REQUIRE_OK(evq_tcp_read(accepted, &id, 1, &n));
        CHECK_UINT((unsigned)id, ==, (unsigned)('0' + i));
        evq_tcp_close(accepted);
        REQUIRE_OK(evq_reregister(poll, listener, 9, EVQ_READABLE));
    }
    evq_tcp *none = NULL;
    CHECK_ERR(evq_tcp_accept(listener, &none), EVQ_EWOULDBLOCK);
    for (int i = 0; i < CLIENTS; i++)
        evq_socket_close(clients[i]);
    evq_tcp_close(listener);
    evq_poll_close(poll);
}

/* Closing a listener whose AcceptEx are in flight: the kernel still owns
 * their OVERLAPPEDs and address buffers, so the queue keeps them until the
 * cancelled completions come back. Freeing at once shows 0 retired here. */
EVQ_TEST_WINDOWS(iocp_closing_a_listener_with_accept_ex_in_flight)
{
    evq_poll *poll;
    evq_tcp *listener;
    REQUIRE_OK(evq_poll_open(&poll));
    REQUIRE_OK(evq_tcp_listen(poll, "127.0.0.1", 0, 16, &listener));
    REQUIRE_OK(evq_register(poll, listener, 9, EVQ_READABLE));
    evq_tcp_close(listener);
    CHECK_UINT(evq_poll_retired_streams(poll), ==, 1);
    evq_event event;
    size_t n = 0;
    for (int i = 0; i < 50 && evq_poll_retired_streams(poll) > 0; i++) {
        CHECK_OK(evq_poll_wait(poll, &event, 1, 100, &n));
        CHECK_UINT(n, ==, 0); /* cancellations are not events */
    }
    CHECK_UINT(evq_poll_retired_streams(poll), ==, 0);

    /* And a queue closed under a listener with AcceptEx (and one accepted
     * connection never taken) collects them itself. */
    REQUIRE_OK(evq_tcp_listen(poll, "127.0.0.1", 0, 16, &listener));
    uint16_t port = 0;
    REQUIRE_OK(evq_tcp_local_port(listener, &port));
    evq_socket client;
    REQUIRE_OK(evq_net_connect_loopback(port, &client));
    evq_poll_close(poll);
    evq_tcp *none = NULL;
    CHECK_ERR(evq_tcp_accept(listener, &none), EVQ_ECLOSED);
    evq_tcp_close(listener);
    evq_socket_close(client);
}

/* A WSASend the peer does not drain stays in flight: the kernel reads the
 * write queue's chunks in place (kernel_lent counts them), and closing the
 * stream then retires it with those chunks, freed only when the cancelled
 * send comes back. */
EVQ_TEST_WINDOWS(iocp_a_send_in_flight_lends_the_queue_and_is_retired_with_it)
{
    enum { TOTAL = 8 * 1024 * 1024 };
    evq_poll *poll;
    evq_tcp *stream;
    evq_socket peer;
    REQUIRE_OK(evq_poll_open(&poll));
    REQUIRE_OK(ch06_pair(poll, &stream, &peer));
    evq_tcp_limits limits = ch06_limits(4096, 64 * 1024, TOTAL, 1024);
    REQUIRE_OK(evq_tcp_set_limits(stream, &limits));
    unsigned char *data = malloc(TOTAL);
    REQUIRE(data != NULL);
    ch06_pattern_fill(data, TOTAL, 0);
    size_t taken = 0;
    CHECK_OK(evq_tcp_write(stream, data, TOTAL, &taken));
    CHECK_UINT(taken, ==, TOTAL);
    evq_event event;
    size_t n = 0;
    evq_tcp_stats stats = ch06_stats(stream);
    for (int i = 0; i < 50 && stats.kernel_lent == 0; i++) { /* sends go out, until one sticks */
        CHECK_OK(evq_poll_wait(poll, &event, 1, 20, &n));
        stats = ch06_stats(stream);
    }
    CHECK_UINT(stats.kernel_lent, >, 0);
    CHECK_UINT(stats.kernel_lent, <=, stats.write_queued);
    evq_tcp_close(stream);
    CHECK_UINT(evq_poll_retired_streams(poll), ==, 1);
    evq_socket_close(peer); /* the send fails or is cancelled: it comes back */
    for (int i = 0; i < 50 && evq_poll_retired_streams(poll) > 0; i++)
        CHECK_OK(evq_poll_wait(poll, &event, 1, 100, &n));
    CHECK_UINT(evq_poll_retired_streams(poll), ==, 0);
    free(data);
    evq_poll_close(poll);
}

/* The io hook sits in front of WSARecv and recv(): a receive lowered to
 * 100 bytes and an EINTR before every other call still deliver every byte,
 * in order, and the calls are counted. */
static int small_and_interrupted(void *context, enum evq_io_direction direction, size_t *len)
{
    unsigned *calls = context;
    if (direction != EVQ_IO_RECEIVE)
        return 0;
    if ((*calls)++ % 2 == 0)
        return EVQ_EINTR;
    if (*len > 100)
        *len = 100;
    return 0;
}

EVQ_TEST_WINDOWS(iocp_the_io_hook_shortens_and_interrupts_receives)
{
    for (int zero_byte = 0; zero_byte <= 1; zero_byte++) {
        evq_poll *poll;
        evq_tcp *stream;
        evq_socket peer;
        REQUIRE_OK(evq_poll_open(&poll));
        REQUIRE_OK(ch06_pair(poll, &stream, &peer));
        evq_tcp_limits limits = zero_byte_limits(4096, 64 * 1024);
        limits.zero_byte_receive = zero_byte;
        REQUIRE_OK(evq_tcp_set_limits(stream, &limits));
        unsigned calls = 0;
        evq_tcp_set_io_hook(stream, small_and_interrupted, &calls);
        REQUIRE_OK(evq_register(poll, stream, 1, EVQ_READABLE));
        REQUIRE_OK(ch06_send_pattern(peer, 1000, 0));
        size_t offset = 0;
        for (int i = 0; i < 20 && offset < 1000; i++) {
            read_pattern_after_event(poll, stream, &offset);
            REQUIRE_OK(evq_reregister(poll, stream, 1, EVQ_READABLE));
        }
        CHECK_UINT(offset, ==, 1000);
        CHECK_UINT(ch06_stats(stream).receive_calls, ==, calls);
        CHECK_UINT(calls, >=, 2 * 10); /* at most 100 bytes a call, each after an EINTR */
        evq_tcp_close(stream);
        evq_socket_close(peer);
        evq_poll_close(poll);
    }
}
#endif

int main(int argc, char **argv)
{
    static const evq_test_case cases[] = {
        EVQ_CASE(kernel_lent_is_what_the_backend_lends),
#if defined(EVQ_BACKEND_IOCP)
        EVQ_CASE(iocp_zero_byte_receive_pins_no_buffer),
        EVQ_CASE(iocp_a_completion_larger_than_the_buffer_is_read_completely),
        EVQ_CASE(iocp_a_zero_byte_completion_is_read_completely),
        EVQ_CASE(iocp_a_read_ahead_of_the_completion_takes_nothing),
        EVQ_CASE(iocp_accept_ex_takes_every_connection_in_order),
        EVQ_CASE(iocp_closing_a_listener_with_accept_ex_in_flight),
        EVQ_CASE(iocp_a_send_in_flight_lends_the_queue_and_is_retired_with_it),
        EVQ_CASE(iocp_the_io_hook_shortens_and_interrupts_receives),
#endif
    };
    return evq_test_main(argc, argv, cases, EVQ_COUNT(cases));
}

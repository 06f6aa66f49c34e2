/* test_iocp.c - chapter 3: what only a completion backend has to get right.
 * The 0-byte receive that lends the kernel no buffer, a completion that
 * brings less than is waiting, the receive that announces data a reader
 * already took, AcceptEx posted ahead, and the memory a closed stream must
 * keep until the kernel gives it back. On epoll and kqueue only the
 * portable half runs: nothing is ever lent to the kernel there.
 */
#include "ch04_test.h"

#include <stdlib.h>

/* A readiness backend lends nothing: an idle stream, a busy one and a
 * listener all say kernel_lent == 0, and nothing is ever retired. */
EVQ_TEST(kernel_lent_is_what_the_backend_lends)
{
    evq_poll *poll;
    evq_tcp *stream;
    evq_socket peer;
    REQUIRE_OK(evq_poll_open(&poll));
    REQUIRE_OK(ch04_pair(poll, &stream, &peer));
    REQUIRE_OK(evq_register(poll, stream, 1, EVQ_READABLE));
    evq_tcp_stats stats = ch04_stats(stream);
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
    evq_tcp_limits limits = ch04_limits(read_initial, read_max, 1024 * 1024, 256 * 1024);
    limits.zero_byte_receive = 1;
    return limits;
}

/* Wait for the one event of `stream` (token 1) and read until EWOULDBLOCK,
 * checking the pattern from *offset on. */
static void read_pattern_after_event(evq_poll *poll, evq_tcp *stream, size_t *offset)
{
    evq_event event;
    REQUIRE(ch04_wait_one(poll, &event, 5000));
    CHECK_UINT(event.token, ==, 1);
    CHECK_UINT(event.ready & EVQ_READABLE, ==, EVQ_READABLE);
    unsigned char buf[4096];
    for (int i = 0; i < 1000; i++) {
        size_t n = 0;
        int rc = evq_tcp_read(stream, buf, sizeof buf, &n);
        if (rc == EVQ_EWOULDBLOCK)
            return;
        REQUIRE_OK(rc);
        CHECK_UINT(ch04_pattern_mismatch(buf, n, *offset), ==, n);
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
    REQUIRE_OK(ch04_pair(poll, &stream, &peer));
    evq_tcp_limits limits = zero_byte_limits(4096, 64 * 1024);
    REQUIRE_OK(evq_tcp_set_limits(stream, &limits));
    REQUIRE_OK(evq_register(poll, stream, 1, EVQ_READABLE));
    evq_tcp_stats idle = ch04_stats(stream);
    CHECK_UINT(idle.kernel_lent, ==, 0);
    CHECK_UINT(idle.read_capacity, ==, 0);

    size_t offset = 0;
    for (int round = 0; round < 3; round++) {
        REQUIRE_OK(ch04_send_pattern(peer, 10000, offset));
        read_pattern_after_event(poll, stream, &offset);
        CHECK_UINT(ch04_stats(stream).read_capacity, >, 0); /* data came: a buffer */
        REQUIRE_OK(evq_reregister(poll, stream, 1, EVQ_READABLE));
        idle = ch04_stats(stream); /* drained and waiting again: nothing pinned */
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
 * completion handler fetches the rest at once, growing the buffer, so the
 * event finds everything buffered. The version that only counts the
 * completion's bytes shows 1024 here (and, with a one-shot reader that
 * reads only what the event announced, would strand the rest). The same
 * with the 0-byte receive, which brings nothing by itself. */
static void completion_larger_than_the_buffer(int zero_byte)
{
    enum { TOTAL = 48 * 1024 };
    evq_poll *poll;
    evq_tcp *stream;
    evq_socket peer;
    REQUIRE_OK(evq_poll_open(&poll));
    REQUIRE_OK(ch04_pair(poll, &stream, &peer));
    evq_tcp_limits limits = zero_byte_limits(1024, 64 * 1024);
    limits.zero_byte_receive = zero_byte;
    REQUIRE_OK(evq_tcp_set_limits(stream, &limits));
    REQUIRE_OK(ch04_send_pattern(peer, TOTAL, 0)); /* all in the socket before the receive */
    REQUIRE_OK(evq_register(poll, stream, 1, EVQ_READABLE));
    evq_event event;
    REQUIRE(ch04_wait_one(poll, &event, 5000));
    evq_tcp_stats stats = ch04_stats(stream);
    CHECK_UINT(stats.read_buffered, ==, TOTAL);
    CHECK_UINT(stats.read_capacity, ==, 64 * 1024); /* 1 KiB doubled until it fit */
    CHECK_UINT(stats.kernel_lent, ==, 0);

    const void *data;
    size_t len = 0;
    REQUIRE_OK(evq_tcp_peek(stream, &data, &len));
    REQUIRE_UINT(len, ==, TOTAL);
    CHECK_UINT(ch04_pattern_mismatch(data, len, 0), ==, TOTAL);
    REQUIRE_OK(evq_tcp_consume(stream, len));
    CHECK_ERR(evq_tcp_peek(stream, &data, &len), EVQ_EWOULDBLOCK);
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

/* A reader may take the data before the wait has dequeued the 0-byte
 * receive that announced it (recv() beside a 0-byte WSARecv is safe: that
 * one takes no data). The completion then finds an empty socket: no event
 * (READABLE would be a lie: the read would say EWOULDBLOCK), and the
 * receive is posted again. A version that does not resubmit never hears
 * of the next bytes; one that reports every completion reports a read that
 * blocks. */
EVQ_TEST_WINDOWS(iocp_a_receive_for_data_already_read_is_posted_again)
{
    evq_poll *poll;
    evq_tcp *stream;
    evq_socket peer;
    REQUIRE_OK(evq_poll_open(&poll));
    REQUIRE_OK(ch04_pair(poll, &stream, &peer));
    evq_tcp_limits limits = zero_byte_limits(4096, 64 * 1024);
    REQUIRE_OK(evq_tcp_set_limits(stream, &limits));
    REQUIRE_OK(evq_register(poll, stream, 1, EVQ_READABLE));
    REQUIRE_OK(evq_net_send_all(peer, "a", 1));
    evq_sleep_ms(50); /* the completion is in the port by now (likely; not relied on) */
    char buf[8];
    size_t n = 0;
    REQUIRE_OK(evq_tcp_read(stream, buf, sizeof buf, &n)); /* ahead of the event */
    CHECK_UINT(n, ==, 1);
    evq_event event;
    for (int i = 0; i < 3; i++) {
        CHECK_OK(evq_poll_wait(poll, &event, 1, 20, &n));
        CHECK_UINT(n, ==, 0);
    }
    REQUIRE_OK(evq_net_send_all(peer, "b", 1));
    REQUIRE(ch04_wait_one(poll, &event, 5000));
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
    CHECK_UINT(ch04_stats(listener).kernel_lent, >, 0); /* the AcceptEx address buffers */
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
        REQUIRE(ch04_wait_one(poll, &event, 5000));
        CHECK_UINT(event.token, ==, 9);
        evq_tcp *accepted = NULL;
        REQUIRE_OK(evq_tcp_accept(listener, &accepted));
        uint16_t local = 0;
        CHECK_OK(evq_tcp_local_port(accepted, &local));
        CHECK_UINT(local, ==, port);
        REQUIRE_OK(evq_register(poll, accepted, 1, EVQ_READABLE));
        REQUIRE(ch04_wait_one(poll, &event, 5000));
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
    REQUIRE_OK(ch04_pair(poll, &stream, &peer));
    evq_tcp_limits limits = ch04_limits(4096, 64 * 1024, TOTAL, 1024);
    REQUIRE_OK(evq_tcp_set_limits(stream, &limits));
    unsigned char *data = malloc(TOTAL);
    REQUIRE(data != NULL);
    ch04_pattern_fill(data, TOTAL, 0);
    size_t taken = 0;
    CHECK_OK(evq_tcp_write(stream, data, TOTAL, &taken));
    CHECK_UINT(taken, ==, TOTAL);
    evq_event event;
    size_t n = 0;
    evq_tcp_stats stats = ch04_stats(stream);
    for (int i = 0; i < 50 && stats.kernel_lent == 0; i++) { /* sends go out, until one sticks */
        CHECK_OK(evq_poll_wait(poll, &event, 1, 20, &n));
        stats = ch04_stats(stream);
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
        REQUIRE_OK(ch04_pair(poll, &stream, &peer));
        evq_tcp_limits limits = zero_byte_limits(4096, 64 * 1024);
        limits.zero_byte_receive = zero_byte;
        REQUIRE_OK(evq_tcp_set_limits(stream, &limits));
        unsigned calls = 0;
        evq_tcp_set_io_hook(stream, small_and_interrupted, &calls);
        REQUIRE_OK(evq_register(poll, stream, 1, EVQ_READABLE));
        REQUIRE_OK(ch04_send_pattern(peer, 1000, 0));
        size_t offset = 0;
        for (int i = 0; i < 20 && offset < 1000; i++) {
            read_pattern_after_event(poll, stream, &offset);
            REQUIRE_OK(evq_reregister(poll, stream, 1, EVQ_READABLE));
        }
        CHECK_UINT(offset, ==, 1000);
        CHECK_UINT(ch04_stats(stream).receive_calls, ==, calls);
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
        EVQ_CASE(iocp_a_receive_for_data_already_read_is_posted_again),
        EVQ_CASE(iocp_accept_ex_takes_every_connection_in_order),
        EVQ_CASE(iocp_closing_a_listener_with_accept_ex_in_flight),
        EVQ_CASE(iocp_a_send_in_flight_lends_the_queue_and_is_retired_with_it),
        EVQ_CASE(iocp_the_io_hook_shortens_and_interrupts_receives),
#endif
    };
    return evq_test_main(argc, argv, cases, EVQ_COUNT(cases));
}

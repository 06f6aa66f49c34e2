/* test_listen.c - chapter 3: a listening stream - READABLE means a
 * connection to accept, accept never blocks, accepted streams take the
 * listener's limits and hook, and a listener refuses to read or write.
 */
#include "ch06_test.h"

EVQ_TEST(a_connection_makes_the_listener_readable_and_accept_takes_it)
{
    evq_poll *poll;
    REQUIRE_OK(evq_poll_open(&poll));
    evq_tcp *listener;
    REQUIRE_OK(evq_tcp_listen(poll, "127.0.0.1", 0, 16, &listener));
    uint16_t port = 0;
    REQUIRE_OK(evq_tcp_local_port(listener, &port));
    CHECK_UINT(port, >, 0);
    REQUIRE_OK(evq_register(poll, listener, 0, EVQ_READABLE));
    evq_socket client;
    REQUIRE_OK(evq_net_connect_loopback(port, &client));
    evq_event event;
    REQUIRE(ch06_wait_one(poll, &event, 5000));
    CHECK_UINT(event.token, ==, 0);
    CHECK_UINT(event.ready & EVQ_READABLE, ==, EVQ_READABLE);
    evq_tcp *stream;
    REQUIRE_OK(evq_tcp_accept(listener, &stream));
    evq_tcp *none = (evq_tcp *)&none;
    CHECK_ERR(evq_tcp_accept(listener, &none), EVQ_EWOULDBLOCK); /* only one was there */
    CHECK(none == NULL);

    /* The accepted stream is a stream like any other, on the same queue. */
    REQUIRE_OK(evq_register(poll, stream, 1, EVQ_READABLE));
    REQUIRE_OK(evq_net_send_all(client, "ping", 4));
    REQUIRE(ch06_wait_one(poll, &event, 5000));
    CHECK_UINT(event.token, ==, 1);
    char buf[8];
    size_t n = 0;
    CHECK_OK(evq_tcp_read(stream, buf, sizeof buf, &n));
    CHECK_UINT(n, ==, 4);
    CHECK_MEM(buf, "ping", 4);
    CHECK_OK(evq_tcp_write(stream, "pong", 4, &n));
    CHECK_OK(evq_net_recv(client, buf, sizeof buf, &n));
    CHECK_UINT(n, ==, 4);
    CHECK_MEM(buf, "pong", 4);
    evq_tcp_close(stream);
    evq_tcp_close(listener);
    evq_socket_close(client);
    evq_poll_close(poll);
}

/* Accept on an empty backlog returns at once. Catches a listener left in
 * blocking mode: this call would hang (ctest's timeout ends it). */
EVQ_TEST(accept_with_nothing_pending_is_ewouldblock)
{
    evq_poll *poll;
    REQUIRE_OK(evq_poll_open(&poll));
    evq_tcp *listener;
    REQUIRE_OK(evq_tcp_listen(poll, "127.0.0.1", 0, 0, &listener)); /* 0: the system's */
    evq_tcp *stream = NULL;
    CHECK_ERR(evq_tcp_accept(listener, &stream), EVQ_EWOULDBLOCK);
    CHECK(stream == NULL);
    evq_tcp_close(listener);
    evq_poll_close(poll);
}

/* An accepted socket is non-blocking too: reading it empty returns at once.
 * Catches accept() without SOCK_NONBLOCK (on Linux the flag is not
 * inherited from the listener), which would block the whole loop here. */
EVQ_TEST(accepted_streams_never_block)
{
    evq_poll *poll;
    REQUIRE_OK(evq_poll_open(&poll));
    evq_tcp *listener;
    REQUIRE_OK(evq_tcp_listen(poll, "127.0.0.1", 0, 4, &listener));
    uint16_t port = 0;
    REQUIRE_OK(evq_tcp_local_port(listener, &port));
    evq_socket client;
    REQUIRE_OK(evq_net_connect_loopback(port, &client));
    REQUIRE_OK(evq_register(poll, listener, 0, EVQ_READABLE));
    evq_event event;
    REQUIRE(ch06_wait_one(poll, &event, 5000));
    evq_tcp *stream;
    REQUIRE_OK(evq_tcp_accept(listener, &stream));
    char buf[8];
    size_t n = 0;
    CHECK_ERR(evq_tcp_read(stream, buf, sizeof buf, &n), EVQ_EWOULDBLOCK);
    evq_tcp_close(stream);
    evq_tcp_close(listener);
    evq_socket_close(client);
    evq_poll_close(poll);
}

static int count_calls(void *context, enum evq_io_direction direction, size_t *len)
{
    (void)direction;
    (void)len;
    ++*(int *)context;
    return 0;
}

/* A server sets limits (and a test its hook) once, on the listener. Catches
 * accepted streams that start with the defaults (256 KiB reads here). */
EVQ_TEST(accepted_streams_inherit_the_listeners_limits_and_hook)
{
    evq_poll *poll;
    REQUIRE_OK(evq_poll_open(&poll));
    evq_tcp *listener;
    REQUIRE_OK(evq_tcp_listen(poll, "127.0.0.1", 0, 4, &listener));
    evq_tcp_limits limits = ch06_limits(512, 2048, 8192, 1024);
    REQUIRE_OK(evq_tcp_set_limits(listener, &limits));
    int calls = 0;
    evq_tcp_set_io_hook(listener, count_calls, &calls);
    uint16_t port = 0;
    REQUIRE_OK(evq_tcp_local_port(listener, &port));
    evq_socket client;
    REQUIRE_OK(evq_net_connect_loopback(port, &client));
    REQUIRE_OK(evq_register(poll, listener, 0, EVQ_READABLE));
    evq_event event;
    REQUIRE(ch06_wait_one(poll, &event, 5000));
    evq_tcp *stream;
    REQUIRE_OK(evq_tcp_accept(listener, &stream));
    REQUIRE_OK(ch06_send_pattern(client, 10000, 0));
    REQUIRE_OK(evq_register(poll, stream, 1, EVQ_READABLE));
    REQUIRE(ch06_wait_one(poll, &event, 5000));
    const void *data;
    size_t len = 0;
    REQUIRE_OK(evq_tcp_peek(stream, &data, &len));
    CHECK_UINT(len, <=, 2048); /* read_max */
    CHECK_UINT(ch06_pattern_mismatch(data, len, 0), ==, len);
    CHECK_UINT(ch06_stats(stream).read_capacity, <=, 2048);
    CHECK_INT(calls, >, 0); /* the hook came along */
    /* write_high: 8192 bytes and no more are taken while the client sleeps
     * - the kernel takes some first, so write until refused. */
    static unsigned char big[1 << 16];
    size_t n = 0;
    int rc = 0;
    for (int i = 0; i < 1000 && rc == 0; i++)
        rc = evq_tcp_write(stream, big, sizeof big, &n);
    CHECK_ERR(rc, EVQ_EWOULDBLOCK);
    CHECK_UINT(ch06_stats(stream).write_queued_peak, ==, 8192);
    evq_tcp_close(stream);
    evq_tcp_close(listener);
    evq_socket_close(client);
    evq_poll_close(poll);
}

EVQ_TEST(a_port_in_use_is_eaddrinuse)
{
    evq_poll *poll;
    REQUIRE_OK(evq_poll_open(&poll));
    evq_tcp *first;
    REQUIRE_OK(evq_tcp_listen(poll, "127.0.0.1", 0, 4, &first));
    uint16_t port = 0;
    REQUIRE_OK(evq_tcp_local_port(first, &port));
    evq_tcp *second = NULL;
    CHECK_ERR(evq_tcp_listen(poll, "127.0.0.1", port, 4, &second), EVQ_EADDRINUSE);
    CHECK(second == NULL);
    evq_tcp_close(first);
    evq_poll_close(poll);
}

/* Every misuse of a listener, and of accept, has its code. */
EVQ_TEST(listener_misuse_is_einval)
{
    evq_poll *poll;
    REQUIRE_OK(evq_poll_open(&poll));
    evq_tcp *listener;
    evq_tcp *out = NULL;
    CHECK_ERR(evq_tcp_listen(NULL, "127.0.0.1", 0, 4, &out), EVQ_EINVAL);
    CHECK_ERR(evq_tcp_listen(poll, NULL, 0, 4, &out), EVQ_EINVAL);
    CHECK_ERR(evq_tcp_listen(poll, "127.0.0.1", 0, 4, NULL), EVQ_EINVAL);
    REQUIRE_OK(evq_tcp_listen(poll, "127.0.0.1", 0, 4, &listener));

    char buf[4];
    size_t n = 0;
    const void *data;
    size_t len;
    CHECK_ERR(evq_tcp_read(listener, buf, sizeof buf, &n), EVQ_EINVAL);
    CHECK_ERR(evq_tcp_peek(listener, &data, &len), EVQ_EINVAL);
    CHECK_ERR(evq_tcp_consume(listener, 0), EVQ_EINVAL);
    CHECK_ERR(evq_tcp_write(listener, "x", 1, &n), EVQ_EINVAL);
    CHECK_ERR(evq_tcp_shutdown(listener), EVQ_EINVAL);
    CHECK_ERR(evq_register(poll, listener, 1, EVQ_WRITABLE), EVQ_EINVAL); /* never writable */
    CHECK_ERR(evq_register(poll, listener, 1, EVQ_READABLE | EVQ_WRITABLE), EVQ_EINVAL);
    CHECK_ERR(evq_tcp_accept(NULL, &out), EVQ_EINVAL);
    CHECK_ERR(evq_tcp_accept(listener, NULL), EVQ_EINVAL);
    CHECK_ERR(evq_tcp_local_port(listener, NULL), EVQ_EINVAL);
    CHECK_ERR(evq_tcp_local_port(NULL, &(uint16_t){0}), EVQ_EINVAL);

    /* accept on a stream that is not a listener */
    evq_tcp *stream;
    evq_socket peer;
    REQUIRE_OK(ch06_pair(poll, &stream, &peer));
    CHECK_ERR(evq_tcp_accept(stream, &out), EVQ_EINVAL);
    CHECK(out == NULL);

    /* a listener whose queue is closed */
    evq_poll_close(poll);
    CHECK_ERR(evq_tcp_accept(listener, &out), EVQ_ECLOSED);
    evq_tcp_close(stream);
    evq_tcp_close(listener);
    evq_socket_close(peer);
}

int main(int argc, char **argv)
{
    static const evq_test_case cases[] = {
        EVQ_CASE(a_connection_makes_the_listener_readable_and_accept_takes_it),
        EVQ_CASE(accept_with_nothing_pending_is_ewouldblock),
        EVQ_CASE(accepted_streams_never_block),
        EVQ_CASE(accepted_streams_inherit_the_listeners_limits_and_hook),
        EVQ_CASE(a_port_in_use_is_eaddrinuse),
        EVQ_CASE(listener_misuse_is_einval),
    };
    return evq_test_main(argc, argv, cases, EVQ_COUNT(cases));
}

/* Tests of evq_net.h over real loopback sockets. */
#include "evq_net.h"
#include "evq_test.h"

#include <string.h>

#ifndef _WIN32
#include <sys/resource.h>
#endif

EVQ_TEST(listen_on_port_zero_reports_the_chosen_port)
{
    evq_socket listener;
    uint16_t port = 0;
    REQUIRE_OK(evq_net_listen_loopback(0, 8, &listener, &port));
    CHECK_UINT(port, !=, 0);
    uint16_t again = 0;
    CHECK_OK(evq_net_local_port(listener, &again));
    CHECK_UINT(again, ==, port);
    CHECK_OK(evq_socket_close(listener));
}

EVQ_TEST(pair_carries_bytes_both_ways)
{
    evq_socket a, b;
    REQUIRE_OK(evq_net_tcp_pair(&a, &b));
    CHECK_OK(evq_net_send_all(a, "ping", 4));
    char buffer[8] = {0};
    size_t n = 0;
    CHECK_OK(evq_net_recv(b, buffer, sizeof buffer, &n));
    CHECK_UINT(n, ==, 4);
    CHECK_MEM(buffer, "ping", 4);
    CHECK_OK(evq_net_send_all(b, "pong", 4));
    CHECK_OK(evq_socket_close(b));
    CHECK_OK(evq_net_recv_until_eof(a, buffer, sizeof buffer, &n));
    CHECK_UINT(n, ==, 4);
    CHECK_MEM(buffer, "pong", 4);
    CHECK_OK(evq_socket_close(a));
}

EVQ_TEST(nonblocking_recv_on_empty_socket_would_block)
{
    evq_socket a, b;
    REQUIRE_OK(evq_net_tcp_pair(&a, &b));
    REQUIRE_OK(evq_socket_set_nonblocking(a, true));
    char byte;
    size_t n = 99;
    CHECK_ERR(evq_net_recv(a, &byte, 1, &n), EVQ_EWOULDBLOCK);
    REQUIRE_OK(evq_socket_set_nonblocking(a, false));
    CHECK_OK(evq_net_send_all(b, "x", 1));
    CHECK_OK(evq_net_recv(a, &byte, 1, &n));
    CHECK_UINT(n, ==, 1);
    evq_socket_close(a);
    evq_socket_close(b);
}

EVQ_TEST(connect_to_a_closed_port_is_refused)
{
    evq_socket listener, client;
    uint16_t port = 0;
    REQUIRE_OK(evq_net_listen_loopback(0, 1, &listener, &port));
    REQUIRE_OK(evq_socket_close(listener)); /* nothing listens on port now */
    CHECK_ERR(evq_net_connect_loopback(port, &client), EVQ_ECONNREFUSED);
}

/* The refusing port stays refused while its holder is open, and no bind
 * to port 0 is handed it meanwhile. The port a closed listener gives back
 * can be handed to the very socket that then connects to it (ConnectEx
 * binds to port 0 first) - a connection to itself, not a refusal. */
EVQ_TEST(a_held_refusing_port_refuses_and_is_never_handed_out)
{
    evq_socket holder;
    uint16_t port = 0;
    REQUIRE_OK(evq_net_refusing_loopback(&holder, &port));
    CHECK_UINT(port, !=, 0);
    for (int i = 0; i < 3; i++) {
        evq_socket client;
        CHECK_ERR(evq_net_connect_loopback(port, &client), EVQ_ECONNREFUSED);
    }
    /* Taken: a bind to it fails, so no bind to port 0 is handed it. */
    evq_socket other;
    CHECK_ERR(evq_net_listen_loopback(port, 1, &other, NULL), EVQ_EADDRINUSE);
    CHECK_OK(evq_socket_close(holder));
}

/* POSIX only: under Wine neither way of resetting is reliable (see evq_net.h). */
#ifndef _WIN32
EVQ_TEST_POSIX(close_with_reset_makes_the_peer_see_a_reset)
{
    evq_socket a, b;
    REQUIRE_OK(evq_net_tcp_pair(&a, &b));
    CHECK_OK(evq_socket_close_with_reset(a));
    char buffer[4];
    size_t n = 0;
    CHECK_ERR(evq_net_recv(b, buffer, sizeof buffer, &n), EVQ_ECONNRESET);
    evq_socket_close(b);
}

EVQ_TEST_POSIX(abandoned_backlog_connection_is_reset)
{
    evq_socket client;
    REQUIRE_OK(evq_net_abandon_backlog("request", 7, &client));
    char buffer[4];
    size_t n = 0;
    CHECK_ERR(evq_net_recv(client, buffer, sizeof buffer, &n), EVQ_ECONNRESET);
    evq_socket_close(client);
}

EVQ_TEST_POSIX(writing_to_a_reset_peer_returns_an_error_not_a_signal)
{
    evq_socket a;
    REQUIRE_OK(evq_net_abandon_backlog(NULL, 0, &a));
    /* The first send may be accepted into the buffer before the RST is seen;
     * one of a bounded number must fail, and the process must survive
     * (SIGPIPE would kill it: EVQ_SEND_FLAGS / SO_NOSIGPIPE prevent that). */
    char chunk[1024];
    memset(chunk, 'z', sizeof chunk);
    int rc = 0;
    for (int i = 0; i < 100 && rc == 0; i++)
        rc = evq_net_send_all(a, chunk, sizeof chunk);
    CHECK(rc == EVQ_EPIPE || rc == EVQ_ECONNRESET || rc == EVQ_ECONNABORTED);
    evq_socket_close(a);
}

#endif

EVQ_TEST(pending_error_is_zero_on_a_healthy_socket)
{
    evq_socket a, b;
    REQUIRE_OK(evq_net_tcp_pair(&a, &b));
    CHECK_OK(evq_socket_pending_error(a));
    CHECK_OK(evq_socket_set_nodelay(a, true));
    evq_socket_close(a);
    evq_socket_close(b);
}

EVQ_TEST(recv_timeout_returns_instead_of_hanging)
{
    evq_socket a, b;
    REQUIRE_OK(evq_net_tcp_pair(&a, &b));
    REQUIRE_OK(evq_socket_set_recv_timeout(a, 50));
    char byte;
    size_t n = 0;
    int rc = evq_net_recv(a, &byte, 1, &n);
    /* POSIX reports EAGAIN, Winsock WSAETIMEDOUT. */
    CHECK(rc == EVQ_EWOULDBLOCK || rc == EVQ_ETIMEDOUT);
    evq_socket_close(a);
    evq_socket_close(b);
}

#ifndef _WIN32
/* A soft limit under the hard one is raised to it (and this process keeps
 * the raised limit, as the programs that ask do). */
EVQ_TEST_POSIX(the_descriptor_limit_is_raised_to_the_hard_limit)
{
    struct rlimit limit;
    REQUIRE_INT(getrlimit(RLIMIT_NOFILE, &limit), ==, 0);
    if (limit.rlim_max != RLIM_INFINITY && limit.rlim_max < 64)
        SKIP("the hard limit is under 64");
    struct rlimit lowered = {64, limit.rlim_max};
    REQUIRE_INT(setrlimit(RLIMIT_NOFILE, &lowered), ==, 0);
    evq_net_raise_descriptor_limit();
    struct rlimit now;
    REQUIRE_INT(getrlimit(RLIMIT_NOFILE, &now), ==, 0);
    CHECK(now.rlim_cur == limit.rlim_max);
    CHECK(now.rlim_max == limit.rlim_max);
}
#endif

int main(int argc, char **argv)
{
    static const evq_test_case cases[] = {
        EVQ_CASE(listen_on_port_zero_reports_the_chosen_port),
        EVQ_CASE(pair_carries_bytes_both_ways),
        EVQ_CASE(nonblocking_recv_on_empty_socket_would_block),
        EVQ_CASE(connect_to_a_closed_port_is_refused),
        EVQ_CASE(a_held_refusing_port_refuses_and_is_never_handed_out),
#ifndef _WIN32
        EVQ_CASE(close_with_reset_makes_the_peer_see_a_reset),
        EVQ_CASE(abandoned_backlog_connection_is_reset),
        EVQ_CASE(writing_to_a_reset_peer_returns_an_error_not_a_signal),
        EVQ_CASE(the_descriptor_limit_is_raised_to_the_hard_limit),
#endif
        EVQ_CASE(pending_error_is_zero_on_a_healthy_socket),
        EVQ_CASE(recv_timeout_returns_instead_of_hanging),
    };
    return evq_test_main(argc, argv, cases, EVQ_COUNT(cases));
}

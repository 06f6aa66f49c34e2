/* The network operations on loopback: ACCEPT (one-shot and multishot),
 * CONNECT, RECV, SEND and SENDMSG. Each asserts what the completion says:
 * the descriptor, the byte count, the error, the order. */
#define _DEFAULT_SOURCE /* struct iovec, shutdown */
#include "uring_test.h"

#include <arpa/inet.h>
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

enum { KIND_ACCEPT = 1, KIND_CONNECT, KIND_RECV, KIND_SEND, KIND_CANCEL };

EVQ_TEST(accept_completes_with_the_new_descriptor)
{
    evq_uring ring;
    URING_OPEN(&ring, NULL);
    URING_NEED_OPS(&ring, IORING_OP_ACCEPT);
    evq_socket listener, client;
    uint16_t port;
    REQUIRE_OK(uring_test_listener(&listener, &port));
    struct sockaddr_in peer;
    uint32_t peer_len = sizeof peer;
    memset(&peer, 0, sizeof peer);
    uint64_t tag = evq_uring_tag(KIND_ACCEPT, 1, 0);
    evq_uring_prep_accept(uring_test_sqe(&ring), listener, (struct sockaddr *)&peer, &peer_len,
                          SOCK_CLOEXEC, false, tag);
    REQUIRE_OK(evq_uring_submit(&ring, NULL));
    REQUIRE_OK(evq_net_connect_loopback(port, &client));
    uring_test_cqe cqe;
    REQUIRE_OK(uring_test_reap(&ring, &cqe));
    CHECK_UINT(cqe.user_data, ==, tag);
    REQUIRE_INT(cqe.res, >=, 0);
    CHECK(!(cqe.flags & IORING_CQE_F_MORE)); /* one-shot: done */
    /* The peer's address, as accept4 fills it: the client's own port. */
    uint16_t client_port;
    REQUIRE_OK(evq_net_local_port(client, &client_port));
    CHECK_INT(peer.sin_family, ==, AF_INET);
    CHECK_UINT(ntohs(peer.sin_port), ==, client_port);
    CHECK_UINT(peer_len, ==, sizeof peer);
    /* And it is a working connection. */
    CHECK_INT(send(client, "x", 1, 0), ==, 1);
    char byte = 0;
    CHECK_INT(recv(cqe.res, &byte, 1, 0), ==, 1);
    CHECK_INT(byte, ==, 'x');
    close(cqe.res);
    close(client);
    close(listener);
    evq_uring_close(&ring);
}

EVQ_TEST(multishot_accept_posts_a_completion_per_connection)
{
    evq_uring ring;
    URING_OPEN(&ring, NULL);
    URING_NEED_OPS(&ring, IORING_OP_ACCEPT, IORING_OP_ASYNC_CANCEL);
    evq_socket listener, clients[3];
    uint16_t port;
    REQUIRE_OK(uring_test_listener(&listener, &port));
    uint64_t tag = evq_uring_tag(KIND_ACCEPT, 1, 0);
    evq_uring_prep_accept(uring_test_sqe(&ring), listener, NULL, NULL, SOCK_CLOEXEC, true, tag);
    REQUIRE_OK(evq_uring_submit(&ring, NULL));
    int accepted[3] = {-1, -1, -1};
    for (int i = 0; i < 3; i++) {
        REQUIRE_OK(evq_net_connect_loopback(port, &clients[i]));
        uring_test_cqe cqe;
        REQUIRE_OK(uring_test_reap(&ring, &cqe));
        CHECK_UINT(cqe.user_data, ==, tag);
        if (cqe.res == -EINVAL && i == 0) { /* before 5.19: no multishot accept */
            evq_uring_close(&ring);
            SKIP("this kernel has no multishot accept (IORING_ACCEPT_MULTISHOT, 5.19)");
        }
        REQUIRE_INT(cqe.res, >=, 0);
        CHECK(cqe.flags & IORING_CQE_F_MORE); /* still armed */
        accepted[i] = cqe.res;
    }
    CHECK(accepted[0] != accepted[1] && accepted[1] != accepted[2]);
    CHECK_UINT(ring.in_flight, ==, 1); /* one SQE, three completions, still armed */
    /* Cancel it: a final completion without F_MORE, and the cancel's own. */
    uint64_t cancel = evq_uring_tag(KIND_CANCEL, 1, 0);
    evq_uring_prep_cancel(uring_test_sqe(&ring), tag, 0, cancel);
    uring_test_cqe last, cancelled[1];
    size_t n_others = 1;
    REQUIRE_OK(uring_test_reap_for(&ring, tag, &last, cancelled, &n_others));
    CHECK_INT(last.res, ==, -ECANCELED);
    CHECK(!(last.flags & IORING_CQE_F_MORE));
    if (n_others == 0) {
        REQUIRE_OK(uring_test_reap(&ring, &cancelled[0]));
        n_others = 1;
    }
    CHECK_UINT(cancelled[0].user_data, ==, cancel);
    CHECK_INT(cancelled[0].res, ==, 0);
    CHECK_UINT(ring.in_flight, ==, 0);
    for (int i = 0; i < 3; i++) {
        close(accepted[i]);
        close(clients[i]);
    }
    close(listener);
    evq_uring_close(&ring);
}

EVQ_TEST(connect_completes_or_is_refused)
{
    evq_uring ring;
    URING_OPEN(&ring, NULL);
    URING_NEED_OPS(&ring, IORING_OP_CONNECT);
    evq_socket listener;
    uint16_t port;
    REQUIRE_OK(uring_test_listener(&listener, &port));
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE_INT(fd, >=, 0);
    struct sockaddr_in address;
    uring_test_loopback(&address, port);
    evq_uring_prep_connect(uring_test_sqe(&ring), fd, (struct sockaddr *)&address, sizeof address,
                           1);
    uring_test_cqe cqe;
    REQUIRE_OK(uring_test_reap(&ring, &cqe));
    CHECK_UINT(cqe.user_data, ==, 1);
    CHECK_INT(cqe.res, ==, 0);
    evq_socket server;
    CHECK_OK(evq_net_accept(listener, &server));
    close(server);
    close(fd);

    /* A port nobody listens on (the listener's, once closed): refused. */
    close(listener);
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE_INT(fd, >=, 0);
    evq_uring_prep_connect(uring_test_sqe(&ring), fd, (struct sockaddr *)&address, sizeof address,
                           2);
    REQUIRE_OK(uring_test_reap(&ring, &cqe));
    CHECK_UINT(cqe.user_data, ==, 2);
    CHECK_INT(cqe.res, ==, -ECONNREFUSED);
    CHECK_ERR(evq_uring_error(cqe.res), EVQ_ECONNREFUSED);
    close(fd);
    evq_uring_close(&ring);
}

EVQ_TEST(recv_returns_what_was_sent_then_zero_at_the_end)
{
    evq_uring ring;
    URING_OPEN(&ring, NULL);
    URING_NEED_OPS(&ring, IORING_OP_RECV);
    evq_socket a, b;
    REQUIRE_OK(uring_test_pair(&a, &b));
    char buffer[64];
    evq_uring_prep_recv(uring_test_sqe(&ring), b, buffer, sizeof buffer, 0, 1);
    REQUIRE_OK(evq_uring_submit(&ring, NULL));
    REQUIRE_INT(send(a, "hello", 5, 0), ==, 5);
    uring_test_cqe cqe;
    REQUIRE_OK(uring_test_reap(&ring, &cqe));
    CHECK_INT(cqe.res, ==, 5); /* bytes received, as recv(2) returns */
    CHECK_MEM(buffer, "hello", 5);
    /* The peer's FIN: a receive that completes with 0. */
    REQUIRE_INT(shutdown(a, SHUT_WR), ==, 0);
    evq_uring_prep_recv(uring_test_sqe(&ring), b, buffer, sizeof buffer, 0, 2);
    REQUIRE_OK(uring_test_reap(&ring, &cqe));
    CHECK_UINT(cqe.user_data, ==, 2);
    CHECK_INT(cqe.res, ==, 0);
    close(a);
    close(b);
    evq_uring_close(&ring);
}

EVQ_TEST(recv_reports_a_reset)
{
    evq_uring ring;
    URING_OPEN(&ring, NULL);
    URING_NEED_OPS(&ring, IORING_OP_RECV);
    evq_socket a, b;
    REQUIRE_OK(uring_test_pair(&a, &b));
    char buffer[16];
    evq_uring_prep_recv(uring_test_sqe(&ring), b, buffer, sizeof buffer, 0, 1);
    REQUIRE_OK(evq_uring_submit(&ring, NULL));
    REQUIRE_OK(evq_socket_close_with_reset(a)); /* SO_LINGER 0: an RST */
    uring_test_cqe cqe;
    REQUIRE_OK(uring_test_reap(&ring, &cqe));
    CHECK_INT(cqe.res, ==, -ECONNRESET);
    CHECK_ERR(evq_uring_error(cqe.res), EVQ_ECONNRESET);
    close(b);
    evq_uring_close(&ring);
}

/* Two sends on one socket are two independent requests: io_uring may run
 * them in either order. IOSQE_IO_LINK makes the second wait for the first. */
EVQ_TEST(linked_send_and_sendmsg_arrive_in_order)
{
    evq_uring ring;
    URING_OPEN(&ring, NULL);
    URING_NEED_OPS(&ring, IORING_OP_SEND, IORING_OP_SENDMSG);
    evq_socket a, b;
    REQUIRE_OK(uring_test_pair(&a, &b));
    struct io_uring_sqe *sqe = uring_test_sqe(&ring);
    evq_uring_prep_send(sqe, a, "abc", 3, MSG_NOSIGNAL, 1);
    sqe->flags |= IOSQE_IO_LINK;
    struct iovec pieces[2] = {{(void *)"de", 2}, {(void *)"fgh", 3}};
    struct msghdr message;
    memset(&message, 0, sizeof message);
    message.msg_iov = pieces;
    message.msg_iovlen = 2;
    evq_uring_prep_sendmsg(uring_test_sqe(&ring), a, &message, MSG_NOSIGNAL, 2);
    uring_test_cqe first, second;
    REQUIRE_OK(uring_test_reap(&ring, &first));
    REQUIRE_OK(uring_test_reap(&ring, &second));
    CHECK_UINT(first.user_data, ==, 1);
    CHECK_INT(first.res, ==, 3);
    CHECK_UINT(second.user_data, ==, 2);
    CHECK_INT(second.res, ==, 5);
    char got[8];
    size_t total = 0;
    while (total < sizeof got) {
        ssize_t n = recv(b, got + total, sizeof got - total, 0);
        REQUIRE_INT(n, >, 0);
        total += (size_t)n;
    }
    CHECK_MEM(got, "abcdefgh", 8);
    close(a);
    close(b);
    evq_uring_close(&ring);
}

/* A send to a peer that reset: an error in the completion, never SIGPIPE
 * (MSG_NOSIGNAL), as everywhere in the book. */
EVQ_TEST(send_to_a_reset_peer_is_an_error_not_a_signal)
{
    evq_uring ring;
    URING_OPEN(&ring, NULL);
    URING_NEED_OPS(&ring, IORING_OP_SEND);
    evq_socket a, b;
    REQUIRE_OK(uring_test_pair(&a, &b));
    REQUIRE_OK(evq_socket_close_with_reset(b));
    int32_t result = 0;
    for (int i = 0; i < 4 && result >= 0; i++) { /* the first may still be accepted */
        evq_uring_prep_send(uring_test_sqe(&ring), a, "data", 4, MSG_NOSIGNAL, 1);
        uring_test_cqe cqe;
        REQUIRE_OK(uring_test_reap(&ring, &cqe));
        result = cqe.res;
    }
    CHECK(result == -EPIPE || result == -ECONNRESET);
    close(a);
    evq_uring_close(&ring);
}

int main(int argc, char **argv)
{
    static const evq_test_case cases[] = {
        EVQ_CASE(accept_completes_with_the_new_descriptor),
        EVQ_CASE(multishot_accept_posts_a_completion_per_connection),
        EVQ_CASE(connect_completes_or_is_refused),
        EVQ_CASE(recv_returns_what_was_sent_then_zero_at_the_end),
        EVQ_CASE(recv_reports_a_reset),
        EVQ_CASE(linked_send_and_sendmsg_arrive_in_order),
        EVQ_CASE(send_to_a_reset_peer_is_an_error_not_a_signal),
    };
    return evq_test_main(argc, argv, cases, EVQ_COUNT(cases));
}

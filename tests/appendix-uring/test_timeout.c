/* TIMEOUT and LINK_TIMEOUT: what their completions say and in which order
 * they come relative to the operations they watch. No assertion on how long
 * anything took. */
#include "uring_test.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

EVQ_TEST(a_timeout_expires_with_etime)
{
    evq_uring ring;
    URING_OPEN(&ring, NULL);
    URING_NEED_OPS(&ring, IORING_OP_TIMEOUT);
    struct __kernel_timespec ts = {0, 2 * 1000 * 1000};
    evq_uring_prep_timeout(uring_test_sqe(&ring), &ts, 0, 0, 7);
    uring_test_cqe cqe;
    REQUIRE_OK(uring_test_reap(&ring, &cqe));
    CHECK_UINT(cqe.user_data, ==, 7);
    CHECK_INT(cqe.res, ==, -ETIME);
    CHECK_ERR(evq_uring_error(cqe.res), EVQ_ETIMEDOUT);
    evq_uring_close(&ring);
}

/* count = 2: the timeout completes (res 0) once two other completions have
 * been posted, long before its ten seconds, and after them. */
EVQ_TEST(a_counting_timeout_completes_after_n_completions)
{
    evq_uring ring;
    URING_OPEN(&ring, NULL);
    URING_NEED_OPS(&ring, IORING_OP_TIMEOUT);
    struct __kernel_timespec ts = {10, 0};
    evq_uring_prep_timeout(uring_test_sqe(&ring), &ts, 2, 0, 100);
    REQUIRE_OK(evq_uring_submit(&ring, NULL));
    evq_uring_prep_nop(uring_test_sqe(&ring), 1);
    evq_uring_prep_nop(uring_test_sqe(&ring), 2);
    uint64_t order[3];
    for (int i = 0; i < 3; i++) {
        uring_test_cqe cqe;
        REQUIRE_OK(uring_test_reap(&ring, &cqe));
        order[i] = cqe.user_data;
        if (cqe.user_data == 100)
            CHECK_INT(cqe.res, ==, 0);
    }
    CHECK_UINT(order[0], ==, 1);
    CHECK_UINT(order[1], ==, 2);
    CHECK_UINT(order[2], ==, 100);
    evq_uring_close(&ring);
}

/* A receive with a deadline: RECV linked to a LINK_TIMEOUT. Nothing arrives:
 * the receive is cancelled (-ECANCELED), the timeout fires (-ETIME). */
EVQ_TEST(a_link_timeout_cancels_a_receive_that_waits_too_long)
{
    evq_uring ring;
    URING_OPEN(&ring, NULL);
    URING_NEED_OPS(&ring, IORING_OP_RECV, IORING_OP_LINK_TIMEOUT);
    evq_socket a, b;
    REQUIRE_OK(uring_test_pair(&a, &b));
    char buffer[16];
    struct io_uring_sqe *sqe = uring_test_sqe(&ring);
    evq_uring_prep_recv(sqe, b, buffer, sizeof buffer, 0, 1);
    sqe->flags |= IOSQE_IO_LINK;
    struct __kernel_timespec ts = {0, 2 * 1000 * 1000};
    evq_uring_prep_link_timeout(uring_test_sqe(&ring), &ts, 0, 2);
    uring_test_cqe cqes[2]; /* in either order */
    REQUIRE_OK(uring_test_reap_n(&ring, cqes, 2));
    const uring_test_cqe *receive = uring_test_find(cqes, 2, 1);
    const uring_test_cqe *timeout = uring_test_find(cqes, 2, 2);
    REQUIRE(receive && timeout);
    CHECK_INT(receive->res, ==, -ECANCELED);
    CHECK_INT(timeout->res, ==, -ETIME);
    CHECK_UINT(ring.in_flight, ==, 0);
    /* Nothing was consumed: data sent now is all there for the next read. */
    REQUIRE_INT(send(a, "late", 4, 0), ==, 4);
    CHECK_INT(recv(b, buffer, sizeof buffer, 0), ==, 4);
    close(a);
    close(b);
    evq_uring_close(&ring);
}

/* The receive wins: it completes with the data, the timeout is cancelled. */
EVQ_TEST(a_link_timeout_is_cancelled_when_the_receive_wins)
{
    evq_uring ring;
    URING_OPEN(&ring, NULL);
    URING_NEED_OPS(&ring, IORING_OP_RECV, IORING_OP_LINK_TIMEOUT);
    evq_socket a, b;
    REQUIRE_OK(uring_test_pair(&a, &b));
    REQUIRE_INT(send(a, "on time", 7, 0), ==, 7);
    char buffer[16];
    struct io_uring_sqe *sqe = uring_test_sqe(&ring);
    evq_uring_prep_recv(sqe, b, buffer, sizeof buffer, 0, 1);
    sqe->flags |= IOSQE_IO_LINK;
    struct __kernel_timespec ts = {10, 0};
    evq_uring_prep_link_timeout(uring_test_sqe(&ring), &ts, 0, 2);
    uring_test_cqe cqes[2];
    REQUIRE_OK(uring_test_reap_n(&ring, cqes, 2));
    const uring_test_cqe *receive = uring_test_find(cqes, 2, 1);
    const uring_test_cqe *timeout = uring_test_find(cqes, 2, 2);
    REQUIRE(receive && timeout);
    CHECK_INT(receive->res, ==, 7);
    CHECK_MEM(buffer, "on time", 7);
    CHECK_INT(timeout->res, ==, -ECANCELED);
    close(a);
    close(b);
    evq_uring_close(&ring);
}

/* A pending timeout is cancelled like any operation, by its user_data. */
EVQ_TEST(a_timeout_can_be_cancelled)
{
    evq_uring ring;
    URING_OPEN(&ring, NULL);
    URING_NEED_OPS(&ring, IORING_OP_TIMEOUT, IORING_OP_ASYNC_CANCEL);
    struct __kernel_timespec ts = {10, 0};
    evq_uring_prep_timeout(uring_test_sqe(&ring), &ts, 0, 0, 5);
    REQUIRE_OK(evq_uring_submit(&ring, NULL));
    evq_uring_prep_cancel(uring_test_sqe(&ring), 5, 0, 6);
    uring_test_cqe cqes[2];
    REQUIRE_OK(uring_test_reap_n(&ring, cqes, 2));
    const uring_test_cqe *timeout = uring_test_find(cqes, 2, 5);
    const uring_test_cqe *cancel = uring_test_find(cqes, 2, 6);
    REQUIRE(timeout && cancel);
    CHECK_INT(timeout->res, ==, -ECANCELED);
    CHECK_INT(cancel->res, ==, 0);
    CHECK_UINT(ring.in_flight, ==, 0);
    evq_uring_close(&ring);
}

int main(int argc, char **argv)
{
    static const evq_test_case cases[] = {
        EVQ_CASE(a_timeout_expires_with_etime),
        EVQ_CASE(a_counting_timeout_completes_after_n_completions),
        EVQ_CASE(a_link_timeout_cancels_a_receive_that_waits_too_long),
        EVQ_CASE(a_link_timeout_is_cancelled_when_the_receive_wins),
        EVQ_CASE(a_timeout_can_be_cancelled),
    };
    return evq_test_main(argc, argv, cases, EVQ_COUNT(cases));
}

/* Cancellation: a receive in flight is cancelled and its buffer is freed
 * only after its own completion has been reaped; a cancel that finds
 * nothing says so; closing a ring cancels and reaps everything, and the
 * data the cancelled receives were waiting for is still in the sockets. */
#include "uring_test.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct others {
    uint64_t user_data[8];
    size_t count;
};

static void collect(const struct io_uring_cqe *cqe, void *context)
{
    struct others *others = context;
    if (others->count < 8)
        others->user_data[others->count] = cqe->user_data;
    others->count++;
}

static void receive_cancelled_then_freed(unsigned flags)
{
    evq_uring ring;
    evq_uring_options options = {0, 0, flags};
    URING_OPEN(&ring, &options);
    URING_NEED_OPS(&ring, IORING_OP_RECV, IORING_OP_ASYNC_CANCEL);
    evq_socket a, b;
    REQUIRE_OK(uring_test_pair(&a, &b));
    /* On the heap, so that ASan would see a use after the free below. */
    char *buffer = malloc(64);
    REQUIRE(buffer != NULL);
    uint64_t tag = evq_uring_tag(1, 1, 0);
    evq_uring_prep_recv(uring_test_sqe(&ring), b, buffer, 64, 0, tag);
    evq_uring_prep_nop(uring_test_sqe(&ring), evq_uring_tag(2, 1, 0)); /* someone else's */
    REQUIRE_OK(evq_uring_submit(&ring, NULL));
    CHECK_UINT(ring.in_flight, ==, 2);

    struct others others = {{0}, 0};
    int32_t final_res = 0;
    REQUIRE_OK(
        evq_uring_cancel_and_reap(&ring, tag, URING_TEST_WAIT_MS, collect, &others, &final_res));
    /* It returned after the receive's own completion: -ECANCELED, and
     * nothing of the receive's or of the cancel's is still in flight. */
    CHECK_INT(final_res, ==, -ECANCELED);
    CHECK_UINT(ring.in_flight, ==, 0);
    CHECK_UINT(others.count, ==, 1); /* the NOP, passed on, not lost */
    CHECK_UINT(others.user_data[0], ==, evq_uring_tag(2, 1, 0));
    free(buffer); /* only now */

    /* The cancelled receive took nothing: the bytes sent now are all there. */
    REQUIRE_INT(send(a, "still here", 10, 0), ==, 10);
    char check[16];
    CHECK_INT(recv(b, check, sizeof check, 0), ==, 10);
    close(a);
    close(b);
    evq_uring_close(&ring);
}

EVQ_TEST(a_cancelled_receive_gives_its_buffer_back_with_its_own_completion)
{
    receive_cancelled_then_freed(0);
}

EVQ_TEST(the_same_on_a_defer_taskrun_ring)
{
    receive_cancelled_then_freed(EVQ_URING_WANT_DEFER_TASKRUN);
}

/* Why the cancel's completion is not enough: it can arrive while the
 * cancelled receive's has not. On Linux 6.18 it comes first (the note says
 * which came first here); the rule holds either way. */
EVQ_TEST(the_cancel_completion_is_not_the_cancelled_one)
{
    evq_uring ring;
    URING_OPEN(&ring, NULL);
    URING_NEED_OPS(&ring, IORING_OP_RECV, IORING_OP_ASYNC_CANCEL);
    evq_socket a, b;
    REQUIRE_OK(uring_test_pair(&a, &b));
    char buffer[16];
    evq_uring_prep_recv(uring_test_sqe(&ring), b, buffer, sizeof buffer, 0, 1);
    REQUIRE_OK(evq_uring_submit(&ring, NULL));
    evq_uring_prep_cancel(uring_test_sqe(&ring), 1, 0, 2);
    uring_test_cqe cqes[2];
    REQUIRE_OK(uring_test_reap(&ring, &cqes[0]));
    bool cancel_first = cqes[0].user_data == 2;
    /* Between the two, the receive is still the kernel's: in flight. */
    CHECK_UINT(ring.in_flight, ==, 1);
    REQUIRE_OK(uring_test_reap(&ring, &cqes[1]));
    CHECK_UINT(ring.in_flight, ==, 0);
    const uring_test_cqe *receive = uring_test_find(cqes, 2, 1);
    const uring_test_cqe *cancel = uring_test_find(cqes, 2, 2);
    REQUIRE(receive && cancel);
    CHECK_INT(receive->res, ==, -ECANCELED);
    CHECK_INT(cancel->res, ==, 0);
    evq_test_note("%s completion came first", cancel_first ? "the cancel's" : "the receive's");
    close(a);
    close(b);
    evq_uring_close(&ring);
}

/* The receive won the race: the cancel finds nothing (-ENOENT) and the
 * receive's result is real data, not an error. */
EVQ_TEST(cancelling_a_finished_receive_finds_nothing)
{
    evq_uring ring;
    URING_OPEN(&ring, NULL);
    URING_NEED_OPS(&ring, IORING_OP_RECV, IORING_OP_ASYNC_CANCEL);
    evq_socket a, b;
    REQUIRE_OK(uring_test_pair(&a, &b));
    REQUIRE_INT(send(a, "done", 4, 0), ==, 4);
    char buffer[16];
    evq_uring_prep_recv(uring_test_sqe(&ring), b, buffer, sizeof buffer, 0, 1);
    uring_test_cqe cqe;
    REQUIRE_OK(uring_test_reap(&ring, &cqe));
    CHECK_INT(cqe.res, ==, 4);
    evq_uring_prep_cancel(uring_test_sqe(&ring), 1, 0, 2);
    REQUIRE_OK(uring_test_reap(&ring, &cqe));
    CHECK_UINT(cqe.user_data, ==, 2);
    CHECK_INT(cqe.res, ==, -ENOENT);
    CHECK_ERR(evq_uring_error(cqe.res), EVQ_ENOENT);
    close(a);
    close(b);
    evq_uring_close(&ring);
}

/* A receive that completes with data before the cancel is handled: the
 * data is reported, not lost, and nothing waits forever. */
EVQ_TEST(cancel_and_reap_reports_a_receive_that_won)
{
    evq_uring ring;
    URING_OPEN(&ring, NULL);
    URING_NEED_OPS(&ring, IORING_OP_RECV, IORING_OP_ASYNC_CANCEL);
    evq_socket a, b;
    REQUIRE_OK(uring_test_pair(&a, &b));
    REQUIRE_INT(send(a, "won", 3, 0), ==, 3);
    char buffer[16];
    evq_uring_prep_recv(uring_test_sqe(&ring), b, buffer, sizeof buffer, 0, 9);
    REQUIRE_OK(evq_uring_submit(&ring, NULL)); /* completes at once: data is there */
    int32_t final_res = 0;
    REQUIRE_OK(evq_uring_cancel_and_reap(&ring, 9, URING_TEST_WAIT_MS, NULL, NULL, &final_res));
    CHECK_INT(final_res, ==, 3);
    CHECK_MEM(buffer, "won", 3);
    CHECK_UINT(ring.in_flight, ==, 0);
    close(a);
    close(b);
    evq_uring_close(&ring);
}

/* close(2) on the descriptor does not cancel: the request holds its own
 * reference to the socket, stays armed, and takes the peer's next bytes
 * into its buffer. Cancel (or shut the socket down) before freeing. */
EVQ_TEST(closing_the_descriptor_does_not_cancel)
{
    evq_uring ring;
    URING_OPEN(&ring, NULL);
    URING_NEED_OPS(&ring, IORING_OP_RECV);
    evq_socket a, b;
    REQUIRE_OK(uring_test_pair(&a, &b));
    char buffer[16] = "";
    evq_uring_prep_recv(uring_test_sqe(&ring), b, buffer, sizeof buffer, 0, 1);
    REQUIRE_OK(evq_uring_submit(&ring, NULL));
    REQUIRE_INT(close(b), ==, 0);
    REQUIRE_INT(send(a, "after", 5, 0), ==, 5);
    uring_test_cqe cqe;
    REQUIRE_OK(uring_test_reap(&ring, &cqe));
    CHECK_INT(cqe.res, ==, 5); /* received, through a closed descriptor */
    CHECK_MEM(buffer, "after", 5);
    close(a);
    evq_uring_close(&ring);
}

/* Closing a ring with receives, a timeout and a multishot accept in flight:
 * evq_uring_close cancels all and reaps all before it unmaps. */
EVQ_TEST(close_cancels_and_reaps_everything_in_flight)
{
    evq_uring ring;
    URING_OPEN(&ring, NULL);
    URING_NEED_OPS(&ring, IORING_OP_RECV, IORING_OP_ACCEPT, IORING_OP_TIMEOUT,
                   IORING_OP_ASYNC_CANCEL);
    enum { PAIRS = 3 };
    evq_socket a[PAIRS], b[PAIRS], listener;
    uint16_t port;
    REQUIRE_OK(uring_test_listener(&listener, &port));
    char *buffers[PAIRS];
    for (int i = 0; i < PAIRS; i++) {
        REQUIRE_OK(uring_test_pair(&a[i], &b[i]));
        buffers[i] = malloc(32);
        REQUIRE(buffers[i] != NULL);
        evq_uring_prep_recv(uring_test_sqe(&ring), b[i], buffers[i], 32, 0, (uint64_t)i + 1);
    }
    struct __kernel_timespec ts = {10, 0};
    evq_uring_prep_timeout(uring_test_sqe(&ring), &ts, 0, 0, 10);
    evq_uring_prep_accept(uring_test_sqe(&ring), listener, NULL, NULL, SOCK_CLOEXEC, true, 11);
    REQUIRE_OK(evq_uring_submit(&ring, NULL));
    CHECK_UINT(ring.in_flight, ==, PAIRS + 2);
    evq_uring_close(&ring);
    CHECK_UINT(ring.in_flight, ==, 0); /* every final completion was reaped */
    CHECK_INT(ring.fd, ==, -1);
    for (int i = 0; i < PAIRS; i++) {
        free(buffers[i]);
        REQUIRE_INT(send(a[i], "abc", 3, 0), ==, 3);
        char check[8];
        CHECK_INT(recv(b[i], check, sizeof check, 0), ==, 3); /* untouched by the ring */
        close(a[i]);
        close(b[i]);
    }
    close(listener);
}

int main(int argc, char **argv)
{
    static const evq_test_case cases[] = {
        EVQ_CASE(a_cancelled_receive_gives_its_buffer_back_with_its_own_completion),
        EVQ_CASE(the_same_on_a_defer_taskrun_ring),
        EVQ_CASE(the_cancel_completion_is_not_the_cancelled_one),
        EVQ_CASE(cancelling_a_finished_receive_finds_nothing),
        EVQ_CASE(cancel_and_reap_reports_a_receive_that_won),
        EVQ_CASE(closing_the_descriptor_does_not_cancel),
        EVQ_CASE(close_cancels_and_reaps_everything_in_flight),
    };
    return evq_test_main(argc, argv, cases, EVQ_COUNT(cases));
}

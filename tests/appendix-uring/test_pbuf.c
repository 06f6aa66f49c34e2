/* Multishot receive on a provided-buffer ring: an idle connection holds no
 * buffer; a buffer is taken per chunk of data and named in the completion;
 * when the ring runs dry the receive ends with -ENOBUFS and the data waits
 * in the socket until buffers are given back and the receive is re-armed. */
#define _DEFAULT_SOURCE /* shutdown */
#include "uring_test.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

enum { GROUP = 5 };

/* Open a ring and a buffer ring, or skip where the kernel lacks them. */
#define OPEN_WITH_PBUF(ring, pbuf, count, size)                                                    \
    do {                                                                                           \
        URING_OPEN(ring, NULL);                                                                    \
        URING_NEED_OPS(ring, IORING_OP_RECV);                                                      \
        int pbuf_code_ = evq_uring_pbuf_open(ring, pbuf, GROUP, count, size);                      \
        if (pbuf_code_ == EVQ_ENOTSUP) {                                                           \
            evq_uring_close(ring);                                                                 \
            SKIP("this kernel has no provided-buffer rings (IORING_REGISTER_PBUF_RING, 5.19)");    \
        }                                                                                          \
        REQUIRE_OK(pbuf_code_);                                                                    \
    } while (0)

/* Read one multishot completion: its data appended to out, its buffer given
 * back at once (recycle = false leaves it taken). */
static int take_chunk(evq_uring *ring, evq_uring_pbuf *pbuf, uring_test_cqe *cqe, char *out,
                      size_t *used, bool recycle)
{
    struct io_uring_cqe *raw;
    int code = evq_uring_wait(ring, &raw, URING_TEST_WAIT_MS);
    if (code != 0)
        return code;
    cqe->user_data = raw->user_data;
    cqe->res = raw->res;
    cqe->flags = raw->flags;
    uint16_t id;
    unsigned char *data;
    uint32_t len;
    if (evq_uring_pbuf_take(pbuf, raw, &id, &data, &len) == 0) {
        memcpy(out + *used, data, len);
        *used += len;
        if (recycle)
            evq_uring_pbuf_recycle(pbuf, id);
    }
    evq_uring_advance(ring, 1);
    return 0;
}

EVQ_TEST(idle_connections_hold_no_buffer)
{
    evq_uring ring;
    evq_uring_pbuf pbuf;
    OPEN_WITH_PBUF(&ring, &pbuf, 4, 64);
    enum { CONNECTIONS = 16 };
    evq_socket a[CONNECTIONS], b[CONNECTIONS];
    for (int i = 0; i < CONNECTIONS; i++) {
        REQUIRE_OK(uring_test_pair(&a[i], &b[i]));
        evq_uring_prep_recv_multishot(uring_test_sqe(&ring), b[i], GROUP, (uint64_t)i);
    }
    /* Submit all 16 and let the kernel run them: 16 receives armed, every
     * one of the 4 buffers still in the ring. */
    REQUIRE_OK(evq_uring_submit_and_wait(&ring, 0, 0));
    CHECK_UINT(ring.in_flight, ==, CONNECTIONS);
    CHECK_UINT(evq_uring_cq_ready(&ring), ==, 0);
    CHECK_UINT(pbuf.available, ==, 4);
    /* Data on four of them: four completions, one buffer each, all taken. */
    for (int i = 0; i < 4; i++) {
        char message[8];
        memcpy(message, "conn-", 5);
        message[5] = (char)('a' + i * 3);
        REQUIRE_INT(send(a[i * 3], message, 6, 0), ==, 6);
    }
    bool seen_id[4] = {false, false, false, false};
    uint16_t ids[4];
    for (int i = 0; i < 4; i++) {
        struct io_uring_cqe *cqe;
        REQUIRE_OK(evq_uring_wait(&ring, &cqe, URING_TEST_WAIT_MS));
        CHECK(cqe->flags & IORING_CQE_F_MORE); /* still armed */
        unsigned char *data;
        uint32_t len;
        REQUIRE_OK(evq_uring_pbuf_take(&pbuf, cqe, &ids[i], &data, &len));
        CHECK_UINT(len, ==, 6);
        /* The buffer holds what that connection's peer sent. */
        CHECK_INT(data[5], ==, 'a' + (int)cqe->user_data);
        CHECK(!seen_id[ids[i]]);
        seen_id[ids[i]] = true;
        evq_uring_advance(&ring, 1);
    }
    CHECK_UINT(pbuf.available, ==, 0);
    for (int i = 0; i < 4; i++)
        evq_uring_pbuf_recycle(&pbuf, ids[i]);
    CHECK_UINT(pbuf.available, ==, 4);
    evq_uring_close(&ring); /* cancels the 16 receives, reaps them */
    evq_uring_pbuf_close(&ring, &pbuf);
    for (int i = 0; i < CONNECTIONS; i++) {
        close(a[i]);
        close(b[i]);
    }
}

/* The ring runs dry: two 8-byte buffers, 24 bytes sent. Two completions with
 * data, then -ENOBUFS without IORING_CQE_F_MORE: the receive is over. The
 * last 8 bytes wait in the socket; after the buffers are given back and the
 * receive re-armed, they arrive, in order. A program that forgets to give
 * the buffers back gets -ENOBUFS again at once. */
EVQ_TEST(a_dry_ring_ends_the_receive_and_the_data_waits)
{
    evq_uring ring;
    evq_uring_pbuf pbuf;
    OPEN_WITH_PBUF(&ring, &pbuf, 2, 8);
    evq_socket a, b;
    REQUIRE_OK(uring_test_pair(&a, &b));
    REQUIRE_INT(send(a, "AAAAAAAABBBBBBBBCCCCCCCC", 24, 0), ==, 24);
    evq_uring_prep_recv_multishot(uring_test_sqe(&ring), b, GROUP, 1);
    char got[32];
    size_t used = 0;
    uring_test_cqe cqe;
    uint16_t taken[2];
    for (int i = 0; i < 2; i++) {
        REQUIRE_OK(take_chunk(&ring, &pbuf, &cqe, got, &used, false));
        CHECK_INT(cqe.res, ==, 8);
        CHECK(cqe.flags & IORING_CQE_F_MORE);
        taken[i] = (uint16_t)(cqe.flags >> IORING_CQE_BUFFER_SHIFT);
    }
    REQUIRE_OK(take_chunk(&ring, &pbuf, &cqe, got, &used, false));
    CHECK_INT(cqe.res, ==, -ENOBUFS);
    CHECK_ERR(evq_uring_error(cqe.res), EVQ_ENOBUFS);
    CHECK(!(cqe.flags & IORING_CQE_F_MORE)); /* ended: must be re-armed */
    CHECK(!(cqe.flags & IORING_CQE_F_BUFFER));
    CHECK_UINT(ring.in_flight, ==, 0);

    evq_uring_pbuf_recycle(&pbuf, taken[0]);
    evq_uring_pbuf_recycle(&pbuf, taken[1]);
    evq_uring_prep_recv_multishot(uring_test_sqe(&ring), b, GROUP, 2);
    REQUIRE_OK(take_chunk(&ring, &pbuf, &cqe, got, &used, true));
    CHECK_UINT(cqe.user_data, ==, 2);
    CHECK_INT(cqe.res, ==, 8);
    REQUIRE_UINT(used, ==, 24);
    CHECK_MEM(got, "AAAAAAAABBBBBBBBCCCCCCCC", 24);
    evq_uring_close(&ring);
    evq_uring_pbuf_close(&ring, &pbuf);
    close(a);
    close(b);
}

/* 300 messages of 1 to 700 bytes through 8 buffers of 256: the byte stream
 * comes out whole and in order, buffers recycled as they are read and the
 * receive re-armed whenever the ring ran dry. */
EVQ_TEST(a_stream_arrives_whole_and_in_order)
{
    evq_uring ring;
    evq_uring_pbuf pbuf;
    OPEN_WITH_PBUF(&ring, &pbuf, 8, 256);
    evq_socket a, b;
    REQUIRE_OK(uring_test_pair(&a, &b));
    static char sent[300 * 700], got[300 * 700];
    size_t total = 0;
    for (unsigned m = 0; m < 300; m++) {
        size_t len = 1 + (m * 37u) % 700;
        for (size_t i = 0; i < len; i++)
            sent[total + i] = (char)('a' + (m + i) % 26);
        REQUIRE_OK(evq_net_send_all(a, sent + total, len));
        total += len;
    }
    size_t used = 0;
    unsigned rearmed = 0;
    uint64_t tag = 100;
    evq_uring_prep_recv_multishot(uring_test_sqe(&ring), b, GROUP, tag);
    for (int rounds = 0; used < total && rounds < 100000; rounds++) {
        uring_test_cqe cqe;
        REQUIRE_OK(take_chunk(&ring, &pbuf, &cqe, got, &used, true));
        REQUIRE(cqe.res > 0 || cqe.res == -ENOBUFS);
        if (!(cqe.flags & IORING_CQE_F_MORE)) { /* ended (dry ring): arm again */
            rearmed++;
            evq_uring_prep_recv_multishot(uring_test_sqe(&ring), b, GROUP, ++tag);
        }
    }
    REQUIRE_UINT(used, ==, total);
    CHECK_MEM(got, sent, total);
    evq_test_note("%zu bytes in 256-byte buffers, %u re-arms after -ENOBUFS", total, rearmed);
    evq_uring_close(&ring);
    evq_uring_pbuf_close(&ring, &pbuf);
    close(a);
    close(b);
}

EVQ_TEST(the_end_of_the_stream_ends_the_receive_without_a_buffer)
{
    evq_uring ring;
    evq_uring_pbuf pbuf;
    OPEN_WITH_PBUF(&ring, &pbuf, 2, 64);
    evq_socket a, b;
    REQUIRE_OK(uring_test_pair(&a, &b));
    evq_uring_prep_recv_multishot(uring_test_sqe(&ring), b, GROUP, 1);
    REQUIRE_OK(evq_uring_submit(&ring, NULL));
    REQUIRE_INT(shutdown(a, SHUT_WR), ==, 0);
    struct io_uring_cqe *cqe;
    REQUIRE_OK(evq_uring_wait(&ring, &cqe, URING_TEST_WAIT_MS));
    CHECK_INT(cqe->res, ==, 0);
    CHECK(!(cqe->flags & IORING_CQE_F_MORE));
    uint16_t id;
    unsigned char *data;
    uint32_t len;
    CHECK_ERR(evq_uring_pbuf_take(&pbuf, cqe, &id, &data, &len), EVQ_ENOENT);
    evq_uring_advance(&ring, 1);
    CHECK_UINT(pbuf.available, ==, 2);
    CHECK_UINT(ring.in_flight, ==, 0);
    evq_uring_close(&ring);
    evq_uring_pbuf_close(&ring, &pbuf);
    close(a);
    close(b);
}

struct recycler {
    evq_uring_pbuf *pbuf;
    size_t bytes;
};

static void recycle_data(const struct io_uring_cqe *cqe, void *context)
{
    struct recycler *recycler = context;
    uint16_t id;
    unsigned char *data;
    uint32_t len;
    if (evq_uring_pbuf_take(recycler->pbuf, cqe, &id, &data, &len) == 0) {
        recycler->bytes += len;
        evq_uring_pbuf_recycle(recycler->pbuf, id);
    }
}

/* Cancelling a multishot receive: data it delivered before the cancel is
 * passed on (and its buffer recycled), then its final -ECANCELED. */
EVQ_TEST(a_cancelled_multishot_receive_loses_nothing)
{
    evq_uring ring;
    evq_uring_pbuf pbuf;
    OPEN_WITH_PBUF(&ring, &pbuf, 4, 64);
    URING_NEED_OPS(&ring, IORING_OP_ASYNC_CANCEL);
    evq_socket a, b;
    REQUIRE_OK(uring_test_pair(&a, &b));
    REQUIRE_INT(send(a, "before", 6, 0), ==, 6);
    evq_uring_prep_recv_multishot(uring_test_sqe(&ring), b, GROUP, 7);
    REQUIRE_OK(evq_uring_submit(&ring, NULL));
    struct recycler recycler = {&pbuf, 0};
    int32_t final_res = 0;
    REQUIRE_OK(evq_uring_cancel_and_reap(&ring, 7, URING_TEST_WAIT_MS, recycle_data, &recycler,
                                         &final_res));
    CHECK_UINT(recycler.bytes, ==, 6);
    CHECK_INT(final_res, ==, -ECANCELED);
    CHECK_UINT(pbuf.available, ==, 4);
    CHECK_UINT(ring.in_flight, ==, 0);
    evq_uring_close(&ring);
    evq_uring_pbuf_close(&ring, &pbuf);
    close(a);
    close(b);
}

EVQ_TEST(buffer_rings_check_their_arguments)
{
    evq_uring ring;
    URING_OPEN(&ring, NULL);
    evq_uring_pbuf pbuf, second;
    CHECK_ERR(evq_uring_pbuf_open(&ring, &pbuf, GROUP, 3, 64), EVQ_EINVAL); /* not 2^n */
    CHECK_ERR(evq_uring_pbuf_open(&ring, &pbuf, GROUP, 0, 64), EVQ_EINVAL);
    CHECK_ERR(evq_uring_pbuf_open(&ring, &pbuf, GROUP, 4, 0), EVQ_EINVAL);
    int code = evq_uring_pbuf_open(&ring, &pbuf, GROUP, 4, 64);
    if (code == EVQ_ENOTSUP) {
        evq_uring_close(&ring);
        SKIP("this kernel has no provided-buffer rings (IORING_REGISTER_PBUF_RING, 5.19)");
    }
    REQUIRE_OK(code);
    CHECK_ERR(evq_uring_pbuf_open(&ring, &second, GROUP, 4, 64), EVQ_EEXIST); /* group taken */
    evq_uring_pbuf_close(&ring, &pbuf);
    CHECK_OK(evq_uring_pbuf_open(&ring, &second, GROUP, 4, 64)); /* free again */
    evq_uring_pbuf_close(&ring, &second);
    evq_uring_close(&ring);
}

int main(int argc, char **argv)
{
    static const evq_test_case cases[] = {
        EVQ_CASE(idle_connections_hold_no_buffer),
        EVQ_CASE(a_dry_ring_ends_the_receive_and_the_data_waits),
        EVQ_CASE(a_stream_arrives_whole_and_in_order),
        EVQ_CASE(the_end_of_the_stream_ends_the_receive_without_a_buffer),
        EVQ_CASE(a_cancelled_multishot_receive_loses_nothing),
        EVQ_CASE(buffer_rings_check_their_arguments),
    };
    return evq_test_main(argc, argv, cases, EVQ_COUNT(cases));
}

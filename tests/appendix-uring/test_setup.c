/* The rings themselves: setup, the two ways of mapping them, SQEs out and
 * CQEs back in order across the wrap-around, full rings, timeouts on the
 * wait, and the setup flags the kernel accepted. */
#include "uring_test.h"
#include "evq_thread.h"

#include <stdatomic.h>

#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int submit_nops(evq_uring *ring, uint64_t first, unsigned count)
{
    for (unsigned i = 0; i < count; i++) {
        struct io_uring_sqe *sqe;
        int code = evq_uring_get_sqe(ring, &sqe);
        if (code != 0)
            return code;
        evq_uring_prep_nop(sqe, first + i);
    }
    return evq_uring_submit(ring, NULL);
}

/* count NOPs through a ring, in batches of `batch`: every user_data comes
 * back once, in order (NOPs complete at submission, in submission order). */
static void nops_in_order(evq_uring *ring, unsigned count, unsigned batch)
{
    uint64_t next = 1;
    for (uint64_t sent = 1; sent <= count; sent += batch) {
        REQUIRE_OK(submit_nops(ring, sent, batch));
        for (unsigned i = 0; i < batch; i++) {
            uring_test_cqe cqe;
            REQUIRE_OK(uring_test_reap(ring, &cqe));
            REQUIRE_UINT(cqe.user_data, ==, next);
            REQUIRE_INT(cqe.res, ==, 0);
            next++;
        }
    }
    CHECK_UINT(ring->in_flight, ==, 0);
}

EVQ_TEST(open_maps_the_rings)
{
    evq_uring ring;
    URING_OPEN(&ring, NULL);
    CHECK_INT(ring.fd, >=, 0);
    CHECK_UINT(ring.sq.entries, ==, 64);
    CHECK_UINT(ring.cq.entries, ==, 256); /* 4 x sq_entries: room for multishot */
    CHECK_UINT(ring.sq.mask, ==, ring.sq.entries - 1);
    CHECK(ring.features & IORING_FEAT_NODROP);
    if (ring.features & IORING_FEAT_SINGLE_MMAP)
        CHECK(ring.single_mmap && ring.sq.ring_memory == ring.cq.ring_memory);
    /* The head and tail words lie inside the mappings the kernel gave. */
    unsigned char *sq = ring.sq.ring_memory, *cq = ring.cq.ring_memory;
    CHECK((unsigned char *)ring.sq.tail > sq &&
          (unsigned char *)ring.sq.tail < sq + ring.sq.ring_bytes);
    CHECK((unsigned char *)(ring.cq.cqes + ring.cq.entries) <= cq + ring.cq.ring_bytes);
    nops_in_order(&ring, 8, 8);
    evq_uring_close(&ring);
    CHECK_INT(ring.fd, ==, -1);
}

EVQ_TEST(separate_mmaps_work_too)
{
    evq_uring ring;
    evq_uring_options options = {8, 16, EVQ_URING_SEPARATE_MMAPS};
    URING_OPEN(&ring, &options);
    CHECK(!ring.single_mmap);
    CHECK(ring.sq.ring_memory != ring.cq.ring_memory);
    /* Twice round both rings through the second mapping. */
    nops_in_order(&ring, 64, 8);
    evq_uring_close(&ring);
}

EVQ_TEST(completions_keep_order_across_the_wrap_around)
{
    evq_uring ring;
    evq_uring_options options = {8, 8, 0};
    URING_OPEN(&ring, &options);
    /* 1000 NOPs in batches of 5: the indices wrap the 8 slots many times and
     * never line up with the batches. */
    nops_in_order(&ring, 1000, 5);
    evq_uring_close(&ring);
}

EVQ_TEST(get_sqe_says_full_until_submitted)
{
    evq_uring ring;
    evq_uring_options options = {4, 0, 0};
    URING_OPEN(&ring, &options);
    struct io_uring_sqe *sqe;
    for (int i = 0; i < 4; i++) {
        REQUIRE_OK(evq_uring_get_sqe(&ring, &sqe));
        evq_uring_prep_nop(sqe, 100 + (uint64_t)i);
    }
    CHECK_ERR(evq_uring_get_sqe(&ring, &sqe), EVQ_EFULL);
    CHECK_UINT(evq_uring_sq_pending(&ring), ==, 4);
    unsigned submitted = 0;
    REQUIRE_OK(evq_uring_submit(&ring, &submitted));
    CHECK_UINT(submitted, ==, 4);
    CHECK_UINT(evq_uring_sq_pending(&ring), ==, 0);
    CHECK_OK(evq_uring_get_sqe(&ring, &sqe)); /* the kernel has consumed them */
    evq_uring_prep_nop(sqe, 104);
    for (uint64_t i = 0; i < 5; i++) {
        uring_test_cqe cqe;
        REQUIRE_OK(uring_test_reap(&ring, &cqe));
        CHECK_UINT(cqe.user_data, ==, 100 + i);
    }
    evq_uring_close(&ring);
}

EVQ_TEST(an_sqe_is_handed_out_zeroed)
{
    evq_uring ring;
    evq_uring_options options = {2, 0, 0};
    URING_OPEN(&ring, &options);
    /* Leave junk in both slots: a link flag, a buffer group, a length. */
    for (uint64_t round = 0; round < 2; round++) {
        struct io_uring_sqe *sqe;
        REQUIRE_OK(evq_uring_get_sqe(&ring, &sqe));
        evq_uring_prep_nop(sqe, round);
        sqe->len = 12345;
        sqe->buf_group = 7;
        sqe->personality = 0;
        REQUIRE_OK(evq_uring_submit(&ring, NULL));
        uring_test_cqe cqe;
        REQUIRE_OK(uring_test_reap(&ring, &cqe));
    }
    static const unsigned char zero[sizeof(struct io_uring_sqe)];
    struct io_uring_sqe *sqe;
    REQUIRE_OK(evq_uring_get_sqe(&ring, &sqe));
    CHECK_MEM(sqe, zero, sizeof zero);
    evq_uring_prep_nop(sqe, 9);
    uring_test_cqe cqe;
    CHECK_OK(uring_test_reap(&ring, &cqe));
    evq_uring_close(&ring);
}

EVQ_TEST(advance_never_passes_the_tail)
{
    evq_uring ring;
    URING_OPEN(&ring, NULL);
    REQUIRE_OK(submit_nops(&ring, 1, 1));
    struct io_uring_cqe *cqe;
    REQUIRE_OK(evq_uring_wait(&ring, &cqe, URING_TEST_WAIT_MS));
    uint32_t head = atomic_load(ring.cq.head);
    evq_uring_advance(&ring, 10); /* a caller's mistake: only one is there */
    CHECK_UINT(atomic_load(ring.cq.head), ==, head + 1);
    CHECK_ERR(evq_uring_peek(&ring, &cqe), EVQ_EWOULDBLOCK);
    evq_uring_close(&ring);
}

EVQ_TEST(wait_reports_timeout_and_empty)
{
    evq_uring ring;
    URING_OPEN(&ring, NULL);
    struct io_uring_cqe *cqe;
    CHECK_ERR(evq_uring_peek(&ring, &cqe), EVQ_EWOULDBLOCK);
    CHECK_ERR(evq_uring_wait(&ring, &cqe, 0), EVQ_EWOULDBLOCK);
    CHECK_ERR(evq_uring_wait(&ring, &cqe, 5), EVQ_ETIMEDOUT);
    /* A completion already there costs no system call. */
    REQUIRE_OK(submit_nops(&ring, 1, 1));
    REQUIRE_OK(evq_uring_submit_and_wait(&ring, 1, URING_TEST_WAIT_MS));
    uint64_t calls = ring.enter_calls;
    CHECK_OK(evq_uring_wait(&ring, &cqe, URING_TEST_WAIT_MS));
    CHECK_UINT(ring.enter_calls, ==, calls);
    evq_uring_advance(&ring, 1);
    evq_uring_close(&ring);
}

EVQ_TEST(one_enter_submits_a_batch_and_waits)
{
    evq_uring ring;
    URING_OPEN(&ring, NULL);
    for (uint64_t i = 0; i < 16; i++) {
        struct io_uring_sqe *sqe;
        REQUIRE_OK(evq_uring_get_sqe(&ring, &sqe));
        evq_uring_prep_nop(sqe, i);
    }
    uint64_t calls = ring.enter_calls;
    REQUIRE_OK(evq_uring_submit_and_wait(&ring, 16, URING_TEST_WAIT_MS));
    CHECK_UINT(ring.enter_calls - calls, ==, 1);
    CHECK_UINT(evq_uring_cq_ready(&ring), ==, 16);
    CHECK_UINT(ring.in_flight, ==, 16); /* until they are reaped */
    evq_uring_advance(&ring, 16);
    CHECK_UINT(ring.in_flight, ==, 0);
    evq_uring_close(&ring);
}

/* A full CQ with more completions behind it in the kernel's backlog
 * (IORING_FEAT_NODROP): the backlog can move in only once the caller has
 * reaped some, so a wait for one completion must return at once - there
 * are eight to reap - rather than ask the kernel again and again to move a
 * backlog it has no room for. The version that waited for the overflow
 * flag to clear spun for ever (closing chapter 4's queue with a thousand
 * connections did); the wait runs on a thread, bounded, so that a spin
 * fails the case instead of hanging it. */
struct overflow_wait {
    evq_uring *ring;
    atomic_bool done;
    int code;
};

static void wait_on_a_full_cq(void *arg)
{
    struct overflow_wait *w = arg;
    w->code = evq_uring_submit_and_wait(w->ring, 1, 100);
    atomic_store(&w->done, true);
}

EVQ_TEST(a_full_cq_with_a_backlog_returns_to_be_reaped)
{
    evq_uring ring;
    evq_uring_options small = {8, 8, 0};
    URING_OPEN(&ring, &small);
    REQUIRE_UINT(ring.cq.entries, ==, 8);
    REQUIRE_OK(submit_nops(&ring, 1, 8));
    REQUIRE_OK(submit_nops(&ring, 9, 8)); /* no room: into the backlog */
    CHECK(atomic_load(ring.sq.flags) & IORING_SQ_CQ_OVERFLOW);
    struct overflow_wait w = {.ring = &ring};
    atomic_init(&w.done, false);
    evq_thread thread;
    REQUIRE_OK(evq_thread_start(&thread, wait_on_a_full_cq, &w));
    for (int i = 0; i < 200 && !atomic_load(&w.done); i++)
        evq_sleep_ms(10);
    bool returned = atomic_load(&w.done);
    REQUIRE(returned); /* (a spinning thread ends with the process) */
    evq_thread_join(&thread);
    CHECK_OK(w.code);
    /* Reaping makes room, and the backlog comes in: all sixteen, in order. */
    for (uint64_t expected = 1; expected <= 16; expected++) {
        struct io_uring_cqe *cqe;
        REQUIRE_OK(evq_uring_wait(&ring, &cqe, URING_TEST_WAIT_MS));
        CHECK_UINT(cqe->user_data, ==, expected);
        evq_uring_advance(&ring, 1);
    }
    CHECK_UINT(ring.in_flight, ==, 0);
    evq_uring_close(&ring);
}

EVQ_TEST(setup_flags_are_what_the_kernel_accepted)
{
    evq_uring ring;
    evq_uring_options options = {0, 0, EVQ_URING_WANT_DEFER_TASKRUN};
    URING_OPEN(&ring, &options);
    /* Asked for DEFER_TASKRUN (which needs SINGLE_ISSUER): whatever this
     * kernel dropped, the flags kept are consistent. */
    if (ring.setup_flags & IORING_SETUP_DEFER_TASKRUN)
        CHECK(ring.setup_flags & IORING_SETUP_SINGLE_ISSUER);
    evq_test_note("accepted: SUBMIT_ALL %d COOP_TASKRUN %d SINGLE_ISSUER %d DEFER_TASKRUN %d",
                  !!(ring.setup_flags & IORING_SETUP_SUBMIT_ALL),
                  !!(ring.setup_flags & IORING_SETUP_COOP_TASKRUN),
                  !!(ring.setup_flags & IORING_SETUP_SINGLE_ISSUER),
                  !!(ring.setup_flags & IORING_SETUP_DEFER_TASKRUN));
    nops_in_order(&ring, 16, 4);
    evq_uring_close(&ring);

    URING_OPEN(&ring, NULL); /* not asked for: not set */
    CHECK(!(ring.setup_flags & (IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN)));
    evq_uring_close(&ring);
}

/* With DEFER_TASKRUN, a completion that needs work in our thread (a receive
 * woken by arriving data) waits until we call io_uring_enter with
 * GETEVENTS: peeking alone never sees it, however long we look. */
EVQ_TEST(defer_taskrun_posts_completions_only_inside_enter)
{
    evq_uring ring;
    evq_uring_options options = {0, 0, EVQ_URING_WANT_DEFER_TASKRUN};
    URING_OPEN(&ring, &options);
    if (!(ring.setup_flags & IORING_SETUP_DEFER_TASKRUN)) {
        evq_uring_close(&ring);
        SKIP("this kernel refused IORING_SETUP_DEFER_TASKRUN (6.1 and later have it)");
    }
    evq_socket a, b;
    REQUIRE_OK(uring_test_pair(&a, &b));
    char buffer[16];
    struct io_uring_sqe *sqe;
    REQUIRE_OK(evq_uring_get_sqe(&ring, &sqe));
    evq_uring_prep_recv(sqe, b, buffer, sizeof buffer, 0, 42);
    REQUIRE_OK(evq_uring_submit(&ring, NULL));
    REQUIRE_INT(send(a, "ping", 4, 0), ==, 4);
    /* The data is in b's receive queue; the completion is not in the CQ. */
    struct io_uring_cqe *cqe;
    for (int i = 0; i < 100; i++) {
        CHECK_ERR(evq_uring_peek(&ring, &cqe), EVQ_EWOULDBLOCK);
        evq_thread_yield();
    }
    REQUIRE_OK(evq_uring_wait(&ring, &cqe, URING_TEST_WAIT_MS));
    CHECK_UINT(cqe->user_data, ==, 42);
    CHECK_INT(cqe->res, ==, 4);
    CHECK_MEM(buffer, "ping", 4);
    evq_uring_advance(&ring, 1);
    evq_uring_close(&ring);
    close(a);
    close(b);
}

struct other_thread {
    evq_uring *ring;
    int submit_code;
};

static void submit_from_other_thread(void *arg)
{
    struct other_thread *other = arg;
    other->submit_code = evq_uring_submit(other->ring, NULL);
}

/* SINGLE_ISSUER means it: another thread's io_uring_enter is refused with
 * EEXIST. The waker (test_waker.c) is built so that it never submits. */
EVQ_TEST(single_issuer_refuses_another_thread)
{
    evq_uring ring;
    evq_uring_options options = {0, 0, EVQ_URING_WANT_SINGLE_ISSUER};
    URING_OPEN(&ring, &options);
    if (!(ring.setup_flags & IORING_SETUP_SINGLE_ISSUER)) {
        evq_uring_close(&ring);
        SKIP("this kernel refused IORING_SETUP_SINGLE_ISSUER (6.0 and later have it)");
    }
    REQUIRE_OK(submit_nops(&ring, 1, 1)); /* the creator submits: fine */
    uring_test_cqe cqe;
    REQUIRE_OK(uring_test_reap(&ring, &cqe));
    struct io_uring_sqe *sqe;
    REQUIRE_OK(evq_uring_get_sqe(&ring, &sqe));
    evq_uring_prep_nop(sqe, 2);
    struct other_thread other = {&ring, 0};
    evq_thread thread;
    REQUIRE_OK(evq_thread_start(&thread, submit_from_other_thread, &other));
    REQUIRE_OK(evq_thread_join(&thread));
    CHECK_ERR(other.submit_code, EVQ_EEXIST);
    CHECK_OK(uring_test_reap(&ring, &cqe)); /* still pending: the owner submits it */
    CHECK_UINT(cqe.user_data, ==, 2);
    evq_uring_close(&ring);
}

EVQ_TEST(bad_options_are_einval)
{
    evq_uring ring;
    evq_uring_options too_many = {65536, 0, 0};
    CHECK_ERR(evq_uring_open(&ring, &too_many), EVQ_EINVAL);
    CHECK_INT(ring.fd, ==, -1);
    evq_uring_options cq_too_small = {64, 8, 0};
    CHECK_ERR(evq_uring_open(&ring, &cq_too_small), EVQ_EINVAL);
    CHECK_ERR(evq_uring_open(NULL, NULL), EVQ_EINVAL);
    evq_uring_close(&ring); /* harmless after a failed open */
}

int main(int argc, char **argv)
{
    static const evq_test_case cases[] = {
        EVQ_CASE(open_maps_the_rings),
        EVQ_CASE(separate_mmaps_work_too),
        EVQ_CASE(completions_keep_order_across_the_wrap_around),
        EVQ_CASE(get_sqe_says_full_until_submitted),
        EVQ_CASE(an_sqe_is_handed_out_zeroed),
        EVQ_CASE(advance_never_passes_the_tail),
        EVQ_CASE(wait_reports_timeout_and_empty),
        EVQ_CASE(one_enter_submits_a_batch_and_waits),
        EVQ_CASE(a_full_cq_with_a_backlog_returns_to_be_reaped),
        EVQ_CASE(setup_flags_are_what_the_kernel_accepted),
        EVQ_CASE(defer_taskrun_posts_completions_only_inside_enter),
        EVQ_CASE(single_issuer_refuses_another_thread),
        EVQ_CASE(bad_options_are_einval),
    };
    return evq_test_main(argc, argv, cases, EVQ_COUNT(cases));
}

/* The memory-ordering protocol on the ring indices, with the kernel played
 * by a thread. ThreadSanitizer cannot see the real kernel's stores, so
 * against a real ring it would find nothing either way; against a thread
 * that follows the kernel's side of the protocol (acquire the tail, read
 * the entries, release the head; write a CQE, release the tail) it checks
 * that the layer's loads and stores pair up. The tsan preset runs these
 * cases; under the other presets they check order and counts. */
#include "uring_test.h"
#include "evq_thread.h"
#include "evq_uring_testing.h"

#include <stdlib.h>

#ifndef EVQ_URING_SCALE
#define EVQ_URING_SCALE 1
#endif
#define ITEMS (200000 / EVQ_URING_SCALE)

struct fake_kernel {
    evq_uring *ring;
    unsigned items;
    unsigned errors;
};

/* The kernel's side of the CQ: post CQE i when there is room. */
static void kernel_posts_completions(void *arg)
{
    struct fake_kernel *kernel = arg;
    evq_uring_cq *cq = &kernel->ring->cq;
    for (unsigned i = 0; i < kernel->items; i++) {
        uint32_t tail = atomic_load_explicit(cq->tail, memory_order_relaxed);
        /* acquire, as the kernel's READ_ONCE + barrier of the head: the
         * consumer's reads of a slot happen before we overwrite it. */
        while (tail - atomic_load_explicit(cq->head, memory_order_acquire) >= cq->entries)
            evq_thread_yield();
        struct io_uring_cqe *cqe = &cq->cqes[tail & cq->mask];
        cqe->user_data = i;
        cqe->res = (int32_t)(i * 3u);
        cqe->flags = i & 1u ? IORING_CQE_F_MORE : 0;
        atomic_store_explicit(cq->tail, tail + 1, memory_order_release);
    }
}

/* The kernel's side of the SQ: consume SQEs as they are published. */
static void kernel_consumes_submissions(void *arg)
{
    struct fake_kernel *kernel = arg;
    evq_uring_sq *sq = &kernel->ring->sq;
    unsigned seen = 0;
    uint32_t head = 0;
    while (seen < kernel->items) {
        uint32_t tail = atomic_load_explicit(sq->tail, memory_order_acquire);
        if (head == tail) {
            evq_thread_yield();
            continue;
        }
        for (; head != tail; head++, seen++) {
            struct io_uring_sqe *sqe = &sq->sqes[sq->array[head & sq->mask]];
            if (sqe->user_data != seen || sqe->len != seen * 7u || sqe->opcode != IORING_OP_NOP)
                kernel->errors++;
        }
        atomic_store_explicit(sq->head, head, memory_order_release);
    }
}

/* A ring with no kernel behind it, in memory the caller frees; NULL if
 * that memory could not be had. */
static void *fake_ring(evq_uring *ring, unsigned sq_entries, unsigned cq_entries)
{
    /* 64-byte aligned for the SQEs; the size rounded up to the alignment. */
    size_t bytes = evq_uring_testing_memory_size(sq_entries, cq_entries);
    void *memory = aligned_alloc(64, (bytes + 63) / 64 * 64);
    if (memory && evq_uring_testing_attach(ring, memory, sq_entries, cq_entries) != 0) {
        free(memory);
        memory = NULL;
    }
    return memory;
}

EVQ_TEST(completions_handed_over_by_a_simulated_kernel)
{
    evq_uring ring;
    void *memory = fake_ring(&ring, 8, 16);
    REQUIRE(memory != NULL);
    struct fake_kernel kernel = {&ring, ITEMS, 0};
    evq_thread thread;
    REQUIRE_OK(evq_thread_start(&thread, kernel_posts_completions, &kernel));
    unsigned next = 0, wrong = 0;
    while (next < ITEMS) {
        struct io_uring_cqe *cqe;
        if (evq_uring_peek(&ring, &cqe) != 0) {
            evq_thread_yield();
            continue;
        }
        if (cqe->user_data != next || cqe->res != (int32_t)(next * 3u))
            wrong++;
        evq_uring_advance(&ring, 1);
        next++;
    }
    CHECK_OK(evq_thread_join(&thread));
    CHECK_UINT(wrong, ==, 0);
    CHECK_UINT(atomic_load(ring.cq.head), ==, ITEMS);
    free(memory);
}

EVQ_TEST(submissions_handed_over_to_a_simulated_kernel)
{
    evq_uring ring;
    void *memory = fake_ring(&ring, 8, 16);
    REQUIRE(memory != NULL);
    struct fake_kernel kernel = {&ring, ITEMS, 0};
    evq_thread thread;
    REQUIRE_OK(evq_thread_start(&thread, kernel_consumes_submissions, &kernel));
    unsigned full = 0;
    for (unsigned i = 0; i < ITEMS;) {
        struct io_uring_sqe *sqe;
        if (evq_uring_get_sqe(&ring, &sqe) != 0) {
            full++; /* EVQ_EFULL: the kernel has not caught up; publish and retry */
            evq_uring_flush_sq(&ring);
            evq_thread_yield();
            continue;
        }
        evq_uring_prep_nop(sqe, i);
        sqe->len = i * 7u;
        i++;
        if (i % 3 == 0)
            evq_uring_flush_sq(&ring); /* publish in uneven batches */
    }
    while (evq_uring_flush_sq(&ring) > 0)
        evq_thread_yield();
    CHECK_OK(evq_thread_join(&thread));
    CHECK_UINT(kernel.errors, ==, 0);
    evq_test_note("%u times the SQ was full", full);
    free(memory);
}

EVQ_TEST(batches_are_given_back_at_once)
{
    evq_uring ring;
    void *memory = fake_ring(&ring, 4, 8);
    REQUIRE(memory != NULL);
    struct fake_kernel kernel = {&ring, 8, 0};
    kernel_posts_completions(&kernel); /* fills the CQ: 8 of 8 */
    CHECK_UINT(evq_uring_cq_ready(&ring), ==, 8);
    evq_uring_advance(&ring, 5);
    CHECK_UINT(evq_uring_cq_ready(&ring), ==, 3);
    struct io_uring_cqe *cqe;
    REQUIRE_OK(evq_uring_peek(&ring, &cqe));
    CHECK_UINT(cqe->user_data, ==, 5);
    /* Submit and wait need the kernel: this ring has none. */
    CHECK_ERR(evq_uring_submit(&ring, NULL), EVQ_EBADF);
    CHECK_ERR(evq_uring_submit_and_wait(&ring, 1, 0), EVQ_EBADF);
    evq_uring_close(&ring); /* leaves the test's memory alone */
    free(memory);
}

int main(int argc, char **argv)
{
    static const evq_test_case cases[] = {
        EVQ_CASE(completions_handed_over_by_a_simulated_kernel),
        EVQ_CASE(submissions_handed_over_to_a_simulated_kernel),
        EVQ_CASE(batches_are_given_back_at_once),
    };
    return evq_test_main(argc, argv, cases, EVQ_COUNT(cases));
}

/* The eventfd waker: another thread ends a wait on a ring it never touches
 * (so SINGLE_ISSUER holds), wakes coalesce, and the read is posted again
 * after each wake-up. */
#include "uring_test.h"
#include "evq_thread.h"

struct waking_thread {
    evq_uring_waker *waker; /* the thread reads only its fd */
    int wakes;
    int code;
};

static void wake_from_another_thread(void *arg)
{
    struct waking_thread *waking = arg;
    for (int i = 0; i < waking->wakes && waking->code == 0; i++)
        waking->code = evq_uring_waker_wake(waking->waker);
}

/* Wait until the waker's completion comes; count what else came. */
static int wait_for_wake(evq_uring *ring, evq_uring_waker *waker, uint64_t *value)
{
    for (int round = 0; round < 16; round++) {
        struct io_uring_cqe *cqe;
        int code = evq_uring_wait(ring, &cqe, URING_TEST_WAIT_MS);
        if (code != 0)
            return code;
        bool mine = evq_uring_waker_owns(waker, cqe);
        int32_t res = cqe->res;
        evq_uring_advance(ring, 1);
        if (mine) {
            *value = waker->count;
            return res == (int32_t)sizeof waker->count ? 0 : evq_uring_error(res);
        }
    }
    return EVQ_ETIMEDOUT;
}

static void wake_across_threads(unsigned flags, int wakes)
{
    evq_uring ring;
    evq_uring_options options = {0, 0, flags};
    URING_OPEN(&ring, &options);
    URING_NEED_OPS(&ring, IORING_OP_READ);
    evq_uring_waker waker;
    REQUIRE_OK(evq_uring_waker_open(&waker));
    REQUIRE_OK(evq_uring_waker_arm(&ring, &waker));
    REQUIRE_OK(evq_uring_submit(&ring, NULL));
    CHECK(waker.armed);

    struct waking_thread waking = {&waker, wakes, 0};
    evq_thread thread;
    REQUIRE_OK(evq_thread_start(&thread, wake_from_another_thread, &waking));
    uint64_t value = 0, total = 0;
    /* The wakes may come back as one read or several: the eventfd counter
     * adds them up; every read resets it. */
    while (total < (uint64_t)wakes) {
        REQUIRE_OK(wait_for_wake(&ring, &waker, &value));
        CHECK(!waker.armed);
        CHECK_UINT(value, >=, 1);
        total += value;
        REQUIRE_OK(evq_uring_waker_arm(&ring, &waker));
    }
    REQUIRE_OK(evq_thread_join(&thread));
    CHECK_OK(waking.code);
    CHECK_UINT(total, ==, (uint64_t)wakes);
    evq_uring_close(&ring); /* cancels the read posted last, reaps it */
    evq_uring_waker_close(&waker);
}

EVQ_TEST(a_wake_from_another_thread_ends_the_wait)
{
    wake_across_threads(0, 1);
}

EVQ_TEST(a_single_issuer_ring_is_woken_without_submitting_from_the_waker)
{
    wake_across_threads(EVQ_URING_WANT_DEFER_TASKRUN, 1);
}

EVQ_TEST(many_wakes_add_up_and_none_is_lost)
{
    wake_across_threads(EVQ_URING_WANT_DEFER_TASKRUN, 1000);
}

EVQ_TEST(wakes_before_the_wait_coalesce_into_one_completion)
{
    evq_uring ring;
    URING_OPEN(&ring, NULL);
    URING_NEED_OPS(&ring, IORING_OP_READ);
    evq_uring_waker waker;
    REQUIRE_OK(evq_uring_waker_open(&waker));
    for (int i = 0; i < 5; i++)
        REQUIRE_OK(evq_uring_waker_wake(&waker));
    REQUIRE_OK(evq_uring_waker_arm(&ring, &waker));
    uint64_t value = 0;
    REQUIRE_OK(wait_for_wake(&ring, &waker, &value));
    CHECK_UINT(value, ==, 5);
    CHECK_UINT(evq_uring_cq_ready(&ring), ==, 0);
    evq_uring_close(&ring);
    evq_uring_waker_close(&waker);
}

int main(int argc, char **argv)
{
    static const evq_test_case cases[] = {
        EVQ_CASE(a_wake_from_another_thread_ends_the_wait),
        EVQ_CASE(a_single_issuer_ring_is_woken_without_submitting_from_the_waker),
        EVQ_CASE(many_wakes_add_up_and_none_is_lost),
        EVQ_CASE(wakes_before_the_wait_coalesce_into_one_completion),
    };
    return evq_test_main(argc, argv, cases, EVQ_COUNT(cases));
}

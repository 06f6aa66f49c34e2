/* cancel.c - cancelling an operation and waiting until the kernel has let
 * go of its memory.
 *
 * IORING_OP_ASYNC_CANCEL posts two completions: its own (0 found and
 * cancelled, -ENOENT not found, -EALREADY already running) and the target's
 * (-ECANCELED, or its real result if it finished first). They come in
 * either order; on Linux 6.18 the cancel's own usually comes first. Only
 * the target's final completion hands its buffer back, exactly as an IOCP
 * program must wait for the completion of a cancelled OVERLAPPED.
 */
#include "uring_internal.h"
#include "evq_clock.h"
#include "evq_error.h"

/* ANCHOR: cancel_and_reap */
int evq_uring_cancel_and_reap(evq_uring *ring, uint64_t target, int timeout_ms,
                              evq_uring_cqe_fn other, void *context, int32_t *final_res)
{
    struct io_uring_sqe *sqe;
    int code = evq_uring_next_sqe(ring, &sqe);
    if (code != 0)
        return code;
    uint64_t cancel = evq_uring_tag(EVQ_URING_KIND_CANCEL, 0, 1);
    evq_uring_prep_cancel(sqe, target, 0, cancel);

    uint64_t deadline = evq_clock_now_ns() + (uint64_t)timeout_ms * EVQ_NS_PER_MS;
    bool target_done = false, cancel_done = false;
    while (!target_done || !cancel_done) {
        int left = (int)(evq_sat_sub(deadline, evq_clock_now_ns()) / EVQ_NS_PER_MS);
        struct io_uring_cqe *cqe;
        code = evq_uring_wait(ring, &cqe, timeout_ms < 0 ? -1 : left);
        if (code != 0)
            return code == EVQ_EWOULDBLOCK ? EVQ_ETIMEDOUT : code;
        if (cqe->user_data == cancel) {
            cancel_done = true; /* says nothing about the buffer yet */
        } else if (cqe->user_data == target && !(cqe->flags & IORING_CQE_F_MORE)) {
            target_done = true; /* the kernel is done with the target's memory */
            if (final_res)
                *final_res = cqe->res;
        } else if (other) {
            other(cqe, context); /* someone else's, or the target's data so far */
        }
        evq_uring_advance(ring, 1);
    }
    return 0;
}
/* ANCHOR_END: cancel_and_reap */

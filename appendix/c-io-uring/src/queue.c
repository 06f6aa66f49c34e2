/* queue.c - the two rings in use: hand out SQEs, publish and submit them,
 * wait for completions, read them and give their slots back.
 *
 * Four words are shared with the kernel, and each has one writer:
 *   SQ tail  we write   (release)  the kernel reads (acquire)
 *   SQ head  kernel     (release)  we read          (acquire)
 *   CQ tail  kernel     (release)  we read          (acquire)
 *   CQ head  we write   (release)  the kernel reads (acquire)
 * The release store of an index says "the entries before it are written";
 * the acquire load on the other side makes those entries' contents visible.
 * Appendix A explains the pair: book/appendix-a-atomics.md, "Release and
 * acquire: handing over a result".
 */
#include "uring_internal.h"
#include "evq_clock.h"
#include "evq_error.h"

#include <errno.h>
#include <string.h>

/* ANCHOR: get_sqe */
int evq_uring_get_sqe(evq_uring *ring, struct io_uring_sqe **out)
{
    /* acquire: pairs with the kernel's release store of the SQ head, made
     * once it has copied the SQEs before it. The slot handed out below is
     * then one the kernel has finished reading. */
    uint32_t head = atomic_load_explicit(ring->sq.head, memory_order_acquire);
    if (ring->sq.sqe_tail - head >= ring->sq.entries)
        return EVQ_EFULL; /* every slot is waiting for the kernel: submit first */
    struct io_uring_sqe *sqe = &ring->sq.sqes[ring->sq.sqe_tail & ring->sq.mask];
    ring->sq.sqe_tail++;
    /* A slot keeps the fields of its last operation (a buffer group, a
     * link flag, a file index): start from zero every time. */
    memset(sqe, 0, sizeof *sqe);
    *out = sqe;
    return 0;
}
/* ANCHOR_END: get_sqe */

int evq_uring_next_sqe(evq_uring *ring, struct io_uring_sqe **out)
{
    int code = evq_uring_get_sqe(ring, out);
    if (code == EVQ_EFULL && (code = evq_uring_submit(ring, NULL)) == 0)
        code = evq_uring_get_sqe(ring, out);
    return code;
}

unsigned evq_uring_sq_pending(const evq_uring *ring)
{
    return ring->sq.sqe_tail - atomic_load_explicit(ring->sq.head, memory_order_acquire);
}

/* ANCHOR: flush_sq */
unsigned evq_uring_flush_sq(evq_uring *ring)
{
    /* release: every plain store into the SQEs handed out happens before the
     * new tail is visible. The kernel reads the tail with an acquire load
     * (smp_load_acquire in io_uring/io_uring.c) and then reads the SQEs. */
    atomic_store_explicit(ring->sq.tail, ring->sq.sqe_tail, memory_order_release);
    return evq_uring_sq_pending(ring);
}
/* ANCHOR_END: flush_sq */

int evq_uring_error(int32_t res)
{
    if (res >= 0)
        return 0;
    switch (-res) {
    case ETIME: /* a TIMEOUT or LINK_TIMEOUT that expired, a wait that timed out */
        return EVQ_ETIMEDOUT;
    case ENOSYS: /* an opcode this kernel does not have */
        return EVQ_ENOTSUP;
    default:
        return evq_error_from_errno(-res);
    }
}

/* The one place io_uring_enter is called: counted, EXT_ARG when a timeout
 * comes with it. Returns the kernel's result or -errno. */
static int enter(evq_uring *ring, unsigned to_submit, unsigned min_complete, unsigned flags,
                 const struct io_uring_getevents_arg *arg)
{
    ring->enter_calls++;
    if (arg)
        flags |= IORING_ENTER_EXT_ARG;
    int result =
        evq_uring_sys_enter(ring->fd, to_submit, min_complete, flags, arg, arg ? sizeof *arg : 0);
    return result < 0 ? -errno : result;
}

int evq_uring_submit(evq_uring *ring, unsigned *submitted)
{
    if (submitted)
        *submitted = 0;
    if (ring->fd < 0)
        return EVQ_EBADF;
    unsigned pending = evq_uring_flush_sq(ring);
    if (pending == 0)
        return 0;
    int result;
    do
        result = enter(ring, pending, 0, 0, NULL);
    while (result == -EINTR);
    if (result < 0)
        return evq_uring_error(result);
    ring->in_flight += (unsigned)result;
    if (submitted)
        *submitted = (unsigned)result;
    return 0;
}

/* The EXT_ARG timeout for a wait that ends at `deadline`: only the time
 * that is left, so that a wait resumed after EINTR does not start over.
 * NULL when the deadline has passed. */
static const struct io_uring_getevents_arg *
time_left(uint64_t deadline, struct __kernel_timespec *ts, struct io_uring_getevents_arg *arg)
{
    uint64_t left = evq_sat_sub(deadline, evq_clock_now_ns());
    if (left == 0)
        return NULL;
    ts->tv_sec = (long long)(left / EVQ_NS_PER_S);
    ts->tv_nsec = (long long)(left % EVQ_NS_PER_S);
    memset(arg, 0, sizeof *arg);
    arg->ts = (uint64_t)(uintptr_t)ts;
    return arg;
}

/* ANCHOR: submit_and_wait */
int evq_uring_submit_and_wait(evq_uring *ring, unsigned wait_nr, int timeout_ms)
{
    if (ring->fd < 0)
        return EVQ_EBADF;
    uint64_t deadline =
        evq_clock_now_ns() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0) * EVQ_NS_PER_MS;
    for (bool entered = false;; entered = true) {
        unsigned pending = evq_uring_flush_sq(ring), ready = evq_uring_cq_ready(ring);
        /* Completions the CQ had no room for wait in the kernel's backlog
         * (IORING_FEAT_NODROP); an enter with GETEVENTS moves them in. */
        bool overflow =
            atomic_load_explicit(ring->sq.flags, memory_order_relaxed) & IORING_SQ_CQ_OVERFLOW;
        bool short_of = ready < wait_nr;
        /* Done; or "do not wait" and one enter made; or the backlog is
         * waiting for room the caller must make by reaping the CQ. */
        if ((entered && timeout_ms == 0) || (pending == 0 && !short_of && (!overflow || entered)))
            return 0;
        unsigned flags = short_of || overflow ? IORING_ENTER_GETEVENTS : 0;
        unsigned min_complete = short_of && timeout_ms != 0 ? wait_nr - ready : 0;
        struct __kernel_timespec ts;
        struct io_uring_getevents_arg arg;
        const struct io_uring_getevents_arg *timeout = NULL;
        if (min_complete > 0 && timeout_ms > 0 && !(timeout = time_left(deadline, &ts, &arg)))
            return EVQ_ETIMEDOUT;
        int result = enter(ring, pending, min_complete, flags, timeout);
        if (result >= 0) {
            /* The count of SQEs consumed. With SQEs in the call, a wait that
             * timed out or was interrupted is not reported: loop and look. */
            ring->in_flight += (unsigned)result;
            if (pending > 0 && result == 0)
                return EVQ_EBUSY;
        } else if (result == -ETIME) {
            return evq_uring_cq_ready(ring) >= wait_nr ? 0 : EVQ_ETIMEDOUT;
        } else if (result != -EINTR || ring->eintr_returns) { /* EINTR: again, with the time left */
            return evq_uring_error(result); /* EBUSY: the backlog is full; reap some */
        }
    }
}
/* ANCHOR_END: submit_and_wait */

unsigned evq_uring_cq_ready(const evq_uring *ring)
{
    uint32_t head = atomic_load_explicit(ring->cq.head, memory_order_relaxed);
    return atomic_load_explicit(ring->cq.tail, memory_order_acquire) - head;
}

/* ANCHOR: peek */
int evq_uring_peek(evq_uring *ring, struct io_uring_cqe **out)
{
    /* Only we write the CQ head: a relaxed load reads our own last store. */
    uint32_t head = atomic_load_explicit(ring->cq.head, memory_order_relaxed);
    /* acquire: pairs with the kernel's release store of the CQ tail, made
     * after it wrote the CQE. Without it the reads of cqe->res and
     * cqe->user_data below could see the slot's previous contents. */
    uint32_t tail = atomic_load_explicit(ring->cq.tail, memory_order_acquire);
    if (head == tail)
        return EVQ_EWOULDBLOCK;
    *out = &ring->cq.cqes[head & ring->cq.mask];
    return 0;
}
/* ANCHOR_END: peek */

/* ANCHOR: advance */
void evq_uring_advance(evq_uring *ring, unsigned n)
{
    uint32_t head = atomic_load_explicit(ring->cq.head, memory_order_relaxed);
    unsigned ready = atomic_load_explicit(ring->cq.tail, memory_order_acquire) - head;
    if (n > ready)
        n = ready; /* never hand the kernel a slot it has not filled */
    for (unsigned i = 0; i < n; i++) {
        /* IORING_CQE_F_MORE: a multishot operation that stays armed. */
        if (!(ring->cq.cqes[(head + i) & ring->cq.mask].flags & IORING_CQE_F_MORE) &&
            ring->in_flight > 0)
            ring->in_flight--;
    }
    /* release: our reads of these CQEs happen before the kernel can see
     * their slots free and write the next completions into them. */
    atomic_store_explicit(ring->cq.head, head + n, memory_order_release);
}
/* ANCHOR_END: advance */

int evq_uring_wait(evq_uring *ring, struct io_uring_cqe **out, int timeout_ms)
{
    if (evq_uring_sq_pending(ring) == 0 && evq_uring_peek(ring, out) == 0)
        return 0; /* no system call when a completion is already there */
    int code = evq_uring_submit_and_wait(ring, 1, timeout_ms);
    if (code != 0)
        return code;
    return evq_uring_peek(ring, out);
}

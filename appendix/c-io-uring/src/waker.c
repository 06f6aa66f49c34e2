/* waker.c - waking a thread that waits on a ring, from another thread.
 *
 * Two ways exist. IORING_OP_MSG_RING (5.18) posts a completion straight into
 * another ring, but the sender needs a ring of its own to submit it from.
 * An eventfd needs nothing: the ring's owner keeps an 8-byte read posted
 * on it, and any thread wakes the owner with one write(2), which is also
 * async-signal-safe (a SIGINT handler can stop a server with it). The
 * price is a read to post again after every wake-up; the gain is that only
 * the owner ever submits, as IORING_SETUP_SINGLE_ISSUER demands.
 */
#include "uring_internal.h"
#include "evq_error.h"

#include <errno.h>
#include <sys/eventfd.h>
#include <unistd.h>

int evq_uring_waker_open(evq_uring_waker *waker)
{
    waker->count = 0;
    waker->armed = false;
    waker->fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    return waker->fd < 0 ? evq_error_from_errno(errno) : 0;
}

/* ANCHOR: waker */
int evq_uring_waker_arm(evq_uring *ring, evq_uring_waker *waker)
{
    if (waker->armed)
        return 0;
    struct io_uring_sqe *sqe;
    int code = evq_uring_get_sqe(ring, &sqe);
    if (code != 0)
        return code;
    /* waker->count is the kernel's until this read's completion is reaped. */
    evq_uring_prep_read(sqe, waker->fd, &waker->count, sizeof waker->count, 0,
                        evq_uring_tag(EVQ_URING_KIND_WAKER, 0, 0));
    waker->armed = true;
    return 0;
}

int evq_uring_waker_wake(evq_uring_waker *waker)
{
    uint64_t one = 1;
    for (;;) {
        if (write(waker->fd, &one, sizeof one) == (ssize_t)sizeof one)
            return 0;
        if (errno == EAGAIN)
            return 0; /* the counter is full: a wake-up is pending anyway */
        if (errno != EINTR)
            return evq_error_from_errno(errno);
    }
}
/* ANCHOR_END: waker */

bool evq_uring_waker_owns(evq_uring_waker *waker, const struct io_uring_cqe *cqe)
{
    if (evq_uring_tag_kind(cqe->user_data) != EVQ_URING_KIND_WAKER)
        return false;
    waker->armed = false;
    return true;
}

void evq_uring_waker_close(evq_uring_waker *waker)
{
    if (waker->fd >= 0)
        close(waker->fd);
    waker->fd = -1;
    waker->armed = false;
}

/* evq_uring.h - io_uring from the raw system calls: the rings, a small
 * submission/completion layer, the operations a network event queue needs.
 *
 * No liburing: io_uring_setup(2), io_uring_enter(2) and io_uring_register(2)
 * are called with syscall(2), the rings are mapped with mmap(2), and the
 * heads and tails shared with the kernel are read and written with C11
 * atomics (book/appendix-c-io-uring.md, "Who writes what, in which order").
 *
 * The shape of a loop on this layer:
 *
 *     evq_uring ring;
 *     if (evq_uring_open(&ring, NULL) != 0)          // ring.reason says why
 *         ...;
 *     struct io_uring_sqe *sqe;
 *     evq_uring_get_sqe(&ring, &sqe);                  // EVQ_EFULL: submit first
 *     evq_uring_prep_recv(sqe, fd, buf, len, 0, evq_uring_tag(KIND_RECV, gen, slot));
 *     struct io_uring_cqe *cqe;
 *     evq_uring_wait(&ring, &cqe, timeout_ms);         // submits, then waits
 *     ... cqe->user_data, cqe->res (bytes or -errno), cqe->flags ...
 *     evq_uring_advance(&ring, 1);                     // the slot goes back to the kernel
 *     evq_uring_close(&ring);
 *
 * Ownership, as with IOCP: the memory an operation points to (a receive
 * buffer, a sockaddr, a timespec, a msghdr) belongs to the kernel from
 * submission until that operation's last completion has been reaped.
 *
 * Errors: every fallible function returns 0 or a negative EVQ_E* code
 * (evq_error.h). A completion's res is translated with evq_uring_error().
 */
#ifndef EVQ_URING_H
#define EVQ_URING_H

#include "evq_error.h"

#include <linux/io_uring.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sockaddr;
struct msghdr;

/* ---- opening a ring --------------------------------------------------------------- */

/* Requests for evq_uring_options.flags. "WANT" flags are used when the kernel
 * has them and dropped (and reported in ring.setup_flags) when it refuses. */
enum {
    /* IORING_SETUP_SINGLE_ISSUER (6.0): only the thread that created the ring
     * submits to it; the kernel can skip some locking. */
    EVQ_URING_WANT_SINGLE_ISSUER = 1u << 0,
    /* IORING_SETUP_DEFER_TASKRUN (6.1, needs SINGLE_ISSUER): completion work
     * runs only when the owner calls io_uring_enter(GETEVENTS), in batches,
     * never by interrupting the thread. Completions then appear only inside
     * evq_uring_wait / evq_uring_submit_and_wait, never by themselves. */
    EVQ_URING_WANT_DEFER_TASKRUN = 1u << 1,
    /* Map the SQ and CQ rings separately even when the kernel offers one
     * mapping for both (IORING_FEAT_SINGLE_MMAP, 5.4): the path for older
     * kernels, kept testable on new ones. */
    EVQ_URING_SEPARATE_MMAPS = 1u << 2,
    /* Do not ask for IORING_SETUP_COOP_TASKRUN (5.19), which is asked for
     * by default. A completion's last step (copying a receive's bytes...)
     * runs as task work in the thread that submitted the operation; with
     * COOP_TASKRUN the kernel waits for that thread's next system call to
     * run it, and a thread that sleeps elsewhere holds up the completions
     * another thread is waiting for. For a ring that passes between
     * threads (io_uring_setup(2): "setups where the application uses
     * multiple threads operating on the same ring, where the application
     * waiting on completions isn't the one that submitted them"). */
    EVQ_URING_NO_COOP_TASKRUN = 1u << 3,
};

typedef struct evq_uring_options {
    unsigned sq_entries; /* submission slots; 0: 64. The kernel rounds up to a power of two. */
    unsigned cq_entries; /* completion slots; 0: 4 x sq_entries (multishot posts many) */
    unsigned flags;      /* EVQ_URING_* above */
} evq_uring_options;

/* The submission queue: SQEs we fill, an index array, and a head/tail pair. */
typedef struct evq_uring_sq {
    _Atomic uint32_t *head;  /* the kernel writes: SQEs consumed up to here */
    _Atomic uint32_t *tail;  /* we write: SQEs published up to here */
    _Atomic uint32_t *flags; /* the kernel writes: IORING_SQ_NEED_WAKEUP, _CQ_OVERFLOW, _TASKRUN */
    _Atomic uint32_t *dropped;
    uint32_t *array; /* slot -> SQE index (filled once: slot i holds SQE i) */
    uint32_t mask, entries;
    struct io_uring_sqe *sqes;
    uint32_t sqe_tail; /* ours alone: SQEs handed out; published to *tail by submit */
    void *ring_memory;
    size_t ring_bytes;
    size_t sqes_bytes;
} evq_uring_sq;

/* The completion queue: CQEs the kernel fills, and a head/tail pair. */
typedef struct evq_uring_cq {
    _Atomic uint32_t *head; /* we write: CQEs consumed up to here */
    _Atomic uint32_t *tail; /* the kernel writes: CQEs posted up to here */
    _Atomic uint32_t *overflow;
    uint32_t mask, entries;
    struct io_uring_cqe *cqes;
    void *ring_memory; /* == sq.ring_memory with a single mapping */
    size_t ring_bytes;
} evq_uring_cq;

#define EVQ_URING_OPS_BYTES 32 /* a bit per opcode, 0..255 */

typedef struct evq_uring {
    int fd;
    unsigned features;    /* IORING_FEAT_* the kernel reported */
    unsigned setup_flags; /* IORING_SETUP_* the kernel accepted */
    bool single_mmap;     /* one mapping for both rings */
    evq_uring_sq sq;
    evq_uring_cq cq;
    /* Operations submitted whose final completion (one without
     * IORING_CQE_F_MORE) has not been reaped yet. */
    uint64_t in_flight;
    uint64_t enter_calls; /* io_uring_enter system calls made (tests, benchmarks) */
    /* evq_uring_submit_and_wait returns EVQ_EINTR when a signal cuts its
     * wait short, instead of resuming it: for a caller with a wait loop of
     * its own, which recomputes the time left (chapter 4's poll.c). */
    bool eintr_returns;
    uint8_t ops[EVQ_URING_OPS_BYTES]; /* IORING_REGISTER_PROBE: the opcodes this kernel has */
    int setup_errno;                  /* what a failed io_uring_setup said */
    char reason[256];                 /* why open or evq_uring_require_ops failed */
} evq_uring;

/* Set up a ring (options NULL: the defaults). Returns 0, or:
 *   EVQ_ENOTSUP  no io_uring here (ENOSYS: kernel too old or built without it,
 *                or a seccomp filter answering ENOSYS), or one too old for
 *                this layer (no IORING_FEAT_NODROP, EXT_ARG or PROBE)
 *   EVQ_EACCES   io_uring refused (EPERM/EACCES: sysctl
 *                kernel.io_uring_disabled, a seccomp filter, an LSM)
 *   EVQ_ENOMEM, EVQ_EMFILE, EVQ_EINVAL ... for everything else.
 * On failure ring->reason says what happened in one line, and nothing needs
 * closing. */
int evq_uring_open(evq_uring *ring, const evq_uring_options *options);

/* Cancel what is still in flight, reap it (so the kernel touches no memory
 * of ours once this returns), unmap the rings and close the descriptor.
 * Completions reaped here are dropped (an accepted descriptor among them is
 * not closed). Safe on a zeroed or failed ring. With SINGLE_ISSUER or
 * DEFER_TASKRUN, call it on the thread that created the ring: any other
 * thread is refused the submit and the wait, and nothing is drained. */
void evq_uring_close(evq_uring *ring);

/* Whether the kernel has this opcode (IORING_OP_*), from the probe. */
bool evq_uring_has_op(const evq_uring *ring, unsigned op);

/* EVQ_ENOTSUP, with ring->reason naming the first missing opcode, unless the
 * kernel has every one of them. */
int evq_uring_require_ops(evq_uring *ring, const uint8_t *ops, size_t count);

/* "IORING_OP_RECV" and so on; "IORING_OP_?" past this build's header. */
const char *evq_uring_op_name(unsigned op);

/* What io_uring offers here, for programs that print it and tests that skip:
 * opens a small ring, reads the probe and closes it again. */
typedef struct evq_uring_support {
    int code;         /* what evq_uring_open returned: 0, EVQ_ENOTSUP, EVQ_EACCES, ... */
    int setup_errno;  /* what io_uring_setup said (0 when it worked) */
    char reason[256]; /* when code != 0 */
    unsigned features;
    unsigned setup_flags; /* with WANT_SINGLE_ISSUER | WANT_DEFER_TASKRUN asked for */
    bool pbuf_ring;       /* IORING_REGISTER_PBUF_RING worked */
    uint8_t ops[EVQ_URING_OPS_BYTES];
    unsigned last_op;
} evq_uring_support;

int evq_uring_check(evq_uring_support *out);

/* ---- submitting -------------------------------------------------------------------- */

/* The next free SQE, zeroed (a recycled slot keeps the last operation's
 * fields otherwise). EVQ_EFULL when every slot waits for submission: submit,
 * then ask again. */
int evq_uring_get_sqe(evq_uring *ring, struct io_uring_sqe **out);

/* evq_uring_get_sqe, submitting what is pending first when the SQ is full:
 * the usual way to queue an operation when a system call is acceptable. */
int evq_uring_next_sqe(evq_uring *ring, struct io_uring_sqe **out);

/* SQEs handed out and not yet consumed by the kernel. */
unsigned evq_uring_sq_pending(const evq_uring *ring);

/* Publish the SQEs handed out (the release store of the SQ tail) and return
 * how many wait for the kernel. No system call. */
unsigned evq_uring_flush_sq(evq_uring *ring);

/* Publish and submit with one io_uring_enter; *submitted (may be NULL) says
 * how many the kernel took. No system call when nothing is pending. */
int evq_uring_submit(evq_uring *ring, unsigned *submitted);

/* Submit what is pending and wait until at least wait_nr completions are in
 * the CQ or timeout_ms passes (-1: no limit; 0: do not wait). One system call
 * in the usual case; none when nothing is pending and enough completions are
 * there. EVQ_ETIMEDOUT when the time ran out first; an interrupted wait is
 * resumed with the time that is left (or EVQ_EINTR: ring->eintr_returns). */
int evq_uring_submit_and_wait(evq_uring *ring, unsigned wait_nr, int timeout_ms);

/* ---- completing -------------------------------------------------------------------- */

/* The oldest unreaped completion, or EVQ_EWOULDBLOCK. No system call, so with
 * DEFER_TASKRUN it sees only what an earlier enter has already posted. */
int evq_uring_peek(evq_uring *ring, struct io_uring_cqe **out);

/* evq_uring_peek, after submitting and waiting when the CQ is empty. */
int evq_uring_wait(evq_uring *ring, struct io_uring_cqe **out, int timeout_ms);

/* Give the n oldest CQEs back to the kernel. A CQE must not be read after its
 * advance: the kernel may write the next completion into its slot. */
void evq_uring_advance(evq_uring *ring, unsigned n);

/* Completions waiting in the CQ (without a system call). */
unsigned evq_uring_cq_ready(const evq_uring *ring);

/* A completion's res as an EVQ_E* code: 0 for res >= 0, else the errno
 * translated (-ETIME, a timeout's expiry, is EVQ_ETIMEDOUT; -ECANCELED is
 * EVQ_ECANCELED; -ENOBUFS, a provided-buffer ring run dry, is EVQ_ENOBUFS). */
int evq_uring_error(int32_t res);

/* ---- cancelling ------------------------------------------------------------------------ */

/* Called with each completion reaped on the way that is neither the target's
 * final one nor the cancel's own (nothing is lost). */
typedef void (*evq_uring_cqe_fn)(const struct io_uring_cqe *cqe, void *context);

/* Cancel the operation submitted with user_data `target`, which must still
 * be in flight (its final completion not reaped), and reap until its final
 * completion has come back: then, and only then, its buffer is the caller's
 * again. The cancel's own completion is not enough: it may come first, and
 * when it says -EALREADY the operation is still running. *final_res (may be
 * NULL) gets the target's last res (-ECANCELED, or its result if it won the
 * race). EVQ_ETIMEDOUT if it has not come back within timeout_ms. */
int evq_uring_cancel_and_reap(evq_uring *ring, uint64_t target, int timeout_ms,
                              evq_uring_cqe_fn other, void *context, int32_t *final_res);

/* ---- user_data ----------------------------------------------------------------------- */

/* The 64 bits that come back with a completion. The layer's scheme:
 *   bits 63..56  kind: which operation (the caller's enum; 0 is never used, so
 *                a zeroed SQE's completion is recognisably nobody's)
 *   bits 55..32  generation of the slot (24 bits): a completion that arrives
 *                for the previous owner of a reused slot is recognised
 *   bits 31..0   slot: an index into the caller's table of connections
 * Kinds 0xF0..0xFF are the layer's own (EVQ_URING_KIND_*). */
enum {
    EVQ_URING_KIND_CANCEL = 0xF0, /* the ASYNC_CANCELs the layer submits itself */
    EVQ_URING_KIND_WAKER = 0xF1,  /* evq_uring_waker's eventfd read */
};
#define EVQ_URING_GENERATION_MASK 0xFFFFFFu

static inline uint64_t evq_uring_tag(unsigned kind, uint32_t generation, uint32_t slot)
{
    return (uint64_t)(kind & 0xFFu) << 56 |
           (uint64_t)(generation & EVQ_URING_GENERATION_MASK) << 32 | slot;
}
static inline unsigned evq_uring_tag_kind(uint64_t user_data)
{
    return (unsigned)(user_data >> 56);
}
static inline uint32_t evq_uring_tag_generation(uint64_t user_data)
{
    return (uint32_t)(user_data >> 32) & EVQ_URING_GENERATION_MASK;
}
static inline uint32_t evq_uring_tag_slot(uint64_t user_data)
{
    return (uint32_t)user_data;
}

/* ---- preparing operations (src/prep.c) -------------------------------------------- */
/* Each fills a zeroed SQE from evq_uring_get_sqe; the pointers passed must
 * stay valid until the operation's final completion is reaped. */

void evq_uring_prep_nop(struct io_uring_sqe *sqe, uint64_t user_data);
/* accept4(fd, addr, addrlen, flags). multishot: one SQE keeps accepting, a CQE
 * (res = the new descriptor) per connection, IORING_CQE_F_MORE while armed
 * (5.19). addr and addrlen may be NULL. */
void evq_uring_prep_accept(struct io_uring_sqe *sqe, int fd, struct sockaddr *addr,
                           uint32_t *addrlen, int flags, bool multishot, uint64_t user_data);
void evq_uring_prep_connect(struct io_uring_sqe *sqe, int fd, const struct sockaddr *addr,
                            uint32_t addrlen, uint64_t user_data);
void evq_uring_prep_recv(struct io_uring_sqe *sqe, int fd, void *buffer, size_t len, int msg_flags,
                         uint64_t user_data);
/* A receive that takes a buffer from provided-buffer group `group` for each
 * chunk of data and stays armed (6.0): the CQE's flags carry the buffer id. */
void evq_uring_prep_recv_multishot(struct io_uring_sqe *sqe, int fd, uint16_t group,
                                   uint64_t user_data);
void evq_uring_prep_send(struct io_uring_sqe *sqe, int fd, const void *data, size_t len,
                         int msg_flags, uint64_t user_data);
void evq_uring_prep_sendmsg(struct io_uring_sqe *sqe, int fd, const struct msghdr *message,
                            int msg_flags, uint64_t user_data);
/* Completes with -ETIME after *ts, or with 0 after `count` other completions
 * (count 0: only the time). */
void evq_uring_prep_timeout(struct io_uring_sqe *sqe, const struct __kernel_timespec *ts,
                            unsigned count, unsigned flags, uint64_t user_data);
/* Follows an SQE marked IOSQE_IO_LINK: cancels it if it has not completed
 * within *ts (that operation then completes with -ECANCELED, this one with
 * -ETIME; if the operation wins, this completes with -ECANCELED). */
void evq_uring_prep_link_timeout(struct io_uring_sqe *sqe, const struct __kernel_timespec *ts,
                                 unsigned flags, uint64_t user_data);
/* Cancel the operation submitted with user_data `target` (flags 0), or with
 * IORING_ASYNC_CANCEL_ANY every operation. res: 0 found and cancelled,
 * -ENOENT not found, -EALREADY running and cannot be stopped. */
void evq_uring_prep_cancel(struct io_uring_sqe *sqe, uint64_t target, unsigned flags,
                           uint64_t user_data);
void evq_uring_prep_read(struct io_uring_sqe *sqe, int fd, void *buffer, unsigned len,
                         uint64_t offset, uint64_t user_data);
/* poll(2) on fd for `events` (POLLIN...), once: res is the events that came
 * (or -errno). It takes no data and lends no memory: a readiness
 * notification inside the completion model. */
void evq_uring_prep_poll_add(struct io_uring_sqe *sqe, int fd, unsigned events, uint64_t user_data);

/* ---- provided-buffer rings (src/pbuf.c) ----------------------------------------- */

/* A ring of equal buffers the kernel picks from when data arrives
 * (IORING_REGISTER_PBUF_RING, 5.19): a receive holds no buffer while it
 * waits. The ring is shared memory with a tail we write (release) and a head
 * only the kernel knows. */
typedef struct evq_uring_pbuf {
    struct io_uring_buf_ring *ring; /* count entries; its tail overlays bufs[0].resv */
    size_t ring_bytes;
    unsigned char *memory; /* count x size bytes, buffer id i at i x size */
    uint32_t count, size, mask;
    uint16_t group;
    uint16_t tail;      /* ours: entries added so far (wraps at 65536, as the kernel's) */
    uint32_t available; /* buffers in the ring, not yet taken by a completion */
} evq_uring_pbuf;

/* Allocate count (a power of two, at most 32768) buffers of size bytes,
 * register them as group `group` and provide them all. EVQ_ENOTSUP when the
 * kernel lacks provided-buffer rings. */
int evq_uring_pbuf_open(evq_uring *ring, evq_uring_pbuf *pbuf, uint16_t group, uint32_t count,
                        uint32_t size);
/* Unregister and free. Only once no operation can pick a buffer any more. */
void evq_uring_pbuf_close(evq_uring *ring, evq_uring_pbuf *pbuf);

/* The buffer a completion filled: its id, address and length. EVQ_ENOENT when
 * the CQE carries none (an error, or end of stream). The buffer is the
 * caller's until it gives it back with evq_uring_pbuf_recycle. */
int evq_uring_pbuf_take(evq_uring_pbuf *pbuf, const struct io_uring_cqe *cqe, uint16_t *id,
                        unsigned char **data, uint32_t *len);

/* Give buffer `id` back to the kernel (the release store of the ring's tail). */
void evq_uring_pbuf_recycle(evq_uring_pbuf *pbuf, uint16_t id);

/* ---- a waker (src/waker.c) ------------------------------------------------------------- */

/* Wakes a thread blocked in evq_uring_wait from any thread, or from a signal
 * handler: an eventfd with a read always posted on the ring. wake() is one
 * write(2), needs no ring of its own and no lock, and so respects
 * SINGLE_ISSUER (only the owner submits). */
typedef struct evq_uring_waker {
    int fd;
    uint64_t count; /* the posted read's buffer: the kernel's while armed */
    bool armed;
} evq_uring_waker;

int evq_uring_waker_open(evq_uring_waker *waker);
/* Post the read (user_data kind EVQ_URING_KIND_WAKER). The owner calls it
 * after each wake-up completion it reaps. */
int evq_uring_waker_arm(evq_uring *ring, evq_uring_waker *waker);
/* Any thread. Wakes coalesce: many wakes before the read may come back as one. */
int evq_uring_waker_wake(evq_uring_waker *waker);
/* Whether cqe is the waker's; if so it is no longer armed. */
bool evq_uring_waker_owns(evq_uring_waker *waker, const struct io_uring_cqe *cqe);
/* After evq_uring_close (which reaps the read) or with the read reaped. */
void evq_uring_waker_close(evq_uring_waker *waker);

#endif

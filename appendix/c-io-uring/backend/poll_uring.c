/* poll_uring.c - chapter 4's queue on io_uring, from appendix C's layer.
 *
 * io_uring reports finished operations, not readiness; uring_backend.h says
 * how the backend builds readiness on top, as poll_iocp.c does on a
 * completion port. This file is the queue's side: the ring and its waker,
 * the table that turns a completion's tag back into a stream, each
 * stream's state from its first operation until the kernel has given back
 * the last of its memory, the emulated one-shot arming, and the wait:
 * submit, reap completions, hand each to tcp_uring.c, then translate what
 * changed into readiness for the portable queue.
 *
 * The ring is opened without IORING_SETUP_SINGLE_ISSUER and
 * IORING_SETUP_DEFER_TASKRUN, and without COOP_TASKRUN: chapter 4's queue
 * is used by one thread at a time, but not always the same one (a server
 * opens it on one thread and runs its loop on another; evq_poll_close may
 * come from any thread), and those flags tie the ring, and the work that
 * finishes its completions, to one thread (book/appendix-c-io-uring.md,
 * "Which thread").
 */
#include "uring_backend.h"
#include "uring_ops.h"
#include "uring_testing.h"

#include "evq_clock.h"
#include "evq_log.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#define URING_SQ_ENTRIES 256 /* the CQ gets four times as many (the layer's default) */
/* The provided-buffer ring, opened when a stream first asks for it: 64
 * buffers of 4 KiB (256 KiB) shared by every stream of the queue. */
#define URING_BUFFER_GROUP 0
#define URING_BUFFERS      64
#define URING_BUFFER_SIZE  4096
/* Closing the queue waits this long, in steps of CLOSE_POLL_MS, for
 * cancelled operations to come back (see sys_poll_close). */
#define CLOSE_GIVE_UP_MS 10000
#define CLOSE_POLL_MS    100

/* A completion copied out of the CQ, to be dispatched by the next wait
 * (struct io_uring_cqe ends in a flexible array: arrays of it are not C). */
struct uring_completion {
    uint64_t user_data;
    int32_t res;
    uint32_t flags;
};

struct sys_poll {
    evq_uring ring;
    evq_uring_waker waker;
    evq_uring_pbuf buffers; /* provided buffers: see uring_buffers */
    bool buffers_tried;
    struct uring_parked *parked; /* one per provided buffer */
    /* The table a completion's slot indexes, and each slot's generation:
     * a slot is reused only once its stream has nothing in flight, and
     * the generation moves on then. */
    struct sys_stream **slots;
    uint32_t *generations;
    uint32_t *free_slots;
    size_t slot_count, slot_capacity, free_count;
    struct sys_stream *retired; /* closed streams whose I/O is still in flight */
    size_t retired_count;
    /* Completions taken out of the CQ ahead of a send's own (see
     * uring_reap_now), oldest first: the next wait dispatches them before
     * anything still in the CQ. */
    struct uring_completion *deferred;
    size_t deferred_head, deferred_count, deferred_capacity;
    bool closing;         /* sys_poll_close is reaping: completions are dropped */
    bool provided_always; /* the test switch EVQ_URING_PROVIDED_BUFFERS (uring_testing.h) */
    struct uring_counters counters;           /* for evq_uring_get_queue_stats */
    struct sys_stream *batch[SYS_MAX_EVENTS]; /* the streams the wait being collected touched */
};

/* ---- the table: from a tag back to a stream ---- */

static int slot_alloc(struct sys_poll *sys, struct sys_stream *stream)
{
    if (sys->free_count > 0) {
        stream->slot = sys->free_slots[--sys->free_count];
    } else {
        if (sys->slot_count == sys->slot_capacity) {
            size_t capacity = sys->slot_capacity ? 2 * sys->slot_capacity : 64;
            struct sys_stream **slots = realloc(sys->slots, capacity * sizeof *slots);
            if (slots)
                sys->slots = slots;
            uint32_t *generations =
                slots ? realloc(sys->generations, capacity * sizeof *generations) : NULL;
            if (generations)
                sys->generations = generations;
            uint32_t *free_slots =
                generations ? realloc(sys->free_slots, capacity * sizeof *free_slots) : NULL;
            if (!free_slots)
                return EVQ_ENOMEM;
            sys->free_slots = free_slots;
            sys->slot_capacity = capacity;
        }
        stream->slot = (uint32_t)sys->slot_count++;
        sys->generations[stream->slot] = 0;
    }
    sys->slots[stream->slot] = stream;
    return 0;
}

static void slot_free(struct sys_poll *sys, uint32_t slot)
{
    sys->slots[slot] = NULL;
    sys->generations[slot] = (sys->generations[slot] + 1) & EVQ_URING_GENERATION_MASK;
    sys->free_slots[sys->free_count++] = slot;
}

uint64_t uring_tag(const struct sys_stream *stream, enum uring_op_kind kind)
{
    return evq_uring_tag(kind, stream->poll->generations[stream->slot], stream->slot);
}

/* ANCHOR: lookup */
/* The stream a completion belongs to: its slot, if the generation matches.
 * The caller's token is not in the tag, and no token value is set aside. */
static struct sys_stream *stream_of(const struct sys_poll *sys, uint64_t user_data)
{
    uint32_t slot = evq_uring_tag_slot(user_data);
    if (slot >= sys->slot_count || !sys->slots[slot] ||
        sys->generations[slot] != evq_uring_tag_generation(user_data))
        return NULL;
    return sys->slots[slot];
}
/* ANCHOR_END: lookup */

static struct uring_op *op_of(struct sys_stream *stream, enum uring_op_kind kind)
{
    switch (kind) {
    case URING_RECEIVE:
        return &stream->receive;
    case URING_SEND:
        return &stream->send;
    case URING_CONNECT:
        return &stream->connect;
    case URING_ACCEPT:
        return &stream->accept;
    case URING_CHECK:
        return &stream->check;
    default:
        return NULL;
    }
}

/* ---- submitting ---- */

int uring_sqe(struct sys_poll *sys, struct io_uring_sqe **out)
{
    return evq_uring_next_sqe(&sys->ring, out);
}

void uring_started(struct sys_stream *stream, struct uring_op *op)
{
    op->in_flight = true;
    op->cancelling = false;
    stream->in_flight++;
}

void uring_submit_now(struct sys_poll *sys)
{
    /* A failure (the kernel's backlog of completions is full: EBUSY)
     * leaves the SQEs in the ring: the next wait's enter submits them. */
    if (evq_uring_submit(&sys->ring, NULL) != 0)
        EVQ_DEBUG("uring: submit deferred to the next wait");
}

void uring_cancel(struct sys_stream *stream, enum uring_op_kind kind)
{
    struct uring_op *op = op_of(stream, kind);
    if (!op || !op->in_flight || op->cancelling)
        return;
    struct io_uring_sqe *sqe;
    if (uring_sqe(stream->poll, &sqe) != 0) {
        EVQ_WARN("uring: no SQE for a cancel; the operation ends by itself");
        return;
    }
    evq_uring_prep_cancel(sqe, uring_tag(stream, kind), 0, uring_tag(stream, URING_CANCEL));
    op->cancelling = true;
}

evq_uring_pbuf *uring_buffers(struct sys_poll *sys)
{
    if (!sys->buffers_tried) {
        sys->buffers_tried = true;
        sys->parked = calloc(URING_BUFFERS, sizeof *sys->parked);
        if (!sys->parked || evq_uring_pbuf_open(&sys->ring, &sys->buffers, URING_BUFFER_GROUP,
                                                URING_BUFFERS, URING_BUFFER_SIZE) != 0)
            EVQ_DEBUG("uring: no provided-buffer ring here: streams wait with POLL_ADD");
    }
    return sys->buffers.ring ? &sys->buffers : NULL;
}

struct uring_parked *uring_parked_entries(struct sys_poll *sys)
{
    return sys->parked;
}

/* The waker's read, posted again after each wake-up it reports. */
static int arm_waker(struct sys_poll *sys)
{
    int rc = evq_uring_waker_arm(&sys->ring, &sys->waker);
    if (rc == EVQ_EFULL && (rc = evq_uring_submit(&sys->ring, NULL)) == 0)
        rc = evq_uring_waker_arm(&sys->ring, &sys->waker);
    return rc;
}

int sys_poll_open(struct sys_poll **out)
{
    struct sys_poll *sys = calloc(1, sizeof *sys);
    if (!sys)
        return EVQ_ENOMEM;
    sys->waker.fd = -1;
    evq_uring_options options = {URING_SQ_ENTRIES, 0, EVQ_URING_NO_COOP_TASKRUN};
    int rc = evq_uring_open(&sys->ring, &options);
    if (rc == 0) {
        static const uint8_t ops[] = {EVQ_URING_BACKEND_OPS};
        rc = evq_uring_require_ops(&sys->ring, ops, sizeof ops);
    }
    if (rc != 0) /* EVQ_ENOTSUP, EVQ_EACCES: the layer says why */
        EVQ_DEBUG("uring: %s", sys->ring.reason);
    sys->ring.eintr_returns = true; /* poll.c retries, with the time that is left */
    const char *provided = getenv("EVQ_URING_PROVIDED_BUFFERS");
    sys->provided_always = provided && *provided && *provided != '0';
    if (rc == 0 && (rc = evq_uring_waker_open(&sys->waker)) == 0)
        rc = arm_waker(sys);
    if (rc != 0) {
        evq_uring_close(&sys->ring);
        evq_uring_waker_close(&sys->waker);
        free(sys);
        return rc;
    }
    *out = sys;
    return 0;
}

/* ---- a stream's state, and its lifetime ---- */

int sys_stream_open(struct sys_poll *sys, evq_tcp *tcp)
{
    struct sys_stream *stream = calloc(1, sizeof *stream);
    if (!stream)
        return EVQ_ENOMEM;
    stream->tcp = tcp;
    stream->poll = sys;
    stream->parked_head = stream->parked_tail = URING_NO_BUFFER;
    int rc = slot_alloc(sys, stream);
    if (rc != 0) {
        free(stream);
        return rc;
    }
    tcp->sys = stream;
    return 0;
}

static void stream_free(struct sys_poll *sys, struct sys_stream *stream)
{
    read_buffer_free(&stream->kept_read);
    write_queue_clear(&stream->kept_write);
    free(stream->accepted);
    if (sys)
        slot_free(sys, stream->slot);
    free(stream);
}

static void retired_free(struct sys_poll *sys, struct sys_stream *stream)
{
    for (struct sys_stream **link = &sys->retired; *link; link = &(*link)->retired_next) {
        if (*link == stream) {
            *link = stream->retired_next;
            sys->retired_count--;
            stream_free(sys, stream);
            return;
        }
    }
}

static void cancel_all(struct sys_stream *stream)
{
    static const enum uring_op_kind kinds[] = {URING_RECEIVE, URING_SEND, URING_CONNECT,
                                               URING_ACCEPT, URING_CHECK};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        uring_cancel(stream, kinds[i]);
}

void sys_stream_detach(struct sys_poll *sys, evq_tcp *tcp)
{
    (void)sys;
    /* The queue is closing: cancel, and let sys_poll_close reap the
     * cancelled completions before the ring goes. */
    struct sys_stream *stream = tcp->sys;
    stream->armed = 0;
    uring_stream_release(stream);
    cancel_all(stream);
}

/* ANCHOR: abandon */
/* A CONNECT still in flight (the deadline passed) is cancelled and the
 * socket closed. close() alone would cancel nothing: the request holds its
 * own reference to the socket. The stream keeps the operation until its
 * completion, -ECANCELED, is reaped (and is retired if closed first). */
void sys_connect_abandon(struct sys_poll *sys, evq_tcp *tcp)
{
    (void)sys;
    struct sys_stream *stream = tcp->sys;
    uring_cancel(stream, URING_CONNECT);
    evq_socket_close(tcp->socket);
    tcp->socket = EVQ_INVALID_SOCKET;
    stream->armed = 0;
}
/* ANCHOR_END: abandon */

/* ANCHOR: retire */
void sys_stream_close(struct sys_poll *sys, evq_tcp *tcp)
{
    struct sys_stream *stream = tcp->sys;
    if (stream && sys)
        uring_stream_release(stream);
    if (stream && stream->in_flight > 0) {
        /* ASYNC_CANCEL only asks: what an operation points at is the
         * kernel's until its own last completion is reaped (the cancel's may
         * come first). Keep what it may touch - the read buffer a receive
         * was lent, the chunks a send reads - and free it with that one. */
        if (sys)
            cancel_all(stream);
        if (stream->receive.in_flight && stream->receive.lent > 0) {
            stream->kept_read = tcp->read_buf;
            memset(&tcp->read_buf, 0, sizeof tcp->read_buf);
        }
        if (stream->send.in_flight) {
            stream->kept_write = tcp->write_queue;
            memset(&tcp->write_queue, 0, sizeof tcp->write_queue);
        }
        if (tcp->socket != EVQ_INVALID_SOCKET)
            evq_socket_close(tcp->socket); /* the requests hold their own reference */
        stream->tcp = NULL;
        stream->armed = 0;
        if (sys) {
            stream->retired_next = sys->retired;
            sys->retired = stream;
            sys->retired_count++;
        }
        /* else: the queue is gone and gave up waiting for this I/O (see
         * sys_poll_close); leaking is the only safe thing left. */
        return;
    }
    if (tcp->socket != EVQ_INVALID_SOCKET) /* none while resolving, or after a failed connect */
        evq_socket_close(tcp->socket);
    if (stream)
        stream_free(sys, stream);
    tcp->sys = NULL;
}
/* ANCHOR_END: retire */

size_t sys_poll_retired(const struct sys_poll *sys)
{
    return sys->retired_count;
}

/* ---- readiness, emulated ---- */

/* ANCHOR: translate */
/* What the stream is ready for now, among `armed`, from the state the
 * completions left - the translation poll_epoll.c makes from kernel flags. */
static uint32_t readiness(const struct sys_stream *stream, unsigned armed)
{
    const evq_tcp *tcp = stream->tcp;
    uint32_t ready = 0;
    if ((armed & EVQ_READABLE) && tcp->listener) {
        if (stream->accepted_count > 0)
            ready |= EVQ_READABLE;
        if (stream->accept_error != 0)
            ready |= EVQ_READABLE | EVQ_ERR;
    } else if (armed & EVQ_READABLE) {
        ready |= stream_read_readiness(tcp); /* bytes not yet seen, or the end */
        /* Bytes (or the end) waiting in provided buffers the read buffer had
         * no room for: a read takes them (sys_socket_receive). */
        if (stream->parked_head != URING_NO_BUFFER || stream->receive_end != 0)
            ready |= EVQ_READABLE;
    }
    /* The kernel's WRITABLE: no send in flight, so a flush can hand it more
     * (and no connect: its completion is the connect's WRITABLE). */
    if ((armed & EVQ_WRITABLE) && !stream->send.in_flight && !stream->connect.in_flight)
        ready |= tcp->write_status != 0 ? EVQ_WRITABLE | EVQ_ERR : EVQ_WRITABLE;
    /* What the last check's poll saw: the connection ended under a stream
     * that had nothing in flight to hear it (see sys_arm). */
    if (ready != 0)
        ready |= stream->check_seen;
    return ready;
}
/* ANCHOR_END: translate */

/* ANCHOR: arm */
/* One-shot without kernel help, as on IOCP: `armed` is what may still give
 * an event, and the wait clears it when it reports the stream. Arming
 * READABLE makes sure a receive (or on a listener, an ACCEPT) is in the
 * ring - an operation must be there before the kernel can say anything.
 * Arming for something that holds already queues a check, whose completion
 * makes the next wait report the stream, in turn with everything else.
 * Nothing here makes a system call: the SQEs go with the next wait. */
int sys_arm(struct sys_poll *sys, evq_tcp *tcp, unsigned interests)
{
    struct sys_stream *stream = tcp->sys;
    stream->armed = interests;
    if (interests & EVQ_READABLE) {
        if (tcp->listener)
            uring_start_accept(stream);
        else
            uring_start_receive(stream);
    }
    /* Readable at once: a listener holding a connection, or bytes parked in
     * provided buffers. (Bytes in the read buffer need no check: poll.c's
     * ready list reports those on every backend.) */
    bool readable =
        tcp->listener || stream->parked_head != URING_NO_BUFFER || stream->receive_end != 0;
    unsigned at_once = interests & (readable ? EVQ_READABLE | EVQ_WRITABLE : EVQ_WRITABLE);
    if (readiness(stream, at_once) == 0)
        return 0;
    if (stream->check.in_flight) {
        /* A POLL_ADD still waiting for room: its cancel completes it now. */
        if (stream->check_polls)
            uring_cancel(stream, URING_CHECK);
        return 0;
    }
    struct io_uring_sqe *sqe;
    int rc = uring_sqe(sys, &sqe);
    if (rc != 0)
        return rc;
    /* WRITABLE alone, on a connection: a POLL_ADD for POLLOUT, which
     * completes at once on a socket with room, as a NOP would, and also
     * says POLLERR or POLLHUP if the connection has died - news that a
     * stream armed for WRITABLE only, with nothing in flight, would
     * otherwise never get. Anything else: a NOP. */
    stream->check_polls = !readable && tcp->socket != EVQ_INVALID_SOCKET;
    if (stream->check_polls)
        evq_uring_prep_poll_add(sqe, tcp->socket, POLLOUT, uring_tag(stream, URING_CHECK));
    else
        evq_uring_prep_nop(sqe, uring_tag(stream, URING_CHECK));
    uring_started(stream, &stream->check);
    return 0;
}
/* ANCHOR_END: arm */

/* ---- the wait ---- */

/* One completion: the waker's, or an operation's, whose outcome goes to
 * tcp_uring.c. Its final completion (no IORING_CQE_F_MORE) hands the
 * operation's memory back; a retired stream is freed with its last one. */
/* ANCHOR: dispatch */
static void dispatch(struct sys_poll *sys, const struct io_uring_cqe *cqe, size_t *touched,
                     bool *woken)
{
    if (evq_uring_waker_owns(&sys->waker, cqe)) {
        *woken = true;
        if (!sys->closing && arm_waker(sys) != 0)
            EVQ_WARN("uring: the waker could not be armed again");
        return;
    }
    enum uring_op_kind kind = (enum uring_op_kind)evq_uring_tag_kind(cqe->user_data);
    if (kind == URING_CANCEL || evq_uring_tag_kind(cqe->user_data) >= EVQ_URING_KIND_CANCEL)
        return; /* a cancel's own completion: not the one that returns the memory */
    struct sys_stream *stream = stream_of(sys, cqe->user_data);
    struct uring_op *op = stream ? op_of(stream, kind) : NULL;
    if (!op) { /* never: a slot is reused only once nothing is in flight */
        sys->counters.orphans++;
        EVQ_WARN("uring: a completion for nobody (user_data %llx)",
                 (unsigned long long)cqe->user_data);
        uring_dropped(sys, kind, cqe);
        return;
    }
    if (!(cqe->flags & IORING_CQE_F_MORE)) {
        op->in_flight = false; /* its final completion: the memory is ours again */
        op->cancelling = false;
        stream->in_flight--;
    }
    if (!stream->tcp || sys->closing) {
        /* Closed (or the queue closing): nobody to tell. */
        uring_dropped(sys, kind, cqe);
        if (!stream->tcp && stream->in_flight == 0)
            retired_free(sys, stream);
        return;
    }
    uring_completed(stream, kind, cqe);
    if (!stream->in_batch) {
        stream->in_batch = true;
        sys->batch[(*touched)++] = stream;
    }
}
/* ANCHOR_END: dispatch */

/* ---- completions taken early ---- */

static int defer(struct sys_poll *sys, const struct io_uring_cqe *cqe)
{
    if (sys->deferred_head + sys->deferred_count == sys->deferred_capacity) {
        if (sys->deferred_head > 0) { /* slide the list to the front first */
            memmove(sys->deferred, sys->deferred + sys->deferred_head,
                    sys->deferred_count * sizeof *sys->deferred);
            sys->deferred_head = 0;
        } else {
            size_t capacity = sys->deferred_capacity ? 2 * sys->deferred_capacity : 64;
            struct uring_completion *grown =
                realloc(sys->deferred, capacity * sizeof *sys->deferred);
            if (!grown)
                return EVQ_ENOMEM;
            sys->deferred = grown;
            sys->deferred_capacity = capacity;
        }
    }
    sys->deferred[sys->deferred_head + sys->deferred_count++] =
        (struct uring_completion){cqe->user_data, cqe->res, cqe->flags};
    return 0;
}

/* The oldest deferred completion, as a CQE (its flexible array unused). */
static bool undefer(struct sys_poll *sys, struct io_uring_cqe *out)
{
    if (sys->deferred_count == 0)
        return false;
    const struct uring_completion *c = &sys->deferred[sys->deferred_head++];
    memset(out, 0, sizeof *out);
    out->user_data = c->user_data;
    out->res = c->res;
    out->flags = c->flags;
    if (--sys->deferred_count == 0)
        sys->deferred_head = 0;
    return true;
}

/* ANCHOR: reap_now */
/* The kernel often completes a send during the io_uring_enter that submits
 * it (the socket had room): then the completion is in the CQ already, and
 * the send can report at once what went, as send() would, instead of
 * waiting for the next evq_poll_wait - a FIN queued behind it would wait
 * too, and a caller that writes and then reads its peer would hang. The
 * completions ahead of it are someone else's: they are copied out, in
 * order, for the next wait to dispatch, because dispatching them here
 * would change other streams' buffers under a caller that is in the middle
 * of a call on this one. */
bool uring_reap_now(struct sys_stream *stream, enum uring_op_kind kind, int32_t *res)
{
    struct sys_poll *sys = stream->poll;
    uint64_t tag = uring_tag(stream, kind);
    struct io_uring_cqe *cqe;
    while (evq_uring_peek(&sys->ring, &cqe) == 0) {
        if (cqe->user_data == tag && !(cqe->flags & IORING_CQE_F_MORE)) {
            *res = cqe->res;
            struct uring_op *op = op_of(stream, kind);
            op->in_flight = false;
            op->cancelling = false;
            stream->in_flight--;
            evq_uring_advance(&sys->ring, 1);
            return true;
        }
        if (defer(sys, cqe) != 0)
            return false; /* no memory: it stays in the CQ, where the wait finds it */
        evq_uring_advance(&sys->ring, 1);
    }
    return false;
}
/* ANCHOR_END: reap_now */

/* Whether a completion touches no stream beyond those the wait already
 * reports: a stream's later completions (a multishot receive's next
 * chunks) are taken with its first, so that its event finds them all. */
static bool batched(const struct sys_poll *sys, const struct io_uring_cqe *cqe)
{
    const struct sys_stream *stream = stream_of(sys, cqe->user_data);
    return stream && stream->in_batch;
}

/* ANCHOR: wait */
int sys_poll_wait(struct sys_poll *sys, struct sys_event *events, size_t capacity, int timeout_ms,
                  size_t *n, bool *woken)
{
    /* One system call: submit what the last turns prepared (re-armed
     * receives, checks, cancels), and wait for one completion. The layer
     * resumes a wait cut short by a signal with the time that is left. */
    int rc = evq_uring_submit_and_wait(&sys->ring, 1, sys->deferred_count > 0 ? 0 : timeout_ms);
    if (rc != 0 && rc != EVQ_ETIMEDOUT)
        return rc;
    /* At most `capacity` streams touched: each gives at most one event, so
     * the caller's room is never exceeded, and the completions left (in
     * the deferred list, in the CQ) are the next wait's. */
    size_t room = capacity < SYS_MAX_EVENTS ? capacity : SYS_MAX_EVENTS;
    size_t touched = 0;
    struct io_uring_cqe early;
    while (touched < room && undefer(sys, &early))
        dispatch(sys, &early, &touched, woken);
    struct io_uring_cqe *cqe;
    while (evq_uring_peek(&sys->ring, &cqe) == 0 && (touched < room || batched(sys, cqe))) {
        dispatch(sys, cqe, &touched, woken);
        evq_uring_advance(&sys->ring, 1); /* the slot is the kernel's again */
    }
    /* Report each stream the completions touched that is ready for what it
     * is armed for, and disarm it (one-shot). */
    size_t out = 0;
    for (size_t i = 0; i < touched; i++) {
        struct sys_stream *stream = sys->batch[i];
        stream->in_batch = false;
        uint32_t ready = readiness(stream, stream->armed);
        if (ready == 0)
            continue;
        events[out].tcp = stream->tcp;
        events[out].ready = ready;
        events[out].error = 0; /* a completion's error is in the stream's state already */
        out++;
        stream->armed = 0;
        stream->check_seen = 0; /* told */
    }
    *n = out;
    return 0;
}
/* ANCHOR_END: wait */

int sys_poll_wake(struct sys_poll *sys)
{
    /* One write(2) on the eventfd, from any thread: the waking thread never
     * touches the ring. Wakes add up in the counter, and one read takes
     * them all: several wakes before a wait are one wake-up. */
    return evq_uring_waker_wake(&sys->waker);
}

/* ANCHOR: drain */
void sys_poll_close(struct sys_poll *sys)
{
    /* Every stream's operations have been cancelled (sys_stream_detach,
     * sys_stream_close); the waker's read is cancelled here. Before the
     * ring goes, reap until the kernel has handed back every operation's
     * memory, and free each retired stream with its last completion.
     * Cancellation is prompt; the time limit only guards against an
     * operation that never ends, and then leaking is the safe choice. */
    sys->closing = true;
    struct io_uring_sqe *sqe;
    if (sys->waker.armed && uring_sqe(sys, &sqe) == 0)
        evq_uring_prep_cancel(sqe, evq_uring_tag(EVQ_URING_KIND_WAKER, 0, 0), 0,
                              evq_uring_tag(URING_CANCEL, 0, 0));
    uint64_t give_up = evq_clock_now_ns() + evq_ms_to_ns(CLOSE_GIVE_UP_MS);
    while ((sys->ring.in_flight > 0 || evq_uring_sq_pending(&sys->ring) > 0 ||
            sys->deferred_count > 0) &&
           evq_clock_now_ns() < give_up) {
        int rc = evq_uring_submit_and_wait(&sys->ring, 1, CLOSE_POLL_MS);
        if (rc != 0 && rc != EVQ_ETIMEDOUT && rc != EVQ_EBUSY)
            break;
        size_t unused = 0;
        bool woken = false;
        struct io_uring_cqe early, *cqe;
        while (undefer(sys, &early))
            dispatch(sys, &early, &unused, &woken);
        while (evq_uring_peek(&sys->ring, &cqe) == 0) {
            dispatch(sys, cqe, &unused, &woken);
            evq_uring_advance(&sys->ring, 1);
        }
    }
    if (sys->ring.in_flight > 0) {
        /* The kernel may still write into the buffers, the eventfd counter
         * and the retired streams: keep them all. */
        EVQ_WARN("uring: %llu operations never came back; leaking their memory",
                 (unsigned long long)sys->ring.in_flight);
        return;
    }
    /* The waking threads are done: evq_poll_close has joined the
     * resolver's workers, and no caller may still start evq_poll_wake. */
    evq_uring_pbuf_close(&sys->ring, &sys->buffers);
    evq_uring_close(&sys->ring);
    evq_uring_waker_close(&sys->waker);
    free(sys->parked);
    free(sys->deferred);
    free(sys->slots);
    free(sys->generations);
    free(sys->free_slots);
    free(sys);
}
/* ANCHOR_END: drain */

/* ---- what the tests and benchmarks see (uring_testing.h) ---- */

struct uring_counters *uring_counters(struct sys_poll *sys)
{
    return &sys->counters;
}

bool uring_provided_always(const struct sys_poll *sys)
{
    return sys->provided_always;
}

void evq_uring_get_queue_stats(evq_poll *poll, evq_uring_queue_stats *out)
{
    memset(out, 0, sizeof *out);
    struct sys_poll *sys = poll ? poll_sys(poll) : NULL;
    if (!sys)
        return;
    out->setup_flags = sys->ring.setup_flags;
    out->enter_calls = sys->ring.enter_calls;
    out->in_flight = sys->ring.in_flight;
    out->buffers = sys->buffers.count;
    out->buffers_free = sys->buffers.available;
    out->dry = sys->counters.dry;
    out->short_sends = sys->counters.short_sends;
    out->inline_sends = sys->counters.inline_sends;
    out->orphans = sys->counters.orphans;
}

void evq_uring_get_stream_stats(const evq_tcp *tcp, evq_uring_stream_stats *out)
{
    memset(out, 0, sizeof *out);
    const struct sys_stream *stream = tcp ? tcp->sys : NULL;
    if (!stream)
        return;
    if (stream->receive.in_flight)
        out->receive = stream->receive_form == RECEIVE_INTO_BUFFER ? EVQ_URING_RECEIVE_INTO_BUFFER
                       : stream->receive_form == RECEIVE_POLL      ? EVQ_URING_RECEIVE_POLL
                                                                   : EVQ_URING_RECEIVE_PROVIDED;
    out->in_flight = stream->in_flight;
    const struct uring_parked *parked = stream->poll->parked;
    for (uint16_t id = stream->parked_head; id != URING_NO_BUFFER; id = parked[id].next)
        out->parked += parked[id].end - parked[id].start;
    out->accepted_ahead = stream->accepted_count;
}

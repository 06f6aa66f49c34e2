/* uring_testing.h - what appendix C's tests and benchmarks of a chapter's
 * io_uring backend may see inside it (the chapter's own hooks are in its
 * evq_testing.h). Only the ch<NN>_uring libraries have these.
 *
 * One switch, for the tests: with EVQ_URING_PROVIDED_BUFFERS=1 in the
 * environment, every queue opened makes every stream wait for data with a
 * multishot receive on provided buffers, as if its limits said
 * zero_byte_receive - so that the chapter's whole suite, which never asks
 * for them, runs on that path too (ctest: ch04.uring-provided.<case>).
 */
#ifndef EVQ_URING_TESTING_BACKEND_H
#define EVQ_URING_TESTING_BACKEND_H

#include "evq.h"

#include <stddef.h>
#include <stdint.h>

typedef struct evq_uring_queue_stats {
    unsigned setup_flags;  /* IORING_SETUP_* the kernel accepted for the queue's ring */
    uint64_t enter_calls;  /* io_uring_enter system calls the queue has made */
    uint64_t in_flight;    /* operations submitted whose final completion is not reaped */
    size_t buffers;        /* provided buffers in the queue's ring (0: never opened) */
    size_t buffers_free;   /* of those, in the ring now: not held by a completion or parked */
    uint64_t dry;          /* multishot receives the kernel ended with -ENOBUFS */
    uint64_t short_sends;  /* send completions that took less than they were lent */
    uint64_t inline_sends; /* sends whose completion was there when they were submitted */
    uint64_t orphans;      /* completions that found their stream freed already: a stream
                              freed before its last completion (never, if all is well) */
} evq_uring_queue_stats;

void evq_uring_get_queue_stats(evq_poll *poll, evq_uring_queue_stats *out);

enum evq_uring_receive {
    EVQ_URING_RECEIVE_NONE,        /* no receive in flight */
    EVQ_URING_RECEIVE_INTO_BUFFER, /* IORING_OP_RECV into the read buffer */
    EVQ_URING_RECEIVE_POLL,        /* IORING_OP_POLL_ADD */
    EVQ_URING_RECEIVE_PROVIDED,    /* a multishot receive on the provided buffers */
};

typedef struct evq_uring_stream_stats {
    enum evq_uring_receive receive; /* the receive in flight */
    unsigned in_flight;             /* the stream's operations the kernel owns */
    size_t parked;                  /* bytes in provided buffers the read buffer had no room for */
    size_t accepted_ahead;          /* a listener: connections accepted, not yet taken */
} evq_uring_stream_stats;

void evq_uring_get_stream_stats(const evq_tcp *stream, evq_uring_stream_stats *out);

#endif

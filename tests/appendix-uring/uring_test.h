/* uring_test.h - what the tests of appendix C share. */
#ifndef URING_TEST_H
#define URING_TEST_H

#include "evq_net.h"
#include "evq_test.h"
#include "evq_uring.h"

/* Open a ring, or skip the case where io_uring is unavailable (disabled,
 * filtered, too old): the reason the layer gives is the skip message. */
#define URING_OPEN(ring, options)                                                                  \
    do {                                                                                           \
        int open_code_ = evq_uring_open((ring), (options));                                        \
        if (open_code_ == EVQ_ENOTSUP || open_code_ == EVQ_EACCES)                                 \
            SKIP("%s", (ring)->reason);                                                            \
        REQUIRE_OK(open_code_);                                                                    \
    } while (0)

/* Skip (after closing the ring) unless the kernel has these opcodes. */
#define URING_NEED_OPS(ring, ...)                                                                  \
    do {                                                                                           \
        static const uint8_t need_ops_[] = {__VA_ARGS__};                                          \
        if (evq_uring_require_ops((ring), need_ops_, sizeof need_ops_) != 0) {                     \
            evq_uring_close(ring);                                                                 \
            SKIP("%s", (ring)->reason);                                                            \
        }                                                                                          \
    } while (0)

/* The next SQE, submitting first if the SQ is full. If even that fails, the
 * case fails here and gets a scratch SQE that is never submitted, so that it
 * goes on without crashing. */
struct io_uring_sqe *uring_test_sqe(evq_uring *ring);

/* How long a test waits for one completion before it calls it lost. Loopback
 * answers in microseconds; this only bounds a broken run. */
#define URING_TEST_WAIT_MS 5000

/* A completion copied out of the ring (struct io_uring_cqe ends in a
 * flexible array, so arrays of it are not C). */
typedef struct uring_test_cqe {
    uint64_t user_data;
    int32_t res;
    uint32_t flags;
} uring_test_cqe;

/* Submit what is pending, wait for the next completion, copy it out and give
 * its slot back. 0 or the EVQ_E* code of the wait. */
int uring_test_reap(evq_uring *ring, uring_test_cqe *copy);

/* Reap until the completion with this user_data; the others met on the way
 * go to others[] (at most *n_others, their count returned there). */
int uring_test_reap_for(evq_uring *ring, uint64_t user_data, uring_test_cqe *copy,
                        uring_test_cqe *others, size_t *n_others);

/* Reap exactly n completions, in the order they come. */
int uring_test_reap_n(evq_uring *ring, uring_test_cqe *cqes, size_t n);

/* The completion with this user_data among cqes[0..n), or NULL. */
const uring_test_cqe *uring_test_find(const uring_test_cqe *cqes, size_t n, uint64_t user_data);

/* A connected loopback TCP pair, both ends blocking. */
int uring_test_pair(evq_socket *a, evq_socket *b);

/* A listener on 127.0.0.1 and an ephemeral port. */
int uring_test_listener(evq_socket *listener, uint16_t *port);

/* Fill a sockaddr_in for 127.0.0.1:port. */
void uring_test_loopback(struct sockaddr_in *address, uint16_t port);

#endif

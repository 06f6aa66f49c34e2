/* uring_test.c - helpers for the tests of appendix C. */
#include "uring_test.h"

#include <arpa/inet.h>
#include <string.h>

struct io_uring_sqe *uring_test_sqe(evq_uring *ring)
{
    static struct io_uring_sqe scratch; /* never submitted: keeps a failing case from crashing */
    struct io_uring_sqe *sqe;
    if (evq_uring_next_sqe(ring, &sqe) != 0) {
        evq_test_fail(__FILE__, __LINE__, "no SQE: the ring is full and would not submit");
        return &scratch;
    }
    return sqe;
}

int uring_test_reap(evq_uring *ring, uring_test_cqe *copy)
{
    struct io_uring_cqe *cqe;
    int code = evq_uring_wait(ring, &cqe, URING_TEST_WAIT_MS);
    if (code != 0)
        return code;
    copy->user_data = cqe->user_data;
    copy->res = cqe->res;
    copy->flags = cqe->flags;
    evq_uring_advance(ring, 1);
    return 0;
}

int uring_test_reap_for(evq_uring *ring, uint64_t user_data, uring_test_cqe *copy,
                        uring_test_cqe *others, size_t *n_others)
{
    size_t capacity = n_others ? *n_others : 0, seen = 0;
    for (int round = 0; round < 64; round++) {
        uring_test_cqe cqe;
        int code = uring_test_reap(ring, &cqe);
        if (code != 0)
            return code;
        if (cqe.user_data == user_data) {
            *copy = cqe;
            if (n_others)
                *n_others = seen;
            return 0;
        }
        if (seen < capacity)
            others[seen] = cqe;
        seen++;
    }
    return EVQ_ETIMEDOUT;
}

int uring_test_reap_n(evq_uring *ring, uring_test_cqe *cqes, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int code = uring_test_reap(ring, &cqes[i]);
        if (code != 0)
            return code;
    }
    return 0;
}

const uring_test_cqe *uring_test_find(const uring_test_cqe *cqes, size_t n, uint64_t user_data)
{
    for (size_t i = 0; i < n; i++) {
        if (cqes[i].user_data == user_data)
            return &cqes[i];
    }
    return NULL;
}

int uring_test_pair(evq_socket *a, evq_socket *b)
{
    return evq_net_tcp_pair(a, b);
}

int uring_test_listener(evq_socket *listener, uint16_t *port)
{
    return evq_net_listen_loopback(0, 64, listener, port);
}

void uring_test_loopback(struct sockaddr_in *address, uint16_t port)
{
    memset(address, 0, sizeof *address);
    address->sin_family = AF_INET;
    address->sin_port = htons(port);
    address->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
}

/* uring_ops.h - the opcodes a chapter's io_uring backend needs. The backend
 * refuses to open a queue where IORING_REGISTER_PROBE does not list one of
 * them (EVQ_ENOTSUP), and uring_run skips the backend's tests there. What
 * only some kernels have - multishot accept and receive, provided-buffer
 * rings, IORING_ASYNC_CANCEL_ANY - is asked for at run time instead, with a
 * fallback (uring_backend.h says which).
 */
#ifndef EVQ_URING_OPS_H
#define EVQ_URING_OPS_H

#include <linux/io_uring.h>

#define EVQ_URING_BACKEND_OPS                                                                      \
    IORING_OP_NOP,          /* 5.1: the backend's note to itself (a stream ready without I/O) */   \
        IORING_OP_POLL_ADD, /* 5.1: wait for data without lending a buffer */                      \
        IORING_OP_SENDMSG,  /* 5.3: the write queue's chunks, in place */                          \
        IORING_OP_ACCEPT,   /* 5.5 */                                                              \
        IORING_OP_CONNECT,  /* 5.5 */                                                              \
        IORING_OP_ASYNC_CANCEL, /* 5.5: closing with operations in flight */                       \
        IORING_OP_READ,         /* 5.6: the waker's eventfd */                                     \
        IORING_OP_RECV          /* 5.6 */

#endif

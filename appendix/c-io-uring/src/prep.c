/* prep.c - filling an SQE for each operation the book's queue needs.
 *
 * An SQE is 64 bytes of unions; which field means what depends on the
 * opcode (the table is io_uring_enter(2)). Every function here starts from
 * an SQE evq_uring_get_sqe zeroed, sets the opcode, the descriptor, the
 * pointer and length fields that opcode reads, and the user_data that will
 * come back with its completion.
 */
#include "uring_internal.h"

#include <sys/socket.h>

static void prep(struct io_uring_sqe *sqe, uint8_t opcode, int fd, const void *addr, uint32_t len,
                 uint64_t offset, uint64_t user_data)
{
    sqe->opcode = opcode;
    sqe->fd = fd;
    sqe->addr = (uint64_t)(uintptr_t)addr;
    sqe->len = len;
    sqe->off = offset;
    sqe->user_data = user_data;
}

void evq_uring_prep_nop(struct io_uring_sqe *sqe, uint64_t user_data)
{
    prep(sqe, IORING_OP_NOP, -1, NULL, 0, 0, user_data);
}

/* ANCHOR: prep_accept */
void evq_uring_prep_accept(struct io_uring_sqe *sqe, int fd, struct sockaddr *addr,
                           uint32_t *addrlen, int flags, bool multishot, uint64_t user_data)
{
    /* accept4(fd, addr, addrlen, flags): the address goes in addr, the
     * pointer to its length in off (addr2). */
    prep(sqe, IORING_OP_ACCEPT, fd, addr, 0, (uint64_t)(uintptr_t)addrlen, user_data);
    sqe->accept_flags = (uint32_t)flags;
    if (multishot) /* one SQE, a completion per connection, until an error */
        sqe->ioprio |= IORING_ACCEPT_MULTISHOT;
}
/* ANCHOR_END: prep_accept */

void evq_uring_prep_connect(struct io_uring_sqe *sqe, int fd, const struct sockaddr *addr,
                            uint32_t addrlen, uint64_t user_data)
{
    /* connect(fd, addr, addrlen): here off holds the length itself. */
    prep(sqe, IORING_OP_CONNECT, fd, addr, 0, addrlen, user_data);
}

void evq_uring_prep_recv(struct io_uring_sqe *sqe, int fd, void *buffer, size_t len, int msg_flags,
                         uint64_t user_data)
{
    prep(sqe, IORING_OP_RECV, fd, buffer, (uint32_t)len, 0, user_data);
    sqe->msg_flags = (uint32_t)msg_flags;
}

/* ANCHOR: prep_recv_multishot */
void evq_uring_prep_recv_multishot(struct io_uring_sqe *sqe, int fd, uint16_t group,
                                   uint64_t user_data)
{
    /* No buffer: IOSQE_BUFFER_SELECT makes the kernel take one from group
     * `group` when data is there, not before. Each chunk of data is one
     * completion naming the buffer it filled; the request stays armed while
     * the completions carry IORING_CQE_F_MORE. */
    prep(sqe, IORING_OP_RECV, fd, NULL, 0, 0, user_data);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = group;
    sqe->ioprio |= IORING_RECV_MULTISHOT;
}
/* ANCHOR_END: prep_recv_multishot */

void evq_uring_prep_send(struct io_uring_sqe *sqe, int fd, const void *data, size_t len,
                         int msg_flags, uint64_t user_data)
{
    prep(sqe, IORING_OP_SEND, fd, data, (uint32_t)len, 0, user_data);
    sqe->msg_flags = (uint32_t)msg_flags;
}

void evq_uring_prep_sendmsg(struct io_uring_sqe *sqe, int fd, const struct msghdr *message,
                            int msg_flags, uint64_t user_data)
{
    prep(sqe, IORING_OP_SENDMSG, fd, message, 1, 0, user_data);
    sqe->msg_flags = (uint32_t)msg_flags;
}

void evq_uring_prep_timeout(struct io_uring_sqe *sqe, const struct __kernel_timespec *ts,
                            unsigned count, unsigned flags, uint64_t user_data)
{
    prep(sqe, IORING_OP_TIMEOUT, -1, ts, 1, count, user_data);
    sqe->timeout_flags = flags;
}

void evq_uring_prep_link_timeout(struct io_uring_sqe *sqe, const struct __kernel_timespec *ts,
                                 unsigned flags, uint64_t user_data)
{
    prep(sqe, IORING_OP_LINK_TIMEOUT, -1, ts, 1, 0, user_data);
    sqe->timeout_flags = flags;
}

/* ANCHOR: prep_cancel */
void evq_uring_prep_cancel(struct io_uring_sqe *sqe, uint64_t target, unsigned flags,
                           uint64_t user_data)
{
    /* The operation to cancel is named by its user_data, in addr: one more
     * reason to make user_data unique per operation in flight. */
    prep(sqe, IORING_OP_ASYNC_CANCEL, -1, NULL, 0, 0, user_data);
    sqe->addr = target;
    sqe->cancel_flags = flags;
}
/* ANCHOR_END: prep_cancel */

void evq_uring_prep_read(struct io_uring_sqe *sqe, int fd, void *buffer, unsigned len,
                         uint64_t offset, uint64_t user_data)
{
    prep(sqe, IORING_OP_READ, fd, buffer, len, offset, user_data);
}

void evq_uring_prep_poll_add(struct io_uring_sqe *sqe, int fd, unsigned events, uint64_t user_data)
{
    prep(sqe, IORING_OP_POLL_ADD, fd, NULL, 0, 0, user_data);
    /* The 32-bit mask is read as two 16-bit halves swapped on big-endian
     * machines (the kernel's io_poll_parse_events; liburing swaps too). */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    events = events << 16 | events >> 16;
#endif
    sqe->poll32_events = events;
}

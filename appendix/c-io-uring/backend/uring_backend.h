/* uring_backend.h - what the io_uring backend's two files share: poll_uring.c
 * (the ring: the wait, the readiness it emulates, the lifetime of a
 * stream's state, the waker) and tcp_uring.c (the socket operations it
 * submits, and what each completion means for the stream's buffers).
 *
 * This is chapter 4's seam (chapters/04-dns/src/sys.h) on io_uring, built as
 * ch04_uring from appendix C's layer (evq_uring.h). Like IOCP (poll_iocp.c,
 * tcp_win.c) it is a completion backend under a readiness API: the kernel
 * says "the receive you submitted has finished", and the backend turns the
 * state the completions leave into READABLE and WRITABLE, one-shot.
 *
 * The rule everything here follows is IOCP's: from submission until an
 * operation's final completion has been reaped, the memory it points at
 * (a receive's part of the read buffer, the write queue's chunks a send
 * reads, the sockaddr of a connect, the eventfd's counter) belongs to the
 * kernel. It lives in heap objects, and a stream closed earlier is kept
 * ("retired") until the cancelled completions have come back.
 *
 * Operations, one of each kind in flight per stream at most:
 *   receive   one of three forms (enum uring_receive_form), chosen when the
 *             stream is armed READABLE;
 *   send      IORING_OP_SENDMSG straight from the write queue's chunks;
 *   connect   IORING_OP_CONNECT per address, on a blocking socket (tcp_uring.c
 *             says why connections' sockets block);
 *   accept    IORING_OP_ACCEPT, one at a time, kept armed on a listener;
 *   check     a note to itself that the stream is ready now (IOCP's
 *             PostQueuedCompletionStatus), reported in turn: IORING_OP_NOP,
 *             or on a connection IORING_OP_POLL_ADD for POLLOUT (sys_arm);
 * and the waker's eventfd read, which belongs to the queue.
 *
 * user_data is appendix C's tag (evq_uring_tag): the operation's kind, the
 * stream's slot in the queue's table and the slot's generation. The
 * caller's token is never in it: the stream is looked up by slot.
 *
 * The seam between the two files, and nothing else:
 *   poll_uring.c -> tcp_uring.c: uring_completed, uring_dropped,
 *                                uring_start_receive, uring_start_accept,
 *                                uring_stream_release
 *   tcp_uring.c -> poll_uring.c: uring_sqe, uring_tag, uring_started,
 *                                uring_submit_now, uring_reap_now, uring_cancel,
 *                                uring_buffers, uring_parked_entries
 */
#ifndef EVQ_URING_BACKEND_H
#define EVQ_URING_BACKEND_H

#include "sys.h"

#include "evq_uring.h"

#include <sys/socket.h>
#include <sys/uio.h>

/* user_data kinds (bits 63..56 of the tag). The layer keeps 0xF0..0xFF. */
enum uring_op_kind {
    URING_RECEIVE = 1,
    URING_SEND,
    URING_CONNECT,
    URING_ACCEPT,
    URING_CHECK,
    URING_CANCEL, /* the backend's own ASYNC_CANCELs: their completions are not news */
};

/* How a stream waits for data (uring_start_receive picks one):
 *   INTO_BUFFER  IORING_OP_RECV into the free space of the read buffer: the
 *                first bytes land without a copy, and read_initial bytes
 *                stay lent to the kernel while the peer is silent (IOCP's
 *                receive into the buffer). The default.
 *   POLL         IORING_OP_POLL_ADD: "data has come", nothing lent (IOCP's
 *                0-byte WSARecv); the fill then receives with recv(). For
 *                a buffer that holds bytes the caller has seen, which a
 *                consume may move, and where provided buffers are missing.
 *   PROVIDED     a multishot IORING_OP_RECV on the queue's provided-buffer
 *                ring (zero_byte_receive in the stream's limits): armed once,
 *                a completion per chunk of data, a buffer taken from the ring
 *                only when data has come and given back as soon as its bytes
 *                are copied into the read buffer. Nothing is lent while idle,
 *                and no recv() is ever made while it is armed. */
enum uring_receive_form { RECEIVE_INTO_BUFFER, RECEIVE_POLL, RECEIVE_PROVIDED };

/* One operation of a stream. */
struct uring_op {
    bool in_flight;  /* prepared in the SQ, and its final completion not yet reaped */
    bool cancelling; /* an ASYNC_CANCEL was sent after it: its -ECANCELED is ours */
    size_t lent;     /* bytes of our memory the kernel may write or read */
};

#define URING_NO_BUFFER UINT16_MAX /* the end of a list of provided buffers */

/* A provided buffer whose bytes did not fit in the read buffer (read_max):
 * kept, in order, until a read takes them (tcp_uring.c, "parked"). */
struct uring_parked {
    uint16_t next;
    uint32_t start, end; /* its unread bytes */
};

/* ANCHOR: stream */
struct sys_stream {
    evq_tcp *tcp;          /* NULL once closed with operations in flight ("retired") */
    struct sys_poll *poll; /* the queue whose ring its operations are on */
    uint32_t slot;         /* its index in the queue's table: the tag's slot */
    unsigned armed;        /* the emulated one-shot arming: what may still give an event */
    unsigned in_flight;    /* its operations the kernel owns now */
    struct uring_op receive, send, connect, accept, check;
    enum uring_receive_form receive_form; /* of the receive in flight */
    /* The send's message: the kernel copies it when the SQE is submitted,
     * and reads the chunks its iovecs point at until the completion. */
    struct msghdr send_message;
    struct iovec send_iov[SYS_SEND_SEGMENTS];
    /* The connect: its address (read when submitted) and outcome. */
    struct sockaddr_storage connect_to;
    int connect_status;
    /* The check in flight is a POLL_ADD (else a NOP), and EVQ_ERR | EVQ_HUP:
     * what the last one saw, until told. */
    bool check_polls;
    uint32_t check_seen;
    /* Provided buffers holding bytes the read buffer had no room for, and
     * the end (EVQ_EOF or an error) that came behind them. */
    uint16_t parked_head, parked_tail;
    int receive_end;
    bool in_batch;                   /* touched by the wait being collected */
    struct sys_stream *retired_next; /* the queue's retired list */
    /* A stream closed with I/O in flight keeps what the kernel may still
     * touch, taken out of the evq_tcp that is freed. */
    struct read_buffer kept_read;
    struct write_queue kept_write;
    /* Listeners only: connections the kernel accepted ahead, oldest first. */
    int *accepted;
    size_t accepted_head, accepted_count, accepted_capacity;
    int accept_error; /* an accept failed (EMFILE...): said by the next evq_tcp_accept */
};
/* ANCHOR_END: stream */

/* What the tests and benchmarks count (uring_testing.h). */
struct uring_counters {
    uint64_t dry;          /* multishot receives ended with -ENOBUFS */
    uint64_t short_sends;  /* send completions short of what they were lent */
    uint64_t inline_sends; /* sends completed during the enter that submitted them */
    uint64_t orphans;      /* completions whose stream was already freed (see dispatch) */
};

/* ---- poll_uring.c, for tcp_uring.c ---- */
struct uring_counters *uring_counters(struct sys_poll *sys);
/* EVQ_URING_PROVIDED_BUFFERS is set (uring_testing.h): every stream waits
 * with provided buffers, whatever its limits say. */
bool uring_provided_always(const struct sys_poll *sys);
/* The next SQE of the queue's ring, zeroed (submitting first if the SQ is
 * full). */
int uring_sqe(struct sys_poll *sys, struct io_uring_sqe **out);
/* The tag of a stream's operation: kind, slot, generation. */
uint64_t uring_tag(const struct sys_stream *stream, enum uring_op_kind kind);
/* Count an operation whose SQE is prepared: the kernel owns it from now. */
void uring_started(struct sys_stream *stream, struct uring_op *op);
/* Submit what is prepared now, with one io_uring_enter: for operations
 * whose progress is visible without a wait (a send, a connect). The rest
 * (receives, accepts, checks, cancels) go with the next wait's enter. */
void uring_submit_now(struct sys_poll *sys);
/* If the operation's final completion is in the CQ already (the kernel
 * finished it during the enter that submitted it), take it now: *res is its
 * result and the operation is over. Completions ahead of it are kept, in
 * order, for the next wait. */
bool uring_reap_now(struct sys_stream *stream, enum uring_op_kind kind, int32_t *res);
/* Ask the kernel to cancel the operation (ASYNC_CANCEL by its tag). Its
 * final completion still comes back, and only then is its memory ours. */
void uring_cancel(struct sys_stream *stream, enum uring_op_kind kind);
/* The queue's provided-buffer ring, opened on first use; NULL where the
 * kernel has none (before 5.19). */
evq_uring_pbuf *uring_buffers(struct sys_poll *sys);
/* The parked list's entries, one per provided buffer (uring_buffers). */
struct uring_parked *uring_parked_entries(struct sys_poll *sys);

/* ---- tcp_uring.c, for poll_uring.c ---- */
/* A reaped completion of a live stream's operation: update its buffers.
 * `op` is no longer in flight if this was its final completion. */
void uring_completed(struct sys_stream *stream, enum uring_op_kind kind,
                     const struct io_uring_cqe *cqe);
/* A completion nobody will read (a retired stream, a queue closing): give
 * back what it carried - a provided buffer to the ring, an accepted socket
 * closed. */
void uring_dropped(struct sys_poll *sys, enum uring_op_kind kind, const struct io_uring_cqe *cqe);
/* Arm the receive that waits for data, unless one is in flight or the stream
 * is ready already. A failure ends the read side (after the buffered bytes). */
void uring_start_receive(struct sys_stream *stream);
/* Keep a listener's ACCEPT armed (one at a time). */
void uring_start_accept(struct sys_stream *listener);
/* The stream is going: close the connections accepted ahead, give the parked
 * buffers back. */
void uring_stream_release(struct sys_stream *stream);

#endif

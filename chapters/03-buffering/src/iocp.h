/* iocp.h - what poll_iocp.c (the port) and tcp_win.c (the streams) share.
 *
 * IOCP is a completion queue: the kernel does not say "you may read now", it
 * says "the read you started has finished, into the buffer you lent me".
 * The library emulates readiness on top of it: READABLE means "the stream's
 * read buffer holds data (or the end)", WRITABLE "the write queue has room".
 *
 * The rule everything here follows: from the moment WSARecv, WSASend or
 * AcceptEx is called until its completion packet is dequeued, the
 * OVERLAPPED, the WSABUFs and the memory they point at belong to the kernel,
 * which may write to them at any time. So they live in heap objects (struct
 * sys_stream and the stream's buffers), never on a stack frame, and they are
 * freed only when nothing is in flight - if the stream is closed earlier,
 * the queue keeps them ("retired") until the cancelled completions come back.
 *
 * Chapter 3's reads: the socket is ALSO in non-blocking mode (FIONBIO), so
 * that a read can fill the buffer with plain recv() until WSAEWOULDBLOCK, as
 * on POSIX. Microsoft: "Because overlapped I/O operations do not block, the
 * blocking mode of a socket is irrelevant for these operations" - an
 * overlapped WSARecv still returns WSA_IO_PENDING on such a socket. The
 * overlapped receive is then only the doorbell: a 0-byte WSARecv (no buffer
 * lent at all), or a WSARecv into the read buffer (the first bytes land
 * without a copy, and a buffer is pinned while the stream waits).
 */
#ifndef EVQ_IOCP_H
#define EVQ_IOCP_H

#include <winsock2.h>
#include <mswsock.h>
#include <windows.h>

#include "sys.h"

/* How many AcceptEx a listener keeps posted: connections that arrive
 * together are accepted by the kernel without waiting for the loop. */
#define IOCP_ACCEPTS_POSTED 4
/* AcceptEx: "This value must be at least 16 bytes more than the maximum
 * address length for the transport protocol in use", for each address. */
#define IOCP_ACCEPT_ADDRESS_SIZE (sizeof(struct sockaddr_storage) + 16)

enum iocp_op_kind { IOCP_RECEIVE, IOCP_SEND, IOCP_ACCEPT };

/* ANCHOR: op */
/* One overlapped operation. The kernel gets &op->overlapped and hands the
 * same pointer back in the completion; the op is found from it with
 * offsetof (op_from_overlapped). */
struct iocp_op {
    OVERLAPPED overlapped; /* the kernel writes status and byte count here */
    DWORD flags;           /* WSARecv's in/out flags */
    size_t lent;           /* bytes of our memory the kernel may write or read */
    bool in_flight;        /* started and not yet dequeued: the kernel owns all of this */
    enum iocp_op_kind kind;
    struct sys_stream *stream;
};
/* ANCHOR_END: op */

/* One AcceptEx posted ahead on a listener: the socket it accepts into, made
 * before the connection exists, and the buffer the kernel writes the two
 * addresses into. */
struct iocp_accept {
    struct iocp_op op;
    SOCKET socket;  /* INVALID_SOCKET: nothing posted in this slot */
    bool done;      /* completed: an accepted connection waits here */
    uint64_t order; /* completion order: connections are handed out first come, first served */
    char addresses[2 * IOCP_ACCEPT_ADDRESS_SIZE];
};

/* ANCHOR: stream */
struct sys_stream {
    evq_tcp *tcp;          /* NULL once closed with I/O in flight ("retired") */
    struct sys_poll *poll; /* the port this socket is tied to */
    size_t in_flight;      /* this stream's operations the kernel owns now */
    struct iocp_op receive, send;
    /* "This array must remain valid for the duration of the send": the
     * WSABUFs live here, not on the stack of the function that posts. */
    WSABUF receive_buffer;
    WSABUF send_buffers[SYS_SEND_SEGMENTS];
    int read_status; /* EOF or an error met by a completion, for the next fill */
    bool on_ready_list;
    struct sys_stream *ready_prev, *ready_next; /* the queue's ready list */
    struct sys_stream *retired_next;            /* the queue's retired list */
    /* A stream closed with I/O in flight keeps what the kernel may still
     * touch, taken out of the evq_tcp that is freed: the read buffer a
     * receive writes into, the write chunks a send reads from. */
    struct read_buffer kept_read;
    struct write_queue kept_write;
    /* Listeners only. */
    LPFN_ACCEPTEX accept_ex; /* from WSAIoctl: ws2_32 does not export it */
    int family;
    uint64_t accepts_completed;
    struct iocp_accept *accepts; /* IOCP_ACCEPTS_POSTED of them; NULL on a connection */
};
/* ANCHOR_END: stream */

/* poll_iocp.c */
/* Tie a socket to the queue's port and give its stream the IOCP state. */
int iocp_attach(struct sys_poll *sys, evq_tcp *tcp);
/* A stream was closed with I/O in flight: the queue frees it later. */
void iocp_retire(struct sys_poll *sys, struct sys_stream *stream);
/* Count an operation the kernel has accepted (it will come back through
 * the port, even if it failed or was cancelled). */
void iocp_started(struct sys_poll *sys, struct iocp_op *op);
/* The stream may have become ready (its queue drained, say): queue it. */
void iocp_check_ready(struct sys_stream *stream);

/* tcp_win.c */
/* Post the receive that waits for data (0 bytes, or into the read buffer),
 * unless one is in flight, data is buffered or the read side has ended. A
 * failure to start is kept as the read status. */
void iocp_start_receive(struct sys_stream *stream);
/* A dequeued completion: update the buffers from what the kernel did. */
void iocp_completed(struct sys_stream *stream, struct iocp_op *op, DWORD bytes);
/* What the stream is ready for now, among `armed`, as EVQ_* bits. */
uint32_t iocp_readiness(const struct sys_stream *stream, unsigned armed);
/* Free a stream's IOCP state and whatever memory it kept for the kernel. */
void iocp_stream_free(struct sys_stream *stream);

static inline bool iocp_busy(const struct sys_stream *stream)
{
    return stream->in_flight > 0;
}

#endif

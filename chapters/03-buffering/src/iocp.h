/* iocp.h - what poll_iocp.c (the port) and tcp_win.c (the streams) share.
 *
 * IOCP is a completion queue: the kernel does not say "you may read now", it
 * says "the read you started has finished, into the buffer you lent me".
 * The library emulates readiness on top of it: READABLE means "an
 * overlapped WSARecv into the stream's own buffer has completed" (reads
 * copy out of that buffer), WRITABLE means "no write is in flight".
 *
 * The rule everything here follows: from the moment WSARecv or WSASend is
 * called until its completion packet is dequeued, the OVERLAPPED, the
 * WSABUF and the buffer belong to the kernel, which may write to them at
 * any time. So they live in a heap object (struct sys_stream), never on a
 * stack frame, and that object is freed only when nothing is in flight -
 * if the stream is closed earlier, the queue keeps it ("retired") until the
 * cancelled completions come back.
 */
#ifndef EVQ_IOCP_H
#define EVQ_IOCP_H

#include <winsock2.h>
#include <mswsock.h>
#include <windows.h>

#include "sys.h"

/* The stream's one buffer each way (chapter 3 replaces it). */
#define IOCP_BUFFER_SIZE 16384

/* ANCHOR: op */
/* One overlapped operation. The kernel gets &op->overlapped and hands the
 * same pointer back in the completion; the op is found from it with
 * offsetof (op_from_overlapped). */
struct iocp_op {
    OVERLAPPED overlapped; /* the kernel writes status and byte count here */
    WSABUF buffer;         /* "this array must remain valid for the duration of the send" */
    DWORD flags;           /* WSARecv's in/out flags */
    bool in_flight;        /* started and not yet dequeued: the kernel owns all of this */
    struct sys_stream *stream;
};
/* ANCHOR_END: op */

/* ANCHOR: stream */
struct sys_stream {
    evq_tcp *tcp;          /* NULL once closed with I/O in flight ("retired") */
    struct sys_poll *poll; /* the port this socket is tied to */
    struct iocp_op read_op, write_op;
    size_t read_len, read_pos; /* read_buf[read_pos .. read_len) is unread data */
    int read_status;           /* EVQ_EOF or an error, reported after the data */
    size_t write_len, write_done;
    int write_status; /* a failed send, reported by the next write */
    bool on_ready_list;
    struct sys_stream *ready_prev, *ready_next; /* the queue's ready list */
    struct sys_stream *retired_next;            /* the queue's retired list */
    char read_buf[IOCP_BUFFER_SIZE];
    char write_buf[IOCP_BUFFER_SIZE];
};
/* ANCHOR_END: stream */

/* poll_iocp.c */
/* Tie tcp->socket to the queue's port and give the stream its buffers. */
int iocp_attach(struct sys_poll *sys, evq_tcp *tcp);
/* A stream was closed with I/O in flight: the queue frees it later. */
void iocp_retire(struct sys_poll *sys, struct sys_stream *stream);
/* Count an operation the kernel has accepted (it will come back through
 * the port, even if it failed or was cancelled). */
void iocp_started(struct sys_poll *sys, struct iocp_op *op);

/* tcp_win.c */
/* Post a WSARecv into the empty buffer, unless one is in flight or the
 * read side has ended. A failure to start is kept as the read status. */
void iocp_start_read(struct sys_stream *stream);
/* A dequeued completion: update the buffers from what the kernel did. */
void iocp_completed(struct sys_stream *stream, struct iocp_op *op, DWORD bytes);
/* What the stream is ready for now, among `armed`, as EVQ_* bits. */
uint32_t iocp_readiness(const struct sys_stream *stream, unsigned armed);

static inline bool iocp_busy(const struct sys_stream *stream)
{
    return stream->read_op.in_flight || stream->write_op.in_flight;
}

#endif

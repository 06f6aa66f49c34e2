/* iocp.h - what the IOCP backend's two files share: poll_iocp.c (the port:
 * the wait, the readiness it emulates, the lifetime of a stream's state)
 * and tcp_win.c (Winsock: starting WSARecv and WSASend, and what each
 * completion means for the stream's buffers).
 *
 * IOCP is a completion queue: the kernel does not say "you may read now", it
 * says "the read you started has finished, into the buffer you lent me".
 * The backend emulates readiness on top of it: READABLE means "an
 * overlapped WSARecv into the stream's own buffer has completed" (reads
 * copy out of that buffer), WRITABLE means "no write is in flight".
 *
 * The rule everything here follows: from the moment WSARecv or WSASend is
 * called until its completion packet is dequeued, the OVERLAPPED and the
 * buffer belong to the kernel, which may write to them at any time (the
 * WSABUF array is read before the call returns). So they live in a heap
 * object (struct sys_stream), never on a stack frame, and that object is
 * freed only when nothing is in flight - if the stream is closed earlier,
 * the queue keeps it ("retired") until the cancelled completions come back.
 *
 * The seam between the two files, and nothing else:
 *   poll_iocp.c -> tcp_win.c: iocp_completed, iocp_start_read
 *   tcp_win.c -> poll_iocp.c: iocp_started
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
    WSABUF buffer;         /* read before WSARecv/WSASend returns; kept here for convenience */
    DWORD flags;           /* WSARecv's in/out flags */
    bool in_flight;        /* started and not yet dequeued: the kernel owns all of this */
    struct sys_stream *stream;
};
/* ANCHOR_END: op */

/* ANCHOR: stream */
struct sys_stream {
    evq_tcp *tcp;          /* NULL once closed with I/O in flight ("retired") */
    struct sys_poll *poll; /* the port this socket is tied to */
    unsigned armed;        /* the emulated one-shot arming: what may still give an event */
    size_t in_flight;      /* this stream's operations the kernel owns now */
    /* read_op and write_op are Winsock's; `check` is a packet the backend
     * posts to itself when a stream is armed for something that holds
     * already, so that the wait reports it in the port's order. */
    struct iocp_op read_op, write_op, check;
    size_t read_len, read_pos; /* read_buf[read_pos .. read_len) is unread data */
    int read_status;           /* EVQ_EOF or an error, reported after the data */
    size_t write_len, write_done;
    int write_status;                /* a failed send, reported by the next write */
    bool in_batch;                   /* reported by the wait being collected */
    struct sys_stream *retired_next; /* the queue's retired list */
    char read_buf[IOCP_BUFFER_SIZE];
    char write_buf[IOCP_BUFFER_SIZE];
};
/* ANCHOR_END: stream */

/* poll_iocp.c: count an operation the kernel has accepted (it will come
 * back through the port, even if it failed or was cancelled). */
void iocp_started(struct iocp_op *op);

/* tcp_win.c */
/* A dequeued completion: update the buffers from what the kernel did. */
void iocp_completed(struct sys_stream *stream, struct iocp_op *op, DWORD bytes);
/* Post a WSARecv into the empty buffer, unless one is in flight or the
 * read side has ended. A failure to start is kept as the read status. */
void iocp_start_read(struct sys_stream *stream);

static inline bool iocp_busy(const struct sys_stream *stream)
{
    return stream->in_flight > 0;
}

#endif

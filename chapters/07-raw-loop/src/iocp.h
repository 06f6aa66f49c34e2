/* iocp.h - what the IOCP backend's two files share: poll_iocp.c (the port:
 * the wait, the readiness it emulates, the lifetime of a stream's state)
 * and tcp_win.c (Winsock: starting WSARecv, WSASend and AcceptEx, and what
 * each completion means for the stream's buffers).
 *
 * IOCP is a completion queue: the kernel does not say "you may read now", it
 * says "the read you started has finished, into the buffer you lent me".
 * There is no notification to arm, and nothing to make edge-triggered: each
 * operation completes once, and that completion is the edge the readiness
 * backends get from their kernels - a receive's "bytes came", a send's "the
 * kernel has taken them, there is room", an AcceptEx's "a connection came",
 * a ConnectEx's outcome. poll.c remembers and acts on them exactly as it
 * does on epoll's and kqueue's edges.
 *
 * The rule everything here follows: from the moment WSARecv, WSASend or
 * AcceptEx is called until its completion packet is dequeued, the
 * OVERLAPPED and the memory the WSABUFs point at belong to the kernel, which
 * may write to them at any time (the WSABUF array itself is read before the
 * call returns). So they live in heap objects (struct sys_stream and the
 * stream's buffers), never on a stack frame, and they are freed only when
 * nothing is in flight - if the stream is closed earlier, the queue keeps
 * them ("retired") until the cancelled completions come back.
 *
 * Reads: the socket is ALSO in non-blocking mode (FIONBIO), so that a fill
 * can take bytes with plain recv() until WSAEWOULDBLOCK, as on POSIX.
 * Microsoft: "Because overlapped I/O operations do not block, the blocking
 * mode of a socket is irrelevant for these operations" - an overlapped
 * WSARecv still returns WSA_IO_PENDING on such a socket. The pending
 * overlapped receive only says that data has come: a 0-byte WSARecv (no
 * buffer lent at all), or a WSARecv into the read buffer (the first bytes
 * land without a copy, and a buffer is pinned while the stream waits).
 *
 * Connects: ConnectEx, on a new socket per address (bound first, tied to
 * the port), is one more overlapped operation; WRITABLE means it is over.
 *
 * The seam between the two files, and nothing else:
 *   poll_iocp.c -> tcp_win.c: iocp_completed, iocp_start_receive,
 *                             iocp_post_accepts
 *   tcp_win.c -> poll_iocp.c: iocp_started (and sys_stream_attach, sys.h)
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

enum iocp_op_kind { IOCP_RECEIVE, IOCP_SEND, IOCP_ACCEPT, IOCP_CONNECT };

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
    evq_tcp *tcp;          /* NULL once closed with I/O in flight ("retired"): the port's lock's */
    struct sys_poll *poll; /* the port this socket is tied to */
    size_t in_flight;      /* this stream's operations the kernel owns now */
    struct iocp_op receive, send, connect;
    int connect_status; /* the last ConnectEx's outcome, once it has come back */
    /* The WSABUF arrays: the provider reads them before WSARecv/WSASend
     * returns (Microsoft's Remarks on both); here they cost nothing. */
    WSABUF receive_buffer;
    WSABUF send_buffers[SYS_SEND_SEGMENTS];
    struct sys_stream *retired_next; /* the queue's retired list */
    /* A stream closed with I/O in flight keeps what the kernel may still
     * touch, taken out of the evq_tcp that is freed: the read buffer a
     * receive writes into, the write chunks a send reads from. */
    struct read_buffer kept_read;
    struct write_queue kept_write;
    /* Listeners only. */
    LPFN_ACCEPTEX accept_ex; /* from WSAIoctl: ws2_32 does not export it */
    int family;
    int accept_error; /* an AcceptEx could not be posted: said by the next accept */
    uint64_t accepts_completed;
    struct iocp_accept *accepts; /* IOCP_ACCEPTS_POSTED of them; NULL on a connection */
};
/* ANCHOR_END: stream */

/* poll_iocp.c: count an operation the kernel has accepted (it will come
 * back through the port, even if it failed or was cancelled). Under the
 * stream's lock: the completion is taken under it too (sys_event_take),
 * so another waiter that dequeues it at once waits for this count. */
void iocp_started(struct iocp_op *op);

/* tcp_win.c */
/* A dequeued completion: update the buffers from what the kernel did. */
void iocp_completed(struct sys_stream *stream, struct iocp_op *op, DWORD bytes);
/* Post the receive that waits for data (0 bytes, or into the read buffer),
 * unless one is in flight or the stream has something unseen already. A
 * failure to start ends the read side (it is reported after the buffered
 * bytes). */
void iocp_start_receive(struct sys_stream *stream);
/* Post AcceptEx into every empty slot of a listener (after a failure). */
void iocp_post_accepts(struct sys_stream *listener);

static inline bool iocp_busy(const struct sys_stream *stream)
{
    return stream->in_flight > 0;
}

#endif

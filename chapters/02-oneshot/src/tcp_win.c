/* tcp_win.c - streams on Winsock with overlapped I/O, for the IOCP backend:
 * connect, then starting WSARecv and WSASend into the stream's own
 * buffers, what a completion means for those buffers, and reads and writes
 * that only copy in and out of them.
 */
#include "iocp.h"

#include <ws2tcpip.h>

#include <stdlib.h>
#include <string.h>

/* ANCHOR: connect_one */
int sys_socket_connect(const struct addrinfo *address, evq_socket *out)
{
    /* WSA_FLAG_OVERLAPPED: every operation after the connect is overlapped.
     * No FIONBIO afterwards: an overlapped operation never blocks, and
     * nothing here calls recv() or send() without an OVERLAPPED. */
    SOCKET s = WSASocketW(address->ai_family, SOCK_STREAM, IPPROTO_TCP, NULL, 0,
                          WSA_FLAG_OVERLAPPED | WSA_FLAG_NO_HANDLE_INHERIT);
    if (s == INVALID_SOCKET)
        return evq_socket_last_error();
    if (connect(s, address->ai_addr, (int)address->ai_addrlen) != 0) { /* blocks: chapter 4 */
        int rc = evq_socket_last_error();
        closesocket(s);
        return rc;
    }
    *out = s;
    return 0;
}
/* ANCHOR_END: connect_one */

/* ANCHOR: start_read */
void iocp_start_read(struct sys_stream *stream)
{
    if (stream->read_op.in_flight || stream->read_pos < stream->read_len ||
        stream->read_status != 0)
        return; /* already reading, data still unread, or the read side has ended */
    struct iocp_op *op = &stream->read_op;
    stream->read_pos = stream->read_len = 0;
    /* The OVERLAPPED, the flags and the buffer are in the stream, on the
     * heap: the kernel writes to them after this function has returned.
     * (minimio, cfsamson's teaching queue, put the OVERLAPPED in a stack
     * frame that was gone by the time the receive completed.) The WSABUF
     * is read before WSARecv returns; it sits beside them for convenience. */
    memset(&op->overlapped, 0, sizeof op->overlapped);
    op->buffer.buf = stream->read_buf;
    op->buffer.len = IOCP_BUFFER_SIZE;
    op->flags = 0;
    if (WSARecv(stream->tcp->socket, &op->buffer, 1, NULL, &op->flags, &op->overlapped, NULL) !=
        0) {
        int error = WSAGetLastError();
        if (error != WSA_IO_PENDING) { /* not started: no completion will come */
            stream->read_status = evq_error_from_wsa(error);
            return;
        }
    }
    /* Started (at once or pending, the packet comes through the port).
     * Marking it after the call is no race: only a wait, on this same
     * thread, can dequeue the packet. */
    iocp_started(op);
}
/* ANCHOR_END: start_read */

static int start_write(struct sys_stream *stream)
{
    struct iocp_op *op = &stream->write_op;
    memset(&op->overlapped, 0, sizeof op->overlapped);
    op->buffer.buf = stream->write_buf + stream->write_done;
    op->buffer.len = (ULONG)(stream->write_len - stream->write_done);
    if (WSASend(stream->tcp->socket, &op->buffer, 1, NULL, 0, &op->overlapped, NULL) != 0) {
        int error = WSAGetLastError();
        if (error != WSA_IO_PENDING)
            return evq_error_from_wsa(error); /* WSAECONNRESET... never a signal here */
    }
    iocp_started(op);
    return 0;
}

/* ANCHOR: completed */
void iocp_completed(struct sys_stream *stream, struct iocp_op *op, DWORD bytes)
{
    /* The packet brought the byte count; the outcome is in the OVERLAPPED. */
    DWORD unused_bytes, unused_flags;
    int status = 0;
    if (!WSAGetOverlappedResult(stream->tcp->socket, &op->overlapped, &unused_bytes, FALSE,
                                &unused_flags))
        status = evq_error_from_wsa(WSAGetLastError());
    if (op == &stream->read_op) {
        if (status != 0)
            stream->read_status = status; /* a reset, or a cancellation */
        else if (bytes == 0)
            stream->read_status = EVQ_EOF; /* a zero-byte receive is the peer's FIN */
        else
            stream->read_len = bytes; /* exactly what arrived, not the buffer's size */
        return;
    }
    stream->write_done += bytes;
    if (status != 0)
        stream->write_status = status;
    else if (stream->write_done < stream->write_len)
        stream->write_status = start_write(stream); /* a short send: send the rest */
}
/* ANCHOR_END: completed */

/* ANCHOR: read */
int sys_tcp_read(evq_tcp *tcp, void *buf, size_t len, size_t *n)
{
    struct sys_stream *stream = tcp->sys;
    size_t unread = stream->read_len - stream->read_pos;
    if (unread > 0) {
        size_t count = len < unread ? len : unread;
        memcpy(buf, stream->read_buf + stream->read_pos, count);
        stream->read_pos += count; /* the next read goes on from here */
        *n = count;
        /* Emptied while READABLE is armed (read ahead of the event): the
         * kernel needs a buffer again, or no event could ever come. */
        if (stream->armed & EVQ_READABLE)
            iocp_start_read(stream);
        return 0;
    }
    if (stream->read_status != 0)
        return stream->read_status; /* EOF or an error, after the data before it */
    /* Nothing has arrived. A receive is in flight if READABLE is armed;
     * otherwise the next one starts when it is: the kernel is lent a
     * buffer only while someone wants to know. */
    return EVQ_EWOULDBLOCK;
}
/* ANCHOR_END: read */

/* ANCHOR: write */
int sys_tcp_write(evq_tcp *tcp, const void *buf, size_t len, size_t *n)
{
    struct sys_stream *stream = tcp->sys;
    if (stream->write_status != 0)
        return stream->write_status;
    if (stream->write_op.in_flight)
        return EVQ_EWOULDBLOCK; /* WRITABLE means exactly this: no write in flight */
    /* Copy: the caller's buffer is theirs again when we return, but the
     * kernel reads ours until the completion is dequeued. */
    size_t count = len < IOCP_BUFFER_SIZE ? len : IOCP_BUFFER_SIZE;
    memcpy(stream->write_buf, buf, count);
    stream->write_len = count;
    stream->write_done = 0;
    int rc = start_write(stream);
    if (rc != 0)
        return rc;
    *n = count;
    return 0;
}
/* ANCHOR_END: write */

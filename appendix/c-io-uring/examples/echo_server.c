/* echo_server.c - the echo server of uring_echo (see echo_server.h). */
#define _GNU_SOURCE
#include "echo_server.h"

#include "evq_net.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

enum { KIND_ACCEPT = 1, KIND_RECV, KIND_SEND, KIND_TIMEOUT };

static uint64_t tag_of(const echo_server *server, unsigned kind, const struct echo_connection *c)
{
    uint32_t slot = (uint32_t)(c - server->connections);
    return evq_uring_tag(kind, c->generation, slot);
}

static int arm_accept(echo_server *server)
{
    struct io_uring_sqe *sqe;
    int code = evq_uring_next_sqe(&server->ring, &sqe);
    if (code == 0)
        evq_uring_prep_accept(sqe, server->listener, NULL, NULL, SOCK_CLOEXEC,
                              server->multishot_accept, evq_uring_tag(KIND_ACCEPT, 0, 0));
    return code;
}

/* Whether c waits for a buffer to come back before it can read again. */
static void set_needs_buffer(echo_server *server, struct echo_connection *c, bool needs)
{
    if (c->needs_buffer != needs)
        server->waiting_for_buffers += needs ? 1u : (unsigned)-1;
    c->needs_buffer = needs;
}

/* ANCHOR: echo_arm_receive */
static int arm_receive(echo_server *server, struct echo_connection *c)
{
    struct io_uring_sqe *sqe;
    int code = evq_uring_next_sqe(&server->ring, &sqe);
    if (code != 0)
        return code;
    /* No buffer named: the kernel takes one from ECHO_GROUP when data comes. */
    evq_uring_prep_recv_multishot(sqe, c->fd, ECHO_GROUP, tag_of(server, KIND_RECV, c));
    c->receiving = true;
    set_needs_buffer(server, c, false);
    return 0;
}
/* ANCHOR_END: echo_arm_receive */

static int send_front(echo_server *server, struct echo_connection *c)
{
    struct echo_chunk *chunk = &c->queue[c->head];
    struct io_uring_sqe *sqe;
    int code = evq_uring_next_sqe(&server->ring, &sqe);
    if (code != 0)
        return code;
    unsigned char *data = server->pbuf.memory + (size_t)chunk->id * server->pbuf.size;
    evq_uring_prep_send(sqe, c->fd, data + chunk->sent, chunk->len - chunk->sent, MSG_NOSIGNAL,
                        tag_of(server, KIND_SEND, c));
    c->sending = true;
    return 0;
}

/* A buffer back in the ring: connections that ran dry may read again. */
static void recycle(echo_server *server, uint16_t id)
{
    evq_uring_pbuf_recycle(&server->pbuf, id);
    for (unsigned i = 0; i < ECHO_MAX_CONNECTIONS && server->waiting_for_buffers > 0; i++) {
        struct echo_connection *c = &server->connections[i];
        if (c->fd >= 0 && c->needs_buffer && !c->closing && arm_receive(server, c) == 0)
            server->rearmed++;
    }
}

/* Close once the kernel holds nothing of this connection's: no RECV armed,
 * no SEND in flight. A new generation makes late completions for the old
 * occupant of the slot recognisable. */
static void close_when_idle(echo_server *server, struct echo_connection *c)
{
    if (c->receiving || c->sending)
        return;
    while (c->count > 0) { /* echoes that can no longer be sent */
        evq_uring_pbuf_recycle(&server->pbuf, c->queue[c->head].id);
        c->head = (c->head + 1) % ECHO_BUFFERS;
        c->count--;
    }
    close(c->fd);
    c->fd = -1;
    c->generation = (c->generation + 1) & EVQ_URING_GENERATION_MASK;
}

static void start_closing(echo_server *server, struct echo_connection *c)
{
    c->closing = true;
    set_needs_buffer(server, c, false);
    if (c->receiving) { /* an error on the SEND side: stop the RECV too */
        struct io_uring_sqe *sqe;
        if (evq_uring_next_sqe(&server->ring, &sqe) == 0)
            evq_uring_prep_cancel(sqe, tag_of(server, KIND_RECV, c), 0, 0);
    }
    close_when_idle(server, c);
}

static void on_accept(echo_server *server, const struct io_uring_cqe *cqe)
{
    if (!(cqe->flags & IORING_CQE_F_MORE)) {
        if (cqe->res == -EINVAL && server->multishot_accept)
            server->multishot_accept = false; /* before 5.19: one ACCEPT per connection */
        if (!atomic_load(&server->stop))
            arm_accept(server);
    }
    if (cqe->res < 0)
        return; /* -EMFILE, -ECONNABORTED...: the next one may work */
    struct echo_connection *c = NULL;
    for (unsigned i = 0; i < ECHO_MAX_CONNECTIONS && !c; i++)
        c = server->connections[i].fd < 0 ? &server->connections[i] : NULL;
    if (!c) {
        close(cqe->res); /* full: refuse */
        return;
    }
    server->accepted++;
    c->fd = cqe->res;
    c->head = c->count = 0;
    c->closing = c->sending = false;
    if (arm_receive(server, c) != 0)
        start_closing(server, c);
}

/* ANCHOR: echo_on_receive */
static void on_receive(echo_server *server, struct echo_connection *c,
                       const struct io_uring_cqe *cqe)
{
    uint16_t id;
    unsigned char *data;
    uint32_t len;
    if (evq_uring_pbuf_take(&server->pbuf, cqe, &id, &data, &len) == 0 && c->closing) {
        evq_uring_pbuf_recycle(&server->pbuf, id); /* nobody to echo it to */
    } else if (cqe->flags & IORING_CQE_F_BUFFER) {
        /* The buffer is ours now: queue it to be sent back as it is. */
        c->queue[(c->head + c->count) % ECHO_BUFFERS] = (struct echo_chunk){id, len, 0};
        c->count++;
        if (!c->sending && send_front(server, c) != 0)
            start_closing(server, c);
    }
    if (cqe->flags & IORING_CQE_F_MORE)
        return; /* still armed */
    c->receiving = false;
    if (cqe->res == -ENOBUFS && !c->closing)
        set_needs_buffer(server, c, true); /* every buffer is out: armed by recycle() */
    else
        start_closing(server, c); /* 0: end of stream; < 0: an error or a cancel */
}
/* ANCHOR_END: echo_on_receive */

static void on_send(echo_server *server, struct echo_connection *c, const struct io_uring_cqe *cqe)
{
    c->sending = false;
    if (cqe->res < 0) {
        start_closing(server, c);
        return;
    }
    struct echo_chunk *chunk = &c->queue[c->head];
    chunk->sent += (uint32_t)cqe->res; /* a short send: the rest goes next */
    server->bytes_echoed += (uint32_t)cqe->res;
    if (chunk->sent == chunk->len) {
        uint16_t id = chunk->id;
        c->head = (c->head + 1) % ECHO_BUFFERS;
        c->count--;
        recycle(server, id); /* after the SEND completed, not before */
    }
    if (c->count > 0 && send_front(server, c) != 0)
        start_closing(server, c);
    else if (c->closing)
        close_when_idle(server, c);
}

static void dispatch(echo_server *server, const struct io_uring_cqe *cqe)
{
    server->completions++;
    if (evq_uring_waker_owns(&server->waker, cqe)) {
        if (!atomic_load(&server->stop))
            evq_uring_waker_arm(&server->ring, &server->waker);
        return;
    }
    unsigned kind = evq_uring_tag_kind(cqe->user_data);
    if (kind == KIND_ACCEPT) {
        on_accept(server, cqe);
        return;
    }
    if (kind == KIND_TIMEOUT) {
        atomic_store(&server->stop, true);
        return;
    }
    if (kind != KIND_RECV && kind != KIND_SEND)
        return; /* a cancel's own completion */
    struct echo_connection *c = &server->connections[evq_uring_tag_slot(cqe->user_data)];
    if (c->fd < 0 || c->generation != evq_uring_tag_generation(cqe->user_data)) {
        uint16_t id; /* a late completion for a closed connection */
        unsigned char *data;
        uint32_t len;
        if (evq_uring_pbuf_take(&server->pbuf, cqe, &id, &data, &len) == 0)
            evq_uring_pbuf_recycle(&server->pbuf, id);
        return;
    }
    if (kind == KIND_RECV)
        on_receive(server, c, cqe);
    else
        on_send(server, c, cqe);
}

int echo_server_open(echo_server *server, uint16_t port, unsigned seconds)
{
    memset(server, 0, sizeof *server);
    server->listener = -1;
    server->waker.fd = -1;
    for (unsigned i = 0; i < ECHO_MAX_CONNECTIONS; i++)
        server->connections[i].fd = -1;
    evq_uring_options options = {256, 4096, EVQ_URING_WANT_DEFER_TASKRUN};
    int code = evq_uring_open(&server->ring, &options);
    if (code != 0)
        return code;
    static const uint8_t ops[] = {IORING_OP_ACCEPT, IORING_OP_RECV,    IORING_OP_SEND,
                                  IORING_OP_READ,   IORING_OP_TIMEOUT, IORING_OP_ASYNC_CANCEL};
    if ((code = evq_uring_require_ops(&server->ring, ops, sizeof ops)) != 0)
        return code;
    code = evq_uring_pbuf_open(&server->ring, &server->pbuf, ECHO_GROUP, ECHO_BUFFERS,
                               ECHO_BUFFER_SIZE);
    if (code == EVQ_ENOTSUP)
        snprintf(server->ring.reason, sizeof server->ring.reason,
                 "this kernel has no provided-buffer rings (5.19)");
    if (code != 0)
        return code;
    if ((code = evq_uring_waker_open(&server->waker)) != 0)
        return code;
    evq_socket listener;
    if ((code = evq_net_listen_loopback(port, 128, &listener, &server->port)) != 0)
        return code;
    server->listener = listener;
    server->multishot_accept = true;
    if ((code = arm_accept(server)) != 0 ||
        (code = evq_uring_waker_arm(&server->ring, &server->waker)) != 0)
        return code;
    if (seconds > 0) {
        struct io_uring_sqe *sqe;
        if ((code = evq_uring_next_sqe(&server->ring, &sqe)) != 0)
            return code;
        server->deadline.tv_sec = seconds;
        evq_uring_prep_timeout(sqe, &server->deadline, 0, 0, evq_uring_tag(KIND_TIMEOUT, 0, 0));
    }
    return evq_uring_submit(&server->ring, NULL);
}

void echo_server_stop(echo_server *server)
{
    atomic_store(&server->stop, true);
    evq_uring_waker_wake(&server->waker); /* write(2): from any thread, or a signal handler */
}

/* ANCHOR: echo_loop */
int echo_server_run(echo_server *server)
{
    while (!atomic_load(&server->stop)) {
        /* One system call: submit what the last turn queued, wait for one. */
        int code = evq_uring_submit_and_wait(&server->ring, 1, -1);
        if (code != 0 && code != EVQ_EINTR)
            return code;
        struct io_uring_cqe *cqe;
        while (evq_uring_peek(&server->ring, &cqe) == 0) {
            dispatch(server, cqe);
            evq_uring_advance(&server->ring, 1);
        }
    }
    return 0;
}
/* ANCHOR_END: echo_loop */

void echo_server_close(echo_server *server)
{
    /* Cancel and reap everything first: only then may the buffers go. */
    evq_uring_close(&server->ring);
    evq_uring_pbuf_close(&server->ring, &server->pbuf);
    for (unsigned i = 0; i < ECHO_MAX_CONNECTIONS; i++) {
        if (server->connections[i].fd >= 0)
            close(server->connections[i].fd);
    }
    if (server->listener >= 0)
        close(server->listener);
}

void echo_server_free(echo_server *server)
{
    evq_uring_waker_close(&server->waker); /* its read was reaped by echo_server_close */
}

/* stream.c - the portable stream: making one (connect), reading, writing
 * and closing it. The backend lends the calls that differ (sys.h: one
 * connect per address, one read, one write); the rules live here once.
 */
#include "sys.h"
#include "resolve.h"

#include <stdlib.h>

/* ---- making streams ---- */

/* A stream that is not yet on any queue. */
static evq_tcp *stream_new(void)
{
    evq_tcp *tcp = calloc(1, sizeof *tcp);
    if (!tcp)
        return NULL;
    tcp->socket = EVQ_INVALID_SOCKET;
    return tcp;
}

/* `socket` becomes `tcp`, a stream of `poll`. On failure both are freed. */
static int stream_open(evq_poll *poll, evq_tcp *tcp, evq_socket socket, evq_tcp **out)
{
    tcp->socket = socket;
    int rc = poll_add_stream(poll, tcp);
    if (rc != 0) {
        evq_socket_close(socket);
        free(tcp);
        return rc;
    }
    *out = tcp;
    return 0;
}

/* ANCHOR: connect */
/* A stream of `poll` on a socket connected to the first address of
 * host:port that takes the connection: each is tried in turn, as
 * getaddrinfo() lists them. */
static int open_stream(evq_poll *poll, const char *host, uint16_t port, evq_tcp **out)
{
    if (poll_is_closed(poll))
        return EVQ_ECLOSED;
    evq_tcp *tcp = stream_new();
    if (!tcp)
        return EVQ_ENOMEM;
    struct addrinfo *list = NULL;
    evq_socket socket = EVQ_INVALID_SOCKET;
    int rc = resolve(host, port, false, &list); /* blocks: chapter 4 fixes that */
    for (const struct addrinfo *address = list; address; address = resolve_next(address)) {
        rc = sys_socket_connect(address, &socket); /* blocks too: chapter 4 */
        if (rc == 0)
            break;
    }
    resolve_free(list);
    if (rc != 0) {
        free(tcp);
        return rc;
    }
    return stream_open(poll, tcp, socket, out);
}

int evq_tcp_connect(evq_poll *poll, const char *host, uint16_t port, evq_tcp **out)
{
    if (out)
        *out = NULL;
    if (!poll || !host || !out || port == 0)
        return EVQ_EINVAL;
    return open_stream(poll, host, port, out);
}
/* ANCHOR_END: connect */

/* ---- reading and writing ---- */

int evq_tcp_read(evq_tcp *tcp, void *buf, size_t len, size_t *n)
{
    if (n)
        *n = 0;
    /* len 0 is refused: a read of nothing could not tell "no data" from EOF. */
    if (!tcp || !buf || !n || len == 0)
        return EVQ_EINVAL;
    if (!tcp->poll)
        return EVQ_ECLOSED;
    if (tcp->read_status != 0)
        return tcp->read_status;
    int rc = sys_tcp_read(tcp, buf, len, n);
    if (rc == EVQ_EOF && tcp->event_error != 0)
        rc = tcp->event_error; /* the reset an event said, where recv() says EOF */
    if (rc != 0 && rc != EVQ_EWOULDBLOCK)
        tcp->read_status = rc; /* EOF and errors are final: say them every time */
    return rc;
}

int evq_tcp_write(evq_tcp *tcp, const void *buf, size_t len, size_t *n)
{
    if (n)
        *n = 0;
    if (!tcp || (!buf && len > 0) || !n)
        return EVQ_EINVAL;
    if (!tcp->poll)
        return EVQ_ECLOSED;
    if (len == 0)
        return 0;
    return sys_tcp_write(tcp, buf, len, n);
}

void evq_tcp_close(evq_tcp *tcp)
{
    if (!tcp)
        return;
    poll_close_stream(tcp); /* out of the kernel, then the socket is closed */
    free(tcp);
}

/* echo_server.h - the echo server of uring_echo, also run by uring_bench.
 *
 * One thread, one ring (SINGLE_ISSUER | DEFER_TASKRUN where the kernel has
 * them): a multishot ACCEPT, a multishot RECV per connection on one shared
 * provided-buffer ring, and a SEND per received buffer, which goes back to
 * the ring once the SEND has completed. Stopped from any thread (or a
 * signal handler) with echo_server_stop.
 */
#ifndef EVQ_ECHO_SERVER_H
#define EVQ_ECHO_SERVER_H

#include "evq_uring.h"

#include <stdatomic.h>

enum { ECHO_GROUP = 0, ECHO_BUFFERS = 64, ECHO_BUFFER_SIZE = 4096, ECHO_MAX_CONNECTIONS = 1024 };

/* A chunk received and waiting to be echoed: a buffer of the ring. */
struct echo_chunk {
    uint16_t id;
    uint32_t len, sent;
};

struct echo_connection {
    int fd; /* -1: the slot is free */
    uint32_t generation;
    bool receiving;    /* the multishot RECV is armed */
    bool sending;      /* a SEND is in flight: one at a time keeps the order */
    bool needs_buffer; /* the RECV ended with -ENOBUFS: armed again on a recycle */
    bool closing;      /* end of stream or an error: closed once nothing is in flight */
    struct echo_chunk queue[ECHO_BUFFERS];
    unsigned head, count;
};

typedef struct echo_server {
    evq_uring ring;
    evq_uring_pbuf pbuf;
    evq_uring_waker waker;
    int listener;
    uint16_t port;
    bool multishot_accept;
    atomic_bool stop;
    struct __kernel_timespec deadline;
    unsigned waiting_for_buffers;
    struct echo_connection connections[ECHO_MAX_CONNECTIONS];
    uint64_t accepted, bytes_echoed, completions;
    uint64_t rearmed; /* receives armed again after the buffer ring ran dry */
} echo_server;

/* Listen on 127.0.0.1:port (0: any free port, then in server->port); stop
 * by itself after `seconds` (0: never). On failure server->ring.reason says
 * why; call echo_server_close anyway. The calling thread is the ring's
 * owner: run and close it on this thread. */
int echo_server_open(echo_server *server, uint16_t port, unsigned seconds);
/* Serve until echo_server_stop or the deadline. */
int echo_server_run(echo_server *server);
/* Any thread, or a signal handler, until echo_server_free. */
void echo_server_stop(echo_server *server);
/* On the owning thread: cancel and reap everything, close the ring, the
 * buffers, the sockets. The counters stay readable. */
void echo_server_close(echo_server *server);
/* Close the waker, once no thread and no signal handler can call
 * echo_server_stop any more (after the join). A waker closed while another
 * thread may still write to it is a write to a closed descriptor, or to
 * whatever file reuses its number. */
void echo_server_free(echo_server *server);

#endif

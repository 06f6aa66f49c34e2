/* stream.h - a stream as the two portable files share it: struct evq_tcp,
 * and the few calls poll.c (the queue) and stream.c (the stream) make to
 * each other. No operating system in here: what a backend keeps per stream
 * is its own struct sys_stream, behind the `sys` pointer.
 */
#ifndef EVQ_STREAM_H
#define EVQ_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "evq.h"
#include "evq_net.h"

struct sys_stream; /* what the backend keeps per stream: each poll_<os>.c defines it */

struct evq_tcp {
    evq_socket socket;
    evq_poll *poll;         /* the queue it was made on; NULL once that queue is closed */
    evq_tcp *prev, *next;   /* in that queue's list of streams */
    struct sys_stream *sys; /* the backend's own; the portable files never look inside */

    /* The caller's side (poll.c). */
    bool registered;
    evq_token token;
    unsigned interests; /* as last registered: what sys_arm armed */

    int read_status; /* 0, or the EVQ_EOF or error every later read returns */
    /* The connection's error as an event carried it (kqueue's EV_EOF holds
     * it in fflags): a read that meets EOF reports it instead, for
     * providers that cleared SO_ERROR while reading it. */
    int event_error;
};

/* ---- poll.c, for stream.c ---- */
bool poll_is_closed(evq_poll *poll);
/* A new stream's socket joins the queue (sys_stream_open, then the queue's
 * list of streams); on failure the socket is the caller's to close. */
int poll_add_stream(evq_poll *poll, evq_tcp *tcp);
/* The stream is closing: out of the kernel and of the queue's list, then
 * sys_stream_close (its socket; IOCP keeps what the kernel still owns).
 * Also for a stream whose queue is already closed. */
void poll_close_stream(evq_tcp *tcp);

#endif

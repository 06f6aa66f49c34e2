/* stream.h - a stream as the two portable files share it: struct evq_tcp,
 * and the few calls poll.c (the queue) and stream.c (the stream) make to
 * each other. No operating system in here: what a backend keeps per stream
 * is its own struct sys_stream, behind the `sys` pointer.
 */
#ifndef EVQ_STREAM_H
#define EVQ_STREAM_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buffer.h"
#include "evq.h"
#include "evq_net.h"
#include "evq_testing.h"
#include "evq_thread.h"

/* The default limits (evq_tcp_get_default_limits; evq.h explains each). */
#define STREAM_READ_INITIAL (4 * 1024)
#define STREAM_READ_MAX     (256 * 1024)
#define STREAM_WRITE_HIGH   (1024 * 1024)
#define STREAM_WRITE_LOW    (256 * 1024)
#define STREAM_TURN_BUDGET  (64 * 1024)
/* What a data call in progress weighs in a stream's references (refs):
 * more than all the others can ever add up to. */
#define STREAM_DATA_CALL (1u << 24)
/* Connections one turn of a listener accepts at most: past it, accept says
 * EVQ_EWOULDBLOCK and the listener stays ready for its next turn, so a
 * flood of connections does not keep the loop from its other streams. */
#define STREAM_ACCEPTS_PER_TURN 64

struct sys_stream;       /* what the backend keeps per stream: each poll_<os>.c defines it */
struct sys_poll;         /* the backend's queue (sys.h) */
struct resolver;         /* the queue's lookups (resolver.h) */
struct resolver_request; /* one lookup on the resolver's pool */

/* ANCHOR: connect_phase */
/* Where a stream made by evq_tcp_connect is (connect.c). Every other
 * stream - accepted, listening - is CONNECT_DONE from the start. */
enum connect_phase {
    CONNECT_DONE,       /* connected: the buffered stream of chapter 3 */
    CONNECT_RESOLVING,  /* its name is on the resolver's pool: no socket yet */
    CONNECT_CONNECTING, /* a socket is connecting to one address: the kernel says when */
    CONNECT_FAILED,     /* the lookup, every address or the deadline failed: no socket */
};
/* ANCHOR_END: connect_phase */

/* ANCHOR: stream_state */
struct evq_tcp {
    evq_socket socket;
    evq_poll *poll;         /* the queue it was made on; NULL once that queue is closed */
    evq_tcp *prev, *next;   /* in that queue's list of streams */
    bool listener;          /* made by evq_tcp_listen: accepts, never reads or writes */
    struct sys_stream *sys; /* the backend's own; the portable files never look inside */
    /* Who may still touch the memory: the caller's handle (until
     * evq_tcp_close), each call in progress, each waiter holding it from
     * the key table or a queue structure - one each - and a data call in
     * progress (read, peek, consume, write, shutdown, accept), which
     * counts STREAM_DATA_CALL: a second one, from another thread, sees it
     * and is EVQ_EBUSY. The last to let go frees it (stream_release). */
    atomic_uint refs;
    /* Every field below is the stream's lock's: its owner's calls and a
     * waiter working on it for a kernel event never overlap (poll.c says
     * which lock comes first). */
    evq_mutex lock;

    /* What the kernel hands back with the socket's events: the stream's
     * slot in the queue's key table (key_table.h). A connect that moves on
     * to a new socket takes a new generation, so that an edge of the
     * abandoned socket, taken from the kernel before it was closed, is
     * dropped. */
    uint64_t key;

    /* The caller's side (poll.c). */
    bool registered;
    evq_token token;
    unsigned caller_armed; /* what the caller armed and has not yet been told about */
    /* The edges the queue remembers, because the kernel says each once. */
    bool read_drained;   /* the last fill ended empty, and no READABLE edge since */
    bool write_blocked;  /* the last send was short (the socket is full), and no WRITABLE edge since
                          */
    bool accept_drained; /* a listener: the last accept said EWOULDBLOCK, and no edge since */
    bool peer_closed;    /* the kernel said the peer sent its FIN: read on to the EOF */
    uint32_t kernel_end; /* EVQ_ERR | EVQ_HUP the kernel said: the connection has ended */
    /* The budget of one turn (stream.c): bytes received and sent, and
     * connections accepted, since the queue last served the stream. */
    size_t turn_received, turn_sent, turn_accepted;
    /* A listener that met the descriptor limit: not reported READABLE until
     * then (ns, the queue's clock); 0 when it is not resting. */
    uint64_t accept_resume_at;
    evq_tcp *paused_next; /* the queue's lock's */

    /* The queue's lock's: the ready list, the list of streams, and the end. */
    bool on_ready_list;
    evq_tcp *ready_prev, *ready_next;
    bool listed; /* in the queue's list of streams (evq_poll_close takes it off) */
    bool closed; /* evq_tcp_close ran: waiters drop what they hold of it */
    /* ANCHOR_END: stream_state */

    /* Buffers and limits (stream.c, buffer.h). */
    evq_tcp_limits limits;
    struct read_buffer read_buf;
    int read_status; /* 0, or the EVQ_EOF or error every later read returns */
    /* The connection's error as an event carried it (kqueue's EV_EOF holds
     * it in fflags): a fill that meets EOF reports it instead, for
     * providers that cleared SO_ERROR while reading it. */
    int event_error;
    struct write_queue write_queue;
    int write_status;        /* 0, or the error every later write returns */
    bool write_error_told;   /* that error has been reported in an event (or by a write) */
    bool shutdown_requested; /* evq_tcp_shutdown: FIN once the queue is empty */
    bool shutdown_done;      /* FIN sent */

    /* Connecting (connect.c). */
    enum connect_phase connect_phase;
    struct resolver_request *lookup; /* RESOLVING on the pool: the handle to cancel it (the
                                        queue's lock's: the resolver is one thread's) */
    evq_address_list addresses;      /* the lookup's answer, tried in turn */
    size_t next_address;             /* the next one to try */

    /* The deadline (deadline.c keeps the heap under the queue's lock; poll.c
     * says when it passed). */
    uint64_t deadline;       /* an instant on the queue's clock */
    uint64_t deadline_order; /* equal instants pass in the order they were set */
    size_t deadline_slot;    /* its index in the queue's heap; DEADLINE_NONE: no deadline */
    uint64_t deadline_epoch; /* changes with every set or clear: a pass for an older one is void */
    bool timeout_pending;    /* it passed, and no event has said EVQ_TIMEOUT yet */

    /* Counters (evq_tcp_stats) and the test hook (evq_testing.h). */
    uint64_t receive_calls, send_calls, kernel_events;
    evq_io_hook io_hook;
    void *io_hook_context;
};

/* ---- poll.c, for stream.c and connect.c ---- */
bool poll_is_closed(evq_poll *poll);
/* Inside the queue without a stream's lock (making a stream): EVQ_ECLOSED,
 * or counted until poll_leave, and evq_poll_close waits. */
int poll_enter(evq_poll *poll);
void poll_leave(evq_poll *poll);
/* A new stream joins the queue (the caller has entered it): a key, the
 * queue's list of streams - EVQ_ECLOSED if the queue was shut down
 * meanwhile - and sys_stream_open (its socket, if any, into the kernel,
 * once). On failure the socket is the caller's to close. */
int poll_add_stream(evq_poll *poll, evq_tcp *tcp);
/* evq_tcp_close, under the stream's lock: out of the kernel, the socket
 * closed (sys_stream_close), out of the key table and the queue's
 * structures, the stream marked closed. Also for a stream whose queue is
 * already closed. */
void poll_close_stream(evq_tcp *tcp);
/* connect.c, under the stream's lock, before each new socket: a new
 * generation in the key table (key_table_rekey), so that the old socket's
 * events are dropped. */
void poll_rekey_stream(evq_tcp *tcp);
/* The stream's state changed (under its lock): if the queue has something
 * to do for it that no kernel edge will announce, it goes on the ready
 * list; if the caller waits to read, a completion backend starts watching. */
void poll_stream_changed(evq_tcp *tcp);
/* accept() met the descriptor limit: the listener rests a while. */
void poll_pause_accepting(evq_tcp *listener);
/* What connect.c needs of the queue: its backend, and its resolver, which
 * is one thread's: the queue's lock makes every caller that one thread. */
struct sys_poll *poll_sys(evq_poll *poll);
struct resolver *poll_lock_resolver(evq_poll *poll);
void poll_unlock_resolver(evq_poll *poll);

/* ---- connect.c, for stream.c and poll.c ---- */
/* Look host:port up and start connecting: at once for a numeric host or a
 * cached name, else when the pool's answer is collected. 0, or why no
 * lookup could start (EVQ_EFULL, EVQ_EINVAL, EVQ_ENOMEM, EVQ_ECLOSED). */
int connect_begin(evq_tcp *tcp, const char *host, uint16_t port);
/* The pool's answer for this stream (poll.c collected it): the addresses
 * become the stream's. */
void connect_resolved(evq_tcp *tcp, int status, evq_address_list *addresses);
/* The kernel reported the connecting socket: connected, or the next address. */
void connect_kernel_event(evq_tcp *tcp);
/* Stop where it is (the deadline passed): the lookup cancelled, the socket
 * closed; the stream fails with `error`. */
void connect_give_up(evq_tcp *tcp, int error);

/* ---- stream.c, for poll.c (and a completion backend) ---- */
/* Everything below is called with the stream's lock held. */
/* What the stream's own buffer makes it ready for, without the kernel: 0,
 * or EVQ_READABLE for bytes the caller has not seen or a buffer full at
 * read_max, and for the end (with EVQ_HUP, and EVQ_ERR for an error). */
uint32_t stream_read_readiness(const evq_tcp *tcp);
/* Bytes queued, or a FIN waiting for the queue to drain. */
bool stream_output_pending(const evq_tcp *tcp);
/* The queue's turn at the socket: a fill, until the socket is empty, the
 * buffer full at read_max or the turn's budget spent. The end it meets is
 * kept for the reader (read_status). */
void stream_fill(evq_tcp *tcp);
/* Hand queued bytes to the kernel, then the FIN once they are all gone,
 * within the turn's budget. A failure ends the writing side
 * (stream_write_failed). */
int stream_flush(evq_tcp *tcp);
/* The writing side failed: every later write returns `error`, the queued
 * bytes can never be delivered and are dropped, and the next event tells
 * the caller (EVQ_ERR). */
void stream_write_failed(evq_tcp *tcp, int error);
/* A completion backend's receive has finished (IOCP): `status` is 0 (the
 * bytes it brought are committed to read_buf), EVQ_EOF or the connection's
 * error. `emptied`: it got fewer bytes than it was lent, so the socket was
 * empty then (the short-read rule of fill_from_socket); otherwise it may
 * hold more, and the queue's turn reads it. */
void stream_receive_completed(evq_tcp *tcp, int status, bool emptied);
/* References (tcp->refs): a waiter that found the stream in the key table
 * or a queue structure holds it; every call holds it while it runs. The
 * last release frees the stream - its lock and its memory. */
void stream_hold(evq_tcp *tcp);
void stream_release(evq_tcp *tcp);

#endif

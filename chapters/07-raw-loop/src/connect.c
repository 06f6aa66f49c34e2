/* connect.c - a stream made by evq_tcp_connect, from a name to a connected
 * socket, without ever blocking the loop:
 *
 *   RESOLVING   the name is on the resolver's pool; no socket yet
 *   CONNECTING  a non-blocking connect to one address; the socket is in
 *               the kernel, whose WRITABLE edge says the connect is over
 *   DONE        connected: from here on, the stream of chapter 3
 *   FAILED      the lookup failed, every address failed, or the deadline
 *               passed; no socket, and reads and writes return why
 *
 * Every address of the answer is tried in turn, each with a new socket: a
 * socket whose connect failed cannot be connected again (POSIX leaves its
 * state unspecified, and Windows wants a fresh one for ConnectEx). The
 * portable steps are here; what is different per system - the socket, the
 * connect call, how its outcome is read - is behind sys.h.
 */
#include "sys.h"

#include "resolver.h"

/* ---- the way out ---- */

/* The socket is given up: out of the kernel, connect cancelled, closed. */
static void abandon(evq_tcp *tcp)
{
    sys_connect_abandon(poll_sys(tcp->poll), tcp);
    tcp->event_error = 0; /* it was that socket's */
    tcp->kernel_end = 0;
    tcp->peer_closed = false;
}

/* ANCHOR: fail */
/* No connection will come of it. Both sides end with `error`, the bytes
 * queued for a connection that never was are dropped, and the stream is
 * ready (EVQ_ERR | EVQ_HUP) for whatever it is armed for, every time: it
 * holds no socket the kernel could report, so poll.c's ready list does. */
static void fail(evq_tcp *tcp, int error)
{
    if (tcp->socket != EVQ_INVALID_SOCKET)
        abandon(tcp);
    tcp->connect_phase = CONNECT_FAILED;
    tcp->read_status = error;
    tcp->write_status = error;
    tcp->write_error_told = true; /* the failure's own events tell it */
    write_queue_clear(&tcp->write_queue);
    evq_address_list_free(&tcp->addresses);
    poll_stream_changed(tcp); /* onto the ready list, if armed */
}
/* ANCHOR_END: fail */

/* ---- addresses, one after the other ---- */

/* ANCHOR: next_address */
/* Start on the next address of the answer: a new socket, a connect that
 * does not wait, the socket in the kernel for its outcome. An address that
 * fails at once (refused on the spot, no route) passes to the next. With
 * none left, the stream fails with the last error: the one that says most
 * about why the last hope did not work. */
static void try_next_address(evq_tcp *tcp, int last_error)
{
    while (tcp->next_address < tcp->addresses.count) {
        const evq_address *address = &tcp->addresses.items[tcp->next_address++];
        /* A new socket: edges of the last one are stale (a new key), and
         * nothing is known of this one yet (the backend may say otherwise). */
        poll_rekey_stream(tcp);
        tcp->read_drained = false;
        tcp->write_blocked = false;
        int rc = sys_connect_start(poll_sys(tcp->poll), tcp, address);
        if (rc == 0) {
            tcp->connect_phase = CONNECT_CONNECTING;
            return; /* the kernel's WRITABLE edge comes to connect_kernel_event */
        }
        last_error = rc;
    }
    fail(tcp, last_error);
}
/* ANCHOR_END: next_address */

int connect_begin(evq_tcp *tcp, const char *host, uint16_t port)
{
    resolver_result answer;
    int rc = resolver_submit(poll_lock_resolver(tcp->poll), host, port, tcp, &answer, &tcp->lookup);
    poll_unlock_resolver(tcp->poll);
    if (rc == EVQ_EINPROGRESS) {
        tcp->connect_phase = CONNECT_RESOLVING; /* poll.c collects the answer */
        return 0;
    }
    if (rc == 0)
        connect_resolved(tcp, answer.status, &answer.addresses); /* numeric, or cached */
    return rc;
}

/* The request is over and its handle dead: resolver_submit left it NULL
 * for an inline answer, and poll.c cleared it, under the queue's lock, as
 * it collected a pooled one. */
void connect_resolved(evq_tcp *tcp, int status, evq_address_list *addresses)
{
    tcp->addresses = *addresses;
    *addresses = (evq_address_list){0};
    tcp->next_address = 0;
    try_next_address(tcp, status != 0 ? status : EVQ_EAI_NONAME);
}

/* ANCHOR: kernel_event */
void connect_kernel_event(evq_tcp *tcp)
{
    int rc = sys_connect_result(tcp);
    if (rc == EVQ_EINPROGRESS)
        return; /* not this socket's outcome: its own edge is still to come */
    if (rc == 0) {
        tcp->connect_phase = CONNECT_DONE; /* a stream like any other from here */
        evq_address_list_free(&tcp->addresses);
        return;
    }
    abandon(tcp);
    try_next_address(tcp, rc);
}
/* ANCHOR_END: kernel_event */

void connect_give_up(evq_tcp *tcp, int error)
{
    poll_lock_resolver(tcp->poll);
    if (tcp->lookup) {
        /* Queued: freed now. Running: its worker drops the answer when
         * getaddrinfo returns. Either way nothing comes back for it. An
         * answer a waiter has just collected took the handle with it. */
        resolver_cancel(tcp->lookup);
        tcp->lookup = NULL;
    }
    poll_unlock_resolver(tcp->poll);
    fail(tcp, error);
}

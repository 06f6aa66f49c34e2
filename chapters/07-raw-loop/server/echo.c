/* echo.c - the echo protocol: every byte read is written back, in order.
 *
 * The bytes are never copied into a buffer of ours: evq_tcp_peek shows what
 * the stream has received, evq_tcp_write takes what its write queue has
 * room for, and evq_tcp_consume drops exactly that much from the read
 * buffer. What the queue did not take stays where it is, in the read
 * buffer, until WRITABLE says the queue has drained.
 *
 * Deadlines are lazy: a deadline is set once (idle when reading, send when
 * waiting for the queue to drain) and not moved on every read - that would
 * cost a call per read. When it passes, the connection's last progress
 * (active_at) says whether it really was silent that long; if not, the
 * deadline is set again for what is left.
 */
#include "server_internal.h"

bool echo_busy(const struct connection *c)
{
    return c->state != READING || evq_tcp_queued(c->stream) > 0;
}

int echo_start(struct worker *w, struct connection *c)
{
    c->state = READING;
    int rc = connection_deadline(w, c, (int)w->server->config.idle_timeout_ms);
    return rc != 0 ? rc : NEXT_READABLE;
}

/* Write back what has arrived, as much as the write queue takes. When it
 * takes less than offered, the queue is full (write_high): stop reading -
 * arm for WRITABLE only, which comes once it has drained to write_low - so
 * that a client that sends and does not read cannot make us hold more
 * than the queue and the read buffer. */
/* ANCHOR: echo */
static int echo_pump(struct worker *w, struct connection *c)
{
    for (;;) {
        const void *data;
        size_t length = 0;
        int rc = evq_tcp_peek(c->stream, &data, &length);
        if (rc == EVQ_EWOULDBLOCK) {
            c->state = READING;
            return NEXT_READABLE;
        }
        if (rc == EVQ_EOF) /* the client is done: FIN once its echo has gone */
            return connection_begin_close(w, c);
        if (rc != 0)
            return rc;
        if (c->state == READING) { /* new bytes, nothing in flight: a request starts */
            c->request_at = worker_now(w);
            count_request(w);
            COUNT(w, echo_reads, 1);
        }
        size_t taken = 0;
        rc = evq_tcp_write(c->stream, data, length, &taken);
        if (rc != 0 && rc != EVQ_EWOULDBLOCK)
            return rc;
        if (taken > 0) {
            if ((rc = evq_tcp_consume(c->stream, taken)) != 0)
                return rc;
            c->active_at = worker_now(w);
            count_in(w, taken);
            count_out(w, taken);
        }
        if (taken < length) { /* the queue is full: backpressure */
            COUNT(w, short_writes, 1);
            COUNT(w, read_pauses, c->state == READING); /* reading stops here */
            c->state = WRITING;
            return NEXT_WRITABLE;
        }
        record_latency(w, c->request_at); /* all of it taken */
        c->state = READING;
    }
}
/* ANCHOR_END: echo */

/* A deadline passed: was the connection really silent (or stuck) that long
 * since its last progress? NEXT_CLOSE if so, else 0 and a new deadline. */
static int echo_timeout(struct worker *w, struct connection *c)
{
    const server_config *config = &w->server->config;
    if (c->state == CLOSING) {
        COUNT(w, linger_timeouts, 1);
        return NEXT_CLOSE;
    }
    uint32_t limit = c->state == WRITING ? config->send_timeout_ms : config->idle_timeout_ms;
    uint64_t due = evq_sat_add(c->active_at, evq_ms_to_ns(limit));
    if (worker_now(w) < due)
        return connection_deadline(w, c, evq_remaining_ms(due, worker_now(w)));
    if (c->state == WRITING)
        COUNT(w, send_timeouts, 1);
    else
        COUNT(w, idle_timeouts, 1);
    return NEXT_CLOSE;
}

int echo_event(struct worker *w, struct connection *c, uint32_t ready)
{
    if (ready & EVQ_TIMEOUT) {
        int rc = echo_timeout(w, c);
        if (rc != 0)
            return rc;
    }
    if (c->state == CLOSING)
        return connection_linger(w, c);
    if (c->in_grace) /* stopping: no more reading; what is queued goes, then FIN */
        return connection_begin_close(w, c);
    return echo_pump(w, c);
}

/* server.c - the server's machinery, the same for both protocols: the two
 * threading designs, the loops' hooks, the listeners and the connection
 * table, the deadline rule of the stop, the stop itself, and the stats line
 * (a periodic task on every loop, summed through the channel). The
 * protocols are echo.c and http.c. See server.h.
 */
#include "server_internal.h"

#include "evq_testing.h" /* evq_poll_set_clock: the config's clock */

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#ifndef _WIN32
#include <sys/socket.h> /* SO_REUSEPORT_LB, where the system has it */
#endif

/* Message kinds on a queue's channel. */
enum { MESSAGE_REPORT = 1, MESSAGE_PING = 2 };
enum { INBOX_CAPACITY = 1024 };
/* The listeners' tokens: generation 0, which no connection has. */
#define LISTENER_TOKEN(protocol) ((evq_token)(protocol))

void server_config_init(server_config *config)
{
    memset(config, 0, sizeof *config);
    config->host = "127.0.0.1";
    config->serve[SERVER_ECHO] = config->serve[SERVER_HTTP] = true;
    config->threads = 1;
#if !defined(_WIN32) && (defined(__linux__) || defined(SO_REUSEPORT_LB))
    config->design = SERVER_PER_THREAD;
#else
    /* Windows and macOS: nothing spreads connections over listeners that
     * share a port (evq_tcp_listen_shared is EVQ_ENOTSUP there). */
    config->design = SERVER_SHARED;
#endif
    config->stats_interval_ms = SERVER_DEFAULT_STATS_INTERVAL;
    config->stats_out = stdout;
    config->grace_ms = SERVER_DEFAULT_GRACE;
    config->max_connections = SERVER_DEFAULT_MAX_CONNECTIONS;
    config->backlog = 1024;
    config->max_head = SERVER_DEFAULT_MAX_HEAD;
    evq_tcp_get_default_limits(&config->limits);
    config->head_timeout_ms = SERVER_DEFAULT_HEAD_TIMEOUT;
    config->idle_timeout_ms = SERVER_DEFAULT_IDLE_TIMEOUT;
    config->send_timeout_ms = SERVER_DEFAULT_SEND_TIMEOUT;
    config->linger_timeout_ms = SERVER_DEFAULT_LINGER_TIMEOUT;
    config->clock = evq_clock_system();
}

uint64_t worker_now(const struct worker *w)
{
    return raw_loop_now(&w->loop);
}

bool server_stopping(const struct server *s)
{
    return atomic_load(&s->stop);
}

/* ---- the table ---------------------------------------------------------------- */
static void table_lock(struct table *t)
{
    if (t->locked)
        evq_mutex_lock(&t->lock);
}

static void table_unlock(struct table *t)
{
    if (t->locked)
        evq_mutex_unlock(&t->lock);
}

static struct connection *table_find(struct table *t, evq_token token)
{
    uint32_t index = (uint32_t)token, generation = (uint32_t)(token >> 32);
    table_lock(t);
    struct connection *c = NULL;
    if (index < t->capacity && t->slots[index].generation == generation)
        c = t->slots[index].connection;
    table_unlock(t);
    return c;
}

/* With the lock held. */
static struct connection *table_add(struct table *t, evq_tcp *stream, enum server_protocol protocol)
{
    uint32_t index = t->free_head;
    if (index >= t->capacity)
        return NULL;
    struct connection *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    struct slot *slot = &t->slots[index];
    t->free_head = slot->next_free;
    slot->connection = c;
    t->open++;
    c->stream = stream;
    c->token = ((evq_token)slot->generation << 32) | index;
    c->protocol = protocol;
    return c;
}

/* With the lock held. */
static void table_remove(struct table *t, struct connection *c)
{
    uint32_t index = (uint32_t)c->token;
    struct slot *slot = &t->slots[index];
    slot->connection = NULL;
    slot->generation = slot->generation == UINT32_MAX ? 1 : slot->generation + 1;
    slot->next_free = t->free_head;
    t->free_head = index;
    t->open--;
}

static void rearm_listeners(struct table *t)
{
    for (int p = 0; p < SERVER_PROTOCOLS; p++) {
        if (t->listener[p])
            evq_reregister(t->poll, t->listener[p], LISTENER_TOKEN(p), EVQ_READABLE);
    }
}

/* The grace's end: stop_at + grace_ms, on the config's clock. */
static uint64_t grace_end(const struct server *s)
{
    return evq_sat_add(atomic_load(&s->stop_at), evq_ms_to_ns(s->config.grace_ms));
}

/* ---- closing ---------------------------------------------------------------------- */
/* Close a connection this loop owns. `early`: the client left in the middle
 * of a request or an answer. `cut`: the grace ended under it. */
static void close_connection(struct worker *w, struct connection *c, bool early, bool cut)
{
    struct table *t = w->table;
    COUNT(w, closed, 1);
    if (early)
        COUNT(w, disconnected, 1);
    if (c->in_grace && cut)
        COUNT(w, stop_cut, 1);
    else if (c->in_grace)
        COUNT(w, stop_finished, 1);
    table_lock(t);
    table_remove(t, c);
    /* Room again: a listener left disarmed while the table was full is
     * armed again (unless the stop has closed it). */
    bool rearm = t->listeners_paused && !t->stop_walked;
    t->listeners_paused = t->listeners_paused && !rearm;
    if (rearm)
        rearm_listeners(t);
    table_unlock(t);
    evq_tcp_close(c->stream);
    free(c);
}

/* ---- deadlines ------------------------------------------------------------------------ */
/* ANCHOR: stop_deadline */
int connection_deadline(struct worker *w, struct connection *c, int timeout_ms)
{
    const struct server *s = w->server;
    if (c->in_grace) /* whatever it waits for, it waits no longer than the grace */
        return evq_tcp_set_deadline(
            c->stream, evq_remaining_ms(grace_end(s), evq_clock_read(&s->config.clock)));
    int rc = evq_tcp_set_deadline(c->stream, timeout_ms);
    /* The stop walks the table and sets every deadline to 0, so that each
     * connection's next event meets it. If it walked past this one just
     * before our own deadline replaced its 0, the flag is set by now: put
     * the 0 back. */
    if (rc == 0 && server_stopping(s))
        rc = evq_tcp_set_deadline(c->stream, 0);
    return rc;
}
/* ANCHOR_END: stop_deadline */

/* ---- lingering close (both protocols) --------------------------------------------------- */
/* CLOSING: the last answer is in the write queue. close() with unread bytes
 * in the socket makes the kernel send RST, and an RST can destroy the answer
 * before the client reads it; so: shut down writing (FIN once the queue is
 * empty), read and drop what the client still sends, and close when it
 * closes too ("lingering close"). */
enum { LINGER_MAX = 256 * 1024 }; /* bytes a closing client may still send us */

int connection_linger(struct worker *w, struct connection *c)
{
    for (;;) {
        const void *data;
        size_t length = 0;
        int rc = evq_tcp_peek(c->stream, &data, &length);
        if (rc == EVQ_EWOULDBLOCK)
            return NEXT_READABLE;
        if (rc == EVQ_EOF && evq_tcp_queued(c->stream) > 0) {
            /* The client only half-closed: wait until the queue is empty
             * (write_low 0), or its tail would be dropped. */
            evq_tcp_limits limits = w->server->config.limits;
            limits.write_low = 0;
            rc = evq_tcp_set_limits(c->stream, &limits);
            return rc != 0 ? rc : NEXT_WRITABLE;
        }
        if (rc != 0)
            return rc == EVQ_EOF ? NEXT_CLOSE : rc;
        if ((rc = evq_tcp_consume(c->stream, length)) != 0)
            return rc;
        c->lingered += length;
        if (c->lingered > LINGER_MAX)
            return NEXT_CLOSE; /* it does not stop sending: enough */
    }
}

int connection_begin_close(struct worker *w, struct connection *c)
{
    c->state = CLOSING;
    int rc = evq_tcp_shutdown(c->stream);
    if (rc == 0) /* a client that never closes its side is not waited for long */
        rc = connection_deadline(w, c, (int)w->server->config.linger_timeout_ms);
    return rc != 0 ? rc : connection_linger(w, c);
}

/* ---- latency ------------------------------------------------------------------------------ */
/* A latency in nanoseconds goes to a bucket: its power of two, and which
 * quarter of it. Four steps per doubling: a percentile is reported as its
 * bucket's upper end, at most 25% above the true value. */
static unsigned latency_bucket(uint64_t ns)
{
    if (ns < 4)
        return (unsigned)ns;
    unsigned top = 63;
    while (!(ns >> top))
        top--;
    return top * 4 + (unsigned)((ns >> (top - 2)) & 3);
}

static uint64_t bucket_upper(unsigned bucket)
{
    if (bucket < 4)
        return bucket;
    unsigned top = bucket / 4, quarter = bucket % 4;
    return ((UINT64_C(4) + quarter + 1) << (top - 2)) - 1;
}

/* From the turn the request's bytes were read (that turn's loop_time: when
 * the wait returned them) to now, when its whole answer has been taken: the
 * time it waited behind the turn's other events, and any turns it waited for
 * the socket. A measurement, not a decision: so it reads the clock itself,
 * once per answer, rather than the turn's loop_time (which would make every
 * answer given in the turn of its request count 0). */
void record_latency(struct worker *w, uint64_t since)
{
    uint64_t now = evq_clock_read(&w->server->config.clock);
    w->latency[latency_bucket(evq_elapsed_ns(now, since))]++;
}

static uint64_t latency_p99(struct worker *w)
{
    uint64_t total = 0, seen = 0;
    for (unsigned i = 0; i < LATENCY_BUCKETS; i++)
        total += w->latency[i];
    uint64_t want = total - total / 100; /* the sample 99% of the others are at or below */
    for (unsigned i = 0; i < LATENCY_BUCKETS && total > 0; i++) {
        seen += w->latency[i];
        if (seen >= want)
            return bucket_upper(i);
    }
    return 0;
}

/* ---- accepting ------------------------------------------------------------------------------ */
/* A listener is readable: take every pending connection while there is
 * room. In the shared design this runs under the table's lock, which also
 * keeps the stop from closing the listener in the middle. */
static void accept_connections(struct worker *w, enum server_protocol protocol)
{
    struct table *t = w->table;
    table_lock(t);
    evq_tcp *listener = t->listener[protocol];
    while (listener && t->open < t->capacity) {
        evq_tcp *stream = NULL;
        int rc = evq_tcp_accept(listener, &stream);
        if (rc == EVQ_EWOULDBLOCK)
            break;
        if (rc == EVQ_ECONNABORTED || rc == EVQ_ECONNRESET)
            continue; /* the client left before we took it */
        if (rc != 0)
            break; /* EVQ_EMFILE...: the listener rests; try again on its next event */
        struct connection *c = table_add(t, stream, protocol);
        if (!c) {
            evq_tcp_close(stream);
            break;
        }
        COUNT(w, accepted, 1);
        c->active_at = c->since = worker_now(w);
        int next = protocol == SERVER_ECHO ? echo_start(w, c) : http_start(w, c);
        /* Registered last: from here its events may go to another loop. */
        if (next < 0 || evq_register(t->poll, stream, c->token, (unsigned)next) != 0) {
            COUNT(w, closed, 1);
            table_remove(t, c);
            evq_tcp_close(stream);
            free(c);
        }
    }
    if (listener && t->open < t->capacity)
        evq_reregister(t->poll, listener, LISTENER_TOKEN(protocol), EVQ_READABLE);
    else if (listener) /* full: close_connection arms it again */
        t->listeners_paused = true;
    table_unlock(t);
}

/* ---- the loop's hooks ------------------------------------------------------------------------ */
static bool connection_busy(const struct connection *c)
{
    return c->protocol == SERVER_ECHO ? echo_busy(c) : http_busy(c);
}

/* ANCHOR: apply_stop */
/* The term flag is set. The first event of each connection after it (the
 * stop's walk gives every one an event) decides: nothing in flight - close
 * it now; an answer in flight - it may finish within the grace, and its
 * deadline is the grace's end. After that, a TIMEOUT before the grace's
 * end is only the walk's wake-up (it reaches connections already in their
 * grace too); one at the end cuts the connection. Returns false when the
 * connection was closed here, else what is left of *ready for it. */
static bool apply_stop(struct worker *w, struct connection *c, uint32_t *ready)
{
    if (!c->in_grace && !connection_busy(c)) {
        COUNT(w, stop_closed, 1);
        close_connection(w, c, false, false);
        return false;
    }
    bool first = !c->in_grace;
    c->in_grace = true;
    if (!first && (*ready & EVQ_TIMEOUT) &&
        evq_clock_read(&w->server->config.clock) >= grace_end(w->server)) {
        close_connection(w, c, false, true); /* the grace is over */
        return false;
    }
    if (!first && !(*ready & EVQ_TIMEOUT))
        return true;
    *ready &= ~(uint32_t)EVQ_TIMEOUT;
    if (connection_deadline(w, c, 0) != 0) { /* in its grace: the grace's end */
        close_connection(w, c, true, false);
        return false;
    }
    return true;
}
/* ANCHOR_END: apply_stop */

/* ANCHOR: on_event */
/* An event: the listener's (accept), or a connection's - the token finds its
 * record, and the protocol carries on from the state the record says it was
 * in. A token whose connection has gone (its slot's generation moved on) is
 * dropped. */
static void on_event(void *context, raw_loop *loop, const evq_event *event)
{
    (void)loop;
    struct worker *w = context;
    if ((event->token >> 32) == 0) {
        accept_connections(w, (enum server_protocol)(event->token & 1));
        return;
    }
    struct connection *c = table_find(w->table, event->token);
    if (!c) {
        COUNT(w, stale_events, 1);
        return;
    }
    uint32_t ready = event->ready;
    if (server_stopping(w->server) && !apply_stop(w, c, &ready))
        return;
    int next = c->protocol == SERVER_ECHO ? echo_event(w, c, ready) : http_event(w, c, ready);
    if (next == NEXT_READABLE || next == NEXT_WRITABLE) {
        /* The last thing done with c on this thread: from here it is armed,
         * and its next event may be taken by another loop of the queue. */
        next = evq_reregister(w->table->poll, c->stream, c->token, (unsigned)next);
        if (next == 0)
            return;
    }
    /* A client that leaves (or is dropped) before its answer is complete
     * has left early; an end between requests, or after the last answer,
     * is the normal end. */
    bool early = c->state == WRITING || (c->state == READING && c->head_started);
    close_connection(w, c, early, false);
}
/* ANCHOR_END: on_event */

/* ANCHOR: stats */
/* ANCHOR: report */
/* Every stats interval, on every loop: this loop's numbers for the
 * interval go to the stats through the channel of queue 0 (a message; the
 * loops share nothing else for it). */
static void report(void *context, raw_loop *loop, uint64_t intervals)
{
    (void)loop;
    (void)intervals;
    struct worker *w = context;
    raw_message message = {MESSAGE_REPORT,
                           w->index,
                           {w->interval_requests, w->interval_in, w->interval_out, latency_p99(w)}};
    if (raw_channel_send(&w->server->tables[0].inbox, &message) == 0)
        COUNT(w, reports, 1);
    w->interval_requests = w->interval_in = w->interval_out = 0;
    memset(w->latency, 0, sizeof w->latency);
}
/* ANCHOR_END: report */

/* A report arrives (on loop 0; in the shared design, on any loop of the
 * queue): summed with the others until every loop has reported for this
 * interval, then printed as one line. */
static void on_report(struct worker *w, const raw_message *m)
{
    struct server *s = w->server;
    const server_config *config = &s->config;
    evq_mutex_lock(&s->report_lock);
    for (int i = 0; i < 3; i++)
        s->report_sum[i] += m->value[i];
    if (m->value[3] > s->report_p99)
        s->report_p99 = m->value[3];
    s->reported |= UINT64_C(1) << m->from;
    uint64_t everyone = config->threads == 64 ? UINT64_MAX : (UINT64_C(1) << config->threads) - 1;
    if (s->reported == everyone) {
        double seconds = (double)config->stats_interval_ms / 1000.0;
        if (config->stats_out) {
            fprintf(config->stats_out,
                    "stats: %" PRIu64 " open, %.0f requests/s, in %.2f MB/s, out %.2f MB/s, "
                    "p99 %.1f us\n",
                    server_open_now(s), (double)s->report_sum[0] / seconds,
                    (double)s->report_sum[1] / seconds / 1e6,
                    (double)s->report_sum[2] / seconds / 1e6, (double)s->report_p99 / 1e3);
            fflush(config->stats_out);
        }
        COUNT(w, stats_lines, 1);
        memset(s->report_sum, 0, sizeof s->report_sum);
        s->report_p99 = 0;
        s->reported = 0;
    }
    evq_mutex_unlock(&s->report_lock);
}
/* ANCHOR_END: stats */

static void on_message(void *context, raw_loop *loop, const raw_message *message)
{
    (void)loop;
    struct worker *w = context;
    if (message->kind == MESSAGE_REPORT)
        on_report(w, message);
    else if (message->kind == MESSAGE_PING)
        atomic_fetch_add(&w->pings, 1);
}

/* ANCHOR: on_stop */
/* The term flag is set. The first time: close the listeners (a connection
 * still in their backlog is reset: the client sees its end at once), and
 * set every connection's deadline to 0, so that each has an event now and
 * on_event applies the stop to it - the loop that owns it, whichever that
 * is. Then, each turn: done once no connection is left. The last loop to
 * see that shuts the queue down, which ends every other loop waiting on it. */
static bool on_stop(void *context, raw_loop *loop)
{
    (void)loop;
    struct worker *w = context;
    struct table *t = w->table;
    table_lock(t);
    if (!t->stop_walked) {
        t->stop_walked = true;
        for (int p = 0; p < SERVER_PROTOCOLS; p++) {
            evq_tcp_close(t->listener[p]);
            t->listener[p] = NULL;
        }
        for (uint32_t i = 0; i < t->capacity; i++) {
            if (t->slots[i].connection)
                evq_tcp_set_deadline(t->slots[i].connection->stream, 0);
        }
    }
    bool done = t->open == 0, shut_down = done && !t->shut_down;
    t->shut_down = t->shut_down || done;
    table_unlock(t);
    if (shut_down)
        evq_poll_shutdown(t->poll);
    return done;
}
/* ANCHOR_END: on_stop */

static void worker_thread(void *arg)
{
    struct worker *w = arg;
    w->result = raw_loop_run(&w->loop);
}

/* ---- start and stop -------------------------------------------------------------------------- */
static bool config_valid(const server_config *c)
{
    return c->host && (c->serve[SERVER_ECHO] || c->serve[SERVER_HTTP]) && c->threads >= 1 &&
           c->threads <= SERVER_MAX_THREADS && c->backlog > 0 && c->max_head > 0 &&
           c->head_timeout_ms > 0 && c->idle_timeout_ms > 0 && c->send_timeout_ms > 0 &&
           c->linger_timeout_ms > 0 && c->head_timeout_ms <= INT32_MAX &&
           c->idle_timeout_ms <= INT32_MAX && c->send_timeout_ms <= INT32_MAX &&
           c->linger_timeout_ms <= INT32_MAX && c->grace_ms <= INT32_MAX && c->clock.now_ns &&
           c->max_connections > 0 && c->max_connections < UINT32_MAX &&
           (c->design == SERVER_PER_THREAD || c->design == SERVER_SHARED) &&
           /* a head must fit in the read buffer, with the one byte that says 431 */
           c->limits.read_max > c->max_head;
}

static void destroy(struct server *s)
{
    for (unsigned q = 0; q < s->queues && s->tables; q++) {
        struct table *t = &s->tables[q];
        for (uint32_t i = 0; t->slots && i < t->capacity; i++) {
            struct connection *c = t->slots[i].connection;
            if (c) { /* only when a loop ended early, with an error */
                evq_tcp_close(c->stream);
                free(c);
            }
        }
        for (int p = 0; p < SERVER_PROTOCOLS; p++)
            evq_tcp_close(t->listener[p]);
        raw_channel_destroy(&t->inbox);
        evq_poll_close(t->poll);
        if (t->locked)
            evq_mutex_destroy(&t->lock);
        free(t->slots);
    }
    for (unsigned i = 0; i < s->config.threads && s->workers; i++)
        raw_loop_destroy(&s->workers[i].loop);
    evq_mutex_destroy(&s->report_lock);
    free(s->tables);
    free(s->workers);
    free(s);
}

static int table_open(struct server *s, struct table *t, bool locked)
{
    const server_config *config = &s->config;
    t->capacity = config->max_connections;
    t->slots = calloc(t->capacity, sizeof *t->slots);
    if (!t->slots)
        return EVQ_ENOMEM;
    for (uint32_t i = 0; i < t->capacity; i++) {
        t->slots[i].generation = 1;
        t->slots[i].next_free = i + 1;
    }
    if (locked && evq_mutex_init(&t->lock) != 0)
        return EVQ_ENOMEM;
    t->locked = locked;
    int rc = evq_poll_open(&t->poll);
    if (rc != 0)
        return rc;
    evq_poll_set_clock(t->poll, config->clock); /* deadlines: a test moves it by hand */
    return raw_channel_init(&t->inbox, INBOX_CAPACITY, t->poll);
}

/* ANCHOR: threads */
/* Per-thread: each loop has its own queue, table and listeners - the
 * first listener picks the port (0: any), the others share it, and the
 * kernel spreads new connections over them (SO_REUSEPORT). Shared: one
 * queue, one table, one listener per protocol, and every loop waits on
 * that queue (its events are handed out one per waiter). */
static int open_queues(struct server *s)
{
    const server_config *config = &s->config;
    bool per_thread = config->design == SERVER_PER_THREAD && config->threads > 1;
    s->queues = per_thread ? config->threads : 1;
    s->tables = calloc(s->queues, sizeof *s->tables);
    if (!s->tables)
        return EVQ_ENOMEM;
    for (unsigned q = 0; q < s->queues; q++) {
        struct table *t = &s->tables[q];
        int rc = table_open(s, t, !per_thread && config->threads > 1);
        for (int p = 0; p < SERVER_PROTOCOLS && rc == 0; p++) {
            if (!config->serve[p])
                continue;
            uint16_t port = q == 0 ? config->port[p] : s->port[p];
            rc = per_thread ? evq_tcp_listen_shared(t->poll, config->host, port, config->backlog,
                                                    &t->listener[p])
                            : evq_tcp_listen(t->poll, config->host, port, config->backlog,
                                             &t->listener[p]);
            if (rc == 0) /* passed on to the connections it accepts */
                rc = evq_tcp_set_limits(t->listener[p], &config->limits);
            if (rc == 0 && q == 0)
                rc = evq_tcp_local_port(t->listener[p], &s->port[p]);
            if (rc == 0)
                rc = evq_register(t->poll, t->listener[p], LISTENER_TOKEN(p), EVQ_READABLE);
        }
        if (rc != 0)
            return rc;
    }
    return 0;
}
/* ANCHOR_END: threads */

/* ANCHOR: start_loops */
/* One raw loop per thread, on its queue; the stats task on each. */
static int start_loops(struct server *s)
{
    const server_config *config = &s->config;
    for (unsigned i = 0; i < config->threads; i++) {
        struct worker *w = &s->workers[i];
        w->server = s;
        w->index = i;
        w->table = &s->tables[s->queues == 1 ? 0 : i];
        raw_loop_config loop = {
            .poll = w->table->poll,
            .clock = config->clock,
            .stop = &s->stop,
            .inbox = &w->table->inbox, /* shared design: one channel, any loop takes */
            .hooks = {.on_event = on_event,
                      .on_message = on_message,
                      .on_stop = on_stop,
                      .context = w},
        };
        int rc = raw_loop_init(&w->loop, &loop);
        if (rc == 0 && config->stats_interval_ms > 0)
            rc = raw_loop_every(&w->loop, evq_ms_to_ns(config->stats_interval_ms), report);
        if (rc != 0)
            return rc;
    }
    return 0;
}
/* ANCHOR_END: start_loops */

int server_start(const server_config *config, server **out)
{
    if (!config || !out || !config_valid(config))
        return EVQ_EINVAL;
    *out = NULL;
    struct server *s = calloc(1, sizeof *s);
    if (!s)
        return EVQ_ENOMEM;
    s->config = *config;
    atomic_init(&s->stop, false);
    atomic_init(&s->stop_at, 0);
    if (evq_mutex_init(&s->report_lock) != 0) {
        free(s);
        return EVQ_ENOMEM;
    }
    s->workers = calloc(config->threads, sizeof *s->workers);
    int rc = s->workers ? open_queues(s) : EVQ_ENOMEM;
    if (rc == 0)
        rc = start_loops(s);
    unsigned started = 0;
    for (; rc == 0 && started < config->threads; started++)
        rc = evq_thread_start(&s->workers[started].thread, worker_thread, &s->workers[started]);
    if (rc != 0) {
        server_request_stop(s);
        for (unsigned i = 0; i < started; i++)
            evq_thread_join(&s->workers[i].thread);
        destroy(s);
        return rc;
    }
    *out = s;
    return 0;
}

uint16_t server_port(const server *s, enum server_protocol protocol)
{
    return s && protocol < SERVER_PROTOCOLS ? s->port[protocol] : 0;
}

void server_get_stats(server *s, server_stats *out)
{
    uint64_t sum[STAT_FIELDS] = {0};
    for (unsigned i = 0; i < s->config.threads; i++) {
        for (size_t f = 0; f < STAT_FIELDS; f++)
            sum[f] += atomic_load_explicit(&s->workers[i].count[f], memory_order_relaxed);
    }
    memcpy(out, sum, sizeof *out);
}

uint64_t server_open_now(server *s)
{
    server_stats stats;
    server_get_stats(s, &stats);
    return evq_sat_sub(stats.accepted, stats.closed);
}

/* ANCHOR: request_stop */
void server_request_stop(server *s)
{
    if (!s)
        return;
    /* The instant first, then the flag: a loop that sees the flag sees the
     * grace's start. Then a wake per queue; each loop that sees the flag
     * passes the wake on to the other loops of its queue. */
    uint64_t expected = 0;
    atomic_compare_exchange_strong(&s->stop_at, &expected, evq_clock_read(&s->config.clock));
    atomic_store(&s->stop, true);
    for (unsigned q = 0; q < s->queues; q++)
        evq_poll_wake(s->tables[q].poll);
}
/* ANCHOR_END: request_stop */

int server_wake(server *s)
{
    if (!s)
        return EVQ_EINVAL;
    for (unsigned q = 0; q < s->queues; q++) {
        int rc = evq_poll_wake(s->tables[q].poll);
        if (rc != 0 && rc != EVQ_ECLOSED)
            return rc;
    }
    return 0;
}

int server_sync(server *s)
{
    if (!s)
        return EVQ_EINVAL;
    for (int round = 0; round < 2; round++) {
        for (unsigned q = 0; q < s->queues; q++) {
            unsigned before = 0;
            for (unsigned i = 0; i < s->config.threads; i++)
                before +=
                    s->workers[i].table == &s->tables[q] ? atomic_load(&s->workers[i].pings) : 0;
            raw_message ping = {MESSAGE_PING, 0, {0, 0, 0, 0}};
            int rc = raw_channel_send(&s->tables[q].inbox, &ping);
            if (rc != 0)
                return rc;
            for (int tries = 0;; tries++) { /* bounded: 20 s */
                unsigned now = 0;
                for (unsigned i = 0; i < s->config.threads; i++)
                    now += s->workers[i].table == &s->tables[q] ? atomic_load(&s->workers[i].pings)
                                                                : 0;
                if (now != before)
                    break;
                if (tries == 20000)
                    return EVQ_ETIMEDOUT;
                evq_sleep_ms(1);
            }
        }
    }
    return 0;
}

int server_stop(server *s, server_stats *totals)
{
    if (!s)
        return 0;
    server_request_stop(s);
    int result = 0;
    for (unsigned i = 0; i < s->config.threads; i++) {
        int rc = evq_thread_join(&s->workers[i].thread);
        if (rc == 0 && s->workers[i].result != 0 && result == 0)
            result = s->workers[i].result;
    }
    if (totals)
        server_get_stats(s, totals);
    destroy(s);
    return result;
}

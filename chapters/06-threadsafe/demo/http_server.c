/* http_server.c - the chapter's HTTP server: one thread, one evq queue, and
 * a `pending` record per connection that carries a request across loop
 * turns (see http_server.h).
 *
 * A connection is in one of three states, each with a deadline:
 *   READING  - parsing what has arrived; the parse position is kept
 *              (deadline: the whole head, or idle between requests)
 *   WRITING  - handing an answer to the stream as fast as its queue takes it
 *              (deadline: progress - it moves each time bytes are taken)
 *   CLOSING  - the last answer is queued; wait for it to go, then close
 *              (deadline: the lingering close)
 * and every event moves it on from where it stopped.
 */
#include "http_server.h"

#include "http_parse.h"

#include "evq_testing.h" /* evq_poll_set_clock: the config's clock */
#include "evq_thread.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { EVENTS = 64, CHUNK = 64 * 1024 };
/* Bytes a closing connection may still send us before we stop reading them. */
enum { LINGER_MAX = 256 * 1024 };
/* The listener's token. A connection's token never has generation 0. */
#define LISTENER_TOKEN ((evq_token)0)

enum connection_state { READING, WRITING, CLOSING };

/* ANCHOR: pending */
/* One connection's state between loop turns. The bytes of a partial request
 * are not here: they stay in the stream's read buffer, where evq_tcp_peek
 * shows them again next turn, from the head's first byte. The record keeps
 * how far the parser got in them - positions, which stay right when the
 * buffer moves - and how much of the answer the stream has taken: a /bytes
 * body is made again from that offset, never stored whole. */
struct pending {
    evq_tcp *stream;
    evq_token token;
    enum connection_state state;
    http_parser parser; /* READING: the parse position, and what the head said so far */
    size_t shown;       /* bytes of this head the parser has had (0: none yet) */
    bool head_started;  /* some bytes of a request are here (for heads_waiting) */
    /* WRITING: the answer is prefix[] followed by pattern_length bytes. */
    char prefix[512]; /* status line, headers, and a text body if any */
    size_t prefix_length;
    uint64_t pattern_length; /* a /bytes body (0 for HEAD and for texts) */
    uint64_t taken;          /* bytes of the answer that evq_tcp_write took */
    bool close_after;        /* Connection: close, or an error answer */
    size_t lingered;         /* CLOSING: bytes read and dropped */
    /* READING: the accept, or the end of the previous answer - the head's
     * deadline counts from here, not from the last byte - and whether no
     * byte of the next head has come yet (the idle deadline applies). */
    uint64_t since;
    bool idle;
};
/* ANCHOR_END: pending */

/* The token -> record table. We choose the tokens, so a token can simply
 * be an index into an array: no hashing, no probing. Its upper half is the
 * slot's generation, bumped when the slot is freed, so an event that still
 * names a closed connection (or a reused slot) is recognised and dropped. */
struct slot {
    uint32_t generation; /* never 0: token 0 is the listener's */
    uint32_t next_free;
    struct pending *pending; /* NULL when free */
};

struct http_server {
    http_server_config config;
    evq_poll *poll;
    evq_tcp *listener;
    uint16_t port;
    bool listener_armed;        /* false while max_connections are open */
    struct slot *slots;         /* max_connections of them */
    uint32_t free_head;         /* first free slot; max_connections when none */
    http_server_stats stats;    /* the loop's own; copied to `published` once per turn */
    unsigned char chunk[CHUNK]; /* a piece of a /bytes body, made on demand */
    evq_thread thread;
    int result;
    evq_mutex lock; /* guards the two fields below */
    bool stop_requested;
    http_server_stats published;
};

void http_body_pattern(uint64_t offset, unsigned char *out, size_t length)
{
    for (size_t i = 0; i < length; i++) { /* a multiplicative hash: no short period */
        uint32_t x = (uint32_t)(offset + i) * 2654435761u;
        out[i] = (unsigned char)(x >> 24);
    }
}

void http_server_config_init(http_server_config *config)
{
    memset(config, 0, sizeof *config);
    config->host = "127.0.0.1";
    config->backlog = 1024;
    config->max_head = HTTP_SERVER_DEFAULT_MAX_HEAD;
    config->max_connections = HTTP_SERVER_DEFAULT_MAX_CONNECTIONS;
    evq_tcp_get_default_limits(&config->limits);
    config->head_timeout_ms = HTTP_SERVER_DEFAULT_HEAD_TIMEOUT;
    config->idle_timeout_ms = HTTP_SERVER_DEFAULT_IDLE_TIMEOUT;
    config->send_timeout_ms = HTTP_SERVER_DEFAULT_SEND_TIMEOUT;
    config->linger_timeout_ms = HTTP_SERVER_DEFAULT_LINGER_TIMEOUT;
    config->clock = evq_clock_system();
}

/* ---- deadlines ---------------------------------------------------------------- */

/* ANCHOR: deadline */
/* The connection's one deadline, `timeout_ms` after the instant `since`
 * (the server's clock, the queue's too): what is left of it now, rounded
 * up - 0 if it has passed, which the next wait reports at once. */
static int deadline_from(http_server *server, struct pending *c, uint64_t since,
                         uint32_t timeout_ms)
{
    uint64_t at = evq_sat_add(since, evq_ms_to_ns(timeout_ms));
    uint64_t now = evq_clock_read(&server->config.clock);
    return evq_tcp_set_deadline(c->stream, evq_remaining_ms(at, now));
}

/* READING, from now: the accept, or the end of an answer. The next head
 * must be complete within head_timeout_ms of it; between requests of a
 * kept-alive connection, nothing at all may come for idle_timeout_ms. */
static int start_reading(http_server *server, struct pending *c, bool between_requests)
{
    c->state = READING;
    c->since = evq_clock_read(&server->config.clock);
    c->idle = between_requests && server->config.idle_timeout_ms < server->config.head_timeout_ms;
    return deadline_from(server, c, c->since,
                         c->idle ? server->config.idle_timeout_ms : server->config.head_timeout_ms);
}

/* The first bytes of a head after an idle time: the head's deadline,
 * still counted from the end of the previous answer. */
static int head_begun(http_server *server, struct pending *c)
{
    if (!c->idle)
        return 0;
    c->idle = false;
    return deadline_from(server, c, c->since, server->config.head_timeout_ms);
}

/* WRITING: the answer must move. Set when it starts, and again each time
 * the stream takes bytes of it - never for time merely spent. */
static int progress_made(http_server *server, struct pending *c)
{
    return evq_tcp_set_deadline(c->stream, (int)server->config.send_timeout_ms);
}
/* ANCHOR_END: deadline */

/* ---- the table -------------------------------------------------------------- */
static struct pending *table_find(http_server *server, evq_token token)
{
    uint32_t index = (uint32_t)token, generation = (uint32_t)(token >> 32);
    if (index >= server->config.max_connections)
        return NULL;
    struct slot *slot = &server->slots[index];
    return slot->generation == generation ? slot->pending : NULL;
}

static struct pending *table_add(http_server *server, evq_tcp *stream)
{
    uint32_t index = server->free_head;
    if (index >= server->config.max_connections)
        return NULL;
    struct pending *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    struct slot *slot = &server->slots[index];
    server->free_head = slot->next_free;
    slot->pending = c;
    c->stream = stream;
    c->token = ((evq_token)slot->generation << 32) | index;
    c->state = READING;
    http_parser_init(&c->parser, server->config.max_head);
    return c;
}

static void table_remove(http_server *server, struct pending *c)
{
    uint32_t index = (uint32_t)c->token;
    struct slot *slot = &server->slots[index];
    slot->pending = NULL;
    slot->generation = slot->generation == UINT32_MAX ? 1 : slot->generation + 1;
    slot->next_free = server->free_head;
    server->free_head = index;
}

/* ---- connections -------------------------------------------------------------- */
static void set_waiting(http_server *server, struct pending *c, bool waiting)
{
    if (waiting && !c->head_started)
        server->stats.heads_waiting++;
    else if (!waiting && c->head_started)
        server->stats.heads_waiting--;
    c->head_started = waiting;
}

static void note_queue_peak(http_server *server, const struct pending *c)
{
    evq_tcp_stats stream_stats;
    if (evq_tcp_get_stats(c->stream, &stream_stats) == 0 &&
        stream_stats.write_queued_peak > server->stats.write_queued_peak)
        server->stats.write_queued_peak = stream_stats.write_queued_peak;
}

/* A connection's system calls, added up when it closes (for the benchmarks). */
static void note_calls(http_server *server, const struct pending *c)
{
    evq_tcp_stats stream_stats;
    if (evq_tcp_get_stats(c->stream, &stream_stats) == 0) {
        server->stats.receive_calls += stream_stats.receive_calls;
        server->stats.send_calls += stream_stats.send_calls;
    }
}

/* client_left: it went away before its answer was complete. */
static void close_connection(http_server *server, struct pending *c, bool client_left)
{
    note_queue_peak(server, c);
    note_calls(server, c);
    set_waiting(server, c, false);
    evq_tcp_close(c->stream);
    table_remove(server, c);
    free(c);
    server->stats.open_now--;
    server->stats.closed++;
    server->stats.disconnected += client_left;
    if (!server->listener_armed) { /* room again for a waiting client */
        server->listener_armed =
            evq_reregister(server->poll, server->listener, LISTENER_TOKEN, EVQ_READABLE) == 0;
    }
}

/* One-shot: every path that wants another event for c ends here. */
static int wait_for(http_server *server, struct pending *c, unsigned interest)
{
    return evq_reregister(server->poll, c->stream, c->token, interest);
}

/* The answer's status line and headers, then either a text (NULL: the
 * /bytes pattern, pattern_length bytes) - or, for HEAD, no body at all. */
static void prepare_answer(http_server *server, struct pending *c, int status, const char *text,
                           uint64_t pattern_length, bool head_only, bool close_after)
{
    uint64_t length = text ? strlen(text) : pattern_length;
    int n = snprintf(c->prefix, sizeof c->prefix,
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %llu\r\n"
                     "Connection: %s\r\n\r\n%s",
                     status, http_status_text(status),
                     text ? "text/plain" : "application/octet-stream", (unsigned long long)length,
                     close_after ? "close" : "keep-alive", text && !head_only ? text : "");
    c->prefix_length = n > 0 && (size_t)n < sizeof c->prefix ? (size_t)n : 0;
    c->pattern_length = text || head_only ? 0 : pattern_length;
    c->taken = 0;
    c->close_after = close_after;
    c->state = WRITING; /* the send deadline starts with the first wait for room */
    if (status == 200)
        server->stats.answered_ok++;
    else
        server->stats.refused++;
}

/* A complete head: choose the route. head[] is the stream's buffer as
 * peek showed it; nothing of it is kept after this returns. */
static void route(http_server *server, struct pending *c, const char *head,
                  const http_request *request)
{
    const char *target = head + request->target_offset;
    size_t length = request->target_length;
    bool head_only = request->method == HTTP_HEAD, close_after = !request->keep_alive;
    if (length == 1 && target[0] == '/') {
        char text[128];
        snprintf(text, sizeof text, "Hello from the chapter 4 server on %s. Try /bytes/N.\n",
                 evq_backend());
        prepare_answer(server, c, 200, text, 0, head_only, close_after);
        return;
    }
    uint64_t count = 0;
    size_t digits = 0;
    if (length > 7 && memcmp(target, "/bytes/", 7) == 0) {
        for (digits = 7; digits < length && target[digits] >= '0' && target[digits] <= '9';
             digits++) {
            if (count <= HTTP_SERVER_MAX_BYTES)
                count = count * 10 + (uint64_t)(target[digits] - '0');
        }
    }
    if (digits > 7 && digits == length && count <= HTTP_SERVER_MAX_BYTES)
        prepare_answer(server, c, 200, NULL, count, head_only, close_after);
    else if (digits > 7 && digits == length)
        prepare_answer(server, c, 400, "N in /bytes/N is above 67108864\n", 0, head_only,
                       close_after);
    else
        prepare_answer(server, c, 404, "no such path: try / or /bytes/N\n", 0, head_only,
                       close_after);
}

/* A complete head has been routed (route() has read it): drop its bytes
 * from the stream's buffer. What came after it - a pipelined request -
 * stays, and is the next head's first byte. */
static int take_head(http_server *server, struct pending *c, size_t head_length)
{
    server->stats.requests++;
    server->stats.head_bytes += head_length;
    return evq_tcp_consume(c->stream, head_length);
}

static void prepare_refusal(http_server *server, struct pending *c, const http_error *error)
{
    char text[160];
    snprintf(text, sizeof text, "%s\n", error->reason);
    prepare_answer(server, c, error->status, text, 0, false, true);
}

/* The bytes of the answer from c->taken on. What is left of the prefix
 * goes out in the same write as the start of a /bytes body: a small write
 * followed by another meets Nagle's algorithm and the client's delayed
 * ACK, and waits ~40 ms for nothing. */
static size_t next_bytes(http_server *server, struct pending *c, const void **bytes)
{
    if (c->pattern_length == 0) {
        *bytes = c->prefix + c->taken;
        return c->prefix_length - (size_t)c->taken;
    }
    size_t used = 0;
    if (c->taken < c->prefix_length) {
        used = c->prefix_length - (size_t)c->taken;
        memcpy(server->chunk, c->prefix + c->taken, used);
    }
    uint64_t offset = c->taken + used - c->prefix_length;
    uint64_t left = c->pattern_length - offset;
    size_t n = left < CHUNK - used ? (size_t)left : CHUNK - used;
    http_body_pattern(offset, server->chunk + used, n);
    *bytes = server->chunk;
    return used + n;
}

enum { ANSWER_WAITING = 0, ANSWER_DONE = 1 };

/* ANCHOR: answer */
/* Hand the answer to the stream, as much as its write queue takes. The queue
 * holds at most write_high bytes: when a write takes less than offered, the
 * queue is full, and producing more now would only pile it up in memory. So
 * stop, keep the position, and let WRITABLE (the queue has drained to
 * write_low) say when to go on - or the send deadline, if the client has
 * stopped reading: it moves only when bytes were taken. Returns
 * ANSWER_DONE, ANSWER_WAITING or an error (the client has gone). */
static int answer(http_server *server, struct pending *c)
{
    uint64_t before = c->taken; /* 0: a new answer, whose deadline starts now */
    while (c->taken < c->prefix_length + c->pattern_length) {
        const void *bytes;
        size_t length = next_bytes(server, c, &bytes), n = 0;
        int rc = evq_tcp_write(c->stream, bytes, length, &n);
        if (rc != 0 && rc != EVQ_EWOULDBLOCK)
            return rc;
        c->taken += n;
        server->stats.bytes_written += n;
        if (n < length) { /* the queue is full: backpressure */
            server->stats.short_writes++;
            note_queue_peak(server, c);
            if ((before == 0 || c->taken > before) && (rc = progress_made(server, c)) != 0)
                return rc;
            rc = wait_for(server, c, EVQ_WRITABLE);
            return rc != 0 ? rc : ANSWER_WAITING;
        }
    }
    return ANSWER_DONE;
}
/* ANCHOR_END: answer */

/* ANCHOR: linger */
/* CLOSING: the last answer is in the write queue. close() with unread bytes
 * in the socket makes the kernel send RST, and an RST can destroy the answer
 * before the client reads it; so: shut down writing (FIN once the queue is
 * empty), read and drop what the client still sends, and close when it
 * closes too ("lingering close"). Returns 1 when it is time to close. */
static int linger(http_server *server, struct pending *c)
{
    for (;;) {
        const void *data;
        size_t length = 0;
        int rc = evq_tcp_peek(c->stream, &data, &length);
        if (rc == EVQ_EWOULDBLOCK)
            break;
        if (rc == EVQ_EOF && evq_tcp_queued(c->stream) > 0) {
            /* The client only half-closed: wait until the queue is empty
             * (write_low 0), or its tail would be dropped. */
            evq_tcp_limits limits = server->config.limits;
            limits.write_low = 0;
            rc = evq_tcp_set_limits(c->stream, &limits);
            return rc != 0 ? rc : wait_for(server, c, EVQ_WRITABLE);
        }
        if (rc != 0)
            return rc == EVQ_EOF ? 1 : rc;
        if ((rc = evq_tcp_consume(c->stream, length)) != 0)
            return rc;
        c->lingered += length;
        if (c->lingered > LINGER_MAX)
            return 1; /* it does not stop sending: enough */
    }
    return wait_for(server, c, EVQ_READABLE);
}
/* ANCHOR_END: linger */

static int begin_close(http_server *server, struct pending *c)
{
    c->state = CLOSING;
    int rc = evq_tcp_shutdown(c->stream);
    if (rc == 0) /* a client that never closes its side is not waited for long */
        rc = evq_tcp_set_deadline(c->stream, (int)server->config.linger_timeout_ms);
    return rc != 0 ? rc : linger(server, c);
}

/* One call of the parser on data[0, length), the head so far. NEED_MORE
 * keeps the position in the record; anything else starts the next head. */
static int parse(http_server *server, struct pending *c, const char *data, size_t length,
                 http_request *request, http_error *error)
{
    uint64_t searched = c->parser.bytes_searched;
    int result = http_parse(&c->parser, data, length, request, error);
    server->stats.parses++;
    server->stats.bytes_searched += c->parser.bytes_searched - searched;
    if (result == HTTP_PARSE_NEED_MORE) {
        server->stats.resumed_parses++;
        c->shown = length;
        set_waiting(server, c, true);
        return result;
    }
    set_waiting(server, c, false);
    c->shown = 0;
    http_parser_init(&c->parser, server->config.max_head);
    return result;
}

/* ANCHOR: resume */
/* READING: parse what the stream has buffered, in place, going on from the
 * position the record kept. A READABLE event means bytes we have not seen
 * (evq_tcp_peek marks what it shows as seen), or the end behind them: so an
 * event with nothing new means the client closed with half a head sent.
 * After an answer the loop goes round: a pipelined request may be buffered
 * already, and the socket may never be readable again. */
static int resume(http_server *server, struct pending *c)
{
    for (;;) {
        const void *data;
        size_t length = 0;
        int rc = evq_tcp_peek(c->stream, &data, &length);
        if (rc == EVQ_EOF)
            return begin_close(server, c); /* between requests: its last answer may be queued */
        if (rc == EVQ_EWOULDBLOCK)
            return wait_for(server, c, EVQ_READABLE);
        if (rc != 0 || length <= c->shown)
            return rc != 0 ? rc : EVQ_EOF; /* the client has gone in the middle of a head */
        http_request request;
        http_error error;
        int result = parse(server, c, data, length, &request, &error);
        if (result == HTTP_PARSE_NEED_MORE && (rc = head_begun(server, c)) != 0)
            return rc;
        if (result == HTTP_PARSE_NEED_MORE) /* the bytes stay in the stream's buffer */
            return wait_for(server, c, EVQ_READABLE);
        if (result == HTTP_PARSE_COMPLETE) {
            route(server, c, data, &request);
            rc = take_head(server, c, request.head_length); /* `data` is stale from here */
        } else {
            prepare_refusal(server, c, &error);
        }
        if (rc != 0 || (rc = answer(server, c)) != ANSWER_DONE)
            return rc;
        if (c->close_after)
            return begin_close(server, c);
        if ((rc = start_reading(server, c, true)) != 0)
            return rc;
    }
}
/* ANCHOR_END: resume */

/* ANCHOR: on_timeout */
/* The connection's deadline has passed (EVQ_TIMEOUT): what that means
 * depends on the state it was in. Part of a head that never ends is the
 * slowloris attack: it gets 408 and a close. Anything else is closed
 * without a word - there is nobody left to say it to. Returns 1 to close
 * now, or what begin_close returns. */
static int on_timeout(http_server *server, struct pending *c)
{
    if (c->state == READING && c->head_started) {
        server->stats.head_timeouts++;
        set_waiting(server, c, false);
        prepare_answer(server, c, 408, "the request head did not arrive in time\n", 0, false,
                       true);
        int rc = answer(server, c);
        return rc == ANSWER_DONE ? begin_close(server, c) : rc;
    }
    if (c->state == READING)
        server->stats.idle_timeouts++; /* nothing came: between requests, or ever */
    else if (c->state == WRITING)
        server->stats.send_timeouts++; /* the client stopped reading its answer */
    else
        server->stats.linger_timeouts++; /* it never closed its side */
    return 1;
}
/* ANCHOR_END: on_timeout */

/* ANCHOR: turn */
/* A connection's turn: an event, and the connection carries on from the
 * state its record says it was in. The token finds the record; a token
 * whose connection has gone (its slot's generation moved on) is dropped. */
static void on_connection_event(http_server *server, const evq_event *event)
{
    struct pending *c = table_find(server, event->token);
    if (!c) {
        server->stats.stale_events++;
        return;
    }
    int rc = 0;
    if (event->ready & EVQ_TIMEOUT) {
        rc = on_timeout(server, c);
    } else if (c->state == WRITING) {
        rc = answer(server, c);
        if (rc == ANSWER_DONE && c->close_after) {
            rc = begin_close(server, c);
        } else if (rc == ANSWER_DONE && (rc = start_reading(server, c, true)) == 0) {
            rc = resume(server, c);
        }
    } else if (c->state == READING) {
        rc = resume(server, c);
    } else {
        rc = linger(server, c);
    }
    /* A client that closes before its answer is complete has left early; an
     * EOF between requests, or after the last answer, is the normal end. */
    bool early = c->state == WRITING || (c->state == READING && c->head_started);
    if (rc == 1 || rc < 0)
        close_connection(server, c, early);
}
/* ANCHOR_END: turn */

/* The listener is readable: take every pending connection. */
static void accept_connections(http_server *server)
{
    while (server->stats.open_now < server->config.max_connections) {
        evq_tcp *stream = NULL;
        int rc = evq_tcp_accept(server->listener, &stream);
        if (rc == EVQ_EWOULDBLOCK)
            break;
        if (rc == EVQ_ECONNABORTED || rc == EVQ_ECONNRESET)
            continue; /* the client left before we took it */
        if (rc != 0)
            break; /* EVQ_EMFILE...: try again on the next event */
        struct pending *c = table_add(server, stream);
        if (!c) {
            evq_tcp_close(stream);
            break;
        }
        server->stats.accepted++;
        server->stats.open_now++;
        if (server->stats.open_now > server->stats.open_peak)
            server->stats.open_peak = server->stats.open_now;
        if (start_reading(server, c, false) != 0 ||
            evq_register(server->poll, stream, c->token, EVQ_READABLE) != 0)
            close_connection(server, c, false);
    }
    /* Full: leave the listener disarmed; close_connection arms it again. */
    server->listener_armed =
        server->stats.open_now < server->config.max_connections &&
        evq_reregister(server->poll, server->listener, LISTENER_TOKEN, EVQ_READABLE) == 0;
}

/* Copy the counters for other threads; returns whether to stop. */
static bool publish(http_server *server)
{
    evq_mutex_lock(&server->lock);
    server->published = server->stats;
    bool stop = server->stop_requested;
    evq_mutex_unlock(&server->lock);
    return stop;
}

/* The loop: wait, then move every connection that has an event on from
 * where it stopped. Nothing here blocks but evq_poll_wait. */
static int serve(http_server *server)
{
    evq_event events[EVENTS];
    while (!publish(server)) {
        size_t n = 0;
        int rc = evq_poll_wait(server->poll, events, EVENTS, -1, &n);
        if (rc != 0)
            return rc;
        server->stats.waits++;
        for (size_t i = 0; i < n; i++) {
            if (events[i].token == LISTENER_TOKEN)
                accept_connections(server);
            else
                on_connection_event(server, &events[i]);
        }
    }
    return 0;
}

static void server_thread(void *arg)
{
    http_server *server = arg;
    server->result = serve(server);
    /* Close everything here, on the loop's thread: the queue has one user. */
    for (uint32_t i = 0; i < server->config.max_connections; i++) {
        if (server->slots[i].pending)
            close_connection(server, server->slots[i].pending, false);
    }
    publish(server);
}

static bool config_valid(const http_server_config *config)
{
    return config->host && config->backlog > 0 && config->max_head > 0 &&
           config->head_timeout_ms > 0 && config->idle_timeout_ms > 0 &&
           config->send_timeout_ms > 0 && config->linger_timeout_ms > 0 &&
           config->head_timeout_ms <= INT32_MAX && config->idle_timeout_ms <= INT32_MAX &&
           config->send_timeout_ms <= INT32_MAX && config->linger_timeout_ms <= INT32_MAX &&
           config->clock.now_ns &&
           config->max_connections > 0 && config->max_connections < UINT32_MAX &&
           /* a head must fit in the read buffer, with the one byte that says 431 */
           config->limits.read_max > config->max_head;
}

static void destroy(http_server *server)
{
    evq_tcp_close(server->listener);
    evq_poll_close(server->poll);
    free(server->slots);
    free(server);
}

int http_server_start(const http_server_config *config, http_server **out)
{
    if (!config || !out || !config_valid(config))
        return EVQ_EINVAL;
    *out = NULL;
    http_server *server = calloc(1, sizeof *server);
    if (!server)
        return EVQ_ENOMEM;
    server->config = *config;
    server->slots = calloc(config->max_connections, sizeof *server->slots);
    if (!server->slots) {
        free(server);
        return EVQ_ENOMEM;
    }
    for (uint32_t i = 0; i < config->max_connections; i++) {
        server->slots[i].generation = 1;
        server->slots[i].next_free = i + 1;
    }
    server->stats.write_high = config->limits.write_high;
    int rc = evq_poll_open(&server->poll);
    if (rc == 0) /* the deadlines are on it: a test moves it by hand */
        evq_poll_set_clock(server->poll, config->clock);
    if (rc == 0)
        rc = evq_tcp_listen(server->poll, config->host, config->port, config->backlog,
                            &server->listener);
    if (rc == 0)
        rc = evq_tcp_set_limits(server->listener, &config->limits); /* passed on to accepts */
    if (rc == 0)
        rc = evq_tcp_local_port(server->listener, &server->port);
    if (rc == 0)
        rc = evq_register(server->poll, server->listener, LISTENER_TOKEN, EVQ_READABLE);
    server->listener_armed = true;
    if (rc == 0 && (rc = evq_mutex_init(&server->lock)) == 0) {
        if ((rc = evq_thread_start(&server->thread, server_thread, server)) == 0) {
            *out = server;
            return 0;
        }
        evq_mutex_destroy(&server->lock);
    }
    destroy(server);
    return rc;
}

int http_server_wake(http_server *server)
{
    return server ? evq_poll_wake(server->poll) : EVQ_EINVAL;
}

uint16_t http_server_port(const http_server *server)
{
    return server ? server->port : 0;
}

void http_server_get_stats(http_server *server, http_server_stats *out)
{
    evq_mutex_lock(&server->lock);
    *out = server->published;
    evq_mutex_unlock(&server->lock);
}

int http_server_stop(http_server *server, http_server_stats *final_stats)
{
    if (!server)
        return 0;
    evq_mutex_lock(&server->lock);
    server->stop_requested = true;
    evq_mutex_unlock(&server->lock);
    /* The flag first, then the wake: a loop that checked the flag just
     * before it was set is woken out of (or before) its next wait. */
    int rc = evq_poll_wake(server->poll);
    if (rc == 0)
        rc = evq_thread_join(&server->thread);
    if (rc != 0)
        return rc; /* the thread may still run: freeing now would be worse */
    if (final_stats)
        *final_stats = server->published;
    rc = server->result;
    evq_mutex_destroy(&server->lock);
    destroy(server);
    return rc;
}

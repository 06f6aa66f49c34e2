/* http.c - chapter 6's HTTP/1.1 server behaviour on the template: the same
 * routes, refusals, keep-alive, pipelining and deadlines, as one protocol
 * of the server. A connection is in one of three states, each with a
 * deadline:
 *   READING  - parsing what has arrived; the parse position is kept
 *              (deadline: the whole head, or idle between requests)
 *   WRITING  - handing an answer to the stream as fast as its queue takes it
 *              (deadline: progress - it moves each time bytes are taken)
 *   CLOSING  - the last answer is queued; wait for it to go, then close
 *              (deadline: the lingering close; server.c)
 * Every function here returns the next step (server_internal.h): the
 * dispatcher re-arms or closes, never this file.
 */
#include "server_internal.h"

#include <stdio.h>
#include <string.h>

void http_body_pattern(uint64_t offset, unsigned char *out, size_t length)
{
    for (size_t i = 0; i < length; i++) { /* a multiplicative hash: no short period */
        uint32_t x = (uint32_t)(offset + i) * 2654435761u;
        out[i] = (unsigned char)(x >> 24);
    }
}

bool http_busy(const struct connection *c)
{
    /* READING with bytes still queued: the last answer was taken whole by
     * evq_tcp_write, but has not all gone - closing now would drop its tail. */
    return c->state != READING || evq_tcp_queued(c->stream) > 0;
}

/* ---- deadlines ---------------------------------------------------------------- */
/* The connection's one deadline, `timeout_ms` after the instant `since`. */
static int deadline_from(struct worker *w, struct connection *c, uint64_t since,
                         uint32_t timeout_ms)
{
    uint64_t at = evq_sat_add(since, evq_ms_to_ns(timeout_ms));
    return connection_deadline(w, c, evq_remaining_ms(at, worker_now(w)));
}

/* READING, from now: the accept, or the end of an answer. The next head
 * must be complete within head_timeout_ms of it; between requests of a
 * kept-alive connection, nothing at all may come for idle_timeout_ms. */
static int start_reading(struct worker *w, struct connection *c, bool between_requests)
{
    const server_config *config = &w->server->config;
    c->state = READING;
    c->since = worker_now(w);
    c->idle = between_requests && config->idle_timeout_ms < config->head_timeout_ms;
    return deadline_from(w, c, c->since,
                         c->idle ? config->idle_timeout_ms : config->head_timeout_ms);
}

/* The first bytes of a head after an idle time: the head's deadline,
 * still counted from the end of the previous answer. */
static int head_begun(struct worker *w, struct connection *c)
{
    if (!c->idle)
        return 0;
    c->idle = false;
    return deadline_from(w, c, c->since, w->server->config.head_timeout_ms);
}

int http_start(struct worker *w, struct connection *c)
{
    http_parser_init(&c->parser, w->server->config.max_head);
    int rc = start_reading(w, c, false);
    return rc != 0 ? rc : NEXT_READABLE;
}

/* ---- answers ------------------------------------------------------------------- */
/* The answer's status line and headers, then either a text (NULL: the
 * /bytes pattern, pattern_length bytes) - or, for HEAD, no body at all. */
static void prepare_answer(struct worker *w, struct connection *c, int status, const char *text,
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
    c->state = WRITING;
    if (status == 200)
        COUNT(w, answered_ok, 1);
    else
        COUNT(w, refused, 1);
}

/* A complete head: choose the route. head[] is the stream's buffer as peek
 * showed it; nothing of it is kept after this returns. */
static void route(struct worker *w, struct connection *c, const char *head,
                  const http_request *request)
{
    const char *target = head + request->target_offset;
    size_t length = request->target_length;
    bool head_only = request->method == HTTP_HEAD;
    /* Stopping: this answer is the last on the connection. */
    bool close_after = !request->keep_alive || c->in_grace;
    if (length == 1 && target[0] == '/') {
        char text[128];
        snprintf(text, sizeof text, "Hello from the chapter 7 server on %s. Try /bytes/N.\n",
                 evq_backend());
        prepare_answer(w, c, 200, text, 0, head_only, close_after);
        return;
    }
    uint64_t count = 0;
    size_t digits = 0;
    if (length > 7 && memcmp(target, "/bytes/", 7) == 0) {
        for (digits = 7; digits < length && target[digits] >= '0' && target[digits] <= '9';
             digits++) {
            if (count <= SERVER_MAX_BYTES)
                count = count * 10 + (uint64_t)(target[digits] - '0');
        }
    }
    if (digits > 7 && digits == length && count <= SERVER_MAX_BYTES)
        prepare_answer(w, c, 200, NULL, count, head_only, close_after);
    else if (digits > 7 && digits == length)
        prepare_answer(w, c, 400, "N in /bytes/N is above 67108864\n", 0, head_only, close_after);
    else
        prepare_answer(w, c, 404, "no such path: try / or /bytes/N\n", 0, head_only, close_after);
}

/* The bytes of the answer from c->taken on. What is left of the prefix goes
 * out in the same write as the start of a /bytes body: a small write
 * followed by another meets Nagle's algorithm and the client's delayed ACK,
 * and waits ~40 ms for nothing. */
static size_t next_bytes(struct worker *w, struct connection *c, const void **bytes)
{
    if (c->pattern_length == 0) {
        *bytes = c->prefix + c->taken;
        return c->prefix_length - (size_t)c->taken;
    }
    size_t used = 0;
    if (c->taken < c->prefix_length) {
        used = c->prefix_length - (size_t)c->taken;
        memcpy(w->chunk, c->prefix + c->taken, used);
    }
    uint64_t offset = c->taken + used - c->prefix_length;
    uint64_t left = c->pattern_length - offset;
    size_t n = left < CHUNK - used ? (size_t)left : CHUNK - used;
    http_body_pattern(offset, w->chunk + used, n);
    *bytes = w->chunk;
    return used + n;
}

enum { ANSWER_DONE = 0 };

/* Hand the answer to the stream, as much as its write queue takes. When a
 * write takes less than offered, the queue is full: stop, keep the
 * position, and wait for WRITABLE - or for the send deadline, if the
 * client has stopped reading: it moves only when bytes were taken. */
static int answer(struct worker *w, struct connection *c)
{
    uint64_t before = c->taken; /* 0: a new answer, whose deadline starts now */
    while (c->taken < c->prefix_length + c->pattern_length) {
        const void *bytes;
        size_t length = next_bytes(w, c, &bytes), n = 0;
        int rc = evq_tcp_write(c->stream, bytes, length, &n);
        if (rc != 0 && rc != EVQ_EWOULDBLOCK)
            return rc;
        c->taken += n;
        count_out(w, n);
        if (n < length) { /* the queue is full: backpressure */
            COUNT(w, short_writes, 1);
            if ((before == 0 || c->taken > before) &&
                (rc = connection_deadline(w, c, (int)w->server->config.send_timeout_ms)) != 0)
                return rc;
            return NEXT_WRITABLE;
        }
    }
    record_latency(w, c->request_at);
    return ANSWER_DONE;
}

/* One call of the parser on data[0, length), the head so far. NEED_MORE
 * keeps the position in the record; anything else starts the next head. */
static int parse(struct worker *w, struct connection *c, const char *data, size_t length,
                 http_request *request, http_error *error)
{
    int result = http_parse(&c->parser, data, length, request, error);
    if (result == HTTP_PARSE_NEED_MORE) {
        c->shown = length;
        c->head_started = true;
        return result;
    }
    c->head_started = false;
    c->shown = 0;
    http_parser_init(&c->parser, w->server->config.max_head);
    return result;
}

/* READING: parse what the stream has buffered, in place, going on from the
 * position the record kept. A READABLE event means bytes we have not seen
 * (evq_tcp_peek marks what it shows as seen), or the end behind them: so an
 * event with nothing new means the client closed with half a head sent.
 * After an answer the loop goes round: a pipelined request may be buffered
 * already, and the socket may never be readable again. */
static int resume(struct worker *w, struct connection *c)
{
    for (;;) {
        const void *data;
        size_t length = 0;
        int rc = evq_tcp_peek(c->stream, &data, &length);
        if (rc == EVQ_EOF) /* between requests: its last answer may be queued */
            return connection_begin_close(w, c);
        if (rc == EVQ_EWOULDBLOCK)
            return NEXT_READABLE;
        if (rc != 0 || length <= c->shown)
            return rc != 0 ? rc : EVQ_EOF; /* the client has gone in the middle of a head */
        if (c->shown == 0)
            c->request_at = worker_now(w); /* the turn its first bytes were read */
        http_request request;
        http_error error;
        int result = parse(w, c, data, length, &request, &error);
        if (result == HTTP_PARSE_NEED_MORE && (rc = head_begun(w, c)) != 0)
            return rc;
        if (result == HTTP_PARSE_NEED_MORE) /* the bytes stay in the stream's buffer */
            return NEXT_READABLE;
        if (result == HTTP_PARSE_COMPLETE) {
            route(w, c, data, &request);
            count_request(w);
            count_in(w, request.head_length);
            rc = evq_tcp_consume(c->stream, request.head_length); /* `data` is stale now */
        } else {
            char text[160];
            snprintf(text, sizeof text, "%s\n", error.reason);
            prepare_answer(w, c, error.status, text, 0, false, true);
        }
        if (rc != 0 || (rc = answer(w, c)) != ANSWER_DONE)
            return rc;
        if (c->close_after)
            return connection_begin_close(w, c);
        if ((rc = start_reading(w, c, true)) != 0)
            return rc;
    }
}

/* The connection's deadline has passed: what that means depends on the
 * state it was in. Part of a head that never ends is the slowloris attack:
 * it gets 408 and a close. Anything else is closed without a word. */
static int on_timeout(struct worker *w, struct connection *c)
{
    if (c->state == READING && c->head_started) {
        COUNT(w, head_timeouts, 1);
        c->head_started = false;
        prepare_answer(w, c, 408, "the request head did not arrive in time\n", 0, false, true);
        int rc = answer(w, c);
        return rc == ANSWER_DONE ? connection_begin_close(w, c) : rc;
    }
    if (c->state == READING)
        COUNT(w, idle_timeouts, 1); /* nothing came: between requests, or ever */
    else if (c->state == WRITING)
        COUNT(w, send_timeouts, 1); /* the client stopped reading its answer */
    else
        COUNT(w, linger_timeouts, 1); /* it never closed its side */
    return NEXT_CLOSE;
}

/* A connection's turn: it carries on from the state its record says. */
int http_event(struct worker *w, struct connection *c, uint32_t ready)
{
    if (ready & EVQ_TIMEOUT)
        return on_timeout(w, c);
    if (c->state == CLOSING)
        return connection_linger(w, c);
    if (c->state == READING && c->in_grace)  /* stopping: its last answer is queued */
        return connection_begin_close(w, c); /* FIN once it has gone */
    if (c->state == READING)
        return resume(w, c);
    int rc = answer(w, c); /* WRITING */
    if (rc != ANSWER_DONE)
        return rc;
    if (c->close_after || c->in_grace) /* stopping: no next request */
        return connection_begin_close(w, c);
    if ((rc = start_reading(w, c, true)) != 0)
        return rc;
    return resume(w, c);
}

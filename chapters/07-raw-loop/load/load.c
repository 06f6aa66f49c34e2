/* load.c - evq_load (see load.h): a client in the raw-loop style.
 *
 * One loop (loop/raw_loop.h) on one queue holds every connection. What a
 * connection has in flight lives in its record across turns: how many
 * messages it issued, how many came back, how many bytes the queue took and
 * how many came back checked. Each event is handled in one go - check what
 * arrived, issue what the depth allows, hand it to the queue, re-arm - and
 * the loop goes back to sleep. The phases of a timed run (warm-up, measure)
 * are timers; a periodic task watches for answers that never come.
 */
#include "load.h"

#include "latency.h"
#include "raw_loop.h"

#include "evq_args.h"
#include "evq_clock.h"
#include "evq_random.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define PATTERN_PERIOD 65521u                /* prime: never lines up with a buffer or a message */
#define HEAD_MAX       ((size_t)16 * 1024)   /* the longest HTTP answer head taken */
#define WATCH_NS       (100 * EVQ_NS_PER_MS) /* how often unanswered messages are looked for */

enum timer_kind { TIMER_WARMUP_END, TIMER_MEASURE_END };

/* ANCHOR: connection */
/* What one connection has in flight, kept across turns. */
struct connection {
    evq_tcp *stream;    /* NULL once closed */
    unsigned index;     /* its token */
    size_t base;        /* where its byte stream starts in the pattern */
    uint64_t issued;    /* messages issued (taken by the queue, or waiting for room) */
    uint64_t completed; /* messages whose whole answer came back */
    uint64_t written;   /* bytes of its stream the queue has taken */
    uint64_t received;  /* echo: bytes that came back, checked */
    uint64_t *sent_at;  /* loop time message k was issued, at [k % depth] */
    bool want_writable; /* the queue was full: wait for EVQ_WRITABLE */
    uint64_t body_left; /* HTTP: bytes of the current answer's body still to come */
    bool in_body;
};
/* ANCHOR_END: connection */

struct generator {
    load_options options;
    load_result *result;
    evq_poll *poll;
    raw_loop loop;
    atomic_bool *stop;
    struct connection *connections;
    unsigned char *source; /* what every connection sends: one period, then a copy */
    size_t source_period;
    size_t message_size; /* echo: --size; HTTP: the request's length */
    bool issuing;        /* new messages may be sent */
    bool measuring;
    bool finished; /* the run is over as asked (not interrupted, not failed) */
    bool failed;
    uint64_t in_flight;         /* issued - completed, over every connection */
    uint64_t round_trips_to_go; /* with --round-trips: until the run is complete */
    uint64_t window_start_ns, window_end_ns;
    struct latency_histogram histogram;
};

/* ---- failures --------------------------------------------------------------------- */

/* Record what went wrong (the first one is the verdict's) and end the run. */
static void fail(struct generator *g, uint64_t *counter, uint64_t count, const char *format, ...)
{
    *counter += count;
    if (g->result->failure[0] == '\0') {
        va_list args;
        va_start(args, format);
        vsnprintf(g->result->failure, sizeof g->result->failure, format, args);
        va_end(args);
    }
    g->failed = true;
    g->issuing = false;
    atomic_store(g->stop, true);
}

/* ---- the measured window ----------------------------------------------------------- */

static void start_window(struct generator *g)
{
    latency_reset(&g->histogram);
    g->result->measured = 0;
    g->measuring = true;
    g->window_start_ns = raw_loop_now(&g->loop);
}

static void end_window(struct generator *g)
{
    if (!g->measuring)
        return;
    g->measuring = false;
    g->window_end_ns = raw_loop_now(&g->loop);
}

/* The run is over as asked: stop issuing; on_stop waits for what is in
 * flight. */
static void finish(struct generator *g)
{
    end_window(g);
    g->issuing = false;
    g->finished = true;
    atomic_store(g->stop, true);
}

/* ---- what is sent ------------------------------------------------------------------ */

/* A connection's stream from `offset` on. The buffer holds one period and a
 * copy of its start long enough for everything a connection can have in
 * flight, so any span that long is contiguous here. */
static const unsigned char *source_at(const struct generator *g, const struct connection *c,
                                      uint64_t offset)
{
    return g->source + (c->base + offset) % g->source_period;
}

static int make_source(struct generator *g)
{
    const load_options *o = &g->options;
    char request[1200];
    if (o->http_path) {
        int len = snprintf(request, sizeof request, "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n",
                           o->http_path, o->host);
        if (len < 0 || (size_t)len >= sizeof request)
            return EVQ_EINVAL;
        g->message_size = g->source_period = (size_t)len;
    } else {
        g->message_size = o->size;
        g->source_period = PATTERN_PERIOD;
    }
    size_t span = g->message_size * o->depth;
    g->source = malloc(g->source_period + span);
    if (!g->source)
        return EVQ_ENOMEM;
    /* Echo: seeded pseudo-random bytes, so that a lost, doubled, reordered
     * or misdelivered byte (another connection's: each starts at its own
     * place in the cycle) shows up as a wrong byte. HTTP: the request. */
    evq_random random;
    evq_random_seed(&random, 7);
    for (size_t i = 0; i < g->source_period; i++)
        g->source[i] =
            o->http_path ? (unsigned char)request[i] : (unsigned char)evq_random_next(&random);
    for (size_t i = g->source_period; i < g->source_period + span; i++)
        g->source[i] = g->source[i - g->source_period];
    return 0;
}

/* ---- one connection ---------------------------------------------------------------- */

/* A message's whole answer has come back: one round trip. Its latency is in
 * loop time - from the turn that issued it to the turn that saw its answer
 * (the template reads the clock once per turn) - so it includes the rest of
 * those turns: what the client itself adds, as every client does. */
static void complete(struct generator *g, struct connection *c)
{
    uint64_t now = raw_loop_now(&g->loop);
    uint64_t sent_at = c->sent_at[c->completed % g->options.depth];
    c->completed++;
    g->in_flight--;
    g->result->round_trips++;
    if (g->measuring) {
        g->result->measured++;
        latency_record(&g->histogram, evq_sat_sub(now, sent_at));
    }
    if (g->options.round_trips != 0 && --g->round_trips_to_go == 0)
        finish(g);
}

/* ANCHOR: issue */
/* Keep `depth` messages in flight: issue what is missing, then hand the
 * queue every byte issued and not taken yet. A full queue (backpressure:
 * the server is not reading) keeps the rest here until EVQ_WRITABLE. */
static void issue_and_write(struct generator *g, struct connection *c)
{
    const load_options *o = &g->options;
    while (g->issuing && c->issued - c->completed < o->depth &&
           (o->round_trips == 0 || c->issued < o->round_trips)) {
        c->sent_at[c->issued % o->depth] = raw_loop_now(&g->loop);
        c->issued++;
        g->in_flight++;
        g->result->sent++;
    }
    uint64_t end = c->issued * g->message_size;
    c->want_writable = false;
    while (c->written < end) {
        size_t taken = 0;
        int rc = evq_tcp_write(c->stream, source_at(g, c, c->written), (size_t)(end - c->written),
                               &taken);
        if (rc == EVQ_EWOULDBLOCK || (rc == 0 && taken == 0)) {
            c->want_writable = true;
            return;
        }
        if (rc != 0) {
            fail(g, &g->result->errors, 1, "connection %u: write: %s", c->index, evq_strerror(rc));
            return;
        }
        c->written += taken;
    }
}
/* ANCHOR_END: issue */

/* ANCHOR: check_echo */
/* Echo: `data[0, len)` is what came back after the `c->received` bytes
 * before it. Every byte must be the one sent at that place of the stream;
 * each message that is whole is a round trip, its latency recorded. */
static void check_echo(struct generator *g, struct connection *c, const unsigned char *data,
                       size_t len)
{
    uint64_t outstanding = c->written - c->received; /* sent, not back yet */
    size_t comparable = len < outstanding ? len : (size_t)outstanding;
    const unsigned char *expected = source_at(g, c, c->received);
    size_t good = comparable;
    if (memcmp(data, expected, comparable) != 0)
        for (good = 0; data[good] == expected[good]; good++)
            ;
    /* The bytes before a wrong one were right: their messages count. */
    c->received += good;
    g->result->bytes_checked += good;
    while (c->completed < c->received / g->message_size && !g->failed)
        complete(g, c);
    if (good < comparable)
        fail(g, &g->result->mismatches, 1,
             "connection %u: echo mismatch at byte %" PRIu64 " of its stream: got 0x%02x, "
             "sent 0x%02x",
             c->index, c->received, data[good], expected[good]);
    else if (comparable < len)
        fail(g, &g->result->mismatches, 1,
             "connection %u: %" PRIu64 " bytes came back, only %" PRIu64 " were sent", c->index,
             c->received + (len - good), c->written);
}
/* ANCHOR_END: check_echo */

/* The index of "\r\n\r\n" in data[0, len), or len. */
static size_t find_head_end(const char *data, size_t len)
{
    for (size_t i = 0; i + 4 <= len; i++)
        if (data[i] == '\r' && memcmp(data + i, "\r\n\r\n", 4) == 0)
            return i;
    return len;
}

static bool header_is(const char *line, size_t line_len, const char *name)
{
    size_t n = strlen(name);
    if (line_len <= n || line[n] != ':')
        return false;
    for (size_t i = 0; i < n; i++) {
        char a = line[i], b = name[i];
        if (a >= 'A' && a <= 'Z')
            a = (char)(a - 'A' + 'a');
        if (a != b)
            return false;
    }
    return true;
}

static void count_status(load_result *result, int status)
{
    size_t i = 0;
    while (i < result->status_kinds && result->statuses[i].status != status)
        i++;
    if (i == result->status_kinds) {
        if (result->status_kinds == LOAD_STATUS_KINDS) /* the table is full: "other" */
            i = LOAD_STATUS_KINDS - 1, status = 0;
        else
            result->status_kinds++;
        result->statuses[i].status = status;
    }
    result->statuses[i].count++;
}

/* ANCHOR: parse_answer */
/* HTTP: parse one answer head at data[0, len). Returns its length (the
 * body's is left in c->body_left), 0 while it is incomplete, or -1 on what
 * is not an HTTP/1.x answer with a Content-Length (the run fails). */
static long parse_answer_head(struct generator *g, struct connection *c, const char *data,
                              size_t len)
{
    size_t end = find_head_end(data, len);
    if (end == len) {
        if (len > HEAD_MAX) {
            fail(g, &g->result->mismatches, 1, "connection %u: an answer head over %zu bytes",
                 c->index, HEAD_MAX);
            return -1;
        }
        return 0; /* more is coming: leave it in the stream's buffer */
    }
    /* "HTTP/1.x NNN reason" */
    if (end < 12 || memcmp(data, "HTTP/1.", 7) != 0 || data[8] != ' ' || data[9] < '1' ||
        data[9] > '5' || data[10] < '0' || data[10] > '9' || data[11] < '0' || data[11] > '9') {
        fail(g, &g->result->mismatches, 1, "connection %u: not an HTTP/1.x answer: \"%.20s\"",
             c->index, data);
        return -1;
    }
    int status = (data[9] - '0') * 100 + (data[10] - '0') * 10 + (data[11] - '0');
    uint64_t body = UINT64_MAX;
    /* The status line ends at the first '\n', at end + 1 at the latest. */
    const char *line = (const char *)memchr(data, '\n', end + 2) + 1;
    while (line < data + end) {
        const char *eol = memchr(line, '\r', (size_t)(data + end + 2 - line));
        size_t line_len = (size_t)(eol - line);
        if (header_is(line, line_len, "content-length")) {
            char digits[24];
            size_t n = line_len - 15;
            const char *value = line + 15;
            while (n > 0 && (*value == ' ' || *value == '\t'))
                value++, n--;
            while (n > 0 && (value[n - 1] == ' ' || value[n - 1] == '\t'))
                n--;
            unsigned long parsed;
            if (n == 0 || n >= sizeof digits)
                break;
            memcpy(digits, value, n);
            digits[n] = '\0';
            if (!evq_parse_ulong(digits, 0, (unsigned long)-1, &parsed))
                break;
            body = parsed;
        } else if (header_is(line, line_len, "transfer-encoding")) {
            break; /* chunked answers are not spoken here: the server must send a length */
        }
        line = eol + 2;
    }
    if (body == UINT64_MAX) {
        fail(g, &g->result->mismatches, 1,
             "connection %u: an answer (status %d) without a usable Content-Length", c->index,
             status);
        return -1;
    }
    if (c->completed == c->issued) {
        fail(g, &g->result->mismatches, 1, "connection %u: an answer to a request never sent",
             c->index);
        return -1;
    }
    count_status(g->result, status);
    if (status != 200) {
        /* Counted, and the run goes on: how many is part of the verdict. */
        g->result->non_200++;
        if (g->result->failure[0] == '\0')
            snprintf(g->result->failure, sizeof g->result->failure,
                     "connection %u: answer %" PRIu64 " has status %d", c->index, c->completed,
                     status);
    }
    c->body_left = body;
    c->in_body = true;
    return (long)(end + 4);
}
/* ANCHOR_END: parse_answer */

/* HTTP: take the answers in data[0, len); returns the bytes used (an
 * incomplete head stays in the stream's buffer for the next event). The
 * body is counted, never kept. */
static size_t take_answers(struct generator *g, struct connection *c, const char *data, size_t len)
{
    size_t used = 0;
    while (used < len || (c->in_body && c->body_left == 0)) {
        if (c->in_body) {
            size_t take = len - used < c->body_left ? len - used : (size_t)c->body_left;
            used += take;
            c->body_left -= take;
            if (c->body_left > 0)
                break;
            c->in_body = false;
            complete(g, c);
            continue;
        }
        long head = parse_answer_head(g, c, data + used, len - used);
        if (head <= 0)
            break;
        used += (size_t)head;
    }
    g->result->bytes_checked += used;
    return used;
}

/* The server closed the connection (or it failed): a failure unless
 * nothing was in flight and nothing more was to be sent. */
static void on_end(struct generator *g, struct connection *c, int rc)
{
    uint64_t unanswered = c->issued - c->completed;
    if (rc != EVQ_EOF)
        fail(g, &g->result->errors, 1, "connection %u: %s", c->index, evq_strerror(rc));
    else if (unanswered > 0)
        fail(g, &g->result->lost, unanswered,
             "connection %u: the server closed it with %" PRIu64 " message(s) unanswered", c->index,
             unanswered);
    else if (g->issuing && (g->options.round_trips == 0 || c->issued < g->options.round_trips))
        fail(g, &g->result->errors, 1, "connection %u: the server closed it before the run ended",
             c->index);
    g->in_flight -= unanswered;
    c->issued = c->completed;
    evq_tcp_close(c->stream);
    c->stream = NULL;
}

/* ANCHOR: on_event */
/* One event: look at what came back (peek: the stream's own buffer, no
 * copy), check it, drop what was used, issue more, and arm the stream
 * again - one-shot: without that, no further event comes for it. */
static void on_event(void *context, raw_loop *loop, const evq_event *event)
{
    struct generator *g = context;
    struct connection *c = &g->connections[event->token];
    (void)loop;
    if (!c->stream)
        return;
    if (event->ready & (EVQ_READABLE | EVQ_HUP | EVQ_ERR)) {
        const void *data;
        size_t len;
        int rc = evq_tcp_peek(c->stream, &data, &len);
        if (rc == 0) {
            size_t used = len;
            if (g->options.http_path)
                used = take_answers(g, c, data, len);
            else
                check_echo(g, c, data, len);
            evq_tcp_consume(c->stream, used);
        } else if (rc != EVQ_EWOULDBLOCK) {
            on_end(g, c, rc);
            return;
        }
    }
    if (g->failed)
        return;
    issue_and_write(g, c);
    if (g->failed)
        return;
    int rc = evq_reregister(g->poll, c->stream, c->index,
                            EVQ_READABLE | (c->want_writable ? EVQ_WRITABLE : 0));
    if (rc != 0)
        fail(g, &g->result->errors, 1, "connection %u: re-arm: %s", c->index, evq_strerror(rc));
}
/* ANCHOR_END: on_event */

/* ---- time: the phases and the watchdog -------------------------------------------- */

static void on_timer(void *context, raw_loop *loop, uint64_t id, uint64_t data)
{
    struct generator *g = context;
    (void)id;
    if (data == TIMER_WARMUP_END) {
        start_window(g);
        raw_loop_add_timer(loop, (uint64_t)(g->options.seconds * 1e9), TIMER_MEASURE_END, NULL);
    } else if (data == TIMER_MEASURE_END) {
        finish(g);
    }
}

/* ANCHOR: watchdog */
/* A periodic task: the oldest message each connection has in flight must
 * not be older than --timeout. A server that loses a message, or stalls,
 * ends the run here - the loop would otherwise wait for it for ever. */
static void watch_unanswered(void *context, raw_loop *loop, uint64_t intervals)
{
    struct generator *g = context;
    uint64_t now = raw_loop_now(loop), limit = (uint64_t)(g->options.timeout * 1e9);
    (void)intervals;
    for (unsigned i = 0; i < g->options.connections && !g->failed; i++) {
        struct connection *c = &g->connections[i];
        if (!c->stream || c->completed == c->issued)
            continue;
        uint64_t oldest = c->sent_at[c->completed % g->options.depth];
        if (evq_sat_sub(now, oldest) >= limit)
            fail(g, &g->result->lost, g->in_flight,
                 "connection %u: message %" PRIu64 " unanswered after %.1f s (--timeout); "
                 "%" PRIu64 " message(s) in flight in all",
                 c->index, c->completed, g->options.timeout, g->in_flight);
    }
}
/* ANCHOR_END: watchdog */

/* ANCHOR: on_stop */
/* The flag is set: by the run itself (done, or failed) or from outside
 * (Ctrl-C). Nothing new is issued; what is in flight is waited for (the
 * watchdog bounds that), then every connection closes. */
static bool on_stop(void *context, raw_loop *loop)
{
    struct generator *g = context;
    (void)loop;
    if (g->issuing) { /* stopped from outside */
        g->issuing = false;
        g->result->interrupted = true;
        end_window(g);
    }
    if (g->in_flight > 0 && !g->failed)
        return false;
    end_window(g);
    for (unsigned i = 0; i < g->options.connections; i++) {
        evq_tcp_close(g->connections[i].stream);
        g->connections[i].stream = NULL;
    }
    return true;
}
/* ANCHOR_END: on_stop */

/* ---- the run ------------------------------------------------------------------------ */

static int connect_all(struct generator *g)
{
    const load_options *o = &g->options;
    g->connections = calloc(o->connections, sizeof *g->connections);
    uint64_t *sent_at = calloc(o->connections * o->depth, sizeof *sent_at);
    if (!g->connections || !sent_at) {
        free(sent_at);
        return EVQ_ENOMEM;
    }
    for (unsigned i = 0; i < o->connections; i++) {
        struct connection *c = &g->connections[i];
        c->index = i;
        c->sent_at = sent_at + (size_t)i * o->depth;
        /* Each connection its own place in the cycle (7919 is prime: the
         * places differ for up to 65 521 connections). */
        c->base = o->http_path ? 0 : (size_t)i * 7919u % PATTERN_PERIOD;
        /* Returns at once: the connect goes on in the queue, and what is
         * written meanwhile is sent once it is made. A refused connect is
         * an event (EVQ_ERR), and the peek that follows says why. */
        int rc = evq_tcp_connect(g->poll, o->host, o->port, &c->stream);
        if (rc != 0)
            return rc;
        issue_and_write(g, c);
        rc = evq_register(g->poll, c->stream, i,
                          EVQ_READABLE | (c->want_writable ? EVQ_WRITABLE : 0));
        if (rc != 0)
            return rc;
    }
    return 0;
}

static void fill_result(struct generator *g)
{
    load_result *r = g->result;
    r->seconds = (double)evq_sat_sub(g->window_end_ns, g->window_start_ns) / 1e9;
    r->p50_ns = latency_percentile_ns(&g->histogram, 50);
    r->p90_ns = latency_percentile_ns(&g->histogram, 90);
    r->p99_ns = latency_percentile_ns(&g->histogram, 99);
    r->p999_ns = latency_percentile_ns(&g->histogram, 99.9);
    r->max_ns = g->histogram.max_ns;
    if (!g->failed && !g->finished)
        r->interrupted = true;
}

int load_run(const load_options *options, atomic_bool *stop, load_result *result)
{
    if (!options || !stop || !result || options->port == 0 || options->connections == 0 ||
        options->depth == 0 || options->size == 0 || !options->host)
        return EVQ_EINVAL;
    memset(result, 0, sizeof *result);
    struct generator *g = calloc(1, sizeof *g); /* the histogram is 58 KiB: not on the stack */
    if (!g)
        return EVQ_ENOMEM;
    g->options = *options;
    g->result = result;
    g->stop = stop;
    g->issuing = true;
    int rc = make_source(g);
    if (rc == 0)
        rc = evq_poll_open(&g->poll);
    raw_loop_config config = {
        .poll = g->poll,
        .clock = evq_clock_system(),
        .stop = stop,
        .hooks = {.on_event = on_event, .on_timer = on_timer, .on_stop = on_stop, .context = g},
    };
    if (rc == 0)
        rc = raw_loop_init(&g->loop, &config);
    if (rc == 0) {
        if (options->round_trips != 0) {
            g->round_trips_to_go = (uint64_t)options->round_trips * options->connections;
            start_window(g); /* the whole run is measured */
        } else if (options->warmup > 0) {
            rc = raw_loop_add_timer(&g->loop, (uint64_t)(options->warmup * 1e9), TIMER_WARMUP_END,
                                    NULL);
        } else {
            start_window(g);
            rc = raw_loop_add_timer(&g->loop, (uint64_t)(options->seconds * 1e9), TIMER_MEASURE_END,
                                    NULL);
        }
    }
    if (rc == 0)
        rc = raw_loop_every(&g->loop, WATCH_NS, watch_unanswered);
    if (rc == 0)
        rc = connect_all(g);
    if (rc == 0)
        rc = raw_loop_run(&g->loop);
    if (rc == 0)
        fill_result(g);
    if (g->connections) {
        for (unsigned i = 0; i < options->connections; i++)
            evq_tcp_close(g->connections[i].stream);
        free(g->connections[0].sent_at);
    }
    free(g->connections);
    raw_loop_destroy(&g->loop);
    evq_poll_close(g->poll);
    free(g->source);
    free(g);
    return rc;
}

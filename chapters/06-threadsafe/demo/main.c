/* main.c - chapter 2's demo, the book's classic: five requests to the delay
 * server, with delays falling from 5000 ms to 1000 ms, sent at once and
 * answered in reverse order - on ONE thread, with one event queue. The run
 * takes about the longest delay, not the sum.
 *
 * Chapter 4: the server is reached by name ("localhost"), looked up on the
 * queue's resolver threads, and each connect is non-blocking. To show that
 * the loop never waits for either, every lookup is made slow on purpose
 * (--dns-delay: a resolve function that sleeps first, as a DNS server that
 * answers late), and the loop prints a tick every 250 ms throughout, with
 * how late it came.
 *
 *     ch06_demo_epoll [--scale F] [--dns-delay MS] [--host H --port P]
 *
 * Without --port it starts the delay server inside this process.
 */
#include "evq.h"

#include "evq_args.h"
#include "evq_clock.h"
#include "evq_delay_server.h"
#include "evq_thread.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REQUESTS 5
#define TICK_MS  250
/* A connect (lookup, then each address) gets this long more than its
 * lookups take; then the answer gets its delay and this long again. */
#define SPARE_MS 5000

static const uint32_t base_delays_ms[REQUESTS] = {5000, 4000, 3000, 2000, 1000};

enum request_state { CONNECTING, SENDING, RECEIVING, FINISHED };

struct request {
    int number; /* 1..5, in the order sent; the token is number - 1 */
    uint32_t delay_ms;
    enum request_state state;
    evq_tcp *stream;
    char out[256]; /* the request */
    size_t out_len, out_sent;
    char in[1024]; /* the response */
    size_t in_len;
    int rc;
};

static uint64_t start_ns;

static double elapsed_s(void)
{
    return (double)evq_sat_sub(evq_clock_now_ns(), start_ns) / 1e9;
}

/* ANCHOR: slow_dns */
/* The system's resolver, after a pause: a DNS server that takes its time.
 * It runs on a resolver thread, so only that thread sleeps. */
static int slow_resolve(const char *host, uint16_t port, evq_address_list *out, void *context)
{
    evq_sleep_ms(*(const uint32_t *)context);
    return evq_resolve_system(host, port, out, NULL);
}
/* ANCHOR_END: slow_dns */

static void finish(struct request *r, int rc)
{
    r->state = FINISHED;
    r->rc = rc;
    evq_tcp_close(r->stream);
    r->stream = NULL;
    r->in[r->in_len < sizeof r->in ? r->in_len : sizeof r->in - 1] = '\0';
    const char *body = strstr(r->in, "\r\n\r\n");
    if (rc != 0)
        printf("%7.3f s  #%d  failed: %s\n", elapsed_s(), r->number, evq_strerror(rc));
    else
        printf("%7.3f s  #%d  %.12s \"%s\"\n", elapsed_s(), r->number, r->in, body ? body + 4 : "");
    fflush(stdout);
}

/* Read what has arrived: until EVQ_EWOULDBLOCK, or the end. */
static int receive(struct request *r)
{
    for (;;) {
        size_t n = 0;
        int rc = evq_tcp_read(r->stream, r->in + r->in_len, sizeof r->in - 1 - r->in_len, &n);
        if (rc == EVQ_EWOULDBLOCK)
            return 0;
        if (rc != 0)
            return rc; /* the server closes after its answer: EVQ_EOF */
        r->in_len += n;
        if (r->in_len == sizeof r->in - 1)
            return EVQ_EMSGSIZE;
    }
}

/* ANCHOR: on_event */
/* One event for request r. Connecting: WRITABLE says the connect is made
 * (ERR: it failed, and the read says why); the stream's deadline now
 * covers the answer. Sending: the rest of the request. Receiving: what has
 * arrived. One-shot: every path that wants more events re-registers. */
static void on_event(evq_poll *poll, struct request *r, uint32_t ready)
{
    evq_token token = (evq_token)(r->number - 1);
    char byte;
    size_t n = 0;
    int rc = 0;
    if (ready & EVQ_TIMEOUT) {
        finish(r, EVQ_ETIMEDOUT);
        return;
    }
    if (r->state == CONNECTING) {
        if (ready & EVQ_ERR) {
            rc = evq_tcp_read(r->stream, &byte, 1, &n); /* the connect's error */
            finish(r, rc != 0 ? rc : EVQ_EIO);
            return;
        }
        printf("%7.3f s  #%d  connected\n", elapsed_s(), r->number);
        r->state = SENDING;
        rc = evq_tcp_set_deadline(r->stream, (int)(r->delay_ms + SPARE_MS));
    }
    if (rc == 0 && r->state == SENDING) {
        rc = evq_tcp_write(r->stream, r->out + r->out_sent, r->out_len - r->out_sent, &n);
        r->out_sent += n;
        if (rc == EVQ_EWOULDBLOCK || (rc == 0 && r->out_sent < r->out_len))
            rc = evq_reregister(poll, r->stream, token, EVQ_WRITABLE);
        else if (rc == 0)
            r->state = RECEIVING;
    }
    if (rc == 0 && r->state == RECEIVING && (rc = receive(r)) == 0)
        rc = evq_reregister(poll, r->stream, token, EVQ_READABLE);
    if (rc != 0)
        finish(r, rc == EVQ_EOF ? 0 : rc); /* EOF after the answer is success */
}
/* ANCHOR_END: on_event */

static int usage(FILE *to, const char *program, int status)
{
    fprintf(to,
            "Usage: %s [--scale F] [--dns-delay MS] [--host H --port P]\n"
            "\n"
            "Sends five requests to the delay server, with delays of 5000, 4000, 3000,\n"
            "2000 and 1000 ms, all at once, on one thread with the %s event queue,\n"
            "and prints every answer as it arrives. They come back in reverse order,\n"
            "and the run takes about the longest delay, not the sum. The server is\n"
            "reached by name: each lookup runs on the queue's resolver threads and\n"
            "is made slow on purpose, and a tick every %d ms shows that the loop\n"
            "never waits for a lookup or a connect.\n"
            "\n"
            "  --scale F       multiply every delay by F (0 < F <= 10; 0.1 gives 500..100 ms)\n"
            "  --dns-delay MS  each lookup sleeps this long first (0..10000, default 500;\n"
            "                  multiplied by F too)\n"
            "  --host H        the delay server's host name or address (default localhost)\n"
            "  --port P        use a delay server already running on port P\n"
            "                  (default: start one inside this process, on 127.0.0.1)\n"
            "  -h, --help      show this help and exit\n",
            program, evq_backend(), TICK_MS);
    return status;
}

/* Start every request: a stream at once (nothing blocks), the request
 * written now (it waits in the stream's queue until connected), a deadline
 * for the lookup and the connect, and the connect's WRITABLE asked for. */
static int send_requests(evq_poll *poll, const char *host, uint16_t port, uint32_t lookup_ms,
                         struct request *requests)
{
    for (int i = 0; i < REQUESTS; i++) {
        struct request *r = &requests[i];
        int rc = evq_tcp_connect(poll, host, port, &r->stream);
        if (rc != 0) {
            fprintf(stderr, "cannot connect to %s:%u: %s\n", host, (unsigned)port,
                    evq_strerror(rc));
            return rc;
        }
        r->out_len = (size_t)snprintf(r->out, sizeof r->out,
                                      "GET /%lu/request-%d HTTP/1.1\r\nHost: %s\r\n"
                                      "Connection: close\r\n\r\n",
                                      (unsigned long)r->delay_ms, r->number, host);
        /* The fifth lookup waits for one of the four resolver threads. */
        if ((rc = evq_tcp_set_deadline(r->stream, (int)(2 * lookup_ms + SPARE_MS))) != 0 ||
            (rc = evq_register(poll, r->stream, (evq_token)i, EVQ_WRITABLE)) != 0)
            return rc;
        printf("  #%d  GET /%lu/request-%d\n", r->number, (unsigned long)r->delay_ms, r->number);
    }
    return 0;
}

/* What is in flight, for the tick. */
static void print_tick(const struct request *requests, unsigned tick, double late_ms)
{
    int connecting = 0, waiting = 0;
    for (int i = 0; i < REQUESTS; i++) {
        connecting += requests[i].state == CONNECTING;
        waiting += requests[i].state == SENDING || requests[i].state == RECEIVING;
    }
    printf("%7.3f s  tick %u: %d looking up or connecting, %d waiting for an answer"
           " (%.1f ms late)\n",
           elapsed_s(), tick, connecting, waiting, late_ms);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    const char *program = argc > 0 && argv[0] ? argv[0] : "ch06_demo";
    for (const char *p = program; *p; p++) { /* the name, without its directory */
        if (*p == '/' || *p == '\\')
            program = p + 1;
    }
    double scale = 1.0;
    unsigned long port_value = 0, dns_delay = 500;
    const char *host = "localhost";
    bool host_given = false;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0)
            return usage(stdout, program, 0);
        bool scale_opt = strcmp(arg, "--scale") == 0, port_opt = strcmp(arg, "--port") == 0;
        bool host_opt = strcmp(arg, "--host") == 0, dns_opt = strcmp(arg, "--dns-delay") == 0;
        if (!scale_opt && !port_opt && !host_opt && !dns_opt) {
            fprintf(stderr, "%s: %s is not an option\n", program, arg);
            return usage(stderr, program, 2);
        }
        const char *value = i + 1 < argc ? argv[++i] : NULL;
        if (host_opt && value && *value) {
            host = value;
            host_given = true;
        } else if (host_opt || (scale_opt && !evq_parse_double(value, 0.0, 10.0, &scale)) ||
                   (port_opt && !evq_parse_ulong(value, 1, 65535, &port_value)) ||
                   (dns_opt && !evq_parse_ulong(value, 0, 10000, &dns_delay))) {
            fprintf(stderr, "%s: %s needs %s, got '%s'\n", program, arg,
                    scale_opt  ? "a number above 0 and at most 10"
                    : port_opt ? "a port number from 1 to 65535"
                    : dns_opt  ? "milliseconds from 0 to 10000"
                               : "a host name",
                    value ? value : "");
            return 2;
        }
    }
    if (host_given && port_value == 0) {
        fprintf(stderr, "%s: --host needs --port (the embedded server is on 127.0.0.1)\n", program);
        return 2;
    }

    evq_delay_server *server = NULL;
    uint16_t port = (uint16_t)port_value;
    if (port == 0) {
        int rc = evq_delay_server_start(NULL, &server);
        if (rc != 0) {
            fprintf(stderr, "%s: cannot start the delay server: %s\n", program, evq_strerror(rc));
            return 1;
        }
        port = evq_delay_server_port(server);
    }

    struct request requests[REQUESTS];
    uint32_t longest_ms = 0, sum_ms = 0;
    memset(requests, 0, sizeof requests);
    for (int i = 0; i < REQUESTS; i++) {
        requests[i].number = i + 1;
        requests[i].delay_ms = (uint32_t)(base_delays_ms[i] * scale + 0.5);
        sum_ms += requests[i].delay_ms;
        longest_ms = requests[i].delay_ms > longest_ms ? requests[i].delay_ms : longest_ms;
    }

    /* ANCHOR: open */
    uint32_t lookup_ms = (uint32_t)(dns_delay * scale + 0.5);
    evq_poll_options options;
    evq_poll_get_default_options(&options); /* 4 resolver threads: the fifth lookup waits */
    options.resolve = slow_resolve;
    options.resolve_context = &lookup_ms;
    evq_poll *poll = NULL;
    int rc = evq_poll_open_with_options(&poll, &options);
    /* ANCHOR_END: open */
    if (rc != 0) {
        fprintf(stderr, "%s: cannot open the queue: %s\n", program, evq_strerror(rc));
        evq_delay_server_stop(server);
        return 1;
    }
    printf("%s: %d requests to the delay server at %s:%u, one thread, one %s queue;\n"
           "each lookup of %s takes %u ms on a resolver thread:\n",
           program, REQUESTS, host, (unsigned)port, evq_backend(), host, (unsigned)lookup_ms);
    start_ns = evq_clock_now_ns();
    rc = send_requests(poll, host, port, lookup_ms, requests);
    fflush(stdout);

    /* ANCHOR: loop */
    /* The loop's own timer, in chapter 1's style: the wait's timeout is the
     * time to the next tick. The queue sleeps no longer than that, nor than
     * the nearest stream deadline - and a tick that comes late says how
     * long something kept the loop from it. */
    int order[REQUESTS], answered = 0;
    unsigned long waits = 0, events_seen = 0, ticks = 0;
    double latest_ms = 0;
    uint64_t next_tick = start_ns + evq_ms_to_ns(TICK_MS);
    /* Give up well after the longest delay, so that a broken server cannot
     * hang the demo: the tick bounds every wait. */
    uint64_t give_up = start_ns + evq_ms_to_ns(longest_ms + lookup_ms * 2 + 15000u);
    while (rc == 0 && answered < REQUESTS && evq_clock_now_ns() < give_up) {
        evq_event events[16];
        size_t n = 0;
        int timeout = evq_remaining_ms(next_tick, evq_clock_now_ns());
        rc = evq_poll_wait(poll, events, 16, timeout, &n);
        waits++;
        events_seen += n;
        for (size_t i = 0; rc == 0 && i < n; i++) {
            struct request *r = &requests[events[i].token];
            on_event(poll, r, events[i].ready);
            if (r->state == FINISHED)
                order[answered++] = r->number;
        }
        uint64_t now = evq_clock_now_ns();
        if (now >= next_tick && answered < REQUESTS) {
            double late_ms = (double)(now - next_tick) / 1e6;
            latest_ms = late_ms > latest_ms ? late_ms : latest_ms;
            print_tick(requests, (unsigned)++ticks, late_ms);
            next_tick += evq_ms_to_ns(TICK_MS);
        }
    }
    /* ANCHOR_END: loop */
    double total = elapsed_s();

    int ok = 0;
    bool reversed = answered == REQUESTS;
    for (int i = 0; i < answered; i++)
        reversed = reversed && order[i] == REQUESTS - i;
    for (int i = 0; i < REQUESTS; i++) {
        ok += requests[i].state == FINISHED && requests[i].rc == 0 &&
              strncmp(requests[i].in, "HTTP/1.1 200", 12) == 0;
        evq_tcp_close(requests[i].stream); /* NULL for the finished ones */
    }
    evq_poll_close(poll);
    evq_delay_server_stop(server);
    if (rc != 0)
        fprintf(stderr, "%s: %s\n", program, evq_strerror(rc));
    printf("%d of %d answered in %.3f s, %s; the delays add up to %.3f s\n", ok, REQUESTS, total,
           reversed ? "in reverse order" : "NOT in reverse order", (double)sum_ms / 1e3);
    printf("%lu waits returned %lu events; %lu ticks, the latest %.1f ms late\n", waits,
           events_seen, ticks, latest_ms);
    return ok == REQUESTS ? 0 : 1;
}

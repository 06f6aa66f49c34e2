/* main.c - chapter 2's demo, the book's classic: five requests to the delay
 * server, with delays falling from 5000 ms to 1000 ms, sent at once and
 * answered in reverse order - on ONE thread, with one event queue. The run
 * takes about the longest delay, not the sum.
 *
 *     ch04_demo_epoll [--scale F] [--host H --port P]
 *
 * Without --port it starts the delay server inside this process.
 */
#include "evq.h"

#include "evq_args.h"
#include "evq_clock.h"
#include "evq_delay_server.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REQUESTS 5

static const uint32_t base_delays_ms[REQUESTS] = {5000, 4000, 3000, 2000, 1000};

struct request {
    int number; /* 1..5, in the order sent; the token is number - 1 */
    uint32_t delay_ms;
    char message[64];
    evq_tcp *stream;
    char out[256]; /* the request */
    size_t out_len, out_sent;
    char in[1024]; /* the response */
    size_t in_len;
    bool finished;
    int rc;
};

static uint64_t start_ns;

static double elapsed_s(void)
{
    return (double)evq_sat_sub(evq_clock_now_ns(), start_ns) / 1e9;
}

static void finish(struct request *r, int rc)
{
    r->finished = true;
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

/* ANCHOR: on_event */
/* One event for request r: send what is left of the request, or read what
 * has arrived. One-shot: the stream is disarmed now, so every path that
 * wants more events ends by re-registering it. */
static void on_event(evq_poll *poll, struct request *r)
{
    evq_token token = (evq_token)(r->number - 1);
    if (r->out_sent < r->out_len) { /* still sending: this was WRITABLE */
        size_t n = 0;
        int rc = evq_tcp_write(r->stream, r->out + r->out_sent, r->out_len - r->out_sent, &n);
        if (rc != 0 && rc != EVQ_EWOULDBLOCK) {
            finish(r, rc);
            return;
        }
        r->out_sent += n;
        unsigned next = r->out_sent < r->out_len ? EVQ_WRITABLE : EVQ_READABLE;
        if ((rc = evq_reregister(poll, r->stream, token, next)) != 0)
            finish(r, rc);
        return;
    }
    for (;;) { /* read until the socket has nothing more for now */
        size_t n = 0;
        int rc = evq_tcp_read(r->stream, r->in + r->in_len, sizeof r->in - 1 - r->in_len, &n);
        if (rc == EVQ_EWOULDBLOCK)
            break;
        if (rc != 0) { /* the server closes after its answer: EOF is success */
            finish(r, rc == EVQ_EOF ? 0 : rc);
            return;
        }
        r->in_len += n;
        if (r->in_len == sizeof r->in - 1) {
            finish(r, EVQ_EMSGSIZE);
            return;
        }
    }
    int rc = evq_reregister(poll, r->stream, token, EVQ_READABLE);
    if (rc != 0)
        finish(r, rc);
}
/* ANCHOR_END: on_event */

static int usage(FILE *to, const char *program, int status)
{
    fprintf(to,
            "Usage: %s [--scale F] [--host H --port P]\n"
            "\n"
            "Sends five requests to the delay server, with delays of 5000, 4000, 3000,\n"
            "2000 and 1000 ms, all at once, on one thread with the %s event queue,\n"
            "and prints every answer as it arrives. They come back in reverse order,\n"
            "and the run takes about the longest delay, not the sum.\n"
            "\n"
            "  --scale F   multiply every delay by F (0 < F <= 10; 0.1 gives 500..100 ms)\n"
            "  --host H    the delay server's host (default 127.0.0.1; needs --port)\n"
            "  --port P    use a delay server already running on port P\n"
            "              (default: start one inside this process)\n"
            "  -h, --help  show this help and exit\n",
            program, evq_backend());
    return status;
}

static int send_requests(evq_poll *poll, const char *host, uint16_t port, struct request *requests)
{
    for (int i = 0; i < REQUESTS; i++) {
        struct request *r = &requests[i];
        int rc = evq_tcp_connect(poll, host, port, &r->stream); /* blocking: chapter 4 */
        if (rc != 0) {
            fprintf(stderr, "cannot connect to %s:%u: %s\n", host, (unsigned)port,
                    evq_strerror(rc));
            return rc;
        }
        r->out_len = (size_t)snprintf(r->out, sizeof r->out,
                                      "GET /%lu/request-%d HTTP/1.1\r\nHost: %s\r\n"
                                      "Connection: close\r\n\r\n",
                                      (unsigned long)r->delay_ms, r->number, host);
        /* A fresh socket takes a request this small at once; if it did not,
         * WRITABLE would say when to send the rest. */
        size_t n = 0;
        rc = evq_tcp_write(r->stream, r->out, r->out_len, &n);
        if (rc != 0 && rc != EVQ_EWOULDBLOCK)
            return rc;
        r->out_sent = n;
        unsigned interest = r->out_sent < r->out_len ? EVQ_WRITABLE : EVQ_READABLE;
        if ((rc = evq_register(poll, r->stream, (evq_token)i, interest)) != 0)
            return rc;
        printf("  #%d  GET /%lu/request-%d\n", r->number, (unsigned long)r->delay_ms, r->number);
    }
    return 0;
}

int main(int argc, char **argv)
{
    const char *program = argc > 0 && argv[0] ? argv[0] : "ch04_demo";
    for (const char *p = program; *p; p++) { /* the name, without its directory */
        if (*p == '/' || *p == '\\')
            program = p + 1;
    }
    double scale = 1.0;
    unsigned long port_value = 0;
    const char *host = "127.0.0.1";
    bool host_given = false;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0)
            return usage(stdout, program, 0);
        bool scale_opt = strcmp(arg, "--scale") == 0, port_opt = strcmp(arg, "--port") == 0;
        bool host_opt = strcmp(arg, "--host") == 0;
        if (!scale_opt && !port_opt && !host_opt) {
            fprintf(stderr, "%s: %s is not an option\n", program, arg);
            return usage(stderr, program, 2);
        }
        const char *value = i + 1 < argc ? argv[++i] : NULL;
        if (host_opt && value && *value) {
            host = value;
            host_given = true;
        } else if (host_opt || (scale_opt && !evq_parse_double(value, 0.0, 10.0, &scale)) ||
                   (port_opt && !evq_parse_ulong(value, 1, 65535, &port_value))) {
            fprintf(stderr, "%s: %s needs %s, got '%s'\n", program, arg,
                    scale_opt  ? "a number above 0 and at most 10"
                    : port_opt ? "a port number from 1 to 65535"
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

    evq_poll *poll = NULL;
    int rc = evq_poll_open(&poll);
    if (rc != 0) {
        fprintf(stderr, "%s: cannot open the queue: %s\n", program, evq_strerror(rc));
        evq_delay_server_stop(server);
        return 1;
    }
    printf("%s: %d requests to the delay server at %s:%u, one thread, one %s queue:\n", program,
           REQUESTS, host, (unsigned)port, evq_backend());
    start_ns = evq_clock_now_ns();
    rc = send_requests(poll, host, port, requests);
    if (rc == 0)
        printf("answers, as they arrive:\n");
    fflush(stdout);

    /* ANCHOR: loop */
    int order[REQUESTS], answered = 0;
    unsigned long waits = 0, events_seen = 0;
    /* Give up well after the longest delay, so that a broken server cannot
     * hang the demo: the wait's own timeout bounds every turn. */
    uint64_t give_up = start_ns + evq_ms_to_ns(longest_ms + 15000u);
    while (rc == 0 && answered < REQUESTS && evq_clock_now_ns() < give_up) {
        evq_event events[16];
        size_t n = 0;
        rc = evq_poll_wait(poll, events, 16, 1000, &n);
        waits++;
        events_seen += n;
        for (size_t i = 0; rc == 0 && i < n; i++) {
            struct request *r = &requests[events[i].token];
            on_event(poll, r);
            if (r->finished)
                order[answered++] = r->number;
        }
    }
    /* ANCHOR_END: loop */
    double total = elapsed_s();

    int ok = 0;
    bool reversed = answered == REQUESTS;
    for (int i = 0; i < answered; i++)
        reversed = reversed && order[i] == REQUESTS - i;
    for (int i = 0; i < REQUESTS; i++) {
        ok += requests[i].finished && requests[i].rc == 0 &&
              strncmp(requests[i].in, "HTTP/1.1 200", 12) == 0;
        evq_tcp_close(requests[i].stream); /* NULL for the finished ones */
    }
    evq_poll_close(poll);
    evq_delay_server_stop(server);
    if (rc != 0)
        fprintf(stderr, "%s: %s\n", program, evq_strerror(rc));
    printf("%d of %d answered in %.3f s, %s; the delays add up to %.3f s\n", ok, REQUESTS, total,
           reversed ? "in reverse order" : "NOT in reverse order", (double)sum_ms / 1e3);
    printf("%lu waits returned %lu events\n", waits, events_seen);
    return ok == REQUESTS ? 0 : 1;
}

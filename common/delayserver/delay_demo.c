/* delay_demo.c - the book's classic, before any event queue exists: start
 * the delay server inside this process, send it five requests whose delays
 * fall from 5000 ms to 1000 ms, each on its own thread with a blocking
 * socket, and print every answer as it arrives. They come back in reverse
 * order, and the whole run takes about the longest delay, not the sum:
 * five threads wait at once. (Chapter 2 gets the same result with one
 * thread and an event queue.)
 *
 *     delay_demo [--scale F]     F multiplies every delay (0.1: 500..100 ms)
 */
#include "evq_args.h"
#include "evq_clock.h"
#include "evq_delay_server.h"
#include "evq_error.h"
#include "evq_thread.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REQUESTS 5

static const uint32_t base_delays_ms[REQUESTS] = {5000, 4000, 3000, 2000, 1000};

struct request {
    int number; /* 1..5, in the order sent */
    uint32_t delay_ms;
    char message[64];
    /* filled in by the thread */
    int rc;
    int status;
    bool body_matches;
};

struct shared {
    uint16_t port;
    uint64_t start_ns;
    evq_mutex lock; /* one line at a time, and the arrival order */
    int arrived;
    int arrival_order[REQUESTS];
};

static struct shared shared;

static double seconds_since_start(void)
{
    return (double)evq_sat_sub(evq_clock_now_ns(), shared.start_ns) / 1e9;
}

/* ANCHOR: request_thread */
static void run_request(void *arg)
{
    struct request *request = arg;
    char response[512];
    const char *body = NULL;
    request->rc = evq_delay_client_get(shared.port, request->delay_ms, request->message, response,
                                       sizeof response, &request->status, &body);
    request->body_matches = request->rc == 0 && body && strcmp(body, request->message) == 0;

    evq_mutex_lock(&shared.lock);
    double elapsed = seconds_since_start();
    shared.arrival_order[shared.arrived++] = request->number;
    if (request->rc != 0)
        printf("%7.3f s  #%d  failed: %s\n", elapsed, request->number, evq_strerror(request->rc));
    else
        printf("%7.3f s  #%d  %d \"%s\"\n", elapsed, request->number, request->status,
               body ? body : "");
    fflush(stdout);
    evq_mutex_unlock(&shared.lock);
}
/* ANCHOR_END: request_thread */

static int usage(FILE *to, int status)
{
    fprintf(to, "Usage: delay_demo [--scale F]\n"
                "\n"
                "Starts the delay server in this process and sends it five requests,\n"
                "each on its own thread with a blocking socket, with delays of 5000, 4000,\n"
                "3000, 2000 and 1000 ms. The answers come back in reverse order, and the\n"
                "run takes about as long as the longest delay, not the sum of them.\n"
                "\n"
                "  --scale F   multiply every delay by F (0 < F <= 10; 0.1 gives 500..100 ms)\n"
                "  -h, --help  show this help and exit\n");
    return status;
}

int main(int argc, char **argv)
{
    double scale = 1.0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
            return usage(stdout, 0);
        const char *value = NULL;
        if (strcmp(argv[i], "--scale") == 0)
            value = i + 1 < argc ? argv[++i] : NULL;
        else if (strncmp(argv[i], "--scale=", 8) == 0)
            value = argv[i] + 8;
        else {
            fprintf(stderr, "delay_demo: unknown option '%s'\n", argv[i]);
            return usage(stderr, 2);
        }
        if (!evq_parse_double(value, 0.0, 10.0, &scale)) {
            fprintf(stderr, "delay_demo: --scale needs a number above 0 and at most 10, got '%s'\n",
                    value ? value : "");
            return 2;
        }
    }

    evq_delay_server *server = NULL;
    int rc = evq_delay_server_start(NULL, &server);
    if (rc != 0) {
        fprintf(stderr, "delay_demo: cannot start the delay server: %s\n", evq_strerror(rc));
        return 1;
    }
    shared.port = evq_delay_server_port(server);
    evq_mutex_init(&shared.lock);

    struct request requests[REQUESTS];
    uint64_t sum_ms = 0;
    printf("delay server on 127.0.0.1:%u; %d requests, one thread and one blocking socket each:\n",
           (unsigned)shared.port, REQUESTS);
    for (int i = 0; i < REQUESTS; i++) {
        struct request *request = &requests[i];
        memset(request, 0, sizeof *request);
        request->number = i + 1;
        request->delay_ms = (uint32_t)(base_delays_ms[i] * scale + 0.5);
        snprintf(request->message, sizeof request->message, "request %d waited %lu ms", i + 1,
                 (unsigned long)request->delay_ms);
        sum_ms += request->delay_ms;
        printf("  #%d  GET /%lu/...\n", request->number, (unsigned long)request->delay_ms);
    }
    printf("answers, as they arrive:\n");
    fflush(stdout);

    /* ANCHOR: fire */
    evq_thread threads[REQUESTS];
    int started = 0;
    shared.start_ns = evq_clock_now_ns();
    for (int i = 0; i < REQUESTS; i++) {
        if ((rc = evq_thread_start(&threads[i], run_request, &requests[i])) != 0) {
            fprintf(stderr, "delay_demo: cannot start a thread: %s\n", evq_strerror(rc));
            break;
        }
        started++;
    }
    for (int i = 0; i < started; i++)
        evq_thread_join(&threads[i]);
    /* ANCHOR_END: fire */
    double total = seconds_since_start();
    evq_delay_server_stop(server);
    evq_mutex_destroy(&shared.lock);

    int ok = 0;
    for (int i = 0; i < started; i++)
        ok += requests[i].rc == 0 && requests[i].status == 200 && requests[i].body_matches;
    bool reversed = shared.arrived == REQUESTS;
    for (int i = 0; i < shared.arrived; i++)
        reversed = reversed && shared.arrival_order[i] == REQUESTS - i;
    printf("%d of %d answered in %.3f s, %s; the delays add up to %.3f s\n", ok, REQUESTS, total,
           reversed ? "in reverse order" : "in some other order", (double)sum_ms / 1e3);
    return ok == REQUESTS ? 0 : 1;
}

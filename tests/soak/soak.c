/* soak.c - 10 000 connections in a seeded random mix against a server in
 * this process, then a check that it let go of everything: the process's
 * open descriptors and resident memory are back where they started.
 *
 *     soak_delayserver  [--connections N] [--seed S] [--rss-slack-kib K]
 *     soak_chNN_<backend> [...]   (the newest chapter's HTTP server on that backend)
 *
 * What a connection does (the client is this program's main thread, with
 * blocking sockets, in batches of up to 64 open at once):
 *   complete    one or two keep-alive requests, every answer read, close
 *   half-close  two pipelined requests, shutdown(SHUT_WR), read both
 *               answers and the server's close
 *   half-sent   part of a request, then close
 *   reset       a request, then a reset (SO_LINGER 0) before or while the
 *               answer comes (a chapter's server: an 8 MB answer, more than the
 *               socket buffers hold, so mid-answer)
 *   idle        connect and close without a word
 *   abort       connect and reset at once
 * The starting point is taken after a warm-up of 500 connections of the
 * same mix (the server's arrays, the allocator's arenas, the thread stacks
 * are in place by then), once the server reports no connection open.
 *
 * Linux only: descriptors are counted in /proc/self/fd, memory read from
 * /proc/self/statm. Exit 1 when descriptors differ at all or resident
 * memory grew by more than the slack (default 256 KiB: a leak of
 * 27 bytes per connection).
 */
#if !defined(_GNU_SOURCE)
#define _GNU_SOURCE
#endif
#include "evq_clock.h"
#include "evq_error.h"
#include "evq_net.h"
#include "evq_random.h"
#include "evq_thread.h"

#ifdef SOAK_CHAPTER
#include "http_server.h"
#else
#include "evq_delay_server.h"
#endif

#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

enum kind { COMPLETE, HALF_CLOSE, HALF_SENT, RESET, IDLE, ABORT, KINDS };
static const char *const kind_names[KINDS] = {"complete", "half-close", "half-sent",
                                              "reset",    "idle",       "abort"};
/* Out of 100. */
static const int kind_weights[KINDS] = {40, 15, 15, 15, 8, 7};

enum { BATCH = 64, WARM_UP = 500 };

/* ---- the server under test ---------------------------------------------------- */
#ifdef SOAK_CHAPTER
#define SOAK_STRING(x) #x
#define SOAK_NUMBER(x) SOAK_STRING(x)
static const char *const server_name =
    "chapter " SOAK_NUMBER(SOAK_CHAPTER) "'s HTTP server (" EVQ_BACKEND_NAME ")";
static const char request_small[] = "GET / HTTP/1.1\r\nHost: soak\r\n\r\n";
static const char request_large[] = "GET /bytes/8000000 HTTP/1.1\r\nHost: soak\r\n\r\n";
typedef http_server server_type;

static int server_start(server_type **out, uint16_t *port)
{
    http_server_config config;
    http_server_config_init(&config);
    int rc = http_server_start(&config, out);
    if (rc == 0)
        *port = http_server_port(*out);
    return rc;
}

static uint64_t server_open(server_type *server)
{
    http_server_stats stats;
    http_server_get_stats(server, &stats);
    return stats.open_now;
}

static void server_stop(server_type *server)
{
    http_server_stop(server, NULL);
}
#else
static const char *const server_name = "the delay server";
static const char request_small[] = "GET /0/soak HTTP/1.1\r\nHost: soak\r\n\r\n";
static const char request_large[] = "GET /1/a-reset-comes-before-or-after-this HTTP/1.1\r\n\r\n";
typedef evq_delay_server server_type;

static int server_start(server_type **out, uint16_t *port)
{
    int rc = evq_delay_server_start(NULL, out);
    if (rc == 0)
        *port = evq_delay_server_port(*out);
    return rc;
}

static uint64_t server_open(server_type *server)
{
    evq_delay_server_stats stats;
    evq_delay_server_get_stats(server, &stats);
    return stats.open;
}

static void server_stop(server_type *server)
{
    evq_delay_server_stop(server);
}
#endif

/* ---- what the process holds ------------------------------------------------------ */
static long open_descriptors(void)
{
    DIR *dir = opendir("/proc/self/fd");
    if (!dir)
        return -1;
    long count = 0;
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL)
        if (entry->d_name[0] != '.')
            count++;
    closedir(dir);
    return count - 1; /* the directory's own descriptor */
}

static long resident_kib(void)
{
    FILE *file = fopen("/proc/self/statm", "r");
    if (!file)
        return -1;
    long size = 0, resident = 0;
    int got = fscanf(file, "%ld %ld", &size, &resident);
    fclose(file);
    return got == 2 ? resident * (sysconf(_SC_PAGESIZE) / 1024) : -1;
}

static long peak_resident_kib(void)
{
    FILE *file = fopen("/proc/self/status", "r");
    if (!file)
        return -1;
    char line[256];
    long peak = -1;
    while (fgets(line, sizeof line, file))
        if (sscanf(line, "VmHWM: %ld kB", &peak) == 1)
            break;
    fclose(file);
    return peak;
}

/* ---- the client ------------------------------------------------------------------ */
typedef struct stats {
    unsigned long done[KINDS];
    unsigned long answers;   /* whole answers read */
    unsigned long surprises; /* a complete or half-close exchange that went wrong */
} stats;

static void reset_close(int socket)
{
    struct linger linger = {.l_onoff = 1, .l_linger = 0};
    setsockopt(socket, SOL_SOCKET, SO_LINGER, &linger, sizeof linger);
    close(socket);
}

/* Read one whole answer (head and Content-Length body) from socket, with
 * leftover bytes kept in buffer. Returns false on EOF, error or nonsense. */
static bool read_answer(int socket, char *buffer, size_t capacity, size_t *have)
{
    for (;;) {
        char *end = memmem(buffer, *have, "\r\n\r\n", 4);
        if (end) {
            size_t head = (size_t)(end - buffer) + 4;
            char *length_header = memmem(buffer, head, "Content-Length: ", 16);
            if (!length_header || strncmp(buffer, "HTTP/1.1 200 ", 13) != 0)
                return false;
            size_t body = strtoul(length_header + 16, NULL, 10);
            if (head + body <= *have) {
                memmove(buffer, buffer + head + body, *have - head - body);
                *have -= head + body;
                return true;
            }
            if (head + body > capacity) { /* a large body: read it through */
                size_t left = head + body - *have;
                while (left > 0) {
                    ssize_t n = recv(socket, buffer, capacity < left ? capacity : left, 0);
                    if (n <= 0)
                        return false;
                    left -= (size_t)n;
                }
                *have = 0;
                return true;
            }
        }
        if (*have == capacity)
            return false;
        ssize_t n = recv(socket, buffer + *have, capacity - *have, 0);
        if (n <= 0)
            return false;
        *have += (size_t)n;
    }
}

static bool expect_close(int socket)
{
    char byte;
    ssize_t n = recv(socket, &byte, 1, 0);
    return n == 0 || (n < 0 && errno == ECONNRESET);
}

static bool send_text(int socket, const char *text, size_t length)
{
    return evq_net_send_all(socket, text, length) == 0;
}

static enum kind pick_kind(evq_random *random)
{
    int roll = (int)(evq_random_next(random) % 100);
    for (int k = 0; k < KINDS; k++) {
        if (roll < kind_weights[k])
            return (enum kind)k;
        roll -= kind_weights[k];
    }
    return COMPLETE;
}

/* Play one connection's part. */
static void play(int socket, enum kind kind, evq_random *random, stats *totals)
{
    char buffer[16384];
    size_t have = 0;
    bool ok = true;
    switch (kind) {
    case COMPLETE: {
        int requests = 1 + (int)(evq_random_next(random) % 2);
        for (int i = 0; i < requests && ok; i++) {
            ok = send_text(socket, request_small, sizeof request_small - 1) &&
                 read_answer(socket, buffer, sizeof buffer, &have);
            totals->answers += ok;
        }
        close(socket);
        break;
    }
    case HALF_CLOSE:
        ok = send_text(socket, request_small, sizeof request_small - 1) &&
             send_text(socket, request_small, sizeof request_small - 1) &&
             shutdown(socket, SHUT_WR) == 0;
        for (int i = 0; i < 2 && ok; i++) {
            ok = read_answer(socket, buffer, sizeof buffer, &have);
            totals->answers += ok;
        }
        ok = ok && have == 0 && expect_close(socket);
        close(socket);
        break;
    case HALF_SENT: {
        size_t part = 1 + (size_t)(evq_random_next(random) % (sizeof request_small - 2));
        send_text(socket, request_small, part);
        close(socket);
        break;
    }
    case RESET:
        send_text(socket, request_large, sizeof request_large - 1);
        if (evq_random_next(random) % 2) { /* some of the answer first */
            ssize_t n = recv(socket, buffer, 1 + evq_random_next(random) % sizeof buffer, 0);
            (void)n;
        }
        reset_close(socket);
        break;
    case IDLE:
        close(socket);
        break;
    case ABORT:
    case KINDS:
        reset_close(socket);
        break;
    }
    totals->done[kind < KINDS ? kind : ABORT]++;
    if (!ok)
        totals->surprises++;
}

/* count connections, in batches: connect a batch, then play each. */
static int run_mix(uint16_t port, unsigned long count, evq_random *random, stats *totals)
{
    int sockets[BATCH];
    enum kind kinds[BATCH];
    for (unsigned long started = 0; started < count;) {
        int batch = count - started < BATCH ? (int)(count - started) : BATCH;
        for (int i = 0; i < batch; i++) {
            evq_socket socket;
            int rc = evq_net_connect_loopback(port, &socket);
            if (rc != 0) {
                fprintf(stderr, "connect: %s\n", evq_strerror(rc));
                for (int k = 0; k < i; k++)
                    close(sockets[k]);
                return rc;
            }
            evq_socket_set_recv_timeout(socket, 10000);
            sockets[i] = socket;
            kinds[i] = pick_kind(random);
        }
        for (int i = 0; i < batch; i++)
            play(sockets[i], kinds[i], random, totals);
        started += (unsigned long)batch;
    }
    return 0;
}

/* Wait (at most 10 s) until the server has closed every connection. */
static uint64_t wait_until_idle(server_type *server)
{
    uint64_t open = server_open(server);
    for (int i = 0; i < 2000 && open > 0; i++) {
        evq_sleep_ms(5);
        open = server_open(server);
    }
    return open;
}

static bool parse_number(const char *text, unsigned long *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long value = strtoul(text, &end, 10);
    if (errno || !end || *end || end == text)
        return false;
    *out = value;
    return true;
}

int main(int argc, char **argv)
{
    unsigned long connections = 10000, seed = 1, slack_kib = 256;
    for (int i = 1; i < argc; i++) {
        unsigned long *target = NULL;
        if (strcmp(argv[i], "--connections") == 0)
            target = &connections;
        else if (strcmp(argv[i], "--seed") == 0)
            target = &seed;
        else if (strcmp(argv[i], "--rss-slack-kib") == 0)
            target = &slack_kib;
        if (!target || i + 1 >= argc || !parse_number(argv[++i], target)) {
            fprintf(stderr, "Usage: %s [--connections N] [--seed S] [--rss-slack-kib K]\n",
                    argv[0]);
            return 2;
        }
    }
    if (evq_net_init() != 0)
        return 2;
    server_type *server = NULL;
    uint16_t port = 0;
    int rc = server_start(&server, &port);
    if (rc != 0) {
        fprintf(stderr, "starting %s: %s\n", server_name, evq_strerror(rc));
        return 2;
    }
    evq_random random;
    evq_random_seed(&random, seed);
    stats warm = {0}, totals = {0};
    if (run_mix(port, WARM_UP, &random, &warm) != 0 || wait_until_idle(server) != 0) {
        fprintf(stderr, "the warm-up did not finish\n");
        return 1;
    }
    long fds_before = open_descriptors(), rss_before = resident_kib();

    uint64_t start = evq_clock_now_ns();
    rc = run_mix(port, connections, &random, &totals);
    double seconds = (double)evq_elapsed_ns(evq_clock_now_ns(), start) / 1e9;
    uint64_t still_open = wait_until_idle(server);
    long fds_after = open_descriptors(), rss_after = resident_kib();
    long rss_peak = peak_resident_kib();

    printf("soak: %lu connections against %s in %.2f s (seed %lu)\n", connections, server_name,
           seconds, seed);
    printf("  mix:");
    for (int k = 0; k < KINDS; k++)
        printf(" %s %lu%s", kind_names[k], totals.done[k], k + 1 < KINDS ? "," : "\n");
    printf("  whole answers read: %lu; exchanges that went wrong: %lu\n", totals.answers,
           totals.surprises);
    printf("  open descriptors: %ld before, %ld after\n", fds_before, fds_after);
    printf("  resident memory: %ld KiB before, %ld KiB after (%+ld KiB; slack %lu), peak %ld KiB\n",
           rss_before, rss_after, rss_after - rss_before, slack_kib, rss_peak);
    printf("  connections the server still holds: %llu\n", (unsigned long long)still_open);

    bool flat = rc == 0 && still_open == 0 && totals.surprises == 0 && fds_after == fds_before &&
                rss_after - rss_before <= (long)slack_kib;
    server_stop(server);
    printf("%s\n",
           flat ? "flat: descriptors and memory came back" : "NOT FLAT: see the figures above");
    return flat ? 0 : 1;
}

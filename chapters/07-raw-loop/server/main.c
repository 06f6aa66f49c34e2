/* main.c - ch07_server_<backend>: the server (server.h) as a program.
 *
 *     ch07_server_epoll [--host H] [--echo-port P] [--http-port P] [--threads N]
 *                       [--design shared|per-thread] [--stats-interval MS] [--grace MS]
 *                       [--max-connections N] [--head-timeout MS] [--idle-timeout MS]
 *                       [--send-timeout MS] [--help]
 *
 * Prints one line per protocol as soon as it listens ("echo listening on
 * 127.0.0.1:PORT": scripts read it), a stats line every --stats-interval,
 * and, after Ctrl-C (SIGINT, SIGTERM; the console handler on Windows), a
 * clean stop and a `stopped:` line with the totals. Exit 0; 2 for a bad
 * option; 1 when the server cannot start.
 */
#if !defined(_WIN32) && !defined(_POSIX_C_SOURCE) && !defined(__APPLE__)
#define _POSIX_C_SOURCE 200809L
#endif
#include "server.h"

#include "evq_args.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef _WIN32
#include <stdatomic.h>
#include <windows.h>
#else
#include <signal.h>
#endif

/* ANCHOR: term_flag */
#ifdef _WIN32
/* Windows calls a console handler on a thread of its own: it may set the
 * flag and wake the queues itself (server_request_stop), then let main go
 * on to the rest of the stop. */
static _Atomic(server *) running; /* set by main once it has started */
static HANDLE stop_event;

static BOOL WINAPI on_console_event(DWORD type)
{
    (void)type; /* Ctrl-C, Ctrl-Break, closing the console: all mean stop */
    server_request_stop(atomic_load(&running)); /* NULL (not started yet): main sees the event */
    SetEvent(stop_event);
    return TRUE;
}

static int catch_stop_signals(void)
{
    stop_event = CreateEventA(NULL, TRUE, FALSE, NULL);
    return stop_event && SetConsoleCtrlHandler(on_console_event, TRUE) ? 0 : -1;
}

static void wait_for_stop_signal(server *s)
{
    (void)s;
    WaitForSingleObject(stop_event, INFINITE);
}
#else
/* A signal handler may do almost nothing (no lock, no wake: the queue's
 * wake is not async-signal-safe). So no handler at all: SIGINT and SIGTERM
 * are blocked in every thread - the loops inherit the mask - and main
 * takes them with sigwait(), as an ordinary thread that may then set the
 * flag and wake the queues. */
static sigset_t stop_signals;

static int catch_stop_signals(void)
{
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    return pthread_sigmask(SIG_BLOCK, &stop_signals, NULL) == 0 ? 0 : -1;
}

static void wait_for_stop_signal(server *s)
{
    int signal_number = 0;
    while (sigwait(&stop_signals, &signal_number) != 0) {
    }
    server_request_stop(s);
}
#endif
/* ANCHOR_END: term_flag */

/* ---- arguments ----------------------------------------------------------------- */
static int usage(FILE *to, const char *program, int status)
{
    server_config defaults;
    server_config_init(&defaults); /* the default design depends on the system */
    fprintf(to,
            "Usage: %s [--host H] [--echo-port P] [--http-port P] [--threads N]\n"
            "          [--design shared|per-thread] [--stats-interval MS] [--grace MS]\n"
            "          [--max-connections N] [--head-timeout MS] [--idle-timeout MS]\n"
            "          [--send-timeout MS] [--help]\n"
            "\n"
            "An echo server and an HTTP/1.1 server on the %s event queue, run by raw\n"
            "event loops (one per thread). A protocol is served when its port is given\n"
            "(0: any free port); with neither, both, on free ports. Ctrl-C stops it:\n"
            "listeners close, idle connections close, answers in flight get the grace.\n"
            "\n"
            "  --host H             address to listen on (default 127.0.0.1)\n"
            "  --echo-port P        serve echo on port P: every byte comes back\n"
            "  --http-port P        serve HTTP on port P: GET / and GET /bytes/N\n"
            "  --threads N          loop threads, 1 to %d (default 1)\n"
            "  --design D           per-thread: a queue and listeners per thread\n"
            "                       (SO_REUSEPORT; not on Windows or macOS); shared: one queue,\n"
            "                       N loops waiting on it (default %s)\n"
            "  --stats-interval MS  a stats line every MS ms; 0: none (default %u)\n"
            "  --grace MS           how long answers in flight may finish after Ctrl-C\n"
            "                       (default %u)\n"
            "  --max-connections N  open at once, per queue (default %u)\n"
            "  --head-timeout MS    an HTTP request head must be complete this long after\n"
            "                       the accept or the previous answer, else 408 (default %u)\n"
            "  --idle-timeout MS    a connection may be silent this long (default %u)\n"
            "  --send-timeout MS    an answer that makes no progress this long is dropped\n"
            "                       (default %u)\n"
            "  -h, --help           show this help and exit\n"
            "\n"
            "Example:\n"
            "  %s --http-port 8080 --threads 2 &\n"
            "  curl -s http://127.0.0.1:8080/bytes/1000 | wc -c\n",
            program, evq_backend(), SERVER_MAX_THREADS,
            defaults.design == SERVER_SHARED ? "shared" : "per-thread",
            SERVER_DEFAULT_STATS_INTERVAL, SERVER_DEFAULT_GRACE, SERVER_DEFAULT_MAX_CONNECTIONS,
            SERVER_DEFAULT_HEAD_TIMEOUT, SERVER_DEFAULT_IDLE_TIMEOUT, SERVER_DEFAULT_SEND_TIMEOUT,
            program);
    return status;
}

enum option {
    OPT_HOST,
    OPT_ECHO_PORT,
    OPT_HTTP_PORT,
    OPT_THREADS,
    OPT_DESIGN,
    OPT_STATS_INTERVAL,
    OPT_GRACE,
    OPT_MAX_CONNECTIONS,
    OPT_HEAD_TIMEOUT,
    OPT_IDLE_TIMEOUT,
    OPT_SEND_TIMEOUT,
    OPT_COUNT
};

static const struct {
    const char *name, *wants;
    unsigned long min, max;
} options[OPT_COUNT] = {
    [OPT_HOST] = {"--host", "an address", 0, 0},
    [OPT_ECHO_PORT] = {"--echo-port", "a port number from 0 to 65535", 0, 65535},
    [OPT_HTTP_PORT] = {"--http-port", "a port number from 0 to 65535", 0, 65535},
    [OPT_THREADS] = {"--threads", "a number of threads from 1 to 64", 1, SERVER_MAX_THREADS},
    [OPT_DESIGN] = {"--design", "shared or per-thread", 0, 0},
    [OPT_STATS_INTERVAL] = {"--stats-interval", "milliseconds from 0 to 3600000", 0, 3600000},
    [OPT_GRACE] = {"--grace", "milliseconds from 0 to 3600000", 0, 3600000},
    [OPT_MAX_CONNECTIONS] = {"--max-connections", "a number from 1 to 1000000", 1, 1000000},
    [OPT_HEAD_TIMEOUT] = {"--head-timeout", "milliseconds from 1 to 3600000", 1, 3600000},
    [OPT_IDLE_TIMEOUT] = {"--idle-timeout", "milliseconds from 1 to 3600000", 1, 3600000},
    [OPT_SEND_TIMEOUT] = {"--send-timeout", "milliseconds from 1 to 3600000", 1, 3600000},
};

/* Fill *config from argv. 0, 1 for --help, or 2 after saying why on stderr. */
static int parse_arguments(int argc, char **argv, const char *program, server_config *config)
{
    bool port_given = false;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0)
            return 1;
        size_t which = 0;
        while (which < OPT_COUNT && strcmp(arg, options[which].name) != 0)
            which++;
        if (which == OPT_COUNT) {
            fprintf(stderr, "%s: %s is not an option (try --help)\n", program, arg);
            return 2;
        }
        const char *value = i + 1 < argc ? argv[++i] : NULL;
        unsigned long number = 0;
        bool ok;
        if (which == OPT_HOST)
            ok = value && *value;
        else if (which == OPT_DESIGN)
            ok = value && (strcmp(value, "shared") == 0 || strcmp(value, "per-thread") == 0);
        else
            ok = evq_parse_ulong(value, options[which].min, options[which].max, &number);
        if (!ok) {
            fprintf(stderr, "%s: %s needs %s, got '%s'\n", program, arg, options[which].wants,
                    value ? value : "");
            return 2;
        }
        switch ((enum option)which) {
        case OPT_HOST:
            config->host = value;
            break;
        case OPT_ECHO_PORT:
        case OPT_HTTP_PORT: {
            enum server_protocol p = which == OPT_ECHO_PORT ? SERVER_ECHO : SERVER_HTTP;
            if (!port_given) /* the first port given: only what is asked for is served */
                config->serve[SERVER_ECHO] = config->serve[SERVER_HTTP] = false;
            port_given = true;
            config->serve[p] = true;
            config->port[p] = (uint16_t)number;
            break;
        }
        case OPT_THREADS:
            config->threads = (unsigned)number;
            break;
        case OPT_DESIGN:
            config->design = strcmp(value, "shared") == 0 ? SERVER_SHARED : SERVER_PER_THREAD;
            break;
        case OPT_STATS_INTERVAL:
            config->stats_interval_ms = (uint32_t)number;
            break;
        case OPT_GRACE:
            config->grace_ms = (uint32_t)number;
            break;
        case OPT_MAX_CONNECTIONS:
            config->max_connections = (uint32_t)number;
            break;
        case OPT_HEAD_TIMEOUT:
            config->head_timeout_ms = (uint32_t)number;
            break;
        case OPT_IDLE_TIMEOUT:
            config->idle_timeout_ms = (uint32_t)number;
            break;
        case OPT_SEND_TIMEOUT:
            config->send_timeout_ms = (uint32_t)number;
            break;
        case OPT_COUNT:
            break;
        }
    }
#ifdef _WIN32
    if (config->design == SERVER_PER_THREAD && config->threads > 1) {
        fprintf(stderr,
                "%s: --design per-thread needs SO_REUSEPORT, which Windows does not have: "
                "use --design shared\n",
                program);
        return 2;
    }
#endif
    return 0;
}

int main(int argc, char **argv)
{
    const char *program = argc > 0 && argv[0] ? argv[0] : "ch07_server";
    for (const char *p = program; *p; p++) { /* the name, without its directory */
        if (*p == '/' || *p == '\\')
            program = p + 1;
    }
    server_config config;
    server_config_init(&config);
    int status = parse_arguments(argc, argv, program, &config);
    if (status == 1)
        return usage(stdout, program, 0);
    if (status != 0)
        return status;

    if (catch_stop_signals() != 0) {
        fprintf(stderr, "%s: cannot catch Ctrl-C\n", program);
        return 1;
    }
    server *s = NULL;
    int rc = server_start(&config, &s);
    if (rc != 0) {
        fprintf(stderr, "%s: cannot start on %s: %s\n", program, config.host, evq_strerror(rc));
        return 1;
    }
#ifdef _WIN32
    atomic_store(&running, s); /* a Ctrl-C before this: the event is set, server_stop stops it */
#endif
    static const char *const names[SERVER_PROTOCOLS] = {"echo", "http"};
    for (int p = 0; p < SERVER_PROTOCOLS; p++) {
        if (config.serve[p])
            printf("%s listening on %s:%u\n", names[p], config.host,
                   (unsigned)server_port(s, (enum server_protocol)p));
    }
    printf("threads: %u, design: %s, backend: %s\n", config.threads,
           config.threads == 1              ? "one loop"
           : config.design == SERVER_SHARED ? "shared"
                                            : "per-thread",
           evq_backend());
    fflush(stdout);

    wait_for_stop_signal(s);
    server_stats totals;
    rc = server_stop(s, &totals);
    printf("stopped: accepted %" PRIu64 ", requests %" PRIu64 ", bytes in %" PRIu64 " out %" PRIu64
           ", timeouts head %" PRIu64 " idle %" PRIu64 " send %" PRIu64 " linger %" PRIu64
           "; at the stop: %" PRIu64 " closed, %" PRIu64 " finished in the grace, %" PRIu64
           " cut\n",
           totals.accepted, totals.requests, totals.bytes_in, totals.bytes_out,
           totals.head_timeouts, totals.idle_timeouts, totals.send_timeouts, totals.linger_timeouts,
           totals.stop_closed, totals.stop_finished, totals.stop_cut);
    fflush(stdout);
    if (rc != 0)
        fprintf(stderr, "%s: a loop ended with an error: %s\n", program, evq_strerror(rc));
    return rc == 0 ? 0 : 1;
}

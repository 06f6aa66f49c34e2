/* server_main.c - the chapter's HTTP server as a program:
 *
 *     ch06_server_epoll [--port P] [--seconds N] [--max-head BYTES]
 *                       [--head-timeout MS] [--idle-timeout MS]
 *                       [--send-timeout MS] [--linger-timeout MS]
 *
 * Prints the address it listens on, serves until Ctrl-C (or for N seconds),
 * then stops the server cleanly and prints what it served.
 */
#if !defined(_WIN32) && !defined(_POSIX_C_SOURCE) && !defined(__APPLE__)
#define _POSIX_C_SOURCE 200809L
#endif
#include "http_server.h"

#include "evq_args.h"
#include "evq_clock.h"
#include "evq_thread.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef _WIN32
#include <windows.h>
#else
#include <signal.h>
#endif

/* ---- Ctrl-C ------------------------------------------------------------------ */
#ifdef _WIN32
static volatile LONG stop_requested;

static BOOL WINAPI on_console_event(DWORD type)
{
    (void)type; /* Ctrl-C, Ctrl-Break, closing the console: all mean stop */
    InterlockedExchange(&stop_requested, 1);
    return TRUE;
}

static int catch_stop_signals(void)
{
    return SetConsoleCtrlHandler(on_console_event, TRUE) ? 0 : -1;
}

static bool stop_signalled(void)
{
    return InterlockedCompareExchange(&stop_requested, 0, 0) != 0;
}
#else
static volatile sig_atomic_t stop_requested;

static void on_signal(int signal_number)
{
    (void)signal_number;
    stop_requested = 1; /* all a handler may safely do */
}

static int catch_stop_signals(void)
{
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_signal;
    sigemptyset(&action.sa_mask);
    return sigaction(SIGINT, &action, NULL) == 0 && sigaction(SIGTERM, &action, NULL) == 0 ? 0 : -1;
}

static bool stop_signalled(void)
{
    return stop_requested != 0;
}
#endif

/* ---- arguments ----------------------------------------------------------------- */
static int usage(FILE *to, const char *program, int status)
{
    fprintf(to,
            "Usage: %s [--port P] [--seconds N] [--max-head BYTES]\n"
            "          [--head-timeout MS] [--idle-timeout MS] [--send-timeout MS]\n"
            "          [--linger-timeout MS]\n"
            "\n"
            "An HTTP/1.1 server on 127.0.0.1, on one thread with the %s event queue.\n"
            "Requests may arrive in pieces (each connection keeps its parse position\n"
            "between loop turns), and large answers go out as fast as the client\n"
            "reads them: the write queue never holds more than its limit. Every\n"
            "connection has a deadline, whatever state it is in.\n"
            "\n"
            "  GET /          a short text\n"
            "  GET /bytes/N   N bytes of a fixed pattern (N up to 67108864)\n"
            "  HEAD works too; anything else gets 404, a bad request 400 and a head\n"
            "  over the limit 431, with the reason in the body.\n"
            "\n"
            "  --port P             port to listen on (default 0: any free port, printed)\n"
            "  --seconds N          stop after N seconds (default: run until Ctrl-C)\n"
            "  --max-head BYTES     the largest request head accepted (default 8192)\n"
            "  --head-timeout MS    a request head must be complete this long after the\n"
            "                       accept or the previous answer, else 408 (default %u)\n"
            "  --idle-timeout MS    a kept-alive connection may be silent this long after\n"
            "                       an answer, if less than the head's (default %u)\n"
            "  --send-timeout MS    an answer that makes no progress this long is dropped:\n"
            "                       the client stopped reading (default %u)\n"
            "  --linger-timeout MS  a closing connection waits this long for the client\n"
            "                       to close (default %u)\n"
            "  -h, --help           show this help and exit\n"
            "\n"
            "Example:\n"
            "  %s --port 8080 &\n"
            "  curl -s http://127.0.0.1:8080/bytes/10000000 | wc -c\n",
            program, evq_backend(), HTTP_SERVER_DEFAULT_HEAD_TIMEOUT,
            HTTP_SERVER_DEFAULT_IDLE_TIMEOUT, HTTP_SERVER_DEFAULT_SEND_TIMEOUT,
            HTTP_SERVER_DEFAULT_LINGER_TIMEOUT, program);
    return status;
}

int main(int argc, char **argv)
{
    const char *program = argc > 0 && argv[0] ? argv[0] : "ch06_server";
    for (const char *p = program; *p; p++) { /* the name, without its directory */
        if (*p == '/' || *p == '\\')
            program = p + 1;
    }
    http_server_config config;
    http_server_config_init(&config);
    unsigned long seconds = 0;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0)
            return usage(stdout, program, 0);
        static const struct {
            const char *name, *wants;
            unsigned long min, max;
        } options[] = {
            {"--port", "a port number from 0 to 65535", 0, 65535},
            {"--seconds", "a number of seconds from 1 to 86400", 1, 86400},
            {"--max-head", "a number of bytes from 64 to 65536", 64, 65536},
            {"--head-timeout", "milliseconds from 1 to 3600000", 1, 3600000},
            {"--idle-timeout", "milliseconds from 1 to 3600000", 1, 3600000},
            {"--send-timeout", "milliseconds from 1 to 3600000", 1, 3600000},
            {"--linger-timeout", "milliseconds from 1 to 3600000", 1, 3600000},
        };
        size_t which = 0;
        while (which < sizeof options / sizeof options[0] && strcmp(arg, options[which].name) != 0)
            which++;
        if (which == sizeof options / sizeof options[0]) {
            fprintf(stderr, "%s: %s is not an option\n", program, arg);
            return usage(stderr, program, 2);
        }
        const char *value = i + 1 < argc ? argv[++i] : NULL;
        unsigned long number = 0;
        if (!evq_parse_ulong(value, options[which].min, options[which].max, &number)) {
            fprintf(stderr, "%s: %s needs %s, got '%s'\n", program, arg, options[which].wants,
                    value ? value : "");
            return 2;
        }
        if (which == 0)
            config.port = (uint16_t)number;
        else if (which == 1)
            seconds = number;
        else if (which == 2)
            config.max_head = number;
        else if (which == 3)
            config.head_timeout_ms = (uint32_t)number;
        else if (which == 4)
            config.idle_timeout_ms = (uint32_t)number;
        else if (which == 5)
            config.send_timeout_ms = (uint32_t)number;
        else
            config.linger_timeout_ms = (uint32_t)number;
    }

    if (catch_stop_signals() != 0) {
        fprintf(stderr, "%s: cannot install the Ctrl-C handler\n", program);
        return 1;
    }
    http_server *server = NULL;
    int rc = http_server_start(&config, &server);
    if (rc != 0) {
        fprintf(stderr, "%s: cannot listen on %s:%u: %s\n", program, config.host,
                (unsigned)config.port, evq_strerror(rc));
        return 1;
    }
    printf("%s: listening on http://%s:%u/ (one thread, %s)\n", program, config.host,
           (unsigned)http_server_port(server), evq_backend());
    fflush(stdout);

    /* The server runs on its own thread; this one only waits for Ctrl-C or
     * the end of --seconds, looking 20 times a second. */
    uint64_t stop_at = seconds ? evq_clock_now_ns() + evq_ms_to_ns(seconds * 1000u) : UINT64_MAX;
    while (!stop_signalled() && evq_clock_now_ns() < stop_at)
        evq_sleep_ms(50);

    http_server_stats stats;
    rc = http_server_stop(server, &stats);
    printf("%s: stopped%s. %llu connections, %llu requests: %llu answered 200, %llu refused; "
           "%llu bytes written, %llu short writes, longest write queue %zu bytes (limit %zu); "
           "deadlines passed: %llu head, %llu idle, %llu send, %llu linger\n",
           program, stop_signalled() ? " on a signal" : "", (unsigned long long)stats.accepted,
           (unsigned long long)stats.requests, (unsigned long long)stats.answered_ok,
           (unsigned long long)stats.refused, (unsigned long long)stats.bytes_written,
           (unsigned long long)stats.short_writes, stats.write_queued_peak, stats.write_high,
           (unsigned long long)stats.head_timeouts, (unsigned long long)stats.idle_timeouts,
           (unsigned long long)stats.send_timeouts, (unsigned long long)stats.linger_timeouts);
    if (rc != 0)
        fprintf(stderr, "%s: the loop ended with an error: %s\n", program, evq_strerror(rc));
    return rc == 0 ? 0 : 1;
}

/* delayserver_main.c - the delay server on its own: `delayserver --port N`.
 *
 * Prints "delayserver listening on 127.0.0.1:PORT" once it accepts
 * connections, serves until Ctrl-C (SIGINT or SIGTERM on POSIX, a console
 * control event on Windows), then stops the server, joins its thread,
 * prints a one-line summary and exits with status 0. Bad arguments: a
 * message on stderr and status 2; a server that cannot start: status 1.
 */
#if !defined(_WIN32) && !defined(_POSIX_C_SOURCE) && !defined(__APPLE__)
#define _POSIX_C_SOURCE 200809L
#endif
#include "evq_args.h"
#include "evq_delay_server.h"
#include "evq_error.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef _WIN32
#include <windows.h>
#else
#include <signal.h>
#endif

static const char usage[] =
    "Usage: delayserver [--port N] [--max-delay MS] [--header-timeout MS] [--max-clients N]\n"
    "\n"
    "An HTTP/1.1 server on 127.0.0.1 that answers GET /{delay_ms}/{message}\n"
    "with 200 and the body {message} (percent-decoded) after delay_ms milliseconds.\n"
    "\n"
    "  --port N             port to listen on (default 0: any free port, printed)\n"
    "  --max-delay MS       longest delay accepted; longer ones get 400 (default 60000)\n"
    "  --header-timeout MS  time for a whole request head, from accept or from the\n"
    "                       answer before; then 408 and close (default 10000)\n"
    "  --max-clients N      connections served at once; more wait (default 4096)\n"
    "  -h, --help           show this help and exit\n"
    "\n"
    "Example:\n"
    "  delayserver --port 8080 &\n"
    "  curl http://127.0.0.1:8080/1500/hello\n"
    "\n"
    "Stops cleanly on Ctrl-C.\n";

/* ---- waiting for Ctrl-C ---------------------------------------------------- */
#ifdef _WIN32
static HANDLE stop_event;

static BOOL WINAPI on_console_event(DWORD type)
{
    (void)type; /* Ctrl-C, Ctrl-Break, closing the console: all mean stop */
    SetEvent(stop_event);
    return TRUE;
}

static int prepare_for_signals(void)
{
    stop_event = CreateEventA(NULL, TRUE, FALSE, NULL);
    if (!stop_event || !SetConsoleCtrlHandler(on_console_event, TRUE))
        return -1;
    return 0;
}

static void wait_for_stop_signal(void)
{
    WaitForSingleObject(stop_event, INFINITE);
}
#else
static volatile sig_atomic_t stop_requested;

static void on_signal(int signal_number)
{
    (void)signal_number;
    stop_requested = 1; /* all a handler may safely do */
}

static sigset_t stop_signals;
static sigset_t mask_before;

/* Block SIGINT and SIGTERM before the server thread starts, so that the
 * thread inherits the block and the signal always reaches main, which
 * unblocks them only inside sigsuspend(): no window where the flag is set
 * after main checked it and before it slept. */
static int prepare_for_signals(void)
{
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_signal;
    sigemptyset(&action.sa_mask);
    if (sigaction(SIGINT, &action, NULL) != 0 || sigaction(SIGTERM, &action, NULL) != 0)
        return -1;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    return pthread_sigmask(SIG_BLOCK, &stop_signals, &mask_before) == 0 ? 0 : -1;
}

static void wait_for_stop_signal(void)
{
    sigset_t waiting = mask_before;
    sigdelset(&waiting, SIGINT);
    sigdelset(&waiting, SIGTERM);
    while (!stop_requested)
        sigsuspend(&waiting);
}
#endif

/* ---- arguments --------------------------------------------------------------- */
static int bad_argument(const char *message, const char *option, const char *value)
{
    if (value)
        fprintf(stderr, "delayserver: %s %s, got '%s'\n", option, message, value);
    else
        fprintf(stderr, "delayserver: %s %s\n", option, message);
    fprintf(stderr, "Try 'delayserver --help'.\n");
    return 2;
}

int main(int argc, char **argv)
{
    evq_delay_server_config config;
    evq_delay_server_config_init(&config);
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
            fputs(usage, stdout);
            return 0;
        }
        /* --name VALUE or --name=VALUE */
        static const struct {
            const char *name;
            unsigned long min, max;
            const char *wants;
        } options[] = {
            {"--port", 0, 65535, "needs a port number from 0 to 65535"},
            {"--max-delay", 1, 0xFFFFFFFFul, "needs a number of milliseconds from 1 to 4294967295"},
            {"--header-timeout", 1, 0xFFFFFFFFul,
             "needs a number of milliseconds from 1 to 4294967295"},
            {"--max-clients", 1, 1000000, "needs a number from 1 to 1000000"},
        };
        size_t which = sizeof options / sizeof options[0];
        const char *value = NULL;
        for (size_t k = 0; k < sizeof options / sizeof options[0]; k++) {
            size_t length = strlen(options[k].name);
            if (strncmp(arg, options[k].name, length) != 0)
                continue;
            if (arg[length] == '\0') {
                which = k;
                if (i + 1 >= argc)
                    return bad_argument(options[k].wants, options[k].name, NULL);
                value = argv[++i];
            } else if (arg[length] == '=') {
                which = k;
                value = arg + length + 1;
            } else {
                continue;
            }
            break;
        }
        if (which == sizeof options / sizeof options[0])
            return bad_argument("is not an option", arg, NULL);
        unsigned long number = 0;
        if (!evq_parse_ulong(value, options[which].min, options[which].max, &number))
            return bad_argument(options[which].wants, options[which].name, value);
        switch (which) {
        case 0:
            config.port = (uint16_t)number;
            break;
        case 1:
            config.max_delay_ms = (uint32_t)number;
            break;
        case 2:
            config.header_timeout_ms = (uint32_t)number;
            break;
        default:
            config.max_clients = (uint32_t)number;
            break;
        }
    }

    if (prepare_for_signals() != 0) {
        fprintf(stderr, "delayserver: cannot install the Ctrl-C handler\n");
        return 1;
    }
    evq_delay_server *server = NULL;
    int rc = evq_delay_server_start(&config, &server);
    if (rc != 0) {
        fprintf(stderr, "delayserver: cannot listen on 127.0.0.1:%u: %s\n", (unsigned)config.port,
                evq_strerror(rc));
        return 1;
    }
    printf("delayserver listening on 127.0.0.1:%u\n", (unsigned)evq_delay_server_port(server));
    fflush(stdout);

    wait_for_stop_signal();

    evq_delay_server_stats stats;
    evq_delay_server_get_stats(server, &stats);
    evq_delay_server_stop(server);
    printf("delayserver stopped: %llu connections, %llu answered, %llu rejected, "
           "%llu timed out, %llu disconnected early\n",
           (unsigned long long)stats.accepted, (unsigned long long)stats.answered,
           (unsigned long long)stats.rejected, (unsigned long long)stats.timed_out,
           (unsigned long long)stats.disconnected);
    fflush(stdout);
    return 0;
}

/* main.c - evq_load as a program (ch07_load_<backend>): the command line of
 * load.h, and Ctrl-C. */
#if !defined(_WIN32) && !defined(_POSIX_C_SOURCE) && !defined(__APPLE__)
#define _POSIX_C_SOURCE 200809L
#endif
#include "load.h"

#include "evq_net.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#ifdef _WIN32
#include <windows.h>
#else
#include <signal.h>
#endif

/* ANCHOR: term_flag */
/* The loop's termination flag. A lock-free atomic store is one of the few
 * things a signal handler may do; the loop sees the flag within one turn
 * (its watchdog wakes it every 100 ms), stops issuing, waits for what is in
 * flight and reports. */
static atomic_bool stop_flag;

#ifdef _WIN32
static BOOL WINAPI on_console_event(DWORD type)
{
    (void)type; /* Ctrl-C, Ctrl-Break, closing the console: all mean stop */
    atomic_store(&stop_flag, true);
    return TRUE;
}

static void catch_stop_signals(void)
{
    SetConsoleCtrlHandler(on_console_event, TRUE);
}
#else
static void on_signal(int signal_number)
{
    (void)signal_number;
    atomic_store(&stop_flag, true);
}

static void catch_stop_signals(void)
{
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_signal;
    sigemptyset(&action.sa_mask);
    sigaction(SIGINT, &action, NULL);
    sigaction(SIGTERM, &action, NULL);
}
#endif
/* ANCHOR_END: term_flag */

int main(int argc, char **argv)
{
    atomic_init(&stop_flag, false);
    catch_stop_signals();
    evq_net_raise_descriptor_limit(); /* a thousand connections */
    return load_main(argc, argv, stdout, stderr, &stop_flag, NULL);
}

/* pingpong.c - what the kqueue emulation costs, against raw epoll.
 *
 * One thread, one loopback TCP pair: write a byte on one end, wait until the
 * other end is readable, read it, answer, and so on. Each round trip is two
 * waits. The same loop runs on raw epoll (the baseline, measured in the same
 * process) and on the emulation with three ways of using a read knote:
 * level-triggered (added once), EV_CLEAR (added once), and EV_ONESHOT
 * re-added after every event (chapter 2's style).
 *
 *   kqueue_pingpong [round trips [only]]   (default 20000; only: 0-3, one style)
 *
 * Prints nanoseconds per round trip and the ratio to raw epoll. Run it on a
 * Release build; one run on a busy machine is an indication, not a claim.
 * With one style only (no ratio), `strace -c` counts its system calls.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/event.h>
#include <time.h>
#include <unistd.h>

#include "evq_args.h"
#include "evq_clock.h"
#include "evq_net.h"

enum style { RAW_EPOLL, KQUEUE_LEVEL, KQUEUE_CLEAR, KQUEUE_ONESHOT };

static const char *const style_names[] = {
    "raw epoll, level-triggered",
    "kqueue emulation, level-triggered",
    "kqueue emulation, EV_CLEAR",
    "kqueue emulation, EV_ONESHOT re-added",
};

static int send_byte(int fd)
{
    char byte = 'x';
    return write(fd, &byte, 1) == 1 ? 0 : -1;
}

static int read_byte(int fd)
{
    char byte;
    return read(fd, &byte, 1) == 1 ? 0 : -1;
}

/* Wait until fd is readable, on whichever queue the style uses. */
static int wait_readable(enum style style, int queue, int fd)
{
    if (style == RAW_EPOLL) {
        struct epoll_event event;
        int n = epoll_wait(queue, &event, 1, 5000);
        return n == 1 && (int)event.data.fd == fd ? 0 : -1;
    }
    struct kevent change, event;
    int nchanges = 0;
    if (style == KQUEUE_ONESHOT) {
        EV_SET(&change, (uintptr_t)fd, EVFILT_READ, EV_ADD | EV_ONESHOT, 0, 0, NULL);
        nchanges = 1;
    }
    struct timespec timeout = {5, 0};
    int n = kevent(queue, &change, nchanges, &event, 1, &timeout);
    return n == 1 && event.ident == (uintptr_t)fd ? 0 : -1;
}

/* Register both ends for reading; the one-shot style registers per wait. */
static int open_queue(enum style style, const int fds[2])
{
    if (style == RAW_EPOLL) {
        int epfd = epoll_create1(EPOLL_CLOEXEC);
        for (int i = 0; i < 2 && epfd >= 0; i++) {
            struct epoll_event event = {.events = EPOLLIN, .data.fd = fds[i]};
            if (epoll_ctl(epfd, EPOLL_CTL_ADD, fds[i], &event) != 0)
                return -1;
        }
        return epfd;
    }
    int kq = kqueue();
    if (kq < 0 || style == KQUEUE_ONESHOT)
        return kq;
    struct kevent changes[2];
    unsigned short flags = EV_ADD | (style == KQUEUE_CLEAR ? EV_CLEAR : 0);
    for (int i = 0; i < 2; i++)
        EV_SET(&changes[i], (uintptr_t)fds[i], EVFILT_READ, flags, 0, 0, NULL);
    return kevent(kq, changes, 2, NULL, 0, NULL) == 0 ? kq : -1;
}

/* Nanoseconds per round trip, or 0 on failure. */
static double run(enum style style, long rounds)
{
    evq_socket fds[2];
    if (evq_net_tcp_pair(&fds[0], &fds[1]) != 0)
        return 0;
    evq_socket_set_nodelay(fds[0], true);
    evq_socket_set_nodelay(fds[1], true);
    int queue = open_queue(style, fds);
    uint64_t start = evq_clock_now_ns();
    long done = 0;
    for (; queue >= 0 && done < rounds; done++) {
        if (send_byte(fds[0]) != 0 || wait_readable(style, queue, fds[1]) != 0 ||
            read_byte(fds[1]) != 0 || send_byte(fds[1]) != 0 ||
            wait_readable(style, queue, fds[0]) != 0 || read_byte(fds[0]) != 0)
            break;
    }
    uint64_t elapsed = evq_clock_now_ns() - start;
    if (queue >= 0)
        close(queue);
    evq_socket_close(fds[0]);
    evq_socket_close(fds[1]);
    return done == rounds ? (double)elapsed / (double)rounds : 0;
}

int main(int argc, char **argv)
{
    unsigned long rounds = 20000, style_arg = 0;
    long only = -1;
    if (argc > 3 || (argc > 1 && !evq_parse_ulong(argv[1], 1, LONG_MAX, &rounds)) ||
        (argc > 2 && !evq_parse_ulong(argv[2], 0, KQUEUE_ONESHOT, &style_arg))) {
        fprintf(stderr, "usage: %s [round trips > 0 [style 0-3]]\n", argv[0]);
        return 2;
    }
    if (argc > 2)
        only = (long)style_arg;
    printf("%lu round trips over a loopback TCP pair, two waits each\n\n", rounds);
    printf("| %-38s | ns per round trip | vs raw epoll |\n", "queue");
    printf("|%s|---:|---:|\n", "----------------------------------------");
    double baseline = 0;
    for (int style = RAW_EPOLL; style <= KQUEUE_ONESHOT; style++) {
        if (only >= 0 && style != only && style != RAW_EPOLL)
            continue;
        if (only > RAW_EPOLL && style == RAW_EPOLL) {
            baseline = 1; /* not measured: the ratio column is meaningless */
            continue;
        }
        double ns = run((enum style)style, (long)rounds);
        if (ns == 0) {
            fprintf(stderr, "%s: the ping-pong failed\n", style_names[style]);
            return 1;
        }
        if (style == RAW_EPOLL)
            baseline = ns;
        printf("| %-38s | %17.0f | %11.2fx |\n", style_names[style], ns, ns / baseline);
    }
    return 0;
}

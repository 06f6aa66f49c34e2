/* kq_test.c - helpers for the kqueue conformance suite (see kq_test.h). */
#if defined(__APPLE__)
#define _DARWIN_C_SOURCE
#elif !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L
#endif
#include "kq_test.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "evq_net.h"
#include "evq_test.h"

int kq_open(void)
{
    /* A test writes to sockets whose peer may be gone: EPIPE, not SIGPIPE. */
    signal(SIGPIPE, SIG_IGN);
    int kq = kqueue();
    if (kq < 0)
        evq_test_fail(__FILE__, __LINE__, "kqueue() failed: %s", strerror(errno));
    return kq;
}

int kq_change(int kq, uintptr_t ident, short filter, unsigned short flags, unsigned fflags,
              int64_t data, void *udata)
{
    struct kevent change;
    EV_SET(&change, ident, filter, flags, fflags, data, udata);
    /* With no room for events kevent() returns at once whatever the timeout;
     * a zero one keeps a provider that gets that wrong from hanging here. */
    struct timespec zero = {0, 0};
    errno = 0;
    int result = kevent(kq, &change, 1, NULL, 0, &zero);
    if (result == 0)
        return 0;
    if (result == -1 && errno != 0)
        return errno;
    /* -1 with errno 0 is still a failed change, not a success. */
    evq_test_note("kevent() returned %d for a change and left errno at %d", result, errno);
    return KQ_NO_ERRNO;
}

/* The watchdog's signal: a handler that does nothing, installed without
 * SA_RESTART, so that a blocked kevent() returns -1 with EINTR. */
enum { KQ_WATCHDOG_SIGNAL = SIGUSR2, KQ_WATCHDOG_STEP_MS = 10, KQ_WATCHDOG_GIVE_UP_MS = 10000 };

static void on_watchdog_signal(int signal_number)
{
    (void)signal_number;
}

/* ANCHOR: watchdog */
static void watchdog_run(void *arg)
{
    kq_watchdog *watchdog = arg;
    int64_t deadline = monotonic_ms() + watchdog->bound_ms;
    while (!atomic_load(&watchdog->stop) && monotonic_ms() < deadline)
        evq_sleep_ms(5);
    for (int waited = 0; !atomic_load(&watchdog->stop); waited += KQ_WATCHDOG_STEP_MS) {
        if (waited >= KQ_WATCHDOG_GIVE_UP_MS) {
            /* Interrupted for 10 s and still inside: a provider that
             * restarts the wait on EINTR. Fail now rather than hang. */
            static const char message[] = "kq_test: a kevent() under a watchdog did not return "
                                          "even when interrupted: giving up\n";
            ssize_t ignored = write(STDOUT_FILENO, message, sizeof message - 1);
            (void)ignored;
            _exit(EXIT_FAILURE);
        }
        atomic_store(&watchdog->fired, true);
        pthread_kill(watchdog->target, KQ_WATCHDOG_SIGNAL);
        evq_sleep_ms(KQ_WATCHDOG_STEP_MS);
    }
}
/* ANCHOR_END: watchdog */

bool kq_watchdog_start(kq_watchdog *watchdog, int bound_ms)
{
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_watchdog_signal;
    sigemptyset(&action.sa_mask);
    action.sa_flags = 0; /* no SA_RESTART */
    if (sigaction(KQ_WATCHDOG_SIGNAL, &action, NULL) != 0) {
        evq_test_fail(__FILE__, __LINE__, "sigaction() failed: %s", strerror(errno));
        return false;
    }
    watchdog->target = pthread_self();
    watchdog->bound_ms = bound_ms;
    atomic_init(&watchdog->stop, false);
    atomic_init(&watchdog->fired, false);
    if (evq_thread_start(&watchdog->thread, watchdog_run, watchdog) != 0) {
        evq_test_fail(__FILE__, __LINE__, "no watchdog thread");
        return false;
    }
    return true;
}

bool kq_watchdog_fired(kq_watchdog *watchdog)
{
    return atomic_load(&watchdog->fired);
}

bool kq_watchdog_stop(kq_watchdog *watchdog)
{
    atomic_store(&watchdog->stop, true);
    /* Once joined, the watchdog sends nothing more; a signal it sent just
     * before has been handled by then (the join itself enters the kernel). */
    evq_thread_join(&watchdog->thread);
    return kq_watchdog_fired(watchdog);
}

int kq_kevent_bounded(int kq, const struct kevent *changes, int nchanges, struct kevent *events,
                      int nevents, const struct timespec *timeout, int bound_ms, bool *overran)
{
    kq_watchdog watchdog;
    *overran = false;
    if (!kq_watchdog_start(&watchdog, bound_ms)) {
        errno = EAGAIN;
        return -1;
    }
    int result = kevent(kq, changes, nchanges, events, nevents, timeout);
    int saved_errno = errno;
    *overran = kq_watchdog_stop(&watchdog);
    errno = saved_errno;
    return result;
}

int kq_wait(int kq, struct kevent *events, int capacity, int timeout_ms)
{
    struct timespec timeout = {timeout_ms / 1000, (long)(timeout_ms % 1000) * 1000000};
    return kevent(kq, NULL, 0, events, capacity, timeout_ms < 0 ? NULL : &timeout);
}

int kq_poll(int kq, struct kevent *events, int capacity)
{
    return kq_wait(kq, events, capacity, 0);
}

const struct kevent *kq_find(const struct kevent *events, int n, uintptr_t ident, short filter)
{
    for (int i = 0; i < n; i++) {
        if (events[i].ident == ident && events[i].filter == filter)
            return &events[i];
    }
    return NULL;
}

bool kq_wait_for(int kq, uintptr_t ident, short filter, unsigned short want_flags,
                 struct kevent *out, int timeout_ms)
{
    int64_t deadline = monotonic_ms() + timeout_ms;
    struct kevent events[16];
    do {
        int n = kq_wait(kq, events, 16, 50);
        for (int i = 0; i < n; i++) {
            if (events[i].ident == ident && events[i].filter == filter &&
                (events[i].flags & want_flags) == want_flags) {
                *out = events[i];
                return true;
            }
        }
    } while (monotonic_ms() < deadline);
    return false;
}

bool set_nonblocking(int fd)
{
    int flags = fcntl(fd, F_GETFL);
    return flags >= 0 && fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0;
}

bool tcp_pair(int *a, int *b)
{
    if (evq_net_tcp_pair(a, b) != 0) {
        evq_test_fail(__FILE__, __LINE__, "no loopback TCP pair");
        return false;
    }
    evq_socket_set_nosigpipe(*a);
    evq_socket_set_nosigpipe(*b);
    return set_nonblocking(*a) && set_nonblocking(*b);
}

bool nonblocking_pipe(int fds[2])
{
    if (pipe(fds) != 0) {
        evq_test_fail(__FILE__, __LINE__, "pipe() failed: %s", strerror(errno));
        return false;
    }
    return set_nonblocking(fds[0]) && set_nonblocking(fds[1]);
}

bool refusing_port(int *holder, uint16_t *port)
{
    evq_socket socket;
    if (evq_net_refusing_loopback(&socket, port) != 0)
        return false;
    *holder = socket;
    return true;
}

int64_t monotonic_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

size_t drain(int fd)
{
    char buffer[65536];
    size_t total = 0;
    for (;;) {
        ssize_t n = read(fd, buffer, sizeof buffer);
        if (n > 0)
            total += (size_t)n;
        else if (n < 0 && errno == EINTR)
            continue;
        else
            return total;
    }
}

size_t fill(int fd, size_t limit)
{
    static const char chunk[16384];
    size_t total = 0;
    while (total < limit) {
        ssize_t n = write(fd, chunk, sizeof chunk);
        if (n > 0)
            total += (size_t)n;
        else if (n < 0 && errno == EINTR)
            continue;
        else
            break;
    }
    return total;
}

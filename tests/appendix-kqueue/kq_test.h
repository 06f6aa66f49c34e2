/* kq_test.h - helpers for the kqueue conformance suite.
 *
 * The suite is written against the BSD <sys/event.h> only, so the same
 * source builds against FreeBSD's or macOS' native kqueue, against a system
 * libkqueue, and against this repository's emulation (appendix B). CMake
 * says which with KQ_TEST_PROVIDER ("native", "system" or "emulation").
 *
 * FreeBSD's kqueue(2) is the reference. Where a known provider differs, the
 * case keeps the FreeBSD rule and the provider's list of known deviations
 * names it (deviations-libkqueue.txt for the system provider): a listed case
 * that fails is reported as skipped, with the reason from the list.
 *
 * No case may hang on a provider that gets a wait wrong: a change never
 * waits (kq_change passes a zero timeout), short waits carry their own
 * timeout, and a wait that only a correct kqueue ends - no timeout, or a
 * long one - runs under a watchdog (kq_kevent_bounded, kq_watchdog_*).
 */
#ifndef KQ_TEST_H
#define KQ_TEST_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <sys/event.h>

#include "evq_thread.h"

#ifndef KQ_TEST_PROVIDER
#define KQ_TEST_PROVIDER "unknown"
#endif

/* A new kqueue, or -1 (the failure is recorded). */
int kq_open(void);

/* kq_change's answer when kevent() failed without setting errno. */
#define KQ_NO_ERRNO (-1)

/* One change with no room for events and a zero timeout: 0, the errno value
 * kevent() set, or KQ_NO_ERRNO when it returned -1 and left errno at 0 (a
 * failure all the same, noted under the case). */
int kq_change(int kq, uintptr_t ident, short filter, unsigned short flags, unsigned fflags,
              int64_t data, void *udata);

/* kevent() with no changes and a timeout in milliseconds (-1: none). */
int kq_wait(int kq, struct kevent *events, int capacity, int timeout_ms);

/* Events pending now (a zero timeout). */
int kq_poll(int kq, struct kevent *events, int capacity);

/* Wait (at most timeout_ms, in short steps) for an event on (ident, filter)
 * whose flags include all of want_flags; true if one came. Other events are
 * dropped. */
bool kq_wait_for(int kq, uintptr_t ident, short filter, unsigned short want_flags,
                 struct kevent *out, int timeout_ms);

/* A watchdog over the calling thread, for a wait that only a correct kqueue
 * ends: once bound_ms have passed it interrupts the thread with a signal
 * whose handler is installed without SA_RESTART (so kevent() returns -1 with
 * EINTR), every 10 ms, until it is stopped. If the thread is still not back
 * 10 s later, the program exits with a failure rather than hang. */
typedef struct kq_watchdog {
    pthread_t target;
    int bound_ms;
    evq_thread thread;
    atomic_bool stop;
    atomic_bool fired;
} kq_watchdog;

bool kq_watchdog_start(kq_watchdog *watchdog, int bound_ms);
/* Has it had to interrupt the thread? */
bool kq_watchdog_fired(kq_watchdog *watchdog);
/* Stop it (no signal is in flight afterwards); returns kq_watchdog_fired(). */
bool kq_watchdog_stop(kq_watchdog *watchdog);

/* kevent() under a watchdog of bound_ms: kevent()'s result, errno as it set
 * it, and *overran true if the call was still waiting after bound_ms (it
 * then returns -1 with EINTR, or whatever the interrupted call returned). */
int kq_kevent_bounded(int kq, const struct kevent *changes, int nchanges, struct kevent *events,
                      int nevents, const struct timespec *timeout, int bound_ms, bool *overran);

/* Is there an event for (ident, filter) among events[0..n)? */
const struct kevent *kq_find(const struct kevent *events, int n, uintptr_t ident, short filter);

/* A connected pair of non-blocking loopback TCP sockets. */
bool tcp_pair(int *a, int *b);

/* A non-blocking pipe. */
bool nonblocking_pipe(int fds[2]);

bool set_nonblocking(int fd);

/* A loopback port with nothing listening on it, held by *holder (bound,
 * never listening) so that no other socket is given it; close it after. */
bool refusing_port(int *holder, uint16_t *port);

/* Milliseconds on a monotonic clock. */
int64_t monotonic_ms(void);

/* Read everything available from a non-blocking descriptor; bytes read. */
size_t drain(int fd);

/* Write until the descriptor would block (at most limit bytes); bytes written. */
size_t fill(int fd, size_t limit);

#endif

/* kq_test.h - helpers for the kqueue conformance suite.
 *
 * The suite is written against the BSD <sys/event.h> only, so the same
 * source builds against FreeBSD's or macOS' native kqueue, against a system
 * libkqueue, and against this repository's emulation (appendix B). CMake
 * says which with KQ_TEST_PROVIDER ("native", "system" or "emulation").
 *
 * FreeBSD's kqueue(2) is the reference. Where a known provider differs, a
 * case says so by name (KQ_KNOWN_DIFFERENCE) and keeps the FreeBSD rule: the
 * build marks that case as expected to fail for that provider.
 */
#ifndef KQ_TEST_H
#define KQ_TEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <sys/event.h>

#ifndef KQ_TEST_PROVIDER
#define KQ_TEST_PROVIDER "unknown"
#endif

/* Print which provider differs from FreeBSD here, and how; the case still
 * checks the FreeBSD rule. */
void kq_known_difference(const char *provider, const char *what);

/* A new kqueue, or -1 (the failure is recorded). */
int kq_open(void);

/* One change with no room for events: 0, or the errno value kevent() set. */
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

/* Is there an event for (ident, filter) among events[0..n)? */
const struct kevent *kq_find(const struct kevent *events, int n, uintptr_t ident, short filter);

/* A connected pair of non-blocking loopback TCP sockets. */
bool tcp_pair(int *a, int *b);

/* A non-blocking pipe. */
bool nonblocking_pipe(int fds[2]);

bool set_nonblocking(int fd);

/* A loopback port with nothing listening on it (a listener bound, then closed). */
bool closed_port(uint16_t *port);

/* Milliseconds on a monotonic clock. */
int64_t monotonic_ms(void);

/* Read everything available from a non-blocking descriptor; bytes read. */
size_t drain(int fd);

/* Write until the descriptor would block (at most limit bytes); bytes written. */
size_t fill(int fd, size_t limit);

#endif

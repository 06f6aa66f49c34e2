/* evq_uring_testing.h - hooks for the tests of appendix C. Not for programs.
 *
 * io_uring is unavailable on many machines (kernel.io_uring_disabled,
 * container seccomp profiles, old kernels); the tests show what the layer
 * says there by making io_uring_setup fail on purpose, here with the
 * functions below or, for whole programs, with the environment variable
 *
 *     EVQ_URING_SETUP_ERRNO=ENOSYS|EPERM|EACCES
 *
 * which makes every io_uring_setup of the process fail with that errno
 * without asking the kernel (the reason then ends with "[forced by
 * EVQ_URING_SETUP_ERRNO]"). libuv reads UV_USE_IO_URING in the same spirit.
 */
#ifndef EVQ_URING_TESTING_H
#define EVQ_URING_TESTING_H

#include "evq_uring.h"

/* Make io_uring_setup fail with errno_value (0: ask the kernel again). Takes
 * precedence over EVQ_URING_SETUP_ERRNO. */
void evq_uring_testing_fail_setup(int errno_value);

/* Read "kernel.io_uring_disabled" from this file instead of
 * /proc/sys/kernel/io_uring_disabled (NULL: the real one). */
void evq_uring_testing_sysctl_path(const char *path);

/* Lay out a ring in plain memory, with no kernel behind it, so that a test
 * thread can play the kernel's side of the protocol (read the SQ tail with
 * acquire, store the head with release, post CQEs and store the tail with
 * release) and ThreadSanitizer can check both sides. `memory` must hold
 * evq_uring_testing_memory_size(sq_entries, cq_entries) bytes, aligned for
 * the SQEs; entries are powers of two. The ring's fd is -1: submit and wait
 * return EVQ_EBADF; get_sqe, flush_sq, peek and advance work. */
size_t evq_uring_testing_memory_size(unsigned sq_entries, unsigned cq_entries);
int evq_uring_testing_attach(evq_uring *ring, void *memory, unsigned sq_entries,
                             unsigned cq_entries);

#endif

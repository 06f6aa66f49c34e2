/* uring_internal.h - what the appendix's source files share: the three raw
 * system calls. */
#ifndef EVQ_URING_INTERNAL_H
#define EVQ_URING_INTERNAL_H

#include "evq_uring.h"

/* syscall(2) wrappers: the result, or -1 with errno set, as the C library
 * would. setup honours the test hook (evq_uring_testing_fail_setup). */
int evq_uring_sys_setup(unsigned entries, struct io_uring_params *params);
int evq_uring_sys_enter(int fd, unsigned to_submit, unsigned min_complete, unsigned flags,
                        const void *arg, size_t arg_size);
int evq_uring_sys_register(int fd, unsigned opcode, const void *arg, unsigned nr_args);

/* The forced errno (0: none) and whether it came from the environment. */
int evq_uring_forced_setup_errno(const char **source);

#endif

/* syscalls.c - the three io_uring system calls, raw.
 *
 * The C library has no wrappers for them (liburing is the usual one, and
 * this appendix does without it): syscall(2) with the numbers from
 * <sys/syscall.h>. Each returns the kernel's result, or -1 with errno set.
 */
#define _GNU_SOURCE /* syscall() */
#include "uring_internal.h"
#include "evq_uring_testing.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static atomic_int forced_setup_errno; /* the test hook; 0: none */

void evq_uring_testing_fail_setup(int errno_value)
{
    atomic_store(&forced_setup_errno, errno_value);
}

/* EVQ_URING_SETUP_ERRNO=ENOSYS|EPERM|EACCES (or a number). */
static int errno_from_environment(void)
{
    const char *value = getenv("EVQ_URING_SETUP_ERRNO");
    if (!value || !*value)
        return 0;
    static const struct {
        const char *name;
        int value;
    } names[] = {{"ENOSYS", ENOSYS},
                 {"EPERM", EPERM},
                 {"EACCES", EACCES},
                 {"EINVAL", EINVAL},
                 {"ENOMEM", ENOMEM}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (strcmp(value, names[i].name) == 0)
            return names[i].value;
    }
    int number = atoi(value);
    return number > 0 ? number : ENOSYS;
}

int evq_uring_forced_setup_errno(const char **source)
{
    int forced = atomic_load(&forced_setup_errno);
    if (forced) {
        *source = "evq_uring_testing_fail_setup";
        return forced;
    }
    forced = errno_from_environment();
    *source = forced ? "EVQ_URING_SETUP_ERRNO" : NULL;
    return forced;
}

int evq_uring_sys_setup(unsigned entries, struct io_uring_params *params)
{
    const char *source;
    int forced = evq_uring_forced_setup_errno(&source);
    if (forced) {
        errno = forced;
        return -1;
    }
    return (int)syscall(__NR_io_uring_setup, entries, params);
}

int evq_uring_sys_enter(int fd, unsigned to_submit, unsigned min_complete, unsigned flags,
                        const void *arg, size_t arg_size)
{
    return (int)syscall(__NR_io_uring_enter, fd, to_submit, min_complete, flags, arg, arg_size);
}

int evq_uring_sys_register(int fd, unsigned opcode, const void *arg, unsigned nr_args)
{
    return (int)syscall(__NR_io_uring_register, fd, opcode, arg, nr_args);
}

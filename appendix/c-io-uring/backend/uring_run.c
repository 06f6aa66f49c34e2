/* uring_run - run a test of a chapter's io_uring backend, or skip it.
 *
 *     uring_run PROGRAM [ARGS...]
 *
 * Where io_uring is unavailable (kernel.io_uring_disabled, a seccomp
 * profile, a kernel too old, an opcode the backend needs missing, or
 * EVQ_URING_SETUP_ERRNO set: evq_uring_testing.h), it prints why and exits
 * 77, which every test registered by cmake/EvqHelpers.cmake reports as
 * "Skipped"; otherwise it becomes PROGRAM (execv), whose exit status is the
 * test's. Every ch04.uring.* test runs under it (EvqHelpers.cmake,
 * evq_backend_runner), so that the chapter's whole suite, which knows
 * nothing of io_uring, skips cleanly instead of failing on a machine that
 * refuses it.
 */
#define _GNU_SOURCE /* execv */
#include "evq_uring.h"
#include "uring_ops.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: uring_run PROGRAM [ARGS...]\n");
        return 2;
    }
    evq_uring_support support;
    const char *reason = NULL;
    char missing[128];
    if (evq_uring_check(&support) != 0) {
        reason = support.reason;
    } else {
        static const uint8_t ops[] = {EVQ_URING_BACKEND_OPS};
        for (size_t i = 0; i < sizeof ops && !reason; i++) {
            if (!(support.ops[ops[i] / 8] >> (ops[i] % 8) & 1u)) {
                snprintf(missing, sizeof missing, "this kernel's io_uring lacks %s (opcode %u)",
                         evq_uring_op_name(ops[i]), ops[i]);
                reason = missing;
            }
        }
    }
    if (reason) {
        /* The line ctest looks for (EVQ_BACKEND_RUNNER_SKIP_uring). */
        printf("uring_run: skipped %s: %s\n", argv[1], reason);
        return 77;
    }
    fflush(stdout);
    execv(argv[1], argv + 1);
    perror("uring_run: execv");
    return 127;
}

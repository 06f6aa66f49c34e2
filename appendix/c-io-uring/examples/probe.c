/* probe.c - what io_uring offers on this machine.
 *
 *     uring_probe            the kernel, the sysctl, the setup flags it
 *                            accepted, its features and its opcodes
 *
 * Exits 0 when io_uring works, 77 (the tests' "skipped") with the reason
 * when it is unavailable here.
 */
#include "evq_uring.h"

#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>

/* The opcodes the book's queue uses, and what each is for. */
static const struct {
    unsigned op;
    const char *use;
} needed[] = {
    {IORING_OP_ACCEPT, "accept (multishot from 5.19)"},
    {IORING_OP_CONNECT, "connect"},
    {IORING_OP_RECV, "receive (multishot with a buffer ring from 6.0)"},
    {IORING_OP_SEND, "send"},
    {IORING_OP_SENDMSG, "send from several buffers"},
    {IORING_OP_TIMEOUT, "timers"},
    {IORING_OP_LINK_TIMEOUT, "a deadline on one operation"},
    {IORING_OP_ASYNC_CANCEL, "cancel, close with operations in flight"},
    {IORING_OP_READ, "the eventfd waker"},
    {IORING_OP_MSG_RING, "(not used: the waker alternative)"},
};

static void print_flag(unsigned flags, unsigned flag, const char *name)
{
    printf("  %-28s %s\n", name, flags & flag ? "yes" : "no");
}

int main(void)
{
    struct utsname system;
    if (uname(&system) == 0)
        printf("kernel: %s %s\n", system.sysname, system.release);
    FILE *sysctl = fopen("/proc/sys/kernel/io_uring_disabled", "r");
    int disabled = -1;
    if (sysctl) {
        if (fscanf(sysctl, "%d", &disabled) != 1)
            disabled = -1;
        fclose(sysctl);
    }
    if (disabled >= 0)
        printf("kernel.io_uring_disabled: %d\n", disabled);
    else
        printf("kernel.io_uring_disabled: (no such sysctl: a kernel before 6.6)\n");

    evq_uring_support support;
    if (evq_uring_check(&support) != 0) {
        printf("%s\n", support.reason);
        return 77;
    }
    printf("setup flags accepted (asked for SINGLE_ISSUER | DEFER_TASKRUN):\n");
    print_flag(support.setup_flags, IORING_SETUP_SUBMIT_ALL, "IORING_SETUP_SUBMIT_ALL");
    print_flag(support.setup_flags, IORING_SETUP_COOP_TASKRUN, "IORING_SETUP_COOP_TASKRUN");
    print_flag(support.setup_flags, IORING_SETUP_SINGLE_ISSUER, "IORING_SETUP_SINGLE_ISSUER");
    print_flag(support.setup_flags, IORING_SETUP_DEFER_TASKRUN, "IORING_SETUP_DEFER_TASKRUN");
    printf("features:\n");
    print_flag(support.features, IORING_FEAT_SINGLE_MMAP, "IORING_FEAT_SINGLE_MMAP");
    print_flag(support.features, IORING_FEAT_NODROP, "IORING_FEAT_NODROP");
    print_flag(support.features, IORING_FEAT_FAST_POLL, "IORING_FEAT_FAST_POLL");
    print_flag(support.features, IORING_FEAT_EXT_ARG, "IORING_FEAT_EXT_ARG");
    print_flag(support.features, IORING_FEAT_NATIVE_WORKERS, "IORING_FEAT_NATIVE_WORKERS");
    printf("  %-28s %s\n", "IORING_REGISTER_PBUF_RING", support.pbuf_ring ? "yes" : "no");

    printf("the opcodes the book's queue uses:\n");
    evq_uring ring; /* only for evq_uring_has_op on the probed bits */
    memset(&ring, 0, sizeof ring);
    memcpy(ring.ops, support.ops, sizeof ring.ops);
    for (size_t i = 0; i < sizeof needed / sizeof needed[0]; i++)
        printf("  %-28s %-4s %s\n", evq_uring_op_name(needed[i].op),
               evq_uring_has_op(&ring, needed[i].op) ? "yes" : "NO", needed[i].use);
    unsigned count = 0;
    for (unsigned op = 0; op < 256; op++)
        count += evq_uring_has_op(&ring, op);
    printf("opcodes supported: %u (0..%u); this build's header names 0..%u\n", count,
           support.last_op, (unsigned)IORING_OP_LAST - 1);
    return 0;
}

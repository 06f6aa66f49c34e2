/* setup.c - a ring's life: io_uring_setup with the flags this kernel
 * accepts, the mmap of the rings, the probe of its opcodes, and a close that
 * leaves no operation behind. Also the one-line reasons a program prints
 * when io_uring is not there. */
#define _GNU_SOURCE /* MAP_POPULATE */
#include "uring_internal.h"
#include "evq_uring_testing.h"
#include "evq_error.h"

#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* The heads and tails are plain 32-bit words in memory the kernel shares with
 * us; the layer reads and writes them through _Atomic uint32_t pointers.
 * That is sound only if the atomic type is the plain one in disguise (no
 * lock beside it, same size and alignment): say so, or refuse to build. */
static_assert(sizeof(_Atomic uint32_t) == sizeof(uint32_t), "atomic u32 has the size of u32");
static_assert(_Alignof(_Atomic uint32_t) == _Alignof(uint32_t), "and its alignment");
static_assert(ATOMIC_INT_LOCK_FREE == 2, "and is lock-free");

#define DEFAULT_SQ_ENTRIES 64

static void set_reason(evq_uring *ring, const char *format, ...)
{
    va_list args;
    va_start(args, format);
    vsnprintf(ring->reason, sizeof ring->reason, format, args);
    va_end(args);
}

/* ---- why io_uring is not here ----------------------------------------------------- */

static _Atomic(const char *) sysctl_path_override;

void evq_uring_testing_sysctl_path(const char *path)
{
    atomic_store(&sysctl_path_override, path);
}

/* kernel.io_uring_disabled (6.6): 0 everyone may, 1 only CAP_SYS_ADMIN and
 * the group kernel.io_uring_group, 2 nobody. -1 when there is no such file. */
static int read_io_uring_disabled(void)
{
    const char *path = atomic_load(&sysctl_path_override);
    FILE *file = fopen(path ? path : "/proc/sys/kernel/io_uring_disabled", "r");
    if (!file)
        return -1;
    int value = -1;
    if (fscanf(file, "%d", &value) != 1)
        value = -1;
    fclose(file);
    return value;
}

static const char *errno_name(int value)
{
    switch (value) {
    case ENOSYS:
        return "ENOSYS";
    case EPERM:
        return "EPERM";
    case EACCES:
        return "EACCES";
    case EINVAL:
        return "EINVAL";
    case ENOMEM:
        return "ENOMEM";
    case EMFILE:
        return "EMFILE";
    case ENFILE:
        return "ENFILE";
    default:
        return "errno";
    }
}

/* The code and a reason a reader can act on, for a failed io_uring_setup. */
static int explain_setup_failure(evq_uring *ring, int setup_errno)
{
    const char *source;
    char forced[64] = "";
    if (evq_uring_forced_setup_errno(&source))
        snprintf(forced, sizeof forced, " [forced by %s]", source);

    int disabled = read_io_uring_disabled();
    switch (setup_errno) {
    case ENOSYS:
        set_reason(ring,
                   "io_uring is unavailable: io_uring_setup failed with ENOSYS (a kernel older "
                   "than 5.1 or built without CONFIG_IO_URING, or a seccomp filter answering "
                   "ENOSYS)%s",
                   forced);
        return EVQ_ENOTSUP;
    case EPERM:
    case EACCES:
        if (disabled == 2)
            set_reason(ring,
                       "io_uring is unavailable: io_uring_setup failed with %s: disabled for "
                       "every process by sysctl kernel.io_uring_disabled=2%s",
                       errno_name(setup_errno), forced);
        else if (disabled == 1)
            set_reason(ring,
                       "io_uring is unavailable: io_uring_setup failed with %s: sysctl "
                       "kernel.io_uring_disabled=1 allows only CAP_SYS_ADMIN and the group "
                       "kernel.io_uring_group%s",
                       errno_name(setup_errno), forced);
        else
            set_reason(ring,
                       "io_uring is unavailable: io_uring_setup failed with %s although "
                       "kernel.io_uring_disabled is %s: most likely a seccomp filter (the "
                       "default profiles of Docker and containerd block io_uring) or a "
                       "security module%s",
                       errno_name(setup_errno), disabled == 0 ? "0" : "absent", forced);
        return EVQ_EACCES;
    default:
        set_reason(ring, "io_uring_setup failed with %s (%d): %s%s", errno_name(setup_errno),
                   setup_errno, strerror(setup_errno), forced);
        return evq_error_from_errno(setup_errno);
    }
}

/* ---- setup: the flags this kernel accepts ------------------------------------------ */

/* Wanted flags, oldest first. On EINVAL the newest still asked for is
 * dropped and setup is tried again: the kernel says what it has, nothing is
 * assumed from its version number. */
static const unsigned optional_setup_flags[] = {
    IORING_SETUP_SUBMIT_ALL,    /* 5.18: a failing SQE does not stop the batch */
    IORING_SETUP_COOP_TASKRUN,  /* 5.19: no interrupt to run completion work */
    IORING_SETUP_SINGLE_ISSUER, /* 6.0, when asked for */
    IORING_SETUP_DEFER_TASKRUN, /* 6.1, when asked for */
};

static int setup_with_fallback(unsigned entries, unsigned cq_entries, unsigned want,
                               struct io_uring_params *params)
{
    unsigned optional = IORING_SETUP_SUBMIT_ALL;
    if (!(want & EVQ_URING_NO_COOP_TASKRUN))
        optional |= IORING_SETUP_COOP_TASKRUN;
    if (want & (EVQ_URING_WANT_SINGLE_ISSUER | EVQ_URING_WANT_DEFER_TASKRUN))
        optional |= IORING_SETUP_SINGLE_ISSUER;
    if (want & EVQ_URING_WANT_DEFER_TASKRUN)
        optional |= IORING_SETUP_DEFER_TASKRUN;
    size_t newest = sizeof optional_setup_flags / sizeof optional_setup_flags[0];
    for (;;) {
        memset(params, 0, sizeof *params);
        params->flags = IORING_SETUP_CQSIZE | IORING_SETUP_CLAMP | optional;
        params->cq_entries = cq_entries;
        int fd = evq_uring_sys_setup(entries, params);
        if (fd >= 0 || errno != EINVAL || optional == 0)
            return fd;
        while (newest > 0 && !(optional & optional_setup_flags[newest - 1]))
            newest--;
        optional &= ~optional_setup_flags[--newest];
        if (!(optional & IORING_SETUP_SINGLE_ISSUER))
            optional &= ~IORING_SETUP_DEFER_TASKRUN; /* needs SINGLE_ISSUER */
    }
}

/* ---- the mappings ------------------------------------------------------------------ */

static void *map_ring(int fd, size_t bytes, uint64_t offset)
{
    void *memory =
        mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, (off_t)offset);
    return memory == MAP_FAILED ? NULL : memory;
}

/* Point the layer's fields into the rings, from the offsets the kernel
 * reported (its layout is private; only the offsets are the interface). */
static void point_into_rings(evq_uring *ring, const struct io_uring_params *p, unsigned char *sq,
                             unsigned char *cq)
{
    ring->sq.head = (_Atomic uint32_t *)(sq + p->sq_off.head);
    ring->sq.tail = (_Atomic uint32_t *)(sq + p->sq_off.tail);
    ring->sq.flags = (_Atomic uint32_t *)(sq + p->sq_off.flags);
    ring->sq.dropped = (_Atomic uint32_t *)(sq + p->sq_off.dropped);
    ring->sq.array = (uint32_t *)(sq + p->sq_off.array);
    ring->sq.mask = *(uint32_t *)(sq + p->sq_off.ring_mask);
    ring->sq.entries = *(uint32_t *)(sq + p->sq_off.ring_entries);
    ring->sq.sqe_tail = atomic_load_explicit(ring->sq.tail, memory_order_relaxed);

    ring->cq.head = (_Atomic uint32_t *)(cq + p->cq_off.head);
    ring->cq.tail = (_Atomic uint32_t *)(cq + p->cq_off.tail);
    ring->cq.overflow = (_Atomic uint32_t *)(cq + p->cq_off.overflow);
    ring->cq.cqes = (struct io_uring_cqe *)(cq + p->cq_off.cqes);
    ring->cq.mask = *(uint32_t *)(cq + p->cq_off.ring_mask);
    ring->cq.entries = *(uint32_t *)(cq + p->cq_off.ring_entries);

    /* The SQ array maps ring slots to SQE indices, so that SQEs could be
     * filled out of order; this layer fills them in order, so slot i holds
     * SQE i, written once here. */
    for (uint32_t i = 0; i < ring->sq.entries; i++)
        ring->sq.array[i] = i;
}

/* ANCHOR: map_rings */
static int map_rings(evq_uring *ring, const struct io_uring_params *p, bool separate)
{
    size_t sq_bytes = p->sq_off.array + p->sq_entries * sizeof(uint32_t);
    size_t cq_bytes = p->cq_off.cqes + p->cq_entries * sizeof(struct io_uring_cqe);
    ring->single_mmap = (p->features & IORING_FEAT_SINGLE_MMAP) && !separate;
    if (ring->single_mmap) /* one mapping holds both rings (5.4 and later) */
        sq_bytes = cq_bytes = sq_bytes > cq_bytes ? sq_bytes : cq_bytes;

    ring->sq.ring_bytes = sq_bytes;
    ring->sq.ring_memory = map_ring(ring->fd, sq_bytes, IORING_OFF_SQ_RING);
    if (!ring->sq.ring_memory)
        return evq_error_from_errno(errno);
    ring->cq.ring_bytes = cq_bytes;
    ring->cq.ring_memory =
        ring->single_mmap ? ring->sq.ring_memory : map_ring(ring->fd, cq_bytes, IORING_OFF_CQ_RING);
    if (!ring->cq.ring_memory)
        return evq_error_from_errno(errno);
    /* The SQEs are an array of their own, at their own offset. */
    ring->sq.sqes_bytes = p->sq_entries * sizeof(struct io_uring_sqe);
    ring->sq.sqes = map_ring(ring->fd, ring->sq.sqes_bytes, IORING_OFF_SQES);
    if (!ring->sq.sqes)
        return evq_error_from_errno(errno);
    point_into_rings(ring, p, ring->sq.ring_memory, ring->cq.ring_memory);
    return 0;
}
/* ANCHOR_END: map_rings */

static void unmap_rings(evq_uring *ring)
{
    if (ring->sq.sqes)
        munmap(ring->sq.sqes, ring->sq.sqes_bytes);
    if (ring->cq.ring_memory && ring->cq.ring_memory != ring->sq.ring_memory)
        munmap(ring->cq.ring_memory, ring->cq.ring_bytes);
    if (ring->sq.ring_memory)
        munmap(ring->sq.ring_memory, ring->sq.ring_bytes);
    ring->sq.sqes = NULL;
    ring->sq.ring_memory = ring->cq.ring_memory = NULL;
}

/* ---- the probe --------------------------------------------------------------------- */

static int probe_ops(evq_uring *ring)
{
    enum { PROBE_OPS = 256 };
    size_t bytes = sizeof(struct io_uring_probe) + PROBE_OPS * sizeof(struct io_uring_probe_op);
    struct io_uring_probe *probe = calloc(1, bytes);
    if (!probe)
        return EVQ_ENOMEM;
    if (evq_uring_sys_register(ring->fd, IORING_REGISTER_PROBE, probe, PROBE_OPS) < 0) {
        int code = errno;
        free(probe);
        /* EINVAL: IORING_REGISTER_PROBE itself is missing (before 5.6). */
        set_reason(ring, "io_uring is too old here: IORING_REGISTER_PROBE failed with %s",
                   errno_name(code));
        return EVQ_ENOTSUP;
    }
    memset(ring->ops, 0, sizeof ring->ops);
    for (unsigned i = 0; i < probe->ops_len && i < PROBE_OPS; i++) {
        if (probe->ops[i].flags & IO_URING_OP_SUPPORTED)
            ring->ops[probe->ops[i].op / 8] |= (uint8_t)(1u << (probe->ops[i].op % 8));
    }
    free(probe);
    return 0;
}

bool evq_uring_has_op(const evq_uring *ring, unsigned op)
{
    return op < 256 && (ring->ops[op / 8] >> (op % 8) & 1u);
}

int evq_uring_require_ops(evq_uring *ring, const uint8_t *ops, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        if (!evq_uring_has_op(ring, ops[i])) {
            set_reason(ring, "this kernel's io_uring lacks %s (opcode %u)",
                       evq_uring_op_name(ops[i]), ops[i]);
            return EVQ_ENOTSUP;
        }
    }
    return 0;
}

/* The opcodes of the <linux/io_uring.h> this was built with (Linux 6.1 in
 * Debian 12); a newer kernel has more, which print as IORING_OP_?. */
#define EVQ_URING_OPS(X)                                                                           \
    X(NOP)                                                                                         \
    X(READV)                                                                                       \
    X(WRITEV)                                                                                      \
    X(FSYNC) X(READ_FIXED) X(WRITE_FIXED) X(POLL_ADD) X(POLL_REMOVE) X(SYNC_FILE_RANGE) X(SENDMSG) \
        X(RECVMSG) X(TIMEOUT) X(TIMEOUT_REMOVE) X(ACCEPT) X(ASYNC_CANCEL) X(LINK_TIMEOUT)          \
            X(CONNECT) X(FALLOCATE) X(OPENAT) X(CLOSE) X(FILES_UPDATE) X(STATX) X(READ) X(WRITE)   \
                X(FADVISE) X(MADVISE) X(SEND) X(RECV) X(OPENAT2) X(EPOLL_CTL) X(SPLICE)            \
                    X(PROVIDE_BUFFERS) X(REMOVE_BUFFERS) X(TEE) X(SHUTDOWN) X(RENAMEAT)            \
                        X(UNLINKAT) X(MKDIRAT) X(SYMLINKAT) X(LINKAT) X(MSG_RING) X(FSETXATTR)     \
                            X(SETXATTR) X(FGETXATTR) X(GETXATTR) X(SOCKET) X(URING_CMD) X(SEND_ZC) \
                                X(SENDMSG_ZC)

const char *evq_uring_op_name(unsigned op)
{
    static const char *const names[] = {
#define EVQ_URING_OP_NAME(name) [IORING_OP_##name] = "IORING_OP_" #name,
        EVQ_URING_OPS(EVQ_URING_OP_NAME)
#undef EVQ_URING_OP_NAME
    };
    if (op < sizeof names / sizeof names[0] && names[op])
        return names[op];
    return "IORING_OP_?";
}

/* ---- open and close ---------------------------------------------------------------- */

int evq_uring_open(evq_uring *ring, const evq_uring_options *options)
{
    if (!ring)
        return EVQ_EINVAL;
    memset(ring, 0, sizeof *ring);
    ring->fd = -1;
    evq_uring_options defaults = {0, 0, 0};
    if (!options)
        options = &defaults;
    unsigned entries = options->sq_entries ? options->sq_entries : DEFAULT_SQ_ENTRIES;
    unsigned cq_entries = options->cq_entries ? options->cq_entries : 4 * entries;
    if (entries > 32768 || cq_entries < entries) {
        set_reason(ring, "sq_entries must be 1..32768 and cq_entries at least as many");
        return EVQ_EINVAL;
    }

    struct io_uring_params params;
    ring->fd = setup_with_fallback(entries, cq_entries, options->flags, &params);
    if (ring->fd < 0) {
        ring->setup_errno = errno;
        int code = explain_setup_failure(ring, ring->setup_errno);
        ring->fd = -1;
        return code;
    }
    ring->features = params.features;
    ring->setup_flags = params.flags;

    /* What this layer relies on: completions never dropped when the CQ is
     * full (NODROP, 5.5), a timeout on the wait (EXT_ARG, 5.11). */
    int code = 0;
    if (!(params.features & IORING_FEAT_NODROP) || !(params.features & IORING_FEAT_EXT_ARG)) {
        set_reason(ring,
                   "io_uring is too old here: it lacks IORING_FEAT_%s (kernel 5.11 or "
                   "later is needed)",
                   !(params.features & IORING_FEAT_NODROP) ? "NODROP" : "EXT_ARG");
        code = EVQ_ENOTSUP;
    }
    if (code == 0) {
        code = map_rings(ring, &params, options->flags & EVQ_URING_SEPARATE_MMAPS);
        if (code != 0)
            set_reason(ring, "mmap of the io_uring rings failed: %s", evq_strerror(code));
    }
    if (code == 0)
        code = probe_ops(ring);
    if (code != 0) {
        char reason[sizeof ring->reason];
        memcpy(reason, ring->reason, sizeof reason);
        unmap_rings(ring);
        close(ring->fd);
        ring->fd = -1;
        memcpy(ring->reason, reason, sizeof reason);
    }
    return code;
}

/* ANCHOR: close */
void evq_uring_close(evq_uring *ring)
{
    if (!ring || ring->fd < 0)
        return; /* never opened, a failed open (it cleaned up), or a test's fake ring */
    /* The kernel may still write into buffers, sockaddrs and timespecs of
     * operations in flight: cancel them all and reap every completion
     * before returning, as an IOCP program waits for its cancelled
     * OVERLAPPEDs. A few rounds at most (each one waits at most a second). */
    struct io_uring_sqe *sqe;
    if (ring->in_flight > 0 && ring->sq.sqes && evq_uring_submit(ring, NULL) == 0 &&
        evq_uring_get_sqe(ring, &sqe) == 0) {
        evq_uring_prep_cancel(sqe, 0, IORING_ASYNC_CANCEL_ANY,
                              evq_uring_tag(EVQ_URING_KIND_CANCEL, 0, 0));
        for (int round = 0; round < 5 && ring->in_flight > 0; round++) {
            if (evq_uring_submit_and_wait(ring, 1, 1000) != 0 && evq_uring_cq_ready(ring) == 0)
                continue;
            evq_uring_advance(ring, evq_uring_cq_ready(ring));
        }
    }
    unmap_rings(ring);
    close(ring->fd);
    ring->fd = -1;
}
/* ANCHOR_END: close */

/* ---- what this machine offers ------------------------------------------------------- */

int evq_uring_check(evq_uring_support *out)
{
    memset(out, 0, sizeof *out);
    evq_uring ring;
    evq_uring_options options = {8, 0, EVQ_URING_WANT_DEFER_TASKRUN};
    out->code = evq_uring_open(&ring, &options);
    if (out->code != 0) {
        out->setup_errno = ring.setup_errno;
        memcpy(out->reason, ring.reason, sizeof out->reason);
        return out->code;
    }
    out->features = ring.features;
    out->setup_flags = ring.setup_flags;
    memcpy(out->ops, ring.ops, sizeof out->ops);
    for (unsigned op = 0; op < 256; op++) {
        if (evq_uring_has_op(&ring, op))
            out->last_op = op;
    }
    evq_uring_pbuf pbuf;
    if (evq_uring_pbuf_open(&ring, &pbuf, 0, 1, 64) == 0) {
        out->pbuf_ring = true;
        evq_uring_pbuf_close(&ring, &pbuf);
    }
    evq_uring_close(&ring);
    return 0;
}

/* ---- a ring with no kernel behind it (tests) --------------------------------------- */

/* The layout evq_uring_testing_attach uses: SQEs first (64-byte aligned),
 * then the SQ words and array, then the CQ words and CQEs. */
struct fake_words {
    uint32_t sq_head, sq_tail, sq_flags, sq_dropped;
    uint32_t cq_head, cq_tail, cq_overflow, pad;
};

size_t evq_uring_testing_memory_size(unsigned sq_entries, unsigned cq_entries)
{
    return sq_entries * sizeof(struct io_uring_sqe) + sizeof(struct fake_words) +
           sq_entries * sizeof(uint32_t) + cq_entries * sizeof(struct io_uring_cqe);
}

int evq_uring_testing_attach(evq_uring *ring, void *memory, unsigned sq_entries,
                             unsigned cq_entries)
{
    /* sq_entries >= 2 keeps the CQEs after the array 8-byte aligned. */
    if (!ring || !memory || sq_entries < 2 || cq_entries == 0 || (sq_entries & (sq_entries - 1)) ||
        (cq_entries & (cq_entries - 1)))
        return EVQ_EINVAL;
    memset(ring, 0, sizeof *ring);
    memset(memory, 0, evq_uring_testing_memory_size(sq_entries, cq_entries));
    ring->fd = -1;
    unsigned char *base = memory;
    struct fake_words *words =
        (struct fake_words *)(base + sq_entries * sizeof(struct io_uring_sqe));
    ring->sq.sqes = (struct io_uring_sqe *)base;
    ring->sq.head = (_Atomic uint32_t *)&words->sq_head;
    ring->sq.tail = (_Atomic uint32_t *)&words->sq_tail;
    ring->sq.flags = (_Atomic uint32_t *)&words->sq_flags;
    ring->sq.dropped = (_Atomic uint32_t *)&words->sq_dropped;
    ring->sq.array = (uint32_t *)(words + 1);
    ring->sq.mask = sq_entries - 1;
    ring->sq.entries = sq_entries;
    for (uint32_t i = 0; i < sq_entries; i++)
        ring->sq.array[i] = i;
    ring->cq.head = (_Atomic uint32_t *)&words->cq_head;
    ring->cq.tail = (_Atomic uint32_t *)&words->cq_tail;
    ring->cq.overflow = (_Atomic uint32_t *)&words->cq_overflow;
    ring->cq.cqes = (struct io_uring_cqe *)(ring->sq.array + sq_entries);
    ring->cq.mask = cq_entries - 1;
    ring->cq.entries = cq_entries;
    return 0; /* fd -1: evq_uring_close leaves the memory alone */
}

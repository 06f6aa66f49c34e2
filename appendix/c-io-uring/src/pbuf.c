/* pbuf.c - provided-buffer rings (IORING_REGISTER_PBUF_RING, Linux 5.19).
 *
 * A receive posted with its own buffer pins that buffer for as long as the
 * connection is quiet: a thousand idle connections, a thousand idle buffers.
 * With a provided-buffer ring the receive names a group instead, and the
 * kernel takes a buffer from the group only when data has arrived. The
 * group is a ring of (address, length, id) entries in memory we share with
 * the kernel: we add entries and move the tail (release); the kernel takes
 * entries from the head, which it keeps to itself, and names the buffer it
 * used in each completion's flags.
 */
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS */
#include "uring_internal.h"
#include "evq_error.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

static_assert(sizeof(_Atomic uint16_t) == sizeof(uint16_t), "atomic u16 has the size of u16");
static_assert(ATOMIC_SHORT_LOCK_FREE == 2, "and is lock-free");

/* ANCHOR: pbuf_recycle */
void evq_uring_pbuf_recycle(evq_uring_pbuf *pbuf, uint16_t id)
{
    /* Write the entry first. Only addr, len and bid: the ring's tail lives
     * in the resv field of entry 0, which is not ours to overwrite. */
    struct io_uring_buf *entry = &pbuf->ring->bufs[pbuf->tail & pbuf->mask];
    entry->addr = (uint64_t)(uintptr_t)(pbuf->memory + (size_t)id * pbuf->size);
    entry->len = pbuf->size;
    entry->bid = id;
    pbuf->tail++;
    pbuf->available++;
    /* release: the entry is complete before the tail that covers it is
     * visible; the kernel reads the tail with smp_load_acquire
     * (io_uring/kbuf.c) before it reads an entry. */
    atomic_store_explicit((_Atomic uint16_t *)&pbuf->ring->tail, pbuf->tail, memory_order_release);
}
/* ANCHOR_END: pbuf_recycle */

int evq_uring_pbuf_open(evq_uring *ring, evq_uring_pbuf *pbuf, uint16_t group, uint32_t count,
                        uint32_t size)
{
    memset(pbuf, 0, sizeof *pbuf);
    if (!ring || ring->fd < 0 || count == 0 || count > 32768 || (count & (count - 1)) || size == 0)
        return EVQ_EINVAL;
    /* The ring must be page-aligned: anonymous memory from mmap is. */
    pbuf->ring_bytes = count * sizeof(struct io_uring_buf);
    void *memory =
        mmap(NULL, pbuf->ring_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (memory == MAP_FAILED)
        return evq_error_from_errno(errno);
    pbuf->ring = memory;
    pbuf->memory = malloc((size_t)count * size);
    if (!pbuf->memory) {
        munmap(pbuf->ring, pbuf->ring_bytes);
        memset(pbuf, 0, sizeof *pbuf);
        return EVQ_ENOMEM;
    }
    pbuf->count = count;
    pbuf->size = size;
    pbuf->mask = count - 1;
    pbuf->group = group;

    struct io_uring_buf_reg registration;
    memset(&registration, 0, sizeof registration);
    registration.ring_addr = (uint64_t)(uintptr_t)pbuf->ring;
    registration.ring_entries = count;
    registration.bgid = group;
    if (evq_uring_sys_register(ring->fd, IORING_REGISTER_PBUF_RING, &registration, 1) < 0) {
        int code = errno;
        free(pbuf->memory);
        munmap(pbuf->ring, pbuf->ring_bytes);
        memset(pbuf, 0, sizeof *pbuf);
        /* EINVAL: no provided-buffer rings (before 5.19); EEXIST: the group
         * is taken. */
        return code == EINVAL ? EVQ_ENOTSUP : evq_error_from_errno(code);
    }
    for (uint32_t id = 0; id < count; id++)
        evq_uring_pbuf_recycle(pbuf, (uint16_t)id);
    return 0;
}

void evq_uring_pbuf_close(evq_uring *ring, evq_uring_pbuf *pbuf)
{
    if (!pbuf->ring)
        return;
    if (ring && ring->fd >= 0) {
        struct io_uring_buf_reg registration;
        memset(&registration, 0, sizeof registration);
        registration.bgid = pbuf->group;
        evq_uring_sys_register(ring->fd, IORING_UNREGISTER_PBUF_RING, &registration, 1);
    }
    free(pbuf->memory);
    munmap(pbuf->ring, pbuf->ring_bytes);
    memset(pbuf, 0, sizeof *pbuf);
}

/* ANCHOR: pbuf_take */
int evq_uring_pbuf_take(evq_uring_pbuf *pbuf, const struct io_uring_cqe *cqe, uint16_t *id,
                        unsigned char **data, uint32_t *len)
{
    /* IORING_CQE_F_BUFFER says the kernel took a buffer for this
     * completion; its id is in the upper 16 bits of the flags. */
    if (!(cqe->flags & IORING_CQE_F_BUFFER))
        return EVQ_ENOENT;
    uint32_t buffer = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
    if (buffer >= pbuf->count)
        return EVQ_ERANGE;
    if (pbuf->available > 0)
        pbuf->available--;
    *id = (uint16_t)buffer;
    *data = pbuf->memory + (size_t)buffer * pbuf->size;
    *len = cqe->res > 0 ? (uint32_t)cqe->res : 0;
    return 0;
}
/* ANCHOR_END: pbuf_take */

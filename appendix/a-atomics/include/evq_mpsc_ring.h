/* evq_mpsc_ring.h - a bounded ring from many producer threads to one consumer
 * thread, lock-free for the producers (the shape of chapter 1's channel,
 * without its mutex).
 *
 * It carries 64-bit values: an evq_token, or a pointer to a message cast to
 * uintptr_t. Nothing blocks: a full ring says EVQ_EFULL, an empty one
 * EVQ_EWOULDBLOCK, and the caller decides whether to retry, drop or sleep
 * (an event loop sleeps in epoll_wait and is woken by a waker).
 *
 * Every slot carries a sequence number that says whose turn it is: the
 * producer of position p waits for sequence p, the consumer of position p
 * for sequence p + 1. Positions count up forever and wrap around at
 * SIZE_MAX; the book explains why neither the wrap nor ABA can confuse it.
 */
#ifndef EVQ_MPSC_RING_H
#define EVQ_MPSC_RING_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* Fill between the producers' counter and the consumer's, so that they sit
 * on different cache lines and the two sides do not slow each other down by
 * writing the same line. Padding, not _Alignas(64): a ring inside a struct
 * from malloc is only aligned to alignof(max_align_t). */
#define EVQ_CACHE_LINE 64

typedef struct evq_ring_slot {
    atomic_size_t sequence; /* whose turn: see above */
    uint64_t value;         /* plain memory: the sequence orders it */
} evq_ring_slot;

typedef struct evq_mpsc_ring {
    atomic_size_t tail; /* next position a producer claims */
    char tail_line[EVQ_CACHE_LINE - sizeof(atomic_size_t)];
    size_t head; /* next position the consumer reads: consumer only */
    char head_line[EVQ_CACHE_LINE - sizeof(size_t)];
    size_t mask; /* capacity - 1 */
    evq_ring_slot *slots;
} evq_mpsc_ring;

/* capacity: a power of two, at least 2 (the book shows why 1 cannot work).
 * EVQ_EINVAL otherwise, EVQ_ENOMEM. */
int evq_mpsc_ring_init(evq_mpsc_ring *ring, size_t capacity);

/* The same, with positions starting at `first` instead of 0. Tests start just
 * below SIZE_MAX to cross the counters' wrap-around in a few operations
 * rather than after 2^64 of them. */
int evq_mpsc_ring_init_at(evq_mpsc_ring *ring, size_t capacity, size_t first);

/* Free the slots; no thread may use the ring any more. */
void evq_mpsc_ring_destroy(evq_mpsc_ring *ring);

/* Any thread. 0, or EVQ_EFULL: the ring holds `capacity` values already (or
 * the oldest is still being read) and nothing changed. */
int evq_mpsc_ring_try_push(evq_mpsc_ring *ring, uint64_t value);

/* The one consumer thread. 0 and the oldest value in *out, or EVQ_EWOULDBLOCK:
 * nothing to take yet. */
int evq_mpsc_ring_try_pop(evq_mpsc_ring *ring, uint64_t *out);

size_t evq_mpsc_ring_capacity(const evq_mpsc_ring *ring);

#endif

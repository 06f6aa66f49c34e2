/* mpsc_ring.c - a bounded multi-producer single-consumer ring with a
 * sequence number per slot. */
#include "evq_mpsc_ring.h"

#include "evq_error.h"

#include <stdlib.h>

int evq_mpsc_ring_init(evq_mpsc_ring *ring, size_t capacity)
{
    return evq_mpsc_ring_init_at(ring, capacity, 0);
}

int evq_mpsc_ring_init_at(evq_mpsc_ring *ring, size_t capacity, size_t first)
{
    ring->slots = NULL;
    /* A power of two, so that position & mask is the slot even across the
     * wrap of the counters (2^64 is a multiple of the capacity). At least 2,
     * because with 1 slot "free for lap n + 1" and "still full from lap n"
     * would be the same sequence number. At most half the counter range, so
     * that differences of positions can be read as signed. */
    if (capacity < 2 || (capacity & (capacity - 1)) != 0 || capacity > SIZE_MAX / 2)
        return EVQ_EINVAL;
    ring->slots = calloc(capacity, sizeof *ring->slots);
    if (!ring->slots)
        return EVQ_ENOMEM;
    ring->mask = capacity - 1;
    /* Position p uses slot p & mask. Each slot starts out waiting for the
     * producer of the first position that maps to it. */
    for (size_t i = 0; i < capacity; i++) {
        size_t position = first + i;
        atomic_init(&ring->slots[position & ring->mask].sequence, position);
    }
    atomic_init(&ring->tail, first);
    ring->head = first;
    return 0;
}

void evq_mpsc_ring_destroy(evq_mpsc_ring *ring)
{
    free(ring->slots);
    ring->slots = NULL;
}

size_t evq_mpsc_ring_capacity(const evq_mpsc_ring *ring)
{
    return ring->mask + 1;
}

/* ANCHOR: push */
int evq_mpsc_ring_try_push(evq_mpsc_ring *ring, uint64_t value)
{
    size_t position = atomic_load_explicit(&ring->tail, memory_order_relaxed);
    evq_ring_slot *slot;
    for (;;) {
        slot = &ring->slots[position & ring->mask];
        /* Acquire: if the slot is free, the consumer's read of its old value
         * happened before our write of the new one. */
        size_t sequence = atomic_load_explicit(&slot->sequence, memory_order_acquire);
        size_t lag = sequence - position; /* modulo 2^N: wrap-around is harmless */
        if (lag == 0) {
            /* Free for this lap: claim the position. If another producer
             * claimed it first, the CAS fails and loads the new tail into
             * position; try again there. */
            if (atomic_compare_exchange_weak_explicit(&ring->tail, &position, position + 1,
                                                      memory_order_relaxed, memory_order_relaxed))
                break;
        } else if (lag > SIZE_MAX / 2) {
            /* "Negative": the slot still holds the value of the previous lap,
             * which the consumer has not taken yet. */
            return EVQ_EFULL;
        } else {
            /* Another producer took this position since we read tail. */
            position = atomic_load_explicit(&ring->tail, memory_order_relaxed);
        }
    }
    /* The position is ours alone: no other producer can reach this slot
     * before the consumer has passed it. */
    slot->value = value;
    /* Release: the value is written before the consumer sees the sequence. */
    atomic_store_explicit(&slot->sequence, position + 1, memory_order_release);
    return 0;
}
/* ANCHOR_END: push */

/* ANCHOR: pop */
int evq_mpsc_ring_try_pop(evq_mpsc_ring *ring, uint64_t *out)
{
    size_t position = ring->head; /* only this thread writes head */
    evq_ring_slot *slot = &ring->slots[position & ring->mask];
    /* Acquire: pairs with the producer's release, so the value is complete. */
    size_t sequence = atomic_load_explicit(&slot->sequence, memory_order_acquire);
    if (sequence != position + 1)
        return EVQ_EWOULDBLOCK; /* empty, or claimed but not yet written */
    *out = slot->value;
    /* Hand the slot to the producer of the same slot one lap later. Release:
     * our read of the value happens before that producer overwrites it. */
    atomic_store_explicit(&slot->sequence, position + ring->mask + 1, memory_order_release);
    ring->head = position + 1;
    return 0;
}
/* ANCHOR_END: pop */

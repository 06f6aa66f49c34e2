/* key_table.h - what the kernel is handed instead of a pointer.
 *
 * Every stream of a queue has a slot in the queue's key table, and the
 * kernel carries the slot's key with each of the stream's events (epoll's
 * data.u64, kqueue's udata, IOCP's completion key): the slot's index in the
 * low 32 bits, the slot's generation in the high 32. Closing a stream bumps
 * its slot's generation and frees the slot for the next stream, so an event
 * a waiter took from the kernel before the close names a generation that no
 * longer exists: key_table_hold finds nothing, and the event is dropped. A
 * pointer in the kernel could not say that - the memory may already be
 * another stream's.
 *
 * Every call takes the table's own lock, for a few instructions: a lookup
 * and the reference it takes (stream_hold) are one step, so that a close
 * cannot free the stream in between. The table grows by realloc under that
 * lock; nobody keeps a pointer into it.
 */
#ifndef EVQ_KEY_TABLE_H
#define EVQ_KEY_TABLE_H

#include <stdint.h>

#include "evq_thread.h"

typedef struct evq_tcp evq_tcp;

/* ANCHOR: key */
/* index | generation << 32. No slot has the index 0xFFFFFFFF, so no stream
 * ever has KEY_NONE: the backends give it to their waker. */
#define KEY_NONE UINT64_MAX

static inline uint64_t key_make(uint32_t index, uint32_t generation)
{
    return (uint64_t)index | (uint64_t)generation << 32;
}
static inline uint32_t key_index(uint64_t key)
{
    return (uint32_t)key;
}
static inline uint32_t key_generation(uint64_t key)
{
    return (uint32_t)(key >> 32);
}
/* ANCHOR_END: key */

struct key_slot {
    evq_tcp *tcp;        /* NULL: free */
    uint32_t generation; /* bumped by every remove and rekey */
    uint32_t next_free;  /* the free list, by index; KEY_FREE_END ends it */
};

struct key_table {
    evq_mutex lock;
    struct key_slot *slots;
    uint32_t count, capacity;
    uint32_t free_head; /* the slot freed last is reused first */
};

int key_table_init(struct key_table *table);
void key_table_free(struct key_table *table);
/* A slot for `tcp`; *key is its key. EVQ_ENOMEM. */
int key_table_add(struct key_table *table, evq_tcp *tcp, uint64_t *key);
/* The same slot, a new generation: events carrying the old key are stale
 * (a connect that moved on to a new socket). Returns the new key. */
uint64_t key_table_rekey(struct key_table *table, uint64_t key);
/* The slot is free: its generation moves on, and events carrying `key` are
 * dropped from now on. */
void key_table_remove(struct key_table *table, uint64_t key);
/* The stream whose key this is, held (stream_hold: the caller releases it
 * with stream_release), or NULL if the key is stale: its stream closed, or
 * gave up the socket the event was about. */
evq_tcp *key_table_hold(struct key_table *table, uint64_t key);

#endif

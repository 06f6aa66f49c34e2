/* key_table.c - the queue's stream table: slots, generations, a free list.
 * key_table.h says why the kernel is handed a key and not a pointer.
 */
#include "key_table.h"

#include "evq_error.h"
#include "stream.h"

#include <stdlib.h>

#define KEY_FREE_END   UINT32_MAX
#define KEY_MAX_SLOTS  (UINT32_MAX - 1) /* index 0xFFFFFFFF is KEY_NONE's */
#define KEY_FIRST_SIZE 64

int key_table_init(struct key_table *table)
{
    table->slots = NULL;
    table->count = table->capacity = 0;
    table->free_head = KEY_FREE_END;
    return evq_mutex_init(&table->lock);
}

void key_table_free(struct key_table *table)
{
    free(table->slots);
    table->slots = NULL;
    evq_mutex_destroy(&table->lock);
}

/* ANCHOR: add */
int key_table_add(struct key_table *table, evq_tcp *tcp, uint64_t *key)
{
    evq_mutex_lock(&table->lock);
    uint32_t index = table->free_head;
    if (index != KEY_FREE_END) {
        table->free_head = table->slots[index].next_free;
    } else {
        if (table->count == table->capacity) {
            uint32_t grown = table->capacity ? table->capacity * 2 : KEY_FIRST_SIZE;
            struct key_slot *slots = table->capacity < KEY_MAX_SLOTS / 2
                                         ? realloc(table->slots, grown * sizeof *slots)
                                         : NULL;
            if (!slots) {
                evq_mutex_unlock(&table->lock);
                return EVQ_ENOMEM;
            }
            table->slots = slots;
            table->capacity = grown;
        }
        index = table->count++;
        table->slots[index].generation = 0;
    }
    table->slots[index].tcp = tcp;
    *key = key_make(index, table->slots[index].generation);
    evq_mutex_unlock(&table->lock);
    return 0;
}
/* ANCHOR_END: add */

uint64_t key_table_rekey(struct key_table *table, uint64_t key)
{
    evq_mutex_lock(&table->lock);
    struct key_slot *slot = &table->slots[key_index(key)];
    slot->generation++;
    key = key_make(key_index(key), slot->generation);
    evq_mutex_unlock(&table->lock);
    return key;
}

/* ANCHOR: remove */
void key_table_remove(struct key_table *table, uint64_t key)
{
    evq_mutex_lock(&table->lock);
    uint32_t index = key_index(key);
    struct key_slot *slot = &table->slots[index];
    /* A new generation: an event a waiter already took, carrying `key`,
     * finds nothing - even once the slot is another stream's. After 2^32
     * reuses of one slot a generation comes round again; an event would
     * have to wait in a waiter's hands for all of them. */
    slot->generation++;
    slot->tcp = NULL;
    slot->next_free = table->free_head;
    table->free_head = index;
    evq_mutex_unlock(&table->lock);
}
/* ANCHOR_END: remove */

/* ANCHOR: hold */
evq_tcp *key_table_hold(struct key_table *table, uint64_t key)
{
    evq_mutex_lock(&table->lock);
    uint32_t index = key_index(key);
    evq_tcp *tcp = NULL;
    if (index < table->count && table->slots[index].generation == key_generation(key))
        tcp = table->slots[index].tcp;
    /* Under the table's lock: the close that removes the slot takes it
     * too, and lets go of the caller's reference only after that. */
    if (tcp)
        stream_hold(tcp);
    evq_mutex_unlock(&table->lock);
    return tcp;
}
/* ANCHOR_END: hold */

/* deadline.c - a binary min-heap of streams, each knowing its own index. */
#include "deadline.h"

#include <stdbool.h>
#include <stdlib.h>

/* Which of two deadlines passes first: the earlier instant, and on a tie
 * the one set first (chapter 1's rule: a total order, so equal deadlines
 * pass in the order they were set, whatever the heap's shape). */
static bool earlier(const evq_tcp *a, const evq_tcp *b)
{
    if (a->deadline != b->deadline)
        return a->deadline < b->deadline;
    return a->deadline_order < b->deadline_order;
}

/* Put `tcp` at index i, and tell it where it is. */
static void place(struct deadline_heap *heap, size_t i, evq_tcp *tcp)
{
    heap->items[i] = tcp;
    tcp->deadline_slot = i;
}

/* ANCHOR: sift */
static void sift_up(struct deadline_heap *heap, size_t i)
{
    evq_tcp *tcp = heap->items[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!earlier(tcp, heap->items[parent]))
            break;
        place(heap, i, heap->items[parent]);
        i = parent;
    }
    place(heap, i, tcp);
}

static void sift_down(struct deadline_heap *heap, size_t i)
{
    evq_tcp *tcp = heap->items[i];
    for (;;) {
        size_t first = i, left = 2 * i + 1, right = left + 1;
        const evq_tcp *best = tcp;
        if (left < heap->count && earlier(heap->items[left], best))
            first = left, best = heap->items[left];
        if (right < heap->count && earlier(heap->items[right], best))
            first = right;
        if (first == i)
            break;
        place(heap, i, heap->items[first]);
        i = first;
    }
    place(heap, i, tcp);
}
/* ANCHOR_END: sift */

void deadline_heap_free(struct deadline_heap *heap)
{
    for (size_t i = 0; i < heap->count; i++)
        heap->items[i]->deadline_slot = DEADLINE_NONE;
    free(heap->items);
    heap->items = NULL;
    heap->count = heap->capacity = 0;
}

void deadline_clear(struct deadline_heap *heap, evq_tcp *tcp)
{
    size_t i = tcp->deadline_slot;
    if (i == DEADLINE_NONE)
        return;
    tcp->deadline_slot = DEADLINE_NONE;
    evq_tcp *last = heap->items[--heap->count];
    if (last == tcp)
        return;
    /* The last one takes the hole, then finds its level, up or down. */
    place(heap, i, last);
    sift_up(heap, i);
    sift_down(heap, last->deadline_slot);
}

int deadline_set(struct deadline_heap *heap, evq_tcp *tcp, uint64_t at)
{
    deadline_clear(heap, tcp); /* one per stream: the new one replaces it */
    if (heap->count == heap->capacity) {
        size_t capacity = heap->capacity ? heap->capacity * 2 : 16;
        evq_tcp **items = capacity <= SIZE_MAX / sizeof *items
                              ? realloc(heap->items, capacity * sizeof *items)
                              : NULL;
        if (!items)
            return EVQ_ENOMEM;
        heap->items = items;
        heap->capacity = capacity;
    }
    tcp->deadline = at;
    tcp->deadline_order = heap->next_order++;
    place(heap, heap->count++, tcp);
    sift_up(heap, tcp->deadline_slot);
    return 0;
}

uint64_t deadline_next(const struct deadline_heap *heap)
{
    return heap->count > 0 ? heap->items[0]->deadline : UINT64_MAX;
}

evq_tcp *deadline_pop_passed(struct deadline_heap *heap, uint64_t now)
{
    if (heap->count == 0 || heap->items[0]->deadline > now)
        return NULL;
    evq_tcp *tcp = heap->items[0];
    deadline_clear(heap, tcp);
    return tcp;
}

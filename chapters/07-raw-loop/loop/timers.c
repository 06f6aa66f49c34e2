/* timers.c - a binary min-heap of timers in one growing array. */
#include "evq_timers.h"

#include "evq_error.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

void evq_timers_init(evq_timers *timers)
{
    memset(timers, 0, sizeof *timers);
    timers->next_id = 1; /* 0 is never an id: callers may use it for "none" */
}

void evq_timers_destroy(evq_timers *timers)
{
    free(timers->heap);
    memset(timers, 0, sizeof *timers);
}

/* ANCHOR: earlier */
/* Which of two timers fires first: the earlier deadline, and on a tie the one
 * added first. The tie-break makes the order total, so equal deadlines fire
 * in insertion order however the heap happens to be shaped. */
static bool earlier(const evq_timer *a, const evq_timer *b)
{
    if (a->deadline_ns != b->deadline_ns)
        return a->deadline_ns < b->deadline_ns;
    return a->id < b->id;
}
/* ANCHOR_END: earlier */

static void swap(evq_timer *heap, size_t i, size_t j)
{
    evq_timer t = heap[i];
    heap[i] = heap[j];
    heap[j] = t;
}

/* ANCHOR: sift */
/* Move heap[i] up while it fires before its parent. */
static void sift_up(evq_timer *heap, size_t i)
{
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!earlier(&heap[i], &heap[parent]))
            break;
        swap(heap, i, parent);
        i = parent;
    }
}

/* Move heap[i] down while one of its children fires before it. */
static void sift_down(evq_timer *heap, size_t count, size_t i)
{
    for (;;) {
        size_t first = i, left = 2 * i + 1, right = 2 * i + 2;
        if (left < count && earlier(&heap[left], &heap[first]))
            first = left;
        if (right < count && earlier(&heap[right], &heap[first]))
            first = right;
        if (first == i)
            break;
        swap(heap, i, first);
        i = first;
    }
}
/* ANCHOR_END: sift */

int evq_timers_add(evq_timers *timers, uint64_t deadline_ns, uint64_t data, uint64_t *id)
{
    if (timers->count == timers->capacity) {
        size_t capacity = timers->capacity ? timers->capacity * 2 : 16;
        if (capacity > SIZE_MAX / sizeof *timers->heap)
            return EVQ_ENOMEM;
        evq_timer *heap = realloc(timers->heap, capacity * sizeof *heap);
        if (!heap)
            return EVQ_ENOMEM;
        timers->heap = heap;
        timers->capacity = capacity;
    }
    evq_timer timer = {deadline_ns, timers->next_id++, data};
    timers->heap[timers->count] = timer;
    sift_up(timers->heap, timers->count++);
    if (id)
        *id = timer.id;
    return 0;
}

/* ANCHOR: remove_at */
/* Take out heap[i]: put the last timer in its place, then let that one find
 * its level, up or down. */
static void remove_at(evq_timers *timers, size_t i)
{
    size_t last = --timers->count;
    if (i == last)
        return;
    timers->heap[i] = timers->heap[last];
    sift_up(timers->heap, i);
    sift_down(timers->heap, timers->count, i);
}
/* ANCHOR_END: remove_at */

/* ANCHOR: cancel */
int evq_timers_cancel(evq_timers *timers, uint64_t id)
{
    /* A linear search: the heap orders deadlines, not ids. Fine for the
     * handful of timers a loop like this keeps; a loop with thousands would
     * store each timer's heap index where the caller can find it (libuv's
     * uv_timer_t does). */
    for (size_t i = 0; i < timers->count; i++) {
        if (timers->heap[i].id == id) {
            remove_at(timers, i);
            return 0;
        }
    }
    return EVQ_ENOENT; /* fired, cancelled already, or never added */
}
/* ANCHOR_END: cancel */

const evq_timer *evq_timers_peek(const evq_timers *timers)
{
    return timers->count > 0 ? &timers->heap[0] : NULL;
}

int evq_timers_pop(evq_timers *timers, evq_timer *out)
{
    if (timers->count == 0)
        return EVQ_ENOENT;
    *out = timers->heap[0];
    remove_at(timers, 0);
    return 0;
}

uint64_t evq_timers_next_deadline(const evq_timers *timers)
{
    return timers->count > 0 ? timers->heap[0].deadline_ns : UINT64_MAX;
}

size_t evq_timers_count(const evq_timers *timers)
{
    return timers->count;
}

/* deadline.h - the queue's deadlines: one per stream at most, in a binary
 * min-heap ordered by instant (chapter 1's timer heap, turned around: each
 * stream keeps its own place in the heap, so that setting, moving and
 * clearing a deadline are O(log n) without a search).
 *
 * Memory and arithmetic only, no clock: poll.c reads the queue's clock and
 * passes "now". The stream's fields deadline, deadline_order and
 * deadline_slot (stream.h) belong to this file.
 */
#ifndef EVQ_DEADLINE_H
#define EVQ_DEADLINE_H

#include <stddef.h>
#include <stdint.h>

#include "stream.h"

#define DEADLINE_NONE SIZE_MAX /* deadline_slot of a stream that has no deadline */

struct deadline_heap {
    evq_tcp **items; /* items[0] passes first */
    size_t count, capacity;
    uint64_t next_order; /* ties between equal instants: the one set first passes first */
};

void deadline_heap_free(struct deadline_heap *heap);
/* Give `tcp` the deadline `at`, in place of the one it had. EVQ_ENOMEM
 * leaves it without one. */
int deadline_set(struct deadline_heap *heap, evq_tcp *tcp, uint64_t at);
/* Take the stream's deadline away (nothing if it has none). */
void deadline_clear(struct deadline_heap *heap, evq_tcp *tcp);
/* The nearest deadline, or UINT64_MAX when there is none. */
uint64_t deadline_next(const struct deadline_heap *heap);
/* The stream whose deadline is nearest, if it has passed (at <= now),
 * taken out of the heap; NULL otherwise. */
evq_tcp *deadline_pop_passed(struct deadline_heap *heap, uint64_t now);

#endif

/* evq_timers.h - one-shot timers: a binary min-heap of deadlines.
 *
 * The earliest deadline is always at the top, so "when must the loop wake
 * next?" is one read and "which timers are due?" is a pop per timer, each
 * O(log n). Every timer gets an id, counting up from 1: equal deadlines are
 * ordered by id, so timers that are due at the same instant fire in the order
 * they were added. A timer is cancelled by its id; cancelling one that has
 * fired (or was cancelled, or never existed) is EVQ_ENOENT, never a crash.
 *
 * Instants and deadlines are nanoseconds on whatever clock the caller uses;
 * UINT64_MAX means "never".
 */
#ifndef EVQ_TIMERS_H
#define EVQ_TIMERS_H

#include <stddef.h>
#include <stdint.h>

typedef struct evq_timer {
    uint64_t deadline_ns;
    uint64_t id;   /* 1, 2, 3... in the order the timers were added; never 0 */
    uint64_t data; /* the caller's value, handed back when the timer fires */
} evq_timer;

typedef struct evq_timers {
    evq_timer *heap; /* heap[0] is the earliest; children of i: 2i+1, 2i+2 */
    size_t count;
    size_t capacity;
    uint64_t next_id;
} evq_timers;

void evq_timers_init(evq_timers *timers);
void evq_timers_destroy(evq_timers *timers);

/* Add a timer; its id goes to *id (when id is not NULL). EVQ_ENOMEM. */
int evq_timers_add(evq_timers *timers, uint64_t deadline_ns, uint64_t data, uint64_t *id);

/* Remove the timer with this id. EVQ_ENOENT when no pending timer has it. */
int evq_timers_cancel(evq_timers *timers, uint64_t id);

/* The earliest timer, left in place; NULL when there is none. */
const evq_timer *evq_timers_peek(const evq_timers *timers);

/* Remove the earliest timer into *out. EVQ_ENOENT when there is none. */
int evq_timers_pop(evq_timers *timers, evq_timer *out);

/* The earliest deadline, or UINT64_MAX ("never") when there is no timer. */
uint64_t evq_timers_next_deadline(const evq_timers *timers);

size_t evq_timers_count(const evq_timers *timers);

#endif

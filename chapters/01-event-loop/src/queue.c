/* queue.c - a FIFO of events and the simplest loop that drains it. */
#include "evq_queue.h"

#include "evq_error.h"

#include <stdlib.h>
#include <string.h>

int evq_queue_init(evq_queue *queue, size_t capacity)
{
    memset(queue, 0, sizeof *queue);
    if (capacity == 0)
        return EVQ_EINVAL;
    queue->events = calloc(capacity, sizeof *queue->events);
    if (!queue->events)
        return EVQ_ENOMEM;
    queue->capacity = capacity;
    return 0;
}

void evq_queue_destroy(evq_queue *queue)
{
    free(queue->events);
    memset(queue, 0, sizeof *queue);
}

/* The slot after the newest event, or NULL when the ring is full. */
static evq_event *next_free_slot(evq_queue *queue)
{
    if (queue->count == queue->capacity)
        return NULL;
    return &queue->events[(queue->head + queue->count) % queue->capacity];
}

int evq_queue_push_timer(evq_queue *queue, uint64_t timer)
{
    evq_event *slot = next_free_slot(queue);
    if (!slot)
        return EVQ_EFULL;
    slot->kind = EVQ_EVENT_TIMER;
    slot->timer = timer;
    queue->count++;
    return 0;
}

int evq_queue_push_message(evq_queue *queue, const char *text)
{
    if (!text)
        return EVQ_EINVAL;
    size_t length = strlen(text);
    if (length >= EVQ_EVENT_TEXT_MAX)
        return EVQ_EMSGSIZE; /* refused whole: a queue never truncates what it carries */
    evq_event *slot = next_free_slot(queue);
    if (!slot)
        return EVQ_EFULL;
    slot->kind = EVQ_EVENT_MESSAGE;
    memcpy(slot->text, text, length + 1);
    queue->count++;
    return 0;
}

bool evq_queue_pop(evq_queue *queue, evq_event *out)
{
    if (queue->count == 0)
        return false;
    *out = queue->events[queue->head];
    queue->head = (queue->head + 1) % queue->capacity;
    queue->count--;
    return true;
}

size_t evq_queue_count(const evq_queue *queue)
{
    return queue->count;
}

static bool told_to_stop(const atomic_bool *stop)
{
    /* relaxed: the flag says "stop", nothing more; see evq_loop_run(). */
    return stop && atomic_load_explicit(stop, memory_order_relaxed);
}

/* ANCHOR: simple_loop */
size_t evq_queue_run(evq_queue *queue, const evq_queue_handlers *handlers, const atomic_bool *stop)
{
    size_t dispatched = 0;
    evq_event event;
    while (!told_to_stop(stop) && evq_queue_pop(queue, &event)) {
        switch (event.kind) {
        case EVQ_EVENT_TIMER:
            if (handlers->on_timer)
                handlers->on_timer(handlers->context, event.timer);
            break;
        case EVQ_EVENT_MESSAGE:
            if (handlers->on_message)
                handlers->on_message(handlers->context, event.text);
            break;
        }
        dispatched++;
    }
    return dispatched;
}
/* ANCHOR_END: simple_loop */

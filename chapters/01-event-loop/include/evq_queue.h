/* evq_queue.h - the simplest event loop: a FIFO queue of events, popped and
 * dispatched one by one until it is empty or someone asks the loop to stop.
 *
 * There is no operating system here and no waiting: events are put in by the
 * program itself (a handler may push more), and "nothing to do" ends the
 * loop. Everything runs on one thread. The rest of the chapter adds what a
 * real program needs: other threads, time, and something to sleep on.
 */
#ifndef EVQ_QUEUE_H
#define EVQ_QUEUE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EVQ_EVENT_TEXT_MAX 64 /* bytes of a message's text, with its NUL */

/* ANCHOR: event */
enum evq_event_kind {
    EVQ_EVENT_TIMER,   /* a timer went off: carries the timer's number */
    EVQ_EVENT_MESSAGE, /* someone said something: carries text */
};

typedef struct evq_event {
    enum evq_event_kind kind;
    union {
        uint64_t timer;                /* EVQ_EVENT_TIMER */
        char text[EVQ_EVENT_TEXT_MAX]; /* EVQ_EVENT_MESSAGE, NUL-terminated */
    };
} evq_event;
/* ANCHOR_END: event */

/* A bounded ring of events: `count` of them, the oldest at `head`. */
typedef struct evq_queue {
    evq_event *events;
    size_t capacity;
    size_t head;
    size_t count;
} evq_queue;

/* EVQ_EINVAL for a capacity of 0, EVQ_ENOMEM. */
int evq_queue_init(evq_queue *queue, size_t capacity);
void evq_queue_destroy(evq_queue *queue);

/* Append an event. EVQ_EFULL when the queue is full (nothing is changed);
 * EVQ_EMSGSIZE when text does not fit in EVQ_EVENT_TEXT_MAX bytes with its NUL;
 * EVQ_EINVAL for a NULL text. */
int evq_queue_push_timer(evq_queue *queue, uint64_t timer);
int evq_queue_push_message(evq_queue *queue, const char *text);

/* Take the oldest event into *out. false when the queue is empty. */
bool evq_queue_pop(evq_queue *queue, evq_event *out);
size_t evq_queue_count(const evq_queue *queue);

/* What the loop calls for each kind of event. A NULL handler skips the event. */
typedef struct evq_queue_handlers {
    void (*on_timer)(void *context, uint64_t timer);
    void (*on_message)(void *context, const char *text);
    void *context;
} evq_queue_handlers;

/* The simplest loop: pop and dispatch until the queue is empty or *stop is
 * true (checked before every event; NULL: never stop early). Events that
 * handlers push are dispatched in the same run, after those already queued.
 * Returns how many events were dispatched. */
size_t evq_queue_run(evq_queue *queue, const evq_queue_handlers *handlers, const atomic_bool *stop);

#endif

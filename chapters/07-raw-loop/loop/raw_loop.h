/* raw_loop.h - chapter 7's program template: chapter 1's raw event loop,
 * now asleep in the queue the book has built instead of on a condition
 * variable.
 *
 * A loop is one thread's. Each turn it
 *
 *   1. waits in evq_poll_wait, no longer than until the next timer or the
 *      next periodic task is due (and not at all if messages are left over);
 *   2. reads the clock once: loop_time, the "now" of everything below;
 *   3. hands each event to on_event;
 *   4. takes at most message_budget messages from its inbox (a channel that
 *      any thread may send to: the send wakes the queue) to on_message;
 *   5. fires the timers whose deadline has come, in deadline order;
 *   6. runs each periodic task whose interval has passed, measured from the
 *      task's `last` instant with saturating differences;
 *   7. looks at the termination flag. Once it is set, on_stop is called at
 *      the end of every turn until it answers true (nothing left in flight),
 *      and the loop returns.
 *
 * Partial work - half a request, an answer the socket has not taken yet - is
 * the program's: it keeps it in its own records across turns (the loop never
 * blocks for it), and on_stop decides when none is left.
 *
 * Several loops may wait on ONE queue (chapter 5's waiters): each event goes
 * to one of them, so on_event runs on whichever thread the queue chose, and
 * each loop has its own timers and periodic tasks. A loop that sees the flag
 * wakes the queue once more, so that every loop sleeping on it sees the flag
 * too, however many there are.
 */
#ifndef RAW_LOOP_H
#define RAW_LOOP_H

#include "evq.h"

#include "evq_clock.h"
#include "evq_thread.h"
#include "evq_timers.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RAW_LOOP_EVENTS       64 /* events taken from the queue per wait */
#define RAW_LOOP_PERIODIC_MAX 4  /* periodic tasks per loop */

/* ---- the channel: other threads -> a loop --------------------------------- */

/* A message. What the words mean is the program's (kind says which). */
typedef struct raw_message {
    uint32_t kind;
    uint32_t from;
    uint64_t value[4];
} raw_message;

/* A bounded ring, many senders. A send that finds it empty wakes the queue
 * the loop sleeps on (one evq_poll_wake per batch, not per message). */
typedef struct raw_channel {
    evq_mutex lock; /* guards everything below */
    raw_message *slots;
    size_t capacity;
    size_t head; /* the oldest message */
    size_t count;
    evq_poll *poll; /* woken by a send into an empty channel */
} raw_channel;

/* EVQ_EINVAL (no poll, capacity 0), EVQ_ENOMEM. */
int raw_channel_init(raw_channel *channel, size_t capacity, evq_poll *poll);
void raw_channel_destroy(raw_channel *channel);
/* Any thread. 0, or EVQ_EFULL: the message is not taken (the sender decides
 * what to do: a channel that grew without bound would hide a stuck loop). */
int raw_channel_send(raw_channel *channel, const raw_message *message);
/* The loop. 0 and the oldest message, or EVQ_EWOULDBLOCK when empty. */
int raw_channel_try_recv(raw_channel *channel, raw_message *out);
size_t raw_channel_count(raw_channel *channel);

/* ---- the loop --------------------------------------------------------------- */

typedef struct raw_loop raw_loop;

typedef struct raw_loop_hooks {
    /* An event from the queue: the stream it names is this thread's until it
     * is re-armed or closed. */
    void (*on_event)(void *context, raw_loop *loop, const evq_event *event);
    void (*on_message)(void *context, raw_loop *loop, const raw_message *message);
    /* A timer added with raw_loop_add_timer is due. */
    void (*on_timer)(void *context, raw_loop *loop, uint64_t id, uint64_t data);
    /* The flag is set: true when the loop may return now. NULL: at once. */
    bool (*on_stop)(void *context, raw_loop *loop);
    void *context;
} raw_loop_hooks;

/* A periodic task. `intervals` is how many of its intervals passed since it
 * last ran: 1 normally, more after a stall (it runs once, not once each). */
typedef void (*raw_periodic_fn)(void *context, raw_loop *loop, uint64_t intervals);

typedef struct raw_loop_config {
    evq_poll *poll;          /* the queue it waits on (required; may be shared) */
    evq_clock clock;         /* evq_clock_system(), or a fake one in tests */
    const atomic_bool *stop; /* the termination flag (required) */
    raw_channel *inbox;      /* may be NULL; may be shared by the loops of one queue */
    size_t message_budget;   /* most messages taken per turn (0: 64) */
    uint64_t max_wait_ns;    /* longest sleep (0: as long as nothing is due) */
    raw_loop_hooks hooks;
} raw_loop_config;

typedef struct raw_loop_stats {
    uint64_t turns;
    uint64_t waits_empty;  /* waits that returned no event */
    uint64_t events;       /* handed to on_event */
    uint64_t messages;     /* handed to on_message */
    uint64_t timers_fired; /* handed to on_timer */
    uint64_t periodic_runs;
    uint64_t missed_intervals; /* periodic intervals folded into a later run */
} raw_loop_stats;

/* ANCHOR: loop_state */
/* Everything the loop thread owns: nothing here is shared. */
struct raw_loop {
    raw_loop_config config;
    uint64_t loop_time; /* read once per turn, after the wait */
    struct last {       /* when each periodic task last ran (on its grid) */
        uint64_t at[RAW_LOOP_PERIODIC_MAX];
        uint64_t interval[RAW_LOOP_PERIODIC_MAX];
        raw_periodic_fn run[RAW_LOOP_PERIODIC_MAX];
        size_t count;
    } last;
    evq_timers timers;
    bool stopping;      /* the flag has been seen */
    bool messages_left; /* the last turn's budget left messages in the inbox */
    evq_event events[RAW_LOOP_EVENTS];
    raw_loop_stats stats;
};
/* ANCHOR_END: loop_state */

/* EVQ_EINVAL for a missing poll, clock or flag. */
int raw_loop_init(raw_loop *loop, const raw_loop_config *config);
void raw_loop_destroy(raw_loop *loop);

/* A periodic task, first due one interval from now. EVQ_EINVAL for an
 * interval of 0, EVQ_EFULL past RAW_LOOP_PERIODIC_MAX. */
int raw_loop_every(raw_loop *loop, uint64_t interval_ns, raw_periodic_fn run);

/* A one-shot timer, due delay_ns after this turn's loop_time; it fires on a
 * later turn, never the current one. *id (may be NULL) cancels it. */
int raw_loop_add_timer(raw_loop *loop, uint64_t delay_ns, uint64_t data, uint64_t *id);
int raw_loop_cancel_timer(raw_loop *loop, uint64_t id); /* EVQ_ENOENT */

/* This turn's loop_time. */
uint64_t raw_loop_now(const raw_loop *loop);
/* Whether the flag has been seen (on_stop is being asked). */
bool raw_loop_stopping(const raw_loop *loop);
const raw_loop_stats *raw_loop_get_stats(const raw_loop *loop);

/* One turn. *done becomes true when the loop has stopped (the flag was set
 * and on_stop said so, or the queue was shut down). 0, or the queue's error
 * other than EVQ_ECLOSED. Tests step a loop with it; programs call run. */
int raw_loop_turn(raw_loop *loop, bool *done);
/* Turns until done. */
int raw_loop_run(raw_loop *loop);

/* Whether at `now` at least `interval` has passed since *last; if so *last
 * moves on by whole intervals (the task stays on its grid) and the number of
 * intervals is returned. 0 when not due, when *last is later than now, and
 * for an interval of 0. Never a naked now - *last. */
uint64_t raw_periodic_due(uint64_t *last, uint64_t now, uint64_t interval);

#endif

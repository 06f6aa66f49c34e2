/* raw_loop.c - the template's turn (see raw_loop.h). */
#include "raw_loop.h"

#include <stdlib.h>
#include <string.h>

/* ---- the channel ------------------------------------------------------------ */

int raw_channel_init(raw_channel *channel, size_t capacity, evq_poll *poll)
{
    if (!channel || capacity == 0 || !poll)
        return EVQ_EINVAL;
    memset(channel, 0, sizeof *channel);
    channel->slots = calloc(capacity, sizeof *channel->slots);
    if (!channel->slots)
        return EVQ_ENOMEM;
    if (evq_mutex_init(&channel->lock) != 0) {
        free(channel->slots);
        return EVQ_ENOMEM;
    }
    channel->capacity = capacity;
    channel->poll = poll;
    return 0;
}

void raw_channel_destroy(raw_channel *channel)
{
    if (!channel || !channel->slots)
        return;
    evq_mutex_destroy(&channel->lock);
    free(channel->slots);
    memset(channel, 0, sizeof *channel);
}

/* ANCHOR: channel_send */
int raw_channel_send(raw_channel *channel, const raw_message *message)
{
    if (!channel || !message)
        return EVQ_EINVAL;
    evq_mutex_lock(&channel->lock);
    if (channel->count == channel->capacity) {
        evq_mutex_unlock(&channel->lock);
        return EVQ_EFULL;
    }
    channel->slots[(channel->head + channel->count) % channel->capacity] = *message;
    bool was_empty = channel->count++ == 0;
    evq_mutex_unlock(&channel->lock);
    /* Only the first message of a batch wakes the loop: it takes everything
     * that is there when it looks, and a message sent after it looked finds
     * the channel empty again and wakes it again. A wake that comes before
     * the loop sleeps is not lost: the queue keeps it for the next wait. */
    if (was_empty)
        evq_poll_wake(channel->poll);
    return 0;
}
/* ANCHOR_END: channel_send */

/* The oldest message, and how many are left after it, under one lock. */
static int channel_take(raw_channel *channel, raw_message *out, size_t *left)
{
    evq_mutex_lock(&channel->lock);
    if (channel->count == 0) {
        evq_mutex_unlock(&channel->lock);
        *left = 0;
        return EVQ_EWOULDBLOCK;
    }
    *out = channel->slots[channel->head];
    channel->head = (channel->head + 1) % channel->capacity;
    *left = --channel->count;
    evq_mutex_unlock(&channel->lock);
    return 0;
}

int raw_channel_try_recv(raw_channel *channel, raw_message *out)
{
    if (!channel || !out)
        return EVQ_EINVAL;
    size_t left;
    return channel_take(channel, out, &left);
}

size_t raw_channel_count(raw_channel *channel)
{
    evq_mutex_lock(&channel->lock);
    size_t count = channel->count;
    evq_mutex_unlock(&channel->lock);
    return count;
}

/* ---- the loop --------------------------------------------------------------- */

int raw_loop_init(raw_loop *loop, const raw_loop_config *config)
{
    if (!loop || !config || !config->poll || !config->clock.now_ns || !config->stop)
        return EVQ_EINVAL;
    memset(loop, 0, sizeof *loop);
    loop->config = *config;
    if (loop->config.message_budget == 0)
        loop->config.message_budget = 64;
    evq_timers_init(&loop->timers);
    loop->loop_time = evq_clock_read(&loop->config.clock);
    return 0;
}

void raw_loop_destroy(raw_loop *loop)
{
    if (loop)
        evq_timers_destroy(&loop->timers);
}

int raw_loop_every(raw_loop *loop, uint64_t interval_ns, raw_periodic_fn run)
{
    if (!loop || interval_ns == 0 || !run)
        return EVQ_EINVAL;
    struct last *last = &loop->last;
    if (last->count == RAW_LOOP_PERIODIC_MAX)
        return EVQ_EFULL;
    last->at[last->count] = loop->loop_time;
    last->interval[last->count] = interval_ns;
    last->run[last->count] = run;
    last->count++;
    return 0;
}

int raw_loop_add_timer(raw_loop *loop, uint64_t delay_ns, uint64_t data, uint64_t *id)
{
    if (!loop)
        return EVQ_EINVAL;
    return evq_timers_add(&loop->timers, evq_sat_add(loop->loop_time, delay_ns), data, id);
}

int raw_loop_cancel_timer(raw_loop *loop, uint64_t id)
{
    return loop ? evq_timers_cancel(&loop->timers, id) : EVQ_EINVAL;
}

uint64_t raw_loop_now(const raw_loop *loop)
{
    return loop->loop_time;
}

bool raw_loop_stopping(const raw_loop *loop)
{
    return loop->stopping;
}

const raw_loop_stats *raw_loop_get_stats(const raw_loop *loop)
{
    return &loop->stats;
}

/* ANCHOR: periodic_due */
uint64_t raw_periodic_due(uint64_t *last, uint64_t now, uint64_t interval)
{
    /* Saturating: a *last later than now (a clock read on another thread, a
     * test's clock) means no time has passed - not ~584 years. */
    uint64_t elapsed = evq_sat_sub(now, *last);
    if (interval == 0 || elapsed < interval)
        return 0;
    uint64_t intervals = elapsed / interval;
    *last += intervals * interval; /* on the grid: a late turn does not shift later runs */
    return intervals;
}
/* ANCHOR_END: periodic_due */

/* ANCHOR: next_deadline */
/* The earliest instant something is due: a timer, a periodic task, or the
 * longest sleep allowed. UINT64_MAX: nothing (sleep until an event). */
static uint64_t next_deadline(const raw_loop *loop)
{
    uint64_t deadline = evq_timers_next_deadline(&loop->timers);
    const struct last *last = &loop->last;
    for (size_t i = 0; i < last->count; i++) {
        uint64_t due = evq_sat_add(last->at[i], last->interval[i]);
        if (due < deadline)
            deadline = due;
    }
    if (loop->config.max_wait_ns != 0) {
        uint64_t bound = evq_sat_add(loop->loop_time, loop->config.max_wait_ns);
        if (bound < deadline)
            deadline = bound;
    }
    return deadline;
}
/* ANCHOR_END: next_deadline */

static int wait_timeout_ms(const raw_loop *loop)
{
    if (loop->messages_left)
        return 0; /* left over from the last turn's budget */
    uint64_t deadline = next_deadline(loop);
    if (deadline == UINT64_MAX)
        return -1;
    /* Rounded up: a wait that ends a little before the deadline would find
     * nothing due and go round again for nothing. */
    return evq_remaining_ms(deadline, evq_clock_read(&loop->config.clock));
}

static void fire_timers(raw_loop *loop)
{
    /* Only timers that existed when this phase began: one that a timer adds
     * with a delay of 0 waits for the next turn, so a timer that re-adds
     * itself cannot keep the loop from waiting. */
    uint64_t first_new_id = loop->timers.next_id;
    const evq_timer *top;
    while ((top = evq_timers_peek(&loop->timers)) && top->deadline_ns <= loop->loop_time &&
           top->id < first_new_id) {
        evq_timer timer;
        evq_timers_pop(&loop->timers, &timer);
        loop->stats.timers_fired++;
        if (loop->config.hooks.on_timer)
            loop->config.hooks.on_timer(loop->config.hooks.context, loop, timer.id, timer.data);
    }
}

static void run_periodic(raw_loop *loop)
{
    struct last *last = &loop->last;
    for (size_t i = 0; i < last->count; i++) {
        uint64_t intervals = raw_periodic_due(&last->at[i], loop->loop_time, last->interval[i]);
        if (intervals == 0)
            continue;
        loop->stats.periodic_runs++;
        loop->stats.missed_intervals += intervals - 1;
        last->run[i](loop->config.hooks.context, loop, intervals);
    }
}

/* ANCHOR: turn */
int raw_loop_turn(raw_loop *loop, bool *done)
{
    const raw_loop_hooks *hooks = &loop->config.hooks;
    *done = false;
    loop->stats.turns++;

    size_t n = 0;
    int rc =
        evq_poll_wait(loop->config.poll, loop->events, RAW_LOOP_EVENTS, wait_timeout_ms(loop), &n);
    if (rc == EVQ_ECLOSED) { /* the queue was shut down under us: nothing more can come */
        loop->stopping = true;
        *done = true;
        return 0;
    }
    if (rc != 0 && rc != EVQ_EINTR)
        return rc;
    loop->loop_time = evq_clock_read(&loop->config.clock);
    if (n == 0)
        loop->stats.waits_empty++;

    for (size_t i = 0; i < n; i++) {
        loop->stats.events++;
        if (hooks->on_event)
            hooks->on_event(hooks->context, loop, &loop->events[i]);
    }
    /* ANCHOR_END: turn */

    /* ANCHOR: turn_rest */
    raw_message message;
    size_t left = 0;
    for (size_t i = 0; loop->config.inbox && i < loop->config.message_budget &&
                       channel_take(loop->config.inbox, &message, &left) == 0;
         i++) {
        loop->stats.messages++;
        if (hooks->on_message)
            hooks->on_message(hooks->context, loop, &message);
    }
    /* Messages past the budget: their senders found the channel non-empty,
     * so none of them woke the queue - the next wait must not sleep. */
    loop->messages_left = left > 0;

    fire_timers(loop);
    run_periodic(loop);

    if (!loop->stopping && atomic_load_explicit(loop->config.stop, memory_order_acquire)) {
        loop->stopping = true;
        /* Pass the word on: a queue's wake ends one waiter's wait, and the
         * other loops sleeping on a shared queue must see the flag too. */
        evq_poll_wake(loop->config.poll);
    }
    if (loop->stopping && (!hooks->on_stop || hooks->on_stop(hooks->context, loop)))
        *done = true;
    return 0;
}
/* ANCHOR_END: turn_rest */

int raw_loop_run(raw_loop *loop)
{
    if (!loop)
        return EVQ_EINVAL;
    bool done = false;
    int rc = 0;
    while (!done && rc == 0)
        rc = raw_loop_turn(loop, &done);
    return rc;
}

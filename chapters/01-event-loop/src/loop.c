/* loop.c - the raw event loop: one turn at a time, on one thread. */
#include "evq_loop.h"

#include "evq_error.h"

#include <string.h>

evq_loop_config evq_loop_default_config(evq_channel *inbox, const atomic_bool *stop)
{
    evq_loop_config config;
    memset(&config, 0, sizeof config);
    config.clock = evq_clock_system();
    config.inbox = inbox;
    config.stop = stop;
    config.wait = EVQ_LOOP_BLOCK;
    config.housekeeping_interval_ns = 250 * EVQ_NS_PER_MS;
    config.report_interval_ns = 1 * EVQ_NS_PER_S;
    config.pending_timeout_ns = 1 * EVQ_NS_PER_S;
    config.max_wait_ns = 100 * EVQ_NS_PER_MS;
    config.drain_budget = 64;
    return config;
}

int evq_loop_init(evq_loop *loop, const evq_loop_config *config)
{
    memset(loop, 0, sizeof *loop);
    if (!config || !config->inbox || !config->stop || !config->clock.now_ns ||
        config->housekeeping_interval_ns == 0 || config->report_interval_ns == 0 ||
        config->pending_timeout_ns == 0 || config->max_wait_ns == 0 || config->drain_budget == 0)
        return EVQ_EINVAL;
    loop->config = *config;
    loop->loop_time = evq_clock_read(&loop->config.clock);
    loop->last.housekeeping = loop->loop_time;
    loop->last.report = loop->loop_time;
    evq_timers_init(&loop->timers);
    return 0;
}

void evq_loop_destroy(evq_loop *loop)
{
    evq_timers_destroy(&loop->timers);
}

/* ANCHOR: periodic_due */
uint64_t evq_periodic_due(uint64_t *last, uint64_t now, uint64_t interval)
{
    /* Saturating: if *last is later than now, no time has passed. A naked
     * now - *last would be ~584 years: the task would run at once, and a
     * catch-up loop would run it ~10^11 times. */
    uint64_t elapsed = evq_sat_sub(now, *last);
    if (interval == 0 || elapsed < interval)
        return 0;
    uint64_t intervals = elapsed / interval;
    /* Stay on the grid: last + k * interval, not now. A late turn does not
     * push every later run back by its lateness. (k * interval <= elapsed,
     * so this cannot overflow.) */
    *last += intervals * interval;
    return intervals;
}
/* ANCHOR_END: periodic_due */

/* ANCHOR: stop_requested */
static bool stop_requested(const evq_loop *loop)
{
    /* Relaxed is enough: the flag is the whole message. The loop reads nothing
     * that the thread (or signal handler) which set it wrote before setting
     * it, and a stronger order would not make the store visible any sooner. */
    return atomic_load_explicit(loop->config.stop, memory_order_relaxed);
}
/* ANCHOR_END: stop_requested */

static size_t text_length(const evq_message *message)
{
    /* A sender may have filled text to the brim: never read past it. */
    const char *end = memchr(message->text, '\0', sizeof message->text);
    return end ? (size_t)(end - message->text) : sizeof message->text;
}

/* ANCHOR: take_part */
static void take_part(evq_loop *loop, const evq_message *message)
{
    evq_pending_record *record = &loop->pending[message->sender];
    size_t length = text_length(message);
    if (record->state == EVQ_RECORD_IDLE) {
        record->state = EVQ_RECORD_ASSEMBLING;
        record->started_at = loop->loop_time;
        record->first_turn = loop->stats.turns;
        record->length = 0;
    }
    if (record->state == EVQ_RECORD_ASSEMBLING) {
        if (length < sizeof record->text - record->length) {
            memcpy(record->text + record->length, message->text, length);
            record->length += length;
        } else {
            record->state = EVQ_RECORD_DISCARDING; /* too long: drop it whole */
            loop->stats.records_dropped++;
        }
    }
    if (message->flags & EVQ_MESSAGE_PART)
        return; /* the rest comes later, maybe turns later: keep what we have */
    if (record->state == EVQ_RECORD_ASSEMBLING) {
        record->text[record->length] = '\0';
        loop->stats.records++;
        loop->stats.records_across_turns += record->first_turn != loop->stats.turns;
        if (loop->config.hooks.on_record)
            loop->config.hooks.on_record(loop->config.hooks.context, message->sender, record->text,
                                         record->length);
    }
    record->state = EVQ_RECORD_IDLE;
}
/* ANCHOR_END: take_part */

/* ANCHOR: handle_message */
static void handle_message(evq_loop *loop, const evq_message *message)
{
    loop->stats.messages++;
    /* sent_at was read on the sender's thread, maybe after this turn read
     * loop_time: later than "now". Saturate, or the latency is 584 years. */
    uint64_t latency = evq_sat_sub(loop->loop_time, message->sent_at_ns);
    if (latency > loop->stats.max_latency_ns)
        loop->stats.max_latency_ns = latency;
    if (message->sender >= EVQ_LOOP_MAX_SENDERS) {
        loop->stats.records_dropped++; /* no room to assemble it: refuse, never crash */
        return;
    }
    take_part(loop, message);
}
/* ANCHOR_END: handle_message */

/* ANCHOR: drain_inbox */
static void drain_inbox(evq_loop *loop)
{
    evq_message message;
    size_t taken = 0;
    /* try_recv never blocks: an empty inbox means "nothing now", and the
     * turn moves on to timers and periodic tasks. The budget keeps a flood
     * of messages from starving them. */
    while (taken < loop->config.drain_budget &&
           evq_channel_try_recv(loop->config.inbox, &message) == 0) {
        handle_message(loop, &message);
        taken++;
    }
    loop->inbox_has_more = taken == loop->config.drain_budget;
}
/* ANCHOR_END: drain_inbox */

/* ANCHOR: fire_due_timers */
static void fire_due_timers(evq_loop *loop)
{
    /* Timers that handlers add now get ids from here on: they wait for a
     * later turn, so a handler that re-arms with a delay of 0 cannot keep
     * this loop going forever. Equal deadlines order by id, so once the
     * earliest timer is a new one, every due timer left is new too. */
    uint64_t first_new_id = loop->timers.next_id;
    const evq_timer *next;
    while ((next = evq_timers_peek(&loop->timers)) && next->deadline_ns <= loop->loop_time &&
           next->id < first_new_id) {
        evq_timer timer;
        evq_timers_pop(&loop->timers, &timer);
        loop->stats.timers_fired++;
        if (loop->config.hooks.on_timer)
            loop->config.hooks.on_timer(loop->config.hooks.context, loop, timer.id, timer.data);
    }
}
/* ANCHOR_END: fire_due_timers */

static void drop_stale_records(evq_loop *loop)
{
    for (size_t i = 0; i < EVQ_LOOP_MAX_SENDERS; i++) {
        evq_pending_record *record = &loop->pending[i];
        if (record->state == EVQ_RECORD_ASSEMBLING &&
            evq_sat_sub(loop->loop_time, record->started_at) >= loop->config.pending_timeout_ns) {
            /* The sender went quiet mid-record. Free the memory, and skip
             * the record's tail should it turn up after all. */
            record->state = EVQ_RECORD_DISCARDING;
            loop->stats.records_dropped++;
        }
    }
}

/* ANCHOR: periodic_tasks */
static void run_periodic_tasks(evq_loop *loop)
{
    const evq_loop_config *config = &loop->config;
    uint64_t intervals;

    intervals = evq_periodic_due(&loop->last.housekeeping, loop->loop_time,
                                 config->housekeeping_interval_ns);
    if (intervals > 0) {
        loop->stats.housekeeping_runs++;
        loop->stats.missed_intervals += intervals - 1;
        drop_stale_records(loop);
    }

    intervals = evq_periodic_due(&loop->last.report, loop->loop_time, config->report_interval_ns);
    if (intervals > 0) {
        loop->stats.reports++;
        loop->stats.missed_intervals += intervals - 1;
        if (config->hooks.on_report)
            config->hooks.on_report(config->hooks.context, &loop->stats);
    }
}
/* ANCHOR_END: periodic_tasks */

/* ANCHOR: turn */
void evq_loop_turn(evq_loop *loop)
{
    /* The clock is read once per turn: every decision below agrees on "now",
     * and a handler that runs long cannot make a later check see time jump. */
    loop->loop_time = evq_clock_read(&loop->config.clock);
    loop->stats.turns++;

    drain_inbox(loop);
    fire_due_timers(loop);
    run_periodic_tasks(loop);
}
/* ANCHOR_END: turn */

/* ANCHOR: next_deadline */
uint64_t evq_loop_next_deadline(const evq_loop *loop)
{
    if (loop->inbox_has_more)
        return loop->loop_time; /* work is waiting: don't sleep at all */
    const evq_loop_config *config = &loop->config;
    uint64_t deadline = evq_timers_next_deadline(&loop->timers); /* UINT64_MAX if none */
    uint64_t housekeeping = evq_sat_add(loop->last.housekeeping, config->housekeeping_interval_ns);
    uint64_t report = evq_sat_add(loop->last.report, config->report_interval_ns);
    if (housekeeping < deadline)
        deadline = housekeeping;
    if (report < deadline)
        deadline = report;
    return deadline;
}
/* ANCHOR_END: next_deadline */

/* ANCHOR: wait */
void evq_loop_wait(evq_loop *loop)
{
    if (loop->config.wait == EVQ_LOOP_SPIN)
        return; /* straight back to try_recv: a core at 100% doing nothing */

    /* Saturating again: a deadline already behind loop_time means "don't
     * sleep", not "sleep for 584 years". */
    uint64_t timeout = evq_sat_sub(evq_loop_next_deadline(loop), loop->loop_time);
    /* A signal handler can set the flag but cannot wake us (that takes a
     * lock), so never sleep longer than we are willing to notice it late. */
    if (timeout > loop->config.max_wait_ns)
        timeout = loop->config.max_wait_ns;
    if (timeout == 0)
        return;
    loop->stats.waits++;
    evq_channel_wait(loop->config.inbox, timeout); /* a message, a wake, or time */
}
/* ANCHOR_END: wait */

/* ANCHOR: run */
void evq_loop_run(evq_loop *loop)
{
    while (!stop_requested(loop)) {
        evq_loop_turn(loop);
        if (stop_requested(loop)) /* set during this turn: leave without sleeping */
            break;
        evq_loop_wait(loop);
    }
}
/* ANCHOR_END: run */

int evq_loop_add_timer(evq_loop *loop, uint64_t delay_ns, uint64_t data, uint64_t *id)
{
    return evq_timers_add(&loop->timers, evq_sat_add(loop->loop_time, delay_ns), data, id);
}

int evq_loop_cancel_timer(evq_loop *loop, uint64_t id)
{
    return evq_timers_cancel(&loop->timers, id);
}

/* evq_loop.h - the "raw event loop": the program template the rest of the
 * book grows, here with no operating system queue in it yet.
 *
 * One thread runs the loop and owns everything in struct evq_loop; no other
 * thread touches it. Other threads reach the loop in exactly two ways:
 * messages through a bounded channel (the inbox), and a termination flag.
 * Each turn of the loop:
 *
 *   1. reads the clock once: loop_time, the "now" of every decision below;
 *   2. drains the inbox with try_recv (never blocking), at most a budget of
 *      messages, and assembles records that arrive in parts;
 *   3. fires the timers whose deadline has come;
 *   4. runs each periodic task whose interval has passed, measured with
 *      saturating differences of instants kept in `last`;
 *   5. then, unless it was told to stop, waits: blocks on the inbox until the
 *      next deadline (EVQ_LOOP_BLOCK), or goes straight round (EVQ_LOOP_SPIN,
 *      kept to measure what spinning costs).
 *
 * The loop never prints: what it does reaches the program through hooks.
 */
#ifndef EVQ_LOOP_H
#define EVQ_LOOP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "evq_channel.h"
#include "evq_clock.h"
#include "evq_timers.h"

#define EVQ_LOOP_MAX_SENDERS 8   /* senders 0..7 may send records in parts */
#define EVQ_RECORD_MAX       256 /* bytes of an assembled record, with its NUL */

/* How the loop waits when it has nothing to do. */
enum evq_loop_wait_mode {
    EVQ_LOOP_BLOCK, /* sleep on the inbox until the next deadline */
    EVQ_LOOP_SPIN,  /* don't wait: try_recv again at once (burns a core) */
};

typedef struct evq_loop_stats {
    uint64_t turns;
    uint64_t waits;                /* turns that ended asleep on the inbox */
    uint64_t messages;             /* taken from the inbox */
    uint64_t records;              /* complete records handed to on_record */
    uint64_t records_across_turns; /* ...of which arrived over more than one turn */
    uint64_t records_dropped;      /* too long, or incomplete for too long */
    uint64_t timers_fired;
    uint64_t housekeeping_runs;
    uint64_t reports;
    uint64_t missed_intervals; /* periodic runs skipped after a stall */
    uint64_t max_latency_ns;   /* longest a message waited in the inbox */
} evq_loop_stats;

typedef struct evq_loop evq_loop;

/* What the loop tells the program. Called on the loop thread; any may be NULL. */
typedef struct evq_loop_hooks {
    /* A record is complete (text is NUL-terminated, length excludes the NUL). */
    void (*on_record)(void *context, uint32_t sender, const char *text, size_t length);
    /* A timer added with evq_loop_add_timer() is due. */
    void (*on_timer)(void *context, evq_loop *loop, uint64_t id, uint64_t data);
    /* The report task's interval has passed. */
    void (*on_report)(void *context, const evq_loop_stats *stats);
    void *context;
} evq_loop_hooks;

typedef struct evq_loop_config {
    evq_clock clock;         /* evq_clock_system(), or a fake one in tests */
    evq_channel *inbox;      /* producers -> loop (required) */
    const atomic_bool *stop; /* the termination flag (required) */
    enum evq_loop_wait_mode wait;
    uint64_t housekeeping_interval_ns; /* periodic task 1: drop stale partial records */
    uint64_t report_interval_ns;       /* periodic task 2: call on_report */
    uint64_t pending_timeout_ns;       /* a record still incomplete after this is dropped */
    uint64_t max_wait_ns;              /* longest sleep: how late a bare flag is seen */
    size_t drain_budget;               /* most messages taken in one turn */
    evq_loop_hooks hooks;
} evq_loop_config;

/* ANCHOR: pending_record */
/* Partial work: a record whose first parts came on an earlier turn and whose
 * rest has not come yet. The loop cannot wait for it (that would stop every
 * other sender and every timer), so it keeps what it has until a later turn. */
typedef struct evq_pending_record {
    enum evq_record_state {
        EVQ_RECORD_IDLE,       /* no record in progress */
        EVQ_RECORD_ASSEMBLING, /* parts so far are in text[0..length) */
        EVQ_RECORD_DISCARDING, /* dropped: skip parts up to the record's end */
    } state;
    uint64_t started_at; /* loop_time of the turn its first part came */
    uint64_t first_turn;
    size_t length;
    char text[EVQ_RECORD_MAX];
} evq_pending_record;
/* ANCHOR_END: pending_record */

/* ANCHOR: state */
/* Everything the loop thread owns. Nothing here is shared: other threads
 * only send to the inbox and set the stop flag. */
struct evq_loop {
    evq_loop_config config;
    uint64_t loop_time; /* read once, at the top of each turn */
    struct {
        uint64_t housekeeping;
        uint64_t report;
    } last; /* when each periodic task last ran (on its grid) */
    evq_timers timers;
    bool inbox_has_more; /* the budget ran out with messages left: don't sleep */
    evq_pending_record pending[EVQ_LOOP_MAX_SENDERS]; /* partial work, one per sender */
    evq_loop_stats stats;
};
/* ANCHOR_END: state */

/* Defaults: block, housekeeping every 250 ms, a report every second, partial
 * records dropped after 1 s, sleeps of at most 100 ms, 64 messages a turn. */
evq_loop_config evq_loop_default_config(evq_channel *inbox, const atomic_bool *stop);

/* EVQ_EINVAL for a missing inbox, flag or clock, or a zero interval, timeout,
 * max wait or budget. The periodic tasks first run one interval after init. */
int evq_loop_init(evq_loop *loop, const evq_loop_config *config);
void evq_loop_destroy(evq_loop *loop);

/* Run turns until the stop flag is seen. A turn that has begun finishes
 * (its handlers run); no new turn begins, and no sleep, once it is set. */
void evq_loop_run(evq_loop *loop);

/* One turn without the wait, and the wait on its own: evq_loop_run() is
 * "turn, wait" repeated; tests drive them one at a time. */
void evq_loop_turn(evq_loop *loop);
void evq_loop_wait(evq_loop *loop);

/* The instant the loop must be awake by: the earliest timer or periodic
 * task, or loop_time itself when messages are already waiting. */
uint64_t evq_loop_next_deadline(const evq_loop *loop);

/* Timers, from the loop thread (handlers, or before evq_loop_run()). The
 * deadline is loop_time + delay_ns. A timer added by a timer handler fires on
 * a later turn, never in the same one, even with a delay of 0. */
int evq_loop_add_timer(evq_loop *loop, uint64_t delay_ns, uint64_t data, uint64_t *id);
int evq_loop_cancel_timer(evq_loop *loop, uint64_t id); /* EVQ_ENOENT */

/* A periodic task's check: whether at `now` at least `interval` has passed
 * since *last. If so, *last moves forward by whole intervals (so the task
 * stays on its grid) and the number of intervals that passed is returned:
 * 1 normally, more after a stall, when the task runs once, not once per
 * missed interval. 0: not due (also when *last is later than now, and for
 * an interval of 0). */
uint64_t evq_periodic_due(uint64_t *last, uint64_t now, uint64_t interval);

#endif

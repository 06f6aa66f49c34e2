/* poll.c - the portable queue: argument checks, the registrations, what the
 * caller is told, the fair ready list, the wait loop (deadline,
 * interruptions, shutdown), the pause of a listener at the descriptor
 * limit, the resolver's answers, the streams' deadlines, and the list of
 * streams a queue must let go of when it is closed. Chapter 5: the kernel
 * reports edges, which the queue remembers and acts on in the stream's turn
 * - so arming costs no system call - and several threads may wait at once.
 * It never mentions an operating system: the backend behind sys.h does. The
 * stream's own rules (buffers, fill, flush, FIN) are stream.c's, the
 * connect's are connect.c's.
 */
#include "sys.h"
#include "evq_testing.h"

#include "deadline.h"
#include "key_table.h"
#include "resolver.h"

#include "evq_clock.h"
#include "evq_thread.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* How long a listener rests after accept() met the descriptor limit (see
 * poll_pause_accepting). */
#define ACCEPT_PAUSE_MS 100

/* ANCHOR: locks */
/* Several threads may wait on one queue, and a stream's owner may use it
 * while they do. Two kinds of lock, always taken in this order:
 *
 *   1. a stream's lock (tcp->lock): its buffers, its arming, the edges it
 *      remembers. Held by each of the owner's calls (evq_tcp_read...) and
 *      by a waiter working on the stream in its turn.
 *   2. the queue's lock (poll->lock): the ready list, the deadlines, the
 *      resolver, the resting listeners, the waiters, the calls in progress.
 *      Held for a few instructions, never across a wait.
 *   2'. the key table's lock (key_table.h): never held with the queue's.
 *
 * Never the other way round. A waiter that finds a stream in one of the
 * queue's structures takes a reference to it (stream_hold) under the
 * queue's lock, lets that lock go, and then takes the stream's. The
 * kernel's events carry a key, not a pointer: the waiter looks the key up
 * in the table, which takes the reference in the same step - or finds that
 * the stream has closed since, and drops the event. A closed stream's
 * memory goes with the last reference (stream_release). */
/* ANCHOR_END: locks */

/* One thread inside evq_poll_wait (on its stack). */
struct waiter {
    struct waiter *next;
};

struct evq_poll {
    struct sys_poll *sys;
    evq_clock clock;
    evq_wait_hook wait_hook;
    void *wait_hook_context;
    evq_poll_hook dispatch_hook, add_hook; /* evq_testing.h */
    void *dispatch_hook_context, *add_hook_context;
    struct key_table keys;     /* what the kernel's events name: key_table.h */
    struct resolver *resolver; /* name lookups, on threads of its own */
    /* Why the kernel's waker fired: each sender sets its flag, then wakes
     * the kernel. A resolver's answer is the queue's business; only
     * evq_poll_wake may end a wait with *n == 0. */
    atomic_bool lookups_finished;
    atomic_bool wake_requested;

    /* Everything below is the queue's lock's. */
    evq_mutex lock;
    evq_cond waiter_left; /* a waiter, or a call, has left: evq_poll_close waits on it */
    bool closed;
    size_t callers;   /* calls inside the queue without a stream's lock (poll_enter) */
    evq_tcp *streams; /* every stream made on this queue and not yet closed */
    /* The ready list, first in, first out: streams the queue has something
     * to do for that no kernel edge will announce (has_work). */
    evq_tcp *ready_head, *ready_tail;
    size_t ready_count;
    bool odd_slot_to_list;          /* who gets the odd slot of an odd capacity: see kernel_wait */
    evq_tcp *paused;                /* listeners resting at the descriptor limit */
    struct deadline_heap deadlines; /* the streams' deadlines, nearest first */
    struct waiter *waiters;         /* the threads inside evq_poll_wait */
    size_t sleeping;                /* of those, how many are in a kernel wait that may sleep */
    bool nudge_pending;             /* one has been woken to look at the list or the deadlines */
    uint64_t kernel_waits;          /* kernel waits begun so far */
};

const char *evq_backend(void)
{
    return EVQ_BACKEND_NAME;
}

bool poll_is_closed(evq_poll *poll)
{
    evq_mutex_lock(&poll->lock);
    bool closed = poll->closed;
    evq_mutex_unlock(&poll->lock);
    return closed;
}

/* ANCHOR: enter */
/* A call that uses the queue without holding one of its streams' locks
 * (making a stream, waking the queue) enters it first: EVQ_ECLOSED once
 * the queue is shut down, else it is counted, and evq_poll_close frees
 * nothing until the count is back to 0. This is appendix A's registration
 * lock - check that the queue is alive, do the work, let go - as a count
 * under the queue's mutex, so that any number of callers are inside at
 * once and only evq_poll_close waits. (A call that holds a stream's lock
 * and finds the stream still on this queue needs no count: evq_poll_close
 * takes that lock before it lets the stream go.) */
int poll_enter(evq_poll *poll)
{
    evq_mutex_lock(&poll->lock);
    bool closed = poll->closed;
    if (!closed)
        poll->callers++;
    evq_mutex_unlock(&poll->lock);
    return closed ? EVQ_ECLOSED : 0;
}

void poll_leave(evq_poll *poll)
{
    evq_mutex_lock(&poll->lock);
    if (--poll->callers == 0 && poll->closed)
        evq_cond_broadcast(&poll->waiter_left);
    evq_mutex_unlock(&poll->lock);
}
/* ANCHOR_END: enter */

void evq_poll_get_default_options(evq_poll_options *out)
{
    if (!out)
        return;
    memset(out, 0, sizeof *out);
    out->resolver_threads = RESOLVER_DEFAULT_THREADS;
    out->resolver_queue = 1024;
    out->cache_entries = 256;
    out->cache_max_age_ms = 30000;      /* as OpenJDK's InetAddress cache */
    out->cache_negative_age_ms = 10000; /* as Java's networkaddress.cache.negative.ttl */
    out->resolve = evq_resolve_system;
}

/* The queue's clock, for the resolver's cache: read under the queue's lock,
 * so that a test's evq_poll_set_clock moves the cache's ages too. */
static uint64_t poll_clock_now(void *context)
{
    evq_poll *poll = context;
    return evq_clock_read(&poll->clock);
}

/* ANCHOR: notify */
/* The resolver's notify, on a worker thread, once an answer waits on its
 * finished list: say why, then wake the kernel. The flag comes first, so
 * that the wait the wake-up ends finds it set. */
static void lookups_finished(void *context)
{
    evq_poll *poll = context;
    atomic_store(&poll->lookups_finished, true);
    sys_poll_wake(poll->sys); /* a failure leaves the answer for the next wake-up */
}
/* ANCHOR_END: notify */

static int open_resolver(evq_poll *poll, const evq_poll_options *options)
{
    resolver_config config;
    resolver_config_default(&config);
    config.threads = options->resolver_threads;
    config.max_pending = options->resolver_queue;
    config.resolve = options->resolve;
    config.resolve_context = options->resolve_context;
    config.notify = lookups_finished;
    config.notify_context = poll;
    config.clock = (evq_clock){poll_clock_now, poll};
    config.cache_entries = options->cache_entries;
    config.cache_max_age_ns = evq_ms_to_ns(options->cache_max_age_ms);
    config.negative_max_age_ns = evq_ms_to_ns(options->cache_negative_age_ms);
    return resolver_open(&config, &poll->resolver);
}

int evq_poll_open_with_options(evq_poll **out, const evq_poll_options *options)
{
    if (!out)
        return EVQ_EINVAL;
    *out = NULL;
    if (!options || options->resolver_threads == 0 ||
        options->resolver_threads > RESOLVER_MAX_THREADS || options->resolver_queue == 0 ||
        !options->resolve)
        return EVQ_EINVAL;
    evq_poll *poll = calloc(1, sizeof *poll);
    if (!poll)
        return EVQ_ENOMEM;
    poll->clock = evq_clock_system();
    poll->odd_slot_to_list = true;
    atomic_init(&poll->lookups_finished, false);
    atomic_init(&poll->wake_requested, false);
    int rc = evq_mutex_init(&poll->lock);
    if (rc != 0) {
        free(poll);
        return rc;
    }
    if ((rc = key_table_init(&poll->keys)) != 0)
        goto fail_keys;
    if ((rc = evq_cond_init(&poll->waiter_left)) != 0)
        goto fail_cond;
    if ((rc = sys_poll_open(&poll->sys)) != 0)
        goto fail_sys;
    if ((rc = open_resolver(poll, options)) != 0) /* no thread yet: the first lookup starts them */
        goto fail_resolver;
    *out = poll;
    return 0;
fail_resolver:
    sys_poll_close(poll->sys);
fail_sys:
    evq_cond_destroy(&poll->waiter_left);
fail_cond:
    key_table_free(&poll->keys);
fail_keys:
    evq_mutex_destroy(&poll->lock);
    free(poll);
    return rc;
}

int evq_poll_open(evq_poll **out)
{
    evq_poll_options options;
    evq_poll_get_default_options(&options);
    return evq_poll_open_with_options(out, &options);
}

struct sys_poll *poll_sys(evq_poll *poll)
{
    return poll->sys;
}

struct resolver *poll_lock_resolver(evq_poll *poll)
{
    evq_mutex_lock(&poll->lock);
    return poll->resolver;
}

void poll_unlock_resolver(evq_poll *poll)
{
    evq_mutex_unlock(&poll->lock);
}

/* ---- references ---- */

/* Under the queue's lock, while the stream is in one of its structures: a
 * close takes it out under the same lock before it lets go of the caller's
 * reference, so the stream cannot be freed before this one is taken. */
static void pin(evq_tcp *tcp)
{
    stream_hold(tcp);
}

/* The waiter is done with a stream it pinned; a closed one may go now. */
static void unpin(evq_tcp *tcp)
{
    stream_release(tcp);
}

/* ---- the ready list (the queue's lock) ---- */

/* Wake one waiter asleep in the kernel, so that it looks at the ready list
 * or the deadlines again: something it cannot see from there has changed.
 * Returns whether the caller must call sys_poll_wake (after the lock). */
static bool nudge_needed(evq_poll *poll)
{
    if (poll->sleeping == 0 || poll->nudge_pending)
        return false; /* nobody asleep, or woken already */
    poll->nudge_pending = true;
    return true;
}

static bool ready_list_add_locked(evq_poll *poll, evq_tcp *tcp)
{
    if (tcp->on_ready_list)
        return false; /* keeps its place in the line */
    tcp->on_ready_list = true;
    tcp->ready_next = NULL;
    tcp->ready_prev = poll->ready_tail;
    if (poll->ready_tail)
        poll->ready_tail->ready_next = tcp;
    else
        poll->ready_head = tcp;
    poll->ready_tail = tcp;
    poll->ready_count++;
    return poll->ready_count == 1 && nudge_needed(poll);
}

static void ready_list_remove_locked(evq_poll *poll, evq_tcp *tcp)
{
    if (!tcp->on_ready_list)
        return;
    if (tcp->ready_prev)
        tcp->ready_prev->ready_next = tcp->ready_next;
    else
        poll->ready_head = tcp->ready_next;
    if (tcp->ready_next)
        tcp->ready_next->ready_prev = tcp->ready_prev;
    else
        poll->ready_tail = tcp->ready_prev;
    tcp->ready_prev = tcp->ready_next = NULL;
    tcp->on_ready_list = false;
    poll->ready_count--;
}

static void ready_list_add(evq_tcp *tcp)
{
    evq_poll *poll = tcp->poll;
    evq_mutex_lock(&poll->lock);
    bool nudge = ready_list_add_locked(poll, tcp);
    evq_mutex_unlock(&poll->lock);
    if (nudge)
        sys_poll_wake(poll->sys); /* a failure: the sleeper wakes at its timeout */
}

static void ready_list_remove(evq_tcp *tcp)
{
    evq_mutex_lock(&tcp->poll->lock);
    ready_list_remove_locked(tcp->poll, tcp);
    evq_mutex_unlock(&tcp->poll->lock);
}

/* ---- what the caller is told ---- */

/* ANCHOR: own_readiness */
/* What the stream is ready for among what the caller armed, from the
 * stream's own state - no kernel is asked: bytes in the read buffer the
 * caller has not seen, or the end, for READABLE (a listener: connections
 * may wait); room in the write queue for WRITABLE; an error or hang-up the
 * kernel reported, for anything; a connect that failed; a deadline that
 * passed. Under the stream's lock. */
static uint32_t own_readiness(const evq_tcp *tcp)
{
    unsigned armed = tcp->caller_armed;
    if (armed == 0)
        return 0;
    uint32_t ready = 0;
    if (tcp->connect_phase == CONNECT_FAILED) {
        ready |= EVQ_ERR | EVQ_HUP | armed;
    } else if (tcp->connect_phase == CONNECT_DONE) {
        if ((armed & EVQ_READABLE) && tcp->listener)
            ready |= !tcp->accept_drained && tcp->accept_resume_at == 0 ? EVQ_READABLE : 0;
        else if (armed & EVQ_READABLE)
            ready |= stream_read_readiness(tcp);
        /* WRITABLE is the write queue's room: a write takes bytes. */
        if ((armed & EVQ_WRITABLE) && tcp->write_queue.queued <= tcp->limits.write_low)
            ready |= EVQ_WRITABLE;
        if (tcp->write_status != 0 && !tcp->write_error_told)
            ready |= EVQ_ERR | (armed & EVQ_WRITABLE);
        if (tcp->kernel_end != 0) /* the next read or write returns at once */
            ready |= tcp->kernel_end | armed;
    }
    if (tcp->timeout_pending)
        ready |= EVQ_TIMEOUT;
    return ready;
}
/* ANCHOR_END: own_readiness */

/* ANCHOR: has_work */
/* Whether the queue has something to do for the stream that no kernel edge
 * will announce: something to tell; a write queue whose last flush stopped
 * at the turn's budget, not at a full socket; a socket that may still hold
 * bytes for a caller armed READABLE (a fill stopped by the budget or at
 * read_max, or an edge that came while the caller was not armed). Such a
 * stream waits on the ready list: the kernel will not say it again. */
static bool has_work(const evq_tcp *tcp)
{
    if (own_readiness(tcp) != 0)
        return true;
    if (tcp->connect_phase != CONNECT_DONE)
        return false;
    if (stream_output_pending(tcp) && !tcp->write_blocked && !sys_tcp_sending(tcp))
        return true;
    return (tcp->caller_armed & EVQ_READABLE) && !tcp->listener && tcp->read_status == 0 &&
           !tcp->read_drained && !sys_tcp_receiving(tcp);
}
/* ANCHOR_END: has_work */

void poll_stream_changed(evq_tcp *tcp)
{
    if (!tcp->poll || tcp->closed)
        return;
    if (has_work(tcp))
        ready_list_add(tcp);
    else if ((tcp->caller_armed & EVQ_READABLE) && tcp->connect_phase == CONNECT_DONE)
        sys_watch_read(tcp->poll->sys, tcp); /* IOCP: a receive waits for the next edge */
}

static bool on_ready_list(evq_poll *poll, const evq_tcp *tcp)
{
    evq_mutex_lock(&poll->lock);
    bool listed = tcp->on_ready_list;
    evq_mutex_unlock(&poll->lock);
    return listed;
}

/* The caller is told: its arming is used up (one-shot), and the stream is
 * now its owner's until it is armed again. A deadline that passed rides on
 * whatever event comes first, and is told once, as is a failed send. */
static void tell(evq_tcp *tcp, evq_event *event, uint32_t ready)
{
    tcp->timeout_pending = false;
    if (tcp->write_status != 0 && (ready & EVQ_ERR))
        tcp->write_error_told = true;
    event->token = tcp->token;
    event->ready = ready;
    tcp->caller_armed = 0;
    ready_list_remove(tcp);
}

/* ANCHOR: serve */
/* The stream's turn, for a kernel edge or its place on the ready list, with
 * its lock held: a fresh budget; the write queue flushed while the socket
 * may take more; the socket read if the caller waits to read and it may
 * hold bytes - so READABLE is only ever told for bytes that are here. Then
 * the caller is told what is ready among what it armed, and a stream the
 * queue still has work for goes (back) on the ready list. Returns 1 if the
 * caller was told (events[0] written). The reading budget is renewed only
 * in a turn that may tell the caller: the owner's own reads after an event
 * draw on that turn's, and edges that come meanwhile do not renew it. */
static size_t serve(evq_tcp *tcp, evq_event *event)
{
    tcp->turn_sent = 0;
    if (tcp->caller_armed != 0)
        tcp->turn_received = tcp->turn_accepted = 0;
    if (stream_output_pending(tcp) && !tcp->write_blocked)
        stream_flush(tcp); /* a failure is kept, and told below */
    if ((tcp->caller_armed & EVQ_READABLE) && !tcp->listener && !tcp->read_drained)
        stream_fill(tcp);
    uint32_t ready = own_readiness(tcp);
    if (ready != 0)
        tell(tcp, event, ready);
    poll_stream_changed(tcp);
    return ready != 0;
}
/* ANCHOR_END: serve */

/* ANCHOR: remember */
/* An edge is said once. What it says is written down in the stream, so
 * that the stream's turn - now, or when its caller arms it again - knows
 * the socket may hold bytes, may take bytes, or has ended. */
static void remember_edges(evq_tcp *tcp, uint32_t edges, int error)
{
    if (error != 0)
        tcp->event_error = error;
    if (edges & (EVQ_READABLE | EVQ_HUP | EVQ_ERR | SYS_END))
        tcp->read_drained = tcp->accept_drained = false;
    if (edges & (EVQ_WRITABLE | EVQ_ERR | SYS_END))
        tcp->write_blocked = false;
    if (edges & EVQ_HUP)
        tcp->peer_closed = true; /* a short read is no longer the end: read on to the EOF */
    if (edges & SYS_END)
        tcp->kernel_end |= EVQ_HUP;
    if (edges & EVQ_ERR)
        tcp->kernel_end |= EVQ_ERR;
}
/* ANCHOR_END: remember */

/* The kernel's events, one stream at a time under its lock. Each event
 * names a key, which the table turns into the stream, held - or into
 * nothing, if the stream closed (on any thread) after the kernel handed
 * the event out, or gave up that socket for the next address: the event
 * is dropped. A stream found, but closed before its lock was ours, is
 * dropped too. A connecting stream's edge is the connect's outcome. Any
 * other stream gets its turn, whoever owns it: a stream its owner holds
 * has its edges remembered and its write queue flushed, and is told
 * nothing until it is armed again. */
/* ANCHOR: deliver */
static size_t deliver(evq_poll *poll, struct sys_event *kernel, size_t got, evq_event *events)
{
    if (got > 0 && poll->dispatch_hook)
        poll->dispatch_hook(poll->dispatch_hook_context); /* a test holds the waiter here */
    size_t out = 0;
    for (size_t i = 0; i < got; i++) {
        evq_tcp *tcp = key_table_hold(&poll->keys, kernel[i].key);
        if (!tcp) {
            sys_event_drop(poll->sys, &kernel[i]); /* IOCP: the operation is ours again */
            continue;
        }
        evq_mutex_lock(&tcp->lock);
        uint32_t edges = sys_event_take(poll->sys, tcp, &kernel[i]);
        if (!tcp->closed && edges != 0) {
            tcp->kernel_events++;
            remember_edges(tcp, edges, kernel[i].error);
            if (tcp->connect_phase == CONNECT_CONNECTING)
                connect_kernel_event(tcp);           /* connected, the next address, or failed */
            bool in_line = on_ready_list(poll, tcp); /* its turn comes in the list's order */
            if (!in_line && tcp->connect_phase == CONNECT_DONE)
                out += serve(tcp, &events[out]);
            else if (!in_line)
                poll_stream_changed(tcp); /* failed: the ready list tells */
        }
        evq_mutex_unlock(&tcp->lock);
        stream_release(tcp); /* the last reference, if it closed meanwhile */
    }
    return out;
}
/* ANCHOR_END: deliver */

/* ANCHOR: ready_list */
/* Up to `room` events from the head of the ready list: each stream there
 * gets its turn (serve), at most once per call - a stream that still has
 * work joins the end of the line again, behind the others. */
static size_t deliver_ready_list(evq_poll *poll, evq_event *events, size_t room)
{
    size_t out = 0;
    evq_mutex_lock(&poll->lock);
    size_t visits = poll->ready_count;
    evq_mutex_unlock(&poll->lock);
    while (out < room && visits-- > 0) {
        evq_mutex_lock(&poll->lock);
        evq_tcp *tcp = poll->ready_head;
        if (tcp) {
            ready_list_remove_locked(poll, tcp);
            pin(tcp);
        }
        evq_mutex_unlock(&poll->lock);
        if (!tcp)
            break; /* another waiter took the rest */
        evq_mutex_lock(&tcp->lock);
        if (!tcp->closed)
            out += serve(tcp, &events[out]);
        evq_mutex_unlock(&tcp->lock);
        unpin(tcp);
    }
    return out;
}
/* ANCHOR_END: ready_list */

/* ---- accepting at the descriptor limit ---- */

/* ANCHOR: pause */
/* accept() failed with EMFILE (or ENFILE, ENOBUFS): a connection waits and
 * cannot be taken. A listener reported again at once would have the loop
 * spin on accept() at 100 % CPU for as long as the limit lasts. So the
 * listener rests: it is not reported READABLE for ACCEPT_PAUSE_MS, whatever
 * the caller did in between (nginx disables its accept events in the same
 * way). Clients wait in the backlog meanwhile, and are served once
 * descriptors free up. libuv instead keeps a spare descriptor to close,
 * accept and drop the waiting connection with; that turns clients away,
 * costs a descriptor, and means nothing to IOCP, where the failure comes
 * before a connection exists (the socket for the next AcceptEx cannot be
 * made). Under the listener's lock. */
void poll_pause_accepting(evq_tcp *listener)
{
    evq_poll *poll = listener->poll;
    evq_mutex_lock(&poll->lock);
    if (listener->accept_resume_at == 0) {
        listener->paused_next = poll->paused;
        poll->paused = listener;
    }
    listener->accept_resume_at =
        evq_sat_add(evq_clock_read(&poll->clock), evq_ms_to_ns(ACCEPT_PAUSE_MS));
    bool nudge = nudge_needed(poll); /* a sleeper must wake for the pause's end */
    evq_mutex_unlock(&poll->lock);
    if (nudge)
        sys_poll_wake(poll->sys);
}
/* ANCHOR_END: pause */

/* ANCHOR: resume */
/* The listeners whose pause is over. An edge will not come for the
 * connections that waited in the backlog meanwhile (the kernel said it
 * before the pause), so the listener is taken as not drained: its caller,
 * if armed, hears READABLE and accepts. */
static void resume_accepting(evq_poll *poll)
{
    for (;;) {
        evq_mutex_lock(&poll->lock);
        uint64_t now = evq_clock_read(&poll->clock);
        evq_tcp *listener = NULL;
        for (evq_tcp **link = &poll->paused; *link; link = &(*link)->paused_next) {
            if ((*link)->accept_resume_at <= now) {
                listener = *link;
                *link = listener->paused_next;
                listener->accept_resume_at = 0;
                pin(listener);
                break;
            }
        }
        evq_mutex_unlock(&poll->lock);
        if (!listener)
            return;
        evq_mutex_lock(&listener->lock);
        if (!listener->closed) {
            listener->accept_drained = false;
            poll_stream_changed(listener);
        }
        evq_mutex_unlock(&listener->lock);
        unpin(listener);
    }
}
/* ANCHOR_END: resume */

/* Off the queue's list of streams, if it is on it. Under the queue's lock. */
static void unlist_locked(evq_poll *poll, evq_tcp *tcp)
{
    if (!tcp->listed)
        return;
    if (tcp->prev)
        tcp->prev->next = tcp->next;
    else
        poll->streams = tcp->next;
    if (tcp->next)
        tcp->next->prev = tcp->prev;
    tcp->prev = tcp->next = NULL;
    tcp->listed = false;
}

static void unpause_locked(evq_poll *poll, evq_tcp *tcp)
{
    for (evq_tcp **link = &poll->paused; *link; link = &(*link)->paused_next) {
        if (*link == tcp) {
            *link = tcp->paused_next;
            break;
        }
    }
    tcp->accept_resume_at = 0;
}

/* ---- deadlines and answers ---- */

/* ANCHOR: deadlines */
/* Deadlines that have passed: the stream is told EVQ_TIMEOUT as soon as it
 * is armed (the ready list), and a connect still under way gives up now.
 * Each is taken from the heap under the queue's lock and pinned; the
 * stream's epoch says whether its owner set or cleared the deadline in the
 * moment between, which makes this passing void. */
static void pass_deadlines(evq_poll *poll)
{
    for (;;) {
        evq_mutex_lock(&poll->lock);
        evq_tcp *tcp = deadline_pop_passed(&poll->deadlines, evq_clock_read(&poll->clock));
        uint64_t epoch = 0;
        if (tcp) {
            epoch = tcp->deadline_epoch;
            pin(tcp);
        }
        evq_mutex_unlock(&poll->lock);
        if (!tcp)
            return;
        evq_mutex_lock(&tcp->lock);
        if (!tcp->closed && tcp->deadline_epoch == epoch) {
            tcp->timeout_pending = true;
            if (tcp->connect_phase == CONNECT_RESOLVING || tcp->connect_phase == CONNECT_CONNECTING)
                connect_give_up(tcp, EVQ_ETIMEDOUT);
            poll_stream_changed(tcp);
        }
        evq_mutex_unlock(&tcp->lock);
        unpin(tcp);
    }
}

/* timeout_ms cut down to the nearest deadline and the nearest end of a
 * listener's pause, so that the wait wakes up for them - and for nothing
 * sooner. Under the queue's lock. */
static int timeout_for_deadlines(evq_poll *poll, int timeout_ms)
{
    uint64_t now = evq_clock_read(&poll->clock);
    uint64_t next = deadline_next(&poll->deadlines);
    for (const evq_tcp *listener = poll->paused; listener; listener = listener->paused_next) {
        if (listener->accept_resume_at < next)
            next = listener->accept_resume_at;
    }
    if (next != UINT64_MAX) {
        int left = evq_remaining_ms(next, now); /* rounded up: never a busy 0 ms */
        if (timeout_ms < 0 || left < timeout_ms)
            timeout_ms = left;
    }
    return timeout_ms;
}
/* ANCHOR_END: deadlines */

/* ANCHOR: collect */
/* Each answer goes to the stream that asked, which starts connecting (or
 * fails). The resolver notified because its finished list had been empty;
 * answers that landed after that one rode on the same notify, so collect
 * until a call returns fewer than it was asked for. The resolver is one
 * thread's: the queue's lock makes this waiter that thread. The handle of
 * each answered stream dies under that lock too, so that a close cannot
 * cancel a request that is gone. */
static void collect_lookups(evq_poll *poll)
{
    enum { BATCH = 16 };
    resolver_result results[BATCH];
    size_t got;
    do {
        evq_mutex_lock(&poll->lock);
        got = resolver_collect(poll->resolver, results, BATCH);
        for (size_t i = 0; i < got; i++) {
            evq_tcp *tcp = results[i].owner;
            tcp->lookup = NULL;
            pin(tcp);
        }
        evq_mutex_unlock(&poll->lock);
        for (size_t i = 0; i < got; i++) {
            evq_tcp *tcp = results[i].owner;
            evq_mutex_lock(&tcp->lock);
            if (!tcp->closed)
                connect_resolved(tcp, results[i].status, &results[i].addresses);
            evq_address_list_free(&results[i].addresses); /* empty if the stream took it */
            evq_mutex_unlock(&tcp->lock);
            unpin(tcp);
        }
    } while (got == BATCH);
}

/* The kernel's waker fired: for the resolver (answers to collect), for the
 * caller (evq_poll_wake), to make a sleeper look again, or several - each
 * sender set its flag first. Returns whether the caller's wait must end:
 * only evq_poll_wake's may, and then with *n == 0. */
static bool take_wake_ups(evq_poll *poll)
{
    evq_mutex_lock(&poll->lock);
    poll->nudge_pending = false;
    evq_mutex_unlock(&poll->lock);
    if (atomic_exchange(&poll->lookups_finished, false))
        collect_lookups(poll);
    return atomic_exchange(&poll->wake_requested, false);
}
/* ANCHOR_END: collect */

/* ---- the wait ---- */

/* ANCHOR: enter_kernel */
/* Just before a kernel wait, under the queue's lock: the final timeout - 0
 * if the ready list has something, else cut to the nearest deadline - and
 * the waiter counted, if it may sleep, as asleep: a stream that joins the ready list, or a nearer
 * deadline, wakes one sleeper (nudge_needed). Deciding the timeout and counting the sleeper under
 * the same lock is what keeps that wake-up from being lost: whoever adds to the list either sees
 * the sleeper or is seen by it. */
static int enter_kernel(evq_poll *poll, int timeout_ms)
{
    evq_mutex_lock(&poll->lock);
    if (poll->ready_head)
        timeout_ms = 0;
    timeout_ms = timeout_for_deadlines(poll, timeout_ms);
    poll->kernel_waits++;
    if (timeout_ms != 0)
        poll->sleeping++;
    evq_mutex_unlock(&poll->lock);
    return timeout_ms;
}

/* After the kernel wait (`slept`: it counted as asleep). */
static void leave_kernel(evq_poll *poll, bool slept)
{
    evq_mutex_lock(&poll->lock);
    if (slept)
        poll->sleeping--;
    evq_mutex_unlock(&poll->lock);
}

/* ANCHOR_END: enter_kernel */

/* One turn: the ready list and one kernel wait share the caller's
 * `capacity`, so that neither can starve the other. The list is served
 * first, up to half the room; the odd slot of an odd capacity goes to the
 * list and to the kernel in turns (with capacity 1 they alternate). The
 * kernel gets the rest, and whatever room it leaves goes back to the list.
 * The list is first in, first out: a stream that still has work joins its
 * end. So a stream with buffered bytes is reported even while the kernel
 * keeps reporting others, and the kernel's streams are reported even while
 * the list never empties. With nothing on the list, the kernel gets it all. */
/* ANCHOR: fairness */
static int kernel_wait(evq_poll *poll, evq_event *events, size_t capacity, int timeout_ms,
                       size_t *n, bool *woken)
{
    *n = 0;
    *woken = false;
    pass_deadlines(poll);
    resume_accepting(poll);
    size_t share = 0;
    evq_mutex_lock(&poll->lock);
    if (poll->ready_head) {
        share = capacity / 2 + (capacity % 2 == 1 && poll->odd_slot_to_list);
        poll->odd_slot_to_list = !poll->odd_slot_to_list;
    }
    evq_mutex_unlock(&poll->lock);
    size_t out = share > 0 ? deliver_ready_list(poll, events, share) : 0;
    /* Something to report already: look at the kernel, do not sleep. */
    if (out > 0)
        timeout_ms = 0;
    /* One kernel event gives at most one caller event, so asking for no
     * more than the room left keeps the caller's array from overflowing;
     * an edge left in the kernel stays on its ready list for the next. */
    size_t room = capacity - out < SYS_MAX_EVENTS ? capacity - out : SYS_MAX_EVENTS;
    int rc = 0;
    if (room > 0) {
        /* This waiter's own: several threads wait at once, and a shared
         * array would be written by two kernel waits together. */
        struct sys_event kernel[SYS_MAX_EVENTS];
        timeout_ms = enter_kernel(poll, timeout_ms);
        bool slept = timeout_ms != 0;
        if (poll->wait_hook)
            rc = poll->wait_hook(poll->wait_hook_context, &timeout_ms);
        size_t got = 0;
        bool kernel_woken = false;
        if (rc == 0)
            rc = sys_poll_wait(poll->sys, kernel, room, timeout_ms, &got, &kernel_woken);
        leave_kernel(poll, slept);
        if (rc == 0)
            out += deliver(poll, kernel, got, events + out);
        if (kernel_woken)
            *woken = take_wake_ups(poll);
    }
    if (rc == 0) {
        pass_deadlines(poll); /* those that passed while it slept */
        out += deliver_ready_list(poll, events + out, capacity - out);
    }
    *n = out;
    /* Events taken from the list are the caller's now (their arming is
     * used up): return them; a kernel error comes back at the next wait. */
    return out > 0 ? 0 : rc;
}
/* ANCHOR_END: fairness */

/* ANCHOR: wait_loop */
/* The deadline is fixed once, on the monotonic clock. After an interruption
 * (EINTR; an APC on Windows) the kernel is asked again for the time that is
 * LEFT: retrying with the whole timeout would let a steady stream of signals
 * keep the wait from ever timing out. A kernel wait that returns early with
 * nothing for the caller (edges for streams nobody armed; IOCP completions
 * that are not events; the resolver's wake-up; a nudge; a stream's deadline
 * that found it disarmed) goes back to sleep for the rest of the time, too. */
static int wait_until_deadline(evq_poll *poll, evq_event *events, size_t capacity, int timeout_ms,
                               size_t *n)
{
    uint64_t deadline = 0;
    if (timeout_ms > 0)
        deadline = evq_sat_add(evq_clock_read(&poll->clock), evq_ms_to_ns((uint64_t)timeout_ms));
    int remaining = timeout_ms;
    for (;;) {
        bool woken = false;
        int rc = kernel_wait(poll, events, capacity, remaining, n, &woken);
        if (poll_is_closed(poll))
            return EVQ_ECLOSED; /* shut down while we slept */
        if (rc != 0 && rc != EVQ_EINTR)
            return rc;
        if (rc == 0 && (*n > 0 || woken))
            return 0;
        if (timeout_ms < 0)
            continue; /* no deadline: wait again, for ever */
        remaining = evq_remaining_ms(deadline, evq_clock_read(&poll->clock));
        /* Time is up. After an interruption, look once more (timeout 0), so
         * that a signal never hides events that were already there. */
        if (remaining == 0 && rc != EVQ_EINTR)
            return 0;
    }
}
/* ANCHOR_END: wait_loop */

/* ANCHOR: poll_wait */
int evq_poll_wait(evq_poll *poll, evq_event *events, size_t capacity, int timeout_ms, size_t *n)
{
    if (n)
        *n = 0;
    if (!poll || !events || !n || capacity == 0 || timeout_ms < -1)
        return EVQ_EINVAL;

    struct waiter me = {0};
    evq_mutex_lock(&poll->lock);
    bool closed = poll->closed;
    if (!closed) { /* any number of waiters: each event goes to one of them */
        me.next = poll->waiters;
        poll->waiters = &me;
    }
    evq_mutex_unlock(&poll->lock);
    if (closed)
        return EVQ_ECLOSED;

    int rc = wait_until_deadline(poll, events, capacity, timeout_ms, n);
    if (rc != 0)
        *n = 0;

    /* Once the last waiter has left and the lock is released, evq_poll_close
     * may free the queue: touch nothing of it after this block. A waiter
     * that leaves a shut-down queue wakes the next, so that shutdown wakes
     * them all. */
    evq_mutex_lock(&poll->lock);
    for (struct waiter **link = &poll->waiters; *link; link = &(*link)->next) {
        if (*link == &me) {
            *link = me.next;
            break;
        }
    }
    if (poll->closed && poll->waiters)
        sys_poll_wake(poll->sys);
    evq_cond_broadcast(&poll->waiter_left);
    evq_mutex_unlock(&poll->lock);
    return rc;
}
/* ANCHOR_END: poll_wait */

int evq_poll_wake(evq_poll *poll)
{
    if (!poll)
        return EVQ_EINVAL;
    int rc = poll_enter(poll); /* evq_poll_close may run on another thread */
    if (rc != 0)
        return rc;
    atomic_store(&poll->wake_requested, true); /* before the kernel's wake: see take_wake_ups */
    rc = sys_poll_wake(poll->sys);
    poll_leave(poll);
    return rc;
}

int evq_poll_shutdown(evq_poll *poll)
{
    if (!poll)
        return EVQ_EINVAL;
    evq_mutex_lock(&poll->lock);
    bool was_closed = poll->closed;
    poll->closed = true;
    poll->callers++; /* counted like poll_enter: evq_poll_close on another thread waits */
    /* The waker stays signalled until a wait consumes it, so a thread that
     * is about to block (past its check of `closed`, not yet in the kernel)
     * returns at once too; each waiter that leaves wakes the next. */
    int rc = !was_closed && poll->waiters ? sys_poll_wake(poll->sys) : 0;
    evq_mutex_unlock(&poll->lock);
    resolver_shutdown(poll->resolver); /* queued lookups never run; running ones are dropped */
    poll_leave(poll);
    return rc;
}

/* ANCHOR: close */
void evq_poll_close(evq_poll *poll)
{
    if (!poll)
        return;
    evq_poll_shutdown(poll);
    /* Threads blocked in evq_poll_wait are woken by the shutdown and leave
     * with EVQ_ECLOSED; calls inside the queue (poll_enter) finish, and
     * every one that comes in from now on is turned away. Free nothing
     * until they have all left. */
    evq_mutex_lock(&poll->lock);
    while (poll->waiters || poll->callers > 0)
        evq_cond_wait(&poll->waiter_left, &poll->lock);
    evq_mutex_unlock(&poll->lock);
    /* ANCHOR_END: close */

    /* The streams belong to the caller, who closes them later - maybe now,
     * on another thread: each is taken off the list and held under the
     * queue's lock, then cut loose under its own, unless its close got
     * there first. A close that holds a stream's lock while the stream is
     * still on this queue keeps this loop, and so the queue, waiting. */
    for (;;) {
        evq_mutex_lock(&poll->lock);
        evq_tcp *tcp = poll->streams;
        if (tcp) {
            unlist_locked(poll, tcp);
            pin(tcp);
        }
        evq_mutex_unlock(&poll->lock);
        if (!tcp)
            break;
        evq_mutex_lock(&tcp->lock);
        if (!tcp->closed && tcp->poll == poll) {
            tcp->lookup = NULL;          /* freed by resolver_close */
            evq_mutex_lock(&poll->lock); /* an owner's write may be adding to the list */
            ready_list_remove_locked(poll, tcp);
            unpause_locked(poll, tcp);
            evq_mutex_unlock(&poll->lock);
            sys_stream_detach(poll->sys, tcp); /* out of the kernel */
            tcp->registered = false;
            tcp->caller_armed = 0;
            tcp->poll = NULL;
        }
        evq_mutex_unlock(&tcp->lock);
        unpin(tcp);
    }
    /* The resolver's workers call lookups_finished, which wakes the kernel:
     * they must all have left before the backend goes. A worker inside a
     * lookup is waited for (getaddrinfo cannot be interrupted); every
     * request still held is freed. */
    resolver_close(poll->resolver);
    deadline_heap_free(&poll->deadlines);
    sys_poll_close(poll->sys); /* IOCP: waits for cancelled I/O to come back */
    key_table_free(&poll->keys);
    evq_cond_destroy(&poll->waiter_left);
    evq_mutex_destroy(&poll->lock);
    free(poll);
}

/* ---- the queue's streams ---- */

/* ANCHOR: add_stream */
/* The caller has entered the queue (poll_enter), so the queue cannot be
 * freed under it; but it may have been shut down since: the stream joins
 * the list only if it is not, and evq_poll_close, which waits for this
 * call to leave, then cuts it loose with the others. */
int poll_add_stream(evq_poll *poll, evq_tcp *tcp)
{
    /* Nothing is known of the socket yet: a read looks (a recv, which may
     * say EAGAIN). A listener's pending connections are reported when it
     * is added (epoll_ctl's ADD, kqueue's EV_ADD run the check at once),
     * or complete an AcceptEx posted at the start (IOCP). */
    tcp->read_drained = false;
    tcp->accept_drained = true;
    int rc = key_table_add(&poll->keys, tcp, &tcp->key);
    if (rc != 0)
        return rc;
    if (poll->add_hook)
        poll->add_hook(poll->add_hook_context); /* a test holds the call here */
    evq_mutex_lock(&poll->lock);
    if (poll->closed) {
        rc = EVQ_ECLOSED;
    } else {
        tcp->next = poll->streams;
        if (poll->streams)
            poll->streams->prev = tcp;
        poll->streams = tcp;
        tcp->listed = true;
    }
    evq_mutex_unlock(&poll->lock);
    if (rc == 0) {
        /* Into the kernel, with its key: from here a waiter may find it. */
        evq_mutex_lock(&tcp->lock);
        tcp->poll = poll;
        rc = sys_stream_open(poll->sys, tcp);
        if (rc != 0)
            tcp->poll = NULL;
        evq_mutex_unlock(&tcp->lock);
        if (rc != 0) {
            evq_mutex_lock(&poll->lock);
            unlist_locked(poll, tcp);
            evq_mutex_unlock(&poll->lock);
        }
    }
    if (rc != 0)
        key_table_remove(&poll->keys, tcp->key);
    return rc;
}
/* ANCHOR_END: add_stream */

void poll_rekey_stream(evq_tcp *tcp)
{
    tcp->key = key_table_rekey(&tcp->poll->keys, tcp->key);
}

/* ANCHOR: close_stream */
void poll_close_stream(evq_tcp *tcp)
{
    evq_poll *poll = tcp->poll;
    if (poll) {
        /* Out of the kernel before the socket is closed (sys_stream_close):
         * a descriptor closed while still registered can live on in an
         * epoll set through a dup(), and kqueue implementations differ on
         * whether close() drops knotes. Then out of the key table: an
         * event a waiter took before this finds nothing. */
        sys_stream_close(poll->sys, tcp);
        key_table_remove(&poll->keys, tcp->key);
        evq_mutex_lock(&poll->lock);
        tcp->closed = true;
        ready_list_remove_locked(poll, tcp);
        if (tcp->accept_resume_at != 0)
            unpause_locked(poll, tcp);
        if (tcp->lookup) /* still resolving: nothing will come back for it */
            resolver_cancel(tcp->lookup);
        tcp->lookup = NULL;
        deadline_clear(&poll->deadlines, tcp);
        unlist_locked(poll, tcp);
        evq_mutex_unlock(&poll->lock);
    } else {
        sys_stream_close(NULL, tcp);
        tcp->closed = true;
    }
}
/* ANCHOR_END: close_stream */

/* ---- registrations ---- */

static bool interests_valid(const evq_tcp *tcp, unsigned interests)
{
    /* A listener is only ever readable (a connection to accept). */
    return interests != 0 && (interests & ~(unsigned)(EVQ_READABLE | EVQ_WRITABLE)) == 0 &&
           !(tcp->listener && (interests & EVQ_WRITABLE));
}

/* ANCHOR: check_registration */
/* The checks every registration call shares, under the stream's lock. The
 * queue is looked at only through a stream still on it: `poll` itself may
 * be another thread's evq_poll_close away from being freed, but not while
 * one of its streams is locked (evq_poll_close takes each stream's lock
 * before it lets go). */
static int check_registration(evq_poll *poll, evq_tcp *tcp)
{
    if (tcp->closed)
        return EVQ_ECLOSED; /* closed on another thread while this call waited for it */
    if (tcp->poll != poll)
        return EVQ_EINVAL; /* a stream of another queue, or of one closed since */
    if (poll_is_closed(poll))
        return EVQ_ECLOSED;
    return 0;
}
/* ANCHOR_END: check_registration */

/* ANCHOR: register */
/* Arming is bookkeeping: the socket has been in the kernel since it joined
 * the queue. What the kernel said meanwhile is in the stream (remembered
 * edges, buffered bytes): a stream with something for the caller, or with
 * work the kernel will not announce again, goes on the ready list. */
static int arm(evq_poll *poll, evq_tcp *tcp, evq_token token, unsigned interests, bool first)
{
    if (!poll || !tcp)
        return EVQ_EINVAL;
    stream_hold(tcp); /* a close on another thread frees nothing under this call */
    evq_mutex_lock(&tcp->lock);
    int rc = check_registration(poll, tcp);
    if (rc == 0 && !interests_valid(tcp, interests))
        rc = EVQ_EINVAL;
    if (rc == 0 && first && tcp->registered)
        rc = EVQ_EEXIST;
    if (rc == 0 && !first && !tcp->registered)
        rc = EVQ_ENOENT;
    if (rc == 0) {
        tcp->registered = true;
        tcp->token = token;
        tcp->caller_armed = interests;
        poll_stream_changed(tcp);
    }
    evq_mutex_unlock(&tcp->lock);
    stream_release(tcp);
    return rc;
}

int evq_register(evq_poll *poll, evq_tcp *tcp, evq_token token, unsigned interests)
{
    return arm(poll, tcp, token, interests, true);
}

int evq_reregister(evq_poll *poll, evq_tcp *tcp, evq_token token, unsigned interests)
{
    return arm(poll, tcp, token, interests, false);
}
/* ANCHOR_END: register */

int evq_deregister(evq_poll *poll, evq_tcp *tcp)
{
    if (!poll || !tcp)
        return EVQ_EINVAL;
    stream_hold(tcp);
    evq_mutex_lock(&tcp->lock);
    int rc = check_registration(poll, tcp);
    if (rc == 0 && !tcp->registered)
        rc = EVQ_ENOENT;
    if (rc == 0) {
        tcp->registered = false;
        tcp->caller_armed = 0;
        ready_list_remove(tcp);
        poll_stream_changed(tcp); /* the write queue may still need its turns */
    }
    evq_mutex_unlock(&tcp->lock);
    stream_release(tcp);
    return rc;
}

/* ---- deadlines ---- */

/* ANCHOR: set_deadline */
int evq_tcp_set_deadline(evq_tcp *tcp, int timeout_ms)
{
    if (!tcp || timeout_ms < -1)
        return EVQ_EINVAL;
    stream_hold(tcp); /* any thread: see stream.c, "calls" */
    evq_mutex_lock(&tcp->lock);
    evq_poll *poll = tcp->poll;
    if (!poll || tcp->closed || poll_is_closed(poll)) {
        evq_mutex_unlock(&tcp->lock);
        stream_release(tcp);
        return EVQ_ECLOSED;
    }
    tcp->timeout_pending = false; /* a new deadline: the old one's passing is forgotten */
    evq_mutex_lock(&poll->lock);
    tcp->deadline_epoch++; /* a waiter passing the old one drops it */
    int rc = 0;
    bool nudge = false;
    if (timeout_ms < 0) {
        deadline_clear(&poll->deadlines, tcp);
    } else {
        uint64_t at = evq_sat_add(evq_clock_read(&poll->clock), evq_ms_to_ns((uint64_t)timeout_ms));
        rc = deadline_set(&poll->deadlines, tcp, at);
        /* The nearest now: a waiter asleep with a longer timeout must wake. */
        nudge = rc == 0 && tcp->deadline_slot == 0 && nudge_needed(poll);
    }
    evq_mutex_unlock(&poll->lock);
    if (nudge)
        sys_poll_wake(poll->sys); /* before the stream's lock goes: the queue is alive */
    evq_mutex_unlock(&tcp->lock);
    stream_release(tcp);
    return rc;
}
/* ANCHOR_END: set_deadline */

/* ---- test hooks (evq_testing.h) ---- */

void evq_poll_set_wait_hook(evq_poll *poll, evq_wait_hook hook, void *context)
{
    if (!poll)
        return;
    poll->wait_hook = hook;
    poll->wait_hook_context = context;
}

void evq_poll_set_dispatch_hook(evq_poll *poll, evq_poll_hook hook, void *context)
{
    if (!poll)
        return;
    poll->dispatch_hook = hook;
    poll->dispatch_hook_context = context;
}

void evq_poll_set_add_hook(evq_poll *poll, evq_poll_hook hook, void *context)
{
    if (!poll)
        return;
    poll->add_hook = hook;
    poll->add_hook_context = context;
}

uint64_t evq_tcp_get_key(const evq_tcp *stream)
{
    if (!stream)
        return KEY_NONE;
    evq_tcp *tcp = (evq_tcp *)stream;
    stream_hold(tcp);
    evq_mutex_lock(&tcp->lock);
    uint64_t key = tcp->key;
    evq_mutex_unlock(&tcp->lock);
    stream_release(tcp);
    return key;
}

unsigned evq_tcp_get_references(const evq_tcp *stream)
{
    if (!stream)
        return 0;
    unsigned refs = atomic_load(&((evq_tcp *)stream)->refs);
    return refs % STREAM_DATA_CALL + refs / STREAM_DATA_CALL; /* a data call counts one */
}

void evq_poll_set_clock(evq_poll *poll, evq_clock clock)
{
    if (poll && clock.now_ns)
        poll->clock = clock;
}

void evq_poll_get_lookup_stats(evq_poll *poll, evq_lookup_stats *out)
{
    if (!out)
        return;
    memset(out, 0, sizeof *out);
    if (!poll)
        return;
    resolver_stats stats;
    evq_mutex_lock(&poll->lock); /* the resolver is one thread's */
    resolver_stats_get(poll->resolver, &stats);
    evq_mutex_unlock(&poll->lock);
    out->numeric = stats.numeric;
    out->cache_hits = stats.cache_hits;
    out->submitted = stats.submitted;
    out->delivered = stats.delivered;
    out->cancelled = stats.cancelled;
    out->dropped = stats.dropped;
    out->running_peak = stats.running_peak;
    out->live = stats.live;
    out->workers = stats.workers;
}

void evq_poll_get_kernel_stats(evq_poll *poll, evq_kernel_stats *out)
{
    if (!out)
        return;
    memset(out, 0, sizeof *out);
    if (!poll)
        return;
    evq_mutex_lock(&poll->lock);
    out->waits = poll->kernel_waits;
    evq_mutex_unlock(&poll->lock);
    out->control_calls = sys_poll_control_calls(poll->sys);
}

size_t evq_poll_retired_streams(const evq_poll *poll)
{
    return poll ? sys_poll_retired(poll->sys) : 0;
}

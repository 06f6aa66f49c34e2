/* poll.c - the portable queue: argument checks, the registrations, what the
 * kernel is armed for and what the caller is told, the fair ready list, the
 * wait loop (deadline, interruptions, shutdown), the pause of a listener at
 * the descriptor limit, and the list of streams a queue must let go of when
 * it is closed. Chapter 4 adds the resolver's answers, collected after its
 * wake-up, and the streams' deadlines. It never mentions an operating
 * system: the backend behind sys.h does. The stream's own rules (buffers,
 * flush, FIN) are stream.c's, the connect's are connect.c's.
 */
#include "sys.h"
#include "evq_testing.h"

#include "deadline.h"
#include "resolver.h"

#include "evq_clock.h"
#include "evq_thread.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* How long a listener rests after accept() met the descriptor limit (see
 * poll_pause_accepting). */
#define ACCEPT_PAUSE_MS 100

struct evq_poll {
    struct sys_poll *sys;
    evq_tcp *streams; /* every stream made on this queue and not yet closed */
    struct sys_event kernel_events[SYS_MAX_EVENTS]; /* one kernel wait's findings */
    /* The ready list, first in, first out: streams armed READABLE with
     * something unseen already in our buffer (stream_read_readiness). */
    evq_tcp *ready_head, *ready_tail;
    bool odd_slot_to_list; /* who gets the odd slot of an odd capacity: see kernel_wait */
    evq_tcp *paused;       /* listeners resting at the descriptor limit */
    evq_clock clock;
    evq_wait_hook wait_hook;
    void *wait_hook_context;
    struct resolver *resolver;      /* name lookups, on threads of its own */
    struct deadline_heap deadlines; /* the streams' deadlines, nearest first */
    /* Why the kernel's waker fired: each sender sets its flag, then wakes
     * the kernel. A resolver's answer is the queue's business; only
     * evq_poll_wake may end a wait with *n == 0. */
    atomic_bool lookups_finished;
    atomic_bool wake_requested;
    /* The only state another thread touches (shutdown and close): */
    evq_mutex lock;
    evq_cond waiter_left;
    bool closed;
    bool waiting; /* a thread is inside evq_poll_wait */
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

/* The queue's clock, for the resolver's cache: read on the loop's thread,
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

struct resolver *poll_resolver(evq_poll *poll)
{
    return poll->resolver;
}

/* ---- the ready list ---- */

static void ready_list_add(evq_tcp *tcp)
{
    if (tcp->on_ready_list)
        return; /* keeps its place in the line */
    evq_poll *poll = tcp->poll;
    tcp->on_ready_list = true;
    tcp->ready_next = NULL;
    tcp->ready_prev = poll->ready_tail;
    if (poll->ready_tail)
        poll->ready_tail->ready_next = tcp;
    else
        poll->ready_head = tcp;
    poll->ready_tail = tcp;
}

static void ready_list_remove(evq_tcp *tcp)
{
    if (!tcp->on_ready_list)
        return;
    evq_poll *poll = tcp->poll;
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
}

/* ---- what the kernel is armed for ---- */

/* ANCHOR: interest */
/* ANCHOR: kernel_interests */
/* The kernel watches for what the caller armed, plus WRITABLE while output
 * waits - whether or not the caller registered the stream at all: the
 * queue must drain by itself. A listener resting at the descriptor limit is
 * not watched until its pause is over. A connecting socket is watched for
 * the connect's outcome only (WRITABLE), whatever the caller armed: the
 * caller hears of nothing else until it is connected. A stream that has no
 * socket (resolving, failed) is not in the kernel at all. */
static unsigned kernel_interests(const evq_tcp *tcp)
{
    if (tcp->connect_phase != CONNECT_DONE)
        return tcp->connect_phase == CONNECT_CONNECTING ? EVQ_WRITABLE : 0;
    unsigned wanted = tcp->caller_armed;
    if (stream_output_pending(tcp))
        wanted |= EVQ_WRITABLE;
    if (tcp->accept_resume_at != 0)
        wanted &= ~(unsigned)EVQ_READABLE;
    return wanted;
}
/* ANCHOR_END: kernel_interests */

/* What the stream is ready for that no kernel can report, among what the
 * caller armed: bytes in the read buffer (or the end) for READABLE; a
 * connect that failed - there is no socket left to report it - for
 * anything; and a deadline that passed. */
static uint32_t own_readiness(const evq_tcp *tcp)
{
    if (tcp->caller_armed == 0)
        return 0;
    uint32_t ready = 0;
    if (tcp->caller_armed & EVQ_READABLE)
        ready |= stream_read_readiness(tcp);
    if (tcp->connect_phase == CONNECT_FAILED)
        ready |= EVQ_ERR | EVQ_HUP | tcp->caller_armed;
    if (tcp->timeout_pending)
        ready |= EVQ_TIMEOUT;
    return ready;
}

/* Bring the kernel in line, with a system call only when something changed
 * (or when `look_again` asks the kernel to look at the socket anew).
 * What the kernel cannot see - bytes already in the read buffer, a failed
 * connect, a deadline - puts a stream armed for it on the ready list,
 * which the wait reports without another system call. */
static int arm_kernel(evq_tcp *tcp, bool look_again)
{
    unsigned wanted = kernel_interests(tcp);
    int rc = 0;
    if ((wanted != tcp->kernel_armed || look_again) && tcp->socket != EVQ_INVALID_SOCKET) {
        rc = sys_arm(tcp->poll->sys, tcp, wanted);
        /* After a failure the kernel's arming is unknown: call it nothing,
         * so that the next update tries again (an extra kernel event is
         * harmless: deliver() tells the caller only what it armed). */
        tcp->kernel_armed = rc == 0 ? wanted : 0;
    }
    if (own_readiness(tcp) != 0)
        ready_list_add(tcp);
    return rc;
}

int poll_update_kernel(evq_tcp *tcp)
{
    return arm_kernel(tcp, false);
}
/* ANCHOR_END: interest */

/* ---- what the caller is told ---- */

/* What the caller hears of a kernel event: only what it armed, and
 * WRITABLE only once the queue has drained to write_low (backpressure). A
 * send that failed in the background is told once, as EVQ_ERR. */
static uint32_t caller_readiness(evq_tcp *tcp, uint32_t kernel_ready)
{
    if (tcp->caller_armed == 0)
        return 0;
    uint32_t ready = kernel_ready & tcp->caller_armed;
    if (tcp->write_queue.queued > tcp->limits.write_low)
        ready &= ~(uint32_t)EVQ_WRITABLE;
    if (tcp->write_status != 0 && !tcp->write_error_told) {
        ready |= EVQ_ERR | (tcp->caller_armed & EVQ_WRITABLE);
        tcp->write_error_told = true;
    }
    if (ready != 0)
        ready |= kernel_ready & (EVQ_ERR | EVQ_HUP);
    return ready;
}

/* The caller is told: its arming is used up (one-shot), and the stream
 * leaves the ready list. A deadline that passed rides on whatever event
 * comes first, and is told once. */
static void tell(evq_tcp *tcp, evq_event *event, uint32_t ready)
{
    if (tcp->timeout_pending) {
        ready |= EVQ_TIMEOUT;
        tcp->timeout_pending = false;
    }
    event->token = tcp->token;
    event->ready = ready;
    tcp->caller_armed = 0;
    ready_list_remove(tcp);
}

/* ANCHOR: flush */
/* Each kernel event has disarmed its stream (one-shot). Send what is queued
 * if the socket has room (on an error too: the send returns it). Tell the
 * caller what concerns it, using up its arming; then re-arm the kernel for
 * what is still wanted - the caller's arming untouched if the event was
 * only the queue's. */
static size_t deliver(evq_poll *poll, size_t got, evq_event *events)
{
    size_t out = 0;
    for (size_t i = 0; i < got; i++) {
        evq_tcp *tcp = poll->kernel_events[i].tcp;
        uint32_t kernel_ready = poll->kernel_events[i].ready;
        tcp->kernel_armed = 0;
        if (poll->kernel_events[i].error != 0)
            tcp->event_error = poll->kernel_events[i].error;
        if (tcp->connect_phase == CONNECT_CONNECTING) {
            /* The connect's outcome: connected, or on to the next address
             * (a new socket to arm), or failed (the ready list tells). */
            connect_kernel_event(tcp);
            if (tcp->connect_phase != CONNECT_DONE) {
                poll_update_kernel(tcp);
                continue;
            }
            kernel_ready = EVQ_WRITABLE; /* connected: writable, and queued bytes may go */
        }
        if ((kernel_ready & (EVQ_WRITABLE | EVQ_ERR | EVQ_HUP)) && stream_output_pending(tcp))
            stream_flush(tcp); /* a failure is kept, and told below */
        uint32_t ready = caller_readiness(tcp, kernel_ready);
        if (ready != 0)
            tell(tcp, &events[out++], ready);
        /* A failed re-arm would leave the stream silent: tell the caller,
         * whose evq_reregister tries again and returns the code. */
        if (poll_update_kernel(tcp) != 0 && ready == 0 && tcp->caller_armed != 0)
            tell(tcp, &events[out++], EVQ_ERR | tcp->caller_armed);
    }
    return out;
}
/* ANCHOR_END: flush */

/* ANCHOR: ready_list */
/* Up to `room` streams from the head of the ready list. A stream that was
 * read or peeked at since it joined the line has nothing unseen any more:
 * it leaves without an event, and the kernel is asked to look again for
 * it (IOCP posts the receive it skipped while the buffer had bytes). */
static size_t deliver_ready_list(evq_poll *poll, evq_event *events, size_t room)
{
    size_t out = 0;
    while (poll->ready_head && out < room) {
        evq_tcp *tcp = poll->ready_head;
        ready_list_remove(tcp);
        if (tcp->caller_armed == 0)
            continue; /* disarmed since */
        uint32_t ready = own_readiness(tcp);
        if (ready == 0) {
            arm_kernel(tcp, true);
            continue;
        }
        tell(tcp, &events[out++], ready);
        poll_update_kernel(tcp); /* disarm the kernel's READABLE: reported already */
    }
    return out;
}
/* ANCHOR_END: ready_list */

/* ---- accepting at the descriptor limit ---- */

/* ANCHOR: pause */
/* accept() failed with EMFILE (or ENFILE, ENOBUFS): a connection waits and
 * cannot be taken. A level-triggered listener re-armed now would report it
 * again at once, and the loop would spin on accept() at 100 % CPU for as
 * long as the limit lasts. So the listener rests: the kernel is not armed
 * for it for ACCEPT_PAUSE_MS, then it is, whatever the caller did in
 * between (nginx disables its accept events in the same way). Clients
 * wait in the backlog meanwhile, and are served once descriptors free up.
 * libuv instead keeps a spare descriptor to close, accept and drop the
 * waiting connection with; that turns clients away, costs a descriptor,
 * and means nothing to IOCP, where the failure comes before a connection
 * exists (the socket for the next AcceptEx cannot be made). */
void poll_pause_accepting(evq_tcp *listener)
{
    evq_poll *poll = listener->poll;
    if (listener->accept_resume_at == 0) {
        listener->paused_next = poll->paused;
        poll->paused = listener;
    }
    listener->accept_resume_at =
        evq_sat_add(evq_clock_read(&poll->clock), evq_ms_to_ns(ACCEPT_PAUSE_MS));
    poll_update_kernel(listener);
}
/* ANCHOR_END: pause */

/* ANCHOR: resume */
/* Arm the listeners whose pause is over; returns a timeout no later than
 * the next one's end. */
static int resume_accepting(evq_poll *poll, int timeout_ms)
{
    uint64_t now = evq_clock_read(&poll->clock);
    for (evq_tcp **link = &poll->paused; *link;) {
        evq_tcp *listener = *link;
        if (listener->accept_resume_at <= now) {
            *link = listener->paused_next;
            listener->accept_resume_at = 0;
            poll_update_kernel(listener);
            continue;
        }
        int left = evq_remaining_ms(listener->accept_resume_at, now);
        if (timeout_ms < 0 || left < timeout_ms)
            timeout_ms = left;
        link = &listener->paused_next;
    }
    return timeout_ms;
}
/* ANCHOR_END: resume */

static void unpause(evq_tcp *tcp)
{
    for (evq_tcp **link = &tcp->poll->paused; *link; link = &(*link)->paused_next) {
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
 * Returns timeout_ms cut down to the nearest deadline still ahead, so that
 * the wait wakes up for it - and for nothing sooner. */
static int pass_deadlines(evq_poll *poll, int timeout_ms)
{
    uint64_t now = evq_clock_read(&poll->clock);
    evq_tcp *tcp;
    while ((tcp = deadline_pop_passed(&poll->deadlines, now)) != NULL) {
        tcp->timeout_pending = true;
        if (tcp->connect_phase == CONNECT_RESOLVING || tcp->connect_phase == CONNECT_CONNECTING)
            connect_give_up(tcp, EVQ_ETIMEDOUT);
        if (own_readiness(tcp) != 0)
            ready_list_add(tcp);
    }
    uint64_t next = deadline_next(&poll->deadlines);
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
 * until a call returns fewer than it was asked for. */
static void collect_lookups(evq_poll *poll)
{
    enum { BATCH = 16 };
    resolver_result results[BATCH];
    size_t got;
    do {
        got = resolver_collect(poll->resolver, results, BATCH);
        for (size_t i = 0; i < got; i++)
            connect_resolved(results[i].owner, results[i].status, &results[i].addresses);
    } while (got == BATCH);
}

/* The kernel's waker fired: for the resolver (answers to collect), for the
 * caller (evq_poll_wake), or both - each sender set its flag first.
 * Returns whether the caller's wait must end: only evq_poll_wake's may,
 * and then with *n == 0. */
static bool take_wake_ups(evq_poll *poll)
{
    if (atomic_exchange(&poll->lookups_finished, false))
        collect_lookups(poll);
    return atomic_exchange(&poll->wake_requested, false);
}
/* ANCHOR_END: collect */

/* ---- the wait ---- */

/* One turn: the ready list and one kernel wait share the caller's
 * `capacity`, so that neither can starve the other. The list is served
 * first, up to half the room; the odd slot of an odd capacity goes to the
 * list and to the kernel in turns (with capacity 1 they alternate). The
 * kernel gets the rest, and whatever room it leaves goes back to the list.
 * The list is first in, first out: a stream re-armed joins its end. So a
 * stream with buffered bytes is reported even while the kernel keeps
 * reporting others, and the kernel's streams are reported even while the
 * list never empties. With nothing on the list, the kernel gets it all. */
/* ANCHOR: fairness */
static int kernel_wait(evq_poll *poll, evq_event *events, size_t capacity, int timeout_ms,
                       size_t *n, bool *woken)
{
    *n = 0;
    *woken = false;
    timeout_ms = pass_deadlines(poll, timeout_ms);
    if (poll->paused)
        timeout_ms = resume_accepting(poll, timeout_ms);
    size_t out = 0;
    if (poll->ready_head) {
        size_t share = capacity / 2 + (capacity % 2 == 1 && poll->odd_slot_to_list);
        poll->odd_slot_to_list = !poll->odd_slot_to_list;
        out = deliver_ready_list(poll, events, share);
    }
    /* Something to report already: look at the kernel, do not sleep. */
    if (out > 0 || poll->ready_head)
        timeout_ms = 0;
    /* One kernel event gives at most one caller event, so asking for no
     * more than the room left keeps the caller's array from overflowing. */
    size_t room = capacity - out < SYS_MAX_EVENTS ? capacity - out : SYS_MAX_EVENTS;
    int rc = 0;
    if (room > 0 && poll->wait_hook)
        rc = poll->wait_hook(poll->wait_hook_context, &timeout_ms);
    if (room > 0 && rc == 0) {
        size_t got = 0;
        bool kernel_woken = false;
        rc = sys_poll_wait(poll->sys, poll->kernel_events, room, timeout_ms, &got, &kernel_woken);
        if (rc == 0)
            out += deliver(poll, got, events + out);
        if (kernel_woken)
            *woken = take_wake_ups(poll);
    }
    if (rc == 0) {
        pass_deadlines(poll, -1); /* those that passed while it slept */
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
 * nothing for the caller (a flush of a write queue; IOCP dequeues
 * completions that are not events; the resolver's wake-up; a stream's
 * deadline that found it disarmed) goes back to sleep for the rest of the
 * time, too. */
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

int evq_poll_wait(evq_poll *poll, evq_event *events, size_t capacity, int timeout_ms, size_t *n)
{
    if (n)
        *n = 0;
    if (!poll || !events || !n || capacity == 0 || timeout_ms < -1)
        return EVQ_EINVAL;

    evq_mutex_lock(&poll->lock);
    int rc = poll->closed ? EVQ_ECLOSED : poll->waiting ? EVQ_EBUSY : 0;
    if (rc == 0)
        poll->waiting = true;
    evq_mutex_unlock(&poll->lock);
    if (rc != 0)
        return rc;

    rc = wait_until_deadline(poll, events, capacity, timeout_ms, n);
    if (rc != 0)
        *n = 0;

    /* Once `waiting` is false and the lock released, evq_poll_close may free
     * the queue: touch nothing of it after this block. */
    evq_mutex_lock(&poll->lock);
    poll->waiting = false;
    evq_cond_broadcast(&poll->waiter_left);
    evq_mutex_unlock(&poll->lock);
    return rc;
}

int evq_poll_wake(evq_poll *poll)
{
    if (!poll)
        return EVQ_EINVAL;
    if (poll_is_closed(poll))
        return EVQ_ECLOSED;
    atomic_store(&poll->wake_requested, true); /* before the kernel's wake: see take_wake_ups */
    return sys_poll_wake(poll->sys);
}

int evq_poll_shutdown(evq_poll *poll)
{
    if (!poll)
        return EVQ_EINVAL;
    evq_mutex_lock(&poll->lock);
    bool was_closed = poll->closed;
    poll->closed = true;
    /* The waker stays signalled until a wait consumes it, so a thread that
     * is about to block (past its check of `closed`, not yet in the kernel)
     * returns at once too. */
    int rc = !was_closed && poll->waiting ? sys_poll_wake(poll->sys) : 0;
    evq_mutex_unlock(&poll->lock);
    resolver_shutdown(poll->resolver); /* queued lookups never run; running ones are dropped */
    return rc;
}

/* ANCHOR: close */
void evq_poll_close(evq_poll *poll)
{
    if (!poll)
        return;
    evq_poll_shutdown(poll);
    /* A thread blocked in evq_poll_wait is woken by the shutdown and leaves
     * with EVQ_ECLOSED; free nothing until it has. */
    evq_mutex_lock(&poll->lock);
    while (poll->waiting)
        evq_cond_wait(&poll->waiter_left, &poll->lock);
    evq_mutex_unlock(&poll->lock);
    /* The resolver's workers call lookups_finished, which wakes the kernel:
     * they must all have left before the backend goes. A worker inside a
     * lookup is waited for (getaddrinfo cannot be interrupted); every
     * request still held is freed. */
    resolver_close(poll->resolver);
    deadline_heap_free(&poll->deadlines);

    /* The streams belong to the caller, who closes them later: cut them
     * loose so that they never reach for this memory again. */
    while (poll->streams) {
        evq_tcp *tcp = poll->streams;
        tcp->lookup = NULL; /* freed by resolver_close */
        ready_list_remove(tcp);
        unpause(tcp);
        sys_stream_detach(poll->sys, tcp); /* armed by the caller, or for its write queue */
        tcp->registered = false;
        tcp->caller_armed = tcp->kernel_armed = 0;
        tcp->poll = NULL;
        poll->streams = tcp->next;
        tcp->prev = tcp->next = NULL;
    }
    sys_poll_close(poll->sys); /* IOCP: waits for cancelled I/O to come back */
    evq_cond_destroy(&poll->waiter_left);
    evq_mutex_destroy(&poll->lock);
    free(poll);
}
/* ANCHOR_END: close */

/* ---- the queue's streams ---- */

int poll_add_stream(evq_poll *poll, evq_tcp *tcp)
{
    int rc = sys_stream_open(poll->sys, tcp);
    if (rc != 0)
        return rc;
    tcp->poll = poll;
    tcp->next = poll->streams;
    if (poll->streams)
        poll->streams->prev = tcp;
    poll->streams = tcp;
    return 0;
}

void poll_close_stream(evq_tcp *tcp)
{
    evq_poll *poll = tcp->poll;
    if (poll) {
        /* Out of the kernel before the socket is closed (sys_stream_close):
         * a descriptor closed while still registered can live on in an
         * epoll set through a dup(), and kqueue implementations differ on
         * whether close() drops knotes. */
        ready_list_remove(tcp);
        if (tcp->accept_resume_at != 0)
            unpause(tcp);
        if (tcp->lookup) /* still resolving: nothing will come back for it */
            resolver_cancel(tcp->lookup);
        tcp->lookup = NULL;
        deadline_clear(&poll->deadlines, tcp);
        if (tcp->prev)
            tcp->prev->next = tcp->next;
        else
            poll->streams = tcp->next;
        if (tcp->next)
            tcp->next->prev = tcp->prev;
    }
    sys_stream_close(poll ? poll->sys : NULL, tcp);
}

/* ---- registrations ---- */

static bool interests_valid(const evq_tcp *tcp, unsigned interests)
{
    /* A listener is only ever readable (a connection to accept). */
    return interests != 0 && (interests & ~(unsigned)(EVQ_READABLE | EVQ_WRITABLE)) == 0 &&
           !(tcp->listener && (interests & EVQ_WRITABLE));
}

/* The checks every registration call shares, in the order a caller would
 * want to hear about them. */
static int check_registration(evq_poll *poll, evq_tcp *tcp)
{
    if (!poll || !tcp)
        return EVQ_EINVAL;
    if (poll_is_closed(poll))
        return EVQ_ECLOSED;
    if (tcp->poll != poll)
        return EVQ_EINVAL; /* a stream of another queue, or of a closed one */
    return 0;
}

int evq_register(evq_poll *poll, evq_tcp *tcp, evq_token token, unsigned interests)
{
    int rc = check_registration(poll, tcp);
    if (rc != 0)
        return rc;
    if (!interests_valid(tcp, interests))
        return EVQ_EINVAL;
    if (tcp->registered)
        return EVQ_EEXIST;
    tcp->token = token;
    tcp->caller_armed = interests;
    if ((rc = poll_update_kernel(tcp)) != 0) {
        tcp->caller_armed = 0;
        ready_list_remove(tcp);
        return rc;
    }
    tcp->registered = true;
    return 0;
}

int evq_reregister(evq_poll *poll, evq_tcp *tcp, evq_token token, unsigned interests)
{
    int rc = check_registration(poll, tcp);
    if (rc != 0)
        return rc;
    if (!interests_valid(tcp, interests))
        return EVQ_EINVAL;
    if (!tcp->registered)
        return EVQ_ENOENT;
    tcp->token = token;
    tcp->caller_armed = interests;
    return poll_update_kernel(tcp);
}

int evq_deregister(evq_poll *poll, evq_tcp *tcp)
{
    int rc = check_registration(poll, tcp);
    if (rc != 0)
        return rc;
    if (!tcp->registered)
        return EVQ_ENOENT;
    tcp->registered = false;
    tcp->caller_armed = 0;
    ready_list_remove(tcp);
    return poll_update_kernel(tcp); /* the write queue may still need WRITABLE */
}

/* ---- deadlines ---- */

/* ANCHOR: set_deadline */
int evq_tcp_set_deadline(evq_tcp *tcp, int timeout_ms)
{
    if (!tcp || timeout_ms < -1)
        return EVQ_EINVAL;
    evq_poll *poll = tcp->poll;
    if (!poll || poll_is_closed(poll))
        return EVQ_ECLOSED;
    tcp->timeout_pending = false; /* a new deadline: the old one's passing is forgotten */
    if (timeout_ms < 0) {
        deadline_clear(&poll->deadlines, tcp);
        return 0;
    }
    uint64_t now = evq_clock_read(&poll->clock);
    return deadline_set(&poll->deadlines, tcp,
                        evq_sat_add(now, evq_ms_to_ns((uint64_t)timeout_ms)));
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
    resolver_stats_get(poll->resolver, &stats);
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

size_t evq_poll_retired_streams(const evq_poll *poll)
{
    return poll ? sys_poll_retired(poll->sys) : 0;
}

/* poll.c - the portable queue: argument checks, the registrations, the
 * wait loop (deadline, interruptions, shutdown), and the list of streams a
 * queue must let go of when it is closed. It never mentions an operating
 * system: the backend behind sys.h does. The stream's own calls (connect,
 * read, write, close) are stream.c's.
 */
#include "sys.h"
#include "evq_testing.h"

#include "evq_clock.h"
#include "evq_thread.h"

#include <stdlib.h>

struct evq_poll {
    struct sys_poll *sys;
    evq_tcp *streams; /* every stream made on this queue and not yet closed */
    struct sys_event kernel_events[SYS_MAX_EVENTS]; /* one kernel wait's findings */
    evq_clock clock;
    evq_wait_hook wait_hook;
    void *wait_hook_context;
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

int evq_poll_open(evq_poll **out)
{
    if (!out)
        return EVQ_EINVAL;
    *out = NULL;
    evq_poll *poll = calloc(1, sizeof *poll);
    if (!poll)
        return EVQ_ENOMEM;
    int rc = evq_mutex_init(&poll->lock);
    if (rc != 0) {
        free(poll);
        return rc;
    }
    if ((rc = evq_cond_init(&poll->waiter_left)) != 0) {
        evq_mutex_destroy(&poll->lock);
        free(poll);
        return rc;
    }
    if ((rc = sys_poll_open(&poll->sys)) != 0) {
        evq_cond_destroy(&poll->waiter_left);
        evq_mutex_destroy(&poll->lock);
        free(poll);
        return rc;
    }
    poll->clock = evq_clock_system();
    *out = poll;
    return 0;
}

/* ---- the wait ---- */

/* One kernel wait, or what the test hook makes of it; then what it found,
 * turned into the caller's events: the token comes from the stream, so
 * that an event carries whatever token the last registration gave. */
static int kernel_wait(evq_poll *poll, evq_event *events, size_t capacity, int timeout_ms,
                       size_t *n, bool *woken)
{
    *n = 0;
    *woken = false;
    if (poll->wait_hook) {
        int rc = poll->wait_hook(poll->wait_hook_context, &timeout_ms);
        if (rc != 0)
            return rc;
    }
    /* One kernel event gives one caller event, so asking for no more than
     * `capacity` keeps the caller's array from overflowing. */
    size_t room = capacity < SYS_MAX_EVENTS ? capacity : SYS_MAX_EVENTS;
    size_t got = 0;
    int rc = sys_poll_wait(poll->sys, poll->kernel_events, room, timeout_ms, &got, woken);
    if (rc != 0)
        return rc;
    for (size_t i = 0; i < got; i++) {
        evq_tcp *tcp = poll->kernel_events[i].tcp;
        if (poll->kernel_events[i].error != 0)
            tcp->event_error = poll->kernel_events[i].error;
        events[i].token = tcp->token;
        events[i].ready = poll->kernel_events[i].ready;
    }
    *n = got;
    return 0;
}

/* The deadline is fixed once, on the monotonic clock. After an interruption
 * (EINTR; an APC on Windows) the kernel is asked again for the time that is
 * LEFT: retrying with the whole timeout would let a steady stream of signals
 * keep the wait from ever timing out. A kernel wait that returns early with
 * nothing for the caller (IOCP dequeues completions that are not events)
 * goes back to sleep for the rest of the time, too. */
/* ANCHOR: wait_loop */
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

    /* The streams belong to the caller, who closes them later: cut them
     * loose so that they never reach for this memory again. */
    while (poll->streams) {
        evq_tcp *tcp = poll->streams;
        sys_stream_detach(poll->sys, tcp); /* out of the kernel, I/O cancelled */
        tcp->registered = false;
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

static bool interests_valid(unsigned interests)
{
    return interests != 0 && (interests & ~(unsigned)(EVQ_READABLE | EVQ_WRITABLE)) == 0;
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
    if (!interests_valid(interests))
        return EVQ_EINVAL;
    if (tcp->registered)
        return EVQ_EEXIST;
    tcp->token = token;
    tcp->interests = interests;
    if ((rc = sys_arm(poll->sys, tcp, interests)) != 0)
        return rc;
    tcp->registered = true;
    return 0;
}

int evq_reregister(evq_poll *poll, evq_tcp *tcp, evq_token token, unsigned interests)
{
    int rc = check_registration(poll, tcp);
    if (rc != 0)
        return rc;
    if (!interests_valid(interests))
        return EVQ_EINVAL;
    if (!tcp->registered)
        return EVQ_ENOENT;
    tcp->token = token;
    tcp->interests = interests;
    return sys_arm(poll->sys, tcp, interests);
}

int evq_deregister(evq_poll *poll, evq_tcp *tcp)
{
    int rc = check_registration(poll, tcp);
    if (rc != 0)
        return rc;
    if (!tcp->registered)
        return EVQ_ENOENT;
    tcp->registered = false;
    tcp->interests = 0;
    return sys_arm(poll->sys, tcp, 0);
}

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

size_t evq_poll_retired_streams(const evq_poll *poll)
{
    return poll ? sys_poll_retired(poll->sys) : 0;
}

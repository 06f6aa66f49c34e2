/* test_user.c - EVFILT_USER: "a user event identified by ident which is not
 * associated with any kernel mechanism but is triggered by user level code." */
#if defined(__APPLE__)
#define _DARWIN_C_SOURCE
#elif !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L
#endif
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <unistd.h>

#include "evq_test.h"
#include "evq_thread.h"
#include "kq_test.h"

static int marker;

/* NOTE_TRIGGER: "Cause the event to be triggered." With EV_CLEAR the event
 * is reported once per trigger. */
EVQ_TEST(trigger_with_clear_fires_once)
{
    int kq = kq_open();
    REQUIRE(kq >= 0);
    CHECK_INT(kq_change(kq, 1, EVFILT_USER, EV_ADD | EV_CLEAR, 0, 0, &marker), ==, 0);
    struct kevent events[4];
    CHECK_INT(kq_poll(kq, events, 4), ==, 0); /* not triggered yet */
    CHECK_INT(kq_change(kq, 1, EVFILT_USER, 0, NOTE_TRIGGER, 0, &marker), ==, 0);
    REQUIRE_INT(kq_poll(kq, events, 4), ==, 1);
    CHECK_UINT(events[0].ident, ==, 1);
    CHECK_INT(events[0].filter, ==, EVFILT_USER);
    CHECK(events[0].udata == &marker);
    CHECK_INT(kq_poll(kq, events, 4), ==, 0);
    /* A change without NOTE_TRIGGER runs the filter again: the delivery
     * reset the state, so nothing fires. */
    CHECK_INT(kq_change(kq, 1, EVFILT_USER, 0, NOTE_FFOR | 0x1u, 0, &marker), ==, 0);
    CHECK_INT(kq_poll(kq, events, 4), ==, 0);
    /* Two triggers before a retrieval are one event. */
    CHECK_INT(kq_change(kq, 1, EVFILT_USER, 0, NOTE_TRIGGER, 0, &marker), ==, 0);
    CHECK_INT(kq_change(kq, 1, EVFILT_USER, 0, NOTE_TRIGGER, 0, &marker), ==, 0);
    CHECK_INT(kq_poll(kq, events, 4), ==, 1);
    CHECK_INT(kq_poll(kq, events, 4), ==, 0);
    close(kq);
}

/* A new kqueue with user event 2, without EV_CLEAR, triggered; or -1. */
static int kq_with_a_triggered_level_event(void)
{
    int kq = kq_open();
    if (kq >= 0) {
        CHECK_INT(kq_change(kq, 2, EVFILT_USER, EV_ADD, 0, 0, NULL), ==, 0);
        CHECK_INT(kq_change(kq, 2, EVFILT_USER, 0, NOTE_TRIGGER, 0, NULL), ==, 0);
    }
    return kq;
}

/* Without EV_CLEAR the state is not reset after delivery: a triggered user
 * event is returned by every kevent() until it is cleared or deleted. */
EVQ_TEST(trigger_without_clear_stays_triggered)
{
    int kq = kq_with_a_triggered_level_event();
    REQUIRE(kq >= 0);
    struct kevent events[4];
    CHECK_INT(kq_poll(kq, events, 4), ==, 1);
    CHECK_INT(kq_poll(kq, events, 4), ==, 1);
    CHECK_INT(kq_poll(kq, events, 4), ==, 1);
    close(kq);
}

/* How such an event is cleared: a change with EV_CLEAR resets the trigger
 * (FreeBSD's filt_usertouch(), EVENT_REGISTER), and the knote, still queued,
 * is dropped when the scan finds its filter false. */
EVQ_TEST(change_with_clear_resets_the_trigger)
{
    int kq = kq_with_a_triggered_level_event();
    REQUIRE(kq >= 0);
    struct kevent events[4];
    CHECK_INT(kq_poll(kq, events, 4), ==, 1);
    CHECK_INT(kq_change(kq, 2, EVFILT_USER, EV_CLEAR, 0, 0, NULL), ==, 0);
    CHECK_INT(kq_poll(kq, events, 4), ==, 0);
    /* Not gone: a new trigger fires it again. */
    CHECK_INT(kq_change(kq, 2, EVFILT_USER, 0, NOTE_TRIGGER, 0, NULL), ==, 0);
    CHECK_INT(kq_poll(kq, events, 4), ==, 1);
    close(kq);
}

/* "The lower 24 bits of the fflags may be used for user defined flags and
 * manipulated using NOTE_FFAND, NOTE_FFOR, NOTE_FFCOPY ... On return, fflags
 * contains the users defined flags in the lower 24 bits." */
EVQ_TEST(user_flags_copy_or_and)
{
    int kq = kq_open();
    REQUIRE(kq >= 0);
    CHECK_INT(kq_change(kq, 3, EVFILT_USER, EV_ADD | EV_CLEAR, 0, 0, NULL), ==, 0);
    CHECK_INT(kq_change(kq, 3, EVFILT_USER, 0, NOTE_FFCOPY | 0x000011u, 0, NULL), ==, 0);
    CHECK_INT(kq_change(kq, 3, EVFILT_USER, 0, NOTE_FFOR | 0x000100u, 0, NULL), ==, 0);
    CHECK_INT(kq_change(kq, 3, EVFILT_USER, 0, NOTE_FFAND | 0x000101u, 0, NULL), ==, 0);
    CHECK_INT(kq_change(kq, 3, EVFILT_USER, 0, NOTE_TRIGGER | NOTE_FFNOP | 0x00ffffu, 0, NULL), ==,
              0);
    struct kevent events[4];
    REQUIRE_INT(kq_poll(kq, events, 4), ==, 1);
    CHECK_UINT(events[0].fflags & NOTE_FFLAGSMASK, ==, 0x000101u);
    close(kq);
}

/* A trigger is a change to an existing knote: none, no EV_ADD, ENOENT. */
EVQ_TEST(trigger_of_a_missing_event_is_enoent)
{
    int kq = kq_open();
    REQUIRE(kq >= 0);
    CHECK_INT(kq_change(kq, 4, EVFILT_USER, 0, NOTE_TRIGGER, 0, NULL), ==, ENOENT);
    CHECK_INT(kq_change(kq, 4, EVFILT_USER, EV_ADD, 0, 0, NULL), ==, 0);
    CHECK_INT(kq_change(kq, 4, EVFILT_USER, EV_DELETE, 0, 0, NULL), ==, 0);
    CHECK_INT(kq_change(kq, 4, EVFILT_USER, 0, NOTE_TRIGGER, 0, NULL), ==, ENOENT);
    close(kq);
}

/* User events are named by ident alone, apart from other filters. */
EVQ_TEST(user_events_are_independent)
{
    int kq = kq_open();
    REQUIRE(kq >= 0);
    for (uintptr_t id = 100; id < 200; id++)
        CHECK_INT(kq_change(kq, id, EVFILT_USER, EV_ADD | EV_CLEAR, 0, 0, (void *)id), ==, 0);
    CHECK_INT(kq_change(kq, 150, EVFILT_USER, 0, NOTE_TRIGGER, 0, (void *)(uintptr_t)150), ==, 0);
    struct kevent events[8];
    REQUIRE_INT(kq_poll(kq, events, 8), ==, 1);
    CHECK_UINT(events[0].ident, ==, 150);
    CHECK(events[0].udata == (void *)(uintptr_t)150);
    close(kq);
}

struct trigger_job {
    int kq;
    atomic_bool done;
};

/* Trigger every 2 ms until the waiter has what it wants (at most 10 s):
 * coalesced triggers are one event, so a fixed number of triggers could
 * leave a slow waiter short and waiting for ever. */
static void trigger_until_done(void *arg)
{
    struct trigger_job *job = arg;
    for (int i = 0; i < 5000 && !atomic_load(&job->done); i++) {
        CHECK_INT(kq_change(job->kq, 7, EVFILT_USER, 0, NOTE_TRIGGER, 0, NULL), ==, 0);
        evq_sleep_ms(2);
    }
}

/* The usual waker: one thread waits with no timeout, another triggers. */
EVQ_TEST(trigger_from_another_thread_wakes_the_waiter)
{
    int kq = kq_open();
    REQUIRE(kq >= 0);
    CHECK_INT(kq_change(kq, 7, EVFILT_USER, EV_ADD | EV_CLEAR, 0, 0, NULL), ==, 0);
    struct trigger_job job = {.kq = kq};
    atomic_init(&job.done, false);
    evq_thread thread;
    REQUIRE_OK(evq_thread_start(&thread, trigger_until_done, &job));
    int wakeups = 0;
    struct kevent events[4];
    while (wakeups < 3) {
        bool overran;
        int n = kq_kevent_bounded(kq, NULL, 0, events, 4, NULL, 10000, &overran);
        if (overran)
            evq_test_fail(__FILE__, __LINE__, "no wakeup in 10 s of triggers");
        CHECK_INT(n, ==, 1);
        if (n != 1)
            break;
        wakeups++;
    }
    atomic_store(&job.done, true);
    evq_thread_join(&thread);
    CHECK_INT(wakeups, ==, 3);
    close(kq);
}

int main(int argc, char **argv)
{
    static const evq_test_case cases[] = {
        EVQ_CASE(trigger_with_clear_fires_once),
        EVQ_CASE(trigger_without_clear_stays_triggered),
        EVQ_CASE(change_with_clear_resets_the_trigger),
        EVQ_CASE(user_flags_copy_or_and),
        EVQ_CASE(trigger_of_a_missing_event_is_enoent),
        EVQ_CASE(user_events_are_independent),
        EVQ_CASE(trigger_from_another_thread_wakes_the_waiter),
    };
    return evq_test_main(argc, argv, cases, EVQ_COUNT(cases));
}

/* test_changes.c - the changelist: how knotes are named, added, modified and
 * deleted, and how kevent() reports a change that fails (FreeBSD kqueue(2),
 * DESCRIPTION and RETURN VALUES). */
#if defined(__APPLE__)
#define _DARWIN_C_SOURCE
#elif !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L
#endif
#include <errno.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "evq_test.h"
#include "kq_test.h"

static int marker_a, marker_b;

/* "A kevent is identified by the (ident, filter) pair; there may only be one
 * unique kevent per kqueue." Read and write on one descriptor are two knotes. */
EVQ_TEST(knote_is_named_by_ident_and_filter)
{
    int kq = kq_open(), a, b;
    REQUIRE(kq >= 0);
    REQUIRE(tcp_pair(&a, &b));
    CHECK_INT(kq_change(kq, (uintptr_t)a, EVFILT_READ, EV_ADD, 0, 0, &marker_a), ==, 0);
    CHECK_INT(kq_change(kq, (uintptr_t)a, EVFILT_WRITE, EV_ADD, 0, 0, &marker_b), ==, 0);
    CHECK_INT(write(b, "x", 1), ==, 1);
    struct kevent event;
    CHECK(kq_wait_for(kq, (uintptr_t)a, EVFILT_READ, 0, &event, 5000));
    CHECK(event.udata == &marker_a);
    /* Deleting one leaves the other. */
    CHECK_INT(kq_change(kq, (uintptr_t)a, EVFILT_READ, EV_DELETE, 0, 0, NULL), ==, 0);
    struct kevent events[8];
    int n = kq_poll(kq, events, 8);
    CHECK(kq_find(events, n, (uintptr_t)a, EVFILT_READ) == NULL);
    const struct kevent *write_event = kq_find(events, n, (uintptr_t)a, EVFILT_WRITE);
    CHECK(write_event != NULL && write_event->udata == &marker_b);
    close(a);
    close(b);
    close(kq);
}

/* "Re-adding an existing event will modify the parameters of the original
 * event, and not result in a duplicate entry." */
EVQ_TEST(add_again_modifies_and_does_not_duplicate)
{
    int kq = kq_open(), a, b;
    REQUIRE(kq >= 0);
    REQUIRE(tcp_pair(&a, &b));
    CHECK_INT(kq_change(kq, (uintptr_t)a, EVFILT_READ, EV_ADD, 0, 0, &marker_a), ==, 0);
    CHECK_INT(kq_change(kq, (uintptr_t)a, EVFILT_READ, EV_ADD, 0, 0, &marker_b), ==, 0);
    CHECK_INT(write(b, "x", 1), ==, 1);
    struct kevent event;
    REQUIRE(kq_wait_for(kq, (uintptr_t)a, EVFILT_READ, 0, &event, 5000));
    struct kevent events[8];
    int n = kq_poll(kq, events, 8);
    CHECK_INT(n, ==, 1); /* level-triggered: the one knote again, not two */
    CHECK(n == 1 && events[0].udata == &marker_b);
    close(a);
    close(b);
    close(kq);
}

/* "udata: Opaque user-defined value passed through the kernel unchanged." */
EVQ_TEST(udata_round_trips_untouched)
{
    int kq = kq_open();
    REQUIRE(kq >= 0);
    void *values[] = {NULL, &marker_a, (void *)(uintptr_t)1, (void *)UINTPTR_MAX};
    for (uintptr_t id = 0; id < 4; id++) {
        CHECK_INT(kq_change(kq, id, EVFILT_USER, EV_ADD | EV_CLEAR, 0, 0, values[id]), ==, 0);
        CHECK_INT(kq_change(kq, id, EVFILT_USER, 0, NOTE_TRIGGER, 0, values[id]), ==, 0);
    }
    struct kevent events[8];
    int n = kq_poll(kq, events, 8);
    CHECK_INT(n, ==, 4);
    for (uintptr_t id = 0; id < 4; id++) {
        const struct kevent *event = kq_find(events, n, id, EVFILT_USER);
        CHECK(event != NULL && event->udata == values[id]);
    }
    close(kq);
}

/* EINVAL: "The specified time limit or filter is invalid." */
EVQ_TEST(unknown_filter_is_einval)
{
    int kq = kq_open();
    REQUIRE(kq >= 0);
    CHECK_INT(kq_change(kq, 1, (short)-100, EV_ADD, 0, 0, NULL), ==, EINVAL);
    CHECK_INT(kq_change(kq, 1, (short)100, EV_ADD, 0, 0, NULL), ==, EINVAL);
    close(kq);
}

/* EBADF: "The specified descriptor is invalid." */
EVQ_TEST(bad_descriptor_is_ebadf)
{
    int kq = kq_open(), fds[2];
    REQUIRE(kq >= 0);
    REQUIRE(nonblocking_pipe(fds));
    close(fds[1]);
    int closed = fds[1];
    CHECK_INT(kq_change(kq, (uintptr_t)closed, EVFILT_READ, EV_ADD, 0, 0, NULL), ==, EBADF);
    CHECK_INT(kq_change(kq, (uintptr_t)closed, EVFILT_WRITE, EV_ADD, 0, 0, NULL), ==, EBADF);
    CHECK_INT(kq_change(kq, (uintptr_t)-1, EVFILT_READ, EV_ADD, 0, 0, NULL), ==, EBADF);
    CHECK_INT(kq_change(kq, (uintptr_t)closed, EVFILT_READ, EV_DELETE, 0, 0, NULL), ==, EBADF);
    close(fds[0]);
    close(kq);
}

/* ENOENT: "The event could not be found to be modified or deleted." */
EVQ_TEST(missing_knote_is_enoent)
{
    int kq = kq_open(), a, b;
    REQUIRE(kq >= 0);
    REQUIRE(tcp_pair(&a, &b));
    CHECK_INT(kq_change(kq, (uintptr_t)a, EVFILT_READ, EV_DELETE, 0, 0, NULL), ==, ENOENT);
    CHECK_INT(kq_change(kq, (uintptr_t)a, EVFILT_READ, EV_ENABLE, 0, 0, NULL), ==, ENOENT);
    CHECK_INT(kq_change(kq, 7, EVFILT_USER, EV_DELETE, 0, 0, NULL), ==, ENOENT);
    CHECK_INT(kq_change(kq, 7, EVFILT_TIMER, EV_DELETE, 0, 0, NULL), ==, ENOENT);
    /* Deleted once, gone. */
    CHECK_INT(kq_change(kq, (uintptr_t)a, EVFILT_READ, EV_ADD, 0, 0, NULL), ==, 0);
    CHECK_INT(kq_change(kq, (uintptr_t)a, EVFILT_READ, EV_DELETE, 0, 0, NULL), ==, 0);
    CHECK_INT(kq_change(kq, (uintptr_t)a, EVFILT_READ, EV_DELETE, 0, 0, NULL), ==, ENOENT);
    close(a);
    close(b);
    close(kq);
}

/* EBADF for the kqueue itself: -1, a descriptor that is not a kqueue, a
 * kqueue that was closed. */
EVQ_TEST(bad_kqueue_descriptor_is_ebadf)
{
    int kq = kq_open(), fds[2];
    REQUIRE(kq >= 0);
    REQUIRE(nonblocking_pipe(fds));
    struct kevent events[1];
    struct timespec zero = {0, 0};
    errno = 0;
    CHECK_INT(kevent(-1, NULL, 0, events, 1, &zero), ==, -1);
    CHECK_INT(errno, ==, EBADF);
    errno = 0;
    CHECK_INT(kevent(fds[0], NULL, 0, events, 1, &zero), ==, -1);
    CHECK_INT(errno, ==, EBADF);
    close(kq);
    errno = 0;
    CHECK_INT(kevent(kq, NULL, 0, events, 1, &zero), ==, -1);
    CHECK_INT(errno, ==, EBADF);
    close(fds[0]);
    close(fds[1]);
}

/* "If an error occurs while processing an element of the changelist and
 * there is enough room in the eventlist, then the event will be placed in the
 * eventlist with EV_ERROR set in flags and the system error in data." The
 * other changes are still applied, and kevent() returns with the entries
 * alone: FreeBSD's kqueue_kevent() does not go on to kqueue_scan() once it
 * has written one. An event pending before the call shows it: a kqueue that
 * went on to collect events would return it too. */
EVQ_TEST(failed_changes_become_error_entries_in_order)
{
    int kq = kq_open(), a, b;
    REQUIRE(kq >= 0);
    REQUIRE(tcp_pair(&a, &b));
    CHECK_INT(kq_change(kq, 5, EVFILT_USER, EV_ADD | EV_CLEAR, 0, 0, NULL), ==, 0);
    CHECK_INT(kq_change(kq, 5, EVFILT_USER, 0, NOTE_TRIGGER, 0, NULL), ==, 0);
    struct kevent changes[3], events[8];
    EV_SET(&changes[0], 11, (short)-100, EV_ADD, 0, 0, &marker_a);
    EV_SET(&changes[1], (uintptr_t)a, EVFILT_READ, EV_ADD, 0, 0, NULL);
    EV_SET(&changes[2], 12, EVFILT_USER, EV_DELETE, 0, 0, &marker_b);
    struct timespec long_wait = {20, 0};
    bool overran;
    int n = kq_kevent_bounded(kq, changes, 3, events, 8, &long_wait, 5000, &overran);
    CHECK(!overran); /* with an event pending, nothing to wait for */
    REQUIRE_INT(n, ==, 2);
    CHECK_UINT(events[0].ident, ==, 11);
    CHECK_INT(events[0].filter, ==, (short)-100);
    CHECK(events[0].flags & EV_ERROR);
    CHECK_INT(events[0].data, ==, EINVAL);
    CHECK(events[0].udata == &marker_a);
    CHECK_UINT(events[1].ident, ==, 12);
    CHECK_INT(events[1].filter, ==, EVFILT_USER);
    CHECK(events[1].flags & EV_ERROR);
    CHECK_INT(events[1].data, ==, ENOENT);
    CHECK(events[1].udata == &marker_b);
    /* The pending event waited for the next call. */
    n = kq_poll(kq, events, 8);
    CHECK(kq_find(events, n, 5, EVFILT_USER) != NULL);
    /* The change between them was applied. */
    CHECK_INT(write(b, "x", 1), ==, 1);
    struct kevent event;
    CHECK(kq_wait_for(kq, (uintptr_t)a, EVFILT_READ, 0, &event, 5000));
    close(a);
    close(b);
    close(kq);
}

/* "Otherwise, -1 will be returned, and errno will be set to indicate the
 * error condition." Changes before the failed one are applied. */
EVQ_TEST(failed_change_without_room_fails_the_call)
{
    int kq = kq_open();
    REQUIRE(kq >= 0);
    struct kevent changes[2];
    EV_SET(&changes[0], 1, EVFILT_USER, EV_ADD | EV_CLEAR, 0, 0, NULL);
    EV_SET(&changes[1], 2, EVFILT_USER, EV_DELETE, 0, 0, NULL);
    bool overran;
    errno = 0;
    CHECK_INT(kq_kevent_bounded(kq, changes, 2, NULL, 0, NULL, 5000, &overran), ==, -1);
    CHECK_INT(errno, ==, ENOENT);
    CHECK(!overran); /* no room for events: no wait, even with no timeout */
    /* The first change took effect: the knote exists. */
    CHECK_INT(kq_change(kq, 1, EVFILT_USER, 0, NOTE_TRIGGER, 0, NULL), ==, 0);
    struct kevent events[2];
    CHECK_INT(kq_poll(kq, events, 2), ==, 1);
    close(kq);
}

/* EV_RECEIPT: "When passed as input, it forces EV_ERROR to always be
 * returned. When a filter is successfully added the data field will be
 * zero." - and since entries were written, the call does not wait and does
 * not return pending events. */
EVQ_TEST(receipt_reports_each_change_and_does_not_wait)
{
    int kq = kq_open(), a, b;
    REQUIRE(kq >= 0);
    REQUIRE(tcp_pair(&a, &b));
    /* An event is pending before the call. */
    CHECK_INT(kq_change(kq, 5, EVFILT_USER, EV_ADD | EV_CLEAR, 0, 0, NULL), ==, 0);
    CHECK_INT(kq_change(kq, 5, EVFILT_USER, 0, NOTE_TRIGGER, 0, NULL), ==, 0);
    struct kevent changes[2], events[8];
    EV_SET(&changes[0], (uintptr_t)a, EVFILT_READ, EV_ADD | EV_RECEIPT, 0, 0, &marker_a);
    EV_SET(&changes[1], (uintptr_t)a, EVFILT_WRITE, EV_ADD | EV_RECEIPT, 0, 0, &marker_b);
    struct timespec long_wait = {20, 0};
    bool overran;
    int n = kq_kevent_bounded(kq, changes, 2, events, 8, &long_wait, 5000, &overran);
    CHECK(!overran); /* with an event pending, nothing to wait for */
    REQUIRE_INT(n, ==, 2);
    for (int i = 0; i < 2; i++) {
        CHECK_UINT(events[i].ident, ==, (uintptr_t)a);
        CHECK(events[i].flags & EV_ERROR);
        CHECK_INT(events[i].data, ==, 0);
    }
    CHECK_INT(events[0].filter, ==, EVFILT_READ);
    CHECK(events[0].udata == &marker_a);
    CHECK_INT(events[1].filter, ==, EVFILT_WRITE);
    CHECK(events[1].udata == &marker_b);
    /* The pending event waited for the next call. */
    n = kq_poll(kq, events, 8);
    CHECK(kq_find(events, n, 5, EVFILT_USER) != NULL);
    close(a);
    close(b);
    close(kq);
}

/* "When nevents is zero, kevent() will return immediately even if there is
 * a timeout specified unlike select(2)." The changes are applied. */
EVQ_TEST(zero_nevents_applies_changes_and_returns_at_once)
{
    int kq = kq_open();
    REQUIRE(kq >= 0);
    struct kevent change;
    EV_SET(&change, 3, EVFILT_USER, EV_ADD | EV_CLEAR, 0, 0, NULL);
    /* A kqueue that waited anyway would wait 20 s: the watchdog stops each
     * call after 3 s, and a call it had to stop has waited. */
    struct timespec long_wait = {20, 0};
    bool overran;
    CHECK_INT(kq_kevent_bounded(kq, &change, 1, NULL, 0, &long_wait, 3000, &overran), ==, 0);
    CHECK(!overran);
    CHECK_INT(kq_kevent_bounded(kq, NULL, 0, NULL, 0, &long_wait, 3000, &overran), ==, 0);
    CHECK(!overran);
    CHECK_INT(kq_change(kq, 3, EVFILT_USER, 0, NOTE_TRIGGER, 0, NULL), ==, 0);
    struct kevent events[2];
    CHECK_INT(kq_poll(kq, events, 2), ==, 1);
    close(kq);
}

/* "The same array may be used for the changelist and eventlist." */
EVQ_TEST(one_array_for_changes_and_events)
{
    int kq = kq_open();
    REQUIRE(kq >= 0);
    struct kevent list[3];
    EV_SET(&list[0], 21, EVFILT_USER, EV_DELETE, 0, 0, &marker_a);
    EV_SET(&list[1], 22, EVFILT_USER, EV_ADD | EV_RECEIPT, 0, 0, NULL);
    EV_SET(&list[2], 23, EVFILT_USER, EV_DELETE, 0, 0, &marker_b);
    bool overran; /* three entries fill the list: no wait, even with no timeout */
    REQUIRE_INT(kq_kevent_bounded(kq, list, 3, list, 3, NULL, 5000, &overran), ==, 3);
    CHECK(!overran);
    CHECK_UINT(list[0].ident, ==, 21);
    CHECK_INT(list[0].data, ==, ENOENT);
    CHECK(list[0].udata == &marker_a);
    CHECK_UINT(list[1].ident, ==, 22);
    CHECK_INT(list[1].data, ==, 0);
    CHECK_UINT(list[2].ident, ==, 23);
    CHECK_INT(list[2].data, ==, ENOENT);
    CHECK(list[2].udata == &marker_b);
    close(kq);
}

int main(int argc, char **argv)
{
    static const evq_test_case cases[] = {
        EVQ_CASE(knote_is_named_by_ident_and_filter),
        EVQ_CASE(add_again_modifies_and_does_not_duplicate),
        EVQ_CASE(udata_round_trips_untouched),
        EVQ_CASE(unknown_filter_is_einval),
        EVQ_CASE(bad_descriptor_is_ebadf),
        EVQ_CASE(missing_knote_is_enoent),
        EVQ_CASE(bad_kqueue_descriptor_is_ebadf),
        EVQ_CASE(failed_changes_become_error_entries_in_order),
        EVQ_CASE(failed_change_without_room_fails_the_call),
        EVQ_CASE(receipt_reports_each_change_and_does_not_wait),
        EVQ_CASE(zero_nevents_applies_changes_and_returns_at_once),
        EVQ_CASE(one_array_for_changes_and_events),
    };
    return evq_test_main(argc, argv, cases, EVQ_COUNT(cases));
}

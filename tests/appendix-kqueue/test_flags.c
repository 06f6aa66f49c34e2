/* test_flags.c - what EV_ONESHOT, EV_CLEAR, EV_DISPATCH, EV_DISABLE,
 * EV_ENABLE and EV_DELETE do to a knote after it has fired. */
#if defined(__APPLE__)
#define _DARWIN_C_SOURCE
#elif !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L
#endif
#include <errno.h>
#include <stdint.h>
#include <sys/socket.h>
#include <unistd.h>

#include "evq_test.h"
#include "evq_thread.h"
#include "kq_test.h"

/* Is (ident, filter) among the events pending right now? */
static bool pending(int kq, int fd, short filter)
{
    struct kevent events[8];
    return kq_find(events, kq_poll(kq, events, 8), (uintptr_t)fd, filter) != NULL;
}

/* Without EV_CLEAR a knote is level-triggered: "The filter is also run when
 * the user attempts to retrieve the kevent from the kqueue. If the filter
 * indicates that the condition that triggered the event no longer holds, the
 * kevent is removed from the kqueue and is not returned." */
EVQ_TEST(level_triggered_until_the_condition_ends)
{
    int kq = kq_open(), a, b;
    REQUIRE(kq >= 0);
    REQUIRE(tcp_pair(&a, &b));
    CHECK_INT(kq_change(kq, (uintptr_t)a, EVFILT_READ, EV_ADD, 0, 0, NULL), ==, 0);
    CHECK_INT(write(b, "abc", 3), ==, 3);
    struct kevent event;
    REQUIRE(kq_wait_for(kq, (uintptr_t)a, EVFILT_READ, 0, &event, 5000));
    CHECK(pending(kq, a, EVFILT_READ)); /* unread: returned again */
    CHECK(pending(kq, a, EVFILT_READ));
    CHECK_UINT(drain(a), ==, 3);
    CHECK(!pending(kq, a, EVFILT_READ)); /* read: no longer true, not returned */
    close(a);
    close(b);
    close(kq);
}

/* EV_CLEAR: "After the event is retrieved by the user, its state is reset.
 * This is useful for filters which report state transitions instead of the
 * current state." */
EVQ_TEST(clear_reports_changes_not_state)
{
    int kq = kq_open(), a, b;
    REQUIRE(kq >= 0);
    REQUIRE(tcp_pair(&a, &b));
    CHECK_INT(kq_change(kq, (uintptr_t)a, EVFILT_READ, EV_ADD | EV_CLEAR, 0, 0, NULL), ==, 0);
    CHECK_INT(write(b, "abc", 3), ==, 3);
    struct kevent event;
    REQUIRE(kq_wait_for(kq, (uintptr_t)a, EVFILT_READ, 0, &event, 5000));
    CHECK(event.flags & EV_CLEAR);
    CHECK(!pending(kq, a, EVFILT_READ)); /* unread, but nothing new */
    CHECK_INT(write(b, "de", 2), ==, 2);
    REQUIRE(kq_wait_for(kq, (uintptr_t)a, EVFILT_READ, 0, &event, 5000));
    CHECK_INT(event.data, ==, 5); /* all that is there, old and new */
    close(a);
    close(b);
    close(kq);
}

/* EV_ONESHOT: "Causes the event to return only the first occurrence of the
 * filter being triggered. After the user retrieves the event from the
 * kqueue, it is deleted." */
EVQ_TEST(oneshot_is_deleted_after_delivery)
{
    int kq = kq_open(), a, b;
    REQUIRE(kq >= 0);
    REQUIRE(tcp_pair(&a, &b));
    CHECK_INT(kq_change(kq, (uintptr_t)a, EVFILT_READ, EV_ADD | EV_ONESHOT, 0, 0, NULL), ==, 0);
    CHECK_INT(write(b, "abc", 3), ==, 3);
    struct kevent event;
    REQUIRE(kq_wait_for(kq, (uintptr_t)a, EVFILT_READ, 0, &event, 5000));
    CHECK(event.flags & EV_ONESHOT);
    CHECK(!pending(kq, a, EVFILT_READ));
    CHECK_INT(write(b, "d", 1), ==, 1);
    CHECK(!kq_wait_for(kq, (uintptr_t)a, EVFILT_READ, 0, &event, 100));
    CHECK_INT(kq_change(kq, (uintptr_t)a, EVFILT_READ, EV_DELETE, 0, 0, NULL), ==, ENOENT);
    /* Re-armed by a new EV_ADD, it sees what is waiting. */
    CHECK_INT(kq_change(kq, (uintptr_t)a, EVFILT_READ, EV_ADD | EV_ONESHOT, 0, 0, NULL), ==, 0);
    REQUIRE(kq_wait_for(kq, (uintptr_t)a, EVFILT_READ, 0, &event, 5000));
    CHECK_INT(event.data, ==, 4);
    close(a);
    close(b);
    close(kq);
}

/* EV_DISPATCH: "Disable the event source immediately after delivery of an
 * event." EV_ENABLE runs the filter again: the unread data fires at once. */
EVQ_TEST(dispatch_disables_until_enabled)
{
    int kq = kq_open(), a, b;
    REQUIRE(kq >= 0);
    REQUIRE(tcp_pair(&a, &b));
    CHECK_INT(kq_change(kq, (uintptr_t)a, EVFILT_READ, EV_ADD | EV_DISPATCH, 0, 0, NULL), ==, 0);
    CHECK_INT(write(b, "abc", 3), ==, 3);
    struct kevent event;
    REQUIRE(kq_wait_for(kq, (uintptr_t)a, EVFILT_READ, 0, &event, 5000));
    CHECK(!pending(kq, a, EVFILT_READ));
    CHECK_INT(write(b, "d", 1), ==, 1);
    CHECK(!kq_wait_for(kq, (uintptr_t)a, EVFILT_READ, 0, &event, 100));
    CHECK_INT(kq_change(kq, (uintptr_t)a, EVFILT_READ, EV_ENABLE, 0, 0, NULL), ==, 0);
    REQUIRE(kq_wait_for(kq, (uintptr_t)a, EVFILT_READ, 0, &event, 5000));
    CHECK_INT(event.data, ==, 4);
    CHECK(!pending(kq, a, EVFILT_READ)); /* disabled again */
    close(a);
    close(b);
    close(kq);
}

/* EV_DISABLE: "Disable the event so kevent() will not return it. The filter
 * itself is not disabled." EV_ENABLE: "Permit kevent() to return the event
 * if it is triggered." */
EVQ_TEST(disable_holds_back_and_enable_releases)
{
    int kq = kq_open(), a, b;
    REQUIRE(kq >= 0);
    REQUIRE(tcp_pair(&a, &b));
    CHECK_INT(kq_change(kq, (uintptr_t)a, EVFILT_READ, EV_ADD, 0, 0, NULL), ==, 0);
    CHECK_INT(kq_change(kq, (uintptr_t)a, EVFILT_READ, EV_DISABLE, 0, 0, NULL), ==, 0);
    CHECK_INT(write(b, "abc", 3), ==, 3);
    struct kevent event;
    CHECK(!kq_wait_for(kq, (uintptr_t)a, EVFILT_READ, 0, &event, 100));
    CHECK_INT(kq_change(kq, (uintptr_t)a, EVFILT_READ, EV_ENABLE, 0, 0, NULL), ==, 0);
    REQUIRE(kq_wait_for(kq, (uintptr_t)a, EVFILT_READ, 0, &event, 5000));
    CHECK_INT(event.data, ==, 3);
    close(a);
    close(b);
    close(kq);
}

/* "Adding an event automatically enables it, unless overridden by the
 * EV_DISABLE flag." */
EVQ_TEST(add_with_disable_starts_disabled)
{
    int kq = kq_open(), a, b;
    REQUIRE(kq >= 0);
    REQUIRE(tcp_pair(&a, &b));
    CHECK_INT(write(b, "abc", 3), ==, 3);
    CHECK_INT(kq_change(kq, (uintptr_t)a, EVFILT_READ, EV_ADD | EV_DISABLE, 0, 0, NULL), ==, 0);
    struct kevent event;
    CHECK(!kq_wait_for(kq, (uintptr_t)a, EVFILT_READ, 0, &event, 100));
    CHECK_INT(kq_change(kq, (uintptr_t)a, EVFILT_READ, EV_ENABLE, 0, 0, NULL), ==, 0);
    CHECK(kq_wait_for(kq, (uintptr_t)a, EVFILT_READ, 0, &event, 5000));
    close(a);
    close(b);
    close(kq);
}

/* "The filter is executed upon the initial registration of a kevent in order
 * to detect whether a preexisting condition is present." */
EVQ_TEST(add_sees_a_condition_already_true)
{
    int kq = kq_open(), a, b;
    REQUIRE(kq >= 0);
    REQUIRE(tcp_pair(&a, &b));
    CHECK_INT(write(b, "abc", 3), ==, 3);
    struct kevent event;
    /* Let the bytes arrive before the knote exists. */
    char peek[4];
    for (int i = 0; i < 500 && recv(a, peek, sizeof peek, MSG_PEEK) != 3; i++)
        evq_sleep_ms(1);
    CHECK_INT(kq_change(kq, (uintptr_t)a, EVFILT_READ, EV_ADD | EV_CLEAR, 0, 0, NULL), ==, 0);
    CHECK(kq_wait_for(kq, (uintptr_t)a, EVFILT_READ, 0, &event, 5000));
    CHECK_INT(event.data, ==, 3);
    close(a);
    close(b);
    close(kq);
}

/* EV_DELETE: "Removes the event from the kqueue." A pending event goes with
 * it. */
EVQ_TEST(delete_removes_a_pending_event)
{
    int kq = kq_open(), a, b;
    REQUIRE(kq >= 0);
    REQUIRE(tcp_pair(&a, &b));
    CHECK_INT(kq_change(kq, (uintptr_t)a, EVFILT_READ, EV_ADD, 0, 0, NULL), ==, 0);
    CHECK_INT(write(b, "abc", 3), ==, 3);
    struct kevent event;
    REQUIRE(kq_wait_for(kq, (uintptr_t)a, EVFILT_READ, 0, &event, 5000));
    CHECK_INT(kq_change(kq, (uintptr_t)a, EVFILT_READ, EV_DELETE, 0, 0, NULL), ==, 0);
    CHECK(!pending(kq, a, EVFILT_READ));
    CHECK_INT(write(b, "d", 1), ==, 1);
    CHECK(!kq_wait_for(kq, (uintptr_t)a, EVFILT_READ, 0, &event, 100));
    close(a);
    close(b);
    close(kq);
}

int main(int argc, char **argv)
{
    static const evq_test_case cases[] = {
        EVQ_CASE(level_triggered_until_the_condition_ends),
        EVQ_CASE(clear_reports_changes_not_state),
        EVQ_CASE(oneshot_is_deleted_after_delivery),
        EVQ_CASE(dispatch_disables_until_enabled),
        EVQ_CASE(disable_holds_back_and_enable_releases),
        EVQ_CASE(add_with_disable_starts_disabled),
        EVQ_CASE(add_sees_a_condition_already_true),
        EVQ_CASE(delete_removes_a_pending_event),
    };
    return evq_test_main(argc, argv, cases, EVQ_COUNT(cases));
}

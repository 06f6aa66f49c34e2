/* test_wait.c - how kevent() waits: the timeout, its absence, a zero
 * timeout, signals, and the size of the eventlist. */
#if defined(__APPLE__)
#define _DARWIN_C_SOURCE
#elif !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L
#endif
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "evq_test.h"
#include "evq_thread.h"
#include "kq_test.h"

/* "To effect a poll, the timeout argument should be non-NULL, pointing to a
 * zero-valued timespec structure." */
EVQ_TEST(zero_timeout_polls)
{
    int kq = kq_open(), a, b;
    REQUIRE(kq >= 0);
    REQUIRE(tcp_pair(&a, &b));
    CHECK_INT(kq_change(kq, (uintptr_t)a, EVFILT_READ, EV_ADD, 0, 0, NULL), ==, 0);
    struct kevent events[4];
    CHECK_INT(kq_poll(kq, events, 4), ==, 0);
    CHECK_INT(write(b, "x", 1), ==, 1);
    struct kevent event;
    REQUIRE(kq_wait_for(kq, (uintptr_t)a, EVFILT_READ, 0, &event, 5000));
    /* Now pending: a poll returns it without waiting. */
    CHECK_INT(kq_poll(kq, events, 4), ==, 1);
    close(a);
    close(b);
    close(kq);
}

/* "If timeout is a non-NULL pointer, it specifies a maximum interval to wait
 * for an event ... If the time limit expires, then kevent() returns 0." It
 * does not return early. */
EVQ_TEST(timeout_expires_with_zero)
{
    int kq = kq_open();
    REQUIRE(kq >= 0);
    CHECK_INT(kq_change(kq, 1, EVFILT_USER, EV_ADD | EV_CLEAR, 0, 0, NULL), ==, 0);
    struct kevent events[4];
    int64_t start = monotonic_ms();
    CHECK_INT(kq_wait(kq, events, 4, 50), ==, 0);
    /* A lower bound only (a busy machine may wait longer); 1 ms of slack
     * for the millisecond clock. */
    CHECK_INT(monotonic_ms() - start, >=, 49);
    close(kq);
}

struct trigger_later {
    int kq;
    int delay_ms;
};

static void trigger_after_delay(void *arg)
{
    struct trigger_later *later = arg;
    evq_sleep_ms((uint32_t)later->delay_ms);
    CHECK_INT(kq_change(later->kq, 9, EVFILT_USER, 0, NOTE_TRIGGER, 0, NULL), ==, 0);
}

/* "If timeout is a NULL pointer, kevent() waits indefinitely" - until an
 * event, here one triggered by another thread. A kqueue that missed the
 * trigger would wait for ever: the watchdog ends the wait 10 s after it. */
EVQ_TEST(null_timeout_waits_for_an_event)
{
    int kq = kq_open();
    REQUIRE(kq >= 0);
    CHECK_INT(kq_change(kq, 9, EVFILT_USER, EV_ADD | EV_CLEAR, 0, 0, NULL), ==, 0);
    struct trigger_later later = {kq, 30};
    evq_thread thread;
    REQUIRE_OK(evq_thread_start(&thread, trigger_after_delay, &later));
    struct kevent events[4];
    bool overran;
    int n = kq_kevent_bounded(kq, NULL, 0, events, 4, NULL, 10000, &overran);
    if (overran)
        evq_test_fail(__FILE__, __LINE__, "kevent() was still waiting 10 s after the trigger");
    CHECK_INT(n, ==, 1);
    CHECK(n == 1 && events[0].ident == 9 && events[0].filter == EVFILT_USER);
    evq_thread_join(&thread);
    close(kq);
}

/* EINVAL: "The specified time limit or filter is invalid." FreeBSD's
 * kqueue_scan() checks the timespec before it waits: a negative tv_sec or
 * tv_nsec, or a tv_nsec of a second or more, fails at once. Taken as a
 * duration instead, a negative one can mean "for ever": each call runs
 * under a watchdog that ends it after 2 s. */
static void check_invalid_timeout(int kq, struct timespec timeout, const char *what)
{
    struct kevent events[1];
    bool overran;
    errno = 0;
    int n = kq_kevent_bounded(kq, NULL, 0, events, 1, &timeout, 2000, &overran);
    int error = errno;
    if (overran)
        evq_test_fail(__FILE__, __LINE__, "%s: kevent() waited (ended by the watchdog after 2 s)",
                      what);
    else if (n != -1 || error != EINVAL)
        evq_test_fail(__FILE__, __LINE__,
                      "%s: kevent() returned %d, errno %d (%s); want -1, EINVAL", what, n, error,
                      strerror(error));
}

EVQ_TEST(invalid_timeout_is_einval)
{
    int kq = kq_open();
    REQUIRE(kq >= 0);
    check_invalid_timeout(kq, (struct timespec){0, 1000000000}, "tv_nsec of one second");
    check_invalid_timeout(kq, (struct timespec){0, -1}, "negative tv_nsec");
    check_invalid_timeout(kq, (struct timespec){-1, 0}, "negative tv_sec");
    close(kq);
}

static volatile sig_atomic_t signals_caught;

static void on_signal(int signal_number)
{
    (void)signal_number;
    signals_caught++;
}

struct interrupter {
    pthread_t target;
    atomic_bool done;
};

/* Signal the waiting thread until it has come back: the first signal may
 * arrive before it is inside kevent(). At most 10 s. */
static void interrupt_until_done(void *arg)
{
    struct interrupter *interrupter = arg;
    for (int i = 0; i < 1000 && !atomic_load(&interrupter->done); i++) {
        pthread_kill(interrupter->target, SIGUSR1);
        evq_sleep_ms(10);
    }
}

/* EINTR: "A signal was delivered before the timeout expired and before any
 * events were placed on the kqueue for return." kevent() is not restarted,
 * and "all changes in the changelist have been applied." */
EVQ_TEST(signal_interrupts_with_eintr)
{
    int kq = kq_open();
    REQUIRE(kq >= 0);
    struct sigaction action, previous;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_signal;
    sigemptyset(&action.sa_mask);
    action.sa_flags = 0; /* no SA_RESTART */
    REQUIRE_INT(sigaction(SIGUSR1, &action, &previous), ==, 0);
    struct interrupter interrupter = {.target = pthread_self(), .done = false};
    evq_thread thread;
    REQUIRE_OK(evq_thread_start(&thread, interrupt_until_done, &interrupter));
    struct kevent change, events[1];
    EV_SET(&change, 4, EVFILT_USER, EV_ADD | EV_CLEAR, 0, 0, NULL);
    struct timespec long_wait = {20, 0};
    errno = 0;
    int n = kevent(kq, &change, 1, events, 1, &long_wait);
    int wait_errno = errno;
    atomic_store(&interrupter.done, true);
    evq_thread_join(&thread);
    sigaction(SIGUSR1, &previous, NULL);
    CHECK_INT(n, ==, -1);
    CHECK_INT(wait_errno, ==, EINTR);
    CHECK_INT(signals_caught, >, 0);
    /* The change was applied before the wait. */
    CHECK_INT(kq_change(kq, 4, EVFILT_USER, 0, NOTE_TRIGGER, 0, NULL), ==, 0);
    CHECK_INT(kq_poll(kq, events, 1), ==, 1);
    close(kq);
}

/* "kevent() returns the number of events placed in the eventlist, up to the
 * value given by nevents"; the rest stay pending for the next call. */
EVQ_TEST(eventlist_size_is_respected)
{
    int kq = kq_open();
    REQUIRE(kq >= 0);
    for (uintptr_t id = 1; id <= 5; id++) {
        CHECK_INT(kq_change(kq, id, EVFILT_USER, EV_ADD | EV_CLEAR, 0, 0, NULL), ==, 0);
        CHECK_INT(kq_change(kq, id, EVFILT_USER, 0, NOTE_TRIGGER, 0, NULL), ==, 0);
    }
    struct kevent events[8];
    bool seen[6] = {false};
    int counts[4];
    for (int call = 0; call < 4; call++) {
        counts[call] = kq_poll(kq, events, 2);
        for (int i = 0; i < counts[call]; i++) {
            if (events[i].ident >= 1 && events[i].ident <= 5) {
                CHECK(!seen[events[i].ident]); /* each once */
                seen[events[i].ident] = true;
            }
        }
    }
    CHECK_INT(counts[0], ==, 2);
    CHECK_INT(counts[1], ==, 2);
    CHECK_INT(counts[2], ==, 1);
    CHECK_INT(counts[3], ==, 0);
    for (int id = 1; id <= 5; id++)
        CHECK(seen[id]);
    close(kq);
}

int main(int argc, char **argv)
{
    static const evq_test_case cases[] = {
        EVQ_CASE(zero_timeout_polls),
        EVQ_CASE(timeout_expires_with_zero),
        EVQ_CASE(null_timeout_waits_for_an_event),
        EVQ_CASE(invalid_timeout_is_einval),
        EVQ_CASE(signal_interrupts_with_eintr),
        EVQ_CASE(eventlist_size_is_respected),
    };
    return evq_test_main(argc, argv, cases, EVQ_COUNT(cases));
}

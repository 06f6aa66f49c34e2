/* test_threads.c - kevent() on one kqueue from several threads at once, as
 * BSD allows: waiters, a thread that triggers, threads that add and delete
 * knotes the waiters may be delivering. Run under TSan by the tsan preset. */
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

enum { WAITERS = 4, CHURNERS = 2, PAIRS_PER_CHURNER = 8, TRIGGERS = 200 };

/* What a churner's knote carries in udata: the waiter checks that an event
 * names the descriptor its udata says. */
struct watched {
    int fd;
    int peer;
};

struct shared {
    int kq;
    atomic_bool stop;
    atomic_int triggers_seen;
    atomic_int reads_seen;
    struct watched pairs[CHURNERS][PAIRS_PER_CHURNER];
};

struct churner {
    struct shared *shared;
    int index;
};

static void waiter(void *arg)
{
    struct shared *shared = arg;
    struct kevent events[4];
    while (!atomic_load(&shared->stop)) {
        int n = kq_wait(shared->kq, events, 4, 20);
        CHECK_INT(n, >=, 0);
        for (int i = 0; i < n; i++) {
            if (events[i].filter == EVFILT_USER) {
                CHECK_UINT(events[i].ident, ==, 1);
                atomic_fetch_add(&shared->triggers_seen, 1);
            } else {
                const struct watched *watched = events[i].udata;
                CHECK_INT(events[i].filter, ==, EVFILT_READ);
                CHECK(watched != NULL && (uintptr_t)watched->fd == events[i].ident);
                atomic_fetch_add(&shared->reads_seen, 1);
            }
        }
    }
}

/* Add and delete one-shot read knotes on sockets that always have a byte to
 * read, so they fire while waiters are collecting. */
static void churn(void *arg)
{
    struct churner *churner = arg;
    struct shared *shared = churner->shared;
    for (int round = 0; !atomic_load(&shared->stop) && round < 100000; round++) {
        struct watched *watched = &shared->pairs[churner->index][round % PAIRS_PER_CHURNER];
        CHECK_INT(kq_change(shared->kq, (uintptr_t)watched->fd, EVFILT_READ, EV_ADD | EV_ONESHOT, 0,
                            0, watched),
                  ==, 0);
        /* Deleted here, or by its delivery a moment ago: both are fine. */
        int error =
            kq_change(shared->kq, (uintptr_t)watched->fd, EVFILT_READ, EV_DELETE, 0, 0, NULL);
        CHECK(error == 0 || error == ENOENT);
    }
}

/* Every trigger of an EV_CLEAR user event is delivered exactly once, to one
 * of the waiting threads, while other threads change the same kqueue. */
EVQ_TEST(concurrent_waiters_changes_and_triggers)
{
    static struct shared shared;
    shared.kq = kq_open();
    REQUIRE(shared.kq >= 0);
    atomic_init(&shared.stop, false);
    atomic_init(&shared.triggers_seen, 0);
    atomic_init(&shared.reads_seen, 0);
    for (int c = 0; c < CHURNERS; c++) {
        for (int p = 0; p < PAIRS_PER_CHURNER; p++) {
            REQUIRE(tcp_pair(&shared.pairs[c][p].fd, &shared.pairs[c][p].peer));
            REQUIRE_INT(write(shared.pairs[c][p].peer, "x", 1), ==, 1);
        }
    }
    CHECK_INT(kq_change(shared.kq, 1, EVFILT_USER, EV_ADD | EV_CLEAR, 0, 0, NULL), ==, 0);
    evq_thread waiters[WAITERS], churners[CHURNERS];
    struct churner churner_args[CHURNERS];
    for (int i = 0; i < WAITERS; i++)
        REQUIRE_OK(evq_thread_start(&waiters[i], waiter, &shared));
    for (int i = 0; i < CHURNERS; i++) {
        churner_args[i] = (struct churner){&shared, i};
        REQUIRE_OK(evq_thread_start(&churners[i], churn, &churner_args[i]));
    }
    int delivered = 0;
    for (int i = 0; i < TRIGGERS; i++) {
        CHECK_INT(kq_change(shared.kq, 1, EVFILT_USER, 0, NOTE_TRIGGER, 0, NULL), ==, 0);
        /* Wait (at most 5 s) until one waiter has it, before the next. */
        int64_t deadline = monotonic_ms() + 5000;
        while (atomic_load(&shared.triggers_seen) <= i && monotonic_ms() < deadline)
            evq_thread_yield();
        delivered = atomic_load(&shared.triggers_seen);
        if (delivered != i + 1)
            break;
    }
    CHECK_INT(delivered, ==, TRIGGERS);
    evq_sleep_ms(50); /* a duplicate delivery would show up by now */
    atomic_store(&shared.stop, true);
    for (int i = 0; i < CHURNERS; i++)
        evq_thread_join(&churners[i]);
    for (int i = 0; i < WAITERS; i++)
        evq_thread_join(&waiters[i]);
    CHECK_INT(atomic_load(&shared.triggers_seen), ==, TRIGGERS);
    evq_test_note("%d one-shot read events delivered while churning",
                  atomic_load(&shared.reads_seen));
    for (int c = 0; c < CHURNERS; c++) {
        for (int p = 0; p < PAIRS_PER_CHURNER; p++) {
            close(shared.pairs[c][p].fd);
            close(shared.pairs[c][p].peer);
        }
    }
    close(shared.kq);
}

/* Threads asleep in kevent() with no timeout: only a wakeup from the
 * trigger itself can bring each of them back, so a lost wakeup shows up as a
 * trigger nobody collects. A level-triggered user event (no EV_CLEAR) tells
 * them all to stop. Each sleeper runs under a watchdog: one still asleep 20 s
 * on (the whole case takes well under a second) is interrupted and fails. */
enum { STOP_IDENT = 2, SLEEPER_BOUND_MS = 20000 };

struct sleeper_shared {
    int kq;
    atomic_int triggers_seen;
};

static void sleep_until_stopped(struct sleeper_shared *shared, kq_watchdog *watchdog)
{
    struct kevent events[4];
    for (;;) {
        int n = kevent(shared->kq, NULL, 0, events, 4, NULL);
        if (n < 0 && errno == EINTR) {
            if (!kq_watchdog_fired(watchdog))
                continue;
            evq_test_fail(__FILE__, __LINE__, "a sleeper was still in kevent() after %d ms",
                          SLEEPER_BOUND_MS);
            return;
        }
        CHECK_INT(n, >, 0);
        if (n <= 0)
            return;
        for (int i = 0; i < n; i++) {
            if (events[i].ident == STOP_IDENT)
                return;
            atomic_fetch_add(&shared->triggers_seen, 1);
        }
    }
}

static void sleeper(void *arg)
{
    kq_watchdog watchdog;
    if (!kq_watchdog_start(&watchdog, SLEEPER_BOUND_MS))
        return;
    sleep_until_stopped(arg, &watchdog);
    kq_watchdog_stop(&watchdog);
}

EVQ_TEST(sleeping_waiters_wake_for_every_trigger)
{
    static struct sleeper_shared shared;
    shared.kq = kq_open();
    REQUIRE(shared.kq >= 0);
    atomic_init(&shared.triggers_seen, 0);
    CHECK_INT(kq_change(shared.kq, 1, EVFILT_USER, EV_ADD | EV_CLEAR, 0, 0, NULL), ==, 0);
    CHECK_INT(kq_change(shared.kq, STOP_IDENT, EVFILT_USER, EV_ADD, 0, 0, NULL), ==, 0);
    evq_thread sleepers[WAITERS];
    for (int i = 0; i < WAITERS; i++)
        REQUIRE_OK(evq_thread_start(&sleepers[i], sleeper, &shared));
    int delivered = 0;
    for (int i = 0; i < TRIGGERS; i++) {
        CHECK_INT(kq_change(shared.kq, 1, EVFILT_USER, 0, NOTE_TRIGGER, 0, NULL), ==, 0);
        int64_t deadline = monotonic_ms() + 5000;
        while (atomic_load(&shared.triggers_seen) <= i && monotonic_ms() < deadline)
            evq_thread_yield();
        delivered = atomic_load(&shared.triggers_seen);
        if (delivered != i + 1)
            break;
    }
    CHECK_INT(delivered, ==, TRIGGERS);
    CHECK_INT(kq_change(shared.kq, STOP_IDENT, EVFILT_USER, 0, NOTE_TRIGGER, 0, NULL), ==, 0);
    for (int i = 0; i < WAITERS; i++)
        evq_thread_join(&sleepers[i]);
    CHECK_INT(atomic_load(&shared.triggers_seen), ==, TRIGGERS);
    close(shared.kq);
}

struct closer {
    int kq;
    atomic_bool done;
};

static void wait_on_kqueue(void *arg)
{
    struct closer *closer = arg;
    struct kevent events[4];
    for (int i = 0; i < 50 && !atomic_load(&closer->done); i++) {
        /* Succeeds, or fails with EBADF once the kqueue is closed; never
         * anything else, never a crash. */
        int n = kq_wait(closer->kq, events, 4, 10);
        if (n < 0) {
            CHECK_INT(errno, ==, EBADF);
            break;
        }
    }
}

#if defined(__SANITIZE_THREAD__)
#define KQ_TEST_UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define KQ_TEST_UNDER_TSAN 1
#endif
#endif

/* Closing a kqueue while another thread uses it is the caller's race, but
 * it must not crash or corrupt the next kqueue. (TSan reports a close() of a
 * descriptor that another thread is using as a data race, which is this
 * case's very point: it runs in the other presets.) */
EVQ_TEST(close_while_another_thread_waits)
{
#ifdef KQ_TEST_UNDER_TSAN
    evq_test_note("skipped under TSan: close() races kevent() on purpose");
    return;
#endif
    struct closer closer;
    closer.kq = kq_open();
    REQUIRE(closer.kq >= 0);
    atomic_init(&closer.done, false);
    CHECK_INT(kq_change(closer.kq, 1, EVFILT_TIMER, EV_ADD, 0, 1, NULL), ==, 0);
    evq_thread thread;
    REQUIRE_OK(evq_thread_start(&thread, wait_on_kqueue, &closer));
    evq_sleep_ms(20);
    close(closer.kq);
    atomic_store(&closer.done, true);
    evq_thread_join(&thread);
    int kq = kq_open();
    REQUIRE(kq >= 0);
    struct kevent events[4];
    CHECK_INT(kq_poll(kq, events, 4), ==, 0);
    close(kq);
}

int main(int argc, char **argv)
{
    static const evq_test_case cases[] = {
        EVQ_CASE(concurrent_waiters_changes_and_triggers),
        EVQ_CASE(sleeping_waiters_wake_for_every_trigger),
        EVQ_CASE(close_while_another_thread_waits),
    };
    return evq_test_main(argc, argv, cases, EVQ_COUNT(cases));
}

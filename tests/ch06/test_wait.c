/* test_wait.c - chapter 3: the wait itself - timeouts after interruptions,
 * wake-ups from other threads, and shutting a queue down under a waiter.
 *
 * The interruption cases inject EINTR through the wait hook and read time
 * from a fake clock, so they assert the exact timeouts the loop passes to
 * the kernel without sleeping. A second case sends real signals (POSIX) or
 * queues real APCs (Windows) to a waiting thread.
 */
#ifndef _WIN32
#define _POSIX_C_SOURCE 200809L /* sigaction, pthread_kill */
#endif
#include "ch06_test.h"

#ifdef _WIN32
#include <windows.h>
#else
#include <pthread.h>
#include <signal.h>
#endif

/* ---- scripted interruptions ---- */

struct step {
    uint64_t advance_ns; /* time that passes during this kernel wait */
    int result;          /* EVQ_EINTR: it was interrupted */
    bool wake;           /* a wake-up arrives during it */
};

struct script {
    evq_poll *poll;
    evq_fake_clock clock;
    const struct step *steps;
    int step_count;
    int calls;
    int seen[8]; /* the timeout the loop passed to each kernel wait */
};

static int play_step(void *context, int *timeout_ms)
{
    struct script *s = context;
    int i = s->calls++;
    if (i < 8)
        s->seen[i] = *timeout_ms;
    *timeout_ms = 0; /* the kernel only looks: the test never sleeps */
    if (i >= s->step_count) {
        /* Off the script (a broken loop): end the wait, and let the count of
         * calls show it. */
        evq_fake_clock_advance_ns(&s->clock, 3600 * EVQ_NS_PER_S);
        evq_poll_wake(s->poll);
        return 0;
    }
    evq_fake_clock_advance_ns(&s->clock, s->steps[i].advance_ns);
    if (s->steps[i].wake)
        evq_poll_wake(s->poll);
    return s->steps[i].result;
}

static void run_script(int timeout_ms, const struct step *steps, int step_count,
                       const int *expected, int expected_count)
{
    struct script s = {0};
    s.steps = steps;
    s.step_count = step_count;
    REQUIRE_OK(evq_poll_open(&s.poll));
    evq_fake_clock_set_ns(&s.clock, 5 * EVQ_NS_PER_S);
    evq_poll_set_clock(s.poll, evq_fake_clock_as_clock(&s.clock));
    evq_poll_set_wait_hook(s.poll, play_step, &s);
    evq_event events[4];
    size_t n = 99;
    CHECK_OK(evq_poll_wait(s.poll, events, 4, timeout_ms, &n));
    CHECK_UINT(n, ==, 0);
    CHECK_INT(s.calls, ==, expected_count);
    for (int i = 0; i < expected_count && i < s.calls && i < 8; i++)
        CHECK_INT(s.seen[i], ==, expected[i]);
    evq_poll_close(s.poll);
}

#define MS(x) ((uint64_t)(x)*EVQ_NS_PER_MS)

/* ANCHOR: eintr_test */
/* Interrupted after 300 ms, then after 200 more: the retries wait 700 and
 * 500 ms, what is left of the 1000 - not 1000 again each time (with signals
 * arriving often enough, that wait would never end). */
EVQ_TEST(interrupted_wait_retries_with_the_time_left)
{
    static const struct step steps[] = {
        {MS(300), EVQ_EINTR, false},
        {MS(200), EVQ_EINTR, false},
        {MS(500), 0, false}, /* times out */
    };
    static const int expected[] = {1000, 700, 500};
    run_script(1000, steps, 3, expected, 3);
}
/* ANCHOR_END: eintr_test */

/* Interrupted past the deadline: one more look (timeout 0) for events that
 * were already there, then the wait returns. */
EVQ_TEST(interrupted_past_the_deadline_looks_once_more)
{
    static const struct step steps[] = {{MS(150), EVQ_EINTR, false}, {0, 0, false}};
    static const int expected[] = {100, 0};
    run_script(100, steps, 2, expected, 2);
}

/* No timeout stays no timeout after an interruption. */
EVQ_TEST(interrupted_wait_without_timeout_stays_without)
{
    static const struct step steps[] = {{MS(300), EVQ_EINTR, false}, {MS(10), 0, true}};
    static const int expected[] = {-1, -1};
    run_script(-1, steps, 2, expected, 2);
}

/* A kernel wait that comes back early with nothing for the caller (on IOCP,
 * a completion of a stream that is not armed) sleeps again for the rest. */
EVQ_TEST(early_return_with_nothing_waits_for_the_rest)
{
    static const struct step steps[] = {{MS(400), 0, false}, {MS(600), 0, false}};
    static const int expected[] = {1000, 600};
    run_script(1000, steps, 2, expected, 2);
}

/* What is left is rounded UP: half a millisecond is 1 ms, not 0 (a 0 ms
 * wait returns at once, and the loop would spin until the deadline). */
EVQ_TEST(the_time_left_is_rounded_up)
{
    static const struct step steps[] = {{MS(999) + EVQ_NS_PER_MS / 2, EVQ_EINTR, false},
                                        {EVQ_NS_PER_MS, 0, false}};
    static const int expected[] = {1000, 1};
    run_script(1000, steps, 2, expected, 2);
}

/* A real kernel error is returned, not retried. */
static int fail_with_ebadf(void *context, int *timeout_ms)
{
    (void)context;
    (void)timeout_ms;
    return EVQ_EBADF;
}

EVQ_TEST(a_kernel_error_is_returned)
{
    evq_poll *poll;
    REQUIRE_OK(evq_poll_open(&poll));
    evq_poll_set_wait_hook(poll, fail_with_ebadf, NULL);
    evq_event events[2];
    size_t n = 5;
    CHECK_ERR(evq_poll_wait(poll, events, 2, 1000, &n), EVQ_EBADF);
    CHECK_UINT(n, ==, 0);
    evq_poll_close(poll);
}

/* A 0 ms wait with nothing ready returns at once, and the real one - no hook
 * - reaches the kernel and back. */
EVQ_TEST(zero_timeout_only_looks)
{
    evq_poll *poll;
    REQUIRE_OK(evq_poll_open(&poll));
    evq_event events[2];
    size_t n = 5;
    CHECK_OK(evq_poll_wait(poll, events, 2, 0, &n));
    CHECK_UINT(n, ==, 0);
    CHECK_OK(evq_poll_wait(poll, events, 2, 1, &n)); /* and a real 1 ms timeout */
    CHECK_UINT(n, ==, 0);
    evq_poll_close(poll);
}

/* ---- a waiting thread ---- */

struct waiter {
    evq_poll *poll;
    int timeout_ms;
    evq_mutex lock;
    evq_cond changed;
    bool in_wait; /* the hook ran: the thread is in evq_poll_wait */
    bool done;
    uint32_t linger_ms; /* the hook's first call sleeps this long after saying "in_wait" */
    int kernel_calls;   /* under `lock`: a second thread's wait calls the hook too */
    int rc;
    size_t n;
    uint64_t elapsed_ns;
};

static int note_in_wait(void *context, int *timeout_ms)
{
    (void)timeout_ms;
    struct waiter *w = context;
    evq_mutex_lock(&w->lock);
    int calls = ++w->kernel_calls;
    w->in_wait = true;
    evq_cond_broadcast(&w->changed);
    evq_mutex_unlock(&w->lock);
    if (calls == 1 && w->linger_ms > 0)
        evq_sleep_ms(w->linger_ms);
    return 0;
}

static void waiter_run(void *arg)
{
    struct waiter *w = arg;
    evq_event events[4];
    uint64_t start = evq_clock_now_ns();
    w->rc = evq_poll_wait(w->poll, events, 4, w->timeout_ms, &w->n);
    w->elapsed_ns = evq_clock_now_ns() - start;
    evq_mutex_lock(&w->lock);
    w->done = true;
    evq_cond_broadcast(&w->changed);
    evq_mutex_unlock(&w->lock);
}

static int waiter_open(struct waiter *w, int timeout_ms)
{
    memset(w, 0, sizeof *w);
    w->timeout_ms = timeout_ms;
    int rc = evq_poll_open(&w->poll);
    if (rc == 0)
        rc = evq_mutex_init(&w->lock);
    if (rc == 0)
        rc = evq_cond_init(&w->changed);
    if (rc == 0)
        evq_poll_set_wait_hook(w->poll, note_in_wait, w);
    return rc;
}

static int waiter_start(struct waiter *w, evq_thread *thread, int timeout_ms)
{
    int rc = waiter_open(w, timeout_ms);
    return rc != 0 ? rc : evq_thread_start(thread, waiter_run, w);
}

/* Wait (at most limit_ms) until the flag is set; returns its value. */
static bool waiter_until(struct waiter *w, const bool *flag, uint32_t limit_ms)
{
    uint64_t give_up = evq_clock_now_ns() + evq_ms_to_ns(limit_ms);
    evq_mutex_lock(&w->lock);
    while (!*flag && evq_clock_now_ns() < give_up)
        evq_cond_timedwait(&w->changed, &w->lock, 50);
    bool value = *flag;
    evq_mutex_unlock(&w->lock);
    return value;
}

static void waiter_finish(struct waiter *w, evq_thread *thread, bool close_poll)
{
    if (!waiter_until(w, &w->done, 0))
        evq_poll_shutdown(w->poll); /* never leave a thread blocked behind us */
    evq_thread_join(thread);
    if (close_poll)
        evq_poll_close(w->poll);
    evq_cond_destroy(&w->changed);
    evq_mutex_destroy(&w->lock);
}

/* ANCHOR: wake_test */
EVQ_TEST(wake_from_another_thread_ends_a_wait_without_timeout)
{
    struct waiter w;
    evq_thread thread;
    REQUIRE_OK(waiter_start(&w, &thread, -1));
    REQUIRE(waiter_until(&w, &w.in_wait, 5000));
    CHECK_OK(evq_poll_wake(w.poll));
    CHECK(waiter_until(&w, &w.done, 5000));
    waiter_finish(&w, &thread, true);
    CHECK_OK(w.rc);
    CHECK_UINT(w.n, ==, 0); /* a wake-up is not an event */
}
/* ANCHOR_END: wake_test */

/* ANCHOR: close_test */
/* evq_poll_close while another thread is in evq_poll_wait, with a stream
 * registered. The waiter lingers 100 ms between entering the wait and
 * reaching the kernel, so close runs while it is still inside: close must
 * wake it and wait for it to leave before freeing anything (a close that
 * freed at once would have the waiter read freed memory - ASan and TSan
 * report it). The waiter returns EVQ_ECLOSED; the stream outlives the queue
 * until it is closed. */
EVQ_TEST(close_while_another_thread_waits)
{
    struct waiter w;
    evq_thread thread;
    REQUIRE_OK(waiter_open(&w, -1));
    w.linger_ms = 100;
    evq_tcp *stream;
    evq_socket peer;
    REQUIRE_OK(ch06_pair(w.poll, &stream, &peer)); /* before the wait: one thread at a time */
    /* Chapter 4: the pair's connect ended in a wait of its own, which went
     * through the hook: start the count anew for the waiter's. */
    w.kernel_calls = 0;
    w.in_wait = false;
    REQUIRE_OK(evq_register(w.poll, stream, 1, EVQ_READABLE));
    REQUIRE_OK(evq_thread_start(&thread, waiter_run, &w));
    REQUIRE(waiter_until(&w, &w.in_wait, 5000));
    evq_poll_close(w.poll); /* returns only once the waiter is out */
    evq_thread_join(&thread);
    CHECK_ERR(w.rc, EVQ_ECLOSED);
    CHECK_UINT(w.n, ==, 0);
    char buf[4];
    size_t n;
    CHECK_ERR(evq_tcp_read(stream, buf, sizeof buf, &n), EVQ_ECLOSED);
    evq_tcp_close(stream);
    evq_socket_close(peer);
    evq_cond_destroy(&w.changed);
    evq_mutex_destroy(&w.lock);
}
/* ANCHOR_END: close_test */

EVQ_TEST(shutdown_from_another_thread_ends_the_wait)
{
    struct waiter w;
    evq_thread thread;
    REQUIRE_OK(waiter_start(&w, &thread, -1));
    REQUIRE(waiter_until(&w, &w.in_wait, 5000));
    CHECK_OK(evq_poll_shutdown(w.poll));
    CHECK(waiter_until(&w, &w.done, 5000));
    waiter_finish(&w, &thread, false);
    CHECK_ERR(w.rc, EVQ_ECLOSED);
    evq_event events[2];
    size_t n;
    CHECK_ERR(evq_poll_wait(w.poll, events, 2, -1, &n), EVQ_ECLOSED);
    evq_poll_close(w.poll);
}

/* Chapter 5: several threads may wait on one queue. A second wait beside
 * a blocked one is no longer EVQ_EBUSY: it looks (timeout 0) and returns
 * nothing, and the first is still woken by evq_poll_wake. (Chapter 4 said
 * EVQ_EBUSY here: its one kernel array was the queue's; test_waiters.c has
 * the rest of the lesson.) */
EVQ_TEST(a_second_waiter_waits_beside_the_first)
{
    struct waiter w;
    evq_thread thread;
    REQUIRE_OK(waiter_start(&w, &thread, -1));
    REQUIRE(waiter_until(&w, &w.in_wait, 5000));
    evq_event events[2];
    size_t n = 3;
    CHECK_OK(evq_poll_wait(w.poll, events, 2, 0, &n));
    CHECK_UINT(n, ==, 0);
    CHECK(!waiter_until(&w, &w.done, 50)); /* the first still waits */
    CHECK_OK(evq_poll_wake(w.poll));
    CHECK(waiter_until(&w, &w.done, 5000));
    waiter_finish(&w, &thread, true);
    CHECK_OK(w.rc);
}

/* ---- real interruptions ---- */

/* Interrupt the waiter every 10 ms until it returns (at most 5 s). A loop
 * that retried with the full timeout would not return until they stop. */
static void check_interrupted_wait(struct waiter *w, int interruptions)
{
    CHECK_OK(w->rc);
    CHECK_UINT(w->n, ==, 0);
    CHECK_UINT(w->elapsed_ns, >=, 300 * EVQ_NS_PER_MS); /* not cut short */
    CHECK_UINT(w->elapsed_ns, <, 3 * EVQ_NS_PER_S);     /* not stretched */
    CHECK_INT(interruptions, >=, 1);
    CHECK_INT(w->kernel_calls, >=, 2); /* the loop did retry */
}

#ifndef _WIN32
static volatile sig_atomic_t signals_caught;

static void on_sigusr1(int signal_number)
{
    (void)signal_number;
    signals_caught++;
}

EVQ_TEST_POSIX(signals_during_a_wait_keep_its_timeout)
{
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_sigusr1;
    sigemptyset(&action.sa_mask);
    action.sa_flags = 0; /* no SA_RESTART: epoll_wait and kevent fail with EINTR anyway */
    REQUIRE(sigaction(SIGUSR1, &action, NULL) == 0);
    signals_caught = 0;

    struct waiter w;
    evq_thread thread;
    REQUIRE_OK(waiter_start(&w, &thread, 300));
    REQUIRE(waiter_until(&w, &w.in_wait, 5000));
    for (int i = 0; i < 500 && !waiter_until(&w, &w.done, 0); i++) {
        pthread_kill(thread.handle, SIGUSR1);
        evq_sleep_ms(10);
    }
    waiter_finish(&w, &thread, true);
    check_interrupted_wait(&w, (int)signals_caught);
    signal(SIGUSR1, SIG_DFL);
}
#endif

#ifdef _WIN32
static volatile LONG apcs_run;

static void CALLBACK count_apc(ULONG_PTR context)
{
    (void)context;
    InterlockedIncrement(&apcs_run);
}

/* An APC ends an alertable wait with WAIT_IO_COMPLETION: Windows' EINTR. */
EVQ_TEST_WINDOWS(apcs_during_a_wait_keep_its_timeout)
{
    apcs_run = 0;
    struct waiter w;
    evq_thread thread;
    REQUIRE_OK(waiter_start(&w, &thread, 300));
    REQUIRE(waiter_until(&w, &w.in_wait, 5000));
    for (int i = 0; i < 500 && !waiter_until(&w, &w.done, 0); i++) {
        QueueUserAPC(count_apc, thread.handle, 0);
        evq_sleep_ms(10);
    }
    waiter_finish(&w, &thread, true);
    check_interrupted_wait(&w, (int)apcs_run);
}
#endif

int main(int argc, char **argv)
{
    static const evq_test_case cases[] = {
        EVQ_CASE(interrupted_wait_retries_with_the_time_left),
        EVQ_CASE(interrupted_past_the_deadline_looks_once_more),
        EVQ_CASE(interrupted_wait_without_timeout_stays_without),
        EVQ_CASE(early_return_with_nothing_waits_for_the_rest),
        EVQ_CASE(the_time_left_is_rounded_up),
        EVQ_CASE(a_kernel_error_is_returned),
        EVQ_CASE(zero_timeout_only_looks),
        EVQ_CASE(wake_from_another_thread_ends_a_wait_without_timeout),
        EVQ_CASE(close_while_another_thread_waits),
        EVQ_CASE(shutdown_from_another_thread_ends_the_wait),
        EVQ_CASE(a_second_waiter_waits_beside_the_first),
#ifndef _WIN32
        EVQ_CASE(signals_during_a_wait_keep_its_timeout),
#else
        EVQ_CASE(apcs_during_a_wait_keep_its_timeout),
#endif
    };
    return evq_test_main(argc, argv, cases, EVQ_COUNT(cases));
}

/* test_lifetime.c - the lifetime of a kqueue and of the knotes on a
 * descriptor: close() of the kqueue, reuse of its number, close() of a
 * watched descriptor, fork(). */
#if defined(__APPLE__)
#define _DARWIN_C_SOURCE
#elif !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L
#endif
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "evq_test.h"
#include "evq_thread.h"
#include "kq_test.h"

static int marker;

static bool has_event(int kq, int fd, short filter)
{
    struct kevent events[8];
    return kq_find(events, kq_poll(kq, events, 8), (uintptr_t)fd, filter) != NULL;
}

/* kqueue() "creates a new kernel event queue": a new queue is empty, even
 * when its descriptor has the number of a queue closed a moment ago with
 * knotes and pending events in it. */
EVQ_TEST(reused_kqueue_number_starts_empty)
{
    int first = kq_open(), a, b;
    REQUIRE(first >= 0);
    REQUIRE(tcp_pair(&a, &b));
    CHECK_INT(kq_change(first, 1, EVFILT_USER, EV_ADD, 0, 0, NULL), ==, 0);
    CHECK_INT(kq_change(first, 1, EVFILT_USER, 0, NOTE_TRIGGER, 0, NULL), ==, 0);
    CHECK_INT(kq_change(first, (uintptr_t)a, EVFILT_READ, EV_ADD, 0, 0, &marker), ==, 0);
    CHECK_INT(write(b, "x", 1), ==, 1);
    struct kevent event;
    REQUIRE(kq_wait_for(first, (uintptr_t)a, EVFILT_READ, 0, &event, 5000));
    close(first);
    int second = kq_open();
    REQUIRE(second >= 0);
    if (second != first)
        evq_test_note("kqueue() did not reuse the number %d (got %d)", first, second);
    struct kevent events[8];
    CHECK_INT(kq_poll(second, events, 8), ==, 0);
    CHECK_INT(kq_change(second, 1, EVFILT_USER, EV_DELETE, 0, 0, NULL), ==, ENOENT);
    CHECK_INT(kq_change(second, (uintptr_t)a, EVFILT_READ, EV_DELETE, 0, 0, NULL), ==, ENOENT);
    close(second);
    close(a);
    close(b);
}

/* A closed kqueue's number, now another kind of descriptor, is not a
 * kqueue: EBADF. */
EVQ_TEST(kqueue_number_reused_by_another_descriptor_is_ebadf)
{
    int kq = kq_open(), fds[2];
    REQUIRE(kq >= 0);
    REQUIRE(nonblocking_pipe(fds));
    CHECK_INT(kq_change(kq, 1, EVFILT_USER, EV_ADD, 0, 0, NULL), ==, 0);
    close(kq);
    REQUIRE_INT(dup2(fds[0], kq), ==, kq);
    struct kevent events[1];
    struct timespec zero = {0, 0};
    errno = 0;
    CHECK_INT(kevent(kq, NULL, 0, events, 1, &zero), ==, -1);
    CHECK_INT(errno, ==, EBADF);
    close(kq);
    close(fds[0]);
    close(fds[1]);
}

/* "Calling close() on a file descriptor will remove any kevents that
 * reference the descriptor": a pending event goes with it. (The chapters
 * never rely on this: they EV_DELETE before close().) */
EVQ_TEST(close_drops_its_knotes)
{
    int kq = kq_open(), a, b;
    REQUIRE(kq >= 0);
    REQUIRE(tcp_pair(&a, &b));
    CHECK_INT(kq_change(kq, (uintptr_t)a, EVFILT_READ, EV_ADD, 0, 0, &marker), ==, 0);
    CHECK_INT(write(b, "x", 1), ==, 1);
    struct kevent event;
    REQUIRE(kq_wait_for(kq, (uintptr_t)a, EVFILT_READ, 0, &event, 5000)); /* pending */
    close(a);
    CHECK(!has_event(kq, a, EVFILT_READ));
    /* An ident that is not an open descriptor is EBADF, knote or not. */
    CHECK_INT(kq_change(kq, (uintptr_t)a, EVFILT_READ, EV_DELETE, 0, 0, NULL), ==, EBADF);
    close(b);
    close(kq);
}

/* Once the number names a new file, it has none of the old file's knotes:
 * no event for it, even one that was pending, and nothing to delete. */
EVQ_TEST(close_then_reuse_drops_its_knotes)
{
    int kq = kq_open(), a, b, c, d;
    REQUIRE(kq >= 0);
    REQUIRE(tcp_pair(&a, &b));
    REQUIRE(tcp_pair(&c, &d));
    CHECK_INT(kq_change(kq, (uintptr_t)a, EVFILT_READ, EV_ADD, 0, 0, &marker), ==, 0);
    CHECK_INT(write(b, "x", 1), ==, 1);
    struct kevent event;
    REQUIRE(kq_wait_for(kq, (uintptr_t)a, EVFILT_READ, 0, &event, 5000)); /* pending */
    /* Close a and give its number to c, readable at once, in one step. */
    REQUIRE_INT(dup2(c, a), ==, a);
    close(c);
    CHECK_INT(write(d, "y", 1), ==, 1);
    CHECK(!kq_wait_for(kq, (uintptr_t)a, EVFILT_READ, 0, &event, 100));
    CHECK_INT(kq_change(kq, (uintptr_t)a, EVFILT_READ, EV_DELETE, 0, 0, NULL), ==, ENOENT);
    close(a);
    close(b);
    close(d);
    close(kq);
}

/* FreeBSD removes the knotes of the descriptor number being closed, even
 * when a dup() keeps the file open. */
EVQ_TEST(close_with_a_dup_open_drops_its_knotes)
{
    int kq = kq_open(), a, b;
    REQUIRE(kq >= 0);
    REQUIRE(tcp_pair(&a, &b));
    CHECK_INT(kq_change(kq, (uintptr_t)a, EVFILT_READ, EV_ADD | EV_CLEAR, 0, 0, &marker), ==, 0);
    int copy = dup(a);
    REQUIRE(copy >= 0);
    close(a);
    CHECK_INT(write(b, "x", 1), ==, 1);
    struct kevent event;
    CHECK(!kq_wait_for(kq, (uintptr_t)a, EVFILT_READ, 0, &event, 100));
    close(copy);
    close(b);
    close(kq);
}

/* "The queue is not inherited by a child created with fork(2)." */
EVQ_TEST(fork_child_does_not_inherit_the_queue)
{
    int kq = kq_open();
    REQUIRE(kq >= 0);
    CHECK_INT(kq_change(kq, 1, EVFILT_USER, EV_ADD, 0, 0, NULL), ==, 0);
    CHECK_INT(kq_change(kq, 1, EVFILT_USER, 0, NOTE_TRIGGER, 0, NULL), ==, 0);
    pid_t child = fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        struct kevent events[1];
        struct timespec zero = {0, 0};
        int n = kevent(kq, NULL, 0, events, 1, &zero);
        _exit(n == -1 && errno == EBADF ? 0 : 1);
    }
    /* A zero timeout, but a library that forks with its lock held could
     * leave the child stuck: wait at most 10 s for it. */
    int status = 0;
    pid_t reaped = 0;
    for (int i = 0; i < 1000 && reaped == 0; i++) {
        reaped = waitpid(child, &status, WNOHANG);
        if (reaped == 0)
            evq_sleep_ms(10);
    }
    if (reaped == 0) {
        evq_test_fail(__FILE__, __LINE__, "the child was still running after 10 s");
        kill(child, SIGKILL);
        reaped = waitpid(child, &status, 0);
    }
    REQUIRE_INT(reaped, ==, child);
    CHECK(WIFEXITED(status));
    CHECK_INT(WEXITSTATUS(status), ==, 0);
    /* The parent's queue is untouched. */
    struct kevent events[1];
    CHECK_INT(kq_poll(kq, events, 1), ==, 1);
    close(kq);
}

/* One descriptor in two kqueues: two knotes, each with its own udata. */
EVQ_TEST(two_kqueues_watch_one_descriptor_apart)
{
    int first = kq_open(), second = kq_open(), a, b;
    REQUIRE(first >= 0 && second >= 0);
    REQUIRE(tcp_pair(&a, &b));
    int other;
    CHECK_INT(kq_change(first, (uintptr_t)a, EVFILT_READ, EV_ADD, 0, 0, &marker), ==, 0);
    CHECK_INT(kq_change(second, (uintptr_t)a, EVFILT_READ, EV_ADD, 0, 0, &other), ==, 0);
    CHECK_INT(write(b, "x", 1), ==, 1);
    struct kevent event;
    REQUIRE(kq_wait_for(first, (uintptr_t)a, EVFILT_READ, 0, &event, 5000));
    CHECK(event.udata == &marker);
    REQUIRE(kq_wait_for(second, (uintptr_t)a, EVFILT_READ, 0, &event, 5000));
    CHECK(event.udata == &other);
    CHECK_INT(kq_change(first, (uintptr_t)a, EVFILT_READ, EV_DELETE, 0, 0, NULL), ==, 0);
    CHECK(!has_event(first, a, EVFILT_READ));
    CHECK(has_event(second, a, EVFILT_READ));
    close(a);
    close(b);
    close(first);
    close(second);
}

int main(int argc, char **argv)
{
    static const evq_test_case cases[] = {
        EVQ_CASE(reused_kqueue_number_starts_empty),
        EVQ_CASE(kqueue_number_reused_by_another_descriptor_is_ebadf),
        EVQ_CASE(close_drops_its_knotes),
        EVQ_CASE(close_then_reuse_drops_its_knotes),
        EVQ_CASE(close_with_a_dup_open_drops_its_knotes),
        EVQ_CASE(fork_child_does_not_inherit_the_queue),
        EVQ_CASE(two_kqueues_watch_one_descriptor_apart),
    };
    return evq_test_main(argc, argv, cases, EVQ_COUNT(cases));
}

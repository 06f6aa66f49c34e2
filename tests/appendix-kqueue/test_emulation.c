/* test_emulation.c - what only the epoll emulation has to get right: its
 * kqueue descriptor is an epoll descriptor that the caller closes behind its
 * back, and it owns descriptors of its own (a doorbell, timerfds). Built for
 * the emulation provider only. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "evq_test.h"
#include "kq_test.h"

/* epoll instances all share one anonymous inode, so fstat() cannot tell a
 * new one from the kqueue that had its number. The emulation must not take
 * someone else's epoll instance for its kqueue. */
EVQ_TEST(number_reused_by_a_plain_epoll_is_not_a_kqueue)
{
    int kq = kq_open(), a, b;
    REQUIRE(kq >= 0);
    REQUIRE(tcp_pair(&a, &b));
    CHECK_INT(kq_change(kq, (uintptr_t)a, EVFILT_READ, EV_ADD, 0, 0, NULL), ==, 0);
    CHECK_INT(write(b, "x", 1), ==, 1);
    close(kq);
    int epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    REQUIRE(epoll_fd >= 0);
    if (epoll_fd != kq) {
        REQUIRE_INT(dup2(epoll_fd, kq), ==, kq);
        close(epoll_fd);
        epoll_fd = kq;
    }
    struct kevent events[4];
    struct timespec zero = {0, 0};
    errno = 0;
    CHECK_INT(kevent(kq, NULL, 0, events, 4, &zero), ==, -1);
    CHECK_INT(errno, ==, EBADF);
    errno = 0;
    CHECK_INT(kq_change(kq, 1, EVFILT_USER, EV_ADD, 0, 0, NULL), ==, EBADF);
    /* Nothing of the old kqueue leaked into the new epoll instance. */
    struct epoll_event ready[4];
    CHECK_INT(epoll_wait(epoll_fd, ready, 4, 0), ==, 0);
    close(epoll_fd);
    close(a);
    close(b);
}

/* The emulation's own descriptors are not the caller's to watch. */
EVQ_TEST(own_descriptors_are_refused_as_idents)
{
    int kq = kq_open();
    REQUIRE(kq >= 0);
    CHECK_INT(kq_change(kq, (uintptr_t)kq, EVFILT_READ, EV_ADD, 0, 0, NULL), ==, EINVAL);
    /* The next timer's timerfd takes the lowest free number: find it first. */
    int probe = dup(0);
    REQUIRE(probe >= 0);
    close(probe);
    CHECK_INT(kq_change(kq, 1, EVFILT_TIMER, EV_ADD, 0, 60000, NULL), ==, 0);
    CHECK_INT(fcntl(probe, F_GETFD), !=, -1); /* the timerfd */
    CHECK_INT(kq_change(kq, (uintptr_t)probe, EVFILT_READ, EV_ADD, 0, 0, NULL), ==, EINVAL);
    CHECK_INT(kq_change(kq, (uintptr_t)probe, EVFILT_WRITE, EV_ADD, 0, 0, NULL), ==, EINVAL);
    close(kq);
}

static int open_descriptors(void)
{
    DIR *directory = opendir("/proc/self/fd");
    if (!directory)
        return -1;
    int count = 0;
    while (readdir(directory))
        count++;
    closedir(directory);
    return count;
}

/* close(kq) cannot be seen; the next kqueue() sweeps closed kqueues away, so
 * what a closed kqueue holds (its epoll duplicate, its doorbell, its timers)
 * is released then. */
EVQ_TEST(closed_kqueues_are_swept_by_the_next_kqueue)
{
    int before = open_descriptors();
    REQUIRE(before > 0);
    int placeholders[20];
    for (int i = 0; i < 20; i++) {
        int kq = kq_open();
        REQUIRE(kq >= 0);
        CHECK_INT(kq_change(kq, 1, EVFILT_TIMER, EV_ADD, 0, 60000, NULL), ==, 0);
        CHECK_INT(kq_change(kq, 2, EVFILT_USER, EV_ADD, 0, 0, NULL), ==, 0);
        close(kq);
        /* Hold the number, so the next kqueue() gets another one. */
        placeholders[i] = open("/dev/null", O_RDONLY | O_CLOEXEC);
        REQUIRE(placeholders[i] >= 0);
    }
    int kq = kq_open();
    REQUIRE(kq >= 0);
    close(kq);
    for (int i = 0; i < 20; i++)
        close(placeholders[i]);
    /* Left over: the last kqueue's epoll duplicate and doorbell, until the
     * next kqueue() call; without the sweep, 60 more. */
    CHECK_INT(open_descriptors(), <=, before + 2);
    kq = kq_open();
    close(kq);
    CHECK_INT(open_descriptors(), <=, before + 2);
}

int main(int argc, char **argv)
{
    static const evq_test_case cases[] = {
        EVQ_CASE(number_reused_by_a_plain_epoll_is_not_a_kqueue),
        EVQ_CASE(own_descriptors_are_refused_as_idents),
        EVQ_CASE(closed_kqueues_are_swept_by_the_next_kqueue),
    };
    return evq_test_main(argc, argv, cases, EVQ_COUNT(cases));
}

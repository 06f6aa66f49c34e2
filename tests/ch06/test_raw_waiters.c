/* test_raw_waiters.c - chapter 5: what edge triggering promises several
 * threads, on raw epoll (Linux), no queue of ours in between.
 *
 * The claim this chapter corrects is that edge-triggered mode "guarantees
 * that only one thread will be woken up". epoll wakes one waiter per edge -
 * but the next edge is another wake-up, and goes to whichever thread is
 * waiting then: while the first thread is still reading, a second one gets
 * the same descriptor. EPOLLONESHOT is what makes the first thread its only
 * owner until it re-arms. Each case: a socket, two threads on one epoll
 * descriptor, two edges.
 */
#define _GNU_SOURCE
#include "evq_clock.h"
#include "evq_net.h"
#include "evq_test.h"
#include "evq_thread.h"

#include <errno.h>
#include <stdatomic.h>
#include <sys/epoll.h>
#include <unistd.h>

struct raw_waiter {
    int epoll_fd;
    int timeout_ms;
    atomic_int got; /* -1 until the wait returns; then the number of events */
};

static void raw_waiter_run(void *arg)
{
    struct raw_waiter *w = arg;
    struct epoll_event event;
    int n;
    do {
        n = epoll_wait(w->epoll_fd, &event, 1, w->timeout_ms);
    } while (n < 0 && errno == EINTR);
    atomic_store(&w->got, n);
}

/* Until the waiter's wait has returned, at most 5 s. */
static int raw_wait_result(struct raw_waiter *w)
{
    for (int i = 0; i < 500 && atomic_load(&w->got) < 0; i++)
        evq_sleep_ms(10);
    return atomic_load(&w->got);
}

/* Two edges, a thread waiting for each: the first thread takes the first
 * edge and does not read (it is "still reading"); the second edge - more
 * bytes - comes while the second thread waits. Returns how many events the
 * second thread got (1: the descriptor was handed to it too). */
static int second_thread_gets(uint32_t flags)
{
    evq_socket a, b;
    if (!CHECK_OK(evq_net_tcp_pair(&a, &b)))
        return -1;
    int epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN | flags};
    ev.data.fd = (int)b;
    CHECK_INT(epoll_ctl(epoll_fd, EPOLL_CTL_ADD, (int)b, &ev), ==, 0);

    struct raw_waiter first = {.epoll_fd = epoll_fd, .timeout_ms = 5000};
    atomic_init(&first.got, -1);
    evq_thread one;
    CHECK_OK(evq_thread_start(&one, raw_waiter_run, &first));
    CHECK_OK(evq_net_send_all(a, "1", 1)); /* the first edge */
    CHECK_INT(raw_wait_result(&first), ==, 1);
    evq_thread_join(&one);

    /* The first thread holds the descriptor and has read nothing yet. */
    struct raw_waiter second = {.epoll_fd = epoll_fd, .timeout_ms = 300};
    atomic_init(&second.got, -1);
    evq_thread two;
    CHECK_OK(evq_thread_start(&two, raw_waiter_run, &second));
    CHECK_OK(evq_net_send_all(a, "2", 1)); /* the second edge */
    int got = raw_wait_result(&second);
    evq_thread_join(&two);
    close(epoll_fd);
    evq_socket_close(a);
    evq_socket_close(b);
    return got;
}

/* ANCHOR: raw_et_test */
/* EPOLLET: the second edge wakes the second thread, for the descriptor the
 * first is still reading. Edge triggering does not make one thread its
 * owner. */
EVQ_TEST_LINUX(edge_triggered_epoll_hands_a_second_edge_to_a_second_thread)
{
    CHECK_INT(second_thread_gets(EPOLLET), ==, 1);
}

/* EPOLLONESHOT: after the first event the descriptor is disabled until the
 * first thread re-arms it (EPOLL_CTL_MOD): the second thread sleeps through
 * the second edge. Exclusive ownership - at the price of that system call
 * per event, which chapter 5's queue does in its own bookkeeping instead. */
EVQ_TEST_LINUX(oneshot_epoll_keeps_the_descriptor_for_the_first_thread)
{
    CHECK_INT(second_thread_gets(EPOLLET | EPOLLONESHOT), ==, 0);
}
/* ANCHOR_END: raw_et_test */

int main(int argc, char **argv)
{
    static const evq_test_case cases[] = {
        EVQ_CASE(edge_triggered_epoll_hands_a_second_edge_to_a_second_thread),
        EVQ_CASE(oneshot_epoll_keeps_the_descriptor_for_the_first_thread),
    };
    return evq_test_main(argc, argv, cases, EVQ_COUNT(cases));
}

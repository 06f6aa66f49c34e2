/* test_accept_pressure.c - chapter 3: accepting at the descriptor limit.
 *
 * When accept() fails with EMFILE, the connection stays in the backlog and
 * a one-shot listener re-armed at once is reported again at once: the loop
 * spins on accept() for as long as the limit lasts (measured: 99-100 % CPU,
 * 40 000 rounds of epoll_wait, accept4 = EMFILE, epoll_ctl in 3 s). The
 * library lets the listener rest for 100 ms instead (evq.h). These tests
 * run a listener loop - accept everything, echo every connection - through
 * the limit with an injected clock that moves 1 ms per kernel wait (the
 * kernel only looks: nothing sleeps), and assert that the loop makes a
 * bounded number of turns per second while at the limit, keeps serving the
 * connections it has, and accepts again once descriptors free up.
 */
#if defined(__linux__)
#define _GNU_SOURCE /* ENONET */
#endif
#include "ch06_test.h"

#include <stdint.h>
#include <stdlib.h>

#ifndef _WIN32
#include <errno.h>
#include <sys/resource.h>
#include <unistd.h>
#endif

enum {
    LATE_CLIENTS = 6,     /* more than IOCP keeps AcceptEx posted (4) */
    MAX_CONNECTIONS = 16, /* the loop's table */
    PAUSE_MS = 100,       /* evq.h: a listener at the limit rests 100 ms */
    LIMIT_MS = 2000,      /* how long the test stays at the limit (injected time) */
};

static const evq_token LISTENER = UINT64_MAX;

struct server {
    evq_poll *poll;
    evq_fake_clock clock;
    evq_tcp *listener;
    uint16_t port;
    evq_tcp *connections[MAX_CONNECTIONS];
    size_t accepted;
    bool at_limit;            /* the accept hook says EVQ_EMFILE */
    unsigned turns;           /* waits that returned events */
    unsigned listener_events; /* of those: the listener was readable */
    unsigned accept_failures; /* evq_tcp_accept said EVQ_EMFILE (or another error) */
    unsigned served;          /* connection events answered with an echo */
};

/* The kernel only looks (timeout 0), and each look moves time on by 1 ms:
 * a wait of 10 ms is 10 kernel waits, and a second is 1000. */
static int one_ms_per_kernel_wait(void *context, int *timeout_ms)
{
    struct server *s = context;
    *timeout_ms = 0;
    evq_fake_clock_advance_ms(&s->clock, 1);
    return 0;
}

/* On the listener (and inherited by what it accepts): EVQ_IO_ACCEPT fails
 * with EVQ_EMFILE while the test holds the limit - on IOCP, that is the
 * socket for the next AcceptEx that cannot be made. */
static int accept_hook(void *context, enum evq_io_direction direction, size_t *len)
{
    (void)len;
    const struct server *s = context;
    return direction == EVQ_IO_ACCEPT && s->at_limit ? EVQ_EMFILE : 0;
}

static bool server_open(struct server *s)
{
    memset(s, 0, sizeof *s);
    if (!CHECK_OK(evq_poll_open(&s->poll)))
        return false;
    evq_fake_clock_set_ns(&s->clock, 1000 * EVQ_NS_PER_S);
    evq_poll_set_clock(s->poll, evq_fake_clock_as_clock(&s->clock));
    evq_poll_set_wait_hook(s->poll, one_ms_per_kernel_wait, s);
    if (!CHECK_OK(evq_tcp_listen(s->poll, "127.0.0.1", 0, 64, &s->listener)) ||
        !CHECK_OK(evq_tcp_local_port(s->listener, &s->port)))
        return false;
    evq_tcp_set_io_hook(s->listener, accept_hook, s);
    return CHECK_OK(evq_register(s->poll, s->listener, LISTENER, EVQ_READABLE));
}

static void server_close(struct server *s)
{
    for (size_t i = 0; i < s->accepted; i++)
        evq_tcp_close(s->connections[i]);
    evq_tcp_close(s->listener);
    evq_poll_close(s->poll);
}

/* ANCHOR: listener_loop */
/* The listener's event: take every pending connection, as a server does,
 * and re-arm. At the limit the accept fails and the loop re-arms all the
 * same - it is the library that must keep that from spinning. */
static void accept_all(struct server *s)
{
    for (;;) {
        evq_tcp *stream = NULL;
        int rc = evq_tcp_accept(s->listener, &stream);
        if (rc == EVQ_EWOULDBLOCK)
            break;
        if (rc == EVQ_ECONNABORTED || rc == EVQ_ECONNRESET)
            continue;
        if (rc != 0) {
            s->accept_failures++; /* EVQ_EMFILE: try again at the next event */
            break;
        }
        if (!CHECK_UINT(s->accepted, <, MAX_CONNECTIONS)) {
            evq_tcp_close(stream);
            break;
        }
        CHECK_OK(evq_register(s->poll, stream, s->accepted, EVQ_READABLE));
        s->connections[s->accepted++] = stream;
    }
    CHECK_OK(evq_reregister(s->poll, s->listener, LISTENER, EVQ_READABLE));
}
/* ANCHOR_END: listener_loop */

/* A connection's event: echo what came, re-arm. */
static void echo(struct server *s, evq_token token)
{
    evq_tcp *stream = s->connections[token];
    char buf[256];
    size_t len = 0;
    int rc = ch06_read_available(stream, buf, sizeof buf, &len);
    size_t written = 0;
    if (len > 0)
        CHECK_OK(evq_tcp_write(stream, buf, len, &written));
    s->served += len > 0;
    if (rc == 0)
        CHECK_OK(evq_reregister(s->poll, stream, token, EVQ_READABLE));
}

static void turn(struct server *s)
{
    evq_event events[8];
    size_t n = 0;
    if (!CHECK_OK(evq_poll_wait(s->poll, events, 8, 10, &n)))
        return;
    s->turns += n > 0;
    for (size_t i = 0; i < n; i++) {
        if (events[i].token == LISTENER) {
            s->listener_events++;
            accept_all(s);
        } else if (CHECK_UINT(events[i].token, <, s->accepted)) {
            echo(s, events[i].token);
        }
    }
}

static uint64_t now_ms(const struct server *s)
{
    return s->clock.now / EVQ_NS_PER_MS;
}

/* Turn until `done` or `limit_ms` of injected time have passed. */
static bool turn_until(struct server *s, bool (*done)(const struct server *, size_t), size_t arg,
                       uint64_t limit_ms)
{
    uint64_t end = now_ms(s) + limit_ms;
    while (!done(s, arg) && now_ms(s) < end)
        turn(s);
    return done(s, arg);
}

static bool accepted_at_least(const struct server *s, size_t count)
{
    return s->accepted >= count;
}

static bool never(const struct server *s, size_t unused)
{
    (void)s;
    (void)unused;
    return false;
}

static bool served_at_least(const struct server *s, size_t count)
{
    return s->served >= count;
}

/* The whole story. `enter` and `leave` put the process at the descriptor
 * limit and take it off again (the hook, or a real RLIMIT_NOFILE). */
static void through_the_limit(struct server *s, void (*enter)(struct server *),
                              void (*leave)(struct server *))
{
    /* Before: one client is accepted and served. */
    evq_socket first;
    REQUIRE_OK(evq_net_connect_loopback(s->port, &first));
    REQUIRE_OK(evq_socket_set_recv_timeout(first, 10000));
    REQUIRE(turn_until(s, accepted_at_least, 1, 5000));

    /* At the limit: clients wait in the backlog. */
    evq_socket late[LATE_CLIENTS];
    for (int i = 0; i < LATE_CLIENTS; i++) {
        REQUIRE_OK(evq_net_connect_loopback(s->port, &late[i]));
        REQUIRE_OK(evq_socket_set_recv_timeout(late[i], 10000));
    }
    enter(s);
    unsigned turns = s->turns, listener_events = s->listener_events;
    REQUIRE_OK(evq_net_send_all(first, "ping", 4)); /* an open connection still talks */
    turn_until(s, never, 0, LIMIT_MS);
    turns = s->turns - turns;
    listener_events = s->listener_events - listener_events;
    evq_test_note("at the limit for %d ms: %u turns with events, %u listener events, %u "
                  "failed accepts, %zu accepted",
                  LIMIT_MS, turns, listener_events, s->accept_failures, s->accepted - 1);
    CHECK_UINT(s->accept_failures, >, 0); /* the limit was met */
    /* One listener event per pause, and the echo: a spinning loop makes one
     * per kernel wait (about 2000 here). */
    CHECK_UINT(listener_events, <=, LIMIT_MS / PAUSE_MS + 2);
    CHECK_UINT(turns, <=, LIMIT_MS / PAUSE_MS + 4);
    CHECK_UINT(s->accepted, <, 1 + LATE_CLIENTS); /* some still wait */
    char back[4] = {0};
    size_t got = 0;
    CHECK_OK(evq_net_recv(first, back, sizeof back, &got));
    CHECK_MEM(back, "ping", 4);

    /* After: every waiting client is accepted, within about one pause. */
    leave(s);
    uint64_t left_at = now_ms(s);
    CHECK(turn_until(s, accepted_at_least, 1 + LATE_CLIENTS, 1000));
    evq_test_note("all accepted %llu ms after the limit was lifted",
                  (unsigned long long)(now_ms(s) - left_at));
    for (int i = 0; i < LATE_CLIENTS; i++) {
        REQUIRE_OK(evq_net_send_all(late[i], "late", 4));
        CHECK(turn_until(s, served_at_least, s->served + 1, 1000));
        char answer[4] = {0};
        got = 0;
        CHECK_OK(evq_net_recv(late[i], answer, sizeof answer, &got));
        CHECK_MEM(answer, "late", 4);
    }
    for (int i = 0; i < LATE_CLIENTS; i++)
        evq_socket_close(late[i]);
    evq_socket_close(first);
}

static void hook_enter(struct server *s)
{
    s->at_limit = true;
}

static void hook_leave(struct server *s)
{
    s->at_limit = false;
}

/* Every backend: the hook stands for the limit. */
EVQ_TEST(accept_at_the_descriptor_limit_rests_and_recovers)
{
    struct server s;
    if (server_open(&s))
        through_the_limit(&s, hook_enter, hook_leave);
    server_close(&s);
}

#ifndef _WIN32
/* POSIX: the real limit. RLIMIT_NOFILE is lowered, and every descriptor
 * below it is taken, so that accept() itself fails with EMFILE. */
static struct {
    bool lowered;
    struct rlimit saved;
    int fillers[512];
    int count;
} limit;

static void rlimit_enter(struct server *s)
{
    (void)s;
    REQUIRE(getrlimit(RLIMIT_NOFILE, &limit.saved) == 0);
    limit.lowered = true;
    struct rlimit low = limit.saved;
    if (low.rlim_cur > 256)
        low.rlim_cur = 256;
    REQUIRE(setrlimit(RLIMIT_NOFILE, &low) == 0);
    limit.count = 0;
    while (limit.count < (int)(sizeof limit.fillers / sizeof limit.fillers[0])) {
        int fd = socket(AF_INET, SOCK_DGRAM, 0);
        if (fd < 0) {
            CHECK_INT(errno, ==, EMFILE);
            break;
        }
        limit.fillers[limit.count++] = fd;
    }
}

static void rlimit_leave(struct server *s)
{
    (void)s;
    while (limit.count > 0)
        close(limit.fillers[--limit.count]);
    if (limit.lowered)
        CHECK(setrlimit(RLIMIT_NOFILE, &limit.saved) == 0);
    limit.lowered = false;
}

EVQ_TEST_POSIX(accept_at_a_real_rlimit_nofile_rests_and_recovers)
{
    struct server s;
    if (server_open(&s))
        through_the_limit(&s, rlimit_enter, rlimit_leave);
    rlimit_leave(&s); /* again, in case a REQUIRE left early */
    server_close(&s);
}
#endif

#if defined(__linux__)
/* accept4() as the library calls it, so that a test can make the next call
 * fail with an error a loopback connection never produces: the linker
 * sends the library's calls here (-Wl,--wrap=accept4, tests/ch06/
 * CMakeLists.txt), and __real_accept4 is libc's. */
int __real_accept4(int fd, struct sockaddr *address, socklen_t *length, int flags);
int __wrap_accept4(int fd, struct sockaddr *address, socklen_t *length, int flags);

static int next_accept_error; /* errno for the next accept4, once; 0: none */

int __wrap_accept4(int fd, struct sockaddr *address, socklen_t *length, int flags)
{
    if (next_accept_error != 0) {
        errno = next_accept_error;
        next_accept_error = 0;
        return -1;
    }
    return __real_accept4(fd, address, length, flags);
}

/* A listener with one connection waiting in its backlog. */
static bool listener_with_a_waiting_client(evq_poll **poll, evq_tcp **listener, evq_socket *client)
{
    uint16_t port = 0;
    return CHECK_OK(evq_poll_open(poll)) &&
           CHECK_OK(evq_tcp_listen(*poll, "127.0.0.1", 0, 8, listener)) &&
           CHECK_OK(evq_tcp_local_port(*listener, &port)) &&
           CHECK_OK(evq_net_connect_loopback(port, client));
}

/* ANCHOR: network_errors_test */
/* Linux accept(2): "Linux accept() passes already-pending network errors on
 * the new socket as an error code from accept() ... treat them like
 * EAGAIN". Each is EVQ_EWOULDBLOCK, and the listener goes on accepting. The
 * version that returns them as they are (EVQ_ENETDOWN...) tells a server
 * its listener failed. */
EVQ_TEST_LINUX(pending_network_errors_of_accept_are_would_block)
{
    static const int errors[] = {ENETDOWN, EPROTO,       ENOPROTOOPT, EHOSTDOWN,
                                 ENONET,   EHOSTUNREACH, EOPNOTSUPP,  ENETUNREACH};
    evq_poll *poll = NULL;
    evq_tcp *listener = NULL, *stream = NULL;
    evq_socket client = EVQ_INVALID_SOCKET;
    if (listener_with_a_waiting_client(&poll, &listener, &client)) {
        for (size_t i = 0; i < sizeof errors / sizeof errors[0]; i++) {
            next_accept_error = errors[i];
            CHECK_ERR(evq_tcp_accept(listener, &stream), EVQ_EWOULDBLOCK);
        }
        CHECK_OK(evq_tcp_accept(listener, &stream)); /* the waiting one */
    }
    evq_tcp_close(stream);
    evq_socket_close(client);
    evq_tcp_close(listener);
    evq_poll_close(poll);
}
/* ANCHOR_END: network_errors_test */

/* ECONNABORTED: the connection was reset while it waited; the next one is
 * taken in the same call. */
EVQ_TEST_LINUX(an_aborted_connection_is_skipped)
{
    evq_poll *poll = NULL;
    evq_tcp *listener = NULL, *stream = NULL;
    evq_socket client = EVQ_INVALID_SOCKET;
    if (listener_with_a_waiting_client(&poll, &listener, &client)) {
        next_accept_error = ECONNABORTED;
        CHECK_OK(evq_tcp_accept(listener, &stream));
        CHECK(stream != NULL);
    }
    evq_tcp_close(stream);
    evq_socket_close(client);
    evq_tcp_close(listener);
    evq_poll_close(poll);
}
#endif

int main(int argc, char **argv)
{
    static const evq_test_case cases[] = {
        EVQ_CASE(accept_at_the_descriptor_limit_rests_and_recovers),
#ifndef _WIN32
        EVQ_CASE(accept_at_a_real_rlimit_nofile_rests_and_recovers),
#endif
#if defined(__linux__)
        EVQ_CASE(pending_network_errors_of_accept_are_would_block),
        EVQ_CASE(an_aborted_connection_is_skipped),
#endif
    };
    return evq_test_main(argc, argv, cases, EVQ_COUNT(cases));
}

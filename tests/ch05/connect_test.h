/* connect_test.h - what chapter 4's queue tests of connects share: a queue
 * whose resolve function is the fake of resolver_test.h (held at its gate
 * by the test), answering every name with addresses the test sets up - a
 * local listener, a port that refuses - and never one outside this machine.
 *
 * Static inline, like ch05_test.h: each test program takes what it uses.
 */
#ifndef CONNECT_TEST_H
#define CONNECT_TEST_H

#include "ch05_test.h"
#include "resolver_test.h"

typedef struct fake_net {
    fake_resolver fake;
    evq_address_list answer; /* every name's (but noname.*, again.*...: resolver_test.h) */
    evq_socket listener;     /* fake_net_listen's; EVQ_INVALID_SOCKET before */
    uint16_t listener_port;
    evq_socket refuser; /* fake_net_refusing's port holder; EVQ_INVALID_SOCKET before */
    evq_poll *poll; /* fake_net_open's */
} fake_net;

static inline void fake_net_init(fake_net *net, bool gate_open)
{
    memset(net, 0, sizeof *net);
    fake_init(&net->fake, gate_open);
    net->fake.answer = &net->answer;
    net->listener = EVQ_INVALID_SOCKET;
    net->refuser = EVQ_INVALID_SOCKET;
}

/* Append 127.0.0.1:port to the answer. */
static inline int fake_net_add(fake_net *net, uint32_t ip, uint16_t port)
{
    evq_address address = address_v4(ip, port);
    return address_append(&net->answer, &address);
}

/* A listener on loopback that never accepts (connects complete in its
 * backlog), appended to the answer. */
static inline int fake_net_listen(fake_net *net, int backlog)
{
    int rc = evq_net_listen_loopback(0, backlog, &net->listener, &net->listener_port);
    return rc != 0 ? rc : fake_net_add(net, 0x7f000001, net->listener_port);
}

/* A loopback port that refuses, appended to the answer. */
static inline int fake_net_refusing(fake_net *net)
{
    uint16_t port;
    int rc = evq_net_refusing_loopback(&net->refuser, &port);
    return rc != 0 ? rc : fake_net_add(net, 0x7f000001, port);
}

/* The queue, on the fake: `threads` workers, at most `queue` lookups. */
static inline evq_poll *fake_net_open(fake_net *net, unsigned threads, size_t queue)
{
    evq_poll_options options;
    evq_poll_get_default_options(&options);
    options.resolver_threads = threads;
    options.resolver_queue = queue;
    options.resolve = fake_resolve;
    options.resolve_context = &net->fake;
    if (evq_poll_open_with_options(&net->poll, &options) != 0)
        evq_test_fail(__FILE__, __LINE__, "evq_poll_open_with_options failed");
    return net->poll;
}

/* Close the queue (once the test has closed its streams), the listener,
 * the fake. The gate opens first: closing the queue waits for its workers. */
static inline void fake_net_close(fake_net *net)
{
    fake_open_gate(&net->fake);
    evq_poll_close(net->poll);
    if (net->listener != EVQ_INVALID_SOCKET)
        evq_socket_close(net->listener);
    if (net->refuser != EVQ_INVALID_SOCKET)
        evq_socket_close(net->refuser);
    fake_destroy(&net->fake);
    evq_address_list_free(&net->answer);
}

static inline evq_lookup_stats lookup_stats(evq_poll *poll)
{
    evq_lookup_stats stats;
    evq_poll_get_lookup_stats(poll, &stats);
    return stats;
}

#endif

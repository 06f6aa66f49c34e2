/* test_listen_shared.c - chapter 7's one addition to chapter 6's queue:
 * evq_tcp_listen_shared, a listener per queue on one port, the kernel
 * choosing one for each connection (Linux's SO_REUSEPORT), and a clear
 * EVQ_ENOTSUP where the system has nothing that spreads connections.
 */
#include "evq.h"

#include "evq_net.h"
#include "evq_test.h"

#define LISTENERS   2
#define CONNECTIONS 64

EVQ_TEST(two_queues_listen_on_one_port_and_the_connections_are_spread)
{
    evq_poll *polls[LISTENERS];
    evq_tcp *listeners[LISTENERS];
    uint16_t port = 0;
    for (int i = 0; i < LISTENERS; i++) {
        REQUIRE_OK(evq_poll_open(&polls[i]));
        int rc = evq_tcp_listen_shared(polls[i], "127.0.0.1", port, 128, &listeners[i]);
#ifdef _WIN32
        CHECK_ERR(rc, EVQ_ENOTSUP); /* no SO_REUSEPORT: chapter 7 shares one queue instead */
        CHECK(listeners[i] == NULL);
        evq_poll_close(polls[i]);
        return;
#else
        REQUIRE_OK(rc);
        if (port == 0)
            REQUIRE_OK(evq_tcp_local_port(listeners[0], &port));
        REQUIRE_OK(evq_register(polls[i], listeners[i], (evq_token)i, EVQ_READABLE));
#endif
    }
    /* A plain listener cannot join them: the port is taken. */
    evq_tcp *plain = NULL;
    CHECK_ERR(evq_tcp_listen(polls[0], "127.0.0.1", port, 8, &plain), EVQ_EADDRINUSE);

    evq_socket clients[CONNECTIONS];
    for (int i = 0; i < CONNECTIONS; i++)
        REQUIRE_OK(evq_net_connect_loopback(port, &clients[i]));
    /* Every connection is accepted by exactly one of the listeners. */
    int accepted[LISTENERS] = {0};
    int total = 0;
    for (int round = 0; round < 5000 && total < CONNECTIONS; round++) {
        for (int i = 0; i < LISTENERS; i++) {
            evq_event event;
            size_t n = 0;
            REQUIRE_OK(evq_poll_wait(polls[i], &event, 1, 1, &n));
            if (n == 0)
                continue;
            evq_tcp *stream;
            while (evq_tcp_accept(listeners[i], &stream) == 0) {
                accepted[i]++;
                total++;
                evq_tcp_close(stream);
            }
            REQUIRE_OK(evq_reregister(polls[i], listeners[i], (evq_token)i, EVQ_READABLE));
        }
    }
    CHECK_INT(total, ==, CONNECTIONS);
    /* Linux hashes each connection's addresses to pick a listener: with 64
     * connections from different ports both get some (all 64 on one has a
     * chance of 2^-63). */
    for (int i = 0; i < LISTENERS; i++)
        CHECK_INT(accepted[i], >, 0);
    evq_test_note("accepted %d and %d", accepted[0], accepted[1]);
    for (int i = 0; i < CONNECTIONS; i++)
        evq_socket_close(clients[i]);
    for (int i = 0; i < LISTENERS; i++) {
        evq_tcp_close(listeners[i]);
        evq_poll_close(polls[i]);
    }
}

EVQ_TEST(listen_shared_misuse_is_a_code)
{
    evq_tcp *out = (evq_tcp *)&out;
    CHECK_ERR(evq_tcp_listen_shared(NULL, "127.0.0.1", 0, 8, &out), EVQ_EINVAL);
    CHECK(out == NULL);
}

int main(int argc, char **argv)
{
    static const evq_test_case cases[] = {
        EVQ_CASE(two_queues_listen_on_one_port_and_the_connections_are_spread),
        EVQ_CASE(listen_shared_misuse_is_a_code),
    };
    return evq_test_main(argc, argv, cases, EVQ_COUNT(cases));
}

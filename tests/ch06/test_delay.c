/* test_delay.c - chapter 3 against a real peer: the delay server. Five
 * requests sent at once on one thread, delays falling from 500 to 100 ms,
 * must be answered in reverse order (the order, not the time, is asserted).
 */
#include "ch06_test.h"

#include "evq_delay_server.h"

#include <stdio.h>

enum { REQUESTS = 5 };

struct request {
    evq_tcp *stream;
    char response[512];
    size_t len;
    bool done;
};

EVQ_TEST(five_requests_come_back_in_reverse_order)
{
    evq_delay_server *server;
    REQUIRE_OK(evq_delay_server_start(NULL, &server));
    uint16_t port = evq_delay_server_port(server);
    evq_poll *poll;
    REQUIRE_OK(evq_poll_open(&poll));

    struct request requests[REQUESTS];
    memset(requests, 0, sizeof requests);
    for (int i = 0; i < REQUESTS; i++) {
        struct request *r = &requests[i];
        REQUIRE_OK(evq_tcp_connect(poll, "127.0.0.1", port, &r->stream));
        char text[128];
        int len = snprintf(text, sizeof text,
                           "GET /%d/answer-%d HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                           "Connection: close\r\n\r\n",
                           500 - 100 * i, i);
        size_t n = 0;
        REQUIRE_OK(evq_tcp_write(r->stream, text, (size_t)len, &n));
        REQUIRE_UINT(n, ==, (size_t)len); /* a fresh socket takes a small request whole */
        /* The token is the index, 0 included. */
        REQUIRE_OK(evq_register(poll, r->stream, (evq_token)i, EVQ_READABLE));
    }

    int order[REQUESTS];
    int answered = 0;
    for (int round = 0; round < 200 && answered < REQUESTS; round++) {
        evq_event events[REQUESTS];
        size_t n = 0;
        REQUIRE_OK(evq_poll_wait(poll, events, REQUESTS, 5000, &n));
        for (size_t e = 0; e < n; e++) {
            REQUIRE_UINT(events[e].token, <, REQUESTS);
            struct request *r = &requests[events[e].token];
            REQUIRE(!r->done); /* one-shot: nothing after the answer */
            int rc = ch06_read_available(r->stream, r->response, sizeof r->response - 1, &r->len);
            if (rc == EVQ_EOF) {
                r->done = true;
                order[answered++] = (int)events[e].token;
                continue;
            }
            REQUIRE_OK(rc);
            REQUIRE_OK(evq_reregister(poll, r->stream, events[e].token, EVQ_READABLE));
        }
    }
    REQUIRE_INT(answered, ==, REQUESTS);
    for (int i = 0; i < REQUESTS; i++) {
        CHECK_INT(order[i], ==, REQUESTS - 1 - i);
        struct request *r = &requests[i];
        r->response[r->len] = '\0';
        char body[32];
        snprintf(body, sizeof body, "\r\n\r\nanswer-%d", i);
        CHECK(strncmp(r->response, "HTTP/1.1 200 ", 13) == 0);
        CHECK(strstr(r->response, body) != NULL);
        evq_tcp_close(r->stream);
    }
    evq_poll_close(poll);
    evq_delay_server_stop(server);
}

int main(int argc, char **argv)
{
    static const evq_test_case cases[] = {
        EVQ_CASE(five_requests_come_back_in_reverse_order),
    };
    return evq_test_main(argc, argv, cases, EVQ_COUNT(cases));
}

/* Tests of the delay server over real loopback sockets: what it answers, in
 * which order, to how many clients at once, and how it treats every kind of
 * bad or rude client. They assert behaviour, never durations; the one time
 * check is a lower bound (an answer never comes before its delay). */
#if !defined(_WIN32) && !defined(_POSIX_C_SOURCE) && !defined(__APPLE__)
#define _POSIX_C_SOURCE 200809L
#endif
#include "delay_test_client.h"
#include "evq_clock.h"
#include "evq_delay_server.h"
#include "evq_net.h"
#include "evq_test.h"
#include "evq_thread.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef _WIN32
typedef WSAPOLLFD poll_entry;
static int poll_sockets(poll_entry *entries, size_t count, int timeout_ms)
{
    return WSAPoll(entries, (ULONG)count, timeout_ms);
}
#else
#include <fcntl.h>
#include <poll.h>
#include <sys/resource.h>
#include <unistd.h>
typedef struct pollfd poll_entry;
static int poll_sockets(poll_entry *entries, size_t count, int timeout_ms)
{
    return poll(entries, (nfds_t)count, timeout_ms);
}
#endif

/* ---- the basics ---------------------------------------------------------------- */

EVQ_TEST(start_picks_a_port_and_stop_frees_everything)
{
    CHECK_ERR(evq_delay_server_start(NULL, NULL), EVQ_EINVAL);
    evq_delay_server *server = NULL;
    REQUIRE_OK(evq_delay_server_start(NULL, &server));
    CHECK_UINT(evq_delay_server_port(server), !=, 0);
    evq_delay_server_stats stats;
    evq_delay_server_get_stats(server, &stats);
    CHECK_UINT(stats.accepted, ==, 0);
    CHECK_UINT(stats.open, ==, 0);
    evq_delay_server_stop(server);
    evq_delay_server_stop(NULL); /* ignored */
}

EVQ_TEST(a_port_in_use_is_reported)
{
    evq_delay_server *first = NULL, *second = NULL;
    REQUIRE_OK(evq_delay_server_start(NULL, &first));
    evq_delay_server_config config;
    evq_delay_server_config_init(&config);
    config.port = evq_delay_server_port(first);
    CHECK_ERR(evq_delay_server_start(&config, &second), EVQ_EADDRINUSE);
    CHECK(second == NULL);
    evq_delay_server_stop(first);
}

EVQ_TEST(answers_with_the_message)
{
    evq_delay_server *server = NULL;
    REQUIRE_OK(evq_delay_server_start(NULL, &server));
    raw_connection *c = NULL;
    REQUIRE_OK(raw_connect(evq_delay_server_port(server), &c));
    CHECK_OK(raw_send(c, "GET /5/hello HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"));
    raw_response r;
    CHECK_OK(raw_read_response(c, &r));
    CHECK_INT(r.status, ==, 200);
    CHECK(strncmp(r.head, "HTTP/1.1 200 OK\r\n", 17) == 0);
    CHECK(raw_has_header(&r, "Content-Type: text/plain"));
    CHECK(raw_has_header(&r, "Content-Length: 5"));
    CHECK(raw_has_header(&r, "Connection: keep-alive"));
    CHECK_STR(r.body, ==, "hello");
    raw_close(c);

    char response[256];
    int status = 0;
    const char *body = NULL;
    CHECK_OK(evq_delay_client_get(evq_delay_server_port(server), 0, "hi there", response,
                                  sizeof response, &status, &body));
    CHECK_INT(status, ==, 200);
    CHECK_STR(body, ==, "hi there");
    CHECK(strncmp(response, "HTTP/1.1 200 OK\r\n", 17) == 0);

    evq_delay_server_stats stats;
    evq_delay_server_get_stats(server, &stats);
    CHECK_UINT(stats.accepted, ==, 2);
    CHECK_UINT(stats.answered, ==, 2);
    CHECK_UINT(stats.rejected, ==, 0);
    evq_delay_server_stop(server);
}

/* ---- order and time ------------------------------------------------------------ */

EVQ_TEST(answers_come_back_shortest_delay_first)
{
    /* Sent longest first, on four connections at once; read by one thread
     * with poll(), so the order recorded is the order of arrival. */
    static const unsigned delays[] = {600, 450, 300, 150};
    enum { N = 4 };
    evq_delay_server *server = NULL;
    REQUIRE_OK(evq_delay_server_start(NULL, &server));
    raw_connection *c[N] = {0};
    for (int i = 0; i < N; i++)
        REQUIRE_OK(raw_connect(evq_delay_server_port(server), &c[i]));
    for (int i = 0; i < N; i++) {
        char request[128];
        snprintf(request, sizeof request, "GET /%u/request-%d HTTP/1.1\r\n\r\n", delays[i], i);
        CHECK_OK(raw_send(c[i], request));
    }
    int order[N];
    int arrived = 0;
    bool done[N] = {false};
    for (int round = 0; round < 100 && arrived < N; round++) {
        poll_entry entries[N];
        int index[N];
        size_t n = 0;
        for (int i = 0; i < N; i++) {
            if (done[i])
                continue;
            entries[n] = (poll_entry){.fd = c[i]->socket, .events = POLLIN};
            index[n++] = i;
        }
        if (poll_sockets(entries, n, 5000) <= 0)
            break;
        for (size_t k = 0; k < n; k++) {
            if (!entries[k].revents)
                continue;
            int i = index[k];
            raw_response r;
            CHECK_OK(raw_read_response(c[i], &r));
            char expected[32];
            snprintf(expected, sizeof expected, "request-%d", i);
            CHECK_STR(r.body, ==, expected);
            done[i] = true;
            order[arrived++] = i;
        }
    }
    REQUIRE_INT(arrived, ==, N);
    for (int k = 0; k < N; k++)
        CHECK_INT(order[k], ==, N - 1 - k); /* 150 ms first, 600 ms last */
    for (int i = 0; i < N; i++)
        raw_close(c[i]);
    evq_delay_server_stop(server);
}

EVQ_TEST(an_answer_never_comes_before_its_delay)
{
    /* A lower bound only: the clock starts before the request is sent, so
     * the server's own start is later still. */
    static const uint32_t delays[] = {0, 1, 30, 120, 250};
    evq_delay_server *server = NULL;
    REQUIRE_OK(evq_delay_server_start(NULL, &server));
    for (size_t i = 0; i < EVQ_COUNT(delays); i++) {
        char response[256];
        int status = 0;
        uint64_t start = evq_clock_now_ns();
        CHECK_OK(evq_delay_client_get(evq_delay_server_port(server), delays[i], "x", response,
                                      sizeof response, &status, NULL));
        uint64_t elapsed = evq_elapsed_ns(evq_clock_now_ns(), start);
        CHECK_INT(status, ==, 200);
        CHECK_UINT(elapsed, >=, evq_ms_to_ns(delays[i]));
    }
    evq_delay_server_stop(server);
}

/* ---- many clients -------------------------------------------------------------- */

EVQ_TEST(serves_500_clients_at_once)
{
    enum { N = 500 };
    /* Both ends of every connection live in this process. */
    REQUIRE(raw_allow_open_files(2 * N + 64));
    evq_delay_server *server = NULL;
    REQUIRE_OK(evq_delay_server_start(NULL, &server));
    uint16_t port = evq_delay_server_port(server);
    evq_socket *sockets = calloc(N, sizeof *sockets);
    REQUIRE(sockets != NULL);
    int connected = 0;
    for (; connected < N; connected++) {
        if (!CHECK_OK(evq_net_connect_loopback(port, &sockets[connected])))
            break;
        evq_socket_set_recv_timeout(sockets[connected], 20000);
    }
    /* All open at once before any request: the peak is not a matter of timing. */
    CHECK_UINT(WAIT_STAT_AT_LEAST(server, open, (uint64_t)connected), ==, (uint64_t)N);
    for (int i = 0; i < connected; i++) {
        char request[96];
        snprintf(request, sizeof request, "GET /50/client-%d HTTP/1.1\r\nConnection: close\r\n\r\n",
                 i);
        CHECK_OK(evq_net_send_all(sockets[i], request, strlen(request)));
    }
    int correct = 0;
    for (int i = 0; i < connected; i++) {
        char response[512];
        size_t n = 0;
        CHECK_OK(evq_net_recv_until_eof(sockets[i], response, sizeof response - 1, &n));
        response[n] = '\0';
        char expected[32];
        snprintf(expected, sizeof expected, "\r\n\r\nclient-%d", i);
        const char *body = strstr(response, "\r\n\r\n");
        if (strncmp(response, "HTTP/1.1 200 OK", 15) == 0 && body && strcmp(body, expected) == 0)
            correct++;
        evq_socket_close(sockets[i]);
    }
    CHECK_INT(correct, ==, N);
    evq_delay_server_stats stats;
    evq_delay_server_get_stats(server, &stats);
    CHECK_UINT(stats.peak_open, >=, N);
    CHECK_UINT(stats.accepted, ==, N);
    CHECK_UINT(stats.answered, ==, N);
    CHECK_UINT(WAIT_STAT_AT_MOST(server, open, 0), ==, 0);
    free(sockets);
    evq_delay_server_stop(server);
}

EVQ_TEST(max_clients_leaves_the_rest_waiting_in_the_backlog)
{
    evq_delay_server_config config;
    evq_delay_server_config_init(&config);
    config.max_clients = 2;
    evq_delay_server *server = NULL;
    REQUIRE_OK(evq_delay_server_start(&config, &server));
    uint16_t port = evq_delay_server_port(server);
    raw_connection *a = NULL, *b = NULL, *c = NULL;
    REQUIRE_OK(raw_connect(port, &a));
    REQUIRE_OK(raw_connect(port, &b));
    CHECK_UINT(WAIT_STAT_AT_LEAST(server, accepted, 2), ==, 2);
    REQUIRE_OK(raw_connect(port, &c)); /* completes in the backlog */
    CHECK_OK(raw_send(c, "GET /0/third HTTP/1.1\r\n\r\n"));
    /* A whole exchange on a: the server has polled since c connected, and
     * still did not take it. */
    raw_response r;
    CHECK_OK(raw_send(a, "GET /0/first HTTP/1.1\r\n\r\n"));
    CHECK_OK(raw_read_response(a, &r));
    CHECK_STR(r.body, ==, "first");
    evq_delay_server_stats stats;
    evq_delay_server_get_stats(server, &stats);
    CHECK_UINT(stats.accepted, ==, 2);
    /* One leaves: the third is accepted and answered. */
    raw_close(a);
    CHECK_OK(raw_read_response(c, &r));
    CHECK_STR(r.body, ==, "third");
    CHECK_UINT(WAIT_STAT_AT_LEAST(server, accepted, 3), ==, 3);
    raw_close(b);
    raw_close(c);
    evq_delay_server_stop(server);
}

#ifndef _WIN32
/* POSIX only: descriptors and RLIMIT_NOFILE. */
EVQ_TEST_POSIX(running_out_of_descriptors_pauses_accepting_and_recovers)
{
    evq_delay_server *server = NULL;
    REQUIRE_OK(evq_delay_server_start(NULL, &server));
    struct rlimit before;
    REQUIRE(getrlimit(RLIMIT_NOFILE, &before) == 0);
    /* The lowest free descriptor; every one below it is in use. */
    int lowest = open("/dev/null", O_RDONLY);
    REQUIRE(lowest >= 0);
    close(lowest);
    /* Leave exactly one free: the client's socket takes it, and the
     * server's accept() fails with EMFILE. */
    struct rlimit tight = before;
    tight.rlim_cur = (rlim_t)lowest + 1;
    REQUIRE(setrlimit(RLIMIT_NOFILE, &tight) == 0);
    evq_socket client;
    int rc = evq_net_connect_loopback(evq_delay_server_port(server), &client);
    if (rc == 0) {
        evq_socket_set_recv_timeout(client, 20000);
        const char *request = "GET /0/patience HTTP/1.1\r\n\r\n";
        CHECK_OK(evq_net_send_all(client, request, strlen(request)));
        evq_sleep_ms(300); /* the server tries, fails, pauses, tries again */
        evq_delay_server_stats stats;
        evq_delay_server_get_stats(server, &stats);
        CHECK_UINT(stats.accepted, ==, 0);
    }
    CHECK(setrlimit(RLIMIT_NOFILE, &before) == 0);
    REQUIRE_OK(rc);
    /* With descriptors back, the waiting client is accepted and answered. */
    char response[256];
    size_t n = 0;
    CHECK_OK(evq_net_recv(client, response, sizeof response - 1, &n));
    response[n] = '\0';
    CHECK(strstr(response, "HTTP/1.1 200 OK") == response);
    CHECK(strstr(response, "\r\n\r\npatience") != NULL);
    evq_socket_close(client);
    evq_delay_server_stop(server);
}
#endif

/* ---- connections --------------------------------------------------------------- */

EVQ_TEST(keep_alive_serves_several_requests_on_one_connection)
{
    evq_delay_server *server = NULL;
    REQUIRE_OK(evq_delay_server_start(NULL, &server));
    raw_connection *c = NULL;
    REQUIRE_OK(raw_connect(evq_delay_server_port(server), &c));
    raw_response r;
    for (int i = 0; i < 3; i++) {
        char request[64], expected[16];
        snprintf(request, sizeof request, "GET /%d/round-%d HTTP/1.1\r\n\r\n", i * 10, i);
        snprintf(expected, sizeof expected, "round-%d", i);
        CHECK_OK(raw_send(c, request));
        CHECK_OK(raw_read_response(c, &r));
        CHECK_STR(r.body, ==, expected);
        CHECK(!r.says_close);
    }
    CHECK_OK(raw_send(c, "GET /0/last HTTP/1.1\r\nConnection: close\r\n\r\n"));
    CHECK_OK(raw_read_response(c, &r));
    CHECK_STR(r.body, ==, "last");
    CHECK(r.says_close);
    CHECK_OK(raw_expect_closed(c));
    raw_close(c);
    evq_delay_server_stats stats;
    evq_delay_server_get_stats(server, &stats);
    CHECK_UINT(stats.accepted, ==, 1);
    CHECK_UINT(stats.answered, ==, 4);
    evq_delay_server_stop(server);
}

EVQ_TEST(pipelined_requests_are_answered_in_order_one_after_another)
{
    evq_delay_server *server = NULL;
    REQUIRE_OK(evq_delay_server_start(NULL, &server));
    raw_connection *c = NULL;
    REQUIRE_OK(raw_connect(evq_delay_server_port(server), &c));
    uint64_t start = evq_clock_now_ns();
    /* One send, three requests: answered in the order sent, not by delay,
     * and each delay starts after the answer before it. */
    CHECK_OK(raw_send(c, "GET /150/first HTTP/1.1\r\n\r\n"
                         "GET /0/second HTTP/1.1\r\n\r\n"
                         "GET /60/third HTTP/1.1\r\nConnection: close\r\n\r\n"));
    raw_response r;
    CHECK_OK(raw_read_response(c, &r));
    CHECK_STR(r.body, ==, "first");
    CHECK_OK(raw_read_response(c, &r));
    CHECK_STR(r.body, ==, "second");
    CHECK_OK(raw_read_response(c, &r));
    CHECK_STR(r.body, ==, "third");
    CHECK(r.says_close);
    CHECK_UINT(evq_elapsed_ns(evq_clock_now_ns(), start), >=, evq_ms_to_ns(150 + 60));
    CHECK_OK(raw_expect_closed(c));
    raw_close(c);
    evq_delay_server_stop(server);
}

EVQ_TEST(http_1_0_closes_unless_it_asks_for_keep_alive)
{
    evq_delay_server *server = NULL;
    REQUIRE_OK(evq_delay_server_start(NULL, &server));
    uint16_t port = evq_delay_server_port(server);
    raw_connection *c = NULL;
    raw_response r;
    REQUIRE_OK(raw_connect(port, &c));
    CHECK_OK(raw_send(c, "GET /0/old HTTP/1.0\r\n\r\n"));
    CHECK_OK(raw_read_response(c, &r));
    CHECK_INT(r.status, ==, 200);
    CHECK_STR(r.body, ==, "old");
    CHECK(r.says_close);
    CHECK_OK(raw_expect_closed(c));
    raw_close(c);

    REQUIRE_OK(raw_connect(port, &c));
    CHECK_OK(raw_send(c, "GET /0/one HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"));
    CHECK_OK(raw_read_response(c, &r));
    CHECK_STR(r.body, ==, "one");
    CHECK(raw_has_header(&r, "Connection: keep-alive"));
    CHECK_OK(raw_send(c, "GET /0/two HTTP/1.0\r\n\r\n"));
    CHECK_OK(raw_read_response(c, &r));
    CHECK_STR(r.body, ==, "two");
    CHECK(r.says_close);
    raw_close(c);
    evq_delay_server_stop(server);
}

/* One request on a fresh server: answered with 200 and this body. */
static void check_answered(const char *request, const char *body)
{
    evq_delay_server *server = NULL;
    REQUIRE_OK(evq_delay_server_start(NULL, &server));
    raw_connection *c = NULL;
    if (CHECK_OK(raw_connect(evq_delay_server_port(server), &c))) {
        CHECK_OK(raw_send(c, request));
        raw_response r;
        CHECK_OK(raw_read_response(c, &r));
        CHECK_INT(r.status, ==, 200);
        CHECK_STR(r.body, ==, body);
        raw_close(c);
    }
    evq_delay_server_stop(server);
}

EVQ_TEST(bare_lf_line_endings_are_accepted)
{
    check_answered("\r\nGET /0/lf HTTP/1.1\nHost: x\n\n", "lf");
}

/* ---- the message ---------------------------------------------------------------- */

EVQ_TEST(the_message_is_percent_decoded)
{
    static const struct {
        const char *path;
        const char *body;
        size_t length;
    } cases[] = {
        {"/0/a%20b%2Fc%4a", "a b/cJ", 6},
        {"/0/a+b", "a+b", 3},
        {"/0/x?query=ignored", "x", 1},
        {"/0/", "", 0},
        {"/0/nested/path", "nested/path", 11},
        {"/007/zeros", "zeros", 5},
        {"/0/%00", "\0", 1},
        {"/0/%e2%9c%93", "\xe2\x9c\x93", 3},
    };
    evq_delay_server *server = NULL;
    REQUIRE_OK(evq_delay_server_start(NULL, &server));
    raw_connection *c = NULL;
    REQUIRE_OK(raw_connect(evq_delay_server_port(server), &c));
    for (size_t i = 0; i < EVQ_COUNT(cases); i++) {
        char request[128];
        snprintf(request, sizeof request, "GET %s HTTP/1.1\r\n\r\n", cases[i].path);
        CHECK_OK(raw_send(c, request));
        raw_response r;
        if (!CHECK_OK(raw_read_response(c, &r)))
            break;
        CHECK_INT(r.status, ==, 200);
        CHECK_UINT(r.body_length, ==, cases[i].length);
        if (!CHECK_MEM(r.body, cases[i].body, cases[i].length))
            evq_test_note("path %s", cases[i].path);
    }
    raw_close(c);
    evq_delay_server_stop(server);
}

EVQ_TEST(the_client_encodes_every_byte_and_gets_it_back)
{
    char message[256];
    for (int i = 1; i < 256; i++)
        message[i - 1] = (char)i;
    message[255] = '\0';
    evq_delay_server *server = NULL;
    REQUIRE_OK(evq_delay_server_start(NULL, &server));
    char response[1024];
    int status = 0;
    const char *body = NULL;
    CHECK_OK(evq_delay_client_get(evq_delay_server_port(server), 0, message, response,
                                  sizeof response, &status, &body));
    CHECK_INT(status, ==, 200);
    REQUIRE(body != NULL);
    CHECK_UINT(strlen(body), ==, 255);
    CHECK_MEM(body, message, 255);
    evq_delay_server_stop(server);
}

/* ---- bad input ------------------------------------------------------------------ */

static const struct bad_request {
    const char *request;
    size_t length; /* 0: strlen */
    int status;
    const char *reason;
} bad_requests[] = {
    {"GET /abc/x HTTP/1.1\r\n\r\n", 0, 400, "digits only"},
    {"GET /-5/x HTTP/1.1\r\n\r\n", 0, 400, "digits only"},
    {"GET /+5/x HTTP/1.1\r\n\r\n", 0, 400, "digits only"},
    {"GET /1.5/x HTTP/1.1\r\n\r\n", 0, 400, "digits only"},
    {"GET /99999999999999999999999999999/x HTTP/1.1\r\n\r\n", 0, 400,
     "above the maximum of 60000 ms"},
    {"GET /60001/x HTTP/1.1\r\n\r\n", 0, 400, "above the maximum of 60000 ms"},
    {"GET //x HTTP/1.1\r\n\r\n", 0, 400, "no delay_ms"},
    {"GET /100 HTTP/1.1\r\n\r\n", 0, 400, "must look like"},
    {"GET / HTTP/1.1\r\n\r\n", 0, 400, "must look like"},
    {"GET x/100/y HTTP/1.1\r\n\r\n", 0, 400, "must start with '/'"},
    {"GET http://127.0.0.1/100/y HTTP/1.1\r\n\r\n", 0, 400, "must start with '/'"},
    {"GET /0/a%zz HTTP/1.1\r\n\r\n", 0, 400, "percent escape"},
    {"GET /0/a%4 HTTP/1.1\r\n\r\n", 0, 400, "percent escape"},
    {"GET /0/a% HTTP/1.1\r\n\r\n", 0, 400, "percent escape"},
    {"GET /100/x\r\n\r\n", 0, 400, "malformed request line"},
    {"GET\r\n\r\n", 0, 400, "malformed request line"},
    {"GET  /100/x HTTP/1.1\r\n\r\n", 0, 400, "malformed request line"},
    {"GET /100/x HTTP/1.1 extra\r\n\r\n", 0, 400, "malformed request line"},
    {"GET /100/x FOO/1.1\r\n\r\n", 0, 400, "malformed HTTP version"},
    {"GET /100/x HTTP/1\r\n\r\n", 0, 400, "malformed HTTP version"},
    {"GET /100/x HTTP/2.0\r\n\r\n", 0, 505, "only HTTP/1.0 and HTTP/1.1"},
    {"G@T /100/x HTTP/1.1\r\n\r\n", 0, 400, "not a token"},
    {"POST /100/x HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 0, 405, "only GET"},
    {"DELETE /100/x HTTP/1.1\r\n\r\n", 0, 405, "only GET"},
    {"get /100/x HTTP/1.1\r\n\r\n", 0, 405, "only GET"},
    {"GET /100/x HTTP/1.1\r\nHost 127.0.0.1\r\n\r\n", 0, 400, "no colon"},
    {"GET /100/x HTTP/1.1\r\nHost : 127.0.0.1\r\n\r\n", 0, 400, "header name"},
    {"GET /100/x HTTP/1.1\r\n: nameless\r\n\r\n", 0, 400, "header name"},
    {"GET /100/x HTTP/1.1\r\nX-A: 1\r\n folded\r\n\r\n", 0, 400, "folding"},
    {"GET /100/x HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello", 0, 400, "Content-Length"},
    {"GET /100/x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 0, 400,
     "Transfer-Encoding"},
    {"GET /100/x HTTP/1.1\rHost: a\r\n\r\n", 0, 400, "CR"},
    {"GET /1\x01/x HTTP/1.1\r\n\r\n", 0, 400, "not visible ASCII"},
    {"GET /0/a\x7f HTTP/1.1\r\n\r\n", 0, 400, "not visible ASCII"},
    {"GET /0/caf\xc3\xa9 HTTP/1.1\r\n\r\n", 0, 400, "not visible ASCII"},
    {"GET /0/x HTTP/1.1\r\nX-Color: \x1b[31mred\r\n\r\n", 0, 400, "control character"},
    {"GET /0/a\0b HTTP/1.1\r\n\r\n", sizeof "GET /0/a\0b HTTP/1.1\r\n\r\n" - 1, 400, "NUL"},
};

EVQ_TEST(bad_requests_get_a_clear_answer_and_the_server_goes_on)
{
    evq_delay_server *server = NULL;
    REQUIRE_OK(evq_delay_server_start(NULL, &server));
    uint16_t port = evq_delay_server_port(server);
    for (size_t i = 0; i < EVQ_COUNT(bad_requests); i++) {
        const struct bad_request *bad = &bad_requests[i];
        raw_connection *c = NULL;
        REQUIRE_OK(raw_connect(port, &c));
        size_t length = bad->length ? bad->length : strlen(bad->request);
        CHECK_OK(raw_send_bytes(c, bad->request, length));
        raw_response r;
        int failures = evq_test_failures();
        if (CHECK_OK(raw_read_response(c, &r))) {
            CHECK_INT(r.status, ==, bad->status);
            CHECK(strstr(r.body, bad->reason) != NULL);
            /* one line of text */
            CHECK(r.body_length > 0 && strchr(r.body, '\n') == r.body + r.body_length - 1);
            CHECK(r.says_close);
            if (bad->status == 405)
                CHECK(raw_has_header(&r, "Allow: GET"));
            CHECK_OK(raw_expect_closed(c));
        }
        if (evq_test_failures() != failures)
            evq_test_note("bad request #%zu: answered %d \"%.*s\"", i, r.status,
                          (int)r.body_length - 1, r.body);
        raw_close(c);
    }
    CHECK(raw_server_still_answers(port));
    evq_delay_server_stats stats;
    evq_delay_server_get_stats(server, &stats);
    CHECK_UINT(stats.rejected, ==, EVQ_COUNT(bad_requests));
    CHECK_UINT(stats.answered, ==, 1);
    evq_delay_server_stop(server);
}

EVQ_TEST(a_header_value_may_hold_tabs_and_bytes_above_0x7f)
{
    /* RFC 9110's field-value: visible ASCII, SP, HTAB and obs-text, as
     * chapter 3's parser takes it. */
    check_answered("GET /0/caf%C3%A9 HTTP/1.1\r\nX-Name: caf\xc3\xa9\tau lait\r\n\r\n",
                   "caf\xc3\xa9");
}

EVQ_TEST(an_error_ends_a_keep_alive_connection)
{
    evq_delay_server *server = NULL;
    REQUIRE_OK(evq_delay_server_start(NULL, &server));
    raw_connection *c = NULL;
    REQUIRE_OK(raw_connect(evq_delay_server_port(server), &c));
    /* A good request, a bad one, then one that must never be answered. */
    CHECK_OK(raw_send(c, "GET /0/good HTTP/1.1\r\n\r\n"
                         "GET /zz/bad HTTP/1.1\r\n\r\n"
                         "GET /0/never HTTP/1.1\r\n\r\n"));
    raw_response r;
    CHECK_OK(raw_read_response(c, &r));
    CHECK_STR(r.body, ==, "good");
    CHECK_OK(raw_read_response(c, &r));
    CHECK_INT(r.status, ==, 400);
    CHECK_OK(raw_expect_closed(c));
    raw_close(c);
    evq_delay_server_stop(server);
}

EVQ_TEST(the_maximum_delay_is_configurable)
{
    evq_delay_server *server = raw_start_server(0, 300);
    REQUIRE(server != NULL);
    uint16_t port = evq_delay_server_port(server);
    char response[256];
    int status = 0;
    const char *body = NULL;
    CHECK_OK(evq_delay_client_get(port, 301, "x", response, sizeof response, &status, &body));
    CHECK_INT(status, ==, 400);
    CHECK_STR(body, ==, "delay_ms is above the maximum of 300 ms\n");
    CHECK_OK(evq_delay_client_get(port, 300, "x", response, sizeof response, &status, &body));
    CHECK_INT(status, ==, 200);
    CHECK_STR(body, ==, "x");
    evq_delay_server_stop(server);
}

/* A request head of exactly `length` bytes, padded with a header. */
static char *head_of_length(size_t length)
{
    static const char start[] = "GET /0/x HTTP/1.1\r\nX-Pad: ";
    static const char end[] = "\r\n\r\n";
    char *head = malloc(length + 1);
    if (!head)
        return NULL;
    size_t pad = length - (sizeof start - 1) - (sizeof end - 1);
    memcpy(head, start, sizeof start - 1);
    memset(head + sizeof start - 1, 'a', pad);
    memcpy(head + sizeof start - 1 + pad, end, sizeof end);
    return head;
}

EVQ_TEST(a_head_over_8_kib_gets_431)
{
    evq_delay_server *server = NULL;
    REQUIRE_OK(evq_delay_server_start(NULL, &server));
    uint16_t port = evq_delay_server_port(server);
    raw_connection *c = NULL;
    raw_response r;

    char *head = head_of_length(EVQ_DELAY_SERVER_MAX_HEAD); /* the largest allowed */
    REQUIRE(head != NULL);
    REQUIRE_OK(raw_connect(port, &c));
    CHECK_OK(raw_send(c, head));
    CHECK_OK(raw_read_response(c, &r));
    CHECK_INT(r.status, ==, 200);
    raw_close(c);
    free(head);

    head = head_of_length(EVQ_DELAY_SERVER_MAX_HEAD + 1);
    REQUIRE(head != NULL);
    REQUIRE_OK(raw_connect(port, &c));
    CHECK_OK(raw_send(c, head));
    CHECK_OK(raw_read_response(c, &r));
    CHECK_INT(r.status, ==, 431);
    CHECK(r.says_close);
    CHECK_OK(raw_expect_closed(c));
    raw_close(c);
    free(head);

    /* 40 KiB with no line end at all: the server answers after 8 KiB and
     * drops the rest, so the answer is not lost to a reset. */
    size_t flood_length = 40 * 1024;
    char *flood = malloc(flood_length);
    REQUIRE(flood != NULL);
    memset(flood, 'z', flood_length);
    REQUIRE_OK(raw_connect(port, &c));
    CHECK_OK(raw_send_bytes(c, flood, flood_length));
    CHECK_OK(raw_read_response(c, &r));
    CHECK_INT(r.status, ==, 431);
    CHECK_STR(r.body, ==, "the request head is larger than 8192 bytes\n");
    /* A FIN, not a reset: closing with those bytes unread would have sent an
     * RST, and Windows clients drop a response they have not read yet when
     * one arrives. The server shuts down its side and drains instead. */
    char byte;
    size_t n = 99;
    CHECK_OK(evq_net_recv(c->socket, &byte, 1, &n));
    CHECK_UINT(n, ==, 0);
    raw_close(c);
    free(flood);

    CHECK(raw_server_still_answers(port));
    evq_delay_server_stop(server);
}

/* ---- rude clients --------------------------------------------------------------- */

EVQ_TEST(a_request_sent_one_byte_at_a_time_is_answered)
{
    evq_delay_server *server = NULL;
    REQUIRE_OK(evq_delay_server_start(NULL, &server));
    raw_connection *c = NULL;
    REQUIRE_OK(raw_connect(evq_delay_server_port(server), &c));
    const char *request = "GET /10/slow%20bytes HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    for (const char *p = request; *p; p++) {
        CHECK_OK(raw_send_bytes(c, p, 1));
        evq_sleep_ms(1); /* so that the bytes arrive apart (TCP_NODELAY is on) */
    }
    raw_response r;
    CHECK_OK(raw_read_response(c, &r));
    CHECK_INT(r.status, ==, 200);
    CHECK_STR(r.body, ==, "slow bytes");
    raw_close(c);
    evq_delay_server_stop(server);
}

EVQ_TEST(a_client_that_leaves_before_its_answer_is_counted_and_forgotten)
{
    evq_delay_server *server = NULL;
    REQUIRE_OK(evq_delay_server_start(NULL, &server));
    uint16_t port = evq_delay_server_port(server);
    raw_connection *c = NULL;
    evq_delay_server_stats before, after;

    /* Resets while the answer waits: gone at once, its answer dropped.
     * Wine turns this reset into a plain close, which the server takes as
     * the end of the requests (as below): it answers when due, and only
     * then may find the client gone. */
    evq_socket s;
    REQUIRE_OK(evq_net_connect_loopback(port, &s));
    const char *request = "GET /100/reset HTTP/1.1\r\n\r\n";
    CHECK_OK(evq_net_send_all(s, request, strlen(request)));
    CHECK_OK(evq_socket_close_with_reset(s));
    CHECK_UINT(WAIT_STAT_AT_LEAST(server, accepted, 1), ==, 1);
    CHECK_UINT(WAIT_STAT_AT_MOST(server, open, 0), ==, 0);
    evq_delay_server_get_stats(server, &before);
#ifdef _WIN32
    CHECK(before.disconnected == 1 || before.answered == 1);
#else
    CHECK_UINT(before.disconnected, ==, 1);
    CHECK_UINT(before.answered, ==, 0);
#endif

    /* Leaves in the middle of a request. */
    REQUIRE_OK(raw_connect(port, &c));
    CHECK_OK(raw_send(c, "GET /10/half"));
    raw_close(c);
    CHECK_UINT(WAIT_STAT_AT_LEAST(server, disconnected, before.disconnected + 1), ==,
               before.disconnected + 1);

    /* Connects and leaves without a word: not a disconnection, a goodbye. */
    REQUIRE_OK(raw_connect(port, &c));
    raw_close(c);

    /* Closes while the answer waits: to the server that is the end of the
     * requests, as a half-close is (the two look the same until it writes),
     * so the answer is written when due, and then the connection closes. */
    REQUIRE_OK(raw_connect(port, &c));
    CHECK_OK(raw_send(c, "GET /50/into-the-void HTTP/1.1\r\n\r\n"));
    raw_close(c);
    CHECK_UINT(WAIT_STAT_AT_LEAST(server, answered, before.answered + 1), ==, before.answered + 1);

    CHECK_UINT(WAIT_STAT_AT_MOST(server, open, 0), ==, 0);
    CHECK(raw_server_still_answers(port));
    evq_delay_server_get_stats(server, &after);
    CHECK_UINT(after.accepted, ==, 5);
    CHECK_UINT(after.answered - before.answered, ==, 2); /* into-the-void and still-answers */
#ifndef _WIN32
    CHECK_UINT(after.disconnected - before.disconnected, ==, 1); /* the half request */
#endif
    evq_delay_server_stop(server);
}

EVQ_TEST(the_header_timeout_closes_stalled_connections)
{
    evq_delay_server *server = raw_start_server(200, 0);
    REQUIRE(server != NULL);
    uint16_t port = evq_delay_server_port(server);
    raw_connection *half = NULL, *idle = NULL;
    REQUIRE_OK(raw_connect(port, &half));
    REQUIRE_OK(raw_connect(port, &idle));
    CHECK_OK(raw_send(half, "GET /10/never-finished HTTP/1.1\r\nHost: x\r\n"));

    raw_response r;
    CHECK_OK(raw_read_response(half, &r)); /* the server says why */
    CHECK_INT(r.status, ==, 408);
    CHECK(r.says_close);
    CHECK_OK(raw_expect_closed(half));
    CHECK_OK(raw_expect_closed(idle)); /* silently */
    CHECK_UINT(WAIT_STAT_AT_LEAST(server, timed_out, 2), ==, 2);
    raw_close(half);
    raw_close(idle);

    /* A keep-alive connection that goes quiet after an answer is closed too. */
    raw_connection *c = NULL;
    REQUIRE_OK(raw_connect(port, &c));
    CHECK_OK(raw_send(c, "GET /0/then-quiet HTTP/1.1\r\n\r\n"));
    CHECK_OK(raw_read_response(c, &r));
    CHECK_STR(r.body, ==, "then-quiet");
    CHECK_OK(raw_expect_closed(c));
    raw_close(c);

    CHECK(raw_server_still_answers(port));
    CHECK_UINT(WAIT_STAT_AT_MOST(server, open, 0), ==, 0);
    evq_delay_server_stats stats;
    evq_delay_server_get_stats(server, &stats);
    CHECK_UINT(stats.timed_out, ==, 3);
    evq_delay_server_stop(server);
}

/* A server on a clock the test moves: header timeout 10 s of that clock. */
static evq_delay_server *start_on_clock(shared_clock *clock)
{
    evq_delay_server_config config;
    evq_delay_server_config_init(&config);
    config.header_timeout_ms = 10000;
    config.clock = shared_clock_as_clock(clock);
    evq_delay_server *server = NULL;
    int rc = evq_delay_server_start(&config, &server);
    if (rc != 0)
        evq_test_fail(__FILE__, __LINE__, "evq_delay_server_start: %s", evq_error_name(rc));
    return server;
}

EVQ_TEST(the_head_deadline_is_not_moved_by_each_byte)
{
    /* Slowloris: a byte every second, each well inside the 10 s timeout.
     * The whole head has 10 s from the moment the connection is accepted;
     * a timer restarted by every byte would hold the connection until the
     * head reached 8 KiB (2.3 hours at this pace). */
    shared_clock clock;
    REQUIRE_OK(shared_clock_init(&clock, evq_ms_to_ns(1000)));
    evq_delay_server *server = start_on_clock(&clock);
    REQUIRE(server != NULL);
    uint16_t port = evq_delay_server_port(server);
    raw_connection *slow = NULL, *waker = NULL;
    REQUIRE_OK(raw_connect(port, &slow));
    CHECK_UINT(WAIT_STAT_AT_LEAST(server, accepted, 1), ==, 1); /* accepted at 1 s */
    static const char start[] = "GET /0/slow HTTP/1.1\r\nX-Trickle: ";
    CHECK_OK(raw_send(slow, start));
    uint64_t sent = sizeof start - 1;
    CHECK_UINT(WAIT_STAT_AT_LEAST(server, received, sent), ==, sent);
    for (int second = 0; second < 9; second++) { /* to 10 s: not late yet */
        shared_clock_advance_ms(&clock, 1000);
        CHECK_OK(raw_send(slow, "a"));
        sent++;
        /* The server has read the byte (at the time just set) before time moves on. */
        CHECK_UINT(WAIT_STAT_AT_LEAST(server, received, sent), ==, sent);
    }
    evq_delay_server_stats stats;
    evq_delay_server_get_stats(server, &stats);
    CHECK_UINT(stats.timed_out, ==, 0);
    /* 12 s: the head is 1 s late, though its last byte is only 2 s old. A
     * new client wakes the server (without touching the slow connection,
     * whose next byte could race with the close and reset it). */
    shared_clock_advance_ms(&clock, 2000);
    REQUIRE_OK(raw_connect(port, &waker));
    raw_response r;
    if (CHECK_OK(raw_read_response(slow, &r))) {
        CHECK_INT(r.status, ==, 408);
        CHECK(r.says_close);
        CHECK_OK(raw_expect_closed(slow));
    }
    CHECK_UINT(WAIT_STAT_AT_LEAST(server, timed_out, 1), ==, 1);
    raw_close(slow);
    raw_close(waker);
    evq_delay_server_stop(server);
    shared_clock_destroy(&clock);
}

EVQ_TEST(the_head_deadline_starts_again_when_an_answer_has_been_sent)
{
    /* The deadline is fixed from the end of the previous answer (or from
     * accept): a keep-alive client is not cut off because its connection is
     * older than the timeout, and an idle one still goes. */
    shared_clock clock;
    REQUIRE_OK(shared_clock_init(&clock, evq_ms_to_ns(1000)));
    evq_delay_server *server = start_on_clock(&clock);
    REQUIRE(server != NULL);
    uint16_t port = evq_delay_server_port(server);
    raw_connection *c = NULL, *waker = NULL;
    REQUIRE_OK(raw_connect(port, &c));
    CHECK_UINT(WAIT_STAT_AT_LEAST(server, accepted, 1), ==, 1);
    raw_response r;
    shared_clock_advance_ms(&clock, 8000); /* 9 s: inside the first 10 s */
    CHECK_OK(raw_send(c, "GET /0/first HTTP/1.1\r\n\r\n"));
    CHECK_OK(raw_read_response(c, &r));
    CHECK_STR(r.body, ==, "first");
    shared_clock_advance_ms(&clock, 8000); /* 17 s: 16 s after accept, 8 s after the answer */
    CHECK_OK(raw_send(c, "GET /0/second HTTP/1.1\r\n\r\n"));
    CHECK_OK(raw_read_response(c, &r));
    CHECK_INT(r.status, ==, 200);
    CHECK_STR(r.body, ==, "second");
    shared_clock_advance_ms(&clock, 10000); /* 27 s: 10 s of silence after an answer */
    REQUIRE_OK(raw_connect(port, &waker));
    CHECK_OK(raw_expect_closed(c)); /* an idle keep-alive connection goes without a word */
    CHECK_UINT(WAIT_STAT_AT_LEAST(server, timed_out, 1), ==, 1);
    raw_close(c);
    raw_close(waker);
    evq_delay_server_stop(server);
    shared_clock_destroy(&clock);
}

EVQ_TEST(requests_sent_before_a_half_close_are_all_answered_in_order)
{
    /* `printf '...' | nc -N`: the requests, then shutdown(SHUT_WR). The end
     * of the stream says "no more requests", not "gone": what was asked is
     * answered, then the server closes. */
    evq_delay_server *server = NULL;
    REQUIRE_OK(evq_delay_server_start(NULL, &server));
    uint16_t port = evq_delay_server_port(server);
    static const struct {
        const char *requests;
        const char *bodies[3];
    } rounds[] = {
        {"GET /0/one HTTP/1.1\r\n\r\nGET /0/two HTTP/1.1\r\n\r\nGET /0/three HTTP/1.1\r\n\r\n",
         {"one", "two", "three"}},
        /* The first answer's delay has not run when the end arrives. */
        {"GET /100/later HTTP/1.1\r\n\r\nGET /0/next HTTP/1.1\r\n\r\n", {"later", "next"}},
        /* A request cut off by the end gets nothing; the whole one before it does. */
        {"GET /30/whole HTTP/1.1\r\n\r\nGET /0/cut", {"whole"}},
    };
    uint64_t answered = 0;
    for (size_t i = 0; i < EVQ_COUNT(rounds); i++) {
        raw_connection *c = NULL;
        REQUIRE_OK(raw_connect(port, &c));
        CHECK_OK(raw_send(c, rounds[i].requests));
        CHECK_OK(raw_shutdown_sending(c));
        for (size_t k = 0; k < 3 && rounds[i].bodies[k]; k++) {
            raw_response r;
            if (!CHECK_OK(raw_read_response(c, &r))) {
                evq_test_note("round %zu: answer %zu of the requests before the end is missing", i,
                              k + 1);
                break;
            }
            CHECK_INT(r.status, ==, 200);
            CHECK_STR(r.body, ==, rounds[i].bodies[k]);
            answered++;
        }
        CHECK_OK(raw_expect_closed(c));
        raw_close(c);
    }
    CHECK_UINT(WAIT_STAT_AT_MOST(server, open, 0), ==, 0);
    evq_delay_server_stats stats;
    evq_delay_server_get_stats(server, &stats);
    CHECK_UINT(stats.answered, ==, answered);
    CHECK_UINT(stats.answered, ==, 6);
    CHECK_UINT(stats.disconnected, ==, 1); /* the cut-off request */
    evq_delay_server_stop(server);
}

/* Send pipelined requests for 6000-byte answers on s and never read one.
 * Stops when the connection fails, when the server has timed it out, or
 * (until_stalled) when the server has stopped reading: 40 sends in a row,
 * 200 ms, would block. At most ~20 s. Returns the bytes sent. */
static uint64_t flood_without_reading(evq_delay_server *server, evq_socket s, bool until_stalled)
{
    int small = 4096;
    setsockopt(s, SOL_SOCKET, SO_RCVBUF, (const char *)&small, sizeof small);
    if (evq_socket_set_nonblocking(s, true) != 0)
        return 0;
    char request[6100];
    int n = snprintf(request, sizeof request, "GET /0/");
    memset(request + n, 'm', 6000);
    snprintf(request + n + 6000, sizeof request - (size_t)n - 6000, " HTTP/1.1\r\n\r\n");
    size_t length = strlen(request);

    size_t offset = 0;
    uint64_t sent_total = 0;
    int blocked_in_a_row = 0;
    for (int round = 0; round < 4000; round++) {
        int sent = (int)send(s, request + offset, (int)(length - offset), EVQ_SEND_FLAGS);
        if (sent > 0) {
            offset = (offset + (size_t)sent) % length;
            sent_total += (uint64_t)sent;
            blocked_in_a_row = 0;
            continue;
        }
        int rc = evq_socket_last_error();
        if (rc != EVQ_EWOULDBLOCK && rc != EVQ_EINTR)
            break; /* the server has closed: EPIPE or a reset */
        evq_delay_server_stats stats;
        evq_delay_server_get_stats(server, &stats);
        if (stats.timed_out > 0 || (until_stalled && ++blocked_in_a_row >= 40))
            break;
        evq_sleep_ms(5);
    }
    return sent_total;
}

EVQ_TEST(a_client_that_never_reads_its_answers_is_dropped)
{
    /* The server's writes stall, and the stall timeout ends the connection. */
    evq_delay_server *server = raw_start_server(300, 0);
    REQUIRE(server != NULL);
    uint16_t port = evq_delay_server_port(server);
    evq_socket s;
    REQUIRE_OK(evq_net_connect_loopback(port, &s));
    uint64_t sent = flood_without_reading(server, s, false);
    CHECK_UINT(WAIT_STAT_AT_LEAST(server, timed_out, 1), ==, 1);
    CHECK_UINT(WAIT_STAT_AT_MOST(server, open, 0), ==, 0);
    evq_test_note("sent %llu bytes of requests before the server gave up",
                  (unsigned long long)sent);
    evq_socket_close(s);
    CHECK(raw_server_still_answers(port));
    evq_delay_server_stop(server);
}

EVQ_TEST(a_client_that_resets_in_the_middle_of_an_answer_is_counted)
{
    /* The default header timeout (10 s): the reset, not a timeout, ends it. */
    evq_delay_server *server = NULL;
    REQUIRE_OK(evq_delay_server_start(NULL, &server));
    uint16_t port = evq_delay_server_port(server);
    evq_socket s;
    REQUIRE_OK(evq_net_connect_loopback(port, &s));
    flood_without_reading(server, s, true); /* the server is stuck writing now */
    /* Closing with unread bytes resets, on Linux and under Wine alike. */
    CHECK_OK(evq_socket_close_with_reset(s));
    CHECK_UINT(WAIT_STAT_AT_LEAST(server, disconnected, 1), ==, 1);
    CHECK_UINT(WAIT_STAT_AT_MOST(server, open, 0), ==, 0);
    evq_delay_server_stats stats;
    evq_delay_server_get_stats(server, &stats);
    CHECK_UINT(stats.timed_out, ==, 0);
    CHECK_UINT(stats.answered, >, 0);
    CHECK(raw_server_still_answers(port));
    evq_delay_server_stop(server);
}

/* ---- stopping ------------------------------------------------------------------- */

EVQ_TEST(stop_drops_pending_answers_and_closes_every_connection)
{
    enum { WAITING = 20, HALF = 5, IDLE = 5, N = WAITING + HALF + IDLE };
    evq_delay_server *server = NULL;
    REQUIRE_OK(evq_delay_server_start(NULL, &server));
    uint16_t port = evq_delay_server_port(server);
    raw_connection *c[N] = {0};
    for (int i = 0; i < N; i++) {
        REQUIRE_OK(raw_connect(port, &c[i]));
        if (i < WAITING)
            CHECK_OK(raw_send(c[i], "GET /60000/much-later HTTP/1.1\r\n\r\n"));
        else if (i < WAITING + HALF)
            CHECK_OK(raw_send(c[i], "GET /60000/unfini"));
    }
    CHECK_UINT(WAIT_STAT_AT_LEAST(server, open, N), ==, N);
    CHECK(raw_server_still_answers(port)); /* the requests above have been read by now */

    uint64_t start = evq_clock_now_ns();
    evq_delay_server_stop(server);
    /* Not waiting for the 60 s answers is the point; the bound is generous. */
    CHECK_UINT(evq_elapsed_ns(evq_clock_now_ns(), start), <, evq_ms_to_ns(20000));
    for (int i = 0; i < N; i++) {
        CHECK_OK(raw_expect_closed(c[i])); /* closed, with no answer */
        raw_close(c[i]);
    }
}

EVQ_TEST(start_and_stop_many_times)
{
    for (int i = 0; i < 50; i++) {
        evq_delay_server *server = NULL;
        if (!CHECK_OK(evq_delay_server_start(NULL, &server)))
            break;
        if (i % 10 == 0)
            CHECK(raw_server_still_answers(evq_delay_server_port(server)));
        if (i % 10 == 5) { /* stop with a connection open and an answer pending */
            raw_connection *c = NULL;
            if (CHECK_OK(raw_connect(evq_delay_server_port(server), &c))) {
                CHECK_OK(raw_send(c, "GET /60000/pending HTTP/1.1\r\n\r\n"));
                evq_delay_server_stop(server);
                raw_close(c);
                continue;
            }
        }
        evq_delay_server_stop(server);
    }
}

/* ---- the blocking client's errors ------------------------------------------------- */

struct one_shot_peer {
    evq_socket listener;
};

/* Accept one connection, read its request head, close without answering. */
static void close_without_answer(void *arg)
{
    struct one_shot_peer *peer = arg;
    evq_socket s;
    if (evq_net_accept(peer->listener, &s) != 0)
        return;
    char buffer[1024];
    size_t total = 0, n = 0;
    while (total < sizeof buffer - 1 &&
           evq_net_recv(s, buffer + total, sizeof buffer - 1 - total, &n) == 0 && n > 0) {
        total += n;
        buffer[total] = '\0';
        if (strstr(buffer, "\r\n\r\n"))
            break;
    }
    evq_socket_close(s);
}

EVQ_TEST(the_client_reports_errors)
{
    char response[64];
    int status = -1;
    const char *body = "unchanged";
    CHECK_ERR(evq_delay_client_get(1, 0, NULL, response, sizeof response, &status, &body),
              EVQ_EINVAL);
    CHECK_INT(status, ==, 0);
    CHECK(body == NULL);
    CHECK_ERR(evq_delay_client_get(1, 0, "x", NULL, 10, NULL, NULL), EVQ_EINVAL);
    CHECK_ERR(evq_delay_client_get(1, 0, "x", response, 0, NULL, NULL), EVQ_EINVAL);

    /* Nothing listens. */
    evq_socket listener;
    uint16_t port = 0;
    REQUIRE_OK(evq_net_listen_loopback(0, 4, &listener, &port));
    evq_socket_close(listener);
    CHECK_ERR(evq_delay_client_get(port, 0, "x", response, sizeof response, NULL, NULL),
              EVQ_ECONNREFUSED);

    /* The response does not fit. */
    evq_delay_server *server = NULL;
    REQUIRE_OK(evq_delay_server_start(NULL, &server));
    char long_message[200];
    memset(long_message, 'L', sizeof long_message - 1);
    long_message[sizeof long_message - 1] = '\0';
    CHECK_ERR(evq_delay_client_get(evq_delay_server_port(server), 0, long_message, response,
                                   sizeof response, NULL, NULL),
              EVQ_EMSGSIZE);
    evq_delay_server_stop(server);

    /* The peer closes without a word. */
    struct one_shot_peer peer;
    REQUIRE_OK(evq_net_listen_loopback(0, 4, &peer.listener, &port));
    evq_thread thread;
    REQUIRE_OK(evq_thread_start(&thread, close_without_answer, &peer));
    CHECK_ERR(evq_delay_client_get(port, 0, "x", response, sizeof response, NULL, NULL), EVQ_EOF);
    evq_thread_join(&thread);
    evq_socket_close(peer.listener);
}

int main(int argc, char **argv)
{
    static const evq_test_case cases[] = {
        EVQ_CASE(start_picks_a_port_and_stop_frees_everything),
        EVQ_CASE(a_port_in_use_is_reported),
        EVQ_CASE(answers_with_the_message),
        EVQ_CASE(answers_come_back_shortest_delay_first),
        EVQ_CASE(an_answer_never_comes_before_its_delay),
        EVQ_CASE(serves_500_clients_at_once),
        EVQ_CASE(max_clients_leaves_the_rest_waiting_in_the_backlog),
#ifndef _WIN32
        EVQ_CASE(running_out_of_descriptors_pauses_accepting_and_recovers),
#endif
        EVQ_CASE(keep_alive_serves_several_requests_on_one_connection),
        EVQ_CASE(pipelined_requests_are_answered_in_order_one_after_another),
        EVQ_CASE(http_1_0_closes_unless_it_asks_for_keep_alive),
        EVQ_CASE(bare_lf_line_endings_are_accepted),
        EVQ_CASE(the_message_is_percent_decoded),
        EVQ_CASE(the_client_encodes_every_byte_and_gets_it_back),
        EVQ_CASE(bad_requests_get_a_clear_answer_and_the_server_goes_on),
        EVQ_CASE(a_header_value_may_hold_tabs_and_bytes_above_0x7f),
        EVQ_CASE(an_error_ends_a_keep_alive_connection),
        EVQ_CASE(the_maximum_delay_is_configurable),
        EVQ_CASE(a_head_over_8_kib_gets_431),
        EVQ_CASE(a_request_sent_one_byte_at_a_time_is_answered),
        EVQ_CASE(a_client_that_leaves_before_its_answer_is_counted_and_forgotten),
        EVQ_CASE(the_header_timeout_closes_stalled_connections),
        EVQ_CASE(the_head_deadline_is_not_moved_by_each_byte),
        EVQ_CASE(the_head_deadline_starts_again_when_an_answer_has_been_sent),
        EVQ_CASE(requests_sent_before_a_half_close_are_all_answered_in_order),
        EVQ_CASE(a_client_that_never_reads_its_answers_is_dropped),
        EVQ_CASE(a_client_that_resets_in_the_middle_of_an_answer_is_counted),
        EVQ_CASE(stop_drops_pending_answers_and_closes_every_connection),
        EVQ_CASE(start_and_stop_many_times),
        EVQ_CASE(the_client_reports_errors),
    };
    return evq_test_main(argc, argv, cases, EVQ_COUNT(cases));
}

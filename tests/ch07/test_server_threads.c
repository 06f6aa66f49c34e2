/* test_server_threads.c - chapter 7's server on four loop threads, in both
 * designs, under load: echo and HTTP clients at once, every byte and every
 * answer checked, then a stop while the load is over and the counters add
 * up. Run under TSan (the tsan preset) it checks the shared design's locked
 * table, the per-thread design's "nothing shared", the stats channel and
 * the stop that reaches every loop.
 */
#if !defined(_WIN32) && !defined(_POSIX_C_SOURCE) && !defined(__APPLE__)
#define _POSIX_C_SOURCE 200809L
#endif
#include "server_client.h"

enum { HTTP_CLIENTS = 4, HTTP_CONNECTIONS = 8, HTTP_REQUESTS = SERVER_TEST_SLOW ? 10 : 40 };

typedef struct http_job {
    uint16_t port;
    uint64_t answers; /* 200 answers with the right body */
    int error;
} http_job;

/* Keep-alive connections, two requests pipelined in each send. */
static void http_client(void *arg)
{
    http_job *job = arg;
    client *clients[HTTP_CONNECTIONS] = {0};
    for (int i = 0; i < HTTP_CONNECTIONS && job->error == 0; i++) {
        clients[i] = client_open(job->port);
        if (!clients[i])
            job->error = EVQ_ECONNREFUSED;
    }
    for (int round = 0; round < HTTP_REQUESTS / 2 && job->error == 0; round++) {
        for (int i = 0; i < HTTP_CONNECTIONS && job->error == 0; i++)
            job->error = client_send(clients[i], "GET /bytes/1000 HTTP/1.1\r\n\r\n"
                                                 "GET /bytes/20000 HTTP/1.1\r\n\r\n");
        for (int i = 0; i < HTTP_CONNECTIONS && job->error == 0; i++) {
            for (int k = 0; k < 2 && job->error == 0; k++) {
                response r;
                job->error = read_response(clients[i], &r, false, sizeof clients[i]->buffer);
                uint64_t size = k == 0 ? 1000 : 20000;
                if (job->error == 0 && r.status == 200 && r.body_length == size &&
                    r.pattern_differs == UINT64_MAX)
                    job->answers++;
            }
        }
    }
    for (int i = 0; i < HTTP_CONNECTIONS; i++)
        client_close(clients[i]);
}

static void load_on_four_threads(enum server_design design)
{
    server_config config;
    test_config(&config);
    config.stats_interval_ms = 10; /* reports through the channel, during the load */
    bool refused;
    server *s = start_design(&config, 4, design, &refused);
    if (refused)
        return;
    REQUIRE(s != NULL);
    http_job jobs[HTTP_CLIENTS];
    evq_thread threads[HTTP_CLIENTS];
    for (int t = 0; t < HTTP_CLIENTS; t++) {
        jobs[t] = (http_job){server_port(s, SERVER_HTTP), 0, 0};
        CHECK_OK(evq_thread_start(&threads[t], http_client, &jobs[t]));
    }
    uint32_t connections = SERVER_TEST_SLOW ? 40 : ECHO_CONNECTIONS;
    uint64_t total = SERVER_TEST_SLOW ? UINT64_C(4) << 20 : ECHO_TOTAL;
    uint64_t echoed = run_echo_load(server_port(s, SERVER_ECHO), connections, total);
    uint64_t answers = 0;
    for (int t = 0; t < HTTP_CLIENTS; t++) {
        CHECK_OK(evq_thread_join(&threads[t]));
        CHECK_OK(jobs[t].error);
        answers += jobs[t].answers;
    }
    CHECK_UINT(answers, ==, HTTP_CLIENTS * HTTP_CONNECTIONS * (HTTP_REQUESTS / 2) * 2);
    uint64_t accepted = connections + HTTP_CLIENTS * HTTP_CONNECTIONS;
    CHECK_UINT(wait_open(s, 0), ==, 0);
    server_stats totals;
    CHECK_OK(server_stop(s, &totals));
    evq_test_note("%s: %llu accepted, %llu requests, %llu reports, %llu stats lines",
                  design == SERVER_SHARED ? "shared" : "per-thread",
                  (unsigned long long)totals.accepted, (unsigned long long)totals.requests,
                  (unsigned long long)totals.reports, (unsigned long long)totals.stats_lines);
    CHECK_UINT(totals.accepted, ==, accepted);
    CHECK_UINT(totals.closed, ==, accepted);
    CHECK_UINT(totals.requests - totals.echo_reads, ==, answers);
    CHECK_UINT(totals.answered_ok, ==, answers);
    CHECK_UINT(totals.bytes_in, >, echoed); /* the echo, and the HTTP heads */
    CHECK_UINT(totals.stale_events, ==, 0);
    CHECK_UINT(totals.disconnected, ==, 0);
}

EVQ_TEST(four_threads_per_thread_design_under_load)
{
    load_on_four_threads(SERVER_PER_THREAD);
}

EVQ_TEST(four_threads_shared_design_under_load)
{
    load_on_four_threads(SERVER_SHARED);
}

/* The stop reaches every loop of a shared queue, with connections open on
 * it (whichever loop owns them): each client sees the end. */
static void stop_reaches_every_loop(enum server_design design)
{
    server_config config;
    test_config(&config);
    bool refused;
    server *s = start_design(&config, 4, design, &refused);
    if (refused)
        return;
    REQUIRE(s != NULL);
    client *clients[16];
    for (int i = 0; i < 16; i++) {
        clients[i] = client_open(server_port(s, i % 2 ? SERVER_HTTP : SERVER_ECHO));
        REQUIRE(clients[i] != NULL);
    }
    CHECK_UINT(WAIT_STAT(s, accepted, 16), ==, 16);
    server_request_stop(s);
    for (int i = 0; i < 16; i++)
        CHECK_OK(expect_closed(clients[i]));
    server_stats totals;
    CHECK_OK(server_stop(s, &totals));
    CHECK_UINT(totals.closed, ==, 16);
    CHECK_UINT(totals.stop_closed, ==, 16);
    for (int i = 0; i < 16; i++)
        client_close(clients[i]);
}

EVQ_TEST(stop_reaches_every_loop_per_thread)
{
    stop_reaches_every_loop(SERVER_PER_THREAD);
}

EVQ_TEST(stop_reaches_every_loop_shared)
{
    stop_reaches_every_loop(SERVER_SHARED);
}

/* Answers in flight when the stop comes, spread over the loops: each
 * finishes whole within the grace, whichever loop owns it, then ends. */
static void answers_finish_on_every_loop(enum server_design design)
{
    enum { CLIENTS = 8 };
    server_config config;
    test_config(&config);
    config.limits.write_high = 64 * 1024;
    config.limits.write_low = 16 * 1024;
    config.grace_ms = 60000; /* the test never waits for it to end */
    bool refused;
    server *s = start_design(&config, 4, design, &refused);
    if (refused)
        return;
    REQUIRE(s != NULL);
    client *clients[CLIENTS];
    uint64_t size = UINT64_C(8) << 20; /* more than the kernels' buffers hold */
    for (int i = 0; i < CLIENTS; i++) {
        clients[i] = client_open(server_port(s, SERVER_HTTP));
        REQUIRE(clients[i] != NULL);
        client_small_window(clients[i]);
        CHECK_OK(client_send(clients[i], "GET /bytes/8388608 HTTP/1.1\r\n\r\n"));
    }
    CHECK_UINT(WAIT_STAT(s, answered_ok, CLIENTS), ==, CLIENTS);
    uint64_t written, give_up = evq_clock_now_ns() + evq_ms_to_ns(WAIT_LIMIT_MS);
    do { /* until the answers stand still: every client's window is full */
        written = stats_now(s).bytes_out;
        evq_sleep_ms(20);
    } while (stats_now(s).bytes_out != written && evq_clock_now_ns() < give_up);
    CHECK_UINT(written, <, size * CLIENTS);
    server_request_stop(s);
    for (int i = 0; i < CLIENTS; i++) {
        response r;
        CHECK_OK(read_response(clients[i], &r, false, sizeof clients[i]->buffer));
        CHECK_UINT(r.body_length, ==, size);
        CHECK_UINT(r.pattern_differs, ==, UINT64_MAX);
        CHECK_OK(expect_closed(clients[i]));
        client_close(clients[i]);
    }
    server_stats totals;
    CHECK_OK(server_stop(s, &totals));
    CHECK_UINT(totals.closed, ==, CLIENTS);
#ifdef _WIN32
    /* Under Wine an answer may have gone whole into the kernel already. */
    CHECK_UINT(totals.stop_finished + totals.stop_closed, ==, CLIENTS);
#else
    CHECK_UINT(totals.stop_finished, ==, CLIENTS);
#endif
    CHECK_UINT(totals.stop_cut, ==, 0);
}

EVQ_TEST(answers_in_flight_finish_on_every_loop_per_thread)
{
    answers_finish_on_every_loop(SERVER_PER_THREAD);
}

EVQ_TEST(answers_in_flight_finish_on_every_loop_shared)
{
    answers_finish_on_every_loop(SERVER_SHARED);
}

int main(int argc, char **argv)
{
    static const evq_test_case cases[] = {
        EVQ_CASE(four_threads_per_thread_design_under_load),
        EVQ_CASE(four_threads_shared_design_under_load),
        EVQ_CASE(stop_reaches_every_loop_per_thread),
        EVQ_CASE(stop_reaches_every_loop_shared),
        EVQ_CASE(answers_in_flight_finish_on_every_loop_per_thread),
        EVQ_CASE(answers_in_flight_finish_on_every_loop_shared),
    };
    return evq_test_main(argc, argv, cases, EVQ_COUNT(cases));
}

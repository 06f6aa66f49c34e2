/* Tests of the `delayserver` program as a child process (POSIX only: they
 * fork, read its stdout through a pipe and send it signals): it prints its
 * port, serves, and exits with status 0 on SIGINT and SIGTERM. Its --help
 * and bad arguments are tested by ctest properties in CMakeLists.txt, on
 * every system. */
#define _POSIX_C_SOURCE 200809L
#include "delay_test_client.h"
#include "evq_clock.h"
#include "evq_delay_server.h"
#include "evq_test.h"
#include "evq_thread.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef DELAYSERVER_PATH
#error "DELAYSERVER_PATH must name the delayserver program"
#endif

struct child {
    pid_t pid;
    int out; /* read end of its stdout */
    char text[4096];
    size_t length;
};

static bool start_child(struct child *child, const char *const *arguments)
{
    int pipe_ends[2];
    if (pipe(pipe_ends) != 0)
        return false;
    pid_t pid = fork();
    if (pid < 0) {
        close(pipe_ends[0]);
        close(pipe_ends[1]);
        return false;
    }
    if (pid == 0) {
        dup2(pipe_ends[1], STDOUT_FILENO);
        close(pipe_ends[0]);
        close(pipe_ends[1]);
        char *argv[16];
        size_t n = 0;
        argv[n++] = (char *)"delayserver";
        for (; arguments[n - 1] && n < 15; n++)
            argv[n] = (char *)arguments[n - 1];
        argv[n] = NULL;
        execv(DELAYSERVER_PATH, argv);
        _exit(127);
    }
    close(pipe_ends[1]);
    child->pid = pid;
    child->out = pipe_ends[0];
    child->length = 0;
    child->text[0] = '\0';
    return true;
}

/* Read the child's stdout until `wanted` appears, EOF, or 20 s pass. */
static bool read_until(struct child *child, const char *wanted)
{
    uint64_t deadline = evq_clock_now_ns() + evq_ms_to_ns(20000);
    while (!strstr(child->text, wanted)) {
        int left = evq_remaining_ms(deadline, evq_clock_now_ns());
        if (left == 0 || child->length + 1 >= sizeof child->text)
            return false;
        struct pollfd entry = {.fd = child->out, .events = POLLIN};
        int ready = poll(&entry, 1, left);
        if (ready < 0 && errno == EINTR)
            continue;
        if (ready <= 0)
            return false;
        ssize_t n =
            read(child->out, child->text + child->length, sizeof child->text - 1 - child->length);
        if (n <= 0)
            return false;
        child->length += (size_t)n;
        child->text[child->length] = '\0';
    }
    return true;
}

/* Wait at most 20 s for the child to exit; kill it if it does not. */
static int wait_child(struct child *child)
{
    int status = 0;
    for (int i = 0; i < 2000; i++) {
        pid_t done = waitpid(child->pid, &status, WNOHANG);
        if (done == child->pid) {
            close(child->out);
            return status;
        }
        evq_sleep_ms(10);
    }
    kill(child->pid, SIGKILL);
    waitpid(child->pid, &status, 0);
    close(child->out);
    evq_test_fail(__FILE__, __LINE__, "delayserver did not exit within 20 s");
    return -1;
}

static void serves_then_exits_cleanly_on(int signal_number)
{
    struct child child;
    const char *arguments[] = {"--port", "0", "--max-delay", "5000", NULL};
    REQUIRE(start_child(&child, arguments));
    if (!CHECK(read_until(&child, "\n"))) {
        kill(child.pid, SIGKILL);
        wait_child(&child);
        return;
    }
    unsigned port = 0;
    CHECK_INT(sscanf(child.text, "delayserver listening on 127.0.0.1:%u", &port), ==, 1);
    CHECK_UINT(port, >, 0);

    char response[256];
    int status = 0;
    const char *body = NULL;
    CHECK_OK(evq_delay_client_get((uint16_t)port, 20, "from the cli", response, sizeof response,
                                  &status, &body));
    CHECK_INT(status, ==, 200);
    CHECK_STR(body, ==, "from the cli");
    /* --max-delay reached the server. */
    CHECK_OK(
        evq_delay_client_get((uint16_t)port, 5001, "x", response, sizeof response, &status, &body));
    CHECK_INT(status, ==, 400);

    /* A connection open with an answer pending does not hold up the exit. */
    raw_connection *pending = NULL;
    CHECK_OK(raw_connect((uint16_t)port, &pending));
    if (pending)
        CHECK_OK(raw_send(pending, "GET /5000/pending HTTP/1.1\r\n\r\n"));

    CHECK_INT(kill(child.pid, signal_number), ==, 0);
    CHECK(read_until(&child, "delayserver stopped: "));
    int exit_status = wait_child(&child);
    CHECK(WIFEXITED(exit_status));
    CHECK_INT(WEXITSTATUS(exit_status), ==, 0);
    CHECK(strstr(child.text, "1 answered, 1 rejected") != NULL); /* one 200, one 400 */
    if (evq_test_failures())
        evq_test_note("its output: %s", child.text);
    if (pending) {
        CHECK_OK(raw_expect_closed(pending));
        raw_close(pending);
    }
}

EVQ_TEST_POSIX(cli_serves_and_exits_with_status_0_on_sigint)
{
    serves_then_exits_cleanly_on(SIGINT);
}

EVQ_TEST_POSIX(cli_exits_with_status_0_on_sigterm)
{
    serves_then_exits_cleanly_on(SIGTERM);
}

EVQ_TEST_POSIX(cli_reports_a_port_in_use_with_status_1)
{
    evq_delay_server *server = NULL;
    REQUIRE_OK(evq_delay_server_start(NULL, &server));
    char port[16];
    snprintf(port, sizeof port, "%u", (unsigned)evq_delay_server_port(server));
    struct child child;
    const char *arguments[] = {"--port", port, NULL};
    bool started = start_child(&child, arguments);
    CHECK(started);
    if (started) {
        int exit_status = wait_child(&child);
        CHECK(WIFEXITED(exit_status));
        CHECK_INT(WEXITSTATUS(exit_status), ==, 1);
    }
    evq_delay_server_stop(server);
}

int main(int argc, char **argv)
{
    static const evq_test_case cases[] = {
        EVQ_CASE(cli_serves_and_exits_with_status_0_on_sigint),
        EVQ_CASE(cli_exits_with_status_0_on_sigterm),
        EVQ_CASE(cli_reports_a_port_in_use_with_status_1),
    };
    return evq_test_main(argc, argv, cases, EVQ_COUNT(cases));
}

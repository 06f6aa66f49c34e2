/* test_server_signal.c - ch07_server_<backend> as a user runs it (POSIX):
 * started as a process, connections opened in several states, then a real
 * SIGINT (or SIGTERM): it must print its totals and exit 0, and every
 * client must see its connection end. The program's path comes in
 * EVQ_SERVER_PROGRAM.
 */
#define _POSIX_C_SOURCE 200809L
#include "evq_clock.h"
#include "evq_net.h"
#include "evq_test.h"

#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

enum { LIMIT_MS = 20000 };

typedef struct program {
    pid_t pid;
    int output; /* its stdout and stderr */
    char text[16384];
    size_t length;
} program;

static int start_program(program *p, char *const argv[])
{
    int pipe_fds[2];
    if (pipe(pipe_fds) != 0)
        return EVQ_EIO;
    memset(p, 0, sizeof *p);
    p->pid = fork();
    if (p->pid < 0)
        return EVQ_EIO;
    if (p->pid == 0) {
        dup2(pipe_fds[1], 1);
        dup2(pipe_fds[1], 2);
        close(pipe_fds[0]);
        close(pipe_fds[1]);
        execv(argv[0], argv);
        _exit(127);
    }
    close(pipe_fds[1]);
    p->output = pipe_fds[0];
    return 0;
}

/* Read its output until `text` appears (NULL: until EOF), for LIMIT_MS at most. */
static bool read_until(program *p, const char *text)
{
    uint64_t give_up = evq_clock_now_ns() + evq_ms_to_ns(LIMIT_MS);
    for (;;) {
        p->text[p->length] = '\0';
        if (text && strstr(p->text, text))
            return true;
        uint64_t now = evq_clock_now_ns();
        if (now >= give_up || p->length + 1 >= sizeof p->text)
            return false;
        struct pollfd fd = {p->output, POLLIN, 0};
        if (poll(&fd, 1, evq_remaining_ms(give_up, now)) <= 0)
            return false;
        ssize_t got = read(p->output, p->text + p->length, sizeof p->text - 1 - p->length);
        if (got <= 0)
            return text == NULL;
        p->length += (size_t)got;
    }
}

static uint16_t port_after(const program *p, const char *label)
{
    const char *at = strstr(p->text, label);
    return at ? (uint16_t)strtoul(at + strlen(label), NULL, 10) : 0;
}

static int finish(program *p)
{
    int status = 0;
    read_until(p, NULL);
    close(p->output);
    if (waitpid(p->pid, &status, 0) != p->pid)
        return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static bool sees_the_end(evq_socket socket)
{
    char buffer[4096];
    for (;;) {
        size_t got = 0;
        int rc = evq_net_recv(socket, buffer, sizeof buffer, &got);
        if (rc == EVQ_ETIMEDOUT || rc == EVQ_EWOULDBLOCK)
            return false;
        if (rc != 0 || got == 0)
            return true; /* EOF, or a reset */
    }
}

static void stop_with_connections_open(int signal_number, const char *design)
{
    const char *path = getenv("EVQ_SERVER_PROGRAM");
    if (!path || !*path)
        SKIP("EVQ_SERVER_PROGRAM is not set");
    char *argv[] = {(char *)path,       "--threads", "2",       "--design", (char *)design,
                    "--stats-interval", "50",        "--grace", "500",      NULL};
    program p;
    REQUIRE_OK(start_program(&p, argv));
    CHECK(read_until(&p, "threads: 2"));
    uint16_t echo = port_after(&p, "echo listening on 127.0.0.1:");
    uint16_t http = port_after(&p, "http listening on 127.0.0.1:");
    CHECK_UINT(echo, !=, 0);
    CHECK_UINT(http, !=, 0);
    evq_socket idle = EVQ_INVALID_SOCKET, half = EVQ_INVALID_SOCKET, talk = EVQ_INVALID_SOCKET;
    if (echo && http) {
        CHECK_OK(evq_net_connect_loopback(http, &idle));
        CHECK_OK(evq_net_connect_loopback(http, &half));
        CHECK_OK(evq_net_connect_loopback(echo, &talk));
    }
    if (idle != EVQ_INVALID_SOCKET && half != EVQ_INVALID_SOCKET && talk != EVQ_INVALID_SOCKET) {
        evq_socket_set_recv_timeout(idle, LIMIT_MS);
        evq_socket_set_recv_timeout(half, LIMIT_MS);
        evq_socket_set_recv_timeout(talk, LIMIT_MS);
        char answer[4096];
        size_t got = 0;
        CHECK_OK(evq_net_send_all(idle, "GET / HTTP/1.1\r\n\r\n", 18));
        CHECK_OK(evq_net_recv(idle, answer, sizeof answer, &got));
        CHECK(got > 0 && memcmp(answer, "HTTP/1.1 200", 12) == 0);
        CHECK_OK(evq_net_send_all(half, "GET / HT", 8));
        CHECK_OK(evq_net_send_all(talk, "echo me", 7));
        CHECK_OK(evq_net_recv(talk, answer, 7, &got));
        CHECK_UINT(got, ==, 7);
        CHECK(read_until(&p, "stats: 3 open"));
    }
    CHECK_INT(kill(p.pid, signal_number), ==, 0);
    CHECK(idle == EVQ_INVALID_SOCKET || sees_the_end(idle));
    CHECK(half == EVQ_INVALID_SOCKET || sees_the_end(half));
    CHECK(talk == EVQ_INVALID_SOCKET || sees_the_end(talk));
    CHECK_INT(finish(&p), ==, 0);
    evq_test_note("%s", strstr(p.text, "stopped:") ? strstr(p.text, "stopped:") : p.text);
    CHECK(strstr(p.text, "stopped: accepted 3, requests 2,") != NULL);
    CHECK(strstr(p.text, "at the stop: 3 closed, 0 finished in the grace, 0 cut") != NULL);
    evq_socket_close(idle);
    evq_socket_close(half);
    evq_socket_close(talk);
}

EVQ_TEST(sigint_with_connections_open_prints_the_totals_and_exits_0)
{
    stop_with_connections_open(SIGINT, "per-thread");
}

EVQ_TEST(sigterm_with_connections_open_prints_the_totals_and_exits_0)
{
    stop_with_connections_open(SIGTERM, "shared");
}

int main(int argc, char **argv)
{
    static const evq_test_case cases[] = {
        EVQ_CASE(sigint_with_connections_open_prints_the_totals_and_exits_0),
        EVQ_CASE(sigterm_with_connections_open_prints_the_totals_and_exits_0),
    };
    return evq_test_main(argc, argv, cases, EVQ_COUNT(cases));
}

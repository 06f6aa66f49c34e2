/* bench_ch04_server.c - chapter 4's HTTP server on io_uring against the
 * same server on epoll: system calls and CPU time per request, same load,
 * same run.
 *
 *     uring_bench_ch04_server --epoll PATH --uring PATH [--requests R] [--runs N]
 *
 * PATH are ch04_server_epoll and ch04_server_uring (demo/server_main.c: the
 * chapter's server as a program). Each runs as its own process, started
 * by this one; the io_uring one twice, the second time with every stream
 * waiting on provided buffers (EVQ_URING_PROVIDED_BUFFERS=1). The load is
 * this process's: keep-alive "GET /" on 1 and on 32 connections, in rounds
 * (a request on every connection, then every answer read and checked).
 *
 * CPU: the server process's time on a CPU, all threads, from the first
 * field of /proc/<pid>/task/<tid>/schedstat (nanoseconds), around R
 * requests. System calls, counted over another R/4 requests each way,
 * the server program's main thread (which only sleeps until it is stopped)
 * left out:
 *   - the total by `perf stat -e raw_syscalls:sys_enter -t <threads>`: the
 *     kernel's tracepoint counts every call without slowing it down;
 *   - by name with `strace -c -f -p <pid>`, which stops the server at every
 *     call. That changes io_uring's count, not only its time: while the
 *     server is held up, the client's next request arrives, and a wait
 *     that finds its completion already in the CQ makes no call at all.
 *     So the table's counts are perf's, and strace's run gives the names.
 * Without perf (or where its tracepoints are not allowed) the table says
 * strace's; without either, only CPU is reported.
 *
 * Rounds alternate the servers; the tables give medians, and ratios to
 * epoll. One run on a busy machine is an indication, not a claim.
 */
#define _GNU_SOURCE /* kill, fork, execv, setenv, dirent */
#include "bench.h"

#include "evq_clock.h"
#include "evq_error.h"
#include "evq_net.h"
#include "evq_thread.h"

#include <dirent.h>
#include <fcntl.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_CONNECTIONS 32
#define MAX_SYSCALLS    64

struct server_kind {
    const char *name;
    const char *path;
    bool provided;
};

struct server {
    pid_t pid;
    uint16_t port;
    FILE *out;
};

/* ---- a server process ---------------------------------------------------------- */

static int server_start(const struct server_kind *kind, struct server *s)
{
    int pipefd[2];
    if (pipe(pipefd) != 0)
        return EVQ_EIO;
    pid_t pid = fork();
    if (pid < 0)
        return EVQ_EIO;
    if (pid == 0) {
        dup2(pipefd[1], STDOUT_FILENO);
        close(pipefd[0]);
        close(pipefd[1]);
        if (kind->provided)
            setenv("EVQ_URING_PROVIDED_BUFFERS", "1", 1);
        /* Long deadlines: a round of the load must not meet one. */
        char *args[] = {(char *)kind->path, "--port",         "0",      "--idle-timeout",
                        "600000",           "--head-timeout", "600000", NULL};
        execv(kind->path, args);
        _exit(127);
    }
    close(pipefd[1]);
    s->pid = pid;
    s->out = fdopen(pipefd[0], "r");
    char line[512];
    while (s->out && fgets(line, sizeof line, s->out)) {
        const char *at = strstr(line, "http://127.0.0.1:");
        if (at) {
            s->port = (uint16_t)atoi(at + strlen("http://127.0.0.1:"));
            return 0;
        }
    }
    return EVQ_EIO;
}

static void server_stop(struct server *s)
{
    int status;
    if (s->pid > 0) { /* kill(0 or -1) would signal far more than the server */
        kill(s->pid, SIGTERM);
        waitpid(s->pid, &status, 0);
    }
    if (s->out)
        fclose(s->out);
}

/* The process's time on a CPU so far, every thread: schedstat's first
 * field, in nanoseconds. */
static uint64_t cpu_ns(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
    DIR *dir = opendir(path);
    if (!dir)
        return 0;
    uint64_t total = 0;
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL) {
        if (entry->d_name[0] == '.')
            continue;
        char file[320];
        snprintf(file, sizeof file, "/proc/%d/task/%.255s/schedstat", (int)pid, entry->d_name);
        FILE *f = fopen(file, "r");
        unsigned long long ns = 0;
        if (f && fscanf(f, "%llu", &ns) == 1)
            total += ns;
        if (f)
            fclose(f);
    }
    closedir(dir);
    return total;
}

/* ---- the load ------------------------------------------------------------------ */

static const char request[] = "GET / HTTP/1.1\r\nHost: bench\r\n\r\n";

/* One answer: the head, then Content-Length bytes of body. */
static int read_answer(evq_socket socket)
{
    char buf[1024];
    size_t have = 0;
    for (;;) {
        size_t got = 0;
        int rc = evq_net_recv(socket, buf + have, sizeof buf - 1 - have, &got);
        if (rc != 0)
            return rc;
        if (got == 0)
            return EVQ_EOF;
        have += got;
        buf[have] = '\0';
        const char *end = strstr(buf, "\r\n\r\n");
        const char *length = strstr(buf, "Content-Length: ");
        if (end && length && strncmp(buf, "HTTP/1.1 200", 12) == 0) {
            size_t body = (size_t)strtoul(length + 16, NULL, 10);
            size_t head = (size_t)(end + 4 - buf);
            if (have > head + body)
                return EVQ_EIO; /* more than one answer: a round is one each */
            if (have == head + body)
                return 0;
        } else if (end) {
            return EVQ_EIO;
        }
        if (have == sizeof buf - 1)
            return EVQ_EMSGSIZE;
    }
}

/* `requests` requests on `count` connections, in rounds. */
static int load(uint16_t port, size_t count, size_t requests)
{
    evq_socket sockets[MAX_CONNECTIONS];
    size_t opened = 0;
    int rc = 0;
    for (; opened < count && rc == 0; opened++) {
        if ((rc = evq_net_connect_loopback(port, &sockets[opened])) == 0)
            rc = evq_socket_set_recv_timeout(sockets[opened], 10000);
        if (rc != 0)
            evq_socket_close(sockets[opened]);
    }
    if (rc != 0)
        opened--;
    for (size_t done = 0; rc == 0 && done < requests; done += count) {
        for (size_t i = 0; rc == 0 && i < count; i++)
            rc = evq_net_send_all(sockets[i], request, sizeof request - 1);
        for (size_t i = 0; rc == 0 && i < count; i++)
            rc = read_answer(sockets[i]);
    }
    for (size_t i = 0; i < opened; i++)
        evq_socket_close(sockets[i]);
    return rc;
}

/* ---- perf ------------------------------------------------------------------------ */

/* perf is installed, and this process may count the syscall tracepoint
 * (root, or kernel.perf_event_paranoid at -1). */
static bool perf_found(void)
{
    return system("perf stat -x, -e raw_syscalls:sys_enter -- true >/dev/null 2>&1") == 0;
}

/* The server's threads but its main one, as perf -t wants them: "1,2,3". */
static bool server_threads(pid_t pid, char *out, size_t size)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
    DIR *dir = opendir(path);
    if (!dir)
        return false;
    size_t used = 0;
    out[0] = '\0';
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL) {
        if (entry->d_name[0] == '.' || atoi(entry->d_name) == (int)pid)
            continue;
        int n = snprintf(out + used, size - used, "%s%s", used ? "," : "", entry->d_name);
        if (n < 0 || (size_t)n >= size - used)
            break;
        used += (size_t)n;
    }
    closedir(dir);
    return used > 0;
}

/* The server's system calls over `requests`, all names together. */
static int count_syscalls_perf(const struct server *s, size_t connections, size_t requests,
                               double *total)
{
    char threads[512];
    if (!server_threads(s->pid, threads, sizeof threads))
        return EVQ_EIO;
    char path[] = "/tmp/evq_uring_perf_XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0)
        return EVQ_EIO;
    close(fd);
    pid_t counter = fork();
    if (counter == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(null, STDERR_FILENO);
        execlp("perf", "perf", "stat", "-x,", "-e", "raw_syscalls:sys_enter", "-t", threads, "-o",
               path, (char *)NULL);
        _exit(127);
    }
    /* perf attaches in a few milliseconds; the server's loop, idle in its
     * wait meanwhile, makes no call to count. */
    evq_sleep_ms(300);
    int rc = load(s->port, connections, requests);
    kill(counter, SIGINT);
    int status;
    waitpid(counter, &status, 0);
    *total = -1;
    FILE *f = rc == 0 ? fopen(path, "r") : NULL;
    char line[256];
    while (f && fgets(line, sizeof line, f)) {
        unsigned long long count;
        if (strstr(line, "raw_syscalls:sys_enter") && sscanf(line, "%llu,", &count) == 1)
            *total = (double)count;
    }
    if (f)
        fclose(f);
    unlink(path);
    return rc != 0 ? rc : *total < 0 ? EVQ_EIO : 0;
}

/* ---- strace ---------------------------------------------------------------------- */

struct syscall_count {
    char name[32];
    double calls;
};

static bool strace_found(void)
{
    return system("strace -V >/dev/null 2>&1") == 0;
}

static bool traced(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    char line[256];
    int tracer = 0;
    while (fgets(line, sizeof line, f)) {
        if (sscanf(line, "TracerPid: %d", &tracer) == 1)
            break;
    }
    fclose(f);
    return tracer != 0;
}

/* strace -c's table: "% time seconds usecs/call calls [errors] syscall". */
static size_t parse_strace(const char *path, struct syscall_count *out, size_t max)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    char line[256];
    size_t n = 0;
    while (fgets(line, sizeof line, f) && n < max) {
        double percent, seconds;
        unsigned long usecs, calls;
        char rest[128];
        if (sscanf(line, " %lf %lf %lu %lu %127[^\n]", &percent, &seconds, &usecs, &calls, rest) !=
            5)
            continue;
        char *name = strrchr(rest, ' ');
        name = name ? name + 1 : rest;
        if (strcmp(name, "total") == 0)
            continue;
        snprintf(out[n].name, sizeof out[n].name, "%.31s", name);
        out[n].calls = (double)calls;
        n++;
    }
    fclose(f);
    return n;
}

/* Count the server's system calls over `requests`, by name. */
static int count_syscalls(const struct server *s, size_t connections, size_t requests,
                          struct syscall_count *out, size_t *n)
{
    char path[] = "/tmp/evq_uring_strace_XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0)
        return EVQ_EIO;
    close(fd);
    char pid_text[16];
    snprintf(pid_text, sizeof pid_text, "%d", (int)s->pid);
    pid_t tracer = fork();
    if (tracer == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(null, STDERR_FILENO);
        execlp("strace", "strace", "-c", "-f", "-q", "-o", path, "-p", pid_text, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 500 && !traced(s->pid); i++)
        evq_sleep_ms(10);
    int rc = traced(s->pid) ? 0 : EVQ_EACCES;
    evq_sleep_ms(100); /* every thread attached */
    if (rc == 0)
        rc = load(s->port, connections, requests);
    kill(tracer, SIGINT);
    int status;
    waitpid(tracer, &status, 0);
    *n = rc == 0 ? parse_strace(path, out, MAX_SYSCALLS) : 0;
    unlink(path);
    return rc;
}

/* ---- the tables ------------------------------------------------------------------ */

static int usage(const char *program)
{
    fprintf(stderr,
            "usage: %s --epoll PATH --uring PATH [--requests R] [--runs N]\n"
            "  R requests per measurement (1000..1000000, default 40000), N rounds (1..9, "
            "default 3)\n",
            program);
    return 2;
}

static const char *option(int argc, char **argv, const char *name)
{
    for (int i = 1; i + 1 < argc; i++) {
        if (strcmp(argv[i], name) == 0)
            return argv[i + 1];
    }
    return NULL;
}

#define KINDS 3
#define LOADS 2

int main(int argc, char **argv)
{
    const char *epoll_path = option(argc, argv, "--epoll");
    const char *uring_path = option(argc, argv, "--uring");
    const char *requests_text = option(argc, argv, "--requests");
    const char *runs_text = option(argc, argv, "--runs");
    unsigned long requests = requests_text ? strtoul(requests_text, NULL, 10) : 40000;
    unsigned long runs = runs_text ? strtoul(runs_text, NULL, 10) : 3;
    if (!epoll_path || !uring_path || requests < 1000 || requests > 1000000 || runs < 1 || runs > 9)
        return usage(argv[0]);
    if (bench_init() != 0)
        return 1;
    signal(SIGPIPE, SIG_IGN);
    const struct server_kind kinds[KINDS] = {
        {"epoll", epoll_path, false},
        {"io_uring, receive into the read buffer", uring_path, false},
        {"io_uring, multishot receive on provided buffers", uring_path, true},
    };
    static const size_t connections[LOADS] = {1, MAX_CONNECTIONS};
    bool strace = strace_found(), perf = perf_found();
    static double cpu[KINDS][LOADS][9], wall[KINDS][LOADS][9], calls[KINDS][LOADS][9];
    static struct syscall_count names[KINDS][LOADS][MAX_SYSCALLS];
    static size_t name_count[KINDS][LOADS];
    for (unsigned long r = 0; r < runs; r++) {
        for (size_t k = 0; k < KINDS; k++) {
            for (size_t l = 0; l < LOADS; l++) {
                struct server s = {-1, 0, NULL}; /* no process until server_start forks one */
                int rc = server_start(&kinds[k], &s);
                if (rc == 0)
                    rc = load(s.port, connections[l], 1000); /* warm up */
                uint64_t cpu_before = cpu_ns(s.pid), t0 = evq_clock_now_ns();
                if (rc == 0)
                    rc = load(s.port, connections[l], requests);
                cpu[k][l][r] = (double)(cpu_ns(s.pid) - cpu_before) / (double)requests / 1000.0;
                wall[k][l][r] = (double)(evq_clock_now_ns() - t0) / (double)requests / 1000.0;
                calls[k][l][r] = -1;
                if (rc == 0 && strace) {
                    struct syscall_count counted[MAX_SYSCALLS];
                    size_t n = 0;
                    size_t traced_requests = requests / 4;
                    if (count_syscalls(&s, connections[l], traced_requests, counted, &n) == 0 &&
                        n > 0) {
                        double total = 0;
                        for (size_t i = 0; i < n; i++) {
                            counted[i].calls /= (double)traced_requests;
                            if (strcmp(counted[i].name, "clock_nanosleep") != 0 &&
                                strcmp(counted[i].name, "nanosleep") != 0)
                                total += counted[i].calls;
                        }
                        calls[k][l][r] = total;
                        memcpy(names[k][l], counted, n * sizeof counted[0]);
                        name_count[k][l] = n;
                    }
                }
                double total;
                if (rc == 0 && perf) /* perf's count, where there is one, is the table's */
                    calls[k][l][r] =
                        count_syscalls_perf(&s, connections[l], requests / 4, &total) == 0
                            ? total / (double)(requests / 4)
                            : -1;
                server_stop(&s);
                if (rc != 0) {
                    fprintf(stderr, "%s, %zu connections: %s\n", kinds[k].name, connections[l],
                            evq_strerror(rc));
                    return 1;
                }
            }
        }
    }

    printf("chapter 4's HTTP server (ch04_server_<backend>), keep-alive GET / ; %lu requests "
           "per measurement, %lu rounds\n\n",
           requests, runs);
    for (size_t l = 0; l < LOADS; l++) {
        printf("%zu connection%s:\n\n", connections[l], connections[l] == 1 ? "" : "s");
        printf("| server | system calls per request | vs epoll | server CPU per request | vs "
               "epoll | wall time per request |\n");
        printf("|---|---:|---:|---:|---:|---:|\n");
        double base_calls = 0, base_cpu = 0;
        for (size_t k = 0; k < KINDS; k++) {
            double c = bench_median(calls[k][l], (size_t)runs);
            double u = bench_median(cpu[k][l], (size_t)runs);
            double w = bench_median(wall[k][l], (size_t)runs);
            if (k == 0) {
                base_calls = c;
                base_cpu = u;
            }
            char count_text[32] = "not counted", ratio_text[32] = "-";
            if (c >= 0) {
                snprintf(count_text, sizeof count_text, "%.2f", c);
                if (base_calls > 0)
                    snprintf(ratio_text, sizeof ratio_text, "%.2f", c / base_calls);
            }
            printf("| %s | %s | %s | %.2f us | %.2f | %.2f us |\n", kinds[k].name, count_text,
                   ratio_text, u, base_cpu > 0 ? u / base_cpu : 0.0, w);
        }
        printf("\n");
        if (!strace)
            continue;
        printf("by system call, per request, under strace (the last round; strace holds the "
               "server up at every call, and io_uring's waits then find more completions "
               "ready):\n\n");
        for (size_t k = 0; k < KINDS; k++) {
            printf("- %s:", kinds[k].name);
            for (size_t i = 0; i < name_count[k][l]; i++) {
                if (names[k][l][i].calls >= 0.005 && strcmp(names[k][l][i].name, "clock_nanosleep"))
                    printf(" %s %.2f", names[k][l][i].name, names[k][l][i].calls);
            }
            printf("\n");
        }
        printf("\n");
    }
    printf("system calls counted by %s\n",
           perf     ? "perf stat -e raw_syscalls:sys_enter (the server's threads but its main one)"
           : strace ? "strace -c (no perf here: the io_uring counts are low, see above)"
                    : "nobody: neither perf nor strace is usable here");
    return 0;
}

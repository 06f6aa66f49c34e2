/* edge.c - what a request costs the server: system calls and CPU, for a
 * small echo served by the chapter's queue and by a raw epoll
 * edge-triggered loop written plainly here, measured in the same run.
 * Linux, epoll.
 *
 *     ch06_bench_edge [--connections N] [--seconds S] [--runs R] [--baseline PROGRAM]
 *
 * The client (the main thread, blocking sockets) keeps N connections busy:
 * each round it sends a 32-byte request on every connection, then reads
 * every 32-byte answer and checks it. The server runs on its own threads:
 *
 * - raw: epoll_wait, accept4 until EAGAIN, each connection added once with
 *   EPOLLIN | EPOLLET, recv until a short read or EAGAIN, send the bytes
 *   back. What an edge-triggered server written by hand costs.
 * - the queue, with 1, 2 and 4 threads in evq_poll_wait: each event read
 *   until EVQ_EWOULDBLOCK, written back, re-armed (evq_reregister).
 * - --baseline PROGRAM: the same program built on chapter 5's queue (no
 *   key table, no reference per call: what thread-safe registration
 *   costs the single-threaded path is the difference), run as a child
 *   with --row, which prints its one row.
 *
 * System calls are counted by wrapping the library's and the raw loop's
 * calls at link time (-Wl,--wrap, see CMakeLists.txt): only calls made on
 * the server's threads count. CPU is the server threads' own CPU time
 * (pthread_getcpuclockid). Both per request, over the rounds timed: the
 * connections are accepted and warmed up before. Medians of R runs, the
 * configurations alternating.
 */
#define _GNU_SOURCE
#include "bench.h"
#include "evq.h"

#include "evq_clock.h"
#include "evq_net.h"

#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define MESSAGE         32
#define MAX_CONNECTIONS 1000
#define MAX_THREADS     4
#define LISTENER_TOKEN  UINT64_MAX

/* ---- counting the server's system calls ---- */

enum call { WAIT, CONTROL, RECEIVE, SEND, OTHER, CALLS };
static const char *const call_names[] = {"waits", "epoll_ctl", "recv", "send", "other"};
static _Atomic uint64_t counts[CALLS];
static _Thread_local bool counting; /* set on the server's threads */

static void count(enum call call)
{
    if (counting)
        atomic_fetch_add_explicit(&counts[call], 1, memory_order_relaxed);
}

/* The real calls, under the names the linker gives them (--wrap). */
int __real_epoll_wait(int, struct epoll_event *, int, int);
int __real_epoll_ctl(int, int, int, struct epoll_event *);
ssize_t __real_recv(int, void *, size_t, int);
ssize_t __real_send(int, const void *, size_t, int);
ssize_t __real_sendmsg(int, const struct msghdr *, int);
int __real_accept4(int, struct sockaddr *, socklen_t *, int);
ssize_t __real_read(int, void *, size_t);
ssize_t __real_write(int, const void *, size_t);
int __real_setsockopt(int, int, int, const void *, socklen_t);

/* Declared here for -Wmissing-prototypes: nothing else calls them by name. */
int __wrap_epoll_wait(int, struct epoll_event *, int, int);
int __wrap_epoll_ctl(int, int, int, struct epoll_event *);
ssize_t __wrap_recv(int, void *, size_t, int);
ssize_t __wrap_send(int, const void *, size_t, int);
ssize_t __wrap_sendmsg(int, const struct msghdr *, int);
int __wrap_accept4(int, struct sockaddr *, socklen_t *, int);
ssize_t __wrap_read(int, void *, size_t);
ssize_t __wrap_write(int, const void *, size_t);
int __wrap_setsockopt(int, int, int, const void *, socklen_t);

int __wrap_epoll_wait(int fd, struct epoll_event *events, int max, int timeout)
{
    count(WAIT);
    return __real_epoll_wait(fd, events, max, timeout);
}
int __wrap_epoll_ctl(int fd, int op, int target, struct epoll_event *event)
{
    count(CONTROL);
    return __real_epoll_ctl(fd, op, target, event);
}
ssize_t __wrap_recv(int fd, void *buf, size_t len, int flags)
{
    count(RECEIVE);
    return __real_recv(fd, buf, len, flags);
}
ssize_t __wrap_send(int fd, const void *buf, size_t len, int flags)
{
    count(SEND);
    return __real_send(fd, buf, len, flags);
}
ssize_t __wrap_sendmsg(int fd, const struct msghdr *msg, int flags)
{
    count(SEND);
    return __real_sendmsg(fd, msg, flags);
}
int __wrap_accept4(int fd, struct sockaddr *address, socklen_t *length, int flags)
{
    count(OTHER);
    return __real_accept4(fd, address, length, flags);
}
ssize_t __wrap_read(int fd, void *buf, size_t len)
{
    count(OTHER);
    return __real_read(fd, buf, len);
}
ssize_t __wrap_write(int fd, const void *buf, size_t len)
{
    count(OTHER);
    return __real_write(fd, buf, len);
}
int __wrap_setsockopt(int fd, int level, int name, const void *value, socklen_t length)
{
    count(OTHER);
    return __real_setsockopt(fd, level, name, value, length);
}

/* ---- the servers ---- */

struct server {
    bool raw;
    unsigned threads;
    pthread_t thread[MAX_THREADS];
    atomic_bool stop;
    atomic_uint accepted;
    /* raw */
    int epoll_fd, listen_fd;
    /* the queue */
    evq_poll *poll;
    evq_tcp *listener;
    evq_tcp *streams[MAX_CONNECTIONS];
};

static void die(const char *what, int rc)
{
    fprintf(stderr, "edge: %s failed (%d: %s)\n", what, rc, rc < 0 ? evq_strerror(rc) : "");
    exit(1);
}

/* The raw edge-triggered echo: what a careful hand-written server does. */
static void *raw_run(void *arg)
{
    struct server *s = arg;
    counting = true;
    struct epoll_event events[64];
    char buf[4096];
    while (!atomic_load(&s->stop)) {
        int n = epoll_wait(s->epoll_fd, events, 64, 100);
        for (int i = 0; i < n; i++) {
            int fd = events[i].data.fd;
            if (fd == s->listen_fd) {
                int c;
                while ((c = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
                    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | EPOLLET,
                                             .data.fd = c};
                    if (epoll_ctl(s->epoll_fd, EPOLL_CTL_ADD, c, &ev) != 0)
                        die("epoll_ctl", errno);
                    atomic_fetch_add(&s->accepted, 1);
                }
                continue;
            }
            for (;;) { /* until a short read: epoll(7)'s proof that it is empty */
                ssize_t got = recv(fd, buf, sizeof buf, 0);
                if (got <= 0)
                    break; /* EAGAIN, or the end (the bench closes at the end only) */
                if (send(fd, buf, (size_t)got, 0) != got)
                    die("send (a 32-byte answer that did not fit)", errno);
                if ((size_t)got < sizeof buf)
                    break;
            }
        }
    }
    return NULL;
}

static void queue_accept(struct server *s)
{
    for (;;) {
        evq_tcp *stream;
        int rc = evq_tcp_accept(s->listener, &stream);
        if (rc == EVQ_EWOULDBLOCK)
            break;
        if (rc == EVQ_ECLOSED)
            return;
        if (rc != 0)
            die("evq_tcp_accept", rc);
        unsigned i = atomic_fetch_add(&s->accepted, 1);
        s->streams[i] = stream;
        if ((rc = evq_register(s->poll, stream, i, EVQ_READABLE)) != 0)
            die("evq_register", rc);
    }
    int rc = evq_reregister(s->poll, s->listener, LISTENER_TOKEN, EVQ_READABLE);
    if (rc != 0 && rc != EVQ_ECLOSED)
        die("evq_reregister (listener)", rc);
}

/* One of the queue's waiters: each event read out, echoed, re-armed. */
static void *queue_run(void *arg)
{
    struct server *s = arg;
    counting = true;
    evq_event events[64];
    char buf[4096];
    for (;;) {
        size_t n = 0;
        int rc = evq_poll_wait(s->poll, events, 64, 100, &n);
        if (rc == EVQ_ECLOSED)
            return NULL;
        if (rc != 0)
            die("evq_poll_wait", rc);
        for (size_t e = 0; e < n; e++) {
            if (events[e].token == LISTENER_TOKEN) {
                queue_accept(s);
                continue;
            }
            evq_tcp *stream = s->streams[events[e].token];
            for (;;) {
                size_t got = 0, put = 0;
                rc = evq_tcp_read(stream, buf, sizeof buf, &got);
                if (rc != 0)
                    break;
                if ((rc = evq_tcp_write(stream, buf, got, &put)) != 0 || put != got)
                    die("evq_tcp_write", rc);
            }
            if (rc != EVQ_EWOULDBLOCK)
                continue; /* the end: the client has gone (the bench is over) */
            rc = evq_reregister(s->poll, stream, events[e].token, EVQ_READABLE);
            if (rc != 0 && rc != EVQ_ECLOSED) /* ECLOSED: shut down, the run is over */
                die("evq_reregister", rc);
        }
    }
}

static uint16_t server_start(struct server *s)
{
    atomic_init(&s->stop, false);
    atomic_init(&s->accepted, 0);
    uint16_t port = 0;
    int rc;
    if (s->raw) {
        s->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t len = sizeof a;
        if (s->listen_fd < 0 || bind(s->listen_fd, (struct sockaddr *)&a, sizeof a) != 0 ||
            listen(s->listen_fd, 1024) != 0 ||
            getsockname(s->listen_fd, (struct sockaddr *)&a, &len) != 0)
            die("the raw listener", errno);
        port = ntohs(a.sin_port);
        s->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
        struct epoll_event ev = {.events = EPOLLIN | EPOLLET, .data.fd = s->listen_fd};
        if (s->epoll_fd < 0 || epoll_ctl(s->epoll_fd, EPOLL_CTL_ADD, s->listen_fd, &ev) != 0)
            die("epoll", errno);
    } else {
        if ((rc = evq_poll_open(&s->poll)) != 0)
            die("evq_poll_open", rc);
        if ((rc = evq_tcp_listen(s->poll, "127.0.0.1", 0, 1024, &s->listener)) != 0 ||
            (rc = evq_tcp_local_port(s->listener, &port)) != 0 ||
            (rc = evq_register(s->poll, s->listener, LISTENER_TOKEN, EVQ_READABLE)) != 0)
            die("the listener", rc);
    }
    for (unsigned t = 0; t < s->threads; t++) {
        if (pthread_create(&s->thread[t], NULL, s->raw ? raw_run : queue_run, s) != 0)
            die("pthread_create", errno);
    }
    return port;
}

static void server_stop(struct server *s)
{
    atomic_store(&s->stop, true);
    if (!s->raw)
        evq_poll_shutdown(s->poll);
    for (unsigned t = 0; t < s->threads; t++)
        pthread_join(s->thread[t], NULL);
    if (s->raw) {
        close(s->epoll_fd);
        close(s->listen_fd);
    } else {
        unsigned n = atomic_load(&s->accepted);
        for (unsigned i = 0; i < n; i++)
            evq_tcp_close(s->streams[i]);
        evq_tcp_close(s->listener);
        evq_poll_close(s->poll);
    }
}

static double server_cpu_seconds(struct server *s)
{
    double total = 0;
    for (unsigned t = 0; t < s->threads; t++) {
        clockid_t clock;
        struct timespec ts;
        if (pthread_getcpuclockid(s->thread[t], &clock) == 0 && clock_gettime(clock, &ts) == 0)
            total += (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
    }
    return total;
}

/* ---- the client, and one measurement ---- */

struct result {
    double per_second, cpu_us, calls[CALLS], total_calls;
};

static bool receive_all(evq_socket socket, char *buf, size_t len)
{
    for (size_t at = 0; at < len;) {
        size_t got = 0;
        if (evq_net_recv(socket, buf + at, len - at, &got) != 0 || got == 0)
            return false;
        at += got;
    }
    return true;
}

static void round_trip(evq_socket *c, unsigned connections, uint64_t *rounds)
{
    char out[MESSAGE], in[MESSAGE];
    memset(out, 'a' + (int)(*rounds % 26), sizeof out);
    for (unsigned i = 0; i < connections; i++) {
        if (evq_net_send_all(c[i], out, sizeof out) != 0)
            die("the client's send", 0);
    }
    for (unsigned i = 0; i < connections; i++) {
        if (!receive_all(c[i], in, sizeof in) || memcmp(in, out, sizeof in) != 0)
            die("the client's receive (or a wrong answer)", 0);
    }
    (*rounds)++;
}

static struct result measure(bool raw, unsigned threads, unsigned connections, double seconds)
{
    static struct server s;
    memset(&s, 0, sizeof s);
    s.raw = raw;
    s.threads = threads;
    uint16_t port = server_start(&s);
    static evq_socket c[MAX_CONNECTIONS];
    for (unsigned i = 0; i < connections; i++) {
        if (evq_net_connect_loopback(port, &c[i]) != 0)
            die("the client's connect", 0);
    }
    uint64_t rounds = 0;
    for (int i = 0; i < 50; i++) /* every connection accepted and warm */
        round_trip(c, connections, &rounds);
    uint64_t before[CALLS];
    for (int k = 0; k < CALLS; k++)
        before[k] = atomic_load(&counts[k]);
    double cpu0 = server_cpu_seconds(&s);
    uint64_t t0 = evq_clock_now_ns(), first = rounds;
    while (bench_seconds_since(t0) < seconds)
        round_trip(c, connections, &rounds);
    double elapsed = bench_seconds_since(t0);
    double cpu = server_cpu_seconds(&s) - cpu0;
    double requests = (double)(rounds - first) * connections;
    struct result r = {.per_second = requests / elapsed, .cpu_us = cpu * 1e6 / requests};
    for (int k = 0; k < CALLS; k++) {
        r.calls[k] = (double)(atomic_load(&counts[k]) - before[k]) / requests;
        r.total_calls += r.calls[k];
    }
    for (unsigned i = 0; i < connections; i++)
        evq_socket_close(c[i]);
    server_stop(&s);
    return r;
}

/* ---- the table ---- */

enum { RAW, QUEUE_1, QUEUE_2, QUEUE_4, BASELINE, ROWS };
static const char *const row_names[] = {"raw epoll, edge-triggered (baseline)",
                                        "this queue, 1 waiter", "this queue, 2 waiters",
                                        "this queue, 4 waiters", "chapter 5's queue, 1 waiter"};

static void print_result(const char *name, const struct result *r)
{
    printf("| %s | %.0f | %.2f | %.2f |", name, r->per_second, r->cpu_us, r->total_calls);
    for (int k = 0; k < CALLS; k++)
        printf(" %.2f |", r->calls[k]);
    printf("\n");
}

/* The child's half of --baseline: one run, one machine-readable line. */
static int print_row(unsigned connections, double seconds)
{
    struct result r = measure(false, 1, connections, seconds);
    printf("%f %f %f", r.per_second, r.cpu_us, r.total_calls);
    for (int k = 0; k < CALLS; k++)
        printf(" %f", r.calls[k]);
    printf("\n");
    return 0;
}

static bool run_baseline(const char *program, unsigned connections, double seconds,
                         struct result *r)
{
    char command[4096];
    snprintf(command, sizeof command, "'%s' --row 1 --connections %u --seconds %g", program,
             connections, seconds);
    FILE *child = popen(command, "r");
    if (!child)
        return false;
    memset(r, 0, sizeof *r);
    int got = fscanf(child, "%lf %lf %lf %lf %lf %lf %lf %lf", &r->per_second, &r->cpu_us,
                     &r->total_calls, &r->calls[0], &r->calls[1], &r->calls[2], &r->calls[3],
                     &r->calls[4]);
    return pclose(child) == 0 && got == 8;
}

static int by_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    static const char *const known[] = {"--connections", "--seconds", "--runs",
                                        "--baseline",    "--row",     NULL};
    unsigned long connections = 100, seconds = 1, runs = 3, row = 0;
    const char *baseline = NULL;
    for (int i = 1; i + 1 < argc; i++) {
        if (strcmp(argv[i], "--baseline") == 0)
            baseline = argv[i + 1];
    }
    if (!bench_arguments_ok(argc, argv, known) ||
        !bench_option(argc, argv, "--connections", 1, MAX_CONNECTIONS, &connections) ||
        !bench_option(argc, argv, "--seconds", 1, 60, &seconds) ||
        !bench_option(argc, argv, "--runs", 1, 99, &runs) ||
        !bench_option(argc, argv, "--row", 0, 1, &row)) {
        fprintf(stderr,
                "usage: %s [--connections N] [--seconds S] [--runs R] "
                "[--baseline PROGRAM]\n",
                argv[0]);
        return 2;
    }
    if (bench_init() != 0)
        return 1;
    if (row)
        return print_row((unsigned)connections, (double)seconds);

    /* results[row][run], then the medians field by field. */
    static struct result results[ROWS][99];
    bool have_baseline = baseline != NULL;
    for (unsigned long run = 0; run < runs; run++) {
        results[RAW][run] = measure(true, 1, (unsigned)connections, (double)seconds);
        results[QUEUE_1][run] = measure(false, 1, (unsigned)connections, (double)seconds);
        results[QUEUE_2][run] = measure(false, 2, (unsigned)connections, (double)seconds);
        results[QUEUE_4][run] = measure(false, 4, (unsigned)connections, (double)seconds);
        if (have_baseline && !run_baseline(baseline, (unsigned)connections, (double)seconds,
                                           &results[BASELINE][run])) {
            fprintf(stderr, "edge: the baseline %s did not run; left out\n", baseline);
            have_baseline = false;
        }
    }
    printf("%lu connections, %d-byte requests echoed, %lu s x %lu runs (medians), epoll\n\n",
           connections, MESSAGE, seconds, runs);
    printf("| server | requests/s | server CPU per request (us) | system calls per request |");
    for (int k = 0; k < CALLS; k++)
        printf(" %s |", call_names[k]);
    printf("\n|---|---:|---:|---:|");
    for (int k = 0; k < CALLS; k++)
        printf("---:|");
    printf("\n");
    struct result median[ROWS];
    for (int r = 0; r < ROWS; r++) {
        if (r == BASELINE && !have_baseline)
            continue;
        double v[99];
        double *fields[3 + CALLS];
        fields[0] = &median[r].per_second;
        fields[1] = &median[r].cpu_us;
        fields[2] = &median[r].total_calls;
        for (int k = 0; k < CALLS; k++)
            fields[3 + k] = &median[r].calls[k];
        for (int f = 0; f < 3 + CALLS; f++) {
            for (unsigned long run = 0; run < runs; run++) {
                const struct result *x = &results[r][run];
                const double all[3 + CALLS] = {x->per_second, x->cpu_us,   x->total_calls,
                                               x->calls[0],   x->calls[1], x->calls[2],
                                               x->calls[3],   x->calls[4]};
                v[run] = all[f];
            }
            qsort(v, runs, sizeof v[0], by_double);
            *fields[f] = v[runs / 2];
        }
        print_result(row_names[r], &median[r]);
    }
    printf("\nthis queue, 1 waiter, against the raw loop: system calls per request %.2f vs "
           "%.2f (goal: not more), CPU per request %.2fx (goal: within 1.05x)\n",
           median[QUEUE_1].total_calls, median[RAW].total_calls,
           median[QUEUE_1].cpu_us / median[RAW].cpu_us);
    if (have_baseline)
        printf("this queue against chapter 5's, 1 waiter: CPU per request %.3fx (goal: within "
               "1.03x), requests/s %.3fx, system calls per request %.2f vs %.2f\n",
               median[QUEUE_1].cpu_us / median[BASELINE].cpu_us,
               median[QUEUE_1].per_second / median[BASELINE].per_second,
               median[QUEUE_1].total_calls, median[BASELINE].total_calls);
    return 0;
}

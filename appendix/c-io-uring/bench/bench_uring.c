/* bench_uring.c - what io_uring changes, measured in one run:
 *
 *   1. idle memory per connection: N idle connections, each waiting for
 *      data (a) on epoll, with no buffer; (b) with a RECV posted into a
 *      4 KiB buffer of its own; (c) with a multishot RECV on one shared
 *      provided-buffer ring. Counted: the bytes lent to the kernel, and the
 *      growth of the resident set (/proc/self/statm).
 *   2. system calls per echo round trip, server side: a plain epoll echo
 *      loop written here (every epoll_wait, accept4, recv, send counted)
 *      against uring_echo's server (every io_uring_enter counted), the same
 *      blocking client driving both; 1 connection, then 32 at once.
 *
 *     uring_bench [--connections N] [--rounds R]
 *
 * Exits 77 (the tests' "skipped") where io_uring is unavailable.
 */
#define _GNU_SOURCE /* RUSAGE_THREAD, accept4 */
#include "echo_server.h"

#include "evq_args.h"
#include "evq_clock.h"
#include "evq_net.h"
#include "evq_thread.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

enum { EXIT_UNAVAILABLE = 77, MESSAGE = 64, OWN_BUFFER = 4096 };

static bool check(int code, const char *what)
{
    if (code != 0)
        fprintf(stderr, "uring_bench: %s: %s\n", what, evq_strerror(code));
    return code == 0;
}

static long resident_bytes(void)
{
    FILE *file = fopen("/proc/self/statm", "r");
    long size = 0, resident = 0;
    if (file) {
        if (fscanf(file, "%ld %ld", &size, &resident) != 2)
            resident = 0;
        fclose(file);
    }
    return resident * sysconf(_SC_PAGESIZE);
}

/* ---- 1. idle memory ------------------------------------------------------------------ */

struct idle_set {
    unsigned count;
    int *client, *server;
};

static int open_idle_set(struct idle_set *set, unsigned count)
{
    set->count = count;
    set->client = calloc(count, sizeof(int));
    set->server = calloc(count, sizeof(int));
    if (!set->client || !set->server)
        return EVQ_ENOMEM;
    for (unsigned i = 0; i < count; i++)
        set->client[i] = set->server[i] = -1;
    evq_socket listener;
    uint16_t port;
    int code = evq_net_listen_loopback(0, 1024, &listener, &port);
    for (unsigned i = 0; i < count && code == 0; i++) {
        evq_socket client, server;
        code = evq_net_connect_loopback(port, &client);
        if (code == 0 && (code = evq_net_accept(listener, &server)) != 0)
            close(client);
        set->client[i] = code == 0 ? client : -1;
        set->server[i] = code == 0 ? server : -1;
    }
    if (listener >= 0)
        close(listener);
    return code;
}

static void close_idle_set(struct idle_set *set)
{
    for (unsigned i = 0; i < set->count && set->client; i++) {
        if (set->client[i] >= 0)
            close(set->client[i]);
        if (set->server[i] >= 0)
            close(set->server[i]);
    }
    free(set->client);
    free(set->server);
}

/* Wake `probes` of the idle connections with a byte each and read it back
 * through the posture under test: proof that every receive was armed. */
static void poke(struct idle_set *set, unsigned probes)
{
    for (unsigned i = 0; i < probes; i++)
        send(set->client[i * (set->count / probes)], "x", 1, 0);
}

struct idle_result {
    const char *name;
    double lent, resident;
    bool ok;
};

static struct idle_result idle_epoll(struct idle_set *set, unsigned probes)
{
    struct idle_result result = {"epoll: readiness, no buffer until data", 0, 0, false};
    long before = resident_bytes();
    int epfd = epoll_create1(EPOLL_CLOEXEC);
    for (unsigned i = 0; i < set->count; i++) {
        struct epoll_event event = {.events = EPOLLIN, .data.u32 = i};
        epoll_ctl(epfd, EPOLL_CTL_ADD, set->server[i], &event);
    }
    result.resident = (double)(resident_bytes() - before);
    poke(set, probes);
    struct epoll_event events[64];
    unsigned seen = 0;
    for (int round = 0; round < 100 && seen < probes; round++) {
        int n = epoll_wait(epfd, events, 64, 1000);
        for (int i = 0; i < n; i++) {
            char byte;
            seen += recv(set->server[events[i].data.u32], &byte, 1, 0) == 1;
        }
    }
    result.ok = seen == probes;
    close(epfd);
    return result;
}

/* Room for 1 000 receives and their completions; the owner is this thread. */
static bool open_ring(evq_uring *ring)
{
    evq_uring_options options = {1024, 4096, EVQ_URING_WANT_DEFER_TASKRUN};
    return check(evq_uring_open(ring, &options), "evq_uring_open");
}

static struct idle_result idle_own_buffers(struct idle_set *set, unsigned probes)
{
    struct idle_result result = {"io_uring: RECV into a 4 KiB buffer each", 0, 0, false};
    evq_uring ring;
    if (!open_ring(&ring))
        return result;
    long before = resident_bytes();
    unsigned char **buffers = calloc(set->count, sizeof *buffers);
    for (unsigned i = 0; buffers && i < set->count; i++) {
        /* Touched, as a buffer that has carried data before. */
        buffers[i] = malloc(OWN_BUFFER);
        if (buffers[i])
            memset(buffers[i], 0, OWN_BUFFER);
        struct io_uring_sqe *sqe;
        if (evq_uring_next_sqe(&ring, &sqe) != 0)
            break;
        evq_uring_prep_recv(sqe, set->server[i], buffers[i], OWN_BUFFER, 0, i);
        result.lent += OWN_BUFFER;
    }
    evq_uring_submit_and_wait(&ring, 0, 0);
    result.resident = (double)(resident_bytes() - before);
    poke(set, probes);
    unsigned seen = 0;
    for (int round = 0; round < 100 && seen < probes; round++) {
        struct io_uring_cqe *cqe;
        if (evq_uring_wait(&ring, &cqe, 1000) != 0)
            break;
        seen += cqe->res == 1;
        evq_uring_advance(&ring, 1);
    }
    result.ok = seen == probes && ring.in_flight == set->count - probes;
    evq_uring_close(&ring); /* cancels the rest and reaps them: then the buffers may go */
    for (unsigned i = 0; buffers && i < set->count; i++)
        free(buffers[i]);
    free(buffers);
    return result;
}

static struct idle_result idle_provided_buffers(struct idle_set *set, unsigned probes)
{
    struct idle_result result = {"io_uring: multishot RECV, shared 64 x 4 KiB ring", 0, 0, false};
    evq_uring ring;
    if (!open_ring(&ring))
        return result;
    long before = resident_bytes();
    evq_uring_pbuf pbuf;
    if (!check(evq_uring_pbuf_open(&ring, &pbuf, 1, ECHO_BUFFERS, OWN_BUFFER),
               "evq_uring_pbuf_open")) {
        evq_uring_close(&ring);
        return result;
    }
    memset(pbuf.memory, 0, (size_t)pbuf.count * pbuf.size); /* touched, as above */
    result.lent = (double)pbuf.count * pbuf.size + (double)pbuf.ring_bytes;
    for (unsigned i = 0; i < set->count; i++) {
        struct io_uring_sqe *sqe;
        if (evq_uring_next_sqe(&ring, &sqe) != 0)
            break;
        evq_uring_prep_recv_multishot(sqe, set->server[i], 1, i);
    }
    evq_uring_submit_and_wait(&ring, 0, 0);
    result.resident = (double)(resident_bytes() - before);
    bool none_taken = pbuf.available == pbuf.count;
    poke(set, probes);
    unsigned seen = 0;
    for (int round = 0; round < 100 && seen < probes; round++) {
        struct io_uring_cqe *cqe;
        if (evq_uring_wait(&ring, &cqe, 1000) != 0)
            break;
        uint16_t id;
        unsigned char *data;
        uint32_t len;
        if (evq_uring_pbuf_take(&pbuf, cqe, &id, &data, &len) == 0) {
            seen += len == 1;
            evq_uring_pbuf_recycle(&pbuf, id);
        }
        evq_uring_advance(&ring, 1);
    }
    result.ok = none_taken && seen == probes && ring.in_flight == set->count;
    evq_uring_close(&ring);
    evq_uring_pbuf_close(&ring, &pbuf);
    return result;
}

static bool bench_idle(unsigned connections)
{
    struct idle_set set;
    if (!check(open_idle_set(&set, connections), "opening the idle connections")) {
        close_idle_set(&set);
        return false;
    }
    unsigned probes = connections >= 8 ? 8 : connections;
    /* Resident growth is a cross-check of the exact "lent" column, and
     * easily fooled: the first fopen/malloc of a process touches the
     * allocator's arena (done before any measurement), and memory one
     * posture frees is reused by the next (so the big one runs last). */
    free(malloc(1));
    (void)resident_bytes();
    struct idle_result results[3];
    results[0] = idle_epoll(&set, probes);
    results[2] = idle_provided_buffers(&set, probes);
    results[1] = idle_own_buffers(&set, probes);
    printf("\n1. Idle memory: %u idle loopback connections, each waiting for data "
           "(%u of them then woken to check)\n\n",
           connections, probes);
    printf("| receive posture | lent to the kernel | per connection | resident growth | "
           "per connection | vs own buffers |\n|---|---|---|---|---|---|\n");
    bool ok = true;
    for (int i = 0; i < 3; i++) {
        double per = results[i].lent / connections;
        printf("| %s | %.0f KiB | %.0f B | %.0f KiB | %.0f B | %.3f |\n", results[i].name,
               results[i].lent / 1024, per, results[i].resident / 1024,
               results[i].resident / connections,
               results[1].lent > 0 ? results[i].lent / results[1].lent : 0);
        if (!results[i].ok) {
            printf("    (%s: the check failed)\n", results[i].name);
            ok = false;
        }
    }
    close_idle_set(&set);
    return ok;
}

/* ---- 2. system calls per round trip -------------------------------------------------- */

struct syscalls {
    uint64_t epoll_wait, accept, recv, send, other;
};

struct epoll_server {
    int listener, stop_fd;
    uint16_t port;
    struct syscalls calls;
    uint64_t cpu_ns;
};

static uint64_t thread_cpu_ns(void)
{
    struct rusage usage;
    getrusage(RUSAGE_THREAD, &usage);
    return (uint64_t)(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * EVQ_NS_PER_S +
           (uint64_t)(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) * 1000;
}

/* The plain readiness loop: level-triggered, one recv per readiness, the
 * echo sent straight back. Every system call it makes is counted. */
static void epoll_server_run(void *arg)
{
    struct epoll_server *server = arg;
    struct syscalls *calls = &server->calls;
    int epfd = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event event = {.events = EPOLLIN, .data.fd = server->listener};
    epoll_ctl(epfd, EPOLL_CTL_ADD, server->listener, &event);
    event.data.fd = server->stop_fd;
    epoll_ctl(epfd, EPOLL_CTL_ADD, server->stop_fd, &event);
    calls->other += 3;
    uint64_t cpu_start = thread_cpu_ns();
    char buffer[4096];
    for (bool running = true; running;) {
        struct epoll_event events[64];
        int n = epoll_wait(epfd, events, 64, -1);
        calls->epoll_wait++;
        for (int i = 0; i < n; i++) {
            int fd = events[i].data.fd;
            if (fd == server->stop_fd) {
                running = false;
            } else if (fd == server->listener) {
                int client = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                calls->accept++;
                if (client >= 0) {
                    struct epoll_event add = {.events = EPOLLIN, .data.fd = client};
                    epoll_ctl(epfd, EPOLL_CTL_ADD, client, &add);
                    calls->other++;
                }
            } else {
                ssize_t got = recv(fd, buffer, sizeof buffer, 0);
                calls->recv++;
                if (got <= 0) {
                    if (got < 0 && errno == EAGAIN)
                        continue;
                    close(fd); /* close() also takes it out of the epoll set */
                    calls->other++;
                    continue;
                }
                for (ssize_t sent = 0; sent < got;) {
                    ssize_t n_sent = send(fd, buffer + sent, (size_t)(got - sent), MSG_NOSIGNAL);
                    calls->send++;
                    if (n_sent <= 0)
                        break; /* a small echo on loopback fits; a failure ends it */
                    sent += n_sent;
                }
            }
        }
    }
    server->cpu_ns = thread_cpu_ns() - cpu_start;
    close(epfd);
}

struct uring_server {
    echo_server server;
    evq_mutex lock;
    evq_cond ready;
    int state, code;
    uint64_t cpu_ns;
};

static void uring_server_run(void *arg)
{
    struct uring_server *self = arg;
    int code = echo_server_open(&self->server, 0, 0); /* owned by this thread */
    evq_mutex_lock(&self->lock);
    self->state = code == 0 ? 1 : -1;
    self->code = code;
    evq_cond_signal(&self->ready);
    evq_mutex_unlock(&self->lock);
    uint64_t cpu_start = thread_cpu_ns();
    if (code == 0)
        self->code = echo_server_run(&self->server);
    self->cpu_ns = thread_cpu_ns() - cpu_start;
    echo_server_close(&self->server);
}

/* The client: `connections` blocking sockets; each round sends a message on
 * every one, then reads every echo back. */
static bool drive(uint16_t port, unsigned connections, unsigned rounds, uint64_t *elapsed_ns)
{
    int *fds = calloc(connections, sizeof(int));
    bool ok = fds != NULL;
    for (unsigned c = 0; ok && c < connections; c++) {
        evq_socket fd;
        ok = evq_net_connect_loopback(port, &fd) == 0;
        fds[c] = ok ? fd : -1;
        if (ok)
            evq_socket_set_nodelay(fd, true);
    }
    unsigned char out[MESSAGE], in[MESSAGE];
    uint64_t start = evq_clock_now_ns();
    for (unsigned r = 0; ok && r < rounds; r++) {
        for (unsigned c = 0; ok && c < connections; c++) {
            memset(out, 'a' + (int)((r + c) % 26), sizeof out);
            ok = evq_net_send_all(fds[c], out, sizeof out) == 0;
        }
        for (unsigned c = 0; ok && c < connections; c++) {
            size_t got = 0;
            while (ok && got < sizeof in) {
                size_t n = 0;
                ok = evq_net_recv(fds[c], in + got, sizeof in - got, &n) == 0 && n > 0;
                got += n;
            }
            ok = ok && in[0] == 'a' + (r + c) % 26 && in[MESSAGE - 1] == in[0];
        }
    }
    *elapsed_ns = evq_clock_now_ns() - start;
    for (unsigned c = 0; fds && c < connections; c++) {
        if (fds[c] >= 0)
            close(fds[c]);
    }
    free(fds);
    return ok;
}

struct echo_result {
    double syscalls, cpu_ns, wall_ns;
    bool ok;
};

static struct echo_result echo_on_epoll(unsigned connections, unsigned rounds)
{
    struct echo_result result = {0, 0, 0, false};
    static struct epoll_server server;
    memset(&server, 0, sizeof server);
    evq_socket listener;
    if (!check(evq_net_listen_loopback(0, 128, &listener, &server.port), "listen"))
        return result;
    server.listener = listener;
    evq_socket_set_nonblocking(listener, true);
    server.stop_fd = eventfd(0, EFD_CLOEXEC);
    evq_thread thread;
    evq_thread_start(&thread, epoll_server_run, &server);
    uint64_t elapsed = 0;
    result.ok = drive(server.port, connections, rounds, &elapsed);
    uint64_t one = 1;
    if (write(server.stop_fd, &one, sizeof one) != sizeof one)
        result.ok = false;
    evq_thread_join(&thread);
    close(server.stop_fd);
    close(listener);
    double trips = (double)connections * rounds;
    const struct syscalls *c = &server.calls;
    result.syscalls = (double)(c->epoll_wait + c->accept + c->recv + c->send + c->other) / trips;
    result.cpu_ns = (double)server.cpu_ns / trips;
    result.wall_ns = (double)elapsed / trips;
    printf("    epoll, %u connection(s): %llu epoll_wait, %llu recv, %llu send, %llu accept, "
           "%llu other\n",
           connections, (unsigned long long)c->epoll_wait, (unsigned long long)c->recv,
           (unsigned long long)c->send, (unsigned long long)c->accept,
           (unsigned long long)c->other);
    return result;
}

static struct echo_result echo_on_uring(unsigned connections, unsigned rounds, int *code)
{
    struct echo_result result = {0, 0, 0, false};
    static struct uring_server self;
    memset(&self, 0, sizeof self);
    evq_mutex_init(&self.lock);
    evq_cond_init(&self.ready);
    evq_thread thread;
    evq_thread_start(&thread, uring_server_run, &self);
    evq_mutex_lock(&self.lock);
    while (self.state == 0)
        evq_cond_wait(&self.ready, &self.lock);
    evq_mutex_unlock(&self.lock);
    uint64_t elapsed = 0;
    if (self.state > 0)
        result.ok = drive(self.server.port, connections, rounds, &elapsed);
    else
        printf("%s\n", self.server.ring.reason);
    if (self.state > 0)
        echo_server_stop(&self.server);
    evq_thread_join(&thread);
    echo_server_free(&self.server);
    *code = self.state > 0 ? self.code : self.code ? self.code : EVQ_EIO;
    double trips = (double)connections * rounds;
    result.syscalls = (double)self.server.ring.enter_calls / trips;
    result.cpu_ns = (double)self.cpu_ns / trips;
    result.wall_ns = (double)elapsed / trips;
    if (self.state > 0)
        printf("    io_uring, %u connection(s): %llu io_uring_enter, %llu completions\n",
               connections, (unsigned long long)self.server.ring.enter_calls,
               (unsigned long long)self.server.completions);
    evq_cond_destroy(&self.ready);
    evq_mutex_destroy(&self.lock);
    return result;
}

static int bench_echo(unsigned rounds)
{
    static const unsigned shapes[] = {1, 32};
    struct echo_result epoll_results[2], uring_results[2];
    printf("\n2. Echo round trips, %d-byte messages, server side (counted in the code)\n\n",
           MESSAGE);
    for (int i = 0; i < 2; i++) {
        unsigned trips_rounds = shapes[i] == 1 ? rounds : rounds / shapes[i] * 2;
        int code = 0;
        epoll_results[i] = echo_on_epoll(shapes[i], trips_rounds);
        uring_results[i] = echo_on_uring(shapes[i], trips_rounds, &code);
        if (code == EVQ_ENOTSUP || code == EVQ_EACCES)
            return EXIT_UNAVAILABLE;
    }
    printf("\n| server | connections | system calls per round trip | vs epoll | server CPU per "
           "round trip | round trip (wall) |\n|---|---|---|---|---|---|\n");
    int status = 0;
    for (int i = 0; i < 2; i++) {
        const struct echo_result *e = &epoll_results[i], *u = &uring_results[i];
        printf("| epoll (recv + send per message) | %u | %.2f | 1.00 | %.1f us | %.1f us |\n",
               shapes[i], e->syscalls, e->cpu_ns / 1000, e->wall_ns / 1000);
        printf("| io_uring (uring_echo's server) | %u | %.2f | %.2f | %.1f us | %.1f us |\n",
               shapes[i], u->syscalls, u->syscalls / e->syscalls, u->cpu_ns / 1000,
               u->wall_ns / 1000);
        if (!e->ok || !u->ok) {
            printf("    (%u connections: an echo came back wrong)\n", shapes[i]);
            status = 1;
        }
    }
    return status;
}

int main(int argc, char **argv)
{
    unsigned long connections = 1000, rounds = 20000;
    for (int i = 1; i < argc; i++) {
        const char *value = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(argv[i], "--connections") == 0 && value &&
            evq_parse_ulong(value, 8, 100000, &connections))
            i++;
        else if (strcmp(argv[i], "--rounds") == 0 && value &&
                 evq_parse_ulong(value, 64, 10000000, &rounds))
            i++;
        else {
            fprintf(stderr, "Usage: %s [--connections N] [--rounds R]\n", argv[0]);
            return 2;
        }
    }
    evq_uring_support support;
    if (evq_uring_check(&support) != 0) {
        printf("%s\n", support.reason);
        return EXIT_UNAVAILABLE;
    }
    /* Both ends of every idle connection live in this process. */
    struct rlimit limit;
    if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
        limit.rlim_cur = limit.rlim_max;
        setrlimit(RLIMIT_NOFILE, &limit);
    }
    if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < 2 * connections + 64) {
        connections = (limit.rlim_cur - 64) / 2;
        printf("(descriptor limit %llu: %lu connections)\n", (unsigned long long)limit.rlim_cur,
               connections);
    }
    printf("io_uring bench: setup flags SINGLE_ISSUER %s, DEFER_TASKRUN %s\n",
           support.setup_flags & IORING_SETUP_SINGLE_ISSUER ? "yes" : "no",
           support.setup_flags & IORING_SETUP_DEFER_TASKRUN ? "yes" : "no");
    bool ok = bench_idle((unsigned)connections);
    int status = bench_echo((unsigned)rounds);
    return status != 0 ? status : ok ? 0 : 1;
}

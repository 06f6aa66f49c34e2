/* baseline.c - the command line, listeners, threads, stop signal, accept
 * and write buffer of chapter 7's baseline servers (see baseline.h). Linux. */
#define _GNU_SOURCE /* accept4 */
#include "baseline.h"

#include "evq_args.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_THREADS 64

/* ---- the command line ---------------------------------------------------------- */
static int usage(FILE *to, const char *program, const char *name, int status)
{
    fprintf(to,
            "Usage: %s [--port P] [--threads N]\n"
            "\n"
            "An echo server on 127.0.0.1 (%s), a baseline of chapter 7's benchmark.\n"
            "Everything a connection sends comes back to it. Ctrl-C (SIGINT) or SIGTERM\n"
            "stops it cleanly.\n"
            "\n"
            "  --port P     port to listen on (default 0: any free port, printed)\n"
            "  --threads N  event loops, one per thread, each with its own listener on\n"
            "               the same port (SO_REUSEPORT) (default 1, at most %d)\n"
            "  -h, --help   show this help and exit\n",
            program, name, MAX_THREADS);
    return status;
}

struct options {
    unsigned long port;
    unsigned long threads;
};

static bool parse_options(int argc, char **argv, struct options *options)
{
    options->port = 0;
    options->threads = 1;
    for (int i = 1; i < argc; i++) {
        if (i + 1 < argc && strcmp(argv[i], "--port") == 0) {
            if (!evq_parse_ulong(argv[++i], 0, 65535, &options->port))
                return false;
        } else if (i + 1 < argc && strcmp(argv[i], "--threads") == 0) {
            if (!evq_parse_ulong(argv[++i], 1, MAX_THREADS, &options->threads))
                return false;
        } else {
            return false;
        }
    }
    return true;
}

/* ---- listeners ------------------------------------------------------------------- */
static int listen_loopback(uint16_t port, bool share_port, int *out, uint16_t *port_out)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int on = 1;
    struct sockaddr_in address;
    memset(&address, 0, sizeof address);
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = htons(port);
    socklen_t length = sizeof address;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) != 0 ||
        (share_port && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof on) != 0) ||
        bind(fd, (struct sockaddr *)&address, sizeof address) != 0 || listen(fd, SOMAXCONN) != 0 ||
        getsockname(fd, (struct sockaddr *)&address, &length) != 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    *out = fd;
    *port_out = ntohs(address.sin_port);
    return 0;
}

/* 1000 connections need more descriptors than a shell's usual soft limit of
 * 1024; the hard limit is the ceiling a process may raise itself to. */
static void raise_descriptor_limit(void)
{
    struct rlimit limit;
    if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
        limit.rlim_cur = limit.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &limit) != 0)
            perror("setrlimit(RLIMIT_NOFILE)");
    }
}

/* ---- threads ----------------------------------------------------------------------- */
struct loop_thread {
    pthread_t thread;
    struct baseline_loop loop;
    baseline_loop_fn run;
};

static atomic_int loops_failed;

static void *loop_thread_main(void *arg)
{
    struct loop_thread *t = arg;
    if (t->run(&t->loop) != 0) {
        atomic_store(&loops_failed, 1);
        kill(getpid(), SIGTERM); /* wakes the main thread's sigwait */
    }
    return NULL;
}

int baseline_main(int argc, char **argv, const char *name, baseline_loop_fn run)
{
    struct options options;
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
            return usage(stdout, argv[0], name, 0);
    if (!parse_options(argc, argv, &options))
        return usage(stderr, argv[0], name, 2);

    raise_descriptor_limit();
    /* A write to a connection the peer has closed must be an error, not the
     * end of the process (libuv and libevent write with write()/writev()). */
    signal(SIGPIPE, SIG_IGN);
    /* Block the stop signals before any thread starts: threads inherit the
     * mask, so only the main thread's sigwait() ever takes them. */
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);

    int status = 1;
    unsigned threads = (unsigned)options.threads, started = 0, listening = 0;
    struct loop_thread *loops = calloc(threads, sizeof *loops);
    int stop_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (loops == NULL || stop_fd < 0) {
        perror("start");
        goto done;
    }
    uint16_t port = (uint16_t)options.port;
    for (; listening < threads; listening++) {
        /* The first listener may choose the port; the others share it. */
        if (listen_loopback(port, threads > 1, &loops[listening].loop.listener, &port) != 0) {
            fprintf(stderr, "%s: listen on 127.0.0.1:%u: %s\n", name, (unsigned)port,
                    strerror(errno));
            goto done;
        }
        loops[listening].loop.index = listening;
        loops[listening].loop.stop_fd = stop_fd;
        loops[listening].run = run;
    }
    printf("%s listening on 127.0.0.1:%u (%u thread%s)\n", name, (unsigned)port, threads,
           threads == 1 ? "" : "s");
    fflush(stdout);

    for (; started < threads; started++) {
        int rc = pthread_create(&loops[started].thread, NULL, loop_thread_main, &loops[started]);
        if (rc != 0) {
            fprintf(stderr, "%s: pthread_create: %s\n", name, strerror(rc));
            break;
        }
    }
    if (started == threads) {
        int signal_number = 0;
        sigwait(&stop_signals, &signal_number);
    }
    /* Every loop watches stop_fd; a counter above zero keeps it readable. */
    uint64_t one = 1;
    if (write(stop_fd, &one, sizeof one) != (ssize_t)sizeof one)
        perror("write(stop)");
    for (unsigned i = 0; i < started; i++)
        pthread_join(loops[i].thread, NULL);
    status = started == threads && !atomic_load(&loops_failed) ? 0 : 1;
    printf("%s stopped\n", name);

done:
    /* A loop that ran has closed its own listener; close the others. */
    for (unsigned i = started; i < listening; i++)
        close(loops[i].loop.listener);
    if (stop_fd >= 0)
        close(stop_fd);
    free(loops);
    return status;
}

/* ---- accept ------------------------------------------------------------------------ */
int baseline_spare_open(void)
{
    return open("/dev/null", O_RDONLY | O_CLOEXEC);
}

int baseline_accept(int listener, int *spare_fd)
{
    for (;;) {
        int fd = accept4(listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            int on = 1;
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
            return fd;
        }
        if (errno == EINTR || errno == ECONNABORTED)
            continue; /* this one is gone: the next may be fine */
        if ((errno == EMFILE || errno == ENFILE) && *spare_fd >= 0) {
            close(*spare_fd);
            fd = accept(listener, NULL, NULL);
            if (fd >= 0)
                close(fd);
            *spare_fd = baseline_spare_open();
        }
        /* EAGAIN, or one of the network errors accept(2) says to treat as
         * EAGAIN: the listener reports readiness again when there is more. */
        return -1;
    }
}

/* ---- the write buffer --------------------------------------------------------------- */
static int output_append(struct baseline_output *output, const char *data, size_t len)
{
    if (output->start == output->end)
        output->start = output->end = 0;
    if (output->capacity - output->end < len) {
        /* Move what is left to the front before growing. */
        size_t pending = output->end - output->start;
        if (output->start > 0) {
            memmove(output->data, output->data + output->start, pending);
            output->start = 0;
            output->end = pending;
        }
        if (output->capacity - output->end < len) {
            size_t capacity = output->capacity ? output->capacity : 4096;
            while (capacity - pending < len)
                capacity *= 2;
            char *grown = realloc(output->data, capacity);
            if (grown == NULL)
                return -1;
            output->data = grown;
            output->capacity = capacity;
        }
    }
    memcpy(output->data + output->end, data, len);
    output->end += len;
    return 0;
}

int baseline_output_flush(struct baseline_output *output, int fd)
{
    while (output->start < output->end) {
        ssize_t n =
            send(fd, output->data + output->start, output->end - output->start, MSG_NOSIGNAL);
        if (n >= 0) {
            output->start += (size_t)n;
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            return 1;
        } else if (errno != EINTR) {
            return -1;
        }
    }
    return 0;
}

int baseline_echo(struct baseline_output *output, int fd, const void *data, size_t len)
{
    const char *bytes = data;
    if (baseline_output_pending(output) > 0)
        return output_append(output, bytes, len); /* keep the order: behind what waits */
    while (len > 0) {
        ssize_t n = send(fd, bytes, len, MSG_NOSIGNAL);
        if (n >= 0) {
            bytes += n;
            len -= (size_t)n;
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            break;
        } else if (errno != EINTR) {
            return -1;
        }
    }
    return len > 0 ? output_append(output, bytes, len) : 0;
}

void baseline_output_free(struct baseline_output *output)
{
    free(output->data);
    memset(output, 0, sizeof *output);
}

/* ev_echo.c - chapter 7's libev baseline: an echo server in libev's style.
 * libev has watchers and no buffers, so the reading and writing is by hand,
 * as in the raw epoll baseline, but level-triggered: libev's epoll backend
 * reports a descriptor again while it stays readable.
 *
 *     ch07_bench_ev_echo [--port P] [--threads N]
 *
 * - One loop per thread (ev_loop_new on the epoll backend), each on its own
 *   listener.
 * - One recv() per readable callback: anything left makes the descriptor
 *   readable again on the next turn, so no read to EAGAIN is needed.
 * - The echo is sent at once; what the socket does not take waits in the
 *   write buffer and a second watcher (EV_WRITE) runs while it is not empty.
 * - Past BASELINE_OUTPUT_LIMIT bytes waiting, the read watcher is stopped
 *   until the output has drained.
 * - The stop descriptor has a watcher that breaks the loop; the connections
 *   are then closed from the loop's list.
 */
#define _GNU_SOURCE
#include "baseline.h"

#include <errno.h>
#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

struct connection {
    ev_io reader;
    ev_io writer;
    bool peer_closed; /* EOF read: close once the output has gone */
    struct baseline_output output;
    struct loop_state *state;
    struct connection *prev, *next;
};

struct loop_state {
    struct ev_loop *loop;
    ev_io acceptor;
    ev_io stopper;
    int listener;
    int spare_fd;
    struct connection *connections; /* every open connection, closed on stop */
    char buffer[BASELINE_READ_SIZE];
};

static void close_connection(struct connection *c)
{
    struct loop_state *state = c->state;
    ev_io_stop(state->loop, &c->reader);
    ev_io_stop(state->loop, &c->writer);
    close(c->reader.fd);
    baseline_output_free(&c->output);
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        state->connections = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    free(c);
}

/* The watchers that match the output: the writer while output waits, the
 * reader unless the output is over the limit or the peer has closed. */
static void update_watchers(struct connection *c)
{
    struct ev_loop *loop = c->state->loop;
    size_t pending = baseline_output_pending(&c->output);
    if (pending == 0 && c->peer_closed) {
        close_connection(c);
        return;
    }
    if (pending > 0)
        ev_io_start(loop, &c->writer); /* no-op when it runs already */
    else
        ev_io_stop(loop, &c->writer);
    if (pending < BASELINE_OUTPUT_LIMIT && !c->peer_closed)
        ev_io_start(loop, &c->reader);
    else
        ev_io_stop(loop, &c->reader);
}

static void on_readable(struct ev_loop *loop, ev_io *watcher, int events)
{
    struct connection *c = watcher->data;
    (void)loop;
    (void)events;
    ssize_t n = recv(watcher->fd, c->state->buffer, sizeof c->state->buffer, 0);
    if (n > 0) {
        if (baseline_echo(&c->output, watcher->fd, c->state->buffer, (size_t)n) != 0) {
            close_connection(c);
            return;
        }
    } else if (n == 0) {
        c->peer_closed = true;
    } else if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
        return;
    } else {
        close_connection(c);
        return;
    }
    update_watchers(c);
}

static void on_writable(struct ev_loop *loop, ev_io *watcher, int events)
{
    struct connection *c = watcher->data;
    (void)loop;
    (void)events;
    if (baseline_output_flush(&c->output, watcher->fd) < 0) {
        close_connection(c);
        return;
    }
    update_watchers(c);
}

static void on_acceptable(struct ev_loop *loop, ev_io *watcher, int events)
{
    struct loop_state *state = watcher->data;
    (void)events;
    int fd;
    while ((fd = baseline_accept(state->listener, &state->spare_fd)) >= 0) {
        struct connection *c = calloc(1, sizeof *c);
        if (c == NULL) {
            close(fd);
            continue;
        }
        c->state = state;
        ev_io_init(&c->reader, on_readable, fd, EV_READ);
        ev_io_init(&c->writer, on_writable, fd, EV_WRITE);
        c->reader.data = c->writer.data = c;
        c->next = state->connections;
        if (c->next != NULL)
            c->next->prev = c;
        state->connections = c;
        ev_io_start(loop, &c->reader);
    }
}

static void on_stop(struct ev_loop *loop, ev_io *watcher, int events)
{
    (void)watcher;
    (void)events;
    ev_break(loop, EVBREAK_ALL);
}

static int run_loop(struct baseline_loop *loop)
{
    struct loop_state *state = calloc(1, sizeof *state);
    struct ev_loop *ev = ev_loop_new(EVBACKEND_EPOLL);
    if (state == NULL || ev == NULL) {
        fprintf(stderr, "libev: cannot start a loop on epoll\n");
        free(state);
        if (ev != NULL)
            ev_loop_destroy(ev);
        close(loop->listener);
        return -1;
    }
    state->loop = ev;
    state->listener = loop->listener;
    state->spare_fd = baseline_spare_open();
    ev_io_init(&state->acceptor, on_acceptable, loop->listener, EV_READ);
    ev_io_init(&state->stopper, on_stop, loop->stop_fd, EV_READ);
    state->acceptor.data = state->stopper.data = state;
    ev_io_start(ev, &state->acceptor);
    ev_io_start(ev, &state->stopper);
    ev_run(ev, 0);
    while (state->connections != NULL)
        close_connection(state->connections);
    ev_io_stop(ev, &state->acceptor);
    ev_io_stop(ev, &state->stopper);
    ev_loop_destroy(ev);
    close(state->listener);
    if (state->spare_fd >= 0)
        close(state->spare_fd);
    free(state);
    return 0;
}

int main(int argc, char **argv)
{
    char name[64];
    snprintf(name, sizeof name, "libev %d.%d echo", ev_version_major(), ev_version_minor());
    return baseline_main(argc, argv, name, run_loop);
}

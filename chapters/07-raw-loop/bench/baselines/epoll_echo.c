/* epoll_echo.c - the baseline of chapter 7's benchmark: an echo server on
 * raw epoll, edge-triggered, written the way a careful programmer would
 * write it without a library.
 *
 *     ch07_bench_epoll_echo [--port P] [--threads N]
 *
 * - Connections are registered once, EPOLLIN | EPOLLET. An edge says "new
 *   data arrived"; it is not repeated, so every readable event is drained
 *   until recv() says EAGAIN - stopping earlier would strand bytes until the
 *   peer happened to send more.
 * - Each chunk read is sent back at once. What the socket does not take
 *   waits in the connection's write buffer, and only then is EPOLLOUT added
 *   (and removed when the buffer has drained): in a ping-pong the socket
 *   always takes it, so the fast path has no epoll_ctl at all.
 * - Past BASELINE_OUTPUT_LIMIT bytes waiting, the connection is not read
 *   (backpressure). The input is then not drained, and no new edge will come
 *   for what is already buffered: the writable handler reads again itself
 *   once the output has gone. (Linux's EPOLL_CTL_MOD, which drops EPOLLOUT
 *   at that moment, also reports input that is there; the server does not
 *   lean on that.)
 * - The listener is level-triggered: accept until EAGAIN, and at the
 *   descriptor limit drop one connection instead of spinning.
 */
#define _GNU_SOURCE
#include "baseline.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_EVENTS 512

struct connection {
    int fd;
    bool want_writable;  /* EPOLLOUT is in the interest set */
    bool reading_paused; /* output over the limit: input left undrained */
    bool peer_closed;    /* EOF read: close once the output has gone */
    struct baseline_output output;
    struct connection *prev, *next; /* every open connection, freed on stop */
};

struct server {
    int epoll_fd;
    int listener;
    int spare_fd;
    struct connection *connections;
    char buffer[BASELINE_READ_SIZE];
};

/* epoll_data.ptr of the two descriptors that are not connections. */
static char listener_token, stop_token;

static void close_connection(struct server *server, struct connection *c)
{
    /* close() removes the descriptor from the epoll set: nothing else holds
     * a duplicate of it. */
    close(c->fd);
    baseline_output_free(&c->output);
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        server->connections = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    free(c);
}

/* Ask for EPOLLOUT while output waits, and only then. false: closed. */
static bool update_interest(struct server *server, struct connection *c)
{
    bool pending = baseline_output_pending(&c->output) > 0;
    if (!pending && c->peer_closed) {
        close_connection(server, c);
        return false;
    }
    if (pending != c->want_writable) {
        struct epoll_event event = {.events = EPOLLIN | EPOLLET | (pending ? EPOLLOUT : 0),
                                    .data.ptr = c};
        if (epoll_ctl(server->epoll_fd, EPOLL_CTL_MOD, c->fd, &event) != 0) {
            close_connection(server, c);
            return false;
        }
        c->want_writable = pending;
    }
    return true;
}

/* ANCHOR: drain */
/* Drain the socket, echoing as it goes. false: the connection was closed. */
static bool on_readable(struct server *server, struct connection *c)
{
    while (!c->peer_closed) {
        if (baseline_output_pending(&c->output) >= BASELINE_OUTPUT_LIMIT) {
            c->reading_paused = true;
            break;
        }
        ssize_t n = recv(c->fd, server->buffer, sizeof server->buffer, 0);
        if (n > 0) {
            if (baseline_echo(&c->output, c->fd, server->buffer, (size_t)n) != 0) {
                close_connection(server, c);
                return false;
            }
        } else if (n == 0) {
            c->peer_closed = true;
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            break;
        } else if (errno != EINTR) {
            close_connection(server, c); /* ECONNRESET and the like */
            return false;
        }
    }
    return update_interest(server, c);
}
/* ANCHOR_END: drain */

static bool on_writable(struct server *server, struct connection *c)
{
    if (baseline_output_flush(&c->output, c->fd) < 0) {
        close_connection(server, c);
        return false;
    }
    if (c->reading_paused && baseline_output_pending(&c->output) == 0) {
        c->reading_paused = false;
        return on_readable(server, c);
    }
    return update_interest(server, c);
}

static void accept_connections(struct server *server)
{
    int fd;
    while ((fd = baseline_accept(server->listener, &server->spare_fd)) >= 0) {
        struct connection *c = calloc(1, sizeof *c);
        struct epoll_event event = {.events = EPOLLIN | EPOLLET, .data.ptr = c};
        if (c == NULL || epoll_ctl(server->epoll_fd, EPOLL_CTL_ADD, fd, &event) != 0) {
            free(c);
            close(fd);
            continue;
        }
        c->fd = fd;
        c->next = server->connections;
        if (c->next != NULL)
            c->next->prev = c;
        server->connections = c;
        /* No read here: EPOLL_CTL_ADD reports data that is already there. */
    }
}

static int serve(struct server *server)
{
    struct epoll_event events[MAX_EVENTS];
    for (;;) {
        int n = epoll_wait(server->epoll_fd, events, MAX_EVENTS, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            perror("epoll_wait");
            return -1;
        }
        for (int i = 0; i < n; i++) {
            void *token = events[i].data.ptr;
            uint32_t ready = events[i].events;
            if (token == &stop_token)
                return 0;
            if (token == &listener_token) {
                accept_connections(server);
                continue;
            }
            /* epoll reports a descriptor at most once per call, so a
             * connection closed above has no event left in this batch. */
            struct connection *c = token;
            if ((ready & EPOLLOUT) && !on_writable(server, c))
                continue;
            /* EPOLLERR and EPOLLHUP: recv() says what happened. */
            if (ready & (EPOLLIN | EPOLLERR | EPOLLHUP))
                on_readable(server, c);
        }
    }
}

static int run_loop(struct baseline_loop *loop)
{
    int status = -1;
    struct server *server = calloc(1, sizeof *server);
    if (server == NULL) {
        close(loop->listener);
        return -1;
    }
    server->listener = loop->listener;
    server->spare_fd = baseline_spare_open();
    server->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event listen_event = {.events = EPOLLIN, .data.ptr = &listener_token};
    struct epoll_event stop_event = {.events = EPOLLIN, .data.ptr = &stop_token};
    if (server->epoll_fd < 0 ||
        epoll_ctl(server->epoll_fd, EPOLL_CTL_ADD, loop->listener, &listen_event) != 0 ||
        epoll_ctl(server->epoll_fd, EPOLL_CTL_ADD, loop->stop_fd, &stop_event) != 0) {
        perror("epoll");
    } else {
        status = serve(server);
    }
    while (server->connections != NULL)
        close_connection(server, server->connections);
    if (server->epoll_fd >= 0)
        close(server->epoll_fd);
    if (server->spare_fd >= 0)
        close(server->spare_fd);
    close(server->listener);
    free(server);
    return status;
}

int main(int argc, char **argv)
{
    return baseline_main(argc, argv, "raw epoll ET echo", run_loop);
}

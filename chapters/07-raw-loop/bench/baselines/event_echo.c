/* event_echo.c - chapter 7's libevent baseline: the echo server of
 * libevent's own documentation (an evconnlistener and a bufferevent per
 * connection whose read callback moves the input buffer to the output
 * buffer), with backpressure and a clean stop added.
 *
 *     ch07_bench_event_echo [--port P] [--threads N]
 *
 * - One event_base per thread, each on its own listener; no locking is
 *   asked for (evthread_use_pthreads is not called): nothing is shared.
 * - bufferevent_write_buffer moves the chain of the input buffer to the
 *   output buffer without copying. The bufferevent writes it when the socket
 *   is writable: it adds EV_WRITE, and the base's next epoll_wait reports it
 *   (that is how bufferevents work; the cost is part of what is measured).
 * - Past BASELINE_OUTPUT_LIMIT bytes in the output buffer reading stops
 *   until it has drained.
 * - The stop descriptor is an EV_READ event that breaks the loop; the
 *   connections are then freed from the loop's list.
 */
#define _GNU_SOURCE
#include "baseline.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

struct connection {
    struct bufferevent *bev;
    struct loop_state *state;
    bool reading_paused;
    bool peer_closed; /* EOF read: free once the output has gone */
    struct connection *prev, *next;
};

struct loop_state {
    struct event_base *base;
    struct evconnlistener *listener;
    struct event *stop;
    struct connection *connections; /* every open connection, freed on stop */
};

static void free_connection(struct connection *c)
{
    bufferevent_free(c->bev); /* BEV_OPT_CLOSE_ON_FREE: closes the socket */
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        c->state->connections = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    free(c);
}

static void on_read(struct bufferevent *bev, void *arg)
{
    struct connection *c = arg;
    struct evbuffer *output = bufferevent_get_output(bev);
    if (bufferevent_write_buffer(bev, bufferevent_get_input(bev)) != 0) {
        free_connection(c);
        return;
    }
    if (evbuffer_get_length(output) >= BASELINE_OUTPUT_LIMIT) {
        c->reading_paused = true;
        bufferevent_disable(bev, EV_READ);
    }
}

/* Called when the output buffer has drained (the low write watermark, 0). */
static void on_write(struct bufferevent *bev, void *arg)
{
    struct connection *c = arg;
    if (c->peer_closed) {
        free_connection(c);
    } else if (c->reading_paused) {
        c->reading_paused = false;
        bufferevent_enable(bev, EV_READ);
    }
}

static void on_event(struct bufferevent *bev, short events, void *arg)
{
    struct connection *c = arg;
    if ((events & BEV_EVENT_EOF) && !(events & BEV_EVENT_ERROR) &&
        evbuffer_get_length(bufferevent_get_output(bev)) > 0) {
        c->peer_closed = true; /* on_write frees it when the echoes have gone */
        return;
    }
    if (events & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
        free_connection(c);
}

static void on_accept(struct evconnlistener *listener, evutil_socket_t fd, struct sockaddr *address,
                      int length, void *arg)
{
    struct loop_state *state = arg;
    (void)listener;
    (void)address;
    (void)length;
    int on = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
    struct connection *c = calloc(1, sizeof *c);
    struct bufferevent *bev =
        c != NULL ? bufferevent_socket_new(state->base, fd, BEV_OPT_CLOSE_ON_FREE) : NULL;
    if (bev == NULL) {
        free(c);
        evutil_closesocket(fd);
        return;
    }
    c->bev = bev;
    c->state = state;
    c->next = state->connections;
    if (c->next != NULL)
        c->next->prev = c;
    state->connections = c;
    bufferevent_setcb(bev, on_read, on_write, on_event, c);
    if (bufferevent_enable(bev, EV_READ) != 0)
        free_connection(c);
}

static void on_stop(evutil_socket_t fd, short events, void *arg)
{
    struct loop_state *state = arg;
    (void)fd;
    (void)events;
    event_base_loopbreak(state->base);
}

static int run_loop(struct baseline_loop *loop)
{
    int status = -1;
    struct loop_state state = {0};
    state.base = event_base_new();
    if (state.base != NULL)
        /* flags 0 and backlog 0: the socket is non-blocking and listening
         * already; the listener owns it from here (LEV_OPT_CLOSE_ON_FREE). */
        state.listener = evconnlistener_new(state.base, on_accept, &state, LEV_OPT_CLOSE_ON_FREE, 0,
                                            loop->listener);
    if (state.listener == NULL)
        close(loop->listener);
    if (state.base != NULL)
        state.stop = event_new(state.base, loop->stop_fd, EV_READ | EV_PERSIST, on_stop, &state);
    if (state.listener == NULL || state.stop == NULL || event_add(state.stop, NULL) != 0)
        fprintf(stderr, "libevent: cannot start a loop\n");
    else
        status = event_base_dispatch(state.base) < 0 ? -1 : 0;
    while (state.connections != NULL)
        free_connection(state.connections);
    if (state.stop != NULL)
        event_free(state.stop);
    if (state.listener != NULL)
        evconnlistener_free(state.listener);
    if (state.base != NULL)
        event_base_free(state.base);
    return status;
}

int main(int argc, char **argv)
{
    char name[64];
    snprintf(name, sizeof name, "libevent %s echo", event_get_version());
    return baseline_main(argc, argv, name, run_loop);
}

/* uv_echo.c - chapter 7's libuv baseline: an echo server written the way
 * libuv's documentation and its own benchmarks write one, plus what a careful
 * programmer adds for speed and safety.
 *
 *     ch07_bench_uv_echo [--port P] [--threads N]
 *
 * - One uv_loop_t per thread, each on its own listener (uv_tcp_open).
 * - Reads land in one buffer per loop (alloc_cb hands out the same 64 KiB
 *   every time: the read callback is done with it before the next read).
 * - The echo is written at once with uv_try_write; only what the socket does
 *   not take is copied into a uv_write request (libuv keeps those in order:
 *   uv_try_write refuses while a request is queued).
 * - Past BASELINE_OUTPUT_LIMIT bytes queued the connection stops reading
 *   (uv_read_stop) until its writes have gone.
 * - The stop descriptor is watched with a uv_poll_t; when it fires every
 *   handle is closed, and uv_run returns once they all are.
 * libuv runs on epoll on Linux (level-triggered).
 */
#define _GNU_SOURCE /* uv.h needs the POSIX types (pthread_rwlock_t) */
#include "baseline.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

struct loop_state {
    uv_loop_t loop;
    uv_tcp_t listener;
    uv_poll_t stop;
    char buffer[BASELINE_READ_SIZE];
};

struct connection {
    uv_tcp_t tcp; /* first: a handle pointer is a connection pointer */
    bool reading_paused;
};

struct write_request {
    uv_write_t request;
    uv_buf_t buf;
    char data[]; /* what uv_try_write left */
};

static void free_handle(uv_handle_t *handle)
{
    free(handle); /* a connection: its uv_tcp_t comes first */
}

static void close_connection(uv_stream_t *stream)
{
    if (!uv_is_closing((uv_handle_t *)stream))
        uv_close((uv_handle_t *)stream, free_handle);
}

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    struct loop_state *state = handle->loop->data;
    (void)suggested;
    *buf = uv_buf_init(state->buffer, sizeof state->buffer);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);

static void on_written(uv_write_t *request, int status)
{
    uv_stream_t *stream = request->handle;
    struct connection *c = (struct connection *)stream;
    free(request);
    if (status < 0 || uv_is_closing((uv_handle_t *)stream)) {
        close_connection(stream); /* UV_ECANCELED when it was closing already */
        return;
    }
    if (c->reading_paused && uv_stream_get_write_queue_size(stream) == 0) {
        c->reading_paused = false;
        if (uv_read_start(stream, on_alloc, on_read) != 0)
            close_connection(stream);
    }
}

static void on_shutdown(uv_shutdown_t *request, int status)
{
    (void)status;
    close_connection(request->handle);
    free(request);
}

static void echo(uv_stream_t *stream, char *data, size_t len)
{
    uv_buf_t buf = uv_buf_init(data, (unsigned)len);
    int written = uv_try_write(stream, &buf, 1);
    if (written == UV_EAGAIN) {
        written = 0;
    } else if (written < 0) {
        close_connection(stream);
        return;
    }
    if ((size_t)written == len)
        return;
    size_t rest = len - (size_t)written;
    struct write_request *request = malloc(sizeof *request + rest);
    if (request == NULL) {
        close_connection(stream);
        return;
    }
    memcpy(request->data, data + written, rest);
    request->buf = uv_buf_init(request->data, (unsigned)rest);
    if (uv_write(&request->request, stream, &request->buf, 1, on_written) != 0) {
        free(request);
        close_connection(stream);
        return;
    }
    if (uv_stream_get_write_queue_size(stream) >= BASELINE_OUTPUT_LIMIT) {
        ((struct connection *)stream)->reading_paused = true;
        uv_read_stop(stream);
    }
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    if (nread > 0) {
        echo(stream, buf->base, (size_t)nread);
    } else if (nread < 0) {
        /* UV_EOF or an error. After EOF, let queued echoes go out first. */
        uv_shutdown_t *request = NULL;
        if (nread == UV_EOF && uv_stream_get_write_queue_size(stream) > 0)
            request = malloc(sizeof *request);
        if (request == NULL || uv_shutdown(request, stream, on_shutdown) != 0) {
            free(request);
            close_connection(stream);
        }
    }
    /* nread == 0: nothing to read after all (EAGAIN) */
}

static void on_connection(uv_stream_t *listener, int status)
{
    if (status < 0)
        return;
    struct connection *c = calloc(1, sizeof *c);
    if (c == NULL || uv_tcp_init(listener->loop, &c->tcp) != 0) {
        free(c);
        return;
    }
    if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0 || uv_tcp_nodelay(&c->tcp, 1) != 0 ||
        uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0)
        close_connection((uv_stream_t *)&c->tcp);
}

static void close_any(uv_handle_t *handle, void *arg)
{
    struct loop_state *state = arg;
    if (uv_is_closing(handle))
        return;
    bool ours = handle == (uv_handle_t *)&state->listener || handle == (uv_handle_t *)&state->stop;
    uv_close(handle, ours ? NULL : free_handle);
}

static void on_stop(uv_poll_t *poll, int status, int events)
{
    (void)status;
    (void)events;
    uv_walk(poll->loop, close_any, poll->loop->data);
}

static int run_loop(struct baseline_loop *loop)
{
    int rc;
    struct loop_state *state = calloc(1, sizeof *state);
    if (state == NULL || (rc = uv_loop_init(&state->loop)) != 0) {
        free(state);
        close(loop->listener);
        fprintf(stderr, "libuv: cannot start a loop\n");
        return -1;
    }
    state->loop.data = state;
    uv_tcp_init(&state->loop, &state->listener);
    uv_poll_init(&state->loop, &state->stop, loop->stop_fd);
    /* From here the listener is libuv's: uv_close closes it. */
    if ((rc = uv_tcp_open(&state->listener, loop->listener)) != 0)
        close(loop->listener);
    if (rc != 0 ||
        (rc = uv_listen((uv_stream_t *)&state->listener, SOMAXCONN, on_connection)) != 0 ||
        (rc = uv_poll_start(&state->stop, UV_READABLE, on_stop)) != 0) {
        fprintf(stderr, "libuv: %s\n", uv_strerror(rc));
        uv_walk(&state->loop, close_any, state);
    }
    uv_run(&state->loop, UV_RUN_DEFAULT); /* returns when every handle is closed */
    int closed = uv_loop_close(&state->loop);
    free(state);
    return rc == 0 && closed == 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
    char name[64];
    snprintf(name, sizeof name, "libuv %s echo", uv_version_string());
    return baseline_main(argc, argv, name, run_loop);
}

/* server.c - the delay server: one thread, poll() (WSAPoll on Windows), a
 * min-heap of deadlines, and a small state machine per connection.
 *
 * Every open connection always has exactly one deadline, and so sits in the
 * heap exactly once:
 *
 *   READING    waiting for a whole request head; deadline = the header
 *              timeout from accept, or from the end of the answer before:
 *              fixed for the whole head (nginx's client_header_timeout), so
 *              a client that sends a byte now and then cannot keep the
 *              connection (slowloris); bytes that arrive do not move it
 *   WAITING    a valid request; deadline = when its answer is due
 *   WRITING    sending a response; deadline = the header timeout again,
 *              restarted by every byte that leaves (a client that never
 *              reads cannot hold the connection forever)
 *   LINGERING  the response is sent and our side shut down; read and drop
 *              whatever the client still sends until it closes, so that
 *              closing does not reset the connection and destroy the
 *              response in the client's receive buffer before it reads it
 *
 * The end of the client's stream (recv returns 0) is a half-close until
 * proven otherwise: `printf ... | nc -N` sends its requests and then
 * shutdown(SHUT_WR). Requests received before it are all answered, in order,
 * the delayed ones too; then the connection closes. (A client that closed
 * its socket looks the same until an answer is sent to it.) From then on
 * the socket is not polled for reading: the end is level-triggered and
 * would make every poll() return at once.
 *
 * The poll set is rebuilt on every turn. That is O(open connections) per
 * turn, as poll() itself is; the heap keeps the timers in order, so answers
 * that fall due in the same turn leave shortest-deadline first.
 */
#if !defined(_WIN32) && !defined(_POSIX_C_SOURCE) && !defined(__APPLE__)
#define _POSIX_C_SOURCE 200809L
#endif
#include "evq_delay_server.h"
#include "delay_http.h"
#include "evq_clock.h"
#include "evq_error.h"
#include "evq_log.h"
#include "evq_net.h"
#include "evq_thread.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the platform, in one place ------------------------------------------ */
#ifdef _WIN32
typedef WSAPOLLFD poll_entry;
static int poll_sockets(poll_entry *entries, size_t count, int timeout_ms)
{
    return WSAPoll(entries, (ULONG)count, timeout_ms);
}
static void shutdown_sending(evq_socket socket)
{
    shutdown(socket, SD_SEND);
}
#else
#include <poll.h>
typedef struct pollfd poll_entry;
static int poll_sockets(poll_entry *entries, size_t count, int timeout_ms)
{
    return poll(entries, (nfds_t)count, timeout_ms);
}
static void shutdown_sending(evq_socket socket)
{
    shutdown(socket, SHUT_WR);
}
#endif

/* How long a closing connection waits for the client to close its side. */
#define LINGER_MS_MAX 2000u
/* After accept() fails for lack of descriptors or memory, stop polling the
 * listener for this long: it stays readable, and would make the loop spin. */
#define ACCEPT_PAUSE_MS 100u
/* Accept at most this many connections per turn, so a flood of new clients
 * cannot starve the answers that are due. */
#define ACCEPTS_PER_TURN 64

enum connection_state { READING, WAITING, WRITING, LINGERING };

struct connection {
    evq_socket socket;
    enum connection_state state;
    uint64_t deadline;
    uint64_t deadline_order; /* first come, first served among equal deadlines */
    size_t heap_index;
    size_t in_length;   /* bytes received into in[] */
    size_t head_length; /* the request being answered is in[0, head_length) */
    delay_http_request request;
    bool close_after_write;
    bool peer_closed; /* recv() returned 0: the client sends no more requests */
    char *out;        /* the response being sent */
    size_t out_length;
    size_t out_sent;
    char in[EVQ_DELAY_SERVER_MAX_HEAD];
};

struct evq_delay_server {
    evq_delay_server_config config;
    uint16_t port;
    evq_socket listener;
    evq_socket wake_sender;   /* stop() writes a byte here... */
    evq_socket wake_receiver; /* ...which wakes the server thread's poll */
    evq_thread thread;

    evq_mutex lock; /* guards stopping and stats, which other threads read */
    bool stopping;
    evq_delay_server_stats stats;

    /* Owned by the server thread. */
    struct connection **heap; /* every open connection, ordered by deadline */
    size_t count;
    size_t capacity;
    poll_entry *poll_entries;
    struct connection **polled; /* polled[i] is behind poll_entries[i] */
    uint64_t next_deadline_order;
    uint64_t accept_paused_until;
    uint64_t now; /* this turn's time, from config.clock */
};

/* ---- counters ------------------------------------------------------------ */
enum counter { ACCEPTED, ANSWERED, REJECTED, TIMED_OUT, DISCONNECTED };

static void count(evq_delay_server *server, enum counter which)
{
    evq_mutex_lock(&server->lock);
    switch (which) {
    case ACCEPTED:
        server->stats.accepted++;
        server->stats.open++;
        if (server->stats.open > server->stats.peak_open)
            server->stats.peak_open = server->stats.open;
        break;
    case ANSWERED:
        server->stats.answered++;
        break;
    case REJECTED:
        server->stats.rejected++;
        break;
    case TIMED_OUT:
        server->stats.timed_out++;
        break;
    case DISCONNECTED:
        server->stats.disconnected++;
        break;
    }
    evq_mutex_unlock(&server->lock);
}

static void count_received(evq_delay_server *server, size_t bytes)
{
    evq_mutex_lock(&server->lock);
    server->stats.received += bytes;
    evq_mutex_unlock(&server->lock);
}

static void count_closed(evq_delay_server *server)
{
    evq_mutex_lock(&server->lock);
    server->stats.open--;
    evq_mutex_unlock(&server->lock);
}

static bool is_stopping(evq_delay_server *server)
{
    evq_mutex_lock(&server->lock);
    bool stopping = server->stopping;
    evq_mutex_unlock(&server->lock);
    return stopping;
}

/* ---- the deadline heap --------------------------------------------------- */
static bool earlier(const struct connection *a, const struct connection *b)
{
    if (a->deadline != b->deadline)
        return a->deadline < b->deadline;
    return a->deadline_order < b->deadline_order;
}

static void heap_place(evq_delay_server *server, size_t index, struct connection *connection)
{
    server->heap[index] = connection;
    connection->heap_index = index;
}

static void heap_sift_up(evq_delay_server *server, size_t index)
{
    struct connection *moving = server->heap[index];
    while (index > 0) {
        size_t parent = (index - 1) / 2;
        if (!earlier(moving, server->heap[parent]))
            break;
        heap_place(server, index, server->heap[parent]);
        index = parent;
    }
    heap_place(server, index, moving);
}

static void heap_sift_down(evq_delay_server *server, size_t index)
{
    struct connection *moving = server->heap[index];
    for (;;) {
        size_t child = 2 * index + 1;
        if (child >= server->count)
            break;
        if (child + 1 < server->count && earlier(server->heap[child + 1], server->heap[child]))
            child++;
        if (!earlier(server->heap[child], moving))
            break;
        heap_place(server, index, server->heap[child]);
        index = child;
    }
    heap_place(server, index, moving);
}

static void set_deadline(evq_delay_server *server, struct connection *connection, uint64_t deadline)
{
    connection->deadline = deadline;
    connection->deadline_order = server->next_deadline_order++;
    heap_sift_up(server, connection->heap_index);
    heap_sift_down(server, connection->heap_index);
}

/* The time of this turn: read once when poll() returns and once before the
 * deadlines are run, as libuv's loop time. Every deadline set in between
 * counts from a moment before anything the turn sends: a client that has
 * read its answer knows that its connection's next deadline is already
 * fixed (a test on an injected clock may move the clock then). */
static uint64_t update_now(evq_delay_server *server)
{
    server->now = evq_clock_read(&server->config.clock);
    return server->now;
}

static void set_timeout(evq_delay_server *server, struct connection *connection, uint32_t ms)
{
    set_deadline(server, connection, evq_sat_add(server->now, evq_ms_to_ns(ms)));
}

static void heap_remove(evq_delay_server *server, struct connection *connection)
{
    size_t index = connection->heap_index;
    struct connection *last = server->heap[--server->count];
    if (index == server->count)
        return;
    heap_place(server, index, last);
    heap_sift_up(server, index);
    heap_sift_down(server, last->heap_index);
}

/* Room for one more connection in the heap and the poll arrays (two poll
 * entries more than connections: the wake socket and the listener). */
static int reserve(evq_delay_server *server)
{
    if (server->count < server->capacity)
        return 0;
    size_t capacity = server->capacity ? server->capacity * 2 : 64;
    struct connection **heap = realloc(server->heap, capacity * sizeof *heap);
    if (!heap)
        return EVQ_ENOMEM;
    server->heap = heap;
    poll_entry *entries = realloc(server->poll_entries, (capacity + 2) * sizeof *entries);
    if (!entries)
        return EVQ_ENOMEM;
    server->poll_entries = entries;
    struct connection **polled = realloc(server->polled, (capacity + 2) * sizeof *polled);
    if (!polled)
        return EVQ_ENOMEM;
    server->polled = polled;
    server->capacity = capacity;
    return 0;
}

/* ---- connections --------------------------------------------------------- */
static void close_connection(evq_delay_server *server, struct connection *connection)
{
    heap_remove(server, connection);
    evq_socket_close(connection->socket);
    free(connection->out);
    free(connection);
    count_closed(server);
}

static uint32_t linger_ms(const evq_delay_server *server)
{
    uint32_t timeout = server->config.header_timeout_ms;
    return timeout < LINGER_MS_MAX ? timeout : LINGER_MS_MAX;
}

/* Start sending a response: the status line, the headers and the body. */
static int start_response(evq_delay_server *server, struct connection *connection, int status,
                          const char *extra_headers, const char *body, size_t body_length,
                          bool keep_alive)
{
    char head[256];
    int head_length = snprintf(head, sizeof head,
                               "HTTP/1.1 %d %s\r\n"
                               "Content-Type: text/plain\r\n"
                               "Content-Length: %zu\r\n"
                               "Connection: %s\r\n"
                               "%s\r\n",
                               status, delay_http_status_text(status), body_length,
                               keep_alive ? "keep-alive" : "close", extra_headers);
    if (head_length < 0 || (size_t)head_length >= sizeof head)
        return EVQ_EINVAL;
    char *out = malloc((size_t)head_length + body_length);
    if (!out)
        return EVQ_ENOMEM;
    memcpy(out, head, (size_t)head_length);
    if (body_length > 0)
        memcpy(out + head_length, body, body_length);
    free(connection->out);
    connection->out = out;
    connection->out_length = (size_t)head_length + body_length;
    connection->out_sent = 0;
    connection->close_after_write = !keep_alive;
    connection->state = WRITING;
    set_timeout(server, connection, server->config.header_timeout_ms);
    return 0;
}

static int start_error(evq_delay_server *server, struct connection *connection,
                       enum delay_http_error error)
{
    char reason[128];
    size_t length =
        delay_http_error_reason(error, server->config.max_delay_ms, reason, sizeof reason);
    int status = delay_http_error_status(error);
    EVQ_DEBUG("connection %p: %d %.*s", (void *)connection, status, (int)length - 1, reason);
    count(server, REJECTED);
    return start_response(server, connection, status, status == 405 ? "Allow: GET\r\n" : "", reason,
                          length, false);
}

/* Send what the kernel takes now. Returns 0 when all is sent,
 * EVQ_EWOULDBLOCK when the rest must wait for POLLOUT, or an error. */
static int send_some(evq_delay_server *server, struct connection *connection)
{
    while (connection->out_sent < connection->out_length) {
        size_t left = connection->out_length - connection->out_sent;
        int chunk = left > 0x40000000 ? 0x40000000 : (int)left;
        int sent = (int)send(connection->socket, connection->out + connection->out_sent, chunk,
                             EVQ_SEND_FLAGS);
        if (sent < 0) {
            int rc = evq_socket_last_error();
            if (rc == EVQ_EINTR)
                continue;
            return rc;
        }
        connection->out_sent += (size_t)sent;
        /* Progress restarts the stall timeout. */
        set_timeout(server, connection, server->config.header_timeout_ms);
    }
    return 0;
}

/* Move a connection along until it has to wait for the network or a
 * deadline. Returns false when the connection was closed. */
static bool advance(evq_delay_server *server, struct connection *connection)
{
    for (;;) {
        switch (connection->state) {
        case READING: {
            size_t head_length = 0;
            if (!delay_http_find_head_end(connection->in, connection->in_length, &head_length)) {
                if (connection->peer_closed) {
                    /* Every request before the end has been answered; a
                     * part of one after them will never be complete. */
                    if (connection->in_length > 0)
                        count(server, DISCONNECTED);
                    goto close;
                }
                if (connection->in_length < sizeof connection->in)
                    return true; /* wait for more */
                connection->head_length = connection->in_length;
                if (start_error(server, connection, DELAY_HTTP_HEAD_TOO_LARGE) != 0)
                    goto close;
                break;
            }
            connection->head_length = head_length;
            enum delay_http_error error = delay_http_parse_head(
                connection->in, head_length, server->config.max_delay_ms, &connection->request);
            if (error != DELAY_HTTP_OK) {
                if (start_error(server, connection, error) != 0)
                    goto close;
                break;
            }
            /* The delay counts from now, read fresh: the turn's time may be
             * from before the last bytes of this request arrived, and would
             * let its answer leave early. */
            connection->state = WAITING;
            update_now(server);
            set_timeout(server, connection, connection->request.delay_ms);
            EVQ_DEBUG("connection %p: GET delay %" PRIu32 " ms, %zu-byte message",
                      (void *)connection, connection->request.delay_ms,
                      connection->request.message_length);
            return true;
        }
        case WAITING:
        case LINGERING:
            return true;
        case WRITING: {
            int rc = send_some(server, connection);
            if (rc == EVQ_EWOULDBLOCK)
                return true;
            if (rc != 0) {
                EVQ_DEBUG("connection %p: send failed: %s", (void *)connection, evq_strerror(rc));
                count(server, DISCONNECTED);
                goto close;
            }
            free(connection->out);
            connection->out = NULL;
            if (connection->close_after_write) {
                if (connection->peer_closed)
                    goto close; /* both sides are done: nothing to linger for */
                shutdown_sending(connection->socket);
                connection->state = LINGERING;
                set_timeout(server, connection, linger_ms(server));
                return true;
            }
            /* Keep-alive: drop the answered request; a pipelined one may
             * already be waiting behind it. */
            memmove(connection->in, connection->in + connection->head_length,
                    connection->in_length - connection->head_length);
            connection->in_length -= connection->head_length;
            connection->head_length = 0;
            connection->state = READING;
            set_timeout(server, connection, server->config.header_timeout_ms);
            break;
        }
        }
    }
close:
    close_connection(server, connection);
    return false;
}

/* The connection's deadline has passed. */
static void on_deadline(evq_delay_server *server, struct connection *connection)
{
    switch (connection->state) {
    case READING:
        count(server, TIMED_OUT);
        if (connection->in_length > 0) {
            /* Part of a request: say why before closing, in one try (the
             * client is stalled anyway, so no waiting for it). */
            static const char body[] = "the request head did not arrive in time\n";
            char response[256];
            int length = snprintf(response, sizeof response,
                                  "HTTP/1.1 408 Request Timeout\r\nContent-Type: text/plain\r\n"
                                  "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                                  sizeof body - 1, body);
            if (length > 0 && (size_t)length < sizeof response)
                (void)send(connection->socket, response, length, EVQ_SEND_FLAGS);
        }
        EVQ_DEBUG("connection %p: header timeout with %zu bytes", (void *)connection,
                  connection->in_length);
        close_connection(server, connection);
        return;
    case WAITING: {
        const delay_http_request *request = &connection->request;
        count(server, ANSWERED);
        if (start_response(server, connection, 200, "", connection->in + request->message_offset,
                           request->message_length, request->keep_alive) != 0) {
            close_connection(server, connection);
            return;
        }
        advance(server, connection);
        return;
    }
    case WRITING:
        EVQ_DEBUG("connection %p: the client stopped reading its answer", (void *)connection);
        count(server, TIMED_OUT);
        close_connection(server, connection);
        return;
    case LINGERING:
        close_connection(server, connection);
        return;
    }
}

/* The socket is readable (or has an error, or hung up). */
static void on_readable(evq_delay_server *server, struct connection *connection)
{
    char discard[512];
    char *buffer = discard;
    size_t capacity = sizeof discard;
    if (connection->state != LINGERING) {
        buffer = connection->in + connection->in_length;
        capacity = sizeof connection->in - connection->in_length;
    }
    int received = (int)recv(connection->socket, buffer, (int)capacity, 0);
    if (received < 0) {
        int rc = evq_socket_last_error();
        if (rc == EVQ_EWOULDBLOCK || rc == EVQ_EINTR)
            return;
        EVQ_DEBUG("connection %p: recv failed: %s", (void *)connection, evq_strerror(rc));
    }
    if (received == 0 && connection->state != LINGERING) {
        /* The end of the requests, maybe a half-close: answer what came
         * before it. advance() closes once nothing is left to answer. */
        connection->peer_closed = true;
        if (connection->state == READING)
            advance(server, connection);
        return;
    }
    if (received <= 0) {
        /* A reset (or, lingering, the client's close): the client has gone,
         * and a request unfinished or unanswered goes with it. */
        if (connection->state == WAITING ||
            (connection->state == READING && connection->in_length > 0))
            count(server, DISCONNECTED);
        close_connection(server, connection);
        return;
    }
    if (connection->state == LINGERING)
        return;
    count_received(server, (size_t)received);
    connection->in_length += (size_t)received;
    /* No new deadline: the one set when the head began covers all of it. */
    if (connection->state == READING)
        advance(server, connection);
    /* WAITING: a pipelined request, kept for after the answer. */
}

static void accept_clients(evq_delay_server *server)
{
    for (int i = 0; i < ACCEPTS_PER_TURN && server->count < server->config.max_clients; i++) {
        evq_socket socket = accept(server->listener, NULL, NULL);
        if (socket == EVQ_INVALID_SOCKET) {
            int rc = evq_socket_last_error();
            if (rc == EVQ_EINTR || rc == EVQ_ECONNABORTED)
                continue;
            if (rc != EVQ_EWOULDBLOCK) {
                EVQ_DEBUG("accept failed: %s; pausing", evq_strerror(rc));
                server->accept_paused_until =
                    evq_sat_add(server->now, evq_ms_to_ns(ACCEPT_PAUSE_MS));
            }
            return;
        }
        struct connection *connection = NULL;
        if (evq_socket_set_nonblocking(socket, true) != 0 || reserve(server) != 0 ||
            !(connection = malloc(sizeof *connection))) {
            evq_socket_close(socket);
            server->accept_paused_until = evq_sat_add(server->now, evq_ms_to_ns(ACCEPT_PAUSE_MS));
            return;
        }
        evq_socket_set_nosigpipe(socket);
        /* Answers are small and pipelined ones follow each other: do not let
         * Nagle hold one back waiting for the ACK of the one before. */
        evq_socket_set_nodelay(socket, true);
        memset(connection, 0, offsetof(struct connection, in));
        connection->socket = socket;
        connection->state = READING;
        connection->heap_index = server->count;
        server->heap[server->count++] = connection;
        count(server, ACCEPTED);
        set_timeout(server, connection, server->config.header_timeout_ms);
    }
}

/* ---- the server thread ----------------------------------------------------- */
static size_t build_poll_set(evq_delay_server *server, uint64_t now)
{
    size_t n = 0;
    server->poll_entries[n] = (poll_entry){.fd = server->wake_receiver, .events = POLLIN};
    server->polled[n++] = NULL;
    if (server->count < server->config.max_clients && server->accept_paused_until <= now) {
        server->poll_entries[n] = (poll_entry){.fd = server->listener, .events = POLLIN};
        server->polled[n++] = NULL;
    }
    for (size_t i = 0; i < server->count; i++) {
        struct connection *connection = server->heap[i];
        short events = 0;
        switch (connection->state) {
        case READING:
        case LINGERING:
            events = connection->peer_closed ? 0 : POLLIN;
            break;
        case WAITING:
            /* Keep reading while there is room: it shows a client that
             * resets, and keeps pipelined requests. When full, or after the
             * end of the stream, wait. */
            if (connection->in_length < sizeof connection->in && !connection->peer_closed)
                events = POLLIN;
            break;
        case WRITING:
            events = POLLOUT;
            break;
        }
        if (events == 0)
            continue;
        server->poll_entries[n] = (poll_entry){.fd = connection->socket, .events = events};
        server->polled[n++] = connection;
    }
    return n;
}

static void server_main(void *arg)
{
    evq_delay_server *server = arg;
    evq_log_set_thread_name("delayserver");
    while (!is_stopping(server)) {
        uint64_t now = update_now(server);
        size_t n = build_poll_set(server, now);
        int timeout_ms = -1;
        if (server->count > 0)
            timeout_ms = evq_remaining_ms(server->heap[0]->deadline, now);
        if (server->accept_paused_until > now) {
            int pause = evq_remaining_ms(server->accept_paused_until, now);
            if (timeout_ms < 0 || pause < timeout_ms)
                timeout_ms = pause;
        }
        int ready = poll_sockets(server->poll_entries, n, timeout_ms);
        update_now(server);
        if (ready < 0) {
            int rc = evq_socket_last_error();
            if (rc != EVQ_EINTR) {
                EVQ_DEBUG("poll failed: %s", evq_strerror(rc));
                evq_sleep_ms(10); /* do not spin on a persistent failure */
            }
            continue;
        }
        bool listener_ready = false;
        for (size_t i = 0; i < n && ready > 0; i++) {
            short revents = server->poll_entries[i].revents;
            if (revents == 0)
                continue;
            ready--;
            struct connection *connection = server->polled[i];
            if (!connection) {
                if (server->poll_entries[i].fd == server->wake_receiver) {
                    char drain[16];
                    (void)recv(server->wake_receiver, drain, (int)sizeof drain, 0);
                } else {
                    listener_ready = true;
                }
                continue;
            }
            if (revents & POLLNVAL) {
                close_connection(server, connection);
            } else if (connection->state == WRITING) {
                advance(server, connection);
            } else {
                on_readable(server, connection);
            }
        }
        /* After the loop above: accepting may grow the arrays it walks. */
        if (listener_ready)
            accept_clients(server);
        /* Deadlines, earliest first. Each handler moves the connection's
         * deadline into the future or closes it, so this ends. */
        now = update_now(server);
        while (server->count > 0 && server->heap[0]->deadline <= now)
            on_deadline(server, server->heap[0]);
    }
    while (server->count > 0)
        close_connection(server, server->heap[0]);
}

/* ---- the public API -------------------------------------------------------- */
void evq_delay_server_config_init(evq_delay_server_config *config)
{
    memset(config, 0, sizeof *config);
    config->max_delay_ms = EVQ_DELAY_SERVER_DEFAULT_MAX_DELAY_MS;
    config->header_timeout_ms = EVQ_DELAY_SERVER_DEFAULT_HEADER_TIMEOUT_MS;
    config->max_clients = EVQ_DELAY_SERVER_DEFAULT_MAX_CLIENTS;
    config->clock = evq_clock_system();
}

static void free_server(evq_delay_server *server)
{
    if (server->listener != EVQ_INVALID_SOCKET)
        evq_socket_close(server->listener);
    if (server->wake_sender != EVQ_INVALID_SOCKET)
        evq_socket_close(server->wake_sender);
    if (server->wake_receiver != EVQ_INVALID_SOCKET)
        evq_socket_close(server->wake_receiver);
    free(server->heap);
    free(server->poll_entries);
    free(server->polled);
    evq_mutex_destroy(&server->lock);
    free(server);
}

int evq_delay_server_start(const evq_delay_server_config *config, evq_delay_server **out)
{
    if (!out)
        return EVQ_EINVAL;
    *out = NULL;
    int rc = evq_net_init();
    if (rc != 0)
        return rc;
    evq_delay_server *server = calloc(1, sizeof *server);
    if (!server)
        return EVQ_ENOMEM;
    server->listener = server->wake_sender = server->wake_receiver = EVQ_INVALID_SOCKET;
    if ((rc = evq_mutex_init(&server->lock)) != 0) {
        free(server);
        return rc;
    }
    evq_delay_server_config_init(&server->config);
    if (config) {
        server->config.port = config->port;
        if (config->max_delay_ms)
            server->config.max_delay_ms = config->max_delay_ms;
        if (config->header_timeout_ms)
            server->config.header_timeout_ms = config->header_timeout_ms;
        if (config->max_clients)
            server->config.max_clients = config->max_clients;
        if (config->clock.now_ns)
            server->config.clock = config->clock;
    }
    if ((rc = evq_net_listen_loopback(server->config.port, SOMAXCONN, &server->listener,
                                      &server->port)) != 0 ||
        (rc = evq_socket_set_nonblocking(server->listener, true)) != 0 ||
        (rc = evq_net_tcp_pair(&server->wake_sender, &server->wake_receiver)) != 0 ||
        (rc = evq_socket_set_nonblocking(server->wake_receiver, true)) != 0 ||
        (rc = reserve(server)) != 0)
        goto fail;
    /* The listener is bound and listening: from here on connections queue
     * in its backlog, so callers may connect as soon as this returns. */
    if ((rc = evq_thread_start(&server->thread, server_main, server)) != 0)
        goto fail;
    EVQ_DEBUG("delay server on 127.0.0.1:%u", (unsigned)server->port);
    *out = server;
    return 0;
fail:
    free_server(server);
    return rc;
}

uint16_t evq_delay_server_port(const evq_delay_server *server)
{
    return server ? server->port : 0;
}

void evq_delay_server_stop(evq_delay_server *server)
{
    if (!server)
        return;
    evq_mutex_lock(&server->lock);
    server->stopping = true;
    evq_mutex_unlock(&server->lock);
    /* One byte wakes the poll; the thread then sees `stopping`. */
    (void)send(server->wake_sender, "x", 1, EVQ_SEND_FLAGS);
    evq_thread_join(&server->thread);
    free_server(server);
}

void evq_delay_server_get_stats(evq_delay_server *server, evq_delay_server_stats *out)
{
    if (!out)
        return;
    if (!server) {
        memset(out, 0, sizeof *out);
        return;
    }
    evq_mutex_lock(&server->lock);
    *out = server->stats;
    evq_mutex_unlock(&server->lock);
}

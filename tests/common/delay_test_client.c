/* delay_test_client.c - see delay_test_client.h. */
#if !defined(_WIN32) && !defined(_POSIX_C_SOURCE) && !defined(__APPLE__)
#define _POSIX_C_SOURCE 200809L
#endif
#include "delay_test_client.h"
#include "evq_error.h"
#include "evq_test.h"
#include "evq_thread.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef _WIN32
#include <sys/resource.h>
#endif

int raw_connect(uint16_t port, raw_connection **out)
{
    raw_connection *connection = malloc(sizeof *connection);
    if (!connection)
        return EVQ_ENOMEM;
    connection->length = 0;
    int rc = evq_net_connect_loopback(port, &connection->socket);
    if (rc != 0) {
        free(connection);
        return rc;
    }
    evq_socket_set_recv_timeout(connection->socket, 20000);
    evq_socket_set_nodelay(connection->socket, true);
    *out = connection;
    return 0;
}

void raw_close(raw_connection *connection)
{
    if (!connection)
        return;
    evq_socket_close(connection->socket);
    free(connection);
}

int raw_send(raw_connection *connection, const char *text)
{
    return evq_net_send_all(connection->socket, text, strlen(text));
}

int raw_send_bytes(raw_connection *connection, const void *data, size_t length)
{
    return evq_net_send_all(connection->socket, data, length);
}

int raw_shutdown_sending(raw_connection *connection)
{
#ifdef _WIN32
    int rc = shutdown(connection->socket, SD_SEND);
#else
    int rc = shutdown(connection->socket, SHUT_WR);
#endif
    return rc == 0 ? 0 : evq_socket_last_error();
}

static int receive_more(raw_connection *connection)
{
    if (connection->length == sizeof connection->buffer)
        return EVQ_EMSGSIZE;
    size_t n = 0;
    int rc = evq_net_recv(connection->socket, connection->buffer + connection->length,
                          sizeof connection->buffer - connection->length, &n);
    if (rc != 0)
        return rc;
    if (n == 0)
        return EVQ_EOF;
    connection->length += n;
    return 0;
}

static const char *find(const char *haystack, size_t length, const char *needle)
{
    size_t needle_length = strlen(needle);
    for (size_t i = 0; i + needle_length <= length; i++)
        if (memcmp(haystack + i, needle, needle_length) == 0)
            return haystack + i;
    return NULL;
}

int raw_read_response(raw_connection *connection, raw_response *response)
{
    memset(response, 0, sizeof *response);
    const char *end;
    while (!(end = find(connection->buffer, connection->length, "\r\n\r\n"))) {
        int rc = receive_more(connection);
        if (rc != 0)
            return rc;
    }
    size_t head_length = (size_t)(end - connection->buffer) + 4;
    if (head_length >= sizeof response->head)
        return EVQ_EMSGSIZE;
    memcpy(response->head, connection->buffer, head_length);
    response->head[head_length] = '\0';
    if (sscanf(response->head, "HTTP/1.1 %3d ", &response->status) != 1)
        return EVQ_EIO;
    const char *length_header = strstr(response->head, "\r\nContent-Length: ");
    if (!length_header)
        return EVQ_EIO;
    unsigned long body_length = strtoul(length_header + 18, NULL, 10);
    if (body_length >= sizeof response->body)
        return EVQ_EMSGSIZE;
    while (connection->length < head_length + body_length) {
        int rc = receive_more(connection);
        if (rc != 0)
            return rc;
    }
    memcpy(response->body, connection->buffer + head_length, body_length);
    response->body[body_length] = '\0';
    response->body_length = body_length;
    response->says_close = strstr(response->head, "\r\nConnection: close\r\n") != NULL;
    size_t used = head_length + body_length;
    memmove(connection->buffer, connection->buffer + used, connection->length - used);
    connection->length -= used;
    return 0;
}

int raw_expect_closed(raw_connection *connection)
{
    if (connection->length > 0)
        return EVQ_EMSGSIZE;
    int rc = receive_more(connection);
    if (rc == EVQ_EOF || rc == EVQ_ECONNRESET || rc == EVQ_ECONNABORTED)
        return 0;
    return rc == 0 ? EVQ_EMSGSIZE : rc;
}

bool raw_has_header(const raw_response *response, const char *line)
{
    char wanted[256];
    snprintf(wanted, sizeof wanted, "\r\n%s\r\n", line);
    return strstr(response->head, wanted) != NULL;
}

uint64_t raw_wait_stat(evq_delay_server *server, size_t offset, uint64_t value, bool at_least)
{
    uint64_t current = 0;
    for (int i = 0; i < 4000; i++) { /* 4000 x 5 ms = 20 s at most */
        evq_delay_server_stats stats;
        evq_delay_server_get_stats(server, &stats);
        memcpy(&current, (const char *)&stats + offset, sizeof current);
        if (at_least ? current >= value : current <= value)
            break;
        evq_sleep_ms(5);
    }
    return current;
}

evq_delay_server *raw_start_server(uint32_t header_timeout_ms, uint32_t max_delay_ms)
{
    evq_delay_server_config config;
    evq_delay_server_config_init(&config);
    config.header_timeout_ms = header_timeout_ms;
    if (max_delay_ms)
        config.max_delay_ms = max_delay_ms;
    evq_delay_server *server = NULL;
    int rc = evq_delay_server_start(&config, &server);
    if (rc != 0)
        evq_test_fail(__FILE__, __LINE__, "evq_delay_server_start: %s", evq_error_name(rc));
    return server;
}

bool raw_server_still_answers(uint16_t port)
{
    char response[512];
    int status = 0;
    const char *body = NULL;
    int rc = evq_delay_client_get(port, 1, "still here", response, sizeof response, &status, &body);
    return rc == 0 && status == 200 && body && strcmp(body, "still here") == 0;
}

bool raw_allow_open_files(unsigned count)
{
#ifdef _WIN32
    (void)count; /* sockets are not limited per process in the same way */
    return true;
#else
    struct rlimit limit;
    if (getrlimit(RLIMIT_NOFILE, &limit) != 0)
        return false;
    if (limit.rlim_cur != RLIM_INFINITY && limit.rlim_cur < count) {
        if (limit.rlim_max != RLIM_INFINITY && limit.rlim_max < count)
            return false;
        limit.rlim_cur = count;
        if (setrlimit(RLIMIT_NOFILE, &limit) != 0)
            return false;
    }
    return true;
#endif
}

int shared_clock_init(shared_clock *clock, uint64_t start_ns)
{
    clock->now = start_ns;
    return evq_mutex_init(&clock->lock);
}

void shared_clock_destroy(shared_clock *clock)
{
    evq_mutex_destroy(&clock->lock);
}

static uint64_t shared_clock_now(void *context)
{
    shared_clock *clock = context;
    evq_mutex_lock(&clock->lock);
    uint64_t now = clock->now;
    evq_mutex_unlock(&clock->lock);
    return now;
}

evq_clock shared_clock_as_clock(shared_clock *clock)
{
    evq_clock as_clock = {shared_clock_now, clock};
    return as_clock;
}

void shared_clock_advance_ms(shared_clock *clock, uint64_t ms)
{
    evq_mutex_lock(&clock->lock);
    clock->now = evq_sat_add(clock->now, evq_ms_to_ns(ms));
    evq_mutex_unlock(&clock->lock);
}

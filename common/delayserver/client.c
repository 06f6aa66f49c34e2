/* client.c - the delay server's blocking client, for tests and demos: one
 * request on a fresh connection, the whole response back. */
#if !defined(_WIN32) && !defined(_POSIX_C_SOURCE) && !defined(__APPLE__)
#define _POSIX_C_SOURCE 200809L
#endif
#include "evq_delay_server.h"
#include "evq_error.h"
#include "evq_net.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* How much longer than the delay to wait for an answer before giving up. */
#define CLIENT_GRACE_MS 15000u

static bool is_unreserved(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

/* "GET /{delay}/{encoded message} HTTP/1.1" and its headers, in a malloc'd
 * string. */
static char *build_request(uint16_t port, uint32_t delay_ms, const char *message, size_t *length)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t message_length = strlen(message);
    if (message_length > (SIZE_MAX - 256) / 3)
        return NULL;
    size_t capacity = 3 * message_length + 256;
    char *request = malloc(capacity);
    if (!request)
        return NULL;
    int n = snprintf(request, capacity, "GET /%" PRIu32 "/", delay_ms);
    size_t used = (size_t)n;
    for (size_t i = 0; i < message_length; i++) {
        unsigned char c = (unsigned char)message[i];
        if (is_unreserved(c)) {
            request[used++] = (char)c;
        } else {
            request[used++] = '%';
            request[used++] = hex[c >> 4];
            request[used++] = hex[c & 15];
        }
    }
    n = snprintf(request + used, capacity - used,
                 " HTTP/1.1\r\nHost: 127.0.0.1:%u\r\nConnection: close\r\n\r\n", (unsigned)port);
    *length = used + (size_t)n;
    return request;
}

/* The end of the head ("\r\n\r\n") in response[0, length), or 0. */
static size_t head_end(const char *response, size_t length)
{
    for (size_t i = 3; i < length; i++)
        if (response[i] == '\n' && response[i - 1] == '\r' && response[i - 2] == '\n' &&
            response[i - 3] == '\r')
            return i + 1;
    return 0;
}

/* The Content-Length header's value, or -1 when there is none. */
static long long content_length(const char *head, size_t length)
{
    static const char name[] = "\r\ncontent-length:";
    size_t name_length = sizeof name - 1;
    for (size_t i = 0; i + name_length <= length; i++) {
        size_t j = 0;
        while (j < name_length) {
            char c = head[i + j];
            if (c >= 'A' && c <= 'Z')
                c = (char)(c - 'A' + 'a');
            if (c != name[j])
                break;
            j++;
        }
        if (j < name_length)
            continue;
        const char *p = head + i + name_length;
        while (*p == ' ' || *p == '\t')
            p++;
        long long value = 0;
        if (*p < '0' || *p > '9')
            return -1;
        while (*p >= '0' && *p <= '9' && value < (1LL << 40))
            value = value * 10 + (*p++ - '0');
        return value;
    }
    return -1;
}

int evq_delay_client_get(uint16_t port, uint32_t delay_ms, const char *message, char *response,
                         size_t capacity, int *status, const char **body)
{
    if (status)
        *status = 0;
    if (body)
        *body = NULL;
    if (!message || !response || capacity == 0)
        return EVQ_EINVAL;
    response[0] = '\0';

    size_t request_length = 0;
    char *request = build_request(port, delay_ms, message, &request_length);
    if (!request)
        return EVQ_ENOMEM;
    evq_socket socket;
    int rc = evq_net_connect_loopback(port, &socket);
    if (rc != 0) {
        free(request);
        return rc;
    }
    uint32_t wait_ms =
        delay_ms > UINT32_MAX - CLIENT_GRACE_MS ? UINT32_MAX : delay_ms + CLIENT_GRACE_MS;
    evq_socket_set_recv_timeout(socket, wait_ms);
    rc = evq_net_send_all(socket, request, request_length);
    free(request);

    size_t total = 0;
    size_t head_length = 0;
    long long expected = -1; /* the whole response's length, once known */
    bool complete = false;
    while (rc == 0 && !complete) {
        if (total == capacity - 1) {
            rc = EVQ_EMSGSIZE;
            break;
        }
        size_t received = 0;
        rc = evq_net_recv(socket, response + total, capacity - 1 - total, &received);
        if (rc == EVQ_EWOULDBLOCK) /* SO_RCVTIMEO ran out (POSIX says EAGAIN) */
            rc = EVQ_ETIMEDOUT;
        if (rc != 0)
            break;
        if (received == 0) {
            /* EOF: the end of a response without Content-Length, or too early. */
            if (head_length > 0 && expected < 0)
                complete = true;
            else
                rc = EVQ_EOF;
            break;
        }
        total += received;
        if (head_length == 0 && (head_length = head_end(response, total)) > 0) {
            long long body_length = content_length(response, head_length);
            if (body_length >= 0)
                expected = (long long)head_length + body_length;
        }
        if (expected >= 0 && (long long)total >= expected)
            complete = true;
    }
    evq_socket_close(socket);
    response[total] = '\0';
    if (rc != 0)
        return rc;

    /* "HTTP/1.x NNN " */
    if (total < 12 || memcmp(response, "HTTP/1.", 7) != 0 || response[8] != ' ')
        return EVQ_EIO;
    int code = 0;
    for (int i = 9; i < 12; i++) {
        if (response[i] < '0' || response[i] > '9')
            return EVQ_EIO;
        code = code * 10 + (response[i] - '0');
    }
    if (status)
        *status = code;
    if (body)
        *body = response + head_length;
    return 0;
}

/* net.c - socket portability for POSIX and Winsock. */
#if defined(__APPLE__)
#define _DARWIN_C_SOURCE /* SO_NOSIGPIPE */
#elif !defined(_WIN32) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L
#endif
#include "evq_net.h"
#include "evq_error.h"

#include <string.h>

#ifdef _WIN32
#include <windows.h>
#else
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <unistd.h>
#endif

#ifdef _WIN32

static INIT_ONCE wsa_once = INIT_ONCE_STATIC_INIT;
static int wsa_result;

static BOOL CALLBACK wsa_start(PINIT_ONCE once, PVOID param, PVOID *context)
{
    (void)once;
    (void)param;
    (void)context;
    WSADATA data;
    int rc = WSAStartup(MAKEWORD(2, 2), &data);
    wsa_result = rc == 0 ? 0 : evq_error_from_wsa(rc);
    return TRUE;
}

int evq_net_init(void)
{
    InitOnceExecuteOnce(&wsa_once, wsa_start, NULL, NULL);
    return wsa_result;
}

void evq_net_raise_descriptor_limit(void)
{
    /* Windows sockets are handles, with no per-process limit of this kind. */
}

int evq_socket_last_os_error(void)
{
    return WSAGetLastError();
}

int evq_socket_last_error(void)
{
    return evq_error_from_wsa(WSAGetLastError());
}

int evq_socket_close(evq_socket socket)
{
    return closesocket(socket) == 0 ? 0 : evq_socket_last_error();
}

int evq_socket_set_nonblocking(evq_socket socket, bool nonblocking)
{
    u_long mode = nonblocking ? 1 : 0;
    return ioctlsocket(socket, FIONBIO, &mode) == 0 ? 0 : evq_socket_last_error();
}

int evq_socket_set_recv_timeout(evq_socket socket, uint32_t timeout_ms)
{
    DWORD value = timeout_ms;
    if (setsockopt(socket, SOL_SOCKET, SO_RCVTIMEO, (const char *)&value, sizeof value) != 0)
        return evq_socket_last_error();
    return 0;
}

#else /* POSIX */

int evq_net_init(void)
{
    return 0;
}

int evq_socket_last_os_error(void)
{
    return errno;
}

int evq_socket_last_error(void)
{
    return evq_error_from_errno(errno);
}

int evq_socket_close(evq_socket socket)
{
    /* No retry on EINTR: see the header. */
    return close(socket) == 0 ? 0 : evq_socket_last_error();
}

int evq_socket_set_nonblocking(evq_socket socket, bool nonblocking)
{
    int flags = fcntl(socket, F_GETFL, 0);
    if (flags == -1)
        return evq_socket_last_error();
    int wanted = nonblocking ? flags | O_NONBLOCK : flags & ~O_NONBLOCK;
    if (wanted != flags && fcntl(socket, F_SETFL, wanted) == -1)
        return evq_socket_last_error();
    return 0;
}

int evq_socket_set_recv_timeout(evq_socket socket, uint32_t timeout_ms)
{
    struct timeval tv = {(time_t)(timeout_ms / 1000), (suseconds_t)(timeout_ms % 1000) * 1000};
    if (setsockopt(socket, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0)
        return evq_socket_last_error();
    return 0;
}

void evq_net_raise_descriptor_limit(void)
{
    struct rlimit limit;
    if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
        limit.rlim_cur = limit.rlim_max;
        setrlimit(RLIMIT_NOFILE, &limit);
    }
}

#endif

int evq_socket_set_nosigpipe(evq_socket socket)
{
#ifdef SO_NOSIGPIPE
    int on = 1;
    if (setsockopt(socket, SOL_SOCKET, SO_NOSIGPIPE, &on, sizeof on) != 0)
        return evq_socket_last_error();
#else
    (void)socket;
#endif
    return 0;
}

int evq_socket_set_nodelay(evq_socket socket, bool nodelay)
{
    int on = nodelay ? 1 : 0;
    if (setsockopt(socket, IPPROTO_TCP, TCP_NODELAY, (const char *)&on, sizeof on) != 0)
        return evq_socket_last_error();
    return 0;
}

int evq_socket_pending_error(evq_socket socket)
{
    int error = 0;
    socklen_t len = sizeof error;
    if (getsockopt(socket, SOL_SOCKET, SO_ERROR, (char *)&error, &len) != 0)
        return evq_socket_last_error();
#ifdef _WIN32
    return evq_error_from_wsa(error);
#else
    return evq_error_from_errno(error);
#endif
}

int evq_socket_close_with_reset(evq_socket socket)
{
    struct linger linger;
    linger.l_onoff = 1;
    linger.l_linger = 0;
    if (setsockopt(socket, SOL_SOCKET, SO_LINGER, (const char *)&linger, sizeof linger) != 0) {
        int rc = evq_socket_last_error();
        evq_socket_close(socket);
        return rc;
    }
    return evq_socket_close(socket);
}

static struct sockaddr_in loopback_address(uint16_t port)
{
    struct sockaddr_in address;
    memset(&address, 0, sizeof address);
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return address;
}

int evq_net_local_port(evq_socket socket, uint16_t *port_out)
{
    struct sockaddr_in address;
    socklen_t len = sizeof address;
    if (getsockname(socket, (struct sockaddr *)&address, &len) != 0)
        return evq_socket_last_error();
    *port_out = ntohs(address.sin_port);
    return 0;
}

int evq_net_listen_loopback(uint16_t port, int backlog, evq_socket *out, uint16_t *port_out)
{
    int rc = evq_net_init();
    if (rc != 0)
        return rc;
    evq_socket listener = socket(AF_INET, SOCK_STREAM, IPPROTO_TCP);
    if (listener == EVQ_INVALID_SOCKET)
        return evq_socket_last_error();
#ifndef _WIN32
    /* On POSIX, SO_REUSEADDR lets a restarted server bind while old
     * connections sit in TIME_WAIT. On Windows it means something else
     * (port stealing), so it is left off there. */
    int on = 1;
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
#endif
    struct sockaddr_in address = loopback_address(port);
    if (bind(listener, (struct sockaddr *)&address, sizeof address) != 0 ||
        listen(listener, backlog) != 0) {
        rc = evq_socket_last_error();
        evq_socket_close(listener);
        return rc;
    }
    if (port_out && (rc = evq_net_local_port(listener, port_out)) != 0) {
        evq_socket_close(listener);
        return rc;
    }
    *out = listener;
    return 0;
}

int evq_net_refusing_loopback(evq_socket *holder, uint16_t *port_out)
{
    int rc = evq_net_init();
    if (rc != 0)
        return rc;
    evq_socket s = socket(AF_INET, SOCK_STREAM, IPPROTO_TCP);
    if (s == EVQ_INVALID_SOCKET)
        return evq_socket_last_error();
    /* Bound, never listening, no SO_REUSEADDR: a SYN to the port is
     * answered with a reset, and while `s` is open no other socket is
     * given the port - neither a bind to port 0 (as ConnectEx's socket
     * does first) nor a connect's own choice. A port that was listening a
     * moment ago is free to be handed out again: a connect from it to
     * itself then succeeds (a TCP simultaneous open) instead of being
     * refused. */
    struct sockaddr_in address = loopback_address(0);
    if (bind(s, (struct sockaddr *)&address, sizeof address) != 0 ||
        (rc = evq_net_local_port(s, port_out)) != 0) {
        rc = rc != 0 ? rc : evq_socket_last_error();
        evq_socket_close(s);
        return rc;
    }
    *holder = s;
    return 0;
}

int evq_net_connect_loopback(uint16_t port, evq_socket *out)
{
    int rc = evq_net_init();
    if (rc != 0)
        return rc;
    evq_socket s = socket(AF_INET, SOCK_STREAM, IPPROTO_TCP);
    if (s == EVQ_INVALID_SOCKET)
        return evq_socket_last_error();
    struct sockaddr_in address = loopback_address(port);
    if (connect(s, (struct sockaddr *)&address, sizeof address) != 0) {
        rc = evq_socket_last_error();
        evq_socket_close(s);
        return rc;
    }
    evq_socket_set_nosigpipe(s);
    *out = s;
    return 0;
}

int evq_net_accept(evq_socket listener, evq_socket *out)
{
    for (;;) {
        evq_socket s = accept(listener, NULL, NULL);
        if (s != EVQ_INVALID_SOCKET) {
            evq_socket_set_nosigpipe(s);
            *out = s;
            return 0;
        }
        int rc = evq_socket_last_error();
        if (rc != EVQ_EINTR && rc != EVQ_ECONNABORTED)
            return rc;
    }
}

int evq_net_send_all(evq_socket socket, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        int chunk = len > 0x40000000 ? 0x40000000 : (int)len;
        int sent = (int)send(socket, p, chunk, EVQ_SEND_FLAGS);
        if (sent < 0) {
            int rc = evq_socket_last_error();
            if (rc == EVQ_EINTR)
                continue;
            return rc;
        }
        p += sent;
        len -= (size_t)sent;
    }
    return 0;
}

int evq_net_recv(evq_socket socket, void *buffer, size_t capacity, size_t *received)
{
    int chunk = capacity > 0x40000000 ? 0x40000000 : (int)capacity;
    for (;;) {
        int n = (int)recv(socket, buffer, chunk, 0);
        if (n >= 0) {
            *received = (size_t)n;
            return 0;
        }
        int rc = evq_socket_last_error();
        if (rc != EVQ_EINTR)
            return rc;
    }
}

int evq_net_recv_until_eof(evq_socket socket, void *buffer, size_t capacity, size_t *received)
{
    size_t total = 0;
    char *p = buffer;
    while (total < capacity) {
        size_t n = 0;
        int rc = evq_net_recv(socket, p + total, capacity - total, &n);
        if (rc != 0) {
            *received = total;
            return rc;
        }
        if (n == 0)
            break;
        total += n;
    }
    *received = total;
    return 0;
}

int evq_net_tcp_pair(evq_socket *a, evq_socket *b)
{
    /* Initialised: gcc -O2 cannot see that evq_net_accept sets *out on success. */
    evq_socket listener, client, server = EVQ_INVALID_SOCKET;
    uint16_t port;
    int rc = evq_net_listen_loopback(0, 1, &listener, &port);
    if (rc != 0)
        return rc;
    rc = evq_net_connect_loopback(port, &client);
    if (rc != 0) {
        evq_socket_close(listener);
        return rc;
    }
    rc = evq_net_accept(listener, &server);
    evq_socket_close(listener);
    if (rc != 0) {
        evq_socket_close(client);
        return rc;
    }
    *a = client;
    *b = server;
    return 0;
}

int evq_net_abandon_backlog(const void *data, size_t len, evq_socket *client)
{
    evq_socket listener, s;
    uint16_t port;
    int rc = evq_net_listen_loopback(0, 4, &listener, &port);
    if (rc != 0)
        return rc;
    /* connect() returns once the handshake is done: the connection waits,
     * established, in the listener's backlog. */
    rc = evq_net_connect_loopback(port, &s);
    if (rc == 0 && data && len > 0)
        rc = evq_net_send_all(s, data, len);
    if (rc != 0) {
        evq_socket_close(listener);
        return rc;
    }
    /* Closing the listener resets every connection nobody accepted. */
    evq_socket_close(listener);
    *client = s;
    return 0;
}

/* resolve.c - getaddrinfo(), the only name resolution in the library
 * (resolve.h says why it is kept apart). The one file outside the backends
 * that names a system header of its own: struct addrinfo lives in
 * <netdb.h> on POSIX and in <ws2tcpip.h> on Windows.
 */
#if !defined(_WIN32) && !defined(__APPLE__) && !defined(__FreeBSD__) && !defined(__NetBSD__) &&    \
    !defined(__OpenBSD__)
#define _POSIX_C_SOURCE 200809L /* getaddrinfo */
#endif
#include "resolve.h"

#include "evq_error.h"
#include "evq_net.h"

#ifndef _WIN32
#include <netdb.h>
#endif
#include <stdio.h>
#include <string.h>

/* "65535" and its terminating zero. */
#define PORT_TEXT_SIZE sizeof "65535"

int resolve(const char *host, uint16_t port, bool passive, struct addrinfo **list)
{
    *list = NULL;
    int rc = evq_net_init(); /* WSAStartup on Windows, before any Winsock call */
    if (rc != 0)
        return rc;
    char service[PORT_TEXT_SIZE];
    snprintf(service, sizeof service, "%u", (unsigned)port);
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC; /* IPv4 and IPv6, in the order the system prefers */
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_protocol = IPPROTO_TCP;
    hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0);
    int gai = getaddrinfo(host, service, &hints, list); /* blocks: chapter 4 */
    return gai != 0 ? evq_error_from_gai(gai) : 0;
}

const struct addrinfo *resolve_next(const struct addrinfo *address)
{
    return address->ai_next;
}

void resolve_free(struct addrinfo *list)
{
    if (list)
        freeaddrinfo(list);
}

/* resolve_posix.c - the system's resolver on POSIX: getaddrinfo(), copied
 * into an address list. It blocks; the pool calls it on its workers. With
 * AI_NUMERICHOST it only parses, and the loop's thread may call it. */
#if !defined(_POSIX_C_SOURCE) && !defined(__APPLE__) && !defined(__FreeBSD__) &&                   \
    !defined(__NetBSD__) && !defined(__OpenBSD__)
#define _POSIX_C_SOURCE 200809L /* getaddrinfo */
#endif
#include "resolver.h"

#include "evq_net.h"

#include <netdb.h>
#include <stdio.h>
#include <string.h>

/* ANCHOR: getaddrinfo */
static int lookup(const char *host, uint16_t port, int flags, evq_address_list *out)
{
    char service[8];
    snprintf(service, sizeof service, "%u", (unsigned)port);
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC; /* IPv4 and IPv6, in the order the system prefers */
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_protocol = IPPROTO_TCP;
    hints.ai_flags = AI_NUMERICSERV | flags; /* the port is a number: no services database */
    struct addrinfo *list = NULL;
    int gai = getaddrinfo(host, service, &hints, &list); /* blocks, unless numeric */
    if (gai != 0)
        return evq_error_from_gai(gai); /* EAI_SYSTEM reads errno: this thread's own */
    int rc = 0;
    for (const struct addrinfo *ai = list; ai && rc == 0; ai = ai->ai_next) {
        rc = evq_address_list_add(out, ai->ai_addr, ai->ai_addrlen);
        if (rc == EVQ_EAFNOSUPPORT)
            rc = 0; /* a family we cannot connect to: skip it */
    }
    freeaddrinfo(list); /* the list is ours now: nothing points into the chain */
    return rc;
}
/* ANCHOR_END: getaddrinfo */

int evq_resolve_system(const char *host, uint16_t port, evq_address_list *out, void *context)
{
    (void)context;
    return lookup(host, port, 0, out); /* on a worker: this may take seconds */
}

int resolve_numeric(const char *host, uint16_t port, evq_address_list *out)
{
    return lookup(host, port, AI_NUMERICHOST, out); /* a name is EAI_NONAME, at once */
}

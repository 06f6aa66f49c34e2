/* evq_resolve.h - chapter 4: names to addresses, and the function that does
 * it, which a program (or a test) may replace.
 *
 * This header is the public part of the chapter's resolver. When chapter 3's
 * queue is copied into chapter 4, these declarations move into evq.h
 * unchanged; until then they stand alone so that the resolver can be built
 * and tested by itself.
 *
 * An address list is the library's own copy of what getaddrinfo() said: an
 * array of socket addresses, each ready for socket() + connect(). It is not
 * an addrinfo chain, because a chain belongs to the resolver that made it
 * (freeaddrinfo, FreeAddrInfoW) while a list is copied into a cache, handed
 * to a stream that tries each address in turn, and freed by whoever holds it.
 */
#ifndef EVQ_RESOLVE_H
#define EVQ_RESOLVE_H

#include <stddef.h>
#include <stdint.h>

#include "evq_error.h"
#include "evq_net.h" /* struct sockaddr_in, sockaddr_in6 on every system */

/* ANCHOR: address */
/* One TCP address: IPv4 or IPv6, with its port, as connect() takes it. */
typedef struct evq_address {
    union {
        struct sockaddr any; /* any.sa_family: AF_INET or AF_INET6 */
        struct sockaddr_in v4;
        struct sockaddr_in6 v6;
    } addr;
    uint32_t length; /* sizeof addr.v4 or sizeof addr.v6: connect()'s third argument */
} evq_address;

/* Addresses in the order the resolver gave them (the order to try them in).
 * {0} is an empty list; evq_address_list_free leaves it empty again. */
typedef struct evq_address_list {
    evq_address *items;
    size_t count;
    size_t capacity;
} evq_address_list;
/* ANCHOR_END: address */

/* Append a copy of `address` (length bytes). EVQ_EAFNOSUPPORT for a family
 * other than AF_INET and AF_INET6 (nothing is added), EVQ_EINVAL for a
 * length too short for its family, EVQ_ENOMEM. */
int evq_address_list_add(evq_address_list *list, const struct sockaddr *address, size_t length);

/* Make `to` (empty) a copy of `from`. EVQ_ENOMEM leaves `to` empty. */
int evq_address_list_copy(evq_address_list *to, const evq_address_list *from);

/* Free the items; the list is empty and reusable afterwards. NULL is ignored. */
void evq_address_list_free(evq_address_list *list);

/* ANCHOR: resolve_fn */
/* A resolver function: turn host (UTF-8: a name, or a numeric IPv4 or IPv6
 * address) and port into TCP addresses, appended to `out` (empty on entry)
 * with evq_address_list_add.
 *
 * - Returns 0 with at least one address, or an EVQ_E* code: EVQ_EAI_NONAME
 *   (no such name: an answer), EVQ_EAI_AGAIN (try later: not an answer),
 *   EVQ_EAI_FAIL, EVQ_ENOMEM, EVQ_EINVAL... On failure, whatever it added
 *   to `out` is freed by the caller; 0 with no address counts as
 *   EVQ_EAI_NONAME.
 * - It runs on a worker thread of the pool, never on the loop's thread, and
 *   on several workers at once: it must be thread-safe. It may block (that
 *   is why it runs there) but must return: a running lookup cannot be
 *   interrupted, and closing the pool waits for it.
 * - `context` is the pointer given with it, untouched. */
typedef int (*evq_resolve_fn)(const char *host, uint16_t port, evq_address_list *out,
                              void *context);
/* ANCHOR_END: resolve_fn */

/* The system's resolver: getaddrinfo() on POSIX, GetAddrInfoW() on Windows
 * (the name converted from UTF-8 to UTF-16), TCP addresses of both families
 * in the order the system prefers. `localhost` and numeric addresses are
 * answered from the hosts file and the string itself, without the network.
 * `context` is not used. */
int evq_resolve_system(const char *host, uint16_t port, evq_address_list *out, void *context);

#endif

/* resolve.h - names to addresses, in one place.
 *
 * In this chapter a blocking getaddrinfo(), called by evq_tcp_connect and
 * evq_tcp_listen: a slow DNS server stalls the whole loop. Chapter 4 puts
 * it on a thread pool behind the same seam. The list stays opaque to the
 * portable files: they walk it with resolve_next and hand each address to
 * a socket primitive (sys.h), the only code that looks inside.
 */
#ifndef EVQ_RESOLVE_H
#define EVQ_RESOLVE_H

#include <stdbool.h>
#include <stdint.h>

struct addrinfo;

/* The addresses of host:port for a TCP socket, in the order to try them.
 * passive: addresses to listen on (a NULL host then means every local
 * address). EVQ_EAI_NONAME, EVQ_EAI_AGAIN... on failure. */
int resolve(const char *host, uint16_t port, bool passive, struct addrinfo **list);
const struct addrinfo *resolve_next(const struct addrinfo *address);
void resolve_free(struct addrinfo *list);

#endif

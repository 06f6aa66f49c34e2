/* resolver_cache.h - the answers of recent lookups, so that a name asked
 * again is answered on the loop's thread without a trip through the pool.
 *
 * Keyed by name and port (what was asked). An entry is fresh until its
 * expiry instant; a stale one is removed when it is found, and the lookup
 * goes back to the pool. When the cache is full, the entry used least
 * recently goes. Memory only, one thread (the loop's), no lock, no clock of
 * its own: the caller passes "now".
 *
 * Why a maximum age that we choose: getaddrinfo() does not say how long an
 * answer is valid (the DNS record's TTL stays inside the system resolver),
 * so this cache cannot honour it. It keeps answers briefly, for the bursts
 * of connects to one name that a client makes, and leaves long-term caching
 * to the system's own (nscd, systemd-resolved, the Windows DNS Client),
 * which sees the TTLs.
 */
#ifndef RESOLVER_CACHE_H
#define RESOLVER_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "evq.h"

struct cache_entry;

typedef struct resolver_cache {
    struct cache_entry **buckets; /* a hash table of chains */
    size_t bucket_mask;           /* buckets - 1 (a power of two) */
    struct cache_entry *newest;   /* the recency list: used last ... */
    struct cache_entry *oldest;   /* ... used longest ago: evicted first */
    size_t count;
    size_t capacity; /* 0: a cache that keeps nothing */
} resolver_cache;

int resolver_cache_init(resolver_cache *cache, size_t capacity);
void resolver_cache_destroy(resolver_cache *cache);

/* A fresh entry for host:port: copy its status (0 or EVQ_EAI_NONAME) and
 * addresses into *status and *out (empty on entry), make it the most
 * recently used, return true. A stale one is removed; no entry (or no
 * memory for the copy) returns false. */
bool resolver_cache_get(resolver_cache *cache, const char *host, uint16_t port, uint64_t now,
                        int *status, evq_address_list *out);

/* Keep a copy of an answer until `expires_at`, replacing an older one for
 * the same key, evicting the least recently used entry when full. EVQ_ENOMEM
 * keeps nothing (a cache may forget). */
int resolver_cache_put(resolver_cache *cache, const char *host, uint16_t port, int status,
                       const evq_address_list *addresses, uint64_t expires_at);

#endif

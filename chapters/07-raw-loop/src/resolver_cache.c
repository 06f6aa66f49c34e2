/* resolver_cache.c - a hash table for finding an answer, and a list in
 * order of use for choosing which one to forget. */
#include "resolver_cache.h"

#include <stdlib.h>
#include <string.h>

struct cache_entry {
    struct cache_entry *bucket_next; /* the next entry in this bucket's chain */
    struct cache_entry *newer;       /* the recency list */
    struct cache_entry *older;
    uint64_t hash;
    uint64_t expires_at; /* fresh while now < expires_at */
    int status;          /* 0, or EVQ_EAI_NONAME: "no such name" is an answer too */
    evq_address_list addresses;
    uint16_t port;
    char host[]; /* NUL-terminated */
};

/* FNV-1a over the name's bytes, then the port's. */
static uint64_t key_hash(const char *host, uint16_t port)
{
    uint64_t hash = UINT64_C(14695981039346656037);
    for (const unsigned char *p = (const unsigned char *)host; *p; p++)
        hash = (hash ^ *p) * UINT64_C(1099511628211);
    hash = (hash ^ (port & 0xff)) * UINT64_C(1099511628211);
    hash = (hash ^ (port >> 8)) * UINT64_C(1099511628211);
    return hash;
}

int resolver_cache_init(resolver_cache *cache, size_t capacity)
{
    memset(cache, 0, sizeof *cache);
    cache->capacity = capacity;
    if (capacity == 0)
        return 0;
    size_t buckets = 8;
    while (buckets < capacity) /* at most one entry per bucket on average */
        buckets *= 2;
    cache->buckets = calloc(buckets, sizeof *cache->buckets);
    if (!cache->buckets)
        return EVQ_ENOMEM;
    cache->bucket_mask = buckets - 1;
    return 0;
}

static void entry_free(struct cache_entry *entry)
{
    evq_address_list_free(&entry->addresses);
    free(entry);
}

void resolver_cache_destroy(resolver_cache *cache)
{
    struct cache_entry *entry = cache->newest;
    while (entry) {
        struct cache_entry *older = entry->older;
        entry_free(entry);
        entry = older;
    }
    free(cache->buckets);
    memset(cache, 0, sizeof *cache);
}

/* The link that points at host:port's entry (or at NULL, where it would go). */
static struct cache_entry **find_link(resolver_cache *cache, const char *host, uint16_t port,
                                      uint64_t hash)
{
    struct cache_entry **link = &cache->buckets[hash & cache->bucket_mask];
    while (*link &&
           !((*link)->hash == hash && (*link)->port == port && strcmp((*link)->host, host) == 0))
        link = &(*link)->bucket_next;
    return link;
}

static void recency_unlink(resolver_cache *cache, struct cache_entry *entry)
{
    if (entry->newer)
        entry->newer->older = entry->older;
    else
        cache->newest = entry->older;
    if (entry->older)
        entry->older->newer = entry->newer;
    else
        cache->oldest = entry->newer;
    entry->newer = entry->older = NULL;
}

static void recency_push_newest(resolver_cache *cache, struct cache_entry *entry)
{
    entry->older = cache->newest;
    entry->newer = NULL;
    if (cache->newest)
        cache->newest->newer = entry;
    else
        cache->oldest = entry;
    cache->newest = entry;
}

/* Remove the entry *link points at. */
static void remove_at(resolver_cache *cache, struct cache_entry **link)
{
    struct cache_entry *entry = *link;
    *link = entry->bucket_next;
    recency_unlink(cache, entry);
    cache->count--;
    entry_free(entry);
}

/* ANCHOR: cache_get */
bool resolver_cache_get(resolver_cache *cache, const char *host, uint16_t port, uint64_t now,
                        int *status, evq_address_list *out)
{
    if (cache->capacity == 0)
        return false;
    struct cache_entry **link = find_link(cache, host, port, key_hash(host, port));
    struct cache_entry *entry = *link;
    if (!entry)
        return false;
    if (now >= entry->expires_at) { /* stale: forget it, ask again */
        remove_at(cache, link);
        return false;
    }
    if (evq_address_list_copy(out, &entry->addresses) != 0)
        return false; /* no memory for the copy: let the pool answer */
    *status = entry->status;
    recency_unlink(cache, entry); /* used now: the last to be evicted */
    recency_push_newest(cache, entry);
    return true;
}
/* ANCHOR_END: cache_get */

int resolver_cache_put(resolver_cache *cache, const char *host, uint16_t port, int status,
                       const evq_address_list *addresses, uint64_t expires_at)
{
    if (cache->capacity == 0)
        return 0;
    uint64_t hash = key_hash(host, port);
    struct cache_entry **link = find_link(cache, host, port, hash);
    if (*link) /* two lookups of one name were in flight: the later answer wins */
        remove_at(cache, link);
    if (cache->count == cache->capacity) { /* full: forget the least recently used */
        struct cache_entry *oldest = cache->oldest;
        remove_at(cache, find_link(cache, oldest->host, oldest->port, oldest->hash));
    }
    size_t length = strlen(host);
    struct cache_entry *entry = malloc(sizeof *entry + length + 1);
    if (!entry)
        return EVQ_ENOMEM;
    memset(entry, 0, sizeof *entry);
    if (evq_address_list_copy(&entry->addresses, addresses) != 0) {
        free(entry);
        return EVQ_ENOMEM;
    }
    memcpy(entry->host, host, length + 1);
    entry->hash = hash;
    entry->port = port;
    entry->status = status;
    entry->expires_at = expires_at;
    /* The eviction above may have emptied the chain `link` pointed into:
     * find the insertion point again. */
    link = &cache->buckets[hash & cache->bucket_mask];
    entry->bucket_next = *link;
    *link = entry;
    recency_push_newest(cache, entry);
    cache->count++;
    return 0;
}

/* resolver.c - the lookup pool: a queue of requests, worker threads that
 * run the resolve function, a list of finished results, and the cache in
 * front of it all. One mutex guards the two lists and the counters; the
 * cache belongs to the loop's thread and needs none. */
#include "resolver.h"

#include "evq_thread.h"
#include "resolver_cache.h"

#include <stdlib.h>
#include <string.h>

enum request_state {
    REQUEST_QUEUED,   /* on r->queued; the loop may free it (cancel) */
    REQUEST_RUNNING,  /* on no list; its worker owns it */
    REQUEST_FINISHED, /* on r->finished; the loop frees it (collect, cancel) */
};

struct resolver_request {
    resolver_request *prev, *next; /* on r->queued or r->finished */
    resolver *resolver;
    enum request_state state;
    bool cancelled; /* while running: the worker drops the result */
    void *owner;
    int status;
    evq_address_list addresses;
    uint16_t port;
    char host[]; /* NUL-terminated, at most RESOLVER_MAX_HOST bytes */
};

struct request_list {
    resolver_request *head, *tail;
    size_t count;
};

struct resolver {
    resolver_config config; /* read-only once open: workers read it without the lock */
    evq_mutex lock;
    evq_cond work_ready; /* a request was queued, or the pool is shutting down */
    /* Under `lock`: */
    struct request_list queued;
    struct request_list finished;
    size_t running, running_peak, live;
    bool closing;
    uint64_t submitted, resolved, delivered, cancelled, dropped, notified;
    /* The loop's thread only: */
    evq_thread *threads;
    unsigned started;
    resolver_cache cache;
    uint64_t numeric, cache_hits;
};

/* ---- lists ---- */

static void list_append(struct request_list *list, resolver_request *request)
{
    request->next = NULL;
    request->prev = list->tail;
    if (list->tail)
        list->tail->next = request;
    else
        list->head = request;
    list->tail = request;
    list->count++;
}

static void list_remove(struct request_list *list, resolver_request *request)
{
    if (request->prev)
        request->prev->next = request->next;
    else
        list->head = request->next;
    if (request->next)
        request->next->prev = request->prev;
    else
        list->tail = request->prev;
    request->prev = request->next = NULL;
    list->count--;
}

static void request_free(resolver_request *request)
{
    evq_address_list_free(&request->addresses);
    free(request);
}

/* ---- configuration ---- */

void resolver_config_default(resolver_config *out)
{
    memset(out, 0, sizeof *out);
    out->threads = RESOLVER_DEFAULT_THREADS;
    out->max_pending = 1024;
    out->resolve = evq_resolve_system;
    out->clock = evq_clock_system();
    out->cache_entries = 256;
    out->cache_max_age_ns = 30 * EVQ_NS_PER_S;    /* as OpenJDK's InetAddress cache */
    out->negative_max_age_ns = 10 * EVQ_NS_PER_S; /* as Java's networkaddress.cache.negative.ttl */
}

int resolver_open(const resolver_config *config, resolver **out)
{
    if (!config || !out || config->threads == 0 || config->threads > RESOLVER_MAX_THREADS ||
        config->max_pending == 0 || !config->resolve ||
        (config->cache_entries > 0 && !config->clock.now_ns))
        return EVQ_EINVAL;
    resolver *r = calloc(1, sizeof *r);
    if (!r)
        return EVQ_ENOMEM;
    r->config = *config;
    r->threads = calloc(config->threads, sizeof *r->threads);
    int rc = r->threads ? 0 : EVQ_ENOMEM;
    if (rc == 0)
        rc = resolver_cache_init(&r->cache, config->cache_entries);
    if (rc == 0 && (rc = evq_mutex_init(&r->lock)) == 0 &&
        (rc = evq_cond_init(&r->work_ready)) != 0)
        evq_mutex_destroy(&r->lock);
    if (rc != 0) {
        resolver_cache_destroy(&r->cache);
        free(r->threads);
        free(r);
        return rc;
    }
    *out = r;
    return 0;
}

/* ---- the workers ---- */

/* The resolve function, with its contract enforced: 0 means addresses. */
static int run_lookup(resolver *r, const char *host, uint16_t port, evq_address_list *found)
{
    int status = r->config.resolve(host, port, found, r->config.resolve_context);
    if (status == 0 && found->count == 0)
        status = EVQ_EAI_NONAME;
    else if (status > 0)
        status = EVQ_EIO; /* not an EVQ_E* code */
    if (status != 0)
        evq_address_list_free(found);
    return status;
}

/* ANCHOR: publish */
/* Back from a lookup, under the lock. A result nobody wants any more is
 * dropped here, by the thread that holds it. Any other goes on the finished
 * list, and the worker notifies after this returns: a loop woken by the
 * notify must find the result there. Only a result landing on an empty list
 * asks for a notify; the ones behind it ride on that wake-up. */
static bool publish(resolver *r, resolver_request *request, int status, evq_address_list *found)
{
    if (request->cancelled) {
        r->live--;
        r->dropped++;
        evq_address_list_free(found);
        free(request);
        return false;
    }
    request->status = status;
    request->addresses = *found;
    request->state = REQUEST_FINISHED;
    bool first = r->finished.head == NULL;
    list_append(&r->finished, request);
    if (r->closing) { /* never delivered; its owner may still cancel it */
        r->dropped++;
        return false;
    }
    if (first)
        r->notified++;
    return first;
}
/* ANCHOR_END: publish */

/* ANCHOR: worker */
static void worker_main(void *arg)
{
    resolver *r = arg;
    evq_mutex_lock(&r->lock);
    for (;;) {
        while (!r->closing && !r->queued.head)
            evq_cond_wait(&r->work_ready, &r->lock);
        if (r->closing)
            break; /* queued requests stay for resolver_close to free */
        resolver_request *request = r->queued.head;
        list_remove(&r->queued, request);
        request->state = REQUEST_RUNNING; /* ours now: cancel only marks it */
        if (++r->running > r->running_peak)
            r->running_peak = r->running;
        evq_mutex_unlock(&r->lock);

        evq_address_list found = {0};
        int status = run_lookup(r, request->host, request->port, &found); /* may take seconds */

        evq_mutex_lock(&r->lock);
        r->running--;
        r->resolved++;
        if (publish(r, request, status, &found) && r->config.notify) {
            evq_mutex_unlock(&r->lock);
            r->config.notify(r->config.notify_context); /* outside the lock: a system call */
            evq_mutex_lock(&r->lock);
        }
    }
    evq_mutex_unlock(&r->lock);
}
/* ANCHOR_END: worker */

/* Start the workers on the first lookup that needs them: a program that
 * never resolves a name never pays for the threads. A thread that fails to
 * start is tried again on the next lookup; one that started is enough to
 * carry on. */
static int start_workers(resolver *r)
{
    while (r->started < r->config.threads) {
        int rc = evq_thread_start(&r->threads[r->started], worker_main, r);
        if (rc != 0)
            return r->started > 0 ? 0 : rc;
        evq_mutex_lock(&r->lock);
        r->started++; /* under the lock for resolver_stats_get's sake */
        evq_mutex_unlock(&r->lock);
    }
    return 0;
}

/* ---- the loop's side ---- */

static bool is_closing(resolver *r)
{
    evq_mutex_lock(&r->lock);
    bool closing = r->closing;
    evq_mutex_unlock(&r->lock);
    return closing;
}

/* A new request at the end of the queue, for the first idle worker. */
static int enqueue(resolver *r, const char *host, size_t length, uint16_t port, void *owner,
                   resolver_request **out)
{
    resolver_request *request = malloc(sizeof *request + length + 1);
    if (!request)
        return EVQ_ENOMEM;
    memset(request, 0, sizeof *request);
    request->resolver = r;
    request->owner = owner;
    request->port = port;
    memcpy(request->host, host, length + 1);

    evq_mutex_lock(&r->lock);
    int rc = r->closing ? EVQ_ECLOSED : r->live >= r->config.max_pending ? EVQ_EFULL : 0;
    if (rc == 0) {
        request->state = REQUEST_QUEUED;
        list_append(&r->queued, request);
        r->live++;
        r->submitted++;
        evq_cond_signal(&r->work_ready); /* one idle worker is enough */
    }
    evq_mutex_unlock(&r->lock);
    if (rc != 0) { /* full is an answer, not a wait: the caller decides */
        free(request);
        return rc;
    }
    *out = request;
    return 0;
}

/* A numeric host, or a fresh cache entry: *status and *out, and true. */
static bool answer_inline(resolver *r, const char *host, uint16_t port, int *status,
                          evq_address_list *out)
{
    if (resolve_numeric(host, port, out) == 0) {
        *status = 0;
        r->numeric++;
        return true;
    }
    evq_address_list_free(out); /* anything it added before it found a name */
    uint64_t now = r->cache.capacity ? evq_clock_read(&r->config.clock) : 0;
    if (!resolver_cache_get(&r->cache, host, port, now, status, out))
        return false;
    r->cache_hits++;
    return true;
}

/* Keep an answer (0) or "no such name" (EVQ_EAI_NONAME) for its age;
 * anything else is not an answer and is never kept. */
static void remember(resolver *r, const char *host, uint16_t port, int status,
                     const evq_address_list *addresses, uint64_t now)
{
    if (status == 0 && r->config.cache_max_age_ns > 0)
        resolver_cache_put(&r->cache, host, port, 0, addresses,
                           evq_sat_add(now, r->config.cache_max_age_ns));
    else if (status == EVQ_EAI_NONAME && r->config.negative_max_age_ns > 0)
        resolver_cache_put(&r->cache, host, port, EVQ_EAI_NONAME, addresses,
                           evq_sat_add(now, r->config.negative_max_age_ns));
}

/* ANCHOR: submit */
int resolver_submit(resolver *r, const char *host, uint16_t port, void *owner,
                    resolver_result *answer, resolver_request **request)
{
    if (!request || !answer)
        return EVQ_EINVAL;
    *request = NULL;
    memset(answer, 0, sizeof *answer);
    if (!r || !host)
        return EVQ_EINVAL;
    size_t length = strlen(host);
    if (length == 0 || length > RESOLVER_MAX_HOST)
        return EVQ_EINVAL;
    if (is_closing(r))
        return EVQ_ECLOSED;

    /* A numeric address is parsed, and a fresh answer in the cache costs a
     * hash lookup and a copy: answer them here, on the loop's thread,
     * without a request or a thread hop. */
    if (answer_inline(r, host, port, &answer->status, &answer->addresses)) {
        answer->owner = owner;
        return 0;
    }
    int rc = start_workers(r);
    if (rc == 0)
        rc = enqueue(r, host, length, port, owner, request);
    return rc == 0 ? EVQ_EINPROGRESS : rc;
}
/* ANCHOR_END: submit */

int resolver_lookup_now(resolver *r, const char *host, uint16_t port, evq_address_list *out)
{
    if (!r || !host || !out || strlen(host) == 0 || strlen(host) > RESOLVER_MAX_HOST)
        return EVQ_EINVAL;
    int status = 0;
    if (answer_inline(r, host, port, &status, out))
        return status;
    status = run_lookup(r, host, port, out); /* blocks this thread: see resolver.h */
    uint64_t now = r->cache.capacity ? evq_clock_read(&r->config.clock) : 0;
    remember(r, host, port, status, out, now);
    return status;
}

/* ANCHOR: collect */
size_t resolver_collect(resolver *r, resolver_result *results, size_t capacity)
{
    if (!r || !results || capacity == 0)
        return 0;
    /* Take the results off the list under the lock, then copy and cache
     * them outside it: the workers wait for this lock. */
    resolver_request *taken = NULL, **tail = &taken;
    size_t n = 0;
    evq_mutex_lock(&r->lock);
    while (!r->closing && n < capacity && r->finished.head) {
        resolver_request *request = r->finished.head;
        list_remove(&r->finished, request);
        *tail = request;
        tail = &request->next;
        n++;
    }
    r->live -= n;
    r->delivered += n;
    evq_mutex_unlock(&r->lock);

    uint64_t now = r->cache.capacity && n ? evq_clock_read(&r->config.clock) : 0;
    for (size_t i = 0; i < n; i++) {
        resolver_request *request = taken;
        taken = request->next;
        remember(r, request->host, request->port, request->status, &request->addresses, now);
        results[i].owner = request->owner;
        results[i].status = request->status;
        results[i].addresses = request->addresses; /* moved: the caller's now */
        request->addresses = (evq_address_list){0};
        request_free(request);
    }
    return n;
}
/* ANCHOR_END: collect */

/* ANCHOR: cancel */
int resolver_cancel(resolver_request *request)
{
    if (!request)
        return EVQ_EINVAL;
    resolver *r = request->resolver;
    evq_mutex_lock(&r->lock);
    r->cancelled++;
    if (request->state == REQUEST_RUNNING) {
        /* Its worker is inside getaddrinfo with this memory: it cannot be
         * stopped, and the request cannot be freed under it. Mark it; the
         * worker frees it when the call returns, and delivers nothing. */
        request->cancelled = true;
        evq_mutex_unlock(&r->lock);
        return 0;
    }
    list_remove(request->state == REQUEST_QUEUED ? &r->queued : &r->finished, request);
    r->live--;
    evq_mutex_unlock(&r->lock);
    request_free(request); /* queued or finished: no thread holds it */
    return 0;
}
/* ANCHOR_END: cancel */

void resolver_shutdown(resolver *r)
{
    if (!r)
        return;
    evq_mutex_lock(&r->lock);
    r->closing = true;
    evq_cond_broadcast(&r->work_ready); /* every idle worker wakes and leaves */
    evq_mutex_unlock(&r->lock);
}

static void free_list(struct request_list *list)
{
    while (list->head) {
        resolver_request *request = list->head;
        list_remove(list, request);
        request_free(request);
    }
}

void resolver_close(resolver *r)
{
    if (!r)
        return;
    resolver_shutdown(r);
    /* A worker inside a slow lookup is waited for: getaddrinfo cannot be
     * interrupted, and it must not return into freed memory. */
    for (unsigned i = 0; i < r->started; i++)
        evq_thread_join(&r->threads[i]);
    free_list(&r->queued);   /* never ran */
    free_list(&r->finished); /* ran, never collected */
    resolver_cache_destroy(&r->cache);
    evq_cond_destroy(&r->work_ready);
    evq_mutex_destroy(&r->lock);
    free(r->threads);
    free(r);
}

void resolver_stats_get(resolver *r, resolver_stats *out)
{
    memset(out, 0, sizeof *out);
    if (!r)
        return;
    evq_mutex_lock(&r->lock);
    out->queued = r->queued.count;
    out->running = r->running;
    out->running_peak = r->running_peak;
    out->finished = r->finished.count;
    out->live = r->live;
    out->workers = r->started;
    out->submitted = r->submitted;
    out->resolved = r->resolved;
    out->delivered = r->delivered;
    out->cancelled = r->cancelled;
    out->dropped = r->dropped;
    out->notified = r->notified;
    evq_mutex_unlock(&r->lock);
    out->cache_entries = r->cache.count;
    out->numeric = r->numeric;
    out->cache_hits = r->cache_hits;
}

/* resolver.h - name lookups on a thread pool, for the queue's thread.
 *
 * getaddrinfo() blocks: it reads files, asks DNS servers, and waits for
 * their answers for seconds when one is slow or gone. There is no portable
 * way to ask it not to, so the resolver runs it where blocking is harmless:
 * on a few worker threads. The loop's thread only submits, collects and
 * cancels, and never waits:
 *
 *     resolver_submit()   loop thread: a fresh cache entry is answered at
 *                         once; anything else becomes a request in the queue
 *     worker              takes the oldest request, calls the resolve
 *                         function, puts the result on the finished list,
 *                         then calls notify() (the queue's waker)
 *     resolver_collect()  loop thread, after the wake-up: takes the finished
 *                         results, each with the owner given at submission
 *
 * Who owns what, when:
 * - A request belongs to the resolver from submit until collect hands its
 *   result out or cancel ends it. The caller keeps the handle only to cancel
 *   it, and forgets it when the result comes (the handle is dead then).
 * - A result's address list belongs to the caller once collected (or once
 *   answered inline): free it with evq_address_list_free.
 * - A running lookup belongs to its worker: cancel marks it, and the worker
 *   frees it when getaddrinfo returns. Nothing a worker uses is ever freed
 *   under it.
 *
 * Threads: every function is for one thread, the loop's (the cache is that
 * thread's alone and takes no lock), except resolver_shutdown, which any
 * thread may call. notify() is called on worker threads.
 *
 * No slow-I/O cap. libuv lets at most half of its pool's threads run
 * getaddrinfo at once (UV__WORK_SLOW_IO, slow_work_thread_threshold() in
 * src/threadpool.c), because its one pool also runs file system calls and
 * the user's uv_queue_work: without the cap, a few lookups stuck on a dead
 * DNS server would take every thread and stall every fs call of the
 * process. This pool runs lookups and nothing else, so there is no other
 * kind of work to protect: a cap would only leave threads idle while
 * lookups wait. What a slow DNS server can still do is delay the other
 * lookups queued behind it; the cache (names seen before are answered
 * without the pool), a per-connect deadline and the pool's size are the
 * answers to that, not a cap. A pool that later runs other work too must
 * bring the cap back.
 */
#ifndef RESOLVER_H
#define RESOLVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "evq.h"
#include "evq_clock.h"

#define RESOLVER_DEFAULT_THREADS 4 /* as libuv's UV_THREADPOOL_SIZE */
#define RESOLVER_MAX_THREADS     64
#define RESOLVER_MAX_HOST        255 /* bytes: the longest name DNS can carry */

typedef struct resolver resolver;
typedef struct resolver_request resolver_request;

/* Called on a worker thread after it put a result on the finished list,
 * when that list was empty: "there is something to collect". Once a collect
 * has emptied the list, the next result to land is followed by a call, so
 * no result waits unseen. A result landing on a list not yet collected adds
 * no call (the one already made covers it): a collect that fills its array
 * may leave results behind, and the caller must collect again until it gets
 * fewer than it asked for. Must be safe from any thread and must not call
 * the resolver. */
typedef void (*resolver_notify_fn)(void *context);

/* ANCHOR: config */
typedef struct resolver_config {
    unsigned threads;       /* workers, 1..RESOLVER_MAX_THREADS, started on the first lookup */
    size_t max_pending;     /* lookups submitted and not yet collected or cancelled; past it,
                               submit says EVQ_EFULL */
    evq_resolve_fn resolve; /* called on the workers */
    void *resolve_context;
    resolver_notify_fn notify; /* NULL: the caller polls resolver_collect */
    void *notify_context;
    evq_clock clock;              /* the cache's clock, read on the loop's thread only */
    size_t cache_entries;         /* at most this many names; 0: no cache */
    uint64_t cache_max_age_ns;    /* an answer is used this long after it arrived */
    uint64_t negative_max_age_ns; /* "no such name" is believed this long; 0: never kept */
} resolver_config;
/* ANCHOR_END: config */

/* 4 threads, 1024 pending, evq_resolve_system, no notify, the system clock,
 * 256 names kept 30 s, "no such name" kept 10 s (Java's defaults: OpenJDK's
 * InetAddress cache and networkaddress.cache.negative.ttl). Other failures
 * (EVQ_EAI_AGAIN: the DNS server did not answer) are never kept: caching
 * them would turn a blip into an outage. */
void resolver_config_default(resolver_config *out);

/* EVQ_EINVAL for a config that breaks the rules above; EVQ_ENOMEM. No thread
 * starts until the first lookup that needs one. */
int resolver_open(const resolver_config *config, resolver **out);

/* A lookup's outcome. */
typedef struct resolver_result {
    void *owner;                /* as given to resolver_submit */
    int status;                 /* 0, or the lookup's EVQ_E* code */
    evq_address_list addresses; /* status 0: at least one; the caller's to free */
} resolver_result;

/* Look host:port up.
 * - 0: answered now, on this thread: a numeric address (parsed, see
 *   resolve_numeric) or a fresh cache entry. *answer holds it (status 0
 *   with addresses, or EVQ_EAI_NONAME remembered); *request is NULL. No
 *   thread was involved and no notify() will come for it.
 * - EVQ_EINPROGRESS: queued; *request is its handle, and its result comes
 *   later from resolver_collect (or never, if it is cancelled).
 * - EVQ_EFULL: max_pending lookups are pending; nothing was queued.
 * - EVQ_EINVAL (NULL, an empty name, or longer than RESOLVER_MAX_HOST),
 *   EVQ_ECLOSED (after resolver_shutdown), EVQ_ENOMEM, or the error that
 *   kept the first worker from starting. */
int resolver_submit(resolver *r, const char *host, uint16_t port, void *owner,
                    resolver_result *answer, resolver_request **request);

/* host:port now, on this thread: a numeric address, a fresh cache entry,
 * or else the resolve function called here - which may block. For a server
 * resolving its own address before its loop runs (evq_tcp_listen). 0 with
 * *out filled (the caller's to free), or the lookup's code. */
int resolver_lookup_now(resolver *r, const char *host, uint16_t port, evq_address_list *out);

/* Move up to `capacity` finished lookups into results[], oldest first, and
 * return how many. Each one's request is over: its handle is dead. Answers
 * and "no such name" go into the cache on the way. After resolver_shutdown
 * nothing is delivered (0). */
size_t resolver_collect(resolver *r, resolver_result *results, size_t capacity);

/* End a lookup whose result has not been collected; its owner never hears
 * of it. Queued: removed and freed now. Running: its worker finishes the
 * call, then frees the result and the request without a notify(). Finished
 * and not collected: freed now. The handle is dead on return either way.
 * EVQ_EINVAL for NULL. */
int resolver_cancel(resolver_request *request);

/* Stop taking lookups, from any thread: submit says EVQ_ECLOSED, collect
 * delivers nothing, idle workers leave, and running ones leave when their
 * call returns, keeping what it found where nobody will collect it (no
 * notify()). Every request stays allocated - its owner may still hold the
 * handle, and cancel it - until it is cancelled or resolver_close frees
 * it. Calling it twice is harmless. */
void resolver_shutdown(resolver *r);

/* Shut down, wait for every worker to leave (a worker inside a slow
 * getaddrinfo is waited for: the call cannot be interrupted), then free
 * every request, result and cache entry. Every handle is dead afterwards.
 * notify() is not called once this returns. NULL is ignored. */
void resolver_close(resolver *r);

/* ANCHOR: stats */
/* What the resolver holds and has done, for tests and for the book's
 * measurements. */
typedef struct resolver_stats {
    size_t queued;        /* waiting for a worker */
    size_t running;       /* inside the resolve function now */
    size_t running_peak;  /* the most ever running at once */
    size_t finished;      /* results waiting for resolver_collect */
    size_t live;          /* requests allocated: the above, and cancelled ones still running */
    size_t workers;       /* threads started */
    size_t cache_entries; /* names in the cache */
    uint64_t submitted;   /* lookups that went to the pool */
    uint64_t numeric;     /* lookups answered inline: a numeric address */
    uint64_t cache_hits;  /* lookups answered inline: the cache */
    uint64_t resolved;    /* calls of the resolve function that returned */
    uint64_t delivered;   /* results handed out by resolver_collect */
    uint64_t cancelled;   /* requests ended by resolver_cancel */
    uint64_t dropped;     /* results never to be delivered: cancelled while running, or shut down */
    uint64_t notified;    /* calls of notify() */
} resolver_stats;
/* ANCHOR_END: stats */

void resolver_stats_get(resolver *r, resolver_stats *out);

/* resolve_posix.c / resolve_win.c: host as a numeric IPv4 or IPv6 address,
 * parsed (getaddrinfo with AI_NUMERICHOST: no file, no network, no wait),
 * so that the loop's thread may call it; non-zero if host is a name. */
int resolve_numeric(const char *host, uint16_t port, evq_address_list *out);

#endif

/* resolver_test.h - what chapter 4's resolver tests share: a fake resolver
 * whose calls the test holds and releases, a waker that stands in for the
 * queue's, and a loop that collects until it has what it expects.
 *
 * The fake answers by the name it is asked:
 *   "noname.*"   EVQ_EAI_NONAME          "again.*"    EVQ_EAI_AGAIN
 *   "empty.*"    0 with no address       "positive.*" 1 (not an EVQ_E* code)
 *   anything else: fake->answer if set, or answer_count addresses made from
 *   the name (fake_address_for), so that a test can tell whose answer it is.
 * While the gate is closed, every call waits inside the fake until the gate
 * opens or its name is released (at most FAKE_GATE_LIMIT_MS: a broken pool
 * cannot hang a test; gate_timeouts counts the calls that gave up).
 */
#ifndef RESOLVER_TEST_H
#define RESOLVER_TEST_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "evq.h"
#include "evq_clock.h"
#include "evq_net.h"
#include "evq_thread.h"
#include "resolver.h"

#define FAKE_GATE_LIMIT_MS 20000
#define FAKE_MAX_RELEASED  16
#define TEST_WAIT_MS       10000 /* the longest a test waits for anything */

typedef struct fake_resolver {
    evq_mutex lock;
    evq_cond changed;
    bool gate_open;
    char released[FAKE_MAX_RELEASED][64];
    size_t released_count;
    unsigned blocked;               /* calls waiting at the gate now (under lock) */
    unsigned answer_count;          /* addresses per generated answer; default 1 */
    const evq_address_list *answer; /* when set: every other name gets this */
    atomic_uint calls;              /* calls made */
    atomic_uint in_flight;          /* calls inside the fake now */
    atomic_uint max_in_flight;      /* the most ever inside at once */
    atomic_uint gate_timeouts;      /* calls that gave up waiting (a broken test) */
} fake_resolver;

void fake_init(fake_resolver *fake, bool gate_open);
void fake_destroy(fake_resolver *fake);
void fake_open_gate(fake_resolver *fake);
void fake_close_gate(fake_resolver *fake);                /* calls from now on wait again */
void fake_release(fake_resolver *fake, const char *host); /* let this name's calls through */
/* Wait until `count` calls are held at the gate; false after TEST_WAIT_MS. */
bool fake_wait_blocked(fake_resolver *fake, unsigned count);
int fake_resolve(const char *host, uint16_t port, evq_address_list *out, void *context);
/* The index-th address the fake gives for host:port: 10.a.b.c from the name. */
evq_address fake_address_for(const char *host, uint16_t port, unsigned index);
bool address_equal(const evq_address *a, const evq_address *b);
/* evq.h keeps an address's bytes opaque: these copy them in and out. */
struct sockaddr_storage address_sockaddr(const evq_address *address);
evq_address address_v4(uint32_t ip, uint16_t port); /* ip in host order: 0x7f000001 */
int address_append(evq_address_list *list, const evq_address *address);
int address_family(const evq_address *address);
uint16_t address_port(const evq_address *address);

/* Open the fake's gate from a thread of its own, a moment from now (20 ms):
 * for a test whose next call - closing the pool or the queue - waits for
 * the very workers the gate holds. Either order of the two is correct; the
 * moment only makes the close likely to be waiting already. */
typedef struct gate_opener {
    fake_resolver *fake;
    evq_thread thread;
} gate_opener;

int gate_opener_start(gate_opener *opener, fake_resolver *fake);
void gate_opener_join(gate_opener *opener);

/* The queue's waker, as the tests see it: a counter and a condition. */
typedef struct test_waker {
    evq_mutex lock;
    evq_cond cond;
    unsigned count;
} test_waker;

void waker_init(test_waker *waker);
void waker_destroy(test_waker *waker);
void waker_notify(void *context); /* a resolver_notify_fn */
unsigned waker_count(test_waker *waker);
/* Wait until the count is above `seen`; false after timeout_ms. */
bool waker_wait(test_waker *waker, unsigned seen, uint32_t timeout_ms);

/* The loop's side: collect `batch` at a time until `want` results are in
 * results[], sleeping on the waker between collects, as the queue will.
 * Returns how many came (fewer than want only after TEST_WAIT_MS without a
 * wake-up: a lost wake-up or a lost result). */
size_t collect_until(resolver *r, test_waker *waker, resolver_result *results, size_t want,
                     size_t batch);
void results_free(resolver_result *results, size_t count);

/* A config for tests: `threads` workers, the fake, the waker, no cache. */
resolver_config test_config(unsigned threads, fake_resolver *fake, test_waker *waker);

/* What most tests start from: a fake, a waker and a pool on them. */
typedef struct pool_fixture {
    fake_resolver fake;
    test_waker waker;
    resolver_config config; /* test_config(): change it before fixture_start */
    resolver *r;
} pool_fixture;

void fixture_init(pool_fixture *f, unsigned threads, bool gate_open);
/* resolver_open(&f->config): false (with the failure recorded) if it fails. */
bool fixture_start(pool_fixture *f);
void fixture_close(pool_fixture *f);

/* Submit a lookup that must go to the pool (EVQ_EINPROGRESS): its handle,
 * or NULL with the failure recorded. */
resolver_request *submit_to_pool(resolver *r, const char *host, uint16_t port, void *owner);
/* collect_until one result. */
bool collect_one(pool_fixture *f, resolver_result *result);

#endif

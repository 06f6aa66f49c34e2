/* resolver_test.c - the fake resolver, the test waker, the collect loop. */
#include "resolver_test.h"

#include "evq_error.h"
#include "evq_test.h"

#include <stdio.h>
#include <string.h>

void fake_init(fake_resolver *fake, bool gate_open)
{
    memset(fake, 0, sizeof *fake);
    evq_mutex_init(&fake->lock);
    evq_cond_init(&fake->changed);
    fake->gate_open = gate_open;
    fake->answer_count = 1;
    atomic_init(&fake->calls, 0);
    atomic_init(&fake->in_flight, 0);
    atomic_init(&fake->max_in_flight, 0);
    atomic_init(&fake->gate_timeouts, 0);
}

void fake_destroy(fake_resolver *fake)
{
    evq_cond_destroy(&fake->changed);
    evq_mutex_destroy(&fake->lock);
}

void fake_open_gate(fake_resolver *fake)
{
    evq_mutex_lock(&fake->lock);
    fake->gate_open = true;
    evq_cond_broadcast(&fake->changed);
    evq_mutex_unlock(&fake->lock);
}

void fake_close_gate(fake_resolver *fake)
{
    evq_mutex_lock(&fake->lock);
    fake->gate_open = false;
    evq_mutex_unlock(&fake->lock);
}

void fake_release(fake_resolver *fake, const char *host)
{
    evq_mutex_lock(&fake->lock);
    if (fake->released_count < FAKE_MAX_RELEASED)
        snprintf(fake->released[fake->released_count++], sizeof fake->released[0], "%s", host);
    evq_cond_broadcast(&fake->changed);
    evq_mutex_unlock(&fake->lock);
}

static bool is_released(const fake_resolver *fake, const char *host)
{
    for (size_t i = 0; i < fake->released_count; i++)
        if (strcmp(fake->released[i], host) == 0)
            return true;
    return false;
}

bool fake_wait_blocked(fake_resolver *fake, unsigned count)
{
    uint64_t deadline = evq_clock_now_ns() + evq_ms_to_ns(TEST_WAIT_MS);
    evq_mutex_lock(&fake->lock);
    while (fake->blocked < count) {
        int left = evq_remaining_ms(deadline, evq_clock_now_ns());
        if (left == 0)
            break;
        evq_cond_timedwait(&fake->changed, &fake->lock, (uint32_t)left);
    }
    bool reached = fake->blocked >= count;
    evq_mutex_unlock(&fake->lock);
    return reached;
}

static void wait_at_gate(fake_resolver *fake, const char *host)
{
    uint64_t deadline = evq_clock_now_ns() + evq_ms_to_ns(FAKE_GATE_LIMIT_MS);
    evq_mutex_lock(&fake->lock);
    fake->blocked++;
    evq_cond_broadcast(&fake->changed); /* fake_wait_blocked watches this */
    while (!fake->gate_open && !is_released(fake, host)) {
        int left = evq_remaining_ms(deadline, evq_clock_now_ns());
        if (left == 0) {
            atomic_fetch_add(&fake->gate_timeouts, 1);
            break;
        }
        evq_cond_timedwait(&fake->changed, &fake->lock, (uint32_t)left);
    }
    fake->blocked--;
    evq_mutex_unlock(&fake->lock);
}

static void open_gate_soon(void *arg)
{
    gate_opener *opener = arg;
    evq_sleep_ms(20);
    fake_open_gate(opener->fake);
}

int gate_opener_start(gate_opener *opener, fake_resolver *fake)
{
    opener->fake = fake;
    return evq_thread_start(&opener->thread, open_gate_soon, opener);
}

void gate_opener_join(gate_opener *opener)
{
    evq_thread_join(&opener->thread);
}

static uint32_t name_hash(const char *host)
{
    uint32_t hash = 2166136261u;
    for (const unsigned char *p = (const unsigned char *)host; *p; p++)
        hash = (hash ^ *p) * 16777619u;
    return hash;
}

evq_address fake_address_for(const char *host, uint16_t port, unsigned index)
{
    uint32_t low = (name_hash(host) + index) & 0xffffffu; /* 24 bits of the name */
    return address_v4((10u << 24) | low, port);
}

bool address_equal(const evq_address *a, const evq_address *b)
{
    return a->length == b->length && memcmp(a->bytes, b->bytes, a->length) == 0;
}

struct sockaddr_storage address_sockaddr(const evq_address *address)
{
    struct sockaddr_storage out;
    memset(&out, 0, sizeof out);
    memcpy(&out, address->bytes, address->length);
    return out;
}

evq_address address_v4(uint32_t ip, uint16_t port)
{
    struct sockaddr_in v4;
    memset(&v4, 0, sizeof v4);
    v4.sin_family = AF_INET;
    v4.sin_port = htons(port);
    v4.sin_addr.s_addr = htonl(ip);
    evq_address address;
    memset(&address, 0, sizeof address);
    memcpy(address.bytes, &v4, sizeof v4);
    address.length = sizeof v4;
    return address;
}

int address_append(evq_address_list *list, const evq_address *address)
{
    struct sockaddr_storage storage = address_sockaddr(address);
    return evq_address_list_add(list, (const struct sockaddr *)&storage, address->length);
}

int address_family(const evq_address *address)
{
    return address_sockaddr(address).ss_family;
}

uint16_t address_port(const evq_address *address)
{
    struct sockaddr_storage storage = address_sockaddr(address);
    if (storage.ss_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)&storage)->sin6_port);
    return ntohs(((const struct sockaddr_in *)&storage)->sin_port);
}

static bool starts_with(const char *text, const char *prefix)
{
    return strncmp(text, prefix, strlen(prefix)) == 0;
}

int fake_resolve(const char *host, uint16_t port, evq_address_list *out, void *context)
{
    fake_resolver *fake = context;
    atomic_fetch_add(&fake->calls, 1);
    unsigned now = atomic_fetch_add(&fake->in_flight, 1) + 1;
    unsigned seen = atomic_load(&fake->max_in_flight);
    while (now > seen && !atomic_compare_exchange_weak(&fake->max_in_flight, &seen, now)) {
    }

    wait_at_gate(fake, host);

    int rc = 0;
    if (starts_with(host, "noname."))
        rc = EVQ_EAI_NONAME;
    else if (starts_with(host, "again."))
        rc = EVQ_EAI_AGAIN;
    else if (starts_with(host, "positive."))
        rc = 1;
    else if (starts_with(host, "empty."))
        rc = 0;
    else if (fake->answer) {
        for (size_t i = 0; i < fake->answer->count && rc == 0; i++)
            rc = address_append(out, &fake->answer->items[i]);
    } else {
        for (unsigned i = 0; i < fake->answer_count && rc == 0; i++) {
            evq_address address = fake_address_for(host, port, i);
            rc = address_append(out, &address);
        }
    }
    atomic_fetch_sub(&fake->in_flight, 1);
    return rc;
}

void waker_init(test_waker *waker)
{
    memset(waker, 0, sizeof *waker);
    evq_mutex_init(&waker->lock);
    evq_cond_init(&waker->cond);
}

void waker_destroy(test_waker *waker)
{
    evq_cond_destroy(&waker->cond);
    evq_mutex_destroy(&waker->lock);
}

void waker_notify(void *context)
{
    test_waker *waker = context;
    evq_mutex_lock(&waker->lock);
    waker->count++;
    evq_cond_broadcast(&waker->cond);
    evq_mutex_unlock(&waker->lock);
}

unsigned waker_count(test_waker *waker)
{
    evq_mutex_lock(&waker->lock);
    unsigned count = waker->count;
    evq_mutex_unlock(&waker->lock);
    return count;
}

bool waker_wait(test_waker *waker, unsigned seen, uint32_t timeout_ms)
{
    uint64_t deadline = evq_clock_now_ns() + evq_ms_to_ns(timeout_ms);
    evq_mutex_lock(&waker->lock);
    while (waker->count <= seen) {
        int left = evq_remaining_ms(deadline, evq_clock_now_ns());
        if (left == 0)
            break;
        evq_cond_timedwait(&waker->cond, &waker->lock, (uint32_t)left);
    }
    bool woken = waker->count > seen;
    evq_mutex_unlock(&waker->lock);
    return woken;
}

size_t collect_until(resolver *r, test_waker *waker, resolver_result *results, size_t want,
                     size_t batch)
{
    size_t got = 0;
    while (got < want) {
        /* Read the count before looking: a notify after the look raises it,
         * and the wait below returns at once instead of missing it. */
        unsigned seen = waker_count(waker);
        size_t ask = want - got < batch ? want - got : batch;
        size_t n = resolver_collect(r, results + got, ask);
        got += n;
        if (n == ask)
            continue; /* a full batch: there may be more without a new notify */
        if (!waker_wait(waker, seen, TEST_WAIT_MS))
            break;
    }
    return got;
}

void results_free(resolver_result *results, size_t count)
{
    for (size_t i = 0; i < count; i++)
        evq_address_list_free(&results[i].addresses);
}

resolver_config test_config(unsigned threads, fake_resolver *fake, test_waker *waker)
{
    resolver_config config;
    resolver_config_default(&config);
    config.threads = threads;
    config.resolve = fake_resolve;
    config.resolve_context = fake;
    config.notify = waker ? waker_notify : NULL;
    config.notify_context = waker;
    config.cache_entries = 0;
    return config;
}

void fixture_init(pool_fixture *f, unsigned threads, bool gate_open)
{
    fake_init(&f->fake, gate_open);
    waker_init(&f->waker);
    f->config = test_config(threads, &f->fake, &f->waker);
    f->r = NULL;
}

bool fixture_start(pool_fixture *f)
{
    int rc = resolver_open(&f->config, &f->r);
    if (rc != 0)
        evq_test_fail(__FILE__, __LINE__, "resolver_open: %s", evq_error_name(rc));
    return rc == 0;
}

void fixture_close(pool_fixture *f)
{
    resolver_close(f->r);
    f->r = NULL;
    if (atomic_load(&f->fake.gate_timeouts) != 0)
        evq_test_fail(__FILE__, __LINE__, "%u calls waited at the gate until its limit",
                      atomic_load(&f->fake.gate_timeouts));
    waker_destroy(&f->waker);
    fake_destroy(&f->fake);
}

resolver_request *submit_to_pool(resolver *r, const char *host, uint16_t port, void *owner)
{
    resolver_result answer;
    resolver_request *request = NULL;
    int rc = resolver_submit(r, host, port, owner, &answer, &request);
    if (rc != EVQ_EINPROGRESS || !request) {
        results_free(&answer, 1);
        evq_test_fail(__FILE__, __LINE__, "%s: expected the pool, got %s", host,
                      evq_error_name(rc));
        return NULL;
    }
    return request;
}

bool collect_one(pool_fixture *f, resolver_result *result)
{
    if (collect_until(f->r, &f->waker, result, 1, 1) == 1)
        return true;
    evq_test_fail(__FILE__, __LINE__, "no result within %d ms", TEST_WAIT_MS);
    return false;
}

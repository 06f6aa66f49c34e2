/* Tests of the lookup pool: every lookup answered once and to its owner, no
 * more lookups at once than workers, a full queue is a code and not a wait,
 * answers out of order, several addresses in order, failures as codes, and
 * the system resolver on names that need no network. */
#include "resolver_test.h"

#include "evq_net.h"
#include "evq_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOOKUPS 1000

EVQ_TEST(a_thousand_lookups_on_four_workers_all_answered_at_most_four_at_once)
{
    pool_fixture f;
    fixture_init(&f, 4, false);
    REQUIRE(fixture_start(&f));
    static char hosts[LOOKUPS][16];
    static unsigned owners[LOOKUPS];
    for (unsigned i = 0; i < LOOKUPS; i++) {
        snprintf(hosts[i], sizeof hosts[i], "host-%u", i);
        owners[i] = 0;
        REQUIRE(submit_to_pool(f.r, hosts[i], 80, &owners[i]));
    }
    /* The first four are held inside the fake: the pool is saturated, and
     * the other 996 wait in the queue, not on more threads. */
    REQUIRE(fake_wait_blocked(&f.fake, 4));
    resolver_stats stats;
    resolver_stats_get(f.r, &stats);
    CHECK_UINT(stats.workers, ==, 4);
    CHECK_UINT(stats.running, ==, 4);
    CHECK_UINT(stats.queued, ==, LOOKUPS - 4);
    CHECK_UINT(atomic_load(&f.fake.in_flight), ==, 4);

    fake_open_gate(&f.fake);
    static resolver_result results[LOOKUPS];
    size_t got = collect_until(f.r, &f.waker, results, LOOKUPS, 64);
    CHECK_UINT(got, ==, LOOKUPS);
    for (size_t i = 0; i < got; i++) {
        unsigned *owner = results[i].owner;
        REQUIRE(owner >= owners && owner < owners + LOOKUPS);
        size_t index = (size_t)(owner - owners);
        (*owner)++;
        CHECK_OK(results[i].status);
        REQUIRE_UINT(results[i].addresses.count, ==, 1);
        evq_address expected = fake_address_for(hosts[index], 80, 0);
        CHECK(address_equal(&results[i].addresses.items[0], &expected)); /* its own answer */
    }
    for (unsigned i = 0; i < LOOKUPS; i++)
        CHECK_UINT(owners[i], ==, 1); /* each answered exactly once */
    results_free(results, got);

    CHECK_UINT(atomic_load(&f.fake.max_in_flight), ==, 4); /* never a fifth at once */
    CHECK_UINT(atomic_load(&f.fake.calls), ==, LOOKUPS);
    resolver_stats_get(f.r, &stats);
    CHECK_UINT(stats.running_peak, ==, 4);
    CHECK_UINT(stats.live, ==, 0);
    CHECK_UINT(stats.delivered, ==, LOOKUPS);
    CHECK_UINT(stats.notified, >=, 1);
    CHECK_UINT(stats.notified, <=, LOOKUPS);
    CHECK_UINT(waker_count(&f.waker), ==, stats.notified);
    evq_test_note("%llu notifies for %d results", (unsigned long long)stats.notified, LOOKUPS);
    fixture_close(&f);
}

EVQ_TEST(a_full_queue_says_full_and_does_not_block)
{
    pool_fixture f;
    fixture_init(&f, 2, false);
    f.config.max_pending = 8;
    REQUIRE(fixture_start(&f));
    char host[16];
    for (int i = 0; i < 8; i++) {
        snprintf(host, sizeof host, "full-%d", i);
        REQUIRE(submit_to_pool(f.r, host, 80, NULL));
    }
    REQUIRE(fake_wait_blocked(&f.fake, 2));
    /* Two running, six queued, none collected: the ninth is refused at once
     * (were it a wait, this thread would block until the gate opens, which
     * only this thread can do). */
    resolver_result answer;
    resolver_request *request;
    for (int i = 0; i < 3; i++) {
        request = (resolver_request *)&answer;
        CHECK_ERR(resolver_submit(f.r, "one-too-many", 80, NULL, &answer, &request), EVQ_EFULL);
        CHECK(request == NULL);
    }
    resolver_stats stats;
    resolver_stats_get(f.r, &stats);
    CHECK_UINT(stats.live, ==, 8);
    CHECK_UINT(stats.submitted, ==, 8);

    fake_open_gate(&f.fake);
    resolver_result results[8];
    CHECK_UINT(collect_until(f.r, &f.waker, results, 8, 8), ==, 8);
    results_free(results, 8);
    CHECK(submit_to_pool(f.r, "room-again", 80, NULL)); /* collected results free places */
    CHECK(collect_one(&f, results));
    results_free(results, 1);
    fixture_close(&f);
}

/* Collect one result; it must be owner's, with fake's answer for host:port. */
static void expect_answer(pool_fixture *f, const void *owner, const char *host, uint16_t port)
{
    resolver_result result;
    if (!collect_one(f, &result))
        return;
    CHECK(result.owner == owner);
    evq_address expected = fake_address_for(host, port, 0);
    if (CHECK_UINT(result.addresses.count, ==, 1))
        CHECK(address_equal(&result.addresses.items[0], &expected));
    results_free(&result, 1);
}

EVQ_TEST(answers_out_of_order_reach_their_owners)
{
    pool_fixture f;
    fixture_init(&f, 2, false);
    REQUIRE(fixture_start(&f));
    int first_owner, second_owner;
    REQUIRE(submit_to_pool(f.r, "first.example", 80, &first_owner));
    REQUIRE(submit_to_pool(f.r, "second.example", 81, &second_owner));
    REQUIRE(fake_wait_blocked(&f.fake, 2));
    fake_release(&f.fake, "second.example"); /* the later lookup answers first */
    expect_answer(&f, &second_owner, "second.example", 81);
    fake_release(&f.fake, "first.example");
    expect_answer(&f, &first_owner, "first.example", 80);
    fixture_close(&f);
}

/* The address of a loopback port that refuses while *holder is open. */
static int refusing_address(evq_socket *holder, evq_address *out)
{
    uint16_t port;
    int rc = evq_net_refusing_loopback(holder, &port);
    if (rc == 0)
        *out = address_v4(0x7f000001, port);
    return rc;
}

static int blocking_connect(const evq_address *address, evq_socket *out)
{
    struct sockaddr_storage to = address_sockaddr(address);
    evq_socket s = socket(to.ss_family, SOCK_STREAM, IPPROTO_TCP);
    if (s == EVQ_INVALID_SOCKET)
        return evq_socket_last_error();
    if (connect(s, (const struct sockaddr *)&to, (socklen_t)address->length) != 0) {
        int rc = evq_socket_last_error();
        evq_socket_close(s);
        return rc;
    }
    *out = s;
    return 0;
}

EVQ_TEST(several_addresses_come_back_in_order_the_first_refusing)
{
    REQUIRE_OK(evq_net_init());
    evq_socket refuser;
    evq_address refusing;
    REQUIRE_OK(refusing_address(&refuser, &refusing));
    evq_socket listener;
    uint16_t port;
    REQUIRE_OK(evq_net_listen_loopback(0, 4, &listener, &port));
    evq_address accepting = address_v4(0x7f000001, port);
    evq_address_list answer_list = {0};
    REQUIRE_OK(address_append(&answer_list, &refusing));
    REQUIRE_OK(address_append(&answer_list, &accepting));

    pool_fixture f;
    fixture_init(&f, 1, true);
    f.fake.answer = &answer_list;
    REQUIRE(fixture_start(&f));
    resolver_result result;
    REQUIRE(submit_to_pool(f.r, "two.example", port, NULL));
    REQUIRE(collect_one(&f, &result));
    REQUIRE_OK(result.status);
    REQUIRE_UINT(result.addresses.count, ==, 2);
    CHECK(address_equal(&result.addresses.items[0], &answer_list.items[0]));
    CHECK(address_equal(&result.addresses.items[1], &answer_list.items[1]));

    /* What chapter 4's connect will do with them: try each in turn. */
    evq_socket s = EVQ_INVALID_SOCKET;
    CHECK_ERR(blocking_connect(&result.addresses.items[0], &s), EVQ_ECONNREFUSED);
    CHECK_OK(blocking_connect(&result.addresses.items[1], &s));
    if (s != EVQ_INVALID_SOCKET)
        evq_socket_close(s);
    results_free(&result, 1);
    fixture_close(&f);
    evq_socket_close(listener);
    evq_socket_close(refuser);
    evq_address_list_free(&answer_list);
}

EVQ_TEST(failures_come_back_as_codes)
{
    pool_fixture f;
    fixture_init(&f, 2, true);
    REQUIRE(fixture_start(&f));
    static const struct {
        const char *host;
        int status;
    } cases[] = {
        {"noname.example", EVQ_EAI_NONAME},
        {"again.example", EVQ_EAI_AGAIN},
        {"empty.example", EVQ_EAI_NONAME}, /* 0 with no address is no answer */
        {"positive.example", EVQ_EIO},     /* not an EVQ_E* code */
    };
    for (size_t i = 0; i < EVQ_COUNT(cases); i++) {
        resolver_result result;
        REQUIRE(submit_to_pool(f.r, cases[i].host, 80, NULL));
        REQUIRE(collect_one(&f, &result));
        CHECK_ERR(result.status, cases[i].status);
        CHECK_UINT(result.addresses.count, ==, 0);
        results_free(&result, 1);
    }
    fixture_close(&f);
}

EVQ_TEST(bad_input_gets_a_code)
{
    pool_fixture f;
    fixture_init(&f, 1, true);
    resolver *r = NULL;
    resolver_config bad = f.config;
    bad.threads = 0;
    CHECK_ERR(resolver_open(&bad, &r), EVQ_EINVAL);
    bad.threads = RESOLVER_MAX_THREADS + 1;
    CHECK_ERR(resolver_open(&bad, &r), EVQ_EINVAL);
    bad = f.config;
    bad.max_pending = 0;
    CHECK_ERR(resolver_open(&bad, &r), EVQ_EINVAL);
    bad = f.config;
    bad.resolve = NULL;
    CHECK_ERR(resolver_open(&bad, &r), EVQ_EINVAL);
    CHECK_ERR(resolver_open(NULL, &r), EVQ_EINVAL);
    CHECK_ERR(resolver_open(&f.config, NULL), EVQ_EINVAL);
    CHECK(r == NULL);

    REQUIRE(fixture_start(&f));
    resolver_result answer;
    resolver_request *request;
    char long_name[RESOLVER_MAX_HOST + 2];
    memset(long_name, 'a', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    CHECK_ERR(resolver_submit(f.r, NULL, 80, NULL, &answer, &request), EVQ_EINVAL);
    CHECK_ERR(resolver_submit(f.r, "", 80, NULL, &answer, &request), EVQ_EINVAL);
    CHECK_ERR(resolver_submit(f.r, long_name, 80, NULL, &answer, &request), EVQ_EINVAL);
    CHECK_ERR(resolver_submit(f.r, "x", 80, NULL, NULL, &request), EVQ_EINVAL);
    CHECK_ERR(resolver_submit(f.r, "x", 80, NULL, &answer, NULL), EVQ_EINVAL);
    CHECK_ERR(resolver_submit(NULL, "x", 80, NULL, &answer, &request), EVQ_EINVAL);
    CHECK_ERR(resolver_cancel(NULL), EVQ_EINVAL);
    CHECK_UINT(resolver_collect(f.r, NULL, 4), ==, 0);
    CHECK_UINT(resolver_collect(NULL, &answer, 1), ==, 0);
    CHECK_UINT(atomic_load(&f.fake.calls), ==, 0);

    resolver_stats stats;
    resolver_stats_get(f.r, &stats);
    CHECK_UINT(stats.workers, ==, 0); /* nothing went to the pool: no thread to join */
    resolver_shutdown(f.r);
    resolver_shutdown(f.r); /* twice is harmless */
    CHECK_ERR(resolver_submit(f.r, "x", 80, NULL, &answer, &request), EVQ_ECLOSED);
    resolver_close(NULL);
    resolver_shutdown(NULL);
    fixture_close(&f);
}

EVQ_TEST(workers_start_on_the_first_lookup_that_needs_one)
{
    pool_fixture f;
    fixture_init(&f, 3, true);
    REQUIRE(fixture_start(&f));
    resolver_stats stats;
    resolver_stats_get(f.r, &stats);
    CHECK_UINT(stats.workers, ==, 0); /* a program that never resolves pays no thread */
    REQUIRE(submit_to_pool(f.r, "a.example", 80, NULL));
    resolver_stats_get(f.r, &stats);
    CHECK_UINT(stats.workers, ==, 3);
    resolver_result result;
    REQUIRE(collect_one(&f, &result));
    results_free(&result, 1);
    fixture_close(&f);
}

/* ---- the system's resolver, on names that need no network ---- */

static bool is_loopback(const evq_address *address)
{
    struct sockaddr_storage storage = address_sockaddr(address);
    if (storage.ss_family == AF_INET)
        return (ntohl(((struct sockaddr_in *)&storage)->sin_addr.s_addr) >> 24) == 127;
    static const unsigned char loopback6[16] = {[15] = 1};
    return storage.ss_family == AF_INET6 &&
           memcmp(&((struct sockaddr_in6 *)&storage)->sin6_addr, loopback6, 16) == 0;
}

static uint16_t port_of(const evq_address *address)
{
    return address_port(address);
}

EVQ_TEST(the_system_resolver_answers_numeric_addresses_and_localhost)
{
    evq_address_list list = {0};
    REQUIRE_OK(evq_resolve_system("127.0.0.1", 8080, &list, NULL));
    REQUIRE_UINT(list.count, ==, 1);
    CHECK_INT(address_family(&list.items[0]), ==, AF_INET);
    CHECK(is_loopback(&list.items[0]));
    CHECK_UINT(port_of(&list.items[0]), ==, 8080);
    CHECK_UINT(list.items[0].length, ==, sizeof(struct sockaddr_in));
    evq_address_list_free(&list);

    REQUIRE_OK(evq_resolve_system("::1", 443, &list, NULL));
    REQUIRE_UINT(list.count, ==, 1);
    CHECK_INT(address_family(&list.items[0]), ==, AF_INET6);
    CHECK(is_loopback(&list.items[0]));
    CHECK_UINT(port_of(&list.items[0]), ==, 443);
    evq_address_list_free(&list);

    REQUIRE_OK(evq_resolve_system("localhost", 7, &list, NULL));
    CHECK_UINT(list.count, >=, 1);
    for (size_t i = 0; i < list.count; i++) {
        CHECK(is_loopback(&list.items[i]));
        CHECK_UINT(port_of(&list.items[i]), ==, 7);
    }
    evq_test_note("localhost: %zu address(es)", list.count);
    evq_address_list_free(&list);
}

EVQ_TEST(the_system_resolver_runs_on_the_pool)
{
    pool_fixture f;
    fixture_init(&f, RESOLVER_DEFAULT_THREADS, true);
    f.config.resolve = evq_resolve_system;
    f.config.resolve_context = NULL;
    f.config.cache_entries = 16; /* the real clock */
    REQUIRE(fixture_start(&f));
    int owner;
    resolver_result answer, result;
    resolver_request *request;
    REQUIRE(submit_to_pool(f.r, "localhost", 9, &owner));
    REQUIRE(collect_one(&f, &result));
    CHECK(result.owner == &owner);
    CHECK_OK(result.status);
    CHECK_UINT(result.addresses.count, >=, 1);
    results_free(&result, 1);
    /* Asked again: the cache answers, on this thread. */
    CHECK_OK(resolver_submit(f.r, "localhost", 9, &owner, &answer, &request));
    CHECK(request == NULL);
    CHECK_UINT(answer.addresses.count, >=, 1);
    results_free(&answer, 1);
    fixture_close(&f);
}

#ifdef _WIN32
EVQ_TEST_WINDOWS(the_system_resolver_refuses_a_name_that_is_not_utf8)
{
    evq_address_list list = {0};
    CHECK_ERR(evq_resolve_system("bad\xff\xfename", 80, &list, NULL), EVQ_EINVAL);
    CHECK_UINT(list.count, ==, 0);
}
#endif

int main(int argc, char **argv)
{
    static const evq_test_case cases[] = {
        EVQ_CASE(a_thousand_lookups_on_four_workers_all_answered_at_most_four_at_once),
        EVQ_CASE(a_full_queue_says_full_and_does_not_block),
        EVQ_CASE(answers_out_of_order_reach_their_owners),
        EVQ_CASE(several_addresses_come_back_in_order_the_first_refusing),
        EVQ_CASE(failures_come_back_as_codes),
        EVQ_CASE(bad_input_gets_a_code),
        EVQ_CASE(workers_start_on_the_first_lookup_that_needs_one),
        EVQ_CASE(the_system_resolver_answers_numeric_addresses_and_localhost),
        EVQ_CASE(the_system_resolver_runs_on_the_pool),
#ifdef _WIN32
        EVQ_CASE(the_system_resolver_refuses_a_name_that_is_not_utf8),
#endif
    };
    return evq_test_main(argc, argv, cases, EVQ_COUNT(cases));
}

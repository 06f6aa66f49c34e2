/* Tests of the cache in front of the pool, on a fake clock: a fresh answer
 * is given inline with no job and no wake-up, a stale one goes back to the
 * pool, the least recently used name is the one forgotten, "no such name"
 * is kept briefly and "try again" never. */
#include "resolver_test.h"

#include "evq_test.h"

#include <stdatomic.h>
#include <stdio.h>

#define SECOND EVQ_NS_PER_S

/* A pool with a cache on a fake clock. */
struct cached {
    pool_fixture f;
    evq_fake_clock clock;
};

static bool cached_open(struct cached *c, size_t entries, uint64_t max_age, uint64_t negative_age)
{
    fixture_init(&c->f, 2, true);
    c->clock.now = 1000 * SECOND;
    c->f.config.clock = evq_fake_clock_as_clock(&c->clock);
    c->f.config.cache_entries = entries;
    c->f.config.cache_max_age_ns = max_age;
    c->f.config.negative_max_age_ns = negative_age;
    return fixture_start(&c->f);
}

/* Look host up through the pool: submit must queue it, and its result is
 * collected (which puts it in the cache). Returns the result's status. */
static int through_pool(struct cached *c, const char *host, uint16_t port)
{
    resolver_result result;
    if (!submit_to_pool(c->f.r, host, port, NULL) || !collect_one(&c->f, &result))
        return EVQ_EIO;
    int rc = result.status;
    results_free(&result, 1);
    return rc;
}

/* Whether host:port is answered inline (from the cache); the answer's
 * status goes to *status. */
static bool inline_answer(struct cached *c, const char *host, uint16_t port, int *status)
{
    resolver_result answer;
    resolver_request *request;
    int rc = resolver_submit(c->f.r, host, port, NULL, &answer, &request);
    if (rc == EVQ_EINPROGRESS) { /* went to the pool: take it back off */
        resolver_result result;
        if (collect_one(&c->f, &result))
            results_free(&result, 1);
        return false;
    }
    if (status)
        *status = answer.status;
    results_free(&answer, 1);
    return rc == 0 && request == NULL;
}

EVQ_TEST(a_cached_name_is_answered_inline_without_a_job)
{
    struct cached c;
    REQUIRE(cached_open(&c, 8, 10 * SECOND, 0));
    REQUIRE_OK(through_pool(&c, "a.example", 80));
    unsigned notified = waker_count(&c.f.waker);

    resolver_result answer;
    resolver_request *request = (resolver_request *)&answer;
    int owner;
    CHECK_OK(resolver_submit(c.f.r, "a.example", 80, &owner, &answer, &request));
    CHECK(request == NULL);
    CHECK(answer.owner == &owner);
    CHECK_OK(answer.status);
    REQUIRE_UINT(answer.addresses.count, ==, 1);
    evq_address expected = fake_address_for("a.example", 80, 0);
    CHECK(address_equal(&answer.addresses.items[0], &expected));
    results_free(&answer, 1);

    CHECK_UINT(atomic_load(&c.f.fake.calls), ==, 1);   /* no second call */
    CHECK_UINT(waker_count(&c.f.waker), ==, notified); /* no wake-up */
    resolver_stats stats;
    resolver_stats_get(c.f.r, &stats);
    CHECK_UINT(stats.submitted, ==, 1); /* no job */
    CHECK_UINT(stats.cache_hits, ==, 1);
    CHECK_UINT(stats.live, ==, 0);

    /* The key is the name and the port: another port is another question. */
    CHECK_OK(through_pool(&c, "a.example", 81));
    CHECK_UINT(atomic_load(&c.f.fake.calls), ==, 2);
    fixture_close(&c.f);
}

EVQ_TEST(an_expired_entry_goes_back_to_the_pool)
{
    struct cached c;
    REQUIRE(cached_open(&c, 8, 10 * SECOND, 0));
    REQUIRE_OK(through_pool(&c, "b.example", 80));
    evq_fake_clock_advance_ns(&c.clock, 10 * SECOND - 1);
    CHECK(inline_answer(&c, "b.example", 80, NULL)); /* 1 ns before its age is up */
    CHECK_UINT(atomic_load(&c.f.fake.calls), ==, 1);
    evq_fake_clock_advance_ns(&c.clock, 1);
    CHECK_OK(through_pool(&c, "b.example", 80)); /* exactly at its age: stale */
    CHECK_UINT(atomic_load(&c.f.fake.calls), ==, 2);
    CHECK(inline_answer(&c, "b.example", 80, NULL)); /* the new answer is fresh */
    CHECK_UINT(atomic_load(&c.f.fake.calls), ==, 2);
    fixture_close(&c.f);
}

EVQ_TEST(a_full_cache_forgets_the_least_recently_used_name)
{
    struct cached c;
    REQUIRE(cached_open(&c, 3, 60 * SECOND, 0));
    REQUIRE_OK(through_pool(&c, "a.example", 80));
    REQUIRE_OK(through_pool(&c, "b.example", 80));
    REQUIRE_OK(through_pool(&c, "c.example", 80));
    CHECK(inline_answer(&c, "a.example", 80, NULL)); /* a: used last; b: longest ago */
    REQUIRE_OK(through_pool(&c, "d.example", 80));   /* full: one must go */
    resolver_stats stats;
    resolver_stats_get(c.f.r, &stats);
    CHECK_UINT(stats.cache_entries, ==, 3);
    /* Asked in an order that leaves the recency of the survivors as it is
     * for the ones still to be asked. */
    CHECK(inline_answer(&c, "c.example", 80, NULL));
    CHECK(inline_answer(&c, "a.example", 80, NULL)); /* inserted first, but used since */
    CHECK(inline_answer(&c, "d.example", 80, NULL));
    CHECK(!inline_answer(&c, "b.example", 80, NULL)); /* the one forgotten */
    CHECK_UINT(atomic_load(&c.f.fake.calls), ==, 5);
    fixture_close(&c.f);
}

EVQ_TEST(no_such_name_is_kept_briefly_and_try_again_is_never_kept)
{
    struct cached c;
    REQUIRE(cached_open(&c, 8, 60 * SECOND, 2 * SECOND));
    CHECK_ERR(through_pool(&c, "noname.example", 80), EVQ_EAI_NONAME);
    int status = 0;
    CHECK(inline_answer(&c, "noname.example", 80, &status));
    CHECK_ERR(status, EVQ_EAI_NONAME);
    CHECK_UINT(atomic_load(&c.f.fake.calls), ==, 1);
    evq_fake_clock_advance_ns(&c.clock, 2 * SECOND); /* its shorter age is up */
    CHECK_ERR(through_pool(&c, "noname.example", 80), EVQ_EAI_NONAME);
    CHECK_UINT(atomic_load(&c.f.fake.calls), ==, 2);

    /* "Try again" is not an answer: the next lookup asks again. */
    CHECK_ERR(through_pool(&c, "again.example", 80), EVQ_EAI_AGAIN);
    CHECK_ERR(through_pool(&c, "again.example", 80), EVQ_EAI_AGAIN);
    CHECK_UINT(atomic_load(&c.f.fake.calls), ==, 4);
    fixture_close(&c.f);
}

EVQ_TEST(without_negative_caching_no_such_name_asks_again)
{
    struct cached c;
    REQUIRE(cached_open(&c, 8, 60 * SECOND, 0));
    CHECK_ERR(through_pool(&c, "noname.example", 80), EVQ_EAI_NONAME);
    CHECK_ERR(through_pool(&c, "noname.example", 80), EVQ_EAI_NONAME);
    CHECK_UINT(atomic_load(&c.f.fake.calls), ==, 2);
    fixture_close(&c.f);
}

EVQ_TEST(with_no_cache_every_lookup_goes_to_the_pool)
{
    struct cached c;
    REQUIRE(cached_open(&c, 0, 60 * SECOND, 60 * SECOND));
    for (int i = 0; i < 3; i++)
        CHECK_OK(through_pool(&c, "a.example", 80));
    CHECK_UINT(atomic_load(&c.f.fake.calls), ==, 3);
    fixture_close(&c.f);
}

EVQ_TEST(an_inline_answer_is_a_copy_the_caller_owns)
{
    struct cached c;
    REQUIRE(cached_open(&c, 8, 60 * SECOND, 0));
    c.f.fake.answer_count = 3;
    REQUIRE_OK(through_pool(&c, "three.example", 80));
    for (int round = 0; round < 2; round++) {
        resolver_result answer;
        resolver_request *request;
        REQUIRE_OK(resolver_submit(c.f.r, "three.example", 80, NULL, &answer, &request));
        REQUIRE_UINT(answer.addresses.count, ==, 3);
        for (unsigned i = 0; i < 3; i++) {
            evq_address expected = fake_address_for("three.example", 80, i);
            CHECK(address_equal(&answer.addresses.items[i], &expected));
        }
        /* Scribble on it and free it: the cache's own copy is untouched
         * (and freeing the cache's memory here would be a double free). */
        answer.addresses.items[0].length = 0;
        results_free(&answer, 1);
    }
    fixture_close(&c.f);
}

int main(int argc, char **argv)
{
    static const evq_test_case cases[] = {
        EVQ_CASE(a_cached_name_is_answered_inline_without_a_job),
        EVQ_CASE(an_expired_entry_goes_back_to_the_pool),
        EVQ_CASE(a_full_cache_forgets_the_least_recently_used_name),
        EVQ_CASE(no_such_name_is_kept_briefly_and_try_again_is_never_kept),
        EVQ_CASE(without_negative_caching_no_such_name_asks_again),
        EVQ_CASE(with_no_cache_every_lookup_goes_to_the_pool),
        EVQ_CASE(an_inline_answer_is_a_copy_the_caller_owns),
    };
    return evq_test_main(argc, argv, cases, EVQ_COUNT(cases));
}

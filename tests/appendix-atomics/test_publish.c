/* test_publish.c - a result published with release and read with acquire is
 * seen whole, by every reader, for every slot. (On x86 the hardware keeps
 * stores in order anyway, so the field checks catch a weakened order only on
 * Arm, e.g. the macOS CI job; ThreadSanitizer catches it everywhere, and the
 * tsan preset runs this test.) */
#include "atomics_test.h"
#include "evq_atomics.h"

#include <stdlib.h>

#define READERS 3

/* A result whose every field follows from its id, so a reader can tell a
 * complete one from a torn or stale one. */
static evq_lookup_result make_result(uint64_t id)
{
    evq_lookup_result r;
    r.request_id = id;
    r.status = (id % 7 == 0) ? EVQ_EAI_NONAME : 0;
    r.address_count = (uint32_t)(id % (EVQ_LOOKUP_MAX_ADDRESSES + 1));
    for (uint32_t i = 0; i < EVQ_LOOKUP_MAX_ADDRESSES; i++)
        r.addresses[i] = (uint32_t)(id * 2654435761u) ^ (i << 24); /* id-dependent */
    return r;
}

static bool result_is(const evq_lookup_result *r, uint64_t id)
{
    evq_lookup_result want = make_result(id);
    if (r->request_id != want.request_id || r->status != want.status ||
        r->address_count != want.address_count)
        return false;
    for (uint32_t i = 0; i < EVQ_LOOKUP_MAX_ADDRESSES; i++)
        if (r->addresses[i] != want.addresses[i])
            return false;
    return true;
}

struct shared {
    team team;
    evq_result_slot *slots;
    size_t count;
};

struct reader {
    struct shared *shared;
    size_t whole; /* results that were complete and right */
    size_t wrong; /* torn, stale or mixed up */
    bool timed_out;
};

static void publish_all(void *arg)
{
    struct shared *s = arg;
    team_wait_for_go(&s->team);
    for (size_t i = 0; i < s->count; i++) {
        evq_lookup_result r = make_result(i);
        evq_result_slot_publish(&s->slots[i], &r);
    }
}

static void read_all(void *arg)
{
    struct reader *reader = arg;
    struct shared *s = reader->shared;
    team_wait_for_go(&s->team);
    uint64_t start = evq_clock_now_ns();
    for (size_t i = 0; i < s->count; i++) {
        evq_lookup_result r;
        /* Wait for this slot: readers run right behind the publisher. */
        while (!evq_result_slot_poll(&s->slots[i], &r)) {
            if (past_wait_limit(start)) {
                reader->timed_out = true;
                return;
            }
            evq_thread_yield();
        }
        if (result_is(&r, i))
            reader->whole++;
        else
            reader->wrong++;
    }
}

EVQ_TEST(poll_sees_nothing_before_publish)
{
    evq_result_slot slot;
    evq_result_slot_init(&slot);
    evq_lookup_result r = make_result(99);
    CHECK(!evq_result_slot_poll(&slot, &r));
    CHECK_UINT(r.request_id, ==, 99); /* untouched when nothing is there */
    evq_lookup_result published = make_result(5);
    evq_result_slot_publish(&slot, &published);
    REQUIRE(evq_result_slot_poll(&slot, &r));
    CHECK(result_is(&r, 5));
    /* Still there for a second look. */
    REQUIRE(evq_result_slot_poll(&slot, &r));
    CHECK(result_is(&r, 5));
}

EVQ_TEST(readers_see_every_result_whole)
{
    struct shared s;
    s.count = SCALED(200000);
    s.slots = malloc(s.count * sizeof *s.slots);
    REQUIRE(s.slots);
    for (size_t i = 0; i < s.count; i++)
        evq_result_slot_init(&s.slots[i]);
    team_init(&s.team);
    struct reader readers[READERS] = {0};
    for (size_t i = 0; i < READERS; i++) {
        readers[i].shared = &s;
        if (!CHECK_OK(team_start(&s.team, read_all, &readers[i])))
            break;
    }
    CHECK_OK(team_start(&s.team, publish_all, &s));
    team_join(&s.team);
    for (size_t i = 0; i < READERS; i++) {
        CHECK(!readers[i].timed_out);
        CHECK_UINT(readers[i].wrong, ==, 0);
        CHECK_UINT(readers[i].whole, ==, s.count);
    }
    free(s.slots);
}

int main(int argc, char **argv)
{
    static const evq_test_case cases[] = {
        EVQ_CASE(poll_sees_nothing_before_publish),
        EVQ_CASE(readers_see_every_result_whole),
    };
    return evq_test_main(argc, argv, cases, EVQ_COUNT(cases));
}

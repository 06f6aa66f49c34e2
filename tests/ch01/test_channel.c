/* Tests of the bounded channel: full means EVQ_EFULL, empty means
 * EVQ_EWOULDBLOCK, nothing is lost, and many producers at once (run these
 * under the tsan preset) lose nothing either. */
#include "evq_channel.h"
#include "evq_clock.h"
#include "evq_test.h"

static evq_message make(uint32_t sender, uint64_t sequence, const char *text)
{
    evq_message message = {0};
    message.sender = sender;
    message.sequence = sequence;
    evq_message_set_text(&message, text, strlen(text));
    return message;
}

EVQ_TEST(full_channel_says_full_and_loses_nothing)
{
    evq_channel channel;
    REQUIRE_OK(evq_channel_init(&channel, 4));
    for (uint64_t i = 0; i < 4; i++) {
        evq_message m = make(0, i, "fits");
        CHECK_OK(evq_channel_try_send(&channel, &m));
    }
    evq_message extra = make(0, 99, "no room");
    CHECK_ERR(evq_channel_try_send(&channel, &extra), EVQ_EFULL);
    CHECK_ERR(evq_channel_try_send(&channel, &extra), EVQ_EFULL); /* still, and still no block */
    CHECK_UINT(evq_channel_count(&channel), ==, 4);

    evq_message got;
    for (uint64_t i = 0; i < 4; i++) {
        REQUIRE_OK(evq_channel_try_recv(&channel, &got));
        CHECK_UINT(got.sequence, ==, i);
        CHECK_STR(got.text, ==, "fits");
    }
    CHECK_ERR(evq_channel_try_recv(&channel, &got), EVQ_EWOULDBLOCK);
    CHECK_OK(evq_channel_try_send(&channel, &extra)); /* room again */
    REQUIRE_OK(evq_channel_try_recv(&channel, &got));
    CHECK_UINT(got.sequence, ==, 99);
    evq_channel_destroy(&channel);
}

EVQ_TEST(empty_channel_would_block_and_does_not)
{
    evq_channel channel;
    REQUIRE_OK(evq_channel_init(&channel, 2));
    evq_message got;
    /* Called many times on an empty channel, try_recv answers every time;
     * if it blocked, this case would never finish. */
    for (int i = 0; i < 1000; i++)
        REQUIRE_ERR(evq_channel_try_recv(&channel, &got), EVQ_EWOULDBLOCK);
    evq_channel_destroy(&channel);
}

EVQ_TEST(fifo_across_the_end_of_the_ring)
{
    evq_channel channel;
    REQUIRE_OK(evq_channel_init(&channel, 3));
    uint64_t sent = 0, received = 0;
    evq_message got;
    for (int round = 0; round < 50; round++) {
        evq_message m = make(1, sent, "x");
        while (evq_channel_try_send(&channel, &m) == 0)
            m.sequence = ++sent;
        REQUIRE_OK(evq_channel_try_recv(&channel, &got));
        REQUIRE_UINT(got.sequence, ==, received++);
        REQUIRE_OK(evq_channel_try_recv(&channel, &got));
        REQUIRE_UINT(got.sequence, ==, received++);
    }
    while (evq_channel_try_recv(&channel, &got) == 0)
        REQUIRE_UINT(got.sequence, ==, received++);
    CHECK_UINT(received, ==, sent);
    CHECK_UINT(sent, >, 100);
    evq_channel_destroy(&channel);
}

EVQ_TEST(rejects_bad_input_with_a_code)
{
    evq_channel channel;
    CHECK_ERR(evq_channel_init(&channel, 0), EVQ_EINVAL);
    evq_channel_destroy(&channel); /* safe after a failed init */
    evq_message m = {0};
    char text[EVQ_MESSAGE_TEXT_MAX] = {0};
    memset(text, 'y', sizeof text);
    CHECK_ERR(evq_message_set_text(&m, text, sizeof text), EVQ_EMSGSIZE);
    CHECK_STR(m.text, ==, ""); /* unchanged */
    CHECK_OK(evq_message_set_text(&m, text, sizeof text - 1));
    CHECK_UINT(strlen(m.text), ==, sizeof text - 1);
}

/* ---- waiting ------------------------------------------------------------------------ */

EVQ_TEST(wait_times_out_when_nothing_comes)
{
    evq_channel channel;
    REQUIRE_OK(evq_channel_init(&channel, 2));
    CHECK_ERR(evq_channel_wait(&channel, 0), EVQ_ETIMEDOUT);
    uint64_t start = evq_clock_now_ns();
    CHECK_ERR(evq_channel_wait(&channel, 20 * EVQ_NS_PER_MS), EVQ_ETIMEDOUT);
    /* Never early: it waits at least what it was asked to. */
    CHECK_UINT(evq_clock_now_ns() - start, >=, 20 * EVQ_NS_PER_MS);
    evq_channel_destroy(&channel);
}

EVQ_TEST(wait_returns_at_once_when_a_message_is_there)
{
    evq_channel channel;
    REQUIRE_OK(evq_channel_init(&channel, 2));
    evq_message m = make(0, 0, "here");
    REQUIRE_OK(evq_channel_try_send(&channel, &m));
    /* An hour's timeout: if this waited, the test would time out. */
    CHECK_OK(evq_channel_wait(&channel, 3600 * EVQ_NS_PER_S));
    CHECK_UINT(evq_channel_count(&channel), ==, 1); /* waiting takes nothing */
    evq_channel_destroy(&channel);
}

struct later {
    evq_channel *channel;
    bool wake_only;
};

static void send_or_wake_later(void *arg)
{
    struct later *later = arg;
    evq_sleep_ms(20);
    if (later->wake_only) {
        evq_channel_wake(later->channel);
    } else {
        evq_message m = make(3, 7, "late");
        evq_channel_try_send(later->channel, &m);
    }
}

EVQ_TEST(wait_wakes_up_for_a_message_from_another_thread)
{
    evq_channel channel;
    REQUIRE_OK(evq_channel_init(&channel, 2));
    struct later later = {&channel, false};
    evq_thread thread;
    REQUIRE_OK(evq_thread_start(&thread, send_or_wake_later, &later));
    CHECK_OK(evq_channel_wait(&channel, 3600 * EVQ_NS_PER_S));
    evq_message got;
    CHECK_OK(evq_channel_try_recv(&channel, &got));
    CHECK_STR(got.text, ==, "late");
    evq_thread_join(&thread);
    evq_channel_destroy(&channel);
}

EVQ_TEST(wake_ends_a_wait_with_nothing_to_receive)
{
    evq_channel channel;
    REQUIRE_OK(evq_channel_init(&channel, 2));
    struct later later = {&channel, true};
    evq_thread thread;
    REQUIRE_OK(evq_thread_start(&thread, send_or_wake_later, &later));
    CHECK_OK(evq_channel_wait(&channel, 3600 * EVQ_NS_PER_S));
    evq_message got;
    CHECK_ERR(evq_channel_try_recv(&channel, &got), EVQ_EWOULDBLOCK);
    evq_thread_join(&thread);
    /* The wake was consumed: the next wait sleeps again. */
    CHECK_ERR(evq_channel_wait(&channel, 1 * EVQ_NS_PER_MS), EVQ_ETIMEDOUT);
    evq_channel_destroy(&channel);
}

EVQ_TEST(wake_before_the_wait_is_not_lost)
{
    evq_channel channel;
    REQUIRE_OK(evq_channel_init(&channel, 2));
    evq_channel_wake(&channel); /* nobody is waiting yet */
    CHECK_OK(evq_channel_wait(&channel, 3600 * EVQ_NS_PER_S));
    evq_channel_destroy(&channel);
}

/* ---- many producers ----------------------------------------------------------------- */

enum { PRODUCERS = 4, PER_PRODUCER = 20000, SMALL_CAPACITY = 16 };

struct producer {
    evq_channel *channel;
    uint32_t sender;
    uint64_t full; /* how often the channel said EVQ_EFULL */
};

static void produce(void *arg)
{
    struct producer *p = arg;
    for (uint64_t i = 0; i < PER_PRODUCER; i++) {
        evq_message m = make(p->sender, i, "payload");
        while (evq_channel_try_send(p->channel, &m) == EVQ_EFULL) {
            p->full++;
            evq_thread_yield();
        }
    }
}

static uint64_t checksum_of(uint32_t sender, uint64_t sequence)
{
    return (uint64_t)(sender + 1) * 1000003u + sequence * 7919u;
}

EVQ_TEST(many_producers_lose_nothing)
{
    evq_channel channel;
    REQUIRE_OK(evq_channel_init(&channel, SMALL_CAPACITY)); /* small: it fills up often */
    struct producer producers[PRODUCERS];
    evq_thread threads[PRODUCERS];
    uint64_t expected_sum = 0;
    for (uint32_t i = 0; i < PRODUCERS; i++) {
        producers[i] = (struct producer){&channel, i, 0};
        for (uint64_t s = 0; s < PER_PRODUCER; s++)
            expected_sum += checksum_of(i, s);
    }
    for (int i = 0; i < PRODUCERS; i++)
        REQUIRE_OK(evq_thread_start(&threads[i], produce, &producers[i]));

    /* The consumer, as the loop does it: take what is there, then wait. */
    uint64_t count = 0, sum = 0, next[PRODUCERS] = {0};
    bool in_order = true, known_senders = true;
    evq_message got;
    while (count < (uint64_t)PRODUCERS * PER_PRODUCER) {
        while (evq_channel_try_recv(&channel, &got) == 0) {
            count++;
            sum += checksum_of(got.sender, got.sequence);
            if (got.sender >= PRODUCERS) {
                known_senders = false;
                continue;
            }
            in_order = in_order && got.sequence == next[got.sender];
            next[got.sender] = got.sequence + 1;
        }
        evq_channel_wait(&channel, 100 * EVQ_NS_PER_MS);
    }
    uint64_t full = 0;
    for (int i = 0; i < PRODUCERS; i++) {
        evq_thread_join(&threads[i]);
        full += producers[i].full;
    }
    CHECK_UINT(count, ==, (uint64_t)PRODUCERS * PER_PRODUCER);
    CHECK_UINT(sum, ==, expected_sum);
    CHECK(known_senders);
    CHECK(in_order); /* each producer's messages arrive in the order it sent them */
    CHECK_ERR(evq_channel_try_recv(&channel, &got), EVQ_EWOULDBLOCK); /* and no extras */
    evq_test_note("the channel was full %llu times", (unsigned long long)full);
    evq_channel_destroy(&channel);
}

int main(int argc, char **argv)
{
    static const evq_test_case cases[] = {
        EVQ_CASE(full_channel_says_full_and_loses_nothing),
        EVQ_CASE(empty_channel_would_block_and_does_not),
        EVQ_CASE(fifo_across_the_end_of_the_ring),
        EVQ_CASE(rejects_bad_input_with_a_code),
        EVQ_CASE(wait_times_out_when_nothing_comes),
        EVQ_CASE(wait_returns_at_once_when_a_message_is_there),
        EVQ_CASE(wait_wakes_up_for_a_message_from_another_thread),
        EVQ_CASE(wake_ends_a_wait_with_nothing_to_receive),
        EVQ_CASE(wake_before_the_wait_is_not_lost),
        EVQ_CASE(many_producers_lose_nothing),
    };
    return evq_test_main(argc, argv, cases, EVQ_COUNT(cases));
}

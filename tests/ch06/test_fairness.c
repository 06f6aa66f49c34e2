/* test_fairness.c - chapter 3: the library's ready list is first in, first
 * out, and shares the caller's capacity with the kernel's events. A
 * stream whose bytes are already buffered is reported from the library's
 * own list; if that list were last in, first out, or served only with the
 * room the kernel left, some streams would never be reported again. The
 * same rule on every backend (IOCP too: it reports to the portable list).
 */
#include "ch06_test.h"

enum { STREAMS = 3, WAITS = 600, BUFFERED = 1000 };

struct fixture {
    evq_poll *poll;
    evq_tcp *stream[STREAMS];
    evq_socket peer[STREAMS];
    unsigned events[STREAMS]; /* events per stream (token = index) */
};

static bool open_fixture(struct fixture *f)
{
    memset(f, 0, sizeof *f);
    if (!CHECK_OK(evq_poll_open(&f->poll)))
        return false;
    for (int i = 0; i < STREAMS; i++) {
        if (!CHECK_OK(ch06_pair(f->poll, &f->stream[i], &f->peer[i])))
            return false;
    }
    return true;
}

static void close_fixture(struct fixture *f)
{
    for (int i = 0; i < STREAMS; i++) {
        evq_tcp_close(f->stream[i]);
        evq_socket_close(f->peer[i]);
    }
    evq_poll_close(f->poll);
}

/* One wait of the loop under test: every event is counted, a READABLE one
 * is answered by reading one byte (the rest stays buffered), and the
 * stream is re-armed for what it had. Returns the number of events. */
static size_t one_turn(struct fixture *f, size_t capacity, const unsigned *interest)
{
    evq_event events[4];
    size_t n = 0;
    int rc = evq_poll_wait(f->poll, events, capacity, 1000, &n);
    if (rc != 0) {
        CHECK_OK(rc);
        return 0;
    }
    CHECK_UINT(n, <=, capacity);
    for (size_t i = 0; i < n; i++) {
        evq_token token = events[i].token;
        if (!CHECK_UINT(token, <, STREAMS))
            return n;
        f->events[token]++;
        if (events[i].ready & EVQ_READABLE) {
            char byte;
            size_t got = 0;
            CHECK_OK(evq_tcp_read(f->stream[token], &byte, 1, &got));
        }
        CHECK_OK(evq_reregister(f->poll, f->stream[token], token, interest[token]));
    }
    return n;
}

static void note_counts(const struct fixture *f, size_t capacity)
{
    evq_test_note("capacity %zu, %d waits: %u / %u / %u events", capacity, WAITS, f->events[0],
                  f->events[1], f->events[2]);
}

/* ANCHOR: fair_test */
/* Three streams with 1000 bytes each, a reader that takes one byte per
 * event and re-arms: after the first events every stream is ready in its
 * own buffer, and only the ready list reports them. Over 600 waits each
 * gets its share, give or take one. A last-in-first-out list gives the
 * stream re-armed last every event (measured with capacity 1: 1 / 1 /
 * 598); serving the list only with the room the kernel leaves does the
 * same as soon as the kernel has something. */
static void buffered_streams_share(size_t capacity)
{
    struct fixture f;
    if (!open_fixture(&f))
        return;
    static const unsigned readable[STREAMS] = {EVQ_READABLE, EVQ_READABLE, EVQ_READABLE};
    for (int i = 0; i < STREAMS; i++) {
        REQUIRE_OK(ch06_send_pattern(f.peer[i], BUFFERED, 0));
        REQUIRE_OK(evq_register(f.poll, f.stream[i], (evq_token)i, EVQ_READABLE));
    }
    size_t total = 0;
    for (int turn = 0; turn < WAITS; turn++)
        total += one_turn(&f, capacity, readable);
    note_counts(&f, capacity);
    CHECK_UINT(total, ==, WAITS * capacity); /* something was always ready */
    for (int i = 0; i < STREAMS; i++) {
        CHECK_UINT(f.events[i], >=, total / STREAMS - 1);
        CHECK_UINT(f.events[i], <=, total / STREAMS + 1);
    }
    close_fixture(&f);
}
/* ANCHOR_END: fair_test */

EVQ_TEST(fair_share_of_three_buffered_streams_capacity_one)
{
    buffered_streams_share(1);
}

EVQ_TEST(fair_share_of_three_buffered_streams_capacity_two)
{
    buffered_streams_share(2);
}

/* Stream 0 has bytes in its buffer (the ready list reports it); streams 1
 * and 2 are armed WRITABLE, which the kernel reports on every wait. The
 * list must still get its turn: a loop that served the kernel first would
 * never report stream 0 again. Every stream gets at least a fifth of the
 * events (with capacity 1: half for the list, a quarter each for the two
 * the kernel reports). */
static void buffered_stream_beside_a_busy_kernel(size_t capacity)
{
    struct fixture f;
    if (!open_fixture(&f))
        return;
    static const unsigned interest[STREAMS] = {EVQ_READABLE, EVQ_WRITABLE, EVQ_WRITABLE};
    REQUIRE_OK(ch06_send_pattern(f.peer[0], BUFFERED, 0));
    REQUIRE_OK(evq_register(f.poll, f.stream[0], 0, EVQ_READABLE));
    evq_event event;
    REQUIRE(ch06_wait_one(f.poll, &event, 5000)); /* the kernel's: the bytes arrive */
    char byte;
    size_t got = 0;
    REQUIRE_OK(evq_tcp_read(f.stream[0], &byte, 1, &got)); /* the rest is buffered */
    REQUIRE_OK(evq_reregister(f.poll, f.stream[0], 0, EVQ_READABLE));
    for (int i = 1; i < STREAMS; i++)
        REQUIRE_OK(evq_register(f.poll, f.stream[i], (evq_token)i, EVQ_WRITABLE));
    size_t total = 0;
    for (int turn = 0; turn < WAITS; turn++)
        total += one_turn(&f, capacity, interest);
    note_counts(&f, capacity);
    CHECK_UINT(total, ==, WAITS * capacity);
    for (int i = 0; i < STREAMS; i++)
        CHECK_UINT(f.events[i], >=, total / 5);
    close_fixture(&f);
}

EVQ_TEST(buffered_stream_served_while_the_kernel_reports_others_capacity_one)
{
    buffered_stream_beside_a_busy_kernel(1);
}

EVQ_TEST(buffered_stream_served_while_the_kernel_reports_others_capacity_two)
{
    buffered_stream_beside_a_busy_kernel(2);
}

int main(int argc, char **argv)
{
    static const evq_test_case cases[] = {
        EVQ_CASE(fair_share_of_three_buffered_streams_capacity_one),
        EVQ_CASE(fair_share_of_three_buffered_streams_capacity_two),
        EVQ_CASE(buffered_stream_served_while_the_kernel_reports_others_capacity_one),
        EVQ_CASE(buffered_stream_served_while_the_kernel_reports_others_capacity_two),
    };
    return evq_test_main(argc, argv, cases, EVQ_COUNT(cases));
}

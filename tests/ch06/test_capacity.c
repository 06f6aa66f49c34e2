/* test_capacity.c - chapter 3: a wait never writes past the caller's array,
 * when the events come from two places at once: the kernel, and the
 * library's own list of streams whose unseen bytes are already buffered.
 *
 * The kernel is never offered more room than the caller has; the buffered
 * streams must get only what the kernel left of it. A wait that hands the
 * buffered streams the whole capacity again writes past the array - which
 * no check of `n` sees, only the entries past it.
 */
#include "ch06_test.h"

enum {
    STREAMS = 6,  /* each ready in its buffer and in the kernel at once */
    ARRAY = 8,    /* entries the test owns; the wait is told fewer */
    INITIAL = 64, /* bytes each peer sends first */
    ROUNDS = 40,  /* waits per capacity */
};
#define GUARD_TOKEN UINT64_C(0xDEADBEEFCAFEF00D)
#define GUARD_READY UINT32_C(0xA5A5A5A5)

static void guard_fill(evq_event *events)
{
    for (size_t i = 0; i < ARRAY; i++) {
        events[i].token = GUARD_TOKEN;
        events[i].ready = GUARD_READY;
    }
}

/* Entries [capacity, ARRAY) are as guard_fill left them. */
static bool guards_intact(const evq_event *events, size_t capacity)
{
    for (size_t i = capacity; i < ARRAY; i++) {
        if (events[i].token != GUARD_TOKEN || events[i].ready != GUARD_READY) {
            evq_test_fail(__FILE__, __LINE__,
                          "capacity %zu: entry %zu past it was written (token %llu, ready 0x%x)",
                          capacity, i, (unsigned long long)events[i].token,
                          (unsigned)events[i].ready);
            return false;
        }
    }
    return true;
}

/* Streams with unread bytes in their buffers (on the ready list) and more
 * bytes arriving in their sockets (kernel events), read one byte per event
 * and re-armed at once: every wait has more ready than it has room for, from
 * both sources. Capacities 1, 2 and 3 of an array of 8: after every wait the
 * entries past the capacity are untouched and n <= capacity. */
EVQ_TEST(guard_entries_past_the_capacity_stay_untouched)
{
    evq_poll *poll;
    REQUIRE_OK(evq_poll_open(&poll));
    evq_tcp *streams[STREAMS];
    evq_socket peers[STREAMS];
    int made = 0;
    for (; made < STREAMS; made++) {
        if (ch06_pair(poll, &streams[made], &peers[made]) != 0)
            break;
    }
    REQUIRE_INT(made, ==, STREAMS);
    unsigned char initial[INITIAL];
    memset(initial, 'a', sizeof initial);
    for (int i = 0; i < STREAMS; i++) {
        REQUIRE_OK(evq_register(poll, streams[i], (evq_token)i, EVQ_READABLE));
        REQUIRE_OK(evq_net_send_all(peers[i], initial, sizeof initial));
    }
    evq_sleep_ms(20); /* the bytes are in the sockets (likely; not relied on) */

    uint64_t events_seen = 0;
    for (size_t capacity = 1; capacity <= 3; capacity++) {
        for (int round = 0; round < ROUNDS; round++) {
            evq_event events[ARRAY];
            guard_fill(events);
            size_t n = 99;
            REQUIRE_OK(evq_poll_wait(poll, events, capacity, 1000, &n));
            if (!guards_intact(events, capacity))
                return;
            REQUIRE_UINT(n, <=, capacity);
            for (size_t e = 0; e < n; e++) {
                REQUIRE_UINT(events[e].token, <, STREAMS);
                evq_tcp *stream = streams[events[e].token];
                char byte;
                size_t got = 0;
                int rc = evq_tcp_read(stream, &byte, 1, &got);
                /* One byte, and the rest stays buffered and unseen: the
                 * re-arm puts the stream on the ready list at once. */
                if (rc != EVQ_EWOULDBLOCK)
                    REQUIRE_OK(rc);
                REQUIRE_OK(evq_reregister(poll, stream, events[e].token, EVQ_READABLE));
                /* And more in the kernel: the stream is ready there too. */
                REQUIRE_OK(evq_net_send_all(peers[events[e].token], "b", 1));
                events_seen++;
            }
        }
    }
    /* Nothing above ran dry: the waits did hand over events. */
    CHECK_UINT(events_seen, >=, ROUNDS);
    for (int i = 0; i < STREAMS; i++) {
        evq_tcp_close(streams[i]);
        evq_socket_close(peers[i]);
    }
    evq_poll_close(poll);
}

int main(int argc, char **argv)
{
    static const evq_test_case cases[] = {
        EVQ_CASE(guard_entries_past_the_capacity_stay_untouched),
    };
    return evq_test_main(argc, argv, cases, EVQ_COUNT(cases));
}

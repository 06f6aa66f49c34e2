/* test_edge.c - chapter 5: the kernel says each change once. The queue
 * drains the socket itself, remembers what it could not act on (a fill
 * stopped by the turn's budget or at read_max, an edge that came while the
 * caller was not armed), serves every stream in turn with a budget, and
 * makes no registration call per event. Each case counts the kernel's
 * events for a stream (evq_tcp_stats.kernel_events: epoll and kqueue edges,
 * IOCP completions) or the queue's kernel calls (evq_poll_get_kernel_stats).
 */
#include "ch06_test.h"

#include <stdatomic.h>
#include <stdlib.h>

static uint64_t kernel_events(const evq_tcp *stream)
{
    return ch06_stats(stream).kernel_events;
}

/* Kernel events one edge of a stream's socket makes: one, or on kqueue two
 * - on Linux's providers (the emulation, libkqueue) its write knote fires
 * with each edge too, since epoll reports the socket's whole state with it.
 * FreeBSD fires the read knote alone. */
static size_t events_per_edge(void)
{
    return strcmp(evq_backend(), "kqueue") == 0 ? 2 : 1;
}

static bool completion_backend(void)
{
    return strcmp(evq_backend(), "iocp") == 0;
}

/* Limits that make a fill stop long before the socket is empty: a small
 * buffer and a smaller budget. */
static evq_tcp_limits small_turns(size_t read_max, size_t budget)
{
    evq_tcp_limits limits = ch06_limits(1024, read_max, 1 << 20, 1 << 18);
    limits.turn_budget = budget;
    return limits;
}

/* Read at most one byte per event, re-arming after each, until `total`
 * bytes have come: each must be the pattern at its place. Returns the
 * number of events (0 on a failure). */
static size_t one_byte_per_event(evq_poll *poll, evq_tcp *stream, size_t total)
{
    size_t got = 0, events = 0;
    while (got < total) {
        evq_event event;
        if (!CHECK(ch06_wait_one(poll, &event, 5000)))
            return 0;
        events++;
        unsigned char byte;
        size_t n = 0;
        /* READABLE is only ever told for bytes that are here. */
        if (!CHECK_OK(evq_tcp_read(stream, &byte, 1, &n)) || !CHECK_UINT(n, ==, 1) ||
            !CHECK_UINT(byte, ==, ch06_pattern(got)))
            return 0;
        got++;
        if (!CHECK_OK(evq_reregister(poll, stream, 1, EVQ_READABLE)))
            return 0;
    }
    return events;
}

/* ANCHOR: drain_test */
/* A burst that is all in the socket before the reader starts (32 KiB: well
 * inside loopback's first window), read one byte per event through a 4 KiB
 * buffer with a 1 KiB budget: some 32 fills, each stopped by the budget or
 * the buffer, and one kernel edge for all of them - the first. The kernel
 * will not say "readable" again (nothing new arrives), so every later fill
 * happens because the queue remembered that its last one stopped early.
 * The version that forgets (takes a stopped fill for an empty socket)
 * delivers the first 1 KiB and then waits for an edge that never comes. */
EVQ_TEST(a_burst_read_one_byte_per_event_needs_no_edge_after_the_first)
{
    enum { BURST = 32 * 1024 };
    evq_poll *poll;
    evq_tcp *stream;
    evq_socket peer;
    REQUIRE_OK(evq_poll_open(&poll));
    REQUIRE_OK(ch06_pair(poll, &stream, &peer));
    evq_tcp_limits limits = small_turns(4096, 1024);
    REQUIRE_OK(evq_tcp_set_limits(stream, &limits));
    uint64_t before = kernel_events(stream);
    REQUIRE_OK(ch06_send_pattern(peer, BURST, 0));
    evq_sleep_ms(20); /* loopback: every byte lands in the receive queue */
    REQUIRE_OK(evq_register(poll, stream, 1, EVQ_READABLE));
    size_t events = one_byte_per_event(poll, stream, BURST);
    CHECK_UINT(events, ==, BURST);
    CHECK_UINT(kernel_events(stream) - before, >=, 1);
    CHECK_UINT(kernel_events(stream) - before, <=, events_per_edge()); /* the first edge only */
    CHECK_UINT(ch06_stats(stream).receive_calls, >=, BURST / 1024);
    evq_tcp_close(stream);
    evq_socket_close(peer);
    evq_poll_close(poll);
}
/* ANCHOR_END: drain_test */

/* ---- a mebibyte, one byte at a time ---- */

struct sender {
    evq_socket peer;
    size_t total;
    int rc;
};

static void send_run(void *arg)
{
    struct sender *s = arg;
    s->rc = ch06_send_pattern(s->peer, s->total, 0);
}

/* The case: a peer sends 1 MiB in one burst (it blocks as the
 * windows fill, and goes on as the reader reads), the reader takes one byte
 * per event. Every byte arrives, in order, and READABLE never comes without
 * a byte. The kernel's edges are rare beside the events: a new edge comes
 * only when new bytes arrive - here, when the reader's own receive has
 * opened the window (loopback holds ~100 KiB unread, not 1 MiB, so the
 * peer cannot put it all in the socket at once). A level-triggered
 * registration reports the socket at every wait in which it holds bytes:
 * about one kernel event per two waits. */
EVQ_TEST(a_mebibyte_read_one_byte_per_event_arrives_whole)
{
    /* Under Wine every kernel wait is a round trip to wineserver, and under
     * a sanitizer every lock is checked: a million turns take minutes there,
     * so they read a quarter and an eighth of it. */
    const size_t total = CH06_SANITIZED ? 1 << 17 : completion_backend() ? 1 << 18 : 1 << 20;
    evq_poll *poll;
    struct sender s = {.total = total};
    evq_tcp *stream;
    REQUIRE_OK(evq_poll_open(&poll));
    REQUIRE_OK(ch06_pair(poll, &stream, &s.peer));
    uint64_t before = kernel_events(stream);
    REQUIRE_OK(evq_register(poll, stream, 1, EVQ_READABLE));
    evq_thread thread;
    REQUIRE_OK(evq_thread_start(&thread, send_run, &s));
    size_t events = one_byte_per_event(poll, stream, total);
    evq_thread_join(&thread);
    CHECK_OK(s.rc);
    CHECK_UINT(events, ==, total);
    uint64_t edges = kernel_events(stream) - before;
    evq_test_note("%zu events, %llu kernel events", events, (unsigned long long)edges);
    CHECK_UINT(edges, <, total / 1000);
    evq_tcp_close(stream);
    evq_socket_close(s.peer);
    evq_poll_close(poll);
}

/* A buffer full at read_max, its bytes all seen, is READABLE every time it
 * is armed (chapter 3's rule) - without a new edge; once consumed, the
 * stream reads on from the socket, again without one. */
EVQ_TEST(a_buffer_at_its_limit_is_reported_again_without_a_new_edge)
{
    enum { MAX = 4096, SENT = 16 * 1024 };
    evq_poll *poll;
    evq_tcp *stream;
    evq_socket peer;
    REQUIRE_OK(evq_poll_open(&poll));
    REQUIRE_OK(ch06_pair(poll, &stream, &peer));
    evq_tcp_limits limits = small_turns(MAX, 64 * 1024);
    REQUIRE_OK(evq_tcp_set_limits(stream, &limits));
    REQUIRE_OK(ch06_send_pattern(peer, SENT, 0));
    evq_sleep_ms(20);
    uint64_t before = kernel_events(stream);
    REQUIRE_OK(evq_register(poll, stream, 1, EVQ_READABLE));
    evq_event event;
    const void *data;
    size_t len = 0;
    size_t offset = 0;
    while (offset < SENT) {
        for (int again = 0; again < 3; again++) { /* full and seen: reported every time */
            REQUIRE(ch06_wait_one(poll, &event, 5000));
            CHECK_UINT(event.ready & EVQ_READABLE, ==, EVQ_READABLE);
            REQUIRE_OK(evq_tcp_peek(stream, &data, &len));
            REQUIRE_UINT(len, ==, MAX);
            CHECK_UINT(ch06_pattern_mismatch(data, len, offset), ==, len);
            REQUIRE_OK(evq_reregister(poll, stream, 1, EVQ_READABLE));
        }
        REQUIRE_OK(evq_tcp_consume(stream, len));
        offset += len;
    }
    CHECK_UINT(kernel_events(stream) - before, <=, events_per_edge()); /* the burst's, if late */
    CHECK_ERR(evq_tcp_peek(stream, &data, &len), EVQ_EWOULDBLOCK);
    evq_tcp_close(stream);
    evq_socket_close(peer);
    evq_poll_close(poll);
}

/* ANCHOR: remember_test */
/* The stream is its owner's after an event, and the caller is not armed:
 * an edge that comes then is taken by the wait - the kernel says it once -
 * and must be kept. Re-armed, the stream is reported from what was kept,
 * without another edge. The version that drops edges for a disarmed
 * stream never reports "b". (IOCP has no edge to keep here: nothing is
 * received while the caller is not armed; the receive posted at the
 * re-arm completes at once.) */
EVQ_TEST(an_edge_while_the_owner_holds_the_stream_is_kept)
{
    evq_poll *poll;
    evq_tcp *stream;
    evq_socket peer;
    REQUIRE_OK(evq_poll_open(&poll));
    REQUIRE_OK(ch06_pair(poll, &stream, &peer));
    REQUIRE_OK(evq_register(poll, stream, 1, EVQ_READABLE));
    REQUIRE_OK(evq_net_send_all(peer, "a", 1));
    evq_event event;
    REQUIRE(ch06_wait_one(poll, &event, 5000));
    char buf[4];
    size_t n = 0;
    REQUIRE_OK(evq_tcp_read(stream, buf, sizeof buf, &n));
    REQUIRE_UINT(n, ==, 1);
    CHECK_ERR(evq_tcp_read(stream, buf, sizeof buf, &n), EVQ_EWOULDBLOCK);

    uint64_t before = kernel_events(stream);
    REQUIRE_OK(evq_net_send_all(peer, "b", 1));
    for (int i = 0; i < 20 && (i < 2 || kernel_events(stream) == before); i++) {
        CHECK_OK(evq_poll_wait(poll, &event, 1, 50, &n)); /* the edge comes and goes */
        CHECK_UINT(n, ==, 0);
    }
    uint64_t edges = kernel_events(stream);
    if (!completion_backend())
        REQUIRE_UINT(edges, >, before);

    REQUIRE_OK(evq_reregister(poll, stream, 2, EVQ_READABLE));
    REQUIRE(ch06_wait_one(poll, &event, 5000));
    CHECK_UINT(event.token, ==, 2);
    REQUIRE_OK(evq_tcp_read(stream, buf, sizeof buf, &n));
    CHECK_UINT(n, ==, 1);
    CHECK_MEM(buf, "b", 1);
    if (!completion_backend())
        CHECK_UINT(kernel_events(stream), ==, edges); /* no new edge was needed */
    evq_tcp_close(stream);
    evq_socket_close(peer);
    evq_poll_close(poll);
}
/* ANCHOR_END: remember_test */

/* ANCHOR: no_rearm_test */
/* A request and its answer, a hundred times: after the stream has joined
 * the queue, no registration call at all (chapter 4 made an epoll_ctl MOD
 * or a kevent() per event), and one kernel wait per request (two if the
 * wait's clock rounds up). The version that re-arms the kernel per event
 * shows a hundred or more. */
EVQ_TEST(a_request_and_its_answer_make_no_registration_call)
{
    enum { REQUESTS = 100 };
    evq_poll *poll;
    evq_tcp *stream;
    evq_socket peer;
    REQUIRE_OK(evq_poll_open(&poll));
    REQUIRE_OK(ch06_pair(poll, &stream, &peer));
    REQUIRE_OK(evq_socket_set_recv_timeout(peer, 10000)); /* a lost answer fails, not hangs */
    evq_kernel_stats first, last;
    evq_poll_get_kernel_stats(poll, &first);
    REQUIRE_OK(evq_register(poll, stream, 1, EVQ_READABLE));
    for (int i = 0; i < REQUESTS; i++) {
        REQUIRE_OK(evq_net_send_all(peer, "ping", 4));
        evq_event event;
        REQUIRE(ch06_wait_one(poll, &event, 5000));
        char buf[8];
        size_t len = 0;
        REQUIRE_OK(ch06_read_available(stream, buf, sizeof buf, &len));
        REQUIRE_UINT(len, ==, 4);
        size_t n = 0;
        REQUIRE_OK(evq_tcp_write(stream, "pong", 4, &n));
        size_t got = 0;
        while (got < 4) {
            REQUIRE_OK(evq_net_recv(peer, buf + got, 4 - got, &n));
            REQUIRE_UINT(n, >, 0);
            got += n;
        }
        REQUIRE_OK(evq_reregister(poll, stream, 1, EVQ_READABLE));
    }
    evq_poll_get_kernel_stats(poll, &last);
    evq_test_note("%llu registration calls, %llu kernel waits for %d requests",
                  (unsigned long long)(last.control_calls - first.control_calls),
                  (unsigned long long)(last.waits - first.waits), REQUESTS);
    CHECK_UINT(last.control_calls - first.control_calls, ==, 0);
    CHECK_UINT(last.waits - first.waits, <=, 2 * REQUESTS);
    evq_tcp_close(stream);
    evq_socket_close(peer);
    evq_poll_close(poll);
}
/* ANCHOR_END: no_rearm_test */

/* ---- fairness: one flood, 999 quiet streams ---- */

enum { STREAMS = 1000, QUIET_BYTES = 100, FLOOD_CAPACITY = 64, FLOOD_BUDGET = 4096 };

struct flood {
    evq_socket peer;
    atomic_bool stop;
    uint64_t sent;
};

/* The flooding peer: sends until the stream is closed under it, so that
 * its socket never runs dry while the test runs (it has queued megabytes
 * before the first wait; see below). */
static void flood_run(void *arg)
{
    struct flood *f = arg;
    static unsigned char chunk[65536];
    while (!atomic_load(&f->stop) && f->sent < (uint64_t)100 << 20) {
        if (evq_net_send_all(f->peer, chunk, sizeof chunk) != 0)
            return;
        f->sent += sizeof chunk;
    }
}

/* Fill the peer's side until the socket takes no more, without blocking. */
static size_t fill_socket(evq_socket peer)
{
    static unsigned char chunk[65536];
    size_t sent = 0;
    if (evq_socket_set_nonblocking(peer, true) != 0)
        return 0;
    for (int stalls = 0; stalls < 3;) {
        int n = (int)send(peer, (const char *)chunk, (int)sizeof chunk, 0);
        if (n > 0) {
            sent += (size_t)n;
            stalls = 0;
        } else {
            stalls++;
            evq_sleep_ms(10); /* let loopback move what it can */
        }
    }
    evq_socket_set_nonblocking(peer, false);
    return sent;
}

/* ANCHOR: flood_test */
/* One stream whose peer floods it (megabytes queued before the loop looks,
 * more on the way: 100 MiB in all), 999 whose peers send 100 bytes each.
 * The loop reads everything each event offers - until EVQ_EWOULDBLOCK, the
 * edge-triggered habit - and re-arms. With a 4 KiB turn budget, every one
 * of the 999 is served within ceil(999 / 32) + 4 waits of capacity 64 (the
 * kernel gets at least half of each; twice that on kqueue, whose streams
 * are two knotes each), and the flood gets one budget per wait meanwhile
 * at most: it is told once per wait, and its turn's fills and the reader's
 * share the budget. Without the budget the flood gets what its receive
 * queue holds at each wait - 64 KiB and more, far past 4 KiB - or, if its
 * peer keeps up, a read loop that never ends. */
EVQ_TEST(one_flood_does_not_starve_999_quiet_streams)
{
    unsigned fit = ch06_allow_connections(STREAMS + 8);
    if (fit < STREAMS) {
        evq_test_note("only %u descriptors pairs fit: not enough for this case", fit);
        return;
    }
    static evq_tcp *streams[STREAMS];
    static evq_socket peers[STREAMS];
    static size_t received[STREAMS];
    evq_poll *poll;
    REQUIRE_OK(evq_poll_open(&poll));
    REQUIRE_OK(ch06_pairs(poll, STREAMS, streams, peers));
    evq_tcp_limits limits = ch06_limits(4096, 256 * 1024, 1 << 20, 1 << 18);
    limits.turn_budget = FLOOD_BUDGET;
    for (size_t i = 0; i < STREAMS; i++) {
        received[i] = 0;
        REQUIRE_OK(evq_tcp_set_limits(streams[i], &limits));
        REQUIRE_OK(evq_register(poll, streams[i], (evq_token)i, EVQ_READABLE));
    }
    struct flood f = {.peer = peers[0]};
    atomic_init(&f.stop, false);
    size_t queued = fill_socket(peers[0]);
    evq_test_note("%zu bytes queued for the flooding stream before the first wait", queued);
    evq_thread thread;
    REQUIRE_OK(evq_thread_start(&thread, flood_run, &f));
    unsigned char quiet[QUIET_BYTES];
    ch06_pattern_fill(quiet, sizeof quiet, 0);
    for (size_t i = 1; i < STREAMS; i++)
        REQUIRE_OK(evq_net_send_all(peers[i], quiet, sizeof quiet));

    const size_t kernel_events_needed = (STREAMS - 1) * events_per_edge();
    const size_t bound = (kernel_events_needed + FLOOD_CAPACITY / 2 - 1) / (FLOOD_CAPACITY / 2) + 4;
    size_t served = 0, waits = 0;
    static unsigned char buf[65536];
    while (served < STREAMS - 1 && waits < 10 * bound) {
        evq_event events[FLOOD_CAPACITY];
        size_t n = 0;
        REQUIRE_OK(evq_poll_wait(poll, events, FLOOD_CAPACITY, 5000, &n));
        waits++;
        for (size_t e = 0; e < n; e++) {
            size_t i = (size_t)events[e].token;
            REQUIRE_UINT(i, <, STREAMS);
            size_t len = 0;
            int rc;
            do { /* everything the event offers */
                size_t got = 0;
                rc = evq_tcp_read(streams[i], buf, sizeof buf, &got);
                len += got;
            } while (rc == 0);
            REQUIRE_ERR(rc, EVQ_EWOULDBLOCK);
            if (i > 0 && received[i] < QUIET_BYTES && received[i] + len >= QUIET_BYTES)
                served++;
            received[i] += len;
            REQUIRE_OK(evq_reregister(poll, streams[i], (evq_token)i, EVQ_READABLE));
        }
    }
    evq_test_note("%zu of %d quiet streams served in %zu waits (bound %zu); the flood gave "
                  "%zu bytes meanwhile",
                  served, STREAMS - 1, waits, bound, received[0]);
    CHECK_UINT(served, ==, STREAMS - 1);
    CHECK_UINT(waits, <=, bound);
    CHECK_UINT(received[0], >, 0); /* the flood is served too */
    CHECK_UINT(received[0], <=, (waits + 1) * FLOOD_BUDGET);
    for (size_t i = 1; i < STREAMS; i++)
        CHECK_UINT(received[i], ==, QUIET_BYTES);
    atomic_store(&f.stop, true);
    evq_tcp_close(streams[0]); /* the flooding peer's send fails: its thread ends */
    streams[0] = NULL;
    evq_thread_join(&thread);
    ch06_pairs_close(STREAMS, streams, peers);
    evq_poll_close(poll);
}
/* ANCHOR_END: flood_test */

int main(int argc, char **argv)
{
    static const evq_test_case cases[] = {
        EVQ_CASE(a_burst_read_one_byte_per_event_needs_no_edge_after_the_first),
        EVQ_CASE(a_mebibyte_read_one_byte_per_event_arrives_whole),
        EVQ_CASE(a_buffer_at_its_limit_is_reported_again_without_a_new_edge),
        EVQ_CASE(an_edge_while_the_owner_holds_the_stream_is_kept),
        EVQ_CASE(a_request_and_its_answer_make_no_registration_call),
        EVQ_CASE(one_flood_does_not_starve_999_quiet_streams),
    };
    return evq_test_main(argc, argv, cases, EVQ_COUNT(cases));
}

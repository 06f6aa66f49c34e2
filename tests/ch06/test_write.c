/* test_write.c - chapter 3: the write side of a buffered stream - partial
 * writes whose rest is queued and sent by the queue itself, WRITABLE
 * interest on only while bytes are queued, backpressure at write_high and
 * write_low, interrupted and partial sends, a send that fails in the
 * background (reported once), half-close after the queue, and a 16 MiB
 * echo through two buffered streams with a slow reader.
 */
#include "ch06_test.h"

/* ---- the peer, on a thread: reads everything until EOF and checks it ---- */

struct drain {
    evq_socket peer;
    size_t received;
    size_t first_mismatch; /* SIZE_MAX: every byte was the pattern */
    int status;            /* how the reading ended: 0 at EOF */
};

static void drain_run(void *arg)
{
    struct drain *d = arg;
    static unsigned char sink[65536];
    d->first_mismatch = SIZE_MAX;
    /* A FIN that never comes ends the test with an error, not a hang. */
    if ((d->status = evq_socket_set_recv_timeout(d->peer, 20000)) != 0)
        return;
    for (;;) {
        size_t n = 0;
        if ((d->status = evq_net_recv(d->peer, sink, sizeof sink, &n)) != 0 || n == 0)
            return;
        size_t bad = ch06_pattern_mismatch(sink, n, d->received);
        if (bad < n && d->first_mismatch == SIZE_MAX)
            d->first_mismatch = d->received + bad;
        d->received += n;
    }
}

/* Write pattern bytes from *written on until the stream refuses
 * (EVQ_EWOULDBLOCK) or `limit` bytes in all; returns the last code. 48 KiB
 * a write: not a divisor of the caps, so the write that fills the queue is
 * cut short on every backend. */
static int write_until_full(evq_tcp *stream, size_t *written, size_t limit, int *partial)
{
    unsigned char chunk[48 * 1024];
    while (*written < limit) {
        size_t want = limit - *written < sizeof chunk ? limit - *written : sizeof chunk;
        ch06_pattern_fill(chunk, want, *written);
        size_t n = 0;
        int rc = evq_tcp_write(stream, chunk, want, &n);
        if (rc != 0)
            return rc;
        if (partial && n < want)
            (*partial)++;
        *written += n;
    }
    return 0;
}

/* Let the queue work: wait (nothing is registered, or only READABLE) until
 * the stream's queue is empty, at most `limit_ms`. Returns caller events. */
static size_t wait_until_drained(evq_poll *poll, evq_tcp *stream, int limit_ms)
{
    size_t events_seen = 0;
    uint64_t give_up = evq_clock_now_ns() + evq_ms_to_ns((uint64_t)limit_ms);
    while (evq_tcp_queued(stream) > 0 && evq_clock_now_ns() < give_up) {
        evq_event events[4];
        size_t n = 0;
        if (!CHECK_OK(evq_poll_wait(poll, events, 4, 50, &n)))
            break;
        events_seen += n;
    }
    return events_seen;
}

/* The socket fills, the rest is queued up to write_high and no further,
 * and the queue empties by itself during evq_poll_wait although the caller
 * never registered the stream. Catches a write that drops what the socket
 * did not take, a queue without a cap, and a queue that is flushed only
 * when the caller asked for WRITABLE. */
EVQ_TEST(the_rest_of_a_partial_write_is_queued_and_sent_by_the_queue)
{
    enum { HIGH = 256 * 1024, LOW = 64 * 1024 };
    evq_poll *poll;
    evq_tcp *stream;
    struct drain d = {0};
    REQUIRE_OK(evq_poll_open(&poll));
    REQUIRE_OK(ch06_pair(poll, &stream, &d.peer));
    evq_tcp_limits limits = ch06_limits(4096, 65536, HIGH, LOW);
    REQUIRE_OK(evq_tcp_set_limits(stream, &limits));
    size_t written = 0;
    int partial = 0;
    REQUIRE_ERR(write_until_full(stream, &written, (size_t)64 << 20, &partial), EVQ_EWOULDBLOCK);
    CHECK_INT(partial, >=, 1); /* the write that filled the queue took only part */
    evq_tcp_stats stats = ch06_stats(stream);
    CHECK_UINT(stats.write_queued, ==, HIGH); /* full means exactly write_high */
    CHECK_UINT(stats.write_queued_peak, ==, HIGH);
    CHECK_UINT(evq_tcp_queued(stream), ==, HIGH);

    evq_thread thread;
    REQUIRE_OK(evq_thread_start(&thread, drain_run, &d));
    CHECK_UINT(wait_until_drained(poll, stream, 10000), ==, 0); /* nothing for the caller */
    CHECK_UINT(evq_tcp_queued(stream), ==, 0);
    evq_tcp_close(stream); /* FIN: the drain thread sees EOF */
    evq_thread_join(&thread);
    CHECK_UINT(d.received, ==, written);
    CHECK_UINT(d.first_mismatch, ==, SIZE_MAX);
    CHECK_INT(d.status, ==, 0);
    evq_socket_close(d.peer);
    evq_poll_close(poll);
}

/* ---- a slow socket, made with the io hook ---- */

/* First `interruptions` EVQ_EINTR; sends of at most `cap` bytes (0: any);
 * a reset after `reset_after_calls` sends (0: never). (Chapter 4's hook
 * could also say the socket was full after each send, a slow socket whose
 * WRITABLE the one-shot kernel reported again at every re-arm. An
 * edge-triggered kernel reports room only after a socket that was really
 * full, so chapter 5 makes the queue drain in small steps with a small
 * turn budget instead: slow_queue below.) */
struct send_hook {
    size_t cap;
    int interruptions;
    int reset_after_calls;
    int calls;
};

static int on_send(void *context, enum evq_io_direction direction, size_t *len)
{
    struct send_hook *hook = context;
    if (direction != EVQ_IO_SEND)
        return 0;
    hook->calls++;
    if (hook->interruptions > 0) {
        hook->interruptions--;
        return EVQ_EINTR;
    }
    if (hook->reset_after_calls > 0 && hook->calls > hook->reset_after_calls)
        return EVQ_ECONNRESET;
    if (hook->cap > 0 && *len > hook->cap)
        *len = hook->cap;
    return 0;
}

#ifndef _WIN32
/* The next three cases drain the queue 4 KiB per turn (a turn budget of
 * 4 KiB: each turn of the stream sends that much and no more). They count
 * on a send completing at once, as on a readiness backend; on IOCP a send
 * may stay in flight, so test_iocp.c holds the IOCP side of these
 * promises. */
enum { STEP = 4096 };

static evq_tcp_limits slow_queue(size_t write_high, size_t write_low)
{
    evq_tcp_limits limits = ch06_limits(4096, 65536, write_high, write_low);
    limits.turn_budget = STEP;
    return limits;
}

/* Backpressure: WRITABLE comes once the queue has drained to write_low,
 * not at the first moment the socket takes a byte. Catches a queue that
 * passes the kernel's WRITABLE straight on (the writer would be woken
 * after every 4 KiB, with the queue still nearly full). */
EVQ_TEST_POSIX(writable_comes_when_the_queue_is_down_to_write_low)
{
    enum { HIGH = 64 * 1024, LOW = 16 * 1024 };
    evq_poll *poll;
    evq_tcp *stream;
    evq_socket peer;
    REQUIRE_OK(evq_poll_open(&poll));
    REQUIRE_OK(ch06_pair(poll, &stream, &peer));
    evq_tcp_limits limits = slow_queue(HIGH, LOW);
    REQUIRE_OK(evq_tcp_set_limits(stream, &limits));
    size_t written = 0;
    REQUIRE_ERR(write_until_full(stream, &written, (size_t)1 << 20, NULL), EVQ_EWOULDBLOCK);
    CHECK_UINT(written, ==, HIGH + STEP); /* 4 KiB went at once, then the queue filled */
    REQUIRE_OK(evq_register(poll, stream, 7, EVQ_WRITABLE));
    evq_event event;
    REQUIRE(ch06_wait_one(poll, &event, 10000));
    CHECK_UINT(event.token, ==, 7);
    CHECK_UINT(event.ready, ==, EVQ_WRITABLE);
    size_t queued = evq_tcp_queued(stream);
    CHECK_UINT(queued, <=, LOW);
    CHECK_UINT(queued, >, LOW - STEP); /* and not later than that */
    CHECK_UINT(wait_until_drained(poll, stream, 10000), ==, 0);
    unsigned char buf[HIGH + STEP];
    size_t received = 0;
    while (received < written) {
        size_t n = 0;
        REQUIRE_OK(evq_net_recv(peer, buf + received, sizeof buf - received, &n));
        REQUIRE_UINT(n, >, 0);
        received += n;
    }
    CHECK_UINT(ch06_pattern_mismatch(buf, received, 0), ==, received);
    evq_tcp_close(stream);
    evq_socket_close(peer);
    evq_poll_close(poll);
}

/* Counts kernel waits without changing them. */
static int count_waits(void *context, int *timeout_ms)
{
    (void)timeout_ms;
    ++*(int *)context;
    return 0;
}

/* The queue's own turns (a flush of 4 KiB each here) neither reach the
 * caller nor use up the caller's one-shot READABLE arming, and once the
 * queue is empty nothing wakes the kernel wait. Catches a flush that
 * reports to the caller or disarms it (the "x" would never be reported),
 * and a level-triggered WRITABLE (the 200 ms wait would spin through many
 * kernel calls on an always-writable socket). */
EVQ_TEST_POSIX(flushes_keep_the_callers_arming_and_stop_when_drained)
{
    evq_poll *poll;
    evq_tcp *stream;
    evq_socket peer;
    REQUIRE_OK(evq_poll_open(&poll));
    REQUIRE_OK(ch06_pair(poll, &stream, &peer));
    REQUIRE_OK(evq_register(poll, stream, 9, EVQ_READABLE));
    evq_tcp_limits limits = slow_queue(1 << 20, 1 << 18);
    REQUIRE_OK(evq_tcp_set_limits(stream, &limits));
    size_t written = 0;
    REQUIRE_OK(write_until_full(stream, &written, 64 * 1024, NULL));
    CHECK_UINT(evq_tcp_queued(stream), ==, 60 * 1024);
    CHECK_UINT(wait_until_drained(poll, stream, 10000), ==, 0); /* 15 flushes, no event */
    CHECK_UINT(evq_tcp_queued(stream), ==, 0);
    CHECK_UINT(ch06_stats(stream).send_calls, >=, 16);

    int waits = 0;
    evq_poll_set_wait_hook(poll, count_waits, &waits);
    evq_event event;
    size_t n = 99;
    CHECK_OK(evq_poll_wait(poll, &event, 1, 200, &n));
    CHECK_UINT(n, ==, 0);
    CHECK_INT(waits, <=, 2); /* one sleep (two if the clock rounds) */
    evq_poll_set_wait_hook(poll, NULL, NULL);

    REQUIRE_OK(evq_net_send_all(peer, "x", 1));
    REQUIRE(ch06_wait_one(poll, &event, 5000));
    CHECK_UINT(event.token, ==, 9);
    CHECK_UINT(event.ready & EVQ_READABLE, ==, EVQ_READABLE);
    evq_tcp_close(stream);
    evq_socket_close(peer);
    evq_poll_close(poll);
}

#endif

/* A signal during send() is not an error. Catches a write that returns
 * EVQ_EINTR, or turns it into the stream's write error. */
EVQ_TEST(interrupted_sends_are_retried)
{
    evq_poll *poll;
    evq_tcp *stream;
    evq_socket peer;
    REQUIRE_OK(evq_poll_open(&poll));
    REQUIRE_OK(ch06_pair(poll, &stream, &peer));
    struct send_hook hook = {.interruptions = 3};
    evq_tcp_set_io_hook(stream, on_send, &hook);
    unsigned char data[1000];
    ch06_pattern_fill(data, sizeof data, 0);
    size_t n = 0;
    CHECK_OK(evq_tcp_write(stream, data, sizeof data, &n));
    CHECK_UINT(n, ==, sizeof data);
    wait_until_drained(poll, stream, 5000);
    CHECK_UINT(evq_tcp_queued(stream), ==, 0);
    CHECK_INT(hook.interruptions, ==, 0);
    CHECK_UINT(ch06_stats(stream).send_calls, >=, 4); /* the interrupted three count */
    unsigned char got[sizeof data];
    size_t received = 0;
    while (received < sizeof got) {
        REQUIRE_OK(evq_net_recv(peer, got + received, sizeof got - received, &n));
        REQUIRE_UINT(n, >, 0);
        received += n;
    }
    CHECK_UINT(ch06_pattern_mismatch(got, received, 0), ==, received);
    evq_tcp_close(stream);
    evq_socket_close(peer);
    evq_poll_close(poll);
}

/* send() may take fewer bytes than offered, at any point: the queue sends
 * the rest, in order. Catches a flush that counts a short send as whole. */
EVQ_TEST(partial_sends_are_completed_in_order)
{
    enum { SIZE = 100000 };
    evq_poll *poll;
    evq_tcp *stream;
    struct drain d = {0};
    REQUIRE_OK(evq_poll_open(&poll));
    REQUIRE_OK(ch06_pair(poll, &stream, &d.peer));
    struct send_hook hook = {.cap = 1000};
    evq_tcp_set_io_hook(stream, on_send, &hook);
    size_t written = 0;
    REQUIRE_OK(write_until_full(stream, &written, SIZE, NULL));
    evq_thread thread;
    REQUIRE_OK(evq_thread_start(&thread, drain_run, &d));
    wait_until_drained(poll, stream, 10000);
    CHECK_UINT(evq_tcp_queued(stream), ==, 0);
    CHECK_UINT(ch06_stats(stream).send_calls, >=, SIZE / 1000);
    evq_tcp_close(stream);
    evq_thread_join(&thread);
    CHECK_UINT(d.received, ==, SIZE);
    CHECK_UINT(d.first_mismatch, ==, SIZE_MAX);
    evq_socket_close(d.peer);
    evq_poll_close(poll);
}

#ifndef _WIN32
/* A send that fails in the background (during a wait, the peer reset) is
 * reported once, as EVQ_ERR in one event, then by every write; the queue's
 * memory is freed at once. Catches an error that is lost (no event), one
 * reported at every re-arm, and a queue kept for a dead connection. */
EVQ_TEST_POSIX(a_background_send_failure_is_reported_once)
{
    evq_poll *poll;
    evq_tcp *stream;
    evq_socket peer;
    REQUIRE_OK(evq_poll_open(&poll));
    REQUIRE_OK(ch06_pair(poll, &stream, &peer));
    evq_tcp_limits limits = slow_queue(1 << 20, 1 << 18);
    REQUIRE_OK(evq_tcp_set_limits(stream, &limits));
    struct send_hook hook = {.reset_after_calls = 2};
    evq_tcp_set_io_hook(stream, on_send, &hook);
    size_t written = 0;
    REQUIRE_OK(write_until_full(stream, &written, 64 * 1024, NULL)); /* 4 KiB sent, 60 queued */
    CHECK_UINT(evq_tcp_queued(stream), ==, 60 * 1024);
    REQUIRE_OK(evq_register(poll, stream, 5, EVQ_READABLE));
    int errors = 0;
    for (int round = 0; round < 3; round++) {
        evq_event event;
        size_t n = 0;
        CHECK_OK(evq_poll_wait(poll, &event, 1, 200, &n));
        if (n == 1) {
            CHECK_UINT(event.token, ==, 5);
            errors += (event.ready & EVQ_ERR) != 0;
            REQUIRE_OK(evq_reregister(poll, stream, 5, EVQ_READABLE));
        }
    }
    CHECK_INT(errors, ==, 1);
    evq_tcp_stats stats = ch06_stats(stream);
    CHECK_UINT(stats.write_queued, ==, 0);
    size_t n = 0;
    CHECK_ERR(evq_tcp_write(stream, "x", 1, &n), EVQ_ECONNRESET);
    CHECK_ERR(evq_tcp_write(stream, "x", 1, &n), EVQ_ECONNRESET); /* every time */
    CHECK_UINT(n, ==, 0);
    evq_tcp_close(stream);
    evq_socket_close(peer);
    evq_poll_close(poll);
}

/* The same with a real reset (POSIX: Wine sends a FIN instead, see
 * evq_net.h): a peer that resets while the queue is full. */
EVQ_TEST_POSIX(a_peer_reset_while_the_queue_is_full)
{
    evq_poll *poll;
    evq_tcp *stream;
    evq_socket peer;
    REQUIRE_OK(evq_poll_open(&poll));
    REQUIRE_OK(ch06_pair(poll, &stream, &peer));
    size_t written = 0;
    REQUIRE_ERR(write_until_full(stream, &written, (size_t)64 << 20, NULL), EVQ_EWOULDBLOCK);
    REQUIRE_OK(evq_register(poll, stream, 5, EVQ_WRITABLE));
    REQUIRE_OK(evq_socket_close_with_reset(peer));
    evq_event event;
    REQUIRE(ch06_wait_one(poll, &event, 5000));
    CHECK_UINT(event.ready & (EVQ_ERR | EVQ_WRITABLE), ==, EVQ_ERR | EVQ_WRITABLE);
    CHECK_UINT(evq_tcp_queued(stream), ==, 0); /* the memory is back */
    size_t n = 0;
    int rc = evq_tcp_write(stream, "x", 1, &n);
    CHECK(rc == EVQ_ECONNRESET || rc == EVQ_EPIPE);
    CHECK_ERR(evq_tcp_write(stream, "x", 1, &n), rc);
    evq_tcp_close(stream);
    evq_poll_close(poll);
}
#endif

/* Half-close from this side: evq_tcp_shutdown sends the FIN only after the
 * queued bytes, refuses later writes, and the stream can still read. Catches
 * a shutdown(SHUT_WR) made at once (the peer's EOF would cut the data). */
EVQ_TEST(shutdown_sends_the_fin_after_the_queue_and_keeps_reading)
{
    evq_poll *poll;
    evq_tcp *stream;
    struct drain d = {0};
    REQUIRE_OK(evq_poll_open(&poll));
    REQUIRE_OK(ch06_pair(poll, &stream, &d.peer));
    size_t written = 0;
    REQUIRE_ERR(write_until_full(stream, &written, (size_t)64 << 20, NULL), EVQ_EWOULDBLOCK);
    REQUIRE_UINT(evq_tcp_queued(stream), >, 0);
    CHECK_OK(evq_tcp_shutdown(stream));
    CHECK_OK(evq_tcp_shutdown(stream)); /* twice is harmless */
    size_t n = 0;
    CHECK_ERR(evq_tcp_write(stream, "x", 1, &n), EVQ_EPIPE);
    evq_thread thread;
    REQUIRE_OK(evq_thread_start(&thread, drain_run, &d));
    wait_until_drained(poll, stream, 20000);
    evq_thread_join(&thread); /* returns at the FIN */
    CHECK_UINT(d.received, ==, written);
    CHECK_UINT(d.first_mismatch, ==, SIZE_MAX);
    CHECK_INT(d.status, ==, 0);

    REQUIRE_OK(evq_net_send_all(d.peer, "late", 4)); /* the other half still works */
    REQUIRE_OK(evq_register(poll, stream, 1, EVQ_READABLE));
    evq_event event;
    REQUIRE(ch06_wait_one(poll, &event, 5000));
    char buf[8];
    CHECK_OK(evq_tcp_read(stream, buf, sizeof buf, &n));
    CHECK_UINT(n, ==, 4);
    CHECK_MEM(buf, "late", 4);
    evq_tcp_close(stream);
    evq_socket_close(d.peer);
    evq_poll_close(poll);
}

/* ---- the 16 MiB echo ---- */

/* FNV-1a over a byte stream, so that three views of the same 16 MiB (sent,
 * seen by the server, echoed back) can be compared as one number each. */
static uint64_t fnv1a(uint64_t hash, const unsigned char *data, size_t len)
{
    for (size_t i = 0; i < len; i++)
        hash = (hash ^ data[i]) * UINT64_C(0x100000001b3);
    return hash;
}

struct echo_side {
    evq_tcp *stream;
    size_t in, out; /* bytes received, bytes written */
    uint64_t in_hash, out_hash;
    size_t mismatch;  /* first byte received that was not the pattern; SIZE_MAX: none */
    int backpressure; /* writes refused, or cut short, by a full queue */
    bool blocked;     /* waiting for WRITABLE before taking more */
};

enum {
    ECHO_TOTAL = 16 << 20,
    ECHO_HIGH = 256 * 1024,
    ECHO_LOW = 64 * 1024,
    ECHO_READ_MAX = 64 * 1024,
    ECHO_SLOW_READ = 16 * 1024
};

static void check_received(struct echo_side *side, const void *data, size_t len)
{
    size_t bad = ch06_pattern_mismatch(data, len, side->in);
    if (bad < len && side->mismatch == SIZE_MAX)
        side->mismatch = side->in + bad;
    side->in_hash = fnv1a(side->in_hash, data, len);
    side->in += len;
}

/* The server: echo what it reads; when its queue is full, stop reading
 * (leave the bytes unconsumed) until WRITABLE - backpressure passed on. */
static int serve(struct echo_side *server)
{
    for (int i = 0; i < 64; i++) {
        const void *data;
        size_t len = 0;
        int rc = evq_tcp_peek(server->stream, &data, &len);
        if (rc == EVQ_EWOULDBLOCK || rc == EVQ_EOF)
            return 0;
        if (rc != 0)
            return rc;
        size_t taken = 0;
        rc = evq_tcp_write(server->stream, data, len, &taken);
        if (rc == EVQ_EWOULDBLOCK) {
            server->backpressure++;
            server->blocked = true;
            return 0;
        }
        if (rc != 0)
            return rc;
        check_received(server, data, taken);
        server->out += taken;
        if ((rc = evq_tcp_consume(server->stream, taken)) != 0)
            return rc;
        if (taken < len) {
            server->backpressure++; /* the queue took only part: it is full now */
            server->blocked = true;
            return 0;
        }
    }
    return 0;
}

/* The client: write the pattern until refused; read at most 16 KiB per
 * event - the deliberately slow reader. */
static int client_write(struct echo_side *client)
{
    unsigned char chunk[65536];
    while (client->out < ECHO_TOTAL) {
        size_t want =
            ECHO_TOTAL - client->out < sizeof chunk ? ECHO_TOTAL - client->out : sizeof chunk;
        ch06_pattern_fill(chunk, want, client->out);
        size_t n = 0;
        int rc = evq_tcp_write(client->stream, chunk, want, &n);
        if (rc == EVQ_EWOULDBLOCK) {
            client->backpressure++;
            return 0;
        }
        if (rc != 0)
            return rc;
        client->out_hash = fnv1a(client->out_hash, chunk, n);
        client->out += n;
        if (n < want) {
            client->backpressure++;
            return 0;
        }
    }
    return 0;
}

static int client_read(struct echo_side *client)
{
    unsigned char buf[ECHO_SLOW_READ];
    size_t n = 0;
    int rc = evq_tcp_read(client->stream, buf, sizeof buf, &n);
    if (rc == EVQ_EWOULDBLOCK)
        return 0;
    if (rc == 0)
        check_received(client, buf, n);
    return rc;
}

/* 16 MiB from a client through a server and back, on one queue, with small
 * limits and a reader slower than the writer: every byte comes back once,
 * in order (position-dependent pattern, and the three checksums agree),
 * both writers are held back (EVQ_EWOULDBLOCK), and no buffer ever holds
 * more than its cap. Catches loss, duplication or reordering anywhere in
 * the fill, the queue or the flush, and caps that are not enforced. */
EVQ_TEST(echo_16_mib_with_backpressure_both_ways)
{
    evq_poll *poll;
    REQUIRE_OK(evq_poll_open(&poll));
    evq_tcp *listener;
    REQUIRE_OK(evq_tcp_listen(poll, "127.0.0.1", 0, 8, &listener));
    evq_tcp_limits limits = ch06_limits(4096, ECHO_READ_MAX, ECHO_HIGH, ECHO_LOW);
    REQUIRE_OK(evq_tcp_set_limits(listener, &limits));
    uint16_t port = 0;
    REQUIRE_OK(evq_tcp_local_port(listener, &port));
    struct echo_side client = {
        .mismatch = SIZE_MAX, .in_hash = 14695981039346656037u, .out_hash = 14695981039346656037u};
    struct echo_side server = client;
    REQUIRE_OK(evq_tcp_connect(poll, "127.0.0.1", port, &client.stream));
    REQUIRE_OK(evq_tcp_set_limits(client.stream, &limits));
    REQUIRE_OK(evq_register(poll, listener, 3, EVQ_READABLE));
    evq_event event;
    REQUIRE(ch06_wait_one(poll, &event, 5000));
    REQUIRE_OK(evq_tcp_accept(listener, &server.stream));
    evq_tcp_close(listener);

    REQUIRE_OK(evq_register(poll, client.stream, 1, EVQ_READABLE | EVQ_WRITABLE));
    REQUIRE_OK(evq_register(poll, server.stream, 2, EVQ_READABLE));
    uint64_t give_up = evq_clock_now_ns() + evq_ms_to_ns(120000);
    int rc = 0;
    for (int turn = 0; turn < 2000000 && client.in < ECHO_TOTAL && rc == 0; turn++) {
        REQUIRE(evq_clock_now_ns() < give_up);
        evq_event events[4];
        size_t n = 0;
        REQUIRE_OK(evq_poll_wait(poll, events, 4, 1000, &n));
        for (size_t i = 0; i < n && rc == 0; i++) {
            if (events[i].token == 1) {
                if ((rc = client_read(&client)) == 0)
                    rc = client_write(&client);
                unsigned want = EVQ_READABLE | (client.out < ECHO_TOTAL ? EVQ_WRITABLE : 0);
                REQUIRE_OK(evq_reregister(poll, client.stream, 1, want));
            } else {
                if (events[i].ready & EVQ_WRITABLE)
                    server.blocked = false;
                if (!server.blocked)
                    rc = serve(&server);
                REQUIRE_OK(evq_reregister(poll, server.stream, 2,
                                          server.blocked ? EVQ_WRITABLE : EVQ_READABLE));
            }
        }
    }
    CHECK_OK(rc);
    CHECK_UINT(client.out, ==, ECHO_TOTAL);
    CHECK_UINT(server.in, ==, ECHO_TOTAL);
    CHECK_UINT(client.in, ==, ECHO_TOTAL);
    CHECK_UINT(server.mismatch, ==, SIZE_MAX);
    CHECK_UINT(client.mismatch, ==, SIZE_MAX);
    CHECK_UINT(server.in_hash, ==, client.out_hash);
    CHECK_UINT(client.in_hash, ==, client.out_hash);
    CHECK_INT(client.backpressure, >, 0);
    CHECK_INT(server.backpressure, >, 0);
    evq_tcp_stats stats[2] = {ch06_stats(client.stream), ch06_stats(server.stream)};
    for (int i = 0; i < 2; i++) {
        CHECK_UINT(stats[i].write_queued_peak, <=, ECHO_HIGH);
        CHECK_UINT(stats[i].write_queued_peak, >, 0);
        CHECK_UINT(stats[i].read_capacity_peak, <=, ECHO_READ_MAX);
    }
    evq_test_note("backpressure: client %d, server %d; peaks: queue %zu/%zu, read %zu/%zu",
                  client.backpressure, server.backpressure, stats[0].write_queued_peak,
                  stats[1].write_queued_peak, stats[0].read_capacity_peak,
                  stats[1].read_capacity_peak);
    evq_tcp_close(client.stream);
    evq_tcp_close(server.stream);
    evq_poll_close(poll);
}

int main(int argc, char **argv)
{
    static const evq_test_case cases[] = {
        EVQ_CASE(the_rest_of_a_partial_write_is_queued_and_sent_by_the_queue),
#ifndef _WIN32
        EVQ_CASE(writable_comes_when_the_queue_is_down_to_write_low),
        EVQ_CASE(flushes_keep_the_callers_arming_and_stop_when_drained),
        EVQ_CASE(a_background_send_failure_is_reported_once),
        EVQ_CASE(a_peer_reset_while_the_queue_is_full),
#endif
        EVQ_CASE(interrupted_sends_are_retried),
        EVQ_CASE(partial_sends_are_completed_in_order),
        EVQ_CASE(shutdown_sends_the_fin_after_the_queue_and_keeps_reading),
        EVQ_CASE(echo_16_mib_with_backpressure_both_ways),
    };
    return evq_test_main(argc, argv, cases, EVQ_COUNT(cases));
}

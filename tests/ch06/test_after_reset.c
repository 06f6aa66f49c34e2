/* test_after_reset.c - chapter 3: a stream whose peer has reset, once the
 * reset has been seen: the next send must not kill the process, and the
 * next read must say the stream is dead.
 *
 * On Linux the first send after a reset returns the pending ECONNRESET
 * without a signal; every send after that - and every send once a recv has
 * taken the ECONNRESET - fails with EPIPE, and raises SIGPIPE unless it
 * says MSG_NOSIGNAL (SO_NOSIGPIPE on macOS/BSD). The write path makes no
 * second send after an error of its own, so these cases let a read take the
 * reset first. On POSIX each runs in a child process with SIGPIPE at its
 * default action: a SIGPIPE kills the child and is reported as this case's
 * failure, and the test program goes on.
 */
#ifndef _WIN32
#define _POSIX_C_SOURCE 200809L /* fork, waitpid */
#endif
#include "ch06_test.h"

#include <stdio.h>

#ifndef _WIN32
#include <errno.h>
#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
#endif

static bool is_a_dead_peer_code(int rc)
{
    return rc == EVQ_EPIPE || rc == EVQ_ECONNRESET || rc == EVQ_ECONNABORTED;
}

/* The end a reader meets after a peer's reset: the stream is dead. Which
 * code exactly is reset_by_peer_is_an_error_code's business (test_oneshot.c):
 * ECONNRESET, but EOF where the reset is not seen as one (under Wine a
 * "reset" close sends a FIN - evq_net.h; libkqueue reads SO_ERROR, which
 * clears the error before the recv). Here it only must not be
 * EVQ_EWOULDBLOCK, nor a timeout. */
static bool is_a_reset_read(int rc)
{
    return rc == EVQ_ECONNRESET || rc == EVQ_EOF || rc == EVQ_ECONNABORTED;
}

#ifndef _WIN32
/* Run the scenario in a child with SIGPIPE at SIG_DFL (what a program gets
 * unless it changes it). The child's failed checks print as usual and make
 * it exit 1; death by a signal is a failure named after the signal. */
static void in_a_child_with_default_sigpipe(void (*scenario)(void))
{
    fflush(stdout);
    pid_t child = fork();
    REQUIRE_INT(child, >=, 0);
    if (child == 0) {
        signal(SIGPIPE, SIG_DFL);
        scenario();
        fflush(stdout);
        _exit(evq_test_failures() == 0 ? 0 : 1);
    }
    int status = 0;
    pid_t done;
    while ((done = waitpid(child, &status, 0)) < 0 && errno == EINTR)
        continue;
    REQUIRE_INT(done, ==, child);
    if (WIFSIGNALED(status)) {
        evq_test_fail(__FILE__, __LINE__, "the process was killed by signal %d%s", WTERMSIG(status),
                      WTERMSIG(status) == SIGPIPE ? " (SIGPIPE)" : "");
        return;
    }
    CHECK(WIFEXITED(status));
    CHECK_INT(WEXITSTATUS(status), ==, 0); /* its own failures are printed above */
}
#else
static void in_a_child_with_default_sigpipe(void (*scenario)(void))
{
    scenario(); /* no SIGPIPE on Windows: the codes are still checked */
}
#endif

/* Wait for events and read until a final code (bounded), re-arming on
 * EVQ_EWOULDBLOCK. Returns that code, or EVQ_ETIMEDOUT. */
static int read_until_the_end(evq_poll *poll, evq_tcp *stream)
{
    for (int round = 0; round < 50; round++) {
        evq_event event;
        if (!ch06_wait_one(poll, &event, 5000))
            return EVQ_ETIMEDOUT;
        char buf[64];
        size_t len = 0;
        int rc = ch06_read_available(stream, buf, sizeof buf, &len);
        if (rc != 0)
            return rc;
        if ((rc = evq_reregister(poll, stream, event.token, EVQ_READABLE)) != 0)
            return rc;
    }
    return EVQ_ETIMEDOUT;
}

static uint64_t send_calls(const evq_tcp *stream)
{
    return ch06_stats(stream).send_calls;
}

static void write_after_the_reset_was_read(void)
{
    evq_poll *poll;
    evq_tcp *stream;
    evq_socket peer;
    REQUIRE_OK(evq_poll_open(&poll));
    REQUIRE_OK(ch06_pair(poll, &stream, &peer));
    REQUIRE_OK(evq_register(poll, stream, 1, EVQ_READABLE));
    REQUIRE_OK(evq_socket_close_with_reset(peer));
    int rc = read_until_the_end(poll, stream);
    CHECK(is_a_reset_read(rc));
    if (!is_a_reset_read(rc))
        evq_test_note("the read ended with %s", evq_error_name(rc));

    /* The reset has been taken by the read: the socket has no pending error
     * left, and a send now is the EPIPE path. Windows may take the first
     * write after a FIN, so keep writing (bounded) until two errors. */
    uint64_t sends_before = send_calls(stream);
    int errors = 0;
    for (int round = 0; round < 200 && errors < 2; round++) {
        size_t n = 0;
        rc = evq_tcp_write(stream, "after", 5, &n);
        if (rc == 0 || rc == EVQ_EWOULDBLOCK) {
            evq_sleep_ms(5); /* give the peer's answer time to come back */
            continue;
        }
        CHECK(is_a_dead_peer_code(rc));
        if (!is_a_dead_peer_code(rc))
            evq_test_note("the write returned %s", evq_error_name(rc));
        errors++;
    }
    /* Alive to count them, and a send was really made after the reset. */
    CHECK_INT(errors, ==, 2);
    CHECK_UINT(send_calls(stream), >, sends_before);
    evq_tcp_close(stream);
    evq_poll_close(poll);
}

/* A write after the reader has seen the reset reaches a send: an error code,
 * never a SIGPIPE. */
EVQ_TEST(a_write_after_the_reset_was_read_is_an_error_not_a_signal)
{
    in_a_child_with_default_sigpipe(write_after_the_reset_was_read);
}

/* Write until the stream takes no more (the peer reads nothing): the
 * socket is full and the write queue holds bytes. 0, or the write's error. */
static int fill_the_write_queue(evq_tcp *stream)
{
    static char chunk[65536];
    memset(chunk, 'q', sizeof chunk);
    for (size_t written = 0; written < (size_t)64 << 20;) { /* bounded: 64 MiB */
        size_t n = 0;
        int rc = evq_tcp_write(stream, chunk, sizeof chunk, &n);
        if (rc == EVQ_EWOULDBLOCK)
            return evq_tcp_queued(stream) > 0 ? 0 : EVQ_EWOULDBLOCK;
        if (rc != 0)
            return rc;
        written += n;
    }
    return EVQ_ETIMEDOUT; /* 64 MiB taken: the peer must be reading */
}

/* Arm WRITABLE and wait (bounded) for an event with any of `bits`, re-arming
 * after plain WRITABLE ones. Returns the last event's readiness. */
static uint32_t wait_for_writable_with(evq_poll *poll, evq_tcp *stream, evq_token token,
                                       uint32_t bits)
{
    evq_event event = {0, 0};
    if (evq_register(poll, stream, token, EVQ_WRITABLE) != 0)
        return 0;
    for (int round = 0; round < 50; round++) {
        if (!ch06_wait_one(poll, &event, 5000))
            return 0;
        CHECK_UINT(event.token, ==, token);
        if (event.ready & bits)
            break;
        evq_sleep_ms(10); /* not there yet */
        if (evq_reregister(poll, stream, token, EVQ_WRITABLE) != 0)
            return 0;
    }
    return event.ready;
}

/* A stream whose socket was found empty: the library remembers that it
 * would block, and makes no recv until the kernel says otherwise. */
static int a_stream_read_dry(evq_poll *poll, evq_tcp **stream, evq_socket *peer)
{
    int rc = ch06_pair(poll, stream, peer);
    char buf[16];
    size_t n = 0;
    if (rc == 0 && (rc = evq_tcp_read(*stream, buf, sizeof buf, &n)) == EVQ_EWOULDBLOCK)
        rc = 0;
    return rc;
}

/* The next read says the stream is dead, and goes on saying it. */
static void check_the_read_is_the_end(evq_tcp *stream)
{
    char buf[16];
    size_t n = 99;
    int rc = evq_tcp_read(stream, buf, sizeof buf, &n);
    CHECK(is_a_reset_read(rc));
    if (!is_a_reset_read(rc))
        evq_test_note("the read returned %s", evq_error_name(rc));
    CHECK_UINT(n, ==, 0);
    CHECK_ERR(evq_tcp_read(stream, buf, sizeof buf, &n), rc);
}

static void queued_bytes_after_the_reset_was_read(void)
{
    evq_poll *poll;
    evq_tcp *stream;
    evq_socket peer;
    REQUIRE_OK(evq_poll_open(&poll));
    REQUIRE_OK(ch06_pair(poll, &stream, &peer));
    REQUIRE_OK(fill_the_write_queue(stream));

    /* The peer resets (with unread bytes it would anyway), and a read takes
     * the reset before the queue's next flush. No wait in between: the wait
     * would flush first and meet the pending error itself. */
    REQUIRE_OK(evq_socket_close_with_reset(peer));
    evq_sleep_ms(50); /* loopback delivers the RST at once; this is slack */
    char buf[16];
    size_t n = 0;
    int rc = evq_tcp_read(stream, buf, sizeof buf, &n);
#if defined(_WIN32) || defined(EVQ_BACKEND_URING)
    /* A completion backend may have an operation in flight that meets the
     * reset first: on IOCP a receive may still be on its way; on io_uring
     * the send the full socket kept waiting takes the error, and a read
     * then finds the end. The flush is what counts. */
    (void)rc;
#else
    CHECK_ERR(rc, EVQ_ECONNRESET);
#endif

    /* Now the wait flushes the queue into the dead socket: the send fails,
     * and the caller hears it as EVQ_ERR, then from every write. */
    uint64_t sends_before = send_calls(stream);
    CHECK_UINT(wait_for_writable_with(poll, stream, 2, EVQ_ERR) & EVQ_ERR, ==, EVQ_ERR);
    rc = evq_tcp_write(stream, "after", 5, &n);
    CHECK(is_a_dead_peer_code(rc));
    if (!is_a_dead_peer_code(rc))
        evq_test_note("the write returned %s", evq_error_name(rc));
    CHECK_UINT(evq_tcp_queued(stream), ==, 0); /* undeliverable: dropped */
#if defined(EVQ_BACKEND_URING)
    /* That send was made before the reset, and waited in the kernel for room. */
    CHECK_UINT(send_calls(stream), >=, sends_before);
#else
    CHECK_UINT(send_calls(stream), >, sends_before);
#endif
    evq_tcp_close(stream);
    evq_poll_close(poll);
}

/* The queue's own flush, after the reader has seen the reset, is a send into
 * a dead socket too: an error code, never a SIGPIPE. */
EVQ_TEST(a_queue_flushed_after_the_reset_was_read_is_an_error_not_a_signal)
{
    in_a_child_with_default_sigpipe(queued_bytes_after_the_reset_was_read);
}

#ifndef _WIN32
/* A stream read dry, registered for WRITABLE only: the peer's reset comes as
 * an event with EVQ_ERR/EVQ_HUP on the write side. The socket is dead for
 * reading too, so the next read returns the error - a backend that forgets
 * the read side on an event that does not say READABLE answers
 * EVQ_EWOULDBLOCK on a dead stream, for ever. POSIX only: the event comes
 * from the kernel's readiness; IOCP watches nothing on a write-only
 * registration but its sends (and under Wine a reset close is a FIN, which
 * ends no send). */
EVQ_TEST_POSIX(a_read_after_an_error_event_on_a_write_only_registration)
{
    evq_poll *poll;
    evq_tcp *stream;
    evq_socket peer;
    REQUIRE_OK(evq_poll_open(&poll));
    REQUIRE_OK(a_stream_read_dry(poll, &stream, &peer));
    REQUIRE_OK(evq_socket_close_with_reset(peer));
    evq_sleep_ms(20);
    REQUIRE_UINT(wait_for_writable_with(poll, stream, 3, EVQ_ERR | EVQ_HUP) & (EVQ_ERR | EVQ_HUP),
                 !=, 0);
    check_the_read_is_the_end(stream);
    evq_tcp_close(stream);
    evq_poll_close(poll);
}
#endif

/* The same when the error event comes from the write side's own failure: a
 * stream read dry, its write queue full, registered for WRITABLE only; the
 * peer goes away without reading (a close with unread bytes resets, on
 * every system), the queue's send in the background fails, and the caller
 * hears EVQ_ERR. "EVQ_ERR: the connection failed (reads and writes return
 * its error)" - so the next read is the end, not EVQ_EWOULDBLOCK. */
EVQ_TEST(a_read_after_a_failed_background_send_is_the_end)
{
    evq_poll *poll;
    evq_tcp *stream;
    evq_socket peer;
    REQUIRE_OK(evq_poll_open(&poll));
    REQUIRE_OK(a_stream_read_dry(poll, &stream, &peer));
    REQUIRE_OK(fill_the_write_queue(stream));
    REQUIRE_OK(evq_socket_close_with_reset(peer));
    REQUIRE_UINT(wait_for_writable_with(poll, stream, 4, EVQ_ERR) & EVQ_ERR, ==, EVQ_ERR);
    check_the_read_is_the_end(stream);
    evq_tcp_close(stream);
    evq_poll_close(poll);
}

int main(int argc, char **argv)
{
    static const evq_test_case cases[] = {
        EVQ_CASE(a_write_after_the_reset_was_read_is_an_error_not_a_signal),
        EVQ_CASE(a_queue_flushed_after_the_reset_was_read_is_an_error_not_a_signal),
#ifndef _WIN32
        EVQ_CASE(a_read_after_an_error_event_on_a_write_only_registration),
#endif
        EVQ_CASE(a_read_after_a_failed_background_send_is_the_end),
    };
    return evq_test_main(argc, argv, cases, EVQ_COUNT(cases));
}

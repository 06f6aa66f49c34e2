/* test_rearm_armed.c - chapter 2: re-registering a stream that is armed and
 * has not fired yet. Only the token (and the interests) change: the arming
 * the kernel holds is already the right one. On kqueue that means no knote
 * is added again - re-adding an armed EVFILT_WRITE knote fails on libkqueue
 * (it refuses to modify one without EV_CLEAR), which made evq_reregister
 * fail on a healthy stream; on FreeBSD it would only cost a system call.
 */
#include "ch02_test.h"

/* Write until the stream says EVQ_EWOULDBLOCK: the socket's send buffer
 * (IOCP: the one write in flight) is full, so WRITABLE does not hold. */
static bool fill(evq_tcp *stream)
{
    static char chunk[64 * 1024];
    for (int i = 0; i < 4096; i++) {
        size_t n = 0;
        int rc = evq_tcp_write(stream, chunk, sizeof chunk, &n);
        if (rc == EVQ_EWOULDBLOCK)
            return true;
        if (!CHECK_OK(rc))
            return false;
    }
    return CHECK(!"the socket never filled up");
}

EVQ_TEST(reregistering_a_waiting_stream_only_changes_its_token)
{
    evq_poll *poll;
    evq_tcp *stream;
    evq_socket peer;
    REQUIRE_OK(evq_poll_open(&poll));
    REQUIRE_OK(ch02_pair(poll, &stream, &peer));
    REQUIRE_OK(evq_socket_set_recv_timeout(peer, 10000));
    REQUIRE(fill(stream));
    /* Armed, and waiting (on POSIX the send buffer is full; on IOCP the
     * write's completion has not been dequeued yet: only a wait does that). */
    REQUIRE_OK(evq_register(poll, stream, 1, EVQ_WRITABLE));
    CHECK_OK(evq_reregister(poll, stream, 2, EVQ_WRITABLE));
    CHECK_OK(evq_reregister(poll, stream, 3, EVQ_WRITABLE | EVQ_READABLE));
    /* The peer reads until the stream is writable again: one event, with
     * the last token. */
    evq_event event;
    size_t n = 0;
    bool fired = false;
    static char sink[64 * 1024];
    for (int i = 0; i < 4096 && !fired; i++) {
        size_t got = 0;
        REQUIRE_OK(evq_net_recv(peer, sink, sizeof sink, &got));
        REQUIRE_OK(evq_poll_wait(poll, &event, 1, 10, &n));
        fired = n == 1;
    }
    REQUIRE(fired);
    CHECK_UINT(event.token, ==, 3);
    CHECK_UINT(event.ready & EVQ_WRITABLE, ==, EVQ_WRITABLE);
    evq_tcp_close(stream);
    evq_socket_close(peer);
    evq_poll_close(poll);
}

int main(int argc, char **argv)
{
    static const evq_test_case cases[] = {
        EVQ_CASE(reregistering_a_waiting_stream_only_changes_its_token),
    };
    return evq_test_main(argc, argv, cases, EVQ_COUNT(cases));
}

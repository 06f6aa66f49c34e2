/* test_descriptors.c - EVFILT_READ and EVFILT_WRITE on sockets and pipes:
 * what data means, and EV_EOF (FreeBSD kqueue(2), EVFILT_READ and
 * EVFILT_WRITE). */
#if defined(__APPLE__)
#define _DARWIN_C_SOURCE
#elif !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "evq_net.h"
#include "evq_test.h"
#include "kq_test.h"

/* "Other socket descriptors return when there is data to be read ... On
 * return, data contains the number of bytes of protocol data available to
 * read." */
EVQ_TEST(read_data_is_bytes_available)
{
    int kq = kq_open(), a, b;
    REQUIRE(kq >= 0);
    REQUIRE(tcp_pair(&a, &b));
    CHECK_INT(kq_change(kq, (uintptr_t)a, EVFILT_READ, EV_ADD, 0, 0, NULL), ==, 0);
    CHECK_INT(write(b, "hello", 5), ==, 5);
    struct kevent event;
    REQUIRE(kq_wait_for(kq, (uintptr_t)a, EVFILT_READ, 0, &event, 5000));
    CHECK_INT(event.data, ==, 5);
    CHECK(!(event.flags & EV_EOF));
    close(a);
    close(b);
    close(kq);
}

/* "Sockets which have previously been passed to listen() return when there
 * is an incoming connection pending. data contains the size of the listen
 * backlog." */
EVQ_TEST(listen_data_is_pending_connections)
{
    int kq = kq_open();
    REQUIRE(kq >= 0);
    evq_socket listener, clients[2];
    uint16_t port;
    REQUIRE_OK(evq_net_listen_loopback(0, 8, &listener, &port));
    CHECK_INT(kq_change(kq, (uintptr_t)listener, EVFILT_READ, EV_ADD, 0, 0, NULL), ==, 0);
    struct kevent events[4];
    CHECK_INT(kq_poll(kq, events, 4), ==, 0);
    REQUIRE_OK(evq_net_connect_loopback(port, &clients[0]));
    REQUIRE_OK(evq_net_connect_loopback(port, &clients[1]));
    /* connect() returns when the client has its SYN-ACK; wait (bounded) until
     * the listener has counted both. */
    struct kevent event = {0};
    int64_t deadline = monotonic_ms() + 5000;
    while (monotonic_ms() < deadline) {
        if (kq_wait_for(kq, (uintptr_t)listener, EVFILT_READ, 0, &event, 100) && event.data >= 2)
            break;
    }
    CHECK_INT(event.data, ==, 2);
    evq_socket accepted;
    REQUIRE_OK(evq_net_accept(listener, &accepted));
    CHECK(kq_wait_for(kq, (uintptr_t)listener, EVFILT_READ, 0, &event, 5000));
    CHECK_INT(event.data, ==, 1);
    close(accepted);
    close(clients[0]);
    close(clients[1]);
    close(listener);
    close(kq);
}

/* "For sockets, pipes and fifos, data will contain the amount of space
 * remaining in the write buffer." */
EVQ_TEST(write_data_is_free_space)
{
    int kq = kq_open(), a, b;
    REQUIRE(kq >= 0);
    REQUIRE(tcp_pair(&a, &b));
    int sndbuf = 0;
    socklen_t length = sizeof sndbuf;
    REQUIRE_INT(getsockopt(a, SOL_SOCKET, SO_SNDBUF, &sndbuf, &length), ==, 0);
    CHECK_INT(kq_change(kq, (uintptr_t)a, EVFILT_WRITE, EV_ADD, 0, 0, NULL), ==, 0);
    struct kevent event;
    REQUIRE(kq_wait_for(kq, (uintptr_t)a, EVFILT_WRITE, 0, &event, 5000));
    CHECK_INT(event.data, >, 0);
    CHECK_INT(event.data, <=, sndbuf);
    close(a);
    close(b);
    close(kq);
}

/* EVFILT_WRITE "returns whenever it is possible to write": not while the
 * send buffer is full, and again once the peer has read. (What data says
 * then is write_data_is_free_space's rule.) */
EVQ_TEST(write_waits_for_room)
{
    int kq = kq_open(), a, b;
    REQUIRE(kq >= 0);
    REQUIRE(tcp_pair(&a, &b));
    int small = 8192;
    setsockopt(a, SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    setsockopt(b, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    size_t sent = fill(a, (size_t)64 << 20);
    REQUIRE_UINT(sent, >, 0);
    REQUIRE_UINT(sent, <, (size_t)64 << 20); /* it did fill up */
    CHECK_INT(kq_change(kq, (uintptr_t)a, EVFILT_WRITE, EV_ADD | EV_CLEAR, 0, 0, NULL), ==, 0);
    struct kevent events[4];
    CHECK(kq_find(events, kq_poll(kq, events, 4), (uintptr_t)a, EVFILT_WRITE) == NULL);
    /* The peer reads everything: room again. */
    struct kevent event;
    bool writable = false;
    for (int round = 0; round < 500 && !writable; round++) {
        drain(b);
        writable = kq_wait_for(kq, (uintptr_t)a, EVFILT_WRITE, 0, &event, 20);
    }
    CHECK(writable);
    close(a);
    close(b);
    close(kq);
}

/* "If the read direction of the socket has shutdown, then the filter also
 * sets EV_EOF in flags ... It is possible for EOF to be returned (indicating
 * the connection is gone) while there is still data pending in the socket
 * buffer." */
EVQ_TEST(eof_comes_with_data_still_readable)
{
    int kq = kq_open(), a, b;
    REQUIRE(kq >= 0);
    REQUIRE(tcp_pair(&a, &b));
    CHECK_INT(kq_change(kq, (uintptr_t)a, EVFILT_READ, EV_ADD, 0, 0, NULL), ==, 0);
    CHECK_INT(write(b, "hello", 5), ==, 5);
    CHECK_INT(shutdown(b, SHUT_WR), ==, 0);
    struct kevent event;
    REQUIRE(kq_wait_for(kq, (uintptr_t)a, EVFILT_READ, EV_EOF, &event, 5000));
    CHECK_INT(event.data, ==, 5);
    CHECK_UINT(event.fflags, ==, 0); /* a clean shutdown: no socket error */
    char buffer[8];
    CHECK_INT(read(a, buffer, sizeof buffer), ==, 5);
    /* Drained: still EV_EOF (level-triggered), now with nothing to read. */
    REQUIRE(kq_wait_for(kq, (uintptr_t)a, EVFILT_READ, EV_EOF, &event, 5000));
    CHECK_INT(event.data, ==, 0);
    CHECK_INT(read(a, buffer, sizeof buffer), ==, 0);
    close(a);
    close(b);
    close(kq);
}

/* The same rule with EV_CLEAR, which chapter 5 relies on: bytes reported
 * and left unread, then the peer's FIN is a new edge, and it says EV_EOF.
 * A queue that stops reading at a short read (the bytes the event's data
 * counted) learns of the end only from this flag. */
EVQ_TEST(eof_after_unread_data_is_an_edge_with_eof)
{
    int kq = kq_open(), a, b;
    REQUIRE(kq >= 0);
    REQUIRE(tcp_pair(&a, &b));
    /* Both directions, as chapter 5 registers a stream. */
    CHECK_INT(kq_change(kq, (uintptr_t)a, EVFILT_READ, EV_ADD | EV_CLEAR, 0, 0, NULL), ==, 0);
    CHECK_INT(kq_change(kq, (uintptr_t)a, EVFILT_WRITE, EV_ADD | EV_CLEAR, 0, 0, NULL), ==, 0);
    CHECK_INT(write(b, "hello", 5), ==, 5);
    struct kevent event;
    REQUIRE(kq_wait_for(kq, (uintptr_t)a, EVFILT_READ, 0, &event, 5000));
    CHECK_INT(event.data, ==, 5);
    CHECK(!(event.flags & EV_EOF));
    CHECK_INT(shutdown(b, SHUT_WR), ==, 0);
    CHECK(kq_wait_for(kq, (uintptr_t)a, EVFILT_READ, EV_EOF, &event, 2000));
    CHECK_INT(event.data, ==, 5);
    close(a);
    close(b);
    close(kq);
}

/* Events that do not fit the eventlist stay pending for the next call
 * ("nevents ... the maximum number of events to return"): an EV_CLEAR
 * trigger is reset only when its event is retrieved. Forty sockets with a
 * read and a write knote each, one byte to every one, collected eight
 * events at a time: every socket is reported readable exactly once. */
EVQ_TEST(events_beyond_the_eventlist_wait_for_the_next_call)
{
    enum { PAIRS = 40, ROOM = 8 };
    int kq = kq_open();
    REQUIRE(kq >= 0);
    int a[PAIRS], b[PAIRS];
    for (int i = 0; i < PAIRS; i++) {
        REQUIRE(tcp_pair(&a[i], &b[i]));
        CHECK_INT(kq_change(kq, (uintptr_t)a[i], EVFILT_READ, EV_ADD | EV_CLEAR, 0, 0,
                            (void *)(intptr_t)i), ==, 0);
        CHECK_INT(kq_change(kq, (uintptr_t)a[i], EVFILT_WRITE, EV_ADD | EV_CLEAR, 0, 0,
                            (void *)(intptr_t)i), ==, 0);
    }
    struct kevent events[ROOM];
    for (int k = 0; k < 1000 && kq_wait(kq, events, ROOM, 20) > 0; k++)
        ; /* the write edges of the new sockets */
    for (int i = 0; i < PAIRS; i++)
        CHECK_INT(write(b[i], "x", 1), ==, 1);
    int readable[PAIRS] = {0}, reads = 0;
    for (int k = 0; k < 1000; k++) {
        int n = kq_wait(kq, events, ROOM, 200);
        if (n <= 0)
            break;
        for (int e = 0; e < n; e++) {
            intptr_t i = (intptr_t)events[e].udata;
            REQUIRE(i >= 0 && i < PAIRS);
            if (events[e].filter == EVFILT_READ && readable[i]++ == 0)
                reads++;
        }
    }
    CHECK_INT(reads, ==, PAIRS);
    for (int i = 0; i < PAIRS; i++) {
        CHECK_INT(readable[i], ==, 1);
        close(a[i]);
        close(b[i]);
    }
    close(kq);
}

/* EV_EOF "returns the socket error (if any) in fflags" - and the error stays
 * the caller's to read: recv() still fails with it. */
EVQ_TEST(reset_sets_eof_with_the_socket_error)
{
    int kq = kq_open(), a, b;
    REQUIRE(kq >= 0);
    REQUIRE(tcp_pair(&a, &b));
    CHECK_INT(kq_change(kq, (uintptr_t)a, EVFILT_READ, EV_ADD, 0, 0, NULL), ==, 0);
    REQUIRE_OK(evq_socket_close_with_reset(b));
    struct kevent event;
    REQUIRE(kq_wait_for(kq, (uintptr_t)a, EVFILT_READ, EV_EOF, &event, 5000));
    CHECK_UINT(event.fflags, ==, ECONNRESET);
    char buffer[8];
    errno = 0;
    CHECK_INT(recv(a, buffer, sizeof buffer, 0), ==, -1);
    CHECK_INT(errno, ==, ECONNRESET);
    close(a);
    close(kq);
}

/* A non-blocking connect() that is refused: EVFILT_WRITE returns with EV_EOF
 * and the error in fflags, and SO_ERROR still holds it afterwards. */
EVQ_TEST(refused_connect_reports_the_error)
{
    int kq = kq_open();
    REQUIRE(kq >= 0);
    int refuser;
    uint16_t port;
    REQUIRE(refusing_port(&refuser, &port));
    struct sockaddr_in address;
    memset(&address, 0, sizeof address);
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    /* Loopback may refuse at once; try until connect() is in progress. */
    int s = -1;
    for (int attempt = 0; attempt < 100 && s < 0; attempt++) {
        s = socket(AF_INET, SOCK_STREAM, 0);
        REQUIRE(s >= 0 && set_nonblocking(s));
        if (connect(s, (struct sockaddr *)&address, sizeof address) == 0 || errno != EINPROGRESS) {
            close(s);
            s = -1;
        }
    }
    if (s < 0) {
        evq_test_note("every connect() was refused at once: nothing to wait for");
        close(refuser);
        close(kq);
        return;
    }
    CHECK_INT(kq_change(kq, (uintptr_t)s, EVFILT_WRITE, EV_ADD, 0, 0, NULL), ==, 0);
    struct kevent event;
    REQUIRE(kq_wait_for(kq, (uintptr_t)s, EVFILT_WRITE, EV_EOF, &event, 5000));
    CHECK_UINT(event.fflags, ==, ECONNREFUSED);
    int error = 0;
    socklen_t length = sizeof error;
    CHECK_INT(getsockopt(s, SOL_SOCKET, SO_ERROR, &error, &length), ==, 0);
    CHECK_INT(error, ==, ECONNREFUSED);
    close(s);
    close(refuser);
    close(kq);
}

/* EVFILT_WRITE sets EV_EOF when the socket can no longer send (FreeBSD:
 * SS_CANTSENDMORE), here after shutdown(SHUT_WR); a clean one, fflags 0. */
EVQ_TEST(write_eof_after_shutdown)
{
    int kq = kq_open(), a, b;
    REQUIRE(kq >= 0);
    REQUIRE(tcp_pair(&a, &b));
    CHECK_INT(kq_change(kq, (uintptr_t)a, EVFILT_WRITE, EV_ADD, 0, 0, NULL), ==, 0);
    struct kevent event;
    REQUIRE(kq_wait_for(kq, (uintptr_t)a, EVFILT_WRITE, 0, &event, 5000));
    CHECK(!(event.flags & EV_EOF));
    CHECK_INT(shutdown(a, SHUT_WR), ==, 0);
    REQUIRE(kq_wait_for(kq, (uintptr_t)a, EVFILT_WRITE, EV_EOF, &event, 5000));
    CHECK_UINT(event.fflags, ==, 0);
    close(a);
    close(b);
    close(kq);
}

/* Pipes: "Returns when there is data to read; data contains the number of
 * bytes available. When the last writer disconnects, the filter will set
 * EV_EOF in flags." */
EVQ_TEST(pipe_read_data_and_eof)
{
    int kq = kq_open(), fds[2];
    REQUIRE(kq >= 0);
    REQUIRE(nonblocking_pipe(fds));
    CHECK_INT(kq_change(kq, (uintptr_t)fds[0], EVFILT_READ, EV_ADD, 0, 0, NULL), ==, 0);
    struct kevent events[4];
    CHECK_INT(kq_poll(kq, events, 4), ==, 0);
    CHECK_INT(write(fds[1], "abc", 3), ==, 3);
    struct kevent event;
    REQUIRE(kq_wait_for(kq, (uintptr_t)fds[0], EVFILT_READ, 0, &event, 5000));
    CHECK_INT(event.data, ==, 3);
    CHECK(!(event.flags & EV_EOF));
    close(fds[1]);
    REQUIRE(kq_wait_for(kq, (uintptr_t)fds[0], EVFILT_READ, EV_EOF, &event, 5000));
    CHECK_INT(event.data, ==, 3);
    close(fds[0]);
    close(kq);
}

/* A pipe's write end: data is the free space; EV_EOF "when the reader
 * disconnects". */
EVQ_TEST(pipe_write_space_and_eof)
{
    int kq = kq_open(), fds[2];
    REQUIRE(kq >= 0);
    REQUIRE(nonblocking_pipe(fds));
    CHECK_INT(kq_change(kq, (uintptr_t)fds[1], EVFILT_WRITE, EV_ADD, 0, 0, NULL), ==, 0);
    struct kevent event;
    REQUIRE(kq_wait_for(kq, (uintptr_t)fds[1], EVFILT_WRITE, 0, &event, 5000));
    int64_t empty = event.data;
    CHECK_INT(empty, >, 0);
    CHECK_INT(write(fds[1], "abcd", 4), ==, 4);
    REQUIRE(kq_wait_for(kq, (uintptr_t)fds[1], EVFILT_WRITE, 0, &event, 5000));
    CHECK_INT(event.data, ==, empty - 4);
    close(fds[0]);
    REQUIRE(kq_wait_for(kq, (uintptr_t)fds[1], EVFILT_WRITE, EV_EOF, &event, 5000));
    close(fds[1]);
    close(kq);
}

int main(int argc, char **argv)
{
    static const evq_test_case cases[] = {
        EVQ_CASE(read_data_is_bytes_available),
        EVQ_CASE(listen_data_is_pending_connections),
        EVQ_CASE(write_data_is_free_space),
        EVQ_CASE(write_waits_for_room),
        EVQ_CASE(eof_comes_with_data_still_readable),
        EVQ_CASE(eof_after_unread_data_is_an_edge_with_eof),
        EVQ_CASE(events_beyond_the_eventlist_wait_for_the_next_call),
        EVQ_CASE(reset_sets_eof_with_the_socket_error),
        EVQ_CASE(refused_connect_reports_the_error),
        EVQ_CASE(write_eof_after_shutdown),
        EVQ_CASE(pipe_read_data_and_eof),
        EVQ_CASE(pipe_write_space_and_eof),
    };
    return evq_test_main(argc, argv, cases, EVQ_COUNT(cases));
}

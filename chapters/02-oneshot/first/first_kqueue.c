/* first_kqueue.c - first contact with kqueue: one HTTP request, on the raw
 * BSD API and nothing else (no evq library). On Linux it builds against
 * appendix B's emulation of <sys/event.h> (or libkqueue), on macOS and the
 * BSDs against the system's.
 *
 *     ch02_first_kqueue [DELAY_MS [MESSAGE]]       (default: 200 hello)
 *
 * The peer is the book's delay server, started inside this process on
 * 127.0.0.1: `GET /{DELAY_MS}/{MESSAGE}` is answered with MESSAGE after
 * DELAY_MS milliseconds. The answer goes to stdout, byte for byte.
 */
/* ANCHOR: opening */
#if defined(__linux__)
#define _POSIX_C_SOURCE 200809L /* timespec, recv, fcntl; the BSDs show them by default */
#endif
#include <sys/types.h> /* before <sys/event.h> on older BSDs */
#include <sys/event.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include "evq_delay_server.h"

#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0 /* macOS: no such flag (SO_NOSIGPIPE is its way) */
#endif

static int fail(const char *what)
{
    perror(what); /* what the call left in errno */
    return 1;
}

int main(int argc, char **argv)
{
    const char *delay = argc > 1 ? argv[1] : "200", *message = argc > 2 ? argv[2] : "hello";
    evq_delay_server *server;
    if (evq_delay_server_start(NULL, &server) != 0)
        return 1;
    /* ANCHOR_END: opening */

    /* ANCHOR: setup */
    /* A TCP connection, opened and written to while the socket still blocks;
     * then O_NONBLOCK, so that only kevent may put the thread to sleep. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in to = {.sin_family = AF_INET,
                             .sin_port = htons(evq_delay_server_port(server))};
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    char request[256];
    int length = snprintf(request, sizeof request,
                          "GET /%s/%s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
                          delay, message);
    if (fd < 0 || connect(fd, (struct sockaddr *)&to, sizeof to) != 0 ||
        send(fd, request, (size_t)length, MSG_NOSIGNAL) != length ||
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) != 0)
        return fail("connect and send");

    /* The queue, and one change to it: add a knote for (fd, EVFILT_READ).
     * The same kevent() call both applies changes and waits for events. */
    int kq = kqueue();
    struct kevent change;
    EV_SET(&change, fd, EVFILT_READ, EV_ADD, 0, 0, NULL);
    if (kq < 0 || kevent(kq, &change, 1, NULL, 0, NULL) != 0)
        return fail("kqueue and kevent(EV_ADD)");
    /* ANCHOR_END: setup */

    /* ANCHOR: wait */
    char answer[4096];
    size_t got = 0;
    int waits = 0, closed = 0;
    while (!closed && got < sizeof answer) {
        struct kevent ready[8];
        struct timespec timeout = {10, 0}; /* 10 s at most */
        int n = kevent(kq, NULL, 0, ready, 8, &timeout);
        if (n < 0 && errno == EINTR)
            continue; /* a signal: the library waits again for the time that is left */
        if (n <= 0)
            return fail(n == 0 ? "kevent (timed out)" : "kevent");
        waits++;
        for (int i = 0; i < n; i++) {
            /* Readiness, with more said than epoll says: data is the number
             * of bytes waiting, EV_EOF in flags that the peer has closed. */
            if (ready[i].ident != (uintptr_t)fd || ready[i].filter != EVFILT_READ)
                continue;
            while (!closed && got < sizeof answer) {
                ssize_t r = recv(fd, answer + got, sizeof answer - got, 0);
                if (r > 0)
                    got += (size_t)r;
                else if (r == 0)
                    closed = 1; /* the server closed: the whole answer is here */
                else if (errno == EAGAIN || errno == EWOULDBLOCK)
                    break; /* nothing more now: back to kevent */
                else if (errno != EINTR)
                    return fail("recv");
            }
        }
    }

    close(kq); /* the knote goes with the queue (and with fd, when fd closes) */
    close(fd);
    fwrite(answer, 1, got, stdout);
    fprintf(stderr, "first_kqueue: %zu bytes after %d kevent wait(s)\n", got, waits);
    evq_delay_server_stop(server);
    return 0;
}
/* ANCHOR_END: wait */

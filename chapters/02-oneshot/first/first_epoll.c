/* first_epoll.c - first contact with epoll: one HTTP request, on the raw
 * Linux API and nothing else (no evq library).
 *
 *     ch02_first_epoll [DELAY_MS [MESSAGE]]        (default: 200 hello)
 *
 * The peer is the book's delay server, started inside this process on
 * 127.0.0.1: `GET /{DELAY_MS}/{MESSAGE}` is answered with MESSAGE after
 * DELAY_MS milliseconds. The answer goes to stdout, byte for byte.
 */
/* ANCHOR: opening */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "evq_delay_server.h"

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
    /* A TCP connection, opened and written to while the socket still blocks
     * (a non-blocking connect is chapter 4's); then O_NONBLOCK, so that no
     * read can ever put the thread to sleep: only epoll_wait may. */
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

    /* The queue, and one interest in it: "tell me when fd is readable".
     * data is ours: the kernel hands it back untouched with the event. */
    int epfd = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event interest = {.events = EPOLLIN, .data.fd = fd};
    if (epfd < 0 || epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &interest) != 0)
        return fail("epoll_create1 and epoll_ctl");
    /* ANCHOR_END: setup */

    /* ANCHOR: wait */
    char answer[4096];
    size_t got = 0;
    int waits = 0, closed = 0;
    while (!closed && got < sizeof answer) {
        struct epoll_event ready[8];
        int n = epoll_wait(epfd, ready, 8, 10000); /* sleep until readable, 10 s at most */
        if (n < 0 && errno == EINTR)
            continue; /* a signal: the library waits again for the time that is left */
        if (n <= 0)
            return fail(n == 0 ? "epoll_wait (timed out)" : "epoll_wait");
        waits++;
        for (int i = 0; i < n; i++) {
            /* Readiness: bytes are there, or the end. Read until it would block. */
            while (ready[i].data.fd == fd && !closed && got < sizeof answer) {
                ssize_t r = recv(fd, answer + got, sizeof answer - got, 0);
                if (r > 0)
                    got += (size_t)r;
                else if (r == 0)
                    closed = 1; /* the server closed: the whole answer is here */
                else if (errno == EAGAIN || errno == EWOULDBLOCK)
                    break; /* nothing more now: back to epoll_wait */
                else if (errno != EINTR)
                    return fail("recv");
            }
        }
    }

    close(epfd); /* the socket leaves the interest list when it closes */
    close(fd);
    fwrite(answer, 1, got, stdout);
    fprintf(stderr, "first_epoll: %zu bytes after %d epoll_wait call(s)\n", got, waits);
    evq_delay_server_stop(server);
    return 0;
}
/* ANCHOR_END: wait */

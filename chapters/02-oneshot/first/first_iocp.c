/* first_iocp.c - first contact with an I/O completion port: one HTTP
 * request, on the raw Windows API and nothing else (no evq library).
 *
 *     ch02_first_iocp [DELAY_MS [MESSAGE]]         (default: 200 hello)
 *
 * The peer is the book's delay server, started inside this process on
 * 127.0.0.1: `GET /{DELAY_MS}/{MESSAGE}` is answered with MESSAGE after
 * DELAY_MS milliseconds. The answer goes to stdout, byte for byte.
 */
/* ANCHOR: opening */
#include <winsock2.h>
#include <windows.h>
#include <fcntl.h>
#include <io.h>
#include <stdio.h>
#include <string.h>

#include "evq_delay_server.h"

#define KEY 7 /* our completion key for the socket: returned with each of its completions */

static int fail(const char *what)
{
    /* WSAGetLastError() is this thread's GetLastError(): one code for both. */
    fprintf(stderr, "%s: error %lu\n", what, (unsigned long)GetLastError());
    return 1;
}

int main(int argc, char **argv)
{
    const char *delay = argc > 1 ? argv[1] : "200", *message = argc > 2 ? argv[2] : "hello";
    WSADATA winsock;
    evq_delay_server *server;
    if (WSAStartup(MAKEWORD(2, 2), &winsock) != 0 || evq_delay_server_start(NULL, &server) != 0)
        return 1;
    /* ANCHOR_END: opening */

    /* ANCHOR: setup */
    /* A TCP socket made for overlapped I/O, connected and written to with
     * plain blocking calls. No FIONBIO: a completion port never asks whether
     * a call would block; it hands out work and reports when it is done. */
    SOCKET s = WSASocketW(AF_INET, SOCK_STREAM, IPPROTO_TCP, NULL, 0, WSA_FLAG_OVERLAPPED);
    struct sockaddr_in to = {.sin_family = AF_INET,
                             .sin_port = htons(evq_delay_server_port(server))};
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    char request[256];
    int length = snprintf(request, sizeof request,
                          "GET /%s/%s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
                          delay, message);
    if (s == INVALID_SOCKET || connect(s, (struct sockaddr *)&to, sizeof to) != 0 ||
        send(s, request, length, 0) != length)
        return fail("connect and send");

    /* The queue is a completion port; tying the socket to it (once, for
     * good) routes every completion of the socket's overlapped I/O there. */
    HANDLE port = CreateIoCompletionPort(INVALID_HANDLE_VALUE, NULL, 0, 1);
    if (port == NULL || CreateIoCompletionPort((HANDLE)s, port, KEY, 0) != port)
        return fail("CreateIoCompletionPort");
    /* ANCHOR_END: setup */

    /* ANCHOR: wait */
    /* The buffer and the OVERLAPPED are lent to the kernel by WSARecv and are
     * its until the completion is dequeued: they must outlive the call (here
     * main's frame does). The WSABUF is read before WSARecv returns. */
    static char answer[4096];
    OVERLAPPED overlapped;
    DWORD got = 0, bytes;
    int waits = 0, closed = 0;
    while (!closed && got < sizeof answer) {
        memset(&overlapped, 0, sizeof overlapped);
        WSABUF into = {(ULONG)(sizeof answer - got), answer + got};
        DWORD flags = 0;
        if (WSARecv(s, &into, 1, NULL, &flags, &overlapped, NULL) != 0 &&
            WSAGetLastError() != WSA_IO_PENDING)
            return fail("WSARecv");
        /* Completion: the receive has happened, into our buffer. Even one
         * that finished at once is reported here. One operation is in
         * flight, so the one entry is its completion. */
        OVERLAPPED_ENTRY done[8];
        ULONG n = 0;
        if (!GetQueuedCompletionStatusEx(port, done, 8, &n, 10000, FALSE))
            return fail("GetQueuedCompletionStatusEx"); /* WAIT_TIMEOUT after 10 s */
        waits++;
        if (n != 1 || done[0].lpCompletionKey != KEY || done[0].lpOverlapped != &overlapped ||
            !WSAGetOverlappedResult(s, &overlapped, &bytes, FALSE, &flags))
            return fail("the receive");
        got += bytes;
        closed = bytes == 0; /* the server closed: the whole answer is here */
    }

    closesocket(s); /* nothing in flight now: nothing of ours is the kernel's */
    CloseHandle(port);
    _setmode(_fileno(stdout), _O_BINARY); /* the answer's "\r\n" as they came */
    fwrite(answer, 1, got, stdout);
    fprintf(stderr, "first_iocp: %lu bytes after %d completion wait(s)\n", (unsigned long)got,
            waits);
    evq_delay_server_stop(server);
    WSACleanup();
    return 0;
}
/* ANCHOR_END: wait */

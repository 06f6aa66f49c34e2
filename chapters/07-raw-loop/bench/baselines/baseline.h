/* baseline.h - what chapter 7's baseline echo servers share, and no library
 * gives them: the command line (--port, --threads), one loopback listener per
 * loop thread, the stop signal every loop watches, the accept that survives
 * the descriptor limit, and a write buffer for the servers that write by hand.
 *
 * Each server (epoll_echo.c, uv_echo.c, event_echo.c, ev_echo.c) is one loop
 * function; baseline_main() runs it on every thread:
 *
 *     int main(int argc, char **argv)
 *     {
 *         return baseline_main(argc, argv, "raw epoll ET", run_loop);
 *     }
 *
 * The main thread takes SIGINT and SIGTERM (every other thread blocks them),
 * then makes the stop descriptor readable: each loop sees it, closes its
 * connections and returns, and the process exits with status 0. Nothing is
 * printed per request: one line when the server listens, one when it stops.
 */
#ifndef CH07_BASELINE_H
#define CH07_BASELINE_H

#include <stdbool.h>
#include <stddef.h>

/* One read's worth: every server reads into a buffer of this size. */
#define BASELINE_READ_SIZE ((size_t)64 * 1024)

/* A connection whose peer does not read its echoes is not read either once
 * this much output waits (backpressure): memory stays bounded. */
#define BASELINE_OUTPUT_LIMIT ((size_t)1024 * 1024)

struct baseline_loop {
    unsigned index; /* 0 .. threads-1 */
    int listener;   /* this loop's listening socket, non-blocking: the loop owns
                       it and closes it (a library may close it for the loop) */
    int stop_fd;    /* becomes readable, and stays so, when the server must stop;
                       shared by every loop and never read */
};

/* Runs one loop until stop_fd is readable; 0, or -1 after printing why. */
typedef int (*baseline_loop_fn)(struct baseline_loop *loop);

/* Parses --port P (0: any free port) and --threads N, listens on
 * 127.0.0.1:P with one listener per thread (SO_REUSEPORT when N > 1: the
 * kernel spreads the connections), prints "<name> listening on
 * 127.0.0.1:PORT", runs `run` on N threads and waits for SIGINT or SIGTERM.
 * Returns the process's exit status: 0 after a clean stop, 1 when a loop
 * failed, 2 on bad arguments. */
int baseline_main(int argc, char **argv, const char *name, baseline_loop_fn run);

/* accept4() one connection, non-blocking, with TCP_NODELAY set (every server
 * in the comparison sets it, as nginx does on keep-alive connections).
 * Returns the descriptor, or -1 when there is nothing more to accept now
 * (EAGAIN, or an error worth no more than a retry on the next readiness).
 * At the descriptor limit (EMFILE, ENFILE) it accepts and closes one pending
 * connection with the spare descriptor it keeps (*spare_fd, opened on
 * /dev/null by baseline_spare_open): otherwise a level-triggered listener
 * would be readable forever and the loop would spin on it. */
int baseline_accept(int listener, int *spare_fd);
int baseline_spare_open(void);

/* Output a connection could not write yet: bytes data[start, end). */
struct baseline_output {
    char *data;
    size_t start, end, capacity;
};

static inline size_t baseline_output_pending(const struct baseline_output *output)
{
    return output->end - output->start;
}

/* Echo len bytes: send them now if nothing is waiting (the common case: one
 * send() and no copy), keep what the socket did not take. 0, or -1 when the
 * connection is broken (or memory is short) and must be closed. */
int baseline_echo(struct baseline_output *output, int fd, const void *data, size_t len);

/* Send what is waiting: 0 when all of it has gone, 1 when the socket is full
 * (wait for writability), -1 when the connection is broken. */
int baseline_output_flush(struct baseline_output *output, int fd);

void baseline_output_free(struct baseline_output *output);

#endif

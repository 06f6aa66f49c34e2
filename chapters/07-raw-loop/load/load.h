/* load.h - evq_load, chapter 7's load generator: the program template
 * (loop/raw_loop.h) driving the chapter's queue as a client.
 *
 *     ch07_load_<backend> --port P [--host H] [--connections C] [--size BYTES] [--depth D]
 *                         (--seconds S [--warmup S] | --round-trips N) [--http PATH]
 *                         [--timeout S]
 *
 * Echo (the default): each of C connections keeps D messages of BYTES bytes
 * in flight; each echo that comes back whole is a round trip and sends the
 * next message. Every byte that comes back is checked against what was
 * sent. HTTP (--http PATH): keep-alive GET PATH, D requests pipelined on
 * each connection; every answer is parsed (status line, Content-Length) and
 * counted by status.
 *
 * It prints round trips (requests) per second, latency percentiles and a
 * verdict line; the exit status is 0 when every message was answered and
 * checked, 1 on a mismatch, a lost answer, a status other than 200, a
 * connection error or a timeout, 2 on bad arguments.
 *
 * The program is split so that tests can run it in-process: load_main is
 * the whole command line, load_run one run.
 */
#ifndef CH07_LOAD_H
#define CH07_LOAD_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define LOAD_MAX_IN_FLIGHT_BYTES ((size_t)16 << 20) /* echo: size * depth, per connection */
#define LOAD_STATUS_KINDS        8                  /* distinct HTTP statuses counted */

typedef struct load_options {
    const char *host;          /* "127.0.0.1" */
    uint16_t port;             /* required */
    unsigned long connections; /* 10 */
    unsigned long size;        /* echo: bytes per message (64) */
    unsigned long depth;       /* messages in flight per connection (1) */
    double seconds;            /* measured time; 0 with round_trips */
    double warmup;             /* before measuring, with seconds (0.5) */
    unsigned long round_trips; /* per connection, instead of a time; 0: timed */
    const char *http_path;     /* NULL: echo */
    double timeout;            /* a message unanswered this long is lost (10 s) */
} load_options;

/* What a run saw. Counts cover the whole run; the rate and the latencies,
 * the measured window only (everything, with round_trips). */
typedef struct load_result {
    uint64_t sent;          /* messages handed to the queue */
    uint64_t round_trips;   /* answered and checked */
    uint64_t measured;      /* ... of them in the measured window */
    double seconds;         /* the window's length */
    uint64_t bytes_checked; /* echo: bytes compared; HTTP: answer bytes parsed */
    uint64_t p50_ns, p90_ns, p99_ns, p999_ns, max_ns;
    struct {
        int status;
        uint64_t count;
    } statuses[LOAD_STATUS_KINDS]; /* HTTP; statuses past the table count as status 0 */
    size_t status_kinds;
    /* What went wrong (all 0 in a good run). */
    uint64_t mismatches; /* echo bytes other than those sent; HTTP that is not HTTP */
    uint64_t lost;       /* messages never answered: timed out, or the server closed */
    uint64_t non_200;    /* HTTP answers with another status */
    uint64_t errors;     /* connections that failed (refused, reset) */
    bool interrupted;    /* the stop flag came from outside before the run was over */
    char failure[256];   /* the first thing that went wrong, "" when nothing did */
} load_result;

/* The defaults (port 0: the caller must set one). */
void load_options_init(load_options *options);

/* Parse argv[1..argc-1] into *options. 0, 1 for --help, 2 for bad
 * arguments with the reason in why[why_len]. */
int load_parse_args(int argc, char **argv, load_options *options, char *why, size_t why_len);

/* One run on a queue of its own, on the calling thread. *stop is the loop's
 * termination flag: another thread (or a signal handler) may set it to end
 * the run early; the run sets it itself when it is over. Returns 0 (what
 * happened is in *result, failures too) or an EVQ_E* code when the queue
 * or a stream could not be made at all. */
int load_run(const load_options *options, atomic_bool *stop, load_result *result);

/* 0 when every message was answered and checked, else 1. */
int load_exit_status(const load_result *result);

/* "verdict: OK - ..." or "verdict: FAIL - ...", without a newline. */
void load_verdict(const load_options *options, const load_result *result, char *out,
                  size_t out_len);

/* The numbers and the verdict line. */
void load_report(FILE *out, const load_options *options, const load_result *result);

/* The command line: parse, run, report. Returns the exit status (0, 1, 2).
 * `result` may be NULL (tests read it). */
int load_main(int argc, char **argv, FILE *out, FILE *err, atomic_bool *stop, load_result *result);

#endif

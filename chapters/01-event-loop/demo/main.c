/* main.c - chapter 1's demo: the raw event loop on its own thread, producer
 * threads sending it messages (some records split into parts), two periodic
 * tasks and a timer or two. Ctrl-C, or --seconds N, stops it cleanly; then it
 * prints what it handled and checks that no message was lost.
 *
 *     ch01_demo [--seconds N] [--producers N] [--stall MS]
 *
 * Logging goes to stderr, one line per event worth seeing, each with the name
 * of the thread that wrote it (EVQ_LOG=debug shows every record).
 */
#if !defined(_WIN32) && !defined(_POSIX_C_SOURCE) && !defined(__APPLE__)
#define _POSIX_C_SOURCE 200809L /* sigaction */
#endif
#include "evq_args.h"
#include "evq_channel.h"
#include "evq_clock.h"
#include "evq_cpu_time.h"
#include "evq_error.h"
#include "evq_log.h"
#include "evq_loop.h"
#include "evq_thread.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef _WIN32
#include <windows.h>
#else
#include <signal.h>
#endif

#define MAX_PRODUCERS  EVQ_LOOP_MAX_SENDERS
#define INBOX_CAPACITY 256
#define PART_SIZE      7 /* bytes of text per part when a producer splits records */

/* ANCHOR: ctrl_c */
/* The termination flag. A signal handler may store to it because it is a
 * lock-free atomic with static storage (C11 7.14.1.1p5); anything more - a
 * lock, printf, malloc - is undefined in a handler. */
static atomic_bool stop_requested;
_Static_assert(ATOMIC_BOOL_LOCK_FREE == 2, "the stop flag must be lock-free");

static void request_stop(void)
{
    atomic_store_explicit(&stop_requested, true, memory_order_relaxed);
}

#ifndef _WIN32
/* POSIX runs this on whichever thread the signal lands on: beside the loop,
 * not inside it, so all it does is set the flag. */
static void on_ctrl_c(int signal_number)
{
    (void)signal_number;
    request_stop();
}

/* sigaction, not signal(): C11 leaves signal() undefined in a program with
 * threads (7.14.1.1p7), POSIX defines sigaction for them. SA_RESETHAND puts
 * the default action back after the first Ctrl-C: should a shutdown ever
 * hang, a second one ends the program. */
static int catch_ctrl_c(void)
{
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_ctrl_c;
    action.sa_flags = SA_RESETHAND;
    sigemptyset(&action.sa_mask);
    return sigaction(SIGINT, &action, NULL);
}
/* ANCHOR_END: ctrl_c */
/* ANCHOR: ctrl_c_windows */
#else
/* Windows has no signals: the console starts a new thread for a Ctrl-C (or
 * Ctrl-Break, or its window closing) and calls this there. */
static BOOL WINAPI on_ctrl_c(DWORD event)
{
    (void)event;
    request_stop();
    return TRUE; /* handled: the default handler would end the process */
}

static int catch_ctrl_c(void)
{
    return SetConsoleCtrlHandler(on_ctrl_c, TRUE) ? 0 : -1;
}
#endif
/* ANCHOR_END: ctrl_c_windows */

struct producer {
    uint32_t sender; /* 0, 1, 2... */
    char name[24];   /* "producer-1"... for the logger (which keeps 15 chars) */
    evq_channel *inbox;
    uint32_t period_ms; /* pause between records */
    bool in_parts;      /* split each record into parts, a pause between them */
    evq_thread thread;
    /* written by the producer, read by main after joining it */
    uint64_t sent;    /* messages the inbox took */
    uint64_t records; /* records sent whole */
    uint64_t full_retries;
};

static bool stopping(void)
{
    return atomic_load_explicit(&stop_requested, memory_order_relaxed);
}

/* Send one message; on a full inbox wait a moment and try again (nothing is
 * dropped), until the demo stops. */
static bool send_message(struct producer *producer, evq_message *message)
{
    message->sender = producer->sender;
    message->sequence = producer->sent;
    for (;;) {
        message->sent_at_ns = evq_clock_now_ns();
        int rc = evq_channel_try_send(producer->inbox, message);
        if (rc == 0) {
            producer->sent++;
            return true;
        }
        if (rc != EVQ_EFULL || stopping())
            return false;
        producer->full_retries++;
        evq_sleep_ms(1);
    }
}

static void run_producer(void *arg)
{
    struct producer *producer = arg;
    evq_log_set_thread_name(producer->name);
    EVQ_INFO("sending a record every %u ms%s", (unsigned)producer->period_ms,
             producer->in_parts ? ", each in parts" : "");
    for (uint64_t n = 1; !stopping(); n++) {
        char record[EVQ_RECORD_MAX];
        int length = snprintf(record, sizeof record, "record %llu from %s", (unsigned long long)n,
                              producer->name);
        /* Whole records fit in one message; anything longer is split too. */
        size_t part = producer->in_parts ? PART_SIZE : EVQ_MESSAGE_TEXT_MAX - 1;
        bool sent = true;
        for (size_t at = 0; sent && at < (size_t)length; at += part) {
            size_t size = (size_t)length - at < part ? (size_t)length - at : part;
            evq_message message = {0};
            evq_message_set_text(&message, record + at, size);
            message.flags = at + size < (size_t)length ? EVQ_MESSAGE_PART : 0;
            sent = send_message(producer, &message);
            if (sent && message.flags & EVQ_MESSAGE_PART)
                evq_sleep_ms(5); /* the rest comes on a later loop turn */
        }
        producer->records += sent;
        evq_sleep_ms(producer->period_ms);
    }
}

/* ---- the loop thread ---------------------------------------------------------- */

enum demo_timer { TIMER_STOP = 1, TIMER_STALL, TIMER_NEVER };

struct demo {
    evq_channel inbox;
    int producers;
    uint64_t seconds;  /* 0: until Ctrl-C */
    uint32_t stall_ms; /* 0: no stall */
    /* results, written by the loop thread, read by main after joining it */
    int rc;
    bool timed_out;
    uint64_t records_from[MAX_PRODUCERS];
    evq_loop_stats stats;
    uint64_t cpu_ns;
    uint64_t wall_ns;
};

static void on_record(void *context, uint32_t sender, const char *text, size_t length)
{
    struct demo *demo = context;
    demo->records_from[sender]++;
    EVQ_DEBUG("record (%zu bytes) from producer-%u: %s", length, (unsigned)sender + 1, text);
}

static void on_timer(void *context, evq_loop *loop, uint64_t id, uint64_t data)
{
    struct demo *demo = context;
    (void)loop;
    switch ((enum demo_timer)data) {
    case TIMER_STOP:
        EVQ_INFO("timer %llu: %llu s are up, stopping", (unsigned long long)id,
                 (unsigned long long)demo->seconds);
        demo->timed_out = true;
        atomic_store_explicit(&stop_requested, true, memory_order_relaxed);
        break;
    case TIMER_STALL:
        /* The mistake this chapter warns about: a blocking call on the loop
         * thread. Nothing else happens until it returns. */
        EVQ_WARN("timer %llu: blocking the loop for %u ms", (unsigned long long)id,
                 (unsigned)demo->stall_ms);
        evq_sleep_ms(demo->stall_ms);
        break;
    case TIMER_NEVER:
        EVQ_ERROR("timer %llu fired although it was cancelled", (unsigned long long)id);
        break;
    }
}

static void on_report(void *context, const evq_loop_stats *stats)
{
    (void)context;
    EVQ_INFO("%llu turns, %llu messages, %llu records (%llu across turns), %llu dropped, "
             "max inbox latency %.3f ms, missed intervals: %llu",
             (unsigned long long)stats->turns, (unsigned long long)stats->messages,
             (unsigned long long)stats->records, (unsigned long long)stats->records_across_turns,
             (unsigned long long)stats->records_dropped, (double)stats->max_latency_ns / 1e6,
             (unsigned long long)stats->missed_intervals);
}

/* The demo's timers: stop after --seconds, stall after one second with
 * --stall, and one that is cancelled before it can fire. */
static int add_timers(evq_loop *loop, const struct demo *demo)
{
    int rc = 0;
    if (demo->seconds > 0)
        rc = evq_loop_add_timer(loop, demo->seconds * EVQ_NS_PER_S, TIMER_STOP, NULL);
    if (rc == 0 && demo->stall_ms > 0)
        rc = evq_loop_add_timer(loop, 1 * EVQ_NS_PER_S, TIMER_STALL, NULL);
    uint64_t never;
    if (rc == 0)
        rc = evq_loop_add_timer(loop, 500 * EVQ_NS_PER_MS, TIMER_NEVER, &never);
    if (rc == 0)
        rc = evq_loop_cancel_timer(loop, never);
    return rc;
}

/* ANCHOR: loop_thread */
static void run_loop(void *arg)
{
    struct demo *demo = arg;
    evq_log_set_thread_name("loop");

    evq_loop loop; /* on this thread's stack: no other thread can reach it */
    evq_loop_config config = evq_loop_default_config(&demo->inbox, &stop_requested);
    config.hooks = (evq_loop_hooks){on_record, on_timer, on_report, demo};
    if ((demo->rc = evq_loop_init(&loop, &config)) != 0)
        return;
    if ((demo->rc = add_timers(&loop, demo)) != 0) {
        evq_loop_destroy(&loop);
        return;
    }

    uint64_t cpu_start = evq_cpu_time_ns(), wall_start = evq_clock_now_ns();
    evq_loop_run(&loop);
    demo->cpu_ns = evq_sat_sub(evq_cpu_time_ns(), cpu_start);
    demo->wall_ns = evq_sat_sub(evq_clock_now_ns(), wall_start);
    demo->stats = loop.stats; /* hand the results over; join() publishes them */
    evq_loop_destroy(&loop);
}
/* ANCHOR_END: loop_thread */

/* ---- main --------------------------------------------------------------------- */

static int usage(FILE *to, int status)
{
    fprintf(to,
            "Usage: ch01_demo [--seconds N] [--producers N] [--stall MS]\n"
            "\n"
            "Runs chapter 1's event loop on its own thread. Producer threads send it\n"
            "records, every second producer in parts; a housekeeping task runs every\n"
            "250 ms and a report every second. Ctrl-C stops it cleanly, and it prints\n"
            "what it handled.\n"
            "\n"
            "  --seconds N    stop by itself after N seconds (1..86400; default: only Ctrl-C)\n"
            "  --producers N  producer threads (1..%d, default 3)\n"
            "  --stall MS     one second in, block the loop for MS ms (1..60000), to see\n"
            "                 how the periodic tasks catch up afterwards\n"
            "  -h, --help     show this help and exit\n"
            "\n"
            "EVQ_LOG=debug shows every record; EVQ_LOG=warn only problems.\n",
            MAX_PRODUCERS);
    return status;
}

struct option {
    const char *name;
    unsigned long min, max;
    unsigned long *value;
};

static int parse_arguments(int argc, char **argv, unsigned long *seconds, unsigned long *producers,
                           unsigned long *stall_ms)
{
    const struct option options[] = {
        {"--seconds", 1, 86400, seconds},
        {"--producers", 1, MAX_PRODUCERS, producers},
        {"--stall", 1, 60000, stall_ms},
    };
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout, 0);
            return -1; /* done: exit 0 */
        }
        const struct option *option = NULL;
        for (size_t k = 0; k < sizeof options / sizeof options[0]; k++)
            if (strcmp(argv[i], options[k].name) == 0)
                option = &options[k];
        if (!option) {
            fprintf(stderr, "ch01_demo: %s is not an option\n", argv[i]);
            return usage(stderr, 2);
        }
        const char *value = i + 1 < argc ? argv[++i] : NULL;
        if (!evq_parse_ulong(value, option->min, option->max, option->value)) {
            fprintf(stderr, "ch01_demo: %s needs a number from %lu to %lu, got '%s'\n",
                    option->name, option->min, option->max, value ? value : "");
            return 2;
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    unsigned long seconds = 0, producer_count = 3, stall_ms = 0;
    int status = parse_arguments(argc, argv, &seconds, &producer_count, &stall_ms);
    if (status != 0)
        return status < 0 ? 0 : status;

    evq_log_set_thread_name("main");
    if (!getenv("EVQ_LOG"))
        evq_log_set_level(EVQ_LOG_INFO);
    if (catch_ctrl_c() != 0) {
        fprintf(stderr, "ch01_demo: cannot catch Ctrl-C\n");
        return 1;
    }

    static struct demo demo;
    static struct producer producers[MAX_PRODUCERS];
    demo.producers = (int)producer_count;
    demo.seconds = seconds;
    demo.stall_ms = (uint32_t)stall_ms;
    int rc = evq_channel_init(&demo.inbox, INBOX_CAPACITY);
    if (rc != 0) {
        fprintf(stderr, "ch01_demo: cannot create the inbox: %s\n", evq_strerror(rc));
        return 1;
    }

    evq_thread loop_thread;
    if ((rc = evq_thread_start(&loop_thread, run_loop, &demo)) != 0) {
        fprintf(stderr, "ch01_demo: cannot start the loop thread: %s\n", evq_strerror(rc));
        return 1;
    }
    int started = 0;
    for (int i = 0; i < demo.producers; i++) {
        struct producer *producer = &producers[i];
        producer->sender = (uint32_t)i;
        snprintf(producer->name, sizeof producer->name, "producer-%d", i + 1);
        producer->inbox = &demo.inbox;
        producer->period_ms = 40 + 30 * (uint32_t)i;
        producer->in_parts = i % 2 == 1;
        if ((rc = evq_thread_start(&producer->thread, run_producer, producer)) != 0) {
            fprintf(stderr, "ch01_demo: cannot start a producer: %s\n", evq_strerror(rc));
            atomic_store_explicit(&stop_requested, true, memory_order_relaxed);
            break;
        }
        started++;
    }
    if (seconds > 0)
        printf("running for %lu s with %d producers; press Ctrl-C to stop sooner\n", seconds,
               started);
    else
        printf("running with %d producers; press Ctrl-C to stop\n", started);
    fflush(stdout);

    /* The loop stops on the flag (Ctrl-C or its own timer); producers see the
     * same flag and stop within one pause. */
    evq_thread_join(&loop_thread);
    atomic_store_explicit(&stop_requested, true, memory_order_relaxed);
    for (int i = 0; i < started; i++)
        evq_thread_join(&producers[i].thread);
    if (demo.rc != 0) {
        fprintf(stderr, "ch01_demo: cannot start the loop: %s\n", evq_strerror(demo.rc));
        return 1;
    }

    uint64_t sent = 0, records = 0, retries = 0, left = 0;
    for (int i = 0; i < started; i++) {
        sent += producers[i].sent;
        records += producers[i].records;
        retries += producers[i].full_retries;
    }
    evq_message message;
    while (evq_channel_try_recv(&demo.inbox, &message) == 0)
        left++; /* sent after the loop's last turn */
    evq_channel_destroy(&demo.inbox);

    const evq_loop_stats *stats = &demo.stats;
    const char *why = demo.timed_out              ? "stopped by its timer"
                      : started == demo.producers ? "stopped by Ctrl-C"
                                                  : "stopped early";
    printf("%s after %.2f s\n", why, (double)demo.wall_ns / 1e9);
    printf("loop thread: %llu turns, %llu of them ended asleep; %.1f ms of CPU\n",
           (unsigned long long)stats->turns, (unsigned long long)stats->waits,
           (double)demo.cpu_ns / 1e6);
    printf("handled %llu messages: %llu records (%llu assembled across turns), %llu dropped; "
           "%llu timers; max inbox latency %.3f ms\n",
           (unsigned long long)stats->messages, (unsigned long long)stats->records,
           (unsigned long long)stats->records_across_turns,
           (unsigned long long)stats->records_dropped, (unsigned long long)stats->timers_fired,
           (double)stats->max_latency_ns / 1e6);
    printf("periodic tasks: housekeeping ran %llu times, the report %llu times; "
           "missed intervals: %llu\n",
           (unsigned long long)stats->housekeeping_runs, (unsigned long long)stats->reports,
           (unsigned long long)stats->missed_intervals);
    for (int i = 0; i < started; i++)
        printf("  %-11s sent %llu records in %llu messages; the loop completed %llu of them\n",
               producers[i].name, (unsigned long long)producers[i].records,
               (unsigned long long)producers[i].sent, (unsigned long long)demo.records_from[i]);
    bool none_lost = sent == stats->messages + left;
    printf("producers sent %llu messages (%llu retries on a full inbox), %llu records; "
           "%llu were still in the inbox at the end; %s\n",
           (unsigned long long)sent, (unsigned long long)retries, (unsigned long long)records,
           (unsigned long long)left, none_lost ? "none lost" : "SOME LOST");
    return none_lost ? 0 : 1;
}

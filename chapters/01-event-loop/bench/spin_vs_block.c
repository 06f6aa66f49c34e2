/* spin_vs_block.c - what waiting costs. The same loop, the same work (a
 * producer sending a steady trickle of messages, two periodic tasks), run for
 * the same wall time twice: once spinning on try_recv (EVQ_LOOP_SPIN), once
 * blocking on the inbox until its next deadline (EVQ_LOOP_BLOCK). For each,
 * the CPU time the loop thread used, measured on that thread.
 *
 *     ch01_bench_spin [--seconds S] [--rate N] [--runs R]
 *
 * Prints a markdown table, one row per run of each mode.
 */
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

struct run {
    enum evq_loop_wait_mode mode;
    unsigned rate; /* messages a second */
    evq_channel inbox;
    atomic_bool stop;
    /* loop thread results */
    int rc;
    evq_loop_stats stats;
    uint64_t cpu_ns, wall_ns;
    /* producer results */
    uint64_t sent;
};

/* ANCHOR: measure */
static void run_loop(void *arg)
{
    struct run *run = arg;
    evq_log_set_thread_name("loop");
    evq_loop loop;
    evq_loop_config config = evq_loop_default_config(&run->inbox, &run->stop);
    config.wait = run->mode;
    if ((run->rc = evq_loop_init(&loop, &config)) != 0)
        return;
    /* CPU time of this thread only, over the wall time of the run. */
    uint64_t cpu_start = evq_cpu_time_ns(), wall_start = evq_clock_now_ns();
    evq_loop_run(&loop);
    run->cpu_ns = evq_sat_sub(evq_cpu_time_ns(), cpu_start);
    run->wall_ns = evq_sat_sub(evq_clock_now_ns(), wall_start);
    run->stats = loop.stats;
    evq_loop_destroy(&loop);
}
/* ANCHOR_END: measure */

static void run_producer(void *arg)
{
    struct run *run = arg;
    evq_log_set_thread_name("producer");
    uint32_t pause_ms = 1000 / run->rate;
    while (!atomic_load_explicit(&run->stop, memory_order_relaxed)) {
        evq_message message = {0};
        message.sequence = run->sent;
        message.sent_at_ns = evq_clock_now_ns();
        evq_message_set_text(&message, "tick", 4);
        if (evq_channel_try_send(&run->inbox, &message) == 0)
            run->sent++;
        evq_sleep_ms(pause_ms);
    }
}

static int measure(struct run *run, uint32_t milliseconds)
{
    int rc = evq_channel_init(&run->inbox, 1024);
    if (rc != 0)
        return rc;
    atomic_init(&run->stop, false);
    evq_thread loop_thread, producer_thread;
    if ((rc = evq_thread_start(&loop_thread, run_loop, run)) != 0)
        goto done;
    if ((rc = evq_thread_start(&producer_thread, run_producer, run)) != 0) {
        atomic_store_explicit(&run->stop, true, memory_order_relaxed);
        evq_channel_wake(&run->inbox);
        evq_thread_join(&loop_thread);
        goto done;
    }
    evq_sleep_ms(milliseconds);
    /* From a thread we can do better than a signal handler: set the flag,
     * then wake the loop so that it sees the flag at once. */
    atomic_store_explicit(&run->stop, true, memory_order_relaxed);
    evq_channel_wake(&run->inbox);
    evq_thread_join(&loop_thread);
    evq_thread_join(&producer_thread);
    rc = run->rc;
done:
    evq_channel_destroy(&run->inbox);
    return rc;
}

int main(int argc, char **argv)
{
    unsigned long seconds = 2, rate = 100, runs = 1;
    for (int i = 1; i < argc; i++) {
        unsigned long *value = NULL, max = 0;
        if (strcmp(argv[i], "--seconds") == 0)
            value = &seconds, max = 600;
        else if (strcmp(argv[i], "--rate") == 0)
            value = &rate, max = 1000;
        else if (strcmp(argv[i], "--runs") == 0)
            value = &runs, max = 100;
        else {
            printf("Usage: ch01_bench_spin [--seconds S] [--rate N] [--runs R]\n"
                   "Loop-thread CPU time over S seconds (default 2) of wall time, with a\n"
                   "producer sending N messages a second (default 100), for a loop that\n"
                   "spins on try_recv and one that blocks until its next deadline;\n"
                   "R runs of each (default 1).\n");
            return strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0 ? 0 : 2;
        }
        if (!evq_parse_ulong(i + 1 < argc ? argv[++i] : NULL, 1, max, value)) {
            fprintf(stderr, "ch01_bench_spin: %s needs a number from 1 to %lu\n", argv[i - 1], max);
            return 2;
        }
    }

    printf("%lu s of wall time per run; a producer sends %lu messages/s; housekeeping every "
           "250 ms, a report every 1 s\n\n",
           seconds, rate);
    printf("| loop | wall (s) | loop-thread CPU (ms) | CPU / wall | turns | waits | messages "
           "| max latency (ms) |\n");
    printf("|---|---:|---:|---:|---:|---:|---:|---:|\n");
    bool ok = true;
    for (unsigned long r = 0; r < runs; r++) {
        for (int m = 0; m < 2; m++) {
            struct run run;
            memset(&run, 0, sizeof run);
            run.mode = m == 0 ? EVQ_LOOP_SPIN : EVQ_LOOP_BLOCK;
            run.rate = (unsigned)rate;
            int rc = measure(&run, (uint32_t)(seconds * 1000));
            if (rc != 0) {
                fprintf(stderr, "ch01_bench_spin: %s\n", evq_strerror(rc));
                return 1;
            }
            const evq_loop_stats *s = &run.stats;
            printf("| %s | %.2f | %.1f | %.1f %% | %llu | %llu | %llu | %.3f |\n",
                   m == 0 ? "spin on try_recv" : "block until next deadline",
                   (double)run.wall_ns / 1e9, (double)run.cpu_ns / 1e6,
                   100.0 * (double)run.cpu_ns / (double)(run.wall_ns ? run.wall_ns : 1),
                   (unsigned long long)s->turns, (unsigned long long)s->waits,
                   (unsigned long long)s->messages, (double)s->max_latency_ns / 1e6);
            fflush(stdout);
            /* Every message sent before the stop was taken, or is still queued:
             * the loop may stop with a few unread, never with more read. */
            ok = ok && s->messages <= run.sent;
        }
    }
    return ok ? 0 : 1;
}

/* probe.c - the small questions chapter 7's benchmark driver (run.sh) asks
 * the system, in one program so that the script needs nothing but bash:
 *
 *     ch07_bench_probe free-port           a free TCP port on 127.0.0.1
 *     ch07_bench_probe wait-port P S       exit 0 once 127.0.0.1:P accepts a
 *                                          connection, 1 after S seconds
 *     ch07_bench_probe cpu-ns PID          nanoseconds on a CPU of PID, its
 *                                          threads and child processes
 *     ch07_bench_probe busy-ns             nanoseconds the machine's CPUs
 *                                          have been busy (/proc/stat)
 *
 * free-port binds port 0 and closes it again: another program may take the
 * port before the server does (the driver then retries with another).
 */
#define _GNU_SOURCE
#include "proc_cpu.h"

#include "evq_args.h"
#include "evq_clock.h"
#include "evq_net.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static int usage(void)
{
    fprintf(stderr, "Usage: ch07_bench_probe free-port | wait-port PORT SECONDS | cpu-ns PID | "
                    "busy-ns\n");
    return 2;
}

int main(int argc, char **argv)
{
    unsigned long number;
    double seconds;
    if (argc == 2 && strcmp(argv[1], "free-port") == 0) {
        evq_socket listener;
        uint16_t port;
        if (evq_net_listen_loopback(0, 1, &listener, &port) != 0) {
            perror("listen");
            return 1;
        }
        evq_socket_close(listener);
        printf("%u\n", (unsigned)port);
        return 0;
    }
    if (argc == 4 && strcmp(argv[1], "wait-port") == 0 &&
        evq_parse_ulong(argv[2], 1, 65535, &number) &&
        evq_parse_double(argv[3], 0, 3600, &seconds)) {
        uint64_t deadline = evq_clock_now_ns() + (uint64_t)(seconds * 1e9);
        for (;;) {
            evq_socket probe;
            if (evq_net_connect_loopback((uint16_t)number, &probe) == 0) {
                evq_socket_close(probe);
                return 0;
            }
            if (evq_clock_now_ns() >= deadline)
                return 1;
            nanosleep(&(struct timespec){.tv_nsec = 10 * 1000 * 1000}, NULL);
        }
    }
    if (argc == 3 && strcmp(argv[1], "cpu-ns") == 0 &&
        evq_parse_ulong(argv[2], 1, INT32_MAX, &number)) {
        uint64_t ns;
        if (proc_tree_cpu_ns((pid_t)number, &ns) != 0) {
            fprintf(stderr, "no /proc/%lu/task/*/schedstat\n", number);
            return 1;
        }
        printf("%" PRIu64 "\n", ns);
        return 0;
    }
    if (argc == 2 && strcmp(argv[1], "busy-ns") == 0) {
        uint64_t ns;
        if (proc_machine_busy_ns(&ns) != 0) {
            fprintf(stderr, "cannot read /proc/stat\n");
            return 1;
        }
        printf("%" PRIu64 "\n", ns);
        return 0;
    }
    return usage();
}

/* proc_cpu.c - CPU time of a process tree from /proc (see proc_cpu.h). */
#define _GNU_SOURCE
#include "proc_cpu.h"

#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define MAX_DEPTH 8 /* nginx: master and worker; nothing here goes deeper */

/* ANCHOR: schedstat */
/* The first field of /proc/<pid>/task/<tid>/schedstat: the nanoseconds the
 * scheduler has run this thread on a CPU (user and kernel time, counted at
 * every switch, not sampled at ticks as /proc/<pid>/stat's utime is). */
static int thread_cpu_ns(pid_t pid, long tid, uint64_t *ns)
{
    char path[96];
    snprintf(path, sizeof path, "/proc/%ld/task/%ld/schedstat", (long)pid, tid);
    FILE *file = fopen(path, "r");
    if (file == NULL)
        return -1;
    uint64_t on_cpu = 0;
    int fields = fscanf(file, "%" SCNu64, &on_cpu);
    fclose(file);
    if (fields != 1)
        return -1;
    *ns += on_cpu;
    return 0;
}
/* ANCHOR_END: schedstat */

static int tree_cpu_ns(pid_t pid, uint64_t *ns, int depth)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%ld/task", (long)pid);
    DIR *tasks = opendir(path);
    if (tasks == NULL)
        return -1;
    int threads = 0;
    struct dirent *entry;
    while ((entry = readdir(tasks)) != NULL) {
        char *after;
        long tid = strtol(entry->d_name, &after, 10);
        if (*after != '\0' || tid <= 0)
            continue; /* "." and ".." */
        /* A thread may exit between readdir and fopen: skip it. */
        if (thread_cpu_ns(pid, tid, ns) == 0)
            threads++;
        if (depth >= MAX_DEPTH)
            continue;
        /* The children this thread started, as "pid pid ... ". */
        char children_path[96];
        snprintf(children_path, sizeof children_path, "/proc/%ld/task/%ld/children", (long)pid,
                 tid);
        FILE *children = fopen(children_path, "r");
        if (children == NULL)
            continue;
        long child;
        while (fscanf(children, "%ld", &child) == 1)
            tree_cpu_ns((pid_t)child, ns, depth + 1); /* a child that just exited counts 0 */
        fclose(children);
    }
    closedir(tasks);
    return threads > 0 ? 0 : -1;
}

int proc_tree_cpu_ns(pid_t pid, uint64_t *ns)
{
    *ns = 0;
    return tree_cpu_ns(pid, ns, 0);
}

int proc_machine_busy_ns(uint64_t *ns)
{
    FILE *file = fopen("/proc/stat", "r");
    if (file == NULL)
        return -1;
    /* cpu  user nice system idle iowait irq softirq steal guest guest_nice
     * (guest time is in user already) */
    uint64_t t[8] = {0};
    int fields = fscanf(file,
                        "cpu %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64
                        " %" SCNu64 " %" SCNu64,
                        &t[0], &t[1], &t[2], &t[3], &t[4], &t[5], &t[6], &t[7]);
    fclose(file);
    long ticks_per_second = sysconf(_SC_CLK_TCK);
    if (fields < 7 || ticks_per_second <= 0)
        return -1;
    uint64_t busy = t[0] + t[1] + t[2] + t[5] + t[6] + t[7];
    *ns = busy * (1000000000u / (uint64_t)ticks_per_second);
    return 0;
}

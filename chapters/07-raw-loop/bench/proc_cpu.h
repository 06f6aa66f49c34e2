/* proc_cpu.h - how long a process has run on a CPU, from Linux's /proc.
 *
 * /proc/<pid>/task/<tid>/schedstat starts with the nanoseconds thread <tid>
 * has spent on a CPU (the scheduler's own account, not the tick-sampled
 * utime/stime of /proc/<pid>/stat). The sum over a process's threads, and
 * over its child processes (nginx's worker is a child of its master), read
 * before and after a run, is what the server spent on that run.
 */
#ifndef CH07_PROC_CPU_H
#define CH07_PROC_CPU_H

#include <stdint.h>
#include <sys/types.h>

/* Nanoseconds on a CPU of every thread of `pid` and of its descendants.
 * 0, or -1 when pid's schedstat cannot be read (no such process, or a
 * kernel without CONFIG_SCHED_INFO). Threads and processes that have exited
 * are not counted: read it while the server runs. */
int proc_tree_cpu_ns(pid_t pid, uint64_t *ns);

/* Nanoseconds every CPU of the machine has been busy (user, nice, system,
 * irq, softirq, steal: everything but idle and iowait), from /proc/stat.
 * Tick-sampled (10 ms on most kernels): good over seconds, not less. The
 * busy time that is neither the server's nor the client's is the rest of
 * the machine (or the hypervisor) competing with the measurement. */
int proc_machine_busy_ns(uint64_t *ns);

#endif

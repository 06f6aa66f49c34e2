/* evq_cpu_time.h - how much CPU time the calling thread has used.
 *
 * POSIX: clock_gettime(CLOCK_THREAD_CPUTIME_ID). Windows: GetThreadTimes()
 * (kernel + user time; counted in 100 ns units but advanced by the
 * scheduler, so short spans read coarsely). Used to measure what a loop
 * costs while it waits: CPU time over a fixed wall time.
 */
#ifndef EVQ_CPU_TIME_H
#define EVQ_CPU_TIME_H

#include <stdint.h>

/* Nanoseconds of CPU (user + system) the calling thread has used so far;
 * 0 if the system cannot tell. */
uint64_t evq_cpu_time_ns(void);

#endif

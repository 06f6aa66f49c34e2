/* bench.h - what chapter 3's three benchmarks share: the process's resident
 * memory, handing freed memory back before a measurement, a byte pattern a
 * receiver can check, medians, and a tiny option parser.
 *
 * Every benchmark measures its baseline in the same run, alternating with
 * the configurations it compares, and prints markdown tables with ratios.
 * One run on a busy machine is an indication, not a claim.
 */
#ifndef CH03_BENCH_H
#define CH03_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Call first, before any thread starts: fills the pattern, starts Winsock. */
int bench_init(void);

/* This process's memory: what it has asked the system for (Linux: the
 * virtual size in /proc/self/statm; Windows: the commit charge) and what is
 * resident in RAM (statm's resident pages; the working set). Both 0 where
 * the bench cannot tell. A buffer that is allocated and never touched is in
 * the first and not the second. */
typedef struct bench_memory {
    size_t asked;
    size_t resident;
} bench_memory;
bench_memory bench_memory_now(void);

/* Give memory that free() kept back to the system (glibc: malloc_trim;
 * Windows: _heapmin), so that the next configuration's resident growth is
 * its own and not a reuse of what the last one freed. */
void bench_release_free_memory(void);

/* A transfer's bytes are a 251-byte cycle (prime, so that it never lines up
 * with a buffer size). bench_pattern(at) points at the bytes from offset
 * `at` on, valid for BENCH_PATTERN_SPAN bytes: senders send from it and
 * receivers compare with it, without a loop per byte. */
#define BENCH_PATTERN_SPAN ((size_t)1 << 20)
const unsigned char *bench_pattern(uint64_t at);
/* Whether buf holds the transfer's bytes from offset `at` on (len <= span). */
bool bench_pattern_matches(uint64_t at, const void *buf, size_t len);

double bench_median(double *values, size_t count); /* sorts values */

/* "--name value" options. bench_arguments_ok: every argument is a known
 * name followed by a value. bench_option: *out is the value of `name` when
 * argv has it (else left alone); false when that value is not a number in
 * [low, high] (evq_parse_ulong). The caller prints its usage on false. */
bool bench_arguments_ok(int argc, char **argv, const char *const *known);
bool bench_option(int argc, char **argv, const char *name, unsigned long low,
                  unsigned long high, unsigned long *out);

/* Seconds since t0 (evq_clock_now_ns). */
double bench_seconds_since(uint64_t t0);

#endif

/* latency.h - a latency histogram in the manner of HdrHistogram: buckets
 * whose width grows with the value, so that any value from 1 ns to hours is
 * kept to within 1/128 of itself (0.8 %) in a fixed 58 KiB, recording is a
 * few instructions, and a percentile is one walk over the counts.
 *
 * Values 0..255 ns have a bucket each; above, each power of two [2^k, 2^(k+1))
 * is cut into 128 equal buckets. A percentile is reported as the highest
 * value its bucket holds (as HdrHistogram does), the maximum exactly.
 */
#ifndef CH07_LATENCY_H
#define CH07_LATENCY_H

#include <stdint.h>

#define LATENCY_SUB_BITS 8
#define LATENCY_BUCKETS                                                                            \
    ((1u << LATENCY_SUB_BITS) + (64u - LATENCY_SUB_BITS) * (1u << (LATENCY_SUB_BITS - 1)))

struct latency_histogram {
    uint64_t count;
    uint64_t max_ns;
    uint64_t counts[LATENCY_BUCKETS];
};

void latency_reset(struct latency_histogram *histogram);
void latency_record(struct latency_histogram *histogram, uint64_t ns);

/* The smallest recorded-bucket value v such that at least `percent` % of
 * the values are <= v (0 when nothing was recorded). percent in [0, 100]. */
uint64_t latency_percentile_ns(const struct latency_histogram *histogram, double percent);

/* The bucket of a value and the highest value a bucket holds (for tests). */
unsigned latency_bucket(uint64_t ns);
uint64_t latency_bucket_highest(unsigned bucket);

#endif

/* latency.c - the histogram of latency.h. */
#include "latency.h"

#include <string.h>

#define SUB_COUNT  (1u << LATENCY_SUB_BITS)
#define HALF_COUNT (SUB_COUNT / 2)

void latency_reset(struct latency_histogram *histogram)
{
    memset(histogram, 0, sizeof *histogram);
}

static unsigned highest_bit(uint64_t value) /* value > 0 */
{
    unsigned bit = 0;
    while (value >>= 1)
        bit++;
    return bit;
}

unsigned latency_bucket(uint64_t ns)
{
    if (ns < SUB_COUNT)
        return (unsigned)ns;
    /* ns in [2^b, 2^(b+1)), b >= SUB_BITS: keep its top SUB_BITS bits. */
    unsigned shift = highest_bit(ns) - (LATENCY_SUB_BITS - 1);
    unsigned top = (unsigned)(ns >> shift); /* in [HALF_COUNT, SUB_COUNT) */
    return SUB_COUNT + (shift - 1) * HALF_COUNT + (top - HALF_COUNT);
}

uint64_t latency_bucket_highest(unsigned bucket)
{
    if (bucket < SUB_COUNT)
        return bucket;
    unsigned shift = (bucket - SUB_COUNT) / HALF_COUNT + 1;
    uint64_t top = HALF_COUNT + (bucket - SUB_COUNT) % HALF_COUNT;
    return ((top + 1) << shift) - 1;
}

void latency_record(struct latency_histogram *histogram, uint64_t ns)
{
    histogram->counts[latency_bucket(ns)]++;
    histogram->count++;
    if (ns > histogram->max_ns)
        histogram->max_ns = ns;
}

uint64_t latency_percentile_ns(const struct latency_histogram *histogram, double percent)
{
    if (histogram->count == 0)
        return 0;
    /* The rank of the value wanted, 1-based: ceil(percent% of count), >= 1. */
    double exact = percent / 100.0 * (double)histogram->count;
    uint64_t rank = (uint64_t)exact;
    if ((double)rank < exact)
        rank++;
    if (rank == 0)
        rank = 1;
    uint64_t seen = 0;
    for (unsigned bucket = 0; bucket < LATENCY_BUCKETS; bucket++) {
        seen += histogram->counts[bucket];
        if (seen >= rank) {
            uint64_t highest = latency_bucket_highest(bucket);
            return highest < histogram->max_ns ? highest : histogram->max_ns;
        }
    }
    return histogram->max_ns;
}

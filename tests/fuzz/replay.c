/* replay.c - main() for a fuzz target built without libFuzzer: run the
 * target on every file named on the command line (its committed corpus and
 * the crashes kept as regressions), then on a fixed number of mutations of
 * each, so that a build with any compiler, under Wine too, checks the
 * target's rules on more than the seeds.
 *
 *     fuzz_<target> [--mutations N] FILE...
 *
 * The mutations are the same on every run (a fixed seed per file): a
 * failure found here is found again.
 */
#include "fuzz.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Inputs larger than this are cut: no corpus file comes near it. */
#define REPLAY_MAX_INPUT (1u << 20)

static unsigned char *read_file(const char *path, size_t *size)
{
    FILE *file = fopen(path, "rb");
    if (!file)
        return NULL;
    unsigned char *data = malloc(REPLAY_MAX_INPUT);
    if (data)
        *size = fread(data, 1, REPLAY_MAX_INPUT, file);
    fclose(file);
    return data;
}

/* One mutation of seed[0, size) into out (capacity 2 * size + 64): a few
 * of libFuzzer's simplest moves - flip, set, insert, erase, duplicate. */
static size_t mutate(evq_random *random, const unsigned char *seed, size_t size, unsigned char *out)
{
    static const unsigned char interesting[] = {0,   1,   '\t', '\n', '\r', ' ',  '%', '/',
                                                ':', '?', '0',  '9',  0x7f, 0x80, 0xff};
    memcpy(out, seed, size);
    size_t length = size;
    int moves = 1 + (int)evq_random_below(random, 4);
    for (int m = 0; m < moves; m++) {
        size_t at = length ? (size_t)evq_random_below(random, length) : 0;
        switch (evq_random_below(random, 5)) {
        case 0: /* flip a bit */
            if (length)
                out[at] ^= (unsigned char)(1u << evq_random_below(random, 8));
            break;
        case 1: /* set a byte to one that parsers care about */
            if (length)
                out[at] = interesting[evq_random_below(random, sizeof interesting)];
            break;
        case 2: /* insert a byte */
            if (length < 2 * size + 63) {
                memmove(out + at + 1, out + at, length - at);
                out[at] = (unsigned char)evq_random_next(random);
                length++;
            }
            break;
        case 3: /* erase a run */
            if (length) {
                size_t run = 1 + (size_t)evq_random_below(random, length - at);
                memmove(out + at, out + at + run, length - at - run);
                length -= run;
            }
            break;
        default: { /* copy a run of the input somewhere else, over what is there */
            if (length < 2) {
                break;
            }
            size_t from = (size_t)evq_random_below(random, length);
            size_t run = 1 + (size_t)evq_random_below(random, length - from);
            size_t to = (size_t)evq_random_below(random, length);
            if (run > length - to)
                run = length - to;
            memmove(out + to, out + from, run);
            break;
        }
        }
    }
    return length;
}

int main(int argc, char **argv)
{
    long mutations = 0;
    int first = 1;
    if (argc > 2 && strcmp(argv[1], "--mutations") == 0) {
        char *end = NULL;
        mutations = strtol(argv[2], &end, 10);
        if (!end || *end != '\0' || mutations < 0 || mutations > 1000000) {
            fprintf(stderr, "--mutations needs a number from 0 to 1000000\n");
            return 2;
        }
        first = 3;
    }
    if (first >= argc) {
        fprintf(stderr, "Usage: %s [--mutations N] FILE...\n", argv[0]);
        return 2;
    }
    unsigned long runs = 0;
    for (int i = first; i < argc; i++) {
        size_t size = 0;
        unsigned char *seed = read_file(argv[i], &size);
        if (!seed) {
            fprintf(stderr, "cannot read %s\n", argv[i]);
            return 2;
        }
        LLVMFuzzerTestOneInput(seed, size);
        runs++;
        unsigned char *mutated = mutations ? malloc(2 * size + 64) : NULL;
        evq_random random;
        evq_random_seed(&random, (uint64_t)i);
        for (long m = 0; mutated && m < mutations; m++) {
            size_t length = mutate(&random, seed, size, mutated);
            /* An exact-size copy: a read past the end is a read past the allocation. */
            unsigned char *exact = malloc(length ? length : 1);
            if (!exact)
                break;
            memcpy(exact, mutated, length);
            LLVMFuzzerTestOneInput(exact, length);
            free(exact);
            runs++;
        }
        free(mutated);
        free(seed);
    }
    printf("%lu inputs: %d files, %ld mutations of each; every rule held\n", runs, argc - first,
           mutations);
    return 0;
}

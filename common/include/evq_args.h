/* evq_args.h - reading numbers from the command line, strictly.
 *
 * Every program in the repository (demos, benchmarks, the delay server's
 * CLI, the appendix examples) takes a few numeric options. strtoul alone
 * accepts "-1" (as ULONG_MAX), " 5", "5x" and "" (as 0); atoi cannot even
 * say it failed. These accept exactly a number in range, so a typo gets a
 * clear usage error instead of a run with a value nobody asked for.
 */
#ifndef EVQ_ARGS_H
#define EVQ_ARGS_H

#include <stdbool.h>

/* Decimal digits only (no sign, no space, nothing after them), with a value
 * in [min, max]. On success *out is set and true returned; otherwise *out is
 * untouched. */
bool evq_parse_ulong(const char *text, unsigned long min, unsigned long max, unsigned long *out);

/* A finite decimal number (as strtod reads it, nothing after it) with
 * above < value <= max. The lower bound is exclusive because the options
 * that take one ("--scale 0.05") must be positive. */
bool evq_parse_double(const char *text, double above, double max, double *out);

#endif

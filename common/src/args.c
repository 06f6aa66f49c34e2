/* args.c - strict numbers from the command line (evq_args.h). */
#include "evq_args.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>

bool evq_parse_ulong(const char *text, unsigned long min, unsigned long max, unsigned long *out)
{
    /* strtoul skips spaces and takes a sign ("-1" becomes ULONG_MAX): insist
     * on a digit first. */
    if (!text || *text < '0' || *text > '9')
        return false;
    char *end;
    errno = 0;
    unsigned long value = strtoul(text, &end, 10);
    if (errno != 0 || *end != '\0' || value < min || value > max)
        return false;
    *out = value;
    return true;
}

bool evq_parse_double(const char *text, double above, double max, double *out)
{
    if (!text || !*text)
        return false;
    char *end;
    errno = 0;
    double value = strtod(text, &end);
    /* !(value > above) also refuses NaN, which compares false with anything. */
    if (errno != 0 || *end != '\0' || !isfinite(value) || !(value > above) || value > max)
        return false;
    *out = value;
    return true;
}

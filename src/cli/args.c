/* args.c - strict numeric command-line values (args.h). */
#include "cli/args.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

bool cli_parse_float(const char *cmd, const char *flag, const char *s, float *out)
{
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v)) {
        fprintf(stderr, "scribed %s: %s: '%s' is not a number\n", cmd, flag, s);
        return false;
    }
    *out = (float)v;
    return true;
}

bool cli_parse_int(const char *cmd, const char *flag, const char *s, int *out)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < -1000000000L || v > 1000000000L) {
        fprintf(stderr, "scribed %s: %s: '%s' is not an integer\n", cmd, flag, s);
        return false;
    }
    *out = (int)v;
    return true;
}

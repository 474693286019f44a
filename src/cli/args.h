/*
 * args.h - strict parsing of numeric command-line values for the
 * subcommands: the whole argument must be a finite number in range, else one
 * line on stderr ("scribed CMD: --flag: 'x' is not a number") and false.
 */
#ifndef SD_CLI_ARGS_H
#define SD_CLI_ARGS_H

#include <stdbool.h>

bool cli_parse_int(const char *cmd, const char *flag, const char *s, int *out);
bool cli_parse_float(const char *cmd, const char *flag, const char *s, float *out);

#endif

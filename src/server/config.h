/*
 * config.h - the settings of `scribed serve` (the table is config.def).
 * Parsed once from the environment and argv, then immutable: every other
 * module gets plain values from it and never reads the environment itself.
 */
#ifndef SD_SERVER_CONFIG_H
#define SD_SERVER_CONFIG_H

#include <stdio.h>

#include "util/err.h"

struct config {
#define OPT_INT(name, flag, env, def, lo, hi, help) long name;
#define OPT_STR(name, flag, env, def, help) char *name;
#include "server/config.def"
#undef OPT_INT
#undef OPT_STR
    int show_help;
};

/*
 * Fills *c from defaults, then env (an environ-style NULL-terminated array,
 * may be NULL), then argv (argv[0] is the subcommand name). SD_EINVAL names
 * the bad flag or variable. On SD_OK the caller owns c: config_clear().
 */
enum sd_err config_parse(struct config *c, int argc, char **argv, char *const *env,
                         struct sd_error *err);
void config_clear(struct config *c);
/* --help text: every option with its variable and default. */
void config_print_help(FILE *f);

#endif

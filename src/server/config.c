/*
 * config.c - expands config.def into defaults, the environment/flag parser
 * (with range checks) and --help. Flags are --name VALUE or --name=VALUE.
 * It does not validate paths or cross-field rules; serve.c does that.
 */
#include "server/config.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

enum opt_type { T_INT, T_STR };

struct opt_desc {
    const char *name, *flag, *env, *help;
    enum opt_type type;
    long def_i, lo, hi;
    const char *def_s;
    size_t off;
};

static const struct opt_desc opts[] = {
#define OPT_INT(name, flag, env, def, lo, hi, help) \
    {#name, flag, env, help, T_INT, def, lo, hi, NULL, offsetof(struct config, name)},
#define OPT_STR(name, flag, env, def, help) \
    {#name, flag, env, help, T_STR, 0, 0, 0, def, offsetof(struct config, name)},
#include "server/config.def"
#undef OPT_INT
#undef OPT_STR
};
enum { N_OPTS = sizeof(opts) / sizeof(opts[0]) };

static enum sd_err set_value(struct config *c, const struct opt_desc *o, const char *val,
                             const char *source, struct sd_error *err)
{
    char *base = (char *)c;
    if (o->type == T_STR) {
        char *s = strdup(val);
        if (!s)
            return sd_fail(err, SD_ENOMEM, "config");
        char **slot = (char **)(base + o->off);
        free(*slot);
        *slot = s;
        return SD_OK;
    }
    char *end = NULL;
    errno = 0;
    long v = strtol(val, &end, 10);
    if (errno || end == val || *end != '\0')
        return sd_fail(err, SD_EINVAL, "%s: '%s' is not a whole number", source, val);
    if (v < o->lo || v > o->hi)
        return sd_fail(err, SD_EINVAL, "%s: %ld is outside %ld..%ld", source, v, o->lo, o->hi);
    *(long *)(base + o->off) = v;
    return SD_OK;
}

static enum sd_err apply_env(struct config *c, char *const *env, struct sd_error *err)
{
    for (int i = 0; env && env[i]; i++) {
        const char *eq = strchr(env[i], '=');
        if (!eq)
            continue;
        size_t klen = (size_t)(eq - env[i]);
        for (int k = 0; k < N_OPTS; k++) {
            if (strlen(opts[k].env) == klen && strncmp(env[i], opts[k].env, klen) == 0) {
                enum sd_err rc = set_value(c, &opts[k], eq + 1, opts[k].env, err);
                if (rc != SD_OK)
                    return rc;
            }
        }
    }
    return SD_OK;
}

static enum sd_err apply_args(struct config *c, int argc, char **argv, struct sd_error *err)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            c->show_help = 1;
            continue;
        }
        if (strncmp(a, "--", 2) != 0)
            return sd_fail(err, SD_EINVAL, "unexpected argument '%s'", a);
        const char *name = a + 2, *eq = strchr(name, '=');
        size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
        const struct opt_desc *o = NULL;
        for (int k = 0; k < N_OPTS; k++)
            if (opts[k].flag[0] && strlen(opts[k].flag) == nlen &&
                strncmp(name, opts[k].flag, nlen) == 0)
                o = &opts[k];
        if (!o)
            return sd_fail(err, SD_EINVAL, "unknown option '%.*s' (see --help)", (int)nlen + 2, a);
        const char *val = eq ? eq + 1 : NULL;
        if (!val) {
            if (i + 1 >= argc)
                return sd_fail(err, SD_EINVAL, "option --%s needs a value", o->flag);
            val = argv[++i];
        }
        char source[80];
        snprintf(source, sizeof(source), "--%s", o->flag);
        enum sd_err rc = set_value(c, o, val, source, err);
        if (rc != SD_OK)
            return rc;
    }
    return SD_OK;
}

enum sd_err config_parse(struct config *c, int argc, char **argv, char *const *env,
                         struct sd_error *err)
{
    memset(c, 0, sizeof(*c));
    enum sd_err rc = SD_OK;
    for (int k = 0; k < N_OPTS && rc == SD_OK; k++) {
        if (opts[k].type == T_INT)
            *(long *)((char *)c + opts[k].off) = opts[k].def_i;
        else
            rc = set_value(c, &opts[k], opts[k].def_s, opts[k].flag, err);
    }
    if (rc == SD_OK)
        rc = apply_env(c, env, err);
    if (rc == SD_OK)
        rc = apply_args(c, argc, argv, err);
    if (rc != SD_OK)
        config_clear(c);
    return rc;
}

void config_clear(struct config *c)
{
    for (int k = 0; k < N_OPTS; k++) {
        if (opts[k].type == T_STR) {
            char **slot = (char **)((char *)c + opts[k].off);
            free(*slot);
            *slot = NULL;
        }
    }
}

void config_print_help(FILE *f)
{
    fprintf(f, "usage: scribed serve [options]\n\n"
               "Runs the HTTP service. Every option can also be set by its environment\n"
               "variable; a flag wins over the variable, which wins over the default.\n\n");
    for (int k = 0; k < N_OPTS; k++) {
        const struct opt_desc *o = &opts[k];
        char def[96];
        if (o->type == T_INT)
            snprintf(def, sizeof(def), "%ld", o->def_i);
        else
            snprintf(def, sizeof(def), "%s", *o->def_s ? o->def_s : "(none)");
        if (!o->flag[0]) /* a secret: environment only */
            fprintf(f, "  %-26s %s\n", o->env, o->help);
        else
            fprintf(f, "  --%-24s %s\n  %-26s env %s, default %s\n", o->flag, o->help, "",
                    o->env, def);
    }
}

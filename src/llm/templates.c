/*
 * templates.c - extraction templates: DIR/NAME.json files read once at
 * start. A bad file stops the start with one line naming it, so a typo is
 * found by the operator rather than by the first request that uses it.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llm/llm.h"
#include "llm/schema.h"

static bool good_name(const char *s, size_t n)
{
    if (n == 0 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '-' || ch == '_'))
            return false;
    }
    return true;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const struct llm_template *)a)->name, ((const struct llm_template *)b)->name);
}

static enum sd_err load_one(const char *path, struct llm_template *t, struct sd_error *err)
{
    json_error_t je;
    json_t *o = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (!o)
        return sd_fail(err, SD_EINVAL, "extraction template %s: line %d: %s", path, je.line,
                       je.text);
    const json_t *ins = json_object_get(o, "instructions");
    json_t *schema = json_object_get(o, "schema");
    struct sd_error se = {0};
    enum sd_err rc = SD_OK;
    if (!json_is_object(o) || !json_is_string(ins) || !*json_string_value(ins))
        rc = sd_fail(err, SD_EINVAL, "extraction template %s: needs \"instructions\" (text)",
                     path);
    else if (!json_is_object(schema))
        rc = sd_fail(err, SD_EINVAL, "extraction template %s: needs \"schema\" (an object)", path);
    else if (schema_check(schema, &se) != SD_OK)
        rc = sd_fail(err, SD_EINVAL, "extraction template %s: %s", path, se.msg);
    else if (!(t->instructions = strdup(json_string_value(ins))))
        rc = sd_fail(err, SD_ENOMEM, "extraction templates");
    else
        t->schema = json_incref(schema);
    json_decref(o);
    return rc;
}

enum sd_err llm_templates_load(const char *dir, struct llm_templates *out, struct sd_error *err)
{
    memset(out, 0, sizeof(*out));
    DIR *d = opendir(dir);
    if (!d)
        return sd_fail(err, SD_EINVAL, "--extraction-templates: cannot open directory %s", dir);
    struct dirent *e;
    enum sd_err rc = SD_OK;
    int cap = 0;
    while (rc == SD_OK && (e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len <= 5 || strcmp(e->d_name + len - 5, ".json") != 0)
            continue;
        char path[4200];
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        if (!good_name(e->d_name, len - 5)) {
            rc = sd_fail(err, SD_EINVAL,
                         "extraction template %s: a name is 1-64 letters, digits, '-' or '_'",
                         path);
            break;
        }
        if (out->n == cap) {
            cap = cap ? cap * 2 : 8;
            struct llm_template *v = realloc(out->v, (size_t)cap * sizeof(*v));
            if (!v) {
                rc = sd_fail(err, SD_ENOMEM, "extraction templates");
                break;
            }
            out->v = v;
        }
        struct llm_template *t = &out->v[out->n];
        memset(t, 0, sizeof(*t));
        memcpy(t->name, e->d_name, len - 5);
        rc = load_one(path, t, err);
        if (rc == SD_OK)
            out->n++;
    }
    closedir(d);
    if (rc != SD_OK) {
        llm_templates_free(out);
        return rc;
    }
    if (out->n > 1)
        qsort(out->v, (size_t)out->n, sizeof(out->v[0]), by_name);
    return SD_OK;
}

void llm_templates_free(struct llm_templates *t)
{
    for (int i = 0; i < t->n; i++) {
        free(t->v[i].instructions);
        json_decref(t->v[i].schema);
    }
    free(t->v);
    memset(t, 0, sizeof(*t));
}

const struct llm_template *llm_templates_find(const struct llm_templates *t, const char *name)
{
    for (int i = 0; t && name && i < t->n; i++)
        if (strcmp(t->v[i].name, name) == 0)
            return &t->v[i];
    return NULL;
}

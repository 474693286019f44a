/*
 * param_table.c - reading, checking, storing and printing request parameters
 * from their table (see param_table.h). One value parser serves every
 * source, so a field means the same whether it came from a form, a stored
 * job or a flag.
 */
#include "pipeline/param_table.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/utf8.h"

#define MAX_WORDS 8
#define MAX_FIELD_VALUES 16

/* One spelling of a parameter, parsed from its '|'-separated column. */
struct spelling {
    char name[64];
    bool negate;                 /* "!name" */
    char alias_from[16];         /* "name(A=B)": A ... */
    char alias_to[16];           /* ... is read as B */
    char words[MAX_WORDS][24];   /* "name=w1,w2": a list field */
    int n_words;
};

static void copy_span(char *dst, size_t cap, const char *s, size_t n)
{
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, s, n);
    dst[n] = '\0';
}

/* Reads the spelling at *cursor and moves past it; false when none is left. */
static bool next_spelling(const char **cursor, struct spelling *sp)
{
    const char *s = *cursor;
    if (!s || !*s)
        return false;
    const char *end = strchr(s, '|');
    size_t len = end ? (size_t)(end - s) : strlen(s);
    *cursor = end ? end + 1 : s + len;
    memset(sp, 0, sizeof(*sp));
    if (*s == '!') {
        sp->negate = true;
        s++;
        len--;
    }
    size_t name_len = strcspn(s, "(=|");
    if (name_len > len)
        name_len = len;
    copy_span(sp->name, sizeof(sp->name), s, name_len);
    const char *rest = s + name_len, *stop = s + len;
    if (rest < stop && *rest == '(') {
        const char *eq = memchr(rest, '=', (size_t)(stop - rest));
        const char *close = memchr(rest, ')', (size_t)(stop - rest));
        if (eq && close && eq < close) {
            copy_span(sp->alias_from, sizeof(sp->alias_from), rest + 1, (size_t)(eq - rest - 1));
            copy_span(sp->alias_to, sizeof(sp->alias_to), eq + 1, (size_t)(close - eq - 1));
        }
    } else if (rest < stop && *rest == '=') {
        const char *w = rest + 1;
        while (w < stop && sp->n_words < MAX_WORDS) {
            const char *comma = memchr(w, ',', (size_t)(stop - w));
            const char *wend = comma ? comma : stop;
            copy_span(sp->words[sp->n_words++], sizeof(sp->words[0]), w, (size_t)(wend - w));
            w = comma ? comma + 1 : stop;
        }
    }
    return true;
}

static void *field_of(const struct param_table *t, void *p, int i)
{
    return (char *)p + t->v[i].offset;
}

static uint64_t *given_of(const struct param_table *t, void *p)
{
    return (uint64_t *)(void *)((char *)p + t->given_offset);
}

/* Index of `word` among the '|'-separated choices, or -1. */
static int choice_index(const char *choices, const char *word)
{
    size_t n = strlen(word);
    int k = 0;
    for (const char *c = choices; c && *c; k++) {
        const char *end = strchr(c, '|');
        size_t len = end ? (size_t)(end - c) : strlen(c);
        if (len == n && strncmp(c, word, n) == 0)
            return k;
        c = end ? end + 1 : c + len;
    }
    return -1;
}

/* Copies choice k of choices into buf. */
static const char *choice_name(const char *choices, int k, char *buf, size_t cap)
{
    const char *c = choices;
    for (int i = 0; c && i < k; i++) {
        c = strchr(c, '|');
        c = c ? c + 1 : NULL;
    }
    if (!c) {
        copy_span(buf, cap, "", 0);
        return buf;
    }
    copy_span(buf, cap, c, strcspn(c, "|"));
    return buf;
}

/* "a|b|c" -> "a, b, c" for messages. */
static const char *choices_listed(const char *choices, char *buf, size_t cap)
{
    size_t o = 0;
    for (const char *c = choices; *c && o + 3 < cap; c++) {
        if (*c == '|') {
            buf[o++] = ',';
            buf[o++] = ' ';
        } else {
            buf[o++] = *c;
        }
    }
    buf[o] = '\0';
    return buf;
}

static bool parse_bool(const char *s, bool *out)
{
    if (strcasecmp(s, "true") == 0 || strcmp(s, "1") == 0)
        *out = true;
    else if (strcasecmp(s, "false") == 0 || strcmp(s, "0") == 0)
        *out = false;
    else
        return false;
    return true;
}

static bool parse_number(const char *s, double *out)
{
    char *end = NULL;
    if (!*s)
        return false;
    *out = strtod(s, &end);
    return end != s && *end == '\0';
}

static bool valid_utf8(const char *s, size_t n)
{
    uint32_t cp;
    for (size_t i = 0, k; i < n; i += k)
        if ((k = sd_utf8_char((const uint8_t *)s + i, n - i, &cp)) == 0)
            return false;
    return true;
}

/* Sets parameter i from text as spelled by sp (NULL: the canonical form). */
static enum sd_err set_value(const struct param_table *t, int i, void *p,
                             const struct spelling *sp, const char *text, const char *field,
                             struct sd_error *err)
{
    const struct param_desc *d = &t->v[i];
    void *f = field_of(t, p, i);
    char listed[160];
    double v;
    bool b;
    if (sp && sp->alias_from[0] && strcmp(text, sp->alias_from) == 0)
        text = sp->alias_to;
    switch (d->type) {
    case PARAM_BOOL:
        if (!parse_bool(text, &b))
            return sd_fail(err, SD_EINVAL, "%s must be true or false (got '%.40s')", field,
                           text);
        *(bool *)f = (sp && sp->negate) ? !b : b;
        break;
    case PARAM_INT:
        if (!parse_number(text, &v) || v != floor(v) || !(v >= d->lo && v <= d->hi))
            return sd_fail(err, SD_EINVAL, "%s must be a whole number from %.0f to %.0f (got "
                           "'%.40s')", field, d->lo, d->hi, text);
        *(int *)f = (int)v;
        break;
    case PARAM_FLOAT:
        if (!parse_number(text, &v) || !(v >= d->lo && v <= d->hi))
            return sd_fail(err, SD_EINVAL, "%s must be a number from %g to %g (got '%.40s')",
                           field, d->lo, d->hi, text);
        *(float *)f = (float)v;
        break;
    case PARAM_ENUM: {
        int k;
        if (sp && choice_index(d->choices, sp->name) >= 0) {
            /* a field named after a choice is a switch for it (whisper.cpp's translate) */
            if (!parse_bool(text, &b))
                return sd_fail(err, SD_EINVAL, "%s must be true or false (got '%.40s')", field,
                               text);
            k = b ? choice_index(d->choices, sp->name) : 0;
        } else if ((k = choice_index(d->choices, text)) < 0) {
            return sd_fail(err, SD_EINVAL, "%s: '%.40s' is not one of %s", field, text,
                           choices_listed(d->choices, listed, sizeof(listed)));
        }
        *(int *)f = k;
        break;
    }
    case PARAM_TEXT: {
        size_t n = strlen(text);
        if ((double)n > d->hi)
            return sd_fail(err, SD_EINVAL, "%s is %zu bytes long; at most %.0f are allowed",
                           field, n, d->hi);
        if (!valid_utf8(text, n)) /* it is stored as JSON and fed to the tokenizer as text */
            return sd_fail(err, SD_EINVAL, "%s must be UTF-8 text", field);
        char *copy = strdup(text);
        if (!copy)
            return sd_fail(err, SD_ENOMEM, "%s", field);
        free(*(char **)f);
        *(char **)f = copy;
        break;
    }
    }
    *given_of(t, p) |= 1ull << i;
    return SD_OK;
}

/* A list field: every value must be one of sp's words; true when the first word is listed. */
static enum sd_err set_from_words(const struct param_table *t, int i, void *p,
                                  const struct spelling *sp, const char **vals, int n,
                                  struct sd_error *err)
{
    bool listed = false;
    for (int k = 0; k < n; k++) {
        int w = 0;
        while (w < sp->n_words && strcmp(vals[k], sp->words[w]) != 0)
            w++;
        if (w == sp->n_words) {
            char words[200] = "";
            for (int j = 0; j < sp->n_words; j++)
                snprintf(words + strlen(words), sizeof(words) - strlen(words), "%s'%s'",
                         j == 0 ? "" : j + 1 == sp->n_words ? " or " : ", ", sp->words[j]);
            return sd_fail(err, SD_EINVAL, "%s: '%.40s' is not %s", sp->name, vals[k], words);
        }
        listed = listed || w == 0;
    }
    *(bool *)field_of(t, p, i) = sp->negate ? !listed : listed;
    *given_of(t, p) |= 1ull << i;
    return SD_OK;
}

void param_defaults(const struct param_table *t, void *p)
{
    for (int i = 0; i < t->n; i++) {
        const struct param_desc *d = &t->v[i];
        void *f = field_of(t, p, i);
        switch (d->type) {
        case PARAM_BOOL: *(bool *)f = d->def != 0; break;
        case PARAM_INT: *(int *)f = (int)d->def; break;
        case PARAM_FLOAT: *(float *)f = (float)d->def; break;
        case PARAM_ENUM: *(int *)f = 0; break;
        case PARAM_TEXT: *(char **)f = NULL; break;
        }
    }
    *given_of(t, p) = 0;
}

void param_clear(const struct param_table *t, void *p)
{
    for (int i = 0; i < t->n; i++)
        if (t->v[i].type == PARAM_TEXT)
            free(*(char **)field_of(t, p, i));
    param_defaults(t, p);
}

enum sd_err param_copy(const struct param_table *t, void *dst, const void *src,
                       struct sd_error *err)
{
    param_defaults(t, dst);
    for (int i = 0; i < t->n; i++) {
        const void *from = (const char *)src + t->v[i].offset;
        void *to = field_of(t, dst, i);
        switch (t->v[i].type) {
        case PARAM_BOOL: *(bool *)to = *(const bool *)from; break;
        case PARAM_INT:
        case PARAM_ENUM: *(int *)to = *(const int *)from; break;
        case PARAM_FLOAT: *(float *)to = *(const float *)from; break;
        case PARAM_TEXT: {
            const char *s = *(char *const *)from;
            if (s && !(*(char **)to = strdup(s))) {
                param_clear(t, dst);
                return sd_fail(err, SD_ENOMEM, "copying request parameters");
            }
            break;
        }
        }
    }
    *given_of(t, dst) = *(const uint64_t *)(const void *)((const char *)src + t->given_offset);
    return SD_OK;
}

bool param_given(const struct param_table *t, const void *p, int index)
{
    uint64_t g = *(const uint64_t *)(const void *)((const char *)p + t->given_offset);
    return index >= 0 && index < t->n && (g >> index) & 1;
}

int param_index(const struct param_table *t, const char *name)
{
    for (int i = 0; i < t->n; i++)
        if (strcmp(t->v[i].name, name) == 0)
            return i;
    return -1;
}

/* Reads parameter i from the first of its spellings in column that the fields have. */
static enum sd_err parse_column(const struct param_table *t, int i, const char *column,
                                param_field_fn get, void *user, void *p, bool *found,
                                char *field, struct sd_error *err)
{
    struct spelling sp;
    const char *cursor = column;
    while (!*found && next_spelling(&cursor, &sp)) {
        const char *vals[MAX_FIELD_VALUES], *present[MAX_FIELD_VALUES];
        int n = get(user, sp.name, vals, MAX_FIELD_VALUES), n_present = 0;
        for (int k = 0; k < n; k++)
            if (vals[k] && *vals[k])
                present[n_present++] = vals[k];
        if (n_present == 0)
            continue;
        *found = true;
        enum sd_err rc = sp.n_words > 0
                             ? set_from_words(t, i, p, &sp, present, n_present, err)
                             : set_value(t, i, p, &sp, present[0], sp.name, err);
        if (rc != SD_OK) {
            snprintf(field, 64, "%s", sp.name);
            return rc;
        }
    }
    return SD_OK;
}

enum sd_err param_parse_fields(const struct param_table *t, enum param_dialect d,
                               param_field_fn get, void *user, void *p, char *field,
                               struct sd_error *err)
{
    for (int i = 0; i < t->n; i++) {
        const char *columns[2] = {t->v[i].form, NULL};
        if (d == PARAM_DIALECT_WCPP) {
            columns[0] = t->v[i].wcpp;
            columns[1] = t->v[i].form;
        }
        bool found = false;
        for (int c = 0; c < 2 && !found; c++) {
            enum sd_err rc = parse_column(t, i, columns[c], get, user, p, &found, field, err);
            if (rc != SD_OK)
                return rc;
        }
    }
    return SD_OK;
}

/* The shortest decimal that reads back as the same float: 0.2, not 0.200000003. */
static json_t *float_json(float f)
{
    char buf[32];
    for (int digits = 6; digits <= 9; digits++) {
        snprintf(buf, sizeof(buf), "%.*g", digits, (double)f);
        if ((float)strtod(buf, NULL) == f)
            break;
    }
    return json_real(strtod(buf, NULL));
}

json_t *param_to_json(const struct param_table *t, const void *p)
{
    json_t *o = json_object();
    char name[64];
    for (int i = 0; o && i < t->n; i++) {
        if (!param_given(t, p, i))
            continue;
        const void *f = (const char *)p + t->v[i].offset;
        json_t *v = NULL;
        switch (t->v[i].type) {
        case PARAM_BOOL: v = json_boolean(*(const bool *)f); break;
        case PARAM_INT: v = json_integer(*(const int *)f); break;
        case PARAM_FLOAT: v = float_json(*(const float *)f); break;
        case PARAM_ENUM:
            v = json_string(choice_name(t->v[i].choices, *(const int *)f, name, sizeof(name)));
            break;
        case PARAM_TEXT: v = json_string(*(char *const *)f ? *(char *const *)f : ""); break;
        }
        if (!v || json_object_set_new(o, t->v[i].name, v) != 0) {
            json_decref(o);
            return NULL;
        }
    }
    return o;
}

enum sd_err param_from_json(const struct param_table *t, const json_t *o, void *p,
                            struct sd_error *err)
{
    const char *key;
    json_t *v;
    if (!json_is_object(o))
        return sd_fail(err, SD_EINVAL, "request parameters must be a JSON object");
    json_object_foreach((json_t *)o, key, v) {
        int i = param_index(t, key);
        char text[64];
        const char *s = text;
        if (i < 0 || json_is_null(v))
            continue;
        if (json_is_string(v))
            s = json_string_value(v);
        else if (json_is_boolean(v))
            s = json_is_true(v) ? "true" : "false";
        else if (json_is_integer(v))
            snprintf(text, sizeof(text), "%lld", (long long)json_integer_value(v));
        else if (json_is_real(v))
            snprintf(text, sizeof(text), "%.17g", json_real_value(v));
        else
            return sd_fail(err, SD_EINVAL, "%s: not a JSON scalar", key);
        enum sd_err rc = set_value(t, i, p, NULL, s, key, err);
        if (rc != SD_OK)
            return rc;
    }
    return SD_OK;
}

/* The table flag spelled argv[*i] ("--name" or "--name=value"), or -1. */
static int find_flag(const struct param_table *t, const char *arg, struct spelling *out)
{
    if (strncmp(arg, "--", 2) != 0)
        return -1;
    const char *name = arg + 2;
    size_t n = strcspn(name, "=");
    for (int i = 0; i < t->n; i++) {
        const char *cursor = t->v[i].cli;
        while (next_spelling(&cursor, out))
            if (strlen(out->name) == n && strncmp(out->name, name, n) == 0)
                return i;
    }
    return -1;
}

int param_parse_cli(const struct param_table *t, int argc, char **argv, int *i, void *p,
                    struct sd_error *err)
{
    struct spelling sp;
    int k = find_flag(t, argv[*i], &sp);
    if (k < 0)
        return 0;
    const char *eq = strchr(argv[*i], '=');
    char flag[80];
    snprintf(flag, sizeof(flag), "--%s", sp.name);
    const char *value = eq ? eq + 1 : NULL;
    if (!value && t->v[k].type == PARAM_BOOL)
        value = "true"; /* a switch */
    if (!value) {
        if (*i + 1 >= argc) {
            sd_fail(err, SD_EINVAL, "%s needs a value", flag);
            return -1;
        }
        value = argv[++*i];
    }
    return set_value(t, k, p, &sp, value, flag, err) == SD_OK ? 1 : -1;
}

/* "N", "X", "a|b" or "TEXT": what a flag's value looks like. */
static const char *value_hint(const struct param_desc *d)
{
    switch (d->type) {
    case PARAM_INT: return " N";
    case PARAM_FLOAT: return " X";
    case PARAM_TEXT: return " TEXT";
    default: return "";
    }
}

void param_print_cli_help(const struct param_table *t, const void *p, FILE *f)
{
    char name[64];
    for (int i = 0; i < t->n; i++) {
        const struct param_desc *d = &t->v[i];
        struct spelling sp;
        const char *cursor = d->cli;
        char flags[160] = "";
        bool negated = false;
        while (next_spelling(&cursor, &sp)) {
            size_t o = strlen(flags);
            snprintf(flags + o, sizeof(flags) - o, "%s--%s%s%s", o ? ", " : "", sp.name,
                     d->type == PARAM_ENUM ? " " : "",
                     d->type == PARAM_ENUM ? d->choices : value_hint(d));
            if (o == 0)
                negated = sp.negate;
        }
        if (!flags[0])
            continue;
        const void *v = (const char *)p + d->offset;
        char def[96];
        switch (d->type) {
        case PARAM_BOOL:
            snprintf(def, sizeof(def), "default %s", *(const bool *)v != negated ? "on" : "off");
            break;
        case PARAM_INT:
            snprintf(def, sizeof(def), "default %d, %.0f..%.0f", *(const int *)v, d->lo, d->hi);
            break;
        case PARAM_FLOAT:
            snprintf(def, sizeof(def), "default %g, %g..%g", (double)*(const float *)v, d->lo,
                     d->hi);
            break;
        case PARAM_ENUM:
            snprintf(def, sizeof(def), "default %s",
                     choice_name(d->choices, *(const int *)v, name, sizeof(name)));
            break;
        case PARAM_TEXT: {
            const char *s = *(char *const *)v;
            snprintf(def, sizeof(def), "default %.60s", s && *s ? s : "none");
            break;
        }
        }
        fprintf(f, "  %-30s %s (%s)\n", flags, d->help, def);
    }
}

enum sd_err param_set_text(const struct param_table *t, void *p, int index, const char *text,
                           const char *field, struct sd_error *err)
{
    if (index < 0 || index >= t->n)
        return sd_fail(err, SD_EINVAL, "no parameter %d", index);
    return set_value(t, index, p, NULL, text, field ? field : t->v[index].name, err);
}

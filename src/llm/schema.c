/*
 * schema.c - the JSON Schema subset of schema.h. A recursive walk with the
 * JSON pointer of the current value in a fixed buffer (deeper paths are cut
 * with "..." rather than failing: they only label errors).
 */
#include "llm/schema.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


#define PATH_MAX_LEN 512
#define MAX_DEPTH 64

static const char *const type_names[] = {"object", "array", "string", "number",
                                         "integer", "boolean", "null"};

static bool known_type(const char *t)
{
    for (size_t i = 0; i < sizeof(type_names) / sizeof(type_names[0]); i++)
        if (strcmp(t, type_names[i]) == 0)
            return true;
    return false;
}

/* Appends one pointer segment, escaping '~' and '/' as RFC 6901 says. */
static void path_push(char *path, size_t *len, const char *seg)
{
    size_t n = *len;
    if (n + 2 >= PATH_MAX_LEN)
        return;
    path[n++] = '/';
    for (const char *s = seg; *s && n + 3 < PATH_MAX_LEN; s++) {
        if (*s == '~' || *s == '/') {
            path[n++] = '~';
            path[n++] = *s == '~' ? '0' : '1';
        } else {
            path[n++] = *s;
        }
    }
    path[n] = '\0';
    *len = n;
}

static void path_push_index(char *path, size_t *len, size_t i)
{
    char seg[32];
    snprintf(seg, sizeof(seg), "%zu", i);
    path_push(path, len, seg);
}

/* ---- schema_check ------------------------------------------------------- */

static enum sd_err check_at(const json_t *s, char *path, size_t len, int depth,
                            struct sd_error *err);

static enum sd_err bad(struct sd_error *err, const char *path, const char *what)
{
    return sd_fail(err, SD_EINVAL, "schema at '%s': %s", *path ? path : "/", what);
}

static bool is_nonneg_int(const json_t *v)
{
    return json_is_integer(v) && json_integer_value(v) >= 0;
}

static enum sd_err check_at(const json_t *s, char *path, size_t len, int depth,
                            struct sd_error *err)
{
    if (depth > MAX_DEPTH)
        return bad(err, path, "nested too deeply");
    if (json_is_true(s))
        return SD_OK; /* "anything" */
    if (!json_is_object(s))
        return bad(err, path, "a schema must be an object");
    const json_t *t = json_object_get(s, "type");
    if (t) {
        if (json_is_string(t)) {
            if (!known_type(json_string_value(t)))
                return bad(err, path, "unknown type");
        } else if (json_is_array(t) && json_array_size(t) > 0) {
            size_t i;
            const json_t *v;
            json_array_foreach(t, i, v) if (!json_is_string(v) || !known_type(json_string_value(v)))
                return bad(err, path, "unknown type in the type list");
        } else {
            return bad(err, path, "type must be a type name or a list of them");
        }
    }
    const json_t *props = json_object_get(s, "properties");
    if (props) {
        if (!json_is_object(props))
            return bad(err, path, "properties must be an object");
        const char *k;
        const json_t *v;
        json_object_foreach((json_t *)props, k, v)
        {
            size_t l = len;
            path_push(path, &l, "properties");
            path_push(path, &l, k);
            enum sd_err rc = check_at(v, path, l, depth + 1, err);
            path[len] = '\0';
            if (rc != SD_OK)
                return rc;
        }
    }
    const json_t *req = json_object_get(s, "required");
    if (req) {
        size_t i;
        const json_t *v;
        if (!json_is_array(req))
            return bad(err, path, "required must be a list of names");
        json_array_foreach(req, i, v) if (!json_is_string(v))
            return bad(err, path, "required must be a list of names");
    }
    const json_t *items = json_object_get(s, "items");
    if (items) {
        size_t l = len;
        path_push(path, &l, "items");
        enum sd_err rc = check_at(items, path, l, depth + 1, err);
        path[len] = '\0';
        if (rc != SD_OK)
            return rc;
    }
    const json_t *ap = json_object_get(s, "additionalProperties");
    if (ap && !json_is_boolean(ap)) {
        size_t l = len;
        path_push(path, &l, "additionalProperties");
        enum sd_err rc = check_at(ap, path, l, depth + 1, err);
        path[len] = '\0';
        if (rc != SD_OK)
            return rc;
    }
    const json_t *e = json_object_get(s, "enum");
    if (e && (!json_is_array(e) || json_array_size(e) == 0))
        return bad(err, path, "enum must be a non-empty list");
    static const char *const numbers[] = {"minimum", "maximum"};
    for (int i = 0; i < 2; i++) {
        const json_t *v = json_object_get(s, numbers[i]);
        if (v && !json_is_number(v))
            return bad(err, path, "minimum and maximum must be numbers");
    }
    static const char *const counts[] = {"minLength", "maxLength", "minItems", "maxItems"};
    for (int i = 0; i < 4; i++) {
        const json_t *v = json_object_get(s, counts[i]);
        if (v && !is_nonneg_int(v))
            return bad(err, path, "length and item bounds must be whole numbers >= 0");
    }
    return SD_OK;
}

enum sd_err schema_check(const json_t *schema, struct sd_error *err)
{
    char path[PATH_MAX_LEN] = "";
    if (!json_is_object(schema))
        return sd_fail(err, SD_EINVAL, "the schema must be a JSON object");
    return check_at(schema, path, 0, 0, err);
}

/* ---- schema_validate ---------------------------------------------------- */

struct vctx {
    json_t *errors;
    int n;
    char path[PATH_MAX_LEN];
};

__attribute__((format(printf, 2, 3))) static void add_error(struct vctx *c, const char *fmt, ...)
{
    c->n++;
    if (!c->errors || json_array_size(c->errors) >= SCHEMA_MAX_ERRORS)
        return;
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    json_array_append_new(c->errors, json_pack("{s:s, s:s}", "path", c->path[0] ? c->path : "",
                                               "message", msg));
}

static bool type_matches(const char *t, const json_t *v)
{
    if (strcmp(t, "object") == 0)
        return json_is_object(v);
    if (strcmp(t, "array") == 0)
        return json_is_array(v);
    if (strcmp(t, "string") == 0)
        return json_is_string(v);
    if (strcmp(t, "number") == 0)
        return json_is_number(v);
    if (strcmp(t, "integer") == 0) {
        if (json_is_integer(v))
            return true;
        double d = json_is_real(v) ? json_real_value(v) : NAN;
        return isfinite(d) && d == floor(d);
    }
    if (strcmp(t, "boolean") == 0)
        return json_is_boolean(v);
    if (strcmp(t, "null") == 0)
        return json_is_null(v);
    return false;
}

static const char *kind_of(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    default: return "null";
    }
}

/* True if v has one of the schema's types (or the schema names none). */
static bool check_type(struct vctx *c, const json_t *s, const json_t *v)
{
    const json_t *t = json_object_get(s, "type");
    if (!t)
        return true;
    char want[128] = "";
    if (json_is_string(t)) {
        if (type_matches(json_string_value(t), v))
            return true;
        snprintf(want, sizeof(want), "%s", json_string_value(t));
    } else if (json_is_array(t)) {
        size_t i, n = 0;
        const json_t *x;
        json_array_foreach(t, i, x)
        {
            if (json_is_string(x) && type_matches(json_string_value(x), v))
                return true;
            if (json_is_string(x))
                n += (size_t)snprintf(want + n, n < sizeof(want) ? sizeof(want) - n : 0, "%s%s",
                                      i ? " or " : "", json_string_value(x));
            if (n >= sizeof(want))
                n = sizeof(want) - 1;
        }
    } else {
        return true;
    }
    add_error(c, "expected %s, got %s", want, kind_of(v));
    return false;
}

static double num(const json_t *v)
{
    return json_number_value(v);
}

static void validate_at(struct vctx *c, const json_t *s, const json_t *v, int depth);

static void validate_object(struct vctx *c, const json_t *s, const json_t *v, int depth)
{
    size_t len = strlen(c->path);
    const json_t *props = json_object_get(s, "properties");
    const json_t *req = json_object_get(s, "required");
    const json_t *ap = json_object_get(s, "additionalProperties");
    size_t i;
    const json_t *r;
    json_array_foreach(req, i, r)
    {
        const char *name = json_string_value(r);
        if (name && !json_object_get(v, name)) {
            size_t l = len;
            path_push(c->path, &l, name);
            add_error(c, "required property is missing");
            c->path[len] = '\0';
        }
    }
    const char *k;
    const json_t *x;
    json_object_foreach((json_t *)v, k, x)
    {
        const json_t *ps = props ? json_object_get(props, k) : NULL;
        size_t l = len;
        path_push(c->path, &l, k);
        if (ps)
            validate_at(c, ps, x, depth + 1);
        else if (json_is_false(ap))
            add_error(c, "property is not allowed by the schema (additionalProperties: false)");
        else if (json_is_object(ap))
            validate_at(c, ap, x, depth + 1);
        c->path[len] = '\0';
    }
}

static void validate_array(struct vctx *c, const json_t *s, const json_t *v, int depth)
{
    size_t n = json_array_size(v), len = strlen(c->path);
    const json_t *mn = json_object_get(s, "minItems"), *mx = json_object_get(s, "maxItems");
    if (mn && (json_int_t)n < json_integer_value(mn))
        add_error(c, "needs at least %lld items", (long long)json_integer_value(mn));
    if (mx && (json_int_t)n > json_integer_value(mx))
        add_error(c, "allows at most %lld items", (long long)json_integer_value(mx));
    const json_t *items = json_object_get(s, "items");
    if (!items)
        return;
    for (size_t i = 0; i < n; i++) {
        size_t l = len;
        path_push_index(c->path, &l, i);
        validate_at(c, items, json_array_get(v, i), depth + 1);
        c->path[len] = '\0';
    }
}

/* jansson's strings are valid UTF-8: every byte that does not continue a character starts one. */
static long long code_points(const char *s, size_t n)
{
    long long c = 0;
    for (size_t i = 0; i < n; i++)
        c += ((unsigned char)s[i] & 0xC0) != 0x80;
    return c;
}

static void validate_scalar(struct vctx *c, const json_t *s, const json_t *v)
{
    if (json_is_string(v)) {
        const json_t *mn = json_object_get(s, "minLength"), *mx = json_object_get(s, "maxLength");
        if (mn || mx) {
            long long chars = code_points(json_string_value(v), json_string_length(v));
            if (mn && chars < json_integer_value(mn))
                add_error(c, "needs at least %lld characters", (long long)json_integer_value(mn));
            if (mx && chars > json_integer_value(mx))
                add_error(c, "allows at most %lld characters", (long long)json_integer_value(mx));
        }
    }
    if (json_is_number(v)) {
        const json_t *mn = json_object_get(s, "minimum"), *mx = json_object_get(s, "maximum");
        if (mn && num(v) < num(mn))
            add_error(c, "must be >= %g", num(mn));
        if (mx && num(v) > num(mx))
            add_error(c, "must be <= %g", num(mx));
    }
}

static bool json_equal_num(const json_t *a, const json_t *b)
{
    if (json_is_number(a) && json_is_number(b))
        return num(a) == num(b);
    return json_equal((json_t *)a, (json_t *)b);
}

static void validate_at(struct vctx *c, const json_t *s, const json_t *v, int depth)
{
    if (depth > MAX_DEPTH) {
        add_error(c, "nested too deeply");
        return;
    }
    if (!json_is_object(s))
        return; /* true or an unchecked schema: anything goes */
    if (!check_type(c, s, v))
        return;
    const json_t *e = json_object_get(s, "enum");
    if (json_is_array(e)) {
        size_t i;
        const json_t *x;
        bool found = false;
        json_array_foreach(e, i, x) if (json_equal_num(x, v)) found = true;
        if (!found)
            add_error(c, "must be one of the values the schema's enum lists");
    }
    if (json_is_object(v))
        validate_object(c, s, v, depth);
    else if (json_is_array(v))
        validate_array(c, s, v, depth);
    else
        validate_scalar(c, s, v);
}

bool schema_validate(const json_t *schema, const json_t *instance, json_t *errors)
{
    struct vctx c = {.errors = errors};
    validate_at(&c, schema, instance, 0);
    return c.n == 0;
}

char *schema_errors_text(const json_t *errors)
{
    size_t cap = 64, len = 0, i;
    char *out = malloc(cap);
    const json_t *e;
    if (!out)
        return NULL;
    out[0] = '\0';
    json_array_foreach(errors, i, e)
    {
        const char *p = json_string_value(json_object_get(e, "path"));
        const char *m = json_string_value(json_object_get(e, "message"));
        size_t need = len + strlen(p ? p : "") + strlen(m ? m : "") + 8;
        if (need > cap) {
            cap = need * 2;
            char *n = realloc(out, cap);
            if (!n) {
                free(out);
                return NULL;
            }
            out = n;
        }
        len += (size_t)snprintf(out + len, cap - len, "- %s: %s\n", p && *p ? p : "/",
                                m ? m : "");
    }
    return out;
}

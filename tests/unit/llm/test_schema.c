/* Tests of llm/schema.c: the JSON Schema subset that extraction answers are held to. */
#include <jansson.h>
#include <stdlib.h>

#include "check.h"
#include "llm/schema.h"

static json_t *j(const char *text)
{
    json_error_t e;
    json_t *v = json_loads(text, JSON_DECODE_ANY, &e);
    CHECK_MSG(v != NULL, "bad test JSON: %s", e.text);
    return v;
}

/* Validates; returns the errors array (caller decrefs) and sets *ok. */
static json_t *run(const char *schema, const char *instance, bool *ok)
{
    json_t *s = j(schema), *v = j(instance), *errs = json_array();
    *ok = schema_validate(s, v, errs);
    json_decref(s);
    json_decref(v);
    return errs;
}

static const char *path_of(json_t *errs, size_t i)
{
    return json_string_value(json_object_get(json_array_get(errs, i), "path"));
}

static const char person[] =
    "{\"type\":\"object\",\"additionalProperties\":false,\"required\":[\"name\",\"age\"],"
    "\"properties\":{\"name\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":5},"
    "\"age\":{\"type\":\"integer\",\"minimum\":0,\"maximum\":150},"
    "\"tags\":{\"type\":\"array\",\"items\":{\"type\":\"string\",\"enum\":[\"a\",\"b\"]}},"
    "\"note\":{\"type\":[\"string\",\"null\"]}}}";

TEST(schema_valid_object_passes)
{
    bool ok;
    json_t *e = run(person, "{\"name\":\"Ann\",\"age\":30,\"tags\":[\"a\",\"b\"],\"note\":null}",
                    &ok);
    CHECK(ok);
    CHECK_EQ_INT(json_array_size(e), 0);
    json_decref(e);
}

TEST(schema_missing_required_and_extra_property)
{
    bool ok;
    json_t *e = run(person, "{\"name\":\"Ann\",\"extra\":1}", &ok);
    CHECK(!ok);
    CHECK_EQ_INT(json_array_size(e), 2);
    CHECK_STR(path_of(e, 0), "/age");
    CHECK_STR(path_of(e, 1), "/extra");
    json_decref(e);
}

TEST(schema_types_ranges_lengths_enum_with_pointer_paths)
{
    bool ok;
    json_t *e = run(person, "{\"name\":\"\",\"age\":151.5,\"tags\":[\"a\",\"z\",3],\"note\":7}",
                    &ok);
    CHECK(!ok);
    /* name too short; age not an integer (type stops further checks); tags/1 enum; tags/2 type; note type */
    CHECK_EQ_INT(json_array_size(e), 5);
    CHECK_STR(path_of(e, 0), "/name");
    CHECK_STR(path_of(e, 1), "/age");
    CHECK_STR(path_of(e, 2), "/tags/1");
    CHECK_STR(path_of(e, 3), "/tags/2");
    CHECK_STR(path_of(e, 4), "/note");
    json_decref(e);
    e = run(person, "{\"name\":\"Annabel\",\"age\":-1}", &ok);
    CHECK(!ok);
    CHECK_EQ_INT(json_array_size(e), 2);
    json_decref(e);
}

TEST(schema_integer_accepts_whole_reals_and_length_counts_code_points)
{
    bool ok;
    json_t *e = run(person, "{\"name\":\"\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\",\"age\":30.0}", &ok);
    CHECK(ok); /* five two-byte characters: within maxLength 5 */
    json_decref(e);
}

TEST(schema_messages_do_not_repeat_values)
{
    bool ok;
    json_t *e = run("{\"type\":\"object\",\"properties\":{\"s\":{\"enum\":[\"x\"]}}}",
                    "{\"s\":\"secret transcript words\"}", &ok);
    CHECK(!ok);
    char *txt = schema_errors_text(e);
    CHECK(txt && strstr(txt, "/s: ") != NULL);
    CHECK(txt && strstr(txt, "secret") == NULL);
    free(txt);
    json_decref(e);
}

TEST(schema_pointer_escapes_and_error_cap)
{
    bool ok;
    json_t *e = run("{\"type\":\"object\",\"required\":[\"a/b\",\"c~d\"]}", "{}", &ok);
    CHECK(!ok);
    CHECK_STR(path_of(e, 0), "/a~1b");
    CHECK_STR(path_of(e, 1), "/c~0d");
    json_decref(e);
    /* a hostile answer with thousands of faults yields a bounded list */
    json_t *arr = json_array();
    for (int i = 0; i < 1000; i++)
        json_array_append_new(arr, json_integer(i));
    json_t *s = j("{\"type\":\"array\",\"items\":{\"type\":\"string\"}}"), *errs = json_array();
    CHECK(!schema_validate(s, arr, errs));
    CHECK_EQ_INT(json_array_size(errs), SCHEMA_MAX_ERRORS);
    json_decref(s);
    json_decref(arr);
    json_decref(errs);
}

TEST(schema_check_refuses_malformed_schemas)
{
    struct sd_error err = {0};
    json_t *s = j(person);
    CHECK_OK(schema_check(s, &err), &err);
    json_decref(s);
    static const char *const bad[] = {
        "[]",
        "{\"type\":\"text\"}",
        "{\"type\":[]}",
        "{\"properties\":[]}",
        "{\"properties\":{\"a\":{\"type\":\"nope\"}}}",
        "{\"required\":\"a\"}",
        "{\"items\":3}",
        "{\"enum\":[]}",
        "{\"minimum\":\"1\"}",
        "{\"maxLength\":-1}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        s = j(bad[i]);
        CHECK_MSG(schema_check(s, &err) == SD_EINVAL, "accepted %s", bad[i]);
        json_decref(s);
    }
    s = j("{\"properties\":{\"a\":{\"type\":\"nope\"}}}");
    schema_check(s, &err);
    CHECK(strstr(err.msg, "/properties/a") != NULL);
    json_decref(s);
}

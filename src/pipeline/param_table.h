/*
 * param_table.h - request parameters described once, in a table, and read
 * from every place a request comes from: multipart form fields (OpenAI's
 * names or whisper.cpp server's), a stored job's JSON, and command-line
 * flags; --help is printed from the same table. A table is an array of
 * struct param_desc made from an X-macro file (stt_params.def is the one for
 * transcription), each entry naming a field of a parameter struct by offset.
 *
 * Spellings (the form, whisper.cpp and CLI columns) are '|'-separated lists;
 * NULL means the parameter cannot be given that way. Each spelling is a name
 * with optional marks:
 *   "!name"           a boolean field or switch meaning the opposite ("!no-vad-filter")
 *   "name(A=B)"       the value A is read as B (whisper.cpp's beam_size -1 = greedy)
 *   "name=w1,w2,..."  a repeatable list of words; the boolean is true when w1 is listed,
 *                     the other words are accepted ("timestamp_granularities[]=word,segment")
 * An enum given through a spelling that is one of its choices (whisper.cpp's
 * "translate" for task) takes a boolean: true selects that choice, false the first.
 *
 * Every value is checked against its type and range and refused with a
 * message naming the field as the client spelled it; nothing is clamped.
 * Empty form values count as absent. The struct's `given` mask records which
 * parameters a request set, so defaults can be told from explicit values.
 *
 * Ownership: TEXT fields are malloc'd strings owned by the struct
 * (param_clear frees them). Pure functions; thread-safe on distinct structs.
 */
#ifndef SD_PIPELINE_PARAM_TABLE_H
#define SD_PIPELINE_PARAM_TABLE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "util/err.h"

enum param_type { PARAM_BOOL, PARAM_INT, PARAM_FLOAT, PARAM_ENUM, PARAM_TEXT };

struct param_desc {
    const char *name;     /* canonical name: the JSON key */
    enum param_type type;
    size_t offset;        /* of the field in the parameter struct */
    double def;           /* BOOL (0/1), INT, FLOAT; ENUM: the first choice; TEXT: NULL */
    double lo, hi;        /* INT, FLOAT: inclusive range; TEXT: hi = longest value in bytes */
    const char *choices;  /* ENUM: "a|b|c", the value is the index */
    const char *form;     /* spellings as form fields (OpenAI's names and ours) */
    const char *wcpp;     /* spellings as whisper.cpp server fields */
    const char *cli;      /* command-line flags, without the leading "--" */
    const char *help;
};

struct param_table {
    const struct param_desc *v;
    int n;                /* at most 64 */
    size_t given_offset;  /* of the struct's uint64_t mask: bit i = v[i] was set */
};

/* Where form fields come from. */
enum param_dialect {
    PARAM_DIALECT_FORM,      /* the form spellings only */
    PARAM_DIALECT_WCPP,      /* whisper.cpp's spellings first, then the form ones */
};

/*
 * Values of the form field `name` (in order, at most max); returns how many
 * there are. The strings must stay valid until the parse returns.
 */
typedef int (*param_field_fn)(void *user, const char *name, const char **vals, int max);

/* Every parameter at its default, nothing given. */
void param_defaults(const struct param_table *t, void *p);
/* Frees the TEXT values; *p is at its defaults afterwards. */
void param_clear(const struct param_table *t, void *p);
/* Deep copy of src into dst (dst uninitialised or cleared). */
enum sd_err param_copy(const struct param_table *t, void *dst, const void *src,
                       struct sd_error *err);
bool param_given(const struct param_table *t, const void *p, int index);
/* Index of the parameter with this canonical name, or -1. */
int param_index(const struct param_table *t, const char *name);

/*
 * Reads every parameter that has a spelling in dialect d from the fields.
 * On SD_EINVAL, field (at least 64 bytes) receives the field's name as spelled.
 */
enum sd_err param_parse_fields(const struct param_table *t, enum param_dialect d,
                               param_field_fn get, void *user, void *p, char *field,
                               struct sd_error *err);

/* The given parameters as a JSON object {name: value}; NULL on ENOMEM. Caller owns. */
json_t *param_to_json(const struct param_table *t, const void *p);
/*
 * Sets the parameters named in o (unknown keys are ignored: a newer version's
 * row stays readable), with the same checks as a request.
 */
enum sd_err param_from_json(const struct param_table *t, const json_t *o, void *p,
                            struct sd_error *err);

/*
 * Command line: if argv[*i] is one of the table's flags ("--flag", "--flag V",
 * "--flag=V"), reads it (and its value, advancing *i) and returns 1; returns
 * 0 when it is not a table flag, -1 on a bad value (err names the flag).
 */
int param_parse_cli(const struct param_table *t, int argc, char **argv, int *i, void *p,
                    struct sd_error *err);
/* One line per flag: "  --flag VALUE  help (default D, range lo..hi)", defaults from p. */
void param_print_cli_help(const struct param_table *t, const void *p, FILE *f);

/*
 * Sets parameter `index` from text as if the request had sent it (marks it
 * given); field names it in an error.
 */
enum sd_err param_set_text(const struct param_table *t, void *p, int index, const char *text,
                           const char *field, struct sd_error *err);

#endif

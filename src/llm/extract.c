/*
 * extract.c - one extraction: the transcript and the template's
 * instructions go to the model with the schema; the answer is validated
 * (schema.c) and, if it does not fit, sent back once with the errors. The
 * outcome is always a record, never an error: a failed extraction must not
 * fail the transcription it belongs to.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llm/llm.h"
#include "llm/schema.h"

static const char system_head[] =
    "You extract structured data from the transcript of a recording. The transcript comes "
    "from speech recognition and may contain recognition errors; do not invent facts that "
    "it does not support. Answer only with an object that matches the given JSON schema.\n\n"
    "Instructions: ";

static const char repair_head[] = "Your answer does not match the JSON schema:\n";
static const char repair_tail[] =
    "Answer again with a corrected object that matches the schema exactly.";

/* head + middle + tail, malloc'd (NULL on ENOMEM). */
static char *concat3(const char *head, const char *middle, const char *tail)
{
    size_t n = strlen(head) + strlen(middle) + strlen(tail) + 1;
    char *s = malloc(n);
    if (s)
        snprintf(s, n, "%s%s%s", head, middle, tail);
    return s;
}

/* The name a protocol allows for the schema/tool: [A-Za-z0-9_-]{1,64}. */
static void schema_name(const char *template_name, char *out, size_t n)
{
    size_t k = 0;
    for (const char *p = template_name ? template_name : ""; *p && k + 1 < n && k < 64; p++) {
        char ch = *p;
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '-' || ch == '_';
        out[k++] = ok ? ch : '_';
    }
    out[k] = '\0';
    if (k == 0)
        snprintf(out, n, "extraction");
}

json_t *llm_extract(struct llm_client *c, const char *template_name, const char *instructions,
                    const json_t *schema, const char *transcript, const atomic_bool *cancel,
                    struct llm_stats *st)
{
    struct llm_stats local = {0};
    struct sd_error err = {0};
    json_t *data = NULL, *errors = json_array();
    char *raw = NULL, *sys = concat3(system_head, instructions ? instructions : "", "");
    char *user = concat3("Transcript:\n<transcript>\n", transcript ? transcript : "",
                         "\n</transcript>");
    char *repair = NULL, *raw_keep = NULL, name[72];
    enum sd_err rc = SD_ENOMEM;
    int rounds = 0;
    schema_name(template_name, name, sizeof(name));
    if (!sys || !user || !errors) {
        sd_fail(&err, SD_ENOMEM, "out of memory");
        goto out;
    }
    struct llm_message msgs[3] = {{"user", user}, {"assistant", NULL}, {"user", NULL}};
    for (rounds = 1;; rounds++) {
        json_decref(data);
        data = NULL;
        free(raw);
        raw = NULL;
        json_array_clear(errors);
        err = (struct sd_error){0};
        rc = llm_structured(c, sys, msgs, rounds == 1 ? 1 : 3, name, schema, cancel, &data, &raw,
                            &local, &err);
        if (rc == SD_OK && schema_validate(schema, data, errors))
            break;
        if (rc != SD_OK && rc != SD_EFORMAT)
            break; /* the API failed (after its retries): no repair round fixes that */
        if (rc == SD_EFORMAT)
            json_array_append_new(errors, json_pack("{s:s, s:s}", "path", "", "message",
                                                    err.msg));
        if (rounds == 2 || !raw) {
            char *txt = schema_errors_text(errors);
            rc = sd_fail(&err, SD_EFORMAT, "the model's answer does not match the schema%s: %.160s",
                         rounds == 2 ? " after a repair round" : "", txt ? txt : "");
            free(txt);
            break;
        }
        char *txt = schema_errors_text(errors);
        repair = txt ? concat3(repair_head, txt, repair_tail) : NULL;
        free(txt);
        if (!repair) {
            rc = sd_fail(&err, SD_ENOMEM, "out of memory");
            break;
        }
        msgs[1].content = raw; /* the model's first answer, for the repair turn */
        msgs[2].content = repair;
        raw_keep = raw;
        raw = NULL;
    }
out:;
    bool ok = rc == SD_OK;
    json_t *rec = json_object();
    json_object_set_new(rec, "status", json_string(ok ? "succeeded" : "failed"));
    json_object_set_new(rec, "template", template_name ? json_string(template_name) : json_null());
    json_object_set_new(rec, "model", json_string(llm_client_model(c)));
    json_object_set_new(rec, "data", ok ? json_incref(data) : json_null());
    json_object_set_new(rec, "usage",
                        json_pack("{s:I, s:I}", "input_tokens", (json_int_t)local.input_tokens,
                                  "output_tokens", (json_int_t)local.output_tokens));
    json_object_set_new(rec, "timings",
                        json_pack("{s:f, s:i, s:i}", "llm_s", local.seconds, "requests",
                                  local.requests, "repair_rounds", rounds > 1 ? 1 : 0));
    json_object_set_new(rec, "error",
                        ok ? json_null()
                           : json_pack("{s:s, s:s}", "code", sd_err_name(rc), "message", err.msg));
    if (st) {
        st->requests += local.requests;
        st->failures += local.failures;
        st->seconds += local.seconds;
        st->input_tokens += local.input_tokens;
        st->output_tokens += local.output_tokens;
    }
    json_decref(data);
    json_decref(errors);
    free(raw);
    free(sys);
    free(user);
    free(repair);
    free(raw_keep);
    return rec;
}

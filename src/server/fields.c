/*
 * fields.c - the multipart endpoints' input: the file part (present,
 * non-empty, an allowed type by name and by its first bytes), the request
 * parameters (read through the parameter table, pipeline/stt_params.def, in
 * OpenAI's names or whisper.cpp server's), and the rules that belong to an
 * endpoint rather than to a parameter: translations always translate, jobs
 * cannot stream and may carry a webhook. `model` is optional everywhere (the
 * loaded model); given, it must name an offered model (models.h). Every
 * refusal names the field (OpenAI's "param"). Deep media checks are the
 * decoder's job.
 */
#include <stdio.h>
#include <string.h>

#include "llm/schema.h"
#include "pipeline/transcription.h"
#include "server/app.h"
#include "server/models.h"
#include "server/routes.h"

static enum sd_err check_file(const struct upload *u, struct sd_error *err)
{
    if (!upload_has_file(u))
        return sd_fail(err, SD_EINVAL, "the request has no 'file' part (multipart field 'file')");
    if (upload_file_bytes(u) == 0)
        return sd_fail(err, SD_EINVAL, "the uploaded file is empty");
    return upload_check_type(u, err); /* again on the whole file: shorter than the sniff */
}

struct field_source {
    const struct upload *u;
    enum fields_dialect d;
};

/* The upload's fields as the parameter table reads them. */
static int source_fields(void *user, const char *name, const char **vals, int max)
{
    const struct field_source *fs = user;
    /* OpenAI's translations take neither: the output is English, whatever was spoken */
    if (fs->d == FIELDS_TRANSLATION && (strcmp(name, "language") == 0 || strcmp(name, "task") == 0))
        return 0;
    return upload_field_all(fs->u, name, vals, max);
}

static enum sd_err fail_param(char *param, const char *name, struct sd_error *err,
                              const char *msg)
{
    snprintf(param, FIELDS_PARAM_MAX, "%s", name);
    return sd_fail(err, SD_EINVAL, "%s", msg);
}

/* The fields only /v1/jobs takes, and what it refuses. */
static enum sd_err job_fields(const struct upload *u, const struct stt_params *p,
                              const char **callback_url, char *param, struct sd_error *err)
{
    if (p->stream)
        return fail_param(param, "stream", err,
                          "jobs cannot stream; poll GET /v1/jobs/{id} instead");
    const char *v = upload_field(u, "callback_url");
    if (v && *v) {
        if ((strncmp(v, "http://", 7) != 0 && strncmp(v, "https://", 8) != 0) ||
            strlen(v) > 2048)
            return fail_param(param, "callback_url", err, "callback_url must be an http(s) URL");
        *callback_url = v;
    }
    return SD_OK;
}

enum sd_err fields_parse(const struct upload *u, enum fields_dialect d, struct stt_params *p,
                         const char **callback_url, char *param, struct sd_error *err)
{
    param[0] = '\0';
    enum sd_err rc = check_file(u, err);
    if (rc != SD_OK) {
        snprintf(param, FIELDS_PARAM_MAX, "file");
        return rc;
    }
    struct field_source fs = {u, d};
    rc = param_parse_fields(&stt_param_table,
                            d == FIELDS_WHISPER_CPP ? PARAM_DIALECT_WCPP : PARAM_DIALECT_FORM,
                            source_fields, &fs, p, param, err);
    if (rc != SD_OK)
        return rc;
    const char *checked = NULL;
    if ((rc = stt_params_check(p, &checked, err)) != SD_OK) {
        snprintf(param, FIELDS_PARAM_MAX, "%s", checked ? checked : "");
        return rc;
    }
    if (d == FIELDS_TRANSLATION)
        STT_SET(p, task, TASK_TRANSLATE);
    return d == FIELDS_JOB ? job_fields(u, p, callback_url, param, err) : SD_OK;
}

/*
 * The extraction fields (extract, extract_schema, extract_instructions):
 * an LLM configured, a template that exists or an inline schema the
 * operator allows and that is a schema, and an answer that can carry it.
 */
static enum sd_err extraction_fields(const struct app *a, enum fields_dialect d,
                                     const struct stt_params *p, char *param,
                                     struct sd_error *err)
{
    bool named = p->extract && *p->extract;
    bool inline_schema = p->extract_schema && *p->extract_schema;
    if (!named && !inline_schema) {
        if (p->extract_instructions && *p->extract_instructions)
            return fail_param(param, "extract_instructions", err,
                              "extract_instructions goes with extract_schema");
        return SD_OK;
    }
    const char *field = inline_schema ? "extract_schema" : "extract";
    if (!a->llm)
        return fail_param(param, field, err,
                          "structured extraction is not configured on this server (--llm-url, "
                          "--llm-model)");
    if (d != FIELDS_JOB && p->stream)
        return fail_param(param, field, err, "extraction cannot be combined with stream=true");
    if (d != FIELDS_JOB && p->response_format != OUTPUT_JSON &&
        p->response_format != OUTPUT_VERBOSE_JSON)
        return fail_param(param, field, err,
                          "extraction needs response_format json or verbose_json (or use "
                          "POST /v1/jobs and GET /v1/jobs/{id}/extraction)");
    if (!inline_schema) {
        if (!llm_templates_find(&a->templates, p->extract))
            return fail_param(param, "extract", err,
                              "no extraction template of this name (GET "
                              "/v1/extraction/templates lists them)");
        return SD_OK;
    }
    if (!a->cfg.extraction_allow_inline)
        return fail_param(param, "extract_schema", err,
                          "this server does not accept inline schemas "
                          "(--extraction-allow-inline); use a template with extract");
    json_t *schema = json_loads(p->extract_schema, 0, NULL);
    struct sd_error se = {0};
    enum sd_err rc = schema_check(schema, &se);
    json_decref(schema);
    if (rc != SD_OK) {
        char msg[300];
        snprintf(msg, sizeof(msg), "extract_schema: %s", schema ? se.msg : "not JSON");
        return fail_param(param, "extract_schema", err, msg);
    }
    return SD_OK;
}

bool fields_read_request(struct http_request *r, enum fields_dialect d, struct stt_params *p,
                         const char **callback_url)
{
    struct app *a = http_app(r);
    struct sd_error err = {0};
    char param[FIELDS_PARAM_MAX], msg[3000];
    if (fields_parse(http_upload(r), d, p, callback_url, param, &err) != SD_OK ||
        extraction_fields(a, d, p, param, &err) != SD_OK) {
        http_reply_error(r, err.code, err.msg, param[0] ? param : NULL);
        return false;
    }
    if (pipeline_status(a->jobs->pipeline, msg, sizeof(msg)) == PIPELINE_FAILED) {
        size_t n = strlen(msg);
        snprintf(msg + n, sizeof(msg) - n, ". %s", a->model_hint);
        http_reply_condition(r, HTTP_COND_UNAVAILABLE, msg);
        return false;
    }
    if (STT_GIVEN(p, model) && p->model && *p->model && !models_find(a, p->model, NULL)) {
        models_reply_not_found(r, p->model);
        return false;
    }
    /* the model's limits are the request's fault: a 400 naming the field, before queueing */
    const char *lang = p->language;
    if (lang && *lang && strcmp(lang, "en") != 0 && strcmp(lang, "auto") != 0 &&
        !pipeline_multilingual(a->jobs->pipeline)) {
        snprintf(msg, sizeof(msg), "language '%s' needs a multilingual model (%s is English-only)",
                 lang, pipeline_model_name(a->jobs->pipeline));
        http_reply_error(r, SD_EINVAL, msg, "language");
        return false;
    }
    if (p->task == TASK_TRANSLATE && !pipeline_multilingual(a->jobs->pipeline)) {
        snprintf(msg, sizeof(msg), "translation needs a multilingual model (%s is English-only)",
                 pipeline_model_name(a->jobs->pipeline));
        /* on /v1/audio/translations the model is what cannot do it; elsewhere the task field */
        http_reply_error(r, SD_EINVAL, msg, d == FIELDS_TRANSLATION ? "model" : "task");
        return false;
    }
    /* a webhook to this machine or its network is refused now, not after 5 tries */
    if (*callback_url && callbacks_check_url(a->jobs, *callback_url, &err) != SD_OK) {
        http_reply_error(r, err.code, err.msg, "callback_url");
        return false;
    }
    return true;
}

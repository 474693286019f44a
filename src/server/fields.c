/*
 * fields.c - validation of the multipart endpoints' input: the file part
 * (present, non-empty, an allowed type by name and by its first bytes) and
 * the text fields of OpenAI's audio API (features.md 2.1), whisper.cpp's
 * /inference aliases (2.2) and the job extras. Every refusal names the
 * field (OpenAI's "param"). Deep media checks are the decoder's job.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "server/app.h"
#include "server/routes.h"

static bool parse_bool(const char *s, bool *out)
{
    if (!s)
        return true;
    if (strcasecmp(s, "true") == 0 || strcmp(s, "1") == 0) {
        *out = true;
        return true;
    }
    if (strcasecmp(s, "false") == 0 || strcmp(s, "0") == 0 || *s == '\0') {
        *out = false;
        return true;
    }
    return false;
}

static bool parse_float(const char *s, float lo, float hi, float *out)
{
    char *end = NULL;
    double v = strtod(s, &end);
    if (end == s || *end != '\0' || !(v >= lo && v <= hi))
        return false;
    *out = (float)v;
    return true;
}

static enum sd_err check_file(const struct upload *u, const char **param, struct sd_error *err)
{
    *param = "file";
    if (!upload_has_file(u))
        return sd_fail(err, SD_EINVAL, "the request has no 'file' part (multipart field 'file')");
    if (upload_file_bytes(u) == 0)
        return sd_fail(err, SD_EINVAL, "the uploaded file is empty");
    return upload_check_type(u, err); /* again on the whole file: shorter than the sniff */
}

static bool valid_language(const char *s)
{
    size_t n = strlen(s);
    if (strcmp(s, "auto") == 0)
        return true;
    if (n < 2 || n > 3)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!islower((unsigned char)s[i]))
            return false;
    return true;
}

static enum sd_err parse_granularities(const struct upload *u, struct job_params *p,
                                       const char **param, struct sd_error *err)
{
    const char *vals[8];
    int n = upload_field_all(u, "timestamp_granularities[]", vals, 8);
    n += upload_field_all(u, "timestamp_granularities", vals + n, 8 - n);
    for (int i = 0; i < n; i++) {
        if (strcmp(vals[i], "word") == 0) {
            p->word_timestamps = true;
        } else if (strcmp(vals[i], "segment") != 0) {
            *param = "timestamp_granularities[]";
            return sd_fail(err, SD_EINVAL,
                           "timestamp_granularities[]: '%.40s' is not 'word' or 'segment'",
                           vals[i]);
        }
    }
    return SD_OK;
}

/* Fields shared by every dialect: language, prompt, response_format, temperature. */
static enum sd_err parse_common(const struct upload *u, enum fields_dialect d,
                                struct job_params *p, const char **param, struct sd_error *err)
{
    const char *v;
    if ((v = upload_field(u, "model")))
        snprintf(p->model, sizeof(p->model), "%s", v);
    else if (d == FIELDS_TRANSCRIPTION || d == FIELDS_TRANSLATION)
        return *param = "model", sd_fail(err, SD_EINVAL, "the 'model' field is required "
                                                         "(any name works, e.g. whisper-1)");
    if ((v = upload_field(u, "language")) && *v && d != FIELDS_TRANSLATION) {
        if (!valid_language(v))
            return *param = "language",
                   sd_fail(err, SD_EINVAL, "language: '%.20s' is not an ISO-639-1 code", v);
        snprintf(p->language, sizeof(p->language), "%s", v);
    }
    if ((v = upload_field(u, "prompt")) && *v && !(p->prompt = strdup(v)))
        return sd_fail(err, SD_ENOMEM, "prompt");
    if ((v = upload_field(u, "response_format")) && *v &&
        output_format_parse(v, &p->format, NULL) != SD_OK)
        return *param = "response_format",
               sd_fail(err, SD_EINVAL,
                       "response_format: '%.40s' is not one of json, text, srt, verbose_json, vtt",
                       v);
    if ((v = upload_field(u, "temperature")) && *v) {
        if (!parse_float(v, 0.0f, 1.0f, &p->temperature))
            return *param = "temperature",
                   sd_fail(err, SD_EINVAL, "temperature must be a number from 0 to 1");
        p->has_temperature = true;
    }
    return SD_OK;
}

static enum sd_err parse_whisper_cpp(const struct upload *u, struct job_params *p,
                                     const char **param, struct sd_error *err)
{
    const char *v;
    bool b = false;
    if ((v = upload_field(u, "translate"))) {
        if (!parse_bool(v, &b))
            return *param = "translate", sd_fail(err, SD_EINVAL, "translate must be true/false");
        p->task = b ? TASK_TRANSLATE : TASK_TRANSCRIBE;
    }
    if ((v = upload_field(u, "no_timestamps"))) {
        if (!parse_bool(v, &p->no_timestamps))
            return *param = "no_timestamps",
                   sd_fail(err, SD_EINVAL, "no_timestamps must be true/false");
    }
    if ((v = upload_field(u, "beam_size")) && *v) {
        float f;
        if (!parse_float(v, -1, 16, &f))
            return *param = "beam_size", sd_fail(err, SD_EINVAL, "beam_size must be -1..16");
        p->beam_size = f <= 1 ? 1 : (int)f; /* whisper.cpp: -1 = greedy */
    }
    if ((v = upload_field(u, "token_timestamps")) && !parse_bool(v, &p->word_timestamps))
        return *param = "token_timestamps",
               sd_fail(err, SD_EINVAL, "token_timestamps must be true/false");
    return SD_OK;
}

/*
 * Decoding controls beyond OpenAI's fields (scribed extensions, any endpoint):
 * beam_size (1..16), no_fallback (one temperature), max_tokens per window.
 */
static enum sd_err parse_extensions(const struct upload *u, enum fields_dialect d,
                                    struct job_params *p, const char **param,
                                    struct sd_error *err)
{
    const char *v;
    float f;
    if (d != FIELDS_WHISPER_CPP && (v = upload_field(u, "beam_size")) && *v) {
        if (!parse_float(v, 1, 16, &f) || f != (float)(int)f)
            return *param = "beam_size", sd_fail(err, SD_EINVAL, "beam_size must be 1..16");
        p->beam_size = (int)f;
    }
    if ((v = upload_field(u, "no_fallback")) && !parse_bool(v, &p->no_fallback))
        return *param = "no_fallback", sd_fail(err, SD_EINVAL, "no_fallback must be true/false");
    if ((v = upload_field(u, "max_tokens")) && *v) {
        if (!parse_float(v, 0, 224, &f) || f != (float)(int)f)
            return *param = "max_tokens", sd_fail(err, SD_EINVAL, "max_tokens must be 0..224");
        p->max_tokens = (int)f;
    }
    return SD_OK;
}

enum sd_err fields_parse(const struct upload *u, enum fields_dialect d,
                         struct job_params *p, const char **callback_url, const char **param,
                         struct sd_error *err)
{
    enum sd_err rc = check_file(u, param, err);
    if (rc != SD_OK)
        return rc;
    *param = NULL;
    if (d == FIELDS_TRANSLATION)
        p->task = TASK_TRANSLATE;
    rc = parse_common(u, d, p, param, err);
    if (rc == SD_OK)
        rc = parse_granularities(u, p, param, err);
    if (rc == SD_OK && d == FIELDS_WHISPER_CPP)
        rc = parse_whisper_cpp(u, p, param, err);
    if (rc == SD_OK)
        rc = parse_extensions(u, d, p, param, err);
    if (rc != SD_OK)
        return rc;
    const char *v = upload_field(u, d == FIELDS_WHISPER_CPP ? "vad" : "vad_filter");
    bool vad = true;
    if (v && !parse_bool(v, &vad))
        return *param = d == FIELDS_WHISPER_CPP ? "vad" : "vad_filter",
               sd_fail(err, SD_EINVAL, "vad_filter must be true or false");
    p->no_vad = !vad;
    v = upload_field(u, "stream");
    if (v && !parse_bool(v, &p->stream))
        return *param = "stream", sd_fail(err, SD_EINVAL, "stream must be true or false");
    if (d == FIELDS_JOB) {
        if (p->stream)
            return *param = "stream", sd_fail(err, SD_EINVAL, "jobs cannot stream; poll "
                                                              "GET /v1/jobs/{id} instead");
        if ((v = upload_field(u, "task")) && *v) {
            if (strcmp(v, "translate") == 0)
                p->task = TASK_TRANSLATE;
            else if (strcmp(v, "transcribe") != 0)
                return *param = "task",
                       sd_fail(err, SD_EINVAL, "task must be transcribe or translate");
        }
        v = upload_field(u, "callback_url");
        if (v && *v) {
            if ((strncmp(v, "http://", 7) != 0 && strncmp(v, "https://", 8) != 0) ||
                strlen(v) > 2048)
                return *param = "callback_url",
                       sd_fail(err, SD_EINVAL, "callback_url must be an http(s) URL");
            *callback_url = v;
        }
    }
    return SD_OK;
}

/*
 * job.c - request fields <-> JSON, job allocation, random ids, and the
 * public JSON shape of a job (shared by the HTTP routes and the webhook).
 * Parsing user input (multipart fields) is the server's job, not this file's.
 */
#include "jobs/job.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

void job_params_init(struct job_params *p)
{
    memset(p, 0, sizeof(*p));
    p->task = TASK_TRANSCRIBE;
    p->format = OUTPUT_JSON;
    snprintf(p->model, sizeof(p->model), "whisper-1");
}

void job_params_clear(struct job_params *p)
{
    free(p->prompt);
    p->prompt = NULL;
}

enum sd_err job_params_copy(struct job_params *dst, const struct job_params *src,
                            struct sd_error *err)
{
    *dst = *src;
    dst->prompt = NULL;
    if (src->prompt && !(dst->prompt = strdup(src->prompt)))
        return sd_fail(err, SD_ENOMEM, "job parameters");
    return SD_OK;
}

char *job_params_to_json(const struct job_params *p)
{
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:b, s:b, s:b, s:i, s:b}", "task",
                          p->task == TASK_TRANSLATE ? "translate" : "transcribe", "model",
                          p->model, "language", p->language, "response_format",
                          output_format_name(p->format), "word_timestamps", p->word_timestamps,
                          "stream", p->stream, "has_temperature", p->has_temperature,
                          "beam_size", p->beam_size, "no_timestamps", p->no_timestamps);
    if (!o)
        return NULL;
    json_object_set_new(o, "temperature", json_real(p->temperature));
    if (p->prompt)
        json_object_set_new(o, "prompt", json_string(p->prompt));
    json_object_set_new(o, "vad_filter", json_boolean(!p->no_vad));
    json_object_set_new(o, "no_fallback", json_boolean(p->no_fallback));
    json_object_set_new(o, "max_tokens", json_integer(p->max_tokens));
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return s;
}

enum sd_err job_params_from_json(const char *json, struct job_params *p, struct sd_error *err)
{
    json_error_t je;
    json_t *o = json_loads(json ? json : "", 0, &je);
    const char *task = "transcribe", *model = "", *language = "", *format = "json";
    const char *prompt = NULL;
    int word = 0, stream = 0, has_t = 0, beam = 0, no_ts = 0, vad = 1, no_fb = 0, max_tok = 0;
    double t = 0;
    enum sd_err rc = SD_OK;

    if (!o)
        return sd_fail(err, SD_EFORMAT, "stored job parameters: %s", je.text);
    if (json_unpack_ex(o, &je, 0,
                       "{s?s, s?s, s?s, s?s, s?b, s?b, s?b, s?i, s?b, s?F, s?s, s?b, s?b, s?i}",
                       "task", &task, "model", &model, "language", &language, "response_format",
                       &format, "word_timestamps", &word, "stream", &stream, "has_temperature",
                       &has_t, "beam_size", &beam, "no_timestamps", &no_ts, "temperature", &t,
                       "prompt", &prompt, "vad_filter", &vad, "no_fallback", &no_fb,
                       "max_tokens", &max_tok) != 0) {
        rc = sd_fail(err, SD_EFORMAT, "stored job parameters: %s", je.text);
        goto out;
    }
    p->task = strcmp(task, "translate") == 0 ? TASK_TRANSLATE : TASK_TRANSCRIBE;
    snprintf(p->model, sizeof(p->model), "%s", model);
    snprintf(p->language, sizeof(p->language), "%s", language);
    rc = output_format_parse(format, &p->format, err);
    if (rc != SD_OK)
        goto out;
    p->word_timestamps = word;
    p->stream = stream;
    p->has_temperature = has_t;
    p->temperature = (float)t;
    p->beam_size = beam;
    p->no_timestamps = no_ts;
    p->no_vad = !vad;
    p->no_fallback = no_fb;
    p->max_tokens = max_tok < 0 ? 0 : max_tok;
    free(p->prompt);
    p->prompt = NULL;
    if (prompt && !(p->prompt = strdup(prompt)))
        rc = sd_fail(err, SD_ENOMEM, "job parameters");
out:
    json_decref(o);
    return rc;
}

enum sd_err job_create(const char *id, bool sync, const struct job_params *p,
                       const char *upload_path, int64_t upload_bytes, const char *callback_url,
                       struct job **out, struct sd_error *err)
{
    struct job *j = calloc(1, sizeof(*j));
    if (!j)
        return sd_fail(err, SD_ENOMEM, "job");
    snprintf(j->id, sizeof(j->id), "%s", id);
    j->sync = sync;
    j->refs = 1;
    j->status = JOB_QUEUED;
    j->upload_bytes = upload_bytes;
    atomic_init(&j->cancel, false);
    atomic_init(&j->requeue, false);
    if (job_params_copy(&j->params, p, err) != SD_OK)
        goto fail;
    j->upload_path = strdup(upload_path ? upload_path : "");
    if (!j->upload_path || (callback_url && !(j->callback_url = strdup(callback_url)))) {
        sd_fail(err, SD_ENOMEM, "job");
        goto fail;
    }
    *out = j;
    return SD_OK;
fail:
    job_free(j);
    return err ? err->code : SD_ENOMEM;
}

void job_free(struct job *j)
{
    if (!j)
        return;
    job_params_clear(&j->params);
    free(j->upload_path);
    free(j->callback_url);
    transcript_destroy(j->transcript);
    job_stream_free(j->stream);
    free(j);
}

void job_new_id(const char *prefix, char *buf, size_t n)
{
    unsigned char r[12];
    if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r)) {
        /* never expected; fall back to time + address entropy rather than fail */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t x = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^ (uintptr_t)buf;
        for (size_t i = 0; i < sizeof(r); i++, x = x * 6364136223846793005ULL + 1)
            r[i] = (unsigned char)(x >> 56);
    }
    int off = snprintf(buf, n, "%s_", prefix ? prefix : "job");
    for (size_t i = 0; i < sizeof(r) && off + 2 < (int)n; i++)
        off += snprintf(buf + off, n - (size_t)off, "%02x", r[i]);
}

static json_t *ms_or_null(int64_t ms)
{
    return ms > 0 ? json_integer(ms / 1000) : json_null();
}

json_t *job_to_json(const struct store_job *j)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    json_object_set_new(o, "id", json_string(j->id));
    json_object_set_new(o, "object", json_string("transcription.job"));
    json_object_set_new(o, "status", json_string(job_status_name(j->status)));
    json_object_set_new(o, "progress", json_real(j->progress));
    json_object_set_new(o, "created_at", ms_or_null(j->created_ms));
    json_object_set_new(o, "started_at", ms_or_null(j->started_ms));
    json_object_set_new(o, "finished_at", ms_or_null(j->finished_ms));
    json_object_set_new(o, "attempts", json_integer(j->attempts));
    json_t *t = json_object();
    json_object_set_new(t, "queued_ms",
                        j->started_ms ? json_integer(j->started_ms - j->created_ms) : json_null());
    json_object_set_new(t, "run_ms", j->finished_ms && j->started_ms
                                         ? json_integer(j->finished_ms - j->started_ms)
                                         : json_null());
    json_object_set_new(t, "audio_seconds", j->audio_s > 0 ? json_real(j->audio_s) : json_null());
    json_object_set_new(t, "real_time_factor",
                        j->audio_s > 0 && j->run_s > 0 ? json_real(j->run_s / j->audio_s)
                                                       : json_null());
    json_object_set_new(o, "timings", t);
    if (j->error_code) {
        json_object_set_new(o, "error", json_pack("{s:s, s:s}", "code", j->error_code, "message",
                                                  j->error_message ? j->error_message : ""));
    } else {
        json_object_set_new(o, "error", json_null());
    }
    json_t *req = j->params_json ? json_loads(j->params_json, 0, NULL) : NULL;
    json_object_set_new(o, "request", req ? req : json_object());
    json_object_set_new(o, "filename", j->filename ? json_string(j->filename) : json_null());
    json_object_set_new(o, "bytes", json_integer(j->upload_bytes));
    json_object_set_new(o, "callback_url",
                        j->callback_url ? json_string(j->callback_url) : json_null());
    static const char *const cb_names[] = {"none", "pending", "delivered", "failed"};
    json_object_set_new(o, "callback_status",
                        json_string(cb_names[(unsigned)j->cb_state < 4 ? j->cb_state : 0]));
    json_object_set_new(o, "results_expired", json_boolean(j->results_expired));
    return o;
}

/*
 * job.c - job allocation, random ids, and the public JSON shape of a job
 * (shared by the HTTP routes and the webhook). Request parameters and their
 * JSON are pipeline/stt_params.h's.
 */
#include "jobs/job.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/random.h>
#include <time.h>

#include "util/clock.h"

enum sd_err job_create(const char *id, bool sync, const struct stt_params *p,
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
    atomic_init(&j->lost, false);
    if (stt_params_copy(&j->params, p, err) != SD_OK)
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

enum sd_err job_set_pcm(struct job *j, const float *pcm, size_t n, struct sd_error *err)
{
    float *copy = malloc((n ? n : 1) * sizeof(float));
    if (!copy)
        return sd_fail(err, SD_ENOMEM, "%zu samples of audio", n);
    if (n)
        memcpy(copy, pcm, n * sizeof(float));
    free(j->pcm);
    j->pcm = copy;
    j->n_pcm = n;
    return SD_OK;
}

void job_free(struct job *j)
{
    if (!j)
        return;
    stt_params_clear(&j->params);
    free(j->pcm);
    if (j->upload_is_copy && j->upload_path)
        unlink(j->upload_path);
    free(j->upload_path);
    free(j->callback_url);
    transcript_destroy(j->transcript);
    json_decref(j->extraction);
    job_stream_free(j->stream);
    free(j);
}

void job_new_id(const char *prefix, char *buf, size_t n)
{
    unsigned char r[12];
    if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r)) {
        /* never expected; fall back to time + address entropy rather than fail */
        uint64_t x = (uint64_t)(sd_mono_s() * 1e9) ^ ((uint64_t)sd_wall_ms() << 20) ^ (uintptr_t)buf;
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
    json_object_set_new(o, "callback_error",
                        j->callback_error ? json_string(j->callback_error) : json_null());
    json_object_set_new(o, "results_expired", json_boolean(j->results_expired));
    return o;
}

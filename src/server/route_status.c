/*
 * route_status.c - GET /health, GET /metrics, GET /v1/models. These never
 * touch the store or wait on the queue (only its counters), so they answer
 * in well under a millisecond even while every worker is busy.
 * No authentication is ever required here (orchestrators probe /health).
 */
#include <stdlib.h>
#include <string.h>

#include "pipeline/transcription.h"
#include "server/app.h"
#include "server/routes.h"

void route_health(struct http_request *r)
{
    struct app *a = http_app(r);
    char msg[256] = "";
    enum pipeline_status st = pipeline_status(a->jobs->pipeline, msg, sizeof(msg));
    int64_t pending = 0, running = 0;
    jobq_counts(a->jobs->q, &pending, &running);
    bool draining = atomic_load(&a->draining);
    const char *status = draining              ? "draining"
                         : st == PIPELINE_READY   ? "healthy"
                         : st == PIPELINE_LOADING ? "loading"
                                                : "unavailable";
    json_t *o = json_object();
    json_object_set_new(o, "status", json_string(status));
    json_object_set_new(o, "model", json_string(pipeline_model_name(a->jobs->pipeline)));
    json_object_set_new(o, "model_loaded", json_boolean(st == PIPELINE_READY));
    json_object_set_new(o, "vad_loaded", json_boolean(pipeline_vad_loaded(a->jobs->pipeline)));
    json_object_set_new(o, "queue_depth", json_integer(pending));
    json_object_set_new(o, "jobs_running", json_integer(running));
    json_object_set_new(o, "workers", json_integer(a->n_workers));
    json_object_set_new(o, "version", json_string(SCRIBED_VERSION));
    if (st == PIPELINE_FAILED) {
        char full[3000];
        snprintf(full, sizeof(full), "%s%s%s", msg, a->model_hint[0] ? ". " : "", a->model_hint);
        json_object_set_new(o, "error", json_string(full));
    } else if (st == PIPELINE_LOADING) {
        json_object_set_new(o, "error", json_string("the model is still loading"));
    }
    http_reply_json(r, st == PIPELINE_READY && !draining ? 200 : 503, o);
}

void route_metrics(struct http_request *r)
{
    struct app *a = http_app(r);
    struct metrics_gauges g = {.workers = a->n_workers};
    jobq_counts(a->jobs->q, &g.queue_depth, &g.jobs_running);
    g.model_loaded = pipeline_status(a->jobs->pipeline, NULL, 0) == PIPELINE_READY;
    int streams = atomic_load(&a->n_realtime);
    g.realtime_streams = streams > 0 ? streams : 0; /* refused "full" streams count briefly */
    struct pipeline_batch_stats bs;
    pipeline_batch_stats(a->jobs->pipeline, &bs);
    g.decode_batches = bs.batches;
    g.decode_batch_steps = bs.steps;
    g.decode_batch_rows = bs.rows;
    char *text = metrics_render(a->metrics, &g);
    char *security = http_security_metrics(r); /* auth, rate limits, slow clients */
    char *speech = route_speech_metrics(r);    /* synthesis slots and counters */
    size_t n_text = text ? strlen(text) : 0, n_sec = security ? strlen(security) : 0;
    size_t n_speech = speech ? strlen(speech) : 0;
    char *all = text && security && speech ? malloc(n_text + n_sec + n_speech + 1) : NULL;
    if (!all) {
        free(text);
        free(security);
        free(speech);
        http_reply_error(r, SD_ENOMEM, "out of memory rendering metrics", NULL);
        return;
    }
    memcpy(all, text, n_text);
    memcpy(all + n_text, security, n_sec);
    memcpy(all + n_text + n_sec, speech, n_speech + 1);
    free(text);
    free(security);
    free(speech);
    http_reply_body(r, 200, "text/plain; version=0.0.4; charset=utf-8", all,
                    n_text + n_sec + n_speech);
}

static json_t *model_entry(const char *id)
{
    return json_pack("{s:s, s:s, s:i, s:s}", "id", id, "object", "model", "created", 0,
                     "owned_by", "scribed");
}

void route_models(struct http_request *r)
{
    struct app *a = http_app(r);
    json_t *data = json_array();
    /* clients written for OpenAI ask for whisper-1; it names the loaded model */
    json_array_append_new(data, model_entry("whisper-1"));
    if (pipeline_status(a->jobs->pipeline, NULL, 0) == PIPELINE_READY)
        json_array_append_new(data, model_entry(pipeline_model_name(a->jobs->pipeline)));
    route_speech_models(data); /* text to speech: tts-1, ... and the voices */
    http_reply_json(r, 200, json_pack("{s:s, s:o}", "object", "list", "data", data));
}

/*
 * route_status.c - GET /health and GET /metrics (/v1/models: models.c). These never
 * wait on the queue (only its counters), so they answer in well under a
 * millisecond even while every worker is busy. On a shared queue
 * (PostgreSQL) /health and /metrics make one small query to report the
 * database (reachable, latency, jobs waiting cluster-wide).
 * No authentication is ever required here (orchestrators probe /health).
 */
#include <stdlib.h>
#include <string.h>

#include "pipeline/transcription.h"
#include "server/app.h"
#include "server/routes.h"
#include "util/clock.h"

/* Jobs waiting in the shared queue, and how long asking took; false if the database did not answer. */
static bool database_probe(struct app *a, int64_t *queued, double *latency_ms, char *msg,
                           size_t n)
{
    struct sd_error err = {0};
    double t0 = sd_mono_s();
    bool ok = store_count(a->store, JOB_QUEUED, queued, &err) == SD_OK;
    *latency_ms = (sd_mono_s() - t0) * 1000.0;
    snprintf(msg, n, "%s", ok ? "" : err.msg);
    return ok;
}

/*
 * The LLM as /health reports it: configured or not, protocol, model, and
 * whether its last request was answered (null before any). Never the key.
 * Not probed here: /health stays fast and does not spend a paid API's quota.
 */
static json_t *llm_health(const struct app *a)
{
    json_t *o = json_object();
    json_object_set_new(o, "configured", json_boolean(a->llm != NULL));
    if (!a->llm)
        return o;
    int reach = llm_client_reachable(a->llm);
    json_object_set_new(o, "protocol", json_string(llm_protocol_name(llm_client_protocol(a->llm))));
    json_object_set_new(o, "model", json_string(llm_client_model(a->llm)));
    json_object_set_new(o, "reachable", reach < 0 ? json_null() : json_boolean(reach == 1));
    json_object_set_new(o, "templates", json_integer(a->templates.n));
    return o;
}

void route_health(struct http_request *r)
{
    struct app *a = http_app(r);
    char msg[256] = "";
    enum pipeline_status st = pipeline_status(a->jobs->pipeline, msg, sizeof(msg));
    int64_t pending = 0, running = 0;
    jobq_counts(a->jobs->q, &pending, &running);
    bool draining = atomic_load(&a->draining);
    /* an API-only node runs no model: its health is its database's */
    bool api_only = a->n_workers == 0;
    if (api_only)
        st = PIPELINE_READY;
    bool shared = store_has_shared_queue(a->store);
    int64_t queued = 0;
    double latency_ms = 0;
    char db_msg[400] = "";
    bool db_ok = !shared || database_probe(a, &queued, &latency_ms, db_msg, sizeof(db_msg));
    if (!db_ok && st == PIPELINE_READY)
        st = PIPELINE_FAILED; /* cannot take or run jobs until it is back */
    /* stuck: a worker's decoder silent past --stuck-worker-s; every worker stuck serves nothing */
    int stuck = jobs_stuck_workers(a->jobs);
    bool all_stuck = stuck > 0 && stuck >= a->n_workers;
    const char *status = draining                         ? "draining"
                         : st == PIPELINE_READY && stuck ? "degraded"
                         : st == PIPELINE_READY          ? "healthy"
                         : st == PIPELINE_LOADING        ? "loading"
                                                         : "unavailable";
    json_t *o = json_object();
    json_object_set_new(o, "status", json_string(status));
    json_object_set_new(o, "model", json_string(pipeline_model_name(a->jobs->pipeline)));
    json_object_set_new(o, "model_loaded", json_boolean(st == PIPELINE_READY));
    json_object_set_new(o, "vad_loaded", json_boolean(pipeline_vad_loaded(a->jobs->pipeline)));
    json_object_set_new(o, "queue_depth", json_integer(pending));
    json_object_set_new(o, "jobs_running", json_integer(running));
    json_object_set_new(o, "workers", json_integer(a->n_workers));
    json_object_set_new(o, "workers_stuck", json_integer(stuck));
    json_object_set_new(o, "version", json_string(SCRIBED_VERSION));
    json_object_set_new(o, "llm", llm_health(a));
    json_object_set_new(o, "role", json_string(!a->cfg.api ? "worker" : api_only ? "api" : "api+worker"));
    json_object_set_new(o, "realtime", json_boolean(a->cfg.api && !api_only));
    if (shared) {
        json_t *db = json_pack("{s:s, s:s, s:b, s:f, s:I}", "store", a->store->ops->name, "node",
                               a->node_id, "reachable", db_ok, "latency_ms", latency_ms,
                               "shared_queue_depth", (json_int_t)queued);
        json_object_set_new(o, "database", db);
    }
    if (!db_ok) {
        json_object_set_new(o, "error", json_string(db_msg));
    } else if (st == PIPELINE_FAILED) {
        char full[3000];
        snprintf(full, sizeof(full), "%s%s%s", msg, a->model_hint[0] ? ". " : "", a->model_hint);
        json_object_set_new(o, "error", json_string(full));
    } else if (st == PIPELINE_LOADING) {
        json_object_set_new(o, "error", json_string("the model is still loading"));
    } else if (stuck) {
        json_object_set_new(o, "error", json_string("a worker's audio decoder has sent nothing "
                                                    "for too long (--stuck-worker-s)"));
    }
    http_reply_json(r, st == PIPELINE_READY && !draining && !all_stuck ? 200 : 503, o);
}

void route_metrics(struct http_request *r)
{
    struct app *a = http_app(r);
    struct metrics_gauges g = {.workers = a->n_workers};
    jobq_counts(a->jobs->q, &g.queue_depth, &g.jobs_running);
    if (store_has_shared_queue(a->store)) {
        /* the cluster's backlog: what an autoscaler of workers wants */
        double latency_ms;
        char msg[8];
        int64_t queued = 0;
        if (database_probe(a, &queued, &latency_ms, msg, sizeof(msg)))
            g.queue_depth = queued;
    }
    g.model_loaded = pipeline_status(a->jobs->pipeline, NULL, 0) == PIPELINE_READY;
    int streams = atomic_load(&a->n_realtime);
    g.realtime_streams = streams > 0 ? streams : 0; /* refused "full" streams count briefly */
    g.workers_stuck = jobs_stuck_workers(a->jobs);
    g.worker_stalls = jobs_stalls_total(a->jobs);
    struct pipeline_batch_stats bs;
    pipeline_batch_stats(a->jobs->pipeline, &bs);
    g.decode_batches = bs.batches;
    g.decode_batch_steps = bs.steps;
    g.decode_batch_rows = bs.rows;
    struct pipeline_kernels pk;
    pipeline_kernels(a->jobs->pipeline, &pk);
    g.kernels = pk.choice;
    g.kernels_source = pk.source;
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

/*
 * service.c - starting and stopping the job system (see service.h), and the
 * three calls the HTTP routes make: submit async, submit sync, cancel.
 * Order at start: pipeline loading (background), queue, recovery of the
 * store's queued/running jobs, workers, webhooks, the shared queue's
 * threads (cluster.c, PostgreSQL only), retention, the sweep (sweep.c,
 * single node only).
 */
#include "jobs/service.h"
#include "util/clock.h"
#include "util/periodic.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

bool jobs_queue_stored(struct jobs *js, const struct store_job *sj)
{
    struct stt_params p;
    struct job *j = NULL;
    struct sd_error e = {0};
    bool ok;
    stt_params_init(&p);
    ok = stt_params_from_json(sj->params_json, &p, &e) == SD_OK &&
         job_create(sj->id, false, &p, sj->upload_path, sj->upload_bytes, sj->callback_url, &j,
                    &e) == SD_OK &&
         jobq_push(js->q, j, true, &e) == SD_OK;
    if (!ok) {
        struct store_finish f = {.status = JOB_FAILED, .finished_ms = sd_wall_ms(),
                                 .error_code = sd_err_name(e.code), .error_message = e.msg};
        store_job_finish(js->store, sj->id, &f, NULL);
    }
    jobq_release(js->q, j);
    stt_params_clear(&p);
    return ok;
}

/* Re-queues what the store says was waiting or running when the process died. */
static enum sd_err recover(struct jobs *js, struct sd_error *err)
{
    struct store_job *v = NULL;
    int n = 0, n_ok = 0;
    enum sd_err rc = store_jobs_recover(js->store, js->o.max_attempts, &v, &n, err);
    if (rc != SD_OK)
        return rc;
    for (int i = 0; i < n; i++)
        n_ok += jobs_queue_stored(js, &v[i]);
    store_jobs_free(v, n);
    log_event(js->log, LOG_INFO, "jobs.recovered",
              (struct log_field[]){LOG_I64("queued", n_ok), LOG_I64("failed", n - n_ok), LOG_END});
    return SD_OK;
}

static void requeue_callbacks(struct jobs *js)
{
    struct store_job *v = NULL;
    int n = 0;
    if (store_callbacks_pending(js->store, &v, &n, NULL) != SD_OK)
        return;
    for (int i = 0; i < n; i++)
        callbacks_push(js->cb, v[i].id, v[i].callback_url, v[i].cb_attempts);
    store_jobs_free(v, n);
}

enum sd_err jobs_start(const struct jobs_opts *o, struct store *st, struct sd_log *log,
                       struct metrics *m, struct jobs **out, struct sd_error *err)
{
    struct jobs *js = calloc(1, sizeof(*js));
    enum sd_err rc;
    if (!js)
        return sd_fail(err, SD_ENOMEM, "job system");
    js->o = *o;
    atomic_init(&js->n_stuck, 0);
    atomic_init(&js->n_stalls, 0);
    atomic_init(&js->ready_logged, false);
    js->store = st;
    js->log = log;
    js->metrics = m;
    curl_global_init(CURL_GLOBAL_DEFAULT); /* before any thread: not thread-safe */
    /* an API-only node (0 workers) keeps a queue of one slot: nothing runs on it */
    struct jobq_opts qo = {.max_pending = o->max_pending,
                           .n_workers = o->n_workers > 0 ? o->n_workers : 1,
                           .long_job_bytes = o->long_job_bytes,
                           .age_credit_bytes_per_s = 256.0 * 1024};
    rc = jobq_create(&qo, &js->q, err);
    if (rc != SD_OK)
        goto fail;
    int slots = o->speech_slots > 0 ? o->speech_slots : (o->n_workers > 1 ? o->n_workers / 2 : 1);
    rc = synth_slots_create(slots, o->max_pending, &js->synth, err);
    if (rc != SD_OK)
        goto fail;
    rc = speech_cache_open(o->data_dir, o->speech_cache_bytes, o->speech_cache_ttl_s,
                           &js->speech_cache, err);
    if (rc != SD_OK)
        goto fail;
    rc = pipeline_create(&o->pipeline, &js->pipeline, err);
    if (rc != SD_OK)
        goto fail;
    /* attached first: recovery then touches only this node's own expired leases */
    if (store_has_shared_queue(st) &&
        (rc = store_queue_attach(st, o->node_id, o->lease_ms, err)) != SD_OK)
        goto fail;
    rc = recover(js, err);
    if (rc != SD_OK)
        goto fail;
    /* before the workers, which read it; a shared queue's database is on another machine */
    if (!store_has_shared_queue(st) &&
        (rc = reserve_open(o->data_dir, o->disk_reserve_bytes, &js->reserve, err)) != SD_OK)
        goto fail;
    rc = callbacks_start(js, &js->cb, err);
    if (rc != SD_OK)
        goto fail;
    requeue_callbacks(js);
    js->threads = calloc((size_t)(o->n_workers > 0 ? o->n_workers : 1), sizeof(pthread_t));
    if (!js->threads) {
        rc = sd_fail(err, SD_ENOMEM, "worker threads");
        goto fail;
    }
    for (int i = 0; i < o->n_workers; i++) {
        if (pthread_create(&js->threads[i], NULL, jobs_worker_main, js) != 0) {
            rc = sd_fail(err, SD_EINTERNAL, "cannot start worker thread %d", i);
            goto fail;
        }
        js->n_threads++;
    }
    if (store_has_shared_queue(st) && (rc = cluster_start(js, &js->cluster, err)) != SD_OK)
        goto fail;
    rc = retention_start(js, &js->ret, err);
    if (rc != SD_OK)
        goto fail;
    /* a shared queue's leases already hand a dead run's job to another worker */
    if (!store_has_shared_queue(st) && (rc = sweep_start(js, &js->sweep, err)) != SD_OK)
        goto fail;
    *out = js;
    return SD_OK;
fail:
    jobs_stop(js, 0);
    return rc;
}

int jobs_drain(struct jobs *js, int timeout_ms)
{
    /* no new claims from the shared queue while draining (its leases stay renewed) */
    cluster_stop_feeder(js->cluster);
    /* a run notices cancellation at its next window; 2 s covers a fast model */
    int left = jobq_drain(js->q, timeout_ms, 2000);
    if (left)
        log_event(js->log, LOG_WARN, "jobs.drain_incomplete",
                  (struct log_field[]){LOG_I64("running", left), LOG_END});
    return left;
}

int jobs_abandon(struct jobs *js)
{
    char ids[64][STORE_ID_MAX];
    int n = jobq_running_async(js->q, ids, 64), done = 0;
    for (int i = 0; i < n; i++)
        done += store_job_requeue(js->store, ids[i], NULL) == SD_OK;
    return done;
}

void jobs_stop(struct jobs *js, int drain_timeout_ms)
{
    if (!js)
        return;
    sd_periodic_stop(js->ret);
    sd_periodic_stop(js->sweep); /* before the drain, which re-queues running jobs itself */
    if (js->q)
        jobs_drain(js, drain_timeout_ms);
    js->stop = true;
    if (js->q)
        jobq_stop(js->q);
    if (js->synth)
        synth_slots_stop(js->synth);
    for (int i = 0; i < js->n_threads; i++)
        pthread_join(js->threads[i], NULL);
    cluster_stop(js->cluster);
    callbacks_stop(js->cb);
    jobq_destroy(js->q);
    synth_slots_destroy(js->synth);
    speech_cache_close(js->speech_cache);
    reserve_close(js->reserve);
    pipeline_destroy(js->pipeline);
    free(js->threads);
    free(js);
    curl_global_cleanup();
}

enum sd_err jobs_submit_async(struct jobs *js, const char *id, const char *owner,
                              const struct stt_params *p,
                              const char *upload_path, int64_t bytes, const char *filename,
                              const char *callback_url, struct sd_error *err)
{
    struct job *j = NULL;
    enum sd_err rc;
    bool shared = js->cluster != NULL;
    /* a shared queue's backlog is the store's, not this node's queue */
    if (!shared && !jobq_has_room(js->q))
        return sd_fail(err, SD_EBUSY, "the queue is full; retry later");
    char *params = stt_params_to_json(p);
    if (!params)
        return sd_fail(err, SD_ENOMEM, "job parameters");
    struct store_job sj = {.upload_bytes = bytes, .created_ms = sd_wall_ms()};
    snprintf(sj.id, sizeof(sj.id), "%s", id);
    snprintf(sj.owner, sizeof(sj.owner), "%s", owner ? owner : "");
    sj.params_json = params;
    sj.upload_path = (char *)upload_path;
    sj.filename = (char *)filename;
    sj.callback_url = (char *)callback_url;
    rc = store_job_insert(js->store, &sj, err);
    free(params);
    /* the store holds the audio now (PostgreSQL): workers anywhere read it from there */
    if (rc == SD_OK && store_keeps_uploads(js->store) && unlink(upload_path) != 0 &&
        errno != ENOENT)
        log_event(js->log, LOG_WARN, "job.upload_unlink_failed",
                  (struct log_field[]){LOG_STR("job", id), LOG_STR("error", strerror(errno)),
                                       LOG_END});
    if (rc != SD_OK || shared)
        return rc; /* shared: the insert's NOTIFY wakes the nodes' feeders */
    rc = job_create(id, false, p, upload_path, bytes, callback_url, &j, err);
    /* room was checked above; force so a race never leaves a stored job unqueued */
    if (rc == SD_OK)
        rc = jobq_push(js->q, j, true, err);
    jobq_release(js->q, j);
    return rc;
}

/* Queues a sync job made by the caller; on failure it is freed. */
static enum sd_err submit_sync(struct jobs *js, struct job *j, struct job **out,
                               struct sd_error *err)
{
    if (j->params.stream && !(j->stream = job_stream_create())) {
        job_free(j);
        return sd_fail(err, SD_ENOMEM, "stream buffer");
    }
    enum sd_err rc = jobq_push(js->q, j, false, err);
    if (rc != SD_OK) {
        jobq_release(js->q, j);
        return rc;
    }
    *out = j;
    return SD_OK;
}

enum sd_err jobs_submit_sync(struct jobs *js, const char *id, const struct stt_params *p,
                             const char *upload_path, int64_t bytes, struct job **out,
                             struct sd_error *err)
{
    struct job *j = NULL;
    enum sd_err rc = job_create(id, true, p, upload_path, bytes, NULL, &j, err);
    return rc == SD_OK ? submit_sync(js, j, out, err) : rc;
}

enum sd_err jobs_submit_pcm(struct jobs *js, const char *id, const struct stt_params *p,
                            const float *pcm, size_t n, struct job **out, struct sd_error *err)
{
    struct job *j = NULL;
    /* queued by size like an upload of the same samples, so short work still goes first */
    enum sd_err rc = job_create(id, true, p, "", (int64_t)(n * sizeof(float)), NULL, &j, err);
    if (rc == SD_OK && (rc = job_set_pcm(j, pcm, n, err)) != SD_OK)
        job_free(j);
    return rc == SD_OK ? submit_sync(js, j, out, err) : rc;
}

enum sd_err jobs_delete(struct jobs *js, const char *id, const char *owner,
                        enum job_status *was, struct sd_error *err)
{
    char *path = NULL;
    enum sd_err rc = store_job_delete(js->store, id, owner, was, &path, err);
    /* the row went first: a file left by a failed unlink is only disk, never served */
    if (rc == SD_OK && path && unlink(path) != 0 && errno != ENOENT)
        log_event(js->log, LOG_WARN, "job.delete_upload_failed",
                  (struct log_field[]){LOG_STR("job", id), LOG_STR("path", path),
                                       LOG_STR("error", strerror(errno)), LOG_END});
    free(path);
    return rc;
}

enum sd_err jobs_cancel(struct jobs *js, const char *id, const char *owner, enum job_status *was,
                        struct sd_error *err)
{
    /* the store first: a worker that claims it now sees CANCELLED and skips it */
    enum sd_err rc = store_job_cancel(js->store, id, owner, sd_wall_ms(), was, err);
    if (rc != SD_OK)
        return rc;
    if (!job_status_is_final(*was))
        jobq_cancel(js->q, id);
    return SD_OK;
}

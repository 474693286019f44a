/*
 * worker.c - one inference worker thread: waits for the model, creates its
 * own decoding state, then claims jobs from the queue until it stops.
 * For async jobs it records start, progress and outcome in the store
 * (results in every response format) and hands webhooks to callback.c;
 * for sync jobs it leaves the transcript on the job for the waiting client.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jobs/service.h"
#include "output/format.h"
#include "pipeline/transcription.h"
#include "util/clock.h"

struct progress_ctx {
    struct jobs *js;
    struct job *j;
    int64_t last_store_ms;
    float last_logged;         /* the hook also runs as "keep going?" with an unchanged value */
    bool stuck;                /* counted in js->n_stuck */
};

/* Marks the run stuck, or not, keeping js->n_stuck in step (one thread per ctx). */
static void set_stuck(struct progress_ctx *c, bool stuck)
{
    if (stuck == c->stuck)
        return;
    c->stuck = stuck;
    atomic_fetch_add(&c->js->n_stuck, stuck ? 1 : -1);
    if (stuck) {
        atomic_fetch_add(&c->js->n_stalls, 1);
        log_event(c->js->log, LOG_WARN, "worker.stuck",
                  (struct log_field[]){LOG_STR("job", c->j->id),
                                       LOG_F64("silent_s", c->js->o.stuck_after_s), LOG_END});
    }
}

/* While the decoder is waited on: a cancel or a drain stops it at once; long silence is "stuck". */
static bool keep_going(void *user, double stalled_s)
{
    struct progress_ctx *c = user;
    set_stuck(c, c->js->o.stuck_after_s > 0 && stalled_s >= c->js->o.stuck_after_s);
    return !atomic_load(&c->j->cancel) && !c->js->stop;
}

int jobs_stuck_workers(struct jobs *js)
{
    int n = atomic_load(&js->n_stuck);
    return n > 0 ? n : 0;
}

uint64_t jobs_stalls_total(struct jobs *js)
{
    return atomic_load(&js->n_stalls);
}

static bool on_progress(void *user, float fraction)
{
    struct progress_ctx *c = user;
    jobq_set_progress(c->js->q, c->j, fraction);
    if (fraction > c->last_logged) { /* a step (a window, 10 s read): debug log shows the pace */
        c->last_logged = fraction;
        log_event(c->js->log, LOG_DEBUG, "job.progress",
                  (struct log_field[]){LOG_STR("job", c->j->id), LOG_F64("progress", fraction),
                                       LOG_END});
    }
    int64_t now = sd_wall_ms();
    /* the store sees progress at most every 500 ms: a row update is an fsync */
    if (!c->j->sync && now - c->last_store_ms >= 500) {
        enum sd_err rc = store_job_progress(c->js->store, c->j->id, fraction, NULL);
        /* shared queue: no row changed = cancelled on some node, or the lease moved on */
        if (rc == SD_ENOTFOUND && c->j->claimed)
            atomic_store(&c->j->lost, true);
        c->last_store_ms = now;
    }
    return !atomic_load(&c->j->cancel) && !atomic_load(&c->j->lost) && !c->js->stop;
}

/* verbose_json with the extraction record under "extraction" (malloc'd; NULL on ENOMEM). */
char *jobs_verbose_with_extraction(const char *verbose_json, const json_t *extraction)
{
    json_t *o = json_loads(verbose_json, 0, NULL);
    if (!json_is_object(o)) {
        json_decref(o);
        return NULL;
    }
    json_object_set(o, "extraction", (json_t *)extraction);
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return s;
}

enum sd_err jobs_record_success(struct jobs *js, const char *id, const struct transcript *t,
                                const json_t *extraction, double audio_s, double run_s,
                                struct sd_error *err)
{
    static const enum output_format all[] = {OUTPUT_JSON, OUTPUT_TEXT, OUTPUT_SRT, OUTPUT_VTT,
                                             OUTPUT_VERBOSE_JSON};
    enum { N = sizeof(all) / sizeof(all[0]) };
    struct store_result r[N + 1];
    char *bodies[N + 1] = {0};
    enum sd_err rc = SD_OK;
    int n = N;

    for (int i = 0; i < N; i++) {
        bodies[i] = output_render(t, all[i]);
        if (bodies[i] && extraction && all[i] == OUTPUT_VERBOSE_JSON) {
            char *with = jobs_verbose_with_extraction(bodies[i], extraction);
            free(bodies[i]);
            bodies[i] = with;
        }
        if (!bodies[i]) {
            rc = sd_fail(err, SD_ENOMEM, "rendering the %s result", output_format_name(all[i]));
            goto out;
        }
        r[i] = (struct store_result){output_format_name(all[i]), output_content_type(all[i]),
                                     bodies[i], strlen(bodies[i])};
    }
    /* the extraction is one more result row: no new column, no migration */
    if (extraction) {
        bodies[N] = json_dumps(extraction, JSON_COMPACT);
        if (!bodies[N]) {
            rc = sd_fail(err, SD_ENOMEM, "rendering the extraction");
            goto out;
        }
        r[N] = (struct store_result){"extraction", "application/json", bodies[N],
                                     strlen(bodies[N])};
        n = N + 1;
    }
    struct store_finish f = {.status = JOB_SUCCEEDED, .finished_ms = sd_wall_ms(),
                             .audio_s = audio_s, .run_s = run_s, .results = r, .n_results = n};
    rc = store_job_finish(js->store, id, &f, err);
out:
    for (int i = 0; i <= N; i++)
        free(bodies[i]);
    return rc;
}

/*
 * Saving a finished job's results: a full disk or a busy database is often
 * over in a moment (retention, an operator, a WAL checkpoint), and the
 * transcription may have taken an hour, so a failed save is tried again a
 * few times, waiting longer each time, before the job fails for it.
 */
#define SAVE_ATTEMPTS 4
#define SAVE_FIRST_BACKOFF_MS 250

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

static enum sd_err save_results(struct jobs *js, const struct job *j, const struct transcript *t,
                                const json_t *extraction, double audio_s, double run_s,
                                struct sd_error *err)
{
    int backoff_ms = SAVE_FIRST_BACKOFF_MS;
    for (int attempt = 1;; attempt++) {
        enum sd_err rc = jobs_record_success(js, j->id, t, extraction, audio_s, run_s, err);
        /* ENOTFOUND: the row is gone or another node's (a lease lost), no retry will fix it */
        if (rc == SD_OK || rc == SD_ENOTFOUND || rc == SD_ENOMEM || attempt >= SAVE_ATTEMPTS)
            return rc;
        metrics_queue(js->metrics, METRICS_QUEUE_SAVE_RETRY);
        log_event(js->log, LOG_WARN, "job.save_retry",
                  (struct log_field[]){LOG_STR("job", j->id), LOG_I64("attempt", attempt),
                                       LOG_I64("retry_in_ms", backoff_ms),
                                       LOG_STR("error", err->msg), LOG_END});
        sleep_ms(backoff_ms);
        backoff_ms *= 2;
    }
}

/*
 * Records an async job's outcome; returns the status the queue should report.
 * A job that ran well but whose results could not be saved fails: *jerr
 * then says why.
 */
static enum job_status finish_async(struct jobs *js, struct job *j, enum sd_err rc,
                                    struct sd_error *jerr, struct transcript *t,
                                    const json_t *extraction, double audio_s, double run_s)
{
    struct sd_error err = {0};
    enum job_status final;
    if (atomic_load(&j->lost))
        return JOB_CANCELLED; /* the store has another outcome or owner: write nothing */
    if (rc == SD_ECANCELLED && atomic_load(&j->requeue)) {
        /* drained: it runs again after the restart */
        if (store_job_requeue(js->store, j->id, &err) != SD_OK)
            log_event(js->log, LOG_ERROR, "job.requeue_failed",
                      (struct log_field[]){LOG_STR("job", j->id), LOG_STR("error", err.msg),
                                           LOG_END});
        return JOB_QUEUED;
    }
    if (rc == SD_OK && !atomic_load(&j->cancel)) {
        final = JOB_SUCCEEDED;
        enum sd_err wrc = save_results(js, j, t, extraction, audio_s, run_s, &err);
        if (wrc == SD_ENOTFOUND && j->claimed) {
            /* the lease moved on while the last window ran: the other run's result stands */
            atomic_store(&j->lost, true);
            return JOB_CANCELLED;
        }
        if (wrc != SD_OK) {
            final = JOB_FAILED;
            metrics_queue(js->metrics, METRICS_QUEUE_SAVE_FAILED);
            sd_fail(jerr, err.code, "the transcript could not be saved after %d attempts (%s)",
                    SAVE_ATTEMPTS, err.msg);
            log_event(js->log, LOG_ERROR, "job.save_failed",
                      (struct log_field[]){LOG_STR("job", j->id), LOG_STR("error", jerr->msg),
                                           LOG_END});
            struct store_finish f = {.status = JOB_FAILED, .finished_ms = sd_wall_ms(),
                                     .audio_s = audio_s, .run_s = run_s,
                                     .error_code = sd_err_name(err.code),
                                     .error_message = jerr->msg};
            struct sd_error ferr = {0};
            /* the disk is full: the reserve's space is for this small write (reserve.h) */
            if (err.code == SD_ENOSPACE && reserve_release(js->reserve))
                log_event(js->log, LOG_WARN, "disk.reserve_released",
                          (struct log_field[]){LOG_STR("job", j->id), LOG_END});
            /* when even this fails the row stays running: the sweep (sweep.c) finds it */
            if (store_job_finish(js->store, j->id, &f, &ferr) != SD_OK)
                log_event(js->log, LOG_ERROR, "job.store_failed",
                          (struct log_field[]){LOG_STR("job", j->id), LOG_STR("error", ferr.msg),
                                               LOG_END});
        }
    } else {
        final = (rc == SD_ECANCELLED || atomic_load(&j->cancel)) ? JOB_CANCELLED : JOB_FAILED;
        struct store_finish f = {
            .status = final, .finished_ms = sd_wall_ms(), .audio_s = audio_s, .run_s = run_s,
            .error_code = sd_err_name(final == JOB_CANCELLED ? SD_ECANCELLED : rc),
            .error_message = final == JOB_CANCELLED ? "cancelled by the client" : jerr->msg};
        if (store_job_finish(js->store, j->id, &f, &err) != SD_OK)
            log_event(js->log, LOG_ERROR, "job.store_failed",
                      (struct log_field[]){LOG_STR("job", j->id), LOG_STR("error", err.msg),
                                           LOG_END});
    }
    if (j->callback_url)
        callbacks_push(js->cb, j->id, j->callback_url, 0);
    return final;
}

/* SSE: one transcript.text.delta event per final segment (OpenAI's stream shape). */
static void on_segment(void *user, const struct transcript_segment *s)
{
    struct progress_ctx *c = user;
    if (!c->j->stream || !s->text)
        return;
    /* a segment that is not valid UTF-8 gets no delta: the "done" event carries the whole text */
    job_stream_append_event(c->j->stream, sse_delta_event(s->text));
}

/* The request's parameters in engine terms, then the pipeline on the job's audio. */
static enum sd_err transcribe_job(struct pipeline_worker *w, struct job *j,
                                  struct progress_ctx *pc, struct transcript **t,
                                  double *audio_s, struct sd_error *err)
{
    struct stt_engine_params ep;
    struct stt_hooks hooks = {.progress = on_progress, .on_segment = on_segment,
                              .keep_going = keep_going, .user = pc};
    stt_params_to_engine(&j->params, &ep);
    if (!j->pcm)
        return pipeline_transcribe_file(w, j->upload_path, &ep, &hooks, t, audio_s, err);
    enum sd_err rc = pipeline_transcribe_pcm(w, j->pcm, j->n_pcm, &ep, &hooks, t, err);
    if (rc == SD_OK)
        *audio_s = (*t)->duration;
    return rc;
}

static void run_job(struct jobs *js, struct pipeline_worker *w, struct job *j)
{
    struct sd_error err = {0};
    struct progress_ctx pc = {js, j, 0, 0.0f, false};
    struct transcript *t = NULL;
    double audio_s = 0;

    if (!j->sync && !j->claimed) {
        enum sd_err started = store_job_start(js->store, j->id, sd_wall_ms(), &err);
        if (started != SD_OK) {
            /*
             * SD_ENOTFOUND: cancelled (or gone) between queueing and now. Any
             * other error (a full disk, a database error) leaves the row
             * queued: the sweep queues it again (sweep.c).
             */
            if (started != SD_ENOTFOUND)
                log_event(js->log, LOG_ERROR, "job.start_failed",
                          (struct log_field[]){LOG_STR("job", j->id), LOG_STR("error", err.msg),
                                               LOG_END});
            jobq_finish(js->q, j, JOB_CANCELLED);
            return;
        }
    }
    log_event(js->log, LOG_INFO, "job.start",
              (struct log_field[]){LOG_STR("job", j->id), LOG_BOOL("sync", j->sync),
                                   LOG_I64("bytes", j->upload_bytes), LOG_END});
    double t0 = sd_mono_s();
    enum sd_err rc = transcribe_job(w, j, &pc, &t, &audio_s, &err);
    double run_s = sd_mono_s() - t0;
    /* run_s stays the transcription's time: the extraction reports its own timings */
    json_t *extraction = NULL;
    if (rc == SD_OK && t && !atomic_load(&j->cancel) && jobs_wants_extraction(&j->params)) {
        extraction = jobs_extract(js, j->id, &j->params, t->text ? t->text : "", &j->cancel);
        /* DELETE or a drain during the extraction: the job is cancelled (or re-queued) as a whole */
        if (atomic_load(&j->cancel))
            rc = SD_ECANCELLED;
    }
    set_stuck(&pc, false);
    enum job_status final;
    bool lost = false;
    if (j->sync) {
        final = rc == SD_OK ? JOB_SUCCEEDED : rc == SD_ECANCELLED ? JOB_CANCELLED : JOB_FAILED;
        j->rc = rc;
        j->err = err;
        j->transcript = t;
        j->extraction = extraction;
        extraction = NULL;
        t = NULL;
    } else {
        final = finish_async(js, j, rc, &err, t, extraction, audio_s, run_s);
        lost = atomic_load(&j->lost);
    }
    if (lost) {
        metrics_queue(js->metrics, METRICS_QUEUE_LEASE_LOST);
        log_event(js->log, LOG_WARN, "job.lease_lost",
                  (struct log_field[]){LOG_STR("job", j->id), LOG_F64("run_s", run_s), LOG_END});
        json_decref(extraction);
        transcript_destroy(t);
        jobq_finish(js->q, j, JOB_CANCELLED);
        return;
    }
    json_decref(extraction);
    j->audio_s = audio_s;
    j->run_s = run_s;
    /* a drained run that goes back to the queue says so: "queued", not cancelled */
    const char *outcome = job_status_name(final);
    metrics_job(js->metrics, outcome, run_s, audio_s);
    /* a run that went well can still fail: its results could not be saved (err says why) */
    bool failed = rc != SD_OK || final == JOB_FAILED;
    log_event(js->log, !failed || rc == SD_ECANCELLED ? LOG_INFO : LOG_WARN, "job.done",
              (struct log_field[]){LOG_STR("job", j->id), LOG_STR("status", outcome),
                                   LOG_BOOL("requeued", final == JOB_QUEUED),
                                   LOG_F64("run_s", run_s), LOG_F64("audio_s", audio_s),
                                   LOG_F64("rtf", audio_s > 0 ? run_s / audio_s : 0),
                                   LOG_STR("error", failed ? err.msg : NULL), LOG_END});
    transcript_destroy(t);
    jobq_finish(js->q, j, final == JOB_QUEUED ? JOB_CANCELLED : final);
}

void *jobs_worker_main(void *arg)
{
    struct jobs *js = arg;
    struct pipeline_worker *w = NULL;
    struct sd_error err = {0};

    if (!pipeline_wait_ready(js->pipeline, &js->stop))
        return NULL; /* queued async jobs stay in the store for a run with a model */
    if (!atomic_exchange(&js->ready_logged, true)) { /* once: the start-up line of the model */
        struct pipeline_kernels k;
        pipeline_kernels(js->pipeline, &k);
        log_event(js->log, LOG_INFO, "model.ready",
                  (struct log_field[]){LOG_STR("model", pipeline_model_name(js->pipeline)),
                                       LOG_STR("kernels", k.choice[0] ? k.choice : "default"),
                                       LOG_STR("kernels_source", k.source),
                                       LOG_F64("kernels_ms", k.ms), LOG_END});
    }
    if (pipeline_worker_create(js->pipeline, &w, &err) != SD_OK) {
        log_event(js->log, LOG_ERROR, "worker.state_failed",
                  (struct log_field[]){LOG_STR("error", err.msg), LOG_END});
        return NULL;
    }
    struct job *j;
    while ((j = jobq_claim(js->q)) != NULL)
        run_job(js, w, j);
    pipeline_worker_destroy(w);
    return NULL;
}

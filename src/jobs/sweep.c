/*
 * sweep.c - jobs left `running` with no worker (see service.h "sweep.c").
 * A worker whose job's outcome cannot be written (a full disk even for the
 * "failed" row) leaves the row `running`; nothing else would ever change it
 * until a restart. Every sweep_interval_s this thread compares the store's
 * running jobs with the jobs this process's workers hold and re-queues the
 * others, or fails them after max_attempts starts; and it queues again the
 * `queued` rows the queue lost (sweep_unqueued). It runs on an sd_periodic
 * thread and keeps no state of its own.
 *
 * Why it cannot take a live job: a worker holds its job in the queue's
 * running set from before the store says `running` (store_job_start) until
 * after its outcome is written (jobq_finish comes last). The store is read
 * first and the running set second, so a job running in the store whose
 * worker is alive is in that set; one that finished in between is no longer
 * `running`, and the re-queue, which acts only on `running` rows, does
 * nothing to it.
 */
#include <stdlib.h>
#include <string.h>

#include "jobs/service.h"
#include "util/clock.h"
#include "util/periodic.h"

static bool held_by_a_worker(const char (*live)[STORE_ID_MAX], int n_live, const char *id)
{
    for (int i = 0; i < n_live; i++)
        if (strcmp(live[i], id) == 0)
            return true;
    return false;
}

/* The orphan is QUEUED now (this pass re-queued it): queue it, or fail it after too many starts. */
static bool requeue_or_fail(struct jobs *js, const struct store_job *sj)
{
    const char *action = "requeued";
    bool ok;
    if (sj->attempts >= js->o.max_attempts) {
        action = "failed";
        char msg[160];
        snprintf(msg, sizeof(msg),
                 "the job was started %d times and its outcome could not be recorded; giving up",
                 sj->attempts);
        struct store_finish f = {.status = JOB_FAILED, .finished_ms = sd_wall_ms(),
                                 .error_code = sd_err_name(SD_EIO), .error_message = msg};
        struct sd_error err = {0};
        ok = store_job_finish(js->store, sj->id, &f, &err) == SD_OK;
        if (!ok) /* the row stays queued but unqueued: the next start runs it */
            log_event(js->log, LOG_ERROR, "job.store_failed",
                      (struct log_field[]){LOG_STR("job", sj->id), LOG_STR("error", err.msg),
                                           LOG_END});
    } else {
        ok = jobs_queue_stored(js, sj);
    }
    metrics_queue(js->metrics, METRICS_QUEUE_SWEPT);
    log_event(js->log, LOG_WARN, "job.swept",
              (struct log_field[]){LOG_STR("job", sj->id), LOG_STR("action", action),
                                   LOG_I64("attempts", sj->attempts), LOG_END});
    return ok;
}

/*
 * Jobs the store says are `queued` that this process's queue does not hold:
 * a worker that could not mark its job started (store_job_start failed on a
 * full disk or a database error) drops it from the queue and the row stays
 * queued. Such a row is queued again here. Only rows older than one sweep
 * interval are looked at: a submission inserts its row just before it pushes
 * the job, and a row seen in between must not be queued twice (if it were,
 * the second copy's store_job_start would fail and drop it harmlessly).
 */
static int sweep_unqueued(struct jobs *js, int64_t interval_ms)
{
    struct store_job *v = NULL;
    struct sd_error err = {0};
    int n = 0, swept = 0;
    bool more = false;
    if (store_job_list(js->store, NULL, NULL, 1000, JOB_QUEUED, &v, &n, &more, &err) != SD_OK) {
        log_event(js->log, LOG_ERROR, "sweep.failed",
                  (struct log_field[]){LOG_STR("error", err.msg), LOG_END});
        return 0;
    }
    if (n == 0)
        return 0;
    int cap = js->o.max_pending + (js->o.n_workers > 0 ? js->o.n_workers : 1) + 1;
    char (*held)[STORE_ID_MAX] = calloc((size_t)cap, STORE_ID_MAX);
    if (!held) {
        store_jobs_free(v, n);
        return 0;
    }
    int n_held = jobq_held_async(js->q, held, cap);
    int64_t now = sd_wall_ms();
    for (int i = 0; i < n; i++) {
        if (now - v[i].created_ms < interval_ms ||
            held_by_a_worker((const char (*)[STORE_ID_MAX])held, n_held, v[i].id))
            continue;
        bool ok = jobs_queue_stored(js, &v[i]);
        metrics_queue(js->metrics, METRICS_QUEUE_SWEPT);
        log_event(js->log, LOG_WARN, "job.swept",
                  (struct log_field[]){LOG_STR("job", v[i].id),
                                       LOG_STR("action", ok ? "queued" : "failed"),
                                       LOG_I64("attempts", v[i].attempts), LOG_END});
        swept++;
    }
    free(held);
    store_jobs_free(v, n);
    return swept;
}

int sweep_run_once(struct jobs *js)
{
    struct store_job *v = NULL;
    struct sd_error err = {0};
    int n = 0, n_live = 0, swept = 0;
    bool more = false;
    /* the disk reserve, once given back, is made again as soon as there is room */
    reserve_restore(js->reserve);
    int64_t interval_s = js->o.sweep_interval_s > 0 ? js->o.sweep_interval_s : 60;
    swept += sweep_unqueued(js, interval_s * 1000);
    /* the store first, then the workers (see the top of this file) */
    if (store_job_list(js->store, NULL, NULL, 1000, JOB_RUNNING, &v, &n, &more, &err) != SD_OK) {
        log_event(js->log, LOG_ERROR, "sweep.failed",
                  (struct log_field[]){LOG_STR("error", err.msg), LOG_END});
        return swept;
    }
    if (n == 0)
        return swept;
    int cap = js->o.n_workers > 0 ? js->o.n_workers : 1;
    char (*live)[STORE_ID_MAX] = calloc((size_t)cap, STORE_ID_MAX);
    if (!live) {
        store_jobs_free(v, n);
        return swept;
    }
    n_live = jobq_running_async(js->q, live, cap);
    for (int i = 0; i < n; i++) {
        if (held_by_a_worker((const char (*)[STORE_ID_MAX])live, n_live, v[i].id))
            continue;
        enum sd_err rc = store_job_requeue(js->store, v[i].id, &err);
        if (rc == SD_ENOTFOUND)
            continue; /* it finished (or was cancelled) since the list was read */
        if (rc != SD_OK) { /* e.g. the disk is still full: the next pass tries again */
            log_event(js->log, LOG_ERROR, "sweep.failed",
                      (struct log_field[]){LOG_STR("job", v[i].id), LOG_STR("error", err.msg),
                                           LOG_END});
            continue;
        }
        swept += requeue_or_fail(js, &v[i]);
    }
    free(live);
    store_jobs_free(v, n);
    return swept;
}

static void sweep_tick(void *js)
{
    sweep_run_once(js);
}

enum sd_err sweep_start(struct jobs *js, struct sd_periodic **out, struct sd_error *err)
{
    int64_t interval_s = js->o.sweep_interval_s > 0 ? js->o.sweep_interval_s : 60;
    return sd_periodic_start("sweep", sweep_tick, js, interval_s * 1000, false, out, err);
}

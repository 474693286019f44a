/*
 * cluster.c - this node's part of the shared queue (store.h, "Shared
 * queue"), when the store is one (PostgreSQL): two threads.
 *
 * The feeder claims a job from the store whenever a local worker is free
 * and pushes it onto the in-memory queue (already RUNNING in the store:
 * job.claimed), so sync requests and live streams still share the workers
 * by the queue's rules; it asks only for short uploads while the queue keeps
 * a worker free for them. With nothing to claim it waits for a NOTIFY, or
 * the slow poll (which also finds other nodes' expired leases).
 *
 * The heartbeat renews the leases of the jobs on the local queue every
 * lease/4 (and once a lease re-claims the webhooks dead nodes held:
 * callbacks_reclaim), so a run only loses its lease when the node cannot reach the
 * database for a whole lease; the worker then notices at its next progress
 * write and stops (worker.c). A claimed job no longer on the queue (its
 * outcome could not be written: the database was away) is not renewed, so
 * it expires and runs again.
 *
 * Threads: both read struct jobs (read-only after start) and the store; the
 * mutex guards `stopping`. cluster_stop_feeder stops claiming before a drain;
 * cluster_stop joins both (the heartbeat runs until after the drain).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "jobs/service.h"
#include "util/clock.h"

struct cluster {
    struct jobs *js;
    pthread_t feeder, heartbeat;
    bool feeder_started, heartbeat_started;
    pthread_mutex_t mu;        /* guards the two flags below (written under it) */
    pthread_cond_t cv;
    volatile bool stop_feeding; /* also polled by pipeline_wait_ready without mu */
    bool stop_beating;
};

static bool feeding(struct cluster *c)
{
    pthread_mutex_lock(&c->mu);
    bool on = !c->stop_feeding;
    pthread_mutex_unlock(&c->mu);
    return on;
}

/*
 * The job's audio on this node: a store that keeps uploads (PostgreSQL)
 * streams it into DATA_DIR/uploads/ID.fetched.part (removed with the job;
 * one left by a crash goes at the next start, like any *.part). A job the
 * store holds no bytes for (copied from a deployment whose files stayed
 * behind) reads its upload_path as before. *copy: path is a fetched copy.
 */
static enum sd_err local_audio(struct jobs *js, const struct store_job *sj, char *path,
                               size_t n, bool *copy, struct sd_error *err)
{
    *copy = false;
    snprintf(path, n, "%s", sj->upload_path ? sj->upload_path : "");
    if (!store_keeps_uploads(js->store))
        return SD_OK;
    char dest[1200];
    snprintf(dest, sizeof(dest), "%s/uploads/%s.fetched.part", js->o.data_dir, sj->id);
    enum sd_err rc = store_upload_fetch(js->store, sj->id, dest, err);
    if (rc == SD_ENOTFOUND)
        return SD_OK;
    if (rc == SD_OK) {
        snprintf(path, n, "%s", dest);
        *copy = true;
    }
    return rc;
}

/* The store's job as an in-memory job on the local queue; a job that cannot run fails. */
static void push_claimed(struct jobs *js, struct store_job *sj)
{
    struct stt_params p;
    struct job *j = NULL;
    struct sd_error e = {0};
    char audio[1200];
    bool copy = false;
    stt_params_init(&p);
    enum sd_err fetched = local_audio(js, sj, audio, sizeof(audio), &copy, &e);
    if (fetched != SD_OK && fetched != SD_ENOMEM) {
        /* the database (or this disk) failed mid-copy: another node, or a later claim, retries */
        log_event(js->log, LOG_WARN, "job.upload_fetch_failed",
                  (struct log_field[]){LOG_STR("job", sj->id), LOG_STR("error", e.msg), LOG_END});
        metrics_queue(js->metrics, METRICS_QUEUE_DB_ERROR);
        store_job_requeue(js->store, sj->id, NULL);
        stt_params_clear(&p);
        return;
    }
    if (fetched == SD_OK && stt_params_from_json(sj->params_json, &p, &e) == SD_OK &&
        job_create(sj->id, false, &p, audio, sj->upload_bytes, sj->callback_url, &j, &e) ==
            SD_OK) {
        j->claimed = true;
        j->upload_is_copy = copy;
        if (jobq_push(js->q, j, true, &e) != SD_OK) {
            /* shutting down: let another node have it now rather than at lease expiry */
            store_job_requeue(js->store, sj->id, NULL);
        }
    } else {
        struct store_finish f = {.status = JOB_FAILED, .finished_ms = sd_wall_ms(),
                                 .error_code = sd_err_name(e.code), .error_message = e.msg};
        store_job_finish(js->store, sj->id, &f, NULL);
    }
    if (!j && copy)
        unlink(audio);
    jobq_release(js->q, j);
    stt_params_clear(&p);
}

static void *feeder_main(void *arg)
{
    struct cluster *c = arg;
    struct jobs *js = c->js;
    int poll_ms = js->o.lease_ms / 2 < 5000 ? js->o.lease_ms / 2 : 5000;
    bool db_was_down = false;

    /* claiming before the model is loaded would only hold jobs other nodes could run */
    if (!pipeline_wait_ready(js->pipeline, &c->stop_feeding))
        return NULL;
    while (feeding(c)) {
        bool long_ok = false;
        if (!jobq_wait_free(js->q, 1000, &long_ok))
            continue;
        struct store_job sj = {0};
        struct sd_error err = {0};
        enum sd_err rc = store_job_claim(js->store, js->o.max_attempts,
                                         long_ok ? INT64_MAX : js->o.long_job_bytes, &sj, &err);
        if (rc == SD_OK) {
            metrics_queue(js->metrics, METRICS_QUEUE_CLAIM);
            log_event(js->log, LOG_DEBUG, "job.claimed",
                      (struct log_field[]){LOG_STR("job", sj.id), LOG_I64("attempt", sj.attempts),
                                           LOG_END});
            push_claimed(js, &sj);
            store_job_clear(&sj);
            db_was_down = false;
            continue;
        }
        if (rc != SD_ENOTFOUND) {
            if (!db_was_down)
                log_event(js->log, LOG_ERROR, "queue.claim_failed",
                          (struct log_field[]){LOG_STR("error", err.msg), LOG_END});
            metrics_queue(js->metrics, METRICS_QUEUE_DB_ERROR);
            db_was_down = true;
        } else if (db_was_down) {
            log_event(js->log, LOG_INFO, "queue.database_back", NULL);
            db_was_down = false;
        }
        store_wait_for_jobs(js->store, poll_ms);
    }
    return NULL;
}

static void *heartbeat_main(void *arg)
{
    struct cluster *c = arg;
    struct jobs *js = c->js;
    bool failing = false;
    unsigned beats = 0;
    pthread_mutex_lock(&c->mu);
    while (!c->stop_beating) {
        struct timespec ts = sd_deadline_ms(CLOCK_MONOTONIC, js->o.lease_ms / 4);
        while (!c->stop_beating && pthread_cond_timedwait(&c->cv, &c->mu, &ts) != ETIMEDOUT)
            ;
        if (c->stop_beating)
            break;
        pthread_mutex_unlock(&c->mu);
        struct sd_error err = {0};
        int n = 0;
        /* pending + running: at most max_pending + workers, bounded by the queue */
        int cap = js->o.n_workers + js->o.max_pending;
        char(*ids)[STORE_ID_MAX] = calloc((size_t)cap, sizeof(*ids));
        int n_ids = ids ? jobq_held_async(js->q, ids, cap) : 0;
        enum sd_err rc = ids ? store_leases_renew(js->store, (const char(*)[STORE_ID_MAX])ids,
                                                  n_ids, &n, &err)
                             : sd_fail(&err, SD_ENOMEM, "lease ids");
        free(ids);
        if (rc != SD_OK) {
            if (!failing)
                log_event(js->log, LOG_ERROR, "queue.heartbeat_failed",
                          (struct log_field[]){LOG_STR("error", err.msg), LOG_END});
            metrics_queue(js->metrics, METRICS_QUEUE_DB_ERROR);
            failing = true;
        } else {
            failing = false;
        }
        /* once a lease: webhooks left behind by dead nodes move here */
        if (++beats % 4 == 0)
            callbacks_reclaim(js->cb);
        pthread_mutex_lock(&c->mu);
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

enum sd_err cluster_start(struct jobs *js, struct cluster **out, struct sd_error *err)
{
    struct cluster *c = calloc(1, sizeof(*c));
    if (!c)
        return sd_fail(err, SD_ENOMEM, "shared queue");
    c->js = js;
    pthread_mutex_init(&c->mu, NULL);
    sd_cond_init_monotonic(&c->cv);
    *out = c;
    if (pthread_create(&c->heartbeat, NULL, heartbeat_main, c) != 0)
        return sd_fail(err, SD_EINTERNAL, "cannot start the lease heartbeat");
    c->heartbeat_started = true;
    if (js->n_threads > 0) {
        if (pthread_create(&c->feeder, NULL, feeder_main, c) != 0)
            return sd_fail(err, SD_EINTERNAL, "cannot start the queue feeder");
        c->feeder_started = true;
    }
    return SD_OK;
}

void cluster_stop_feeder(struct cluster *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&c->mu);
    c->stop_feeding = true;
    pthread_mutex_unlock(&c->mu);
    if (c->feeder_started) {
        store_wake_waiters(c->js->store); /* out of store_wait_for_jobs at once */
        pthread_join(c->feeder, NULL);
        c->feeder_started = false;
    }
}

void cluster_stop(struct cluster *c)
{
    if (!c)
        return;
    cluster_stop_feeder(c);
    pthread_mutex_lock(&c->mu);
    c->stop_beating = true;
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
    if (c->heartbeat_started)
        pthread_join(c->heartbeat, NULL);
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

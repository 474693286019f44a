/*
 * retention.c - periodic clean-up: uploads of finished jobs older than
 * upload_retention_days are deleted (the job row stays, without its audio),
 * results older than result_retention_days are dropped (the job says
 * results_expired). Runs once at start and then every retention_interval_s
 * on its own thread; queued and running jobs are never touched.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "jobs/service.h"
#include "util/clock.h"

struct retention {
    struct jobs *js;
    pthread_t thread;
    pthread_mutex_t mu;        /* guards stopping */
    pthread_cond_t cv;
    bool stopping;
};

int retention_run_once(struct jobs *js)
{
    int64_t now = sd_wall_ms();
    int64_t day = 86400LL * 1000;
    struct store_purge p = {0};
    struct sd_error err = {0};
    int deleted = 0;
    if (store_purge(js->store, now - js->o.upload_retention_days * day,
                    now - js->o.result_retention_days * day, &p, &err) != SD_OK) {
        log_event(js->log, LOG_ERROR, "retention.failed",
                  (struct log_field[]){LOG_STR("error", err.msg), LOG_END});
        return 0;
    }
    for (int i = 0; i < p.n_upload_paths; i++)
        if (unlink(p.upload_paths[i]) == 0 || errno == ENOENT)
            deleted++;
    if (p.n_upload_paths || p.n_results_deleted)
        log_event(js->log, LOG_INFO, "retention.done",
                  (struct log_field[]){LOG_I64("uploads_deleted", deleted),
                                       LOG_I64("results_expired", p.n_results_deleted), LOG_END});
    store_purge_clear(&p);
    speech_cache_sweep(js->speech_cache); /* expired speech, and the oldest over the cap */
    return deleted;
}

static void *retention_main(void *arg)
{
    struct retention *r = arg;
    pthread_mutex_lock(&r->mu);
    while (!r->stopping) {
        pthread_mutex_unlock(&r->mu);
        retention_run_once(r->js);
        pthread_mutex_lock(&r->mu);
        int64_t interval_s = r->js->o.retention_interval_s > 0 ? r->js->o.retention_interval_s : 3600;
        struct timespec ts = sd_deadline_ms(CLOCK_MONOTONIC, interval_s * 1000);
        while (!r->stopping && pthread_cond_timedwait(&r->cv, &r->mu, &ts) != ETIMEDOUT)
            ;
    }
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

enum sd_err retention_start(struct jobs *js, struct retention **out, struct sd_error *err)
{
    struct retention *r = calloc(1, sizeof(*r));
    if (!r)
        return sd_fail(err, SD_ENOMEM, "retention");
    r->js = js;
    pthread_mutex_init(&r->mu, NULL);
    sd_cond_init_monotonic(&r->cv);
    if (pthread_create(&r->thread, NULL, retention_main, r) != 0) {
        pthread_cond_destroy(&r->cv);
        pthread_mutex_destroy(&r->mu);
        free(r);
        return sd_fail(err, SD_EINTERNAL, "cannot start the retention thread");
    }
    *out = r;
    return SD_OK;
}

void retention_stop(struct retention *r)
{
    if (!r)
        return;
    pthread_mutex_lock(&r->mu);
    r->stopping = true;
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
    pthread_join(r->thread, NULL);
    pthread_cond_destroy(&r->cv);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

/*
 * retention.c - periodic clean-up: uploads of finished jobs older than
 * upload_retention_days are deleted (the job row stays, without its audio),
 * results older than result_retention_days are dropped (the job says
 * results_expired). Runs once at start and then every retention_interval_s
 * on its own thread; queued and running jobs are never touched.
 */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "jobs/service.h"
#include "util/clock.h"
#include "util/periodic.h"

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

static void retention_tick(void *js)
{
    retention_run_once(js);
}

enum sd_err retention_start(struct jobs *js, struct sd_periodic **out, struct sd_error *err)
{
    int64_t interval_s = js->o.retention_interval_s > 0 ? js->o.retention_interval_s : 3600;
    return sd_periodic_start("retention", retention_tick, js, interval_s * 1000, true, out, err);
}

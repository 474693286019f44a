/*
 * store.c - the implementation-independent half of store.h: status names,
 * freeing rows, and the calls that dispatch through struct store_ops.
 * It holds no state; sqlite.c and postgres.c do the work; store_open()
 * picks one by URL.
 */
#include "store/store.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

static const char *const status_names[] = {
    [JOB_QUEUED] = "queued",       [JOB_RUNNING] = "running",
    [JOB_SUCCEEDED] = "succeeded", [JOB_FAILED] = "failed",
    [JOB_CANCELLED] = "cancelled",
};

const char *job_status_name(enum job_status s)
{
    if ((unsigned)s < sizeof(status_names) / sizeof(status_names[0]))
        return status_names[s];
    return "unknown";
}

bool job_status_parse(const char *name, enum job_status *out)
{
    for (size_t i = 0; name && i < sizeof(status_names) / sizeof(status_names[0]); i++) {
        if (strcmp(name, status_names[i]) == 0) {
            *out = (enum job_status)i;
            return true;
        }
    }
    return false;
}

bool job_status_is_final(enum job_status s)
{
    return s == JOB_SUCCEEDED || s == JOB_FAILED || s == JOB_CANCELLED;
}

void store_job_clear(struct store_job *j)
{
    if (!j)
        return;
    free(j->params_json);
    free(j->upload_path);
    free(j->filename);
    free(j->callback_url);
    free(j->error_code);
    free(j->error_message);
    free(j->callback_error);
    memset(j, 0, sizeof(*j));
}

void store_jobs_free(struct store_job *jobs, int n)
{
    for (int i = 0; jobs && i < n; i++)
        store_job_clear(&jobs[i]);
    free(jobs);
}

void store_purge_clear(struct store_purge *p)
{
    if (!p)
        return;
    for (int i = 0; i < p->n_upload_paths; i++)
        free(p->upload_paths[i]);
    free(p->upload_paths);
    memset(p, 0, sizeof(*p));
}

static bool has_prefix(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* libpq's "key=value ..." form: a word of letters and '_' then '=' (no path starts so). */
static bool is_keyword_conninfo(const char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    const char *word = s;
    while (isalpha((unsigned char)*s) || *s == '_')
        s++;
    while (isspace((unsigned char)*s))
        s++;
    return s > word && *s == '=';
}

bool store_url_is_postgres(const char *url)
{
    return url && (has_prefix(url, "postgres://") || has_prefix(url, "postgresql://") ||
                   is_keyword_conninfo(url));
}

enum sd_err store_open(const char *url, struct store **out, struct sd_error *err)
{
    if (!url || !*url)
        return sd_fail(err, SD_EINVAL, "no database URL");
    if (store_url_is_postgres(url))
        return store_open_postgres(url, out, err);
    if (has_prefix(url, "sqlite://"))
        url += strlen("sqlite://");
    if (!*url)
        return sd_fail(err, SD_EINVAL, "sqlite:// needs a path");
    return store_open_sqlite(url, out, err);
}

void store_close(struct store *s)
{
    if (s)
        s->ops->close(s);
}

enum sd_err store_job_insert(struct store *s, const struct store_job *j, struct sd_error *err)
{
    return s->ops->job_insert(s, j, err);
}

enum sd_err store_job_get(struct store *s, const char *id, const char *owner,
                          struct store_job *out, struct sd_error *err)
{
    return s->ops->job_get(s, id, owner, out, err);
}

enum sd_err store_job_list(struct store *s, const char *owner, const char *after_id, int limit,
                           int status_filter, struct store_job **out, int *n, bool *has_more,
                           struct sd_error *err)
{
    if (limit < 1 || limit > 1000)
        return sd_fail(err, SD_EINVAL, "limit must be between 1 and 1000");
    return s->ops->job_list(s, owner, after_id, limit, status_filter, out, n, has_more, err);
}

enum sd_err store_job_start(struct store *s, const char *id, int64_t now_ms, struct sd_error *err)
{
    return s->ops->job_start(s, id, now_ms, err);
}

enum sd_err store_job_progress(struct store *s, const char *id, double progress,
                               struct sd_error *err)
{
    return s->ops->job_progress(s, id, progress, err);
}

enum sd_err store_job_finish(struct store *s, const char *id, const struct store_finish *f,
                             struct sd_error *err)
{
    if (!job_status_is_final(f->status))
        return sd_fail(err, SD_EINVAL, "store_job_finish needs a final status");
    return s->ops->job_finish(s, id, f, err);
}

enum sd_err store_job_requeue(struct store *s, const char *id, struct sd_error *err)
{
    return s->ops->job_requeue(s, id, err);
}

enum sd_err store_job_cancel(struct store *s, const char *id, const char *owner, int64_t now_ms,
                             enum job_status *was, struct sd_error *err)
{
    return s->ops->job_cancel(s, id, owner, now_ms, was, err);
}

enum sd_err store_job_delete(struct store *s, const char *id, const char *owner,
                             enum job_status *was, char **upload_path, struct sd_error *err)
{
    *upload_path = NULL;
    return s->ops->job_delete(s, id, owner, was, upload_path, err);
}

enum sd_err store_jobs_recover(struct store *s, int max_attempts, struct store_job **out, int *n,
                               struct sd_error *err)
{
    return s->ops->jobs_recover(s, max_attempts, out, n, err);
}

enum sd_err store_result_get(struct store *s, const char *id, const char *owner,
                             const char *format, char **body, size_t *len, char **content_type,
                             struct sd_error *err)
{
    return s->ops->result_get(s, id, owner, format, body, len, content_type, err);
}

enum sd_err store_callback_set(struct store *s, const char *id, enum store_cb_state st,
                               int attempts, const char *error, struct sd_error *err)
{
    return s->ops->callback_set(s, id, st, attempts, error, err);
}

enum sd_err store_callbacks_pending(struct store *s, struct store_job **out, int *n,
                                    struct sd_error *err)
{
    return s->ops->callbacks_pending(s, out, n, err);
}

enum sd_err store_purge(struct store *s, int64_t uploads_before_ms, int64_t results_before_ms,
                        struct store_purge *out, struct sd_error *err)
{
    return s->ops->purge(s, uploads_before_ms, results_before_ms, out, err);
}

enum sd_err store_backup(struct store *s, const char *dest_path, struct sd_error *err)
{
    return s->ops->backup(s, dest_path, err);
}

enum sd_err store_count(struct store *s, enum job_status st, int64_t *n, struct sd_error *err)
{
    return s->ops->count(s, st, n, err);
}

/* ---- shared queue ---- */

bool store_has_shared_queue(const struct store *s)
{
    return s->ops->job_claim != NULL;
}

static enum sd_err no_queue(struct store *s, struct sd_error *err)
{
    return sd_fail(err, SD_EUNSUPPORTED, "the %s store is not a shared queue", s->ops->name);
}

enum sd_err store_queue_attach(struct store *s, const char *node_id, int lease_ms,
                               struct sd_error *err)
{
    if (!s->ops->queue_attach)
        return no_queue(s, err);
    if (!node_id || !*node_id || strlen(node_id) >= STORE_ID_MAX || lease_ms < 1000)
        return sd_fail(err, SD_EINVAL, "a node id (under %d characters) and a lease >= 1 s",
                       STORE_ID_MAX);
    return s->ops->queue_attach(s, node_id, lease_ms, err);
}

enum sd_err store_job_claim(struct store *s, int max_attempts, int64_t max_bytes,
                            struct store_job *out, struct sd_error *err)
{
    return s->ops->job_claim ? s->ops->job_claim(s, max_attempts, max_bytes, out, err)
                             : no_queue(s, err);
}

enum sd_err store_leases_renew(struct store *s, const char (*ids)[STORE_ID_MAX], int n_ids,
                               int *n_renewed, struct sd_error *err)
{
    if (n_renewed)
        *n_renewed = 0;
    if (!s->ops->leases_renew)
        return no_queue(s, err);
    return n_ids > 0 ? s->ops->leases_renew(s, ids, n_ids, n_renewed, err) : SD_OK;
}

bool store_wait_for_jobs(struct store *s, int timeout_ms)
{
    return s->ops->wait_for_jobs ? s->ops->wait_for_jobs(s, timeout_ms) : false;
}

enum sd_err store_callback_claim(struct store *s, const char *id, int hold_ms,
                                 struct sd_error *err)
{
    return s->ops->callback_claim ? s->ops->callback_claim(s, id, hold_ms, err) : SD_OK;
}

enum sd_err store_callbacks_reclaim(struct store *s, int hold_ms, int grace_ms,
                                    struct store_job **out, int *n, struct sd_error *err)
{
    *out = NULL;
    *n = 0;
    return s->ops->callbacks_reclaim ? s->ops->callbacks_reclaim(s, hold_ms, grace_ms, out, n, err)
                                     : SD_OK;
}

enum sd_err store_job_import(struct store *s, const struct store_job *j,
                             const struct store_result *results, int n_results, bool *added,
                             struct sd_error *err)
{
    if (!s->ops->job_import)
        return sd_fail(err, SD_EUNSUPPORTED, "the %s store cannot take a copy", s->ops->name);
    return s->ops->job_import(s, j, results, n_results, added, err);
}

void store_wake_waiters(struct store *s)
{
    if (s->ops->wake_waiters)
        s->ops->wake_waiters(s);
}

/* ---- uploads in the store ---- */

bool store_keeps_uploads(const struct store *s)
{
    return s->ops->upload_fetch != NULL;
}

enum sd_err store_upload_fetch(struct store *s, const char *id, const char *dest_path,
                               struct sd_error *err)
{
    if (!s->ops->upload_fetch)
        return sd_fail(err, SD_ENOTFOUND, "the %s store keeps no uploads", s->ops->name);
    return s->ops->upload_fetch(s, id, dest_path, err);
}

/* ---- shared rate limits ---- */

bool store_has_shared_rate_limits(const struct store *s)
{
    return s->ops->rate_take != NULL;
}

enum sd_err store_rate_take(struct store *s, const char *key, double per_minute, double burst,
                            bool *taken, int *retry_after_s, struct sd_error *err)
{
    *taken = true;
    *retry_after_s = 0;
    if (!s->ops->rate_take)
        return sd_fail(err, SD_EUNSUPPORTED, "the %s store has no shared rate limits",
                       s->ops->name);
    if (per_minute <= 0)
        return SD_OK;
    return s->ops->rate_take(s, key, per_minute, burst >= 1 ? burst : 1, taken, retry_after_s,
                             err);
}

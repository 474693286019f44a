/*
 * sqlite.c - the SQLite implementation of store.h: one database file in the
 * data dir, WAL journal, synchronous=FULL (a committed job survives kill -9
 * and power loss), schema from migrations.c applied at open.
 *
 * One connection guarded by one mutex: the service writes a few rows per
 * job, so serialising is simpler than a pool and never the bottleneck.
 * It does not touch upload files; it only remembers their paths.
 */
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/migrations.h"
#include "store/store.h"

struct sqlite_store {
    struct store base;        /* first: struct store * casts to this */
    pthread_mutex_t mu;       /* guards db and every statement on it */
    sqlite3 *db;
};

#define JOB_COLUMNS                                                                     \
    "j.seq, j.id, j.status, j.params, j.callback_url, j.progress, j.created_ms,"        \
    " j.started_ms, j.finished_ms, j.attempts, j.error_code, j.error_message, j.audio_s," \
    " j.run_s, j.cb_state, j.cb_attempts, j.results_expired, u.path, u.filename, u.bytes" \
    " FROM jobs j LEFT JOIN uploads u ON u.job_id = j.id"

static struct sqlite_store *impl(struct store *s)
{
    return (struct sqlite_store *)s;
}

static enum sd_err db_fail(struct sqlite_store *st, struct sd_error *err, const char *what)
{
    int rc = sqlite3_errcode(st->db);
    enum sd_err code = (rc == SQLITE_BUSY || rc == SQLITE_LOCKED) ? SD_EBUSY
                       : (rc == SQLITE_NOMEM)                     ? SD_ENOMEM
                                                                  : SD_EIO;
    return sd_fail(err, code, "database %s: %s", what, sqlite3_errmsg(st->db));
}

static char *dup_col(sqlite3_stmt *q, int col)
{
    const unsigned char *t = sqlite3_column_text(q, col);
    return t ? strdup((const char *)t) : NULL;
}

static void read_job(sqlite3_stmt *q, struct store_job *j)
{
    memset(j, 0, sizeof(*j));
    j->seq = sqlite3_column_int64(q, 0);
    snprintf(j->id, sizeof(j->id), "%s", (const char *)sqlite3_column_text(q, 1));
    if (!job_status_parse((const char *)sqlite3_column_text(q, 2), &j->status))
        j->status = JOB_FAILED;
    j->params_json = dup_col(q, 3);
    j->callback_url = dup_col(q, 4);
    j->progress = sqlite3_column_double(q, 5);
    j->created_ms = sqlite3_column_int64(q, 6);
    j->started_ms = sqlite3_column_int64(q, 7);
    j->finished_ms = sqlite3_column_int64(q, 8);
    j->attempts = sqlite3_column_int(q, 9);
    j->error_code = dup_col(q, 10);
    j->error_message = dup_col(q, 11);
    j->audio_s = sqlite3_column_double(q, 12);
    j->run_s = sqlite3_column_double(q, 13);
    j->cb_state = (enum store_cb_state)sqlite3_column_int(q, 14);
    j->cb_attempts = sqlite3_column_int(q, 15);
    j->results_expired = sqlite3_column_int(q, 16) != 0;
    j->upload_path = dup_col(q, 17);
    j->filename = dup_col(q, 18);
    j->upload_bytes = sqlite3_column_int64(q, 19);
}

/* Runs a statement with no result rows; binds text/int64 args from a format ("tI..."). */
static int exec_simple(sqlite3 *db, const char *sql)
{
    return sqlite3_exec(db, sql, NULL, NULL, NULL);
}

static enum sd_err migrate(struct sqlite_store *st, struct sd_error *err)
{
    sqlite3_stmt *q = NULL;
    int version = 0;

    if (sqlite3_prepare_v2(st->db, "PRAGMA user_version", -1, &q, NULL) != SQLITE_OK)
        return db_fail(st, err, "reading schema version");
    if (sqlite3_step(q) == SQLITE_ROW)
        version = sqlite3_column_int(q, 0);
    sqlite3_finalize(q);
    if (version > store_migration_count())
        return sd_fail(err, SD_EFORMAT,
                       "database schema version %d is newer than this scribed knows (%d)",
                       version, store_migration_count());
    for (int i = version; i < store_migration_count(); i++) {
        char pragma[64];
        snprintf(pragma, sizeof(pragma), "PRAGMA user_version = %d", i + 1);
        if (exec_simple(st->db, "BEGIN IMMEDIATE") != SQLITE_OK)
            return db_fail(st, err, "migration");
        if (exec_simple(st->db, store_migration_sql(i)) != SQLITE_OK ||
            exec_simple(st->db, pragma) != SQLITE_OK) {
            enum sd_err rc = db_fail(st, err, "migration");
            exec_simple(st->db, "ROLLBACK");
            return rc;
        }
        if (exec_simple(st->db, "COMMIT") != SQLITE_OK)
            return db_fail(st, err, "migration commit");
    }
    return SD_OK;
}

static void sq_close(struct store *s)
{
    struct sqlite_store *st = impl(s);
    sqlite3_close(st->db);
    pthread_mutex_destroy(&st->mu);
    free(st);
}

static enum sd_err sq_job_insert(struct store *s, const struct store_job *j, struct sd_error *err)
{
    struct sqlite_store *st = impl(s);
    sqlite3_stmt *q = NULL;
    enum sd_err rc = SD_OK;

    pthread_mutex_lock(&st->mu);
    if (exec_simple(st->db, "BEGIN IMMEDIATE") != SQLITE_OK) {
        rc = db_fail(st, err, "insert job");
        goto out;
    }
    if (sqlite3_prepare_v2(st->db,
                           "INSERT INTO jobs (id, status, params, callback_url, created_ms,"
                           " cb_state) VALUES (?, ?, ?, ?, ?, ?)",
                           -1, &q, NULL) != SQLITE_OK)
        goto fail;
    sqlite3_bind_text(q, 1, j->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, job_status_name(JOB_QUEUED), -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 3, j->params_json ? j->params_json : "{}", -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 4, j->callback_url, -1, SQLITE_STATIC);
    sqlite3_bind_int64(q, 5, j->created_ms);
    sqlite3_bind_int(q, 6, j->callback_url ? STORE_CB_PENDING : STORE_CB_NONE);
    if (sqlite3_step(q) != SQLITE_DONE)
        goto fail;
    sqlite3_finalize(q);
    if (sqlite3_prepare_v2(st->db,
                           "INSERT INTO uploads (job_id, path, filename, bytes, created_ms)"
                           " VALUES (?, ?, ?, ?, ?)",
                           -1, &q, NULL) != SQLITE_OK)
        goto fail;
    sqlite3_bind_text(q, 1, j->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, j->upload_path, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 3, j->filename, -1, SQLITE_STATIC);
    sqlite3_bind_int64(q, 4, j->upload_bytes);
    sqlite3_bind_int64(q, 5, j->created_ms);
    if (sqlite3_step(q) != SQLITE_DONE)
        goto fail;
    sqlite3_finalize(q);
    q = NULL;
    if (exec_simple(st->db, "COMMIT") != SQLITE_OK)
        goto fail;
    goto out;
fail:
    rc = db_fail(st, err, "insert job");
    if (sqlite3_errcode(st->db) == SQLITE_CONSTRAINT)
        rc = sd_fail(err, SD_EINVAL, "job id %s already exists", j->id);
    sqlite3_finalize(q);
    exec_simple(st->db, "ROLLBACK");
out:
    pthread_mutex_unlock(&st->mu);
    return rc;
}

static enum sd_err sq_job_get(struct store *s, const char *id, struct store_job *out,
                              struct sd_error *err)
{
    struct sqlite_store *st = impl(s);
    sqlite3_stmt *q = NULL;
    enum sd_err rc = SD_OK;

    pthread_mutex_lock(&st->mu);
    if (sqlite3_prepare_v2(st->db, "SELECT " JOB_COLUMNS " WHERE j.id = ?", -1, &q, NULL) !=
        SQLITE_OK) {
        rc = db_fail(st, err, "get job");
        goto out;
    }
    sqlite3_bind_text(q, 1, id, -1, SQLITE_STATIC);
    int step = sqlite3_step(q);
    if (step == SQLITE_ROW)
        read_job(q, out);
    else if (step == SQLITE_DONE)
        rc = sd_fail(err, SD_ENOTFOUND, "no job with id '%s'", id);
    else
        rc = db_fail(st, err, "get job");
out:
    sqlite3_finalize(q);
    pthread_mutex_unlock(&st->mu);
    return rc;
}

/* Collects every row of a prepared job query (caller holds the lock). */
static enum sd_err collect_jobs(struct sqlite_store *st, sqlite3_stmt *q, int max,
                                struct store_job **out, int *n, bool *more, struct sd_error *err)
{
    struct store_job *v = NULL;
    int len = 0, cap = 0, step;

    if (more)
        *more = false;
    while ((step = sqlite3_step(q)) == SQLITE_ROW) {
        if (max > 0 && len == max) {
            if (more)
                *more = true;
            break;
        }
        if (len == cap) {
            cap = cap ? cap * 2 : 16;
            struct store_job *nv = realloc(v, (size_t)cap * sizeof(*v));
            if (!nv) {
                store_jobs_free(v, len);
                return sd_fail(err, SD_ENOMEM, "listing jobs");
            }
            v = nv;
        }
        read_job(q, &v[len++]);
    }
    if (step != SQLITE_ROW && step != SQLITE_DONE) {
        store_jobs_free(v, len);
        return db_fail(st, err, "list jobs");
    }
    *out = v;
    *n = len;
    return SD_OK;
}

static enum sd_err sq_job_list(struct store *s, const char *after_id, int limit, int status_filter,
                               struct store_job **out, int *n, bool *has_more,
                               struct sd_error *err)
{
    struct sqlite_store *st = impl(s);
    sqlite3_stmt *q = NULL;
    enum sd_err rc;

    pthread_mutex_lock(&st->mu);
    if (after_id) {
        sqlite3_stmt *c = NULL;
        int found = 0;
        if (sqlite3_prepare_v2(st->db, "SELECT 1 FROM jobs WHERE id = ?", -1, &c, NULL) ==
            SQLITE_OK) {
            sqlite3_bind_text(c, 1, after_id, -1, SQLITE_STATIC);
            found = sqlite3_step(c) == SQLITE_ROW;
        }
        sqlite3_finalize(c);
        if (!found) {
            rc = sd_fail(err, SD_EINVAL, "cursor 'after': no job with id '%s'", after_id);
            goto out;
        }
    }
    if (sqlite3_prepare_v2(st->db,
                           "SELECT " JOB_COLUMNS
                           " WHERE (?1 IS NULL OR j.seq < (SELECT seq FROM jobs WHERE id = ?1))"
                           " AND (?2 IS NULL OR j.status = ?2) ORDER BY j.seq DESC LIMIT ?3",
                           -1, &q, NULL) != SQLITE_OK) {
        rc = db_fail(st, err, "list jobs");
        goto out;
    }
    sqlite3_bind_text(q, 1, after_id, -1, SQLITE_STATIC);
    if (status_filter >= 0)
        sqlite3_bind_text(q, 2, job_status_name((enum job_status)status_filter), -1,
                          SQLITE_STATIC);
    sqlite3_bind_int(q, 3, limit + 1);
    rc = collect_jobs(st, q, limit, out, n, has_more, err);
out:
    sqlite3_finalize(q);
    pthread_mutex_unlock(&st->mu);
    return rc;
}

/* Runs one UPDATE with bound values; fails SD_ENOTFOUND when it changed no row. */
static enum sd_err update_one(struct sqlite_store *st, sqlite3_stmt *q, const char *id,
                              const char *what, struct sd_error *err)
{
    if (sqlite3_step(q) != SQLITE_DONE)
        return db_fail(st, err, what);
    if (sqlite3_changes(st->db) == 0)
        return sd_fail(err, SD_ENOTFOUND, "%s: no job '%s' in the expected state", what, id);
    return SD_OK;
}

static enum sd_err sq_job_start(struct store *s, const char *id, int64_t now_ms,
                                struct sd_error *err)
{
    struct sqlite_store *st = impl(s);
    sqlite3_stmt *q = NULL;
    enum sd_err rc;

    pthread_mutex_lock(&st->mu);
    if (sqlite3_prepare_v2(st->db,
                           "UPDATE jobs SET status = 'running', started_ms = ?, progress = 0,"
                           " attempts = attempts + 1 WHERE id = ? AND status = 'queued'",
                           -1, &q, NULL) != SQLITE_OK) {
        rc = db_fail(st, err, "start job");
    } else {
        sqlite3_bind_int64(q, 1, now_ms);
        sqlite3_bind_text(q, 2, id, -1, SQLITE_STATIC);
        rc = update_one(st, q, id, "start job", err);
    }
    sqlite3_finalize(q);
    pthread_mutex_unlock(&st->mu);
    return rc;
}

static enum sd_err sq_job_progress(struct store *s, const char *id, double progress,
                                   struct sd_error *err)
{
    struct sqlite_store *st = impl(s);
    sqlite3_stmt *q = NULL;
    enum sd_err rc;

    pthread_mutex_lock(&st->mu);
    if (sqlite3_prepare_v2(st->db,
                           "UPDATE jobs SET progress = ? WHERE id = ? AND status = 'running'", -1,
                           &q, NULL) != SQLITE_OK) {
        rc = db_fail(st, err, "job progress");
    } else {
        sqlite3_bind_double(q, 1, progress);
        sqlite3_bind_text(q, 2, id, -1, SQLITE_STATIC);
        rc = update_one(st, q, id, "job progress", err);
    }
    sqlite3_finalize(q);
    pthread_mutex_unlock(&st->mu);
    return rc;
}

static enum sd_err sq_job_finish(struct store *s, const char *id, const struct store_finish *f,
                                 struct sd_error *err)
{
    struct sqlite_store *st = impl(s);
    sqlite3_stmt *q = NULL;
    enum sd_err rc = SD_OK;

    pthread_mutex_lock(&st->mu);
    if (exec_simple(st->db, "BEGIN IMMEDIATE") != SQLITE_OK)
        goto fail;
    if (sqlite3_prepare_v2(st->db,
                           "UPDATE jobs SET status = ?, finished_ms = ?, error_code = ?,"
                           " error_message = ?, audio_s = ?, run_s = ?,"
                           " progress = CASE WHEN ? = 'succeeded' THEN 1 ELSE progress END"
                           " WHERE id = ?",
                           -1, &q, NULL) != SQLITE_OK)
        goto fail;
    sqlite3_bind_text(q, 1, job_status_name(f->status), -1, SQLITE_STATIC);
    sqlite3_bind_int64(q, 2, f->finished_ms);
    sqlite3_bind_text(q, 3, f->error_code, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 4, f->error_message, -1, SQLITE_STATIC);
    sqlite3_bind_double(q, 5, f->audio_s);
    sqlite3_bind_double(q, 6, f->run_s);
    sqlite3_bind_text(q, 7, job_status_name(f->status), -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 8, id, -1, SQLITE_STATIC);
    if (sqlite3_step(q) != SQLITE_DONE)
        goto fail;
    if (sqlite3_changes(st->db) == 0) {
        rc = sd_fail(err, SD_ENOTFOUND, "finish job: no job '%s'", id);
        goto rollback;
    }
    sqlite3_finalize(q);
    q = NULL;
    if (sqlite3_prepare_v2(st->db,
                           "INSERT OR REPLACE INTO results (job_id, format, content_type, body)"
                           " VALUES (?, ?, ?, ?)",
                           -1, &q, NULL) != SQLITE_OK)
        goto fail;
    for (int i = 0; i < f->n_results; i++) {
        const struct store_result *r = &f->results[i];
        sqlite3_reset(q);
        sqlite3_bind_text(q, 1, id, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 2, r->format, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 3, r->content_type, -1, SQLITE_STATIC);
        sqlite3_bind_blob64(q, 4, r->body ? r->body : "", r->len, SQLITE_STATIC);
        if (sqlite3_step(q) != SQLITE_DONE)
            goto fail;
    }
    sqlite3_finalize(q);
    q = NULL;
    if (exec_simple(st->db, "COMMIT") != SQLITE_OK)
        goto fail;
    goto out;
fail:
    rc = db_fail(st, err, "finish job");
rollback:
    sqlite3_finalize(q);
    q = NULL;
    exec_simple(st->db, "ROLLBACK");
out:
    pthread_mutex_unlock(&st->mu);
    return rc;
}

static enum sd_err sq_job_requeue(struct store *s, const char *id, struct sd_error *err)
{
    struct sqlite_store *st = impl(s);
    sqlite3_stmt *q = NULL;
    enum sd_err rc;

    pthread_mutex_lock(&st->mu);
    if (sqlite3_prepare_v2(st->db,
                           "UPDATE jobs SET status = 'queued', progress = 0"
                           " WHERE id = ? AND status = 'running'",
                           -1, &q, NULL) != SQLITE_OK) {
        rc = db_fail(st, err, "requeue job");
    } else {
        sqlite3_bind_text(q, 1, id, -1, SQLITE_STATIC);
        rc = update_one(st, q, id, "requeue job", err);
    }
    sqlite3_finalize(q);
    pthread_mutex_unlock(&st->mu);
    return rc;
}

static enum sd_err sq_job_cancel(struct store *s, const char *id, int64_t now_ms,
                                 enum job_status *was, struct sd_error *err)
{
    struct sqlite_store *st = impl(s);
    sqlite3_stmt *q = NULL;
    enum sd_err rc = SD_OK;

    pthread_mutex_lock(&st->mu);
    if (sqlite3_prepare_v2(st->db, "SELECT status FROM jobs WHERE id = ?", -1, &q, NULL) !=
        SQLITE_OK) {
        rc = db_fail(st, err, "cancel job");
        goto out;
    }
    sqlite3_bind_text(q, 1, id, -1, SQLITE_STATIC);
    if (sqlite3_step(q) != SQLITE_ROW) {
        rc = sd_fail(err, SD_ENOTFOUND, "no job with id '%s'", id);
        goto out;
    }
    enum job_status cur = JOB_FAILED;
    job_status_parse((const char *)sqlite3_column_text(q, 0), &cur);
    *was = cur;
    sqlite3_finalize(q);
    q = NULL;
    if (job_status_is_final(cur))
        goto out;
    if (sqlite3_prepare_v2(st->db,
                           "UPDATE jobs SET status = 'cancelled', finished_ms = ?,"
                           " error_code = 'cancelled', error_message = 'cancelled by the client'"
                           " WHERE id = ?",
                           -1, &q, NULL) != SQLITE_OK) {
        rc = db_fail(st, err, "cancel job");
        goto out;
    }
    sqlite3_bind_int64(q, 1, now_ms);
    sqlite3_bind_text(q, 2, id, -1, SQLITE_STATIC);
    rc = update_one(st, q, id, "cancel job", err);
out:
    sqlite3_finalize(q);
    pthread_mutex_unlock(&st->mu);
    return rc;
}

static enum sd_err sq_jobs_recover(struct store *s, int max_attempts, struct store_job **out,
                                   int *n, struct sd_error *err)
{
    struct sqlite_store *st = impl(s);
    sqlite3_stmt *q = NULL;
    enum sd_err rc;
    char sql[512];

    pthread_mutex_lock(&st->mu);
    snprintf(sql, sizeof(sql),
             "UPDATE jobs SET status = 'failed', error_code = 'internal_error',"
             " error_message = 'the service stopped during this job %d times; giving up',"
             " finished_ms = CAST(strftime('%%s','now') AS INTEGER) * 1000"
             " WHERE status = 'running' AND attempts >= %d;"
             "UPDATE jobs SET status = 'queued', progress = 0 WHERE status = 'running';",
             max_attempts, max_attempts);
    if (exec_simple(st->db, sql) != SQLITE_OK) {
        rc = db_fail(st, err, "recover jobs");
        goto out;
    }
    if (sqlite3_prepare_v2(st->db,
                           "SELECT " JOB_COLUMNS " WHERE j.status = 'queued' ORDER BY j.seq", -1,
                           &q, NULL) != SQLITE_OK) {
        rc = db_fail(st, err, "recover jobs");
        goto out;
    }
    rc = collect_jobs(st, q, 0, out, n, NULL, err);
out:
    sqlite3_finalize(q);
    pthread_mutex_unlock(&st->mu);
    return rc;
}

static enum sd_err sq_result_get(struct store *s, const char *id, const char *format, char **body,
                                 size_t *len, char **content_type, struct sd_error *err)
{
    struct sqlite_store *st = impl(s);
    sqlite3_stmt *q = NULL;
    enum sd_err rc = SD_OK;

    pthread_mutex_lock(&st->mu);
    if (sqlite3_prepare_v2(st->db,
                           "SELECT body, content_type FROM results WHERE job_id = ? AND format = ?",
                           -1, &q, NULL) != SQLITE_OK) {
        rc = db_fail(st, err, "get result");
        goto out;
    }
    sqlite3_bind_text(q, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, format, -1, SQLITE_STATIC);
    int step = sqlite3_step(q);
    if (step != SQLITE_ROW) {
        rc = step == SQLITE_DONE ? sd_fail(err, SD_ENOTFOUND, "job '%s' has no %s result", id,
                                           format)
                                 : db_fail(st, err, "get result");
        goto out;
    }
    size_t n = (size_t)sqlite3_column_bytes(q, 0);
    char *b = malloc(n + 1);
    char *ct = dup_col(q, 1);
    if (!b || !ct) {
        free(b);
        free(ct);
        rc = sd_fail(err, SD_ENOMEM, "result of %zu bytes", n);
        goto out;
    }
    if (n)
        memcpy(b, sqlite3_column_blob(q, 0), n);
    b[n] = '\0';
    *body = b;
    *len = n;
    *content_type = ct;
out:
    sqlite3_finalize(q);
    pthread_mutex_unlock(&st->mu);
    return rc;
}

static enum sd_err sq_callback_set(struct store *s, const char *id, enum store_cb_state cbs,
                                   int attempts, struct sd_error *err)
{
    struct sqlite_store *st = impl(s);
    sqlite3_stmt *q = NULL;
    enum sd_err rc;

    pthread_mutex_lock(&st->mu);
    if (sqlite3_prepare_v2(st->db, "UPDATE jobs SET cb_state = ?, cb_attempts = ? WHERE id = ?",
                           -1, &q, NULL) != SQLITE_OK) {
        rc = db_fail(st, err, "callback state");
    } else {
        sqlite3_bind_int(q, 1, (int)cbs);
        sqlite3_bind_int(q, 2, attempts);
        sqlite3_bind_text(q, 3, id, -1, SQLITE_STATIC);
        rc = update_one(st, q, id, "callback state", err);
    }
    sqlite3_finalize(q);
    pthread_mutex_unlock(&st->mu);
    return rc;
}

static enum sd_err sq_callbacks_pending(struct store *s, struct store_job **out, int *n,
                                        struct sd_error *err)
{
    struct sqlite_store *st = impl(s);
    sqlite3_stmt *q = NULL;
    enum sd_err rc;
    char sql[512];

    snprintf(sql, sizeof(sql),
             "SELECT " JOB_COLUMNS " WHERE j.cb_state = %d AND j.status IN"
             " ('succeeded', 'failed', 'cancelled') ORDER BY j.seq",
             (int)STORE_CB_PENDING);
    pthread_mutex_lock(&st->mu);
    if (sqlite3_prepare_v2(st->db, sql, -1, &q, NULL) != SQLITE_OK)
        rc = db_fail(st, err, "pending callbacks");
    else
        rc = collect_jobs(st, q, 0, out, n, NULL, err);
    sqlite3_finalize(q);
    pthread_mutex_unlock(&st->mu);
    return rc;
}

/* Collects the upload paths retention will forget (caller holds the lock). */
static enum sd_err purge_uploads(struct sqlite_store *st, int64_t before_ms, struct store_purge *p,
                                 struct sd_error *err)
{
    sqlite3_stmt *q = NULL;
    int step;

    if (sqlite3_prepare_v2(st->db,
                           "SELECT u.path FROM uploads u JOIN jobs j ON j.id = u.job_id"
                           " WHERE u.path IS NOT NULL AND u.created_ms < ? AND j.status IN"
                           " ('succeeded', 'failed', 'cancelled')",
                           -1, &q, NULL) != SQLITE_OK)
        return db_fail(st, err, "retention");
    sqlite3_bind_int64(q, 1, before_ms);
    while ((step = sqlite3_step(q)) == SQLITE_ROW) {
        char **nv = realloc(p->upload_paths, (size_t)(p->n_upload_paths + 1) * sizeof(char *));
        char *path = dup_col(q, 0);
        if (!nv || !path) {
            free(path);
            if (nv)
                p->upload_paths = nv;
            sqlite3_finalize(q);
            return sd_fail(err, SD_ENOMEM, "retention");
        }
        p->upload_paths = nv;
        p->upload_paths[p->n_upload_paths++] = path;
    }
    sqlite3_finalize(q);
    if (step != SQLITE_DONE)
        return db_fail(st, err, "retention");
    if (sqlite3_prepare_v2(st->db,
                           "UPDATE uploads SET path = NULL,"
                           " deleted_ms = CAST(strftime('%s','now') AS INTEGER) * 1000"
                           " WHERE path IS NOT NULL AND created_ms < ? AND job_id IN (SELECT id"
                           " FROM jobs WHERE status IN ('succeeded', 'failed', 'cancelled'))",
                           -1, &q, NULL) != SQLITE_OK)
        return db_fail(st, err, "retention");
    sqlite3_bind_int64(q, 1, before_ms);
    step = sqlite3_step(q);
    sqlite3_finalize(q);
    return step == SQLITE_DONE ? SD_OK : db_fail(st, err, "retention");
}

static enum sd_err purge_results(struct sqlite_store *st, int64_t before_ms,
                                 struct store_purge *p, struct sd_error *err)
{
    sqlite3_stmt *q = NULL;
    int ok;

    if (sqlite3_prepare_v2(st->db,
                           "UPDATE jobs SET results_expired = 1 WHERE results_expired = 0 AND"
                           " finished_ms > 0 AND finished_ms < ?",
                           -1, &q, NULL) != SQLITE_OK)
        return db_fail(st, err, "retention");
    sqlite3_bind_int64(q, 1, before_ms);
    ok = sqlite3_step(q) == SQLITE_DONE;
    sqlite3_finalize(q);
    if (!ok)
        return db_fail(st, err, "retention");
    p->n_results_deleted = sqlite3_changes(st->db);
    if (sqlite3_prepare_v2(st->db,
                           "DELETE FROM results WHERE job_id IN (SELECT id FROM jobs WHERE"
                           " results_expired = 1)",
                           -1, &q, NULL) != SQLITE_OK)
        return db_fail(st, err, "retention");
    ok = sqlite3_step(q) == SQLITE_DONE;
    sqlite3_finalize(q);
    return ok ? SD_OK : db_fail(st, err, "retention");
}

static enum sd_err sq_purge(struct store *s, int64_t uploads_before_ms, int64_t results_before_ms,
                            struct store_purge *out, struct sd_error *err)
{
    struct sqlite_store *st = impl(s);
    struct store_purge p = {0};
    enum sd_err rc;

    pthread_mutex_lock(&st->mu);
    if (exec_simple(st->db, "BEGIN IMMEDIATE") != SQLITE_OK) {
        rc = db_fail(st, err, "retention");
        goto out;
    }
    rc = purge_uploads(st, uploads_before_ms, &p, err);
    if (rc == SD_OK)
        rc = purge_results(st, results_before_ms, &p, err);
    if (rc == SD_OK && exec_simple(st->db, "COMMIT") != SQLITE_OK)
        rc = db_fail(st, err, "retention commit");
    if (rc != SD_OK)
        exec_simple(st->db, "ROLLBACK");
out:
    pthread_mutex_unlock(&st->mu);
    if (rc == SD_OK)
        *out = p;
    else
        store_purge_clear(&p);
    return rc;
}

/* Copies every page of src into dest in one step (one read snapshot: consistent). */
static enum sd_err copy_db(sqlite3 *src, sqlite3 *dest, const char *dest_path,
                           struct sd_error *err)
{
    sqlite3_backup *b = sqlite3_backup_init(dest, "main", src, "main");
    if (!b)
        return sd_fail(err, SD_EIO, "backup to %s: %s", dest_path, sqlite3_errmsg(dest));
    int rc = sqlite3_backup_step(b, -1);
    sqlite3_backup_finish(b);
    if (rc != SQLITE_DONE)
        return sd_fail(err, rc == SQLITE_BUSY || rc == SQLITE_LOCKED ? SD_EBUSY : SD_EIO,
                       "backup to %s: %s", dest_path, sqlite3_errstr(rc));
    return SD_OK;
}

static enum sd_err sq_backup(struct store *s, const char *dest_path, struct sd_error *err)
{
    struct sqlite_store *st = impl(s);
    sqlite3 *dest = NULL;
    char tmp[4096];
    enum sd_err rc;

    if (snprintf(tmp, sizeof(tmp), "%s.tmp", dest_path) >= (int)sizeof(tmp))
        return sd_fail(err, SD_EINVAL, "backup path too long");
    unlink(tmp);
    if (sqlite3_open_v2(tmp, &dest, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
        SQLITE_OK) {
        rc = sd_fail(err, SD_EIO, "backup: cannot create %s: %s", tmp, sqlite3_errmsg(dest));
        sqlite3_close(dest);
        return rc;
    }
    pthread_mutex_lock(&st->mu);
    rc = copy_db(st->db, dest, dest_path, err);
    pthread_mutex_unlock(&st->mu);
    /* the copy keeps the WAL journal mode; a backup file is better self-contained */
    if (rc == SD_OK && exec_simple(dest, "PRAGMA journal_mode = DELETE") != SQLITE_OK)
        rc = sd_fail(err, SD_EIO, "backup %s: %s", tmp, sqlite3_errmsg(dest));
    sqlite3_close(dest);
    if (rc == SD_OK && rename(tmp, dest_path) != 0)
        rc = sd_fail(err, SD_EIO, "backup: cannot rename %s to %s", tmp, dest_path);
    if (rc != SD_OK)
        unlink(tmp);
    return rc;
}

static enum sd_err sq_count(struct store *s, enum job_status js, int64_t *n, struct sd_error *err)
{
    struct sqlite_store *st = impl(s);
    sqlite3_stmt *q = NULL;
    enum sd_err rc = SD_OK;

    pthread_mutex_lock(&st->mu);
    if (sqlite3_prepare_v2(st->db, "SELECT COUNT(*) FROM jobs WHERE status = ?", -1, &q, NULL) !=
            SQLITE_OK ||
        (sqlite3_bind_text(q, 1, job_status_name(js), -1, SQLITE_STATIC),
         sqlite3_step(q) != SQLITE_ROW))
        rc = db_fail(st, err, "count jobs");
    else
        *n = sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    pthread_mutex_unlock(&st->mu);
    return rc;
}

/* ---- API keys (see store/keys.c) ---- */

static void copy_text(char *dst, size_t n, sqlite3_stmt *q, int col)
{
    const unsigned char *t = sqlite3_column_text(q, col);
    snprintf(dst, n, "%s", t ? (const char *)t : "");
}

static enum sd_err sq_key_insert(struct store *s, const struct store_key *k, struct sd_error *err)
{
    struct sqlite_store *st = impl(s);
    sqlite3_stmt *q = NULL;
    enum sd_err rc = SD_OK;

    pthread_mutex_lock(&st->mu);
    if (sqlite3_prepare_v2(st->db,
                           "INSERT INTO api_keys (id, name, prefix, hash, created_ms)"
                           " VALUES (?, ?, ?, ?, ?)",
                           -1, &q, NULL) != SQLITE_OK) {
        rc = db_fail(st, err, "insert key");
        goto out;
    }
    sqlite3_bind_text(q, 1, k->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, k->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 3, k->prefix, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 4, k->hash_hex, -1, SQLITE_STATIC);
    sqlite3_bind_int64(q, 5, k->created_ms);
    if (sqlite3_step(q) != SQLITE_DONE) {
        rc = sqlite3_errcode(st->db) == SQLITE_CONSTRAINT
                 ? sd_fail(err, SD_EINVAL, "key %s already exists", k->id)
                 : db_fail(st, err, "insert key");
    }
out:
    sqlite3_finalize(q);
    pthread_mutex_unlock(&st->mu);
    return rc;
}

static enum sd_err sq_key_list(struct store *s, struct store_key **out, int *n,
                               struct sd_error *err)
{
    struct sqlite_store *st = impl(s);
    sqlite3_stmt *q = NULL;
    struct store_key *keys = NULL;
    int count = 0, cap = 0, step;
    enum sd_err rc = SD_OK;

    pthread_mutex_lock(&st->mu);
    if (sqlite3_prepare_v2(st->db,
                           "SELECT id, name, prefix, hash, created_ms, last_used_ms, revoked_ms"
                           " FROM api_keys ORDER BY created_ms, id",
                           -1, &q, NULL) != SQLITE_OK) {
        rc = db_fail(st, err, "list keys");
        goto out;
    }
    while ((step = sqlite3_step(q)) == SQLITE_ROW) {
        if (count == cap) {
            int ncap = cap ? cap * 2 : 16;
            struct store_key *nk = realloc(keys, (size_t)ncap * sizeof(*nk));
            if (!nk) {
                rc = sd_fail(err, SD_ENOMEM, "list keys");
                goto out;
            }
            keys = nk;
            cap = ncap;
        }
        struct store_key *k = &keys[count++];
        memset(k, 0, sizeof(*k));
        copy_text(k->id, sizeof(k->id), q, 0);
        copy_text(k->name, sizeof(k->name), q, 1);
        copy_text(k->prefix, sizeof(k->prefix), q, 2);
        copy_text(k->hash_hex, sizeof(k->hash_hex), q, 3);
        k->created_ms = sqlite3_column_int64(q, 4);
        k->last_used_ms = sqlite3_column_int64(q, 5);
        k->revoked_ms = sqlite3_column_int64(q, 6);
    }
    if (step != SQLITE_DONE)
        rc = db_fail(st, err, "list keys");
out:
    sqlite3_finalize(q);
    pthread_mutex_unlock(&st->mu);
    if (rc != SD_OK) {
        free(keys);
        return rc;
    }
    *out = keys;
    *n = count;
    return SD_OK;
}

/* One UPDATE of a key row by id; SD_ENOTFOUND when no row has that id. */
static enum sd_err key_update(struct sqlite_store *st, const char *sql, const char *id,
                              int64_t ms, const char *what, struct sd_error *err)
{
    sqlite3_stmt *q = NULL;
    enum sd_err rc = SD_OK;

    pthread_mutex_lock(&st->mu);
    if (sqlite3_prepare_v2(st->db, sql, -1, &q, NULL) != SQLITE_OK) {
        rc = db_fail(st, err, what);
        goto out;
    }
    sqlite3_bind_int64(q, 1, ms);
    sqlite3_bind_text(q, 2, id, -1, SQLITE_STATIC);
    if (sqlite3_step(q) != SQLITE_DONE)
        rc = db_fail(st, err, what);
    else if (sqlite3_changes(st->db) == 0)
        rc = sd_fail(err, SD_ENOTFOUND, "no API key with id '%s'", id);
out:
    sqlite3_finalize(q);
    pthread_mutex_unlock(&st->mu);
    return rc;
}

static enum sd_err sq_key_revoke(struct store *s, const char *id, int64_t now_ms,
                                 struct sd_error *err)
{
    /* the first revocation time stays: revoking twice is not an error */
    return key_update(impl(s),
                      "UPDATE api_keys SET revoked_ms = CASE WHEN revoked_ms = 0 THEN ?"
                      " ELSE revoked_ms END WHERE id = ?",
                      id, now_ms, "revoke key", err);
}

static enum sd_err sq_key_touch(struct store *s, const char *id, int64_t used_ms,
                                struct sd_error *err)
{
    return key_update(impl(s),
                      "UPDATE api_keys SET last_used_ms = max(last_used_ms, ?) WHERE id = ?", id,
                      used_ms, "touch key", err);
}

static const struct store_ops sqlite_ops = {
    .name = "sqlite",
    .close = sq_close,
    .job_insert = sq_job_insert,
    .job_get = sq_job_get,
    .job_list = sq_job_list,
    .job_start = sq_job_start,
    .job_progress = sq_job_progress,
    .job_finish = sq_job_finish,
    .job_requeue = sq_job_requeue,
    .job_cancel = sq_job_cancel,
    .jobs_recover = sq_jobs_recover,
    .result_get = sq_result_get,
    .callback_set = sq_callback_set,
    .callbacks_pending = sq_callbacks_pending,
    .purge = sq_purge,
    .backup = sq_backup,
    .count = sq_count,
    .key_insert = sq_key_insert,
    .key_list = sq_key_list,
    .key_revoke = sq_key_revoke,
    .key_touch = sq_key_touch,
};

enum sd_err store_open_sqlite(const char *db_path, struct store **out, struct sd_error *err)
{
    struct sqlite_store *st = calloc(1, sizeof(*st));
    enum sd_err rc;

    if (!st)
        return sd_fail(err, SD_ENOMEM, "store");
    st->base.ops = &sqlite_ops;
    pthread_mutex_init(&st->mu, NULL);
    if (sqlite3_open_v2(db_path, &st->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK) {
        rc = sd_fail(err, SD_EIO, "cannot open database %s: %s", db_path,
                     st->db ? sqlite3_errmsg(st->db) : "out of memory");
        goto fail;
    }
    sqlite3_busy_timeout(st->db, 5000);
    if (exec_simple(st->db, "PRAGMA journal_mode = WAL") != SQLITE_OK ||
        exec_simple(st->db, "PRAGMA synchronous = FULL") != SQLITE_OK ||
        exec_simple(st->db, "PRAGMA foreign_keys = ON") != SQLITE_OK) {
        rc = sd_fail(err, SD_EIO, "database %s: %s", db_path, sqlite3_errmsg(st->db));
        goto fail;
    }
    rc = migrate(st, err);
    if (rc != SD_OK)
        goto fail;
    *out = &st->base;
    return SD_OK;
fail:
    sqlite3_close(st->db);
    pthread_mutex_destroy(&st->mu);
    free(st);
    return rc;
}

enum sd_err store_restore_sqlite(const char *src_path, const char *dest_path,
                                 struct sd_error *err)
{
    sqlite3 *src = NULL, *dest = NULL;
    enum sd_err rc;

    if (access(src_path, R_OK) != 0)
        return sd_fail(err, SD_ENOTFOUND, "restore: cannot read %s", src_path);
    if (sqlite3_open_v2(src_path, &src, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        rc = sd_fail(err, SD_EFORMAT, "restore: %s: %s", src_path, sqlite3_errmsg(src));
        goto out;
    }
    if (exec_simple(src, "SELECT count(*) FROM jobs") != SQLITE_OK) {
        rc = sd_fail(err, SD_EFORMAT, "restore: %s is not a scribed database (%s)", src_path,
                     sqlite3_errmsg(src));
        goto out;
    }
    if (sqlite3_open_v2(dest_path, &dest, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
        SQLITE_OK) {
        rc = sd_fail(err, SD_EIO, "restore: cannot open %s: %s", dest_path,
                     sqlite3_errmsg(dest));
        goto out;
    }
    sqlite3_busy_timeout(dest, 5000);
    rc = copy_db(src, dest, dest_path, err);
out:
    sqlite3_close(src);
    sqlite3_close(dest);
    return rc;
}

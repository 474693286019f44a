/*
 * sqlite.c - the SQLite implementation of store.h: one database file in the
 * data dir, WAL journal, synchronous=FULL (a committed job survives kill -9
 * and power loss), schema from migrations.c applied at open.
 *
 * One connection guarded by one mutex: the service writes a few rows per
 * job, so serialising is simpler than a pool and never the bottleneck.
 * It does not touch upload files; it only remembers their paths.
 *
 * Every query goes through run_statement() with its arguments as a
 * struct sql_arg array (sql.h); result rows come back through a row_reader.
 * SQL that reads the same in PostgreSQL is written once, in statements.h.
 */
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/migrations.h"
#include "store/sql.h"
#include "store/statements.h"
#include "store/store.h"

struct sqlite_store {
    struct store base;        /* first: struct store * casts to this */
    /*
     * Guards db and every statement on it. Each sq_* operation holds it for
     * its whole length (its statements are atomic to other threads); helpers
     * marked "caller holds st->mu" never take it. Open and migrate run
     * before the store is shared, without it.
     */
    pthread_mutex_t mu;
    sqlite3 *db;
};

static struct sqlite_store *impl(struct store *s)
{
    return (struct sqlite_store *)s;
}

static enum sd_err db_fail(struct sqlite_store *st, struct sd_error *err, const char *what)
{
    int rc = sqlite3_errcode(st->db);
    enum sd_err code = (rc == SQLITE_BUSY || rc == SQLITE_LOCKED) ? SD_EBUSY
                       : (rc == SQLITE_NOMEM)                     ? SD_ENOMEM
                       : (rc == SQLITE_FULL)                      ? SD_ENOSPACE
                                                                  : SD_EIO;
    /* a full disk is named as such: callers answer 503/507 and retry, not 500 */
    if (code == SD_ENOSPACE)
        return sd_fail(err, code, "database %s: the server's disk is full", what);
    return sd_fail(err, code, "database %s: %s", what, sqlite3_errmsg(st->db));
}

/* Runs SQL without arguments or rows: transaction control, pragmas, migrations. */
static int exec_simple(sqlite3 *db, const char *sql)
{
    return sqlite3_exec(db, sql, NULL, NULL, NULL);
}

/* ---- the one statement runner ---- */

/* Reads one result row into ctx; anything but SD_OK stops the statement with that error. */
typedef enum sd_err (*row_reader)(sqlite3_stmt *row, void *ctx, struct sd_error *err);

/* Binds one argument to parameter i. SQLITE_STATIC: borrowed (sql.h), used only during the call. */
static int bind_arg(sqlite3_stmt *q, int i, const struct sql_arg *a)
{
    switch (a->type) {
    case SQL_T_TEXT: return sqlite3_bind_text(q, i, a->text, -1, SQLITE_STATIC);
    case SQL_T_I64: return sqlite3_bind_int64(q, i, a->i64);
    case SQL_T_F64: return sqlite3_bind_double(q, i, a->f64);
    case SQL_T_BLOB: return sqlite3_bind_blob64(q, i, a->bytes, a->len, SQLITE_STATIC);
    case SQL_T_NULL:
    case SQL_T_END: break;
    }
    return sqlite3_bind_null(q, i);
}

/*
 * Prepares sql, binds args (NULL: none), steps to the end handing each row
 * to on_row (NULL: rows not read), finalizes. *rows (if not NULL): rows a
 * query returned, or an INSERT, UPDATE or DELETE changed. A database failure
 * is db_fail(what), taken before finalizing; the connection keeps the error
 * code after (callers test it for SQLITE_CONSTRAINT). A reader's failure is
 * returned as it is. Caller holds st->mu (or the store is not shared yet).
 */
static enum sd_err run_statement(struct sqlite_store *st, const char *what, const char *sql,
                                 const struct sql_arg *args, row_reader on_row, void *ctx,
                                 int *rows, struct sd_error *err)
{
    sqlite3_stmt *q = NULL;
    enum sd_err rc = SD_OK;
    int step = SQLITE_DONE, n_read = 0;

    if (sqlite3_prepare_v2(st->db, sql, -1, &q, NULL) != SQLITE_OK)
        return db_fail(st, err, what);
    for (int i = 0; args && args[i].type != SQL_T_END && rc == SD_OK; i++) {
        if (bind_arg(q, i + 1, &args[i]) != SQLITE_OK)
            rc = db_fail(st, err, what);
    }
    while (rc == SD_OK && (step = sqlite3_step(q)) == SQLITE_ROW) {
        n_read++;
        if (on_row)
            rc = on_row(q, ctx, err);
    }
    if (rc == SD_OK && step != SQLITE_DONE)
        rc = db_fail(st, err, what);
    if (rc == SD_OK && rows)
        *rows = sqlite3_column_count(q) > 0 ? n_read : sqlite3_changes(st->db);
    sqlite3_finalize(q);
    return rc;
}

/* IMMEDIATE: the write lock is taken (or waited for) now, not halfway through. */
static enum sd_err tx_begin(struct sqlite_store *st, const char *what, struct sd_error *err)
{
    return exec_simple(st->db, "BEGIN IMMEDIATE") == SQLITE_OK ? SD_OK : db_fail(st, err, what);
}

/*
 * Ends the transaction tx_begin started: COMMIT when rc is SD_OK (a failed
 * commit becomes db_fail(commit_what)), and ROLLBACK when anything failed.
 * Returns the outcome. Caller holds st->mu.
 */
static enum sd_err tx_end(struct sqlite_store *st, enum sd_err rc, const char *commit_what,
                          struct sd_error *err)
{
    if (rc == SD_OK && exec_simple(st->db, "COMMIT") != SQLITE_OK)
        rc = db_fail(st, err, commit_what);
    if (rc != SD_OK)
        exec_simple(st->db, "ROLLBACK");
    return rc;
}

/* An INSERT that broke a UNIQUE constraint means a reused id: SD_EINVAL (caller holds st->mu). */
static enum sd_err reused_id_is_invalid(struct sqlite_store *st, enum sd_err rc,
                                        const char *kind, const char *id, struct sd_error *err)
{
    if (rc != SD_OK && sqlite3_errcode(st->db) == SQLITE_CONSTRAINT)
        return sd_fail(err, SD_EINVAL, "%s %s already exists", kind, id);
    return rc;
}

static char *dup_col(sqlite3_stmt *q, int col)
{
    const unsigned char *t = sqlite3_column_text(q, col);
    return t ? strdup((const char *)t) : NULL;
}

/* A status column; a name this build does not know reads as failed. */
static enum job_status column_status(sqlite3_stmt *q, int col)
{
    enum job_status s = JOB_FAILED;
    job_status_parse((const char *)sqlite3_column_text(q, col), &s);
    return s;
}

/* Room for one more item: the array (perhaps moved), or NULL when out of memory (items kept). */
static void *grow_for_one(void *items, int len, int *cap, size_t item_size)
{
    if (len < *cap)
        return items;
    int ncap = *cap ? *cap * 2 : 16;
    void *grown = realloc(items, (size_t)ncap * item_size);
    if (grown)
        *cap = ncap;
    return grown;
}

/* A row of JOB_COLUMNS into the struct store_job at ctx (which then owns its strings). */
static enum sd_err read_job(sqlite3_stmt *q, void *ctx, struct sd_error *err)
{
    struct store_job *j = ctx;
    int64_t *const int64s[] = {&j->seq, &j->created_ms, &j->started_ms, &j->finished_ms,
                               &j->upload_bytes};
    double *const reals[] = {&j->progress, &j->audio_s, &j->run_s};
    char **const owned[] = {&j->params_json,   &j->callback_url, &j->error_code,
                            &j->error_message, &j->upload_path,  &j->filename,
                            &j->callback_error};
    int col = 0;

    (void)err;
    memset(j, 0, sizeof(*j));
    snprintf(j->id, sizeof(j->id), "%s", (const char *)sqlite3_column_text(q, col++));
    snprintf(j->owner, sizeof(j->owner), "%s", (const char *)sqlite3_column_text(q, col++));
    j->status = column_status(q, col++);
    for (size_t i = 0; i < sizeof(int64s) / sizeof(int64s[0]); i++)
        *int64s[i] = sqlite3_column_int64(q, col++);
    j->attempts = sqlite3_column_int(q, col++);
    j->cb_state = (enum store_cb_state)sqlite3_column_int(q, col++);
    j->cb_attempts = sqlite3_column_int(q, col++);
    j->results_expired = sqlite3_column_int(q, col++) != 0;
    for (size_t i = 0; i < sizeof(reals) / sizeof(reals[0]); i++)
        *reals[i] = sqlite3_column_double(q, col++);
    for (size_t i = 0; i < sizeof(owned) / sizeof(owned[0]); i++)
        *owned[i] = dup_col(q, col++);
    return SD_OK;
}

/* Every row of a job query, up to max (0: no limit); more tells a row was left. */
struct job_vec {
    struct store_job *jobs;
    int len, cap, max;
    bool more;
};

static enum sd_err add_job_row(sqlite3_stmt *row, void *ctx, struct sd_error *err)
{
    struct job_vec *vec = ctx;
    if (vec->max > 0 && vec->len == vec->max) {
        vec->more = true;
        return SD_OK;
    }
    struct store_job *grown = grow_for_one(vec->jobs, vec->len, &vec->cap, sizeof(*grown));
    if (!grown)
        return sd_fail(err, SD_ENOMEM, "listing jobs");
    vec->jobs = grown;
    return read_job(row, &vec->jobs[vec->len++], err);
}

/* The first column of the row as an integer (a count, a pragma). */
static enum sd_err read_int64(sqlite3_stmt *row, void *ctx, struct sd_error *err)
{
    (void)err;
    *(int64_t *)ctx = sqlite3_column_int64(row, 0);
    return SD_OK;
}

/*
 * Runs a job query (SELECT JOB_COLUMNS ...) and hands every row over: on
 * SD_OK the caller owns *out (store_jobs_free). max and more as in job_vec.
 * Caller holds st->mu.
 */
static enum sd_err collect_jobs(struct sqlite_store *st, const char *what, const char *sql,
                                const struct sql_arg *args, int max, struct store_job **out,
                                int *n, bool *more, struct sd_error *err)
{
    struct job_vec vec = {.max = max};
    enum sd_err rc = run_statement(st, what, sql, args, add_job_row, &vec, NULL, err);

    if (more)
        *more = vec.more;
    if (rc != SD_OK) {
        store_jobs_free(vec.jobs, vec.len);
        return rc;
    }
    *out = vec.jobs;
    *n = vec.len;
    return SD_OK;
}

static enum sd_err migrate(struct sqlite_store *st, struct sd_error *err)
{
    int64_t version = 0;
    enum sd_err rc = run_statement(st, "reading schema version", "PRAGMA user_version", NULL,
                                   read_int64, &version, NULL, err);
    if (rc != SD_OK)
        return rc;
    if (version > store_migration_count())
        return sd_fail(err, SD_EFORMAT,
                       "database schema version %d is newer than this scribed knows (%d)",
                       (int)version, store_migration_count());
    for (int i = (int)version; i < store_migration_count(); i++) {
        /* a pragma takes no bound parameters */
        char pragma[64];
        snprintf(pragma, sizeof(pragma), "PRAGMA user_version = %d", i + 1);
        rc = tx_begin(st, "migration", err);
        if (rc != SD_OK)
            return rc;
        if (exec_simple(st->db, store_migration_sql(i)) != SQLITE_OK ||
            exec_simple(st->db, pragma) != SQLITE_OK)
            rc = db_fail(st, err, "migration");
        rc = tx_end(st, rc, "migration commit", err);
        if (rc != SD_OK)
            return rc;
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

/* ---- jobs ---- */

/* The job row and its upload row (caller holds st->mu, inside a transaction). */
static enum sd_err insert_job_rows(struct sqlite_store *st, const struct store_job *j,
                                   struct sd_error *err)
{
    enum sd_err rc = run_statement(
        st, "insert job",
        STMT_INSERT_JOB,
        (struct sql_arg[]){SQL_TEXT(j->id), SQL_TEXT(j->owner),
                           SQL_TEXT(job_status_name(JOB_QUEUED)),
                           SQL_TEXT(j->params_json ? j->params_json : "{}"),
                           SQL_TEXT(j->callback_url), SQL_I64(j->created_ms),
                           SQL_I64(j->callback_url ? STORE_CB_PENDING : STORE_CB_NONE), SQL_END},
        NULL, NULL, NULL, err);
    if (rc != SD_OK)
        return rc;
    return run_statement(st, "insert job",
                         STMT_INSERT_UPLOAD,
                         (struct sql_arg[]){SQL_TEXT(j->id), SQL_TEXT(j->upload_path),
                                            SQL_TEXT(j->filename), SQL_I64(j->upload_bytes),
                                            SQL_I64(j->created_ms), SQL_END},
                         NULL, NULL, NULL, err);
}

static enum sd_err sq_job_insert(struct store *s, const struct store_job *j, struct sd_error *err)
{
    struct sqlite_store *st = impl(s);

    pthread_mutex_lock(&st->mu);
    enum sd_err rc = tx_begin(st, "insert job", err);
    if (rc == SD_OK) {
        rc = reused_id_is_invalid(st, insert_job_rows(st, j, err), "job id", j->id, err);
        rc = tx_end(st, rc, "insert job", err);
    }
    pthread_mutex_unlock(&st->mu);
    return rc;
}

static enum sd_err sq_job_get(struct store *s, const char *id, const char *owner,
                              struct store_job *out, struct sd_error *err)
{
    struct sqlite_store *st = impl(s);
    struct store_job job = {0};
    int rows = 0;

    /* ids are unique: one row at most */
    pthread_mutex_lock(&st->mu);
    enum sd_err rc = run_statement(
        st, "get job", STMT_GET_JOB,
        (struct sql_arg[]){SQL_TEXT(id), SQL_TEXT(owner), SQL_END}, read_job, &job, &rows, err);
    pthread_mutex_unlock(&st->mu);
    if (rc == SD_OK && rows == 0)
        rc = sd_fail(err, SD_ENOTFOUND, "no job with id '%s'", id);
    if (rc == SD_OK)
        *out = job;
    else
        store_job_clear(&job);
    return rc;
}

static enum sd_err sq_job_list(struct store *s, const char *owner, const char *after_id,
                               int limit, int status_filter, struct store_job **out, int *n,
                               bool *has_more, struct sd_error *err)
{
    struct sqlite_store *st = impl(s);
    const char *status = status_filter >= 0 ? job_status_name((enum job_status)status_filter)
                                            : NULL;
    enum sd_err rc;
    int cursor_rows = 0;

    pthread_mutex_lock(&st->mu);
    /* a cursor that names no job is the client's mistake, whatever the lookup said */
    if (after_id &&
        (run_statement(st, "list jobs",
                       STMT_OWNER_HAS_JOB,
                       (struct sql_arg[]){SQL_TEXT(after_id), SQL_TEXT(owner), SQL_END}, NULL,
                       NULL, &cursor_rows, NULL) != SD_OK ||
         cursor_rows == 0))
        rc = sd_fail(err, SD_EINVAL, "cursor 'after': no job with id '%s'", after_id);
    else
        rc = collect_jobs(st, "list jobs",
                          "SELECT " JOB_COLUMNS
                          " WHERE (?1 IS NULL OR j.seq < (SELECT seq FROM jobs WHERE id = ?1))"
                          " AND (?2 IS NULL OR j.status = ?2) AND" OWNER_IS("j.owner", 4)
                          " ORDER BY j.seq DESC LIMIT ?3",
                          (struct sql_arg[]){SQL_TEXT(after_id), SQL_TEXT(status),
                                             SQL_I64(limit + 1), SQL_TEXT(owner), SQL_END},
                          limit, out, n, has_more, err);
    pthread_mutex_unlock(&st->mu);
    return rc;
}

/*
 * One UPDATE of the job `id`; SD_ENOTFOUND when it changed no row (no such
 * job, or not in the state its WHERE asks for). Caller holds st->mu.
 */
static enum sd_err update_job(struct sqlite_store *st, const char *what, const char *sql,
                              const struct sql_arg *args, const char *id, struct sd_error *err)
{
    int changed = 0;
    enum sd_err rc = run_statement(st, what, sql, args, NULL, NULL, &changed, err);
    if (rc == SD_OK && changed == 0)
        rc = sd_fail(err, SD_ENOTFOUND, "%s: no job '%s' in the expected state", what, id);
    return rc;
}

/* update_job for an operation that is that one statement: takes st->mu around it. */
static enum sd_err lock_and_update_job(struct sqlite_store *st, const char *what,
                                       const char *sql, const struct sql_arg *args,
                                       const char *id, struct sd_error *err)
{
    pthread_mutex_lock(&st->mu);
    enum sd_err rc = update_job(st, what, sql, args, id, err);
    pthread_mutex_unlock(&st->mu);
    return rc;
}

static enum sd_err sq_job_start(struct store *s, const char *id, int64_t now_ms,
                                struct sd_error *err)
{
    return lock_and_update_job(
        impl(s), "start job",
        STMT_START_JOB,
        (struct sql_arg[]){SQL_I64(now_ms), SQL_TEXT(id), SQL_END}, id, err);
}

static enum sd_err sq_job_progress(struct store *s, const char *id, double progress,
                                   struct sd_error *err)
{
    return lock_and_update_job(
        impl(s), "job progress", "UPDATE jobs SET progress = ? WHERE id = ? AND status = 'running'",
        (struct sql_arg[]){SQL_F64(progress), SQL_TEXT(id), SQL_END}, id, err);
}

/* The outcome row and every result body (caller holds st->mu, inside a transaction). */
static enum sd_err record_finish(struct sqlite_store *st, const char *id,
                                 const struct store_finish *f, struct sd_error *err)
{
    const char *status = job_status_name(f->status);
    int changed = 0;
    enum sd_err rc = run_statement(
        st, "finish job",
        "UPDATE jobs SET status = ?, finished_ms = ?, error_code = ?,"
        " error_message = ?, audio_s = ?, run_s = ?,"
        " progress = CASE WHEN ? = 'succeeded' THEN 1 ELSE progress END"
        " WHERE id = ?",
        (struct sql_arg[]){SQL_TEXT(status), SQL_I64(f->finished_ms), SQL_TEXT(f->error_code),
                           SQL_TEXT(f->error_message), SQL_F64(f->audio_s), SQL_F64(f->run_s),
                           SQL_TEXT(status), SQL_TEXT(id), SQL_END},
        NULL, NULL, &changed, err);
    if (rc == SD_OK && changed == 0)
        rc = sd_fail(err, SD_ENOTFOUND, "finish job: no job '%s'", id);
    for (int i = 0; rc == SD_OK && i < f->n_results; i++) {
        const struct store_result *r = &f->results[i];
        /* body is NOT NULL: an empty result is an empty blob */
        rc = run_statement(st, "finish job",
                           "INSERT OR REPLACE INTO results (job_id, format, content_type, body)"
                           " VALUES (?, ?, ?, ?)",
                           (struct sql_arg[]){SQL_TEXT(id), SQL_TEXT(r->format),
                                              SQL_TEXT(r->content_type),
                                              SQL_BLOB(r->body ? r->body : "", r->len), SQL_END},
                           NULL, NULL, NULL, err);
    }
    return rc;
}

static enum sd_err sq_job_finish(struct store *s, const char *id, const struct store_finish *f,
                                 struct sd_error *err)
{
    struct sqlite_store *st = impl(s);

    pthread_mutex_lock(&st->mu);
    enum sd_err rc = tx_begin(st, "finish job", err);
    if (rc == SD_OK)
        rc = tx_end(st, record_finish(st, id, f, err), "finish job", err);
    pthread_mutex_unlock(&st->mu);
    return rc;
}

static enum sd_err sq_job_requeue(struct store *s, const char *id, struct sd_error *err)
{
    return lock_and_update_job(impl(s), "requeue job",
                               "UPDATE jobs SET status = 'queued', progress = 0"
                               " WHERE id = ? AND status = 'running'",
                               (struct sql_arg[]){SQL_TEXT(id), SQL_END}, id, err);
}

static enum sd_err read_status(sqlite3_stmt *row, void *ctx, struct sd_error *err)
{
    (void)err;
    *(enum job_status *)ctx = column_status(row, 0);
    return SD_OK;
}

static enum sd_err sq_job_cancel(struct store *s, const char *id, const char *owner,
                                 int64_t now_ms, enum job_status *was, struct sd_error *err)
{
    struct sqlite_store *st = impl(s);
    enum job_status cur = JOB_FAILED;
    int rows = 0;

    /* one lock for the read and the write: the status cannot change between them */
    pthread_mutex_lock(&st->mu);
    enum sd_err rc = run_statement(
        st, "cancel job", "SELECT status FROM jobs WHERE id = ?1 AND" OWNER_IS("owner", 2),
        (struct sql_arg[]){SQL_TEXT(id), SQL_TEXT(owner), SQL_END}, read_status, &cur, &rows,
        err);
    if (rc == SD_OK && rows == 0)
        rc = sd_fail(err, SD_ENOTFOUND, "no job with id '%s'", id);
    if (rc == SD_OK) {
        *was = cur;
        if (!job_status_is_final(cur))
            rc = update_job(st, "cancel job",
                            STMT_CANCEL_JOB,
                            (struct sql_arg[]){SQL_I64(now_ms), SQL_TEXT(id), SQL_END}, id, err);
    }
    pthread_mutex_unlock(&st->mu);
    return rc;
}

/* The status and upload path of one job (ctx: struct job_delete_row). */
struct job_delete_row {
    enum job_status status;
    char *upload_path;
};

static enum sd_err read_delete_row(sqlite3_stmt *row, void *ctx, struct sd_error *err)
{
    struct job_delete_row *d = ctx;
    d->status = column_status(row, 0);
    free(d->upload_path);
    d->upload_path = dup_col(row, 1);
    if (!d->upload_path && sqlite3_column_type(row, 1) != SQLITE_NULL)
        return sd_fail(err, SD_ENOMEM, "delete job");
    return SD_OK;
}

static enum sd_err sq_job_delete(struct store *s, const char *id, const char *owner,
                                 enum job_status *was, char **upload_path, struct sd_error *err)
{
    struct sqlite_store *st = impl(s);
    struct job_delete_row d = {JOB_FAILED, NULL};
    int rows = 0;

    /* one lock and one transaction: the status read is the one the delete acts on */
    pthread_mutex_lock(&st->mu);
    enum sd_err rc = tx_begin(st, "delete job", err);
    if (rc == SD_OK) {
        rc = run_statement(st, "delete job",
                           "SELECT j.status, u.path FROM jobs j LEFT JOIN uploads u"
                           " ON u.job_id = j.id WHERE j.id = ?1 AND" OWNER_IS("j.owner", 2),
                           (struct sql_arg[]){SQL_TEXT(id), SQL_TEXT(owner), SQL_END},
                           read_delete_row, &d,
                           &rows, err);
        if (rc == SD_OK && rows == 0)
            rc = sd_fail(err, SD_ENOTFOUND, "no job with id '%s'", id);
        if (rc == SD_OK)
            *was = d.status;
        /* results and uploads first: the same order without ON DELETE CASCADE */
        static const char *const deletes[] = {
            "DELETE FROM results WHERE job_id = ?",
            "DELETE FROM uploads WHERE job_id = ?",
            STMT_DELETE_JOB,
        };
        for (size_t i = 0; rc == SD_OK && job_status_is_final(d.status) && i < 3; i++)
            rc = run_statement(st, "delete job", deletes[i],
                               (struct sql_arg[]){SQL_TEXT(id), SQL_END}, NULL, NULL, NULL, err);
        rc = tx_end(st, rc, "delete job", err);
    }
    pthread_mutex_unlock(&st->mu);
    if (rc == SD_OK && job_status_is_final(d.status))
        *upload_path = d.upload_path;
    else
        free(d.upload_path);
    return rc;
}

static enum sd_err sq_jobs_recover(struct store *s, int max_attempts, struct store_job **out,
                                   int *n, struct sd_error *err)
{
    struct sqlite_store *st = impl(s);

    pthread_mutex_lock(&st->mu);
    /* ?1 twice: the message says the count the WHERE compared with */
    enum sd_err rc = run_statement(
        st, "recover jobs",
        "UPDATE jobs SET status = 'failed', error_code = 'internal_error',"
        " error_message = 'the service stopped during this job ' || ?1 || ' times; giving up',"
        " finished_ms = CAST(strftime('%s','now') AS INTEGER) * 1000"
        " WHERE status = 'running' AND attempts >= ?1",
        (struct sql_arg[]){SQL_I64(max_attempts), SQL_END}, NULL, NULL, NULL, err);
    if (rc == SD_OK)
        rc = run_statement(st, "recover jobs",
                           "UPDATE jobs SET status = 'queued', progress = 0"
                           " WHERE status = 'running'",
                           NULL, NULL, NULL, NULL, err);
    if (rc == SD_OK)
        rc = collect_jobs(st, "recover jobs",
                          "SELECT " JOB_COLUMNS " WHERE j.status = 'queued' ORDER BY j.seq", NULL,
                          0, out, n, NULL, err);
    pthread_mutex_unlock(&st->mu);
    return rc;
}

/* A result row, copied out (body NUL-terminated for text formats). */
struct result_row {
    char *body;
    size_t len;
    char *content_type;
};

static enum sd_err read_result(sqlite3_stmt *row, void *ctx, struct sd_error *err)
{
    struct result_row *r = ctx;
    size_t n = (size_t)sqlite3_column_bytes(row, 0);
    char *b = malloc(n + 1);
    char *ct = dup_col(row, 1);

    if (!b || !ct) {
        free(b);
        free(ct);
        return sd_fail(err, SD_ENOMEM, "result of %zu bytes", n);
    }
    if (n)
        memcpy(b, sqlite3_column_blob(row, 0), n);
    b[n] = '\0';
    *r = (struct result_row){.body = b, .len = n, .content_type = ct};
    return SD_OK;
}

static enum sd_err sq_result_get(struct store *s, const char *id, const char *owner,
                                 const char *format, char **body, size_t *len,
                                 char **content_type, struct sd_error *err)
{
    struct sqlite_store *st = impl(s);
    struct result_row r = {0};
    int rows = 0;

    /* (job_id, format) is the key: one row at most */
    pthread_mutex_lock(&st->mu);
    enum sd_err rc = run_statement(
        st, "get result",
        STMT_GET_RESULT,
        (struct sql_arg[]){SQL_TEXT(id), SQL_TEXT(format), SQL_TEXT(owner), SQL_END}, read_result,
        &r, &rows, err);
    pthread_mutex_unlock(&st->mu);
    if (rc == SD_OK && rows == 0)
        rc = sd_fail(err, SD_ENOTFOUND, "job '%s' has no %s result", id, format);
    if (rc != SD_OK) {
        free(r.body);
        free(r.content_type);
        return rc;
    }
    *body = r.body;
    *len = r.len;
    *content_type = r.content_type;
    return SD_OK;
}

static enum sd_err sq_callback_set(struct store *s, const char *id, enum store_cb_state cbs,
                                   int attempts, const char *error, struct sd_error *err)
{
    return lock_and_update_job(
        impl(s), "callback state",
        STMT_SET_CALLBACK,
        (struct sql_arg[]){SQL_I64(cbs), SQL_I64(attempts), SQL_TEXT(error), SQL_TEXT(id),
                           SQL_END},
        id, err);
}

static enum sd_err sq_callbacks_pending(struct store *s, struct store_job **out, int *n,
                                        struct sd_error *err)
{
    struct sqlite_store *st = impl(s);

    pthread_mutex_lock(&st->mu);
    enum sd_err rc = collect_jobs(st, "pending callbacks",
                                  "SELECT " JOB_COLUMNS " WHERE j.cb_state = ? AND j.status IN"
                                  " ('succeeded', 'failed', 'cancelled') ORDER BY j.seq",
                                  (struct sql_arg[]){SQL_I64(STORE_CB_PENDING), SQL_END}, 0, out,
                                  n, NULL, err);
    pthread_mutex_unlock(&st->mu);
    return rc;
}

/* ---- retention, backup, counts ---- */

/* Appends the path in the row to the purge's list (the purge owns what is added). */
static enum sd_err add_upload_path(sqlite3_stmt *row, void *ctx, struct sd_error *err)
{
    struct store_purge *p = ctx;
    char **grown = realloc(p->upload_paths, (size_t)(p->n_upload_paths + 1) * sizeof(char *));
    char *path = dup_col(row, 0);

    if (grown)
        p->upload_paths = grown;
    if (!grown || !path) {
        free(path);
        return sd_fail(err, SD_ENOMEM, "retention");
    }
    p->upload_paths[p->n_upload_paths++] = path;
    return SD_OK;
}

/* Collects the upload paths retention will forget, then forgets them (caller holds the lock). */
static enum sd_err purge_uploads(struct sqlite_store *st, int64_t before_ms, struct store_purge *p,
                                 struct sd_error *err)
{
    enum sd_err rc = run_statement(st, "retention",
                                   "SELECT u.path FROM uploads u JOIN jobs j ON j.id = u.job_id"
                                   " WHERE u.path IS NOT NULL AND u.created_ms < ? AND j.status IN"
                                   " ('succeeded', 'failed', 'cancelled')",
                                   (struct sql_arg[]){SQL_I64(before_ms), SQL_END},
                                   add_upload_path, p, NULL, err);
    if (rc != SD_OK)
        return rc;
    return run_statement(st, "retention",
                         "UPDATE uploads SET path = NULL,"
                         " deleted_ms = CAST(strftime('%s','now') AS INTEGER) * 1000"
                         " WHERE path IS NOT NULL AND created_ms < ? AND job_id IN (SELECT id"
                         " FROM jobs WHERE status IN ('succeeded', 'failed', 'cancelled'))",
                         (struct sql_arg[]){SQL_I64(before_ms), SQL_END}, NULL, NULL, NULL, err);
}

static enum sd_err purge_results(struct sqlite_store *st, int64_t before_ms,
                                 struct store_purge *p, struct sd_error *err)
{
    enum sd_err rc = run_statement(st, "retention",
                                   STMT_EXPIRE_RESULTS,
                                   (struct sql_arg[]){SQL_I64(before_ms), SQL_END}, NULL, NULL,
                                   &p->n_results_deleted, err);
    if (rc != SD_OK)
        return rc;
    return run_statement(st, "retention",
                         STMT_DELETE_EXPIRED_RESULTS,
                         NULL, NULL, NULL, NULL, err);
}

static enum sd_err sq_purge(struct store *s, int64_t uploads_before_ms, int64_t results_before_ms,
                            struct store_purge *out, struct sd_error *err)
{
    struct sqlite_store *st = impl(s);
    struct store_purge p = {0};

    pthread_mutex_lock(&st->mu);
    enum sd_err rc = tx_begin(st, "retention", err);
    if (rc == SD_OK) {
        rc = purge_uploads(st, uploads_before_ms, &p, err);
        if (rc == SD_OK)
            rc = purge_results(st, results_before_ms, &p, err);
        rc = tx_end(st, rc, "retention commit", err);
    }
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

    pthread_mutex_lock(&st->mu);
    enum sd_err rc = run_statement(st, "count jobs", STMT_COUNT_JOBS,
                                   (struct sql_arg[]){SQL_TEXT(job_status_name(js)), SQL_END},
                                   read_int64, n, NULL, err);
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
    const struct sql_arg row[] = {SQL_TEXT(k->id), SQL_TEXT(k->name), SQL_TEXT(k->prefix),
                                  SQL_TEXT(k->hash_hex), SQL_I64(k->created_ms),
                                  SQL_I64(k->admin ? 1 : 0), SQL_END};

    pthread_mutex_lock(&st->mu);
    enum sd_err rc = run_statement(st, "insert key",
                                   STMT_INSERT_KEY,
                                   row, NULL, NULL, NULL, err);
    rc = reused_id_is_invalid(st, rc, "key", k->id, err);
    pthread_mutex_unlock(&st->mu);
    return rc;
}

struct key_vec {
    struct store_key *keys;
    int len, cap;
};

static enum sd_err add_key_row(sqlite3_stmt *row, void *ctx, struct sd_error *err)
{
    struct key_vec *vec = ctx;
    struct store_key *grown = grow_for_one(vec->keys, vec->len, &vec->cap, sizeof(*grown));
    if (!grown)
        return sd_fail(err, SD_ENOMEM, "list keys");
    vec->keys = grown;
    struct store_key *k = &vec->keys[vec->len++];
    memset(k, 0, sizeof(*k));
    copy_text(k->id, sizeof(k->id), row, 0);
    copy_text(k->name, sizeof(k->name), row, 1);
    copy_text(k->prefix, sizeof(k->prefix), row, 2);
    copy_text(k->hash_hex, sizeof(k->hash_hex), row, 3);
    k->created_ms = sqlite3_column_int64(row, 4);
    k->last_used_ms = sqlite3_column_int64(row, 5);
    k->revoked_ms = sqlite3_column_int64(row, 6);
    k->admin = sqlite3_column_int(row, 7) != 0;
    return SD_OK;
}

static enum sd_err sq_key_list(struct store *s, struct store_key **out, int *n,
                               struct sd_error *err)
{
    struct sqlite_store *st = impl(s);
    struct key_vec vec = {0};

    pthread_mutex_lock(&st->mu);
    enum sd_err rc = run_statement(st, "list keys",
                                   STMT_LIST_KEYS,
                                   NULL, add_key_row, &vec, NULL, err);
    pthread_mutex_unlock(&st->mu);
    if (rc != SD_OK) {
        free(vec.keys);
        return rc;
    }
    *out = vec.keys;
    *n = vec.len;
    return SD_OK;
}

/* One UPDATE of a key row by id; SD_ENOTFOUND when no row has that id. */
static enum sd_err key_update(struct sqlite_store *st, const char *sql, const char *id,
                              int64_t ms, const char *what, struct sd_error *err)
{
    int changed = 0;

    pthread_mutex_lock(&st->mu);
    enum sd_err rc = run_statement(st, what, sql,
                                   (struct sql_arg[]){SQL_I64(ms), SQL_TEXT(id), SQL_END}, NULL,
                                   NULL, &changed, err);
    pthread_mutex_unlock(&st->mu);
    if (rc == SD_OK && changed == 0)
        rc = sd_fail(err, SD_ENOTFOUND, "no API key with id '%s'", id);
    return rc;
}

static enum sd_err sq_key_revoke(struct store *s, const char *id, int64_t now_ms,
                                 struct sd_error *err)
{
    /* the first revocation time stays: revoking twice is not an error */
    return key_update(impl(s),
                      STMT_REVOKE_KEY,
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
    .job_delete = sq_job_delete,
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

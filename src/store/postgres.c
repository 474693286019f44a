/*
 * postgres.c - the PostgreSQL implementation of store.h over libpq, for
 * several scribed processes sharing one database (issue 17). Schema from
 * migrations.c's PostgreSQL list, applied at open under an advisory lock so
 * nodes starting together migrate once.
 *
 * Connections: a small pool (POOL_SIZE), opened lazily. Each pg_* operation
 * takes one connection for its whole length (a transaction lives on it) and
 * gives it back; a connection that broke is closed and reopened by the next
 * operation that takes its slot, so a PostgreSQL restart costs the calls made
 * while it is down, not the process. The pool mutex guards only the slots'
 * busy flags; a connection is used by one thread at a time, without it.
 *
 * Every query goes through run_statement() with its arguments as a
 * struct sql_arg array (sql.h) sent as PQexecParams parameters ($1, $2 ...;
 * the statements shared with sqlite.c, statements.h, write them ?1, ?2 ...);
 * result rows come back through a row_reader. The operations follow
 * sqlite.c's order, one function each; the shared queue's operations
 * (store.h, "Shared queue") come last.
 *
 * Queue: a job is claimed with UPDATE ... WHERE seq = (SELECT ... FOR UPDATE
 * SKIP LOCKED) under a lease of lease_owner/lease_expires_ms, times by the
 * database's clock (nodes' clocks may disagree). Inserting or re-queueing a
 * job sends NOTIFY scribed_jobs; wait_for_jobs LISTENs on a connection of
 * its own (listen_mu: one waiter at a time).
 */
#include <errno.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/migrations.h"
#include "store/sql.h"
#include "store/statements.h"
#include "store/store.h"

#define POOL_SIZE 4
/* seconds to wait for a connection when the URL does not say (a wrong host fails fast) */
#define CONNECT_TIMEOUT_S "5"
/* pg_advisory_lock key of the migrations: "scribed" in ASCII */
#define MIGRATION_LOCK_KEY "32478965367203172"

struct pg_conn {
    PGconn *c;                /* NULL: not open (yet, or since it broke) */
    bool busy;                /* guarded by pg_store.mu */
    char sqlstate[6];         /* of the last failed statement on it ("" if none) */
};

struct pg_store {
    struct store base;        /* first: struct store * casts to this */
    char *conninfo;           /* the URL or key=value string (holds the password) */
    pthread_mutex_t mu;       /* guards the busy flags */
    pthread_cond_t freed;     /* a slot's busy flag was cleared */
    struct pg_conn pool[POOL_SIZE];
    /* set once by queue_attach before the store is shared; read-only after */
    char node_id[STORE_ID_MAX]; /* "": not attached */
    int lease_ms;
    pthread_mutex_t listen_mu; /* guards listen */
    PGconn *listen;            /* LISTEN scribed_jobs, or NULL */
    int wake_fd;               /* eventfd: wake_waiters ends a wait_for_jobs early */
};

/* Now in milliseconds by the database's clock: leases compare times of many nodes. */
#define NOW_MS "(extract(epoch from clock_timestamp()) * 1000)::bigint"

/* The node this store acts for as an SQL argument: NULL when not attached. */
static const char *node_arg(const struct pg_store *st)
{
    return st->node_id[0] ? st->node_id : NULL;
}

static struct pg_store *impl(struct store *s)
{
    return (struct pg_store *)s;
}

/* The first line of a libpq message, without its "ERROR:  " or trailing newline. */
static void first_line(const char *msg, char *out, size_t n)
{
    if (!msg)
        msg = "";
    if (strncmp(msg, "ERROR:  ", 8) == 0)
        msg += 8;
    size_t len = strcspn(msg, "\n");
    snprintf(out, n, "%.*s", (int)len, msg);
}

/* ---- connections ---- */

/*
 * Opens one connection: conninfo may be a URL or key=value pairs (expanded
 * as dbname); connect_timeout comes first so the caller's own value wins.
 */
static enum sd_err connect_one(const char *conninfo, PGconn **out, struct sd_error *err)
{
    const char *const keys[] = {"connect_timeout", "application_name", "dbname", NULL};
    const char *const vals[] = {CONNECT_TIMEOUT_S, "scribed", conninfo, NULL};
    PGconn *c = PQconnectdbParams(keys, vals, 1);
    if (c && PQstatus(c) == CONNECTION_OK) {
        /* quiet: NOTICEs (IF NOT EXISTS ...) are not for the service log */
        PQclear(PQexec(c, "SET client_min_messages = warning"));
        *out = c;
        return SD_OK;
    }
    char line[400];
    first_line(c ? PQerrorMessage(c) : "out of memory", line, sizeof(line));
    /* never the conninfo itself: it may hold the password */
    enum sd_err rc = sd_fail(err, SD_EIO, "cannot connect to PostgreSQL at %s:%s/%s: %s",
                             c && PQhost(c) ? PQhost(c) : "?", c && PQport(c) ? PQport(c) : "?",
                             c && PQdb(c) ? PQdb(c) : "?", line);
    PQfinish(c);
    return rc;
}

/* Takes a free slot (waiting for one) and makes sure its connection is open. */
static enum sd_err conn_take(struct pg_store *st, struct pg_conn **out, struct sd_error *err)
{
    struct pg_conn *slot = NULL;
    pthread_mutex_lock(&st->mu);
    for (;;) {
        /* an open idle connection first: a new one costs a round trip and a backend */
        for (int i = 0; i < POOL_SIZE && !slot; i++)
            if (!st->pool[i].busy && st->pool[i].c)
                slot = &st->pool[i];
        for (int i = 0; i < POOL_SIZE && !slot; i++)
            if (!st->pool[i].busy)
                slot = &st->pool[i];
        if (slot)
            break;
        pthread_cond_wait(&st->freed, &st->mu);
    }
    slot->busy = true;
    pthread_mutex_unlock(&st->mu);
    slot->sqlstate[0] = '\0';
    if (slot->c && PQstatus(slot->c) != CONNECTION_OK) {
        PQfinish(slot->c);
        slot->c = NULL;
    }
    enum sd_err rc = slot->c ? SD_OK : connect_one(st->conninfo, &slot->c, err);
    if (rc != SD_OK) {
        pthread_mutex_lock(&st->mu);
        slot->busy = false;
        pthread_cond_signal(&st->freed);
        pthread_mutex_unlock(&st->mu);
        return rc;
    }
    *out = slot;
    return SD_OK;
}

static void conn_give(struct pg_store *st, struct pg_conn *slot)
{
    /* a connection left inside a transaction by a failure must not leak it to the next user */
    if (slot->c && PQtransactionStatus(slot->c) != PQTRANS_IDLE) {
        PGresult *r = PQexec(slot->c, "ROLLBACK");
        PQclear(r);
        if (PQtransactionStatus(slot->c) != PQTRANS_IDLE) {
            PQfinish(slot->c);
            slot->c = NULL;
        }
    }
    pthread_mutex_lock(&st->mu);
    slot->busy = false;
    pthread_cond_signal(&st->freed);
    pthread_mutex_unlock(&st->mu);
}

/* ---- the one statement runner ---- */

/* Reads row `row` of res into ctx; anything but SD_OK stops with that error. */
typedef enum sd_err (*row_reader)(const PGresult *res, int row, void *ctx, struct sd_error *err);

static enum sd_err db_fail(struct pg_conn *pc, const PGresult *res, struct sd_error *err,
                           const char *what)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    char line[400];
    snprintf(pc->sqlstate, sizeof(pc->sqlstate), "%s", state ? state : "");
    first_line(res && PQresultErrorMessage(res)[0] ? PQresultErrorMessage(res)
                                                   : PQerrorMessage(pc->c),
               line, sizeof(line));
    enum sd_err code = SD_EIO;
    if (state && (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0 ||
                  strcmp(state, "55P03") == 0))
        code = SD_EBUSY; /* serialization failure, deadlock, lock not available */
    else if (state && strcmp(state, "53200") == 0)
        code = SD_ENOMEM;
    else if (state && strcmp(state, "53100") == 0)
        code = SD_ENOSPACE; /* disk_full: answered 503 on insert, retried on save, as SQLite's */
    if (PQstatus(pc->c) != CONNECTION_OK)
        return sd_fail(err, SD_EIO, "database %s: connection to PostgreSQL lost: %s", what, line);
    if (code == SD_ENOSPACE)
        return sd_fail(err, code, "database %s: the database server's disk is full: %s", what,
                       line);
    return sd_fail(err, code, "database %s: %s", what, line);
}

/* Parameters of one statement, at most (job_import, the widest, has 18). */
#define MAX_ARGS 24

/*
 * Sends sql with args (NULL: none) as parameters $1.. (text, blobs binary),
 * hands each result row to on_row (NULL: rows not read). *rows (if not NULL):
 * rows a query returned, or an INSERT, UPDATE or DELETE changed. A database
 * failure is db_fail(what) and leaves its SQLSTATE in pc->sqlstate.
 */
static enum sd_err run_statement(struct pg_conn *pc, const char *what, const char *sql,
                                 const struct sql_arg *args, row_reader on_row, void *ctx,
                                 int *rows, struct sd_error *err)
{
    const char *values[MAX_ARGS];
    int lengths[MAX_ARGS], formats[MAX_ARGS];
    char numbers[MAX_ARGS][32];
    int n = 0;

    for (; args && args[n].type != SQL_T_END; n++) {
        if (n == MAX_ARGS)
            return sd_fail(err, SD_EINTERNAL, "database %s: too many arguments", what);
        const struct sql_arg *a = &args[n];
        lengths[n] = 0;
        formats[n] = 0;
        values[n] = NULL;
        switch (a->type) {
        case SQL_T_TEXT: values[n] = a->text; break;
        case SQL_T_I64:
            snprintf(numbers[n], sizeof(numbers[n]), "%lld", (long long)a->i64);
            values[n] = numbers[n];
            break;
        case SQL_T_F64:
            snprintf(numbers[n], sizeof(numbers[n]), "%.17g", a->f64);
            values[n] = numbers[n];
            break;
        case SQL_T_BLOB:
            values[n] = a->bytes ? a->bytes : "";
            lengths[n] = (int)a->len;
            formats[n] = 1;
            break;
        case SQL_T_NULL:
        case SQL_T_END: break;
        }
    }
    /*
     * Without arguments, the simple protocol: a migration is several
     * statements. A pooled connection finds out that PostgreSQL restarted
     * only when it is used: outside a transaction the statement cannot have
     * half-happened with the connection, so it is sent once more on a new one.
     */
    /* statements.h's ?N placeholders are PostgreSQL's $N: the same length, one copy */
    char *own_sql = NULL;
    if (strchr(sql, '?')) {
        if (!(own_sql = strdup(sql)))
            return sd_fail(err, SD_ENOMEM, "database %s", what);
        for (char *q = own_sql; *q; q++)
            if (q[0] == '?' && q[1] >= '0' && q[1] <= '9')
                q[0] = '$';
        sql = own_sql;
    }
    bool outside_tx = PQtransactionStatus(pc->c) == PQTRANS_IDLE;
    PGresult *res = NULL;
    ExecStatusType status = PGRES_FATAL_ERROR;
    for (int attempt = 0; attempt < 2; attempt++) {
        PQclear(res);
        res = args ? PQexecParams(pc->c, sql, n, NULL, values, lengths, formats, 0)
                   : PQexec(pc->c, sql);
        status = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
        if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK || !outside_tx ||
            PQstatus(pc->c) != CONNECTION_BAD)
            break;
        PQreset(pc->c);
        if (PQstatus(pc->c) != CONNECTION_OK)
            break;
        PQclear(PQexec(pc->c, "SET client_min_messages = warning"));
    }
    enum sd_err rc = SD_OK;
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
        rc = db_fail(pc, res, err, what);
    } else {
        int n_rows = PQntuples(res);
        for (int i = 0; on_row && i < n_rows && rc == SD_OK; i++)
            rc = on_row(res, i, ctx, err);
        if (rc == SD_OK && rows)
            *rows = status == PGRES_TUPLES_OK ? n_rows : atoi(PQcmdTuples(res));
    }
    PQclear(res);
    free(own_sql);
    return rc;
}

/* SQL without arguments or rows: transaction control, migrations (several statements). */
static enum sd_err exec_simple(struct pg_conn *pc, const char *what, const char *sql,
                               struct sd_error *err)
{
    return run_statement(pc, what, sql, NULL, NULL, NULL, NULL, err);
}

static enum sd_err tx_begin(struct pg_conn *pc, const char *what, struct sd_error *err)
{
    return exec_simple(pc, what, "BEGIN", err);
}

/* COMMIT when rc is SD_OK, else ROLLBACK; returns the outcome. */
static enum sd_err tx_end(struct pg_conn *pc, enum sd_err rc, const char *commit_what,
                          struct sd_error *err)
{
    if (rc == SD_OK)
        rc = exec_simple(pc, commit_what, "COMMIT", err);
    if (rc != SD_OK) {
        PGresult *r = PQexec(pc->c, "ROLLBACK");
        PQclear(r);
    }
    return rc;
}

/* A statement that broke a UNIQUE constraint means a reused id: SD_EINVAL. */
static enum sd_err reused_id_is_invalid(struct pg_conn *pc, enum sd_err rc, const char *kind,
                                        const char *id, struct sd_error *err)
{
    if (rc != SD_OK && strcmp(pc->sqlstate, "23505") == 0)
        return sd_fail(err, SD_EINVAL, "%s %s already exists", kind, id);
    return rc;
}

/* ---- reading columns (text format) ---- */

static char *dup_col(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? NULL : strdup(PQgetvalue(r, row, col));
}

static int64_t col_i64(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? 0 : strtoll(PQgetvalue(r, row, col), NULL, 10);
}

static double col_f64(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? 0 : strtod(PQgetvalue(r, row, col), NULL);
}

/* A status column; a name this build does not know reads as failed. */
static enum job_status col_status(const PGresult *r, int row, int col)
{
    enum job_status s = JOB_FAILED;
    job_status_parse(PQgetvalue(r, row, col), &s);
    return s;
}

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
static enum sd_err read_job(const PGresult *r, int row, void *ctx, struct sd_error *err)
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
    snprintf(j->id, sizeof(j->id), "%s", PQgetvalue(r, row, col++));
    snprintf(j->owner, sizeof(j->owner), "%s", PQgetvalue(r, row, col++));
    j->status = col_status(r, row, col++);
    for (size_t i = 0; i < sizeof(int64s) / sizeof(int64s[0]); i++)
        *int64s[i] = col_i64(r, row, col++);
    j->attempts = (int)col_i64(r, row, col++);
    j->cb_state = (enum store_cb_state)col_i64(r, row, col++);
    j->cb_attempts = (int)col_i64(r, row, col++);
    j->results_expired = col_i64(r, row, col++) != 0;
    for (size_t i = 0; i < sizeof(reals) / sizeof(reals[0]); i++)
        *reals[i] = col_f64(r, row, col++);
    for (size_t i = 0; i < sizeof(owned) / sizeof(owned[0]); i++)
        *owned[i] = dup_col(r, row, col++);
    return SD_OK;
}

struct job_vec {
    struct store_job *jobs;
    int len, cap, max;
    bool more;
};

static enum sd_err add_job_row(const PGresult *r, int row, void *ctx, struct sd_error *err)
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
    return read_job(r, row, &vec->jobs[vec->len++], err);
}

static enum sd_err read_int64(const PGresult *r, int row, void *ctx, struct sd_error *err)
{
    (void)err;
    *(int64_t *)ctx = col_i64(r, row, 0);
    return SD_OK;
}

static enum sd_err collect_jobs(struct pg_conn *pc, const char *what, const char *sql,
                                const struct sql_arg *args, int max, struct store_job **out,
                                int *n, bool *more, struct sd_error *err)
{
    struct job_vec vec = {.max = max};
    enum sd_err rc = run_statement(pc, what, sql, args, add_job_row, &vec, NULL, err);

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

/* ---- schema ---- */

/* Applies the missing migrations, one transaction each (caller holds the advisory lock). */
static enum sd_err migrate_locked(struct pg_conn *pc, struct sd_error *err)
{
    int64_t version = -1;
    enum sd_err rc = exec_simple(pc, "migration",
                                 "CREATE TABLE IF NOT EXISTS scribed_schema ("
                                 " version INTEGER NOT NULL)",
                                 err);
    if (rc == SD_OK)
        rc = run_statement(pc, "reading schema version", "SELECT version FROM scribed_schema",
                           NULL, read_int64, &version, NULL, err);
    if (rc == SD_OK && version < 0) {
        version = 0;
        rc = exec_simple(pc, "migration", "INSERT INTO scribed_schema VALUES (0)", err);
    }
    if (rc != SD_OK)
        return rc;
    if (version > store_pg_migration_count())
        return sd_fail(err, SD_EFORMAT,
                       "PostgreSQL schema version %d is newer than this scribed knows (%d):"
                       " upgrade scribed",
                       (int)version, store_pg_migration_count());
    for (int i = (int)version; i < store_pg_migration_count() && rc == SD_OK; i++) {
        rc = tx_begin(pc, "migration", err);
        if (rc != SD_OK)
            return rc;
        rc = exec_simple(pc, "migration", store_pg_migration_sql(i), err);
        if (rc == SD_OK)
            rc = run_statement(pc, "migration", "UPDATE scribed_schema SET version = $1",
                               (struct sql_arg[]){SQL_I64(i + 1), SQL_END}, NULL, NULL, NULL,
                               err);
        rc = tx_end(pc, rc, "migration commit", err);
    }
    return rc;
}

/* Several nodes starting at once: the first migrates, the others wait and find it done. */
static enum sd_err migrate(struct pg_store *st, struct sd_error *err)
{
    struct pg_conn *pc = NULL;
    enum sd_err rc = conn_take(st, &pc, err);
    if (rc != SD_OK)
        return rc;
    rc = exec_simple(pc, "migration lock", "SELECT pg_advisory_lock(" MIGRATION_LOCK_KEY ")",
                     err);
    if (rc == SD_OK) {
        rc = migrate_locked(pc, err);
        struct sd_error ignored = {0};
        exec_simple(pc, "migration unlock", "SELECT pg_advisory_unlock(" MIGRATION_LOCK_KEY ")",
                    &ignored);
    }
    conn_give(st, pc);
    return rc;
}

static void pg_close(struct store *s)
{
    struct pg_store *st = impl(s);
    for (int i = 0; i < POOL_SIZE; i++)
        PQfinish(st->pool[i].c);
    PQfinish(st->listen);
    if (st->wake_fd >= 0)
        close(st->wake_fd);
    pthread_mutex_destroy(&st->listen_mu);
    pthread_cond_destroy(&st->freed);
    pthread_mutex_destroy(&st->mu);
    free(st->conninfo);
    free(st);
}

/* ---- jobs ---- */

/*
 * Copies the upload file at path into upload_chunks, STORE_UPLOAD_CHUNK bytes
 * per row (caller holds the job's transaction, so a job is never claimable
 * with half its audio). missing_ok: a file that is gone is no error (a copy
 * of a deployment whose retention already deleted it).
 */
static enum sd_err insert_upload_chunks(struct pg_conn *pc, const char *id, const char *path,
                                        bool missing_ok, struct sd_error *err)
{
    if (!path || !*path)
        return SD_OK;
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (missing_ok && errno == ENOENT)
            return SD_OK;
        return sd_fail(err, SD_EIO, "cannot read the upload %s: %s", path, strerror(errno));
    }
    char *buf = malloc(STORE_UPLOAD_CHUNK);
    enum sd_err rc = buf ? SD_OK : sd_fail(err, SD_ENOMEM, "upload chunk");
    for (int64_t n = 0; rc == SD_OK; n++) {
        size_t got = fread(buf, 1, STORE_UPLOAD_CHUNK, f);
        if (got == 0) {
            if (ferror(f))
                rc = sd_fail(err, SD_EIO, "cannot read the upload %s", path);
            break;
        }
        rc = run_statement(pc, "store upload",
                           "INSERT INTO upload_chunks (job_id, n, data) VALUES ($1, $2, $3)",
                           (struct sql_arg[]){SQL_TEXT(id), SQL_I64(n), SQL_BLOB(buf, got),
                                              SQL_END},
                           NULL, NULL, NULL, err);
    }
    free(buf);
    fclose(f);
    return rc;
}

static enum sd_err insert_job_rows(struct pg_conn *pc, const struct store_job *j,
                                   struct sd_error *err)
{
    enum sd_err rc = run_statement(
        pc, "insert job",
        STMT_INSERT_JOB,
        (struct sql_arg[]){SQL_TEXT(j->id), SQL_TEXT(j->owner),
                           SQL_TEXT(job_status_name(JOB_QUEUED)),
                           SQL_TEXT(j->params_json ? j->params_json : "{}"),
                           SQL_TEXT(j->callback_url), SQL_I64(j->created_ms),
                           SQL_I64(j->callback_url ? STORE_CB_PENDING : STORE_CB_NONE), SQL_END},
        NULL, NULL, NULL, err);
    if (rc != SD_OK)
        return rc;
    rc = run_statement(pc, "insert job",
                         STMT_INSERT_UPLOAD,
                         (struct sql_arg[]){SQL_TEXT(j->id), SQL_TEXT(j->upload_path),
                                            SQL_TEXT(j->filename), SQL_I64(j->upload_bytes),
                                            SQL_I64(j->created_ms), SQL_END},
                         NULL, NULL, NULL, err);
    if (rc == SD_OK)
        rc = insert_upload_chunks(pc, j->id, j->upload_path, false, err);
    return rc;
}

static enum sd_err pg_job_insert(struct store *s, const struct store_job *j, struct sd_error *err)
{
    struct pg_store *st = impl(s);
    struct pg_conn *pc = NULL;
    enum sd_err rc = conn_take(st, &pc, err);
    if (rc != SD_OK)
        return rc;
    rc = tx_begin(pc, "insert job", err);
    if (rc == SD_OK) {
        rc = reused_id_is_invalid(pc, insert_job_rows(pc, j, err), "job id", j->id, err);
        /* delivered at commit: idle workers of every node wake up */
        if (rc == SD_OK)
            rc = exec_simple(pc, "insert job", "NOTIFY scribed_jobs", err);
        rc = tx_end(pc, rc, "insert job", err);
    }
    conn_give(st, pc);
    return rc;
}

static enum sd_err pg_job_get(struct store *s, const char *id, const char *owner,
                              struct store_job *out, struct sd_error *err)
{
    struct pg_store *st = impl(s);
    struct pg_conn *pc = NULL;
    struct store_job job = {0};
    int rows = 0;
    enum sd_err rc = conn_take(st, &pc, err);
    if (rc != SD_OK)
        return rc;
    rc = run_statement(pc, "get job",
                       STMT_GET_JOB,
                       (struct sql_arg[]){SQL_TEXT(id), SQL_TEXT(owner), SQL_END}, read_job, &job,
                       &rows, err);
    conn_give(st, pc);
    if (rc == SD_OK && rows == 0)
        rc = sd_fail(err, SD_ENOTFOUND, "no job with id '%s'", id);
    if (rc == SD_OK)
        *out = job;
    else
        store_job_clear(&job);
    return rc;
}

static enum sd_err pg_job_list(struct store *s, const char *owner, const char *after_id,
                               int limit, int status_filter, struct store_job **out, int *n,
                               bool *has_more, struct sd_error *err)
{
    struct pg_store *st = impl(s);
    struct pg_conn *pc = NULL;
    const char *status = status_filter >= 0 ? job_status_name((enum job_status)status_filter)
                                            : NULL;
    int cursor_rows = 0;
    enum sd_err rc = conn_take(st, &pc, err);
    if (rc != SD_OK)
        return rc;
    /* a cursor that names no job (of this owner) is the client's mistake */
    if (after_id &&
        (run_statement(pc, "list jobs", STMT_OWNER_HAS_JOB,
                       (struct sql_arg[]){SQL_TEXT(after_id), SQL_TEXT(owner), SQL_END}, NULL,
                       NULL, &cursor_rows, NULL) != SD_OK ||
         cursor_rows == 0))
        rc = sd_fail(err, SD_EINVAL, "cursor 'after': no job with id '%s'", after_id);
    else
        rc = collect_jobs(pc, "list jobs",
                          "SELECT " JOB_COLUMNS
                          " WHERE ($1::text IS NULL OR j.seq < (SELECT seq FROM jobs WHERE id = $1))"
                          " AND ($2::text IS NULL OR j.status = $2) AND" OWNER_IS("j.owner", 4)
                          " ORDER BY j.seq DESC LIMIT $3::bigint",
                          (struct sql_arg[]){SQL_TEXT(after_id), SQL_TEXT(status),
                                             SQL_I64(limit + 1), SQL_TEXT(owner), SQL_END},
                          limit, out, n, has_more, err);
    conn_give(st, pc);
    return rc;
}

/* One UPDATE of the job `id`; SD_ENOTFOUND when it changed no row. */
static enum sd_err update_job(struct pg_conn *pc, const char *what, const char *sql,
                              const struct sql_arg *args, const char *id, struct sd_error *err)
{
    int changed = 0;
    enum sd_err rc = run_statement(pc, what, sql, args, NULL, NULL, &changed, err);
    if (rc == SD_OK && changed == 0)
        rc = sd_fail(err, SD_ENOTFOUND, "%s: no job '%s' in the expected state", what, id);
    return rc;
}

/* update_job for an operation that is that one statement, on a connection of its own. */
static enum sd_err take_and_update_job(struct pg_store *st, const char *what, const char *sql,
                                       const struct sql_arg *args, const char *id,
                                       struct sd_error *err)
{
    struct pg_conn *pc = NULL;
    enum sd_err rc = conn_take(st, &pc, err);
    if (rc != SD_OK)
        return rc;
    rc = update_job(pc, what, sql, args, id, err);
    conn_give(st, pc);
    return rc;
}

static enum sd_err pg_job_start(struct store *s, const char *id, int64_t now_ms,
                                struct sd_error *err)
{
    return take_and_update_job(
        impl(s), "start job",
        STMT_START_JOB,
        (struct sql_arg[]){SQL_I64(now_ms), SQL_TEXT(id), SQL_END}, id, err);
}

static enum sd_err pg_job_progress(struct store *s, const char *id, double progress,
                                   struct sd_error *err)
{
    /* attached: only while this node holds the lease (else SD_ENOTFOUND: stop running it) */
    return take_and_update_job(
        impl(s), "job progress",
        "UPDATE jobs SET progress = $1 WHERE id = $2 AND status = 'running'"
        " AND ($3::text IS NULL OR lease_owner = $3)",
        (struct sql_arg[]){SQL_F64(progress), SQL_TEXT(id), SQL_TEXT(node_arg(impl(s))),
                           SQL_END},
        id, err);
}

/*
 * Attached (node not NULL): the outcome is written only while the job is
 * RUNNING under this node's lease, so a run that lost its lease (and was
 * claimed again elsewhere) or was cancelled cannot overwrite the other
 * outcome: a second result is dropped, never shown.
 */
static enum sd_err record_finish(struct pg_conn *pc, const char *node, const char *id,
                                 const struct store_finish *f, struct sd_error *err)
{
    const char *status = job_status_name(f->status);
    int changed = 0;
    enum sd_err rc = run_statement(
        pc, "finish job",
        "UPDATE jobs SET status = $1, finished_ms = $2, error_code = $3,"
        " error_message = $4, audio_s = $5, run_s = $6,"
        " progress = CASE WHEN $1 = 'succeeded' THEN 1 ELSE progress END,"
        " lease_owner = NULL, lease_expires_ms = 0"
        " WHERE id = $7 AND ($8::text IS NULL OR (status = 'running' AND lease_owner = $8))",
        (struct sql_arg[]){SQL_TEXT(status), SQL_I64(f->finished_ms), SQL_TEXT(f->error_code),
                           SQL_TEXT(f->error_message), SQL_F64(f->audio_s), SQL_F64(f->run_s),
                           SQL_TEXT(id), SQL_TEXT(node), SQL_END},
        NULL, NULL, &changed, err);
    if (rc == SD_OK && changed == 0)
        rc = sd_fail(err, SD_ENOTFOUND,
                     node ? "finish job: job '%s' is no longer this node's (lease lost or cancelled)"
                          : "finish job: no job '%s'",
                     id);
    for (int i = 0; rc == SD_OK && i < f->n_results; i++) {
        const struct store_result *r = &f->results[i];
        rc = run_statement(pc, "finish job",
                           "INSERT INTO results (job_id, format, content_type, body)"
                           " VALUES ($1, $2, $3, $4) ON CONFLICT (job_id, format) DO UPDATE"
                           " SET content_type = EXCLUDED.content_type, body = EXCLUDED.body",
                           (struct sql_arg[]){SQL_TEXT(id), SQL_TEXT(r->format),
                                              SQL_TEXT(r->content_type),
                                              SQL_BLOB(r->body ? r->body : "", r->len), SQL_END},
                           NULL, NULL, NULL, err);
    }
    return rc;
}

static enum sd_err pg_job_finish(struct store *s, const char *id, const struct store_finish *f,
                                 struct sd_error *err)
{
    struct pg_store *st = impl(s);
    struct pg_conn *pc = NULL;
    enum sd_err rc = conn_take(st, &pc, err);
    if (rc != SD_OK)
        return rc;
    rc = tx_begin(pc, "finish job", err);
    if (rc == SD_OK)
        rc = tx_end(pc, record_finish(pc, node_arg(st), id, f, err), "finish job", err);
    conn_give(st, pc);
    return rc;
}

static enum sd_err pg_job_requeue(struct store *s, const char *id, struct sd_error *err)
{
    /* one statement: the NOTIFY goes out with the change (a CTE commits both at once) */
    return take_and_update_job(impl(s), "requeue job",
                               "WITH q AS (UPDATE jobs SET status = 'queued', progress = 0,"
                               " lease_owner = NULL, lease_expires_ms = 0"
                               " WHERE id = $1 AND status = 'running'"
                               " AND ($2::text IS NULL OR lease_owner = $2) RETURNING id)"
                               " SELECT pg_notify('scribed_jobs', id) FROM q",
                               (struct sql_arg[]){SQL_TEXT(id), SQL_TEXT(node_arg(impl(s))),
                                                  SQL_END},
                               id, err);
}

static enum sd_err read_status(const PGresult *r, int row, void *ctx, struct sd_error *err)
{
    (void)err;
    *(enum job_status *)ctx = col_status(r, row, 0);
    return SD_OK;
}

static enum sd_err pg_job_cancel(struct store *s, const char *id, const char *owner,
                                 int64_t now_ms, enum job_status *was, struct sd_error *err)
{
    struct pg_store *st = impl(s);
    struct pg_conn *pc = NULL;
    enum job_status cur = JOB_FAILED;
    int rows = 0;
    enum sd_err rc = conn_take(st, &pc, err);
    if (rc != SD_OK)
        return rc;
    /* FOR UPDATE: the status cannot change between the read and the write */
    rc = tx_begin(pc, "cancel job", err);
    if (rc == SD_OK)
        rc = run_statement(pc, "cancel job",
                           "SELECT status FROM jobs WHERE id = $1 AND" OWNER_IS("owner", 2)
                           " FOR UPDATE",
                           (struct sql_arg[]){SQL_TEXT(id), SQL_TEXT(owner), SQL_END},
                           read_status, &cur, &rows, err);
    if (rc == SD_OK && rows == 0)
        rc = sd_fail(err, SD_ENOTFOUND, "no job with id '%s'", id);
    if (rc == SD_OK) {
        *was = cur;
        if (!job_status_is_final(cur))
            rc = update_job(pc, "cancel job",
                            STMT_CANCEL_JOB,
                            (struct sql_arg[]){SQL_I64(now_ms), SQL_TEXT(id), SQL_END}, id, err);
    }
    rc = tx_end(pc, rc, "cancel job", err);
    conn_give(st, pc);
    return rc;
}

/* The status and upload path of one job (ctx: struct job_delete_row). */
struct job_delete_row {
    enum job_status status;
    char *upload_path;
};

static enum sd_err read_delete_row(const PGresult *r, int row, void *ctx, struct sd_error *err)
{
    struct job_delete_row *d = ctx;
    d->status = col_status(r, row, 0);
    free(d->upload_path);
    d->upload_path = dup_col(r, row, 1);
    if (!d->upload_path && !PQgetisnull(r, row, 1))
        return sd_fail(err, SD_ENOMEM, "delete job");
    return SD_OK;
}

static enum sd_err pg_job_delete(struct store *s, const char *id, const char *owner,
                                 enum job_status *was, char **upload_path, struct sd_error *err)
{
    struct pg_store *st = impl(s);
    struct pg_conn *pc = NULL;
    struct job_delete_row d = {JOB_FAILED, NULL};
    int rows = 0;
    enum sd_err rc = conn_take(st, &pc, err);
    if (rc != SD_OK)
        return rc;
    /* FOR UPDATE in one transaction: the status read is the one the delete acts on */
    rc = tx_begin(pc, "delete job", err);
    if (rc == SD_OK) {
        rc = run_statement(pc, "delete job",
                           "SELECT j.status, u.path FROM jobs j LEFT JOIN uploads u"
                           " ON u.job_id = j.id WHERE j.id = $1 AND" OWNER_IS("j.owner", 2)
                           " FOR UPDATE OF j",
                           (struct sql_arg[]){SQL_TEXT(id), SQL_TEXT(owner), SQL_END},
                           read_delete_row, &d, &rows, err);
        if (rc == SD_OK && rows == 0)
            rc = sd_fail(err, SD_ENOTFOUND, "no job with id '%s'", id);
        if (rc == SD_OK)
            *was = d.status;
        /* uploads and results go with the row (ON DELETE CASCADE) */
        if (rc == SD_OK && job_status_is_final(d.status))
            rc = run_statement(pc, "delete job", STMT_DELETE_JOB,
                               (struct sql_arg[]){SQL_TEXT(id), SQL_END}, NULL, NULL, NULL, err);
        rc = tx_end(pc, rc, "delete job", err);
    }
    conn_give(st, pc);
    if (rc == SD_OK && job_status_is_final(d.status))
        *upload_path = d.upload_path;
    else
        free(d.upload_path);
    return rc;
}

/*
 * Start-up: running jobs of a dead run go back to QUEUED (or FAILED after
 * max_attempts starts). Attached, only this node's own leases, expired or
 * not (a node restarting under the same --node-id: nothing of its can be
 * running yet, and its heartbeat would otherwise keep them alive): jobs live
 * nodes run are never touched, and other dead nodes' jobs are re-claimed by
 * job_claim once their leases expire. Not attached: expired leases only. The list
 * returned is every queued job when not attached; attached, nothing (the
 * node claims from the store).
 */
static enum sd_err pg_jobs_recover(struct store *s, int max_attempts, struct store_job **out,
                                   int *n, struct sd_error *err)
{
    struct pg_store *st = impl(s);
    struct pg_conn *pc = NULL;
    const char *node = node_arg(st);
    enum sd_err rc = conn_take(st, &pc, err);
    if (rc != SD_OK)
        return rc;
    rc = tx_begin(pc, "recover jobs", err);
    if (rc == SD_OK)
        rc = run_statement(
            pc, "recover jobs",
            "UPDATE jobs SET status = 'failed', error_code = 'internal_error',"
            " error_message = 'the service stopped during this job ' || $1::bigint"
            " || ' times; giving up', finished_ms = " NOW_MS ","
            " lease_owner = NULL, lease_expires_ms = 0"
            " WHERE status = 'running' AND attempts >= $1::bigint AND CASE WHEN $2::text IS NULL"
            " THEN lease_expires_ms < " NOW_MS " ELSE lease_owner = $2 END",
            (struct sql_arg[]){SQL_I64(max_attempts), SQL_TEXT(node), SQL_END}, NULL, NULL, NULL,
            err);
    if (rc == SD_OK)
        rc = run_statement(pc, "recover jobs",
                           "UPDATE jobs SET status = 'queued', progress = 0,"
                           " lease_owner = NULL, lease_expires_ms = 0"
                           " WHERE status = 'running' AND CASE WHEN $1::text IS NULL"
                           " THEN lease_expires_ms < " NOW_MS " ELSE lease_owner = $1 END",
                           (struct sql_arg[]){SQL_TEXT(node), SQL_END}, NULL, NULL, NULL, err);
    rc = tx_end(pc, rc, "recover jobs", err);
    if (rc == SD_OK && node) {
        *out = NULL;
        *n = 0;
    } else if (rc == SD_OK) {
        rc = collect_jobs(pc, "recover jobs",
                          "SELECT " JOB_COLUMNS " WHERE j.status = 'queued' ORDER BY j.seq", NULL,
                          0, out, n, NULL, err);
    }
    conn_give(st, pc);
    return rc;
}

struct result_row {
    char *body;
    size_t len;
    char *content_type;
};

/* body is bytea, in libpq's text (hex) form: unescaped, then NUL-terminated for text formats. */
static enum sd_err read_result(const PGresult *r, int row, void *ctx, struct sd_error *err)
{
    struct result_row *out = ctx;
    size_t n = 0;
    unsigned char *raw = PQunescapeBytea((const unsigned char *)PQgetvalue(r, row, 0), &n);
    char *b = raw ? malloc(n + 1) : NULL;
    char *ct = dup_col(r, row, 1);

    if (!b || !ct) {
        PQfreemem(raw);
        free(b);
        free(ct);
        return sd_fail(err, SD_ENOMEM, "result of %zu bytes", n);
    }
    if (n)
        memcpy(b, raw, n);
    b[n] = '\0';
    PQfreemem(raw);
    *out = (struct result_row){.body = b, .len = n, .content_type = ct};
    return SD_OK;
}

static enum sd_err pg_result_get(struct store *s, const char *id, const char *owner,
                                 const char *format, char **body, size_t *len,
                                 char **content_type, struct sd_error *err)
{
    struct pg_store *st = impl(s);
    struct pg_conn *pc = NULL;
    struct result_row r = {0};
    int rows = 0;
    enum sd_err rc = conn_take(st, &pc, err);
    if (rc != SD_OK)
        return rc;
    rc = run_statement(pc, "get result",
                       STMT_GET_RESULT,
                       (struct sql_arg[]){SQL_TEXT(id), SQL_TEXT(format), SQL_TEXT(owner),
                                          SQL_END},
                       read_result, &r, &rows, err);
    conn_give(st, pc);
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

static enum sd_err pg_callback_set(struct store *s, const char *id, enum store_cb_state cbs,
                                   int attempts, const char *error, struct sd_error *err)
{
    return take_and_update_job(
        impl(s), "callback state",
        STMT_SET_CALLBACK,
        (struct sql_arg[]){SQL_I64(cbs), SQL_I64(attempts), SQL_TEXT(error), SQL_TEXT(id),
                           SQL_END},
        id, err);
}

static enum sd_err pg_callbacks_pending(struct store *s, struct store_job **out, int *n,
                                        struct sd_error *err)
{
    struct pg_store *st = impl(s);
    struct pg_conn *pc = NULL;
    enum sd_err rc = conn_take(st, &pc, err);
    if (rc != SD_OK)
        return rc;
    rc = collect_jobs(pc, "pending callbacks",
                      "SELECT " JOB_COLUMNS " WHERE j.cb_state = $1 AND j.status IN"
                      " ('succeeded', 'failed', 'cancelled') ORDER BY j.seq",
                      (struct sql_arg[]){SQL_I64(STORE_CB_PENDING), SQL_END}, 0, out, n, NULL,
                      err);
    conn_give(st, pc);
    return rc;
}

/* ---- retention, backup, counts ---- */

static enum sd_err add_upload_path(const PGresult *r, int row, void *ctx, struct sd_error *err)
{
    struct store_purge *p = ctx;
    char **grown = realloc(p->upload_paths, (size_t)(p->n_upload_paths + 1) * sizeof(char *));
    char *path = dup_col(r, row, 0);

    if (grown)
        p->upload_paths = grown;
    if (!grown || !path) {
        free(path);
        return sd_fail(err, SD_ENOMEM, "retention");
    }
    p->upload_paths[p->n_upload_paths++] = path;
    return SD_OK;
}

/* One statement forgets the uploads and returns their paths (no second scan to race with). */
static enum sd_err purge_uploads(struct pg_conn *pc, int64_t before_ms, struct store_purge *p,
                                 struct sd_error *err)
{
    enum sd_err rc = run_statement(pc, "retention",
                         "UPDATE uploads u SET path = NULL,"
                         " deleted_ms = (extract(epoch from clock_timestamp()) * 1000)::bigint"
                         " FROM (SELECT job_id, path FROM uploads WHERE path IS NOT NULL"
                         " AND created_ms < $1 AND job_id IN (SELECT id FROM jobs WHERE status IN"
                         " ('succeeded', 'failed', 'cancelled')) FOR UPDATE) old"
                         " WHERE u.job_id = old.job_id RETURNING old.path",
                         (struct sql_arg[]){SQL_I64(before_ms), SQL_END}, add_upload_path, p,
                         NULL, err);
    /* the stored bytes of every forgotten upload (those just forgotten included) */
    if (rc == SD_OK)
        rc = exec_simple(pc, "retention",
                         "DELETE FROM upload_chunks c USING uploads u"
                         " WHERE u.job_id = c.job_id AND u.path IS NULL",
                         err);
    return rc;
}

static enum sd_err purge_results(struct pg_conn *pc, int64_t before_ms, struct store_purge *p,
                                 struct sd_error *err)
{
    enum sd_err rc = run_statement(pc, "retention",
                                   STMT_EXPIRE_RESULTS,
                                   (struct sql_arg[]){SQL_I64(before_ms), SQL_END}, NULL, NULL,
                                   &p->n_results_deleted, err);
    if (rc != SD_OK)
        return rc;
    return exec_simple(pc, "retention",
                       STMT_DELETE_EXPIRED_RESULTS,
                       err);
}

static enum sd_err pg_purge(struct store *s, int64_t uploads_before_ms, int64_t results_before_ms,
                            struct store_purge *out, struct sd_error *err)
{
    struct pg_store *st = impl(s);
    struct pg_conn *pc = NULL;
    struct store_purge p = {0};
    enum sd_err rc = conn_take(st, &pc, err);
    if (rc != SD_OK)
        return rc;
    rc = tx_begin(pc, "retention", err);
    if (rc == SD_OK) {
        rc = purge_uploads(pc, uploads_before_ms, &p, err);
        if (rc == SD_OK)
            rc = purge_results(pc, results_before_ms, &p, err);
        /* rate buckets idle a day are as good as full: a new key's bucket is the same */
        if (rc == SD_OK)
            rc = exec_simple(pc, "retention",
                             "DELETE FROM rate_buckets WHERE updated_ms < " NOW_MS " - 86400000",
                             err);
        rc = tx_end(pc, rc, "retention commit", err);
    }
    conn_give(st, pc);
    if (rc == SD_OK)
        *out = p;
    else
        store_purge_clear(&p);
    return rc;
}

static enum sd_err pg_backup(struct store *s, const char *dest_path, struct sd_error *err)
{
    (void)s;
    (void)dest_path;
    return sd_fail(err, SD_EUNSUPPORTED,
                   "backup of a PostgreSQL store: use pg_dump (docs/OPERATIONS.md)");
}

static enum sd_err pg_count(struct store *s, enum job_status js, int64_t *n, struct sd_error *err)
{
    struct pg_store *st = impl(s);
    struct pg_conn *pc = NULL;
    enum sd_err rc = conn_take(st, &pc, err);
    if (rc != SD_OK)
        return rc;
    rc = run_statement(pc, "count jobs", STMT_COUNT_JOBS,
                       (struct sql_arg[]){SQL_TEXT(job_status_name(js)), SQL_END}, read_int64, n,
                       NULL, err);
    conn_give(st, pc);
    return rc;
}

/* ---- API keys (see store/keys.c) ---- */

static void copy_text(char *dst, size_t n, const PGresult *r, int row, int col)
{
    snprintf(dst, n, "%s", PQgetisnull(r, row, col) ? "" : PQgetvalue(r, row, col));
}

static enum sd_err pg_key_insert(struct store *s, const struct store_key *k, struct sd_error *err)
{
    struct pg_store *st = impl(s);
    struct pg_conn *pc = NULL;
    const struct sql_arg row[] = {SQL_TEXT(k->id), SQL_TEXT(k->name), SQL_TEXT(k->prefix),
                                  SQL_TEXT(k->hash_hex), SQL_I64(k->created_ms),
                                  SQL_I64(k->admin ? 1 : 0), SQL_END};
    enum sd_err rc = conn_take(st, &pc, err);
    if (rc != SD_OK)
        return rc;
    rc = run_statement(pc, "insert key",
                       STMT_INSERT_KEY,
                       row, NULL, NULL, NULL, err);
    rc = reused_id_is_invalid(pc, rc, "key", k->id, err);
    conn_give(st, pc);
    return rc;
}

struct key_vec {
    struct store_key *keys;
    int len, cap;
};

static enum sd_err add_key_row(const PGresult *r, int row, void *ctx, struct sd_error *err)
{
    struct key_vec *vec = ctx;
    struct store_key *grown = grow_for_one(vec->keys, vec->len, &vec->cap, sizeof(*grown));
    if (!grown)
        return sd_fail(err, SD_ENOMEM, "list keys");
    vec->keys = grown;
    struct store_key *k = &vec->keys[vec->len++];
    memset(k, 0, sizeof(*k));
    copy_text(k->id, sizeof(k->id), r, row, 0);
    copy_text(k->name, sizeof(k->name), r, row, 1);
    copy_text(k->prefix, sizeof(k->prefix), r, row, 2);
    copy_text(k->hash_hex, sizeof(k->hash_hex), r, row, 3);
    k->created_ms = col_i64(r, row, 4);
    k->last_used_ms = col_i64(r, row, 5);
    k->revoked_ms = col_i64(r, row, 6);
    k->admin = col_i64(r, row, 7) != 0;
    return SD_OK;
}

static enum sd_err pg_key_list(struct store *s, struct store_key **out, int *n,
                               struct sd_error *err)
{
    struct pg_store *st = impl(s);
    struct pg_conn *pc = NULL;
    struct key_vec vec = {0};
    enum sd_err rc = conn_take(st, &pc, err);
    if (rc != SD_OK)
        return rc;
    rc = run_statement(pc, "list keys",
                       STMT_LIST_KEYS,
                       NULL, add_key_row, &vec, NULL, err);
    conn_give(st, pc);
    if (rc != SD_OK) {
        free(vec.keys);
        return rc;
    }
    *out = vec.keys;
    *n = vec.len;
    return SD_OK;
}

static enum sd_err key_update(struct pg_store *st, const char *sql, const char *id, int64_t ms,
                              const char *what, struct sd_error *err)
{
    struct pg_conn *pc = NULL;
    int changed = 0;
    enum sd_err rc = conn_take(st, &pc, err);
    if (rc != SD_OK)
        return rc;
    rc = run_statement(pc, what, sql, (struct sql_arg[]){SQL_I64(ms), SQL_TEXT(id), SQL_END},
                       NULL, NULL, &changed, err);
    conn_give(st, pc);
    if (rc == SD_OK && changed == 0)
        rc = sd_fail(err, SD_ENOTFOUND, "no API key with id '%s'", id);
    return rc;
}

static enum sd_err pg_key_revoke(struct store *s, const char *id, int64_t now_ms,
                                 struct sd_error *err)
{
    return key_update(impl(s),
                      STMT_REVOKE_KEY,
                      id, now_ms, "revoke key", err);
}

static enum sd_err pg_key_touch(struct store *s, const char *id, int64_t used_ms,
                                struct sd_error *err)
{
    return key_update(impl(s),
                      "UPDATE api_keys SET last_used_ms = GREATEST(last_used_ms, $1) WHERE id = $2",
                      id, used_ms, "touch key", err);
}

/* ---- shared queue (store.h) ---- */

static enum sd_err pg_queue_attach(struct store *s, const char *node_id, int lease_ms,
                                   struct sd_error *err)
{
    struct pg_store *st = impl(s);
    (void)err;
    snprintf(st->node_id, sizeof(st->node_id), "%s", node_id);
    st->lease_ms = lease_ms;
    return SD_OK;
}

static enum sd_err read_id(const PGresult *r, int row, void *ctx, struct sd_error *err)
{
    (void)err;
    snprintf(ctx, STORE_ID_MAX, "%s", PQgetvalue(r, row, 0));
    return SD_OK;
}

/*
 * Two statements, each atomic on its own: first the expired jobs that used
 * up their attempts fail, then one claimable job (the best by the queue's
 * rule: upload bytes minus 256 KiB per second waited) becomes this node's.
 */
static enum sd_err pg_job_claim(struct store *s, int max_attempts, int64_t max_bytes,
                                struct store_job *out, struct sd_error *err)
{
    struct pg_store *st = impl(s);
    struct pg_conn *pc = NULL;
    char id[STORE_ID_MAX] = "";
    int rows = 0;
    if (!st->node_id[0])
        return sd_fail(err, SD_EINVAL, "claim: the store is not attached to a node");
    enum sd_err rc = conn_take(st, &pc, err);
    if (rc != SD_OK)
        return rc;
    rc = run_statement(
        pc, "claim job",
        "UPDATE jobs SET status = 'failed', error_code = 'internal_error',"
        " error_message = 'the node running this job was lost ' || $1::bigint"
        " || ' times; giving up', finished_ms = " NOW_MS ", lease_owner = NULL,"
        " lease_expires_ms = 0"
        " WHERE status = 'running' AND lease_expires_ms < " NOW_MS " AND attempts >= $1::bigint",
        (struct sql_arg[]){SQL_I64(max_attempts), SQL_END}, NULL, NULL, NULL, err);
    if (rc == SD_OK)
        rc = run_statement(
            pc, "claim job",
            "UPDATE jobs SET status = 'running', started_ms = " NOW_MS ", progress = 0,"
            " attempts = attempts + 1, lease_owner = $1, lease_expires_ms = " NOW_MS " + $2"
            " WHERE seq = (SELECT j.seq FROM jobs j JOIN uploads u ON u.job_id = j.id"
            "  WHERE (j.status = 'queued' OR (j.status = 'running'"
            "   AND j.lease_expires_ms < " NOW_MS ")) AND u.bytes <= $3"
            "  ORDER BY u.bytes - (" NOW_MS " - j.created_ms) * 262.144, j.seq"
            "  LIMIT 1 FOR UPDATE OF j SKIP LOCKED)"
            " RETURNING id",
            (struct sql_arg[]){SQL_TEXT(st->node_id), SQL_I64(st->lease_ms), SQL_I64(max_bytes),
                               SQL_END},
            read_id, id, &rows, err);
    conn_give(st, pc);
    if (rc != SD_OK)
        return rc;
    if (rows == 0)
        return sd_fail(err, SD_ENOTFOUND, "no job to claim");
    /* the claimed job as it is, its owner included (any owner: the service runs everyone's) */
    return pg_job_get(s, id, NULL, out, err);
}

static enum sd_err pg_leases_renew(struct store *s, const char (*ids)[STORE_ID_MAX], int n_ids,
                                   int *n_renewed, struct sd_error *err)
{
    struct pg_store *st = impl(s);
    struct pg_conn *pc = NULL;
    int rows = 0;
    /* the ids as one text[] literal: they are job ids ("job_" + hex), nothing to quote */
    size_t cap = (size_t)n_ids * (STORE_ID_MAX + 1) + 3;
    char *list = malloc(cap);
    if (!list)
        return sd_fail(err, SD_ENOMEM, "renew leases");
    size_t off = 0;
    list[off++] = '{';
    for (int i = 0; i < n_ids; i++)
        off += (size_t)snprintf(list + off, cap - off, "%s%s", i ? "," : "", ids[i]);
    snprintf(list + off, cap - off, "}");
    enum sd_err rc = conn_take(st, &pc, err);
    if (rc == SD_OK) {
        rc = run_statement(pc, "renew leases",
                           "UPDATE jobs SET lease_expires_ms = " NOW_MS " + $2"
                           " WHERE lease_owner = $1 AND status = 'running' AND id = ANY($3::text[])",
                           (struct sql_arg[]){SQL_TEXT(st->node_id), SQL_I64(st->lease_ms),
                                              SQL_TEXT(list), SQL_END},
                           NULL, NULL, &rows, err);
        conn_give(st, pc);
    }
    free(list);
    if (rc == SD_OK && n_renewed)
        *n_renewed = rows;
    return rc;
}

/* True if a notification is waiting on the listen connection (consumed). Caller holds listen_mu. */
static bool take_notifications(PGconn *c)
{
    bool any = false;
    PGnotify *n;
    while ((n = PQnotifies(c)) != NULL) {
        any = true;
        PQfreemem(n);
    }
    return any;
}

static bool pg_wait_for_jobs(struct store *s, int timeout_ms)
{
    struct pg_store *st = impl(s);
    bool woken = false;
    pthread_mutex_lock(&st->listen_mu);
    if (st->listen && PQstatus(st->listen) != CONNECTION_OK) {
        PQfinish(st->listen);
        st->listen = NULL;
    }
    if (!st->listen) {
        struct sd_error ignored = {0};
        PGconn *c = NULL;
        if (connect_one(st->conninfo, &c, &ignored) == SD_OK) {
            PGresult *r = PQexec(c, "LISTEN scribed_jobs");
            if (PQresultStatus(r) == PGRES_COMMAND_OK)
                st->listen = c;
            else
                PQfinish(c);
            PQclear(r);
        }
    }
    if (st->listen)
        woken = take_notifications(st->listen);
    /* without a listen connection (the database is away) this is a plain wait: no busy loop */
    struct pollfd p[2] = {{.fd = st->wake_fd, .events = POLLIN},
                          {.fd = st->listen ? PQsocket(st->listen) : -1, .events = POLLIN}};
    if (!woken && poll(p, 2, timeout_ms) > 0) {
        uint64_t n;
        if (p[0].revents & POLLIN)
            woken = read(st->wake_fd, &n, sizeof(n)) == (ssize_t)sizeof(n);
        if ((p[1].revents & POLLIN) && PQconsumeInput(st->listen))
            woken = take_notifications(st->listen) || woken;
    }
    pthread_mutex_unlock(&st->listen_mu);
    return woken;
}

static enum sd_err pg_callback_claim(struct store *s, const char *id, int hold_ms,
                                     struct sd_error *err)
{
    struct pg_store *st = impl(s);
    return take_and_update_job(
        st, "claim webhook",
        "UPDATE jobs SET cb_owner = $1, cb_until_ms = " NOW_MS " + $2"
        " WHERE id = $3 AND cb_state = $4 AND (cb_owner IS NULL OR cb_owner = $1"
        " OR cb_until_ms < " NOW_MS ")",
        (struct sql_arg[]){SQL_TEXT(st->node_id[0] ? st->node_id : "-"), SQL_I64(hold_ms),
                           SQL_TEXT(id), SQL_I64(STORE_CB_PENDING), SQL_END},
        id, err);
}

/*
 * One statement: the claim and the list (the CTE's SELECT reads the rows as
 * before the UPDATE, which changed none of the columns it returns).
 */
static enum sd_err pg_callbacks_reclaim(struct store *s, int hold_ms, int grace_ms,
                                        struct store_job **out, int *n, struct sd_error *err)
{
    struct pg_store *st = impl(s);
    struct pg_conn *pc = NULL;
    if (!st->node_id[0])
        return SD_OK;
    enum sd_err rc = conn_take(st, &pc, err);
    if (rc != SD_OK)
        return rc;
    rc = collect_jobs(pc, "reclaim webhooks",
                      "WITH c AS (UPDATE jobs SET cb_owner = $1, cb_until_ms = " NOW_MS " + $2"
                      " WHERE cb_state = $3 AND status IN ('succeeded', 'failed', 'cancelled')"
                      " AND CASE WHEN cb_owner IS NULL THEN finished_ms < " NOW_MS " - $4"
                      " ELSE cb_until_ms < " NOW_MS " END RETURNING id)"
                      " SELECT " JOB_COLUMNS " WHERE j.id IN (SELECT id FROM c) ORDER BY j.seq",
                      (struct sql_arg[]){SQL_TEXT(st->node_id), SQL_I64(hold_ms),
                                         SQL_I64(STORE_CB_PENDING), SQL_I64(grace_ms), SQL_END},
                      0, out, n, NULL, err);
    conn_give(st, pc);
    return rc;
}

/* The job row as it is, its upload row and its results (caller holds a transaction). */
static enum sd_err import_rows(struct pg_conn *pc, const struct store_job *j,
                               const struct store_result *results, int n_results, bool *added,
                               struct sd_error *err)
{
    int rows = 0;
    enum sd_err rc = run_statement(
        pc, "import job",
        "INSERT INTO jobs (id, status, params, callback_url, progress, created_ms, started_ms,"
        " finished_ms, attempts, error_code, error_message, audio_s, run_s, cb_state,"
        " cb_attempts, results_expired, owner, callback_error) VALUES ($1, $2, $3, $4, $5, $6,"
        " $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18) ON CONFLICT (id) DO NOTHING",
        (struct sql_arg[]){SQL_TEXT(j->id), SQL_TEXT(job_status_name(j->status)),
                           SQL_TEXT(j->params_json ? j->params_json : "{}"),
                           SQL_TEXT(j->callback_url), SQL_F64(j->progress),
                           SQL_I64(j->created_ms), SQL_I64(j->started_ms),
                           SQL_I64(j->finished_ms), SQL_I64(j->attempts),
                           SQL_TEXT(j->error_code), SQL_TEXT(j->error_message),
                           SQL_F64(j->audio_s), SQL_F64(j->run_s), SQL_I64(j->cb_state),
                           SQL_I64(j->cb_attempts), SQL_I64(j->results_expired),
                           SQL_TEXT(j->owner), SQL_TEXT(j->callback_error), SQL_END},
        NULL, NULL, &rows, err);
    *added = rc == SD_OK && rows == 1;
    if (rc != SD_OK || !*added)
        return rc;
    rc = run_statement(pc, "import job",
                       STMT_INSERT_UPLOAD,
                       (struct sql_arg[]){SQL_TEXT(j->id), SQL_TEXT(j->upload_path),
                                          SQL_TEXT(j->filename), SQL_I64(j->upload_bytes),
                                          SQL_I64(j->created_ms), SQL_END},
                       NULL, NULL, NULL, err);
    /* the audio too, so the copy's workers need no access to DATA_DIR/uploads */
    if (rc == SD_OK && !job_status_is_final(j->status))
        rc = insert_upload_chunks(pc, j->id, j->upload_path, true, err);
    for (int i = 0; rc == SD_OK && i < n_results; i++)
        rc = run_statement(pc, "import job",
                           "INSERT INTO results (job_id, format, content_type, body)"
                           " VALUES ($1, $2, $3, $4)",
                           (struct sql_arg[]){SQL_TEXT(j->id), SQL_TEXT(results[i].format),
                                              SQL_TEXT(results[i].content_type),
                                              SQL_BLOB(results[i].body ? results[i].body : "",
                                                       results[i].len),
                                              SQL_END},
                           NULL, NULL, NULL, err);
    return rc;
}

static enum sd_err pg_job_import(struct store *s, const struct store_job *j,
                                 const struct store_result *results, int n_results, bool *added,
                                 struct sd_error *err)
{
    struct pg_store *st = impl(s);
    struct pg_conn *pc = NULL;
    enum sd_err rc = conn_take(st, &pc, err);
    if (rc != SD_OK)
        return rc;
    rc = tx_begin(pc, "import job", err);
    if (rc == SD_OK)
        rc = tx_end(pc, import_rows(pc, j, results, n_results, added, err), "import job", err);
    conn_give(st, pc);
    return rc;
}

/* One chunk of an upload (bytea, text form) appended to the file at ctx. */
static enum sd_err write_chunk(const PGresult *r, int row, void *ctx, struct sd_error *err)
{
    FILE *f = ctx;
    size_t n = 0;
    unsigned char *raw = PQunescapeBytea((const unsigned char *)PQgetvalue(r, row, 0), &n);
    if (!raw)
        return sd_fail(err, SD_ENOMEM, "upload chunk");
    bool ok = fwrite(raw, 1, n, f) == n;
    PQfreemem(raw);
    return ok ? SD_OK : sd_fail(err, SD_EIO, "cannot write the upload copy: %s", strerror(errno));
}

/* One query per chunk: the worker holds one chunk at a time, whatever the upload's size. */
static enum sd_err pg_upload_fetch(struct store *s, const char *id, const char *dest_path,
                                   struct sd_error *err)
{
    struct pg_store *st = impl(s);
    struct pg_conn *pc = NULL;
    int fd = open(dest_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    FILE *f = fd >= 0 ? fdopen(fd, "wb") : NULL;
    if (!f) {
        enum sd_err rc = sd_fail(err, SD_EIO, "cannot create %s: %s", dest_path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return rc;
    }
    enum sd_err rc = conn_take(st, &pc, err);
    int64_t n = 0;
    for (int rows = 1; rc == SD_OK && rows == 1; n++)
        rc = run_statement(pc, "fetch upload",
                           "SELECT data FROM upload_chunks WHERE job_id = $1 AND n = $2",
                           (struct sql_arg[]){SQL_TEXT(id), SQL_I64(n), SQL_END}, write_chunk, f,
                           &rows, err);
    if (pc)
        conn_give(st, pc);
    if (fclose(f) != 0 && rc == SD_OK)
        rc = sd_fail(err, SD_EIO, "cannot write %s: %s", dest_path, strerror(errno));
    if (rc == SD_OK && n == 1)
        rc = sd_fail(err, SD_ENOTFOUND, "job '%s' has no upload in the store", id);
    if (rc != SD_OK)
        unlink(dest_path);
    return rc;
}

static enum sd_err read_f64(const PGresult *r, int row, void *ctx, struct sd_error *err)
{
    (void)err;
    *(double *)ctx = col_f64(r, row, 0);
    return SD_OK;
}

/*
 * The bucket refilled to now (database clock) minus one token, in one
 * statement: the row lock of the upsert orders concurrent takers from every
 * node. A bucket without a whole token is left as it is (no row returned);
 * a second read says how long until it has one.
 */
static enum sd_err pg_rate_take(struct store *s, const char *key, double per_minute,
                                double burst, bool *taken, int *retry_after_s,
                                struct sd_error *err)
{
    struct pg_store *st = impl(s);
    struct pg_conn *pc = NULL;
    double per_ms = per_minute / 60000.0, tokens = 0;
    int rows = 0;
    enum sd_err rc = conn_take(st, &pc, err);
    if (rc != SD_OK)
        return rc;
#define REFILLED "LEAST($3::float8, b.tokens + (" NOW_MS " - b.updated_ms) * $2::float8)"
    rc = run_statement(pc, "rate limit",
                       "INSERT INTO rate_buckets AS b (key, tokens, updated_ms)"
                       " VALUES ($1, $3::float8 - 1, " NOW_MS ") ON CONFLICT (key) DO UPDATE"
                       " SET tokens = " REFILLED " - 1, updated_ms = " NOW_MS
                       " WHERE " REFILLED " >= 1 RETURNING b.tokens",
                       (struct sql_arg[]){SQL_TEXT(key), SQL_F64(per_ms), SQL_F64(burst),
                                          SQL_END},
                       NULL, NULL, &rows, err);
    if (rc == SD_OK && rows == 0)
        rc = run_statement(pc, "rate limit",
                           "SELECT " REFILLED " FROM rate_buckets b WHERE b.key = $1",
                           (struct sql_arg[]){SQL_TEXT(key), SQL_F64(per_ms), SQL_F64(burst),
                                              SQL_END},
                           read_f64, &tokens, NULL, err);
#undef REFILLED
    conn_give(st, pc);
    if (rc != SD_OK)
        return rc;
    *taken = rows == 1;
    if (!*taken) {
        double wait_s = (1.0 - tokens) / (per_ms * 1000.0);
        *retry_after_s = wait_s < 1 ? 1 : (int)(wait_s + 0.999);
    }
    return SD_OK;
}

static void pg_wake_waiters(struct store *s)
{
    uint64_t one = 1;
    if (write(impl(s)->wake_fd, &one, sizeof(one)) < 0)
        return; /* the counter is full: a wake-up is pending anyway */
}

static const struct store_ops postgres_ops = {
    .name = "postgres",
    .close = pg_close,
    .job_insert = pg_job_insert,
    .job_get = pg_job_get,
    .job_list = pg_job_list,
    .job_start = pg_job_start,
    .job_progress = pg_job_progress,
    .job_finish = pg_job_finish,
    .job_requeue = pg_job_requeue,
    .job_cancel = pg_job_cancel,
    .job_delete = pg_job_delete,
    .jobs_recover = pg_jobs_recover,
    .result_get = pg_result_get,
    .callback_set = pg_callback_set,
    .callbacks_pending = pg_callbacks_pending,
    .purge = pg_purge,
    .backup = pg_backup,
    .count = pg_count,
    .key_insert = pg_key_insert,
    .key_list = pg_key_list,
    .key_revoke = pg_key_revoke,
    .key_touch = pg_key_touch,
    .queue_attach = pg_queue_attach,
    .job_claim = pg_job_claim,
    .leases_renew = pg_leases_renew,
    .wait_for_jobs = pg_wait_for_jobs,
    .wake_waiters = pg_wake_waiters,
    .callback_claim = pg_callback_claim,
    .job_import = pg_job_import,
    .upload_fetch = pg_upload_fetch,
    .rate_take = pg_rate_take,
    .callbacks_reclaim = pg_callbacks_reclaim,
};

enum sd_err store_open_postgres(const char *conninfo, struct store **out, struct sd_error *err)
{
    struct pg_store *st = calloc(1, sizeof(*st));
    if (!st || !(st->conninfo = strdup(conninfo))) {
        free(st);
        return sd_fail(err, SD_ENOMEM, "store");
    }
    st->base.ops = &postgres_ops;
    pthread_mutex_init(&st->mu, NULL);
    pthread_cond_init(&st->freed, NULL);
    pthread_mutex_init(&st->listen_mu, NULL);
    st->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (st->wake_fd < 0) {
        pg_close(&st->base);
        return sd_fail(err, SD_EIO, "eventfd: %s", strerror(errno));
    }
    enum sd_err rc = migrate(st, err);
    if (rc != SD_OK) {
        pg_close(&st->base);
        return rc;
    }
    *out = &st->base;
    return SD_OK;
}

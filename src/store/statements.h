/*
 * statements.h - the SQL both stores run as it is written here, once:
 * placeholders are ?N (argument N of the statement's struct sql_arg array,
 * sql.h), which SQLite takes as they are and postgres.c turns into $N.
 * Each store keeps only what is its own around a statement: transactions,
 * locking, its row readers and error mapping. A statement whose SQL must
 * differ (PostgreSQL's casts and clock, SQLite's functions) stays in its
 * store. Internal to store/; plain string literals, no state.
 */
#ifndef SD_STORE_STATEMENTS_H
#define SD_STORE_STATEMENTS_H

/*
 * A job row, its columns grouped the way each store's read_job takes them:
 * id, owner and status, 64-bit integers, small integers, reals, then the
 * strings the job owns.
 */
#define JOB_COLUMNS                                                                        \
    "j.id, j.owner, j.status, j.seq, j.created_ms, j.started_ms, j.finished_ms, u.bytes," \
    " j.attempts, j.cb_state, j.cb_attempts, j.results_expired, j.progress, j.audio_s,"    \
    " j.run_s, j.params, j.callback_url, j.error_code, j.error_message, u.path, u.filename," \
    " j.callback_error"                                                                    \
    " FROM jobs j LEFT JOIN uploads u ON u.job_id = j.id"

/*
 * The owner filter every client-facing query carries (store.h "Tenants"):
 * argument n NULL (any owner) or the row's owner. The CAST gives PostgreSQL
 * the parameter's type; SQLite reads it the same.
 */
#define OWNER_IS(col, n) " (CAST(?" #n " AS TEXT) IS NULL OR " col " = ?" #n ")"

/* one job of an owner (or of anyone) */
#define STMT_GET_JOB "SELECT " JOB_COLUMNS " WHERE j.id = ?1 AND" OWNER_IS("j.owner", 2)

/* is id one of owner's jobs (a list cursor must be) */
#define STMT_OWNER_HAS_JOB "SELECT 1 FROM jobs WHERE id = ?1 AND" OWNER_IS("owner", 2)

/* one rendered result of an owner's job */
#define STMT_GET_RESULT                                                        \
    "SELECT r.body, r.content_type FROM results r JOIN jobs j ON j.id = r.job_id" \
    " WHERE r.job_id = ?1 AND r.format = ?2 AND" OWNER_IS("j.owner", 3)

/* a new job row (QUEUED) */
#define STMT_INSERT_JOB                                                              \
    "INSERT INTO jobs (id, owner, status, params, callback_url, created_ms, cb_state)" \
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"

/* its upload metadata */
#define STMT_INSERT_UPLOAD                                           \
    "INSERT INTO uploads (job_id, path, filename, bytes, created_ms)" \
    " VALUES (?1, ?2, ?3, ?4, ?5)"

/* QUEUED -> RUNNING (the in-memory queue took it) */
#define STMT_START_JOB                                                   \
    "UPDATE jobs SET status = 'running', started_ms = ?1, progress = 0," \
    " attempts = attempts + 1 WHERE id = ?2 AND status = 'queued'"

/* a job not final yet -> CANCELLED (caller read its status under a lock) */
#define STMT_CANCEL_JOB                                                       \
    "UPDATE jobs SET status = 'cancelled', finished_ms = ?1,"                 \
    " error_code = 'cancelled', error_message = 'cancelled by the client'" \
    " WHERE id = ?2"

/* a final job (PostgreSQL: its upload, chunks and results go with it, ON DELETE CASCADE) */
#define STMT_DELETE_JOB "DELETE FROM jobs WHERE id = ?1"

/* the webhook state after an attempt */
#define STMT_SET_CALLBACK \
    "UPDATE jobs SET cb_state = ?1, cb_attempts = ?2, callback_error = ?3 WHERE id = ?4"

/* retention: the jobs whose results go ... */
#define STMT_EXPIRE_RESULTS                                               \
    "UPDATE jobs SET results_expired = 1 WHERE results_expired = 0" \
    " AND finished_ms > 0 AND finished_ms < ?1"

/* ... and the results themselves */
#define STMT_DELETE_EXPIRED_RESULTS \
    "DELETE FROM results WHERE job_id IN (SELECT id FROM jobs WHERE results_expired = 1)"

/* jobs in one status */
#define STMT_COUNT_JOBS "SELECT COUNT(*) FROM jobs WHERE status = ?1"

/* a new API key (its hash, never the key) */
#define STMT_INSERT_KEY                                                     \
    "INSERT INTO api_keys (id, name, prefix, hash, created_ms, admin)" \
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6)"

/* every key, oldest first */
#define STMT_LIST_KEYS                                                      \
    "SELECT id, name, prefix, hash, created_ms, last_used_ms, revoked_ms," \
    " admin FROM api_keys ORDER BY created_ms, id"

/* a second revoke keeps the first time */
#define STMT_REVOKE_KEY                                                       \
    "UPDATE api_keys SET revoked_ms = CASE WHEN revoked_ms = 0 THEN ?1" \
    " ELSE revoked_ms END WHERE id = ?2"

#endif

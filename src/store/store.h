/*
 * store.h - the one storage interface of the service: jobs, their results
 * (one rendered body per response format) and upload metadata.
 *
 * A store is a table of operations (struct store_ops) behind a handle, so a
 * PostgreSQL implementation can slot in beside store/sqlite.c without the
 * callers (jobs/, server/, cli/backup.c) changing. The store knows nothing of
 * HTTP or transcription: request parameters travel as an opaque JSON string.
 * Thread safety: every call may be made from any thread; implementations
 * serialise internally. Times are milliseconds since the Unix epoch.
 *
 * Tenants: every job has an owner. The calls a client reaches (get, list,
 * cancel, result) take an owner filter: NULL matches every owner (an admin,
 * or the service itself); a string matches only jobs of that owner, and a
 * job of another owner answers exactly as a missing one (SD_ENOTFOUND, same
 * message), so an id never tells a caller that someone else's job exists.
 * Implementations apply the filter inside the query of each operation.
 */
#ifndef SD_STORE_STORE_H
#define SD_STORE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

enum job_status { JOB_QUEUED, JOB_RUNNING, JOB_SUCCEEDED, JOB_FAILED, JOB_CANCELLED };

/* Webhook delivery state of a job with a callback_url. */
enum store_cb_state { STORE_CB_NONE, STORE_CB_PENDING, STORE_CB_DELIVERED, STORE_CB_FAILED };

const char *job_status_name(enum job_status s);
/* "queued" ... -> status; false if unknown. */
bool job_status_parse(const char *name, enum job_status *out);
bool job_status_is_final(enum job_status s);

#define STORE_ID_MAX 48
/* an owner: an auth principal (server/auth.h AUTH_PRINCIPAL_MAX) */
#define STORE_OWNER_MAX 64

/* One job row. Strings are owned by the struct: store_job_clear() frees them. */
struct store_job {
    char id[STORE_ID_MAX];
    char owner[STORE_OWNER_MAX]; /* the tenant: who created it ("" with auth off) */
    int64_t seq;              /* insertion order, assigned by the store */
    enum job_status status;
    char *params_json;        /* request fields, opaque to the store */
    char *upload_path;        /* NULL once retention deleted the upload */
    char *filename;           /* as the client sent it */
    int64_t upload_bytes;
    char *callback_url;       /* NULL: none */
    double progress;          /* 0..1 */
    int64_t created_ms, started_ms, finished_ms; /* 0: not yet */
    int attempts;             /* times a worker started it */
    char *error_code;         /* sd_err_name() of the failure, or NULL */
    char *error_message;
    double audio_s;           /* decoded audio duration */
    double run_s;             /* wall time of the successful run */
    enum store_cb_state cb_state;
    int cb_attempts;
    char *callback_error;     /* why the last webhook delivery failed, or NULL */
    bool results_expired;     /* retention removed the results */
};

void store_job_clear(struct store_job *j);
void store_jobs_free(struct store_job *jobs, int n);

/* A rendered result body (borrowed strings when passed in). */
struct store_result {
    const char *format;       /* "json", "text", "srt", "vtt", "verbose_json" */
    const char *content_type;
    const char *body;
    size_t len;
};

/* What a finished run records, atomically with its results. */
struct store_finish {
    enum job_status status;   /* SUCCEEDED, FAILED or CANCELLED */
    int64_t finished_ms;
    const char *error_code;   /* NULL on success */
    const char *error_message;
    double audio_s, run_s;
    const struct store_result *results;
    int n_results;
};

/* Retention outcome: upload files to unlink (owned: free each and the array). */
struct store_purge {
    char **upload_paths;
    int n_upload_paths;
    int n_results_deleted;    /* jobs whose results were removed */
};

/*
 * An API key as stored: never the key itself, only its SHA-256 (hex) and a
 * short non-secret prefix so people can recognise it in `scribed keys list`.
 */
struct store_key {
    char id[STORE_ID_MAX];    /* "key_..." (public: logged, used to revoke) */
    char name[64];            /* label given at creation */
    char prefix[24];          /* first characters of the key */
    char hash_hex[65];        /* SHA-256 of the whole key, lowercase hex */
    int64_t created_ms;
    int64_t last_used_ms;     /* 0: never (updated lazily, seconds late) */
    int64_t revoked_ms;       /* 0: active */
    bool admin;               /* sees and acts on every tenant's jobs */
};

struct store;

struct store_ops {
    const char *name;
    void (*close)(struct store *s);
    enum sd_err (*job_insert)(struct store *s, const struct store_job *j, struct sd_error *err);
    enum sd_err (*job_get)(struct store *s, const char *id, const char *owner,
                           struct store_job *out, struct sd_error *err);
    enum sd_err (*job_list)(struct store *s, const char *owner, const char *after_id, int limit,
                            int status_filter, struct store_job **out, int *n, bool *has_more,
                            struct sd_error *err);
    enum sd_err (*job_start)(struct store *s, const char *id, int64_t now_ms, struct sd_error *err);
    enum sd_err (*job_progress)(struct store *s, const char *id, double progress,
                                struct sd_error *err);
    enum sd_err (*job_finish)(struct store *s, const char *id, const struct store_finish *f,
                              struct sd_error *err);
    enum sd_err (*job_requeue)(struct store *s, const char *id, struct sd_error *err);
    enum sd_err (*job_cancel)(struct store *s, const char *id, const char *owner, int64_t now_ms,
                              enum job_status *was, struct sd_error *err);
    enum sd_err (*job_delete)(struct store *s, const char *id, const char *owner,
                              enum job_status *was, char **upload_path, struct sd_error *err);
    enum sd_err (*jobs_recover)(struct store *s, int max_attempts, struct store_job **out, int *n,
                                struct sd_error *err);
    enum sd_err (*result_get)(struct store *s, const char *id, const char *owner,
                              const char *format, char **body, size_t *len, char **content_type,
                              struct sd_error *err);
    enum sd_err (*callback_set)(struct store *s, const char *id, enum store_cb_state st,
                                int attempts, const char *error, struct sd_error *err);
    enum sd_err (*callbacks_pending)(struct store *s, struct store_job **out, int *n,
                                     struct sd_error *err);
    enum sd_err (*purge)(struct store *s, int64_t uploads_before_ms, int64_t results_before_ms,
                         struct store_purge *out, struct sd_error *err);
    enum sd_err (*backup)(struct store *s, const char *dest_path, struct sd_error *err);
    enum sd_err (*count)(struct store *s, enum job_status st, int64_t *n, struct sd_error *err);
    /* API keys (store/keys.c documents them); NULL in a store without keys */
    enum sd_err (*key_insert)(struct store *s, const struct store_key *k, struct sd_error *err);
    enum sd_err (*key_list)(struct store *s, struct store_key **out, int *n,
                            struct sd_error *err);
    enum sd_err (*key_revoke)(struct store *s, const char *id, int64_t now_ms,
                              struct sd_error *err);
    enum sd_err (*key_touch)(struct store *s, const char *id, int64_t used_ms,
                             struct sd_error *err);
    /* the shared queue (see "Shared queue" below); NULL in a store without it (SQLite) */
    enum sd_err (*queue_attach)(struct store *s, const char *node_id, int lease_ms,
                                struct sd_error *err);
    enum sd_err (*job_claim)(struct store *s, int max_attempts, int64_t max_bytes,
                             struct store_job *out, struct sd_error *err);
    enum sd_err (*leases_renew)(struct store *s, const char (*ids)[STORE_ID_MAX], int n_ids,
                                int *n_renewed, struct sd_error *err);
    bool (*wait_for_jobs)(struct store *s, int timeout_ms);
    void (*wake_waiters)(struct store *s);
    enum sd_err (*callback_claim)(struct store *s, const char *id, int hold_ms,
                                  struct sd_error *err);
    enum sd_err (*job_import)(struct store *s, const struct store_job *j,
                              const struct store_result *results, int n_results, bool *added,
                              struct sd_error *err);
    /* uploads kept in the store (see "Uploads in the store"); NULL: files only (SQLite) */
    enum sd_err (*upload_fetch)(struct store *s, const char *id, const char *dest_path,
                                struct sd_error *err);
    /* cluster-wide rate limits (see "Shared rate limits"); NULL: limits stay per process */
    enum sd_err (*rate_take)(struct store *s, const char *key, double per_minute, double burst,
                             bool *taken, int *retry_after_s, struct sd_error *err);
    enum sd_err (*callbacks_reclaim)(struct store *s, int hold_ms, int grace_ms,
                                     struct store_job **out, int *n, struct sd_error *err);
};

struct store {
    const struct store_ops *ops;
};

/*
 * Opens (creating and migrating) the store a URL names: "postgres://...",
 * "postgresql://..." or a libpq "key=value ..." string -> PostgreSQL
 * (store_open_postgres); "sqlite://PATH" or a plain path -> SQLite.
 * On SD_OK the caller owns *out: store_close().
 */
enum sd_err store_open(const char *url, struct store **out, struct sd_error *err);
/* True if url names a PostgreSQL database (the rules of store_open). */
bool store_url_is_postgres(const char *url);
/*
 * Opens (creating and migrating) the SQLite store at db_path in WAL mode.
 * On SD_OK the caller owns *out: store_close().
 */
enum sd_err store_open_sqlite(const char *db_path, struct store **out, struct sd_error *err);
/*
 * Opens the PostgreSQL store at conninfo (URL or key=value; connect_timeout
 * 5 s unless it says otherwise) and brings its schema up to date under an
 * advisory lock (several nodes may start at once). A schema newer than this
 * build, a refused login or an unreachable server fail with one line that
 * never repeats the password. Connections: a pool of 4, opened on demand and
 * reopened after PostgreSQL restarts (see postgres.c).
 */
enum sd_err store_open_postgres(const char *conninfo, struct store **out, struct sd_error *err);
/* Copies the database at src_path over dest_path (used by `scribed restore`; service stopped). */
enum sd_err store_restore_sqlite(const char *src_path, const char *dest_path, struct sd_error *err);
void store_close(struct store *s);

/*
 * Inserts a new job (status QUEUED, seq assigned, owned by j->owner) and its
 * upload metadata. A store that keeps uploads (store_keeps_uploads) also
 * copies the file at j->upload_path into itself, in the same transaction.
 */
enum sd_err store_job_insert(struct store *s, const struct store_job *j, struct sd_error *err);
/*
 * SD_ENOTFOUND if unknown (or not owner's: see "Tenants"). On SD_OK the
 * caller owns *out: store_job_clear().
 */
enum sd_err store_job_get(struct store *s, const char *id, const char *owner,
                          struct store_job *out, struct sd_error *err);
/*
 * owner's jobs (NULL: everyone's), newest first; after_id (or NULL) is the
 * cursor: jobs older than it, itself one of owner's jobs (else SD_EINVAL).
 * status_filter: -1 for all, else an enum job_status. limit 1..1000.
 * On SD_OK the caller owns *out: store_jobs_free(*out, *n).
 */
enum sd_err store_job_list(struct store *s, const char *owner, const char *after_id, int limit,
                           int status_filter, struct store_job **out, int *n, bool *has_more,
                           struct sd_error *err);
/* QUEUED -> RUNNING, attempts + 1, started_ms = now_ms. */
enum sd_err store_job_start(struct store *s, const char *id, int64_t now_ms, struct sd_error *err);
enum sd_err store_job_progress(struct store *s, const char *id, double progress,
                               struct sd_error *err);
/* Records the outcome and the results in one transaction. */
enum sd_err store_job_finish(struct store *s, const char *id, const struct store_finish *f,
                             struct sd_error *err);
/* RUNNING -> QUEUED (a drained or interrupted run; the attempt stays counted). */
enum sd_err store_job_requeue(struct store *s, const char *id, struct sd_error *err);
/*
 * QUEUED or RUNNING -> CANCELLED; *was receives the status before. A job
 * already final is left alone (*was tells which); SD_ENOTFOUND if unknown
 * or not owner's (NULL: any owner).
 */
enum sd_err store_job_cancel(struct store *s, const char *id, const char *owner, int64_t now_ms,
                             enum job_status *was, struct sd_error *err);
/*
 * Deletes a final job: its row, upload metadata and results, in one
 * transaction. *upload_path receives the upload file's path for the caller
 * to unlink (NULL when retention already forgot it; caller frees). A job not
 * final is left alone (*was tells which; *upload_path NULL). SD_ENOTFOUND if
 * unknown or not owner's (NULL: any owner).
 */
enum sd_err store_job_delete(struct store *s, const char *id, const char *owner,
                             enum job_status *was, char **upload_path, struct sd_error *err);
/*
 * At start-up: every RUNNING job (the process died under it) goes back to
 * QUEUED, or to FAILED once it has been started max_attempts times. Returns
 * all QUEUED jobs, oldest first (caller owns: store_jobs_free).
 */
enum sd_err store_jobs_recover(struct store *s, int max_attempts, struct store_job **out, int *n,
                               struct sd_error *err);
/*
 * One rendered result of a job of owner (NULL: any owner). SD_ENOTFOUND if
 * absent. Caller owns *body and *content_type (free).
 */
enum sd_err store_result_get(struct store *s, const char *id, const char *owner,
                             const char *format, char **body, size_t *len, char **content_type,
                             struct sd_error *err);
/* error: why the last delivery failed (NULL once one succeeded); kept on the job. */
enum sd_err store_callback_set(struct store *s, const char *id, enum store_cb_state st,
                               int attempts, const char *error, struct sd_error *err);
/* Final jobs whose webhook is still PENDING (caller owns: store_jobs_free). */
enum sd_err store_callbacks_pending(struct store *s, struct store_job **out, int *n,
                                    struct sd_error *err);
/*
 * Retention: forgets the uploads of final jobs created before uploads_before_ms
 * (returning their paths for the caller to unlink) and deletes the results of
 * jobs finished before results_before_ms. Caller frees with store_purge_clear().
 */
enum sd_err store_purge(struct store *s, int64_t uploads_before_ms, int64_t results_before_ms,
                        struct store_purge *out, struct sd_error *err);
void store_purge_clear(struct store_purge *p);
/* A consistent online copy of the whole store into dest_path (overwritten). */
enum sd_err store_backup(struct store *s, const char *dest_path, struct sd_error *err);
enum sd_err store_count(struct store *s, enum job_status st, int64_t *n, struct sd_error *err);

/* API keys (store/keys.c). SD_EUNSUPPORTED from a store without them. */
/* Inserts a new key row; SD_EINVAL if the id or hash already exists. */
enum sd_err store_key_insert(struct store *s, const struct store_key *k, struct sd_error *err);
/* Every key row, revoked ones too, oldest first. Caller owns *out: free(). */
enum sd_err store_key_list(struct store *s, struct store_key **out, int *n, struct sd_error *err);
/* Marks a key revoked at now_ms (a second revoke keeps the first time); SD_ENOTFOUND if unknown. */
enum sd_err store_key_revoke(struct store *s, const char *id, int64_t now_ms,
                             struct sd_error *err);
/* Records that the key was used at used_ms (only ever moves forward). */
enum sd_err store_key_touch(struct store *s, const char *id, int64_t used_ms,
                            struct sd_error *err);

/*
 * Shared queue (PostgreSQL): several processes take jobs from the store
 * itself. A job is claimed by one node under a lease (owner node id +
 * expiry, by the database's clock) that the node renews while it runs the
 * job; a lease left to expire (the node died or lost the database) lets any
 * node claim the job again, until it has been started max_attempts times.
 * Once attached, the store acts for that node: finish, progress and requeue
 * of a running job only apply while this node holds its lease (a late result
 * from a node that lost it is dropped: SD_ENOTFOUND), and recovery at
 * start-up touches only this node's expired leases.
 */
/* True if the store can be the queue (store_queue_attach and the rest work). */
bool store_has_shared_queue(const struct store *s);
/* Names this process (unique among live nodes) and the lease length. Call once, before use. */
enum sd_err store_queue_attach(struct store *s, const char *node_id, int lease_ms,
                               struct sd_error *err);
/*
 * Claims the best claimable job: QUEUED, or RUNNING with an expired lease;
 * jobs with an expired lease already started max_attempts times fail
 * instead. Best: smallest upload minus an age credit (the in-memory queue's
 * rule), only uploads up to max_bytes. SKIP LOCKED: concurrent claimers
 * never wait for each other nor take the same job. On SD_OK the job is
 * RUNNING under this node's lease (attempts + 1) and the caller owns *out
 * (store_job_clear); SD_ENOTFOUND when nothing is claimable.
 */
enum sd_err store_job_claim(struct store *s, int max_attempts, int64_t max_bytes,
                            struct store_job *out, struct sd_error *err);
/*
 * The heartbeat: extends this node's leases of the jobs ids (those it still
 * runs) by the lease length. A job this node holds but no longer runs (its
 * outcome could not be written) is left to expire, so it runs again elsewhere.
 */
enum sd_err store_leases_renew(struct store *s, const char (*ids)[STORE_ID_MAX], int n_ids,
                               int *n_renewed, struct sd_error *err);
/*
 * Blocks up to timeout_ms for a sign that there is work (a job was queued or
 * re-queued by any node: LISTEN/NOTIFY). True if woken early. Callers claim
 * after it either way (the timeout is the slow poll that finds expired leases).
 */
bool store_wait_for_jobs(struct store *s, int timeout_ms);
/* Makes a store_wait_for_jobs in progress (or the next one) return now: shutting down. */
void store_wake_waiters(struct store *s);
/*
 * Webhooks once per job across nodes: takes the pending delivery of job id
 * for this node for hold_ms (renewed by claiming again). SD_ENOTFOUND when
 * another node holds it or it is not pending. SD_OK always in a store that
 * is not shared (one node delivers everything).
 */
enum sd_err store_callback_claim(struct store *s, const char *id, int hold_ms,
                                 struct sd_error *err);
/*
 * Webhooks of lost nodes: claims for this node (as store_callback_claim,
 * for hold_ms) every PENDING delivery of a final job whose holder's claim
 * expired, or that no node claimed grace_ms after the job finished (the
 * node that ran it died first), and returns those jobs (caller owns:
 * store_jobs_free). Run now and then by every live node, so a delivery
 * moves without waiting for a restart. SD_OK with none in a store that is
 * not shared.
 */
enum sd_err store_callbacks_reclaim(struct store *s, int hold_ms, int grace_ms,
                                    struct store_job **out, int *n, struct sd_error *err);
/*
 * `scribed store copy`: writes job j as it is (status, times, attempts,
 * webhook state, upload metadata) with its results, in one transaction; a
 * job not final also brings its upload file's bytes (store_keeps_uploads),
 * when the file is still there. A
 * job whose id exists is left alone (*added false), so a copy can be re-run.
 * SD_EUNSUPPORTED from a store that cannot be a copy's destination (SQLite).
 */
enum sd_err store_job_import(struct store *s, const struct store_job *j,
                             const struct store_result *results, int n_results, bool *added,
                             struct sd_error *err);

/*
 * Uploads in the store (PostgreSQL): so that a worker on another machine,
 * with no filesystem shared with the API node, can read a job's audio, the
 * insert copies the upload file into the database in chunks of
 * STORE_UPLOAD_CHUNK bytes (never the whole file in memory), and a worker
 * streams it back into a local file of its own. The chunks go with the job
 * (store_job_delete) and with its upload (store_purge). SQLite keeps the
 * file where it is: the path in the row is the audio.
 */
#define STORE_UPLOAD_CHUNK (1024 * 1024)
/* True if job inserts copy the upload into the store (the file may go after the insert). */
bool store_keeps_uploads(const struct store *s);
/*
 * Writes job id's stored upload to dest_path (created or truncated, mode
 * 0600), one chunk at a time. SD_ENOTFOUND when the store holds no bytes for
 * the job (a job from before uploads were kept, or a store that keeps none):
 * its upload_path is then the audio.
 */
enum sd_err store_upload_fetch(struct store *s, const char *id, const char *dest_path,
                               struct sd_error *err);

/*
 * Shared rate limits (PostgreSQL): one token bucket row per key, refilled by
 * the database's clock and taken from in one atomic statement, so a key's
 * limit holds across every API node (not the limit times the nodes). SQLite
 * (one node) keeps the in-memory buckets of server/ratelimit.h.
 */
/* True if store_rate_take works (a bucket shared by every node of the store). */
bool store_has_shared_rate_limits(const struct store *s);
/*
 * Takes one token from key's bucket (per_minute tokens refill continuously
 * up to burst; a new key starts full). *taken false: none left, and
 * *retry_after_s (>= 1) says when one will be. SD_EUNSUPPORTED from a store
 * without shared buckets; a database error leaves the caller to decide.
 */
enum sd_err store_rate_take(struct store *s, const char *key, double per_minute, double burst,
                            bool *taken, int *retry_after_s, struct sd_error *err);

#endif

/*
 * service.h - the job system as one object: store-backed async jobs and
 * in-memory sync jobs on one queue, N worker threads sharing one pipeline,
 * webhook delivery and retention. server/ talks to this; it owns nothing
 * HTTP-specific.
 *
 * Start-up recovers the store (jobs running at a crash go back to queued)
 * before any worker runs; jobs_stop drains within a bound.
 * With a store that is a shared queue (PostgreSQL), async jobs are not
 * pushed here but claimed from the store by cluster.c under a lease, so any
 * node's workers may run them; sync jobs stay on the node that took them.
 * Thread-safe after jobs_start returns.
 */
#ifndef SD_JOBS_SERVICE_H
#define SD_JOBS_SERVICE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "jobs/job.h"
#include "jobs/queue.h"
#include "jobs/reserve.h"
#include "jobs/speech_cache.h"
#include "jobs/synth.h"
#include "llm/llm.h"
#include "pipeline/pipeline.h"
#include "store/store.h"
#include "telemetry/log.h"
#include "telemetry/metrics.h"

struct jobs_opts {
    const char *data_dir;
    int n_workers;
    int max_pending;
    int64_t long_job_bytes;
    int max_attempts;             /* runs interrupted by crashes before a job fails */
    int callback_max_attempts;
    int callback_backoff_ms;      /* first retry delay; doubles each time */
    int callback_timeout_ms;
    bool callback_allow_private;  /* else only public addresses (no SSRF into the network) */
    int callback_concurrency;     /* webhook deliveries at once (threads) */
    int callback_per_host;        /* ... of which at most this many to one host */
    const char *callback_secret;  /* "" or NULL: unsigned; else HMAC-signed (callback.c) */
    int upload_retention_days;
    int result_retention_days;
    int retention_interval_s;
    int sweep_interval_s;         /* how often jobs running without a live worker are looked for */
    int64_t disk_reserve_bytes;   /* held back in data_dir for writing a job's failure (reserve.h) */
    double stuck_after_s;         /* a decoder silent this long makes its worker "stuck" */
    int speech_slots;             /* syntheses at once (synth.h); 0: half the workers, >= 1 */
    int64_t speech_cache_bytes;   /* DATA/speech-cache cap (speech_cache.h); 0: no cache */
    int speech_cache_ttl_s;
    const char *node_id;          /* shared queue: this process among the nodes */
    int lease_ms;                 /* shared queue: a lease not renewed for this long expires */
    struct pipeline_opts pipeline; /* loaded in the background */
    /* structured extraction after transcription (both borrowed; llm NULL: none) */
    struct llm_client *llm;
    const struct llm_templates *templates;
};

struct callbacks;
struct sd_periodic;
struct cluster;

struct jobs {
    struct jobs_opts o;
    struct store *store;          /* borrowed */
    struct sd_log *log;           /* borrowed */
    struct metrics *metrics;      /* borrowed */
    struct pipeline *pipeline;
    struct job_queue *q;
    struct synth_slots *synth;    /* speech synthesis's share (synth.h) */
    struct speech_cache *speech_cache; /* NULL when off */
    pthread_t *threads;
    int n_threads;
    volatile bool stop;           /* workers waiting for the model give up */
    struct callbacks *cb;
    struct sd_periodic *ret;       /* retention.c */
    struct sd_periodic *sweep;     /* sweep.c; NULL with a shared queue */
    struct reserve *reserve;      /* NULL with a shared queue or no reserve */
    atomic_int n_stuck;           /* workers whose decoder is silent past stuck_after_s now */
    atomic_ullong n_stalls;       /* times a worker became stuck (a counter for /metrics) */
    atomic_bool ready_logged;     /* the first worker to see the model loaded logs model.ready */
    struct cluster *cluster;      /* NULL unless the store is a shared queue */
};

/* Loads nothing synchronously (the pipeline loads in the background). Caller owns: jobs_stop(). */
enum sd_err jobs_start(const struct jobs_opts *o, struct store *st, struct sd_log *log,
                       struct metrics *m, struct jobs **out, struct sd_error *err);
/* Stops claiming; waits for running jobs, then re-queues the rest. Returns jobs left running. */
int jobs_drain(struct jobs *js, int timeout_ms);
/*
 * After a drain that timed out: puts the still-running async jobs back to
 * QUEUED in the store so the next start runs them. The caller then exits
 * without freeing (workers still use the pipeline). Returns jobs re-queued.
 */
int jobs_abandon(struct jobs *js);
/* Drains (see jobq_drain), stops every thread and frees. */
void jobs_stop(struct jobs *js, int drain_timeout_ms);

/*
 * Records an async job of owner (the caller's principal; "" with auth off)
 * whose upload is already in place at upload_path, named by id, and queues
 * it. SD_EBUSY when the queue is full: nothing is recorded.
 */
enum sd_err jobs_submit_async(struct jobs *js, const char *id, const char *owner,
                              const struct stt_params *p,
                              const char *upload_path, int64_t bytes, const char *filename,
                              const char *callback_url, struct sd_error *err);
/* Queues a sync job; on SD_OK the caller holds a reference: jobq_release(js->q, *out). */
enum sd_err jobs_submit_sync(struct jobs *js, const char *id, const struct stt_params *p,
                             const char *upload_path, int64_t bytes, struct job **out,
                             struct sd_error *err);
/* The same for 16 kHz mono PCM in memory (copied): a live stream's utterance. */
enum sd_err jobs_submit_pcm(struct jobs *js, const char *id, const struct stt_params *p,
                            const float *pcm, size_t n, struct job **out, struct sd_error *err);
/*
 * DELETE: cancels a queued or running job of owner (NULL: anyone's); *was =
 * status before. SD_ENOTFOUND if unknown or another owner's.
 */
enum sd_err jobs_cancel(struct jobs *js, const char *id, const char *owner, enum job_status *was,
                        struct sd_error *err);

/*
 * DELETE of a final job (privacy): its upload file, results and row are
 * removed; later reads are SD_ENOTFOUND. A job not final is left alone
 * (*was tells which: cancel it first). SD_ENOTFOUND if unknown or another
 * owner's (owner NULL: anyone's).
 */
enum sd_err jobs_delete(struct jobs *js, const char *id, const char *owner,
                        enum job_status *was, struct sd_error *err);

/*
 * Puts a job read from the store (status QUEUED) on this process's queue;
 * a job that cannot be (its parameters do not parse, no memory) is marked
 * failed in the store instead. Returns whether it was queued.
 */
bool jobs_queue_stored(struct jobs *js, const struct store_job *sj);

/* worker.c */
void *jobs_worker_main(void *arg);
/* Workers stuck now (their decoder silent past stuck_after_s), and how often that began. */
int jobs_stuck_workers(struct jobs *js);
uint64_t jobs_stalls_total(struct jobs *js);
/*
 * Renders t in every response format and records it as the job's results;
 * extraction (or NULL) is stored beside them as the result "extraction" and
 * under the key "extraction" of verbose_json.
 */
enum sd_err jobs_record_success(struct jobs *js, const char *id, const struct transcript *t,
                                const json_t *extraction, double audio_s, double run_s,
                                struct sd_error *err);

/* verbose_json with the extraction record under "extraction" (malloc'd; NULL on ENOMEM). */
char *jobs_verbose_with_extraction(const char *verbose_json, const json_t *extraction);

/* extract.c: the extraction step of a job (see llm.h) */
/* True if p asks for an extraction (a template or an inline schema). */
bool jobs_wants_extraction(const struct stt_params *p);
/*
 * Runs the extraction p asks for on text; returns its record (see
 * llm_extract; a failed one is a record with status "failed", never an
 * error), records metrics and logs the outcome (never the text). NULL only
 * when p asks for none or memory ran out. cancel (may be NULL) cuts the
 * LLM's part short (the record then says "cancelled").
 */
json_t *jobs_extract(struct jobs *js, const char *id, const struct stt_params *p,
                     const char *text, const atomic_bool *cancel);

/*
 * callback.c: webhook delivery (libcurl) on several threads, a cap per
 * destination host, retries with exponential backoff, HMAC signatures
 */
enum sd_err callbacks_start(struct jobs *js, struct callbacks **out, struct sd_error *err);
void callbacks_push(struct callbacks *cb, const char *id, const char *url, int attempts_done);
void callbacks_stop(struct callbacks *cb);
/*
 * Shared store: takes over the pending webhooks of nodes that died holding
 * them (store_callbacks_reclaim) and queues them here. cluster.c runs it
 * about once a lease; a no-op on a store that is not shared.
 */
void callbacks_reclaim(struct callbacks *cb);
/*
 * At submission: SD_EINVAL (the message names the setting that allows it)
 * when the URL's host is an address that is not public (loopback, private,
 * link-local: an IP literal or localhost) and private targets are not
 * allowed. Names are checked again after DNS at every delivery.
 */
enum sd_err callbacks_check_url(const struct jobs *js, const char *url, struct sd_error *err);

/* cluster.c: the shared queue's feeder (claims for free workers) and lease heartbeat */
enum sd_err cluster_start(struct jobs *js, struct cluster **out, struct sd_error *err);
/* Stops claiming (before a drain); the heartbeat keeps the running jobs' leases. */
void cluster_stop_feeder(struct cluster *c);
void cluster_stop(struct cluster *c);

/* retention.c: periodic deletion of old uploads and results */
/* Runs retention_run_once at once and then every retention_interval_s; sd_periodic_stop ends it. */
enum sd_err retention_start(struct jobs *js, struct sd_periodic **out, struct sd_error *err);
/* One pass now (also used by tests); returns files deleted. */
int retention_run_once(struct jobs *js);

/*
 * sweep.c: a single node's (SQLite's) mechanism for jobs whose worker is
 * gone. Start-up recovery re-queues every job left `running` by a dead
 * process; while the process runs, the sweep looks every sweep_interval_s
 * for jobs the store says are `running` but that no worker of this process
 * holds (their outcome could not be written: a full disk, a database
 * error) and re-queues them, or fails them once started max_attempts
 * times; and for jobs the store says are `queued` that the queue does not
 * hold (a worker could not mark one started) and queues them again. With a shared queue (PostgreSQL) leases do this and there is no
 * sweep.
 */
/* Runs sweep_run_once every sweep_interval_s; sd_periodic_stop ends it. */
enum sd_err sweep_start(struct jobs *js, struct sd_periodic **out, struct sd_error *err);
/* One pass now; returns the jobs re-queued or failed. */
int sweep_run_once(struct jobs *js);

#endif

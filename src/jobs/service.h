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
#include <stdbool.h>
#include <stdint.h>

#include "jobs/job.h"
#include "jobs/queue.h"
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
    int upload_retention_days;
    int result_retention_days;
    int retention_interval_s;
    const char *node_id;          /* shared queue: this process among the nodes */
    int lease_ms;                 /* shared queue: a lease not renewed for this long expires */
    struct pipeline_opts pipeline; /* loaded in the background */
};

struct callbacks;
struct retention;
struct cluster;

struct jobs {
    struct jobs_opts o;
    struct store *store;          /* borrowed */
    struct sd_log *log;           /* borrowed */
    struct metrics *metrics;      /* borrowed */
    struct pipeline *pipeline;
    struct job_queue *q;
    pthread_t *threads;
    int n_threads;
    volatile bool stop;           /* workers waiting for the model give up */
    struct callbacks *cb;
    struct retention *ret;
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
 * Records an async job (upload already in place at upload_path, named by id)
 * and queues it. SD_EBUSY when the queue is full: nothing is recorded.
 */
enum sd_err jobs_submit_async(struct jobs *js, const char *id, const struct stt_params *p,
                              const char *upload_path, int64_t bytes, const char *filename,
                              const char *callback_url, struct sd_error *err);
/* Queues a sync job; on SD_OK the caller holds a reference: jobq_release(js->q, *out). */
enum sd_err jobs_submit_sync(struct jobs *js, const char *id, const struct stt_params *p,
                             const char *upload_path, int64_t bytes, struct job **out,
                             struct sd_error *err);
/* The same for 16 kHz mono PCM in memory (copied): a live stream's utterance. */
enum sd_err jobs_submit_pcm(struct jobs *js, const char *id, const struct stt_params *p,
                            const float *pcm, size_t n, struct job **out, struct sd_error *err);
/* DELETE: cancels a queued or running job; *was = status before. SD_ENOTFOUND if unknown. */
enum sd_err jobs_cancel(struct jobs *js, const char *id, enum job_status *was,
                        struct sd_error *err);

/* worker.c */
void *jobs_worker_main(void *arg);
/* Renders t in every response format and records it as the job's results. */
enum sd_err jobs_record_success(struct jobs *js, const char *id, const struct transcript *t,
                                double audio_s, double run_s, struct sd_error *err);

/* callback.c: webhook delivery (libcurl) with retries and exponential backoff */
enum sd_err callbacks_start(struct jobs *js, struct callbacks **out, struct sd_error *err);
void callbacks_push(struct callbacks *cb, const char *id, int attempts_done);
void callbacks_stop(struct callbacks *cb);

/* cluster.c: the shared queue's feeder (claims for free workers) and lease heartbeat */
enum sd_err cluster_start(struct jobs *js, struct cluster **out, struct sd_error *err);
/* Stops claiming (before a drain); the heartbeat keeps the running jobs' leases. */
void cluster_stop_feeder(struct cluster *c);
void cluster_stop(struct cluster *c);

/* retention.c: periodic deletion of old uploads and results */
enum sd_err retention_start(struct jobs *js, struct retention **out, struct sd_error *err);
/* One pass now (also used by tests); returns files deleted. */
int retention_run_once(struct jobs *js);
void retention_stop(struct retention *r);

#endif

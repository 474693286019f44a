/*
 * queue.h - the in-memory run queue shared by the synchronous endpoints and
 * async jobs. Workers claim the best waiting job: short uploads first, with
 * ageing so a long job is never starved, and (with 2+ workers) at most
 * n_workers - 1 long jobs running at once so one worker stays free for
 * short requests. Bounded: a full queue refuses with SD_EBUSY (HTTP 429).
 *
 * Durability is the store's business: async jobs are written there before
 * they are pushed here, and re-pushed from it at start-up.
 * Thread-safe: one mutex guards the queue and the "guarded by the queue"
 * fields of every job in it.
 */
#ifndef SD_JOBS_QUEUE_H
#define SD_JOBS_QUEUE_H

#include <stdbool.h>
#include <stdint.h>

#include "jobs/job.h"
#include "util/err.h"

struct job_queue;

struct jobq_opts {
    int max_pending;           /* jobs waiting (not running) before SD_EBUSY */
    int n_workers;
    int64_t long_job_bytes;    /* uploads above this count as long jobs */
    double age_credit_bytes_per_s; /* how fast waiting makes a job look smaller */
};

/* Caller owns *out: jobq_destroy() (after the workers stopped). */
enum sd_err jobq_create(const struct jobq_opts *o, struct job_queue **out, struct sd_error *err);
void jobq_destroy(struct job_queue *q);

/*
 * Adds a job (the queue takes one new reference; the caller keeps its own).
 * force: ignore max_pending (jobs recovered from the store at start-up).
 * SD_EBUSY when full or shutting down.
 */
enum sd_err jobq_push(struct job_queue *q, struct job *j, bool force, struct sd_error *err);
/* True if a push would be accepted now (an admission check before a slow insert). */
bool jobq_has_room(struct job_queue *q);
/*
 * Blocks until a job is available or the queue stops; marks it RUNNING and
 * returns it (the reference passes to the caller). NULL when stopping.
 */
struct job *jobq_claim(struct job_queue *q);
/* A worker finished j (status final or requeued): wakes waiters, drops the worker's ref. */
void jobq_finish(struct job_queue *q, struct job *j, enum job_status final);
/* Waits up to timeout_ms for j to reach a final status; true if it did. */
bool jobq_wait(struct job_queue *q, struct job *j, int timeout_ms);
/* Drops a reference (frees the job at zero). */
void jobq_release(struct job_queue *q, struct job *j);
/*
 * Cancels the job with this id if it is in the queue: a waiting job is
 * removed (status CANCELLED); a running one gets its cancel flag.
 * Returns the status it had, or -1 if the queue does not know it.
 */
int jobq_cancel(struct job_queue *q, const char *id);
/* Like jobq_cancel but only for a job still waiting; true if it was removed. */
bool jobq_cancel_pending(struct job_queue *q, const char *id);
/* A worker reports progress of its running job. */
void jobq_set_progress(struct job_queue *q, struct job *j, float fraction);
/* Live progress (0..1) of a queued/running job; -1 if not in the queue. */
double jobq_progress(struct job_queue *q, const char *id);
void jobq_counts(struct job_queue *q, int64_t *pending, int64_t *running);
/*
 * Waits up to timeout_ms until a worker is free (running + waiting jobs
 * fewer than the workers): the shared queue's feeder claims from the store
 * only then. *long_allowed: a long job may start now (one worker stays free
 * for short ones). False on timeout or stop.
 */
bool jobq_wait_free(struct job_queue *q, int timeout_ms, bool *long_allowed);
/* Stops handing out jobs; claimers return NULL. */
void jobq_stop(struct job_queue *q);
/*
 * Drain: waits up to timeout_ms for running jobs to finish; then flags the
 * rest cancel+requeue and waits (up to grace_ms) for workers to let go.
 * Returns the number of jobs still running at the end.
 */
int jobq_drain(struct job_queue *q, int timeout_ms, int grace_ms);

/* Ids of the async jobs waiting or running here (the leases to renew); returns how many. */
int jobq_held_async(struct job_queue *q, char (*ids)[STORE_ID_MAX], int max);
/* Ids of the async (store-backed) jobs running now; returns how many were written. */
int jobq_running_async(struct job_queue *q, char (*ids)[STORE_ID_MAX], int max);

#endif

/*
 * job.h - one transcription request as the job system sees it: the request
 * parameters (struct stt_params, stored as JSON beside the job) and the
 * in-memory job a worker runs (async jobs also live in the store; sync jobs
 * exist only while their HTTP client waits). Its audio is an uploaded file,
 * or PCM held in memory (a live stream's utterance: no file round trip).
 *
 * Lifetime: a job is reference-counted (queue, worker, waiting client);
 * job_unref() frees it and its transcript. Fields below "guarded by the
 * queue" are read and written only with the queue's mutex held.
 */
#ifndef SD_JOBS_JOB_H
#define SD_JOBS_JOB_H

#include <jansson.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "jobs/stream.h"
#include "output/format.h"
#include "pipeline/stt_params.h"
#include "store/store.h"
#include "util/err.h"
#include "whisper/transcribe.h"

struct job {
    char id[STORE_ID_MAX];
    bool sync;                 /* a waiting client, not in the store */
    struct stt_params params;
    char *upload_path;         /* owned; "" when the audio is pcm */
    float *pcm;                /* owned, or NULL: 16 kHz mono samples to transcribe */
    size_t n_pcm;
    char *callback_url;        /* owned, NULL if none */
    int64_t upload_bytes;
    int64_t enqueued_ms;
    atomic_bool cancel;        /* set by DELETE, a gone client, or drain */
    atomic_bool requeue;       /* drain: put back in the queue instead of failing */
    bool claimed;              /* set before queueing: the shared queue's store already started it */
    bool upload_is_copy;       /* upload_path is this node's copy of a stored upload: job_free unlinks it */
    atomic_bool lost;          /* the store says this node no longer runs it (lease gone, cancelled) */
    /* guarded by the queue */
    enum job_status status;
    float progress;
    int refs;
    bool long_job;
    struct job *next;
    /* written by the worker before the final status, read after it */
    enum sd_err rc;
    struct sd_error err;
    struct transcript *transcript; /* sync jobs: the result (owned) */
    struct job_stream *stream;     /* sync SSE jobs: events as segments become final (owned) */
    json_t *extraction;            /* sync jobs that asked for one: its record (owned) */
    double audio_s, run_s;
};

/* A new job with one reference; takes ownership of nothing (copies). */
enum sd_err job_create(const char *id, bool sync, const struct stt_params *p,
                       const char *upload_path, int64_t upload_bytes, const char *callback_url,
                       struct job **out, struct sd_error *err);
/* Gives the job in-memory audio (copied) instead of an upload file. */
enum sd_err job_set_pcm(struct job *j, const float *pcm, size_t n, struct sd_error *err);
void job_free(struct job *j);

/* A random id: "job_" + 24 hex digits (or the given prefix). buf >= STORE_ID_MAX. */
void job_new_id(const char *prefix, char *buf, size_t n);

/* The public JSON shape of a stored job (GET /v1/jobs/{id}); caller owns (json_decref). */
json_t *job_to_json(const struct store_job *j);

#endif

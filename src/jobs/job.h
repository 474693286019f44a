/*
 * job.h - one transcription request as the job system sees it: the request
 * fields (struct job_params, stored as JSON beside the job), and the
 * in-memory job a worker runs (async jobs also live in the store; sync jobs
 * exist only while their HTTP client waits).
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
#include "store/store.h"
#include "util/err.h"
#include "whisper/transcribe.h"

struct job_params {
    enum transcribe_task task;
    char model[64];            /* as the client named it ("whisper-1"); informational */
    char language[16];         /* "" = the model's default / detect */
    char *prompt;              /* owned, NULL if none */
    float temperature;         /* used when has_temperature */
    bool has_temperature;
    enum output_format format;
    bool word_timestamps;      /* timestamp_granularities[] contains "word" */
    bool stream;               /* SSE reply (sync only) */
    int beam_size;             /* 0 = engine default; 1 = greedy */
    bool no_timestamps;        /* whisper.cpp alias field */
    bool no_vad;               /* skip the VAD filter even when a VAD model is loaded */
    bool no_fallback;          /* decode each window once (live streams: latency first) */
    int max_tokens;            /* tokens per window, 0 = engine default */
};

void job_params_init(struct job_params *p);
void job_params_clear(struct job_params *p);
/* Copies src (deep) into *dst. */
enum sd_err job_params_copy(struct job_params *dst, const struct job_params *src,
                            struct sd_error *err);
/* Serialises to a malloc'd JSON string (caller frees); NULL on ENOMEM. */
char *job_params_to_json(const struct job_params *p);
/* Parses what job_params_to_json wrote; *p must be initialised. */
enum sd_err job_params_from_json(const char *json, struct job_params *p, struct sd_error *err);

struct job {
    char id[STORE_ID_MAX];
    bool sync;                 /* a waiting client, not in the store */
    struct job_params params;
    char *upload_path;         /* owned */
    char *callback_url;        /* owned, NULL if none */
    int64_t upload_bytes;
    int64_t enqueued_ms;
    atomic_bool cancel;        /* set by DELETE, a gone client, or drain */
    atomic_bool requeue;       /* drain: put back in the queue instead of failing */
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
    double audio_s, run_s;
};

/* A new job with one reference; takes ownership of nothing (copies). */
enum sd_err job_create(const char *id, bool sync, const struct job_params *p,
                       const char *upload_path, int64_t upload_bytes, const char *callback_url,
                       struct job **out, struct sd_error *err);
void job_free(struct job *j);

/* A random id: "job_" + 24 hex digits (or the given prefix). buf >= STORE_ID_MAX. */
void job_new_id(const char *prefix, char *buf, size_t n);

/* The public JSON shape of a stored job (GET /v1/jobs/{id}); caller owns (json_decref). */
json_t *job_to_json(const struct store_job *j);

#endif

/*
 * metrics.h - counters of the service in Prometheus text format (/metrics):
 * HTTP requests by route and status, jobs by outcome, job durations
 * (histogram), audio seconds processed, real-time factor, and gauges the
 * caller supplies at render time (queue depth, busy workers) plus RSS.
 * Thread-safe (one mutex); recording is a few additions.
 */
#ifndef SD_TELEMETRY_METRICS_H
#define SD_TELEMETRY_METRICS_H

#include <stdint.h>

struct metrics;

struct metrics_gauges {
    int64_t queue_depth;     /* jobs waiting */
    int64_t jobs_running;
    int64_t workers;
    int model_loaded;        /* 0/1 */
    int64_t realtime_streams; /* open /v1/realtime streams */
    int64_t workers_stuck;   /* workers whose audio decoder is silent past the threshold */
    uint64_t worker_stalls;  /* times a worker became stuck */
    /* shared decoding steps (pipeline_batch_stats): passes, member steps, sequences */
    uint64_t decode_batches, decode_batch_steps, decode_batch_rows;
    /*
     * The compute kernels chosen at start: "primitive=table ..." (NULL/"": not
     * chosen yet) and how ("measured", "cache", "forced", "default", "off");
     * rendered as the labels of scribed_kernels_info.
     */
    const char *kernels, *kernels_source;
};

/* Caller owns: metrics_destroy(). NULL on ENOMEM. */
struct metrics *metrics_create(void);
void metrics_destroy(struct metrics *m);
/* route: a stable route name ("transcriptions", "health", ...), not the raw URL. */
void metrics_http(struct metrics *m, const char *route, int status);
/* One finished job: outcome "succeeded"/"failed"/"cancelled", wall and audio seconds. */
void metrics_job(struct metrics *m, const char *outcome, double run_s, double audio_s);
/*
 * One extraction's LLM use: requests sent (retries included), failed ones,
 * their wall seconds, tokens, and the extraction's outcome ("succeeded" or
 * "failed").
 */
void metrics_llm(struct metrics *m, const char *outcome, int requests, int failures,
                 double seconds, int64_t input_tokens, int64_t output_tokens);
/* Jobs against their store: the shared queue (PostgreSQL) and saving outcomes. */
enum metrics_queue_event {
    METRICS_QUEUE_CLAIM,          /* this node claimed a job from the store */
    METRICS_QUEUE_LEASE_LOST,     /* a run stopped: its lease was gone (expired, or cancelled) */
    METRICS_QUEUE_DB_ERROR,       /* a claim or a heartbeat failed on the database */
    METRICS_QUEUE_SAVE_RETRY,     /* saving a job's results failed and is tried again */
    METRICS_QUEUE_SAVE_FAILED,    /* ... failed every time: the job failed for it */
    METRICS_QUEUE_SWEPT,          /* a job `running` with no live worker, re-queued or failed */
    METRICS_QUEUE_N
};
void metrics_queue(struct metrics *m, enum metrics_queue_event ev);
/* Returns a malloc'd text/plain exposition (caller frees); NULL on ENOMEM. */
char *metrics_render(struct metrics *m, const struct metrics_gauges *g);

#endif

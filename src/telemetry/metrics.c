/*
 * metrics.c - Prometheus counters (see metrics.h). Label sets are small and
 * fixed (route names come from the router's table, not from URLs), so a
 * linear array is enough; RSS is read from /proc/self/statm at render time.
 */
#include "telemetry/metrics.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_HTTP_SERIES 128
#define N_BUCKETS 12

static const double bucket_le[N_BUCKETS] = {0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600};
static const char *const outcomes[] = {"succeeded", "failed", "cancelled"};

struct http_series {
    char route[32];
    int status;
    uint64_t count;
};

struct metrics {
    pthread_mutex_t mu; /* guards everything below */
    struct http_series http[MAX_HTTP_SERIES];
    int n_http;
    uint64_t jobs[3];
    uint64_t dur_buckets[N_BUCKETS];
    uint64_t dur_count;
    double dur_sum;
    double audio_s_total;
    double run_s_total;
    double last_rtf;
    /* LLM (extraction) */
    uint64_t llm_calls, llm_failures, llm_extractions[2];
    uint64_t llm_buckets[N_BUCKETS];
    double llm_seconds;
    uint64_t llm_tokens_in, llm_tokens_out;
    uint64_t queue[METRICS_QUEUE_N];
};

static const char *const queue_series[METRICS_QUEUE_N][2] = {
    [METRICS_QUEUE_CLAIM] = {"scribed_queue_claims_total", "Jobs this node claimed from the shared queue."},
    [METRICS_QUEUE_LEASE_LOST] = {"scribed_queue_leases_lost_total", "Runs stopped because this node no longer held the job's lease."},
    [METRICS_QUEUE_DB_ERROR] = {"scribed_database_errors_total", "Shared-queue claims and heartbeats that failed on the database."},
    [METRICS_QUEUE_SAVE_RETRY] = {"scribed_job_save_retries_total", "Saves of a job's results tried again after a failure (a full disk, a database error)."},
    [METRICS_QUEUE_SAVE_FAILED] = {"scribed_job_save_failures_total", "Jobs failed because their results could not be saved after every retry."},
    [METRICS_QUEUE_SWEPT] = {"scribed_jobs_swept_total", "Jobs found running with no live worker in this process, re-queued or failed by the sweep."},
};

void metrics_queue(struct metrics *m, enum metrics_queue_event ev)
{
    if (!m || (unsigned)ev >= METRICS_QUEUE_N)
        return;
    pthread_mutex_lock(&m->mu);
    m->queue[ev]++;
    pthread_mutex_unlock(&m->mu);
}

struct metrics *metrics_create(void)
{
    struct metrics *m = calloc(1, sizeof(*m));
    if (m)
        pthread_mutex_init(&m->mu, NULL);
    return m;
}

void metrics_destroy(struct metrics *m)
{
    if (!m)
        return;
    pthread_mutex_destroy(&m->mu);
    free(m);
}

void metrics_http(struct metrics *m, const char *route, int status)
{
    if (!m)
        return;
    pthread_mutex_lock(&m->mu);
    int i;
    for (i = 0; i < m->n_http; i++)
        if (m->http[i].status == status && strcmp(m->http[i].route, route) == 0)
            break;
    if (i == m->n_http && m->n_http < MAX_HTTP_SERIES) {
        snprintf(m->http[i].route, sizeof(m->http[i].route), "%s", route);
        m->http[i].status = status;
        m->n_http++;
    }
    if (i < m->n_http)
        m->http[i].count++;
    pthread_mutex_unlock(&m->mu);
}

void metrics_job(struct metrics *m, const char *outcome, double run_s, double audio_s)
{
    if (!m)
        return;
    pthread_mutex_lock(&m->mu);
    for (int i = 0; i < 3; i++)
        if (strcmp(outcome, outcomes[i]) == 0)
            m->jobs[i]++;
    for (int b = 0; b < N_BUCKETS; b++)
        if (run_s <= bucket_le[b])
            m->dur_buckets[b]++;
    m->dur_count++;
    m->dur_sum += run_s;
    if (audio_s > 0) {
        m->audio_s_total += audio_s;
        m->run_s_total += run_s;
        m->last_rtf = run_s / audio_s;
    }
    pthread_mutex_unlock(&m->mu);
}

void metrics_llm(struct metrics *m, const char *outcome, int requests, int failures,
                 double seconds, int64_t input_tokens, int64_t output_tokens)
{
    if (!m)
        return;
    pthread_mutex_lock(&m->mu);
    m->llm_extractions[strcmp(outcome, "succeeded") == 0 ? 0 : 1]++;
    m->llm_calls += (uint64_t)(requests > 0 ? requests : 0);
    m->llm_failures += (uint64_t)(failures > 0 ? failures : 0);
    for (int b = 0; b < N_BUCKETS; b++)
        if (seconds <= bucket_le[b])
            m->llm_buckets[b]++;
    m->llm_seconds += seconds;
    m->llm_tokens_in += (uint64_t)(input_tokens > 0 ? input_tokens : 0);
    m->llm_tokens_out += (uint64_t)(output_tokens > 0 ? output_tokens : 0);
    pthread_mutex_unlock(&m->mu);
}

struct sbuf {
    char *p;
    size_t len, cap;
    int oom;
};

__attribute__((format(printf, 2, 3))) static void sb_printf(struct sbuf *b, const char *fmt, ...)
{
    for (;;) {
        if (b->oom)
            return;
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = 1;
            return;
        }
        if (b->p && b->len + (size_t)n < b->cap) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = (b->cap ? b->cap * 2 : 4096) + (size_t)n;
        char *np = realloc(b->p, cap);
        if (!np) {
            b->oom = 1;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
}

static long rss_bytes(void)
{
    long pages_total = 0, pages_rss = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f)
        return 0;
    if (fscanf(f, "%ld %ld", &pages_total, &pages_rss) != 2)
        pages_rss = 0;
    fclose(f);
    return pages_rss * sysconf(_SC_PAGESIZE);
}

/*
 * scribed_kernels_info{gemv_f16="avx512",...,source="cache"} 1: which kernel
 * table each primitive uses, from "primitive=table ..." (names are plain
 * identifiers: [a-z0-9_]; anything else is skipped rather than escaped).
 */
static void render_kernels(struct sbuf *b, const struct metrics_gauges *g)
{
    if (!g->kernels || !*g->kernels)
        return;
    sb_printf(b, "# HELP scribed_kernels_info The compute kernels chosen at start (table per "
                 "primitive) and how they were chosen.\n"
                 "# TYPE scribed_kernels_info gauge\n"
                 "scribed_kernels_info{");
    const char *s = g->kernels;
    while (*s) {
        while (*s == ' ')
            s++;
        size_t len = strcspn(s, " ");
        const char *eq = memchr(s, '=', len);
        int plain = eq != NULL && eq > s && eq + 1 < s + len;
        for (const char *c = s; plain && c < s + len; c++)
            plain = c == eq || (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_';
        if (plain)
            sb_printf(b, "%.*s=\"%.*s\",", (int)(eq - s), s, (int)(s + len - eq - 1), eq + 1);
        s += len;
    }
    sb_printf(b, "source=\"%s\"} 1\n", g->kernels_source ? g->kernels_source : "");
}

char *metrics_render(struct metrics *m, const struct metrics_gauges *g)
{
    struct sbuf b = {0};
    pthread_mutex_lock(&m->mu);
    sb_printf(&b, "# HELP scribed_http_requests_total HTTP requests by route and status.\n"
                  "# TYPE scribed_http_requests_total counter\n");
    for (int i = 0; i < m->n_http; i++)
        sb_printf(&b, "scribed_http_requests_total{route=\"%s\",status=\"%d\"} %llu\n",
                  m->http[i].route, m->http[i].status, (unsigned long long)m->http[i].count);
    sb_printf(&b, "# HELP scribed_jobs_total Finished transcription jobs by outcome.\n"
                  "# TYPE scribed_jobs_total counter\n");
    for (int i = 0; i < 3; i++)
        sb_printf(&b, "scribed_jobs_total{outcome=\"%s\"} %llu\n", outcomes[i],
                  (unsigned long long)m->jobs[i]);
    sb_printf(&b, "# HELP scribed_job_duration_seconds Wall time of a job's run.\n"
                  "# TYPE scribed_job_duration_seconds histogram\n");
    for (int i = 0; i < N_BUCKETS; i++)
        sb_printf(&b, "scribed_job_duration_seconds_bucket{le=\"%g\"} %llu\n", bucket_le[i],
                  (unsigned long long)m->dur_buckets[i]);
    sb_printf(&b,
              "scribed_job_duration_seconds_bucket{le=\"+Inf\"} %llu\n"
              "scribed_job_duration_seconds_sum %.6f\n"
              "scribed_job_duration_seconds_count %llu\n",
              (unsigned long long)m->dur_count, m->dur_sum, (unsigned long long)m->dur_count);
    sb_printf(&b,
              "# HELP scribed_audio_seconds_total Seconds of audio transcribed.\n"
              "# TYPE scribed_audio_seconds_total counter\n"
              "scribed_audio_seconds_total %.3f\n"
              "# HELP scribed_processing_seconds_total Wall seconds spent on that audio.\n"
              "# TYPE scribed_processing_seconds_total counter\n"
              "scribed_processing_seconds_total %.3f\n"
              "# HELP scribed_real_time_factor Processing time / audio time (last job; <1 is "
              "faster than real time).\n"
              "# TYPE scribed_real_time_factor gauge\n"
              "scribed_real_time_factor %.4f\n",
              m->audio_s_total, m->run_s_total, m->last_rtf);
    sb_printf(&b,
              "# HELP scribed_llm_calls_total Requests sent to the LLM API (retries included).\n"
              "# TYPE scribed_llm_calls_total counter\n"
              "scribed_llm_calls_total %llu\n"
              "# HELP scribed_llm_failures_total LLM requests not answered with a usable 2xx.\n"
              "# TYPE scribed_llm_failures_total counter\n"
              "scribed_llm_failures_total %llu\n"
              "# HELP scribed_extractions_total Extractions by outcome.\n"
              "# TYPE scribed_extractions_total counter\n"
              "scribed_extractions_total{outcome=\"succeeded\"} %llu\n"
              "scribed_extractions_total{outcome=\"failed\"} %llu\n"
              "# HELP scribed_llm_tokens_total Tokens the LLM API reported, by kind.\n"
              "# TYPE scribed_llm_tokens_total counter\n"
              "scribed_llm_tokens_total{kind=\"input\"} %llu\n"
              "scribed_llm_tokens_total{kind=\"output\"} %llu\n"
              "# HELP scribed_llm_duration_seconds LLM request time of one extraction.\n"
              "# TYPE scribed_llm_duration_seconds histogram\n",
              (unsigned long long)m->llm_calls, (unsigned long long)m->llm_failures,
              (unsigned long long)m->llm_extractions[0], (unsigned long long)m->llm_extractions[1],
              (unsigned long long)m->llm_tokens_in, (unsigned long long)m->llm_tokens_out);
    uint64_t n_llm = m->llm_extractions[0] + m->llm_extractions[1];
    for (int i = 0; i < N_BUCKETS; i++)
        sb_printf(&b, "scribed_llm_duration_seconds_bucket{le=\"%g\"} %llu\n", bucket_le[i],
                  (unsigned long long)m->llm_buckets[i]);
    sb_printf(&b,
              "scribed_llm_duration_seconds_bucket{le=\"+Inf\"} %llu\n"
              "scribed_llm_duration_seconds_sum %.6f\n"
              "scribed_llm_duration_seconds_count %llu\n",
              (unsigned long long)n_llm, m->llm_seconds, (unsigned long long)n_llm);
    for (int i = 0; i < METRICS_QUEUE_N; i++)
        sb_printf(&b, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", queue_series[i][0],
                  queue_series[i][1], queue_series[i][0], queue_series[i][0],
                  (unsigned long long)m->queue[i]);
    pthread_mutex_unlock(&m->mu);
    sb_printf(&b,
              "# HELP scribed_queue_depth Jobs waiting for a worker.\n"
              "# TYPE scribed_queue_depth gauge\n"
              "scribed_queue_depth %lld\n"
              "# HELP scribed_jobs_running Jobs being transcribed now.\n"
              "# TYPE scribed_jobs_running gauge\n"
              "scribed_jobs_running %lld\n"
              "# HELP scribed_workers Inference worker threads.\n"
              "# TYPE scribed_workers gauge\n"
              "scribed_workers %lld\n"
              "# HELP scribed_model_loaded 1 once the model is loaded.\n"
              "# TYPE scribed_model_loaded gauge\n"
              "scribed_model_loaded %d\n"
              "# HELP scribed_realtime_streams Open live transcription streams.\n"
              "# TYPE scribed_realtime_streams gauge\n"
              "scribed_realtime_streams %lld\n"
              "# HELP scribed_workers_stuck Workers whose audio decoder has sent nothing for "
              "longer than --stuck-worker-s.\n"
              "# TYPE scribed_workers_stuck gauge\n"
              "scribed_workers_stuck %lld\n"
              "# HELP scribed_worker_stalls_total Times a worker became stuck that way.\n"
              "# TYPE scribed_worker_stalls_total counter\n"
              "scribed_worker_stalls_total %llu\n"
              "# HELP scribed_decode_batches_total Passes over the decoder weights by the "
              "shared decoding steps of the workers.\n"
              "# TYPE scribed_decode_batches_total counter\n"
              "scribed_decode_batches_total %llu\n"
              "# HELP scribed_decode_batch_steps_total Workers' decoding steps those passes "
              "ran (above the passes: steps of several requests shared one).\n"
              "# TYPE scribed_decode_batch_steps_total counter\n"
              "scribed_decode_batch_steps_total %llu\n"
              "# HELP scribed_decode_batch_rows_total Sequences (beams) those passes decoded.\n"
              "# TYPE scribed_decode_batch_rows_total counter\n"
              "scribed_decode_batch_rows_total %llu\n"
              "# HELP process_resident_memory_bytes Resident set size.\n"
              "# TYPE process_resident_memory_bytes gauge\n"
              "process_resident_memory_bytes %ld\n",
              (long long)g->queue_depth, (long long)g->jobs_running, (long long)g->workers,
              g->model_loaded, (long long)g->realtime_streams, (long long)g->workers_stuck,
              (unsigned long long)g->worker_stalls,
              (unsigned long long)g->decode_batches, (unsigned long long)g->decode_batch_steps,
              (unsigned long long)g->decode_batch_rows, rss_bytes());
    render_kernels(&b, g);
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    return b.p;
}

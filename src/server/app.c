/*
 * app.c - assembling the service (see app.h): directories, log, metrics,
 * store, job system (model loads in the background), HTTP; and taking it
 * apart in the reverse order with a bounded drain. A missing model is not
 * fatal: the service runs, /health says 503 and how to get one.
 */
#include "server/app.h"

#include <dirent.h>
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backend/ops.h"
#include "server/http.h"
#include "server/ratelimit.h"

static enum sd_err make_dir(const char *path, struct sd_error *err)
{
    if (mkdir(path, 0750) != 0 && errno != EEXIST)
        return sd_fail(err, SD_EIO, "cannot create directory %s: %s", path, strerror(errno));
    return SD_OK;
}

/* Uploads still named *.part were cut off by a crash mid-request: nobody owns them. */
static void remove_partial_uploads(struct app *a)
{
    DIR *d = opendir(a->uploads_dir);
    struct dirent *e;
    int n = 0;
    if (!d)
        return;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len > 5 && strcmp(e->d_name + len - 5, ".part") == 0) {
            char path[2048];
            snprintf(path, sizeof(path), "%s/%s", a->uploads_dir, e->d_name);
            n += unlink(path) == 0;
        }
    }
    closedir(d);
    if (n)
        log_event(a->log, LOG_INFO, "uploads.partial_removed",
                  (struct log_field[]){LOG_I64("files", n), LOG_END});
}

static void choose_model(struct app *a)
{
    snprintf(a->kernel_cache, sizeof(a->kernel_cache), "%s/kernels.cache", a->cfg.data_dir);
    if (a->cfg.model && *a->cfg.model)
        snprintf(a->model_path, sizeof(a->model_path), "%s", a->cfg.model);
    else
        snprintf(a->model_path, sizeof(a->model_path), "%s/models/ggml-base.en.bin",
                 a->cfg.data_dir);
    if (access(a->model_path, R_OK) != 0) {
        snprintf(a->model_hint, sizeof(a->model_hint),
                 "No model at %s: download one with `scribed model download base.en "
                 "--data-dir %s` or pass --model PATH",
                 a->model_path, a->cfg.data_dir);
        log_event(a->log, LOG_WARN, "model.missing",
                  (struct log_field[]){LOG_STR("path", a->model_path),
                                       LOG_STR("hint", a->model_hint), LOG_END});
    }
}

/* Without --vad-model, a Silero model downloaded into the data dir is used. */
static void choose_vad(struct app *a)
{
    if (a->cfg.vad_model && *a->cfg.vad_model)
        return;
    char path[1100];
    snprintf(path, sizeof(path), "%s/models/ggml-silero-v6.2.0.bin", a->cfg.data_dir);
    if (access(path, R_OK) == 0) {
        char *p = strdup(path);
        if (p) {
            free(a->cfg.vad_model);
            a->cfg.vad_model = p;
        }
    }
}

/*
 * One copy of the VAD model for every live stream (each keeps only its own
 * recurrent state). A broken file is not fatal: the workers report it, and
 * live streams then run without VAD.
 */
static void load_live_vad(struct app *a)
{
    struct sd_error e = {0};
    if (a->cfg.vad_model && *a->cfg.vad_model &&
        vad_model_load(a->cfg.vad_model, &a->rt_vad, &e) != SD_OK)
        a->rt_vad = NULL;
}

/* CPUs this process may run on (taskset, cpusets), else those online. */
static long usable_cores(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0)
        return CPU_COUNT(&set);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? n : 1;
}

static void choose_workers(struct app *a, int *threads, int *batch_threads, bool *batch)
{
    long cores = usable_cores();
    a->n_workers = a->cfg.workers > 0 ? (int)a->cfg.workers : (int)cores;
    /* an API-only node: only where other nodes can run its jobs (SQLite: 0 stays "per core") */
    if (a->cfg.workers == 0 && store_has_shared_queue(a->store))
        a->n_workers = 0;
    *threads = a->cfg.threads > 0 ? (int)a->cfg.threads
                                    : (int)(cores / (a->n_workers > 0 ? a->n_workers : 1));
    if (*threads < 1)
        *threads = 1;
    /*
     * Shared steps pay when workers outnumber cores (2 greedy workers on one
     * core: 13 % less wall time, docs/PERFORMANCE.md); with a core each,
     * every worker already streams the weights at its core's bandwidth.
     */
    long all = (long)a->n_workers * *threads;
    *batch = a->cfg.batch_decode < 0 ? all > cores : a->cfg.batch_decode == 1;
    *batch_threads = (int)(all < cores ? all : cores); /* one pass at a time: no more than cores */
}

/* The key from --llm-api-key-file (one line; surrounding whitespace dropped) or the environment. */
static enum sd_err read_llm_key(struct app *a, char *key, size_t n, struct sd_error *err)
{
    key[0] = '\0';
    if (a->cfg.llm_api_key_file && *a->cfg.llm_api_key_file) {
        FILE *f = fopen(a->cfg.llm_api_key_file, "r");
        if (!f)
            return sd_fail(err, SD_EINVAL, "--llm-api-key-file: cannot read %s: %s",
                           a->cfg.llm_api_key_file, strerror(errno));
        size_t got = fread(key, 1, n - 1, f);
        fclose(f);
        key[got] = '\0';
    } else if (a->cfg.llm_api_key) {
        snprintf(key, n, "%s", a->cfg.llm_api_key);
    }
    char *start = key;
    while (*start == ' ' || *start == '\t' || *start == '\n' || *start == '\r')
        start++;
    size_t len = strlen(start);
    while (len > 0 && (start[len - 1] == ' ' || start[len - 1] == '\t' ||
                       start[len - 1] == '\n' || start[len - 1] == '\r'))
        len--;
    memmove(key, start, len);
    key[len] = '\0';
    if (strpbrk(key, "\r\n"))
        return sd_fail(err, SD_EINVAL, "the LLM API key must be one line");
    return SD_OK;
}

/* The URL without credentials (user:pass@, a query) for the log: some APIs take a key there. */
static void url_for_log(const char *url, char *out, size_t n)
{
    snprintf(out, n, "%s", url);
    char *q = strchr(out, '?');
    if (q)
        *q = '\0';
    char *host = strstr(out, "://");
    host = host ? host + 3 : out;
    char *slash = strchr(host, '/'), *at = strchr(host, '@');
    if (at && (!slash || at < slash))
        memmove(host, at + 1, strlen(at + 1) + 1);
}

/*
 * The LLM client and the extraction templates. A bad template file or
 * setting stops the start (one line saying which); the key is wiped from the
 * configuration once the client holds it.
 */
static enum sd_err start_llm(struct app *a, struct sd_error *err)
{
    enum sd_err rc = SD_OK;
    if (a->cfg.extraction_templates && *a->cfg.extraction_templates &&
        (rc = llm_templates_load(a->cfg.extraction_templates, &a->templates, err)) != SD_OK)
        return rc;
    if (!a->cfg.llm_url || !*a->cfg.llm_url) {
        if (a->templates.n > 0 || a->cfg.extraction_allow_inline)
            log_event(a->log, LOG_WARN, "llm.unconfigured",
                      (struct log_field[]){LOG_STR("hint", "extraction needs --llm-url and "
                                                           "--llm-model"), LOG_END});
        return SD_OK;
    }
    struct llm_opts o = {.url = a->cfg.llm_url,
                         .model = a->cfg.llm_model,
                         .timeout_s = (int)a->cfg.llm_timeout_s,
                         .connect_timeout_s = (int)a->cfg.llm_connect_timeout_s,
                         .max_retries = (int)a->cfg.llm_max_retries,
                         .retry_backoff_ms = (int)a->cfg.llm_retry_backoff_ms,
                         .concurrency = (int)a->cfg.llm_concurrency,
                         .max_tokens = (int)a->cfg.llm_max_tokens,
                         .max_response_bytes = (size_t)a->cfg.llm_max_response_kb << 10};
    if (!llm_protocol_parse(a->cfg.llm_protocol, &o.protocol))
        return sd_fail(err, SD_EINVAL, "--llm-protocol: '%s' is not openai or anthropic",
                       a->cfg.llm_protocol);
    char key[1024];
    rc = read_llm_key(a, key, sizeof(key), err);
    o.api_key = key;
    if (rc == SD_OK)
        rc = llm_client_create(&o, &a->llm, err);
    bool have_key = key[0] != '\0';
    memset(key, 0, sizeof(key));
    if (a->cfg.llm_api_key)
        memset(a->cfg.llm_api_key, 0, strlen(a->cfg.llm_api_key));
    if (rc != SD_OK)
        return rc;
    char url[1024];
    url_for_log(a->cfg.llm_url, url, sizeof(url));
    log_event(a->log, LOG_INFO, "llm.configured",
              (struct log_field[]){LOG_STR("protocol", llm_protocol_name(o.protocol)),
                                   LOG_STR("url", url),
                                   LOG_STR("model", a->cfg.llm_model),
                                   LOG_BOOL("key", have_key),
                                   LOG_I64("templates", a->templates.n),
                                   LOG_BOOL("inline_schemas", a->cfg.extraction_allow_inline != 0),
                                   LOG_END});
    return SD_OK;
}

/* --node-id, or one no other live process has: host, pid and random digits. */
static void choose_node_id(struct app *a)
{
    char host[64] = "node", rnd[STORE_ID_MAX];
    if (*a->cfg.node_id) {
        snprintf(a->node_id, sizeof(a->node_id), "%s", a->cfg.node_id);
        return;
    }
    gethostname(host, sizeof(host) - 1);
    host[20] = '\0'; /* room for the rest within STORE_ID_MAX */
    job_new_id(NULL, rnd, sizeof(rnd));
    snprintf(a->node_id, sizeof(a->node_id), "%s-%ld-%.8s", host, (long)getpid(), rnd + 4);
}

static enum sd_err start_jobs(struct app *a, struct sd_error *err)
{
    int threads, batch_threads;
    bool batch;
    choose_workers(a, &threads, &batch_threads, &batch);
    choose_node_id(a);
    struct jobs_opts jo = {
        .data_dir = a->cfg.data_dir,
        .n_workers = a->n_workers,
        .max_pending = (int)a->cfg.max_queue,
        .long_job_bytes = (int64_t)a->cfg.long_job_mb << 20,
        .max_attempts = (int)a->cfg.max_attempts,
        .callback_max_attempts = (int)a->cfg.callback_attempts,
        .callback_backoff_ms = (int)a->cfg.callback_backoff_ms,
        .callback_timeout_ms = (int)a->cfg.callback_timeout_ms,
        .callback_allow_private = a->cfg.callback_allow_private != 0,
        .callback_concurrency = (int)a->cfg.callback_concurrency,
        .callback_per_host = (int)a->cfg.callback_per_host,
        .callback_secret = a->cfg.callback_secret,
        .upload_retention_days = (int)a->cfg.upload_retention_days,
        .result_retention_days = (int)a->cfg.result_retention_days,
        .retention_interval_s = (int)a->cfg.retention_interval_s,
        .sweep_interval_s = (int)a->cfg.sweep_interval_s,
        .disk_reserve_bytes = (int64_t)a->cfg.disk_reserve_kb * 1024,
        .speech_slots = (int)a->cfg.speech_slots,
        .speech_cache_bytes = (int64_t)a->cfg.speech_cache_mb << 20,
        .speech_cache_ttl_s = (int)a->cfg.speech_cache_ttl_s,
        .node_id = a->node_id,
        .lease_ms = (int)a->cfg.lease_s * 1000,
        .pipeline = {.model_path = a->model_path,
                     .device = a->cfg.device,
                     .vad_path = a->cfg.vad_model,
                     .threads_per_worker = threads,
                     .batch_workers = batch ? a->n_workers : 0,
                     .batch_threads = batch_threads,
                     .max_audio_s = (double)a->cfg.max_audio_s,
                     .allowed_formats = NULL,
                     .decode_timeout_ms = (int)a->cfg.decode_timeout_s * 1000,
                     .decode_ms_per_audio_s = (int)a->cfg.decode_ms_per_audio_s,
                     .background = true,
                     .calibrate = a->cfg.calibrate != 0,
                     .kernel_cache = a->kernel_cache,
                     .kernel_version = SCRIBED_VERSION},
        .llm = a->llm,
        .templates = &a->templates,
        .stuck_after_s = (double)a->cfg.stuck_worker_s,
    };
    return jobs_start(&jo, a->store, a->log, a->metrics, &a->jobs, err);
}

enum sd_err app_start(struct app *a, struct config *cfg, struct sd_error *err)
{
    enum sd_err rc;
    char db[1100];

    memset(a, 0, sizeof(*a));
    a->listen_fd = -1;
    a->cfg = *cfg;
    memset(cfg, 0, sizeof(*cfg));
    atomic_init(&a->draining, false);
    atomic_init(&a->n_realtime, 0);
    int level = log_level_parse(a->cfg.log_level);
    if (level < 0) {
        rc = sd_fail(err, SD_EINVAL, "--log-level: '%s' is not debug, info, warn or error",
                     a->cfg.log_level);
        goto fail;
    }
    /* a device this binary lacks fails here, in one line, not later on the loader thread */
    const struct sd_backend_ops *dev = NULL;
    if ((rc = sd_backend_find(a->cfg.device, &dev, err)) != SD_OK)
        goto fail;
    a->log = log_create(stderr, (enum log_level)level);
    a->metrics = metrics_create();
    if (!a->log || !a->metrics) {
        rc = sd_fail(err, SD_ENOMEM, "start-up");
        goto fail;
    }
    /* a second server on a busy port must not touch the first one's data dir */
    if ((rc = http_listen(a->cfg.host, (int)a->cfg.port, &a->listen_fd, err)) != SD_OK)
        goto fail;
    a->max_upload_bytes = (int64_t)a->cfg.max_file_size_mb << 20;
    snprintf(a->uploads_dir, sizeof(a->uploads_dir), "%s/uploads", a->cfg.data_dir);
    if ((rc = make_dir(a->cfg.data_dir, err)) != SD_OK ||
        (rc = make_dir(a->uploads_dir, err)) != SD_OK)
        goto fail;
    remove_partial_uploads(a);
    if (*a->cfg.database_url)
        snprintf(db, sizeof(db), "%s", a->cfg.database_url);
    else
        snprintf(db, sizeof(db), "%s/scribed.db", a->cfg.data_dir);
    if ((rc = store_open(db, &a->store, err)) != SD_OK)
        goto fail;
    if ((rc = start_llm(a, err)) != SD_OK)
        goto fail;
    if (!a->cfg.api && !store_has_shared_queue(a->store)) {
        rc = sd_fail(err, SD_EINVAL, "a worker without an API needs a shared queue:"
                                     " --database-url postgres://...");
        goto fail;
    }
    choose_model(a);
    choose_vad(a);
    load_live_vad(a);
    if ((rc = start_jobs(a, err)) != SD_OK ||
        (rc = rl_slots_create(&a->rt_by_key, err)) != SD_OK)
        goto fail;
    rc = http_start(a, a->listen_fd, &a->http, err);
    a->listen_fd = -1; /* http's now, also on failure */
    if (rc != SD_OK)
        goto fail;
    log_event(a->log, LOG_INFO, "server.listening",
              (struct log_field[]){LOG_STR("host", a->cfg.host), LOG_I64("port", app_port(a)),
                                   LOG_STR("data_dir", a->cfg.data_dir),
                                   LOG_STR("model", a->model_path),
                                   LOG_STR("device", dev->name),
                                   LOG_I64("workers", a->n_workers),
                                   LOG_BOOL("batch_decode", a->jobs->o.pipeline.batch_workers > 1),
                                   LOG_I64("max_file_size_mb", a->cfg.max_file_size_mb),
                                   LOG_STR("store", a->store->ops->name),
                                   LOG_STR("node", a->node_id),
                                   LOG_STR("version", SCRIBED_VERSION), LOG_END});
    return SD_OK;
fail:
    app_stop(a);
    return rc;
}

int app_port(const struct app *a)
{
    return http_port(a->http);
}

bool app_stop(struct app *a)
{
    bool served = a->http != NULL; /* a failed start says why in its error alone */
    atomic_store(&a->draining, true);
    if (a->http)
        http_quiesce(a->http);
    if (a->jobs) {
        log_event(a->log, LOG_INFO, "server.draining",
                  (struct log_field[]){LOG_I64("timeout_s", a->cfg.drain_timeout_s), LOG_END});
        int left = jobs_drain(a->jobs, (int)a->cfg.drain_timeout_s * 1000);
        if (left > 0) {
            int n = jobs_abandon(a->jobs);
            log_event(a->log, LOG_WARN, "server.abandon",
                      (struct log_field[]){LOG_I64("running", left), LOG_I64("requeued", n),
                                           LOG_END});
            return false;
        }
    }
    /* connections waiting on sync jobs see the drain and answer before this returns */
    http_stop(a->http);
    a->http = NULL;
    if (a->listen_fd >= 0)
        close(a->listen_fd);
    a->listen_fd = -1;
    jobs_stop(a->jobs, 0);
    a->jobs = NULL;
    store_close(a->store);
    a->store = NULL;
    vad_model_free(a->rt_vad);
    a->rt_vad = NULL;
    llm_client_destroy(a->llm);
    a->llm = NULL;
    llm_templates_free(&a->templates);
    rl_slots_destroy(a->rt_by_key); /* after http: every session has released its slot */
    a->rt_by_key = NULL;
    metrics_destroy(a->metrics);
    a->metrics = NULL;
    if (served)
        log_event(a->log, LOG_INFO, "server.stopped", NULL);
    log_destroy(a->log);
    a->log = NULL;
    config_clear(&a->cfg);
    return true;
}

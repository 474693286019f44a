/*
 * app.h - struct app owns everything the service is made of: config, log,
 * metrics, store, job system and HTTP server. Passed down explicitly; there
 * are no globals besides the signal flag in cli/serve.c.
 *
 * Lifecycle: app_start (port bound first, so a port in use fails before the
 * data dir is touched; store opened and recovered, model loading in the
 * background, serving) -> app_stop (stop accepting, drain, close).
 */
#ifndef SD_SERVER_APP_H
#define SD_SERVER_APP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "telemetry/log.h"
#include "telemetry/metrics.h"
#include "jobs/service.h"
#include "server/config.h"
#include "store/store.h"
#include "vad/vad.h"

#ifndef SCRIBED_VERSION
#define SCRIBED_VERSION "0.1.0"
#endif

struct http_server;
struct rl_slots;

struct app {
    struct config cfg;             /* owned, immutable after app_start */
    struct sd_log *log;
    struct metrics *metrics;
    struct store *store;
    struct jobs *jobs;
    struct http_server *http;
    int listen_fd;                 /* bound first thing; -1 once http owns it */
    char model_path[1024];
    char kernel_cache[1100]; /* DATA_DIR/kernels.cache: the kernel choice (pipeline_opts) */
    char node_id[STORE_ID_MAX];  /* this process among the nodes of a shared queue */
    char uploads_dir[1024];
    char model_hint[2600];         /* how to get a model, when there is none */
    int64_t max_upload_bytes;
    int n_workers;
    atomic_bool draining;          /* SIGTERM: refuse new work */
    atomic_int n_realtime;         /* open /v1/realtime streams */
    struct rl_slots *rt_by_key;    /* open /v1/realtime streams per principal (auth on) */
    struct vad_model *rt_vad;      /* Silero VAD shared read-only by live streams, or NULL */
    struct llm_client *llm;        /* structured extraction, or NULL without --llm-url */
    struct llm_templates templates; /* from --extraction-templates, read once at start */
};

/* Takes ownership of *cfg (even on failure). On failure everything started is stopped. */
enum sd_err app_start(struct app *a, struct config *cfg, struct sd_error *err);
/* The bound TCP port (useful with --port 0). */
int app_port(const struct app *a);
/*
 * Stop accepting, drain jobs within cfg.drain_timeout_s (+2 s grace), close
 * everything. Returns false if runs were still going at the bound: they were
 * re-queued in the store, nothing was freed, and the caller must _exit().
 */
bool app_stop(struct app *a);

#endif

/*
 * pipeline.c - loading the engines once and making per-worker states (see
 * pipeline.h). Loading may run on its own thread because a large model
 * takes seconds to map and check, and the service must answer /health
 * ("loading") from its first millisecond.
 */
#include "pipeline/pipeline.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/speech.h"
#include "pipeline/transcription.h"
#include "util/clock.h"

static const struct pipeline_engine_ops *const engine_ops[PIPELINE_N_ENGINES] = {
    [PIPELINE_STT] = &stt_engine_ops,
    [PIPELINE_TTS] = &speech_engine_ops,
};

struct pipeline {
    struct pipeline_opts o;    /* strings point at the copies below */
    char *model_path, *vad_path, *allowed, *device;
    pthread_t loader;
    bool loader_started;
    pthread_mutex_t mu;        /* guards status, msg, name */
    pthread_cond_t cv;         /* status left LOADING */
    enum pipeline_status status;
    char msg[256];
    enum sd_err fail_code;     /* why loading failed */
    char name[128];
    void *engines[PIPELINE_N_ENGINES]; /* immutable once status is READY */
};

struct pipeline_worker {
    struct pipeline *p;
    void *states[PIPELINE_N_ENGINES];
};

static void unload_all(void **engines)
{
    for (int k = PIPELINE_N_ENGINES - 1; k >= 0; k--) {
        if (engines[k])
            engine_ops[k]->unload(engines[k]);
        engines[k] = NULL;
    }
}

static void load_all(struct pipeline *p)
{
    struct sd_error err = {0};
    void *loaded[PIPELINE_N_ENGINES] = {0};
    enum sd_err rc = SD_OK;
    for (int k = 0; k < PIPELINE_N_ENGINES && rc == SD_OK; k++)
        rc = engine_ops[k]->load(&p->o, &loaded[k], &err);
    pthread_mutex_lock(&p->mu);
    if (rc == SD_OK) {
        memcpy(p->engines, loaded, sizeof(loaded));
        snprintf(p->name, sizeof(p->name), "%s", engine_ops[PIPELINE_STT]->describe(loaded[0]));
        p->status = PIPELINE_READY;
    } else {
        unload_all(loaded);
        snprintf(p->msg, sizeof(p->msg), "%s", err.msg);
        p->fail_code = rc;
        p->status = PIPELINE_FAILED;
    }
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

static void *loader_main(void *arg)
{
    load_all(arg);
    return NULL;
}

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

static char *dup_or_null(const char *s)
{
    return s && *s ? strdup(s) : NULL;
}

enum sd_err pipeline_create(const struct pipeline_opts *o, struct pipeline **out,
                            struct sd_error *err)
{
    struct pipeline *p = calloc(1, sizeof(*p));
    if (!p)
        return sd_fail(err, SD_ENOMEM, "pipeline");
    pthread_mutex_init(&p->mu, NULL);
    sd_cond_init_monotonic(&p->cv);
    p->status = PIPELINE_LOADING;
    p->o = *o;
    p->model_path = strdup(o->model_path ? o->model_path : "");
    p->vad_path = dup_or_null(o->vad_path);
    p->allowed = dup_or_null(o->allowed_formats);
    p->device = dup_or_null(o->device);
    if (!p->model_path || (o->vad_path && *o->vad_path && !p->vad_path) ||
        (o->device && *o->device && !p->device) ||
        (o->allowed_formats && *o->allowed_formats && !p->allowed)) {
        pipeline_destroy(p);
        return sd_fail(err, SD_ENOMEM, "pipeline");
    }
    p->o.model_path = p->model_path;
    p->o.vad_path = p->vad_path;
    p->o.allowed_formats = p->allowed;
    p->o.device = p->device;
    if (p->o.threads_per_worker < 1)
        p->o.threads_per_worker = 1;
    if (p->o.batch_threads < 1)
        p->o.batch_threads = 1;
    snprintf(p->name, sizeof(p->name), "%s", base_name(p->model_path));
    if (!o->background) {
        load_all(p);
        if (p->status != PIPELINE_READY) {
            enum sd_err rc = sd_fail(err, p->fail_code, "%s", p->msg);
            pipeline_destroy(p);
            return rc;
        }
    } else if (pthread_create(&p->loader, NULL, loader_main, p) != 0) {
        pipeline_destroy(p);
        return sd_fail(err, SD_EINTERNAL, "cannot start the model loader thread");
    } else {
        p->loader_started = true;
    }
    *out = p;
    return SD_OK;
}

void pipeline_destroy(struct pipeline *p)
{
    if (!p)
        return;
    if (p->loader_started)
        pthread_join(p->loader, NULL);
    unload_all(p->engines);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p->model_path);
    free(p->vad_path);
    free(p->allowed);
    free(p->device);
    free(p);
}

enum pipeline_status pipeline_status(struct pipeline *p, char *msg, size_t n)
{
    pthread_mutex_lock(&p->mu);
    enum pipeline_status s = p->status;
    if (msg && n)
        snprintf(msg, n, "%s", p->msg);
    pthread_mutex_unlock(&p->mu);
    return s;
}

bool pipeline_wait_ready(struct pipeline *p, const volatile bool *stop)
{
    pthread_mutex_lock(&p->mu);
    while (p->status == PIPELINE_LOADING && !(stop && *stop)) {
        struct timespec ts = sd_deadline_ms(CLOCK_MONOTONIC, 100);
        pthread_cond_timedwait(&p->cv, &p->mu, &ts);
    }
    bool ready = p->status == PIPELINE_READY;
    pthread_mutex_unlock(&p->mu);
    return ready;
}

const char *pipeline_model_name(struct pipeline *p)
{
    return p->name;
}

void *pipeline_engine(struct pipeline *p, enum pipeline_engine_kind kind)
{
    if (pipeline_status(p, NULL, 0) != PIPELINE_READY || kind >= PIPELINE_N_ENGINES)
        return NULL;
    return p->engines[kind];
}

const struct pipeline_opts *pipeline_opts(const struct pipeline *p)
{
    return &p->o;
}

enum sd_err pipeline_worker_create(struct pipeline *p, struct pipeline_worker **out,
                                   struct sd_error *err)
{
    if (pipeline_status(p, NULL, 0) != PIPELINE_READY)
        return sd_fail(err, SD_EBUSY, "the model is not loaded");
    struct pipeline_worker *w = calloc(1, sizeof(*w));
    if (!w)
        return sd_fail(err, SD_ENOMEM, "pipeline worker");
    w->p = p;
    for (int k = 0; k < PIPELINE_N_ENGINES; k++) {
        enum sd_err rc = engine_ops[k]->state_create(p->engines[k], &w->states[k], err);
        if (rc != SD_OK) {
            pipeline_worker_destroy(w);
            return rc;
        }
    }
    *out = w;
    return SD_OK;
}

void pipeline_worker_destroy(struct pipeline_worker *w)
{
    if (!w)
        return;
    for (int k = 0; k < PIPELINE_N_ENGINES; k++)
        if (w->states[k])
            engine_ops[k]->state_destroy(w->states[k]);
    free(w);
}

void *pipeline_worker_state(struct pipeline_worker *w, enum pipeline_engine_kind kind)
{
    return kind < PIPELINE_N_ENGINES ? w->states[kind] : NULL;
}

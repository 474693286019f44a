/*
 * engine.c - model + tokenizer + per-worker state, and one transcription
 * run (see engine.h). Loading happens on its own thread because a large
 * model takes seconds to map and check, and the service must answer
 * /health (503, "loading") from the first millisecond.
 * Request fields map onto transcribe_params here and nowhere else.
 */
#include "jobs/engine.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobs/vad_filter.h"
#include "vad/vad.h"
#include "whisper/batcher.h"
#include "whisper/model.h"
#include "whisper/tokenizer.h"
#include "whisper/transcribe.h"
#include "whisper/whisper.h"

/*
 * Only steps of at most this many sequences are shared between requests
 * (greedy decoding: realtime, beam_size 1). One step of base.en streams
 * ~116 MB of weights; a row costs ~0.45 ms of f16 FMAs on one AVX-512 core
 * against ~3 ms to stream them, so a pass is memory bound for a few rows and
 * compute bound from ~5: two beam-5 requests gain nothing from one pass and
 * lose their overlap (bench/concurrent_throughput.py: 28 % less throughput).
 */
#define BATCH_MAX_ROWS_PER_REQUEST 2

struct engine {
    char *model_path, *vad_path, *allowed;
    int threads_per_worker, batch_workers, batch_threads;
    double max_audio_s;
    pthread_t loader;
    bool loader_started;
    pthread_mutex_t mu;        /* guards status, msg, name */
    pthread_cond_t cv;         /* status left LOADING */
    enum engine_status status;
    char msg[256];
    char name[128];
    /* immutable once status is READY */
    struct whisper_model *model;
    struct tokenizer *tok;
    struct vad_model *vad;
    struct whisper_batcher *batcher; /* NULL: each worker decodes alone */
};

struct engine_worker {
    struct engine *e;
    struct whisper_state *st;
    int n_seq;
};

static void *load_main(void *arg)
{
    struct engine *e = arg;
    struct sd_error err = {0};
    struct whisper_model *m = NULL;
    struct tokenizer *tok = NULL;
    struct vad_model *vad = NULL;
    enum sd_err rc = whisper_model_load(e->model_path, &m, &err);
    if (rc == SD_OK)
        rc = tok_create(whisper_model_vocab(m), whisper_model_special(m),
                        whisper_model_hparams(m)->n_vocab, &tok, &err);
    if (rc == SD_OK && e->vad_path && *e->vad_path)
        rc = vad_model_load(e->vad_path, &vad, &err);
    struct whisper_batcher *batcher = NULL;
    if (rc == SD_OK && e->batch_workers > 1)
        rc = whisper_batcher_create(m, e->batch_threads, e->batch_workers,
                                    BATCH_MAX_ROWS_PER_REQUEST, &batcher, &err);
    pthread_mutex_lock(&e->mu);
    if (rc == SD_OK) {
        e->model = m;
        e->tok = tok;
        e->vad = vad;
        e->batcher = batcher;
        snprintf(e->name, sizeof(e->name), "%s", whisper_model_describe(m));
        e->status = ENGINE_READY;
    } else {
        vad_model_free(vad);
        tok_destroy(tok);
        whisper_model_free(m);
        snprintf(e->msg, sizeof(e->msg), "%s", err.msg);
        e->status = ENGINE_FAILED;
    }
    pthread_cond_broadcast(&e->cv);
    pthread_mutex_unlock(&e->mu);
    return NULL;
}

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

enum sd_err engine_create(const struct engine_opts *o, struct engine **out, struct sd_error *err)
{
    struct engine *e = calloc(1, sizeof(*e));
    if (!e)
        return sd_fail(err, SD_ENOMEM, "engine");
    pthread_mutex_init(&e->mu, NULL);
    pthread_cond_init(&e->cv, NULL);
    e->status = ENGINE_LOADING;
    e->threads_per_worker = o->threads_per_worker > 0 ? o->threads_per_worker : 1;
    e->batch_workers = o->batch_workers;
    e->batch_threads = o->batch_threads > 0 ? o->batch_threads : 1;
    e->max_audio_s = o->max_audio_s;
    e->model_path = strdup(o->model_path ? o->model_path : "");
    e->vad_path = o->vad_path ? strdup(o->vad_path) : NULL;
    e->allowed = o->allowed_formats ? strdup(o->allowed_formats) : NULL;
    if (!e->model_path) {
        engine_destroy(e);
        return sd_fail(err, SD_ENOMEM, "engine");
    }
    snprintf(e->name, sizeof(e->name), "%s", base_name(e->model_path));
    if (pthread_create(&e->loader, NULL, load_main, e) != 0) {
        engine_destroy(e);
        return sd_fail(err, SD_EINTERNAL, "cannot start the model loader thread");
    }
    e->loader_started = true;
    *out = e;
    return SD_OK;
}

void engine_destroy(struct engine *e)
{
    if (!e)
        return;
    if (e->loader_started)
        pthread_join(e->loader, NULL);
    whisper_batcher_destroy(e->batcher);
    vad_model_free(e->vad);
    tok_destroy(e->tok);
    whisper_model_free(e->model);
    pthread_cond_destroy(&e->cv);
    pthread_mutex_destroy(&e->mu);
    free(e->model_path);
    free(e->vad_path);
    free(e->allowed);
    free(e);
}

enum engine_status engine_status(struct engine *e, char *msg, size_t n)
{
    pthread_mutex_lock(&e->mu);
    enum engine_status s = e->status;
    if (msg && n)
        snprintf(msg, n, "%s", e->msg);
    pthread_mutex_unlock(&e->mu);
    return s;
}

bool engine_wait_ready(struct engine *e, const volatile bool *stop)
{
    pthread_mutex_lock(&e->mu);
    while (e->status == ENGINE_LOADING && !*stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 100 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&e->cv, &e->mu, &ts);
    }
    bool ready = e->status == ENGINE_READY;
    pthread_mutex_unlock(&e->mu);
    return ready;
}

const char *engine_model_name(struct engine *e)
{
    return e->name;
}

bool engine_vad_loaded(struct engine *e)
{
    return engine_status(e, NULL, 0) == ENGINE_READY && e->vad != NULL;
}

void engine_batch_stats(struct engine *e, struct engine_batch_stats *out)
{
    *out = (struct engine_batch_stats){0};
    if (engine_status(e, NULL, 0) != ENGINE_READY || !e->batcher)
        return;
    struct whisper_batcher_stats s;
    whisper_batcher_stats(e->batcher, &s);
    *out = (struct engine_batch_stats){s.batches, s.steps, s.rows};
}

enum sd_err engine_worker_create(struct engine *e, struct engine_worker **out,
                                 struct sd_error *err)
{
    if (engine_status(e, NULL, 0) != ENGINE_READY)
        return sd_fail(err, SD_EBUSY, "the model is not loaded");
    struct engine_worker *w = calloc(1, sizeof(*w));
    if (!w)
        return sd_fail(err, SD_ENOMEM, "engine worker");
    struct transcribe_params d = transcribe_params_default();
    w->e = e;
    w->n_seq = transcribe_n_seq(&d); /* beams + greedy companion, or best_of */
    enum sd_err rc = whisper_state_create(e->model, e->threads_per_worker, w->n_seq, &w->st, err);
    if (rc != SD_OK) {
        free(w);
        return rc;
    }
    *out = w;
    return SD_OK;
}

void engine_worker_destroy(struct engine_worker *w)
{
    if (!w)
        return;
    whisper_state_destroy(w->st);
    free(w);
}

/* Request fields -> decoding parameters (defaults from transcribe_params_default). */
static void apply_params(struct engine_worker *w, const struct job_params *jp,
                         struct transcribe_params *p)
{
    *p = transcribe_params_default();
    p->task = jp->task;
    if (jp->language[0] && strcmp(jp->language, "auto") != 0)
        p->language = jp->language;
    p->prompt = jp->prompt;
    if (jp->has_temperature) {
        p->temperature = jp->temperature;
        /* OpenAI: 0 means "automatic" fallback; a positive value is used as given */
        p->no_fallback = jp->temperature > 0;
    }
    if (jp->beam_size > 0)
        p->beam_size = jp->beam_size < w->n_seq - 1 ? jp->beam_size : w->n_seq - 1;
    if (jp->no_timestamps)
        p->timestamps = false;
    if (jp->no_fallback)
        p->no_fallback = true;
    if (jp->max_tokens > 0)
        p->max_tokens = jp->max_tokens;
    p->word_timestamps = jp->word_timestamps;
    p->n_threads = w->e->threads_per_worker;
    p->batcher = w->e->batcher;
}

enum sd_err engine_run(struct engine_worker *w, const char *path, const struct job_params *jp,
                       engine_progress_fn progress, engine_segment_fn on_segment, void *user,
                       struct transcript **out, double *audio_s, struct sd_error *err)
{
    struct audio_decode_opts ao = audio_decode_opts_default();
    struct audio_info info = {0};
    struct transcribe_params p;
    float *pcm = NULL;
    size_t n = 0;

    if (w->e->max_audio_s > 0)
        ao.max_duration_s = w->e->max_audio_s;
    ao.allowed = w->e->allowed;
    /* A freshly exec'd decoder holds none of the server's memory, locks or secrets. */
    ao.helper_exe = "/proc/self/exe";
    enum sd_err rc = audio_decode_file(path, &ao, &pcm, &n, &info, err);
    if (rc != SD_OK)
        return rc;
    if (progress && !progress(user, 0.0f)) {
        free(pcm);
        return sd_fail(err, SD_ECANCELLED, "cancelled");
    }
    apply_params(w, jp, &p);
    p.progress = progress;
    p.progress_user = user;
    p.on_segment = on_segment;
    p.on_segment_user = user;
    struct vad_params vp = vad_params_default();
    const struct vad_model *vad = jp->no_vad ? NULL : w->e->vad;
    rc = transcribe_pcm_vad(w->st, w->e->tok, vad, &vp, pcm, n, &p, out, err);
    free(pcm);
    if (rc == SD_OK)
        *audio_s = (double)n / AUDIO_SAMPLE_RATE;
    return rc;
}

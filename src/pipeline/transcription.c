/*
 * transcription.c - the speech-to-text engine (see transcription.h): its
 * models (Whisper model, tokenizer, optional Silero VAD, optional batcher of
 * shared decoding steps), a worker's decoding state, and one run.
 */
#include "pipeline/transcription.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audio/audio.h"
#include "backend/ops.h"
#include "pipeline/passes.h"
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

struct stt_engine {
    const struct pipeline_opts *o;   /* the pipeline's; outlives the engine */
    struct whisper_model *model;
    struct tokenizer *tok;
    struct vad_model *vad;           /* NULL: no VAD model */
    struct whisper_batcher *batcher; /* NULL: each worker decodes alone */
    struct pipeline_kernels kernels; /* chosen at load */
};

struct stt_state {
    struct stt_engine *e;
    struct whisper_state *st;
    int n_seq_default;               /* what the default parameters need; kept between runs */
};

static void stt_unload(void *engine)
{
    struct stt_engine *e = engine;
    if (!e)
        return;
    whisper_batcher_destroy(e->batcher);
    vad_model_free(e->vad);
    tok_destroy(e->tok);
    whisper_model_free(e->model);
    free(e);
}

static enum sd_err stt_load(const struct pipeline_opts *o, void **out, struct sd_error *err)
{
    struct stt_engine *e = calloc(1, sizeof(*e));
    if (!e)
        return sd_fail(err, SD_ENOMEM, "transcription engine");
    e->o = o;
    const struct sd_backend_ops *dev = NULL;
    enum sd_err rc = sd_backend_find(o->device, &dev, err);
    if (rc == SD_OK)
        rc = whisper_model_load_on(o->model_path, dev, &e->model, err);
    e->kernels.source = "off";
    if (rc == SD_OK && o->calibrate) { /* before any state (the batcher's too) exists */
        struct sd_calibration c;
        int threads = o->threads_per_worker > 0 ? o->threads_per_worker : 1;
        rc = whisper_model_calibrate(e->model, threads, o->kernel_cache, o->kernel_version, 0,
                                     &c, err);
        if (rc == SD_OK) {
            snprintf(e->kernels.choice, sizeof(e->kernels.choice), "%s", c.choice);
            e->kernels.source = c.source;
            e->kernels.ms = c.ms;
        }
    }
    if (rc == SD_OK)
        rc = tok_create(whisper_model_vocab(e->model), whisper_model_special(e->model),
                        whisper_model_hparams(e->model)->n_vocab, &e->tok, err);
    if (rc == SD_OK && o->vad_path && *o->vad_path)
        rc = vad_model_load(o->vad_path, &e->vad, err);
    if (rc == SD_OK && o->batch_workers > 1)
        rc = whisper_batcher_create(e->model, o->batch_threads, o->batch_workers,
                                    BATCH_MAX_ROWS_PER_REQUEST, &e->batcher, err);
    if (rc != SD_OK) {
        stt_unload(e);
        return rc;
    }
    *out = e;
    return SD_OK;
}

static const char *stt_describe(const void *engine)
{
    return whisper_model_describe(((const struct stt_engine *)engine)->model);
}

static enum sd_err stt_state_create(void *engine, void **out, struct sd_error *err)
{
    struct stt_engine *e = engine;
    struct stt_state *s = calloc(1, sizeof(*s));
    if (!s)
        return sd_fail(err, SD_ENOMEM, "transcription state");
    struct transcribe_params d = transcribe_params_default();
    s->e = e;
    s->n_seq_default = transcribe_n_seq(&d); /* beams + greedy companion, or best_of */
    enum sd_err rc = whisper_state_create(e->model, e->o->threads_per_worker, s->n_seq_default,
                                          &s->st, err);
    if (rc != SD_OK) {
        free(s);
        return rc;
    }
    *out = s;
    return SD_OK;
}

static void stt_state_destroy(void *state)
{
    struct stt_state *s = state;
    whisper_state_destroy(s->st);
    free(s);
}

const struct pipeline_engine_ops stt_engine_ops = {
    .kind = "transcription",
    .load = stt_load,
    .unload = stt_unload,
    .describe = stt_describe,
    .state_create = stt_state_create,
    .state_destroy = stt_state_destroy,
};

/* Runs the transcription of one recording, from a source the passes can replay. */
static enum sd_err run_source(struct pipeline_worker *w, const struct pcm_source *src,
                              const struct stt_engine_params *ep, const struct stt_hooks *hooks,
                              struct transcript **out, size_t *n_samples, struct sd_error *err)
{
    struct stt_state *s = pipeline_worker_state(w, PIPELINE_STT);
    struct transcribe_params p = ep->decode;
    p.n_threads = s->e->o->threads_per_worker;
    p.batcher = s->e->batcher;
    if (hooks) {
        p.progress = hooks->progress;
        p.progress_user = hooks->user;
        p.on_segment = hooks->on_segment;
        p.on_segment_user = hooks->user;
        p.on_window = hooks->on_window;
        p.on_window_user = hooks->user;
    }
    /* more beams or samples than the state holds: grow it for this run */
    int need = transcribe_n_seq(&p);
    if (need > whisper_state_seqs(s->st) && need <= 64) {
        enum sd_err rc = whisper_state_set_seqs(s->st, need, err);
        if (rc != SD_OK)
            return rc;
    }
    const struct vad_model *vad = ep->vad_filter ? s->e->vad : NULL;
    enum sd_err rc = transcribe_source(s->st, s->e->tok, vad, &ep->vad, src, &p, out, n_samples,
                                       err);
    /* a large request's caches are not kept: memory stays at the default's between runs */
    if (whisper_state_seqs(s->st) > s->n_seq_default)
        whisper_state_set_seqs(s->st, s->n_seq_default, NULL);
    return rc;
}

/* PCM held in memory, played in one chunk. */
struct memory_source {
    const float *pcm;
    size_t n;
};

static enum sd_err play_memory(void *self, pcm_sink_fn sink, void *sink_user,
                               struct sd_error *err)
{
    const struct memory_source *m = self;
    return m->n ? sink(sink_user, m->pcm, m->n, err) : SD_OK;
}

enum sd_err pipeline_transcribe_pcm(struct pipeline_worker *w, const float *pcm,
                                    size_t n_samples, const struct stt_engine_params *ep,
                                    const struct stt_hooks *hooks, struct transcript **out,
                                    struct sd_error *err)
{
    struct memory_source m = {pcm, n_samples};
    struct pcm_source src = {play_memory, &m};
    size_t n = 0;
    return run_source(w, &src, ep, hooks, out, &n, err);
}

/* A file decoded anew (sandboxed) for every pass, so its samples are never held whole. */
struct file_source {
    const char *path;
    struct audio_decode_opts ao;
    pcm_sink_fn sink;
    void *sink_user;
};

static enum sd_err decoded_chunk(void *user, const struct audio_info *info, const float *pcm,
                                 size_t n_samples, struct sd_error *err)
{
    const struct file_source *f = user;
    (void)info;
    return f->sink(f->sink_user, pcm, n_samples, err);
}

static enum sd_err play_file(void *self, pcm_sink_fn sink, void *sink_user,
                             struct sd_error *err)
{
    struct file_source *f = self;
    f->sink = sink;
    f->sink_user = sink_user;
    return audio_decode_stream(f->path, &f->ao, decoded_chunk, f, NULL, err);
}

enum sd_err pipeline_transcribe_file(struct pipeline_worker *w, const char *path,
                                     const struct stt_engine_params *ep,
                                     const struct stt_hooks *hooks, struct transcript **out,
                                     double *audio_s, struct sd_error *err)
{
    const struct stt_state *s = pipeline_worker_state(w, PIPELINE_STT);
    struct file_source f = {.path = path, .ao = audio_decode_opts_default()};
    if (s->e->o->max_audio_s > 0)
        f.ao.max_duration_s = s->e->o->max_audio_s;
    f.ao.allowed = s->e->o->allowed_formats;
    if (s->e->o->decode_timeout_ms > 0)
        f.ao.timeout_ms = s->e->o->decode_timeout_ms;
    f.ao.timeout_ms_per_audio_s = s->e->o->decode_ms_per_audio_s;
    if (hooks && hooks->keep_going) {
        f.ao.keep_going = hooks->keep_going;
        f.ao.keep_going_user = hooks->user;
    }
    /* A freshly exec'd decoder holds none of the server's memory, locks or secrets. */
    f.ao.helper_exe = "/proc/self/exe";
    struct pcm_source src = {play_file, &f};
    size_t n = 0;
    enum sd_err rc = run_source(w, &src, ep, hooks, out, &n, err);
    if (rc == SD_OK)
        *audio_s = (double)n / AUDIO_SAMPLE_RATE;
    return rc;
}

bool pipeline_vad_loaded(struct pipeline *p)
{
    const struct stt_engine *e = pipeline_engine(p, PIPELINE_STT);
    return e && e->vad;
}

bool pipeline_multilingual(struct pipeline *p)
{
    const struct stt_engine *e = pipeline_engine(p, PIPELINE_STT);
    return !e || whisper_model_is_multilingual(e->model);
}

void pipeline_kernels(struct pipeline *p, struct pipeline_kernels *out)
{
    const struct stt_engine *e = pipeline_engine(p, PIPELINE_STT);
    *out = (struct pipeline_kernels){.source = ""};
    if (e)
        *out = e->kernels;
}

void pipeline_batch_stats(struct pipeline *p, struct pipeline_batch_stats *out)
{
    const struct stt_engine *e = pipeline_engine(p, PIPELINE_STT);
    *out = (struct pipeline_batch_stats){0};
    if (!e || !e->batcher)
        return;
    struct whisper_batcher_stats s;
    whisper_batcher_stats(e->batcher, &s);
    *out = (struct pipeline_batch_stats){s.batches, s.steps, s.rows};
}

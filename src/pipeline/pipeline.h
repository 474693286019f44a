/*
 * pipeline.h - the one home of the speech pipeline: the engines' models,
 * loaded once and shared read-only, and the per-thread states that run
 * them. The job workers, the realtime decoder (through the jobs) and
 * `scribed transcribe` all go through here; nothing above this layer
 * assembles audio decoding, VAD and Whisper by itself.
 *
 * An engine (transcription, speech synthesis) plugs in as a
 * struct pipeline_engine_ops: load its models, describe them, make a
 * per-worker state. Its typed entry points (transcription.h) take engine
 * parameters, never job or HTTP structs.
 *
 * Loading can run on a background thread (the service answers /health with
 * "loading" meanwhile) or before pipeline_create returns (the CLI).
 * Threads: a READY pipeline is shared by any number of threads; a
 * pipeline_worker belongs to one thread at a time.
 */
#ifndef SD_PIPELINE_PIPELINE_H
#define SD_PIPELINE_PIPELINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

enum pipeline_status { PIPELINE_LOADING, PIPELINE_READY, PIPELINE_FAILED };

struct pipeline_opts {
    const char *model_path;      /* whisper ggml file */
    const char *vad_path;        /* Silero VAD file, or NULL/"" for none */
    const char *device;          /* compute device: "cpu", "cuda", NULL/""/"auto" (backend/ops.h) */
    int threads_per_worker;
    /*
     * > 1: the greedy decoding steps of that many workers run together while
     * several of them decode (whisper/batcher.h), on batch_threads threads.
     */
    int batch_workers, batch_threads;
    double max_audio_s;          /* longest audio decoded (0: the decoder's default) */
    const char *allowed_formats; /* audio_decode_opts.allowed (NULL: every format) */
    int decode_timeout_ms;       /* audio_decode_opts.timeout_ms (0: the decoder's default) */
    int decode_ms_per_audio_s;   /* audio_decode_opts.timeout_ms_per_audio_s (0: none) */
    bool background;             /* load on a thread of its own */
    /*
     * true: after loading, choose the compute kernels by timing them on the
     * model (whisper_model_calibrate) with threads_per_worker threads, the
     * choice cached in kernel_cache (NULL/"": none) under kernel_version.
     */
    bool calibrate;
    const char *kernel_cache;
    const char *kernel_version;
};

/* An engine of the pipeline. Called by pipeline.c only. */
struct pipeline_engine_ops {
    const char *kind;            /* "transcription", "speech" */
    /* Loads the models (on the loader thread); *engine is owned by the pipeline. */
    enum sd_err (*load)(const struct pipeline_opts *o, void **engine, struct sd_error *err);
    void (*unload)(void *engine);
    /* What /v1/models and the logs call the loaded model. Valid while loaded. */
    const char *(*describe)(const void *engine);
    /* A per-worker state; owned by the worker. */
    enum sd_err (*state_create)(void *engine, void **state, struct sd_error *err);
    void (*state_destroy)(void *state);
};

/* Transcription (transcription.h) and speech synthesis (speech.h). */
enum pipeline_engine_kind { PIPELINE_STT, PIPELINE_TTS, PIPELINE_N_ENGINES };

struct pipeline;
struct pipeline_worker;

/* Starts loading (or loads, when !o->background). Caller owns *out: pipeline_destroy(). */
enum sd_err pipeline_create(const struct pipeline_opts *o, struct pipeline **out,
                            struct sd_error *err);
void pipeline_destroy(struct pipeline *p);
/* Current status; on PIPELINE_FAILED msg receives why (msg may be NULL). */
enum pipeline_status pipeline_status(struct pipeline *p, char *msg, size_t n);
/* Blocks until loading ends or *stop becomes true (stop may be NULL); true if READY. */
bool pipeline_wait_ready(struct pipeline *p, const volatile bool *stop);
/* "base.en f16" once loaded, else the model file's name. Valid while p lives. */
const char *pipeline_model_name(struct pipeline *p);
/* The loaded engine of a kind (NULL unless READY). */
void *pipeline_engine(struct pipeline *p, enum pipeline_engine_kind kind);
const struct pipeline_opts *pipeline_opts(const struct pipeline *p);

/* Per-thread states of every engine; needs a READY pipeline. Caller owns: _destroy(). */
enum sd_err pipeline_worker_create(struct pipeline *p, struct pipeline_worker **out,
                                   struct sd_error *err);
void pipeline_worker_destroy(struct pipeline_worker *w);
/* The worker's state for one engine. */
void *pipeline_worker_state(struct pipeline_worker *w, enum pipeline_engine_kind kind);

#endif

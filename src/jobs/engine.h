/*
 * engine.h - the transcription engine as the job workers see it: one model
 * and tokenizer loaded once (in a background thread, so /health can answer
 * 503 "loading" meanwhile) and shared read-only, plus one engine_worker
 * (its own whisper_state) per worker thread.
 *
 * engine_run does file -> PCM (audio/, sandboxed) -> transcript (whisper/).
 * It never logs and knows nothing of HTTP or the store.
 */
#ifndef SD_JOBS_ENGINE_H
#define SD_JOBS_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "audio/audio.h"
#include "jobs/job.h"
#include "util/err.h"
#include "whisper/transcript.h"

enum engine_status { ENGINE_LOADING, ENGINE_READY, ENGINE_FAILED };

struct engine_opts {
    const char *model_path;     /* whisper ggml file */
    const char *vad_path;       /* Silero VAD file or NULL */
    int threads_per_worker;
    /*
     * > 1: the greedy decoding steps of that many workers run together while
     * several of them decode (whisper/batcher.h), on batch_threads threads.
     */
    int batch_workers, batch_threads;
    double max_audio_s;         /* decode limit */
    const char *allowed_formats;/* audio_decode_opts.allowed */
};

struct engine;
struct engine_worker;

/* Starts loading in a background thread. Caller owns *out: engine_destroy(). */
enum sd_err engine_create(const struct engine_opts *o, struct engine **out, struct sd_error *err);
void engine_destroy(struct engine *e);
/* Current status; on ENGINE_FAILED msg receives why (msg may be NULL). */
enum engine_status engine_status(struct engine *e, char *msg, size_t n);
/* Blocks until loading ends or *stop becomes true; true if READY. */
bool engine_wait_ready(struct engine *e, const volatile bool *stop);
/* "base.en f16" once loaded, else the file name. Valid while e lives. */
const char *engine_model_name(struct engine *e);
bool engine_vad_loaded(struct engine *e);
/* Counters of the shared decoding steps; all zero when steps are not batched. */
struct engine_batch_stats {
    uint64_t batches, steps, rows;
};
void engine_batch_stats(struct engine *e, struct engine_batch_stats *out);

/* Per-thread decoding state; needs a READY engine. Caller owns: engine_worker_destroy(). */
enum sd_err engine_worker_create(struct engine *e, struct engine_worker **out,
                                 struct sd_error *err);
void engine_worker_destroy(struct engine_worker *w);

/* Cancel/progress hook: return false to stop (the run then fails with SD_ECANCELLED). */
typedef bool (*engine_progress_fn)(void *user, float fraction);
/* Called as each segment becomes final (same user as progress); may be NULL. */
typedef void (*engine_segment_fn)(void *user, const struct transcript_segment *s);

/*
 * Decodes the audio file at path and transcribes it with request fields p.
 * On SD_OK the caller owns *out (transcript_destroy); *audio_s = seconds of audio.
 */
enum sd_err engine_run(struct engine_worker *w, const char *path, const struct job_params *p,
                       engine_progress_fn progress, engine_segment_fn on_segment, void *user,
                       struct transcript **out, double *audio_s, struct sd_error *err);

#endif

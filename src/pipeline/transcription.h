/*
 * transcription.h - the speech-to-text engine of the pipeline: audio file
 * (decoded in the sandboxed child, audio/) or PCM -> speech spans (Silero
 * VAD, vad/) -> transcript (Whisper, whisper/). Its models are loaded by
 * pipeline.c through stt_engine_ops; a run uses one worker's state.
 *
 * Runs take engine parameters (stt_params.h: stt_params_to_engine), honour
 * every one of them (a request for 8 beams gets 8: the worker's decoder
 * grows its sequence slots for the run and gives the memory back after),
 * never log, and know nothing of HTTP, jobs or the store.
 */
#ifndef SD_PIPELINE_TRANSCRIPTION_H
#define SD_PIPELINE_TRANSCRIPTION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pipeline/pipeline.h"
#include "pipeline/stt_params.h"
#include "util/err.h"
#include "whisper/transcript.h"

extern const struct pipeline_engine_ops stt_engine_ops;

/* What a run reports while it goes; every member may be NULL. */
struct stt_hooks {
    /* After each window, with progress in [0, 1]; false cancels (SD_ECANCELLED). */
    bool (*progress)(void *user, float fraction);
    /* Each segment once it is final (streaming replies). */
    void (*on_segment)(void *user, const struct transcript_segment *s);
    /* What each window decoded, including the beams it ran (tests, debugging). */
    void (*on_window)(void *user, const struct transcribe_window_trace *w);
    void *user;
    /*
     * Asked while waiting on the audio decoder (every 100 ms or so) with the
     * seconds since it last sent audio; false kills the decoder at once and
     * cancels (SD_ECANCELLED). See audio_decode_opts.keep_going.
     */
    bool (*keep_going)(void *user, double stalled_s);
};

/*
 * Decodes the audio file at path and transcribes it. On SD_OK the caller
 * owns *out (transcript_destroy) and *audio_s is the audio's length.
 */
enum sd_err pipeline_transcribe_file(struct pipeline_worker *w, const char *path,
                                     const struct stt_engine_params *ep,
                                     const struct stt_hooks *hooks, struct transcript **out,
                                     double *audio_s, struct sd_error *err);
/* Transcribes 16 kHz mono PCM that is already decoded. Caller owns *out. */
enum sd_err pipeline_transcribe_pcm(struct pipeline_worker *w, const float *pcm,
                                    size_t n_samples, const struct stt_engine_params *ep,
                                    const struct stt_hooks *hooks, struct transcript **out,
                                    struct sd_error *err);

/* True when a VAD model is loaded (vad_filter has an effect). */
bool pipeline_vad_loaded(struct pipeline *p);
/* False when the loaded model is English-only (no other language, no translation); true until loaded. */
bool pipeline_multilingual(struct pipeline *p);

/* Counters of the decoding steps shared between workers; zero when not shared. */
struct pipeline_batch_stats {
    uint64_t batches, steps, rows;
};
void pipeline_batch_stats(struct pipeline *p, struct pipeline_batch_stats *out);

/* The compute kernels the transcription engine chose at load (all "" until loaded). */
struct pipeline_kernels {
    char choice[160]; /* "gemv_f16=avx512 gemv_q=avx512 gemm=avx512", "" when not calibrated */
    const char *source; /* "measured", "cache", "forced", "default", "off" */
    double ms;        /* what choosing cost at start */
};
void pipeline_kernels(struct pipeline *p, struct pipeline_kernels *out);

#endif

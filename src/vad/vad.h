/*
 * vad.h - Silero VAD v6 (ggml file as whisper.cpp users download it) and the
 * speech segments derived from its per-window probabilities.
 *
 * Numbers follow whisper.cpp's Silero path: 16 kHz mono float PCM, one
 * probability per 512-sample window (the last window zero-padded), each
 * window reflect-padded by 64 samples, LSTM state carried from window to
 * window and reset per vad_probs call. Segment rules are whisper.cpp's
 * (whisper_vad_segments_from_probs), integer sample arithmetic included.
 *
 * Threads: a loaded vad_model is immutable and may be shared by any number of
 * threads; a vad_state (LSTM memory + scratch) belongs to one thread at a time.
 * Nothing here logs or keeps global state.
 */
#ifndef SD_VAD_VAD_H
#define SD_VAD_VAD_H

#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

#define VAD_SAMPLE_RATE 16000
#define VAD_WINDOW_SAMPLES 512 /* one probability per window: 32 ms */

struct vad_model;
struct vad_state;

/*
 * Loads a ggml Silero VAD file (magic "ggml", type "silero-16k", v6.x).
 * Every tensor is checked for name, type and shape and converted to f32.
 * On SD_OK the caller owns *out: vad_model_free(). Errors: SD_ENOTFOUND /
 * SD_EIO (cannot read), SD_EFORMAT (not a Silero ggml file, truncated).
 */
enum sd_err vad_model_load(const char *path, struct vad_model **out, struct sd_error *err);
/* Same from a buffer (copied; the buffer may be freed afterwards). */
enum sd_err vad_model_load_buffer(const void *data, size_t n_bytes, struct vad_model **out,
                                  struct sd_error *err);
void vad_model_free(struct vad_model *model);
/* "6.2.0" style version from the file header. Borrowed from the model. */
const char *vad_model_version(const struct vad_model *model);

/*
 * Conv inputs: whisper.cpp's ggml_conv_1d stores every conv input as f16
 * (its kernels are f16). VAD_PRECISION_REFERENCE rounds those inputs the same
 * way (probabilities within ~1e-4 of whisper.cpp); VAD_PRECISION_F32 keeps
 * them in f32 (within ~1e-2). The default is the reference behaviour.
 */
enum vad_precision {
    VAD_PRECISION_REFERENCE = 0,
    VAD_PRECISION_F32 = 1,
};

/* Per-stream state: LSTM h/c + scratch. Caller owns *out: vad_state_free(). */
enum sd_err vad_state_new(const struct vad_model *model, enum vad_precision precision,
                          struct vad_state **out, struct sd_error *err);
void vad_state_free(struct vad_state *st);
/* Zeroes the LSTM memory (start of a new, unrelated stream). */
void vad_state_reset(struct vad_state *st);
/*
 * Runs one window: n_samples <= 512 samples (fewer are zero-padded, as the
 * last window of a file). Returns the speech probability in [0, 1] and
 * advances the LSTM memory. Never fails for valid arguments.
 */
float vad_state_step(struct vad_state *st, const float *samples, size_t n_samples);
/*
 * Runs the ceil(n_samples / 512) consecutive windows of pcm (the last one
 * zero-padded), carrying the LSTM memory from the state, and writes one
 * probability per window to probs. Same numbers as vad_state_step window by
 * window, several times faster (the conv front end is batched).
 */
void vad_state_run(struct vad_state *st, const float *pcm, size_t n_samples, float *probs);

/*
 * Probabilities of all ceil(n_samples / 512) windows of pcm, with fresh LSTM
 * memory (as whisper_vad_detect_speech). On SD_OK the caller owns *probs
 * (free(); NULL when n_samples is 0).
 */
enum sd_err vad_probs(const struct vad_model *model, const float *pcm, size_t n_samples,
                      enum vad_precision precision, float **probs, size_t *n_probs,
                      struct sd_error *err);

/*
 * vad_probs for a recording that arrives in order, in chunks of any size:
 * only the probabilities are kept, never the samples. The probabilities are
 * identical to vad_probs' on the whole recording. Caller owns *out:
 * vad_stream_free(); one stream belongs to one thread.
 */
struct vad_stream;
enum sd_err vad_stream_begin(const struct vad_model *model, enum vad_precision precision,
                             struct vad_stream **out, struct sd_error *err);
enum sd_err vad_stream_push(struct vad_stream *s, const float *pcm, size_t n,
                            struct sd_error *err);
/* After the last push: every probability; the caller owns *probs (free(); NULL if none). */
enum sd_err vad_stream_finish(struct vad_stream *s, float **probs, size_t *n_probs,
                              struct sd_error *err);
void vad_stream_free(struct vad_stream *s);

/* Segment parameters (faster-whisper / whisper.cpp names). */
struct vad_params {
    float threshold;            /* speech starts at p >= threshold */
    float neg_threshold;        /* speech ends below it; < 0: threshold - 0.15 (floor 0.01) */
    int min_speech_ms;          /* shorter speech is dropped */
    int min_silence_ms;         /* silence that ends a segment */
    float max_speech_s;         /* longer speech is split; <= 0 or > 100000: no limit */
    int speech_pad_ms;          /* padding added on each side */
};

/* scribed's defaults (the seeds' tuning): 0.35, auto, 250 ms, 300 ms, 30 s, 100 ms. */
struct vad_params vad_params_default(void);
/* whisper.cpp's whisper_vad_default_params: 0.5, auto, 250, 100, no limit, 30. */
struct vad_params vad_params_whisper_cpp(void);
/* SD_EINVAL with the parameter's name when a value is out of range. */
enum sd_err vad_params_check(const struct vad_params *p, struct sd_error *err);

/* One speech span in samples at 16 kHz: [start, end). */
struct vad_segment {
    int64_t start;
    int64_t end;
};

/* Samples -> centiseconds, rounded as whisper.cpp does: (int64)(s / 16000 * 100 + 0.5). */
int64_t vad_samples_to_cs(int64_t samples);

/*
 * Speech segments from n_probs window probabilities. The audio length used
 * for clamping is n_probs * 512. One deliberate difference from whisper.cpp:
 * a split forced by max_speech_s is not merged back by the "gaps < 200 ms"
 * step (whisper.cpp rejoins them, so its limit rarely takes effect).
 * On SD_OK the caller owns *segs (free(); NULL when *n_segs is 0).
 */
enum sd_err vad_segments_from_probs(const float *probs, size_t n_probs,
                                    const struct vad_params *params, struct vad_segment **segs,
                                    size_t *n_segs, struct sd_error *err);

/* vad_probs (reference precision) + vad_segments_from_probs. Caller owns *segs (free()). */
enum sd_err vad_detect(const struct vad_model *model, const float *pcm, size_t n_samples,
                       const struct vad_params *params, struct vad_segment **segs,
                       size_t *n_segs, struct sd_error *err);

#endif

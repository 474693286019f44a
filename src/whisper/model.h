/*
 * model.h - a loaded Whisper model: hyper-parameters, mel filters, vocabulary
 * and weight tensors, read from whisper.cpp's ggml file format
 * (ggml-tiny.en.bin ... ggml-large-v3.bin, f32/f16, later quantized).
 *
 * The model is immutable after loading and may be shared read-only by any
 * number of threads (each with its own struct whisper_state, see whisper.h).
 * Pipeline: model -> mel (mel.h) -> encoder/decoder (whisper.h) -> transcribe.h.
 */
#ifndef SD_WHISPER_MODEL_H
#define SD_WHISPER_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "backend/tensor.h"
#include "util/err.h"

struct whisper_hparams {
    int32_t n_vocab;        /* 51864 English-only, 51865 multilingual, 51866 large-v3 */
    int32_t n_audio_ctx;    /* 1500 */
    int32_t n_audio_state;
    int32_t n_audio_head;
    int32_t n_audio_layer;
    int32_t n_text_ctx;     /* 448 */
    int32_t n_text_state;
    int32_t n_text_head;
    int32_t n_text_layer;
    int32_t n_mels;         /* 80, or 128 for large-v3 */
    int32_t ftype;          /* 0 f32, 1 f16, quantized types later */
};

/* Special token ids; they depend on n_vocab (multilingual models shift them by one). */
struct whisper_special_tokens {
    int32_t eot, sot, translate, transcribe, solm, prev, nosp, no_timestamps, timestamp_begin;
    int32_t lang_first;     /* sot + 1: first language token */
    int32_t n_langs;        /* language tokens present: 0 for English-only models */
};

/* Token bytes as stored in the file (ids 0 .. n_file_tokens-1). */
struct whisper_vocab {
    int32_t n_file_tokens;
    const uint8_t **bytes;  /* bytes[i] points into the model's vocab blob */
    const uint32_t *len;
};

struct whisper_model;
struct sd_backend_ops;

/*
 * Loads a model file. On failure returns an error whose message names the
 * file and what is wrong (missing, truncated, bad magic, bad shape, ...).
 * On SD_OK the caller owns *out: whisper_model_free().
 * The file is memory-mapped and its weights are used in place: replace a
 * model file atomically (write elsewhere, rename over it), never rewrite it
 * in place while a process has it loaded (that process would get SIGBUS).
 */
enum sd_err whisper_model_load(const char *path, struct whisper_model **out, struct sd_error *err);
/*
 * The same on compute device dev (ops.h: sd_backend_find; NULL: the
 * default): every weight tensor is uploaded to it, and every state of the
 * model computes there.
 */
enum sd_err whisper_model_load_on(const char *path, const struct sd_backend_ops *dev,
                                  struct whisper_model **out, struct sd_error *err);
/* The device name the model computes on ("cpu", "cpu-check", "cuda"). */
const char *whisper_model_device(const struct whisper_model *m);
void whisper_model_free(struct whisper_model *m);

const struct whisper_hparams *whisper_model_hparams(const struct whisper_model *m);
const struct whisper_special_tokens *whisper_model_special(const struct whisper_model *m);
const struct whisper_vocab *whisper_model_vocab(const struct whisper_model *m);
int whisper_model_is_multilingual(const struct whisper_model *m);
/* Mel filter bank [n_mels][n_fft_bins = 201], row-major, owned by the model. */
const float *whisper_model_mel_filters(const struct whisper_model *m, int *n_mels, int *n_fft_bins);
/* Looks a weight tensor up by its file name; NULL if absent. Borrowed. */
const struct sd_tensor *whisper_model_tensor(const struct whisper_model *m, const char *name);
/* A short description such as "base.en f16" (for /health, logs). */
const char *whisper_model_describe(const struct whisper_model *m);

struct sd_calibration;
/*
 * Chooses the compute kernels of the model's states by measurement
 * (ops.h: sd_backend_calibrate) on one decoder step's weights with n_threads,
 * cached in cache_path (NULL/"": no cache) under version; force: measure even
 * when the cache has a choice. States created afterwards use the choice; c
 * receives the details. Call from one thread before creating states.
 */
enum sd_err whisper_model_calibrate(struct whisper_model *m, int n_threads,
                                    const char *cache_path, const char *version, int force,
                                    struct sd_calibration *c, struct sd_error *err);
/*
 * Bytes one single-sequence decoder step streams: the decoder's matrices and
 * the vocabulary product's weights plus every layer's cross-attention K and V
 * (f16, n_audio_ctx rows). The memory-bandwidth bound of a token is this over
 * the machine's streaming read bandwidth.
 */
size_t whisper_model_step_bytes(const struct whisper_model *m);
/* The kernels the states use ("gemv_f16=... gemv_q=... gemm=..."; "" before calibration). */
const char *whisper_model_kernels(const struct whisper_model *m);

#endif

/*
 * quantize.h - rewrites a whisper.cpp ggml model file (f32 or f16) with its
 * matrices in a block-quantized type (q8_0, q5_0, q5_1, q4_0, q4_1), the same
 * selection whisper.cpp's quantize tool makes: every 2-D tensor whose rows are
 * whole 32-value blocks, except the positional embeddings; 1-D tensors, conv
 * biases and the 3-D conv kernels keep their type. The result loads with
 * whisper_model_load and with whisper.cpp. Does not load or run the model.
 */
#ifndef SD_WHISPER_QUANTIZE_H
#define SD_WHISPER_QUANTIZE_H

#include <stddef.h>

#include "backend/tensor.h"
#include "util/err.h"

struct whisper_quantize_stats {
    size_t bytes_in, bytes_out;
    int n_tensors, n_quantized;
};

/*
 * Reads in_path, writes out_path (through out_path + ".tmp" and a rename, so
 * a reader never sees half a file). type must be quantized. stats may be NULL.
 * Thread-safe (no shared state); memory use is about the size of one tensor.
 */
enum sd_err whisper_model_quantize(const char *in_path, const char *out_path, enum sd_type type,
                                   struct whisper_quantize_stats *stats, struct sd_error *err);

/* The sd_type named by s ("q8_0", ...), or -1. */
int whisper_quant_type_parse(const char *s);

#endif

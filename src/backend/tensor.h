/*
 * tensor.h - a weight tensor as the engine sees it: element type, shape and
 * a pointer to its data (usually inside the memory-mapped model file), and
 * the backend memory it was uploaded to (ops.h: the kernels read only that).
 * Type numbers are ggml's, so a file's tensor type maps directly.
 * ne[0] is the innermost (fastest-varying) dimension, as in ggml.
 *
 * Alignment: F32 tensor data handed out by the model loader is 4-byte aligned;
 * F16 and quantized data may sit at any byte offset of the file mapping, so
 * kernels read them with unaligned loads.
 */
#ifndef SD_BACKEND_TENSOR_H
#define SD_BACKEND_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#include "backend/mem.h"

enum sd_type {
    SD_TYPE_F32 = 0,
    SD_TYPE_F16 = 1,
    SD_TYPE_Q4_0 = 2,
    SD_TYPE_Q4_1 = 3,
    SD_TYPE_Q5_0 = 6,
    SD_TYPE_Q5_1 = 7,
    SD_TYPE_Q8_0 = 8,
};

struct sd_tensor {
    const char *name;
    enum sd_type type;
    int n_dims;
    int64_t ne[4];       /* ne[0] innermost; unused dims are 1 */
    const void *data;    /* host copy, borrowed from the model (the loader, quantizer, tests) */
    size_t n_bytes;
    struct sd_mem mem;   /* the compute copy: uploaded to the model's device at load */
};

/*
 * Static description of an element type: `block_size` elements are stored in
 * `block_bytes` bytes (1 / 4 for f32, 32 / 34 for q8_0). `supported` says
 * whether the kernels of this build can compute with it (all listed types). Returns NULL for a type number that is not in the table.
 */
struct sd_type_traits {
    const char *name;
    int block_size;
    int block_bytes;
    int supported;
};
const struct sd_type_traits *sd_type_traits(int type);

/* Bytes of n elements of type t (n a multiple of the block size); 0 for an unknown type. */
size_t sd_type_bytes(int type, int64_t n);

/* 1 for the block-quantized types (q4_0 ... q8_0), 0 for f32/f16. */
int sd_type_is_quantized(enum sd_type t);

/*
 * dst[0..n) = float values of n elements of type t stored at src (block start;
 * n a multiple of the block size). Portable reference code (backend/quant.c).
 */
void sd_dequantize(enum sd_type t, const void *src, float *dst, int64_t n);

/*
 * Encodes n floats (a multiple of the block size) as type t at dst, ggml's
 * round-to-nearest block quantizers; returns the bytes written
 * (sd_type_bytes(t, n)), 0 if n or t is invalid.
 */
size_t sd_quantize(enum sd_type t, const float *src, void *dst, int64_t n);

/* IEEE half <-> float conversions (round-to-nearest-even), portable C. */
float sd_f16_to_f32(uint16_t h);
uint16_t sd_f32_to_f16(float f);

#endif

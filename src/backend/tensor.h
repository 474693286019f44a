/*
 * tensor.h - a weight tensor as the engine sees it: element type, shape and
 * a pointer to its data (usually inside the memory-mapped model file).
 * Type numbers are ggml's, so a file's tensor type maps directly.
 * ne[0] is the innermost (fastest-varying) dimension, as in ggml.
 */
#ifndef SD_BACKEND_TENSOR_H
#define SD_BACKEND_TENSOR_H

#include <stddef.h>
#include <stdint.h>

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
    const void *data;    /* borrowed from the model */
    size_t n_bytes;
};

#endif

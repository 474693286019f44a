/*
 * ops.h - the compute boundary of the engine: every kernel the encoder and
 * decoder run (matmul by f32/f16/quantized weights, layer norm, GELU,
 * attention, conv1d, embedding rows) and every move of data in or out of
 * compute memory goes through these calls on a struct sd_backend.
 *
 * The boundary is chosen at run time: a device (struct sd_backend_ops, one
 * table of function pointers per implementation) is looked up by name
 * (sd_backend_find: "cpu", "cuda" where compiled in), the model's weights are
 * uploaded to it at load, and each whisper_state creates a backend (a
 * compute context: threads or streams, scratch) on the model's device. The
 * CPU (src/backend/cpu/: a persistent thread pool, AVX-512 / AVX2+FMA+F16C /
 * scalar kernels chosen at run time) is the first implementation; the
 * checking backend (src/backend/check/, SCRIBED_BACKEND_CHECK=1) is the CPU
 * with its memory made unreachable from the engine between ops.
 *
 * Memory: the engine never dereferences backend memory. Buffers are named by
 * struct sd_mem (an opaque buffer + a byte offset; sd_mem_f32/sd_mem_f16 move
 * the offset), and data crosses only through sd_copy_in / sd_copy_out /
 * sd_copy. Host arguments (token ids, the logits for logsumexp) are marked
 * as such below.
 *
 * Threading: a backend is used by one caller thread at a time (it owns the
 * worker threads and per-thread scratch); copies may come from any thread
 * once the op that wrote the data has returned. An op's result is there for
 * every later op and copy (the CPU returns when it is complete; a device
 * backend may queue ops, and a copy out waits for them). Ops never allocate
 * (scratch is reserved up front) and cannot fail. Shapes: matrices are
 * row-major with explicit row strides (`ld*`, in elements).
 */
#ifndef SD_BACKEND_OPS_H
#define SD_BACKEND_OPS_H

#include <stddef.h>
#include <stdint.h>

#include "backend/mem.h"
#include "backend/tensor.h"
#include "util/err.h"

enum {
    SD_BACKEND_FORCE_SCALAR = 1, /* CPU: use the portable kernels even where AVX2 is present */
    SD_BACKEND_NO_AVX512 = 2,    /* CPU: stop at AVX2 even where AVX-512 is present */
    /* CPU, AArch64: plain NEON even where SDOT is present (a high bit: x86's flags grow below) */
    SD_BACKEND_NO_DOTPROD = 256,
};

/*
 * A weight matrix of n rows by k columns (row stride ld elements) of type
 * f32, f16 or quantized, in backend memory, e.g. a linear layer's [out][in]
 * weight. sd_weight_of() views an uploaded tensor that way: n = ne[n_dims-1],
 * k = the product of the other dims.
 */
struct sd_weight {
    enum sd_type type;
    struct sd_mem data;
    int64_t n, k, ld;
};
struct sd_weight sd_weight_of(const struct sd_tensor *t);

/*
 * y[i][j] = sum_p x[i][p] * W[j][p] + bias[j] for each product (see sd_op_matmul).
 */
struct sd_matmul_out {
    const struct sd_weight *w;
    struct sd_mem bias;  /* may be none */
    struct sd_mem y;
    int64_t ldy;
    int accumulate;
};

/*
 * Multi-head scaled dot-product attention, exact softmax over the keys:
 *   out_h[i] = sum_j softmax_j(scale * q_h[i] . k_h[j]) v_h[j]
 * Head h of row i lives at q + i*ldq + h*d_head (likewise out). K and V are
 * f32 or f16 (kv_type); head h of key j is at k + h*k_head_stride + j*ldk
 * (elements; a head stride of 0 means d_head, i.e. heads interleaved in a row
 * as a projection writes them; a head-major [head][n_kv][d_head] cache uses
 * k_head_stride = n_kv_max * d_head and ldk = d_head).
 * causal: query i sees keys j <= n_past + i only. n_kv <= the reserved maximum.
 * v_transposed (not with causal): V of head h is stored dims-major, value c
 * of key j at v + h*v_head_stride + c*ldv + j (a cache written once and read
 * by every decoding step: both products then stream their operand in rows).
 */
struct sd_attention {
    int n_q, n_kv, n_head, d_head;
    struct sd_mem q;
    struct sd_mem k, v;
    int64_t ldq, ldk, ldv;
    struct sd_mem out;
    int64_t ldo;
    float scale;
    int causal, n_past;
    enum sd_type kv_type;               /* SD_TYPE_F32 (0) or SD_TYPE_F16 */
    int64_t k_head_stride, v_head_stride;
    int v_transposed;
};

struct sd_backend_ops;

/* Every backend object starts with its table (implementations embed this first). */
struct sd_backend {
    const struct sd_backend_ops *ops;
};

/* Longest kernel-choice text ("gemv_f16=avx512 gemv_q=avx512 gemm=avx512"), with its NUL. */
#define SD_KERNEL_CHOICE_MAX 160

/*
 * A kernel choice by measurement (sd_backend_calibrate). In: the weights of
 * one decoder step in use order (they are timed as the decoder reads them,
 * so the choice reflects the model's real shapes and its memory traffic), the
 * cache file (NULL or "": none) and the binary's version (part of the cache
 * key with the CPU's model, family/model/stepping, flags and threads), force
 * (1: measure even when the cache has a choice for this key). Out: the
 * choice, where it came from and what choosing cost.
 */
struct sd_calibration {
    const struct sd_weight *const *w;
    int n_w;
    const char *cache_path;
    const char *version;
    int force;
    char choice[SD_KERNEL_CHOICE_MAX]; /* "primitive=table ..." */
    const char *source;                /* "measured", "cache", "forced" (SCRIBED_SIMD), "default" */
    double ms;                         /* wall time spent choosing */
    /* measured: one line per primitive and candidate, "gemv_f16 avx512 1.234 ms\n" */
    char report[1024];
};

/*
 * One implementation. Device-level entries (upload, release, create) need no
 * backend object: the model's weights live on the device, shared read-only
 * by every backend created on it.
 */
struct sd_backend_ops {
    const char *name; /* "cpu", "cpu-check", "cuda" */

    /* Weights: a copy of host[0..n_bytes) on the device (the CPU may borrow host). */
    enum sd_err (*upload)(const void *host, size_t n_bytes, struct sd_mem *out,
                          struct sd_error *err);
    void (*release)(struct sd_mem m);

    enum sd_err (*create)(int n_threads, unsigned flags, struct sd_backend **out,
                          struct sd_error *err);
    void (*destroy)(struct sd_backend *b);
    int (*n_threads)(const struct sd_backend *b);
    const char *(*simd)(const struct sd_backend *b);
    /*
     * Optional (NULL: one set of kernels). calibrate picks this backend's
     * kernels per primitive by timing the candidates (or reads the cache);
     * use_kernels applies a choice string calibrate gave (another backend's)
     * and fails on one it does not know.
     */
    enum sd_err (*calibrate)(struct sd_backend *b, struct sd_calibration *c,
                             struct sd_error *err);
    enum sd_err (*use_kernels)(struct sd_backend *b, const char *choice, struct sd_error *err);

    struct sd_mem (*alloc)(struct sd_backend *b, size_t n_bytes);
    void (*free)(struct sd_backend *b, struct sd_mem m);
    void (*copy_in)(struct sd_backend *b, struct sd_mem dst, const void *src, size_t n_bytes);
    void (*copy_out)(struct sd_backend *b, void *dst, struct sd_mem src, size_t n_bytes);
    void (*copy)(struct sd_backend *b, struct sd_mem dst, struct sd_mem src, size_t n_bytes);

    enum sd_err (*reserve_attention)(struct sd_backend *b, int n_kv_max, int n_state_max,
                                     struct sd_error *err);
    void (*matmul_multi)(struct sd_backend *b, struct sd_mem x, int m, int64_t ldx, int n,
                         const struct sd_matmul_out *outs);
    void (*layer_norm)(struct sd_backend *b, struct sd_mem x, int m, int n, struct sd_mem gamma,
                       struct sd_mem beta, float eps, struct sd_mem y);
    void (*gelu)(struct sd_backend *b, struct sd_mem x, size_t n);
    void (*add)(struct sd_backend *b, struct sd_mem y, struct sd_mem x, size_t n);
    void (*softmax)(struct sd_backend *b, struct sd_mem x, int m, int n);
    float (*logsumexp)(struct sd_backend *b, const float *host_x, int n);
    void (*get_rows)(struct sd_backend *b, const struct sd_weight *w, const int32_t *host_ids,
                     int n, struct sd_mem out);
    void (*attention)(struct sd_backend *b, const struct sd_attention *a);
    void (*attention_logits)(struct sd_backend *b, const struct sd_attention *a, int head,
                             struct sd_mem out, int64_t ldo);
    void (*to_f16_heads)(struct sd_backend *b, struct sd_mem src, int n_rows, int n_head, int d,
                         struct sd_mem dst);
    void (*to_f16_heads_transposed)(struct sd_backend *b, struct sd_mem src, int n_rows,
                                    int n_head, int d, struct sd_mem dst);
    void (*conv1d_k3)(struct sd_backend *b, struct sd_mem in, int c_in, int t_in,
                      int channels_first, const struct sd_weight *w, struct sd_mem bias,
                      int stride, struct sd_mem out, struct sd_mem col);
};

/*
 * The device named `name`: "cpu", "cuda" (only in a binary built with
 * CUDA=1), or NULL / "" / "auto" for the default (cuda when compiled in and
 * a GPU is present, else cpu). With SCRIBED_BACKEND_CHECK=1 in the
 * environment "cpu" is the checking backend (src/backend/check/). An unknown
 * name, or cuda in a binary without it, fails with one clear message.
 */
enum sd_err sd_backend_find(const char *name, const struct sd_backend_ops **out,
                            struct sd_error *err);

/*
 * Creates a backend on device `dev` with n_threads compute threads (the
 * CPU: the caller's thread is one of them). CPU kernels: the widest the CPU
 * runs (amx, avx512, avx2, scalar on x86-64; neon-dotprod, neon, scalar on
 * AArch64), or the one calibration measured fastest, capped by the flags and
 * by the environment variable SCRIBED_SIMD naming one kernel table (scalar,
 * avx2, avx512, an AVX-512 variant: avx512y, avx512np, avx512r4, avx512l2,
 * amx; neon, neon-dotprod; for tests and comparisons; it also turns
 * calibration off).
 * On SD_OK the caller owns *out: sd_backend_destroy().
 */
static inline enum sd_err sd_backend_open(const struct sd_backend_ops *dev, int n_threads,
                                          unsigned flags, struct sd_backend **out,
                                          struct sd_error *err)
{
    return dev->create(n_threads, flags, out, err);
}

static inline void sd_backend_destroy(struct sd_backend *b)
{
    if (b)
        b->ops->destroy(b);
}

static inline int sd_backend_n_threads(const struct sd_backend *b)
{
    return b->ops->n_threads(b);
}

/* The CPU kernel table ("avx512", "avx512y", "avx2", "neon-dotprod", "scalar", ...) or the device's name. */
static inline const char *sd_backend_simd(const struct sd_backend *b)
{
    return b->ops->simd(b);
}

/*
 * Kernel choice by measurement where the device has candidates (else c->choice
 * is "" and c->source "default"). SCRIBED_SIMD set: no timing, source "forced".
 */
static inline enum sd_err sd_backend_calibrate(struct sd_backend *b, struct sd_calibration *c,
                                               struct sd_error *err)
{
    if (!b->ops->calibrate) {
        c->choice[0] = 0;
        c->report[0] = 0;
        c->source = "default";
        c->ms = 0;
        return SD_OK;
    }
    return b->ops->calibrate(b, c, err);
}

/* Applies a choice from sd_backend_calibrate ("" or a device without choices: nothing). */
static inline enum sd_err sd_backend_use_kernels(struct sd_backend *b, const char *choice,
                                                 struct sd_error *err)
{
    if (!b->ops->use_kernels || !choice || !*choice)
        return SD_OK;
    return b->ops->use_kernels(b, choice, err);
}

/* The device's name ("cpu", "cpu-check", "cuda"). */
static inline const char *sd_backend_device(const struct sd_backend *b)
{
    return b->ops->name;
}

/*
 * Compute buffers: every activation, cache and scratch buffer of the engine
 * (zeroed, 64-byte aligned on the CPU). A none sd_mem when out of memory.
 * Free with sd_backend_free on a backend of the same device.
 */
static inline struct sd_mem sd_backend_alloc(struct sd_backend *b, size_t n_bytes)
{
    return b->ops->alloc(b, n_bytes);
}

static inline void sd_backend_free(struct sd_backend *b, struct sd_mem m)
{
    if (b && m.buf)
        b->ops->free(b, m);
}

/* Host -> backend, backend -> host, backend -> backend (regions must not overlap). */
static inline void sd_copy_in(struct sd_backend *b, struct sd_mem dst, const void *src,
                              size_t n_bytes)
{
    b->ops->copy_in(b, dst, src, n_bytes);
}

static inline void sd_copy_out(struct sd_backend *b, void *dst, struct sd_mem src,
                               size_t n_bytes)
{
    b->ops->copy_out(b, dst, src, n_bytes);
}

static inline void sd_copy(struct sd_backend *b, struct sd_mem dst, struct sd_mem src,
                           size_t n_bytes)
{
    b->ops->copy(b, dst, src, n_bytes);
}

/*
 * Makes sd_op_attention usable for up to n_kv_max keys (per-thread scratch) and
 * lets it pre-pack K and V once per call for up to n_kv_max x n_state_max
 * (n_head * d_head) values; larger calls still work, packing per task.
 */
static inline enum sd_err sd_backend_reserve_attention(struct sd_backend *b, int n_kv_max,
                                                       int n_state_max, struct sd_error *err)
{
    return b->ops->reserve_attention(b, n_kv_max, n_state_max, err);
}

/*
 * y[i][j] = sum_p x[i][p] * W[j][p] + bias[j]   for i < m, j < W.n  (y = x W^T + b)
 * x: [m][W.k] with row stride ldx; y: [m][W.n] with row stride ldy; bias may be none.
 * accumulate != 0 adds to y instead (y += x W^T + b): fuses a residual add.
 */
static inline void sd_op_matmul(struct sd_backend *b, struct sd_mem x, int m, int64_t ldx,
                                const struct sd_weight *w, struct sd_mem bias, struct sd_mem y,
                                int64_t ldy, int accumulate)
{
    struct sd_matmul_out o = {w, bias, y, ldy, accumulate};
    b->ops->matmul_multi(b, x, m, ldx, 1, &o);
}

/*
 * Several products of the same x in one parallel job (e.g. the q, k and v
 * projections): outs[p].y = x W_p^T + b_p, each as sd_op_matmul. All W_p.k equal.
 * Fewer synchronisation points than n separate calls.
 */
static inline void sd_op_matmul_multi(struct sd_backend *b, struct sd_mem x, int m, int64_t ldx,
                                      int n, const struct sd_matmul_out *outs)
{
    b->ops->matmul_multi(b, x, m, ldx, n, outs);
}

/* y[i] = (x[i] - mean) / sqrt(var + eps) * gamma + beta per row of n; x may equal y. */
static inline void sd_op_layer_norm(struct sd_backend *b, struct sd_mem x, int m, int n,
                                    struct sd_mem gamma, struct sd_mem beta, float eps,
                                    struct sd_mem y)
{
    b->ops->layer_norm(b, x, m, n, gamma, beta, eps, y);
}

/* x = x * 0.5 * (1 + erf(x / sqrt 2)) in place (PyTorch's nn.GELU). */
static inline void sd_op_gelu(struct sd_backend *b, struct sd_mem x, size_t n)
{
    b->ops->gelu(b, x, n);
}

/* y += x, n elements. */
static inline void sd_op_add(struct sd_backend *b, struct sd_mem y, struct sd_mem x, size_t n)
{
    b->ops->add(b, y, x, n);
}

/* Row-wise softmax of x[m][n] in place, numerically stable. */
static inline void sd_op_softmax(struct sd_backend *b, struct sd_mem x, int m, int n)
{
    b->ops->softmax(b, x, m, n);
}

/*
 * log(sum_i exp(x[i])) over n values of HOST memory (logits already copied
 * out), numerically stable; -inf entries count as 0 and the result is -inf
 * when all are. On the caller's thread with the CPU's widest kernels.
 */
static inline float sd_op_logsumexp(struct sd_backend *b, const float *host_x, int n)
{
    return b->ops->logsumexp(b, host_x, n);
}

/* out[i][:] = row host_ids[i] of the matrix w ([n][k]) as f32; the ids are host memory. */
static inline void sd_op_get_rows(struct sd_backend *b, const struct sd_weight *w,
                                  const int32_t *host_ids, int n, struct sd_mem out)
{
    b->ops->get_rows(b, w, host_ids, n, out);
}

static inline void sd_op_attention(struct sd_backend *b, const struct sd_attention *a)
{
    b->ops->attention(b, a);
}

/*
 * Raw attention logits of one head, no mask and no softmax (for word-level
 * alignment): out[i][j] = scale * q_head[i] . k_head[j] for i < n_q, j < n_kv,
 * row stride ldo. Reads n_q, n_kv, d_head, q/ldq, k/ldk, kv_type,
 * k_head_stride and scale of a (v and out of a are not used).
 */
static inline void sd_op_attention_logits(struct sd_backend *b, const struct sd_attention *a,
                                          int head, struct sd_mem out, int64_t ldo)
{
    b->ops->attention_logits(b, a, head, out, ldo);
}

/*
 * dst[h][t][0..d) = f16 of src[t][h*d .. h*d + d) for t < n_rows, h < n_head:
 * re-lays a projection's output as a head-major f16 K/V cache.
 */
static inline void sd_op_to_f16_heads(struct sd_backend *b, struct sd_mem src, int n_rows,
                                      int n_head, int d, struct sd_mem dst)
{
    b->ops->to_f16_heads(b, src, n_rows, n_head, d, dst);
}

/* dst[h][c][t] = f16 of src[t][h*d + c]: the dims-major layout of sd_attention.v_transposed. */
static inline void sd_op_to_f16_heads_transposed(struct sd_backend *b, struct sd_mem src,
                                                 int n_rows, int n_head, int d, struct sd_mem dst)
{
    b->ops->to_f16_heads_transposed(b, src, n_rows, n_head, d, dst);
}

/*
 * 1-D convolution, kernel 3, padding 1, as Whisper's encoder convs:
 *   out[t][o] = bias[o] + sum_{c,kk} W[o][c][kk] * in(c, t*stride + kk - 1)
 * in is [c_in][t_in] (channels_first != 0, e.g. the mel) or [t_in][c_in];
 * w views a [c_out][c_in][3] tensor (sd_weight_of); out is [t_out][c_out],
 * t_out = (t_in - 1) / stride + 1. col: scratch of t_out * 3 * c_in floats.
 */
static inline void sd_op_conv1d_k3(struct sd_backend *b, struct sd_mem in, int c_in, int t_in,
                                   int channels_first, const struct sd_weight *w,
                                   struct sd_mem bias, int stride, struct sd_mem out,
                                   struct sd_mem col)
{
    b->ops->conv1d_k3(b, in, c_in, t_in, channels_first, w, bias, stride, out, col);
}

#endif

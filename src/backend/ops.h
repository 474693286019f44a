/*
 * ops.h - the compute boundary of the engine: every kernel the encoder and
 * decoder run (matmul by f32/f16 weights, layer norm, GELU, attention,
 * conv1d, embedding rows) goes through these calls on a struct sd_backend.
 * Today the one implementation is the CPU (src/backend/cpu/: a persistent
 * thread pool owned by the backend object, AVX2+FMA+F16C chosen at run time,
 * a scalar fallback); a CUDA backend is meant to slot in behind the same calls.
 *
 * Threading: a backend is used by one caller thread at a time (it owns the
 * worker threads and per-thread scratch). Every op returns when its result
 * is complete. Ops never allocate (scratch is reserved up front) and cannot fail.
 * Shapes: matrices are row-major with explicit row strides (`ld*`, in elements).
 */
#ifndef SD_BACKEND_OPS_H
#define SD_BACKEND_OPS_H

#include <stddef.h>
#include <stdint.h>

#include "backend/tensor.h"
#include "util/err.h"

struct sd_backend;

enum {
    SD_BACKEND_FORCE_SCALAR = 1, /* use the portable kernels even where AVX2 is present */
    SD_BACKEND_NO_AVX512 = 2,    /* stop at AVX2 even where AVX-512 is present */
};

/*
 * Creates a backend with n_threads compute threads (the caller's thread is one
 * of them, so n_threads - 1 workers are started). Kernels: the widest the CPU
 * runs (avx512, avx2, scalar), capped by the flags and by the environment
 * variable SCRIBED_SIMD=scalar|avx2|avx512 (for tests and comparisons).
 * On SD_OK the caller owns *out: sd_backend_destroy().
 */
enum sd_err sd_backend_create(int n_threads, unsigned flags, struct sd_backend **out,
                              struct sd_error *err);
void sd_backend_destroy(struct sd_backend *b);
int sd_backend_n_threads(const struct sd_backend *b);
/* "avx512", "avx2" or "scalar": which kernels this backend runs. */
const char *sd_backend_simd(const struct sd_backend *b);

/*
 * Compute buffers: the engine allocates every activation, cache and scratch
 * buffer through these so that a device backend can place them in its own
 * memory (the CPU returns 64-byte aligned, zeroed host memory). NULL when
 * out of memory. Free with sd_backend_free on the same backend.
 */
void *sd_backend_alloc(struct sd_backend *b, size_t n_bytes);
void sd_backend_free(struct sd_backend *b, void *p);

/*
 * Makes sd_op_attention usable for up to n_kv_max keys (per-thread scratch) and
 * lets it pre-pack K and V once per call for up to n_kv_max x n_state_max
 * (n_head * d_head) values; larger calls still work, packing per task.
 */
enum sd_err sd_backend_reserve_attention(struct sd_backend *b, int n_kv_max, int n_state_max,
                                         struct sd_error *err);

/*
 * A weight matrix of n rows by k columns (row stride ld elements) of type
 * f32 or f16, e.g. a linear layer's [out][in] weight. sd_weight_of() views a
 * tensor that way: n = ne[n_dims-1], k = the product of the other dims.
 */
struct sd_weight {
    enum sd_type type;
    const void *data;
    int64_t n, k, ld;
};
struct sd_weight sd_weight_of(const struct sd_tensor *t);

/*
 * y[i][j] = sum_p x[i][p] * W[j][p] + bias[j]   for i < m, j < W.n  (y = x W^T + b)
 * x: [m][W.k] with row stride ldx; y: [m][W.n] with row stride ldy; bias may be NULL.
 * accumulate != 0 adds to y instead (y += x W^T + b): fuses a residual add.
 */
void sd_op_matmul(struct sd_backend *b, const float *x, int m, int64_t ldx,
                  const struct sd_weight *w, const float *bias, float *y, int64_t ldy,
                  int accumulate);

/*
 * Several products of the same x in one parallel job (e.g. the q, k and v
 * projections): outs[p].y = x W_p^T + b_p, each as sd_op_matmul. All W_p.k equal.
 * Fewer synchronisation points than n separate calls.
 */
struct sd_matmul_out {
    const struct sd_weight *w;
    const float *bias;  /* may be NULL */
    float *y;
    int64_t ldy;
    int accumulate;
};
void sd_op_matmul_multi(struct sd_backend *b, const float *x, int m, int64_t ldx, int n,
                        const struct sd_matmul_out *outs);

/* y[i] = (x[i] - mean) / sqrt(var + eps) * gamma + beta per row of n; x may equal y. */
void sd_op_layer_norm(struct sd_backend *b, const float *x, int m, int n, const float *gamma,
                      const float *beta, float eps, float *y);

/* x = x * 0.5 * (1 + erf(x / sqrt 2)) in place (PyTorch's nn.GELU). */
void sd_op_gelu(struct sd_backend *b, float *x, size_t n);

/* y += x, n elements. */
void sd_op_add(struct sd_backend *b, float *y, const float *x, size_t n);

/* Row-wise softmax of x[m][n] in place, numerically stable. */
void sd_op_softmax(struct sd_backend *b, float *x, int m, int n);

/*
 * log(sum_i exp(x[i])) over n values, numerically stable; -inf entries
 * count as 0 and the result is -inf when all are. On the caller's thread (a
 * vocabulary's worth of logits per call).
 */
float sd_op_logsumexp(struct sd_backend *b, const float *x, int n);

/* out[i][:] = row ids[i] of the matrix w ([n][k], f32 or f16) as f32. */
void sd_op_get_rows(struct sd_backend *b, const struct sd_weight *w, const int32_t *ids, int n,
                    float *out);

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
    const float *q;
    const void *k, *v;
    int64_t ldq, ldk, ldv;
    float *out;
    int64_t ldo;
    float scale;
    int causal, n_past;
    enum sd_type kv_type;               /* SD_TYPE_F32 (0) or SD_TYPE_F16 */
    int64_t k_head_stride, v_head_stride;
    int v_transposed;
};
void sd_op_attention(struct sd_backend *b, const struct sd_attention *a);

/*
 * Raw attention logits of one head, no mask and no softmax (for word-level
 * alignment): out[i][j] = scale * q_head[i] . k_head[j] for i < n_q, j < n_kv,
 * row stride ldo. Reads n_q, n_kv, d_head, q/ldq, k/ldk, kv_type,
 * k_head_stride and scale of a (v and out of a are not used).
 */
void sd_op_attention_logits(struct sd_backend *b, const struct sd_attention *a, int head,
                            float *out, int64_t ldo);

/*
 * dst[h][t][0..d) = f16 of src[t][h*d .. h*d + d) for t < n_rows, h < n_head:
 * re-lays a projection's output as a head-major f16 K/V cache.
 */
void sd_op_to_f16_heads(struct sd_backend *b, const float *src, int n_rows, int n_head, int d,
                        uint16_t *dst);

/* dst[h][c][t] = f16 of src[t][h*d + c]: the dims-major layout of sd_attention.v_transposed. */
void sd_op_to_f16_heads_transposed(struct sd_backend *b, const float *src, int n_rows,
                                   int n_head, int d, uint16_t *dst);

/*
 * 1-D convolution, kernel 3, padding 1, as Whisper's encoder convs:
 *   out[t][o] = bias[o] + sum_{c,kk} W[o][c][kk] * in(c, t*stride + kk - 1)
 * in is [c_in][t_in] (channels_first != 0, e.g. the mel) or [t_in][c_in];
 * W is a [c_out][c_in][3] tensor; out is [t_out][c_out], t_out = (t_in - 1) / stride + 1.
 * col: caller scratch of t_out * 3 * c_in floats.
 */
void sd_op_conv1d_k3(struct sd_backend *b, const float *in, int c_in, int t_in,
                     int channels_first, const struct sd_tensor *w, const float *bias, int stride,
                     float *out, float *col);

#endif

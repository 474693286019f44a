/*
 * cuda.cu - the CUDA implementation of ops.h (see cuda.h).
 *
 * NEVER RUN: no GPU machine was available to the change that wrote it (it
 * compiles with nvcc 13.0). A first, deliberately plain version to be checked by
 * tests/gpu/run.sh (the conformance suite with the CPU's tolerances), then
 * made fast: products through cuBLAS (f16 weights with f32 accumulation;
 * x converted to f16 for them), one block per row for the row-wise ops,
 * one block per (query, head) for exact attention (no padding keys). Still
 * to do: the quantized types (matmul and get_rows abort on them), log-mel
 * on the device, the decoder step as one CUDA graph.
 *
 * Memory: struct sd_buffer holds a device pointer. Ordering: every op and
 * copy runs on the legacy default stream, so the ops of all backends (the
 * states' and the batcher's, which share caches) are serialised in issue
 * order; copies out synchronise before they return, which is the only
 * moment the engine looks at results.
 */
#include "backend/cuda/cuda.h"

#include <cublas_v2.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern "C" {
#include "backend/cpu/cpu.h"
}

struct sd_buffer {
    void *ptr; /* device memory */
    size_t size;
};

struct cuda {
    struct sd_backend base; /* first: the table */
    int n_threads;
    cublasHandle_t blas;
    struct sd_backend *host; /* a 1-thread CPU backend for the host-side helpers */
    __half *x16;             /* x converted for f16 products */
    size_t x16_cap;          /* halves */
    int32_t *ids;            /* token ids for get_rows */
    int ids_cap;
};

#define CK(call)                                                                         \
    do {                                                                                 \
        cudaError_t e_ = (call);                                                         \
        if (e_ != cudaSuccess) {                                                         \
            fprintf(stderr, "cuda: %s: %s\n", #call, cudaGetErrorString(e_));            \
            abort(); /* ops cannot fail (ops.h): a device error is fatal */              \
        }                                                                                \
    } while (0)

static struct cuda *C(struct sd_backend *b)
{
    return (struct cuda *)b;
}

static void *D(struct sd_mem m)
{
    return m.buf ? (char *)m.buf->ptr + m.off : NULL;
}

static float *DF(struct sd_mem m)
{
    return (float *)D(m);
}

extern "C" int sd_cuda_present(void)
{
    int n = 0;
    return cudaGetDeviceCount(&n) == cudaSuccess && n > 0;
}

/* ----------------------------------------------------------- memory */

static enum sd_err op_upload(const void *host, size_t n_bytes, struct sd_mem *out,
                             struct sd_error *err)
{
    struct sd_buffer *buf = (struct sd_buffer *)calloc(1, sizeof(*buf));
    if (!buf || cudaMalloc(&buf->ptr, n_bytes ? n_bytes : 1) != cudaSuccess) {
        free(buf);
        return sd_fail(err, SD_ENOMEM, "out of GPU memory uploading the weights");
    }
    buf->size = n_bytes;
    CK(cudaMemcpy(buf->ptr, host, n_bytes, cudaMemcpyHostToDevice));
    out->buf = buf;
    out->off = 0;
    return SD_OK;
}

static void op_release(struct sd_mem m)
{
    cudaFree(m.buf->ptr);
    free(m.buf);
}

static struct sd_mem op_alloc(struct sd_backend *b, size_t n_bytes)
{
    (void)b;
    struct sd_mem m = {NULL, 0};
    struct sd_buffer *buf = (struct sd_buffer *)calloc(1, sizeof(*buf));
    size_t n = (n_bytes + 255) / 256 * 256;
    if (!buf || cudaMalloc(&buf->ptr, n ? n : 256) != cudaSuccess) {
        free(buf);
        return m;
    }
    buf->size = n_bytes;
    CK(cudaMemset(buf->ptr, 0, n ? n : 256)); /* zeroed, as the CPU's */
    m.buf = buf;
    return m;
}

static void op_free(struct sd_backend *b, struct sd_mem m)
{
    (void)b;
    cudaFree(m.buf->ptr);
    free(m.buf);
}

static void op_copy_in(struct sd_backend *b, struct sd_mem dst, const void *src, size_t n)
{
    (void)b;
    CK(cudaMemcpy(D(dst), src, n, cudaMemcpyHostToDevice));
}

static void op_copy_out(struct sd_backend *b, void *dst, struct sd_mem src, size_t n)
{
    (void)b;
    CK(cudaMemcpy(dst, D(src), n, cudaMemcpyDeviceToHost)); /* waits for the ops before it */
}

static void op_copy(struct sd_backend *b, struct sd_mem dst, struct sd_mem src, size_t n)
{
    (void)b;
    CK(cudaMemcpyAsync(D(dst), D(src), n, cudaMemcpyDeviceToDevice, 0));
}

/* ----------------------------------------------------------- lifetime */

static void op_destroy(struct sd_backend *b)
{
    struct cuda *c = C(b);
    if (c->blas)
        cublasDestroy(c->blas);
    cudaFree(c->x16);
    cudaFree(c->ids);
    sd_backend_destroy(c->host);
    free(c);
}

static enum sd_err op_create(int n_threads, unsigned flags, struct sd_backend **out,
                             struct sd_error *err)
{
    (void)flags;
    struct cuda *c = (struct cuda *)calloc(1, sizeof(*c));
    if (!c)
        return sd_fail(err, SD_ENOMEM, "out of memory creating the CUDA backend");
    c->base.ops = &sd_cuda_ops;
    c->n_threads = n_threads;
    enum sd_err rc = sd_cpu_backend_create(1, 0, &c->host, err);
    if (rc) {
        free(c);
        return rc;
    }
    if (cublasCreate(&c->blas) != CUBLAS_STATUS_SUCCESS) {
        op_destroy(&c->base);
        return sd_fail(err, SD_EUNSUPPORTED, "cannot create a cuBLAS handle");
    }
    cublasSetStream(c->blas, 0);
    cublasSetMathMode(c->blas, CUBLAS_DEFAULT_MATH); /* f32 accumulation, no TF32 for f32 */
    *out = &c->base;
    return SD_OK;
}

static int op_n_threads(const struct sd_backend *b)
{
    return ((const struct cuda *)b)->n_threads;
}

static const char *op_simd(const struct sd_backend *b)
{
    (void)b;
    return "cuda";
}

static enum sd_err op_reserve_attention(struct sd_backend *b, int n_kv_max, int n_state_max,
                                        struct sd_error *err)
{
    (void)b, (void)n_kv_max, (void)n_state_max, (void)err;
    return SD_OK; /* attention keeps its scores in shared memory */
}

/* ----------------------------------------------------------- kernels */

__global__ void k_to_half(const float *x, int m, int k, int64_t ldx, __half *y)
{
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < (int64_t)m * k)
        y[i] = __float2half(x[(i / k) * ldx + i % k]);
}

__global__ void k_add_bias(float *y, int m, int n, int64_t ldy, const float *bias)
{
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < (int64_t)m * n)
        y[(i / n) * ldy + i % n] += bias[i % n];
}

static unsigned blocks(int64_t n, int t)
{
    return (unsigned)((n + t - 1) / t);
}

static void matmul_one(struct cuda *c, const float *x, int m, int64_t ldx,
                       const struct sd_matmul_out *o)
{
    const struct sd_weight *w = o->w;
    float one = 1.0f, beta = o->accumulate ? 1.0f : 0.0f;
    float *y = DF(o->y);
    if (w->type == SD_TYPE_F32) {
        cublasSgemm(c->blas, CUBLAS_OP_T, CUBLAS_OP_N, (int)w->n, m, (int)w->k, &one,
                    DF(w->data), (int)w->ld, x, (int)ldx, &beta, y, (int)o->ldy);
    } else if (w->type == SD_TYPE_F16) {
        size_t need = (size_t)m * (size_t)w->k;
        if (need > c->x16_cap) {
            cudaFree(c->x16);
            CK(cudaMalloc(&c->x16, need * sizeof(__half)));
            c->x16_cap = need;
        }
        k_to_half<<<blocks((int64_t)need, 256), 256>>>(x, m, (int)w->k, ldx, c->x16);
        cublasGemmEx(c->blas, CUBLAS_OP_T, CUBLAS_OP_N, (int)w->n, m, (int)w->k, &one,
                     D(w->data), CUDA_R_16F, (int)w->ld, c->x16, CUDA_R_16F, (int)w->k, &beta,
                     y, CUDA_R_32F, (int)o->ldy, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
    } else {
        fprintf(stderr, "cuda: quantized weights (type %d) are not implemented yet\n",
                (int)w->type);
        abort();
    }
    if (o->bias.buf)
        k_add_bias<<<blocks((int64_t)m * w->n, 256), 256>>>(y, m, (int)w->n, o->ldy,
                                                             DF(o->bias));
}

static void op_matmul_multi(struct sd_backend *b, struct sd_mem x, int m, int64_t ldx, int n,
                            const struct sd_matmul_out *outs)
{
    for (int p = 0; p < n && m > 0; p++)
        matmul_one(C(b), DF(x), m, ldx, &outs[p]);
}

/* Sum of v over the block (blockDim.x a multiple of 32, <= 1024). */
__device__ float block_sum(float v, float *red)
{
    for (int o = 16; o > 0; o >>= 1)
        v += __shfl_xor_sync(0xffffffffu, v, o);
    if (threadIdx.x % 32 == 0)
        red[threadIdx.x / 32] = v;
    __syncthreads();
    float s = 0;
    for (int i = 0; i < (int)blockDim.x / 32; i++)
        s += red[i];
    __syncthreads();
    return s;
}

__device__ float block_max(float v, float *red)
{
    for (int o = 16; o > 0; o >>= 1)
        v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    if (threadIdx.x % 32 == 0)
        red[threadIdx.x / 32] = v;
    __syncthreads();
    float s = -INFINITY;
    for (int i = 0; i < (int)blockDim.x / 32; i++)
        s = fmaxf(s, red[i]);
    __syncthreads();
    return s;
}

/* One block per row: two-pass mean and variance, as the CPU kernel. */
__global__ void k_layer_norm(const float *x, int n, const float *g, const float *beta, float eps,
                             float *y)
{
    __shared__ float red[32];
    const float *xr = x + (int64_t)blockIdx.x * n;
    float *yr = y + (int64_t)blockIdx.x * n;
    float s = 0;
    for (int j = threadIdx.x; j < n; j += blockDim.x)
        s += xr[j];
    float mean = block_sum(s, red) / n;
    float v = 0;
    for (int j = threadIdx.x; j < n; j += blockDim.x)
        v += (xr[j] - mean) * (xr[j] - mean);
    float inv = rsqrtf(block_sum(v, red) / n + eps);
    for (int j = threadIdx.x; j < n; j += blockDim.x)
        yr[j] = (xr[j] - mean) * inv * g[j] + beta[j];
}

static void op_layer_norm(struct sd_backend *b, struct sd_mem x, int m, int n,
                          struct sd_mem gamma, struct sd_mem beta, float eps, struct sd_mem y)
{
    (void)b;
    if (m > 0)
        k_layer_norm<<<m, 256>>>(DF(x), n, DF(gamma), DF(beta), eps, DF(y));
}

__global__ void k_gelu(float *x, int64_t n)
{
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        x[i] = 0.5f * x[i] * (1.0f + erff(x[i] * 0.70710678118654752f));
}

static void op_gelu(struct sd_backend *b, struct sd_mem x, size_t n)
{
    (void)b;
    if (n)
        k_gelu<<<blocks((int64_t)n, 256), 256>>>(DF(x), (int64_t)n);
}

__global__ void k_add(float *y, const float *x, int64_t n)
{
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        y[i] += x[i];
}

static void op_add(struct sd_backend *b, struct sd_mem y, struct sd_mem x, size_t n)
{
    (void)b;
    if (n)
        k_add<<<blocks((int64_t)n, 256), 256>>>(DF(y), DF(x), (int64_t)n);
}

__global__ void k_softmax(float *x, int n)
{
    __shared__ float red[32];
    float *r = x + (int64_t)blockIdx.x * n;
    float mx = -INFINITY;
    for (int j = threadIdx.x; j < n; j += blockDim.x)
        mx = fmaxf(mx, r[j]);
    mx = block_max(mx, red);
    float s = 0;
    for (int j = threadIdx.x; j < n; j += blockDim.x)
        s += (r[j] = expf(r[j] - mx));
    float inv = 1.0f / block_sum(s, red);
    for (int j = threadIdx.x; j < n; j += blockDim.x)
        r[j] *= inv;
}

static void op_softmax(struct sd_backend *b, struct sd_mem x, int m, int n)
{
    (void)b;
    if (m > 0 && n > 0)
        k_softmax<<<m, 256>>>(DF(x), n);
}

static float op_logsumexp(struct sd_backend *b, const float *host_x, int n)
{
    return sd_op_logsumexp(C(b)->host, host_x, n); /* host memory: the CPU's kernel */
}

__global__ void k_get_rows(const void *w, int type, int64_t ld, int64_t k, const int32_t *ids,
                           float *out)
{
    int i = blockIdx.x;
    for (int64_t c = threadIdx.x; c < k; c += blockDim.x) {
        int64_t at = (int64_t)ids[i] * ld + c;
        out[(int64_t)i * k + c] = type == 0 ? ((const float *)w)[at]
                                            : __half2float(((const __half *)w)[at]);
    }
}

static void op_get_rows(struct sd_backend *b, const struct sd_weight *w, const int32_t *ids,
                        int n, struct sd_mem out)
{
    struct cuda *c = C(b);
    if (n <= 0)
        return;
    if (w->type != SD_TYPE_F32 && w->type != SD_TYPE_F16) {
        fprintf(stderr, "cuda: quantized embeddings are not implemented yet\n");
        abort();
    }
    if (n > c->ids_cap) {
        cudaFree(c->ids);
        CK(cudaMalloc(&c->ids, sizeof(int32_t) * (size_t)n));
        c->ids_cap = n;
    }
    CK(cudaMemcpy(c->ids, ids, sizeof(int32_t) * (size_t)n, cudaMemcpyHostToDevice));
    k_get_rows<<<n, 256>>>(D(w->data), (int)w->type, w->ld, w->k, c->ids, DF(out));
}

/* K or V element (f32 or f16) at element offset i. */
__device__ float kv_at(const void *p, int f16, int64_t i)
{
    return f16 ? __half2float(((const __half *)p)[i]) : ((const float *)p)[i];
}

struct att_args {
    int n_q, n_kv, n_head, d;
    const float *q;
    const void *k, *v;
    int64_t ldq, ldk, ldv;
    float *out;
    int64_t ldo;
    float scale;
    int causal, n_past, f16;
    int64_t khs, vhs;
    int v_transposed;
};

/* One block per (query i, head h): exact softmax over its keys, scores in shared memory. */
__global__ void k_attention(struct att_args a)
{
    extern __shared__ float s[]; /* n_kv scores, then 32 for reductions */
    float *red = s + a.n_kv;
    int i = blockIdx.x, h = blockIdx.y;
    int nk = a.causal ? min(a.n_past + i + 1, a.n_kv) : a.n_kv;
    const float *q = a.q + (int64_t)i * a.ldq + (int64_t)h * a.d;
    int64_t kh = (int64_t)h * a.khs, vh = (int64_t)h * a.vhs;
    float mx = -INFINITY;
    for (int j = threadIdx.x; j < nk; j += blockDim.x) {
        float dot = 0;
        for (int t = 0; t < a.d; t++)
            dot += q[t] * kv_at(a.k, a.f16, kh + (int64_t)j * a.ldk + t);
        s[j] = dot * a.scale;
        mx = fmaxf(mx, s[j]);
    }
    mx = block_max(mx, red);
    float sum = 0;
    for (int j = threadIdx.x; j < nk; j += blockDim.x)
        sum += (s[j] = expf(s[j] - mx));
    float inv = 1.0f / block_sum(sum, red);
    for (int t = threadIdx.x; t < a.d; t += blockDim.x) {
        float o = 0;
        for (int j = 0; j < nk; j++)
            o += s[j] * kv_at(a.v, a.f16, a.v_transposed ? vh + (int64_t)t * a.ldv + j
                                                         : vh + (int64_t)j * a.ldv + t);
        a.out[(int64_t)i * a.ldo + (int64_t)h * a.d + t] = o * inv;
    }
}

static struct att_args att_args_of(const struct sd_attention *a)
{
    struct att_args r = {a->n_q, a->n_kv, a->n_head, a->d_head, DF(a->q), D(a->k), D(a->v),
                         a->ldq, a->ldk, a->ldv, DF(a->out), a->ldo, a->scale, a->causal,
                         a->n_past, a->kv_type == SD_TYPE_F16,
                         a->k_head_stride ? a->k_head_stride : a->d_head,
                         a->v_head_stride ? a->v_head_stride : a->d_head, a->v_transposed};
    return r;
}

static void op_attention(struct sd_backend *b, const struct sd_attention *a)
{
    (void)b;
    if (a->n_q <= 0)
        return;
    dim3 grid((unsigned)a->n_q, (unsigned)a->n_head);
    size_t shared = sizeof(float) * ((size_t)a->n_kv + 32);
    k_attention<<<grid, 128, shared>>>(att_args_of(a));
}

__global__ void k_attention_logits(struct att_args a, int head, float *out, int64_t ldo)
{
    int i = blockIdx.x;
    const float *q = a.q + (int64_t)i * a.ldq + (int64_t)head * a.d;
    int64_t kh = (int64_t)head * a.khs;
    for (int j = threadIdx.x; j < a.n_kv; j += blockDim.x) {
        float dot = 0;
        for (int t = 0; t < a.d; t++)
            dot += q[t] * kv_at(a.k, a.f16, kh + (int64_t)j * a.ldk + t);
        out[(int64_t)i * ldo + j] = dot * a.scale;
    }
}

static void op_attention_logits(struct sd_backend *b, const struct sd_attention *a, int head,
                                struct sd_mem out, int64_t ldo)
{
    (void)b;
    if (a->n_q > 0 && a->n_kv > 0)
        k_attention_logits<<<a->n_q, 128>>>(att_args_of(a), head, DF(out), ldo);
}

/* dst[h][t][c] (transposed: dst[h][c][t]) = f16 of src[t][h*d + c]. */
__global__ void k_to_f16_heads(const float *src, int n_rows, int n_head, int d, __half *dst,
                               int transposed)
{
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    int64_t S = (int64_t)n_head * d;
    if (i >= (int64_t)n_rows * S)
        return;
    int t = (int)(i / S), h = (int)(i % S) / d, c = (int)(i % d);
    int64_t at = transposed ? ((int64_t)h * d + c) * n_rows + t : ((int64_t)h * n_rows + t) * d + c;
    dst[at] = __float2half(src[i]);
}

static void op_to_f16_heads(struct sd_backend *b, struct sd_mem src, int n_rows, int n_head,
                            int d, struct sd_mem dst)
{
    (void)b;
    int64_t n = (int64_t)n_rows * n_head * d;
    if (n > 0)
        k_to_f16_heads<<<blocks(n, 256), 256>>>(DF(src), n_rows, n_head, d, (__half *)D(dst), 0);
}

static void op_to_f16_heads_transposed(struct sd_backend *b, struct sd_mem src, int n_rows,
                                       int n_head, int d, struct sd_mem dst)
{
    (void)b;
    int64_t n = (int64_t)n_rows * n_head * d;
    if (n > 0)
        k_to_f16_heads<<<blocks(n, 256), 256>>>(DF(src), n_rows, n_head, d, (__half *)D(dst), 1);
}

__global__ void k_im2col(const float *in, int c_in, int t_in, int t_out, int stride, int cf,
                         float *col)
{
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (int64_t)t_out * c_in * 3)
        return;
    int t = (int)(i / (3 * c_in)), ch = (int)(i % (3 * c_in)) / 3, kk = (int)(i % 3);
    int ti = t * stride + kk - 1;
    float v = 0;
    if (ti >= 0 && ti < t_in)
        v = cf ? in[(int64_t)ch * t_in + ti] : in[(int64_t)ti * c_in + ch];
    col[i] = v;
}

static void op_conv1d_k3(struct sd_backend *b, struct sd_mem in, int c_in, int t_in,
                         int channels_first, const struct sd_weight *w, struct sd_mem bias,
                         int stride, struct sd_mem out, struct sd_mem col)
{
    int t_out = (t_in - 1) / stride + 1;
    int64_t n = (int64_t)t_out * c_in * 3;
    k_im2col<<<blocks(n, 256), 256>>>(DF(in), c_in, t_in, t_out, stride, channels_first,
                                      DF(col));
    struct sd_matmul_out o = {w, bias, out, w->n, 0};
    matmul_one(C(b), DF(col), t_out, 3 * (int64_t)c_in, &o);
}

extern "C" const struct sd_backend_ops sd_cuda_ops = {
    "cuda",
    op_upload,
    op_release,
    op_create,
    op_destroy,
    op_n_threads,
    op_simd,
    op_alloc,
    op_free,
    op_copy_in,
    op_copy_out,
    op_copy,
    op_reserve_attention,
    op_matmul_multi,
    op_layer_norm,
    op_gelu,
    op_add,
    op_softmax,
    op_logsumexp,
    op_get_rows,
    op_attention,
    op_attention_logits,
    op_to_f16_heads,
    op_to_f16_heads_transposed,
    op_conv1d_k3,
};

/*
 * kern_scalar.c - portable C versions of the CPU kernel table: the fallback
 * on CPUs without AVX2/FMA/F16C, and the baseline the unit tests compare the
 * SIMD kernels against (SCRIBED_FORCE_SCALAR=1 selects it). Straightforward
 * loops using libm's expf/erff; speed is not the point here.
 */
#include <math.h>
#include <string.h>

#include "backend/cpu/kernels.h"

static void micro_scalar(int kc, const float *a, int64_t lda, const float *bp,
                         int64_t panel_stride, float *c, int64_t ldc, int mr, int nr, int load_c,
                         const float *bias)
{
    (void)panel_stride; /* one panel per call */
    float acc[SD_MR][SD_NR] = {{0}};
    for (int p = 0; p < kc; p++) {
        const float *b = bp + (size_t)p * SD_NR;
        for (int r = 0; r < mr; r++)
            for (int j = 0; j < SD_NR; j++)
                acc[r][j] += a[r * lda + p] * b[j];
    }
    for (int r = 0; r < mr; r++)
        for (int j = 0; j < nr; j++) {
            float v = acc[r][j] + (bias ? bias[j] : 0.0f);
            c[r * ldc + j] = load_c ? c[r * ldc + j] + v : v;
        }
}

static void to_f32_scalar(const void *src, enum sd_type type, float *dst, int64_t n)
{
    if (type == SD_TYPE_F32) {
        memcpy(dst, src, (size_t)n * sizeof(float));
        return;
    }
    if (sd_type_is_quantized(type)) {
        sd_dequantize(type, src, dst, n);
        return;
    }
    const uint8_t *s = src;
    for (int64_t i = 0; i < n; i++) {
        uint16_t h;
        memcpy(&h, s + 2 * i, 2);
        dst[i] = sd_f16_to_f32(h);
    }
}

#define GEMV_CHUNK 256 /* weights converted per step: a multiple of every block size */

/* Each weight row is converted GEMV_CHUNK values at a time; sums run in index order. */
static void gemv_scalar(int m, const float *x, int64_t ldx, const struct sd_kweight *w, int n0,
                        int n1, const float *bias, float *y, int64_t ldy, int accumulate)
{
    float s[SD_GEMV_MAX_M], wbuf[GEMV_CHUNK];
    size_t row_bytes = sd_type_bytes(w->type, w->ld);
    for (int j = n0; j < n1; j++) {
        const uint8_t *row = (const uint8_t *)w->data + (size_t)j * row_bytes;
        for (int i = 0; i < m; i++)
            s[i] = bias ? bias[j] : 0.0f;
        for (int64_t p0 = 0; p0 < w->k; p0 += GEMV_CHUNK) {
            int64_t n = w->k - p0 < GEMV_CHUNK ? w->k - p0 : GEMV_CHUNK;
            to_f32_scalar(row + sd_type_bytes(w->type, p0), w->type, wbuf, n);
            for (int i = 0; i < m; i++)
                for (int64_t p = 0; p < n; p++)
                    s[i] += x[i * ldx + p0 + p] * wbuf[p];
        }
        for (int i = 0; i < m; i++)
            y[i * ldy + j] = accumulate ? y[i * ldy + j] + s[i] : s[i];
    }
}

static float dot_scalar(const float *a, const float *b, int n)
{
    float s = 0.0f;
    for (int i = 0; i < n; i++)
        s += a[i] * b[i];
    return s;
}

static void axpy_scalar(float a, const float *x, float *y, int n)
{
    for (int i = 0; i < n; i++)
        y[i] += a * x[i];
}

static void scale_scalar(float a, float *y, int n)
{
    for (int i = 0; i < n; i++)
        y[i] *= a;
}

static float softmax_exp_scalar(float *x, int n, float scale)
{
    float mx = -INFINITY;
    for (int i = 0; i < n; i++)
        mx = x[i] > mx ? x[i] : mx;
    double sum = 0.0;
    for (int i = 0; i < n; i++) {
        x[i] = expf(scale * (x[i] - mx));
        sum += x[i];
    }
    return (float)sum;
}

static float logsumexp_scalar(const float *x, int n)
{
    float mx = -INFINITY;
    for (int i = 0; i < n; i++)
        mx = x[i] > mx ? x[i] : mx;
    if (mx == -INFINITY)
        return -INFINITY;
    double sum = 0.0;
    for (int i = 0; i < n; i++)
        sum += expf(x[i] - mx); /* expf(-inf) is 0 */
    return mx + logf((float)sum);
}

static void gelu_scalar(float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        x[i] = 0.5f * x[i] * (1.0f + erff(x[i] * 0.70710678118654752f));
}

static void add_scalar(float *y, const float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        y[i] += x[i];
}

static void layer_norm_scalar(const float *x, int n, const float *g, const float *b, float eps,
                              float *y)
{
    double mean = 0.0, var = 0.0;
    for (int i = 0; i < n; i++)
        mean += x[i];
    mean /= n;
    for (int i = 0; i < n; i++)
        var += (x[i] - mean) * (x[i] - mean);
    var /= n;
    float inv = (float)(1.0 / sqrt(var + eps)), mu = (float)mean;
    for (int i = 0; i < n; i++)
        y[i] = (x[i] - mu) * inv * (g ? g[i] : 1.0f) + (b ? b[i] : 0.0f);
}

static float elem_at(const void *base, enum sd_type t, int64_t i)
{
    if (t == SD_TYPE_F32) {
        float v;
        memcpy(&v, (const uint8_t *)base + 4 * i, 4);
        return v;
    }
    uint16_t h;
    memcpy(&h, (const uint8_t *)base + 2 * i, 2);
    return sd_f16_to_f32(h);
}

static void attn_row_scalar(const float *q, const void *k, int64_t ldk, const void *v,
                            int64_t ldv, enum sd_type t, int nk, int d, float scale, float *s,
                            float *out)
{
    for (int j = 0; j < nk; j++) {
        float acc = 0.0f;
        for (int c = 0; c < d; c++)
            acc += q[c] * elem_at(k, t, (int64_t)j * ldk + c);
        s[j] = acc;
    }
    float sum = softmax_exp_scalar(s, nk, scale);
    for (int c = 0; c < d; c++)
        out[c] = 0.0f;
    for (int j = 0; j < nk; j++)
        for (int c = 0; c < d; c++)
            out[c] += s[j] * elem_at(v, t, (int64_t)j * ldv + c);
    for (int c = 0; c < d; c++)
        out[c] /= sum;
}

static void to_f16_scalar(const float *src, uint16_t *dst, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        dst[i] = sd_f32_to_f16(src[i]);
}

const struct sd_kernels sd_kernels_scalar = {
    .name = "scalar",
    .panels = 1,
    .micro = micro_scalar,
    .to_f32 = to_f32_scalar,
    .gemv = gemv_scalar,
    .dot = dot_scalar,
    .axpy = axpy_scalar,
    .scale = scale_scalar,
    .softmax_exp = softmax_exp_scalar,
    .logsumexp = logsumexp_scalar,
    .gelu = gelu_scalar,
    .add = add_scalar,
    .layer_norm = layer_norm_scalar,
    .attn_row = attn_row_scalar,
    .to_f16 = to_f16_scalar,
};

int sd_cpu_runs_scalar(void)
{
    return 1;
}

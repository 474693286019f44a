/*
 * kern_neon.c - the AArch64 Advanced SIMD kernel tables: 6x16 GEMM
 * micro-kernel, f16<->f32 conversion (FCVTL/FCVTN), small-m matrix-vector
 * products with the f16->f32 conversion fused into FMLA on f32 accumulators,
 * vectorised exp (softmax) and erf (GELU), layer norm, single-query
 * attention. Two tables: "neon" (every AArch64 CPU) and "neon-dotprod",
 * which differs only in the quantized products (SDOT, ARMv8.2; chosen when
 * getauxval reports HWCAP_ASIMDDP). Same numerics as the AVX2 table: the
 * polynomials and summation orders are ported, not re-derived. Built only
 * when the target is aarch64 (Makefile).
 */
#include <math.h>
#include <string.h>
#include <sys/auxv.h>

#include "backend/cpu/kernels.h"
#include "backend/cpu/neon.h"

#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1 << 20) /* Linux's arch/arm64 uapi hwcap bit */
#endif

int sd_cpu_has_neon(void)
{
    return 1; /* Advanced SIMD and FP16 conversions are mandatory in AArch64 */
}

int sd_cpu_has_neon_dotprod(void)
{
    return (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0;
}

static inline float hsum(float32x4_t v)
{
    return vaddvq_f32(v);
}

/* 8 halves at any alignment -> two vectors of 4 floats */
static inline void load_h8(const uint8_t *p, float32x4_t *lo, float32x4_t *hi)
{
    float16x8_t h = vreinterpretq_f16_u8(vld1q_u8(p));
    *lo = vcvt_f32_f16(vget_low_f16(h));
    *hi = vcvt_high_f32_f16(h);
}

/* 4 halves at any alignment -> 4 floats */
static inline float32x4_t load_h4(const uint8_t *p)
{
    return vcvt_f32_f16(vreinterpret_f16_u8(vld1_u8(p)));
}

static inline float half_at(const uint8_t *p)
{
    uint16_t h;
    memcpy(&h, p, 2);
    return sd_f16_to_f32(h);
}

/* exp(x), relative error ~2e-7 for x in [-87, 88]; 0 below -88 (the AVX2 table's polynomial). */
static inline float32x4_t exp4(float32x4_t x)
{
    x = vminq_f32(vmaxq_f32(x, vdupq_n_f32(-88.0f)), vdupq_n_f32(88.0f));
    float32x4_t fx = vrndnq_f32(vmulq_f32(x, vdupq_n_f32(1.44269504088896341f)));
    float32x4_t r = vfmsq_f32(x, fx, vdupq_n_f32(0.693359375f));
    r = vfmsq_f32(r, fx, vdupq_n_f32(-2.12194440e-4f));
    float32x4_t p = vdupq_n_f32(1.9875691500e-4f);
    p = vfmaq_f32(vdupq_n_f32(1.3981999507e-3f), p, r);
    p = vfmaq_f32(vdupq_n_f32(8.3334519073e-3f), p, r);
    p = vfmaq_f32(vdupq_n_f32(4.1665795894e-2f), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.6666665459e-1f), p, r);
    p = vfmaq_f32(vdupq_n_f32(5.0000001201e-1f), p, r);
    p = vfmaq_f32(r, p, vmulq_f32(r, r));
    p = vaddq_f32(p, vdupq_n_f32(1.0f));
    int32x4_t n = vaddq_s32(vcvtnq_s32_f32(fx), vdupq_n_s32(127));
    return vmulq_f32(p, vreinterpretq_f32_s32(vshlq_n_s32(n, 23)));
}

static void micro_neon(int kc, const float *a, int64_t lda, const float *bp, int64_t panel_stride,
                       float *c, int64_t ldc, int mr, int nr, int load_c, const float *bias)
{
    (void)panel_stride; /* one panel per call */
    float32x4_t acc[SD_MR][4];
#pragma GCC unroll 6
    for (int r = 0; r < SD_MR; r++)
#pragma GCC unroll 4
        for (int q = 0; q < 4; q++)
            acc[r][q] = vdupq_n_f32(0.0f);
    for (int p = 0; p < kc; p++) {
        float32x4_t b0 = vld1q_f32(bp), b1 = vld1q_f32(bp + 4);
        float32x4_t b2 = vld1q_f32(bp + 8), b3 = vld1q_f32(bp + 12);
#pragma GCC unroll 6
        for (int r = 0; r < SD_MR; r++) {
            float32x4_t av = vdupq_n_f32(a[r * lda + p]);
            acc[r][0] = vfmaq_f32(acc[r][0], b0, av);
            acc[r][1] = vfmaq_f32(acc[r][1], b1, av);
            acc[r][2] = vfmaq_f32(acc[r][2], b2, av);
            acc[r][3] = vfmaq_f32(acc[r][3], b3, av);
        }
        bp += SD_NR;
    }
    if (bias) {
        float tb[SD_NR] = {0};
        memcpy(tb, bias, (size_t)nr * sizeof(float));
#pragma GCC unroll 6
        for (int r = 0; r < SD_MR; r++)
#pragma GCC unroll 4
            for (int q = 0; q < 4; q++)
                acc[r][q] = vaddq_f32(acc[r][q], vld1q_f32(tb + 4 * q));
    }
    if (nr == SD_NR) {
        for (int r = 0; r < mr; r++) {
            float *cr = c + r * ldc;
            for (int q = 0; q < 4; q++) {
                float32x4_t v = acc[r][q];
                if (load_c)
                    v = vaddq_f32(v, vld1q_f32(cr + 4 * q));
                vst1q_f32(cr + 4 * q, v);
            }
        }
        return;
    }
    float t[SD_NR];
    for (int r = 0; r < mr; r++) {
        float *cr = c + r * ldc;
        for (int q = 0; q < 4; q++)
            vst1q_f32(t + 4 * q, acc[r][q]);
        for (int j = 0; j < nr; j++)
            cr[j] = load_c ? cr[j] + t[j] : t[j];
    }
}

static void to_f32_neon(const void *src, enum sd_type type, float *dst, int64_t n)
{
    if (type == SD_TYPE_F32) {
        memcpy(dst, src, (size_t)n * sizeof(float));
        return;
    }
    if (sd_type_is_quantized(type)) {
        sd_quant_to_f32_neon(src, type, dst, n);
        return;
    }
    const uint8_t *s = src;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        float32x4_t lo, hi;
        load_h8(s + 2 * i, &lo, &hi);
        vst1q_f32(dst + i, lo);
        vst1q_f32(dst + i + 4, hi);
    }
    for (; i < n; i++)
        dst[i] = half_at(s + 2 * i);
}

static void to_f16_neon(const float *src, uint16_t *dst, int64_t n)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) { /* FCVTN rounds to nearest even, as sd_f32_to_f16 */
        float16x8_t h = vcvt_high_f16_f32(vcvt_f16_f32(vld1q_f32(src + i)), vld1q_f32(src + i + 4));
        vst1q_u8((uint8_t *)(dst + i), vreinterpretq_u8_f16(h));
    }
    for (; i < n; i++)
        dst[i] = sd_f32_to_f16(src[i]);
}

/* 8 weights from element p of a row (f16 or f32) as two vectors */
static inline void load_w8(const uint8_t *row, int64_t p, int f16, float32x4_t *lo,
                           float32x4_t *hi)
{
    if (f16) {
        load_h8(row + 2 * p, lo, hi);
        return;
    }
    *lo = vld1q_f32((const float *)(const void *)(row + 4 * p));
    *hi = vld1q_f32((const float *)(const void *)(row + 4 * p + 16));
}

static inline float load_w1(const uint8_t *row, int64_t p, int f16)
{
    if (f16)
        return half_at(row + 2 * p);
    float v;
    memcpy(&v, row + 4 * p, 4);
    return v;
}

#ifndef GEMV_PF_ROWS
#define GEMV_PF_ROWS 16 /* prefetch distance of the decoder matrix-vector kernel, in W rows */
#endif

/*
 * MI x rows against NC consecutive weight rows (columns of y), the f16->f32
 * conversion fused into the FMLAs: the memory-bound decoder path. Every
 * (row, column) sum is computed the same way in every instance (two 4-lane
 * accumulators over steps of 8, summed across lanes, then the tail in
 * order), so a row's result never depends on which rows share the call.
 * Generated per (MI, NC, f16) with constant bounds so the accumulators stay
 * in registers (MI * NC <= 8: at most 16 of them).
 */
#define DEF_GEMV_TILE(MI, NC, F16)                                                             \
    static void gemv_tile##MI##_##NC##_##F16(const float *x, int64_t ldx, const uint8_t *w0,   \
                                             size_t row_bytes, int64_t k, float *out)          \
    {                                                                                          \
        float32x4_t lo[MI][NC], hi[MI][NC];                                                    \
        _Pragma("GCC unroll 4") for (int r = 0; r < MI; r++)                                   \
            _Pragma("GCC unroll 4") for (int c = 0; c < NC; c++) lo[r][c] = hi[r][c] =         \
                vdupq_n_f32(0.0f);                                                             \
        const uint8_t *ahead = w0 + GEMV_PF_ROWS * row_bytes;                                  \
        int64_t p = 0;                                                                         \
        for (; p + 8 <= k; p += 8) {                                                           \
            _Pragma("GCC unroll 4") for (int c = 0; c < NC; c++)                               \
                __builtin_prefetch(ahead + c * row_bytes + p * (F16 ? 2 : 4));                 \
            float32x4_t xl[MI], xh[MI];                                                        \
            _Pragma("GCC unroll 4") for (int r = 0; r < MI; r++)                               \
            {                                                                                  \
                xl[r] = vld1q_f32(x + r * ldx + p);                                            \
                xh[r] = vld1q_f32(x + r * ldx + p + 4);                                        \
            }                                                                                  \
            _Pragma("GCC unroll 4") for (int c = 0; c < NC; c++)                               \
            {                                                                                  \
                float32x4_t wl, wh;                                                            \
                load_w8(w0 + c * row_bytes, p, F16, &wl, &wh);                                 \
                _Pragma("GCC unroll 4") for (int r = 0; r < MI; r++)                           \
                {                                                                              \
                    lo[r][c] = vfmaq_f32(lo[r][c], xl[r], wl);                                 \
                    hi[r][c] = vfmaq_f32(hi[r][c], xh[r], wh);                                 \
                }                                                                              \
            }                                                                                  \
        }                                                                                      \
        _Pragma("GCC unroll 4") for (int r = 0; r < MI; r++)                                   \
            _Pragma("GCC unroll 4") for (int c = 0; c < NC; c++)                               \
        {                                                                                      \
            float sum = hsum(vaddq_f32(lo[r][c], hi[r][c]));                                   \
            for (int64_t q = p; q < k; q++)                                                    \
                sum += x[r * ldx + q] * load_w1(w0 + c * row_bytes, q, F16);                   \
            out[r * 4 + c] = sum;                                                              \
        }                                                                                      \
    }
#define DEF_GEMV_TILES(F16)                                                                    \
    DEF_GEMV_TILE(1, 1, F16) DEF_GEMV_TILE(1, 4, F16) DEF_GEMV_TILE(2, 1, F16)                 \
    DEF_GEMV_TILE(2, 4, F16) DEF_GEMV_TILE(3, 1, F16) DEF_GEMV_TILE(3, 2, F16)                 \
    DEF_GEMV_TILE(4, 1, F16) DEF_GEMV_TILE(4, 2, F16)
DEF_GEMV_TILES(0)
DEF_GEMV_TILES(1)

typedef void (*gemv_tile_fn)(const float *, int64_t, const uint8_t *, size_t, int64_t, float *);
/* [f16][rows][wide]: the wide tile (4 columns for 1-2 rows, 2 for 3-4) or 1 column */
static const gemv_tile_fn GEMV_TILE[2][5][2] = {
    {{NULL, NULL},
     {gemv_tile1_1_0, gemv_tile1_4_0},
     {gemv_tile2_1_0, gemv_tile2_4_0},
     {gemv_tile3_1_0, gemv_tile3_2_0},
     {gemv_tile4_1_0, gemv_tile4_2_0}},
    {{NULL, NULL},
     {gemv_tile1_1_1, gemv_tile1_4_1},
     {gemv_tile2_1_1, gemv_tile2_4_1},
     {gemv_tile3_1_1, gemv_tile3_2_1},
     {gemv_tile4_1_1, gemv_tile4_2_1}},
};

/* Dense (f32, f16) small-m product: rows in chunks of <= 4, columns in tiles. */
static void gemv_dense(int m, const float *x, int64_t ldx, const struct sd_kweight *w, int n0,
                       int n1, const float *bias, float *y, int64_t ldy, int accumulate)
{
    int f16 = w->type == SD_TYPE_F16;
    size_t row_bytes = (size_t)w->ld * (f16 ? 2 : 4);
    const uint8_t *base = w->data;
    for (int i = 0; i < m;) {
        int mi = m - i > 4 ? (m - i == 5 ? 3 : 4) : m - i; /* 5 rows -> 3 + 2 */
        int wide = mi <= 2 ? 4 : 2;
        for (int j = n0; j < n1;) {
            int nc = n1 - j >= wide ? wide : 1;
            float out[4 * 4];
            GEMV_TILE[f16][mi][nc > 1](x + (int64_t)i * ldx, ldx, base + (size_t)j * row_bytes,
                                       row_bytes, w->k, out);
            for (int r = 0; r < mi; r++)
                for (int c = 0; c < nc; c++) {
                    float v = out[r * 4 + c] + (bias ? bias[j + c] : 0.0f);
                    float *d = &y[(int64_t)(i + r) * ldy + j + c];
                    *d = accumulate ? *d + v : v;
                }
            j += nc;
        }
        i += mi;
    }
}

static void gemv_neon(int m, const float *x, int64_t ldx, const struct sd_kweight *w, int n0,
                      int n1, const float *bias, float *y, int64_t ldy, int accumulate)
{
    if (sd_type_is_quantized(w->type))
        sd_quant_gemv_neon(m, x, ldx, w, n0, n1, bias, y, ldy, accumulate);
    else
        gemv_dense(m, x, ldx, w, n0, n1, bias, y, ldy, accumulate);
}

static void gemv_neon_dotprod(int m, const float *x, int64_t ldx, const struct sd_kweight *w,
                              int n0, int n1, const float *bias, float *y, int64_t ldy,
                              int accumulate)
{
    if (sd_type_is_quantized(w->type))
        sd_quant_gemv_neon_dotprod(m, x, ldx, w, n0, n1, bias, y, ldy, accumulate);
    else
        gemv_dense(m, x, ldx, w, n0, n1, bias, y, ldy, accumulate);
}

static float dot_neon(const float *a, const float *b, int n)
{
    float32x4_t s0 = vdupq_n_f32(0.0f), s1 = s0;
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        s0 = vfmaq_f32(s0, vld1q_f32(a + i), vld1q_f32(b + i));
        s1 = vfmaq_f32(s1, vld1q_f32(a + i + 4), vld1q_f32(b + i + 4));
    }
    for (; i + 4 <= n; i += 4)
        s0 = vfmaq_f32(s0, vld1q_f32(a + i), vld1q_f32(b + i));
    float s = hsum(vaddq_f32(s0, s1));
    for (; i < n; i++)
        s += a[i] * b[i];
    return s;
}

static void axpy_neon(float a, const float *x, float *y, int n)
{
    float32x4_t av = vdupq_n_f32(a);
    int i = 0;
    for (; i + 4 <= n; i += 4)
        vst1q_f32(y + i, vfmaq_f32(vld1q_f32(y + i), av, vld1q_f32(x + i)));
    for (; i < n; i++)
        y[i] += a * x[i];
}

static void scale_neon(float a, float *y, int n)
{
    float32x4_t av = vdupq_n_f32(a);
    int i = 0;
    for (; i + 4 <= n; i += 4)
        vst1q_f32(y + i, vmulq_f32(av, vld1q_f32(y + i)));
    for (; i < n; i++)
        y[i] *= a;
}

/* Largest of x[0..n) (-inf for n == 0). */
static float max_of(const float *x, int n)
{
    float32x4_t mv = vdupq_n_f32(-INFINITY);
    int i = 0;
    for (; i + 4 <= n; i += 4)
        mv = vmaxq_f32(mv, vld1q_f32(x + i));
    float mx = vmaxvq_f32(mv);
    for (; i < n; i++)
        mx = x[i] > mx ? x[i] : mx;
    return mx;
}

static float softmax_exp_neon(float *x, int n, float scale)
{
    float mx = max_of(x, n);
    int i;
    float32x4_t sv = vdupq_n_f32(scale), off = vdupq_n_f32(-scale * mx), sum = vdupq_n_f32(0.0f);
    for (i = 0; i + 4 <= n; i += 4) {
        float32x4_t e = exp4(vfmaq_f32(off, vld1q_f32(x + i), sv));
        vst1q_f32(x + i, e);
        sum = vaddq_f32(sum, e);
    }
    float s = hsum(sum);
    for (; i < n; i++) {
        x[i] = expf(scale * (x[i] - mx));
        s += x[i];
    }
    return s;
}

static float logsumexp_neon(const float *x, int n)
{
    float mx = max_of(x, n);
    int i;
    if (mx == -INFINITY)
        return -INFINITY;
    /* exp4 clamps below -88 (not 0): -inf entries are masked out instead */
    const float32x4_t ninf = vdupq_n_f32(-INFINITY), off = vdupq_n_f32(mx);
    float32x4_t sum = vdupq_n_f32(0.0f);
    for (i = 0; i + 4 <= n; i += 4) {
        float32x4_t v = vld1q_f32(x + i);
        float32x4_t e = exp4(vsubq_f32(v, off));
        uint32x4_t keep = vmvnq_u32(vceqq_f32(v, ninf));
        sum = vaddq_f32(sum, vreinterpretq_f32_u32(vandq_u32(vreinterpretq_u32_f32(e), keep)));
    }
    double s = hsum(sum);
    for (; i < n; i++)
        s += expf(x[i] - mx);
    return mx + logf((float)s);
}

/*
 * GELU via erfc (Abramowitz-Stegun 7.1.26, |error| <= 1.5e-7), as the AVX2
 * table: with z = |x|/sqrt2, q = erfc(z); gelu = x (1 - q/2) for x >= 0 and
 * x q / 2 for x < 0, which avoids the cancellation of 1 + erf(x) for negative x.
 */
static inline float32x4_t gelu4(float32x4_t x)
{
    float32x4_t z = vmulq_f32(vabsq_f32(x), vdupq_n_f32(0.70710678118654752f));
    float32x4_t t = vdivq_f32(vdupq_n_f32(1.0f),
                              vfmaq_f32(vdupq_n_f32(1.0f), z, vdupq_n_f32(0.3275911f)));
    float32x4_t p = vdupq_n_f32(1.061405429f);
    p = vfmaq_f32(vdupq_n_f32(-1.453152027f), p, t);
    p = vfmaq_f32(vdupq_n_f32(1.421413741f), p, t);
    p = vfmaq_f32(vdupq_n_f32(-0.284496736f), p, t);
    p = vfmaq_f32(vdupq_n_f32(0.254829592f), p, t);
    p = vmulq_f32(p, t);
    float32x4_t q = vmulq_f32(p, exp4(vnegq_f32(vmulq_f32(z, z))));
    float32x4_t hq = vmulq_f32(q, vdupq_n_f32(0.5f));
    float32x4_t pos = vsubq_f32(vdupq_n_f32(1.0f), hq);
    /* the sign bit of x selects hq */
    uint32x4_t neg = vreinterpretq_u32_s32(vshrq_n_s32(vreinterpretq_s32_f32(x), 31));
    return vmulq_f32(x, vbslq_f32(neg, hq, pos));
}

static void gelu_neon(float *x, int64_t n)
{
    int64_t i = 0;
    for (; i + 4 <= n; i += 4)
        vst1q_f32(x + i, gelu4(vld1q_f32(x + i)));
    if (i < n) {
        float t[4] = {0};
        memcpy(t, x + i, (size_t)(n - i) * sizeof(float));
        vst1q_f32(t, gelu4(vld1q_f32(t)));
        memcpy(x + i, t, (size_t)(n - i) * sizeof(float));
    }
}

static void add_neon(float *y, const float *x, int64_t n)
{
    int64_t i = 0;
    for (; i + 4 <= n; i += 4)
        vst1q_f32(y + i, vaddq_f32(vld1q_f32(y + i), vld1q_f32(x + i)));
    for (; i < n; i++)
        y[i] += x[i];
}

static void layer_norm_neon(const float *x, int n, const float *g, const float *b, float eps,
                            float *y)
{
    float32x4_t s = vdupq_n_f32(0.0f);
    int i = 0;
    for (; i + 4 <= n; i += 4)
        s = vaddq_f32(s, vld1q_f32(x + i));
    float sum = hsum(s);
    for (; i < n; i++)
        sum += x[i];
    float mean = sum / (float)n;
    float32x4_t mv = vdupq_n_f32(mean), v = vdupq_n_f32(0.0f);
    for (i = 0; i + 4 <= n; i += 4) {
        float32x4_t d = vsubq_f32(vld1q_f32(x + i), mv);
        v = vfmaq_f32(v, d, d);
    }
    float var = hsum(v);
    for (; i < n; i++)
        var += (x[i] - mean) * (x[i] - mean);
    var /= (float)n;
    float inv = 1.0f / sqrtf(var + eps);
    float32x4_t iv = vdupq_n_f32(inv);
    for (i = 0; i + 4 <= n; i += 4) {
        float32x4_t d = vmulq_f32(vsubq_f32(vld1q_f32(x + i), mv), iv);
        if (g)
            d = vmulq_f32(d, vld1q_f32(g + i));
        if (b)
            d = vaddq_f32(d, vld1q_f32(b + i));
        vst1q_f32(y + i, d);
    }
    for (; i < n; i++)
        y[i] = (x[i] - mean) * inv * (g ? g[i] : 1.0f) + (b ? b[i] : 0.0f);
}

/* 4 elements of K or V (f32 or f16) at element index i of row base */
static inline float32x4_t load_kv4(const void *base, int64_t i, int f16)
{
    return f16 ? load_h4((const uint8_t *)base + 2 * i) : vld1q_f32((const float *)base + i);
}

/*
 * Single-query attention for one head with d a multiple of 8 (<= 128):
 * scores four keys at a time (8 independent FMA chains), then the weighted
 * sum of V rows with the whole output row in registers.
 */
static void attn_row_fast(const float *q, const void *k, int64_t ldk, const void *v, int64_t ldv,
                          int f16, int nk, int d, float scale, float *s, float *out)
{
    int j = 0;
    for (; j + 4 <= nk; j += 4) {
        float32x4_t a[4], b[4];
        int64_t r[4];
        for (int t = 0; t < 4; t++) {
            a[t] = b[t] = vdupq_n_f32(0.0f);
            r[t] = (int64_t)(j + t) * ldk;
        }
        for (int c = 0; c < d; c += 8) {
            float32x4_t qa = vld1q_f32(q + c), qb = vld1q_f32(q + c + 4);
#pragma GCC unroll 4
            for (int t = 0; t < 4; t++) {
                a[t] = vfmaq_f32(a[t], qa, load_kv4(k, r[t] + c, f16));
                b[t] = vfmaq_f32(b[t], qb, load_kv4(k, r[t] + c + 4, f16));
            }
        }
        for (int t = 0; t < 4; t++)
            s[j + t] = hsum(vaddq_f32(a[t], b[t]));
    }
    for (; j < nk; j++) {
        float32x4_t a0 = vdupq_n_f32(0.0f);
        for (int c = 0; c < d; c += 4)
            a0 = vfmaq_f32(a0, vld1q_f32(q + c), load_kv4(k, (int64_t)j * ldk + c, f16));
        s[j] = hsum(a0);
    }
    float sum = softmax_exp_neon(s, nk, scale);
    float32x4_t acc[32];
    int nv = d / 4;
    for (int c = 0; c < 32; c++)
        acc[c] = vdupq_n_f32(0.0f);
    if (nv == 16) { /* d_head 64, every Whisper model: constant bounds keep acc in registers */
        for (j = 0; j < nk; j++) {
            float32x4_t p = vdupq_n_f32(s[j]);
            int64_t r = (int64_t)j * ldv;
#pragma GCC unroll 16
            for (int c = 0; c < 16; c++)
                acc[c] = vfmaq_f32(acc[c], p, load_kv4(v, r + 4 * c, f16));
        }
    } else {
        for (j = 0; j < nk; j++) {
            float32x4_t p = vdupq_n_f32(s[j]);
            for (int c = 0; c < nv; c++)
                acc[c] = vfmaq_f32(acc[c], p, load_kv4(v, (int64_t)j * ldv + 4 * c, f16));
        }
    }
    float32x4_t inv = vdupq_n_f32(1.0f / sum);
    for (int c = 0; c < nv; c++)
        vst1q_f32(out + 4 * c, vmulq_f32(acc[c], inv));
}

static void attn_row_neon(const float *q, const void *k, int64_t ldk, const void *v, int64_t ldv,
                          enum sd_type t, int nk, int d, float scale, float *s, float *out)
{
    if (d % 8 == 0 && d <= 128) {
        attn_row_fast(q, k, ldk, v, ldv, t == SD_TYPE_F16, nk, d, scale, s, out);
        return;
    }
    sd_kernels_scalar.attn_row(q, k, ldk, v, ldv, t, nk, d, scale, s, out);
}

/* Packs a [kc][16] panel from nr <= 16 rows of B ([n][k] layout): 4x4 blocks converted and transposed. */
static void pack_panel_nk_neon(const void *b, enum sd_type t, int64_t ldb, int nr, int kc,
                               float *dst)
{
    if (sd_type_is_quantized(t)) {
        sd_quant_pack_panel_neon(b, t, ldb, nr, kc, dst);
        return;
    }
    int f16 = t == SD_TYPE_F16, es = f16 ? 2 : 4;
    const uint8_t *base = b;
    int p = 0;
    for (; p + 4 <= kc; p += 4)
        for (int h = 0; h < SD_NR / 4; h++) {
            float32x4_t r[4];
            for (int i = 0; i < 4; i++) {
                int c = h * 4 + i;
                r[i] = c < nr ? load_kv4(base + (int64_t)c * ldb * es, p, f16) : vdupq_n_f32(0.0f);
            }
            neon_transpose4(r);
            for (int i = 0; i < 4; i++)
                vst1q_f32(dst + (size_t)(p + i) * SD_NR + h * 4, r[i]);
        }
    for (; p < kc; p++) /* k tail */
        for (int c = 0; c < SD_NR; c++)
            dst[(size_t)p * SD_NR + c] =
                c < nr ? load_w1(base + (int64_t)c * ldb * es, p, f16) : 0.0f;
}

const struct sd_kernels sd_kernels_neon = {
    .name = "neon",
    .panels = 1,
    .micro = micro_neon,
    .to_f32 = to_f32_neon,
    .gemv = gemv_neon,
    .dot = dot_neon,
    .axpy = axpy_neon,
    .scale = scale_neon,
    .softmax_exp = softmax_exp_neon,
    .logsumexp = logsumexp_neon,
    .gelu = gelu_neon,
    .add = add_neon,
    .layer_norm = layer_norm_neon,
    .attn_row = attn_row_neon,
    .to_f16 = to_f16_neon,
    .pack_panel_nk = pack_panel_nk_neon,
};

/* The same table with the quantized products on SDOT (ARMv8.2 dotprod). */
const struct sd_kernels sd_kernels_neon_dotprod = {
    .name = "neon-dotprod",
    .panels = 1,
    .micro = micro_neon,
    .to_f32 = to_f32_neon,
    .gemv = gemv_neon_dotprod,
    .dot = dot_neon,
    .axpy = axpy_neon,
    .scale = scale_neon,
    .softmax_exp = softmax_exp_neon,
    .logsumexp = logsumexp_neon,
    .gelu = gelu_neon,
    .add = add_neon,
    .layer_norm = layer_norm_neon,
    .attn_row = attn_row_neon,
    .to_f16 = to_f16_neon,
    .pack_panel_nk = pack_panel_nk_neon,
};

/*
 * kern_avx2.c - the AVX2+FMA+F16C kernel table: 6x16 GEMM micro-kernel,
 * f16->f32 conversion, small-m matrix-vector products, vectorised exp
 * (softmax) and erf (GELU), layer norm. Compiled with per-function target
 * attributes so the rest of the build stays baseline x86-64; backend.c only
 * selects this table after __builtin_cpu_supports() confirms the features.
 */
#include <cpuid.h>
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "backend/cpu/avx2.h"
#include "backend/cpu/kernels.h"


/* F16C from CPUID leaf 1 directly: clang 14's __builtin_cpu_supports has no "f16c". */
static int cpu_has_f16c(void)
{
    unsigned a, b, c, d;
    return __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C);
}

int sd_cpu_has_avx2(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && cpu_has_f16c();
}

AVX2 static inline float hsum(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

AVX2 static inline float hmax(__m256 v)
{
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* 8 halves at any alignment -> 8 floats */
AVX2 static inline __m256 load_h8(const uint8_t *p)
{
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)p));
}

/* exp(x), relative error ~2e-7 for x in [-87, 88]; 0 below -88 (Cephes-style polynomial). */
AVX2 static inline __m256 exp8(__m256 x)
{
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(SD_EXP_CLAMP_LO)),
                       _mm256_set1_ps(SD_EXP_CLAMP_HI));
    __m256 fx = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(SD_EXP_LOG2E)),
                                _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(fx, _mm256_set1_ps(SD_EXP_LN2_HI), x);
    r = _mm256_fnmadd_ps(fx, _mm256_set1_ps(SD_EXP_LN2_LO), r);
    __m256 p = _mm256_set1_ps(SD_EXP_P0);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(SD_EXP_P1));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(SD_EXP_P2));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(SD_EXP_P3));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(SD_EXP_P4));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(SD_EXP_P5));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), r);
    p = _mm256_add_ps(p, _mm256_set1_ps(1.0f));
    __m256i n = _mm256_add_epi32(_mm256_cvtps_epi32(fx), _mm256_set1_epi32(127));
    return _mm256_mul_ps(p, _mm256_castsi256_ps(_mm256_slli_epi32(n, 23)));
}

AVX2 static void micro_avx2(int kc, const float *a, int64_t lda, const float *bp,
                            int64_t panel_stride, float *c, int64_t ldc, int mr, int nr,
                            int load_c, const float *bias)
{
    (void)panel_stride; /* one panel per call */
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
    __m256 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    const float *a0 = a, *a1 = a0 + lda, *a2 = a1 + lda, *a3 = a2 + lda, *a4 = a3 + lda;
    const float *a5 = a4 + lda;
#pragma GCC unroll 4
    for (int p = 0; p < kc; p++) {
        __m256 b0 = _mm256_load_ps(bp), b1 = _mm256_load_ps(bp + 8), av;
        av = _mm256_broadcast_ss(a0 + p);
        c00 = _mm256_fmadd_ps(av, b0, c00);
        c01 = _mm256_fmadd_ps(av, b1, c01);
        av = _mm256_broadcast_ss(a1 + p);
        c10 = _mm256_fmadd_ps(av, b0, c10);
        c11 = _mm256_fmadd_ps(av, b1, c11);
        av = _mm256_broadcast_ss(a2 + p);
        c20 = _mm256_fmadd_ps(av, b0, c20);
        c21 = _mm256_fmadd_ps(av, b1, c21);
        av = _mm256_broadcast_ss(a3 + p);
        c30 = _mm256_fmadd_ps(av, b0, c30);
        c31 = _mm256_fmadd_ps(av, b1, c31);
        av = _mm256_broadcast_ss(a4 + p);
        c40 = _mm256_fmadd_ps(av, b0, c40);
        c41 = _mm256_fmadd_ps(av, b1, c41);
        av = _mm256_broadcast_ss(a5 + p);
        c50 = _mm256_fmadd_ps(av, b0, c50);
        c51 = _mm256_fmadd_ps(av, b1, c51);
        bp += SD_NR;
    }
    __m256 acc[SD_MR][2] = {{c00, c01}, {c10, c11}, {c20, c21},
                            {c30, c31}, {c40, c41}, {c50, c51}};
    if (bias) {
        __m256 b0, b1;
        if (nr == SD_NR) {
            b0 = _mm256_loadu_ps(bias);
            b1 = _mm256_loadu_ps(bias + 8);
        } else {
            float tb[SD_NR] = {0};
            memcpy(tb, bias, (size_t)nr * sizeof(float));
            b0 = _mm256_loadu_ps(tb);
            b1 = _mm256_loadu_ps(tb + 8);
        }
        for (int r = 0; r < SD_MR; r++) {
            acc[r][0] = _mm256_add_ps(acc[r][0], b0);
            acc[r][1] = _mm256_add_ps(acc[r][1], b1);
        }
    }
    if (nr == SD_NR) {
        for (int r = 0; r < mr; r++) {
            float *cr = c + r * ldc;
            if (load_c) {
                acc[r][0] = _mm256_add_ps(acc[r][0], _mm256_loadu_ps(cr));
                acc[r][1] = _mm256_add_ps(acc[r][1], _mm256_loadu_ps(cr + 8));
            }
            _mm256_storeu_ps(cr, acc[r][0]);
            _mm256_storeu_ps(cr + 8, acc[r][1]);
        }
        return;
    }
    float t[SD_NR];
    for (int r = 0; r < mr; r++) {
        float *cr = c + r * ldc;
        _mm256_storeu_ps(t, acc[r][0]);
        _mm256_storeu_ps(t + 8, acc[r][1]);
        for (int j = 0; j < nr; j++)
            cr[j] = load_c ? cr[j] + t[j] : t[j];
    }
}

AVX2 void sd_avx2_to_f32(const void *src, enum sd_type type, float *dst, int64_t n)
{
    if (type == SD_TYPE_F32) {
        memcpy(dst, src, (size_t)n * sizeof(float));
        return;
    }
    if (sd_type_is_quantized(type)) {
        sd_quant_to_f32_avx2(src, type, dst, n);
        return;
    }
    const uint8_t *s = src;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(dst + i, load_h8(s + 2 * i));
    for (; i < n; i++) {
        uint16_t h;
        memcpy(&h, s + 2 * i, 2);
        dst[i] = _cvtsh_ss(h);
    }
}

AVX2 static inline __m256 load_w8(const uint8_t *row, int64_t p, int f16)
{
    return f16 ? load_h8(row + 2 * p) : _mm256_loadu_ps((const float *)(const void *)(row + 4 * p));
}

AVX2 static inline float load_w1(const uint8_t *row, int64_t p, int f16)
{
    if (f16) {
        uint16_t h;
        memcpy(&h, row + 2 * p, 2);
        return _cvtsh_ss(h);
    }
    float v;
    memcpy(&v, row + 4 * p, 4);
    return v;
}

#ifndef GEMV_PF_ROWS
#define GEMV_PF_ROWS 16 /* prefetch distance of the decoder matrix-vector kernel, in W rows */
#endif

/*
 * 1 or 2 x rows against 8 consecutive weight rows (columns of y), the
 * f16->f32 conversion fused into the FMAs: the memory-bound decoder path.
 * The 8 rows are contiguous in W, so `ahead` (GEMV_PF_ROWS rows on) is
 * prefetched at the rate this group is consumed. Generated per (rows, f16)
 * with constant loop bounds so all accumulators stay in registers.
 */
#define DEF_GEMV_COLS(MI, F16)                                                                 \
    AVX2 static void gemv_cols##MI##_##F16(const float *x, int64_t ldx, const uint8_t *w0,     \
                                           size_t row_bytes, int64_t k, float out[][8],        \
                                           const uint8_t *ahead)                               \
    {                                                                                          \
        __m256 acc[MI][8];                                                                     \
        _Pragma("GCC unroll 8") for (int r = 0; r < MI; r++)                                   \
            _Pragma("GCC unroll 8") for (int c = 0; c < 8; c++) acc[r][c] = _mm256_setzero_ps(); \
        int64_t p = 0;                                                                         \
        for (; p + 8 <= k; p += 8) {                                                           \
            /* this step consumes 64 * esize bytes of the group: prefetch as much ahead */      \
            _mm_prefetch((const char *)(ahead + p * (F16 ? 16 : 32)), _MM_HINT_T0);            \
            _mm_prefetch((const char *)(ahead + p * (F16 ? 16 : 32) + 64), _MM_HINT_T0);       \
            if (!F16) {                                                                        \
                _mm_prefetch((const char *)(ahead + p * 32 + 128), _MM_HINT_T0);               \
                _mm_prefetch((const char *)(ahead + p * 32 + 192), _MM_HINT_T0);               \
            }                                                                                  \
            __m256 x0 = _mm256_loadu_ps(x + p), x1 = x0;                                       \
            if (MI == 2)                                                                       \
                x1 = _mm256_loadu_ps(x + ldx + p);                                             \
            _Pragma("GCC unroll 8") for (int c = 0; c < 8; c++)                                \
            {                                                                                  \
                __m256 wv = load_w8(w0 + c * row_bytes, p, F16);                               \
                acc[0][c] = _mm256_fmadd_ps(x0, wv, acc[0][c]);                                \
                if (MI == 2)                                                                   \
                    acc[MI - 1][c] = _mm256_fmadd_ps(x1, wv, acc[MI - 1][c]);                  \
            }                                                                                  \
        }                                                                                      \
        _Pragma("GCC unroll 8") for (int r = 0; r < MI; r++)                                   \
            _Pragma("GCC unroll 8") for (int c = 0; c < 8; c++)                                \
        {                                                                                      \
            float sum = hsum(acc[r][c]);                                                       \
            for (int64_t q = p; q < k; q++)                                                    \
                sum += x[r * ldx + q] * load_w1(w0 + c * row_bytes, q, F16);                   \
            out[r][c] = sum;                                                                   \
        }                                                                                      \
    }
DEF_GEMV_COLS(1, 0)
DEF_GEMV_COLS(2, 0)
DEF_GEMV_COLS(1, 1)
DEF_GEMV_COLS(2, 1)

/* Writes (or adds) out[r][c] + bias into y for a 4-column group. */
static void gemv_store(int mi, int nc, int i, int j, float out[][4], const float *bias, float *y,
                       int64_t ldy, int accumulate)
{
    for (int r = 0; r < mi; r++)
        for (int c = 0; c < nc; c++) {
            float v = out[r][c] + (bias ? bias[j + c] : 0.0f);
            float *d = &y[(int64_t)(i + r) * ldy + j + c];
            *d = accumulate ? *d + v : v;
        }
}

/*
 * m rows (3..6) against two weight rows, all 2*m accumulators in registers:
 * one conversion of W feeds m FMAs. Generated per (rows, f16) so every loop
 * has constant bounds and unrolls into registers.
 */
#define DEF_GEMV_ROWS(MI, F16)                                                                 \
    AVX2 static void gemv_rows##MI##_##F16(const float *x, int64_t ldx, const uint8_t *w0,     \
                                           const uint8_t *w1, int64_t k, float out[][2])       \
    {                                                                                          \
        const uint8_t *ahead = w0 + 8 * (w1 - w0);                                             \
        __m256 a0[MI], a1[MI];                                                                 \
        _Pragma("GCC unroll 8") for (int r = 0; r < MI; r++) a0[r] = a1[r] = _mm256_setzero_ps(); \
        int64_t p = 0;                                                                         \
        for (; p + 8 <= k; p += 8) {                                                           \
            _mm_prefetch((const char *)(ahead + p * (F16 ? 4 : 8)), _MM_HINT_T0);             \
            __m256 v0 = load_w8(w0, p, F16), v1 = load_w8(w1, p, F16);                         \
            _Pragma("GCC unroll 8") for (int r = 0; r < MI; r++)                               \
            {                                                                                  \
                __m256 xv = _mm256_loadu_ps(x + r * ldx + p);                                  \
                a0[r] = _mm256_fmadd_ps(xv, v0, a0[r]);                                        \
                a1[r] = _mm256_fmadd_ps(xv, v1, a1[r]);                                        \
            }                                                                                  \
        }                                                                                      \
        _Pragma("GCC unroll 8") for (int r = 0; r < MI; r++)                                   \
        {                                                                                      \
            float s0 = hsum(a0[r]), s1 = hsum(a1[r]);                                          \
            for (int64_t q = p; q < k; q++) {                                                  \
                s0 += x[r * ldx + q] * load_w1(w0, q, F16);                                    \
                s1 += x[r * ldx + q] * load_w1(w1, q, F16);                                    \
            }                                                                                  \
            out[r][0] = s0;                                                                    \
            out[r][1] = s1;                                                                    \
        }                                                                                      \
    }
DEF_GEMV_ROWS(3, 0)
DEF_GEMV_ROWS(4, 0)
DEF_GEMV_ROWS(5, 0)
DEF_GEMV_ROWS(6, 0)
DEF_GEMV_ROWS(3, 1)
DEF_GEMV_ROWS(4, 1)
DEF_GEMV_ROWS(5, 1)
DEF_GEMV_ROWS(6, 1)

typedef void (*gemv_rows_fn)(const float *, int64_t, const uint8_t *, const uint8_t *, int64_t,
                             float[][2]);
static const gemv_rows_fn GEMV_ROWS[2][7] = {
    {NULL, NULL, NULL, gemv_rows3_0, gemv_rows4_0, gemv_rows5_0, gemv_rows6_0},
    {NULL, NULL, NULL, gemv_rows3_1, gemv_rows4_1, gemv_rows5_1, gemv_rows6_1},
};

/* The last < 8 columns for m <= 2: plain dot products. */
AVX2 static void gemv_small_rest(int m, const float *x, int64_t ldx, const struct sd_kweight *w,
                                 int n0, int n1, const float *bias, float *y, int64_t ldy,
                                 int accumulate)
{
    int f16 = w->type == SD_TYPE_F16;
    size_t row_bytes = (size_t)w->ld * (f16 ? 2 : 4);
    for (int j = n0; j < n1; j++) {
        const uint8_t *wr = (const uint8_t *)w->data + (size_t)j * row_bytes;
        for (int r = 0; r < m; r++) {
            __m256 acc = _mm256_setzero_ps();
            int64_t p = 0;
            for (; p + 8 <= w->k; p += 8)
                acc = _mm256_fmadd_ps(_mm256_loadu_ps(x + r * ldx + p), load_w8(wr, p, f16), acc);
            float sum = hsum(acc);
            for (; p < w->k; p++)
                sum += x[r * ldx + p] * load_w1(wr, p, f16);
            float v = sum + (bias ? bias[j] : 0.0f);
            float *d = &y[(int64_t)r * ldy + j];
            *d = accumulate ? *d + v : v;
        }
    }
}

/*
 * Small-m products, memory bound on W: m <= 2 streams eight weight rows at a
 * time with the f16->f32 conversion fused into the FMAs; 3 <= m < 8 keeps up
 * to 6 rows x 2 columns of accumulators in registers per pass over W.
 */
AVX2 void sd_avx2_gemv(int m, const float *x, int64_t ldx, const struct sd_kweight *w, int n0,
                           int n1, const float *bias, float *y, int64_t ldy, int accumulate)
{
    if (sd_type_is_quantized(w->type)) {
        sd_quant_gemv_avx2(m, x, ldx, w, n0, n1, bias, y, ldy, accumulate);
        return;
    }
    int f16 = w->type == SD_TYPE_F16;
    size_t row_bytes = (size_t)w->ld * (f16 ? 2 : 4);
    const uint8_t *base = w->data;
    if (m <= 2) {
        int j = n0;
        for (; j + 8 <= n1; j += 8) {
            const uint8_t *w0 = base + (size_t)j * row_bytes;
            float out[2][8];
            if (m == 1)
                (f16 ? gemv_cols1_1 : gemv_cols1_0)(x, ldx, w0, row_bytes, w->k, out,
                                                    w0 + GEMV_PF_ROWS * row_bytes);
            else
                (f16 ? gemv_cols2_1 : gemv_cols2_0)(x, ldx, w0, row_bytes, w->k, out,
                                                    w0 + GEMV_PF_ROWS * row_bytes);
            for (int r = 0; r < m; r++)
                for (int c = 0; c < 8; c++) {
                    float v = out[r][c] + (bias ? bias[j + c] : 0.0f);
                    float *d = &y[(int64_t)r * ldy + j + c];
                    *d = accumulate ? *d + v : v;
                }
        }
        if (j < n1) /* fewer than 8 columns left: the row-tiled kernel handles them */
            gemv_small_rest(m, x, ldx, w, j, n1, bias, y, ldy, accumulate);
        return;
    }
    for (int j = n0; j < n1; j += 2) {
        int nc = n1 - j < 2 ? 1 : 2;
        const uint8_t *w0 = base + (size_t)j * row_bytes;
        const uint8_t *w1 = nc == 2 ? w0 + row_bytes : w0;
        for (int i = 0; i < m;) {
            int mi = m - i;
            mi = mi > 6 ? (mi == 7 ? 4 : 6) : mi; /* 7 rows -> 4 + 3 */
            float out[6][2], o4[6][4];
            GEMV_ROWS[f16][mi](x + (int64_t)i * ldx, ldx, w0, w1, w->k, out);
            for (int r = 0; r < mi; r++) {
                o4[r][0] = out[r][0];
                o4[r][1] = out[r][1];
            }
            gemv_store(mi, nc, i, j, o4, bias, y, ldy, accumulate);
            i += mi;
        }
    }
}

AVX2 float sd_avx2_dot(const float *a, const float *b, int n)
{
    __m256 s0 = _mm256_setzero_ps(), s1 = s0;
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
    }
    for (; i + 8 <= n; i += 8)
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    float s = hsum(_mm256_add_ps(s0, s1));
    for (; i < n; i++)
        s += a[i] * b[i];
    return s;
}

AVX2 void sd_avx2_axpy(float a, const float *x, float *y, int n)
{
    __m256 av = _mm256_set1_ps(a);
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(av, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    for (; i < n; i++)
        y[i] += a * x[i];
}

AVX2 void sd_avx2_scale(float a, float *y, int n)
{
    __m256 av = _mm256_set1_ps(a);
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_mul_ps(av, _mm256_loadu_ps(y + i)));
    for (; i < n; i++)
        y[i] *= a;
}

/* Largest of x[0..n) (-inf for n == 0). */
AVX2 static float max_of(const float *x, int n)
{
    __m256 mv = _mm256_set1_ps(-INFINITY);
    int i = 0;
    for (; i + 8 <= n; i += 8)
        mv = _mm256_max_ps(mv, _mm256_loadu_ps(x + i));
    float mx = hmax(mv);
    for (; i < n; i++)
        mx = x[i] > mx ? x[i] : mx;
    return mx;
}

AVX2 float sd_avx2_softmax_exp(float *x, int n, float scale)
{
    float mx = max_of(x, n);
    int i;
    __m256 sv = _mm256_set1_ps(scale), off = _mm256_set1_ps(-scale * mx), sum = _mm256_setzero_ps();
    for (i = 0; i + 8 <= n; i += 8) {
        __m256 e = exp8(_mm256_fmadd_ps(_mm256_loadu_ps(x + i), sv, off));
        _mm256_storeu_ps(x + i, e);
        sum = _mm256_add_ps(sum, e);
    }
    float s = hsum(sum);
    for (; i < n; i++) {
        x[i] = expf(scale * (x[i] - mx));
        s += x[i];
    }
    return s;
}

AVX2 float sd_avx2_logsumexp(const float *x, int n)
{
    float mx = max_of(x, n);
    int i;
    if (mx == -INFINITY)
        return -INFINITY;
    /* exp8 clamps below -88 (not 0): -inf entries are masked out instead */
    const __m256 ninf = _mm256_set1_ps(-INFINITY), off = _mm256_set1_ps(mx);
    __m256 sum = _mm256_setzero_ps();
    for (i = 0; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        __m256 e = exp8(_mm256_sub_ps(v, off));
        sum = _mm256_add_ps(sum, _mm256_and_ps(e, _mm256_cmp_ps(v, ninf, _CMP_NEQ_OQ)));
    }
    double s = hsum(sum);
    for (; i < n; i++)
        s += expf(x[i] - mx);
    return mx + logf((float)s);
}

/*
 * GELU via erfc (Abramowitz-Stegun 7.1.26, |error| <= 1.5e-7): with z = |x|/sqrt2,
 * q = erfc(z); gelu = x (1 - q/2) for x >= 0 and x q / 2 for x < 0, which avoids
 * the cancellation of 1 + erf(x) for negative x.
 */
AVX2 static inline __m256 gelu8(__m256 x)
{
    __m256 ax = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), x);
    __m256 z = _mm256_mul_ps(ax, _mm256_set1_ps(0.70710678118654752f));
    __m256 t = _mm256_div_ps(_mm256_set1_ps(1.0f),
                             _mm256_fmadd_ps(z, _mm256_set1_ps(0.3275911f), _mm256_set1_ps(1.0f)));
    __m256 p = _mm256_set1_ps(1.061405429f);
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-1.453152027f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(1.421413741f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-0.284496736f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(0.254829592f));
    p = _mm256_mul_ps(p, t);
    __m256 q = _mm256_mul_ps(p, exp8(_mm256_mul_ps(_mm256_mul_ps(z, z), _mm256_set1_ps(-1.0f))));
    __m256 hq = _mm256_mul_ps(q, _mm256_set1_ps(0.5f));
    __m256 pos = _mm256_sub_ps(_mm256_set1_ps(1.0f), hq);
    __m256 sel = _mm256_blendv_ps(pos, hq, x); /* sign bit of x selects hq */
    return _mm256_mul_ps(x, sel);
}

AVX2 void sd_avx2_gelu(float *x, int64_t n)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(x + i, gelu8(_mm256_loadu_ps(x + i)));
    if (i < n) {
        float t[8] = {0};
        memcpy(t, x + i, (size_t)(n - i) * sizeof(float));
        _mm256_storeu_ps(t, gelu8(_mm256_loadu_ps(t)));
        memcpy(x + i, t, (size_t)(n - i) * sizeof(float));
    }
}

AVX2 void sd_avx2_add(float *y, const float *x, int64_t n)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_add_ps(_mm256_loadu_ps(y + i), _mm256_loadu_ps(x + i)));
    for (; i < n; i++)
        y[i] += x[i];
}

AVX2 void sd_avx2_layer_norm(const float *x, int n, const float *g, const float *b, float eps,
                                 float *y)
{
    __m256 s = _mm256_setzero_ps();
    int i = 0;
    for (; i + 8 <= n; i += 8)
        s = _mm256_add_ps(s, _mm256_loadu_ps(x + i));
    float sum = hsum(s);
    for (; i < n; i++)
        sum += x[i];
    float mean = sum / (float)n;
    __m256 mv = _mm256_set1_ps(mean), v = _mm256_setzero_ps();
    for (i = 0; i + 8 <= n; i += 8) {
        __m256 d = _mm256_sub_ps(_mm256_loadu_ps(x + i), mv);
        v = _mm256_fmadd_ps(d, d, v);
    }
    float var = hsum(v);
    for (; i < n; i++)
        var += (x[i] - mean) * (x[i] - mean);
    var /= (float)n;
    float inv = 1.0f / sqrtf(var + eps);
    __m256 iv = _mm256_set1_ps(inv);
    for (i = 0; i + 8 <= n; i += 8) {
        __m256 d = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), mv), iv);
        if (g)
            d = _mm256_mul_ps(d, _mm256_loadu_ps(g + i));
        if (b)
            d = _mm256_add_ps(d, _mm256_loadu_ps(b + i));
        _mm256_storeu_ps(y + i, d);
    }
    for (; i < n; i++)
        y[i] = (x[i] - mean) * inv * (g ? g[i] : 1.0f) + (b ? b[i] : 0.0f);
}

/* 8 elements of K or V (f32 or f16) at element index i of row base */
AVX2 static inline __m256 load_kv8(const void *base, int64_t i, int f16)
{
    return f16 ? load_h8((const uint8_t *)base + 2 * i)
               : _mm256_loadu_ps((const float *)base + i);
}

/*
 * Single-query attention for one head with d a multiple of 8 (<= 128):
 * scores four keys at a time (8 independent FMA chains), then the weighted
 * sum of V rows with the whole output row held in registers.
 */
AVX2 static void attn_row_fast(const float *q, const void *k, int64_t ldk, const void *v,
                               int64_t ldv, int f16, int nk, int d, float scale, float *s,
                               float *out)
{
    int j = 0;
    for (; j + 4 <= nk; j += 4) {
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        __m256 b0 = a0, b1 = a0, b2 = a0, b3 = a0;
        int64_t r0 = (int64_t)j * ldk, r1 = r0 + ldk, r2 = r1 + ldk, r3 = r2 + ldk;
        int c = 0;
        for (; c + 16 <= d; c += 16) {
            __m256 qa = _mm256_loadu_ps(q + c), qb = _mm256_loadu_ps(q + c + 8);
            a0 = _mm256_fmadd_ps(qa, load_kv8(k, r0 + c, f16), a0);
            b0 = _mm256_fmadd_ps(qb, load_kv8(k, r0 + c + 8, f16), b0);
            a1 = _mm256_fmadd_ps(qa, load_kv8(k, r1 + c, f16), a1);
            b1 = _mm256_fmadd_ps(qb, load_kv8(k, r1 + c + 8, f16), b1);
            a2 = _mm256_fmadd_ps(qa, load_kv8(k, r2 + c, f16), a2);
            b2 = _mm256_fmadd_ps(qb, load_kv8(k, r2 + c + 8, f16), b2);
            a3 = _mm256_fmadd_ps(qa, load_kv8(k, r3 + c, f16), a3);
            b3 = _mm256_fmadd_ps(qb, load_kv8(k, r3 + c + 8, f16), b3);
        }
        for (; c < d; c += 8) {
            __m256 qa = _mm256_loadu_ps(q + c);
            a0 = _mm256_fmadd_ps(qa, load_kv8(k, r0 + c, f16), a0);
            a1 = _mm256_fmadd_ps(qa, load_kv8(k, r1 + c, f16), a1);
            a2 = _mm256_fmadd_ps(qa, load_kv8(k, r2 + c, f16), a2);
            a3 = _mm256_fmadd_ps(qa, load_kv8(k, r3 + c, f16), a3);
        }
        s[j] = hsum(_mm256_add_ps(a0, b0));
        s[j + 1] = hsum(_mm256_add_ps(a1, b1));
        s[j + 2] = hsum(_mm256_add_ps(a2, b2));
        s[j + 3] = hsum(_mm256_add_ps(a3, b3));
    }
    for (; j < nk; j++) {
        __m256 a0 = _mm256_setzero_ps();
        for (int c = 0; c < d; c += 8)
            a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + c), load_kv8(k, (int64_t)j * ldk + c, f16),
                                 a0);
        s[j] = hsum(a0);
    }
    float sum = sd_avx2_softmax_exp(s, nk, scale);
    __m256 acc[16];
    int nv = d / 8;
    for (int c = 0; c < 16; c++)
        acc[c] = _mm256_setzero_ps();
    if (nv == 8) { /* d_head 64, every Whisper model: constant bounds keep acc in registers */
        for (j = 0; j < nk; j++) {
            __m256 p = _mm256_broadcast_ss(s + j);
            int64_t r = (int64_t)j * ldv;
#pragma GCC unroll 8
            for (int c = 0; c < 8; c++)
                acc[c] = _mm256_fmadd_ps(p, load_kv8(v, r + 8 * c, f16), acc[c]);
        }
    } else {
        for (j = 0; j < nk; j++) {
            __m256 p = _mm256_broadcast_ss(s + j);
            for (int c = 0; c < nv; c++)
                acc[c] = _mm256_fmadd_ps(p, load_kv8(v, (int64_t)j * ldv + 8 * c, f16), acc[c]);
        }
    }
    __m256 inv = _mm256_set1_ps(1.0f / sum);
    for (int c = 0; c < nv; c++)
        _mm256_storeu_ps(out + 8 * c, _mm256_mul_ps(acc[c], inv));
}

AVX2 void sd_avx2_attn_row(const float *q, const void *k, int64_t ldk, const void *v,
                               int64_t ldv, enum sd_type t, int nk, int d, float scale, float *s,
                               float *out)
{
    if (d % 8 == 0 && d <= 128) {
        attn_row_fast(q, k, ldk, v, ldv, t == SD_TYPE_F16, nk, d, scale, s, out);
        return;
    }
    sd_kernels_scalar.attn_row(q, k, ldk, v, ldv, t, nk, d, scale, s, out);
}

AVX2 void sd_avx2_to_f16(const float *src, uint16_t *dst, int64_t n)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(void *)(dst + i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++)
        dst[i] = _cvtss_sh(src[i], _MM_FROUND_TO_NEAREST_INT);
}


/* Packs a [kc][16] panel from 16 rows of B ([n][k] layout): 8x8 blocks converted and transposed. */
AVX2 void sd_avx2_pack_panel_nk(const void *b, enum sd_type t, int64_t ldb, int nr, int kc,
                                    float *dst)
{
    if (sd_type_is_quantized(t)) {
        sd_quant_pack_panel_avx2(b, t, ldb, nr, kc, dst);
        return;
    }
    int f16 = t == SD_TYPE_F16, es = f16 ? 2 : 4;
    const uint8_t *base = b;
    int p = 0;
    for (; p + 8 <= kc; p += 8) {
        for (int h = 0; h < 2; h++) {
            __m256 r[8];
            for (int i = 0; i < 8; i++) {
                int c = h * 8 + i;
                r[i] = c < nr ? load_kv8(base + (int64_t)c * ldb * es, p, f16)
                              : _mm256_setzero_ps();
            }
            avx2_transpose8(r);
            for (int i = 0; i < 8; i++)
                _mm256_store_ps(dst + (size_t)(p + i) * SD_NR + h * 8, r[i]);
        }
    }
    for (; p < kc; p++) /* k tail */
        for (int c = 0; c < SD_NR; c++) {
            float v = 0.0f;
            if (c < nr) {
                const uint8_t *e = base + ((int64_t)c * ldb + p) * es;
                if (f16) {
                    uint16_t hv;
                    memcpy(&hv, e, 2);
                    v = _cvtsh_ss(hv);
                } else {
                    memcpy(&v, e, 4);
                }
            }
            dst[(size_t)p * SD_NR + c] = v;
        }
}

const struct sd_kernels sd_kernels_avx2 = {
    .name = "avx2",
    .panels = 1,
    .micro = micro_avx2,
    .to_f32 = sd_avx2_to_f32,
    .gemv = sd_avx2_gemv,
    .dot = sd_avx2_dot,
    .axpy = sd_avx2_axpy,
    .scale = sd_avx2_scale,
    .softmax_exp = sd_avx2_softmax_exp,
    .logsumexp = sd_avx2_logsumexp,
    .gelu = sd_avx2_gelu,
    .add = sd_avx2_add,
    .layer_norm = sd_avx2_layer_norm,
    .attn_row = sd_avx2_attn_row,
    .to_f16 = sd_avx2_to_f16,
    .pack_panel_nk = sd_avx2_pack_panel_nk,
};

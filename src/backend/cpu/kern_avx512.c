/*
 * kern_avx512.c - the AVX-512 kernel table, chosen at run time on CPUs with
 * AVX-512 F/VL/BW/DQ/VNNI (plus the AVX2 table's FMA and F16C). Where a core has
 * full-width 512-bit FMA units (AMD Zen 5, Intel server cores) this doubles
 * the arithmetic per instruction; the GEMM micro-kernel covers 6 rows by up
 * to four 16-column panels with 24 zmm accumulators. Entries where wider
 * vectors do not pay reuse the AVX2 kernels (avx2.h).
 */
#include <immintrin.h>
#include <string.h>

#include "backend/cpu/avx2.h"
#include "backend/cpu/kernels.h"

#define AVX512                                                                                 \
    __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,avx512vnni,avx2,fma,f16c")))
#define ALWAYS_INLINE inline __attribute__((always_inline))

int sd_cpu_has_avx512(void)
{
    __builtin_cpu_init();
    return sd_cpu_has_avx2() && __builtin_cpu_supports("avx512f") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vnni");
}

/* The first n (0..16) lanes. */
static inline __mmask16 lanes(int n)
{
    return n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n > 0 ? n : 0)) - 1u);
}

/*
 * C[mr][nr] (+)= A[6][kc] . B over NP panels: 6 x NP accumulators, one
 * broadcast of A feeds NP FMAs, one load of B feeds 6. NP is a constant at
 * every call site so the accumulators stay in registers.
 */
AVX512 static ALWAYS_INLINE void micro_tile(const int NP, int kc, const float *a, int64_t lda,
                                            const float *bp, int64_t ps, float *c, int64_t ldc,
                                            int mr, int nr, int load_c, const float *bias)
{
    __m512 acc[SD_MR][SD_MAX_PANELS];
#pragma GCC unroll 6
    for (int r = 0; r < SD_MR; r++)
#pragma GCC unroll 4
        for (int q = 0; q < NP; q++)
            acc[r][q] = _mm512_setzero_ps();
    const float *ar[SD_MR];
#pragma GCC unroll 6
    for (int r = 0; r < SD_MR; r++)
        ar[r] = a + r * lda;
    for (int p = 0; p < kc; p++) {
        __m512 b[SD_MAX_PANELS];
#pragma GCC unroll 4
        for (int q = 0; q < NP; q++)
            b[q] = _mm512_load_ps(bp + q * ps + (int64_t)p * SD_NR);
#pragma GCC unroll 6
        for (int r = 0; r < SD_MR; r++) {
            __m512 av = _mm512_set1_ps(ar[r][p]);
#pragma GCC unroll 4
            for (int q = 0; q < NP; q++)
                acc[r][q] = _mm512_fmadd_ps(av, b[q], acc[r][q]);
        }
    }
#pragma GCC unroll 4
    for (int q = 0; q < NP; q++) {
        __mmask16 mk = lanes(nr - q * SD_NR);
        __m512 bv = bias ? _mm512_maskz_loadu_ps(mk, bias + q * SD_NR) : _mm512_setzero_ps();
        for (int r = 0; r < mr; r++) {
            float *cr = c + r * ldc + q * SD_NR;
            __m512 v = _mm512_add_ps(acc[r][q], bv);
            if (load_c)
                v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mk, cr));
            _mm512_mask_storeu_ps(cr, mk, v);
        }
    }
}

AVX512 static void micro_avx512(int kc, const float *a, int64_t lda, const float *bp,
                                int64_t panel_stride, float *c, int64_t ldc, int mr, int nr,
                                int load_c, const float *bias)
{
    switch ((nr + SD_NR - 1) / SD_NR) {
    case 4:
        micro_tile(4, kc, a, lda, bp, panel_stride, c, ldc, mr, nr, load_c, bias);
        break;
    case 3:
        micro_tile(3, kc, a, lda, bp, panel_stride, c, ldc, mr, nr, load_c, bias);
        break;
    case 2:
        micro_tile(2, kc, a, lda, bp, panel_stride, c, ldc, mr, nr, load_c, bias);
        break;
    default:
        micro_tile(1, kc, a, lda, bp, panel_stride, c, ldc, mr, nr, load_c, bias);
        break;
    }
}

/* ------------------------------------------------ small-m products */

/* 16 weights (f16 or f32) of a row from element p; lanes outside mk read as 0. */
AVX512 static ALWAYS_INLINE __m512 load_w16(const uint8_t *row, int64_t p, int f16,
                                            __mmask16 mk)
{
    if (f16)
        return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mk, row + 2 * p));
    return _mm512_maskz_loadu_ps(mk, row + 4 * p);
}

/* Lane sums of 8 vectors: result lane c = sum of v[c]. */
AVX512 static ALWAYS_INLINE __m256 sum8(const __m512 v[8])
{
    __m256 s[8];
#pragma GCC unroll 8
    for (int c = 0; c < 8; c++)
        s[c] = _mm256_add_ps(_mm512_castps512_ps256(v[c]), _mm512_extractf32x8_ps(v[c], 1));
    __m256 t0 = _mm256_hadd_ps(s[0], s[1]), t1 = _mm256_hadd_ps(s[2], s[3]);
    __m256 t2 = _mm256_hadd_ps(s[4], s[5]), t3 = _mm256_hadd_ps(s[6], s[7]);
    __m256 u0 = _mm256_hadd_ps(t0, t1), u1 = _mm256_hadd_ps(t2, t3);
    return _mm256_add_ps(_mm256_permute2f128_ps(u0, u1, 0x20),
                         _mm256_permute2f128_ps(u0, u1, 0x31));
}

/* Lane sums of 4 vectors: result lane c = sum of v[c]. */
AVX512 static ALWAYS_INLINE __m128 sum4(const __m512 v[4])
{
    __m256 s[4];
#pragma GCC unroll 4
    for (int c = 0; c < 4; c++)
        s[c] = _mm256_add_ps(_mm512_castps512_ps256(v[c]), _mm512_extractf32x8_ps(v[c], 1));
    __m256 u = _mm256_hadd_ps(_mm256_hadd_ps(s[0], s[1]), _mm256_hadd_ps(s[2], s[3]));
    return _mm_add_ps(_mm256_castps256_ps128(u), _mm256_extractf128_ps(u, 1));
}

/* y[r][j..j+n) = out[r][0..n) + bias, or added to y. */
static void gemv_put(int mi, int n, const float *out, int ldo, int64_t i, int j,
                     const float *bias, float *y, int64_t ldy, int accumulate)
{
    for (int r = 0; r < mi; r++)
        for (int c = 0; c < n; c++) {
            float v = out[r * ldo + c] + (bias ? bias[j + c] : 0.0f);
            float *d = &y[(i + r) * ldy + j + c];
            *d = accumulate ? *d + v : v;
        }
}

/*
 * MI (1..2) x rows against NC (1..8) consecutive weight rows: the decoder's
 * memory-bound path, f16->f32 conversion fused into the FMAs, 16 weights per
 * instruction, the k tail by masked loads. The NC rows are contiguous in W,
 * so `ahead` (rows further on) is prefetched at the rate this group is read.
 */
AVX512 static ALWAYS_INLINE void gemv_cols(const int MI, const int NC, const int F16,
                                           const float *x, int64_t ldx, const uint8_t *w0,
                                           size_t row_bytes, int64_t k, float out[2][8],
                                           const uint8_t *ahead)
{
    __m512 acc[2][8];
#pragma GCC unroll 8
    for (int c = 0; c < 8; c++)
        acc[0][c] = acc[1][c] = _mm512_setzero_ps();
    const int step_bytes = NC * 16 * (F16 ? 2 : 4);
    for (int64_t p = 0; p < k; p += 16) {
        /* full steps use a constant mask, which the loads fold away */
        __mmask16 mk = p + 16 <= k ? (__mmask16)0xFFFF : lanes((int)(k - p));
        for (int b = 0; b < step_bytes; b += 64)
            _mm_prefetch((const char *)(ahead + p / 16 * step_bytes + b), _MM_HINT_T0);
        __m512 x0 = _mm512_maskz_loadu_ps(mk, x + p), x1 = x0;
        if (MI == 2)
            x1 = _mm512_maskz_loadu_ps(mk, x + ldx + p);
#pragma GCC unroll 8
        for (int c = 0; c < NC; c++) {
            __m512 wv = load_w16(w0 + c * row_bytes, p, F16, mk);
            acc[0][c] = _mm512_fmadd_ps(x0, wv, acc[0][c]);
            if (MI == 2)
                acc[1][c] = _mm512_fmadd_ps(x1, wv, acc[1][c]);
        }
    }
    for (int r = 0; r < MI; r++)
        _mm256_storeu_ps(out[r], sum8(acc[r]));
}

/*
 * One 16-wide step of MI x rows against 4 weight rows at element p, lanes mk
 * (a constant all-ones mask in the main loop, which the loads fold away).
 */
#define GEMV_ROWS_STEP(MI, F16, mk)                                                            \
    {                                                                                          \
        __m512 wv[4];                                                                          \
        _Pragma("GCC unroll 4") for (int c = 0; c < 4; c++) wv[c] =                            \
            load_w16(wr[c], p, F16, mk);                                                       \
        _Pragma("GCC unroll 6") for (int r = 0; r < MI; r++)                                   \
        {                                                                                      \
            __m512 xv = _mm512_maskz_loadu_ps(mk, x + r * ldx + p);                            \
            _Pragma("GCC unroll 4") for (int c = 0; c < 4; c++) acc[r][c] =                    \
                _mm512_fmadd_ps(xv, wv[c], acc[r][c]);                                         \
        }                                                                                      \
    }

/*
 * MI (3..6) x rows against 4 weight rows (nc < 4 re-reads the last row, not
 * stored): 4*MI accumulators in registers, one conversion of W feeds MI FMAs
 * (batched beams, several sequences). Generated per (MI, f16) so every loop
 * has constant bounds and the accumulators stay in registers.
 */
#define DEF_GEMV_ROWS(MI, F16)                                                                 \
    AVX512 static void gemv_rows##MI##_##F16(const float *x, int64_t ldx, const uint8_t *w0,   \
                                             size_t row_bytes, int nc, int64_t k,              \
                                             float out[6][4])                                  \
    {                                                                                          \
        __m512 acc[MI][4];                                                                     \
        _Pragma("GCC unroll 6") for (int r = 0; r < MI; r++)                                   \
            _Pragma("GCC unroll 4") for (int c = 0; c < 4; c++) acc[r][c] =                    \
                _mm512_setzero_ps();                                                           \
        const uint8_t *wr[4];                                                                  \
        for (int c = 0; c < 4; c++)                                                            \
            wr[c] = w0 + (size_t)(c < nc ? c : nc - 1) * row_bytes;                            \
        const uint8_t *ahead = w0 + 16 * row_bytes;                                            \
        int64_t p = 0;                                                                         \
        for (; p + 16 <= k; p += 16) {                                                         \
            _mm_prefetch((const char *)(ahead + p * (F16 ? 8 : 16)), _MM_HINT_T0);             \
            _mm_prefetch((const char *)(ahead + p * (F16 ? 8 : 16) + 64), _MM_HINT_T0);        \
            GEMV_ROWS_STEP(MI, F16, (__mmask16)0xFFFF)                                         \
        }                                                                                      \
        if (p < k) {                                                                           \
            __mmask16 tail = lanes((int)(k - p));                                              \
            GEMV_ROWS_STEP(MI, F16, tail)                                                      \
        }                                                                                      \
        _Pragma("GCC unroll 6") for (int r = 0; r < MI; r++)                                   \
            _mm_storeu_ps(out[r], sum4(acc[r]));                                               \
    }

#ifndef GEMV_PF_ROWS
#define GEMV_PF_ROWS 16 /* prefetch distance of the m <= 2 path, in weight rows */
#endif

/* gemv_cols for NC weight rows with the (m, f16) pair picked at run time, as constants. */
#define DEF_GEMV_COLS_ANY(NC)                                                                  \
    AVX512 static void gemv_cols_any##NC(int m, int f16, const float *x, int64_t ldx,          \
                                         const uint8_t *w0, size_t row_bytes, int64_t k,        \
                                         float out[2][8], const uint8_t *ahead)                \
    {                                                                                          \
        if (f16 && m == 1)                                                                     \
            gemv_cols(1, NC, 1, x, ldx, w0, row_bytes, k, out, ahead);                         \
        else if (f16)                                                                          \
            gemv_cols(2, NC, 1, x, ldx, w0, row_bytes, k, out, ahead);                         \
        else if (m == 1)                                                                       \
            gemv_cols(1, NC, 0, x, ldx, w0, row_bytes, k, out, ahead);                         \
        else                                                                                   \
            gemv_cols(2, NC, 0, x, ldx, w0, row_bytes, k, out, ahead);                         \
    }
DEF_GEMV_COLS_ANY(8)
DEF_GEMV_COLS_ANY(1)

/* m <= 2, columns [n0, n1): eight weight rows per pass, then the last ones. */
AVX512 static void gemv_few_rows(int m, int f16, const float *x, int64_t ldx,
                                 const uint8_t *base, size_t row_bytes, int64_t k, int n0,
                                 int n1, const float *bias, float *y, int64_t ldy, int accumulate)
{
    float out[2][8];
    int j = n0;
    for (; j + 8 <= n1; j += 8) {
        const uint8_t *w0 = base + (size_t)j * row_bytes;
        gemv_cols_any8(m, f16, x, ldx, w0, row_bytes, k, out, w0 + GEMV_PF_ROWS * row_bytes);
        gemv_put(m, 8, out[0], 8, 0, j, bias, y, ldy, accumulate);
    }
    for (; j < n1; j++) { /* fewer than 8 left: one row at a time, no prefetch */
        const uint8_t *w0 = base + (size_t)j * row_bytes;
        gemv_cols_any1(m, f16, x, ldx, w0, row_bytes, k, out, w0);
        gemv_put(m, 1, out[0], 8, 0, j, bias, y, ldy, accumulate);
    }
}

typedef void (*gemv_rows_fn)(const float *, int64_t, const uint8_t *, size_t, int, int64_t,
                             float[6][4]);
DEF_GEMV_ROWS(3, 0)
DEF_GEMV_ROWS(4, 0)
DEF_GEMV_ROWS(5, 0)
DEF_GEMV_ROWS(6, 0)
DEF_GEMV_ROWS(3, 1)
DEF_GEMV_ROWS(4, 1)
DEF_GEMV_ROWS(5, 1)
DEF_GEMV_ROWS(6, 1)
static const gemv_rows_fn GEMV_ROWS[2][7] = {
    {NULL, NULL, NULL, gemv_rows3_0, gemv_rows4_0, gemv_rows5_0, gemv_rows6_0},
    {NULL, NULL, NULL, gemv_rows3_1, gemv_rows4_1, gemv_rows5_1, gemv_rows6_1},
};

/*
 * Small-m products (m < SD_GEMV_MAX_M), memory bound on W. Quantized weights
 * take the VNNI integer path (kern_quant_avx512.c).
 */
AVX512 static void gemv_avx512(int m, const float *x, int64_t ldx, const struct sd_kweight *w,
                               int n0, int n1, const float *bias, float *y, int64_t ldy,
                               int accumulate)
{
    if (sd_type_is_quantized(w->type)) {
        sd_quant_gemv_avx512(m, x, ldx, w, n0, n1, bias, y, ldy, accumulate);
        return;
    }
    int f16 = w->type == SD_TYPE_F16;
    size_t row_bytes = (size_t)w->ld * (f16 ? 2 : 4);
    const uint8_t *base = w->data;
    if (m <= 2) {
        gemv_few_rows(m, f16, x, ldx, base, row_bytes, w->k, n0, n1, bias, y, ldy, accumulate);
        return;
    }
    for (int j = n0; j < n1; j += 4) {
        int nc = n1 - j < 4 ? n1 - j : 4;
        const uint8_t *w0 = base + (size_t)j * row_bytes;
        for (int i = 0; i < m;) {
            int mi = m - i;
            mi = mi > 6 ? (mi == 7 ? 4 : 6) : mi; /* 7 rows -> 4 + 3 */
            float out[6][4];
            GEMV_ROWS[f16][mi](x + (int64_t)i * ldx, ldx, w0, row_bytes, nc, w->k, out);
            gemv_put(mi, nc, out[0], 4, i, j, bias, y, ldy, accumulate);
            i += mi;
        }
    }
}

const struct sd_kernels sd_kernels_avx512 = {
    .name = "avx512",
    .panels = 4,
    .micro = micro_avx512,
    .to_f32 = sd_avx2_to_f32,
    .gemv = gemv_avx512,
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

/*
 * kern_avx512.c - the AVX-512 kernel table, chosen at run time on CPUs with
 * AVX-512 F/VL/BW/DQ/VNNI (plus the AVX2 table's FMA and F16C). Where a core has
 * full-width 512-bit FMA units (AMD Zen 5, Intel server cores) this doubles
 * the arithmetic per instruction; the GEMM micro-kernel covers 6 rows by up
 * to four 16-column panels with 24 zmm accumulators. Entries where wider
 * vectors do not pay reuse the AVX2 kernels (avx2.h).
 */
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "backend/cpu/avx2.h"
#include "backend/cpu/kernels.h"

#define AVX512                                                                                 \
    __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,avx512vnni,avx2,fma,f16c")))
#define ALWAYS_INLINE inline __attribute__((always_inline))
/*
 * Where the matrix-vector kernels' software prefetch brings W (the PF argument
 * of a variant): not at all, to L1 (T0), or to L2 only (T1). On Intel Xeon
 * 6/167 an L2 prefetch streamed 10-17 % faster than T0 (fewer L1 fill buffers
 * held by prefetches), where Zen cores were tuned with T0: calibration decides.
 */
enum { PF_NONE = 0, PF_L1 = 1, PF_L2 = 2 };
/*
 * PF_L2 prefetches only rows shorter than this: on the same Xeon a weight row
 * of a page or more (k >= 2048 f16) streamed 6-10 % faster at 1 row and 10-25 %
 * at 5 rows with the hardware prefetcher alone (which follows a stream within
 * a page), shorter rows 15-40 % slower without the software prefetch.
 */
#define PF_L2_MAX_ROW_BYTES 4096
#define GEMV_PREFETCH(PF, addr)                                                                \
    do {                                                                                       \
        if ((PF) == PF_L2)                                                                     \
            _mm_prefetch((const char *)(addr), _MM_HINT_T1);                                   \
        else if ((PF) == PF_L1)                                                                \
            _mm_prefetch((const char *)(addr), _MM_HINT_T0);                                   \
    } while (0)

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

/*
 * How a variant reads f16 weights: F16_ZMM converts 16 halves with one 512-bit
 * vcvtph2ps (one instruction where the core has full-width units), F16_YMM with
 * two 256-bit ones joined into a zmm (on cores that split 512-bit operations,
 * e.g. Zen 4, the narrow form may convert faster). Both give the same floats:
 * the conversion is exact, only the instruction mix differs.
 */
enum { W_F32 = 0, F16_ZMM = 1, F16_YMM = 2 };

/* 16 weights of a row from element p (kind: W_F32, F16_ZMM, F16_YMM); lanes outside mk read as 0. */
AVX512 static ALWAYS_INLINE __m512 load_w16(const uint8_t *row, int64_t p, int kind,
                                            __mmask16 mk)
{
    if (kind == F16_ZMM)
        return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mk, row + 2 * p));
    if (kind == F16_YMM) {
        __m128i lo = _mm_maskz_loadu_epi16((__mmask8)mk, row + 2 * p);
        __m128i hi = _mm_maskz_loadu_epi16((__mmask8)(mk >> 8), row + 2 * p + 16);
        return _mm512_insertf32x8(_mm512_castps256_ps512(_mm256_cvtph_ps(lo)),
                                  _mm256_cvtph_ps(hi), 1);
    }
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
 * so `ahead` (rows further on; NULL: no software prefetch) is prefetched at
 * the rate this group is read.
 */
AVX512 static ALWAYS_INLINE void gemv_cols(const int MI, const int NC, const int KIND,
                                           const int PF, const float *x, int64_t ldx,
                                           const uint8_t *w0, size_t row_bytes, int64_t k,
                                           float out[2][8], const uint8_t *ahead)
{
    __m512 acc[2][8];
#pragma GCC unroll 8
    for (int c = 0; c < 8; c++)
        acc[0][c] = acc[1][c] = _mm512_setzero_ps();
    const int step_bytes = NC * 16 * (KIND != W_F32 ? 2 : 4);
    for (int64_t p = 0; p < k; p += 16) {
        /* full steps use a constant mask, which the loads fold away */
        __mmask16 mk = p + 16 <= k ? (__mmask16)0xFFFF : lanes((int)(k - p));
        if (ahead)
            for (int b = 0; b < step_bytes; b += 64)
                GEMV_PREFETCH(PF, ahead + p / 16 * step_bytes + b);
        __m512 x0 = _mm512_maskz_loadu_ps(mk, x + p), x1 = x0;
        if (MI == 2)
            x1 = _mm512_maskz_loadu_ps(mk, x + ldx + p);
#pragma GCC unroll 8
        for (int c = 0; c < NC; c++) {
            __m512 wv = load_w16(w0 + c * row_bytes, p, KIND, mk);
            acc[0][c] = _mm512_fmadd_ps(x0, wv, acc[0][c]);
            if (MI == 2)
                acc[1][c] = _mm512_fmadd_ps(x1, wv, acc[1][c]);
        }
    }
    /* NC < 8: the unused accumulators are zero, their sums are not stored */
    for (int r = 0; r < MI; r++)
        _mm256_storeu_ps(out[r], sum8(acc[r]));
}

/*
 * One 16-wide step of MI x rows against 4 weight rows at element p, lanes mk
 * (a constant all-ones mask in the main loop, which the loads fold away).
 */
#define GEMV_ROWS_STEP(MI, KIND, mk)                                                           \
    {                                                                                          \
        __m512 wv[4];                                                                          \
        _Pragma("GCC unroll 4") for (int c = 0; c < 4; c++) wv[c] =                            \
            load_w16(wr[c], p, KIND, mk);                                                      \
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
 * (batched beams, several sequences); pf (PF_*): software prefetch 16 rows ahead.
 * Generated per (MI, weight kind) so every loop has constant bounds and the
 * accumulators stay in registers.
 */
#define DEF_GEMV_ROWS(MI, KIND)                                                                \
    AVX512 static void gemv_rows##MI##_##KIND(const float *x, int64_t ldx, const uint8_t *w0,  \
                                              size_t row_bytes, int nc, int64_t k, int pf,     \
                                              float out[6][4])                                 \
    {                                                                                          \
        __m512 acc[MI][4];                                                                     \
        _Pragma("GCC unroll 6") for (int r = 0; r < MI; r++)                                   \
            _Pragma("GCC unroll 4") for (int c = 0; c < 4; c++) acc[r][c] =                    \
                _mm512_setzero_ps();                                                           \
        const uint8_t *wr[4];                                                                  \
        for (int c = 0; c < 4; c++)                                                            \
            wr[c] = w0 + (size_t)(c < nc ? c : nc - 1) * row_bytes;                            \
        const uint8_t *ahead = w0 + 16 * row_bytes;                                            \
        const int es = KIND != W_F32 ? 8 : 16; /* bytes of 4 rows' step per element of p */   \
        int64_t p = 0;                                                                         \
        for (; p + 16 <= k; p += 16) {                                                         \
            if (pf) {                                                                          \
                GEMV_PREFETCH(pf, ahead + p * es);                                             \
                GEMV_PREFETCH(pf, ahead + p * es + 64);                                        \
            }                                                                                  \
            GEMV_ROWS_STEP(MI, KIND, (__mmask16)0xFFFF)                                        \
        }                                                                                      \
        if (p < k) {                                                                           \
            __mmask16 tail = lanes((int)(k - p));                                              \
            GEMV_ROWS_STEP(MI, KIND, tail)                                                     \
        }                                                                                      \
        _Pragma("GCC unroll 6") for (int r = 0; r < MI; r++)                                   \
            _mm_storeu_ps(out[r], sum4(acc[r]));                                               \
    }

typedef void (*gemv_rows_fn)(const float *, int64_t, const uint8_t *, size_t, int, int64_t, int,
                             float[6][4]);
#define DEF_GEMV_ROWS_KIND(KIND)                                                               \
    DEF_GEMV_ROWS(3, KIND) DEF_GEMV_ROWS(4, KIND) DEF_GEMV_ROWS(5, KIND) DEF_GEMV_ROWS(6, KIND)
DEF_GEMV_ROWS_KIND(0) /* W_F32 */
DEF_GEMV_ROWS_KIND(1) /* F16_ZMM */
DEF_GEMV_ROWS_KIND(2) /* F16_YMM */
static const gemv_rows_fn GEMV_ROWS[3][7] = {
    {NULL, NULL, NULL, gemv_rows3_0, gemv_rows4_0, gemv_rows5_0, gemv_rows6_0},
    {NULL, NULL, NULL, gemv_rows3_1, gemv_rows4_1, gemv_rows5_1, gemv_rows6_1},
    {NULL, NULL, NULL, gemv_rows3_2, gemv_rows4_2, gemv_rows5_2, gemv_rows6_2},
};

#ifndef GEMV_PF_ROWS
#define GEMV_PF_ROWS 16 /* prefetch distance of the m <= 2 path, in weight rows */
#endif

/*
 * m <= 2, columns [n0, n1): NC weight rows per pass (NC concurrent streams),
 * then the last ones one at a time; PF (PF_*): software prefetch GEMV_PF_ROWS ahead.
 */
AVX512 static ALWAYS_INLINE void gemv_few_rows(const int KIND, const int NC, const int PF,
                                               int m, const float *x, int64_t ldx,
                                               const uint8_t *base, size_t row_bytes, int64_t k,
                                               int n0, int n1, const float *bias, float *y,
                                               int64_t ldy, int accumulate)
{
    float out[2][8];
    int j = n0;
    for (; j + NC <= n1; j += NC) {
        const uint8_t *w0 = base + (size_t)j * row_bytes;
        const uint8_t *ahead = PF ? w0 + GEMV_PF_ROWS * row_bytes : NULL;
        if (m == 1)
            gemv_cols(1, NC, KIND, PF, x, ldx, w0, row_bytes, k, out, ahead);
        else
            gemv_cols(2, NC, KIND, PF, x, ldx, w0, row_bytes, k, out, ahead);
        gemv_put(m, NC, out[0], 8, 0, j, bias, y, ldy, accumulate);
    }
    for (; j < n1; j++) { /* fewer than NC left: one row at a time, no prefetch */
        const uint8_t *w0 = base + (size_t)j * row_bytes;
        if (m == 1)
            gemv_cols(1, 1, KIND, PF_NONE, x, ldx, w0, row_bytes, k, out, NULL);
        else
            gemv_cols(2, 1, KIND, PF_NONE, x, ldx, w0, row_bytes, k, out, NULL);
        gemv_put(m, 1, out[0], 8, 0, j, bias, y, ldy, accumulate);
    }
}

/* m >= 3: 4 weight rows by up to 6 x rows per call. */
AVX512 static void gemv_many_rows(int kind, int pf, int m, const float *x, int64_t ldx,
                                  const uint8_t *base, size_t row_bytes, int64_t k, int n0,
                                  int n1, const float *bias, float *y, int64_t ldy,
                                  int accumulate)
{
    for (int j = n0; j < n1; j += 4) {
        int nc = n1 - j < 4 ? n1 - j : 4;
        const uint8_t *w0 = base + (size_t)j * row_bytes;
        for (int i = 0; i < m;) {
            int mi = m - i;
            mi = mi > 6 ? (mi == 7 ? 4 : 6) : mi; /* 7 rows -> 4 + 3 */
            float out[6][4];
            GEMV_ROWS[kind][mi](x + (int64_t)i * ldx, ldx, w0, row_bytes, nc, k, pf, out);
            gemv_put(mi, nc, out[0], 4, i, j, bias, y, ldy, accumulate);
            i += mi;
        }
    }
}

/* f32 weights (rare in a decoder: f32 models): one variant for every table. */
AVX512 static void gemv_f32(int m, const float *x, int64_t ldx, const struct sd_kweight *w,
                            int n0, int n1, const float *bias, float *y, int64_t ldy,
                            int accumulate)
{
    size_t row_bytes = (size_t)w->ld * 4;
    if (m <= 2)
        gemv_few_rows(W_F32, 8, PF_L1, m, x, ldx, w->data, row_bytes, w->k, n0, n1, bias, y, ldy,
                      accumulate);
    else
        gemv_many_rows(W_F32, PF_L1, m, x, ldx, w->data, row_bytes, w->k, n0, n1, bias, y, ldy,
                       accumulate);
}

/* exp(x) on 16 lanes: the AVX2 table's polynomial (exp8 in kern_avx2.c), same error. */
AVX512 static inline __m512 exp16(__m512 x)
{
    x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(SD_EXP_CLAMP_LO)),
                       _mm512_set1_ps(SD_EXP_CLAMP_HI));
    __m512 fx = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(SD_EXP_LOG2E)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(fx, _mm512_set1_ps(SD_EXP_LN2_HI), x);
    r = _mm512_fnmadd_ps(fx, _mm512_set1_ps(SD_EXP_LN2_LO), r);
    __m512 p = _mm512_set1_ps(SD_EXP_P0);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(SD_EXP_P1));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(SD_EXP_P2));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(SD_EXP_P3));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(SD_EXP_P4));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(SD_EXP_P5));
    p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), r);
    p = _mm512_add_ps(p, _mm512_set1_ps(1.0f));
    __m512i n = _mm512_add_epi32(_mm512_cvtps_epi32(fx), _mm512_set1_epi32(127));
    return _mm512_mul_ps(p, _mm512_castsi512_ps(_mm512_slli_epi32(n, 23)));
}

/*
 * struct sd_kernels.softmax_exp on 16 lanes, the tail masked: the encoder's
 * attention takes 1500 of these per query and head, and at 8 lanes they were
 * a sixth of the encoder once its products ran on AMX tiles.
 */
AVX512 static float softmax_exp_avx512(float *x, int n, float scale)
{
    __m512 mv = _mm512_set1_ps(-INFINITY);
    int i = 0;
    for (; i + 16 <= n; i += 16)
        mv = _mm512_max_ps(mv, _mm512_loadu_ps(x + i));
    if (i < n)
        mv = _mm512_max_ps(mv, _mm512_mask_loadu_ps(mv, lanes(n - i), x + i));
    float mx = _mm512_reduce_max_ps(mv);
    __m512 sv = _mm512_set1_ps(scale), off = _mm512_set1_ps(-scale * mx), sum = _mm512_setzero_ps();
    for (i = 0; i + 16 <= n; i += 16) {
        __m512 e = exp16(_mm512_fmadd_ps(_mm512_loadu_ps(x + i), sv, off));
        _mm512_storeu_ps(x + i, e);
        sum = _mm512_add_ps(sum, e);
    }
    if (i < n) {
        __mmask16 m = lanes(n - i);
        __m512 e = exp16(_mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, x + i), sv, off));
        _mm512_mask_storeu_ps(x + i, m, e);
        sum = _mm512_add_ps(sum, _mm512_maskz_mov_ps(m, e));
    }
    return _mm512_reduce_add_ps(sum);
}

/*
 * The small-m product (m < SD_GEMV_MAX_M) of one variant, memory bound on W:
 * KIND the f16 conversion, NC the weight rows (streams) per pass at m <= 2,
 * PF the software prefetch (PF_*). Quantized weights take the VNNI integer path
 * (kern_quant_avx512.c). Every variant sums a row's products in the same
 * order (16 lanes over k, then the same lane reduction), so they agree.
 */
#define DEF_GEMV_VARIANT(NAME, KIND, NC, PF)                                                   \
    AVX512 static void NAME(int m, const float *x, int64_t ldx, const struct sd_kweight *w,    \
                            int n0, int n1, const float *bias, float *y, int64_t ldy,          \
                            int accumulate)                                                    \
    {                                                                                          \
        if (sd_type_is_quantized(w->type)) {                                                   \
            sd_quant_gemv_avx512(m, x, ldx, w, n0, n1, bias, y, ldy, accumulate);              \
            return;                                                                            \
        }                                                                                      \
        if (w->type != SD_TYPE_F16) {                                                          \
            gemv_f32(m, x, ldx, w, n0, n1, bias, y, ldy, accumulate);                          \
            return;                                                                            \
        }                                                                                      \
        size_t row_bytes = (size_t)w->ld * 2;                                                  \
        int hw_only = PF == PF_L2 && row_bytes >= PF_L2_MAX_ROW_BYTES;                         \
        if (m <= 2 && hw_only)                                                                 \
            gemv_few_rows(KIND, NC, PF_NONE, m, x, ldx, w->data, row_bytes, w->k, n0, n1, bias, \
                          y, ldy, accumulate);                                                 \
        else if (m <= 2)                                                                       \
            gemv_few_rows(KIND, NC, PF, m, x, ldx, w->data, row_bytes, w->k, n0, n1, bias, y,  \
                          ldy, accumulate);                                                    \
        else                                                                                   \
            gemv_many_rows(KIND, hw_only ? PF_NONE : PF, m, x, ldx, w->data, row_bytes, w->k,  \
                           n0, n1, bias, y, ldy, accumulate);                                  \
    }
DEF_GEMV_VARIANT(gemv_avx512, F16_ZMM, 8, PF_L1)
DEF_GEMV_VARIANT(gemv_avx512y, F16_YMM, 8, PF_L1)
DEF_GEMV_VARIANT(gemv_avx512np, F16_ZMM, 8, PF_NONE)
DEF_GEMV_VARIANT(gemv_avx512r4, F16_ZMM, 4, PF_L1)
DEF_GEMV_VARIANT(gemv_avx512l2, F16_ZMM, 8, PF_L2)

/* Every AVX-512 table: the same entries but for the name and the small-m product. */
#define AVX512_TABLE(NAME, GEMV, BLOCK, A_BYTES, PACK_A)                                       \
    {                                                                                          \
        .name = NAME, .panels = 4, .micro = micro_avx512, .gemm_block = BLOCK,                 \
        .a_tiles_bytes = A_BYTES, .pack_a_tiles = PACK_A, .to_f32 = sd_avx2_to_f32,            \
        .gemv = GEMV, .dot = sd_avx2_dot, .axpy = sd_avx2_axpy, .scale = sd_avx2_scale,        \
        .softmax_exp = softmax_exp_avx512, .logsumexp = sd_avx2_logsumexp,                    \
        .gelu = sd_avx2_gelu, .add = sd_avx2_add, .layer_norm = sd_avx2_layer_norm,            \
        .attn_row = sd_avx2_attn_row, .to_f16 = sd_avx2_to_f16,                                \
        .pack_panel_nk = sd_avx2_pack_panel_nk,                                                \
    }

/* The default: full-width conversions, 8 streams, software prefetch. */
const struct sd_kernels sd_kernels_avx512 = AVX512_TABLE("avx512", gemv_avx512, NULL, NULL, NULL);
/* f16 converted by two 256-bit vcvtph2ps per 16 weights (cores that split 512-bit ops). */
const struct sd_kernels sd_kernels_avx512y = AVX512_TABLE("avx512y", gemv_avx512y, NULL, NULL, NULL);
/* No software prefetch: the hardware prefetchers alone follow the 8 streams. */
const struct sd_kernels sd_kernels_avx512np = AVX512_TABLE("avx512np", gemv_avx512np, NULL, NULL, NULL);
/* 4 weight rows (streams) per pass at m <= 2 instead of 8. */
const struct sd_kernels sd_kernels_avx512r4 = AVX512_TABLE("avx512r4", gemv_avx512r4, NULL, NULL, NULL);
/* The software prefetch brings W to L2 only, on rows shorter than a page. */
const struct sd_kernels sd_kernels_avx512l2 = AVX512_TABLE("avx512l2", gemv_avx512l2, NULL, NULL, NULL);
/*
 * The GEMM on AMX tiles (kern_amx_avx512.c): where the CPU has them, the
 * encoder's products and attention run there. The matrix-vector product is
 * avx512l2's, which streamed faster on the one AMX CPU measured (Xeon 6/167).
 */
const struct sd_kernels sd_kernels_amx = AVX512_TABLE("amx", gemv_avx512l2, sd_amx_gemm_block,
                                                   sd_amx_a_tiles_bytes, sd_amx_pack_a_tiles);

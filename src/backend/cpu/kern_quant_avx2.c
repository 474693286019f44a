/*
 * kern_quant_avx2.c - AVX2+FMA+F16C kernels for ggml's block-quantized weights
 * (q4_0, q4_1, q5_0, q5_1, q8_0; layouts in backend/quant.c): each 32-value
 * block is decoded in registers into four 8-float vectors, scale (and
 * offset) applied, and fed straight to FMAs. Three users: the decoder's
 * small-m matrix-vector products (memory bound: fewer bytes per weight is the
 * point of quantizing), conversion to f32 (token-embedding rows), and the
 * GEMM's B-panel packing (the encoder multiplies the same packed f32 panels
 * as for f16). Activations stay f32: no int8 re-quantization of x, so the only
 * error is the weights' own. Selected by kern_avx2.c for quantized types.
 */
#include <immintrin.h>
#include <string.h>

#include "backend/cpu/kernels.h"

#define AVX2 __attribute__((target("avx2,fma,f16c")))
#define INLINE AVX2 static inline __attribute__((always_inline))

INLINE float half_of(const uint8_t *p)
{
    uint16_t h;
    memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}

INLINE __m256 cvt8_i8(__m128i v)
{
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(v));
}

/* 16 bytes -> high bit vectors: byte j of the result is 0x10 when bit (base + j) of qh is set. */
INLINE __m128i high_bits(uint32_t qh, int upper)
{
    const __m128i sel = _mm_set_epi8((char)0x80, 0x40, 0x20, 0x10, 8, 4, 2, 1, (char)0x80, 0x40,
                                     0x20, 0x10, 8, 4, 2, 1);
    __m128i v = _mm_cvtsi32_si128((int)qh);
    __m128i shuf = upper ? _mm_set_epi8(3, 3, 3, 3, 3, 3, 3, 3, 2, 2, 2, 2, 2, 2, 2, 2)
                         : _mm_set_epi8(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
    __m128i b = _mm_shuffle_epi8(v, shuf);
    __m128i set = _mm_cmpeq_epi8(_mm_and_si128(b, sel), sel);
    return _mm_and_si128(set, _mm_set1_epi8(0x10));
}

/* Decodes one block of type t at blk into v[0..4) (values 0-7, 8-15, 16-23, 24-31). */
INLINE void deq_block(enum sd_type t, const uint8_t *blk, __m256 v[4])
{
    __m256 d = _mm256_set1_ps(half_of(blk));
    if (t == SD_TYPE_Q8_0) {
        for (int i = 0; i < 4; i++)
            v[i] = _mm256_mul_ps(d, cvt8_i8(_mm_loadl_epi64((const __m128i *)(const void *)
                                                            (blk + 2 + 8 * i))));
        return;
    }
    const __m128i m4 = _mm_set1_epi8(0x0f);
    int one = t == SD_TYPE_Q4_1 || t == SD_TYPE_Q5_1, five = t == SD_TYPE_Q5_0 || t == SD_TYPE_Q5_1;
    const uint8_t *qs = blk + 2 + 2 * one + 4 * five;
    __m128i raw = _mm_loadu_si128((const __m128i *)(const void *)qs);
    __m128i lo = _mm_and_si128(raw, m4), hi = _mm_and_si128(_mm_srli_epi16(raw, 4), m4);
    if (five) {
        uint32_t qh;
        memcpy(&qh, blk + 2 + 2 * one, 4);
        lo = _mm_or_si128(lo, high_bits(qh, 0));
        hi = _mm_or_si128(hi, high_bits(qh, 1));
    }
    if (!one) { /* symmetric: codes are offset by 8 (4-bit) or 16 (5-bit) */
        __m128i off = _mm_set1_epi8(five ? 16 : 8);
        lo = _mm_sub_epi8(lo, off);
        hi = _mm_sub_epi8(hi, off);
        v[0] = _mm256_mul_ps(d, cvt8_i8(lo));
        v[1] = _mm256_mul_ps(d, cvt8_i8(_mm_srli_si128(lo, 8)));
        v[2] = _mm256_mul_ps(d, cvt8_i8(hi));
        v[3] = _mm256_mul_ps(d, cvt8_i8(_mm_srli_si128(hi, 8)));
        return;
    }
    __m256 m = _mm256_set1_ps(half_of(blk + 2)); /* codes 0..31 fit int8 unchanged */
    v[0] = _mm256_fmadd_ps(d, cvt8_i8(lo), m);
    v[1] = _mm256_fmadd_ps(d, cvt8_i8(_mm_srli_si128(lo, 8)), m);
    v[2] = _mm256_fmadd_ps(d, cvt8_i8(hi), m);
    v[3] = _mm256_fmadd_ps(d, cvt8_i8(_mm_srli_si128(hi, 8)), m);
}

#define FOR_EACH_QTYPE(X) X(Q4_0) X(Q4_1) X(Q5_0) X(Q5_1) X(Q8_0)

/* ------------------------------------------------------------ to f32 */

#define DEF_TO_F32(T)                                                                          \
    AVX2 static void to_f32_##T(const uint8_t *s, float *dst, int64_t nb, int bb)              \
    {                                                                                          \
        for (int64_t b = 0; b < nb; b++) {                                                     \
            __m256 v[4];                                                                       \
            deq_block(SD_TYPE_##T, s + b * bb, v);                                             \
            for (int i = 0; i < 4; i++)                                                        \
                _mm256_storeu_ps(dst + 32 * b + 8 * i, v[i]);                                  \
        }                                                                                      \
    }
FOR_EACH_QTYPE(DEF_TO_F32)

AVX2 void sd_quant_to_f32_avx2(const void *src, enum sd_type t, float *dst, int64_t n)
{
    int bb = sd_type_traits(t)->block_bytes;
    int64_t nb = n / 32;
    switch (t) {
#define CASE_TO_F32(T)                                                                         \
    case SD_TYPE_##T:                                                                          \
        to_f32_##T(src, dst, nb, bb);                                                          \
        break;
        FOR_EACH_QTYPE(CASE_TO_F32)
    default:
        break;
    }
}

/* ------------------------------------------------------------ gemv */

/*
 * MI x rows against one weight row of nb blocks: out[r] = x_r . w. NA
 * independent accumulators per x row hide the FMA latency when MI is small.
 */
#define DEF_GEMVQ(T, MI, NA)                                                                   \
    AVX2 static void gemvq_##T##_##MI(const float *x, int64_t ldx, const uint8_t *w,           \
                                      int64_t nb, int bb, float *out)                          \
    {                                                                                          \
        __m256 acc[MI][NA];                                                                    \
        _Pragma("GCC unroll 8") for (int r = 0; r < MI; r++)                                   \
            _Pragma("GCC unroll 4") for (int a = 0; a < NA; a++) acc[r][a] = _mm256_setzero_ps(); \
        for (int64_t b = 0; b < nb; b++) {                                                     \
            __m256 v[4];                                                                       \
            deq_block(SD_TYPE_##T, w + b * bb, v);                                             \
            _Pragma("GCC unroll 8") for (int r = 0; r < MI; r++)                               \
                _Pragma("GCC unroll 4") for (int i = 0; i < 4; i++)                            \
                    acc[r][i % NA] = _mm256_fmadd_ps(                                          \
                        _mm256_loadu_ps(x + r * ldx + 32 * b + 8 * i), v[i], acc[r][i % NA]);  \
        }                                                                                      \
        _Pragma("GCC unroll 8") for (int r = 0; r < MI; r++)                                   \
        {                                                                                      \
            __m256 s = acc[r][0];                                                              \
            _Pragma("GCC unroll 4") for (int a = 1; a < NA; a++) s = _mm256_add_ps(s, acc[r][a]); \
            __m128 h = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));     \
            h = _mm_add_ps(h, _mm_movehl_ps(h, h));                                            \
            h = _mm_add_ss(h, _mm_movehdup_ps(h));                                             \
            out[r] = _mm_cvtss_f32(h);                                                         \
        }                                                                                      \
    }

typedef void (*gemvq_fn)(const float *, int64_t, const uint8_t *, int64_t, int, float *);

#define DEF_GEMVQ_ALL(T)                                                                       \
    DEF_GEMVQ(T, 1, 4)                                                                         \
    DEF_GEMVQ(T, 2, 4)                                                                         \
    DEF_GEMVQ(T, 3, 2)                                                                         \
    DEF_GEMVQ(T, 4, 2)                                                                         \
    DEF_GEMVQ(T, 5, 2)                                                                         \
    DEF_GEMVQ(T, 6, 1)                                                                         \
    DEF_GEMVQ(T, 7, 1)                                                                         \
    static const gemvq_fn GEMVQ_##T[8] = {NULL,          gemvq_##T##_1, gemvq_##T##_2,        \
                                          gemvq_##T##_3, gemvq_##T##_4, gemvq_##T##_5,        \
                                          gemvq_##T##_6, gemvq_##T##_7};
FOR_EACH_QTYPE(DEF_GEMVQ_ALL)

static const gemvq_fn *gemvq_table(enum sd_type t)
{
    switch (t) {
#define CASE_TABLE(T)                                                                          \
    case SD_TYPE_##T:                                                                          \
        return GEMVQ_##T;
        FOR_EACH_QTYPE(CASE_TABLE)
    default:
        return NULL;
    }
}

AVX2 void sd_quant_gemv_avx2(int m, const float *x, int64_t ldx, const struct sd_weight *w,
                             int n0, int n1, const float *bias, float *y, int64_t ldy,
                             int accumulate)
{
    const gemvq_fn *fns = gemvq_table(w->type);
    int bb = sd_type_traits(w->type)->block_bytes;
    size_t row_bytes = sd_type_bytes(w->type, w->ld);
    int64_t nb = w->k / 32;
    for (int j = n0; j < n1; j++) {
        const uint8_t *wr = (const uint8_t *)w->data + (size_t)j * row_bytes;
        for (int i = 0; i < m;) {
            int mi = m - i > 7 ? 7 : m - i;
            float out[8];
            fns[mi](x + (int64_t)i * ldx, ldx, wr, nb, bb, out);
            for (int r = 0; r < mi; r++) {
                float v = out[r] + (bias ? bias[j] : 0.0f);
                float *d = &y[(int64_t)(i + r) * ldy + j];
                *d = accumulate ? *d + v : v;
            }
            i += mi;
        }
    }
}

/* ------------------------------------------------------------ packing */

AVX2 static inline void transpose8q(__m256 r[8])
{
    __m256 t[8], u[8];
    for (int i = 0; i < 8; i += 2) {
        t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 8; i += 4) {
        u[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
        u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);
        u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
        u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
    }
    for (int i = 0; i < 4; i++) {
        r[i] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x20);
        r[i + 4] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x31);
    }
}

/*
 * A [kc][SD_NR] panel from nr <= 16 quantized rows ([n][k], row stride ldb
 * elements, b at a block boundary, kc a multiple of 32 and <= SD_KC): the
 * rows are decoded into a [16][kc] scratch and transposed 8x8 at a time.
 */
AVX2 void sd_quant_pack_panel_avx2(const void *b, enum sd_type t, int64_t ldb, int nr, int kc,
                                   float *dst)
{
    float tmp[SD_NR][SD_KC] __attribute__((aligned(32)));
    size_t row_bytes = sd_type_bytes(t, ldb);
    for (int c = 0; c < SD_NR; c++) {
        if (c < nr)
            sd_quant_to_f32_avx2((const uint8_t *)b + (size_t)c * row_bytes, t, tmp[c], kc);
        else
            memset(tmp[c], 0, sizeof(float) * (size_t)kc);
    }
    for (int p = 0; p < kc; p += 8)
        for (int h = 0; h < 2; h++) {
            __m256 r[8];
            for (int i = 0; i < 8; i++)
                r[i] = _mm256_load_ps(&tmp[h * 8 + i][p]);
            transpose8q(r);
            for (int i = 0; i < 8; i++)
                _mm256_store_ps(dst + (size_t)(p + i) * SD_NR + h * 8, r[i]);
        }
}

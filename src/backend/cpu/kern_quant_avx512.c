/*
 * kern_quant_avx512.c - the decoder's small-m products with ggml's block-
 * quantized weights (q4_0, q4_1, q5_0, q5_1, q8_0) on AVX-512 with VNNI.
 * As in kern_quant_avx2.c, each x row is rounded once per call to 8-bit
 * blocks (scale dx per 32 values). A pair of weight blocks is decoded in
 * registers into 64 UNSIGNED codes (the stored nibbles as they are, q8_0's
 * bytes + 128), so VPDPBUSD multiplies them by the signed x codes straight
 * from memory; the codes' offset K (8, 16, 128; 0 for the offset types) is
 * taken out by seeding each accumulator with -K times the sums of x's codes,
 * per result lane, computed once per call. Two weight rows go together, so
 * each x block pair is loaded once for both; per row, weight row and block
 * pair that leaves one VPDPBUSD, one conversion, one scale and one FMA. The
 * offset types add m * dx * sum(qx) per block. Used by kern_avx512.c.
 */
#include <immintrin.h>
#include <string.h>

#include "backend/cpu/avx2.h"
#include "backend/cpu/kernels.h"

#define AVX512VNNI                                                                             \
    __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,avx512vnni,avx2,fma,f16c")))
#define INLINE AVX512VNNI static inline __attribute__((always_inline))

#define QX_MAX_K 5120 /* larger k: the AVX2 path; 4 x large's 1280 */
#define QX_MAX_ROWS 7

/*
 * x rows rounded to 8-bit blocks, stored per block pair (what one 512-bit
 * step reads, contiguous: one address stream per row): the 64 signed codes,
 * the accumulator seed -K * (sum of the 4 codes of each result lane), and
 * the two blocks' scales dx over the 8 lanes each block's product occupies.
 * Per block, dx * sum(codes) for the offset types.
 */
struct qx_pair {
    int8_t q[64];
    int32_t seed[16];
    float dv[16];
};
struct qx {
    struct qx_pair p[QX_MAX_ROWS][QX_MAX_K / 64];
    float s[QX_MAX_ROWS][QX_MAX_K / 32];
};

INLINE float half_of(const uint8_t *p)
{
    uint16_t h;
    memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}

/* The codes' offset K: what the unsigned weight codes of type t carry. */
static int code_offset(enum sd_type t)
{
    switch (t) {
    case SD_TYPE_Q8_0:
        return 128;
    case SD_TYPE_Q5_0:
        return 16;
    case SD_TYPE_Q4_0:
        return 8;
    default:
        return 0;
    }
}

/*
 * Rounds k values (a multiple of 32) of x to blocks: dx = amax / 127, codes
 * in [-127, 127], and the seeds for weight codes offset by K. An odd last
 * block is paired with zero codes and scale. s (dx * sum of a block's codes)
 * may be NULL.
 */
AVX512VNNI static void quantize_x_row(const float *x, int64_t k, int K, struct qx_pair *pairs,
                                      float *s)
{
    int64_t nb = k / 32;
    for (int64_t b = 0; b < nb; b++) {
        struct qx_pair *pr = &pairs[b / 2];
        int half = (int)(b % 2);
        __m512 v0 = _mm512_loadu_ps(x + 32 * b), v1 = _mm512_loadu_ps(x + 32 * b + 16);
        float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1)));
        float db = amax / 127.0f;
        __m512 id = _mm512_set1_ps(amax > 0.0f ? 127.0f / amax : 0.0f);
        /* cvtps rounds to nearest even under the default MXCSR, as the AVX2 path */
        __m512i q0 = _mm512_cvtps_epi32(_mm512_mul_ps(v0, id));
        __m512i q1 = _mm512_cvtps_epi32(_mm512_mul_ps(v1, id));
        _mm_storeu_si128((__m128i *)(void *)(pr->q + 32 * half), _mm512_cvtepi32_epi8(q0));
        _mm_storeu_si128((__m128i *)(void *)(pr->q + 32 * half + 16), _mm512_cvtepi32_epi8(q1));
        _mm256_storeu_ps(pr->dv + 8 * half, _mm256_set1_ps(db));
        if (s) /* only the offset types use it */
            s[b] = db * (float)_mm512_reduce_add_epi32(_mm512_add_epi32(q0, q1));
    }
    if (nb % 2) {
        memset(pairs[nb / 2].q + 32, 0, 32);
        _mm256_storeu_ps(pairs[nb / 2].dv + 8, _mm256_setzero_ps());
    }
    const __m512i ck = _mm512_set1_epi8((char)K);
    for (int64_t p = 0; p < (nb + 1) / 2; p++) {
        __m512i xv = _mm512_loadu_si512((const void *)pairs[p].q);
        __m512i sum = _mm512_dpbusd_epi32(_mm512_setzero_si512(), ck, xv);
        _mm512_storeu_si512((void *)pairs[p].seed, _mm512_sub_epi32(_mm512_setzero_si512(), sum));
    }
}

/* Nibbles of two blocks' 16 code bytes: A low, A high, B low, B high (values 0..15). */
INLINE __m512i nibbles2(const uint8_t *qa, const uint8_t *qb)
{
    __m512i v = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)(const void *)qa));
    v = _mm512_mask_broadcast_i32x4(v, 0xFF00, _mm_loadu_si128((const __m128i *)(const void *)qb));
    /* 16-bit shift counts: 0 in the low-nibble quarters, 4 in the high ones */
    const __m512i shift = _mm512_set_epi32(0x40004, 0x40004, 0x40004, 0x40004, 0, 0, 0, 0,
                                           0x40004, 0x40004, 0x40004, 0x40004, 0, 0, 0, 0);
    return _mm512_and_si512(_mm512_srlv_epi16(v, shift), _mm512_set1_epi8(0x0f));
}

/* The 5th bits of two q5 blocks as a byte mask (A's 32 values, then B's). */
INLINE __mmask64 high_bits2(const uint8_t *qha, const uint8_t *qhb)
{
    uint32_t a, b;
    memcpy(&a, qha, 4);
    memcpy(&b, qhb, 4);
    return (__mmask64)a | (__mmask64)b << 32;
}

/* Adds 16 to the bytes whose 5th bit is set (the nibble's bit 4 is clear: an OR). */
INLINE __m512i with_high_bits(__m512i lo, __mmask64 hb)
{
    return _mm512_mask_add_epi8(lo, hb, lo, _mm512_set1_epi8(0x10));
}

/* Unsigned codes (offset code_offset(t)) of a pair of blocks; b == NULL pairs a with zeros. */
INLINE __m512i pair_codes(enum sd_type t, const uint8_t *a, const uint8_t *b)
{
    const uint8_t *bq = b ? b : a;
    __m512i c;
    switch (t) {
    case SD_TYPE_Q8_0:
        c = _mm512_inserti64x4(
            _mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(const void *)(a + 2))),
            _mm256_loadu_si256((const __m256i *)(const void *)(bq + 2)), 1);
        c = _mm512_xor_si512(c, _mm512_set1_epi8((char)0x80));
        break;
    case SD_TYPE_Q4_0:
        c = nibbles2(a + 2, bq + 2);
        break;
    case SD_TYPE_Q4_1:
        c = nibbles2(a + 4, bq + 4);
        break;
    case SD_TYPE_Q5_0:
        c = with_high_bits(nibbles2(a + 6, bq + 6), high_bits2(a + 2, bq + 2));
        break;
    case SD_TYPE_Q5_1:
        c = with_high_bits(nibbles2(a + 8, bq + 8), high_bits2(a + 4, bq + 4));
        break;
    default:
        c = _mm512_setzero_si512();
    }
    return c; /* a missing b: x's codes and scales there are zero */
}

/* Scales of a pair of blocks over their result lanes: [dA x 8, dB x 8]. */
INLINE __m512 pair_scales(const uint8_t *a, const uint8_t *b)
{
    __m256i h = _mm256_set1_epi16((short)(a[0] | a[1] << 8));
    if (b)
        h = _mm256_mask_set1_epi16(h, 0xFF00, (short)(b[0] | b[1] << 8));
    return _mm512_cvtph_ps(h);
}

/*
 * MI x rows (quantized in qx from row i0) against two weight rows w0 and w1
 * of nb blocks of bb bytes: out[r] = x_r . w0, out[QX_MAX_ROWS + r] = x_r . w1,
 * two blocks per 512-bit step. Each x block pair (codes, seed, scales) is
 * loaded once for both weight rows; each (row, weight row) still accumulates
 * in the same order as alone, so results do not depend on the pairing.
 */
#define DEF_GEMVQ(T, MI)                                                                       \
    AVX512VNNI static void gemvq_##T##_##MI(const struct qx *qx, int i0, const uint8_t *w0,    \
                                            const uint8_t *w1, int64_t nb, int bb,             \
                                            float *out)                                        \
    {                                                                                          \
        const int offset_type = SD_TYPE_##T == SD_TYPE_Q4_1 || SD_TYPE_##T == SD_TYPE_Q5_1;    \
        __m512 acc0[MI], acc1[MI];                                                             \
        float off0[MI], off1[MI];                                                              \
        _Pragma("GCC unroll 8") for (int r = 0; r < MI; r++)                                   \
        {                                                                                      \
            acc0[r] = acc1[r] = _mm512_setzero_ps();                                           \
            off0[r] = off1[r] = 0.0f;                                                          \
        }                                                                                      \
        for (int64_t b = 0; b < nb; b += 2) {                                                  \
            const uint8_t *a0 = w0 + b * bb, *b0 = b + 1 < nb ? a0 + bb : NULL;                \
            const uint8_t *a1 = w1 + b * bb, *b1 = b + 1 < nb ? a1 + bb : NULL;                \
            __m512i codes0 = pair_codes(SD_TYPE_##T, a0, b0);                                  \
            __m512i codes1 = pair_codes(SD_TYPE_##T, a1, b1);                                  \
            __m512 dw0 = pair_scales(a0, b0), dw1 = pair_scales(a1, b1);                       \
            _Pragma("GCC unroll 8") for (int r = 0; r < MI; r++)                               \
            {                                                                                  \
                const struct qx_pair *xp = &qx->p[i0 + r][b / 2];                              \
                __m512i seed = _mm512_load_si512((const void *)xp->seed);                      \
                __m512i xq = _mm512_load_si512((const void *)xp->q);                           \
                __m512 dv = _mm512_load_ps(xp->dv);                                            \
                __m512i dp0 = _mm512_dpbusd_epi32(seed, codes0, xq);                           \
                __m512i dp1 = _mm512_dpbusd_epi32(seed, codes1, xq);                           \
                acc0[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dp0), _mm512_mul_ps(dw0, dv),     \
                                          acc0[r]);                                            \
                acc1[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dp1), _mm512_mul_ps(dw1, dv),     \
                                          acc1[r]);                                            \
                if (offset_type) {                                                             \
                    off0[r] += half_of(a0 + 2) * qx->s[i0 + r][b];                             \
                    off1[r] += half_of(a1 + 2) * qx->s[i0 + r][b];                             \
                    if (b0) {                                                                  \
                        off0[r] += half_of(b0 + 2) * qx->s[i0 + r][b + 1];                     \
                        off1[r] += half_of(b1 + 2) * qx->s[i0 + r][b + 1];                     \
                    }                                                                          \
                }                                                                              \
            }                                                                                  \
        }                                                                                      \
        _Pragma("GCC unroll 8") for (int r = 0; r < MI; r++)                                   \
        {                                                                                      \
            out[r] = _mm512_reduce_add_ps(acc0[r]) + off0[r];                                  \
            out[QX_MAX_ROWS + r] = _mm512_reduce_add_ps(acc1[r]) + off1[r];                    \
        }                                                                                      \
    }

typedef void (*gemvq_fn)(const struct qx *, int, const uint8_t *, const uint8_t *, int64_t, int,
                         float *);

#define DEF_GEMVQ_ALL(T) SD_DEF_GEMVQ_ROWS(DEF_GEMVQ, T)
SD_FOR_EACH_QTYPE(DEF_GEMVQ_ALL)
SD_DEF_GEMVQ_LOOKUP

AVX512VNNI void sd_quant_gemv_avx512(int m, const float *x, int64_t ldx,
                                     const struct sd_kweight *w, int n0, int n1,
                                     const float *bias, float *y, int64_t ldy, int accumulate)
{
    const gemvq_fn *fns = gemvq_table(w->type);
    if (!fns || w->k > QX_MAX_K || m > QX_MAX_ROWS || w->k % 32 != 0) {
        sd_quant_gemv_avx2(m, x, ldx, w, n0, n1, bias, y, ldy, accumulate);
        return;
    }
    int bb = sd_type_traits(w->type)->block_bytes;
    size_t row_bytes = sd_type_bytes(w->type, w->ld);
    int64_t nb = w->k / 32;
    struct qx qx __attribute__((aligned(64))); /* ~110 KiB of stack: ops never allocate */
    int K = code_offset(w->type);
    for (int r = 0; r < m; r++)
        quantize_x_row(x + (int64_t)r * ldx, w->k, K, qx.p[r], K ? NULL : qx.s[r]);
    const uint8_t *base = w->data;
    for (int j = n0; j < n1; j += 2) {
        int nj = n1 - j < 2 ? 1 : 2; /* a last odd row is computed twice, stored once */
        const uint8_t *wr = base + (size_t)j * row_bytes;
        /* both rows of the pair 8 rows ahead, every line: the kernel reads two streams */
        for (size_t o = 0; o < 2 * row_bytes; o += 64)
            _mm_prefetch((const char *)(wr + 8 * row_bytes + o), _MM_HINT_T0);
        float out[2 * QX_MAX_ROWS];
        fns[m](&qx, 0, wr, nj == 2 ? wr + row_bytes : wr, nb, bb, out);
        for (int c = 0; c < nj; c++)
            for (int r = 0; r < m; r++) {
                float v = out[c * QX_MAX_ROWS + r] + (bias ? bias[j + c] : 0.0f);
                float *d = &y[(int64_t)r * ldy + j + c];
                *d = accumulate ? *d + v : v;
            }
    }
}

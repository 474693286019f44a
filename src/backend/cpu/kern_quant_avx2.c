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

#include "backend/cpu/avx2.h"
#include "backend/cpu/kernels.h"

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
SD_FOR_EACH_QTYPE(DEF_TO_F32)

AVX2 void sd_quant_to_f32_avx2(const void *src, enum sd_type t, float *dst, int64_t n)
{
    int bb = sd_type_traits(t)->block_bytes;
    int64_t nb = n / 32;
    switch (t) {
#define CASE_TO_F32(T)                                                                         \
    case SD_TYPE_##T:                                                                          \
        to_f32_##T(src, dst, nb, bb);                                                          \
        break;
        SD_FOR_EACH_QTYPE(CASE_TO_F32)
    default:
        break;
    }
}

/* ------------------------------------------------------------ gemv */

/*
 * The decoder's products are memory bound on W, and decoding a block into
 * floats costs more instructions than the bytes it saves. So, as ggml does,
 * each x row is quantized once per call to 8-bit blocks (scale dx per 32
 * values, and dx * sum of codes for the offset types) and a block product is
 * integer: |w| (u8) times sign-adjusted x (s8) by maddubs, pairs summed by
 * madd, one conversion and one FMA with dw * dx. The extra error is x's
 * 8-bit rounding (|x| / 254 per value at most), well inside the weights' own.
 */
#define QX_MAX_K 5120 /* larger k: the float path (deq_block + FMA); 4 x large's 1280 */
#define QX_MAX_ROWS 7

struct qx {
    int8_t q[QX_MAX_ROWS][QX_MAX_K];
    float d[QX_MAX_ROWS][QX_MAX_K / 32];
    float s[QX_MAX_ROWS][QX_MAX_K / 32]; /* d * sum of the block's codes */
};

AVX2 static void quantize_x_row(const float *x, int64_t k, int8_t *q, float *d, float *s)
{
    const __m256 sign = _mm256_set1_ps(-0.0f);
    const __m256i perm = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for (int64_t b = 0; b < k / 32; b++) {
        __m256 v[4], mx = _mm256_setzero_ps();
        for (int i = 0; i < 4; i++) {
            v[i] = _mm256_loadu_ps(x + 32 * b + 8 * i);
            mx = _mm256_max_ps(mx, _mm256_andnot_ps(sign, v[i]));
        }
        __m128 h = _mm_max_ps(_mm256_castps256_ps128(mx), _mm256_extractf128_ps(mx, 1));
        h = _mm_max_ps(h, _mm_movehl_ps(h, h));
        h = _mm_max_ss(h, _mm_movehdup_ps(h));
        float amax = _mm_cvtss_f32(h);
        float db = amax / 127.0f;
        __m256 id = _mm256_set1_ps(amax > 0.0f ? 127.0f / amax : 0.0f);
        __m256i i32[4];
        for (int i = 0; i < 4; i++) /* cvtps rounds to nearest even under the default MXCSR */
            i32[i] = _mm256_cvtps_epi32(_mm256_mul_ps(v[i], id));
        __m256i p16a = _mm256_packs_epi32(i32[0], i32[1]), p16b = _mm256_packs_epi32(i32[2], i32[3]);
        __m256i p8 = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(p16a, p16b), perm);
        _mm256_storeu_si256((__m256i *)(void *)(q + 32 * b), p8);
        d[b] = db;
        __m256i sum16 = _mm256_maddubs_epi16(_mm256_set1_epi8(1), p8);
        __m256i sum32 = _mm256_madd_epi16(sum16, _mm256_set1_epi16(1));
        __m128i t = _mm_add_epi32(_mm256_castsi256_si128(sum32), _mm256_extracti128_si256(sum32, 1));
        t = _mm_add_epi32(t, _mm_shuffle_epi32(t, 0x4e));
        t = _mm_add_epi32(t, _mm_shuffle_epi32(t, 0xb1));
        s[b] = db * (float)_mm_cvtsi128_si32(t);
    }
}

/* One weight block as 32 signed (symmetric types) or unsigned (offset types) 8-bit codes. */
INLINE __m256i codes_of(enum sd_type t, const uint8_t *blk)
{
    if (t == SD_TYPE_Q8_0)
        return _mm256_loadu_si256((const __m256i *)(const void *)(blk + 2));
    int one = t == SD_TYPE_Q4_1 || t == SD_TYPE_Q5_1, five = t == SD_TYPE_Q5_0 || t == SD_TYPE_Q5_1;
    __m128i raw = _mm_loadu_si128((const __m128i *)(const void *)(blk + 2 + 2 * one + 4 * five));
    __m128i lo = _mm_and_si128(raw, _mm_set1_epi8(0x0f));
    __m128i hi = _mm_and_si128(_mm_srli_epi16(raw, 4), _mm_set1_epi8(0x0f));
    __m256i c = _mm256_inserti128_si256(_mm256_castsi128_si256(lo), hi, 1);
    if (five) {
        uint32_t qh;
        memcpy(&qh, blk + 2 + 2 * one, 4);
        const __m256i shuf = _mm256_set_epi64x(0x0303030303030303LL, 0x0202020202020202LL,
                                               0x0101010101010101LL, 0);
        const __m256i sel = _mm256_set1_epi64x((long long)0x8040201008040201ULL);
        __m256i bytes = _mm256_shuffle_epi8(_mm256_set1_epi32((int)qh), shuf);
        __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(bytes, sel), sel);
        c = _mm256_or_si256(c, _mm256_and_si256(set, _mm256_set1_epi8(0x10)));
    }
    if (!one)
        c = _mm256_sub_epi8(c, _mm256_set1_epi8(five ? 16 : 8));
    return c;
}

/* Integer dot product of 32 codes: w signed (sym) or unsigned (offset types) with x signed. */
INLINE __m256 dot_codes(__m256i w, __m256i x, int sym)
{
    __m256i p16 = sym ? _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(x, w))
                      : _mm256_maddubs_epi16(w, x);
    return _mm256_cvtepi32_ps(_mm256_madd_epi16(p16, _mm256_set1_epi16(1)));
}

/*
 * MI quantized x rows against one weight row of nb blocks: out[r] = x_r . w.
 * Two accumulators per row (even and odd blocks) hide the FMA latency.
 */
/* One weight block b into accumulator set A (constant, so acc stays in registers). */
#define GEMVQ_BLOCK(T, MI, b, A)                                                               \
    {                                                                                          \
        const uint8_t *blk = w + (b) * bb;                                                     \
        __m256i c = codes_of(SD_TYPE_##T, blk);                                                \
        float dw = half_of(blk);                                                               \
        float mw = sym ? 0.0f : half_of(blk + 2);                                              \
        _Pragma("GCC unroll 8") for (int r = 0; r < MI; r++)                                   \
        {                                                                                      \
            __m256i xv =                                                                       \
                _mm256_loadu_si256((const __m256i *)(const void *)(qx->q[i0 + r] + 32 * (b))); \
            __m256 scale = _mm256_set1_ps(dw * qx->d[i0 + r][b]);                              \
            acc[r][A] = _mm256_fmadd_ps(dot_codes(c, xv, sym), scale, acc[r][A]);              \
            if (!sym)                                                                          \
                off[r] += mw * qx->s[i0 + r][b];                                               \
        }                                                                                      \
    }

#define DEF_GEMVQ(T, MI)                                                                       \
    AVX2 static void gemvq_##T##_##MI(const struct qx *qx, int i0, const uint8_t *w,           \
                                      int64_t nb, int bb, float *out)                          \
    {                                                                                          \
        const int sym = SD_TYPE_##T != SD_TYPE_Q4_1 && SD_TYPE_##T != SD_TYPE_Q5_1;            \
        __m256 acc[MI][2];                                                                     \
        float off[MI];                                                                         \
        _Pragma("GCC unroll 8") for (int r = 0; r < MI; r++)                                   \
        {                                                                                      \
            acc[r][0] = acc[r][1] = _mm256_setzero_ps();                                       \
            off[r] = 0.0f;                                                                     \
        }                                                                                      \
        for (int64_t b = 0; b < nb; b += 2) {                                                  \
            GEMVQ_BLOCK(T, MI, b, 0)                                                           \
            if (b + 1 < nb)                                                                    \
                GEMVQ_BLOCK(T, MI, b + 1, 1)                                                   \
        }                                                                                      \
        _Pragma("GCC unroll 8") for (int r = 0; r < MI; r++)                                   \
        {                                                                                      \
            __m256 s = _mm256_add_ps(acc[r][0], acc[r][1]);                                    \
            __m128 h = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));     \
            h = _mm_add_ps(h, _mm_movehl_ps(h, h));                                            \
            h = _mm_add_ss(h, _mm_movehdup_ps(h));                                             \
            out[r] = _mm_cvtss_f32(h) + off[r];                                                \
        }                                                                                      \
    }

typedef void (*gemvq_fn)(const struct qx *, int, const uint8_t *, int64_t, int, float *);

#define DEF_GEMVQ_ALL(T) SD_DEF_GEMVQ_ROWS(DEF_GEMVQ, T)
SD_FOR_EACH_QTYPE(DEF_GEMVQ_ALL)
SD_DEF_GEMVQ_LOOKUP

/* Fallback for k > QX_MAX_K: decode each block to floats and FMA with x. */
AVX2 static float dot_float_path(const float *x, const uint8_t *w, enum sd_type t, int64_t nb,
                                 int bb)
{
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        float v[32];
        sd_quant_to_f32_avx2(w + b * bb, t, v, 32);
        for (int i = 0; i < 4; i++)
            acc = _mm256_fmadd_ps(_mm256_loadu_ps(x + 32 * b + 8 * i), _mm256_loadu_ps(v + 8 * i),
                                  acc);
    }
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    return _mm_cvtss_f32(h);
}

AVX2 void sd_quant_gemv_avx2(int m, const float *x, int64_t ldx, const struct sd_kweight *w,
                             int n0, int n1, const float *bias, float *y, int64_t ldy,
                             int accumulate)
{
    int bb = sd_type_traits(w->type)->block_bytes;
    size_t row_bytes = sd_type_bytes(w->type, w->ld);
    int64_t nb = w->k / 32;
    const gemvq_fn *fns = gemvq_table(w->type);
    struct qx qx_stack; /* ~45 KiB of stack: ops never allocate */
    struct qx *qx = w->k <= QX_MAX_K && m <= QX_MAX_ROWS ? &qx_stack : NULL;
    if (qx)
        for (int r = 0; r < m; r++)
            quantize_x_row(x + (int64_t)r * ldx, w->k, qx->q[r], qx->d[r], qx->s[r]);
    for (int j = n0; j < n1; j++) {
        const uint8_t *wr = (const uint8_t *)w->data + (size_t)j * row_bytes;
        float out[QX_MAX_ROWS + 1];
        if (qx) {
            fns[m](qx, 0, wr, nb, bb, out);
        } else {
            for (int r = 0; r < m && r <= QX_MAX_ROWS; r++)
                out[r] = dot_float_path(x + (int64_t)r * ldx, wr, w->type, nb, bb);
        }
        for (int r = 0; r < m; r++) {
            float v = out[r] + (bias ? bias[j] : 0.0f);
            float *d = &y[(int64_t)r * ldy + j];
            *d = accumulate ? *d + v : v;
        }
    }
}

/* ------------------------------------------------------------ packing */


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
            avx2_transpose8(r);
            for (int i = 0; i < 8; i++)
                _mm256_store_ps(dst + (size_t)(p + i) * SD_NR + h * 8, r[i]);
        }
}

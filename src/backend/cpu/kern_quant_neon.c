/*
 * kern_quant_neon.c - AArch64 kernels for ggml's block-quantized weights
 * (q4_0, q4_1, q5_0, q5_1, q8_0; layouts in backend/quant.c), called by
 * kern_neon.c for block types: conversion to f32 (token-embedding rows), the
 * GEMM's B-panel packing, and the decoder's small-m products.
 *
 * The products follow kern_quant_avx2.c: each x row is rounded once per call
 * to 8-bit blocks (scale dx = amax / 127 per 32 values, and dx * sum of the
 * codes for the offset types), each weight block is decoded in registers to
 * 32 signed 8-bit codes, and a block's integer dot product is scaled by
 * dw * dx. The integer sum is formed with SDOT where the CPU has it
 * (ARMv8.2 dotprod) and with SMULL + SADALP otherwise; both are exact, so the
 * two tables give bit-identical results. The extra error is x's 8-bit
 * rounding (|x| / 254 per value at most), well inside the weights' own.
 */
#include <string.h>

#include "backend/cpu/kernels.h"
#include "backend/cpu/neon.h"

#define INLINE static inline __attribute__((always_inline))

INLINE float half_of(const uint8_t *p)
{
    uint16_t h;
    memcpy(&h, p, 2);
    return sd_f16_to_f32(h);
}

/* 16 bytes: byte j is 0x10 when bit (16 * upper + j) of qh is set (the 5-bit types' high bits). */
INLINE uint8x16_t high_bits(uint32_t qh, int upper)
{
    static const uint8_t sel_bytes[16] = {1, 2, 4, 8, 16, 32, 64, 128,
                                          1, 2, 4, 8, 16, 32, 64, 128};
    uint32_t h = upper ? qh >> 16 : qh;
    uint8x16_t bytes = vcombine_u8(vdup_n_u8((uint8_t)h), vdup_n_u8((uint8_t)(h >> 8)));
    uint8x16_t set = vtstq_u8(bytes, vld1q_u8(sel_bytes));
    return vandq_u8(set, vdupq_n_u8(0x10));
}

/*
 * One weight block of type t as 32 signed codes: c[0] values 0-15, c[1]
 * values 16-31. The symmetric types' codes have their offset (8, 16)
 * removed; the offset types' codes (0..31) fit int8 unchanged.
 */
INLINE void codes_of(enum sd_type t, const uint8_t *blk, int8x16_t c[2])
{
    if (t == SD_TYPE_Q8_0) {
        c[0] = vld1q_s8((const int8_t *)(blk + 2));
        c[1] = vld1q_s8((const int8_t *)(blk + 18));
        return;
    }
    int one = t == SD_TYPE_Q4_1 || t == SD_TYPE_Q5_1, five = t == SD_TYPE_Q5_0 || t == SD_TYPE_Q5_1;
    uint8x16_t raw = vld1q_u8(blk + 2 + 2 * one + 4 * five);
    uint8x16_t lo = vandq_u8(raw, vdupq_n_u8(0x0f)), hi = vshrq_n_u8(raw, 4);
    if (five) {
        uint32_t qh;
        memcpy(&qh, blk + 2 + 2 * one, 4);
        lo = vorrq_u8(lo, high_bits(qh, 0));
        hi = vorrq_u8(hi, high_bits(qh, 1));
    }
    if (!one) {
        uint8x16_t off = vdupq_n_u8(five ? 16 : 8);
        lo = vsubq_u8(lo, off);
        hi = vsubq_u8(hi, off);
    }
    c[0] = vreinterpretq_s8_u8(lo);
    c[1] = vreinterpretq_s8_u8(hi);
}

/* Decodes one block of type t at blk into 32 floats. */
INLINE void deq_block(enum sd_type t, const uint8_t *blk, float *dst)
{
    int8x16_t c[2];
    codes_of(t, blk, c);
    int one = t == SD_TYPE_Q4_1 || t == SD_TYPE_Q5_1;
    float32x4_t d = vdupq_n_f32(half_of(blk)), m = vdupq_n_f32(one ? half_of(blk + 2) : 0.0f);
    for (int h = 0; h < 2; h++) {
        int16x8_t w16[2] = {vmovl_s8(vget_low_s8(c[h])), vmovl_s8(vget_high_s8(c[h]))};
        for (int q = 0; q < 2; q++) {
            float32x4_t f0 = vcvtq_f32_s32(vmovl_s16(vget_low_s16(w16[q])));
            float32x4_t f1 = vcvtq_f32_s32(vmovl_s16(vget_high_s16(w16[q])));
            if (one) { /* d * code + m, as sd_dequantize */
                f0 = vfmaq_f32(m, d, f0);
                f1 = vfmaq_f32(m, d, f1);
            } else {
                f0 = vmulq_f32(d, f0);
                f1 = vmulq_f32(d, f1);
            }
            vst1q_f32(dst + 16 * h + 8 * q, f0);
            vst1q_f32(dst + 16 * h + 8 * q + 4, f1);
        }
    }
}

/* ------------------------------------------------------------ to f32 */

#define DEF_TO_F32(T)                                                                          \
    static void to_f32_##T(const uint8_t *s, float *dst, int64_t nb, int bb)                   \
    {                                                                                          \
        for (int64_t b = 0; b < nb; b++)                                                       \
            deq_block(SD_TYPE_##T, s + b * bb, dst + 32 * b);                                  \
    }
SD_FOR_EACH_QTYPE(DEF_TO_F32)

void sd_quant_to_f32_neon(const void *src, enum sd_type t, float *dst, int64_t n)
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

#define QX_MAX_K 5120 /* larger k: the float path (deq_block + FMLA); 4 x large's 1280 */
#define QX_MAX_ROWS 7

struct qx {
    int8_t q[QX_MAX_ROWS][QX_MAX_K];
    float d[QX_MAX_ROWS][QX_MAX_K / 32];
    float s[QX_MAX_ROWS][QX_MAX_K / 32]; /* d * sum of the block's codes */
};

/* Rounds k values of x (a multiple of 32) to 8-bit blocks, ties to even as the AVX2 path. */
static void quantize_x_row(const float *x, int64_t k, int8_t *q, float *d, float *s)
{
    for (int64_t b = 0; b < k / 32; b++) {
        float32x4_t v[8], mx = vdupq_n_f32(0.0f);
        for (int i = 0; i < 8; i++) {
            v[i] = vld1q_f32(x + 32 * b + 4 * i);
            mx = vmaxq_f32(mx, vabsq_f32(v[i]));
        }
        float amax = vmaxvq_f32(mx);
        float db = amax / 127.0f;
        float32x4_t id = vdupq_n_f32(amax > 0.0f ? 127.0f / amax : 0.0f);
        int sum = 0;
        for (int h = 0; h < 2; h++) {
            int16x8_t p16[2];
            for (int i = 0; i < 2; i++) {
                int32x4_t a = vcvtnq_s32_f32(vmulq_f32(v[4 * h + 2 * i], id));
                int32x4_t c = vcvtnq_s32_f32(vmulq_f32(v[4 * h + 2 * i + 1], id));
                p16[i] = vcombine_s16(vqmovn_s32(a), vqmovn_s32(c));
            }
            int8x16_t p8 = vcombine_s8(vqmovn_s16(p16[0]), vqmovn_s16(p16[1]));
            vst1q_s8(q + 32 * b + 16 * h, p8);
            sum += vaddlvq_s8(p8);
        }
        d[b] = db;
        s[b] = db * (float)sum;
    }
}

/* Exact integer dot product of 32 weight codes with 32 x codes, plain Advanced SIMD. */
INLINE int32_t dot_codes(const int8x16_t w[2], const int8_t *xq)
{
    int8x16_t x0 = vld1q_s8(xq), x1 = vld1q_s8(xq + 16);
    /* |products| <= 128 * 127: two of them fit int16 */
    int16x8_t p0 = vmlal_high_s8(vmull_s8(vget_low_s8(w[0]), vget_low_s8(x0)), w[0], x0);
    int16x8_t p1 = vmlal_high_s8(vmull_s8(vget_low_s8(w[1]), vget_low_s8(x1)), w[1], x1);
    return vaddvq_s32(vpadalq_s16(vpaddlq_s16(p0), p1));
}

/* The same sum with SDOT. */
SD_DOTPROD INLINE int32_t dot_codes_sdot(const int8x16_t w[2], const int8_t *xq)
{
    int32x4_t acc = vdotq_s32(vdupq_n_s32(0), w[0], vld1q_s8(xq));
    return vaddvq_s32(vdotq_s32(acc, w[1], vld1q_s8(xq + 16)));
}

/*
 * MI quantized x rows against one weight row of nb blocks: out[r] = x_r . w.
 * Each block is decoded once for all MI rows; two accumulators per row (even
 * and odd blocks) as in the AVX2 path. A row's sum does not depend on MI.
 */
#define GEMVQ_BLOCK(T, MI, DOT, b, A)                                                          \
    {                                                                                          \
        const uint8_t *blk = w + (b) * bb;                                                     \
        int8x16_t c[2];                                                                        \
        codes_of(SD_TYPE_##T, blk, c);                                                         \
        float dw = half_of(blk);                                                               \
        float mw = sym ? 0.0f : half_of(blk + 2);                                              \
        _Pragma("GCC unroll 8") for (int r = 0; r < MI; r++)                                   \
        {                                                                                      \
            int32_t sumi = DOT(c, qx->q[i0 + r] + 32 * (b));                                   \
            acc[r][A] += (float)sumi * (dw * qx->d[i0 + r][b]);                                \
            if (!sym)                                                                          \
                off[r] += mw * qx->s[i0 + r][b];                                               \
        }                                                                                      \
    }

#define DEF_GEMVQ_WITH(ATTR, NAME, DOT, T, MI)                                                 \
    ATTR static void NAME##_##T##_##MI(const struct qx *qx, int i0, const uint8_t *w,          \
                                       int64_t nb, int bb, float *out)                         \
    {                                                                                          \
        const int sym = SD_TYPE_##T != SD_TYPE_Q4_1 && SD_TYPE_##T != SD_TYPE_Q5_1;            \
        float acc[MI][2], off[MI];                                                             \
        _Pragma("GCC unroll 8") for (int r = 0; r < MI; r++)                                   \
        {                                                                                      \
            acc[r][0] = acc[r][1] = 0.0f;                                                      \
            off[r] = 0.0f;                                                                     \
        }                                                                                      \
        for (int64_t b = 0; b < nb; b += 2) {                                                  \
            GEMVQ_BLOCK(T, MI, DOT, b, 0)                                                      \
            if (b + 1 < nb)                                                                    \
                GEMVQ_BLOCK(T, MI, DOT, b + 1, 1)                                              \
        }                                                                                      \
        _Pragma("GCC unroll 8") for (int r = 0; r < MI; r++) out[r] =                          \
            (acc[r][0] + acc[r][1]) + off[r];                                                  \
    }

typedef void (*gemvq_fn)(const struct qx *, int, const uint8_t *, int64_t, int, float *);

/* The plain tables: GEMVQ_<T>[MI] and gemvq_table(t), as kernels.h's macros name them. */
#define DEF_GEMVQ(T, MI) DEF_GEMVQ_WITH(, gemvq, dot_codes, T, MI)
#define DEF_GEMVQ_ALL(T) SD_DEF_GEMVQ_ROWS(DEF_GEMVQ, T)
SD_FOR_EACH_QTYPE(DEF_GEMVQ_ALL)
SD_DEF_GEMVQ_LOOKUP

/* The SDOT tables under other names: the same rows with gemvq_sdot_<T>_<MI>. */
#define DEF_GEMVQ_SDOT(T, MI) DEF_GEMVQ_WITH(SD_DOTPROD, gemvq_sdot, dot_codes_sdot, T, MI)
#define DEF_GEMVQ_SDOT_ALL(T)                                                                  \
    DEF_GEMVQ_SDOT(T, 1) DEF_GEMVQ_SDOT(T, 2) DEF_GEMVQ_SDOT(T, 3) DEF_GEMVQ_SDOT(T, 4)        \
    DEF_GEMVQ_SDOT(T, 5) DEF_GEMVQ_SDOT(T, 6) DEF_GEMVQ_SDOT(T, 7)                             \
    static const gemvq_fn GEMVQ_SDOT_##T[8] = {                                                \
        NULL,                gemvq_sdot_##T##_1, gemvq_sdot_##T##_2, gemvq_sdot_##T##_3,       \
        gemvq_sdot_##T##_4, gemvq_sdot_##T##_5, gemvq_sdot_##T##_6, gemvq_sdot_##T##_7};
SD_FOR_EACH_QTYPE(DEF_GEMVQ_SDOT_ALL)

static const gemvq_fn *gemvq_sdot_table(enum sd_type t)
{
    switch (t) {
#define CASE_SDOT(T)                                                                           \
    case SD_TYPE_##T:                                                                          \
        return GEMVQ_SDOT_##T;
        SD_FOR_EACH_QTYPE(CASE_SDOT)
    default:
        return NULL;
    }
}

/* Fallback for k > QX_MAX_K: decode each block to floats and FMLA with x. */
static float dot_float_path(const float *x, const uint8_t *w, enum sd_type t, int64_t nb, int bb)
{
    float32x4_t acc = vdupq_n_f32(0.0f);
    for (int64_t b = 0; b < nb; b++) {
        float v[32];
        sd_quant_to_f32_neon(w + b * bb, t, v, 32);
        for (int i = 0; i < 8; i++)
            acc = vfmaq_f32(acc, vld1q_f32(x + 32 * b + 4 * i), vld1q_f32(v + 4 * i));
    }
    return vaddvq_f32(acc);
}

static void gemvq_run(const gemvq_fn *fns, int m, const float *x, int64_t ldx,
                      const struct sd_kweight *w, int n0, int n1, const float *bias, float *y,
                      int64_t ldy, int accumulate)
{
    int bb = sd_type_traits(w->type)->block_bytes;
    size_t row_bytes = sd_type_bytes(w->type, w->ld);
    int64_t nb = w->k / 32;
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

void sd_quant_gemv_neon(int m, const float *x, int64_t ldx, const struct sd_kweight *w, int n0,
                        int n1, const float *bias, float *y, int64_t ldy, int accumulate)
{
    gemvq_run(gemvq_table(w->type), m, x, ldx, w, n0, n1, bias, y, ldy, accumulate);
}

void sd_quant_gemv_neon_dotprod(int m, const float *x, int64_t ldx, const struct sd_kweight *w,
                                int n0, int n1, const float *bias, float *y, int64_t ldy,
                                int accumulate)
{
    gemvq_run(gemvq_sdot_table(w->type), m, x, ldx, w, n0, n1, bias, y, ldy, accumulate);
}

/* ------------------------------------------------------------ packing */

/*
 * A [kc][SD_NR] panel from nr <= 16 quantized rows ([n][k], row stride ldb
 * elements, b at a block boundary, kc a multiple of 32 and <= SD_KC): the
 * rows are decoded into a [16][kc] scratch and transposed 4x4 at a time.
 */
void sd_quant_pack_panel_neon(const void *b, enum sd_type t, int64_t ldb, int nr, int kc,
                              float *dst)
{
    float tmp[SD_NR][SD_KC];
    const float *rows[SD_NR];
    size_t row_bytes = sd_type_bytes(t, ldb);
    for (int c = 0; c < SD_NR; c++) {
        if (c < nr)
            sd_quant_to_f32_neon((const uint8_t *)b + (size_t)c * row_bytes, t, tmp[c], kc);
        else
            memset(tmp[c], 0, sizeof(float) * (size_t)kc);
        rows[c] = tmp[c];
    }
    neon_panel_from_rows(rows, kc, dst);
}

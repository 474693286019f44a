/*
 * neon.h - pieces shared by the AArch64 kernel files: the dense table
 * (kern_neon.c) and the block-quantized kernels it calls (kern_quant_neon.c).
 * Compiled only where the target is aarch64 (the Makefile picks the files);
 * Advanced SIMD is part of every AArch64 CPU, so only the int8 dot products
 * (ARMv8.2 dotprod, HWCAP_ASIMDDP) are checked at run time. Stateless.
 */
#ifndef SD_BACKEND_CPU_NEON_H
#define SD_BACKEND_CPU_NEON_H

#include <arm_neon.h>

#include "backend/cpu/kernels.h"

/* Functions using the SDOT instruction; only called once HWCAP_ASIMDDP is seen. */
#define SD_DOTPROD __attribute__((target("arch=armv8.2-a+dotprod")))

/*
 * Quantized-weight kernels (same contracts as their AVX2 counterparts in
 * kernels.h): conversion (n a multiple of 32, src at a block start), the
 * small-m product (sd_kernels.gemv) without and with SDOT, and B-panel
 * packing (kc a multiple of 32, <= SD_KC). Both products give bit-identical
 * results: each block's integer sum is exact either way.
 */
void sd_quant_to_f32_neon(const void *src, enum sd_type t, float *dst, int64_t n);
void sd_quant_gemv_neon(int m, const float *x, int64_t ldx, const struct sd_kweight *w, int n0,
                        int n1, const float *bias, float *y, int64_t ldy, int accumulate);
void sd_quant_gemv_neon_dotprod(int m, const float *x, int64_t ldx, const struct sd_kweight *w,
                                int n0, int n1, const float *bias, float *y, int64_t ldy,
                                int accumulate);
void sd_quant_pack_panel_neon(const void *b, enum sd_type t, int64_t ldb, int nr, int kc,
                              float *dst);

/* 4x4 transpose in registers: r[i][j] <- r[j][i]. */
static inline void neon_transpose4(float32x4_t r[4])
{
    float32x4_t t0 = vtrn1q_f32(r[0], r[1]), t1 = vtrn2q_f32(r[0], r[1]);
    float32x4_t t2 = vtrn1q_f32(r[2], r[3]), t3 = vtrn2q_f32(r[2], r[3]);
    r[0] = vreinterpretq_f32_f64(vtrn1q_f64(vreinterpretq_f64_f32(t0), vreinterpretq_f64_f32(t2)));
    r[1] = vreinterpretq_f32_f64(vtrn1q_f64(vreinterpretq_f64_f32(t1), vreinterpretq_f64_f32(t3)));
    r[2] = vreinterpretq_f32_f64(vtrn2q_f64(vreinterpretq_f64_f32(t0), vreinterpretq_f64_f32(t2)));
    r[3] = vreinterpretq_f32_f64(vtrn2q_f64(vreinterpretq_f64_f32(t1), vreinterpretq_f64_f32(t3)));
}

/* Transposes a [16][SD_KC]-style block: rows src[c] (c < 16, kc floats each,
 * kc a multiple of 4) into the [kc][SD_NR] panel dst. */
static inline void neon_panel_from_rows(const float *const src[SD_NR], int kc, float *dst)
{
    for (int p = 0; p < kc; p += 4)
        for (int h = 0; h < SD_NR / 4; h++) {
            float32x4_t r[4];
            for (int i = 0; i < 4; i++)
                r[i] = vld1q_f32(src[h * 4 + i] + p);
            neon_transpose4(r);
            for (int i = 0; i < 4; i++)
                vst1q_f32(dst + (size_t)(p + i) * SD_NR + h * 4, r[i]);
        }
}

#endif

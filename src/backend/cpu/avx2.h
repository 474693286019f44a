/*
 * avx2.h - small AVX2 pieces shared by the dense (kern_avx2.c), quantized
 * (kern_quant_avx2.c) and AVX-512 (kern_avx512.c) kernel files, and the
 * AVX2 table's entries that the AVX-512 table reuses where wider vectors do
 * not pay. Everything here is compiled for avx2+fma+f16c and chosen at run time.
 */
#ifndef SD_BACKEND_CPU_AVX2_H
#define SD_BACKEND_CPU_AVX2_H

#include <immintrin.h>

#define AVX2 __attribute__((target("avx2,fma,f16c")))

#include "backend/cpu/kernels.h"

/* Entries of sd_kernels_avx2 (contracts: struct sd_kernels). */
void sd_avx2_to_f32(const void *src, enum sd_type type, float *dst, int64_t n);
void sd_avx2_gemv(int m, const float *x, int64_t ldx, const struct sd_kweight *w, int n0, int n1,
                  const float *bias, float *y, int64_t ldy, int accumulate);
float sd_avx2_dot(const float *a, const float *b, int n);
void sd_avx2_axpy(float a, const float *x, float *y, int n);
void sd_avx2_scale(float a, float *y, int n);
float sd_avx2_softmax_exp(float *x, int n, float scale);
float sd_avx2_logsumexp(const float *x, int n);
void sd_avx2_gelu(float *x, int64_t n);
void sd_avx2_add(float *y, const float *x, int64_t n);
void sd_avx2_layer_norm(const float *x, int n, const float *g, const float *b, float eps,
                        float *y);
void sd_avx2_attn_row(const float *q, const void *k, int64_t ldk, const void *v, int64_t ldv,
                      enum sd_type t, int nk, int d, float scale, float *s, float *out);
void sd_avx2_to_f16(const float *src, uint16_t *dst, int64_t n);
void sd_avx2_pack_panel_nk(const void *b, enum sd_type t, int64_t ldb, int nr, int kc,
                           float *dst);

/*
 * exp(x) = 2^n * e^r, n = round(x log2 e), r = x - n ln 2 (ln 2 in two parts),
 * e^r by a degree-6 polynomial (Cephes expf): relative error ~2e-7 on
 * [-87, 88]. One set of constants for every vector width (exp8 in
 * kern_avx2.c, exp16 in kern_avx512.c), so the tables agree.
 */
#define SD_EXP_CLAMP_LO (-88.0f)
#define SD_EXP_CLAMP_HI 88.0f
#define SD_EXP_LOG2E 1.44269504088896341f
#define SD_EXP_LN2_HI 0.693359375f
#define SD_EXP_LN2_LO (-2.12194440e-4f)
#define SD_EXP_P0 1.9875691500e-4f
#define SD_EXP_P1 1.3981999507e-3f
#define SD_EXP_P2 8.3334519073e-3f
#define SD_EXP_P3 4.1665795894e-2f
#define SD_EXP_P4 1.6666665459e-1f
#define SD_EXP_P5 5.0000001201e-1f

/* In-register 8x8 transpose: r[i][j] <- r[j][i]. */
AVX2 static inline void avx2_transpose8(__m256 r[8])
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

#endif

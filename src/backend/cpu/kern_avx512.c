/*
 * kern_avx512.c - the AVX-512 kernel table, chosen at run time on CPUs with
 * AVX-512 F/VL/BW/DQ (plus the AVX2 table's FMA and F16C). Where a core has
 * full-width 512-bit FMA units (AMD Zen 5, Intel server cores) this doubles
 * the arithmetic per instruction; the GEMM micro-kernel covers 6 rows by up
 * to four 16-column panels with 24 zmm accumulators. Entries where wider
 * vectors do not pay reuse the AVX2 kernels (avx2.h).
 */
#include <immintrin.h>
#include <string.h>

#include "backend/cpu/avx2.h"
#include "backend/cpu/kernels.h"

#define AVX512 __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,avx2,fma,f16c")))
#define ALWAYS_INLINE inline __attribute__((always_inline))

int sd_cpu_has_avx512(void)
{
    __builtin_cpu_init();
    return sd_cpu_has_avx2() && __builtin_cpu_supports("avx512f") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512dq");
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

const struct sd_kernels sd_kernels_avx512 = {
    .name = "avx512",
    .panels = 4,
    .micro = micro_avx512,
    .to_f32 = sd_avx2_to_f32,
    .gemv = sd_avx2_gemv,
    .dot = sd_avx2_dot,
    .axpy = sd_avx2_axpy,
    .scale = sd_avx2_scale,
    .softmax_exp = sd_avx2_softmax_exp,
    .gelu = sd_avx2_gelu,
    .add = sd_avx2_add,
    .layer_norm = sd_avx2_layer_norm,
    .attn_row = sd_avx2_attn_row,
    .to_f16 = sd_avx2_to_f16,
    .pack_panel_nk = sd_avx2_pack_panel_nk,
};

/*
 * gemm.c - single-threaded blocked GEMM, C (+)= A . B^T (+ bias), in the
 * GotoBLAS/BLIS style: B is packed (and converted from f16) into KC x NC
 * panels of SD_NR columns and the ISA-specific micro-kernel computes
 * SD_MR x (panels x SD_NR) register tiles, reading A in place (rows at stride lda; only a
 * ragged last row panel is copied). The thread split lives in backend.c; this
 * file only walks one block.
 */
#include <string.h>

#include "backend/cpu/kernels.h"

/* Packs columns [j0, j0 + nc) x k-range [p0, p0 + kc) of B as nc/NR panels of [kc][NR]. */
static void pack_b(const struct sd_kernels *kr, const struct sd_gemm *g, int j0, int nc, int p0,
                   int kc, float *pb)
{
    /* byte offsets through the type table: quantized rows are runs of 32-value blocks */
    size_t row_bytes = sd_type_bytes(g->btype, g->ldb);
    int esize = g->btype == SD_TYPE_F16 ? 2 : 4; /* [k][n] layouts are f32 or f16 only */
    const uint8_t *b = g->b;
    for (int jp = 0; jp < nc; jp += SD_NR) {
        int nr = nc - jp < SD_NR ? nc - jp : SD_NR;
        float *dst = pb + (size_t)jp * kc;
        if (g->b_kn) { /* B stored [k][n]: each k contributes NR contiguous values */
            const uint8_t *src = b + ((int64_t)p0 * g->ldb + j0 + jp) * esize;
            for (int p = 0; p < kc; p++) {
                kr->to_f32(src + (int64_t)p * g->ldb * esize, g->btype, dst + (size_t)p * SD_NR,
                           nr);
                for (int c = nr; c < SD_NR; c++)
                    dst[(size_t)p * SD_NR + c] = 0.0f;
            }
            continue;
        }
        if (kr->pack_panel_nk) {
            kr->pack_panel_nk(b + (size_t)(j0 + jp) * row_bytes + sd_type_bytes(g->btype, p0),
                              g->btype, g->ldb, nr, kc, dst);
            continue;
        }
        float row[SD_KC];
        for (int c = 0; c < SD_NR; c++) {
            if (c < nr) {
                const uint8_t *src =
                    b + (size_t)(j0 + jp + c) * row_bytes + sd_type_bytes(g->btype, p0);
                kr->to_f32(src, g->btype, row, kc);
            } else {
                memset(row, 0, sizeof(float) * (size_t)kc);
            }
            for (int p = 0; p < kc; p++)
                dst[(size_t)p * SD_NR + c] = row[p];
        }
    }
}

/* Copies the last mr < SD_MR rows of an A panel into a zero-padded [SD_MR][kc] buffer. */
static void pack_a_edge(const struct sd_gemm *g, int i0, int mr, int p0, int kc, float *pa)
{
    for (int r = 0; r < SD_MR; r++) {
        if (r < mr)
            memcpy(pa + (size_t)r * kc, g->a + (int64_t)(i0 + r) * g->lda + p0,
                   sizeof(float) * (size_t)kc);
        else
            memset(pa + (size_t)r * kc, 0, sizeof(float) * (size_t)kc);
    }
}

void sd_gemm_block(const struct sd_kernels *kr, const struct sd_gemm *g, int m0, int m1, int n0,
                   int n1, float *pa, float *pb)
{
    if (kr->gemm_block) {
        kr->gemm_block(g, m0, m1, n0, n1, pa, pb);
        return;
    }
    int tile_n = SD_NR * kr->panels;
    for (int jc = n0; jc < n1; jc += SD_NC) {
        int nc = n1 - jc < SD_NC ? n1 - jc : SD_NC;
        for (int pc = 0; pc < g->k; pc += SD_KC) {
            int kc = g->k - pc < SD_KC ? g->k - pc : SD_KC;
            /* floats between adjacent panels: whole-k panels when pre-packed */
            int64_t panel_stride = g->b_packed ? (int64_t)g->k * SD_NR : (int64_t)kc * SD_NR;
            int first = pc == 0;
            if (!g->b_packed)
                pack_b(kr, g, jc, nc, pc, kc, pb);
            for (int ic = m0; ic < m1; ic += SD_MC) {
                int mc = m1 - ic < SD_MC ? m1 - ic : SD_MC;
                int m_full = mc / SD_MR * SD_MR;
                if (m_full < mc) /* A is read in place except a ragged last panel */
                    pack_a_edge(g, ic + m_full, mc - m_full, pc, kc, pa);
                for (int jr = 0; jr < nc; jr += tile_n) {
                    int nr = nc - jr < tile_n ? nc - jr : tile_n;
                    const float *bias = first && g->bias ? g->bias + jc + jr : NULL;
                    for (int ir = 0; ir < mc; ir += SD_MR) {
                        int mr = mc - ir < SD_MR ? mc - ir : SD_MR;
                        float *c = g->c + (int64_t)(ic + ir) * g->ldc + jc + jr;
                        const float *a = g->a + (int64_t)(ic + ir) * g->lda + pc;
                        int64_t lda = g->lda;
                        if (mr < SD_MR) {
                            a = pa;
                            lda = kc;
                        }
                        const float *panel =
                            g->b_packed ? g->b_packed + (size_t)((jc + jr) / SD_NR) * g->k * SD_NR +
                                              (size_t)pc * SD_NR
                                        : pb + (size_t)jr * kc;
                        kr->micro(kc, a, lda, panel, panel_stride, c, g->ldc, mr, nr,
                                  !first || g->accumulate, bias);
                    }
                }
            }
        }
    }
}

size_t sd_gemm_packed_floats(int n, int k)
{
    return (size_t)((n + SD_NR - 1) / SD_NR) * (size_t)k * SD_NR;
}

void sd_gemm_pack_b(const struct sd_kernels *kr, const struct sd_gemm *g, float *dst)
{
    for (int j0 = 0; j0 < g->n; j0 += SD_NR) {
        int nc = g->n - j0 < SD_NR ? g->n - j0 : SD_NR;
        float *panel = dst + (size_t)(j0 / SD_NR) * g->k * SD_NR;
        for (int pc = 0; pc < g->k; pc += SD_KC) {
            int kc = g->k - pc < SD_KC ? g->k - pc : SD_KC;
            pack_b(kr, g, j0, nc, pc, kc, panel + (size_t)pc * SD_NR);
        }
    }
}

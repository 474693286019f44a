/*
 * kernels.h - private to the CPU backend: the per-ISA kernel table (scalar,
 * AVX2+FMA+F16C and AVX-512 variants on x86-64, NEON on AArch64, of the same
 * primitives), the blocked GEMM driver built on them, and the blocking
 * constants. Not part of ops.h.
 */
#ifndef SD_BACKEND_CPU_KERNELS_H
#define SD_BACKEND_CPU_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "backend/ops.h"

/* A weight matrix as the kernels read it: struct sd_weight resolved to a host address. */
struct sd_kweight {
    enum sd_type type;
    const void *data;
    int64_t n, k, ld;
};

/*
 * Register tile of the GEMM micro-kernel and cache blocks (in elements). B is
 * packed in panels of SD_NR columns; a micro-kernel covers SD_MR rows by
 * `panels` adjacent panels (SD_NC and the task tiles are multiples of
 * SD_NR * SD_MAX_PANELS).
 */
#define SD_MR 6
#define SD_NR 16
#define SD_MAX_PANELS 4
#define SD_KC 256
#define SD_MC 72
#define SD_NC 512
/* A small-m (matrix-vector) kernel call handles m < SD_GEMV_MAX_M rows. */
#define SD_GEMV_MAX_M 8
/*
 * sd_op_matmul sends products of up to SD_MATVEC_MAX_M rows (several
 * requests' beams decoded together) to those kernels, in row chunks. Every
 * kernel computes a row the same way whatever the chunk it is in, so a row's
 * result never depends on which other rows share the product. Past 24 rows
 * packing W for the GEMM kernel pays (f16 vocabulary product, 2 threads: 24 rows
 * 7.8 ms matrix-vector against 8.2 ms GEMM, 12 rows 3.9 against 12.9 ms).
 */
#ifndef SD_MATVEC_MAX_M
#define SD_MATVEC_MAX_M 24
#endif

struct sd_gemm;

struct sd_kernels {
    const char *name;
    /* SD_NR-wide B panels one micro-kernel call covers (1..SD_MAX_PANELS) */
    int panels;
    /*
     * C[mr][nr] (+)= A[MR][kc] . Bp[kc][nr] (+ bias[nr]); load_c adds to existing C.
     * A is read in place (SD_MR rows at stride lda, all readable). Bp is
     * ceil(nr / SD_NR) <= panels packed [kc][SD_NR] panels, panel q at
     * bp + q * panel_stride floats; only those panels are read.
     */
    void (*micro)(int kc, const float *a, int64_t lda, const float *bp, int64_t panel_stride,
                  float *c, int64_t ldc, int mr, int nr, int load_c, const float *bias);
    /* dst[0..n) = f32 of src (f32 or f16, any alignment) */
    void (*to_f32)(const void *src, enum sd_type type, float *dst, int64_t n);
    /* y[i][j] (+)= x[i] . W[j] + bias[j] for i < m, j in [n0, n1): the small-m path */
    void (*gemv)(int m, const float *x, int64_t ldx, const struct sd_kweight *w, int n0, int n1,
                 const float *bias, float *y, int64_t ldy, int accumulate);
    float (*dot)(const float *a, const float *b, int n);
    void (*axpy)(float a, const float *x, float *y, int n); /* y += a x */
    void (*scale)(float a, float *y, int n);
    /* x[0..n) = exp(scale * (x - max)), returns the sum; max over x[0..n) */
    float (*softmax_exp)(float *x, int n, float scale);
    /* log sum exp of x[0..n) without writing; -inf entries add 0, all -inf gives -inf */
    float (*logsumexp)(const float *x, int n);
    void (*gelu)(float *x, int64_t n);
    void (*add)(float *y, const float *x, int64_t n);
    void (*layer_norm)(const float *x, int n, const float *g, const float *b, float eps,
                       float *y);
    /*
     * One query, one head: out[0..d) = softmax(scale * q . k_j) weighted sum of v_j over
     * j < nk; k_j at k + j*ldk, v_j at v + j*ldv (elements of type t); s: nk floats scratch.
     */
    void (*attn_row)(const float *q, const void *k, int64_t ldk, const void *v, int64_t ldv,
                     enum sd_type t, int nk, int d, float scale, float *s, float *out);
    /* dst[0..n) = f16 of src */
    void (*to_f16)(const float *src, uint16_t *dst, int64_t n);
    /*
     * Optional (NULL: generic code in gemm.c): packs nr <= SD_NR rows of a B stored
     * [n][k] (row stride ldb elements of type t), k-range [0, kc), into one
     * [kc][SD_NR] panel, zero-filling columns nr..SD_NR-1.
     */
    void (*pack_panel_nk)(const void *b, enum sd_type t, int64_t ldb, int nr, int kc,
                          float *dst);
    /*
     * Optional (NULL: sd_gemm_block walks micro over packed f32 panels): the
     * whole of sd_gemm_block, for a GEMM that is not a micro-kernel over f32
     * panels (AMX tiles). Same contract and scratch; it may ignore b_packed.
     */
    void (*gemm_block)(const struct sd_gemm *g, int m0, int m1, int n0, int n1, float *pack_a,
                       float *pack_b);
    /*
     * Optional, beside gemm_block: A converted once for all the tasks of a
     * product instead of once per task (sd_gemm.a_tiles). a_tiles_bytes: the
     * size for m x k; pack_a_tiles: rows [r0, r1) of it, r0 a multiple of
     * SD_A_TILE_ROWS (tasks may pack disjoint row ranges concurrently).
     */
    size_t (*a_tiles_bytes)(int m, int k);
    void (*pack_a_tiles)(const float *a, int64_t lda, int m, int k, int r0, int r1, void *dst);
};
#define SD_A_TILE_ROWS 16

/* X(T) for every block-quantized type (SD_TYPE_##T), for the per-type kernel instances. */
#define SD_FOR_EACH_QTYPE(X) X(Q4_0) X(Q4_1) X(Q5_0) X(Q5_1) X(Q8_0)

/*
 * For the quantized small-m products (kern_quant_*.c): instantiates
 * DEF(T, MI) for MI = 1..7, each defining gemvq_<T>_<MI> of the file's
 * gemvq_fn type, and the table GEMVQ_<T>[MI] of them (index 0 unused); then
 * SD_GEMVQ_LOOKUP(t) is that table for type t, or NULL.
 */
#define SD_DEF_GEMVQ_ROWS(DEF, T)                                                              \
    DEF(T, 1) DEF(T, 2) DEF(T, 3) DEF(T, 4) DEF(T, 5) DEF(T, 6) DEF(T, 7)                      \
    static const gemvq_fn GEMVQ_##T[8] = {NULL,          gemvq_##T##_1, gemvq_##T##_2,        \
                                          gemvq_##T##_3, gemvq_##T##_4, gemvq_##T##_5,        \
                                          gemvq_##T##_6, gemvq_##T##_7};
#define SD_GEMVQ_CASE(T)                                                                       \
    case SD_TYPE_##T:                                                                          \
        return GEMVQ_##T;
#define SD_DEF_GEMVQ_LOOKUP                                                                    \
    static const gemvq_fn *gemvq_table(enum sd_type t)                                         \
    {                                                                                          \
        switch (t) {                                                                           \
            SD_FOR_EACH_QTYPE(SD_GEMVQ_CASE)                                                   \
        default:                                                                               \
            return NULL;                                                                       \
        }                                                                                      \
    }

/*
 * Quantized-weight kernels (kern_quant_avx2.c), called by the AVX2 table for
 * block types: conversion (n a multiple of 32, src at a block start), the
 * small-m product (same contract as sd_kernels.gemv) and B-panel packing
 * (kc a multiple of 32, <= SD_KC).
 */
void sd_quant_to_f32_avx2(const void *src, enum sd_type t, float *dst, int64_t n);
void sd_quant_gemv_avx2(int m, const float *x, int64_t ldx, const struct sd_kweight *w, int n0,
                        int n1, const float *bias, float *y, int64_t ldy, int accumulate);
void sd_quant_pack_panel_avx2(const void *b, enum sd_type t, int64_t ldb, int nr, int kc,
                              float *dst);
/* The small-m product on AVX-512 VNNI (kern_quant_avx512.c); same contract. */
void sd_quant_gemv_avx512(int m, const float *x, int64_t ldx, const struct sd_kweight *w, int n0,
                          int n1, const float *bias, float *y, int64_t ldy, int accumulate);

extern const struct sd_kernels sd_kernels_scalar;
extern const struct sd_kernels sd_kernels_avx2;
extern const struct sd_kernels sd_kernels_avx512;
/* AVX-512 variants that differ only in the f16 small-m product (kern_avx512.c). */
extern const struct sd_kernels sd_kernels_avx512y;
extern const struct sd_kernels sd_kernels_avx512np;
extern const struct sd_kernels sd_kernels_avx512r4;
extern const struct sd_kernels sd_kernels_avx512l2;
/*
 * The AVX-512 table with the GEMM on Intel AMX tiles (bf16 hi/lo splitting:
 * kern_amx_avx512.c); sd_cpu_has_amx: AMX-TILE and AMX-BF16, the AVX-512
 * table's features, and the kernel's grant of the tile state to this process.
 */
extern const struct sd_kernels sd_kernels_amx;
int sd_cpu_has_amx(void);
void sd_amx_gemm_block(const struct sd_gemm *g, int m0, int m1, int n0, int n1, float *pack_a,
                       float *pack_b);
size_t sd_amx_a_tiles_bytes(int m, int k);
void sd_amx_pack_a_tiles(const float *a, int64_t lda, int m, int k, int r0, int r1, void *dst);

/*
 * Every kernel table of this binary, in order of preference: the first one
 * the CPU runs (and the create flags allow) is the default, SCRIBED_SIMD
 * names one, and calibration (calibrate.c) times those the CPU runs against
 * each other per primitive. Adding an ISA's table is one line (backend.c).
 */
struct sd_kernel_table {
    const struct sd_kernels *kr;
    int (*runs)(void);   /* 1 if this CPU runs the table */
    unsigned ruled_out;  /* SD_BACKEND_* create flags that exclude it */
};
extern const struct sd_kernel_table sd_kernel_tables[];
extern const int sd_n_kernel_tables;
/* The table called name (struct sd_kernels.name), or NULL. */
const struct sd_kernel_table *sd_kernel_table_named(const char *name);

/*
 * Which table each primitive of a backend comes from: the matrix-vector
 * product for f32/f16 weights, the one for quantized weights, and the GEMM
 * (micro-kernel, panels, packing); every other entry comes from base.
 */
struct sd_kernel_set {
    const struct sd_kernels *base, *gemv, *gemv_q, *gemm;
};
/* A CPU backend's kernels (backend.c); set only while no op runs on it. */
void sd_cpu_get_kernels(struct sd_backend *b, struct sd_kernel_set *out);
void sd_cpu_set_kernels(struct sd_backend *b, const struct sd_kernel_set *s);
/* 1 if SCRIBED_SIMD forced one table on b (calibration then does nothing). */
int sd_cpu_kernels_forced(const struct sd_backend *b);

/* calibrate.c: the cache key of this CPU, thread count and version (CPU model, flags...). */
void sd_cpu_kernel_key(int n_threads, const char *version, char *out, size_t cap);
/* "gemv_f16=T gemv_q=T gemm=T" (any subset) applied over base into *out; err may be NULL. */
enum sd_err sd_cpu_parse_choice(const char *choice, const struct sd_kernel_set *base,
                                struct sd_kernel_set *out, struct sd_error *err);
/*
 * calibrate.c's timing rule, apart so a test can drive it with made-up times:
 * rounds alternate the n (<= 16) candidates, time_one(ctx, i) timing candidate
 * i once; each keeps its best in best[i]. After a round, a candidate far
 * behind the best is not timed again, except the preferred (first) one: one
 * disturbed round (a neighbour's burst, a page-fault storm) must not rule out
 * the default. Returns the winner: the first unless another is clearly (a
 * margin) faster.
 */
int sd_calibrate_rounds(int n, double (*time_one)(void *ctx, int i), void *ctx, double best[]);
/* The sd_backend_ops.calibrate of the CPU (contract in ops.h). */
enum sd_err sd_cpu_calibrate(struct sd_backend *b, struct sd_calibration *c,
                             struct sd_error *err);

/* 1: every CPU runs sd_kernels_scalar. */
int sd_cpu_runs_scalar(void);
/* 1 if this CPU runs sd_kernels_avx2 (AVX2, FMA and F16C). */
int sd_cpu_has_avx2(void);
/*
 * 1 if this CPU runs sd_kernels_avx512: the above plus AVX-512 F, VL, BW, DQ
 * and VNNI (Ice Lake, Zen 4 and later; older AVX-512 cores run the AVX2 table).
 */
int sd_cpu_has_avx512(void);

/*
 * The AArch64 tables (kern_neon.c): "neon" on every AArch64 CPU, and
 * "neon-dotprod", the same with the quantized products on SDOT (ARMv8.2).
 * On other targets the tables are absent and these answer 0 (isa_absent.c),
 * as sd_cpu_has_avx2/avx512 do on targets other than x86-64.
 */
extern const struct sd_kernels sd_kernels_neon;
extern const struct sd_kernels sd_kernels_neon_dotprod;
int sd_cpu_has_neon(void);
int sd_cpu_has_neon_dotprod(void);

/* A GEMM problem: C[m][n] (+)= A[m][k] . B^T (+ bias). */
struct sd_gemm {
    int m, n, k;
    const float *a;
    int64_t lda;
    enum sd_type btype; /* f32, f16, or a quantized type (then b_kn = 0, k % 32 == 0) */
    const void *b;
    int64_t ldb;
    int b_kn;           /* 0: B stored [n][k] (weights); 1: stored [k][n] */
    const float *b_packed; /* NULL, or B already packed by sd_gemm_pack_b (then b is unused) */
    const void *a_tiles;   /* NULL, or all of A by the table's pack_a_tiles (then m0 % 16 == 0) */
    const float *bias;  /* may be NULL */
    float *c;
    int64_t ldc;
    int accumulate;
};

/*
 * Single-threaded blocked GEMM over rows [m0, m1) and columns [n0, n1) of g.
 * pack_a: SD_MR * SD_KC floats (edge rows), pack_b: SD_KC * SD_NC floats, both 64-aligned.
 */
void sd_gemm_block(const struct sd_kernels *kr, const struct sd_gemm *g, int m0, int m1, int n0,
                   int n1, float *pack_a, float *pack_b);

/*
 * Packs all of g's B once, as ceil(n / SD_NR) panels of [k][SD_NR] floats
 * (sd_gemm_packed_floats(n, k) of them), for reuse by many sd_gemm_block calls
 * through g->b_packed (which then needs n0 to be a multiple of SD_NR).
 */
size_t sd_gemm_packed_floats(int n, int k);
void sd_gemm_pack_b(const struct sd_kernels *kr, const struct sd_gemm *g, float *dst);

#endif

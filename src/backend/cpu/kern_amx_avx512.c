/*
 * kern_amx_avx512.c - the "amx" kernel table: the AVX-512 table with its
 * GEMM on Intel AMX tiles (Sapphire Rapids and later: AMX-TILE, AMX-BF16),
 * where one TDPBF16PS does 16 x 16 x 32 multiply-adds. The encoder's
 * products and attention are GEMMs; the decoder's matrix-vector products
 * are bound by memory, not arithmetic, and stay on the AVX-512 kernels.
 *
 * Precision: bf16 keeps 8 significant bits, too few for our conformance
 * data (whisper.cpp rounds activations to f16, 11 bits). Each operand is
 * therefore split into a high and a low bf16 (x = hi + lo, 16 bits: f16
 * weights exactly, f32 activations to 2^-16 relative) and the product is
 * Ah.Bh + Al.Bh + Ah.Bl, the dropped Al.Bl being below 2^-16 of it. Three
 * tile products per 32-deep slice, still several times the arithmetic rate
 * of 512-bit FMAs; products of bf16 pairs are exact in f32 and the tiles
 * accumulate in f32.
 *
 * Layouts in the per-thread pack buffer (SD_KC * SD_NC floats): both
 * operands are cut into slices of 32 k values, each slice stored as two
 * contiguous 1 KB tiles, hi then lo, so that every tile load reads 1 KB in
 * a row (strided rows would fall into a few L1 sets). An A group is 16 rows
 * (a tile row: 32 bf16 of one row); a B panel is 16 columns (a tile row:
 * 16 32-bit words, each the bf16 of k = 2p and 2p + 1 of one column: the
 * VNNI form TDPBF16PS reads). kcp = kc rounded up to 32, zero-filled.
 *
 * Tile state is per thread: every block configures the tiles and releases
 * them at its end, so no state outlives a call. The process must have been
 * granted the tile data state (arch_prctl ARCH_REQ_XCOMP_PERM, Linux 5.16+):
 * sd_cpu_has_amx asks for it and answers 0 when the kernel refuses.
 */
#include <cpuid.h>
#include <immintrin.h>
#include <string.h>

#include "backend/cpu/avx2.h"
#include "backend/cpu/kernels.h"

#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

#define AMX                                                                                    \
    __attribute__((target("amx-tile,amx-bf16,avx512f,avx512vl,avx512bw,avx512dq,avx2,fma,f16c")))

/*
 * Blocking: a packed B block (AMX_NC x AMX_KC) stays in L2 while AMX_MC rows
 * of A are packed and swept; a 32-row pair of A groups (32 x AMX_KC x hi/lo)
 * stays in L1 while the B panels stream past it.
 */
#ifndef AMX_KC
#define AMX_KC 256 /* k per packed block (a multiple of 32) */
#endif
#ifndef AMX_NC
#define AMX_NC 256 /* columns per packed B block (a multiple of 32) */
#endif
#ifndef AMX_MC
#define AMX_MC 64 /* rows per packed A block (a multiple of 32) */
#endif
#define SLICE_BF16 (2 * 16 * 32) /* one slice: hi and lo tiles, in bf16 values */

/* B (2 * AMX_KC * AMX_NC bf16) + A (AMX_MC * 2 * AMX_KC bf16) + f32 staging of 16 B rows */
_Static_assert((size_t)2 * AMX_KC * AMX_NC * 2 + (size_t)AMX_MC * 2 * AMX_KC * 2 +
                       (size_t)16 * AMX_KC * 4 <=
                   (size_t)SD_KC * SD_NC * sizeof(float),
               "the AMX blocks must fit the per-thread pack buffer");

/* ------------------------------------------------------------ detection */

#define ARCH_REQ_XCOMP_PERM 0x1023
#define XFEATURE_XTILEDATA 18

int sd_cpu_has_amx(void)
{
    if (!sd_cpu_has_avx512())
        return 0;
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d))
        return 0;
    int tile = (d >> 24) & 1u, bf16 = (d >> 22) & 1u;
    if (!tile || !bf16)
        return 0;
#if defined(__linux__)
    /* idempotent; the grant is for the whole process, the threads started later included */
    return syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0;
#else
    return 0;
#endif
}

/* ------------------------------------------------------------ bf16 splitting */

/* The f32 bits of x rounded to bf16 (nearest, ties to even), low 16 bits zero. */
AMX static inline __m512i bf16_round_bits(__m512 x)
{
    __m512i u = _mm512_castps_si512(x);
    __m512i odd = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
    __m512i r = _mm512_add_epi32(u, _mm512_add_epi32(_mm512_set1_epi32(0x7FFF), odd));
    return _mm512_and_si512(r, _mm512_set1_epi32((int)0xFFFF0000u));
}

/* x = hi + lo: both as f32 bit patterns with zero low halves. */
AMX static inline void bf16_split(__m512 x, __m512i *hi, __m512i *lo)
{
    *hi = bf16_round_bits(x);
    *lo = bf16_round_bits(_mm512_sub_ps(x, _mm512_castsi512_ps(*hi)));
}

/* 16 f32 bit patterns (low halves zero) to 16 bf16 values. */
AMX static inline __m256i bf16_narrow(__m512i bits)
{
    return _mm512_cvtepi32_epi16(_mm512_srli_epi32(bits, 16));
}

/*
 * The words of 32 consecutive k values of one column (x0: k 0..15, x1:
 * 16..31): word i holds the bf16 of k = 2i (low half) and 2i + 1 (high half).
 */
AMX static inline __m512i bf16_pair_words(__m512i b0, __m512i b1)
{
    const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    const __m512i odd = _mm512_set_epi32(31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
    __m512i e = _mm512_permutex2var_epi32(b0, even, b1);
    __m512i o = _mm512_permutex2var_epi32(b0, odd, b1);
    return _mm512_or_si512(_mm512_srli_epi32(e, 16), o);
}

/* r[i][j] <- r[j][i] for a 16 x 16 matrix of 32-bit words. */
AMX static inline void transpose16(__m512i r[16])
{
    __m512i t[16];
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
    }
    for (int i = 0; i < 16; i += 4) {
        r[i] = _mm512_unpacklo_epi64(t[i], t[i + 2]);
        r[i + 1] = _mm512_unpackhi_epi64(t[i], t[i + 2]);
        r[i + 2] = _mm512_unpacklo_epi64(t[i + 1], t[i + 3]);
        r[i + 3] = _mm512_unpackhi_epi64(t[i + 1], t[i + 3]);
    }
    /* now each 128-bit lane holds a 4 x 4 block; gather the lanes */
    for (int i = 0; i < 4; i++) {
        t[i] = _mm512_shuffle_i32x4(r[i], r[i + 4], 0x88);
        t[i + 4] = _mm512_shuffle_i32x4(r[i], r[i + 4], 0xDD);
        t[i + 8] = _mm512_shuffle_i32x4(r[i + 8], r[i + 12], 0x88);
        t[i + 12] = _mm512_shuffle_i32x4(r[i + 8], r[i + 12], 0xDD);
    }
    for (int i = 0; i < 4; i++) {
        r[i] = _mm512_shuffle_i32x4(t[i], t[i + 8], 0x88);
        r[i + 8] = _mm512_shuffle_i32x4(t[i], t[i + 8], 0xDD);
        r[i + 4] = _mm512_shuffle_i32x4(t[i + 4], t[i + 12], 0x88);
        r[i + 12] = _mm512_shuffle_i32x4(t[i + 4], t[i + 12], 0xDD);
    }
}

/* ------------------------------------------------------------ packing */

static inline __mmask16 lanes(int n)
{
    return n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n > 0 ? n : 0)) - 1u);
}

/*
 * One 16-column panel from B stored [n][k] (rows j0.. of any type, nr of
 * them): the rows go to f32 in stage ([16][kcp]), then each 32-deep slice of
 * the 16 rows becomes 16 words per row, transposed into the tile's rows.
 */
AMX static void pack_panel_nk(const struct sd_gemm *g, int j0, int nr, int p0, int kc, int kcp,
                              uint32_t *panel, float *stage)
{
    size_t row_bytes = sd_type_bytes(g->btype, g->ldb);
    const uint8_t *b = (const uint8_t *)g->b + sd_type_bytes(g->btype, p0);
    for (int j = 0; j < 16; j++) {
        float *row = stage + (size_t)j * kcp;
        if (j < nr)
            sd_avx2_to_f32(b + (size_t)(j0 + j) * row_bytes, g->btype, row, kc);
        memset(row + (j < nr ? kc : 0), 0, sizeof(float) * (size_t)(kcp - (j < nr ? kc : 0)));
    }
    for (int q = 0; q < kcp; q += 32) {
        uint32_t *hi = panel + (size_t)q / 32 * SLICE_BF16 / 2, *lo = hi + 256;
        __m512i wh[16], wl[16];
        for (int j = 0; j < 16; j++) {
            const float *row = stage + (size_t)j * kcp + q;
            __m512i h0, l0, h1, l1;
            bf16_split(_mm512_loadu_ps(row), &h0, &l0);
            bf16_split(_mm512_loadu_ps(row + 16), &h1, &l1);
            wh[j] = bf16_pair_words(h0, h1);
            wl[j] = bf16_pair_words(l0, l1);
        }
        transpose16(wh);
        transpose16(wl);
        for (int p = 0; p < 16; p++) {
            _mm512_storeu_si512(hi + p * 16, wh[p]);
            _mm512_storeu_si512(lo + p * 16, wl[p]);
        }
    }
}

/* 16 values of row k of a B stored [k][n] from column j0 (f32 or f16), zero past nr. */
AMX static inline __m512 load_kn(const struct sd_gemm *g, int k, int j0, int nr)
{
    __mmask16 m = lanes(nr);
    if (g->btype == SD_TYPE_F16) {
        const uint16_t *src = (const uint16_t *)g->b + (int64_t)k * g->ldb + j0;
        return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, src));
    }
    return _mm512_maskz_loadu_ps(m, (const float *)g->b + (int64_t)k * g->ldb + j0);
}

/* One 16-column panel from B stored [k][n]: a word pairs rows 2p and 2p + 1. */
AMX static void pack_panel_kn(const struct sd_gemm *g, int j0, int nr, int p0, int kc, int kcp,
                              uint32_t *panel)
{
    const __m512i high = _mm512_set1_epi32((int)0xFFFF0000u);
    for (int p = 0; p < kcp / 2; p++) {
        int k = 2 * p;
        uint32_t *hi = panel + (size_t)p / 16 * SLICE_BF16 / 2 + (p % 16) * 16, *lo = hi + 256;
        __m512 x0 = k < kc ? load_kn(g, p0 + k, j0, nr) : _mm512_setzero_ps();
        __m512 x1 = k + 1 < kc ? load_kn(g, p0 + k + 1, j0, nr) : _mm512_setzero_ps();
        __m512i h0, l0, h1, l1;
        bf16_split(x0, &h0, &l0);
        bf16_split(x1, &h1, &l1);
        _mm512_storeu_si512(hi, _mm512_or_si512(_mm512_srli_epi32(h0, 16), _mm512_and_si512(h1, high)));
        _mm512_storeu_si512(lo, _mm512_or_si512(_mm512_srli_epi32(l0, 16), _mm512_and_si512(l1, high)));
    }
}

/*
 * Rows [i0, i0 + mr) of A, k-range [p0, p0 + kc), as groups of 16 rows,
 * group_bf16 apart (kcp / 32 slices each, or more when dst is a k-range of a
 * wider packing); rows from mr to mr_pad (a multiple of 16) are zero.
 */
AMX static void pack_a_rows(const float *a, int64_t lda, int i0, int mr, int mr_pad, int p0, int kc,
                            int kcp, uint16_t *dst, size_t group_bf16)
{
    for (int r = 0; r < mr_pad; r++) {
        uint16_t *row = dst + (size_t)(r / 16) * group_bf16 + (size_t)(r % 16) * 32;
        const float *ar = a + (int64_t)(i0 + r) * lda + p0;
        for (int q = 0; q < kcp; q += 16) {
            __m512 x = r < mr ? _mm512_maskz_loadu_ps(lanes(kc - q), ar + q) : _mm512_setzero_ps();
            __m512i h, l;
            bf16_split(x, &h, &l);
            uint16_t *hi = row + (size_t)q / 32 * SLICE_BF16 + q % 32;
            _mm256_storeu_si256((__m256i *)hi, bf16_narrow(h));
            _mm256_storeu_si256((__m256i *)(hi + 512), bf16_narrow(l));
        }
    }
}

/* Shared A tiles (sd_gemm.a_tiles): groups of 16 rows over all of k, padded to 32. */
static size_t a_tiles_group_bf16(int k)
{
    return (size_t)(k + 31) / 32 * SLICE_BF16;
}

size_t sd_amx_a_tiles_bytes(int m, int k)
{
    return (size_t)(m + 15) / 16 * a_tiles_group_bf16(k) * sizeof(uint16_t);
}

AMX void sd_amx_pack_a_tiles(const float *a, int64_t lda, int m, int k, int r0, int r1, void *dst)
{
    int rows = (r1 < m ? r1 : m) - r0, pad = (r1 - r0 + 15) / 16 * 16;
    size_t group = a_tiles_group_bf16(k);
    pack_a_rows(a, lda, r0, rows, pad, 0, k, (k + 31) / 32 * 32,
                (uint16_t *)dst + (size_t)(r0 / 16) * group, group);
}

/* ------------------------------------------------------------ tiles */

struct tile_config {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
};

/* tmm0..3: C (2 x 2 blocks of 16 x 16 f32); tmm4, tmm7: A slices; tmm5, tmm6: B slices. */
AMX static void configure_tiles(void)
{
    struct tile_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.palette = 1;
    for (int t = 0; t < 8; t++) {
        cfg.colsb[t] = 64;
        cfg.rows[t] = 16;
    }
    _tile_loadconfig(&cfg);
}

/*
 * C tile (ti, tj) of a 32 x 32 block starts from: C itself (load_c), the bias,
 * or zero; edge tiles (rows or columns past the block's end) go through tmp.
 */
struct c_block {
    float *c;
    int64_t ldc;
    int mr, nr; /* valid rows and columns of the 32 x 32 block */
    int load_c;
    const float *bias; /* nr values, or NULL */
    float tmp[4][16 * 16];
};

static inline int tile_full(const struct c_block *cb, int ti, int tj)
{
    return cb->mr >= 16 * (ti + 1) && cb->nr >= 16 * (tj + 1);
}

/* The starting values of C tile (ti, tj) in a buffer the tile is loaded from; NULL: zero. */
AMX static const float *c_start(struct c_block *cb, int ti, int tj, int64_t *stride)
{
    int rows = cb->mr - 16 * ti, cols = cb->nr - 16 * tj;
    rows = rows > 16 ? 16 : rows;
    cols = cols > 16 ? 16 : cols;
    float *c = cb->c + (int64_t)16 * ti * cb->ldc + 16 * tj;
    if (cb->load_c && !cb->bias && tile_full(cb, ti, tj)) {
        *stride = cb->ldc * 4;
        return c;
    }
    if (!cb->load_c && !cb->bias)
        return NULL;
    float *t = cb->tmp[ti * 2 + tj];
    __mmask16 m = lanes(cols);
    __m512 bias = cb->bias ? _mm512_maskz_loadu_ps(m, cb->bias + 16 * tj) : _mm512_setzero_ps();
    for (int r = 0; r < 16; r++) {
        __m512 v = bias;
        if (cb->load_c && r < rows)
            v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, c + (int64_t)r * cb->ldc));
        _mm512_storeu_ps(t + r * 16, v);
    }
    *stride = 64;
    return t;
}

/* Where C tile (ti, tj) is stored to: C itself when whole, else tmp (copied by c_finish). */
static inline float *c_dest(struct c_block *cb, int ti, int tj, int64_t *stride)
{
    if (tile_full(cb, ti, tj)) {
        *stride = cb->ldc * 4;
        return cb->c + (int64_t)16 * ti * cb->ldc + 16 * tj;
    }
    *stride = 64;
    return cb->tmp[ti * 2 + tj];
}

AMX static void c_finish(struct c_block *cb, int ti, int tj)
{
    if (tile_full(cb, ti, tj))
        return;
    int rows = cb->mr - 16 * ti, cols = cb->nr - 16 * tj;
    if (rows <= 0 || cols <= 0)
        return;
    rows = rows > 16 ? 16 : rows;
    __mmask16 m = lanes(cols);
    float *c = cb->c + (int64_t)16 * ti * cb->ldc + 16 * tj;
    for (int r = 0; r < rows; r++)
        _mm512_mask_storeu_ps(c + (int64_t)r * cb->ldc, m, _mm512_loadu_ps(cb->tmp[ti * 2 + tj] + r * 16));
}

#define LOAD_C(T, TI, TJ)                                                                      \
    do {                                                                                       \
        int64_t st_;                                                                           \
        const float *src_ = c_start(cb, TI, TJ, &st_);                                         \
        if (src_)                                                                              \
            _tile_loadd(T, src_, st_);                                                         \
        else                                                                                   \
            _tile_zero(T);                                                                     \
    } while (0)
#define STORE_C(T, TI, TJ)                                                                     \
    do {                                                                                       \
        int64_t st_;                                                                           \
        float *dst_ = c_dest(cb, TI, TJ, &st_);                                                \
        _tile_stored(T, dst_, st_);                                                            \
        c_finish(cb, TI, TJ);                                                                  \
    } while (0)

/*
 * A 32 x 32 block of C over n_slices slices: a0 / a1 the packed A groups of
 * its two 16-row halves, b0 / b1 the packed B panels of its two 16-column
 * halves. Rows or columns past mr / nr were packed as zeros.
 */
AMX static void block_2x2(const uint16_t *a0, const uint16_t *a1, const uint32_t *b0,
                          const uint32_t *b1, int n_slices, struct c_block *cb)
{
    LOAD_C(0, 0, 0);
    LOAD_C(1, 0, 1);
    LOAD_C(2, 1, 0);
    LOAD_C(3, 1, 1);
    for (int s = 0; s < n_slices; s++) {
        const uint16_t *ah0 = a0 + (size_t)s * SLICE_BF16, *ah1 = a1 + (size_t)s * SLICE_BF16;
        const uint32_t *bh0 = b0 + (size_t)s * SLICE_BF16 / 2, *bh1 = b1 + (size_t)s * SLICE_BF16 / 2;
        /* Ah . Bh, then Ah . Bl with A still in its tiles, then Al . Bh */
        _tile_loadd(4, ah0, 64);
        _tile_loadd(7, ah1, 64);
        _tile_loadd(5, bh0, 64);
        _tile_loadd(6, bh1, 64);
        _tile_dpbf16ps(0, 4, 5);
        _tile_dpbf16ps(1, 4, 6);
        _tile_dpbf16ps(2, 7, 5);
        _tile_dpbf16ps(3, 7, 6);
        _tile_loadd(5, bh0 + 256, 64);
        _tile_loadd(6, bh1 + 256, 64);
        _tile_dpbf16ps(0, 4, 5);
        _tile_dpbf16ps(1, 4, 6);
        _tile_dpbf16ps(2, 7, 5);
        _tile_dpbf16ps(3, 7, 6);
        _tile_loadd(4, ah0 + 512, 64);
        _tile_loadd(7, ah1 + 512, 64);
        _tile_loadd(5, bh0, 64);
        _tile_loadd(6, bh1, 64);
        _tile_dpbf16ps(0, 4, 5);
        _tile_dpbf16ps(1, 4, 6);
        _tile_dpbf16ps(2, 7, 5);
        _tile_dpbf16ps(3, 7, 6);
    }
    STORE_C(0, 0, 0);
    STORE_C(1, 0, 1);
    STORE_C(2, 1, 0);
    STORE_C(3, 1, 1);
}

/* The same for a block of 16 rows (the last of a task's rows). */
AMX static void block_1x2(const uint16_t *a0, const uint32_t *b0, const uint32_t *b1,
                          int n_slices, struct c_block *cb)
{
    LOAD_C(0, 0, 0);
    LOAD_C(1, 0, 1);
    for (int s = 0; s < n_slices; s++) {
        const uint16_t *ah = a0 + (size_t)s * SLICE_BF16;
        const uint32_t *bh0 = b0 + (size_t)s * SLICE_BF16 / 2, *bh1 = b1 + (size_t)s * SLICE_BF16 / 2;
        _tile_loadd(4, ah, 64);
        _tile_loadd(7, ah + 512, 64);
        _tile_loadd(5, bh0, 64);
        _tile_loadd(6, bh1, 64);
        _tile_dpbf16ps(0, 4, 5);
        _tile_dpbf16ps(1, 4, 6);
        _tile_dpbf16ps(0, 7, 5);
        _tile_dpbf16ps(1, 7, 6);
        _tile_loadd(5, bh0 + 256, 64);
        _tile_loadd(6, bh1 + 256, 64);
        _tile_dpbf16ps(0, 4, 5);
        _tile_dpbf16ps(1, 4, 6);
    }
    STORE_C(0, 0, 0);
    STORE_C(1, 0, 1);
}

/* ------------------------------------------------------------ the block */

/*
 * sd_gemm_block on tiles: for each AMX_NC x AMX_KC block of B (packed once),
 * for each AMX_MC rows of A (packed once), each 32-row pair of A groups
 * meets every 32-column pair of B panels; with g->a_tiles A was packed
 * before, once for all tasks. g->b_packed (f32 panels) is not used: B is
 * read from g->b.
 */
AMX void sd_amx_gemm_block(const struct sd_gemm *g, int m0, int m1, int n0, int n1, float *pack_a,
                           float *pack_b)
{
    (void)pack_a;
    uint32_t *bp = (uint32_t *)pack_b;
    uint16_t *ap = (uint16_t *)(bp + (size_t)AMX_NC * AMX_KC);
    float *stage = (float *)(ap + (size_t)AMX_MC * 2 * AMX_KC);
    struct c_block cb;
    size_t shared_group = a_tiles_group_bf16(g->k);
    configure_tiles();
    for (int jc = n0; jc < n1; jc += AMX_NC) {
        int nc = n1 - jc < AMX_NC ? n1 - jc : AMX_NC;
        int n_panels = (nc + 31) / 32 * 2; /* whole 32-column pairs */
        for (int pc = 0; pc < g->k; pc += AMX_KC) {
            int kc = g->k - pc < AMX_KC ? g->k - pc : AMX_KC;
            int kcp = (kc + 31) / 32 * 32, n_slices = kcp / 32;
            size_t panel_words = (size_t)n_slices * SLICE_BF16 / 2;
            size_t group_bf16 = (size_t)n_slices * SLICE_BF16;
            for (int q = 0; q < n_panels; q++) {
                int nr = nc - 16 * q;
                nr = nr > 16 ? 16 : nr < 0 ? 0 : nr;
                uint32_t *panel = bp + (size_t)q * panel_words;
                if (nr == 0)
                    memset(panel, 0, sizeof(uint32_t) * panel_words);
                else if (g->b_kn)
                    pack_panel_kn(g, jc + 16 * q, nr, pc, kc, kcp, panel);
                else
                    pack_panel_nk(g, jc + 16 * q, nr, pc, kc, kcp, panel, stage);
            }
            int first = pc == 0;
            for (int ic = m0; ic < m1; ic += AMX_MC) {
                int mc = m1 - ic < AMX_MC ? m1 - ic : AMX_MC;
                /* A's groups: shared ones at this k-range, or this block's own */
                const uint16_t *a_at = g->a_tiles
                                           ? (const uint16_t *)g->a_tiles +
                                                 (size_t)(ic / 16) * shared_group +
                                                 (size_t)pc / 32 * SLICE_BF16
                                           : ap;
                size_t a_group = g->a_tiles ? shared_group : group_bf16;
                if (!g->a_tiles)
                    pack_a_rows(g->a, g->lda, ic, mc, (mc + 15) / 16 * 16, pc, kc, kcp, ap,
                                group_bf16);
                for (int ir = 0; ir < mc; ir += 32) {
                    const uint16_t *a0 = a_at + (size_t)(ir / 16) * a_group;
                    for (int jr = 0; jr < nc; jr += 32) {
                        const uint32_t *b0 = bp + (size_t)(jr / 16) * panel_words;
                        cb.c = g->c + (int64_t)(ic + ir) * g->ldc + jc + jr;
                        cb.ldc = g->ldc;
                        cb.mr = mc - ir < 32 ? mc - ir : 32;
                        cb.nr = nc - jr < 32 ? nc - jr : 32;
                        cb.load_c = !first || g->accumulate;
                        cb.bias = first && g->bias ? g->bias + jc + jr : NULL;
                        if (cb.mr > 16)
                            block_2x2(a0, a0 + a_group, b0, b0 + panel_words, n_slices, &cb);
                        else
                            block_1x2(a0, b0, b0 + panel_words, n_slices, &cb);
                    }
                }
            }
        }
    }
    _tile_release();
}

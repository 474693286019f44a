/*
 * backend.c - the CPU implementation of ops.h: owns the thread pool, the
 * per-thread packing/attention scratch and the kernel table picked at
 * creation (AVX-512, AVX2+FMA+F16C or scalar: the widest the CPU runs), and splits
 * each op into tasks (GEMM tiles, column chunks, row chunks, heads).
 * The arithmetic itself lives in gemm.c and kern_*.c. The functions behind
 * the table (sd_cpu_ops, at the end) resolve struct sd_mem places to host
 * addresses and call the host-pointer implementations above them.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/buffer.h"
#include "backend/cpu/cpu.h"
#include "backend/cpu/kernels.h"
#include "backend/cpu/pool.h"

/*
 * The small-m path is memory bound: each thread should stream long contiguous
 * runs of W (hardware and software prefetch stay on one stream), so a product
 * is cut into GEMV_SPLIT runs per thread of at least GEMV_MIN_COLS columns.
 */
#ifndef GEMV_SPLIT
#define GEMV_SPLIT 2
#endif
#define GEMV_MIN_COLS 64
/*
 * Up to SD_MATVEC_MAX_M rows stay on the matrix-vector kernels: the rows go
 * through in chunks of at most GEMV_CHUNK_M (what a kernel keeps in
 * registers) over a block of weight rows small enough (GEMV_BLOCK_BYTES) to
 * be re-read from L1/L2, so W still leaves memory once. Packing W for the
 * GEMM path would cost more than the products.
 */
#define GEMV_CHUNK_M 6
#define GEMV_BLOCK_BYTES (96 * 1024)
#define TILE_M 432      /* rows per GEMM task (6 x SD_MC): each task repacks its B */
#define TILE_N 256      /* columns per GEMM task */
#define ATT_QB 128      /* query rows per attention task in the blocked path */
#define ATT_DIRECT 8    /* fewer queries than this: per-row dot products */

struct cpu {
    struct sd_backend base; /* first: the table */
    int n_threads;
    const struct sd_kernels *kr; /* every entry but those ks chooses: == ks.base */
    struct sd_kernel_set ks;     /* the matrix products' tables (calibrate.c may change them) */
    int forced;                  /* SCRIBED_SIMD named the table: no calibration */
    struct sd_pool *pool;
    float **pack_a, **pack_b, **attn;
    int kv_max;
    /*
     * Shared scratch, used by one op at a time: K and V of every head packed
     * once per attention call, or a GEMM's A in the gemm table's tiles
     * (struct sd_kernels.pack_a_tiles) once per product.
     */
    float *kv_packed;
    size_t kv_packed_cap;  /* floats */
};

/* struct sd_attention with its places resolved to host addresses. */
struct host_att {
    int n_q, n_kv, n_head, d_head;
    const float *q;
    const void *k, *v;
    int64_t ldq, ldk, ldv;
    float *out;
    int64_t ldo;
    float scale;
    int causal, n_past;
    enum sd_type kv_type;
    int64_t k_head_stride, v_head_stride;
    int v_transposed;
};

static void free_per_thread(float **v, int n)
{
    if (!v)
        return;
    for (int i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static float **alloc_per_thread(int n, size_t n_floats)
{
    float **v = calloc((size_t)n, sizeof(*v));
    if (!v)
        return NULL;
    size_t bytes = (n_floats * sizeof(float) + 63) / 64 * 64;
    for (int i = 0; i < n; i++)
        if (!(v[i] = aligned_alloc(64, bytes))) {
            free_per_thread(v, n);
            return NULL;
        }
    return v;
}

/* Every kernel table, in order of preference (kernels.h). */
const struct sd_kernel_table sd_kernel_tables[] = {
#if defined(__x86_64__)
    {&sd_kernels_amx, sd_cpu_has_amx, SD_BACKEND_FORCE_SCALAR | SD_BACKEND_NO_AVX512},
    {&sd_kernels_avx512, sd_cpu_has_avx512, SD_BACKEND_FORCE_SCALAR | SD_BACKEND_NO_AVX512},
    {&sd_kernels_avx512y, sd_cpu_has_avx512, SD_BACKEND_FORCE_SCALAR | SD_BACKEND_NO_AVX512},
    {&sd_kernels_avx512np, sd_cpu_has_avx512, SD_BACKEND_FORCE_SCALAR | SD_BACKEND_NO_AVX512},
    {&sd_kernels_avx512r4, sd_cpu_has_avx512, SD_BACKEND_FORCE_SCALAR | SD_BACKEND_NO_AVX512},
    {&sd_kernels_avx512l2, sd_cpu_has_avx512, SD_BACKEND_FORCE_SCALAR | SD_BACKEND_NO_AVX512},
    {&sd_kernels_avx2, sd_cpu_has_avx2, SD_BACKEND_FORCE_SCALAR},
#elif defined(__aarch64__)
    {&sd_kernels_neon_dotprod, sd_cpu_has_neon_dotprod,
     SD_BACKEND_FORCE_SCALAR | SD_BACKEND_NO_DOTPROD},
    {&sd_kernels_neon, sd_cpu_has_neon, SD_BACKEND_FORCE_SCALAR},
#endif
    {&sd_kernels_scalar, sd_cpu_runs_scalar, 0},
};
const int sd_n_kernel_tables = (int)(sizeof(sd_kernel_tables) / sizeof(sd_kernel_tables[0]));

const struct sd_kernel_table *sd_kernel_table_named(const char *name)
{
    for (int i = 0; i < sd_n_kernel_tables; i++)
        if (!strcmp(sd_kernel_tables[i].kr->name, name))
            return &sd_kernel_tables[i];
    return NULL;
}

/* Writes "avx512, avx512y, ..., scalar", the tables this build has, for error messages. */
static void table_names(char *names, size_t size)
{
    size_t len = 0;
    names[0] = '\0';
    for (int i = 0; i < sd_n_kernel_tables && len < size; i++)
        len += (size_t)snprintf(names + len, size - len, "%s%s", i ? ", " : "",
                                sd_kernel_tables[i].kr->name);
}

/*
 * The first table the CPU runs that the flags allow; SCRIBED_SIMD=NAME starts
 * the search at that table (a CPU without it gets the next one it runs, as
 * avx2 falls back to scalar) and sets *forced.
 */
static enum sd_err pick_kernels(unsigned flags, const struct sd_kernels **kr, int *forced,
                                struct sd_error *err)
{
    int first = 0;
    const char *env = getenv("SCRIBED_SIMD");
    *forced = 0;
    if (env && *env) {
        const struct sd_kernel_table *t = sd_kernel_table_named(env);
        if (!t) {
            char names[256];
            table_names(names, sizeof(names));
            return sd_fail(err, SD_EINVAL,
                           "SCRIBED_SIMD must name a kernel table of this build (%s), got '%s'",
                           names, env);
        }
        first = (int)(t - sd_kernel_tables);
        *forced = 1;
    }
    for (int i = first; i < sd_n_kernel_tables; i++)
        if (!(sd_kernel_tables[i].ruled_out & flags) && sd_kernel_tables[i].runs()) {
            *kr = sd_kernel_tables[i].kr;
            return SD_OK;
        }
    *kr = &sd_kernels_scalar;
    return SD_OK;
}

static void cpu_destroy(struct cpu *b);

static enum sd_err cpu_create(int n_threads, unsigned flags, struct cpu **out,
                              struct sd_error *err)
{
    if (n_threads < 1 || n_threads > 256)
        return sd_fail(err, SD_EINVAL, "n_threads must be 1..256, got %d", n_threads);
    const struct sd_kernels *kr = NULL;
    int forced = 0;
    enum sd_err rc = pick_kernels(flags, &kr, &forced, err);
    if (rc != SD_OK)
        return rc;
    struct cpu *b = calloc(1, sizeof(*b));
    if (!b)
        return sd_fail(err, SD_ENOMEM, "out of memory creating the compute backend");
    b->base.ops = &sd_cpu_ops;
    b->n_threads = n_threads;
    b->kr = kr;
    b->ks = (struct sd_kernel_set){kr, kr, kr, kr};
    b->forced = forced;
    b->pack_a = alloc_per_thread(n_threads, (size_t)SD_MC * SD_KC);
    b->pack_b = alloc_per_thread(n_threads, (size_t)SD_KC * SD_NC);
    b->pool = sd_pool_create(n_threads);
    if (!b->pack_a || !b->pack_b || !b->pool) {
        cpu_destroy(b);
        return sd_fail(err, SD_ENOMEM, "cannot create the compute backend (%d threads)",
                       n_threads);
    }
    *out = b;
    return SD_OK;
}

static void cpu_destroy(struct cpu *b)
{
    if (!b)
        return;
    sd_pool_destroy(b->pool);
    free_per_thread(b->pack_a, b->n_threads);
    free_per_thread(b->pack_b, b->n_threads);
    free_per_thread(b->attn, b->n_threads);
    free(b->kv_packed);
    free(b);
}

static int cpu_n_threads(const struct cpu *b)
{
    return b->n_threads;
}

static const char *cpu_simd(const struct cpu *b)
{
    return b->kr->name;
}

void sd_cpu_get_kernels(struct sd_backend *b, struct sd_kernel_set *out)
{
    *out = ((struct cpu *)b)->ks;
}

void sd_cpu_set_kernels(struct sd_backend *b, const struct sd_kernel_set *s)
{
    ((struct cpu *)b)->ks = *s;
}

int sd_cpu_kernels_forced(const struct sd_backend *b)
{
    return ((const struct cpu *)b)->forced;
}

static enum sd_err cpu_reserve_attention(struct cpu *b, int n_kv_max, int n_state_max,
                                         struct sd_error *err)
{
    if (n_kv_max > b->kv_max) {
        float **v = alloc_per_thread(b->n_threads, (size_t)ATT_QB * (size_t)n_kv_max);
        if (!v)
            return sd_fail(err, SD_ENOMEM, "out of memory reserving attention scratch");
        free_per_thread(b->attn, b->n_threads);
        b->attn = v;
        b->kv_max = n_kv_max;
    }
    /*
     * Per head K takes ceil(n_kv/16)*16*d floats and V ceil(d/16)*16*n_kv; summed over
     * heads that is at most (n_kv+16)*S + 2*S*n_kv when d >= 16. cpu_attention checks
     * the actual need and packs per task when this is not enough.
     */
    size_t cap = 3 * ((size_t)n_kv_max + SD_NR) * (size_t)n_state_max;
    /* A tiles of the widest product a model runs: n_kv rows by the MLP's 4 * n_state */
    for (int i = 0; i < sd_n_kernel_tables; i++) {
        const struct sd_kernels *kr = sd_kernel_tables[i].kr;
        if (kr->a_tiles_bytes && sd_kernel_tables[i].runs()) {
            size_t need = kr->a_tiles_bytes(n_kv_max, 4 * n_state_max) / sizeof(float) + 16;
            cap = need > cap ? need : cap;
        }
    }
    if (n_state_max > 0 && cap > b->kv_packed_cap) {
        float *p = aligned_alloc(64, (cap * sizeof(float) + 63) / 64 * 64);
        if (!p)
            return sd_fail(err, SD_ENOMEM, "out of memory reserving attention scratch");
        free(b->kv_packed);
        b->kv_packed = p;
        b->kv_packed_cap = cap;
    }
    return SD_OK;
}

/* ------------------------------------------------------------ matmul */

#define MM_MAX 4 /* products per cpu_matmul_multi call */

/* struct sd_matmul_out with host addresses. */
struct cpu_mm_out {
    const struct sd_kweight *w;
    const float *bias;
    float *y;
    int64_t ldy;
    int accumulate;
};

struct mm_ctx {
    struct cpu *b;
    int n;                      /* products */
    struct sd_gemm g[MM_MAX];
    const struct sd_kweight *w[MM_MAX];
    int n_tiles_n[MM_MAX];
    int gemv_cols[MM_MAX];      /* small-m path: columns per task */
    int first_task[MM_MAX + 1]; /* tasks of product p: [first_task[p], first_task[p+1]) */
};

/* Columns per small-m task: n_threads * GEMV_SPLIT runs, a multiple of 8, >= GEMV_MIN_COLS. */
static int gemv_task_cols(int64_t n, int n_threads)
{
    int64_t runs = (int64_t)n_threads * GEMV_SPLIT;
    int64_t cols = (n + runs - 1) / runs;
    cols = (cols + 7) / 8 * 8;
    return (int)(cols < GEMV_MIN_COLS ? GEMV_MIN_COLS : cols);
}

static int mm_product(const struct mm_ctx *c, int *task)
{
    int p = 0;
    while (*task >= c->first_task[p + 1])
        p++;
    *task -= c->first_task[p];
    return p;
}

static void mm_gemv_task(void *arg, int task, int thread)
{
    (void)thread;
    struct mm_ctx *c = arg;
    int p = mm_product(c, &task);
    const struct sd_gemm *g = &c->g[p];
    const struct sd_kernels *kr =
        sd_type_is_quantized(c->w[p]->type) ? c->b->ks.gemv_q : c->b->ks.gemv;
    int cols = c->gemv_cols[p];
    int n0 = task * cols, n1 = n0 + cols < g->n ? n0 + cols : g->n;
    if (g->m < SD_GEMV_MAX_M) {
        kr->gemv(g->m, g->a, g->lda, c->w[p], n0, n1, g->bias, g->c, g->ldc, g->accumulate);
        return;
    }
    /* balanced row chunks (13 rows: 5 + 4 + 4) over cache-sized blocks of W */
    int n_chunks = (g->m + GEMV_CHUNK_M - 1) / GEMV_CHUNK_M;
    int64_t row_bytes = (int64_t)sd_type_bytes(c->w[p]->type, c->w[p]->ld);
    int block = (int)(GEMV_BLOCK_BYTES / (row_bytes > 0 ? row_bytes : 1)) / 8 * 8;
    if (block < 8)
        block = 8;
    for (int j0 = n0; j0 < n1; j0 += block) {
        int j1 = j0 + block < n1 ? j0 + block : n1;
        for (int q = 0, i0 = 0; q < n_chunks; q++) {
            int mi = (g->m - i0) / (n_chunks - q);
            kr->gemv(mi, g->a + (int64_t)i0 * g->lda, g->lda, c->w[p], j0, j1, g->bias,
                     g->c + (int64_t)i0 * g->ldc, g->ldc, g->accumulate);
            i0 += mi;
        }
    }
}

/* Rows [64 task, 64 task + 64) of the products' shared A into the gemm table's tiles. */
#define MM_PACK_ROWS 64
static void mm_pack_a_task(void *arg, int task, int thread)
{
    (void)thread;
    struct mm_ctx *c = arg;
    const struct sd_gemm *g = &c->g[0];
    int r0 = task * MM_PACK_ROWS, r1 = r0 + MM_PACK_ROWS < g->m ? r0 + MM_PACK_ROWS : g->m;
    c->b->ks.gemm->pack_a_tiles(g->a, g->lda, g->m, g->k, r0, r1, c->b->kv_packed);
}

/*
 * With a gemm table that packs A its own way (AMX tiles), A is packed once
 * into the shared scratch for every task of every product, when they all
 * read the same k columns and it fits; else each task packs its rows.
 */
static void mm_share_a(struct mm_ctx *c)
{
    const struct sd_kernels *kr = c->b->ks.gemm;
    if (!kr->pack_a_tiles || !kr->a_tiles_bytes)
        return;
    for (int p = 1; p < c->n; p++)
        if (c->g[p].k != c->g[0].k)
            return;
    if (kr->a_tiles_bytes(c->g[0].m, c->g[0].k) > c->b->kv_packed_cap * sizeof(float))
        return;
    sd_pool_run(c->b->pool, (c->g[0].m + MM_PACK_ROWS - 1) / MM_PACK_ROWS, mm_pack_a_task, c);
    for (int p = 0; p < c->n; p++)
        c->g[p].a_tiles = c->b->kv_packed;
}

static void mm_tile_task(void *arg, int task, int thread)
{
    struct mm_ctx *c = arg;
    int p = mm_product(c, &task);
    const struct sd_gemm *g = &c->g[p];
    int tm = task / c->n_tiles_n[p], tn = task % c->n_tiles_n[p];
    int m0 = tm * TILE_M, m1 = m0 + TILE_M < g->m ? m0 + TILE_M : g->m;
    int n0 = tn * TILE_N, n1 = n0 + TILE_N < g->n ? n0 + TILE_N : g->n;
    sd_gemm_block(c->b->ks.gemm, g, m0, m1, n0, n1, c->b->pack_a[thread],
                  c->b->pack_b[thread]);
}

static void cpu_matmul_multi(struct cpu *b, const float *x, int m, int64_t ldx, int n,
                        const struct cpu_mm_out *outs)
{
    if (n > MM_MAX) { /* split: a fixed-size context keeps this allocation-free */
        cpu_matmul_multi(b, x, m, ldx, MM_MAX, outs);
        cpu_matmul_multi(b, x, m, ldx, n - MM_MAX, outs + MM_MAX);
        return;
    }
    struct mm_ctx c = {.b = b, .n = n};
    int small = m <= SD_MATVEC_MAX_M, n_tasks = 0;
    for (int p = 0; p < n; p++) {
        const struct sd_kweight *w = outs[p].w;
        c.g[p] = (struct sd_gemm){.m = m, .n = (int)w->n, .k = (int)w->k, .a = x, .lda = ldx,
                                  .btype = w->type, .b = w->data, .ldb = w->ld,
                                  .bias = outs[p].bias, .c = outs[p].y, .ldc = outs[p].ldy,
                                  .accumulate = outs[p].accumulate};
        c.w[p] = w;
        c.n_tiles_n[p] = (int)((w->n + TILE_N - 1) / TILE_N);
        c.gemv_cols[p] = gemv_task_cols(w->n, b->n_threads);
        c.first_task[p] = n_tasks;
        if (m > 0)
            n_tasks += small ? (int)((w->n + c.gemv_cols[p] - 1) / c.gemv_cols[p])
                             : c.n_tiles_n[p] * ((m + TILE_M - 1) / TILE_M);
    }
    c.first_task[n] = n_tasks;
    if (n_tasks == 0)
        return;
    if (small) {
        sd_pool_run_small(b->pool, n_tasks, mm_gemv_task, &c);
    } else {
        mm_share_a(&c);
        sd_pool_run(b->pool, n_tasks, mm_tile_task, &c);
    }
}

static void cpu_matmul(struct cpu *b, const float *x, int m, int64_t ldx,
                  const struct sd_kweight *w, const float *bias, float *y, int64_t ldy,
                  int accumulate)
{
    struct cpu_mm_out o = {w, bias, y, ldy, accumulate};
    cpu_matmul_multi(b, x, m, ldx, 1, &o);
}

/*
 * Dispatch by the size of a cheap (memory-bound) job in elements: tiny ones
 * are not worth waking a worker for, small ones (decoder steps) fall back to
 * the caller alone while the machine is oversubscribed.
 */
static void run_sized(struct cpu *b, int n_tasks, sd_pool_fn fn, void *ctx, size_t work)
{
    if (work < 16384) {
        for (int t = 0; t < n_tasks; t++)
            fn(ctx, t, 0);
    } else if (work < 262144) {
        sd_pool_run_small(b->pool, n_tasks, fn, ctx);
    } else {
        sd_pool_run(b->pool, n_tasks, fn, ctx);
    }
}

/* --------------------------------------------------- row-wise ops */

struct rows_ctx {
    struct cpu *b;
    const float *x;
    float *y;
    int m, n, rows_per_task;
    const float *g, *beta;
    float eps;
    const struct sd_kweight *w;
    const int32_t *ids;
};

static int rows_tasks(struct cpu *b, int m, int *per)
{
    int n_tasks = 4 * b->n_threads < m ? 4 * b->n_threads : m;
    *per = (m + n_tasks - 1) / n_tasks;
    return (m + *per - 1) / *per;
}

static void ln_task(void *arg, int task, int thread)
{
    (void)thread;
    struct rows_ctx *c = arg;
    int r0 = task * c->rows_per_task, r1 = r0 + c->rows_per_task < c->m ? r0 + c->rows_per_task
                                                                        : c->m;
    for (int r = r0; r < r1; r++)
        c->b->kr->layer_norm(c->x + (int64_t)r * c->n, c->n, c->g, c->beta, c->eps,
                             c->y + (int64_t)r * c->n);
}

static void cpu_layer_norm(struct cpu *b, const float *x, int m, int n, const float *gamma,
                      const float *beta, float eps, float *y)
{
    struct rows_ctx c = {.b = b, .x = x, .y = y, .m = m, .n = n, .g = gamma, .beta = beta,
                         .eps = eps};
    if (m <= 0)
        return;
    run_sized(b, rows_tasks(b, m, &c.rows_per_task), ln_task, &c, (size_t)m * (size_t)n);
}

static void softmax_task(void *arg, int task, int thread)
{
    (void)thread;
    struct rows_ctx *c = arg;
    int r0 = task * c->rows_per_task, r1 = r0 + c->rows_per_task < c->m ? r0 + c->rows_per_task
                                                                        : c->m;
    for (int r = r0; r < r1; r++) {
        float *row = c->y + (int64_t)r * c->n;
        float s = c->b->kr->softmax_exp(row, c->n, 1.0f);
        c->b->kr->scale(1.0f / s, row, c->n);
    }
}

static void cpu_softmax(struct cpu *b, float *x, int m, int n)
{
    struct rows_ctx c = {.b = b, .y = x, .m = m, .n = n};
    if (m <= 0 || n <= 0)
        return;
    run_sized(b, rows_tasks(b, m, &c.rows_per_task), softmax_task, &c, (size_t)m * (size_t)n);
}

static float cpu_logsumexp(struct cpu *b, const float *x, int n)
{
    return n > 0 ? b->kr->logsumexp(x, n) : -INFINITY;
}

static void get_rows_task(void *arg, int task, int thread)
{
    (void)thread;
    struct rows_ctx *c = arg;
    const struct sd_kweight *w = c->w;
    size_t row_bytes = sd_type_bytes(w->type, w->ld);
    const uint8_t *src = (const uint8_t *)w->data + (size_t)c->ids[task] * row_bytes;
    c->b->kr->to_f32(src, w->type, c->y + (int64_t)task * w->k, w->k);
}

static void cpu_get_rows(struct cpu *b, const struct sd_kweight *w, const int32_t *ids, int n,
                    float *out)
{
    struct rows_ctx c = {.b = b, .y = out, .w = w, .ids = ids};
    for (int i = 0; i < n; i++) /* run inline: a few rows are not worth a wake-up */
        get_rows_task(&c, i, 0);
}

/* ------------------------------------------------- element-wise ops */

#define EW_CHUNK 16384

struct ew_ctx {
    struct cpu *b;
    float *y;
    const float *x;
    size_t n;
};

static void gelu_task(void *arg, int task, int thread)
{
    (void)thread;
    struct ew_ctx *c = arg;
    size_t i0 = (size_t)task * EW_CHUNK, n = c->n - i0 < EW_CHUNK ? c->n - i0 : EW_CHUNK;
    c->b->kr->gelu(c->y + i0, (int64_t)n);
}

static void add_task(void *arg, int task, int thread)
{
    (void)thread;
    struct ew_ctx *c = arg;
    size_t i0 = (size_t)task * EW_CHUNK, n = c->n - i0 < EW_CHUNK ? c->n - i0 : EW_CHUNK;
    c->b->kr->add(c->y + i0, c->x + i0, (int64_t)n);
}

static void cpu_gelu(struct cpu *b, float *x, size_t n)
{
    struct ew_ctx c = {b, x, NULL, n};
    run_sized(b, (int)((n + EW_CHUNK - 1) / EW_CHUNK), gelu_task, &c, n);
}

static void cpu_add(struct cpu *b, float *y, const float *x, size_t n)
{
    struct ew_ctx c = {b, y, x, n};
    run_sized(b, (int)((n + EW_CHUNK - 1) / EW_CHUNK), add_task, &c, n);
}

/* --------------------------------------------------------- attention */

struct att_ctx {
    struct cpu *b;
    const struct host_att *a;
    int n_qb;
    float *packed;           /* NULL: every task packs its own K/V */
    size_t packed_per_head;  /* floats */
};

static int att_n_keys(const struct host_att *a, int i)
{
    if (!a->causal)
        return a->n_kv;
    int n = a->n_past + i + 1;
    return n < a->n_kv ? n : a->n_kv;
}

static int64_t head_stride(int64_t given, int d)
{
    return given ? given : d;
}

static size_t kv_esize(const struct host_att *a)
{
    return a->kv_type == SD_TYPE_F16 ? 2 : 4;
}

/* One (head, query row): the fused single-query kernel. */
static void att_direct_task(void *arg, int task, int thread)
{
    struct att_ctx *c = arg;
    const struct host_att *a = c->a;
    /* queries of one head are consecutive tasks: its K/V stay in cache between them */
    int h = task / a->n_q, i = task % a->n_q, d = a->d_head;
    size_t es = kv_esize(a);
    const uint8_t *k = (const uint8_t *)a->k + (size_t)(h * head_stride(a->k_head_stride, d)) * es;
    const uint8_t *v = (const uint8_t *)a->v + (size_t)(h * head_stride(a->v_head_stride, d)) * es;
    c->b->kr->attn_row(a->q + (int64_t)i * a->ldq + h * d, k, a->ldk, v, a->ldv, a->kv_type,
                       att_n_keys(a, i), d, a->scale, c->b->attn[thread],
                       a->out + (int64_t)i * a->ldo + h * d);
}

/*
 * One head, all n_q (< ATT_DIRECT) queries, V dims-major: both products are
 * small-m matrix-vector passes (S = Q_h K_h^T over K's rows, then O = P V_h
 * over V's rows), so each K and V row is converted once for all queries.
 */
static void att_gemv_task(void *arg, int task, int thread)
{
    struct att_ctx *c = arg;
    const struct host_att *a = c->a;
    const struct sd_kernels *kr = c->b->kr;
    int h = task, d = a->d_head;
    size_t es = kv_esize(a);
    float *s = c->b->attn[thread];
    struct sd_kweight kw = {a->kv_type,
                           (const uint8_t *)a->k + (size_t)(h * head_stride(a->k_head_stride, d)) *
                                                     es,
                           a->n_kv, d, a->ldk};
    struct sd_kweight vw = {a->kv_type, (const uint8_t *)a->v + (size_t)h * a->v_head_stride * es,
                           d, a->n_kv, a->ldv};
    kr->gemv(a->n_q, a->q + h * d, a->ldq, &kw, 0, a->n_kv, NULL, s, a->n_kv, 0);
    float inv[ATT_DIRECT];
    for (int i = 0; i < a->n_q; i++)
        inv[i] = 1.0f / kr->softmax_exp(s + (int64_t)i * a->n_kv, a->n_kv, a->scale);
    kr->gemv(a->n_q, s, a->n_kv, &vw, 0, d, NULL, a->out + h * d, a->ldo, 0);
    for (int i = 0; i < a->n_q; i++)
        kr->scale(inv[i], a->out + (int64_t)i * a->ldo + h * d, d);
}

/* The two GEMMs of head h: S = Q_h K_h^T for rows [i0, i1), then O = P V_h. */
static struct sd_gemm att_scores_gemm(const struct host_att *a, int h, int i0, int i1,
                                      int nk_max, float *s)
{
    int d = a->d_head;
    size_t es = kv_esize(a);
    const uint8_t *k = (const uint8_t *)a->k + (size_t)(h * head_stride(a->k_head_stride, d)) * es;
    return (struct sd_gemm){.m = i1 - i0, .n = nk_max, .k = d,
                            .a = a->q + (int64_t)i0 * a->ldq + h * d, .lda = a->ldq,
                            .btype = a->kv_type, .b = k, .ldb = a->ldk, .c = s, .ldc = nk_max};
}

static struct sd_gemm att_values_gemm(const struct host_att *a, int h, int i0, int i1,
                                      int nk_max, const float *s)
{
    int d = a->d_head;
    size_t es = kv_esize(a);
    if (a->v_transposed) { /* V stored [d][n_kv]: B in the weights' [n][k] layout */
        const uint8_t *vt = (const uint8_t *)a->v + (size_t)h * a->v_head_stride * es;
        return (struct sd_gemm){.m = i1 - i0, .n = d, .k = nk_max, .a = s, .lda = nk_max,
                                .btype = a->kv_type, .b = vt, .ldb = a->ldv,
                                .c = a->out + (int64_t)i0 * a->ldo + h * d, .ldc = a->ldo};
    }
    const uint8_t *v = (const uint8_t *)a->v + (size_t)(h * head_stride(a->v_head_stride, d)) * es;
    return (struct sd_gemm){.m = i1 - i0, .n = d, .k = nk_max, .a = s, .lda = nk_max,
                            .btype = a->kv_type, .b = v, .ldb = a->ldv, .b_kn = 1,
                            .c = a->out + (int64_t)i0 * a->ldo + h * d, .ldc = a->ldo};
}

/* Shared pre-packed K and V of head h (when att_ctx.packed is set). */
static float *att_packed_k(const struct att_ctx *c, int h)
{
    return c->packed + (size_t)h * c->packed_per_head;
}

static float *att_packed_v(const struct att_ctx *c, int h)
{
    return att_packed_k(c, h) + sd_gemm_packed_floats(c->a->n_kv, c->a->d_head);
}

/* Task 2h packs K of head h, task 2h+1 its V, for all query blocks to share. */
static void att_pack_task(void *arg, int task, int thread)
{
    (void)thread;
    struct att_ctx *c = arg;
    const struct host_att *a = c->a;
    int h = task / 2;
    if (task % 2 == 0) {
        struct sd_gemm g = att_scores_gemm(a, h, 0, 1, a->n_kv, NULL);
        sd_gemm_pack_b(c->b->kr, &g, att_packed_k(c, h));
    } else {
        struct sd_gemm g = att_values_gemm(a, h, 0, 1, a->n_kv, NULL);
        sd_gemm_pack_b(c->b->kr, &g, att_packed_v(c, h));
    }
}

/* One (head, block of ATT_QB queries): S = Q K^T by GEMM, softmax rows, O = P V by GEMM. */
static void att_block_task(void *arg, int task, int thread)
{
    struct att_ctx *c = arg;
    const struct host_att *a = c->a;
    const struct sd_kernels *kr = c->b->kr;
    int h = task / c->n_qb, qb = task % c->n_qb;
    int i0 = qb * ATT_QB, i1 = i0 + ATT_QB < a->n_q ? i0 + ATT_QB : a->n_q;
    int nk_max = att_n_keys(a, i1 - 1);
    float *s = c->b->attn[thread];
    struct sd_gemm g = att_scores_gemm(a, h, i0, i1, nk_max, s);
    if (c->packed)
        g.b_packed = att_packed_k(c, h); /* keys past nk_max are packed but not computed */
    sd_gemm_block(kr, &g, 0, g.m, 0, g.n, c->b->pack_a[thread], c->b->pack_b[thread]);
    for (int r = 0; r < i1 - i0; r++) {
        float *row = s + (int64_t)r * nk_max;
        int nk = att_n_keys(a, i0 + r);
        float sum = kr->softmax_exp(row, nk, a->scale);
        kr->scale(1.0f / sum, row, nk);
        memset(row + nk, 0, sizeof(float) * (size_t)(nk_max - nk));
    }
    struct sd_gemm g2 = att_values_gemm(a, h, i0, i1, nk_max, s);
    if (c->packed && nk_max == a->n_kv)
        g2.b_packed = att_packed_v(c, h); /* packed over all n_kv keys: only when k matches */
    sd_gemm_block(kr, &g2, 0, g2.m, 0, g2.n, c->b->pack_a[thread], c->b->pack_b[thread]);
}

static void cpu_attention(struct cpu *b, const struct host_att *a)
{
    struct att_ctx c = {b, a, (a->n_q + ATT_QB - 1) / ATT_QB, NULL, 0};
    if (a->n_q <= 0 || a->n_kv > b->kv_max)
        return; /* n_kv beyond the reservation is a caller bug; whisper.c checks it */
    if (a->n_q < ATT_DIRECT && a->v_transposed && !a->causal) {
        sd_pool_run_small(b->pool, a->n_head, att_gemv_task, &c);
        return;
    }
    if (a->n_q < ATT_DIRECT && !a->v_transposed) {
        sd_pool_run_small(b->pool, a->n_head * a->n_q, att_direct_task, &c);
        return;
    }
    c.packed_per_head = sd_gemm_packed_floats(a->n_kv, a->d_head) +
                        sd_gemm_packed_floats(a->d_head, a->n_kv);
    /* a table with its own GEMM block (AMX) reads K and V where they are */
    if (c.n_qb > 1 && !b->kr->gemm_block && c.packed_per_head * (size_t)a->n_head <= b->kv_packed_cap) {
        c.packed = b->kv_packed;
        sd_pool_run(b->pool, 2 * a->n_head, att_pack_task, &c);
    }
    sd_pool_run(b->pool, a->n_head * c.n_qb, att_block_task, &c);
}

static void cpu_attention_logits(struct cpu *b, const struct host_att *a, int head,
                            float *out, int64_t ldo)
{
    int d = a->d_head;
    if (a->n_q <= 0 || a->n_kv <= 0)
        return;
    const uint8_t *k =
        (const uint8_t *)a->k + (size_t)(head * head_stride(a->k_head_stride, d)) * kv_esize(a);
    struct sd_kweight w = {a->kv_type, k, a->n_kv, d, a->ldk};
    cpu_matmul(b, a->q + (int64_t)head * d, a->n_q, a->ldq, &w, NULL, out, ldo, 0);
    for (int i = 0; i < a->n_q; i++)
        b->kr->scale(a->scale, out + (int64_t)i * ldo, a->n_kv);
}

struct heads_ctx {
    struct cpu *b;
    const float *src;
    uint16_t *dst;
    int n_rows, n_head, d, rows_per_task;
};

static void heads_task(void *arg, int task, int thread)
{
    (void)thread;
    struct heads_ctx *c = arg;
    int t0 = task * c->rows_per_task;
    int t1 = t0 + c->rows_per_task < c->n_rows ? t0 + c->rows_per_task : c->n_rows;
    int64_t S = (int64_t)c->n_head * c->d;
    for (int h = 0; h < c->n_head; h++)
        for (int t = t0; t < t1; t++)
            c->b->kr->to_f16(c->src + t * S + h * c->d,
                             c->dst + ((int64_t)h * c->n_rows + t) * c->d, c->d);
}

#define HT_BLOCK 64 /* timesteps transposed per step of heads_transposed_task */

/*
 * Head h of heads_transposed: dst[h][c][t] for all t, c, HT_BLOCK timesteps
 * at a time transposed in f32 through the thread's attention scratch, then
 * converted a row run at a time (once per window, not per token).
 */
static void heads_transposed_task(void *arg, int task, int thread)
{
    struct heads_ctx *c = arg;
    int h = task, d = c->d;
    int64_t S = (int64_t)c->n_head * d;
    float *blk = c->b->attn[thread]; /* ATT_QB * kv_max >= d * HT_BLOCK floats (checked) */
    for (int t0 = 0; t0 < c->n_rows; t0 += HT_BLOCK) {
        int nt = c->n_rows - t0 < HT_BLOCK ? c->n_rows - t0 : HT_BLOCK;
        for (int t = 0; t < nt; t++)
            for (int ch = 0; ch < d; ch++)
                blk[ch * HT_BLOCK + t] = c->src[(t0 + t) * S + h * d + ch];
        for (int ch = 0; ch < d; ch++)
            c->b->kr->to_f16(blk + ch * HT_BLOCK, c->dst + ((int64_t)h * d + ch) * c->n_rows + t0,
                             nt);
    }
}

static void cpu_to_f16_heads_transposed(struct cpu *b, const float *src, int n_rows,
                                   int n_head, int d, uint16_t *dst)
{
    struct heads_ctx c = {b, src, dst, n_rows, n_head, d, 0};
    if (n_rows <= 0)
        return;
    if (!b->attn || (size_t)ATT_QB * (size_t)b->kv_max < (size_t)d * HT_BLOCK) {
        for (int h = 0; h < n_head; h++) /* no scratch reserved: the plain gather */
            for (int ch = 0; ch < d; ch++)
                for (int t = 0; t < n_rows; t++)
                    dst[((int64_t)h * d + ch) * n_rows + t] =
                        sd_f32_to_f16(src[(int64_t)t * n_head * d + h * d + ch]);
        return;
    }
    sd_pool_run(b->pool, n_head, heads_transposed_task, &c);
}

static void cpu_to_f16_heads(struct cpu *b, const float *src, int n_rows, int n_head, int d,
                        uint16_t *dst)
{
    struct heads_ctx c = {b, src, dst, n_rows, n_head, d, 0};
    if (n_rows <= 0)
        return;
    run_sized(b, rows_tasks(b, n_rows, &c.rows_per_task), heads_task, &c,
              (size_t)n_rows * (size_t)n_head * (size_t)d);
}

/* ------------------------------------------------------------- conv */

struct im2col_ctx {
    const float *in;
    float *col;
    int c_in, t_in, t_out, stride, channels_first, rows_per_task;
};

static void im2col_task(void *arg, int task, int thread)
{
    (void)thread;
    struct im2col_ctx *c = arg;
    int t0 = task * c->rows_per_task;
    int t1 = t0 + c->rows_per_task < c->t_out ? t0 + c->rows_per_task : c->t_out;
    for (int t = t0; t < t1; t++) {
        float *dst = c->col + (int64_t)t * 3 * c->c_in;
        for (int kk = 0; kk < 3; kk++) {
            int ti = t * c->stride + kk - 1;
            int ok = ti >= 0 && ti < c->t_in;
            if (c->channels_first) {
                for (int ch = 0; ch < c->c_in; ch++)
                    dst[ch * 3 + kk] = ok ? c->in[(int64_t)ch * c->t_in + ti] : 0.0f;
            } else {
                const float *src = c->in + (int64_t)ti * c->c_in;
                for (int ch = 0; ch < c->c_in; ch++)
                    dst[ch * 3 + kk] = ok ? src[ch] : 0.0f;
            }
        }
    }
}

static void cpu_conv1d_k3(struct cpu *b, const float *in, int c_in, int t_in,
                     int channels_first, const struct sd_kweight *wv, const float *bias,
                     int stride, float *out, float *col)
{
    int t_out = (t_in - 1) / stride + 1;
    struct im2col_ctx c = {in, col, c_in, t_in, t_out, stride, channels_first, 0};
    int n_tasks = rows_tasks(b, t_out, &c.rows_per_task);
    sd_pool_run(b->pool, n_tasks, im2col_task, &c);
    cpu_matmul(b, col, t_out, 3 * (int64_t)c_in, wv, bias, out, wv->n, 0);
}

/* ------------------------------------------------- the table (ops.h) */

static struct cpu *C(struct sd_backend *b)
{
    return (struct cpu *)b;
}

static float *F(struct sd_mem m)
{
    return sd_buffer_host(m);
}

static struct sd_kweight kweight(const struct sd_weight *w)
{
    return (struct sd_kweight){w->type, sd_buffer_host(w->data), w->n, w->k, w->ld};
}

static struct host_att host_att(const struct sd_attention *a)
{
    return (struct host_att){a->n_q, a->n_kv, a->n_head, a->d_head, F(a->q),
                             sd_buffer_host(a->k), sd_buffer_host(a->v), a->ldq, a->ldk, a->ldv,
                             F(a->out), a->ldo, a->scale, a->causal, a->n_past, a->kv_type,
                             a->k_head_stride, a->v_head_stride, a->v_transposed};
}

static struct sd_mem wrap(void *p, size_t n_bytes, enum sd_buffer_kind kind)
{
    struct sd_buffer *buf = calloc(1, sizeof(*buf));
    if (!buf)
        return (struct sd_mem){0};
    *buf = (struct sd_buffer){.ptr = p, .size = n_bytes, .kind = kind};
    return (struct sd_mem){buf, 0};
}

/* The CPU computes on the host copy in place: the mapping is the "upload". */
static enum sd_err op_upload(const void *host, size_t n_bytes, struct sd_mem *out,
                             struct sd_error *err)
{
    *out = wrap((void *)host, n_bytes, SD_BUF_BORROWED);
    if (!out->buf)
        return sd_fail(err, SD_ENOMEM, "out of memory uploading the weights");
    return SD_OK;
}

static void op_release(struct sd_mem m)
{
    free(m.buf);
}

enum sd_err sd_cpu_backend_create(int n_threads, unsigned flags, struct sd_backend **out,
                                  struct sd_error *err)
{
    struct cpu *b = NULL;
    enum sd_err rc = cpu_create(n_threads, flags, &b, err);
    if (rc == SD_OK)
        *out = &b->base;
    return rc;
}

static void op_destroy(struct sd_backend *b)
{
    cpu_destroy(C(b));
}

static int op_n_threads(const struct sd_backend *b)
{
    return cpu_n_threads((const struct cpu *)b);
}

static const char *op_simd(const struct sd_backend *b)
{
    return cpu_simd((const struct cpu *)b);
}

static enum sd_err op_use_kernels(struct sd_backend *b, const char *choice,
                                  struct sd_error *err)
{
    struct cpu *c = C(b);
    if (c->forced)
        return SD_OK; /* SCRIBED_SIMD wins over a calibrated choice */
    struct sd_kernel_set s;
    enum sd_err rc = sd_cpu_parse_choice(choice, &c->ks, &s, err);
    if (rc == SD_OK)
        c->ks = s;
    return rc;
}

static struct sd_mem op_alloc(struct sd_backend *b, size_t n_bytes)
{
    (void)b;
    size_t rounded = (n_bytes + 63) / 64 * 64;
    void *p = aligned_alloc(64, rounded ? rounded : 64);
    if (!p)
        return (struct sd_mem){0};
    memset(p, 0, rounded ? rounded : 64);
    struct sd_mem m = wrap(p, n_bytes, SD_BUF_OWNED);
    if (!m.buf)
        free(p);
    return m;
}

static void op_free(struct sd_backend *b, struct sd_mem m)
{
    (void)b;
    if (m.buf->kind == SD_BUF_HOST)
        return; /* sd_cpu_mem: nothing was allocated */
    if (m.buf->kind == SD_BUF_OWNED)
        free(m.buf->ptr);
    free(m.buf);
}

static void op_copy_in(struct sd_backend *b, struct sd_mem dst, const void *src, size_t n)
{
    (void)b;
    memcpy(sd_buffer_host(dst), src, n);
}

static void op_copy_out(struct sd_backend *b, void *dst, struct sd_mem src, size_t n)
{
    (void)b;
    memcpy(dst, sd_buffer_host(src), n);
}

static void op_copy(struct sd_backend *b, struct sd_mem dst, struct sd_mem src, size_t n)
{
    (void)b;
    memcpy(sd_buffer_host(dst), sd_buffer_host(src), n);
}

static enum sd_err op_reserve_attention(struct sd_backend *b, int n_kv_max, int n_state_max,
                                        struct sd_error *err)
{
    return cpu_reserve_attention(C(b), n_kv_max, n_state_max, err);
}

static void op_matmul_multi(struct sd_backend *b, struct sd_mem x, int m, int64_t ldx, int n,
                            const struct sd_matmul_out *outs)
{
    struct sd_kweight w[MM_MAX];
    struct cpu_mm_out o[MM_MAX];
    for (int done = 0; done < n; done += MM_MAX) {
        int k = n - done < MM_MAX ? n - done : MM_MAX;
        for (int p = 0; p < k; p++) {
            const struct sd_matmul_out *src = &outs[done + p];
            w[p] = kweight(src->w);
            o[p] = (struct cpu_mm_out){&w[p], F(src->bias), F(src->y), src->ldy,
                                       src->accumulate};
        }
        cpu_matmul_multi(C(b), F(x), m, ldx, k, o);
    }
}

static void op_layer_norm(struct sd_backend *b, struct sd_mem x, int m, int n,
                          struct sd_mem gamma, struct sd_mem beta, float eps, struct sd_mem y)
{
    cpu_layer_norm(C(b), F(x), m, n, F(gamma), F(beta), eps, F(y));
}

static void op_gelu(struct sd_backend *b, struct sd_mem x, size_t n)
{
    cpu_gelu(C(b), F(x), n);
}

static void op_add(struct sd_backend *b, struct sd_mem y, struct sd_mem x, size_t n)
{
    cpu_add(C(b), F(y), F(x), n);
}

static void op_softmax(struct sd_backend *b, struct sd_mem x, int m, int n)
{
    cpu_softmax(C(b), F(x), m, n);
}

static float op_logsumexp(struct sd_backend *b, const float *host_x, int n)
{
    return cpu_logsumexp(C(b), host_x, n);
}

static void op_get_rows(struct sd_backend *b, const struct sd_weight *w, const int32_t *ids,
                        int n, struct sd_mem out)
{
    struct sd_kweight kw = kweight(w);
    cpu_get_rows(C(b), &kw, ids, n, F(out));
}

static void op_attention(struct sd_backend *b, const struct sd_attention *a)
{
    struct host_att h = host_att(a);
    cpu_attention(C(b), &h);
}

static void op_attention_logits(struct sd_backend *b, const struct sd_attention *a, int head,
                                struct sd_mem out, int64_t ldo)
{
    struct host_att h = host_att(a);
    cpu_attention_logits(C(b), &h, head, F(out), ldo);
}

static void op_to_f16_heads(struct sd_backend *b, struct sd_mem src, int n_rows, int n_head,
                            int d, struct sd_mem dst)
{
    cpu_to_f16_heads(C(b), F(src), n_rows, n_head, d, sd_buffer_host(dst));
}

static void op_to_f16_heads_transposed(struct sd_backend *b, struct sd_mem src, int n_rows,
                                       int n_head, int d, struct sd_mem dst)
{
    cpu_to_f16_heads_transposed(C(b), F(src), n_rows, n_head, d, sd_buffer_host(dst));
}

static void op_conv1d_k3(struct sd_backend *b, struct sd_mem in, int c_in, int t_in,
                         int channels_first, const struct sd_weight *w, struct sd_mem bias,
                         int stride, struct sd_mem out, struct sd_mem col)
{
    struct sd_kweight kw = kweight(w);
    cpu_conv1d_k3(C(b), F(in), c_in, t_in, channels_first, &kw, F(bias), stride, F(out),
                  F(col));
}

struct sd_mem sd_cpu_mem(const void *host)
{
    static struct sd_buffer host_window = {.ptr = NULL, .size = SIZE_MAX, .kind = SD_BUF_HOST};
    return (struct sd_mem){&host_window, (uintptr_t)host};
}

const struct sd_backend_ops sd_cpu_ops = {
    .name = "cpu",
    .upload = op_upload,
    .release = op_release,
    .create = sd_cpu_backend_create,
    .destroy = op_destroy,
    .n_threads = op_n_threads,
    .simd = op_simd,
    .calibrate = sd_cpu_calibrate,
    .use_kernels = op_use_kernels,
    .alloc = op_alloc,
    .free = op_free,
    .copy_in = op_copy_in,
    .copy_out = op_copy_out,
    .copy = op_copy,
    .reserve_attention = op_reserve_attention,
    .matmul_multi = op_matmul_multi,
    .layer_norm = op_layer_norm,
    .gelu = op_gelu,
    .add = op_add,
    .softmax = op_softmax,
    .logsumexp = op_logsumexp,
    .get_rows = op_get_rows,
    .attention = op_attention,
    .attention_logits = op_attention_logits,
    .to_f16_heads = op_to_f16_heads,
    .to_f16_heads_transposed = op_to_f16_heads_transposed,
    .conv1d_k3 = op_conv1d_k3,
};

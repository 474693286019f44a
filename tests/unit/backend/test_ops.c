/*
 * test_ops.c - every op of backend/ops.h against a naive double-precision
 * reference, for the scalar kernels and (where the CPU has them) the AVX2
 * and AVX-512 kernels, with 1 and 3 threads, over shapes that hit the GEMM edge cases
 * (partial register tiles, K not a multiple of the block, small-m path).
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/cpu.h"
#include "backend/cpu/kernels.h"
#include "backend/ops.h"
#include "check.h"

/* The CPU backend computes on the test's own arrays: H names host memory. */
#define H(p) sd_cpu_mem(p)

static uint64_t rng_state = 12345;

static float frand(void)
{
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((double)(rng_state >> 40) / (double)(1ull << 24) * 2.0 - 1.0);
}

static float *rand_vec(size_t n)
{
    float *v = malloc(n * sizeof(float) + 1);
    for (size_t i = 0; i < n; i++)
        v[i] = frand();
    return v;
}

/* Every kernel table this CPU runs (kernels.h), each with 1 and 3 threads. */
#define MAX_BACKENDS 32

/* Backends to try: every kernel table this CPU runs, forced by SCRIBED_SIMD, 1 and 3 threads. */
static int make_backends(struct sd_backend *out[MAX_BACKENDS])
{
    int n = 0;
    struct sd_error err;
    for (int i = 0; i < sd_n_kernel_tables && n + 2 <= MAX_BACKENDS; i++) {
        if (!sd_kernel_tables[i].runs())
            continue;
        setenv("SCRIBED_SIMD", sd_kernel_tables[i].kr->name, 1);
        for (int t = 1; t <= 3; t += 2) {
            CHECK_OK(sd_cpu_backend_create(t, 0, &out[n], &err), &err);
            CHECK_STR(sd_backend_simd(out[n]), sd_kernel_tables[i].kr->name);
            CHECK_OK(sd_backend_reserve_attention(out[n], 1600, n % 2 ? 64 : 512, &err), &err);
            n++;
        }
        unsetenv("SCRIBED_SIMD");
    }
    return n;
}

static void free_backends(struct sd_backend **b, int n)
{
    for (int i = 0; i < n; i++)
        sd_backend_destroy(b[i]);
}

static double max_rel_err(const float *got, const double *want, size_t n)
{
    double worst = 0.0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs(got[i] - want[i]) / (1.0 + fabs(want[i]));
        if (!(e <= worst))
            worst = e; /* also catches NaN */
    }
    return worst;
}

TEST(backend_simd_selection)
{
    struct sd_backend *b;
    struct sd_error err;
    CHECK_OK(sd_cpu_backend_create(2, SD_BACKEND_FORCE_SCALAR, &b, &err), &err);
    CHECK_STR(sd_backend_simd(b), "scalar");
    CHECK_EQ_INT(sd_backend_n_threads(b), 2);
    sd_backend_destroy(b);
    const char *widest = sd_cpu_has_amx()           ? "amx"
                         : sd_cpu_has_avx512()        ? "avx512"
                         : sd_cpu_has_avx2()          ? "avx2"
                         : sd_cpu_has_neon_dotprod()  ? "neon-dotprod"
                         : sd_cpu_has_neon()          ? "neon"
                                                      : "scalar";
    /* tests/arm64/run.sh names the table each emulated CPU model must get */
    const char *expect = getenv("SCRIBED_TEST_WIDEST_SIMD");
    if (expect)
        CHECK_STR(widest, expect);
    CHECK_OK(sd_cpu_backend_create(1, 0, &b, &err), &err);
    CHECK_STR(sd_backend_simd(b), widest);
    sd_backend_destroy(b);
    if (sd_cpu_has_neon()) {
        CHECK_OK(sd_cpu_backend_create(1, SD_BACKEND_NO_DOTPROD, &b, &err), &err);
        CHECK_STR(sd_backend_simd(b), "neon");
        sd_backend_destroy(b);
        setenv("SCRIBED_SIMD", "neon", 1);
        CHECK_OK(sd_cpu_backend_create(1, 0, &b, &err), &err);
        CHECK_STR(sd_backend_simd(b), "neon");
        sd_backend_destroy(b);
        unsetenv("SCRIBED_SIMD");
    }
    /* the x86 cap: AVX2 where present; no effect on the AArch64 tables */
    const char *capped = sd_cpu_has_avx2() ? "avx2" : sd_cpu_has_neon() ? widest : "scalar";
    CHECK_OK(sd_cpu_backend_create(1, SD_BACKEND_NO_AVX512, &b, &err), &err);
    CHECK_STR(sd_backend_simd(b), capped);
    sd_backend_destroy(b);
    setenv("SCRIBED_SIMD", "scalar", 1);
    CHECK_OK(sd_cpu_backend_create(1, 0, &b, &err), &err);
    CHECK_STR(sd_backend_simd(b), "scalar");
    sd_backend_destroy(b);
    /* a table this build lacks (avx2 on AArch64) is refused like an unknown name */
    setenv("SCRIBED_SIMD", "avx2", 1);
    if (sd_kernel_table_named("avx2")) {
        CHECK_OK(sd_cpu_backend_create(1, 0, &b, &err), &err);
        CHECK_STR(sd_backend_simd(b), capped);
        sd_backend_destroy(b);
    } else {
        CHECK(sd_cpu_backend_create(1, 0, &b, &err) == SD_EINVAL);
    }
    setenv("SCRIBED_SIMD", "avx513", 1);
    CHECK(sd_cpu_backend_create(1, 0, &b, &err) == SD_EINVAL);
    unsetenv("SCRIBED_SIMD");
    CHECK(sd_cpu_backend_create(0, 0, &b, &err) == SD_EINVAL);
}

static void check_matmul(struct sd_backend *b, int m, int n, int k, int f16, int with_bias,
                         int accumulate)
{
    int ld = k + 3; /* weight row stride larger than k */
    float *x = rand_vec((size_t)m * k), *wf = rand_vec((size_t)n * ld), *bias = rand_vec(n);
    uint16_t *wh = malloc((size_t)n * ld * 2 + 2);
    for (size_t i = 0; i < (size_t)n * ld; i++) {
        wh[i] = sd_f32_to_f16(wf[i]);
        if (f16)
            wf[i] = sd_f16_to_f32(wh[i]);
    }
    float *y = rand_vec((size_t)m * (n + 2));
    double *want = malloc(sizeof(double) * (size_t)m * (n + 2));
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n + 2; j++) {
            double s = j < n ? (with_bias ? bias[j] : 0.0) : 0.0;
            if (j < n)
                for (int p = 0; p < k; p++)
                    s += (double)x[(size_t)i * k + p] * wf[(size_t)j * ld + p];
            want[(size_t)i * (n + 2) + j] =
                (j >= n || accumulate) ? s + y[(size_t)i * (n + 2) + j] : s;
        }
    /* an odd offset in the f16 data checks unaligned weight access */
    uint8_t *wbytes = malloc((size_t)n * ld * 2 + 1);
    memcpy(wbytes + 1, wh, (size_t)n * ld * 2);
    struct sd_weight w = {f16 ? SD_TYPE_F16 : SD_TYPE_F32,
                          H(f16 ? (void *)(wbytes + 1) : wf), n, k, ld};
    sd_op_matmul(b, H(x), m, k, &w, with_bias ? H(bias) : SD_MEM_NONE, H(y), n + 2, accumulate);
    double e = max_rel_err(y, want, (size_t)m * (n + 2));
    CHECK_MSG(e < 2e-5 * sqrt(k), "matmul %s m=%d n=%d k=%d f16=%d: err %g", sd_backend_simd(b),
              m, n, k, f16, e);
    free(x);
    free(wf);
    free(bias);
    free(wh);
    free(wbytes);
    free(y);
    free(want);
}

TEST(backend_matmul)
{
    struct sd_backend *b[MAX_BACKENDS];
    int nb = make_backends(b);
    static const int shapes[][3] = {{1, 1, 1},    {1, 64, 64},   {2, 17, 300},  {5, 300, 64},
                                    {7, 33, 9},   {8, 16, 256},  {13, 100, 257}, {64, 64, 64},
                                    {100, 37, 513}, {230, 270, 70}, {6, 5, 600}, {30, 530, 20}};
    for (int i = 0; i < nb; i++)
        for (size_t s = 0; s < sizeof(shapes) / sizeof(shapes[0]); s++)
            for (int f16 = 0; f16 < 2; f16++)
                check_matmul(b[i], shapes[s][0], shapes[s][1], shapes[s][2], f16, (int)(s % 2),
                             (int)(s % 3 == 0));
    free_backends(b, nb);
}

/*
 * y[i] must not depend on the other rows of x: decoding steps of several
 * requests share one product (small-m path up to SD_MATVEC_MAX_M rows), and
 * a transcript must not change with the server's load. Bitwise, every m.
 */
TEST(backend_matmul_row_independent_of_batch)
{
    struct sd_backend *b[MAX_BACKENDS];
    int nb = make_backends(b);
    const int n = 45, k = 75, M = SD_MATVEC_MAX_M;
    float *x = rand_vec((size_t)M * k), *wf = rand_vec((size_t)n * k), *bias = rand_vec(n);
    uint16_t *wh = malloc(sizeof(uint16_t) * (size_t)n * k);
    for (int i = 0; i < n * k; i++)
        wh[i] = sd_f32_to_f16(wf[i]);
    float *y = malloc(sizeof(float) * (size_t)M * n), *one = malloc(sizeof(float) * n);
    for (int i = 0; i < nb; i++)
        for (int f16 = 0; f16 < 2; f16++) {
            struct sd_weight w = {f16 ? SD_TYPE_F16 : SD_TYPE_F32, H(f16 ? (void *)wh : wf), n, k,
                                  k};
            for (int m = 2; m <= M; m++) {
                sd_op_matmul(b[i], H(x), m, k, &w, H(bias), H(y), n, 0);
                for (int r = 0; r < m; r++) {
                    sd_op_matmul(b[i], H(x + (size_t)r * k), 1, k, &w, H(bias), H(one), n, 0);
                    CHECK_MSG(memcmp(one, y + (size_t)r * n, sizeof(float) * n) == 0,
                              "%s f16=%d: row %d of %d differs from the row alone",
                              sd_backend_simd(b[i]), f16, r, m);
                }
            }
        }
    free(x), free(wf), free(bias), free(wh), free(y), free(one);
    free_backends(b, nb);
}

TEST(backend_matmul_multi_equals_single)
{
    struct sd_backend *b[MAX_BACKENDS];
    int nb = make_backends(b);
    for (int i = 0; i < nb; i++)
        for (int m = 1; m <= 40; m += 39) {
            int k = 72, ns[6] = {16, 33, 64, 5, 80, 7};
            float *x = rand_vec((size_t)m * k);
            struct sd_weight w[6];
            struct sd_matmul_out outs[6];
            float *wd[6], *bias[6], *single[6], *ys[6];
            for (int p = 0; p < 6; p++) {
                wd[p] = rand_vec((size_t)ns[p] * k);
                bias[p] = rand_vec(ns[p]);
                ys[p] = rand_vec((size_t)m * ns[p]);
                w[p] = (struct sd_weight){SD_TYPE_F32, H(wd[p]), ns[p], k, k};
                outs[p] = (struct sd_matmul_out){&w[p], p % 2 ? H(bias[p]) : SD_MEM_NONE,
                                                 H(ys[p]), ns[p], p == 3};
                single[p] = malloc(sizeof(float) * (size_t)m * ns[p]);
                memcpy(single[p], ys[p], sizeof(float) * (size_t)m * ns[p]);
                sd_op_matmul(b[i], H(x), m, k, &w[p], outs[p].bias, H(single[p]), ns[p], p == 3);
            }
            sd_op_matmul_multi(b[i], H(x), m, k, 6, outs); /* more than one job's worth */
            for (int p = 0; p < 6; p++) {
                CHECK(memcmp(single[p], ys[p], sizeof(float) * (size_t)m * ns[p]) == 0);
                free(wd[p]), free(bias[p]), free(single[p]), free(ys[p]);
            }
            free(x);
        }
    free_backends(b, nb);
}

TEST(backend_layer_norm_gelu_add_softmax)
{
    struct sd_backend *b[MAX_BACKENDS];
    int nb = make_backends(b);
    int m = 37, n = 203;
    for (int i = 0; i < nb; i++) {
        float *x = rand_vec((size_t)m * n), *g = rand_vec(n), *be = rand_vec(n);
        float *y = malloc(sizeof(float) * (size_t)m * n);
        double *want = malloc(sizeof(double) * (size_t)m * n);
        for (int r = 0; r < m; r++) {
            double mean = 0, var = 0;
            for (int j = 0; j < n; j++)
                mean += x[r * n + j];
            mean /= n;
            for (int j = 0; j < n; j++)
                var += (x[r * n + j] - mean) * (x[r * n + j] - mean);
            var /= n;
            for (int j = 0; j < n; j++)
                want[r * n + j] = (x[r * n + j] - mean) / sqrt(var + 1e-5) * g[j] + be[j];
        }
        sd_op_layer_norm(b[i], H(x), m, n, H(g), H(be), 1e-5f, H(y));
        CHECK(max_rel_err(y, want, (size_t)m * n) < 1e-5);

        size_t ne = 40001;
        float *v = rand_vec(ne);
        double *gw = malloc(sizeof(double) * ne);
        for (size_t j = 0; j < ne; j++) {
            v[j] *= 8.0f; /* cover the tails */
            gw[j] = 0.5 * v[j] * (1.0 + erf(v[j] / sqrt(2.0)));
        }
        sd_op_gelu(b[i], H(v), ne);
        double ge = 0;
        for (size_t j = 0; j < ne; j++)
            ge = fmax(ge, fabs(v[j] - gw[j]));
        CHECK_MSG(ge < 2e-6, "gelu %s err %g", sd_backend_simd(b[i]), ge);

        float *a = rand_vec(ne), *c = rand_vec(ne);
        double *aw = malloc(sizeof(double) * ne);
        for (size_t j = 0; j < ne; j++)
            aw[j] = (double)a[j] + c[j];
        sd_op_add(b[i], H(a), H(c), ne);
        CHECK(max_rel_err(a, aw, ne) < 1e-7);

        float *sm = rand_vec((size_t)m * n);
        double *sw = malloc(sizeof(double) * (size_t)m * n);
        for (int r = 0; r < m; r++) {
            double mx = -1e30, sum = 0;
            for (int j = 0; j < n; j++) {
                sm[r * n + j] *= 30.0f;
                mx = fmax(mx, sm[r * n + j]);
            }
            for (int j = 0; j < n; j++)
                sum += exp(sm[r * n + j] - mx);
            for (int j = 0; j < n; j++)
                sw[r * n + j] = exp(sm[r * n + j] - mx) / sum;
        }
        sd_op_softmax(b[i], H(sm), m, n);
        CHECK(max_rel_err(sm, sw, (size_t)m * n) < 1e-6);
        free(x), free(g), free(be), free(y), free(want), free(v), free(gw), free(a), free(c);
        free(aw), free(sm), free(sw);
    }
    free_backends(b, nb);
}

/*
 * head_major_f16: K/V given as f16 [head][n_kv][d]; 2: V as f16 [head][d][n_kv]
 * (v_transposed, as the decoder's cross-attention cache).
 */
static void check_attention_kv(struct sd_backend *b, int n_q, int n_kv, int n_head, int d,
                               int causal, int n_past, int head_major_f16)
{
    int S = n_head * d, ld = S + 4;
    float *q = rand_vec((size_t)n_q * ld), *k = rand_vec((size_t)n_kv * ld);
    float *v = rand_vec((size_t)n_kv * ld), *out = rand_vec((size_t)n_q * ld);
    uint16_t *kh = malloc(sizeof(uint16_t) * (size_t)n_kv * S + 2);
    uint16_t *vh = malloc(sizeof(uint16_t) * (size_t)n_kv * S + 2);
    if (head_major_f16) { /* reference uses the f16-rounded values */
        for (int j = 0; j < n_kv; j++)
            for (int t = 0; t < S; t++) {
                k[j * ld + t] = sd_f16_to_f32(sd_f32_to_f16(k[j * ld + t]));
                v[j * ld + t] = sd_f16_to_f32(sd_f32_to_f16(v[j * ld + t]));
            }
        float *kd = malloc(sizeof(float) * (size_t)n_kv * S);
        float *vd = malloc(sizeof(float) * (size_t)n_kv * S);
        for (int j = 0; j < n_kv; j++)
            for (int t = 0; t < S; t++) {
                kd[j * S + t] = k[j * ld + t];
                vd[j * S + t] = v[j * ld + t];
            }
        sd_op_to_f16_heads(b, H(kd), n_kv, n_head, d, H(kh));
        if (head_major_f16 == 2)
            sd_op_to_f16_heads_transposed(b, H(vd), n_kv, n_head, d, H(vh));
        else
            sd_op_to_f16_heads(b, H(vd), n_kv, n_head, d, H(vh));
        for (int h = 0; h < n_head; h++) { /* layout check */
            CHECK(sd_f16_to_f32(kh[((size_t)h * n_kv + n_kv - 1) * d + d - 1]) ==
                  kd[(n_kv - 1) * S + h * d + d - 1]);
            if (head_major_f16 == 2)
                CHECK(sd_f16_to_f32(vh[((size_t)h * d + d - 1) * n_kv + n_kv - 2]) ==
                      vd[(n_kv - 2) * S + h * d + d - 1]);
        }
        free(kd);
        free(vd);
    }
    double *want = malloc(sizeof(double) * (size_t)n_q * ld);
    double *p = malloc(sizeof(double) * (size_t)n_kv);
    float scale = 1.0f / sqrtf((float)d);
    for (int i = 0; i < n_q; i++)
        for (int h = 0; h < n_head; h++) {
            int nk = causal ? (n_past + i + 1 < n_kv ? n_past + i + 1 : n_kv) : n_kv;
            double mx = -1e30, sum = 0;
            for (int j = 0; j < nk; j++) {
                double s = 0;
                for (int t = 0; t < d; t++)
                    s += (double)q[i * ld + h * d + t] * k[j * ld + h * d + t];
                p[j] = s * scale;
                mx = fmax(mx, p[j]);
            }
            for (int j = 0; j < nk; j++)
                sum += (p[j] = exp(p[j] - mx));
            for (int t = 0; t < d; t++) {
                double o = 0;
                for (int j = 0; j < nk; j++)
                    o += p[j] / sum * v[j * ld + h * d + t];
                want[i * ld + h * d + t] = o;
            }
            for (int t = S; t < ld; t++)
                want[i * ld + t] = out[i * ld + t]; /* padding untouched */
        }
    struct sd_attention a = {.n_q = n_q, .n_kv = n_kv, .n_head = n_head, .d_head = d,
                             .q = H(q), .k = H(k), .v = H(v), .ldq = ld, .ldk = ld, .ldv = ld,
                             .out = H(out), .ldo = ld, .scale = scale, .causal = causal,
                             .n_past = n_past};
    if (head_major_f16) {
        a.k = H(kh);
        a.v = H(vh);
        a.ldk = a.ldv = d;
        a.kv_type = SD_TYPE_F16;
        a.k_head_stride = a.v_head_stride = (int64_t)n_kv * d;
        if (head_major_f16 == 2) {
            a.v_transposed = 1;
            a.ldv = n_kv;
        }
    }
    sd_op_attention(b, &a);
    double e = max_rel_err(out, want, (size_t)n_q * ld);
    CHECK_MSG(e < 1e-5, "attention %s n_q=%d n_kv=%d causal=%d f16=%d: err %g",
              sd_backend_simd(b), n_q, n_kv, causal, head_major_f16, e);
    free(q), free(k), free(v), free(out), free(want), free(p), free(kh), free(vh);
}

static void check_attention(struct sd_backend *b, int n_q, int n_kv, int n_head, int d, int causal,
                            int n_past)
{
    check_attention_kv(b, n_q, n_kv, n_head, d, causal, n_past, 0);
    check_attention_kv(b, n_q, n_kv, n_head, d, causal, n_past, 1);
    if (!causal)
        check_attention_kv(b, n_q, n_kv, n_head, d, causal, n_past, 2);
}

TEST(backend_attention)
{
    struct sd_backend *b[MAX_BACKENDS];
    int nb = make_backends(b);
    for (int i = 0; i < nb; i++) {
        check_attention(b[i], 1, 1500, 2, 64, 0, 0);
        check_attention(b[i], 5, 300, 3, 64, 0, 0);
        check_attention(b[i], 150, 1500, 2, 64, 0, 0);
        check_attention(b[i], 1, 10, 4, 16, 1, 9);
        check_attention(b[i], 2, 2, 2, 64, 1, 0);
        check_attention(b[i], 70, 75, 2, 32, 1, 5);
        check_attention(b[i], 9, 9, 1, 8, 1, 0);
        check_attention(b[i], 3, 7, 2, 12, 0, 0); /* d not a multiple of 8 */
        check_attention(b[i], 2, 33, 2, 128, 1, 31);
        check_attention(b[i], 6, 1500, 2, 64, 0, 0); /* beams over the cross-attention cache */
        check_attention(b[i], 7, 45, 3, 24, 0, 0);
    }
    free_backends(b, nb);
}

/* The dims-major f16 re-layout, with and without reserved attention scratch. */
TEST(backend_to_f16_heads_transposed)
{
    struct sd_backend *b[MAX_BACKENDS], *bare;
    struct sd_error err;
    int nb = make_backends(b);
    CHECK_OK(sd_cpu_backend_create(2, 0, &bare, &err), &err);
    int n_rows = 150, n_head = 3, d = 40, S = n_head * d;
    float *src = rand_vec((size_t)n_rows * S);
    uint16_t *got = malloc(sizeof(uint16_t) * (size_t)n_rows * S);
    for (int i = 0; i <= nb; i++) {
        memset(got, 0xff, sizeof(uint16_t) * (size_t)n_rows * S);
        sd_op_to_f16_heads_transposed(i < nb ? b[i] : bare, H(src), n_rows, n_head, d, H(got));
        int bad = 0;
        for (int h = 0; h < n_head; h++)
            for (int c = 0; c < d; c++)
                for (int t = 0; t < n_rows; t++)
                    bad += got[((size_t)h * d + c) * n_rows + t] !=
                           sd_f32_to_f16(src[(size_t)t * S + h * d + c]);
        CHECK_MSG(bad == 0, "to_f16_heads_transposed %s: %d values differ",
                  i < nb ? sd_backend_simd(b[i]) : "unreserved", bad);
    }
    free(src);
    free(got);
    sd_backend_destroy(bare);
    free_backends(b, nb);
}

/* log-sum-exp over a vocabulary's worth of logits, with suppressed (-inf) entries. */
TEST(backend_logsumexp)
{
    struct sd_backend *b[MAX_BACKENDS];
    int nb = make_backends(b);
    int n = 51865;
    float *x = rand_vec((size_t)n);
    for (int i = 0; i < n; i++) {
        x[i] *= 12.0f;
        if (i % 7 == 0 || i < 3)
            x[i] = -INFINITY;
    }
    double mx = -INFINITY, sum = 0.0;
    for (int i = 0; i < n; i++)
        mx = x[i] > mx ? x[i] : mx;
    for (int i = 0; i < n; i++)
        sum += exp((double)x[i] - mx);
    double want = mx + log(sum);
    float all_inf[5] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY};
    for (int i = 0; i < nb; i++) {
        float got = sd_op_logsumexp(b[i], x, n);
        CHECK_MSG(fabs(got - want) < 1e-5 * fabs(want) + 1e-5, "logsumexp %s: %g vs %g",
                  sd_backend_simd(b[i]), got, want);
        CHECK(sd_op_logsumexp(b[i], all_inf, 5) == -INFINITY);
        CHECK(sd_op_logsumexp(b[i], x + 3, 1) == x[3]);
        CHECK(sd_op_logsumexp(b[i], x, 0) == -INFINITY);
    }
    free(x);
    free_backends(b, nb);
}

TEST(backend_attention_logits)
{
    struct sd_backend *b[MAX_BACKENDS];
    int nb = make_backends(b);
    int n_head = 3, d = 64, n_kv = 300, S = n_head * d;
    for (int i = 0; i < nb; i++)
        for (int n_q = 1; n_q <= 21; n_q += 20) {
            float *q = rand_vec((size_t)n_q * S), *kd = rand_vec((size_t)n_kv * S);
            uint16_t *kh = malloc(sizeof(uint16_t) * (size_t)n_kv * S);
            sd_op_to_f16_heads(b[i], H(kd), n_kv, n_head, d, H(kh));
            struct sd_attention a = {.n_q = n_q, .n_kv = n_kv, .n_head = n_head, .d_head = d,
                                     .q = H(q), .k = H(kh), .ldq = S, .ldk = d, .scale = 0.125f,
                                     .kv_type = SD_TYPE_F16,
                                     .k_head_stride = (int64_t)n_kv * d};
            int ldo = n_kv + 5;
            float *out = calloc((size_t)n_q * ldo, sizeof(float));
            double *want = malloc(sizeof(double) * (size_t)n_q * ldo);
            sd_op_attention_logits(b[i], &a, 2, H(out), ldo);
            for (int r = 0; r < n_q; r++)
                for (int j = 0; j < ldo; j++) {
                    double s = 0;
                    for (int t = 0; j < n_kv && t < d; t++)
                        s += (double)q[r * S + 2 * d + t] *
                             sd_f16_to_f32(sd_f32_to_f16(kd[j * S + 2 * d + t]));
                    want[r * ldo + j] = j < n_kv ? 0.125 * s : out[r * ldo + j];
                }
            CHECK(max_rel_err(out, want, (size_t)n_q * ldo) < 1e-5);
            free(q), free(kd), free(kh), free(out), free(want);
        }
    free_backends(b, nb);
}

TEST(backend_conv1d_and_rows)
{
    struct sd_backend *b[MAX_BACKENDS];
    int nb = make_backends(b);
    int c_in = 7, c_out = 20, t_in = 31;
    for (int i = 0; i < nb; i++)
        for (int stride = 1; stride <= 2; stride++)
            for (int cf = 0; cf < 2; cf++) {
                int t_out = (t_in - 1) / stride + 1;
                float *in = rand_vec((size_t)c_in * t_in), *wf = rand_vec((size_t)c_out * c_in * 3);
                float *bias = rand_vec(c_out), *out = malloc(sizeof(float) * t_out * c_out);
                float *col = malloc(sizeof(float) * t_out * 3 * c_in);
                uint16_t *wh = malloc(sizeof(uint16_t) * c_out * c_in * 3);
                for (int j = 0; j < c_out * c_in * 3; j++)
                    wf[j] = sd_f16_to_f32(wh[j] = sd_f32_to_f16(wf[j]));
                double *want = malloc(sizeof(double) * t_out * c_out);
                for (int t = 0; t < t_out; t++)
                    for (int o = 0; o < c_out; o++) {
                        double s = bias[o];
                        for (int c = 0; c < c_in; c++)
                            for (int kk = 0; kk < 3; kk++) {
                                int ti = t * stride + kk - 1;
                                if (ti < 0 || ti >= t_in)
                                    continue;
                                float xv = cf ? in[c * t_in + ti] : in[ti * c_in + c];
                                s += (double)xv * wf[(o * c_in + c) * 3 + kk];
                            }
                        want[t * c_out + o] = s;
                    }
                struct sd_tensor t = {"conv", SD_TYPE_F16, 3, {3, c_in, c_out, 1}, wh,
                                      sizeof(uint16_t) * c_out * c_in * 3, H(wh)};
                struct sd_weight w = sd_weight_of(&t);
                sd_op_conv1d_k3(b[i], H(in), c_in, t_in, cf, &w, H(bias), stride, H(out), H(col));
                double e = max_rel_err(out, want, (size_t)t_out * c_out);
                /* the bound of check_matmul (the conv is one), k = 3 * c_in */
                CHECK_MSG(e < 2e-5 * sqrt(3.0 * c_in), "conv %s: err %g", sd_backend_simd(b[i]), e);
                free(in), free(wf), free(bias), free(out), free(col), free(wh), free(want);
            }
    for (int i = 0; i < nb; i++) {
        uint16_t tab[4 * 9];
        for (int j = 0; j < 36; j++)
            tab[j] = sd_f32_to_f16((float)j);
        struct sd_weight w = {SD_TYPE_F16, H(tab), 4, 9, 9};
        int32_t ids[3] = {3, 0, 3};
        float out[27];
        sd_op_get_rows(b[i], &w, ids, 3, H(out));
        CHECK(out[0] == 27.0f && out[8] == 35.0f && out[9] == 0.0f && out[18] == 27.0f);
    }
    free_backends(b, nb);
}

/*
 * test_quant.c - the block-quantized weight types: round-trip error of the
 * reference codecs (backend/quant.c) per type, known block encodings, and
 * sd_op_matmul / sd_op_get_rows with quantized weights against a double
 * reference over the dequantized weights, for the scalar and AVX2 kernels,
 * small-m (decoder) and GEMM (encoder) shapes, 1 and 3 threads. The AVX2
 * small-m path also rounds x to 8 bits, so its bound adds that error.
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

static const enum sd_type QTYPES[] = {SD_TYPE_Q4_0, SD_TYPE_Q4_1, SD_TYPE_Q5_0, SD_TYPE_Q5_1,
                                      SD_TYPE_Q8_0};
#define N_QTYPES 5

static uint64_t qrng = 777;

static float qrand(void)
{
    qrng = qrng * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((double)(qrng >> 40) / (double)(1ull << 24) * 2.0 - 1.0);
}

TEST(quant_roundtrip_error_by_type)
{
    /*
     * Worst error relative to the block's max |x|: symmetric 4/5-bit types clip the
     * extreme opposite to the max by up to one step (amax/8, amax/16); the offset types
     * err by half a step of (max - min) / levels <= 2 amax / 15 (31); q8_0 by half of amax/127.
     */
    const double bound[N_QTYPES] = {1.0 / 8, 1.0 / 15, 1.0 / 16, 1.0 / 31, 0.5 / 127};
    enum { N = 4096 };
    float *x = malloc(N * sizeof(float)), *y = malloc(N * sizeof(float));
    uint8_t *q = malloc(N * 2);
    for (int i = 0; i < N; i++)
        x[i] = qrand() * (1.0f + (float)(i / 32 % 7));
    for (int t = 0; t < N_QTYPES; t++) {
        size_t bytes = sd_quantize(QTYPES[t], x, q, N);
        CHECK_EQ_INT((int)bytes, (int)sd_type_bytes(QTYPES[t], N));
        CHECK(sd_type_traits(QTYPES[t])->supported);
        sd_dequantize(QTYPES[t], q, y, N);
        double worst = 0;
        for (int b = 0; b < N / 32; b++) {
            float amax = 0;
            for (int j = 0; j < 32; j++)
                amax = fmaxf(amax, fabsf(x[b * 32 + j]));
            for (int j = 0; j < 32; j++) { /* not fmax(): GCC 12's aarch64 vectorizer dies on it */
                double e = fabs(y[b * 32 + j] - x[b * 32 + j]) / amax;
                worst = e > worst ? e : worst;
            }
        }
        CHECK(worst <= bound[t] * 1.01 + 1e-3);
    }
    CHECK_EQ_INT((int)sd_quantize(SD_TYPE_Q8_0, x, q, 33), 0);
    free(x), free(y), free(q);
}

TEST(quant_known_blocks)
{
    float x[32], y[32];
    uint8_t q[34];
    for (int j = 0; j < 32; j++)
        x[j] = (float)(j - 16); /* max |x| = 16 at j = 0 */
    sd_quantize(SD_TYPE_Q8_0, x, q, 32);
    CHECK_EQ_INT((int8_t)q[2], -127);
    CHECK_EQ_INT((int8_t)q[2 + 16], 0);
    sd_quantize(SD_TYPE_Q4_0, x, q, 32); /* d = -16 / -8 = 2, code = x / 2 + 8 */
    CHECK_NEAR(sd_f16_to_f32((uint16_t)(q[0] | q[1] << 8)), 2.0, 0);
    CHECK_EQ_INT(q[2] & 0x0f, 0);
    CHECK_EQ_INT(q[2] >> 4, 8);   /* x[16] = 0 */
    sd_dequantize(SD_TYPE_Q4_0, q, y, 32);
    CHECK_NEAR(y[0], -16.0, 0);
    CHECK_NEAR(y[31], 14.0, 0);
    sd_quantize(SD_TYPE_Q5_1, x, q, 32); /* d = 31 / 31 = 1, m = -16: exact */
    sd_dequantize(SD_TYPE_Q5_1, q, y, 32);
    for (int j = 0; j < 32; j++)
        CHECK_NEAR(y[j], x[j], 0);
    sd_quantize(SD_TYPE_Q5_0, x, q, 32); /* d = -16 / -16 = 1: exact for -16..15 */
    sd_dequantize(SD_TYPE_Q5_0, q, y, 32);
    for (int j = 0; j < 32; j++)
        CHECK_NEAR(y[j], x[j], 0);
}

/*
 * Every kernel table this CPU runs (scalar, avx2, avx512 on x86-64; scalar,
 * neon, neon-dotprod on AArch64), with 1 and 3 threads.
 */
static int quant_backends(struct sd_backend *out[6])
{
    int n = 0;
    struct sd_error err;
    unsigned flags[5] = {SD_BACKEND_FORCE_SCALAR, SD_BACKEND_NO_AVX512, 0, SD_BACKEND_NO_DOTPROD,
                         0};
    int usable[5] = {1, sd_cpu_has_avx2(), sd_cpu_has_avx512(), sd_cpu_has_neon(),
                     sd_cpu_has_neon_dotprod()};
    for (int lv = 0; lv < 5; lv++) {
        if (!usable[lv])
            continue;
        for (int t = 1; t <= 3; t += 2)
            CHECK_OK(sd_cpu_backend_create(t, flags[lv], &out[n++], &err), &err);
    }
    return n;
}

/* y = x W^T + b with W quantized, for m in a list of shapes, against doubles over dequant(W). */
TEST(quant_matmul_all_types_and_shapes)
{
    const int ms[] = {1, 2, 3, 5, 7, 8, 13, 70};
    const int n = 83, k = 320, ld = 352;
    float *wf = malloc(sizeof(float) * n * ld), *wd = malloc(sizeof(float) * n * ld);
    uint8_t *wq = malloc((size_t)n * ld * 2);
    float *x = malloc(sizeof(float) * 70 * k), *bias = malloc(sizeof(float) * n);
    float *y = malloc(sizeof(float) * 70 * n);
    double *ref = malloc(sizeof(double) * 70 * n), *tol = malloc(sizeof(double) * 70 * n);
    for (int i = 0; i < n * ld; i++)
        wf[i] = qrand();
    for (int i = 0; i < 70 * k; i++)
        x[i] = qrand();
    for (int i = 0; i < n; i++)
        bias[i] = qrand();
    struct sd_backend *be[6];
    int nb = quant_backends(be);
    for (int t = 0; t < N_QTYPES; t++) {
        sd_quantize(QTYPES[t], wf, wq, (int64_t)n * ld);
        sd_dequantize(QTYPES[t], wq, wd, (int64_t)n * ld);
        struct sd_weight w = {QTYPES[t], H(wq), n, k, ld};
        for (size_t mi = 0; mi < sizeof(ms) / sizeof(ms[0]); mi++) {
            int m = ms[mi];
            for (int i = 0; i < m; i++)
                for (int j = 0; j < n; j++) {
                    double s = bias[j], e = 0;
                    for (int p = 0; p < k; p++)
                        s += (double)x[i * k + p] * wd[(size_t)j * ld + p];
                    /* the AVX2 small-m path rounds x to 8 bits per 32 values (<= amax/254) */
                    for (int b0 = 0; b0 < k; b0 += 32) {
                        double amax = 0, wsum = 0;
                        for (int p = b0; p < b0 + 32; p++) {
                            amax = fmax(amax, fabs(x[i * k + p]));
                            wsum += fabs(wd[(size_t)j * ld + p]);
                        }
                        e += m <= SD_MATVEC_MAX_M ? amax / 254.0 * wsum * 1.01 : 0;
                    }
                    ref[i * n + j] = s;
                    tol[i * n + j] = e + 1e-4 * (1.0 + fabs(s));
                }
            for (int b = 0; b < nb; b++) {
                memset(y, 0, sizeof(float) * 70 * n);
                sd_op_matmul(be[b], H(x), m, k, &w, H(bias), H(y), n, 0);
                int bad = 0;
                for (int i = 0; i < m * n; i++)
                    bad += !(fabs(y[i] - ref[i]) <= tol[i]);
                if (bad)
                    CHECK(!"quantized matmul differs from the reference");
            }
        }
        /* rows of a quantized embedding */
        int32_t ids[3] = {0, 41, 82};
        float rows[3 * 320];
        struct sd_weight e = {QTYPES[t], H(wq), n, ld, ld};
        for (int b = 0; b < nb; b++) {
            float out[3 * 352];
            sd_op_get_rows(be[b], &e, ids, 3, H(out));
            for (int r = 0; r < 3; r++)
                for (int p = 0; p < 320; p++)
                    rows[r * 320 + p] = out[r * ld + p];
            for (int r = 0; r < 3; r++)
                for (int p = 0; p < 320; p++)
                    CHECK_NEAR(rows[r * 320 + p], wd[(size_t)ids[r] * ld + p], 1e-6);
        }
    }
    for (int b = 0; b < nb; b++)
        sd_backend_destroy(be[b]);
    free(wf), free(wd), free(wq), free(x), free(bias), free(y), free(ref), free(tol);
}

/* As for f16: a row's result must not depend on the rows it is batched with (bitwise). */
TEST(quant_matmul_row_independent_of_batch)
{
    const int n = 37, k = 256, M = SD_MATVEC_MAX_M;
    float *wf = malloc(sizeof(float) * n * k), *x = malloc(sizeof(float) * M * k);
    uint8_t *wq = malloc((size_t)n * k * 2);
    float *y = malloc(sizeof(float) * M * n), one[37];
    for (int i = 0; i < n * k; i++)
        wf[i] = qrand();
    for (int i = 0; i < M * k; i++)
        x[i] = qrand();
    struct sd_backend *be[6];
    int nb = quant_backends(be);
    for (int t = 0; t < N_QTYPES; t++) {
        sd_quantize(QTYPES[t], wf, wq, (int64_t)n * k);
        struct sd_weight w = {QTYPES[t], H(wq), n, k, k};
        for (int b = 0; b < nb; b++)
            for (int m = 2; m <= M; m += 1 + m / 8) {
                sd_op_matmul(be[b], H(x), m, k, &w, SD_MEM_NONE, H(y), n, 0);
                for (int r = 0; r < m; r++) {
                    sd_op_matmul(be[b], H(x + (size_t)r * k), 1, k, &w, SD_MEM_NONE, H(one), n,
                                 0);
                    CHECK_MSG(memcmp(one, y + (size_t)r * n, sizeof(one)) == 0,
                              "%s type %d: row %d of %d differs from the row alone",
                              sd_backend_simd(be[b]), (int)QTYPES[t], r, m);
                }
            }
    }
    for (int b = 0; b < nb; b++)
        sd_backend_destroy(be[b]);
    free(wf), free(x), free(wq), free(y);
}

/*
 * On AArch64 with SDOT: the neon and neon-dotprod tables' quantized products
 * are bit-identical (each block's integer sum is exact either way), for every
 * type and small-m row count, so the conformance run on one covers both.
 */
TEST(quant_matmul_neon_sdot_equals_plain)
{
    if (!sd_cpu_has_neon_dotprod())
        return; /* nothing to compare on this CPU */
    const int n = 29, k = 320, M = SD_GEMV_MAX_M - 1;
    float *wf = malloc(sizeof(float) * n * k), *x = malloc(sizeof(float) * M * k);
    uint8_t *wq = malloc((size_t)n * k * 2);
    float *y0 = malloc(sizeof(float) * M * n), *y1 = malloc(sizeof(float) * M * n);
    for (int i = 0; i < n * k; i++)
        wf[i] = qrand();
    for (int i = 0; i < M * k; i++)
        x[i] = qrand();
    struct sd_backend *plain, *sdot;
    struct sd_error err;
    CHECK_OK(sd_cpu_backend_create(1, SD_BACKEND_NO_DOTPROD, &plain, &err), &err);
    CHECK_OK(sd_cpu_backend_create(1, 0, &sdot, &err), &err);
    CHECK_STR(sd_backend_simd(plain), "neon");
    CHECK_STR(sd_backend_simd(sdot), "neon-dotprod");
    for (int t = 0; t < N_QTYPES; t++) {
        sd_quantize(QTYPES[t], wf, wq, (int64_t)n * k);
        struct sd_weight w = {QTYPES[t], H(wq), n, k, k};
        for (int m = 1; m <= M; m++) {
            sd_op_matmul(plain, H(x), m, k, &w, SD_MEM_NONE, H(y0), n, 0);
            sd_op_matmul(sdot, H(x), m, k, &w, SD_MEM_NONE, H(y1), n, 0);
            CHECK_MSG(memcmp(y0, y1, sizeof(float) * (size_t)m * n) == 0,
                      "type %d m=%d: neon and neon-dotprod differ", (int)QTYPES[t], m);
        }
    }
    sd_backend_destroy(plain);
    sd_backend_destroy(sdot);
    free(wf), free(x), free(wq), free(y0), free(y1);
}

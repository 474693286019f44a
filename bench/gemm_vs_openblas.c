/*
 * gemm_vs_openblas.c - the encoder's matrix products (1500 rows by the base
 * model's 512x512, 512x2048 and 2048x512 weights) through sd_op_matmul (f16,
 * f32 and q8_0 weights) next to OpenBLAS cblas_sgemm (f32) on the same shapes
 * and thread count, best of N, alternating. Prints key=value lines with
 * GFLOP/s and ours/OpenBLAS ratios. A measurement tool, not part of scribed;
 * built by bench/gemm_vs_openblas.sh against a build folder's libraries.
 *
 * usage: gemm_vs_openblas THREADS [REPS]
 */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "backend/ops.h"

void openblas_set_num_threads(int n);

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    int threads = argc > 1 ? atoi(argv[1]) : 1, reps = argc > 2 ? atoi(argv[2]) : 5;
    static const int shapes[3][3] = {{1500, 512, 512}, {1500, 512, 2048}, {1500, 2048, 512}};
    static const char *const names[3] = {"qkvo_1500x512x512", "mlp0_1500x512x2048",
                                         "mlp2_1500x2048x512"};
    struct sd_backend *be;
    struct sd_error err;
    if (threads < 1 || sd_backend_create(threads, 0, &be, &err) != SD_OK)
        return 1;
    openblas_set_num_threads(threads);
    printf("threads=%d\nsimd=%s\n", threads, sd_backend_simd(be));
    for (int s = 0; s < 3; s++) {
        int m = shapes[s][0], k = shapes[s][1], n = shapes[s][2];
        float *a = malloc(sizeof(float) * m * k), *w = malloc(sizeof(float) * n * k);
        float *c = malloc(sizeof(float) * m * n);
        uint16_t *wh = malloc(sizeof(uint16_t) * n * k);
        void *wq = malloc(sd_type_bytes(SD_TYPE_Q8_0, (int64_t)n * k));
        for (int i = 0; i < m * k; i++)
            a[i] = (float)((i * 37) % 101) / 101.0f - 0.5f;
        for (int i = 0; i < n * k; i++) {
            w[i] = (float)((i * 53) % 97) / 97.0f - 0.5f;
            wh[i] = sd_f32_to_f16(w[i]);
        }
        sd_quantize(SD_TYPE_Q8_0, w, wq, (int64_t)n * k);
        struct sd_weight wf = {SD_TYPE_F32, w, n, k, k}, w16 = {SD_TYPE_F16, wh, n, k, k};
        struct sd_weight w8 = {SD_TYPE_Q8_0, wq, n, k, k};
        double best[4] = {1e9, 1e9, 1e9, 1e9};
        for (int r = 0; r < reps; r++) {
            const struct sd_weight *ws[3] = {&w16, &wf, &w8};
            for (int v = 0; v < 3; v++) {
                double t0 = now_s();
                sd_op_matmul(be, a, m, k, ws[v], NULL, c, n, 0);
                double dt = now_s() - t0;
                best[v] = dt < best[v] ? dt : best[v];
            }
            double t0 = now_s();
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, 1.0f, a, k, w, k, 0.0f,
                        c, n);
            double dt = now_s() - t0;
            best[3] = dt < best[3] ? dt : best[3];
        }
        double flop = 2.0 * m * n * k;
        printf("%s.ours_f16_gflops=%.1f\n", names[s], flop / best[0] * 1e-9);
        printf("%s.ours_f32_gflops=%.1f\n", names[s], flop / best[1] * 1e-9);
        printf("%s.ours_q8_0_gflops=%.1f\n", names[s], flop / best[2] * 1e-9);
        printf("%s.openblas_gflops=%.1f\n", names[s], flop / best[3] * 1e-9);
        printf("%s.ratio_f16_vs_openblas=%.3f\n", names[s], best[3] / best[0]);
        printf("%s.ratio_f32_vs_openblas=%.3f\n", names[s], best[3] / best[1]);
        free(a), free(w), free(c), free(wh), free(wq);
    }
    sd_backend_destroy(be);
    return 0;
}

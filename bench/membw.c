/*
 * membw.c - the machine's streaming read bandwidth, the ceiling of the
 * decoder's memory-bound steps: T threads each sum their own contiguous share
 * of a buffer larger than the caches with 256-bit loads; best of a few passes.
 *   cc -O2 -mavx2 -pthread -o build/membw bench/membw.c && build/membw [MiB] [threads...]
 * Prints membw_t<T>_gbs=<GB/s> per thread count (default 512 MiB, threads 1 2).
 */
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct share {
    const char *p;
    size_t n;
    float sink;
};

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void *read_share(void *arg)
{
    struct share *s = arg;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0;
    for (size_t i = 0; i + 64 <= s->n; i += 64) {
        a0 = _mm256_add_ps(a0, _mm256_load_ps((const float *)(const void *)(s->p + i)));
        a1 = _mm256_add_ps(a1, _mm256_load_ps((const float *)(const void *)(s->p + i + 32)));
    }
    float out[8];
    _mm256_storeu_ps(out, _mm256_add_ps(a0, a1));
    s->sink = out[0];
    return NULL;
}

int main(int argc, char **argv)
{
    size_t mib = argc > 1 ? (size_t)atoi(argv[1]) : 512;
    size_t n = mib << 20;
    char *buf = aligned_alloc(64, n);
    if (!buf || mib == 0)
        return 1;
    memset(buf, 1, n);
    int counts[8] = {1, 2}, n_counts = 2;
    if (argc > 2) {
        n_counts = 0;
        for (int i = 2; i < argc && n_counts < 8; i++)
            counts[n_counts++] = atoi(argv[i]);
    }
    for (int c = 0; c < n_counts; c++) {
        int t = counts[c] < 1 ? 1 : counts[c] > 64 ? 64 : counts[c];
        pthread_t th[64];
        struct share sh[64];
        double best = 1e30;
        for (int pass = 0; pass < 5; pass++) {
            double t0 = now_s();
            for (int i = 0; i < t; i++) {
                sh[i] = (struct share){buf + (size_t)i * (n / (size_t)t) / 64 * 64, n / (size_t)t, 0};
                pthread_create(&th[i], NULL, read_share, &sh[i]);
            }
            for (int i = 0; i < t; i++)
                pthread_join(th[i], NULL);
            double dt = now_s() - t0;
            best = dt < best ? dt : best;
        }
        printf("membw_t%d_gbs=%.1f\n", t, (double)n / best / 1e9);
    }
    free(buf);
    return 0;
}

/*
 * fft.c - real-input forward DFT for sizes 2^a * m (see fft.h).
 *
 * The input is split by index modulo 2^a into 2^a interleaved subsequences of
 * length m; each gets a naive size-m DFT (the leaves, stored in bit-reversed
 * order), then radix-2 butterfly stages double the block size until it is n.
 * Everything is double precision with one exact table of n twiddles, which
 * keeps the result ~1e-13 relative to the exact DFT. No inverse transform.
 */
#include "whisper/fft.h"

#include <math.h>
#include <stdlib.h>

struct fft_plan {
    int n;          /* transform size */
    int n_leaves;   /* 2^a */
    int m;          /* odd leaf size, n = n_leaves * m */
    double *cos_t;  /* cos(2 pi j / n), j < n */
    double *sin_t;  /* sin(2 pi j / n) */
    int *leaf_src;  /* leaf L holds the subsequence starting at index leaf_src[L] */
    double *leaf_cos, *leaf_sin; /* [q][j]: cos/sin(2 pi j q / m) for q <= m/2 */
};

static int reverse_bits(int v, int n_bits)
{
    int r = 0;
    for (int i = 0; i < n_bits; i++)
        r |= ((v >> i) & 1) << (n_bits - 1 - i);
    return r;
}

enum sd_err fft_plan_create(int n, struct fft_plan **out, struct sd_error *err)
{
    if (n < 1 || n > (1 << 24))
        return sd_fail(err, SD_EINVAL, "fft size %d out of range", n);
    int a = 0, m = n;
    while (m % 2 == 0) {
        m /= 2;
        a++;
    }
    if (m > 1024)
        return sd_fail(err, SD_EINVAL, "fft size %d has an odd factor %d too large", n, m);

    struct fft_plan *p = calloc(1, sizeof(*p));
    if (!p)
        return sd_fail(err, SD_ENOMEM, "out of memory planning an fft");
    p->n = n;
    p->m = m;
    p->n_leaves = 1 << a;
    p->cos_t = malloc(sizeof(double) * (size_t)n);
    p->sin_t = malloc(sizeof(double) * (size_t)n);
    p->leaf_src = malloc(sizeof(int) * (size_t)p->n_leaves);
    p->leaf_cos = malloc(sizeof(double) * (size_t)(m / 2 + 1) * (size_t)m);
    p->leaf_sin = malloc(sizeof(double) * (size_t)(m / 2 + 1) * (size_t)m);
    if (!p->cos_t || !p->sin_t || !p->leaf_src || !p->leaf_cos || !p->leaf_sin) {
        fft_plan_free(p);
        return sd_fail(err, SD_ENOMEM, "out of memory planning an fft");
    }
    for (int j = 0; j < n; j++) {
        double th = 2.0 * M_PI * (double)j / (double)n;
        p->cos_t[j] = cos(th);
        p->sin_t[j] = sin(th);
    }
    for (int l = 0; l < p->n_leaves; l++)
        p->leaf_src[l] = reverse_bits(l, a);
    for (int q = 0; q <= m / 2; q++)
        for (int j = 0; j < m; j++) {
            int e = (int)((long long)j * q % m) * p->n_leaves; /* exact table entry */
            p->leaf_cos[q * m + j] = p->cos_t[e];
            p->leaf_sin[q * m + j] = p->sin_t[e];
        }
    *out = p;
    return SD_OK;
}

void fft_plan_free(struct fft_plan *p)
{
    if (!p)
        return;
    free(p->cos_t);
    free(p->sin_t);
    free(p->leaf_src);
    free(p->leaf_cos);
    free(p->leaf_sin);
    free(p);
}

int fft_plan_size(const struct fft_plan *p)
{
    return p->n;
}

/*
 * Naive size-m DFTs of the 2^a interleaved subsequences into (re, im). The
 * input is real, so Y[m - q] = conj(Y[q]) (only q <= m/2 is computed), and
 * cos/sin are even/odd in j, so x[j] and x[m - j] are folded first.
 */
static void fft_leaves(const struct fft_plan *p, const double *in, double *re, double *im)
{
    const int m = p->m, stride = p->n_leaves, h = m / 2;
    double sum[512], diff[512];
    for (int l = 0; l < p->n_leaves; l++) {
        const double *x = in + p->leaf_src[l];
        for (int j = 1; j <= h; j++) {
            double a = x[(size_t)j * stride], b = x[(size_t)(m - j) * stride];
            sum[j] = a + b;
            diff[j] = a - b;
        }
        double *lr = re + (size_t)l * m, *li = im + (size_t)l * m;
        for (int q = 0; q <= h; q++) {
            const double *c = p->leaf_cos + (size_t)q * m, *s = p->leaf_sin + (size_t)q * m;
            double sr = x[0], si = 0.0;
            for (int j = 1; j <= h; j++) {
                sr += sum[j] * c[j];
                si -= diff[j] * s[j];
            }
            lr[q] = sr;
            li[q] = si;
            if (q > 0) {
                lr[m - q] = sr;
                li[m - q] = -si;
            }
        }
    }
}

void fft_real_forward(const struct fft_plan *p, const double *in, double *re, double *im,
                      double *work)
{
    const int n = p->n;
    double *ar = work, *ai = work + n, *br = work + 2 * n, *bi = work + 3 * n;
    fft_leaves(p, in, ar, ai);

    /* Butterflies: blocks (2b, 2b+1) of size half hold the DFTs of the even and
     * odd subsequences of block b of size 2*half. */
    for (int size = 2 * p->m; size <= n; size *= 2) {
        const int half = size / 2, tw_step = n / size;
        for (int b = 0; b < n; b += size) {
            for (int k = 0; k < half; k++) {
                double c = p->cos_t[k * tw_step], s = p->sin_t[k * tw_step];
                double orr = ar[b + half + k], oi = ai[b + half + k];
                double tr = c * orr + s * oi, ti = c * oi - s * orr;
                double er = ar[b + k], ei = ai[b + k];
                br[b + k] = er + tr;
                bi[b + k] = ei + ti;
                br[b + half + k] = er - tr;
                bi[b + half + k] = ei - ti;
            }
        }
        double *t;
        t = ar, ar = br, br = t;
        t = ai, ai = bi, bi = t;
    }
    for (int k = 0; k <= n / 2; k++) {
        re[k] = ar[k];
        im[k] = ai[k];
    }
}

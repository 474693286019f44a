/*
 * pcm.c - client sample formats to 16 kHz float, and the resampler (see
 * pcm.h). The resampler evaluates a Hann-windowed sinc at each output
 * instant straight from the input history: 16 zero crossings a side, cut-off
 * at 0.95 x the lower Nyquist rate. About 40 multiply-adds per output
 * sample, nothing precomputed, exact for any rate ratio.
 */
#include "realtime/pcm.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "realtime/stream.h"

#define HALF_ZEROS 16

struct rt_pcm {
    enum rt_pcm_format f;
    int rate;
    unsigned char part[4];     /* bytes of a sample split across frames */
    size_t n_part;
    /* resampler */
    double ratio, fc, half;    /* input samples per output sample; cut-off; kernel half-width */
    float *hist;               /* input samples [h_base, h_base + n_hist) */
    size_t n_hist, cap_hist;
    int64_t h_base, n_in, k_out;
};

enum sd_err rt_pcm_new(enum rt_pcm_format f, int sample_rate, struct rt_pcm **out,
                       struct sd_error *err)
{
    if (sample_rate < RT_PCM_MIN_RATE || sample_rate > RT_PCM_MAX_RATE)
        return sd_fail(err, SD_EINVAL, "sample_rate must be %d..%d", RT_PCM_MIN_RATE,
                       RT_PCM_MAX_RATE);
    if (f != RT_PCM_S16LE && f != RT_PCM_F32LE)
        return sd_fail(err, SD_EINVAL, "unknown sample format");
    struct rt_pcm *c = calloc(1, sizeof(*c));
    if (!c)
        return sd_fail(err, SD_ENOMEM, "pcm converter");
    c->f = f;
    c->rate = sample_rate;
    c->ratio = (double)sample_rate / RT_SAMPLE_RATE;
    c->fc = 0.95 * (sample_rate > RT_SAMPLE_RATE ? 1.0 / c->ratio : 1.0);
    c->half = HALF_ZEROS / c->fc;
    *out = c;
    return SD_OK;
}

void rt_pcm_free(struct rt_pcm *c)
{
    if (!c)
        return;
    free(c->hist);
    free(c);
}

static float sample_at(const unsigned char *b, enum rt_pcm_format f)
{
    if (f == RT_PCM_S16LE)
        return (float)(int16_t)(uint16_t)(b[0] | b[1] << 8) / 32768.0f;
    uint32_t u = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
                 (uint32_t)b[3] << 24;
    float v;
    memcpy(&v, &u, sizeof(v));
    if (!isfinite(v))
        return 0.0f;
    return v > 1.0f ? 1.0f : v < -1.0f ? -1.0f : v;
}

/* Bytes -> samples at the client's rate; *out malloc'd. */
static enum sd_err decode_bytes(struct rt_pcm *c, const unsigned char *b, size_t n, float **out,
                                size_t *n_out, struct sd_error *err)
{
    size_t width = c->f == RT_PCM_S16LE ? 2 : 4;
    size_t count = (c->n_part + n) / width;
    float *s = malloc((count ? count : 1) * sizeof(float));
    if (!s)
        return sd_fail(err, SD_ENOMEM, "pcm conversion");
    size_t k = 0, i = 0;
    if (c->n_part) {
        while (c->n_part < width && i < n)
            c->part[c->n_part++] = b[i++];
        if (c->n_part < width) {
            free(s);
            *out = NULL;
            *n_out = 0;
            return SD_OK;
        }
        s[k++] = sample_at(c->part, c->f);
        c->n_part = 0;
    }
    for (; i + width <= n; i += width)
        s[k++] = sample_at(b + i, c->f);
    while (i < n)
        c->part[c->n_part++] = b[i++];
    *out = s;
    *n_out = k;
    return SD_OK;
}

static double kernel(const struct rt_pcm *c, double d)
{
    if (fabs(d) >= c->half)
        return 0.0;
    double x = c->fc * d;
    double sinc = fabs(x) < 1e-9 ? 1.0 : sin(M_PI * x) / (M_PI * x);
    double w = 0.5 + 0.5 * cos(M_PI * d / c->half);
    return c->fc * sinc * w;
}

/* Output samples computable from the history; with flush, missing input counts as 0. */
static enum sd_err resample(struct rt_pcm *c, bool flush, float **out, size_t *n_out,
                            struct sd_error *err)
{
    int64_t last_in = c->n_in - 1;
    size_t cap = (size_t)((double)(c->n_in - c->h_base) / c->ratio) + 4;
    float *o = malloc(cap * sizeof(float));
    if (!o)
        return sd_fail(err, SD_ENOMEM, "resampler");
    size_t k = 0;
    for (;;) {
        double t = (double)c->k_out * c->ratio;
        if (flush ? t > (double)last_in : t + c->half > (double)last_in)
            break;
        if (k == cap)
            break;
        int64_t lo = (int64_t)ceil(t - c->half), hi = (int64_t)floor(t + c->half);
        double acc = 0.0;
        for (int64_t i = lo; i <= hi; i++) {
            if (i < c->h_base || i > last_in)
                continue;
            acc += c->hist[i - c->h_base] * kernel(c, t - (double)i);
        }
        o[k++] = (float)(acc > 1.0 ? 1.0 : acc < -1.0 ? -1.0 : acc);
        c->k_out++;
    }
    /* keep what the next output still reaches back to */
    int64_t need = (int64_t)floor((double)c->k_out * c->ratio - c->half) - 1;
    if (need > c->h_base + 4096) {
        size_t drop = (size_t)(need - c->h_base);
        if (drop > c->n_hist)
            drop = c->n_hist;
        memmove(c->hist, c->hist + drop, (c->n_hist - drop) * sizeof(float));
        c->n_hist -= drop;
        c->h_base += (int64_t)drop;
    }
    *out = o;
    *n_out = k;
    return SD_OK;
}

enum sd_err rt_pcm_push(struct rt_pcm *c, const void *bytes, size_t n_bytes, float **out,
                        size_t *n_out, struct sd_error *err)
{
    float *s = NULL;
    size_t n = 0;
    enum sd_err rc = decode_bytes(c, bytes, n_bytes, &s, &n, err);
    if (rc != SD_OK)
        return rc;
    if (c->rate == RT_SAMPLE_RATE || n == 0) {
        *out = s;
        *n_out = n;
        return SD_OK;
    }
    if (c->n_hist + n > c->cap_hist) {
        size_t cap = c->cap_hist ? c->cap_hist : 8192;
        while (cap < c->n_hist + n)
            cap *= 2;
        float *h = realloc(c->hist, cap * sizeof(float));
        if (!h) {
            free(s);
            return sd_fail(err, SD_ENOMEM, "resampler history");
        }
        c->hist = h;
        c->cap_hist = cap;
    }
    memcpy(c->hist + c->n_hist, s, n * sizeof(float));
    c->n_hist += n;
    c->n_in += (int64_t)n;
    free(s);
    return resample(c, false, out, n_out, err);
}

enum sd_err rt_pcm_flush(struct rt_pcm *c, float **out, size_t *n_out, struct sd_error *err)
{
    if (c->rate == RT_SAMPLE_RATE || c->n_in == 0) {
        *out = NULL;
        *n_out = 0;
        return SD_OK;
    }
    return resample(c, true, out, n_out, err);
}

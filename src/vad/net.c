/*
 * net.c - the Silero VAD forward pass, one 512-sample window at a time, on a
 * per-stream struct vad_state (LSTM memory + scratch; no globals).
 *
 * Per window, as whisper.cpp runs it: reflect-pad by 64 samples (640), STFT
 * as a conv with the 258x256 basis at hop 128 (4 frames), magnitude of 129
 * bins, four conv1d (k 3, pad 1, strides 1 2 2 1) + ReLU, the single
 * remaining time step (128) into one LSTM step (gates i f g o), ReLU, a
 * 128 -> 1 projection, sigmoid. Convolutions run as im2col + dot products.
 * In reference precision each conv input is rounded to f16 first, as
 * ggml_conv_1d does. Single-threaded on purpose: a window is ~0.7 MFLOP and
 * the LSTM makes windows sequential; parallelism belongs to the caller.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "vad/silero.h"
#include "vad/vad.h"

/* im2col width of the widest layer: 129 channels x 3 taps */
#define COL_MAX (SILERO_N_FFT_BINS * SILERO_KERNEL)

struct vad_state {
    const struct vad_model *model;
    enum vad_precision precision;
    float h[SILERO_HIDDEN];
    float c[SILERO_HIDDEN];
    /* scratch, reused every window */
    float x[SILERO_PADDED];
    float stft[SILERO_N_FRAMES][SILERO_STFT_ROWS];
    float act_a[SILERO_HIDDEN * SILERO_N_FRAMES]; /* [channel][time] */
    float act_b[SILERO_HIDDEN * SILERO_N_FRAMES];
    float col[SILERO_N_FRAMES][COL_MAX];
    float xh[2 * SILERO_HIDDEN];                   /* LSTM input | previous h */
    float gates[4 * SILERO_HIDDEN];
};

/* Rounds to the nearest f16 value (ties to even), kept as a float. */
static float round_f16(float v)
{
    uint32_t u;
    memcpy(&u, &v, sizeof u);
    uint32_t mag = u & 0x7fffffffu;
    if (mag >= 0x7f800000u) /* inf / nan */
        return v;
    if (mag < 0x38800000u) { /* below 2^-14: f16 subnormal, spacing 2^-24 */
        float scaled = v * 16777216.0f;
        return nearbyintf(scaled) / 16777216.0f;
    }
    /* keep 10 mantissa bits: add half an ulp (+ the kept lsb for ties-to-even), truncate */
    u += 0x0fffu + ((u >> 13) & 1u);
    u &= ~0x1fffu;
    if ((u & 0x7fffffffu) > 0x477fe000u) /* beyond 65504: f16 overflows to inf */
        u = (u & 0x80000000u) | 0x7f800000u;
    float r;
    memcpy(&r, &u, sizeof r);
    return r;
}

static void round_f16_all(float *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        v[i] = round_f16(v[i]);
}

/* Eight independent partial sums so the compiler can keep them in vector lanes. */
static float dot(const float *a, const float *b, int n)
{
    float acc[8] = {0};
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++)
            acc[j] += a[i + j] * b[i + j];
    float s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (; i < n; i++)
        s += a[i] * b[i];
    return s;
}

static float sigmoid(float v)
{
    return 1.0f / (1.0f + expf(-v));
}

enum sd_err vad_state_new(const struct vad_model *model, enum vad_precision precision,
                          struct vad_state **out, struct sd_error *err)
{
    if (!model || !out)
        return sd_fail(err, SD_EINVAL, "vad_state_new: NULL argument");
    if (precision != VAD_PRECISION_REFERENCE && precision != VAD_PRECISION_F32)
        return sd_fail(err, SD_EINVAL, "vad_state_new: unknown precision %d", (int)precision);
    struct vad_state *st = calloc(1, sizeof *st);
    if (!st)
        return sd_fail(err, SD_ENOMEM, "out of memory for the VAD state");
    st->model = model;
    st->precision = precision;
    *out = st;
    return SD_OK;
}

void vad_state_free(struct vad_state *st)
{
    free(st);
}

void vad_state_reset(struct vad_state *st)
{
    memset(st->h, 0, sizeof st->h);
    memset(st->c, 0, sizeof st->c);
}

/* 640 samples: the window (zero-padded to 512) with 64 mirrored samples each side. */
static void reflect_pad(float *x, const float *samples, size_t n)
{
    float *w = x + SILERO_PAD;
    size_t m = n < VAD_WINDOW_SAMPLES ? n : VAD_WINDOW_SAMPLES;
    memcpy(w, samples, m * sizeof(float));
    memset(w + m, 0, (VAD_WINDOW_SAMPLES - m) * sizeof(float));
    for (int i = 1; i <= SILERO_PAD; i++) { /* the edge sample itself is not repeated */
        x[SILERO_PAD - i] = w[i];
        x[SILERO_PAD + VAD_WINDOW_SAMPLES - 1 + i] = w[VAD_WINDOW_SAMPLES - 1 - i];
    }
}

/* STFT magnitude into out[bin][frame] (channel-major, as the conv layers read it). */
static void stft_magnitude(struct vad_state *st, float *out)
{
    const struct vad_model *m = st->model;
    for (int f = 0; f < SILERO_N_FRAMES; f++) {
        const float *seg = st->x + f * SILERO_STFT_HOP;
        for (int r = 0; r < SILERO_STFT_ROWS; r++)
            st->stft[f][r] = dot(m->stft + (size_t)r * SILERO_STFT_LEN, seg, SILERO_STFT_LEN);
    }
    for (int b = 0; b < SILERO_N_FFT_BINS; b++)
        for (int f = 0; f < SILERO_N_FRAMES; f++) {
            float re = st->stft[f][b], im = st->stft[f][b + SILERO_N_FFT_BINS];
            out[b * SILERO_N_FRAMES + f] = sqrtf(re * re + im * im);
        }
}

/*
 * conv1d (kernel 3, padding 1) + bias + ReLU. in[ch][len] -> out[oc][len_out].
 * Returns len_out. The im2col rows put (channel, tap) pairs in the weights' order.
 */
static int conv_relu(struct vad_state *st, int layer, const float *in, int len, float *out)
{
    const struct vad_model *m = st->model;
    int n_in = m->enc_in[layer], n_out = m->enc_out[layer], stride = m->enc_stride[layer];
    int len_out = (len + 2 - SILERO_KERNEL) / stride + 1;
    int width = n_in * SILERO_KERNEL;
    for (int t = 0; t < len_out; t++) {
        float *col = st->col[t];
        for (int c = 0; c < n_in; c++)
            for (int k = 0; k < SILERO_KERNEL; k++) {
                int pos = t * stride + k - 1;
                col[c * SILERO_KERNEL + k] = (pos >= 0 && pos < len) ? in[c * len + pos] : 0.0f;
            }
        if (st->precision == VAD_PRECISION_REFERENCE)
            round_f16_all(col, (size_t)width);
    }
    for (int o = 0; o < n_out; o++) {
        const float *w = m->enc_w[layer] + (size_t)o * width;
        for (int t = 0; t < len_out; t++) {
            float v = dot(w, st->col[t], width) + m->enc_b[layer][o];
            out[o * len_out + t] = v > 0.0f ? v : 0.0f;
        }
    }
    return len_out;
}

/* One LSTM step on st->xh = [input | h]; updates h and c (PyTorch gate order i, f, g, o). */
static void lstm_step(struct vad_state *st)
{
    const struct vad_model *m = st->model;
    for (int r = 0; r < 4 * SILERO_HIDDEN; r++)
        st->gates[r] = dot(m->lstm_w + (size_t)r * 2 * SILERO_HIDDEN, st->xh, 2 * SILERO_HIDDEN) +
                       m->lstm_b[r];
    for (int k = 0; k < SILERO_HIDDEN; k++) {
        float gi = sigmoid(st->gates[k]);
        float gf = sigmoid(st->gates[SILERO_HIDDEN + k]);
        float gg = tanhf(st->gates[2 * SILERO_HIDDEN + k]);
        float go = sigmoid(st->gates[3 * SILERO_HIDDEN + k]);
        st->c[k] = gf * st->c[k] + gi * gg;
        st->h[k] = go * tanhf(st->c[k]);
    }
}

float vad_state_step(struct vad_state *st, const float *samples, size_t n_samples)
{
    const struct vad_model *m = st->model;
    int ref = st->precision == VAD_PRECISION_REFERENCE;
    reflect_pad(st->x, samples, n_samples);
    if (ref)
        round_f16_all(st->x, SILERO_PADDED);
    stft_magnitude(st, st->act_a);
    int len = SILERO_N_FRAMES;
    len = conv_relu(st, 0, st->act_a, len, st->act_b);
    len = conv_relu(st, 1, st->act_b, len, st->act_a);
    len = conv_relu(st, 2, st->act_a, len, st->act_b);
    len = conv_relu(st, 3, st->act_b, len, st->act_a);
    /* first time step of the encoder output (len is 1 for 512-sample windows) */
    for (int k = 0; k < SILERO_HIDDEN; k++)
        st->xh[k] = st->act_a[k * len];
    memcpy(st->xh + SILERO_HIDDEN, st->h, sizeof st->h);
    lstm_step(st);
    float relu_h[SILERO_HIDDEN];
    for (int k = 0; k < SILERO_HIDDEN; k++)
        relu_h[k] = st->h[k] > 0.0f ? st->h[k] : 0.0f;
    if (ref)
        round_f16_all(relu_h, SILERO_HIDDEN);
    return sigmoid(dot(m->out_w, relu_h, SILERO_HIDDEN) + m->out_b);
}

enum sd_err vad_probs(const struct vad_model *model, const float *pcm, size_t n_samples,
                      enum vad_precision precision, float **probs, size_t *n_probs,
                      struct sd_error *err)
{
    if (!model || (!pcm && n_samples) || !probs || !n_probs)
        return sd_fail(err, SD_EINVAL, "vad_probs: NULL argument");
    size_t n = (n_samples + VAD_WINDOW_SAMPLES - 1) / VAD_WINDOW_SAMPLES;
    if (n == 0) {
        *probs = NULL;
        *n_probs = 0;
        return SD_OK;
    }
    struct vad_state *st = NULL;
    enum sd_err rc = vad_state_new(model, precision, &st, err);
    if (rc != SD_OK)
        return rc;
    float *p = malloc(n * sizeof *p);
    if (!p) {
        vad_state_free(st);
        return sd_fail(err, SD_ENOMEM, "out of memory for %zu VAD probabilities", n);
    }
    for (size_t i = 0; i < n; i++) {
        size_t off = i * VAD_WINDOW_SAMPLES;
        p[i] = vad_state_step(st, pcm + off, n_samples - off);
    }
    vad_state_free(st);
    *probs = p;
    *n_probs = n;
    return SD_OK;
}

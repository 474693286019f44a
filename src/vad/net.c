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
 * ggml_conv_1d does. The conv front end has no memory, so it runs on batches
 * of 16 windows (each weight row is read once per batch: the 1.3 MB of f32
 * weights would otherwise stream from cache for every window); the LSTM then
 * steps window by window. Single-threaded on purpose: parallelism belongs to
 * the caller (one state per stream).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "vad/silero.h"
#include "vad/vad.h"

/* im2col width of the widest layer: 129 channels x 3 taps */
#define COL_MAX (SILERO_N_FFT_BINS * SILERO_KERNEL)
/* windows whose conv front end runs together: each weight row is loaded once per batch */
#define BATCH 16
/* largest activation of one window: the 129 x 4 STFT magnitude */
#define ACT_MAX (SILERO_N_FFT_BINS * SILERO_N_FRAMES)

struct vad_state {
    const struct vad_model *model;
    enum vad_precision precision;
    float h[SILERO_HIDDEN];
    float c[SILERO_HIDDEN];
    /* scratch, reused every batch; [window][...] */
    float x[BATCH][SILERO_PADDED];
    float stft[BATCH][SILERO_N_FRAMES][SILERO_STFT_ROWS];
    float act_a[BATCH][ACT_MAX]; /* [channel][time] per window */
    float act_b[BATCH][ACT_MAX];
    float col[BATCH][SILERO_N_FRAMES][COL_MAX];
    float xh[2 * SILERO_HIDDEN];                          /* LSTM input | previous h */
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

/* Four-float vectors (GCC/Clang vector extension; SSE or NEON without extra flags). */
typedef float v4f __attribute__((vector_size(16)));

static inline v4f load4(const float *p)
{
    v4f v;
    memcpy(&v, p, sizeof v); /* unaligned */
    return v;
}

/*
 * Dot products with a fixed summation order: two vector accumulators over
 * 8-float blocks, a 4-float step, the lanes, then a scalar tail. dot4 gives
 * each of its four results with exactly the arithmetic of dot (so batching
 * never changes a number) while loading the shared operand once.
 */
static float dot(const float *a, const float *b, int n)
{
    v4f s0 = {0}, s1 = {0};
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        s0 += load4(a + i) * load4(b + i);
        s1 += load4(a + i + 4) * load4(b + i + 4);
    }
    if (i + 4 <= n) {
        s0 += load4(a + i) * load4(b + i);
        i += 4;
    }
    v4f s = s0 + s1;
    float r = (s[0] + s[1]) + (s[2] + s[3]);
    for (; i < n; i++)
        r += a[i] * b[i];
    return r;
}

/* out[k] = dot(a, b[k], n) for k < 4, bit for bit. Unrolled by hand: the
 * eight accumulators must stay in registers (an array of them does not). */
static void dot4(const float *a, const float *const b[4], int n, float out[4])
{
    const float *b0 = b[0], *b1 = b[1], *b2 = b[2], *b3 = b[3];
    v4f p0 = {0}, p1 = {0}, p2 = {0}, p3 = {0}; /* lanes 0-3 of each block */
    v4f q0 = {0}, q1 = {0}, q2 = {0}, q3 = {0}; /* lanes 4-7 */
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        v4f x = load4(a + i), y = load4(a + i + 4);
        p0 += x * load4(b0 + i);
        p1 += x * load4(b1 + i);
        p2 += x * load4(b2 + i);
        p3 += x * load4(b3 + i);
        q0 += y * load4(b0 + i + 4);
        q1 += y * load4(b1 + i + 4);
        q2 += y * load4(b2 + i + 4);
        q3 += y * load4(b3 + i + 4);
    }
    if (i + 4 <= n) {
        v4f x = load4(a + i);
        p0 += x * load4(b0 + i);
        p1 += x * load4(b1 + i);
        p2 += x * load4(b2 + i);
        p3 += x * load4(b3 + i);
        i += 4;
    }
    v4f s[4] = {p0 + q0, p1 + q1, p2 + q2, p3 + q3};
    for (int k = 0; k < 4; k++) {
        float r = (s[k][0] + s[k][1]) + (s[k][2] + s[k][3]);
        for (int j = i; j < n; j++)
            r += a[j] * b[k][j];
        out[k] = r;
    }
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

/* STFT magnitude of windows [0, nb) into act[w][bin][frame] (channel-major, as the convs read). */
static void stft_magnitude(struct vad_state *st, int nb, float (*act)[ACT_MAX])
{
    const struct vad_model *m = st->model;
    for (int r = 0; r < SILERO_STFT_ROWS; r++) {
        const float *basis = m->stft + (size_t)r * SILERO_STFT_LEN;
        for (int w = 0; w < nb; w++) {
            const float *frames[4] = {st->x[w], st->x[w] + SILERO_STFT_HOP,
                                      st->x[w] + 2 * SILERO_STFT_HOP, st->x[w] + 3 * SILERO_STFT_HOP};
            float v[4];
            dot4(basis, frames, SILERO_STFT_LEN, v);
            for (int f = 0; f < SILERO_N_FRAMES; f++)
                st->stft[w][f][r] = v[f];
        }
    }
    for (int w = 0; w < nb; w++)
        for (int b = 0; b < SILERO_N_FFT_BINS; b++)
            for (int f = 0; f < SILERO_N_FRAMES; f++) {
                float re = st->stft[w][f][b], im = st->stft[w][f][b + SILERO_N_FFT_BINS];
                act[w][b * SILERO_N_FRAMES + f] = sqrtf(re * re + im * im);
            }
}

/*
 * conv1d (kernel 3, padding 1) + bias + ReLU on windows [0, nb):
 * in[w][ch][len] -> out[w][oc][len_out]. Returns len_out. The im2col rows put
 * (channel, tap) pairs in the weights' order.
 */
static int conv_relu(struct vad_state *st, int layer, int nb,
                     float (*in)[ACT_MAX], int len,
                     float (*out)[ACT_MAX])
{
    const struct vad_model *m = st->model;
    int n_in = m->enc_in[layer], n_out = m->enc_out[layer], stride = m->enc_stride[layer];
    int len_out = (len + 2 - SILERO_KERNEL) / stride + 1;
    int width = n_in * SILERO_KERNEL;
    for (int w = 0; w < nb; w++)
        for (int t = 0; t < len_out; t++) {
            float *col = st->col[w][t];
            for (int c = 0; c < n_in; c++)
                for (int k = 0; k < SILERO_KERNEL; k++) {
                    int pos = t * stride + k - 1;
                    col[c * SILERO_KERNEL + k] = (pos >= 0 && pos < len) ? in[w][c * len + pos] : 0.0f;
                }
            if (st->precision == VAD_PRECISION_REFERENCE)
                round_f16_all(col, (size_t)width);
        }
    int n_cols = nb * len_out; /* column j = window j / len_out, time j % len_out */
    for (int o = 0; o < n_out; o++) {
        const float *wr = m->enc_w[layer] + (size_t)o * width;
        float bias = m->enc_b[layer][o], v[4];
        for (int j = 0; j < n_cols; j += 4) {
            int nj = n_cols - j < 4 ? n_cols - j : 4;
            if (nj == 4) {
                const float *cols[4];
                for (int k = 0; k < 4; k++)
                    cols[k] = st->col[(j + k) / len_out][(j + k) % len_out];
                dot4(wr, cols, width, v);
            } else {
                for (int k = 0; k < nj; k++)
                    v[k] = dot(wr, st->col[(j + k) / len_out][(j + k) % len_out], width);
            }
            for (int k = 0; k < nj; k++) {
                float y = v[k] + bias;
                out[(j + k) / len_out][o * len_out + (j + k) % len_out] = y > 0.0f ? y : 0.0f;
            }
        }
    }
    return len_out;
}

/* One LSTM step on st->xh = [input | h]; updates h and c (PyTorch gate order i, f, g, o). */
static void lstm_step(struct vad_state *st)
{
    const struct vad_model *m = st->model;
    for (int r = 0; r < 4 * SILERO_HIDDEN; r += 4) { /* a * b == b * a: share xh */
        const float *rows[4];
        for (int k = 0; k < 4; k++)
            rows[k] = m->lstm_w + (size_t)(r + k) * 2 * SILERO_HIDDEN;
        dot4(st->xh, rows, 2 * SILERO_HIDDEN, st->gates + r);
        for (int k = 0; k < 4; k++)
            st->gates[r + k] += m->lstm_b[r + k];
    }
    for (int k = 0; k < SILERO_HIDDEN; k++) {
        float gi = sigmoid(st->gates[k]);
        float gf = sigmoid(st->gates[SILERO_HIDDEN + k]);
        float gg = tanhf(st->gates[2 * SILERO_HIDDEN + k]);
        float go = sigmoid(st->gates[3 * SILERO_HIDDEN + k]);
        st->c[k] = gf * st->c[k] + gi * gg;
        st->h[k] = go * tanhf(st->c[k]);
    }
}

/* LSTM + output layer for one encoded window (features = first time step of `enc`). */
static float decode_window(struct vad_state *st, const float *enc, int len)
{
    const struct vad_model *m = st->model;
    for (int k = 0; k < SILERO_HIDDEN; k++)
        st->xh[k] = enc[k * len];
    memcpy(st->xh + SILERO_HIDDEN, st->h, sizeof st->h);
    lstm_step(st);
    float relu_h[SILERO_HIDDEN];
    for (int k = 0; k < SILERO_HIDDEN; k++)
        relu_h[k] = st->h[k] > 0.0f ? st->h[k] : 0.0f;
    if (st->precision == VAD_PRECISION_REFERENCE)
        round_f16_all(relu_h, SILERO_HIDDEN);
    return sigmoid(dot(m->out_w, relu_h, SILERO_HIDDEN) + m->out_b);
}

/*
 * nb <= BATCH consecutive windows starting at pcm (n_avail samples available
 * from there; the rest is zero-padding): conv front end for all of them, then
 * the LSTM window by window. Same arithmetic for any nb.
 */
static void run_batch(struct vad_state *st, const float *pcm, size_t n_avail, int nb, float *probs)
{
    for (int w = 0; w < nb; w++) {
        size_t off = (size_t)w * VAD_WINDOW_SAMPLES;
        reflect_pad(st->x[w], pcm + (off < n_avail ? off : 0), off < n_avail ? n_avail - off : 0);
        if (st->precision == VAD_PRECISION_REFERENCE)
            round_f16_all(st->x[w], SILERO_PADDED);
    }
    stft_magnitude(st, nb, st->act_a);
    int len = SILERO_N_FRAMES;
    len = conv_relu(st, 0, nb, st->act_a, len, st->act_b);
    len = conv_relu(st, 1, nb, st->act_b, len, st->act_a);
    len = conv_relu(st, 2, nb, st->act_a, len, st->act_b);
    len = conv_relu(st, 3, nb, st->act_b, len, st->act_a);
    for (int w = 0; w < nb; w++)
        probs[w] = decode_window(st, st->act_a[w], len);
}

float vad_state_step(struct vad_state *st, const float *samples, size_t n_samples)
{
    float p;
    run_batch(st, samples, n_samples, 1, &p);
    return p;
}

void vad_state_run(struct vad_state *st, const float *pcm, size_t n_samples, float *probs)
{
    size_t n = (n_samples + VAD_WINDOW_SAMPLES - 1) / VAD_WINDOW_SAMPLES;
    for (size_t i = 0; i < n; i += BATCH) {
        int nb = n - i < BATCH ? (int)(n - i) : BATCH;
        size_t off = i * VAD_WINDOW_SAMPLES;
        run_batch(st, pcm + off, n_samples - off, nb, probs + i);
    }
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
    vad_state_run(st, pcm, n_samples, p);
    vad_state_free(st);
    *probs = p;
    *n_probs = n;
    return SD_OK;
}

/*
 * test_mel.c - unit tests of whisper/fft.c and whisper/mel.c on synthetic
 * input: the FFT against a naive DFT, shapes and padding of the spectrogram,
 * very short and empty input, windows past the end, argument checks.
 * (Agreement with whisper.cpp is in tests/conformance/test_mel.c.)
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "whisper/fft.h"
#include "whisper/mel.h"

static void naive_dft(const double *x, int n, int k, double *re, double *im)
{
    *re = 0.0;
    *im = 0.0;
    for (int j = 0; j < n; j++) {
        double th = 2.0 * M_PI * (double)j * k / n;
        *re += x[j] * cos(th);
        *im -= x[j] * sin(th);
    }
}

static void fft_check_size(int n)
{
    struct fft_plan *p = NULL;
    struct sd_error err = {0};
    CHECK_OK(fft_plan_create(n, &p, &err), &err);
    CHECK_EQ_INT(fft_plan_size(p), n);
    double *x = malloc(sizeof(double) * n), *work = malloc(sizeof(double) * 4 * n);
    double *re = malloc(sizeof(double) * (n / 2 + 1)), *im = malloc(sizeof(double) * (n / 2 + 1));
    srand(12345);
    for (int j = 0; j < n; j++)
        x[j] = (double)rand() / RAND_MAX - 0.5;
    fft_real_forward(p, x, re, im, work);
    for (int k = 0; k <= n / 2; k++) {
        double er, ei;
        naive_dft(x, n, k, &er, &ei);
        CHECK_NEAR(re[k], er, 1e-10);
        CHECK_NEAR(im[k], ei, 1e-10);
    }
    free(x);
    free(work);
    free(re);
    free(im);
    fft_plan_free(p);
}

TEST(mel_fft_matches_naive_dft)
{
    fft_check_size(400);
    fft_check_size(1);
    fft_check_size(2);
    fft_check_size(25);
    fft_check_size(64);
    fft_check_size(96);
}

TEST(mel_fft_rejects_bad_size)
{
    struct fft_plan *p = NULL;
    struct sd_error err = {0};
    CHECK_EQ_INT(fft_plan_create(0, &p, &err), SD_EINVAL);
    CHECK_EQ_INT(fft_plan_create(2 * 2039, &p, &err), SD_EINVAL);
    CHECK(p == NULL);
}

/* Triangular filters over 201 bins, enough to exercise the code paths. */
static float *test_filters(int n_mels)
{
    float *f = calloc((size_t)n_mels * 201, sizeof(float));
    for (int m = 0; m < n_mels; m++) {
        int c = 1 + m * 199 / n_mels;
        for (int k = c - 2; k <= c + 2; k++)
            if (k >= 0 && k < 201)
                f[m * 201 + k] = 0.01f * (float)(3 - abs(k - c));
    }
    return f;
}

TEST(mel_shapes_and_padding)
{
    const int n_mels = 80;
    float *filters = test_filters(n_mels);
    size_t n = 16000; /* 1 s of a 1 kHz tone */
    float *pcm = malloc(sizeof(float) * n);
    for (size_t i = 0; i < n; i++)
        pcm[i] = 0.5f * (float)sin(2.0 * M_PI * 1000.0 * (double)i / 16000.0);
    struct mel_spec m = {0};
    struct sd_error err = {0};
    CHECK_OK(mel_compute(pcm, n, filters, n_mels, 3, &m, &err), &err);
    CHECK_EQ_INT(m.n_mels, n_mels);
    CHECK_EQ_INT(m.n_frames, (16000 + 480000) / 160);
    CHECK_EQ_INT(m.n_frames_audio, 1 + (16000 + 200 - 400) / 160);
    /* values are normalised: max is (gmax + 4) / 4, nothing below max - 2 */
    float mx = -1e9f, mn = 1e9f;
    for (size_t i = 0; i < (size_t)n_mels * m.n_frames; i++) {
        mx = m.data[i] > mx ? m.data[i] : mx;
        mn = m.data[i] < mn ? m.data[i] : mn;
    }
    CHECK_NEAR(mx - mn, 2.0, 1e-5);
    CHECK_NEAR(m.pad_value, mn, 1e-6);
    CHECK_NEAR(m.data[m.n_frames - 1], m.pad_value, 0);
    /* the 1 kHz tone lands in bin 25: the filter centred there is the loudest in mid-clip */
    int best = 0;
    for (int r = 0; r < n_mels; r++)
        if (m.data[(size_t)r * m.n_frames + 50] > m.data[(size_t)best * m.n_frames + 50])
            best = r;
    CHECK_EQ_INT(1 + best * 199 / n_mels, 25);

    float *win = malloc(sizeof(float) * n_mels * MEL_FRAMES_PER_WINDOW);
    mel_window(&m, m.n_frames - 10, win);
    CHECK_NEAR(win[0], m.data[m.n_frames - 10], 0);
    CHECK_NEAR(win[100], m.pad_value, 0);
    mel_window(&m, -5, win);
    CHECK_NEAR(win[0], m.pad_value, 0);
    CHECK_NEAR(win[5], m.data[0], 0);
    free(win);
    mel_spec_free(&m);
    CHECK(m.data == NULL);
    mel_spec_free(&m); /* twice is harmless */
    free(pcm);
    free(filters);
}

TEST(mel_empty_and_tiny_input)
{
    float *filters = test_filters(80);
    struct mel_spec m = {0};
    struct sd_error err = {0};
    CHECK_OK(mel_compute(NULL, 0, filters, 80, 2, &m, &err), &err);
    CHECK_EQ_INT(m.n_frames, 3000);
    CHECK_EQ_INT(m.n_frames_audio, 0);
    for (size_t i = 0; i < 80 * 3000; i++)
        CHECK_NEAR(m.data[i], -1.5, 0);
    CHECK_NEAR(m.pad_value, -1.5, 0);
    mel_spec_free(&m);

    float tiny[3] = {0.5f, -0.25f, 0.125f}; /* shorter than the 200-sample reflection */
    for (size_t n = 1; n <= 3; n++) {
        CHECK_OK(mel_compute(tiny, n, filters, 80, 1, &m, &err), &err);
        CHECK_EQ_INT(m.n_frames, (int)((n + 480000) / 160));
        for (size_t i = 0; i < 80 * (size_t)m.n_frames; i++)
            CHECK(isfinite(m.data[i]));
        mel_spec_free(&m);
    }
    free(filters);
}

TEST(mel_rejects_bad_arguments)
{
    float *filters = test_filters(80);
    float pcm[10] = {0};
    struct mel_spec m = {0};
    struct sd_error err = {0};
    CHECK_EQ_INT(mel_compute(NULL, 10, filters, 80, 1, &m, &err), SD_EINVAL);
    CHECK_EQ_INT(mel_compute(pcm, 10, NULL, 80, 1, &m, &err), SD_EINVAL);
    CHECK_EQ_INT(mel_compute(pcm, 10, filters, 0, 1, &m, &err), SD_EINVAL);
    CHECK_EQ_INT(mel_compute(pcm, 10, filters, 80, 1, NULL, &err), SD_EINVAL);
    CHECK_EQ_INT(mel_compute(pcm, (size_t)1 << 40, filters, 80, 1, &m, &err), SD_ETOOBIG);
    CHECK(strlen(err.msg) > 0);
    CHECK(m.data == NULL);
    /* odd thread counts are clamped, not rejected */
    CHECK_OK(mel_compute(pcm, 10, filters, 80, 0, &m, &err), &err);
    mel_spec_free(&m);
    CHECK_OK(mel_compute(pcm, 10, filters, 80, 1000, &m, &err), &err);
    mel_spec_free(&m);
    free(filters);
}

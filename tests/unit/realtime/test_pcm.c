/*
 * test_pcm.c - client sample formats and the resampler (realtime/pcm.h):
 * samples split across frames, f32 clamping and NaN, 24 kHz -> 16 kHz keeps
 * a tone's level and frequency, rates outside 8..48 kHz are refused.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "realtime/pcm.h"

TEST(rt_pcm_s16_split_across_frames)
{
    struct rt_pcm *c = NULL;
    struct sd_error err = {0};
    CHECK_OK(rt_pcm_new(RT_PCM_S16LE, 16000, &c, &err), &err);
    const unsigned char b[] = {0x00, 0x40, 0x00, 0xC0, 0xFF, 0x7F};
    float *o = NULL;
    size_t n = 0;
    CHECK_OK(rt_pcm_push(c, b, 3, &o, &n, &err), &err);
    CHECK_EQ_INT(n, 1);
    CHECK_NEAR(o[0], 0.5, 1e-6);
    free(o);
    CHECK_OK(rt_pcm_push(c, b + 3, 3, &o, &n, &err), &err);
    CHECK_EQ_INT(n, 2);
    CHECK_NEAR(o[0], -0.5, 1e-6);
    CHECK_NEAR(o[1], 32767.0 / 32768.0, 1e-6);
    free(o);
    rt_pcm_free(c);
}

TEST(rt_pcm_f32_clamps_and_zeroes_nan)
{
    struct rt_pcm *c = NULL;
    struct sd_error err = {0};
    CHECK_OK(rt_pcm_new(RT_PCM_F32LE, 16000, &c, &err), &err);
    float in[3] = {2.0f, NAN, -0.25f};
    float *o = NULL;
    size_t n = 0;
    CHECK_OK(rt_pcm_push(c, in, sizeof(in), &o, &n, &err), &err);
    CHECK_EQ_INT(n, 3);
    CHECK_NEAR(o[0], 1.0, 0);
    CHECK_NEAR(o[1], 0.0, 0);
    CHECK_NEAR(o[2], -0.25, 0);
    free(o);
    rt_pcm_free(c);
}

TEST(rt_pcm_rates_are_checked)
{
    struct rt_pcm *c = NULL;
    struct sd_error err = {0};
    CHECK(rt_pcm_new(RT_PCM_S16LE, 7999, &c, &err) == SD_EINVAL);
    CHECK(rt_pcm_new(RT_PCM_S16LE, 48001, &c, &err) == SD_EINVAL);
}

static void resample_tone(int rate, double hz)
{
    struct rt_pcm *c = NULL;
    struct sd_error err = {0};
    CHECK_OK(rt_pcm_new(RT_PCM_F32LE, rate, &c, &err), &err);
    size_t n_in = (size_t)rate; /* 1 s, pushed in uneven pieces */
    float *in = malloc(n_in * sizeof(float));
    for (size_t i = 0; i < n_in; i++)
        in[i] = 0.5f * (float)sin(2 * M_PI * hz * (double)i / rate);
    float *all = malloc(20000 * sizeof(float));
    size_t total = 0;
    for (size_t i = 0; i < n_in;) {
        size_t k = 777 < n_in - i ? 777 : n_in - i;
        float *o = NULL;
        size_t n = 0;
        CHECK_OK(rt_pcm_push(c, in + i, k * sizeof(float), &o, &n, &err), &err);
        memcpy(all + total, o, n * sizeof(float));
        total += n;
        free(o);
        i += k;
    }
    float *o = NULL;
    size_t n = 0;
    CHECK_OK(rt_pcm_flush(c, &o, &n, &err), &err);
    memcpy(all + total, o, n * sizeof(float));
    total += n;
    free(o);
    CHECK_MSG(total >= 15990 && total <= 16001, "%zu samples out", total);
    /* away from the edges the output is the same tone at 16 kHz */
    double err_sq = 0, ref_sq = 0;
    for (size_t i = 400; i < 15600; i++) {
        double want = 0.5 * sin(2 * M_PI * hz * (double)i / 16000.0);
        err_sq += (all[i] - want) * (all[i] - want);
        ref_sq += want * want;
    }
    CHECK_MSG(sqrt(err_sq / ref_sq) < 0.01, "relative error %g", sqrt(err_sq / ref_sq));
    free(all);
    free(in);
    rt_pcm_free(c);
}

TEST(rt_pcm_resamples_24k_and_8k_and_48k)
{
    resample_tone(24000, 1000.0);
    resample_tone(8000, 440.0);
    resample_tone(48000, 3000.0);
}

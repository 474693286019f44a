/* Tests of vad/segments.c on synthetic probability sequences (no model). */
#include <stdint.h>
#include <stdlib.h>

#include "check.h"
#include "vad/vad.h"

#define W VAD_WINDOW_SAMPLES

/* n windows at 0.0 with [a, b) set to p. */
static float *probs_with(size_t n, size_t a, size_t b, float p)
{
    float *v = calloc(n, sizeof *v);
    for (size_t i = a; i < b && i < n; i++)
        v[i] = p;
    return v;
}

static size_t run(const float *probs, size_t n, const struct vad_params *p, struct vad_segment **s)
{
    size_t ns = 99;
    struct sd_error err = {0};
    CHECK_OK(vad_segments_from_probs(probs, n, p, s, &ns, &err), &err);
    return ns;
}

TEST(vad_seg_empty_and_silent)
{
    struct vad_params p = vad_params_default();
    struct vad_segment *s = (void *)1;
    CHECK_EQ_INT(run(NULL, 0, &p, &s), 0);
    CHECK(s == NULL);
    float *z = probs_with(100, 0, 0, 0.0f);
    CHECK_EQ_INT(run(z, 100, &p, &s), 0);
    free(z);
}

TEST(vad_seg_single_span_padded)
{
    struct vad_params p = vad_params_default();
    float *v = probs_with(100, 10, 40, 0.9f);
    struct vad_segment *s = NULL;
    CHECK_EQ_INT(run(v, 100, &p, &s), 1);
    /* raw [10 W, 40 W) + 100 ms (1600 samples) of padding each side */
    CHECK_EQ_INT(s[0].start, 10 * W - 1600);
    CHECK_EQ_INT(s[0].end, 40 * W + 1600);
    free(s);
    free(v);
}

TEST(vad_seg_speech_to_the_end_and_clamping)
{
    struct vad_params p = vad_params_default();
    float *v = probs_with(50, 0, 50, 0.99f);
    struct vad_segment *s = NULL;
    CHECK_EQ_INT(run(v, 50, &p, &s), 1);
    CHECK_EQ_INT(s[0].start, 0);      /* padding clamped at 0 */
    CHECK_EQ_INT(s[0].end, 50 * W);   /* and at the audio length n_probs * 512 */
    free(s);
    free(v);
}

TEST(vad_seg_short_gap_does_not_split_long_gap_does)
{
    struct vad_params p = vad_params_default(); /* min silence 300 ms = 4800 samples */
    float *v = probs_with(200, 10, 40, 0.9f);
    for (int i = 47; i < 80; i++) /* gap of 7 windows = 224 ms */
        v[i] = 0.9f;
    for (int i = 92; i < 120; i++) /* gap of 12 windows = 384 ms */
        v[i] = 0.9f;
    struct vad_segment *s = NULL;
    CHECK_EQ_INT(run(v, 200, &p, &s), 2);
    CHECK_EQ_INT(s[0].start, 10 * W - 1600);
    CHECK_EQ_INT(s[1].end, 120 * W + 1600);
    free(s);
    free(v);
}

TEST(vad_seg_hysteresis_between_thresholds_keeps_speech)
{
    struct vad_params p = vad_params_default(); /* 0.35, end below 0.20 */
    float *v = probs_with(200, 10, 100, 0.9f);
    for (int i = 30; i < 80; i++)
        v[i] = 0.25f; /* low but above neg_threshold: still speech */
    struct vad_segment *s = NULL;
    CHECK_EQ_INT(run(v, 200, &p, &s), 1);
    CHECK_EQ_INT(s[0].end, 100 * W + 1600);
    free(s);
    free(v);
    /* an explicit neg_threshold above 0.25 ends it */
    p.neg_threshold = 0.3f;
    v = probs_with(200, 10, 100, 0.9f);
    for (int i = 30; i < 80; i++)
        v[i] = 0.25f;
    CHECK_EQ_INT(run(v, 200, &p, &s), 2);
    free(s);
    free(v);
}

TEST(vad_seg_short_speech_dropped)
{
    struct vad_params p = vad_params_default(); /* 250 ms = 4000 samples ~ 7.8 windows */
    float *v = probs_with(100, 10, 17, 0.9f); /* 7 windows = 3584 samples */
    struct vad_segment *s = NULL;
    CHECK_EQ_INT(run(v, 100, &p, &s), 0);
    free(v);
    v = probs_with(100, 10, 18, 0.9f); /* 8 windows = 4096 samples */
    CHECK_EQ_INT(run(v, 100, &p, &s), 1);
    free(s);
    free(v);
}

TEST(vad_seg_close_neighbours_share_the_gap)
{
    struct vad_params p = vad_params_default();
    p.min_silence_ms = 100;
    p.speech_pad_ms = 150; /* 2400 samples; the 8-window gap (4096) is < 2 * pad */
    float *v = probs_with(100, 10, 30, 0.9f);
    for (int i = 38; i < 60; i++)
        v[i] = 0.9f;
    struct vad_segment *s = NULL;
    CHECK_EQ_INT(run(v, 100, &p, &s), 2);
    CHECK_EQ_INT(s[0].end, 30 * W + 2048);
    CHECK_EQ_INT(s[1].start, 38 * W - 2048);
    CHECK_EQ_INT(s[1].end, 60 * W + 2400);
    free(s);
    free(v);
}

TEST(vad_seg_gap_under_200ms_merged)
{
    struct vad_params p = vad_params_default();
    p.min_silence_ms = 50; /* raw segments split at 2 windows of silence ... */
    float *v = probs_with(100, 10, 30, 0.9f);
    for (int i = 35; i < 60; i++) /* ... a 5-window (160 ms) gap: merged again */
        v[i] = 0.9f;
    struct vad_segment *s = NULL;
    CHECK_EQ_INT(run(v, 100, &p, &s), 1);
    CHECK_EQ_INT(s[0].start, 10 * W - 1600);
    CHECK_EQ_INT(s[0].end, 60 * W + 1600);
    free(s);
    free(v);
}

TEST(vad_seg_max_speech_splits_continuous_speech)
{
    struct vad_params p = vad_params_default();
    p.max_speech_s = 5; /* 80000 - 512 - 3200 = 76288 samples */
    size_t n = 16000 * 12 / W;
    float *v = probs_with(n, 0, n, 0.9f);
    struct vad_segment *s = NULL;
    size_t ns = run(v, n, &p, &s);
    CHECK(ns >= 2);
    for (size_t i = 0; i < ns; i++)
        CHECK_MSG(s[i].end - s[i].start <= 16000 * 5 + 2 * W, "segment %zu is %lld samples", i,
                  (long long)(s[i].end - s[i].start));
    free(s);
    free(v);
}

TEST(vad_seg_max_speech_prefers_a_pause)
{
    struct vad_params p = vad_params_default();
    p.max_speech_s = 5;
    size_t n = 16000 * 8 / W; /* 250 windows */
    float *v = probs_with(n, 0, n, 0.9f);
    for (int i = 100; i < 105; i++) /* 160 ms pause: > 98 ms, < min silence */
        v[i] = 0.0f;
    struct vad_segment *s = NULL;
    CHECK_EQ_INT(run(v, n, &p, &s), 2);
    CHECK_EQ_INT(s[0].start, 0);
    /* split at the pause: halves of the 5-window gap as padding */
    CHECK_EQ_INT(s[0].end, 100 * W + 5 * W / 2);
    CHECK_EQ_INT(s[1].start, 105 * W - 5 * W / 2);
    free(s);
    free(v);
}

TEST(vad_seg_params_checked)
{
    struct vad_params p = vad_params_default();
    struct sd_error err = {0};
    CHECK_OK(vad_params_check(&p, &err), &err);
    p.threshold = 0.0f;
    CHECK_EQ_INT(vad_params_check(&p, &err), SD_EINVAL);
    CHECK(strstr(err.msg, "threshold") != NULL);
    p = vad_params_default();
    p.min_silence_ms = -1;
    CHECK_EQ_INT(vad_params_check(&p, &err), SD_EINVAL);
    p = vad_params_default();
    p.speech_pad_ms = 100000000;
    CHECK_EQ_INT(vad_params_check(&p, &err), SD_EINVAL);
    p = vad_params_default();
    p.neg_threshold = 0.9f;
    CHECK_EQ_INT(vad_params_check(&p, &err), SD_EINVAL);
    float v[4] = {0};
    struct vad_segment *s = NULL;
    size_t ns = 0;
    CHECK_EQ_INT(vad_segments_from_probs(v, 4, &p, &s, &ns, &err), SD_EINVAL);
    CHECK_EQ_INT(vad_segments_from_probs(v, 4, NULL, &s, &ns, &err), SD_EINVAL);
}

TEST(vad_seg_centiseconds_round_half_up)
{
    CHECK_EQ_INT(vad_samples_to_cs(0), 0);
    CHECK_EQ_INT(vad_samples_to_cs(79), 0);   /* 0.49 cs */
    CHECK_EQ_INT(vad_samples_to_cs(80), 1);   /* 0.5 cs */
    CHECK_EQ_INT(vad_samples_to_cs(14272), 89);
    CHECK_EQ_INT(vad_samples_to_cs(16000), 100);
}

TEST(vad_seg_defaults_are_the_seeds)
{
    struct vad_params p = vad_params_default();
    CHECK_NEAR(p.threshold, 0.35, 1e-7);
    CHECK_EQ_INT(p.min_silence_ms, 300);
    CHECK_EQ_INT(p.speech_pad_ms, 100);
    CHECK_EQ_INT(p.min_speech_ms, 250);
    CHECK_NEAR(p.max_speech_s, 30, 0);
    CHECK(p.neg_threshold < 0);
}

/* Random probability sequences and parameters: the output is always sorted,
 * disjoint, inside [0, n_probs * 512], and never shorter than min_speech. */
TEST(vad_seg_random_invariants)
{
    uint32_t r = 99;
    for (int trial = 0; trial < 400; trial++) {
        r = r * 1664525u + 1013904223u;
        size_t n = 1 + (r >> 8) % 3000;
        float *v = malloc(n * sizeof *v);
        float level = 0;
        for (size_t i = 0; i < n; i++) { /* random walk: runs of speech and silence */
            r = r * 1664525u + 1013904223u;
            level += ((r >> 8) % 1000) / 1000.0f - 0.5f;
            level = level < 0 ? 0 : level > 1 ? 1 : level;
            v[i] = level;
        }
        struct vad_params p = vad_params_default();
        r = r * 1664525u + 1013904223u;
        p.threshold = 0.05f + (r >> 8) % 90 / 100.0f;
        p.min_silence_ms = (int)((r >> 4) % 1000);
        p.min_speech_ms = (int)((r >> 12) % 800);
        p.speech_pad_ms = (int)((r >> 20) % 400);
        p.max_speech_s = (float)((r >> 16) % 8);
        struct vad_segment *s = NULL;
        size_t ns = run(v, n, &p, &s);
        int64_t len = (int64_t)n * VAD_WINDOW_SAMPLES, min_speech = 16LL * p.min_speech_ms;
        for (size_t i = 0; i < ns; i++) {
            CHECK(s[i].start >= 0 && s[i].start < s[i].end && s[i].end <= len);
            CHECK_MSG(s[i].end - s[i].start >= min_speech, "trial %d segment %zu too short", trial, i);
            if (i > 0)
                CHECK_MSG(s[i].start >= s[i - 1].end, "trial %d: segments %zu and %zu overlap",
                          trial, i - 1, i);
        }
        free(s);
        free(v);
    }
}

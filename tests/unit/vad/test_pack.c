/* Tests of vad/pack.c: packed speech-only audio and the time map back. */
#include <stdlib.h>

#include "check.h"
#include "vad/pack.h"

static float *ramp(size_t n)
{
    float *v = malloc(n * sizeof *v);
    for (size_t i = 0; i < n; i++)
        v[i] = (float)i;
    return v;
}

TEST(vad_pack_two_spans_with_gap)
{
    float *pcm = ramp(8000);
    struct vad_segment segs[] = {{1000, 3000}, {5000, 6000}};
    float *out = NULL;
    size_t n = 0;
    struct vad_map *map = NULL;
    struct sd_error err = {0};
    CHECK_OK(vad_pack(pcm, 8000, segs, 2, 100, &out, &n, &map, &err), &err);
    CHECK_EQ_INT(n, 2000 + 1600 + 1000);
    CHECK_EQ_INT(map->n_spans, 2);
    CHECK_EQ_INT(map->n_packed, (int64_t)n);
    CHECK_NEAR(out[0], 1000, 0);
    CHECK_NEAR(out[1999], 2999, 0);
    CHECK_NEAR(out[2000], 0, 0); /* the gap is silence */
    CHECK_NEAR(out[3599], 0, 0);
    CHECK_NEAR(out[3600], 5000, 0);
    CHECK_NEAR(out[4599], 5999, 0);
    const double sr = 16000.0;
    CHECK_NEAR(vad_map_time(map, 0.0), 1000 / sr, 1e-12);
    CHECK_NEAR(vad_map_time(map, 500 / sr), 1500 / sr, 1e-12);
    CHECK_NEAR(vad_map_time(map, 2000 / sr), 3000 / sr, 1e-12);
    CHECK_NEAR(vad_map_time(map, 2500 / sr), 3000 / sr, 1e-12); /* first half of the gap */
    CHECK_NEAR(vad_map_time(map, 3000 / sr), 5000 / sr, 1e-12); /* second half */
    CHECK_NEAR(vad_map_time(map, 3610 / sr), 5010 / sr, 1e-12);
    CHECK_NEAR(vad_map_time(map, 99.0), 6000 / sr, 1e-12);      /* past the end */
    CHECK_NEAR(vad_map_time(map, -1.0), 1000 / sr, 1e-12);
    free(out);
    vad_map_free(map);
    free(pcm);
}

TEST(vad_pack_map_is_monotonic)
{
    float *pcm = ramp(48000);
    struct vad_segment segs[] = {{100, 900}, {4000, 9000}, {9100, 20000}, {30000, 47000}};
    float *out = NULL;
    size_t n = 0;
    struct vad_map *map = NULL;
    struct sd_error err = {0};
    CHECK_OK(vad_pack(pcm, 48000, segs, 4, 50, &out, &n, &map, &err), &err);
    double prev = -1;
    for (size_t i = 0; i <= n + 100; i += 7) {
        double t = vad_map_time(map, i / 16000.0);
        CHECK(t >= prev);
        CHECK(t >= 100 / 16000.0 && t <= 47000 / 16000.0);
        prev = t;
    }
    /* every packed sample that came from the original maps to where it came from */
    for (size_t s = 0; s < map->n_spans; s++)
        for (int64_t k = 0; k < map->spans[s].n_samples; k += 97) {
            int64_t p = map->spans[s].packed_start + k;
            CHECK_NEAR(vad_map_time(map, p / 16000.0) * 16000.0, out[p], 1e-6);
        }
    free(out);
    vad_map_free(map);
    free(pcm);
}

TEST(vad_pack_nothing_to_pack)
{
    float pcm[10] = {0};
    float *out = (void *)1;
    size_t n = 5;
    struct vad_map *map = NULL;
    struct sd_error err = {0};
    CHECK_OK(vad_pack(pcm, 10, NULL, 0, 100, &out, &n, &map, &err), &err);
    CHECK(out == NULL);
    CHECK_EQ_INT(n, 0);
    CHECK_EQ_INT(map->n_spans, 0);
    CHECK_NEAR(vad_map_time(map, 1.25), 1.25, 0);
    vad_map_free(map);
    vad_map_free(NULL);
}

TEST(vad_pack_clips_and_trims)
{
    float *pcm = ramp(1000);
    /* the last segment runs past the audio (whole windows); the second overlaps the first */
    struct vad_segment segs[] = {{0, 300}, {200, 500}, {900, 1024}, {1100, 1200}};
    float *out = NULL;
    size_t n = 0;
    struct vad_map *map = NULL;
    struct sd_error err = {0};
    CHECK_OK(vad_pack(pcm, 1000, segs, 4, 0, &out, &n, &map, &err), &err);
    CHECK_EQ_INT(map->n_spans, 3);
    CHECK_EQ_INT(n, 300 + 200 + 100);
    CHECK_NEAR(out[300], 300, 0);
    CHECK_NEAR(out[500], 900, 0);
    CHECK_NEAR(out[599], 999, 0);
    free(out);
    vad_map_free(map);
    free(pcm);
}

TEST(vad_pack_rejects_bad_arguments)
{
    float pcm[4] = {0};
    struct vad_segment seg = {0, 4};
    float *out = NULL;
    size_t n = 0;
    struct vad_map *map = NULL;
    struct sd_error err = {0};
    CHECK_EQ_INT(vad_pack(pcm, 4, &seg, 1, -1, &out, &n, &map, &err), SD_EINVAL);
    CHECK_EQ_INT(vad_pack(NULL, 4, &seg, 1, 0, &out, &n, &map, &err), SD_EINVAL);
    CHECK_EQ_INT(vad_pack(pcm, 4, NULL, 1, 0, &out, &n, &map, &err), SD_EINVAL);
    CHECK(map == NULL);
}

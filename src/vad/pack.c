/*
 * pack.c - concatenating the speech spans of a recording into one buffer for
 * the engine, and mapping packed times back to original times (see pack.h).
 * Knows nothing of the network or of how segments were found.
 */
#include <stdlib.h>
#include <string.h>

#include "vad/pack.h"

enum sd_err vad_pack(const float *pcm, size_t n_samples, const struct vad_segment *segs,
                     size_t n_segs, int gap_ms, float **packed, size_t *n_packed,
                     struct vad_map **map, struct sd_error *err)
{
    if ((!pcm && n_samples) || (!segs && n_segs) || !packed || !n_packed || !map)
        return sd_fail(err, SD_EINVAL, "vad_pack: NULL argument");
    if (gap_ms < 0 || gap_ms > 10000)
        return sd_fail(err, SD_EINVAL, "vad_pack: gap_ms must be in [0, 10000]");
    int64_t gap = (int64_t)VAD_SAMPLE_RATE * gap_ms / 1000;
    struct vad_map *m = calloc(1, sizeof *m);
    struct vad_map_span *spans = n_segs ? malloc(n_segs * sizeof *spans) : NULL;
    if (!m || (n_segs && !spans)) {
        free(m);
        free(spans);
        return sd_fail(err, SD_ENOMEM, "out of memory packing VAD segments");
    }
    /* First pass: clip, trim overlaps, lay out the spans. */
    int64_t total = 0, prev_end = 0;
    size_t n = 0;
    for (size_t i = 0; i < n_segs; i++) {
        int64_t s = segs[i].start < prev_end ? prev_end : segs[i].start;
        int64_t e = segs[i].end > (int64_t)n_samples ? (int64_t)n_samples : segs[i].end;
        if (s < 0)
            s = 0;
        if (e <= s)
            continue;
        if (n > 0)
            total += gap;
        spans[n++] = (struct vad_map_span){total, s, e - s};
        total += e - s;
        prev_end = e;
    }
    float *out = NULL;
    if (total > 0) {
        out = calloc((size_t)total, sizeof *out); /* zeros = the gaps */
        if (!out) {
            free(m);
            free(spans);
            return sd_fail(err, SD_ENOMEM, "out of memory packing %lld samples",
                           (long long)total);
        }
        for (size_t i = 0; i < n; i++)
            memcpy(out + spans[i].packed_start, pcm + spans[i].orig_start,
                   (size_t)spans[i].n_samples * sizeof *out);
    }
    if (n == 0) {
        free(spans);
        spans = NULL;
    }
    m->n_spans = n;
    m->spans = spans;
    m->gap_samples = gap;
    m->n_packed = total;
    m->n_orig = (int64_t)n_samples;
    *packed = out;
    *n_packed = (size_t)total;
    *map = m;
    return SD_OK;
}

void vad_map_free(struct vad_map *map)
{
    if (!map)
        return;
    free(map->spans);
    free(map);
}

double vad_map_time(const struct vad_map *map, double packed_s)
{
    if (!map || map->n_spans == 0)
        return packed_s;
    const double sr = VAD_SAMPLE_RATE;
    double t = packed_s * sr; /* in samples */
    const struct vad_map_span *s = map->spans;
    size_t n = map->n_spans;
    if (t <= 0.0)
        return s[0].orig_start / sr;
    /* last span whose packed start is <= t */
    size_t lo = 0, hi = n;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if ((double)s[mid].packed_start <= t)
            lo = mid;
        else
            hi = mid;
    }
    const struct vad_map_span *a = &s[lo];
    double end = (double)(a->packed_start + a->n_samples);
    if (t <= end)
        return (a->orig_start + (t - a->packed_start)) / sr;
    if (lo + 1 == n) /* past the last span */
        return (double)(a->orig_start + a->n_samples) / sr;
    /* in the gap after span lo */
    if (t - end < map->gap_samples / 2.0)
        return (double)(a->orig_start + a->n_samples) / sr;
    return (double)s[lo + 1].orig_start / sr;
}

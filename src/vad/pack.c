/*
 * pack.c - concatenating the speech spans of a recording into one buffer for
 * the engine, and mapping packed times back to original times (see pack.h).
 * Knows nothing of the network or of how segments were found.
 */
#include <stdlib.h>
#include <string.h>

#include "vad/pack.h"

enum sd_err vad_map_build(const struct vad_segment *segs, size_t n_segs, size_t n_samples,
                          int gap_ms, struct vad_map **map, struct sd_error *err)
{
    if ((!segs && n_segs) || !map)
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
    /* clip, trim overlaps, lay out the spans */
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
    if (n == 0) {
        free(spans);
        spans = NULL;
    }
    m->n_spans = n;
    m->spans = spans;
    m->gap_samples = gap;
    m->n_packed = total;
    m->n_orig = (int64_t)n_samples;
    *map = m;
    return SD_OK;
}

void vad_packer_init(struct vad_packer *pk, const struct vad_map *map)
{
    *pk = (struct vad_packer){.map = map};
}

/* Emits n zeros (a gap) in pieces from a constant block. */
static enum sd_err emit_zeros(int64_t n, vad_emit_fn emit, void *user, struct sd_error *err)
{
    static const float zeros[1024];
    while (n > 0) {
        size_t k = n < 1024 ? (size_t)n : 1024;
        enum sd_err rc = emit(user, zeros, k, err);
        if (rc != SD_OK)
            return rc;
        n -= (int64_t)k;
    }
    return SD_OK;
}

enum sd_err vad_packer_push(struct vad_packer *pk, const float *pcm, size_t n, vad_emit_fn emit,
                            void *user, struct sd_error *err)
{
    const struct vad_map *m = pk->map;
    const int64_t chunk_first = pk->orig_pos, chunk_end = chunk_first + (int64_t)n;
    pk->orig_pos = chunk_end;
    while (pk->span < m->n_spans) {
        const struct vad_map_span *sp = &m->spans[pk->span];
        int64_t from = sp->orig_start + pk->done_in_span;
        int64_t to = sp->orig_start + sp->n_samples;
        if (from >= chunk_end)
            return SD_OK; /* the span starts in a later chunk */
        if (from < chunk_first)
            return sd_fail(err, SD_EINVAL, "vad_packer_push: samples arrived out of order");
        if (to > chunk_end)
            to = chunk_end;
        enum sd_err rc = SD_OK;
        if (pk->done_in_span == 0 && pk->span > 0)
            rc = emit_zeros(m->gap_samples, emit, user, err);
        if (rc == SD_OK)
            rc = emit(user, pcm + (from - chunk_first), (size_t)(to - from), err);
        if (rc != SD_OK)
            return rc;
        pk->done_in_span += to - from;
        if (pk->done_in_span < sp->n_samples)
            return SD_OK; /* the span goes on in the next chunk */
        pk->span++;
        pk->done_in_span = 0;
    }
    return SD_OK;
}

/* Appends emitted samples to a buffer sized for the whole packed audio. */
struct pack_buffer {
    float *out;
    size_t len;
};

static enum sd_err append_to_buffer(void *user, const float *pcm, size_t n, struct sd_error *err)
{
    struct pack_buffer *b = user;
    (void)err;
    memcpy(b->out + b->len, pcm, n * sizeof(float));
    b->len += n;
    return SD_OK;
}

enum sd_err vad_pack(const float *pcm, size_t n_samples, const struct vad_segment *segs,
                     size_t n_segs, int gap_ms, float **packed, size_t *n_packed,
                     struct vad_map **map, struct sd_error *err)
{
    if ((!pcm && n_samples) || !packed || !n_packed)
        return sd_fail(err, SD_EINVAL, "vad_pack: NULL argument");
    struct vad_map *m = NULL;
    enum sd_err rc = vad_map_build(segs, n_segs, n_samples, gap_ms, &m, err);
    if (rc != SD_OK)
        return rc;
    struct pack_buffer b = {NULL, 0};
    if (m->n_packed > 0 && !(b.out = malloc((size_t)m->n_packed * sizeof(float)))) {
        rc = sd_fail(err, SD_ENOMEM, "out of memory packing %lld samples",
                     (long long)m->n_packed);
        vad_map_free(m);
        return rc;
    }
    struct vad_packer pk;
    vad_packer_init(&pk, m);
    vad_packer_push(&pk, pcm, n_samples, append_to_buffer, &b, NULL);
    *packed = b.out;
    *n_packed = b.len;
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

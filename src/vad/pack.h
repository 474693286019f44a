/*
 * pack.h - speech-only audio for the engine: the VAD segments of a recording
 * copied one after another (with a short silence between them), and the map
 * that turns a time in the packed audio back into a time in the original.
 *
 * Typical use (transcription with vad_filter):
 *   vad_detect(model, pcm, n, &params, &segs, &n_segs, &err);
 *   if (n_segs == 0) -> empty transcript, the decoder never runs;
 *   vad_pack(pcm, n, segs, n_segs, VAD_PACK_GAP_MS, &packed, &n_packed, &map, &err);
 *   transcribe packed; every timestamp t -> vad_map_time(map, t).
 * Pure functions of their inputs; a map is immutable once built (thread-safe
 * to read). Times are seconds, positions samples at 16 kHz.
 */
#ifndef SD_VAD_PACK_H
#define SD_VAD_PACK_H

#include <stddef.h>
#include <stdint.h>

#include "util/err.h"
#include "vad/vad.h"

/* Silence inserted between spans: keeps words of neighbouring spans apart. */
#define VAD_PACK_GAP_MS 100

/* One copied span: packed samples [packed_start, packed_start + n) = original [orig_start, +n). */
struct vad_map_span {
    int64_t packed_start;
    int64_t orig_start;
    int64_t n_samples;
};

struct vad_map {
    size_t n_spans;
    struct vad_map_span *spans;
    int64_t gap_samples;      /* silence between consecutive spans */
    int64_t n_packed;         /* total packed length (samples) */
    int64_t n_orig;           /* original length (samples) */
};

/*
 * Builds the packed pcm and its map. Segments must be sorted; ends beyond
 * n_samples are clipped (segments are counted in whole 512-sample windows),
 * overlaps are trimmed, empty spans skipped. gap_ms >= 0.
 * On SD_OK the caller owns *packed (free(); NULL when *n_packed is 0) and
 * *map (vad_map_free()). No spans -> *n_packed 0 and a map with 0 spans.
 */
enum sd_err vad_pack(const float *pcm, size_t n_samples, const struct vad_segment *segs,
                     size_t n_segs, int gap_ms, float **packed, size_t *n_packed,
                     struct vad_map **map, struct sd_error *err);
void vad_map_free(struct vad_map *map);

/*
 * The same in bounded memory, for a recording that arrives in order: the
 * map is laid out from the segments alone (vad_map_build), then a packer
 * turns each chunk of the original into the packed samples it holds (zeros
 * for the gaps), handed to emit in order. The result is identical to
 * vad_pack's buffer, whatever the chunk sizes.
 */
enum sd_err vad_map_build(const struct vad_segment *segs, size_t n_segs, size_t n_samples,
                          int gap_ms, struct vad_map **map, struct sd_error *err);

/* Receives the packed samples (valid during the call); anything but SD_OK stops the push. */
typedef enum sd_err (*vad_emit_fn)(void *user, const float *pcm, size_t n, struct sd_error *err);

struct vad_packer {
    const struct vad_map *map;  /* borrowed */
    size_t span;                /* the span being copied */
    int64_t done_in_span;       /* its samples already emitted */
    int64_t orig_pos;           /* original samples pushed so far */
};

void vad_packer_init(struct vad_packer *pk, const struct vad_map *map);
/* The next n original samples (consecutive with the previous push). */
enum sd_err vad_packer_push(struct vad_packer *pk, const float *pcm, size_t n, vad_emit_fn emit,
                            void *user, struct sd_error *err);

/*
 * Original time (seconds) of a packed time (seconds). Inside a span: linear.
 * In the silence between spans: the first half maps to the end of the span
 * before, the second half to the start of the span after, so a segment that
 * ends in a gap ends with its speech and one that starts there starts with
 * the next speech. Before 0 / after the end: clamped to the first start / last
 * end. Monotonic non-decreasing. With no spans it returns packed_s unchanged.
 */
double vad_map_time(const struct vad_map *map, double packed_s);

#endif

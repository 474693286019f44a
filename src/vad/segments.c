/*
 * segments.c - speech segments from per-window VAD probabilities, with the
 * rules of whisper.cpp's whisper_vad_segments_from_probs (which follow
 * Silero's get_speech_timestamps), in integer samples:
 *   1. hysteresis scan: speech starts at p >= threshold; it ends once
 *      p < neg_threshold has lasted min_silence (counted from the first low
 *      window); segments must be longer than min_speech; speech longer than
 *      max_speech is split at the last silence > 98 ms, else where it is;
 *   2. gaps < 200 ms are merged; 3. segments < min_speech are dropped;
 *   4. padding: first start - pad; between neighbours half the gap when it is
 *      < 2 * pad, else pad on each side; last end + pad; clamped to the audio
 *      length n_probs * 512.
 * The one deliberate difference: step 2 does not undo a max_speech split.
 * Also the parameter defaults and their validation. No model code here.
 */
#include <limits.h>
#include <math.h>
#include <stdlib.h>

#include "vad/vad.h"

struct vad_params vad_params_default(void)
{
    return (struct vad_params){
        .threshold = 0.35f,
        .neg_threshold = -1.0f,
        .min_speech_ms = 250,
        .min_silence_ms = 300,
        .max_speech_s = 30.0f,
        .speech_pad_ms = 100,
    };
}

struct vad_params vad_params_whisper_cpp(void)
{
    return (struct vad_params){
        .threshold = 0.5f,
        .neg_threshold = -1.0f,
        .min_speech_ms = 250,
        .min_silence_ms = 100,
        .max_speech_s = 0.0f,
        .speech_pad_ms = 30,
    };
}

/* one hour: far beyond any sensible value, small enough for int sample arithmetic */
#define MAX_MS 3600000

enum sd_err vad_params_check(const struct vad_params *p, struct sd_error *err)
{
    if (!p)
        return sd_fail(err, SD_EINVAL, "VAD parameters missing");
    if (!(p->threshold > 0.0f && p->threshold <= 1.0f))
        return sd_fail(err, SD_EINVAL, "VAD threshold must be in (0, 1]");
    if (!(p->neg_threshold < 0.0f || p->neg_threshold <= p->threshold))
        return sd_fail(err, SD_EINVAL, "VAD neg_threshold must not exceed threshold");
    if (p->min_speech_ms < 0 || p->min_speech_ms > MAX_MS)
        return sd_fail(err, SD_EINVAL, "VAD min_speech_duration_ms must be in [0, %d]", MAX_MS);
    if (p->min_silence_ms < 0 || p->min_silence_ms > MAX_MS)
        return sd_fail(err, SD_EINVAL, "VAD min_silence_duration_ms must be in [0, %d]", MAX_MS);
    if (p->speech_pad_ms < 0 || p->speech_pad_ms > MAX_MS)
        return sd_fail(err, SD_EINVAL, "VAD speech_pad_ms must be in [0, %d]", MAX_MS);
    if (isnan(p->max_speech_s))
        return sd_fail(err, SD_EINVAL, "VAD max_speech_duration_s is not a number");
    return SD_OK;
}

int64_t vad_samples_to_cs(int64_t samples)
{
    return (int64_t)((double)samples / VAD_SAMPLE_RATE * 100.0 + 0.5);
}

/* Growing list of segments; `split` marks a segment whose end was forced by max_speech. */
struct seglist {
    struct vad_segment *v;
    unsigned char *split;
    size_t n, cap;
    int oom;
};

static void seg_push(struct seglist *l, int64_t start, int64_t end, int split)
{
    if (l->oom)
        return;
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 16;
        struct vad_segment *v = realloc(l->v, cap * sizeof *v);
        if (v)
            l->v = v;
        unsigned char *s = v ? realloc(l->split, cap) : NULL;
        if (!v || !s) {
            l->oom = 1;
            return;
        }
        l->split = s;
        l->cap = cap;
    }
    l->v[l->n] = (struct vad_segment){start, end};
    l->split[l->n] = (unsigned char)split;
    l->n++;
}

/* Sample counts derived from the parameters, as whisper.cpp computes them. */
struct limits {
    float threshold, neg_threshold;
    int64_t min_speech, min_silence, pad, max_speech, min_silence_at_max, audio_len;
};

static struct limits limits_of(const struct vad_params *p, size_t n_probs)
{
    struct limits k;
    k.threshold = p->threshold;
    k.neg_threshold = p->neg_threshold >= 0.0f ? p->neg_threshold : p->threshold - 0.15f;
    if (k.neg_threshold < 0.01f)
        k.neg_threshold = 0.01f;
    k.min_speech = (int64_t)VAD_SAMPLE_RATE * p->min_speech_ms / 1000;
    k.min_silence = (int64_t)VAD_SAMPLE_RATE * p->min_silence_ms / 1000;
    k.pad = (int64_t)VAD_SAMPLE_RATE * p->speech_pad_ms / 1000;
    k.min_silence_at_max = (int64_t)VAD_SAMPLE_RATE * 98 / 1000;
    k.audio_len = (int64_t)n_probs * VAD_WINDOW_SAMPLES;
    k.max_speech = INT64_MAX / 4; /* no limit */
    if (p->max_speech_s > 0.0f && p->max_speech_s <= 100000.0f) {
        /* whole seconds, less one window and both paddings (whisper.cpp's formula) */
        int64_t v = (int64_t)VAD_SAMPLE_RATE * (int64_t)p->max_speech_s - VAD_WINDOW_SAMPLES -
                    2 * k.pad;
        if (v > 0)
            k.max_speech = v;
    }
    return k;
}

/* Step 1: the hysteresis scan over the windows. */
static void scan(const float *probs, size_t n_probs, const struct limits *k, struct seglist *out)
{
    int in_speech = 0, open = 0;
    int64_t start = 0, temp_end = 0, prev_end = 0, next_start = 0;
    for (size_t i = 0; i < n_probs; i++) {
        float p = probs[i];
        int64_t pos = (int64_t)i * VAD_WINDOW_SAMPLES;
        if (p >= k->threshold && temp_end) { /* silence candidate interrupted */
            temp_end = 0;
            if (next_start < prev_end)
                next_start = pos;
        }
        if (p >= k->threshold && !in_speech) {
            in_speech = open = 1;
            start = pos;
            continue;
        }
        if (in_speech && pos - start > k->max_speech) {
            if (prev_end) { /* split at the last long-enough silence */
                seg_push(out, start, prev_end, 1);
                if (next_start < prev_end)
                    in_speech = open = 0;
                else
                    start = next_start;
                prev_end = next_start = temp_end = 0;
            } else { /* no silence to split at: cut here */
                seg_push(out, start, pos, 1);
                prev_end = next_start = temp_end = 0;
                in_speech = open = 0;
                continue;
            }
        }
        if (p < k->neg_threshold && in_speech) {
            if (!temp_end)
                temp_end = pos;
            if (pos - temp_end > k->min_silence_at_max)
                prev_end = temp_end;
            if (pos - temp_end < k->min_silence)
                continue;
            if (temp_end - start > k->min_speech)
                seg_push(out, start, temp_end, 0);
            prev_end = next_start = temp_end = 0;
            in_speech = open = 0;
        }
    }
    if (open && k->audio_len - start > k->min_speech)
        seg_push(out, start, k->audio_len, 0);
}

/* Steps 2 and 3, in place: merge gaps < 200 ms (not across a forced split), drop short ones. */
static void merge_and_drop(struct seglist *l, const struct limits *k)
{
    const int64_t min_gap = (int64_t)VAD_SAMPLE_RATE * 200 / 1000;
    size_t n = 0;
    for (size_t i = 0; i < l->n; i++) {
        if (n > 0 && !l->split[n - 1] && l->v[i].start - l->v[n - 1].end < min_gap) {
            l->v[n - 1].end = l->v[i].end;
            l->split[n - 1] = l->split[i];
            continue;
        }
        l->v[n] = l->v[i];
        l->split[n] = l->split[i];
        n++;
    }
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (l->v[i].end - l->v[i].start >= k->min_speech)
            l->v[m++] = l->v[i];
    l->n = m;
}

/* Step 4: padding, in place. */
static void pad_segments(struct vad_segment *s, size_t n, const struct limits *k)
{
    for (size_t i = 0; i < n; i++) {
        if (i == 0)
            s[0].start = s[0].start > k->pad ? s[0].start - k->pad : 0;
        if (i + 1 < n) {
            int64_t gap = s[i + 1].start - s[i].end;
            int64_t give = gap < 2 * k->pad ? gap / 2 : k->pad;
            s[i].end = s[i].end + give < k->audio_len ? s[i].end + give : k->audio_len;
            s[i + 1].start = s[i + 1].start > give ? s[i + 1].start - give : 0;
        } else {
            s[i].end = s[i].end + k->pad < k->audio_len ? s[i].end + k->pad : k->audio_len;
        }
    }
}

enum sd_err vad_segments_from_probs(const float *probs, size_t n_probs,
                                    const struct vad_params *params, struct vad_segment **segs,
                                    size_t *n_segs, struct sd_error *err)
{
    if ((!probs && n_probs) || !segs || !n_segs)
        return sd_fail(err, SD_EINVAL, "vad_segments_from_probs: NULL argument");
    enum sd_err rc = vad_params_check(params, err);
    if (rc != SD_OK)
        return rc;
    if (n_probs > (size_t)INT64_MAX / (4 * VAD_WINDOW_SAMPLES))
        return sd_fail(err, SD_ETOOBIG, "too many VAD windows");
    struct limits k = limits_of(params, n_probs);
    struct seglist l = {0};
    scan(probs, n_probs, &k, &l);
    if (l.oom) {
        free(l.v);
        free(l.split);
        return sd_fail(err, SD_ENOMEM, "out of memory for VAD segments");
    }
    merge_and_drop(&l, &k);
    pad_segments(l.v, l.n, &k);
    free(l.split);
    if (l.n == 0) {
        free(l.v);
        l.v = NULL;
    }
    *segs = l.v;
    *n_segs = l.n;
    return SD_OK;
}

enum sd_err vad_detect(const struct vad_model *model, const float *pcm, size_t n_samples,
                       const struct vad_params *params, struct vad_segment **segs,
                       size_t *n_segs, struct sd_error *err)
{
    enum sd_err rc = vad_params_check(params, err);
    if (rc != SD_OK)
        return rc;
    float *probs = NULL;
    size_t n_probs = 0;
    rc = vad_probs(model, pcm, n_samples, VAD_PRECISION_REFERENCE, &probs, &n_probs, err);
    if (rc != SD_OK)
        return rc;
    rc = vad_segments_from_probs(probs, n_probs, params, segs, n_segs, err);
    free(probs);
    return rc;
}

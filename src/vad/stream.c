/*
 * stream.c - VAD probabilities of a recording that arrives in order (see
 * vad.h: vad_stream_*): samples are run window by window as soon as a whole
 * 512-sample window is in, so only the probabilities (4 bytes per 32 ms:
 * 450 KB per hour) grow with the recording, never its samples.
 */
#include <stdlib.h>
#include <string.h>

#include "vad/vad.h"

struct vad_stream {
    struct vad_state *st;
    float pending[VAD_WINDOW_SAMPLES]; /* the start of a window not yet complete */
    size_t n_pending;
    float *probs;
    size_t n_probs, cap;
};

enum sd_err vad_stream_begin(const struct vad_model *model, enum vad_precision precision,
                             struct vad_stream **out, struct sd_error *err)
{
    struct vad_stream *s = calloc(1, sizeof(*s));
    if (!s)
        return sd_fail(err, SD_ENOMEM, "VAD stream");
    enum sd_err rc = vad_state_new(model, precision, &s->st, err);
    if (rc != SD_OK) {
        free(s);
        return rc;
    }
    *out = s;
    return SD_OK;
}

/* Room for n more probabilities. */
static enum sd_err reserve(struct vad_stream *s, size_t n, struct sd_error *err)
{
    if (s->n_probs + n <= s->cap)
        return SD_OK;
    size_t cap = s->cap ? s->cap : 1024;
    while (cap < s->n_probs + n)
        cap *= 2;
    float *grown = realloc(s->probs, cap * sizeof(float));
    if (!grown)
        return sd_fail(err, SD_ENOMEM, "out of memory for %zu VAD probabilities", cap);
    s->probs = grown;
    s->cap = cap;
    return SD_OK;
}

/* Runs n_windows whole windows of pcm (or one partial, zero-padded, at the end). */
static enum sd_err run(struct vad_stream *s, const float *pcm, size_t n_samples,
                       struct sd_error *err)
{
    size_t n_windows = (n_samples + VAD_WINDOW_SAMPLES - 1) / VAD_WINDOW_SAMPLES;
    enum sd_err rc = reserve(s, n_windows, err);
    if (rc != SD_OK)
        return rc;
    vad_state_run(s->st, pcm, n_samples, s->probs + s->n_probs);
    s->n_probs += n_windows;
    return SD_OK;
}

enum sd_err vad_stream_push(struct vad_stream *s, const float *pcm, size_t n,
                            struct sd_error *err)
{
    if (s->n_pending > 0) {
        size_t take = VAD_WINDOW_SAMPLES - s->n_pending < n ? VAD_WINDOW_SAMPLES - s->n_pending
                                                            : n;
        memcpy(s->pending + s->n_pending, pcm, take * sizeof(float));
        s->n_pending += take;
        pcm += take;
        n -= take;
        if (s->n_pending < VAD_WINDOW_SAMPLES)
            return SD_OK;
        enum sd_err rc = run(s, s->pending, VAD_WINDOW_SAMPLES, err);
        if (rc != SD_OK)
            return rc;
        s->n_pending = 0;
    }
    size_t whole = n - n % VAD_WINDOW_SAMPLES;
    if (whole > 0) {
        enum sd_err rc = run(s, pcm, whole, err);
        if (rc != SD_OK)
            return rc;
    }
    memcpy(s->pending, pcm + whole, (n - whole) * sizeof(float));
    s->n_pending = n - whole;
    return SD_OK;
}

enum sd_err vad_stream_finish(struct vad_stream *s, float **probs, size_t *n_probs,
                              struct sd_error *err)
{
    if (s->n_pending > 0) {
        enum sd_err rc = run(s, s->pending, s->n_pending, err);
        if (rc != SD_OK)
            return rc;
        s->n_pending = 0;
    }
    *probs = s->probs;
    *n_probs = s->n_probs;
    s->probs = NULL;
    s->n_probs = s->cap = 0;
    return SD_OK;
}

void vad_stream_free(struct vad_stream *s)
{
    if (!s)
        return;
    vad_state_free(s->st);
    free(s->probs);
    free(s);
}

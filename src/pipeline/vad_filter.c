/*
 * vad_filter.c - VAD-filtered transcription (vad_filter.h): detect speech,
 * pack it, transcribe the packed audio, map segment and word times back.
 */
#include "pipeline/vad_filter.h"

#include <stdlib.h>
#include <string.h>

#include "vad/pack.h"

static enum sd_err empty_transcript(const struct transcribe_params *p, double duration_s,
                                    struct transcript **out, struct sd_error *err)
{
    struct transcript *t = calloc(1, sizeof(*t));
    if (!t)
        return sd_fail(err, SD_ENOMEM, "transcript");
    t->task = strdup(p->task == TASK_TRANSLATE ? "translate" : "transcribe");
    t->language = strdup(p->language && *p->language && strcmp(p->language, "auto") != 0
                             ? p->language : "en");
    t->text = strdup("");
    t->duration = duration_s;
    if (!t->task || !t->language || !t->text) {
        transcript_destroy(t);
        return sd_fail(err, SD_ENOMEM, "transcript");
    }
    *out = t;
    return SD_OK;
}

static void remap_times(struct transcript *t, const struct vad_map *map, double duration_s)
{
    for (int i = 0; i < t->n_segments; i++) {
        struct transcript_segment *s = &t->segments[i];
        s->start = vad_map_time(map, s->start);
        s->end = vad_map_time(map, s->end);
        for (int w = 0; w < s->n_words; w++) {
            s->words[w].start = vad_map_time(map, s->words[w].start);
            s->words[w].end = vad_map_time(map, s->words[w].end);
        }
    }
    t->duration = duration_s;
}

enum sd_err transcribe_pcm_vad(struct whisper_state *st, const struct tokenizer *tok,
                               const struct vad_model *vad, const struct vad_params *vp,
                               const float *pcm, size_t n_samples,
                               const struct transcribe_params *p, struct transcript **out,
                               struct sd_error *err)
{
    if (!vad)
        return transcribe_pcm(st, tok, pcm, n_samples, p, out, err);
    const double duration_s = (double)n_samples / VAD_SAMPLE_RATE;
    struct vad_params params = vp ? *vp : vad_params_default();
    struct vad_segment *segs = NULL;
    size_t n_segs = 0;
    float *packed = NULL;
    size_t n_packed = 0;
    struct vad_map *map = NULL;
    enum sd_err rc = vad_params_check(&params, err);
    if (rc)
        return rc;
    rc = vad_detect(vad, pcm, n_samples, &params, &segs, &n_segs, err);
    if (rc)
        goto done;
    if (n_segs == 0) {
        rc = empty_transcript(p, duration_s, out, err);
        goto done;
    }
    rc = vad_pack(pcm, n_samples, segs, n_segs, VAD_PACK_GAP_MS, &packed, &n_packed, &map, err);
    if (rc)
        goto done;
    if (n_packed == 0) {
        rc = empty_transcript(p, duration_s, out, err);
        goto done;
    }
    rc = transcribe_pcm(st, tok, packed, n_packed, p, out, err);
    if (rc == SD_OK)
        remap_times(*out, map, duration_s);
done:
    free(segs);
    free(packed);
    vad_map_free(map);
    return rc;
}

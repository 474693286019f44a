/*
 * passes.c - a transcription in passes over a replayable recording (see
 * passes.h): length and speech spans, log-mel maximum, then the windows.
 */
#include "pipeline/passes.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vad/pack.h"
#include "whisper/mel.h"

/* Share of the progress the first passes take: they only read the audio. */
#define FIRST_PASSES_SHARE 0.06f
/* How often (in samples) a reading pass reports progress and can be cancelled: 10 s. */
#define REPORT_EVERY (10 * VAD_SAMPLE_RATE)

/* What the sinks of one run share. */
struct run_passes {
    const struct transcribe_params *p;  /* the caller's: progress goes to its callback */
    int64_t n_seen, n_total;            /* samples of this pass; of the recording (pass 1 on) */
    int64_t next_report;
    float progress_from, progress_to;   /* this pass's part of the whole run */
    struct vad_stream *vad;             /* pass 1, with a VAD model */
    struct mel_max *mx;                 /* pass 1 without, pass 2 with */
    const struct vad_map *map;          /* speech spans (NULL: every sample is heard) */
    struct vad_packer packer;
    struct transcribe_stream *ts;       /* pass 3 */
};

/* Counts a pass's samples and reports its progress now and then; false: cancelled. */
static enum sd_err count(struct run_passes *r, size_t n, struct sd_error *err)
{
    r->n_seen += (int64_t)n;
    if (r->n_seen < r->next_report || !r->p->progress)
        return SD_OK;
    r->next_report = r->n_seen + REPORT_EVERY;
    float done = r->n_total > 0 ? (float)r->n_seen / (float)r->n_total : 0.0f;
    float f = r->progress_from + (r->progress_to - r->progress_from) * (done < 1 ? done : 1);
    if (!r->p->progress(r->p->progress_user, f))
        return sd_fail(err, SD_ECANCELLED, "transcription cancelled");
    return SD_OK;
}

static enum sd_err pass1_sink(void *user, const float *pcm, size_t n, struct sd_error *err)
{
    struct run_passes *r = user;
    enum sd_err rc = r->vad ? vad_stream_push(r->vad, pcm, n, err) : mel_max_push(r->mx, pcm, n, err);
    return rc == SD_OK ? count(r, n, err) : rc;
}

static enum sd_err heard_to_mel_max(void *user, const float *pcm, size_t n, struct sd_error *err)
{
    return mel_max_push(((struct run_passes *)user)->mx, pcm, n, err);
}

static enum sd_err pass2_sink(void *user, const float *pcm, size_t n, struct sd_error *err)
{
    struct run_passes *r = user;
    enum sd_err rc = vad_packer_push(&r->packer, pcm, n, heard_to_mel_max, r, err);
    return rc == SD_OK ? count(r, n, err) : rc;
}

static enum sd_err heard_to_decoder(void *user, const float *pcm, size_t n, struct sd_error *err)
{
    return transcribe_stream_push(((struct run_passes *)user)->ts, pcm, n, err);
}

static enum sd_err pass3_sink(void *user, const float *pcm, size_t n, struct sd_error *err)
{
    struct run_passes *r = user;
    enum sd_err rc = r->map ? vad_packer_push(&r->packer, pcm, n, heard_to_decoder, r, err)
                            : heard_to_decoder(r, pcm, n, err);
    r->n_seen += (int64_t)n; /* the decoder reports its own progress, per window */
    return rc;
}

/* The decoder's progress, scaled into what is left after the first passes. */
static bool decoder_progress(void *user, float fraction)
{
    struct run_passes *r = user;
    return r->p->progress(r->p->progress_user,
                          FIRST_PASSES_SHARE + (1.0f - FIRST_PASSES_SHARE) * fraction);
}

/* Plays one pass of src into sink, which must see the whole recording again. */
static enum sd_err play(struct run_passes *r, const struct pcm_source *src, pcm_sink_fn sink,
                        float from, float to, struct sd_error *err)
{
    r->n_seen = 0;
    r->next_report = REPORT_EVERY;
    r->progress_from = from;
    r->progress_to = to;
    enum sd_err rc = src->play(src->self, sink, r, err);
    if (rc == SD_OK && r->n_total > 0 && r->n_seen != r->n_total)
        rc = sd_fail(err, SD_EFORMAT, "the recording gave %lld samples, then %lld",
                     (long long)r->n_total, (long long)r->n_seen);
    return rc;
}

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

/* Pass 1 with a VAD model: the speech spans; *map NULL when there is no speech. */
static enum sd_err find_speech(struct run_passes *r, const struct vad_params *vp,
                               struct vad_map **map, struct sd_error *err)
{
    float *probs = NULL;
    size_t n_probs = 0, n_segs = 0;
    struct vad_segment *segs = NULL;
    *map = NULL;
    enum sd_err rc = vad_stream_finish(r->vad, &probs, &n_probs, err);
    if (rc == SD_OK)
        rc = vad_segments_from_probs(probs, n_probs, vp, &segs, &n_segs, err);
    if (rc == SD_OK && n_segs > 0)
        rc = vad_map_build(segs, n_segs, (size_t)r->n_total, VAD_PACK_GAP_MS, map, err);
    if (rc == SD_OK && *map && (*map)->n_packed == 0) {
        vad_map_free(*map);
        *map = NULL;
    }
    free(probs);
    free(segs);
    return rc;
}

enum sd_err transcribe_source(struct whisper_state *st, const struct tokenizer *tok,
                              const struct vad_model *vad, const struct vad_params *vp,
                              const struct pcm_source *src, const struct transcribe_params *p,
                              struct transcript **out, size_t *n_samples, struct sd_error *err)
{
    struct run_passes r = {.p = p};
    struct vad_params params = vp ? *vp : vad_params_default();
    struct vad_map *map = NULL;
    const float half = FIRST_PASSES_SHARE / 2;
    enum sd_err rc = vad ? vad_params_check(&params, err) : SD_OK;
    if (rc == SD_OK)
        rc = vad ? vad_stream_begin(vad, VAD_PRECISION_REFERENCE, &r.vad, err)
                 : transcribe_mel_max_begin(st, p->n_threads, &r.mx, err);
    if (rc == SD_OK)
        rc = play(&r, src, pass1_sink, 0.0f, vad ? half : FIRST_PASSES_SHARE, err);
    if (rc != SD_OK)
        goto done;
    r.n_total = r.n_seen;
    *n_samples = (size_t)r.n_total;
    const double duration_s = (double)r.n_total / VAD_SAMPLE_RATE;
    size_t n_heard = (size_t)r.n_total;
    if (vad) {
        rc = find_speech(&r, &params, &map, err);
        if (rc == SD_OK && !map) {
            rc = empty_transcript(p, duration_s, out, err);
            goto done;
        }
        r.map = map;
        n_heard = (size_t)map->n_packed;
        vad_packer_init(&r.packer, map);
        rc = transcribe_mel_max_begin(st, p->n_threads, &r.mx, err);
        if (rc == SD_OK)
            rc = play(&r, src, pass2_sink, half, FIRST_PASSES_SHARE, err);
        if (rc != SD_OK)
            goto done;
    }
    struct transcribe_params decode = *p;
    if (p->progress) {
        decode.progress = decoder_progress;
        decode.progress_user = &r;
    }
    rc = transcribe_stream_begin(st, tok, n_heard, mel_max_finish(r.mx), &decode, &r.ts, err);
    if (rc != SD_OK)
        goto done;
    if (map)
        vad_packer_init(&r.packer, map);
    rc = play(&r, src, pass3_sink, FIRST_PASSES_SHARE, 1.0f, err);
    if (rc == SD_OK)
        rc = transcribe_stream_finish(r.ts, out, err);
    if (rc == SD_OK && map)
        remap_times(*out, map, duration_s);
done:
    transcribe_stream_free(r.ts);
    mel_max_free(r.mx);
    vad_stream_free(r.vad);
    vad_map_free(map);
    return rc;
}

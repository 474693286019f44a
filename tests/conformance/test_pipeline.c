/*
 * test_pipeline.c - the pipeline layer (pipeline/transcription.h) on the
 * reference micro model: every decoding parameter the API accepts is
 * honoured, not clamped (beam_size 8 and 16 run that many beams, best_of 16
 * that many samples; the engine's window report says so), a worker's state
 * returns to its default size after a large request, and a run through the
 * pipeline equals a run of the engine called directly.
 */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "pipeline/stt_params.h"
#include "pipeline/transcription.h"
#include "refdata.h"
#include "whisper/transcribe.h"

struct beams_seen {
    int max_at_zero, max_above_zero, windows;
};

static void note_window(void *user, const struct transcribe_window_trace *w)
{
    struct beams_seen *b = user;
    int *slot = w->temperature > 0 ? &b->max_above_zero : &b->max_at_zero;
    if (w->n_beams > *slot)
        *slot = w->n_beams;
    b->windows++;
}

/* The micro model's pipeline (loaded in the foreground) and one worker. */
struct fixture {
    struct pipeline *p;
    struct pipeline_worker *w;
};

static void fixture_open(struct fixture *f)
{
    char model[512];
    struct sd_error err = {0};
    struct pipeline_opts o = {.model_path = ref_path(model, sizeof(model), "micro-en.f16.bin"),
                              .threads_per_worker = 2};
    *f = (struct fixture){0};
    CHECK_OK(pipeline_create(&o, &f->p, &err), &err);
    if (f->p)
        CHECK_OK(pipeline_worker_create(f->p, &f->w, &err), &err);
}

static void fixture_close(struct fixture *f)
{
    pipeline_worker_destroy(f->w);
    pipeline_destroy(f->p);
}

/* Transcribes clip with the given request; returns the transcript (caller frees). */
static struct transcript *run_clip(struct pipeline_worker *w, const char *clip,
                                   const struct stt_params *rp, struct beams_seen *seen)
{
    char path[512], rel[64];
    size_t n = 0;
    snprintf(rel, sizeof(rel), "%s.wav", clip);
    float *pcm = ref_read_wav(ref_path(path, sizeof(path), rel), &n);
    struct stt_engine_params ep;
    stt_params_to_engine(rp, &ep);
    struct stt_hooks hooks = {.on_window = note_window, .user = seen};
    struct transcript *t = NULL;
    struct sd_error err = {0};
    CHECK_OK(pipeline_transcribe_pcm(w, pcm, n, &ep, &hooks, &t, &err), &err);
    free(pcm);
    return t;
}

TEST(pipeline_honours_beam_size_8_and_16)
{
    struct fixture f;
    fixture_open(&f);
    static const int beams[] = {8, 16, 5, 1};
    for (size_t i = 0; i < sizeof(beams) / sizeof(beams[0]); i++) {
        struct stt_params rp;
        struct beams_seen seen = {0};
        stt_params_init(&rp);
        STT_SET(&rp, beam_size, beams[i]);
        STT_SET(&rp, no_fallback, true);
        struct transcript *t = run_clip(f.w, "b_sentence", &rp, &seen);
        CHECK(t != NULL && seen.windows > 0);
        CHECK_EQ_INT(seen.max_at_zero, beams[i]);
        transcript_destroy(t);
        stt_params_clear(&rp);
    }
    fixture_close(&f);
}

TEST(pipeline_honours_best_of_16)
{
    struct fixture f;
    fixture_open(&f);
    struct stt_params rp;
    struct beams_seen seen = {0};
    stt_params_init(&rp);
    STT_SET(&rp, temperature, 0.5f);
    STT_SET(&rp, best_of, 16);
    struct transcript *t = run_clip(f.w, "a_short", &rp, &seen);
    CHECK(t != NULL);
    CHECK_EQ_INT(seen.max_above_zero, 16);
    CHECK_EQ_INT(seen.max_at_zero, 0);
    transcript_destroy(t);
    stt_params_clear(&rp);
    fixture_close(&f);
}

/* The pipeline adds nothing to the engine's numbers: same text, same segment times. */
TEST(pipeline_equals_the_engine_called_directly)
{
    struct fixture f;
    fixture_open(&f);
    struct stt_params rp;
    struct beams_seen seen = {0};
    stt_params_init(&rp);
    struct transcript *via_pipeline = run_clip(f.w, "c_passage", &rp, &seen);
    struct sd_error err = {0};

    struct ref_engine e;
    CHECK(ref_engine_open(&e, "micro-en.f16.bin", 6) == 0);
    char path[512];
    size_t n = 0;
    float *pcm = ref_read_wav(ref_path(path, sizeof(path), "c_passage.wav"), &n);
    struct transcribe_params tp = transcribe_params_default();
    tp.n_threads = 2;
    struct transcript *direct = NULL;
    CHECK_OK(transcribe_pcm(e.st, e.tok, pcm, n, &tp, &direct, &err), &err);
    CHECK_STR(via_pipeline->text, direct->text);
    CHECK_EQ_INT(via_pipeline->n_segments, direct->n_segments);
    for (int i = 0; i < direct->n_segments && i < via_pipeline->n_segments; i++) {
        CHECK(via_pipeline->segments[i].start == direct->segments[i].start);
        CHECK(via_pipeline->segments[i].end == direct->segments[i].end);
    }
    transcript_destroy(direct);
    transcript_destroy(via_pipeline);
    free(pcm);
    ref_engine_close(&e);
    stt_params_clear(&rp);
    fixture_close(&f);
}

TEST(pipeline_reports_a_missing_model_at_create)
{
    struct sd_error err = {0};
    struct pipeline *p = NULL;
    struct pipeline_opts o = {.model_path = "/nonexistent/ggml-x.bin", .threads_per_worker = 1};
    CHECK(pipeline_create(&o, &p, &err) != SD_OK);
    CHECK(p == NULL);
    CHECK(strstr(err.msg, "ggml-x.bin") != NULL);
}

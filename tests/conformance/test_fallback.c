/*
 * test_fallback.c - properties of the decoding rules that cannot be compared
 * with another implementation: temperature fallback triggers exactly when a
 * threshold is crossed, silence windows give no text, a fixed seed repeats,
 * best_of keeps the best-scoring sample. Runs on the reference micro model.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "refdata.h"
#include "whisper/mel.h"
#include "whisper/search.h"
#include "whisper/tokenizer.h"
#include "whisper/transcribe.h"

struct fb_fx {
    struct ref_engine e;
    struct whisper_model *m;   /* = e.m, e.tok, e.st */
    struct tokenizer *tok;
    struct whisper_state *st;
    float *pcm;
    size_t n;
};

static int fb_open(struct fb_fx *f, const char *clip)
{
    char path[512], rel[64];
    memset(f, 0, sizeof(*f));
    if (ref_engine_open(&f->e, "micro-en.f16.bin", 6))
        return -1;
    f->m = f->e.m;
    f->tok = f->e.tok;
    f->st = f->e.st;
    snprintf(rel, sizeof(rel), "%s.wav", clip);
    f->pcm = ref_read_wav(ref_path(path, sizeof(path), rel), &f->n);
    return f->pcm ? 0 : -1;
}

static void fb_close(struct fb_fx *f)
{
    free(f->pcm);
    ref_engine_close(&f->e);
}

/* One window, greedy, no timestamps, only the rule under test active. */
static struct transcribe_params fb_params(void)
{
    struct transcribe_params p = transcribe_params_default();
    p.beam_size = 1;
    p.timestamps = false;
    p.max_tokens = 33;
    p.repetition_fallback = false;
    p.compression_ratio_threshold = 1e9f;
    p.logprob_threshold = -1e9f;
    p.no_speech_threshold = 1.0f;
    return p;
}

static struct transcript *fb_run(struct fb_fx *f, const struct transcribe_params *p)
{
    struct transcript *t = NULL;
    struct sd_error err = {0};
    CHECK_OK(transcribe_pcm(f->st, f->tok, f->pcm, f->n, p, &t, &err), &err);
    return t;
}

static float first_temperature(struct fb_fx *f, const struct transcribe_params *p)
{
    struct transcript *t = fb_run(f, p);
    float temp = t && t->n_segments > 0 ? t->segments[0].temperature : -1.0f;
    transcript_destroy(t);
    return temp;
}

TEST(fallback_on_logprob_exactly_at_threshold)
{
    struct fb_fx f;
    if (fb_open(&f, "b_sentence"))
        return;
    struct transcribe_params p = fb_params();
    p.no_fallback = true;
    struct transcript *t = fb_run(&f, &p);
    if (t && t->n_segments > 0) {
        float a = t->segments[0].avg_logprob;
        p.no_fallback = false;
        p.logprob_threshold = a - 0.01f;
        CHECK_NEAR(first_temperature(&f, &p), 0.0, 1e-6);
        p.logprob_threshold = a + 0.01f;
        CHECK(first_temperature(&f, &p) >= 0.2f - 1e-6f);
    }
    transcript_destroy(t);
    fb_close(&f);
}

TEST(fallback_on_compression_ratio_exactly_at_threshold)
{
    struct fb_fx f;
    if (fb_open(&f, "b_sentence"))
        return;
    struct transcribe_params p = fb_params();
    p.no_fallback = true;
    struct transcript *t = fb_run(&f, &p);
    if (t && t->n_segments > 0) {
        float c = t->segments[0].compression_ratio;
        CHECK(c > 0.0f);
        p.no_fallback = false;
        p.compression_ratio_threshold = c + 0.01f;
        CHECK_NEAR(first_temperature(&f, &p), 0.0, 1e-6);
        p.compression_ratio_threshold = c - 0.01f;
        CHECK(first_temperature(&f, &p) >= 0.2f - 1e-6f);
    }
    transcript_destroy(t);
    fb_close(&f);
}

TEST(fallback_on_repetition_loop)
{
    struct fb_fx f;
    if (fb_open(&f, "a_short")) /* its greedy output ends in one token repeated */
        return;
    struct transcribe_params p = fb_params();
    CHECK_NEAR(first_temperature(&f, &p), 0.0, 1e-6);
    p.repetition_fallback = true;
    CHECK(first_temperature(&f, &p) >= 0.2f - 1e-6f);
    fb_close(&f);
}

TEST(fallback_silence_window_yields_no_text)
{
    struct fb_fx f;
    if (fb_open(&f, "b_sentence"))
        return;
    struct transcribe_params p = fb_params();
    p.no_speech_threshold = 0.0f; /* every window "sounds silent" ... */
    p.logprob_threshold = 0.0f;   /* ... and every log-prob is below 0 */
    struct transcript *t = fb_run(&f, &p);
    if (t) {
        CHECK_EQ_INT(t->n_segments, 0);
        CHECK_STR(t->text, "");
    }
    transcript_destroy(t);
    p.no_speech_threshold = 1.0f;
    t = fb_run(&f, &p);
    if (t)
        CHECK(t->n_segments > 0);
    transcript_destroy(t);
    fb_close(&f);
}

static int tokens_equal(const struct transcript *a, const struct transcript *b)
{
    if (!a || !b || a->n_segments != b->n_segments)
        return 0;
    for (int s = 0; s < a->n_segments; s++) {
        if (a->segments[s].n_tokens != b->segments[s].n_tokens)
            return 0;
        if (memcmp(a->segments[s].tokens, b->segments[s].tokens,
                   (size_t)a->segments[s].n_tokens * sizeof(int32_t)) != 0)
            return 0;
    }
    return 1;
}

TEST(sampling_fixed_seed_repeats)
{
    struct fb_fx f;
    if (fb_open(&f, "b_sentence"))
        return;
    struct transcribe_params p = fb_params();
    p.temperature = 0.8f;
    p.no_fallback = true;
    p.best_of = 3;
    p.seed = 42;
    struct transcript *a = fb_run(&f, &p), *b = fb_run(&f, &p);
    CHECK(tokens_equal(a, b));
    int differs = 0;
    for (uint64_t seed = 1; seed <= 4 && !differs; seed++) {
        p.seed = seed;
        struct transcript *c = fb_run(&f, &p);
        differs = !tokens_equal(a, c);
        transcript_destroy(c);
    }
    CHECK_MSG(differs, "four other seeds all gave the same sample");
    transcript_destroy(a);
    transcript_destroy(b);
    fb_close(&f);
}

TEST(sampling_best_of_keeps_best_score)
{
    struct fb_fx f;
    if (fb_open(&f, "c_passage"))
        return;
    const struct whisper_hparams *hp = whisper_model_hparams(f.m);
    const struct whisper_special_tokens *sp = whisper_model_special(f.m);
    struct mel_spec mel = {0};
    struct sd_error err = {0};
    int n_mels = 0, n_bins = 0;
    const float *filters = whisper_model_mel_filters(f.m, &n_mels, &n_bins);
    CHECK_OK(mel_compute(f.pcm, f.n, filters, n_mels, 2, &mel, &err), &err);
    float *window = malloc((size_t)n_mels * 3000 * sizeof(float));
    float *logits = malloc((size_t)6 * hp->n_vocab * sizeof(float));
    float *logprobs = malloc((size_t)6 * hp->n_vocab * sizeof(float));
    mel_window(&mel, 0, window);
    CHECK_OK(whisper_encode(f.st, window, 3000, &err), &err);
    int32_t prompt[2] = {sp->sot, sp->no_timestamps};
    struct sd_rng rng;
    sd_rng_seed(&rng, 7);
    struct search_window w = {
        .st = f.st,
        .rules = {.be = whisper_state_backend(f.st), .sp = sp, .n_vocab = hp->n_vocab,
                  .suppress_blank = true, .max_initial_ts_steps = 50},
        .prompt = prompt, .n_prompt = 2, .sot_index = 0, .seek_end = 1 << 20, .max_tokens = 20,
        .n_max = 220, .temperature = 0.9f, .length_penalty = -1.0f, .rng = &rng,
        .logits = logits, .logprobs = logprobs,
    };
    static struct search_result res;
    CHECK_OK(search_best_of(&w, 5, &res, &err), &err);
    CHECK_EQ_INT(res.n_candidates, 5);
    double best = -INFINITY;
    int distinct = 0;
    for (int i = 0; i < res.n_candidates; i++) {
        if (res.candidate_scores[i] > best)
            best = res.candidate_scores[i];
        if (i > 0 && res.candidate_scores[i] != res.candidate_scores[0])
            distinct = 1;
    }
    CHECK_NEAR(search_score(&w, &res.seq), best, 1e-9);
    CHECK_MSG(distinct, "all five samples scored the same");
    free(window);
    free(logits);
    free(logprobs);
    mel_spec_free(&mel);
    fb_close(&f);
}

static bool stop_on_second_call(void *user, float fraction)
{
    (void)fraction;
    int *calls = user;
    return ++*calls < 2;
}

TEST(transcribe_cancels_inside_a_window)
{
    struct fb_fx f;
    if (fb_open(&f, "b_sentence"))
        return;
    struct transcribe_params p = fb_params();
    p.max_tokens = 0; /* up to 220 tokens: the cancel must not wait for the window's end */
    int calls = 0;
    p.progress = stop_on_second_call;
    p.progress_user = &calls;
    struct transcript *t = NULL;
    struct sd_error err = {0};
    enum sd_err rc = transcribe_pcm(f.st, f.tok, f.pcm, f.n, &p, &t, &err);
    CHECK_EQ_INT(rc, SD_ECANCELLED);
    CHECK(t == NULL);
    CHECK_EQ_INT(calls, 2); /* asked at steps 8 and 16 of the first window */
    fb_close(&f);
}

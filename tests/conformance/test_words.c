/*
 * test_words.c - word-level timestamps: DTW finds the obvious path, words
 * split on spaces with punctuation merged and numbers kept, every word has
 * ordered times inside its window, and a segment's words spell its text.
 */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "refdata.h"
#include "whisper/mel.h"
#include "whisper/tokenizer.h"
#include "whisper/transcribe.h"
#include "whisper/words.h"

TEST(words_dtw_follows_the_cheap_diagonal)
{
    enum { R = 4, C = 8 };
    float cost[R * C];
    for (int r = 0; r < R; r++)
        for (int c = 0; c < C; c++)
            cost[r * C + c] = (c / 2 == r) ? -1.0f : 1.0f; /* row r owns columns 2r, 2r+1 */
    int pr[R + C], pc[R + C];
    int n = words_dtw(cost, R, C, pr, pc);
    CHECK(n >= C);
    CHECK_EQ_INT(pr[0], 0);
    CHECK_EQ_INT(pc[0], 0);
    CHECK_EQ_INT(pr[n - 1], R - 1);
    CHECK_EQ_INT(pc[n - 1], C - 1);
    for (int k = 0; k < n; k++) {
        CHECK(pc[k] / 2 == pr[k]);
        if (k > 0)
            CHECK(pr[k] >= pr[k - 1] && pc[k] >= pc[k - 1]);
    }
}

TEST(words_split_merge_punctuation_and_numbers)
{
    struct ref_engine f;
    if (ref_engine_open(&f, "micro-en.f16.bin", 6))
        return;
    struct sd_error err = {0};
    char path[512];
    size_t n = 0;
    float *pcm = ref_read_wav(ref_path(path, sizeof(path), "b_sentence.wav"), &n);
    struct mel_spec mel = {0};
    int n_mels = 0, n_bins = 0;
    const float *filters = whisper_model_mel_filters(f.m, &n_mels, &n_bins);
    CHECK_OK(mel_compute(pcm, n, filters, n_mels, 2, &mel, &err), &err);
    float *window = malloc((size_t)n_mels * 3000 * sizeof(float));
    mel_window(&mel, 0, window);
    CHECK_OK(whisper_encode(f.st, window, 3000, &err), &err);
    const char *text = " \"Hello,\" she said: it costs 42 dollars (really).";
    int32_t *ids = NULL;
    int n_ids = 0;
    CHECK_OK(tok_encode(f.tok, text, strlen(text), &ids, &n_ids, &err), &err);
    float *lp = calloc((size_t)n_ids, sizeof(float));
    int32_t sot = whisper_model_special(f.m)->sot;
    struct words_input in = {.st = f.st, .tok = f.tok, .sot_seq = &sot, .n_sot = 1, .text = ids,
                             .text_logprob = lp, .n_text = n_ids, .n_mel_frames = 959,
                             .offset_s = 0.0, .language = "en"};
    struct word_timing *w = NULL;
    int n_words = 0;
    CHECK_OK(words_align(&in, &w, &n_words, &err), &err);
    static const char *const want[] = {" \"Hello,\"", " she", " said:", " it", " costs", " 42",
                                       " dollars", " (really)."};
    CHECK_EQ_INT(n_words, 8);
    for (int i = 0; i < n_words && i < 8; i++) {
        CHECK_STR(w[i].word, want[i]);
        CHECK(w[i].start >= 0.0 && w[i].start <= w[i].end && w[i].end <= 9.6);
        CHECK_NEAR(w[i].probability, 1.0, 1e-6); /* logprob 0 for every token */
        if (i > 0)
            CHECK(w[i].start >= w[i - 1].start);
    }
    words_free(w, n_words);
    free(lp);
    free(ids);
    free(window);
    mel_spec_free(&mel);
    free(pcm);
    ref_engine_close(&f);
}

TEST(words_transcript_words_spell_each_segment)
{
    struct ref_engine f;
    if (ref_engine_open(&f, "micro-en.f16.bin", 6))
        return;
    char path[512];
    size_t n = 0;
    float *pcm = ref_read_wav(ref_path(path, sizeof(path), "c_passage.wav"), &n);
    struct transcribe_params p = transcribe_params_default();
    p.beam_size = 1;
    p.no_fallback = true;
    p.word_timestamps = true;
    struct transcript *t = NULL;
    struct sd_error err = {0};
    CHECK_OK(transcribe_pcm(f.st, f.tok, pcm, n, &p, &t, &err), &err);
    int total = 0;
    for (int s = 0; t && s < t->n_segments; s++) {
        const struct transcript_segment *seg = &t->segments[s];
        char joined[4096] = "";
        for (int i = 0; i < seg->n_words; i++) {
            strncat(joined, seg->words[i].word, sizeof(joined) - strlen(joined) - 1);
            CHECK(seg->words[i].start <= seg->words[i].end);
            CHECK(seg->words[i].start >= 0.0 && seg->words[i].end <= t->duration + 30.0);
        }
        CHECK_MSG(seg->n_words > 0, "segment %d has no words", s);
        CHECK_STR(joined, seg->text);
        total += seg->n_words;
    }
    CHECK(total > 0);
    transcript_destroy(t);
    free(pcm);
    ref_engine_close(&f);
}

/*
 * words.h - word-level timestamps for one decoded window, as openai/whisper
 * computes them: the decoder's cross-attention over the alignment heads is
 * normalised, median-filtered and aligned to the audio frames by dynamic time
 * warping; tokens are grouped into words (spaces, or characters for
 * languages without them), punctuation is merged into neighbouring words.
 * Every word, numbers and punctuation-only tokens included, gets a start and
 * an end.
 */
#ifndef SD_WHISPER_WORDS_H
#define SD_WHISPER_WORDS_H

#include <stdint.h>

#include "util/err.h"
#include "whisper/tokenizer.h"
#include "whisper/whisper.h"

struct words_input {
    struct whisper_state *st;    /* encoded with the window's audio */
    const struct tokenizer *tok;
    const int32_t *sot_seq;      /* SOT [language task] */
    int n_sot;
    const int32_t *text;         /* the window's text tokens (ids < EOT) */
    const float *text_logprob;   /* their log-probabilities */
    int n_text;
    int n_mel_frames;            /* audio in the window, in mel frames (<= 3000) */
    double offset_s;             /* where the window starts in the audio */
    const char *language;        /* "zh", "ja", ... split by character; else by spaces */
};

struct word_timing {
    char *word;        /* owned: words_free */
    double start, end; /* seconds */
    float probability; /* mean token probability */
    int token_begin;   /* index of its first token in input.text */
    int token_end;     /* one past its last token */
};

/* On SD_OK the caller owns *out (words_free). No text tokens -> 0 words. */
enum sd_err words_align(const struct words_input *in, struct word_timing **out, int *n_out,
                        struct sd_error *err);
void words_free(struct word_timing *w, int n);

/*
 * The model's alignment heads as (layer, head) pairs: the published lists for
 * tiny ... medium (English-only and multilingual); otherwise every head of the
 * top half of the decoder layers (openai/whisper's default). Returns the count;
 * pairs must hold 2 * n_text_layer * n_text_head ints.
 */
int words_alignment_heads(const struct whisper_model *m, int *pairs);

/*
 * Exposed for tests: the monotonic minimum-cost path through cost[n_rows][n_cols]
 * from (0, 0) to (n_rows-1, n_cols-1); path arrays hold n_rows + n_cols entries.
 * Returns the path length, -1 when out of memory.
 */
int words_dtw(const float *cost, int n_rows, int n_cols, int *path_row, int *path_col);

#endif

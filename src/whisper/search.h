/*
 * search.h - choosing the tokens of one 30 s window: greedy, sampling with
 * best_of candidates, and openai/whisper's deterministic beam search (each
 * beam proposes its top beam_size + 1 tokens, the best beam_size unfinished
 * candidates survive, finished ones are collected until beam_size * patience
 * exist, ranked by length-penalised sum log-prob). Beams are decoded as one
 * batch per step (one pass over the weights).
 *
 * A window ends, and its usable length (result_len) and advance (seek_delta)
 * are set, by the rules of reference-decoding-vad.md §3.2. transcribe.c owns
 * the loop over windows; this file knows nothing about audio or segments.
 */
#ifndef SD_WHISPER_SEARCH_H
#define SD_WHISPER_SEARCH_H

#include <stdbool.h>
#include <stdint.h>

#include "util/err.h"
#include "util/rng.h"
#include "whisper/batcher.h"
#include "whisper/logits.h"
#include "whisper/whisper.h"

#define SEARCH_MAX_TOKENS 224 /* n_text_ctx / 2 */

struct search_seq {
    int32_t tokens[SEARCH_MAX_TOKENS];
    float plog[SEARCH_MAX_TOKENS];   /* log-prob of each chosen token after the rules */
    int32_t tid[SEARCH_MAX_TOKENS];  /* most likely timestamp at that step (for segment starts) */
    int n_tokens;
    int n_sampled;                   /* tokens before the result was cut to result_len */
    int result_len;                  /* tokens that belong to the window's result */
    int seek_delta;                  /* frames the window advances */
    bool has_ts;
    bool done;
    bool failed;
    double sum_logprob;
};

struct search_window {
    struct whisper_state *st;
    struct logit_rules rules;
    const int32_t *prompt;  /* [PREV, past..., SOT, (lang, task), (NOT)] */
    int n_prompt;
    int sot_index;          /* position of SOT in prompt (no-speech probability is read there) */
    int seek, seek_end;     /* mel frames */
    int max_tokens;         /* tokens per window; 0 = up to n_max */
    int n_max;              /* hard cap: n_text_ctx / 2 - 4 */
    float temperature;
    float length_penalty;   /* < 0: divide by length (openai's default) */
    struct sd_rng *rng;
    /* Asked every few steps; false stops the search with SD_ECANCELLED. May be NULL. */
    bool (*keep_going)(void *user);
    void *keep_going_user;
    /* NULL, or where the steps meet other requests' steps (batcher.h) */
    struct whisper_batcher *batcher;
    bool joined;            /* set by the search while it is a member */
    float *logits;          /* scratch: n_seq x n_vocab */
    float *logprobs;        /* scratch: n_seq x n_vocab */
};

#define SEARCH_MAX_CANDIDATES 24

struct search_result {
    struct search_seq seq;  /* the chosen sequence; cut to result_len unless it failed */
    int n_beams;            /* sequences searched: beams, best_of samples, or 1 (greedy) */
    float no_speech_prob;
    /* Scores of every sequence that competed (best_of samples, finished beams). */
    double candidate_scores[SEARCH_MAX_CANDIDATES];
    int n_candidates;
};

/* Temperature 0: greedy. Temperature > 0: one sample. */
enum sd_err search_greedy(struct search_window *w, struct search_result *out, struct sd_error *err);
/* best_of samples at w->temperature (> 0), decoded as one batch; the best by score wins. */
enum sd_err search_best_of(struct search_window *w, int best_of, struct search_result *out,
                           struct sd_error *err);
/*
 * The widest beam search_beam takes (and transcribe checks for): the request
 * parameter's maximum in stt_params.def.
 */
#define SEARCH_MAX_BEAM 16
/*
 * Beam search at temperature 0, beam_size 1..SEARCH_MAX_BEAM; the state needs
 * beam_size sequences.
 */
enum sd_err search_beam(struct search_window *w, int beam_size, float patience,
                        struct search_result *out, struct sd_error *err);

/* Length-penalised score used to rank finished sequences. */
double search_score(const struct search_window *w, const struct search_seq *s);

#endif

/*
 * logits.h - the logit rules applied before choosing each token of a window
 * (suppress blank, special and language tokens, timestamp pairing and
 * monotonicity, max initial timestamp, forced timestamps), and log-softmax.
 *
 * The rules and their order follow whisper.cpp's whisper_process_logits,
 * which the conformance data was made with (see
 * shared/research/reference-decoding-vad.md §3.1); openai/whisper applies the
 * same rules except that it also forbids text as the first token.
 */
#ifndef SD_WHISPER_LOGITS_H
#define SD_WHISPER_LOGITS_H

#include <stdbool.h>
#include <stdint.h>

#include "whisper/model.h"

struct sd_backend;

struct logit_rules {
    struct sd_backend *be;    /* the kernels the log-softmax runs on (the state's) */
    const struct whisper_special_tokens *sp;
    int n_vocab;
    bool timestamps;          /* false: every timestamp token is suppressed */
    bool suppress_blank;      /* first token may not be EOT or " " */
    int max_initial_ts_steps; /* first timestamp <= beg + this; < 0 = no limit */
    int max_tokens;           /* > 0 with timestamps: after this many, only timestamps/EOT */
    const uint8_t *suppress;  /* n_vocab flags of extra suppressed tokens, or NULL */
};

/* Token id of " " in the GPT-2 vocabulary (suppressed at the start). */
#define LOGITS_BLANK_ID 220

/*
 * Applies the rules to raw logits in place, given the tokens sampled so far
 * in this window, and writes the log-softmax to logprobs. If the timestamps
 * together are more likely than any text token, text is suppressed (and
 * logprobs recomputed). Both arrays have n_vocab entries.
 */
void logits_apply(const struct logit_rules *r, float *logits, float *logprobs,
                  const int32_t *tokens, int n_tokens);

/* log_softmax; -inf entries (suppressed tokens) stay -inf. */
void logits_log_softmax(struct sd_backend *be, const float *logits, float *logprobs, int n);

/* Index of the largest value (lowest index wins ties); -1 if all are -inf. */
int logits_argmax(const float *v, int n);

/*
 * Most likely timestamp token given logprobs (probabilities compared strictly,
 * starting from 0): 0 when every timestamp has probability 0 (as the reference).
 */
int32_t logits_timestamp_argmax(const struct logit_rules *r, const float *logprobs);

#endif

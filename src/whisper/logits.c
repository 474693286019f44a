/*
 * logits.c - logit rules and log-softmax for the window decoder (logits.h).
 * Pure functions over arrays: no allocation, no state; the log-sum-exps of
 * a vocabulary run on the backend's vector kernels.
 */
#include "whisper/logits.h"

#include <math.h>

#include "backend/ops.h"

static void suppress_range(float *logits, int from, int to)
{
    for (int i = from; i < to; i++)
        logits[i] = -INFINITY;
}

void logits_log_softmax(struct sd_backend *be, const float *logits, float *logprobs, int n)
{
    float lse = sd_op_logsumexp(be, logits, n);
    if (lse == -INFINITY) { /* everything suppressed */
        for (int i = 0; i < n; i++)
            logprobs[i] = -INFINITY;
        return;
    }
    for (int i = 0; i < n; i++)
        logprobs[i] = logits[i] - lse; /* -inf stays -inf */
}

int logits_argmax(const float *v, int n)
{
    int best = -1;
    float best_v = -INFINITY;
    for (int i = 0; i < n; i++)
        if (v[i] > best_v) {
            best_v = v[i];
            best = i;
        }
    return best;
}

int32_t logits_timestamp_argmax(const struct logit_rules *r, const float *logprobs)
{
    int32_t tid = 0;
    float best = 0.0f;
    for (int i = r->sp->timestamp_begin; i < r->n_vocab; i++) {
        float p = expf(logprobs[i]);
        if (p > best) {
            best = p;
            tid = i;
        }
    }
    return tid;
}

/* Rules that only depend on which tokens exist (whisper.cpp rules 2-7). */
static void apply_static_rules(const struct logit_rules *r, float *logits, int n_tokens)
{
    const struct whisper_special_tokens *sp = r->sp;
    if (r->suppress_blank && n_tokens == 0) {
        logits[sp->eot] = -INFINITY;
        logits[LOGITS_BLANK_ID] = -INFINITY;
    }
    logits[sp->no_timestamps] = -INFINITY;
    if (!r->timestamps)
        suppress_range(logits, sp->timestamp_begin, r->n_vocab);
    if (r->timestamps && r->max_tokens > 0 && n_tokens >= r->max_tokens)
        suppress_range(logits, 0, sp->eot);
    /* SOT, languages, translate/transcribe, SOLM, PREV, NOSP: never sampled. */
    suppress_range(logits, sp->sot, sp->no_timestamps);
    if (r->suppress)
        for (int i = 0; i < r->n_vocab; i++)
            if (r->suppress[i])
                logits[i] = -INFINITY;
}

/* Timestamp pairing, initial limit and monotonicity (rules 8-10). */
static void apply_timestamp_rules(const struct logit_rules *r, float *logits,
                                  const int32_t *tokens, int n_tokens)
{
    const int32_t beg = r->sp->timestamp_begin;
    bool last_ts = n_tokens > 0 && tokens[n_tokens - 1] >= beg;
    bool penultimate_ts = n_tokens < 2 || tokens[n_tokens - 2] >= beg;
    if (last_ts) {
        if (penultimate_ts)
            suppress_range(logits, beg, r->n_vocab);
        else
            suppress_range(logits, 0, r->sp->eot);
    }
    if (n_tokens == 0 && r->max_initial_ts_steps >= 0) {
        int last_allowed = beg + r->max_initial_ts_steps;
        if (last_allowed + 1 < r->n_vocab)
            suppress_range(logits, last_allowed + 1, r->n_vocab);
    }
    /* Timestamps may not go back in time (equal is allowed). */
    for (int i = n_tokens - 1; i >= 0; i--)
        if (tokens[i] > beg) {
            suppress_range(logits, beg, tokens[i]);
            break;
        }
}

void logits_apply(const struct logit_rules *r, float *logits, float *logprobs,
                  const int32_t *tokens, int n_tokens)
{
    apply_static_rules(r, logits, n_tokens);
    if (r->timestamps)
        apply_timestamp_rules(r, logits, tokens, n_tokens);
    logits_log_softmax(r->be, logits, logprobs, r->n_vocab);
    if (!r->timestamps)
        return;
    /* If all timestamps together beat every single text token, force a timestamp. */
    const int32_t beg = r->sp->timestamp_begin;
    float ts_lse = sd_op_logsumexp(r->be, logprobs + beg, r->n_vocab - beg);
    if (ts_lse == -INFINITY)
        return;
    float text_max = -INFINITY;
    for (int i = 0; i < beg; i++)
        if (logprobs[i] > text_max)
            text_max = logprobs[i];
    if (ts_lse > text_max) {
        suppress_range(logits, 0, beg);
        logits_log_softmax(r->be, logits, logprobs, r->n_vocab);
    }
}

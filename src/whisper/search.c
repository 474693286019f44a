/*
 * search.c - greedy, best-of sampling and beam search over one window
 * (search.h). Scratch buffers come from the caller (struct search_window);
 * sequences live in small fixed arrays, so nothing is allocated per token
 * except the beam bookkeeping, which is allocated once per window.
 */
#include "whisper/search.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define FRAMES_PER_WINDOW 3000
#define END_SLACK_FRAMES 10

static void seq_init(struct search_seq *s)
{
    s->n_tokens = 0;
    s->n_sampled = 0;
    s->result_len = 0;
    s->seek_delta = FRAMES_PER_WINDOW;
    s->has_ts = false;
    s->done = false;
    s->failed = false;
    s->sum_logprob = 0.0;
}

static void seq_copy(struct search_seq *dst, const struct search_seq *src)
{
    int n = src->n_tokens;
    memcpy(dst->tokens, src->tokens, (size_t)n * sizeof(dst->tokens[0]));
    memcpy(dst->plog, src->plog, (size_t)n * sizeof(dst->plog[0]));
    memcpy(dst->tid, src->tid, (size_t)n * sizeof(dst->tid[0]));
    dst->n_tokens = n;
    dst->n_sampled = src->n_sampled;
    dst->result_len = src->result_len;
    dst->seek_delta = src->seek_delta;
    dst->has_ts = src->has_ts;
    dst->done = src->done;
    dst->failed = src->failed;
    dst->sum_logprob = src->sum_logprob;
}

/*
 * Appends a chosen token and applies the end-of-window rules (reference
 * §3.2): a timestamp past the start sets seek_delta/result_len; the window
 * ends on EOT, at max_tokens, or when a timestamp reaches the end of audio.
 */
static void seq_push(const struct search_window *w, struct search_seq *s, int32_t tok, float plog,
                     int32_t tid)
{
    const struct whisper_special_tokens *sp = w->rules.sp;
    const int i = s->n_tokens;
    s->tokens[i] = tok;
    s->plog[i] = plog;
    s->tid[i] = tid;
    s->n_tokens = i + 1;
    s->sum_logprob += plog;
    if (w->rules.timestamps && tok > sp->timestamp_begin) {
        int delta = 2 * (tok - sp->timestamp_begin);
        if (s->has_ts && delta < s->seek_delta && s->result_len < i) {
            s->failed = s->done = true;
            return;
        }
        s->seek_delta = delta;
        s->result_len = i + 1;
        s->has_ts = true;
    }
    bool at_end = s->has_ts && w->seek + s->seek_delta + END_SLACK_FRAMES >= w->seek_end;
    bool ended = tok == sp->eot || (w->max_tokens > 0 && i + 1 >= w->max_tokens) || at_end;
    if (ended) {
        if (s->result_len == 0 && w->rules.timestamps) {
            if (w->seek + s->seek_delta + END_SLACK_FRAMES >= w->seek_end)
                s->result_len = i + 1;
            else
                s->failed = true;
        }
        if (!w->rules.timestamps) {
            s->result_len = i + 1;
            s->seek_delta = FRAMES_PER_WINDOW;
        }
        s->done = true;
        return;
    }
    if (i + 1 >= w->n_max) {
        /* Ran out of room: a window stuck in a loop without progress failed. */
        if (s->result_len == 0 || s->seek_delta < FRAMES_PER_WINDOW / 2)
            s->failed = true;
        s->done = true;
    }
}

double search_score(const struct search_window *w, const struct search_seq *s)
{
    int len = s->failed ? s->n_tokens : s->result_len;
    double sum = 0.0;
    for (int i = 0; i < len; i++)
        sum += s->plog[i];
    int n = len;
    if (n > 0 && s->tokens[n - 1] == w->rules.sp->eot)
        n--; /* openai ranks by the length without EOT */
    if (n < 1)
        n = 1;
    double penalty = w->length_penalty < 0 ? (double)n : pow((5.0 + n) / 6.0, w->length_penalty);
    return sum / penalty;
}

#define CANCEL_CHECK_STEPS 8

/* Lets a client that went away stop a window mid-way instead of at its end. */
static enum sd_err check_cancel(const struct search_window *w, int step, struct sd_error *err)
{
    if (w->keep_going && step % CANCEL_CHECK_STEPS == 0 && !w->keep_going(w->keep_going_user))
        return sd_fail(err, SD_ECANCELLED, "transcription cancelled");
    return SD_OK;
}

static int n_vocab_of(const struct search_window *w)
{
    return w->rules.n_vocab;
}

/* Decodes the prompt on sequence `seq`; logits of its last position go to w->logits. */
static enum sd_err decode_prompt(struct search_window *w, int seq, float *no_speech_prob,
                                 struct sd_error *err)
{
    const int n_vocab = n_vocab_of(w);
    int n_head = w->sot_index + 1;
    enum sd_err rc = whisper_decode(w->st, seq, w->prompt, n_head, 0, w->logits, err);
    if (rc)
        return rc;
    /* openai/whisper reads the no-speech probability at the SOT position. */
    logits_log_softmax(w->rules.be, w->logits, w->logprobs, n_vocab);
    *no_speech_prob = expf(w->logprobs[w->rules.sp->nosp]);
    if (w->n_prompt > n_head)
        rc = whisper_decode(w->st, seq, w->prompt + n_head, w->n_prompt - n_head, n_head,
                            w->logits, err);
    return rc;
}

/*
 * The token-by-token phase of a window: steps_begin after the prompt,
 * decode_step for each step, steps_end on every way out. With a batcher the
 * steps run together with other requests' (batcher.h), else on w->st alone.
 */
static void steps_begin(struct search_window *w, int rows_per_step)
{
    w->joined = w->batcher && whisper_batcher_join(w->batcher, w->st, rows_per_step);
}

static void steps_end(struct search_window *w)
{
    if (w->joined)
        whisper_batcher_leave(w->batcher);
    w->joined = false;
}

static enum sd_err decode_step(struct search_window *w, int n, const int *seqs,
                               const int32_t *tokens, const int *n_past, float *logits,
                               struct sd_error *err)
{
    if (w->joined)
        return whisper_batcher_step(w->batcher, w->st, n, seqs, tokens, n_past, logits, err);
    return whisper_decode_batch(w->st, n, seqs, tokens, n_past, logits, err);
}

/* Draws a token from softmax(logprobs / temperature). */
static int32_t sample_token(const float *logprobs, int n, float temperature, struct sd_rng *rng)
{
    double max = -INFINITY;
    for (int i = 0; i < n; i++)
        if (logprobs[i] > max)
            max = logprobs[i];
    double sum = 0.0;
    for (int i = 0; i < n; i++)
        if (logprobs[i] > -INFINITY)
            sum += exp((logprobs[i] - max) / temperature);
    double u = sd_rng_uniform(rng) * sum, acc = 0.0;
    int32_t last = 0;
    for (int i = 0; i < n; i++) {
        if (logprobs[i] == -INFINITY)
            continue;
        acc += exp((logprobs[i] - max) / temperature);
        last = i;
        if (acc > u)
            return i;
    }
    return last;
}

/* Rules, choice and bookkeeping of one step of one sequence; returns the token. */
static int32_t choose_token(struct search_window *w, struct search_seq *s, float *logits,
                            float *logprobs)
{
    const int n_vocab = n_vocab_of(w);
    logits_apply(&w->rules, logits, logprobs, s->tokens, s->n_tokens);
    int32_t tok = w->temperature > 0 ? sample_token(logprobs, n_vocab, w->temperature, w->rng)
                                     : logits_argmax(logprobs, n_vocab);
    if (tok < 0)
        tok = w->rules.sp->eot; /* everything suppressed: end the window */
    int32_t tid = tok >= w->rules.sp->timestamp_begin ? tok
                                                       : logits_timestamp_argmax(&w->rules, logprobs);
    seq_push(w, s, tok, logprobs[tok], tid);
    return tok;
}

static void note_candidate(struct search_result *out, double score)
{
    if (out->n_candidates < SEARCH_MAX_CANDIDATES)
        out->candidate_scores[out->n_candidates++] = score;
}

static void finish_result(struct search_result *out)
{
    struct search_seq *s = &out->seq;
    s->n_sampled = s->n_tokens;
    if (!s->failed)
        s->n_tokens = s->result_len;
}

enum sd_err search_greedy(struct search_window *w, struct search_result *out, struct sd_error *err)
{
    struct search_seq *s = &out->seq;
    seq_init(s);
    out->n_candidates = 0;
    enum sd_err rc = decode_prompt(w, 0, &out->no_speech_prob, err);
    if (rc)
        return rc;
    out->n_beams = 1;
    steps_begin(w, 1);
    for (;;) {
        rc = check_cancel(w, s->n_tokens + 1, err);
        if (rc)
            break;
        int32_t tok = choose_token(w, s, w->logits, w->logprobs);
        if (s->done)
            break;
        int seq = 0, pos = w->n_prompt + s->n_tokens - 1;
        rc = decode_step(w, 1, &seq, &tok, &pos, w->logits, err);
        if (rc)
            break;
    }
    steps_end(w);
    if (rc)
        return rc;
    finish_result(out);
    return SD_OK;
}

enum sd_err search_best_of(struct search_window *w, int best_of, struct search_result *out,
                           struct sd_error *err)
{
    const int n_vocab = n_vocab_of(w);
    struct search_seq *seqs = malloc((size_t)best_of * sizeof(*seqs));
    int *ids = malloc((size_t)best_of * 3 * sizeof(int));
    int32_t *toks = malloc((size_t)best_of * sizeof(int32_t));
    enum sd_err rc = SD_OK;
    if (!seqs || !ids || !toks) {
        rc = sd_fail(err, SD_ENOMEM, "best_of buffers");
        goto done;
    }
    int *live = ids, *pos = ids + best_of, *live_seq = ids + 2 * best_of;
    rc = decode_prompt(w, 0, &out->no_speech_prob, err);
    if (rc)
        goto done;
    for (int j = 0; j < best_of; j++) {
        seq_init(&seqs[j]);
        if (j > 0) {
            whisper_kv_copy(w->st, 0, j, w->n_prompt);
            memcpy(w->logits + (size_t)j * n_vocab, w->logits, (size_t)n_vocab * sizeof(float));
        }
    }
    out->n_beams = best_of;
    steps_begin(w, best_of);
    for (int step = 1;; step++) {
        rc = check_cancel(w, step, err);
        if (rc)
            goto done;
        int n_live = 0;
        for (int j = 0; j < best_of; j++) {
            if (seqs[j].done)
                continue;
            float *lg = w->logits + (size_t)j * n_vocab, *lp = w->logprobs + (size_t)j * n_vocab;
            int32_t tok = choose_token(w, &seqs[j], lg, lp);
            if (seqs[j].done)
                continue;
            live[n_live] = j;
            toks[n_live] = tok;
            pos[n_live] = w->n_prompt + seqs[j].n_tokens - 1;
            n_live++;
        }
        if (n_live == 0)
            break;
        /* decode_batch writes rows in batch order; spread them back to their sequences. */
        for (int k = 0; k < n_live; k++)
            live_seq[k] = live[k];
        rc = decode_step(w, n_live, live_seq, toks, pos, w->logprobs, err);
        if (rc)
            goto done;
        for (int k = n_live - 1; k >= 0; k--)
            memcpy(w->logits + (size_t)live[k] * n_vocab, w->logprobs + (size_t)k * n_vocab,
                   (size_t)n_vocab * sizeof(float));
    }
    steps_end(w); /* the other members' steps wait for every member's */
    int best = -1;
    double best_score = -INFINITY;
    out->n_candidates = 0;
    for (int j = 0; j < best_of; j++) {
        double sc = search_score(w, &seqs[j]);
        note_candidate(out, sc);
        bool better = best < 0 || (seqs[best].failed && !seqs[j].failed) ||
                      (seqs[best].failed == seqs[j].failed && sc > best_score);
        if (better) {
            best = j;
            best_score = sc;
        }
    }
    seq_copy(&out->seq, &seqs[best]);
    finish_result(out);
done:
    steps_end(w);
    free(seqs);
    free(ids);
    free(toks);
    return rc;
}

/* ---- beam search ---------------------------------------------------------- */

struct beam_cand {
    double score;
    int parent;
    int32_t tok;
    float plog;
    int32_t tid;
};

static int cmp_cand(const void *a, const void *b)
{
    const struct beam_cand *x = a, *y = b;
    if (x->score != y->score)
        return x->score > y->score ? -1 : 1;
    if (x->parent != y->parent)
        return x->parent - y->parent;
    return x->tok - y->tok;
}

/* The k most likely tokens of one row (k small), best first. */
static int top_k(const float *lp, int n, int k, int32_t *ids)
{
    int m = 0;
    for (int i = 0; i < n; i++) {
        if (lp[i] == -INFINITY || (m == k && lp[i] <= lp[ids[m - 1]]))
            continue;
        int j = m < k ? m++ : k - 1;
        while (j > 0 && lp[ids[j - 1]] < lp[i]) {
            ids[j] = ids[j - 1];
            j--;
        }
        ids[j] = i;
    }
    return m;
}

struct beam_buffers {
    struct search_seq *beams, *next, *finished;
    struct beam_cand *cands;
    int *slot, *next_slot, *next_parent, *n_children, *slot_free;
    int32_t *last_tok;
    int *pos;
};

static void beam_free(struct beam_buffers *b)
{
    free(b->beams);
    free(b->next);
    free(b->finished);
    free(b->cands);
    free(b->slot);
    free(b->last_tok);
}

static bool beam_alloc(struct beam_buffers *b, int beam_size, int max_finished)
{
    memset(b, 0, sizeof(*b));
    int n = beam_size;
    b->beams = malloc((size_t)n * sizeof(*b->beams));
    b->next = malloc((size_t)n * sizeof(*b->next));
    b->finished = malloc((size_t)(max_finished + n) * sizeof(*b->finished));
    b->cands = malloc((size_t)n * (n + 1) * sizeof(*b->cands));
    b->slot = malloc((size_t)n * 6 * sizeof(int));
    b->last_tok = malloc((size_t)n * sizeof(int32_t));
    if (!b->beams || !b->next || !b->finished || !b->cands || !b->slot || !b->last_tok)
        return false;
    b->next_slot = b->slot + n;
    b->next_parent = b->slot + 2 * n;
    b->n_children = b->slot + 3 * n;
    b->slot_free = b->slot + 4 * n;
    b->pos = b->slot + 5 * n;
    return true;
}

/* Proposes beam_size + 1 tokens from every live beam into b->cands, sorted. */
static int beam_propose(struct search_window *w, struct beam_buffers *b, int n_beams, int k)
{
    const int n_vocab = n_vocab_of(w);
    int n_cand = 0;
    for (int j = 0; j < n_beams; j++) {
        float *lg = w->logits + (size_t)j * n_vocab, *lp = w->logprobs + (size_t)j * n_vocab;
        struct search_seq *s = &b->beams[j];
        logits_apply(&w->rules, lg, lp, s->tokens, s->n_tokens);
        int32_t ids[SEARCH_MAX_BEAM + 1]; /* k = beam_size + 1 */
        int m = top_k(lp, n_vocab, k, ids);
        int32_t ts_best = logits_timestamp_argmax(&w->rules, lp);
        for (int t = 0; t < m; t++) {
            struct beam_cand *c = &b->cands[n_cand++];
            c->tok = ids[t];
            c->plog = lp[ids[t]];
            c->score = s->sum_logprob + c->plog;
            c->parent = j;
            c->tid = ids[t] >= w->rules.sp->timestamp_begin ? ids[t] : ts_best;
        }
        if (m == 0) { /* everything suppressed: the beam can only end */
            struct beam_cand *c = &b->cands[n_cand++];
            *c = (struct beam_cand){s->sum_logprob, j, w->rules.sp->eot, 0.0f, 0};
        }
    }
    qsort(b->cands, (size_t)n_cand, sizeof(*b->cands), cmp_cand);
    return n_cand;
}

/*
 * Moves each surviving beam's KV cache into a slot: the first child of a
 * parent keeps the parent's slot; further children copy it into slots whose
 * parents had no children (their old contents are no longer needed).
 */
static void beam_assign_slots(struct search_window *w, struct beam_buffers *b, int n_beams,
                              int n_next, int beam_size)
{
    for (int s = 0; s < beam_size; s++)
        b->slot_free[s] = 1;
    for (int j = 0; j < n_beams; j++)
        b->n_children[j] = 0;
    for (int j = 0; j < n_next; j++)
        b->n_children[b->next_parent[j]]++;
    for (int j = 0; j < n_beams; j++)
        if (b->n_children[j] > 0)
            b->slot_free[b->slot[j]] = 0;
    for (int j = 0; j < n_beams; j++)
        b->n_children[j] = 0; /* reuse as "slot already claimed" */
    for (int j = 0; j < n_next; j++) {
        int p = b->next_parent[j];
        if (!b->n_children[p]) {
            b->n_children[p] = 1;
            b->next_slot[j] = b->slot[p];
            continue;
        }
        int f = 0;
        while (!b->slot_free[f])
            f++;
        b->slot_free[f] = 0;
        whisper_kv_copy(w->st, b->slot[p], f, w->n_prompt + b->next[j].n_tokens - 1);
        b->next_slot[j] = f;
    }
}

static void beam_pick(const struct search_window *w, struct beam_buffers *b, int n_finished,
                      struct search_result *out)
{
    int best = 0;
    double best_score = -INFINITY;
    out->n_candidates = 0;
    for (int j = 0; j < n_finished; j++) {
        double sc = search_score(w, &b->finished[j]);
        note_candidate(out, sc);
        bool better = (b->finished[best].failed && !b->finished[j].failed) ||
                      (b->finished[best].failed == b->finished[j].failed && sc > best_score);
        if (j == 0 || better) {
            best = j;
            best_score = sc;
        }
    }
    seq_copy(&out->seq, &b->finished[best]);
    finish_result(out);
}

/*
 * The greedy companion: one extra hypothesis that always takes the arg-max,
 * decoded in the same batch as the beams (slot beam_size). It competes in
 * the final ranking, so beam search never returns a worse-scoring window than
 * greedy decoding would (openai/whisper's beams can prune the greedy path and
 * end in a worse repetition loop; users should never pay for a wider beam).
 */
struct greedy_companion {
    struct search_seq seq;
    bool live;
    int slot;
};

static void companion_step(struct search_window *w, struct greedy_companion *g, int row)
{
    const int n_vocab = n_vocab_of(w);
    float *lg = w->logits + (size_t)row * n_vocab, *lp = w->logprobs + (size_t)row * n_vocab;
    (void)choose_token(w, &g->seq, lg, lp);
    g->live = !g->seq.done;
}

enum sd_err search_beam(struct search_window *w, int beam_size, float patience,
                        struct search_result *out, struct sd_error *err)
{
    const int n_vocab = n_vocab_of(w);
    if (beam_size < 1 || beam_size > SEARCH_MAX_BEAM)
        return sd_fail(err, SD_EINVAL, "beam_size must be 1 to %d", SEARCH_MAX_BEAM);
    int max_finished = (int)lround(beam_size * (patience > 0 ? patience : 1.0));
    if (max_finished < 1)
        max_finished = 1;
    struct beam_buffers b = {0};
    struct greedy_companion *g = calloc(1, sizeof(*g));
    enum sd_err rc = SD_OK;
    /* +1 row in the finished list for the companion. */
    if (!g || !beam_alloc(&b, beam_size + 1, max_finished)) {
        beam_free(&b);
        free(g);
        return sd_fail(err, SD_ENOMEM, "beam search buffers");
    }
    rc = decode_prompt(w, 0, &out->no_speech_prob, err);
    if (rc)
        goto done;
    seq_init(&b.beams[0]);
    seq_init(&g->seq);
    g->slot = beam_size;
    b.slot[0] = 0;
    /* The companion starts from the prompt's logits (row 0) before the rules touch them. */
    memcpy(w->logits + (size_t)beam_size * n_vocab, w->logits, (size_t)n_vocab * sizeof(float));
    whisper_kv_copy(w->st, 0, g->slot, w->n_prompt);
    int g_row = beam_size;
    g->live = true;
    int n_beams = 1, n_finished = 0;
    out->n_beams = beam_size;
    steps_begin(w, beam_size + 1); /* the beams and the greedy companion */
    for (int step = 1;; step++) {
        rc = check_cancel(w, step, err);
        if (rc)
            goto done;
        if (g->live)
            companion_step(w, g, g_row);
        int n_cand = beam_propose(w, &b, n_beams, beam_size + 1);
        int n_next = 0;
        for (int c = 0; c < n_cand && n_next < beam_size; c++) {
            const struct beam_cand *cd = &b.cands[c];
            struct search_seq *dst = &b.next[n_next];
            seq_copy(dst, &b.beams[cd->parent]);
            seq_push(w, dst, cd->tok, cd->plog, cd->tid);
            if (dst->done) {
                if (n_finished < max_finished)
                    seq_copy(&b.finished[n_finished++], dst);
                continue;
            }
            b.next_parent[n_next++] = cd->parent;
        }
        bool beams_over = n_finished >= max_finished || n_next == 0;
        if (beams_over && !g->live)
            break;
        if (beams_over)
            n_next = 0; /* only the companion goes on */
        beam_assign_slots(w, &b, n_beams, n_next, beam_size);
        for (int j = 0; j < n_next; j++) {
            b.last_tok[j] = b.next[j].tokens[b.next[j].n_tokens - 1];
            b.pos[j] = w->n_prompt + b.next[j].n_tokens - 1;
        }
        struct search_seq *tmp = b.beams;
        b.beams = b.next;
        b.next = tmp;
        memcpy(b.slot, b.next_slot, (size_t)n_next * sizeof(int));
        n_beams = n_next;
        int n_batch = n_beams;
        if (g->live) { /* the companion rides in the same batch, last row */
            b.slot[n_batch] = g->slot;
            b.last_tok[n_batch] = g->seq.tokens[g->seq.n_tokens - 1];
            b.pos[n_batch] = w->n_prompt + g->seq.n_tokens - 1;
            g_row = n_batch++;
        }
        rc = decode_step(w, n_batch, b.slot, b.last_tok, b.pos, w->logits, err);
        if (rc)
            goto done;
        if (beams_over)
            n_beams = 0;
    }
    steps_end(w); /* before the ranking: the other members' steps wait for every member's */
    /* Not enough finished: the live beams compete as they are (openai adds them). */
    for (int j = 0; j < n_beams && n_finished < beam_size; j++)
        if (!b.beams[j].done && b.beams[j].n_tokens > 0) {
            struct search_seq *f = &b.finished[n_finished++];
            seq_copy(f, &b.beams[j]);
            if (f->result_len == 0 && !w->rules.timestamps)
                f->result_len = f->n_tokens;
        }
    if (g->seq.n_tokens > 0)
        seq_copy(&b.finished[n_finished++], &g->seq);
    if (n_finished == 0)
        rc = sd_fail(err, SD_EINTERNAL, "beam search produced no sequence");
    else
        beam_pick(w, &b, n_finished, out);
done:
    steps_end(w);
    beam_free(&b);
    free(g);
    return rc;
}

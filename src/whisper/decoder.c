/*
 * decoder.c - Whisper's text decoder: token + positional embedding, per
 * layer causal self-attention over the sequence's KV cache, cross-attention
 * over the K/V computed by whisper_encode, GELU MLP; final layer norm and
 * logits = x . token_embedding^T. whisper_decode runs n tokens of one
 * sequence; whisper_decode_batch one token of each of n sequences with one
 * pass over the weights. No allocation: all scratch lives in the state.
 */
#include <math.h>

#include "whisper/state_internal.h"

/* What one decoding pass runs on: the backend, the activations, the groups. */
struct dec_pass {
    const struct whisper_model *m;
    struct sd_backend *be;
    struct whisper_dec_buffers *buf;
    const struct whisper_dec_group *g;
    int n_g;
    struct sd_mem logits; /* [n_g][n_vocab] */
};

static void self_attention(const struct dec_pass *P, int l)
{
    const struct whisper_hparams *h = &P->m->hp;
    struct whisper_dec_buffers *B = P->buf;
    int S = h->n_text_state, d = S / h->n_text_head;
    for (int i = 0; i < P->n_g; i++) {
        const struct whisper_dec_group *g = &P->g[i];
        struct sd_mem kc = whisper_kv_at(g->st->kv_k, g->st, g->seq, l);
        struct sd_mem vc = whisper_kv_at(g->st->kv_v, g->st, g->seq, l);
        /* append this step's K/V rows to the f16 cache (one "head" of S values per row) */
        sd_op_to_f16_heads(P->be, sd_mem_f32(B->k, (size_t)g->row0 * S), g->n_rows, 1, S,
                           sd_mem_f16(kc, (size_t)g->n_past * S));
        sd_op_to_f16_heads(P->be, sd_mem_f32(B->v, (size_t)g->row0 * S), g->n_rows, 1, S,
                           sd_mem_f16(vc, (size_t)g->n_past * S));
        struct sd_attention att = {.n_q = g->n_rows, .n_kv = g->n_past + g->n_rows,
                                   .n_head = h->n_text_head, .d_head = d,
                                   .q = sd_mem_f32(B->q, (size_t)g->row0 * S), .k = kc,
                                   .v = vc, .ldq = S, .ldk = S, .ldv = S,
                                   .out = sd_mem_f32(B->a, (size_t)g->row0 * S), .ldo = S,
                                   .scale = 1.0f / sqrtf((float)d), .causal = 1,
                                   .n_past = g->n_past, .kv_type = SD_TYPE_F16};
        sd_op_attention(P->be, &att);
    }
}

/* Cross-attention of each state's rows over that state's encoder output. */
static void cross_attention(const struct dec_pass *P, int l)
{
    const struct whisper_hparams *h = &P->m->hp;
    struct whisper_dec_buffers *B = P->buf;
    int S = h->n_text_state, d = S / h->n_text_head;
    size_t TS = (size_t)h->n_audio_ctx * (size_t)S;
    int64_t hs = (int64_t)h->n_audio_ctx * d; /* head-major f16 cache, see state_internal.h */
    for (int i = 0; i < P->n_g;) {
        struct whisper_state *st = P->g[i].st;
        int row0 = P->g[i].row0, j = i;
        while (j < P->n_g && P->g[j].st == st)
            j++;
        int n = P->g[j - 1].row0 + P->g[j - 1].n_rows - row0;
        if (st->capture)
            whisper_capture_cross_qk(st, l, n); /* word alignment (align.c): one state only */
        struct sd_attention att = {.n_q = n, .n_kv = h->n_audio_ctx, .n_head = h->n_text_head,
                                   .d_head = d, .q = sd_mem_f32(B->q, (size_t)row0 * S),
                                   .k = sd_mem_f16(st->cross_k, (size_t)l * TS),
                                   .v = sd_mem_f16(st->cross_v, (size_t)l * TS), .ldq = S,
                                   .ldk = d, .ldv = h->n_audio_ctx,
                                   .out = sd_mem_f32(B->a, (size_t)row0 * S),
                                   .ldo = S, .scale = 1.0f / sqrtf((float)d),
                                   .kv_type = SD_TYPE_F16, .k_head_stride = hs,
                                   .v_head_stride = hs, .v_transposed = 1};
        sd_op_attention(P->be, &att);
        i = j;
    }
}

static void decoder_block(const struct dec_pass *P, int l, int n)
{
    const struct whisper_hparams *h = &P->m->hp;
    const struct whisper_dec_layer *L = &P->m->dec[l];
    struct sd_backend *be = P->be;
    struct whisper_dec_buffers *B = P->buf;
    int S = h->n_text_state;

    const struct whisper_attn_weights *A = &L->attn;
    struct sd_weight wq = sd_weight_of(A->q_w), wk = sd_weight_of(A->k_w);
    struct sd_weight wv = sd_weight_of(A->v_w), wo = sd_weight_of(A->o_w);
    sd_op_layer_norm(be, B->x, n, S, A->ln_w->mem, A->ln_b->mem, WHISPER_LN_EPS, B->h);
    struct sd_matmul_out qkv[3] = {{&wq, A->q_b->mem, B->q, S, 0},
                                   {&wk, SD_MEM_NONE, B->k, S, 0},
                                   {&wv, A->v_b->mem, B->v, S, 0}};
    sd_op_matmul_multi(be, B->h, n, S, 3, qkv);
    self_attention(P, l);
    sd_op_matmul(be, B->a, n, S, &wo, A->o_b->mem, B->x, S, 1);

    const struct whisper_attn_weights *X = &L->cross;
    struct sd_weight xq = sd_weight_of(X->q_w), xo = sd_weight_of(X->o_w);
    sd_op_layer_norm(be, B->x, n, S, X->ln_w->mem, X->ln_b->mem, WHISPER_LN_EPS, B->h);
    sd_op_matmul(be, B->h, n, S, &xq, X->q_b->mem, B->q, S, 0);
    cross_attention(P, l);
    sd_op_matmul(be, B->a, n, S, &xo, X->o_b->mem, B->x, S, 1);

    const struct whisper_mlp_weights *M = &L->mlp;
    struct sd_weight w1 = sd_weight_of(M->fc1_w), w2 = sd_weight_of(M->fc2_w);
    sd_op_layer_norm(be, B->x, n, S, M->ln_w->mem, M->ln_b->mem, WHISPER_LN_EPS, B->h);
    sd_op_matmul(be, B->h, n, S, &w1, M->fc1_b->mem, B->mlp, 4 * S, 0);
    sd_op_gelu(be, B->mlp, (size_t)n * 4 * (size_t)S);
    sd_op_matmul(be, B->mlp, n, 4 * S, &w2, M->fc2_b->mem, B->x, S, 1);
}

/*
 * Runs n rows (tokens[i] at the positions given by the groups) through the
 * decoder and writes the logits of the last row of every group to
 * P->logits[group][n_vocab] (backend memory). Arguments are validated by the callers.
 */
static void decode_rows(const struct dec_pass *P, const int32_t *tokens, int n)
{
    const struct whisper_model *m = P->m;
    const struct whisper_hparams *h = &m->hp;
    struct whisper_dec_buffers *B = P->buf;
    int S = h->n_text_state;
    struct sd_weight emb = sd_weight_of(m->tok_emb);
    sd_op_get_rows(P->be, &emb, tokens, n, B->x);
    struct sd_mem pos = m->dec_pos->mem;
    for (int i = 0; i < P->n_g; i++)
        sd_op_add(P->be, sd_mem_f32(B->x, (size_t)P->g[i].row0 * S),
                  sd_mem_f32(pos, (size_t)P->g[i].n_past * S), (size_t)P->g[i].n_rows * S);
    for (int l = 0; l < h->n_text_layer; l++)
        decoder_block(P, l, n);
    /* final layer norm on the rows whose logits are wanted, gathered into h */
    for (int i = 0; i < P->n_g; i++) {
        int r = P->g[i].row0 + P->g[i].n_rows - 1;
        sd_op_layer_norm(P->be, sd_mem_f32(B->x, (size_t)r * S), 1, S, m->dec_ln_w->mem,
                         m->dec_ln_b->mem, WHISPER_LN_EPS, sd_mem_f32(B->h, (size_t)i * S));
    }
    sd_op_matmul(P->be, B->h, P->n_g, S, &emb, SD_MEM_NONE, P->logits, h->n_vocab, 0);
}

static enum sd_err check_tokens(const struct whisper_state *s, const int32_t *tokens, int n,
                                struct sd_error *err)
{
    for (int i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= s->m->hp.n_vocab)
            return sd_fail(err, SD_EINVAL, "whisper_decode: token %d is not in the vocabulary "
                           "(0 .. %d)", tokens[i], s->m->hp.n_vocab - 1);
    return SD_OK;
}

enum sd_err whisper_decode(struct whisper_state *s, int seq, const int32_t *tokens, int n_tokens,
                           int n_past, float *logits, struct sd_error *err)
{
    if (!s || !tokens || !logits)
        return sd_fail(err, SD_EINVAL, "whisper_decode: state, tokens and logits are required");
    const struct whisper_hparams *h = &s->m->hp;
    if (!s->encoded)
        return sd_fail(err, SD_EINVAL, "whisper_decode: call whisper_encode first");
    if (seq < 0 || seq >= s->n_seq)
        return sd_fail(err, SD_EINVAL, "whisper_decode: sequence %d out of range (state holds "
                       "%d)", seq, s->n_seq);
    if (n_tokens < 1 || n_past < 0 || n_past + n_tokens > h->n_text_ctx)
        return sd_fail(err, SD_EINVAL, "whisper_decode: %d tokens after %d exceed the text "
                       "context of %d", n_tokens, n_past, h->n_text_ctx);
    enum sd_err rc = check_tokens(s, tokens, n_tokens, err);
    if (rc)
        return rc;
    struct whisper_dec_group g = {s, seq, 0, n_tokens, n_past};
    struct dec_pass P = {s->m, s->be, &s->dec, &g, 1, s->logits};
    decode_rows(&P, tokens, n_tokens);
    sd_copy_out(s->be, logits, s->logits, sizeof(float) * (size_t)h->n_vocab);
    return SD_OK;
}

enum sd_err whisper_step_check(const struct whisper_step *step, struct sd_error *err)
{
    const struct whisper_state *s = step->st;
    if (!s || !step->seqs || !step->tokens || !step->n_past)
        return sd_fail(err, SD_EINVAL, "whisper_decode_batch: missing argument");
    const struct whisper_hparams *h = &s->m->hp;
    if (!s->encoded)
        return sd_fail(err, SD_EINVAL, "whisper_decode_batch: call whisper_encode first");
    if (step->n < 1 || step->n > s->n_seq)
        return sd_fail(err, SD_EINVAL, "whisper_decode_batch: %d sequences, state holds %d",
                       step->n, s->n_seq);
    for (int i = 0; i < step->n; i++) {
        if (step->seqs[i] < 0 || step->seqs[i] >= s->n_seq)
            return sd_fail(err, SD_EINVAL, "whisper_decode_batch: sequence %d out of range",
                           step->seqs[i]);
        for (int j = 0; j < i; j++)
            if (step->seqs[j] == step->seqs[i])
                return sd_fail(err, SD_EINVAL, "whisper_decode_batch: sequence %d appears "
                               "twice", step->seqs[i]);
        if (step->n_past[i] < 0 || step->n_past[i] + 1 > h->n_text_ctx)
            return sd_fail(err, SD_EINVAL, "whisper_decode_batch: position %d exceeds the text "
                           "context of %d", step->n_past[i], h->n_text_ctx);
    }
    return check_tokens(s, step->tokens, step->n, err);
}

void whisper_decode_steps(const struct whisper_model *m, struct sd_backend *be,
                          struct whisper_dec_buffers *buf, const struct whisper_step *steps,
                          int n_steps, int32_t *tokens, struct whisper_dec_group *groups,
                          struct sd_mem logits)
{
    int n = 0;
    for (int i = 0; i < n_steps; i++)
        for (int j = 0; j < steps[i].n; j++, n++) {
            tokens[n] = steps[i].tokens[j];
            groups[n] = (struct whisper_dec_group){steps[i].st, steps[i].seqs[j], n, 1,
                                                   steps[i].n_past[j]};
        }
    struct dec_pass P = {m, be, buf, groups, n, logits};
    decode_rows(&P, tokens, n);
}

enum sd_err whisper_decode_batch(struct whisper_state *s, int n, const int *seqs,
                                 const int32_t *tokens, const int *n_past, float *logits,
                                 struct sd_error *err)
{
    if (!s || !logits)
        return sd_fail(err, SD_EINVAL, "whisper_decode_batch: missing argument");
    struct whisper_step step = {s, n, seqs, tokens, n_past};
    enum sd_err rc = whisper_step_check(&step, err);
    if (rc)
        return rc;
    struct whisper_dec_group g[64]; /* n <= n_seq <= 64 */
    int32_t toks[64];
    whisper_decode_steps(s->m, s->be, &s->dec, &step, 1, toks, g, s->logits);
    sd_copy_out(s->be, logits, s->logits, sizeof(float) * (size_t)n * s->m->hp.n_vocab);
    return SD_OK;
}

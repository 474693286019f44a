/*
 * decoder.c - Whisper's text decoder: token + positional embedding, per
 * layer causal self-attention over the sequence's KV cache, cross-attention
 * over the K/V computed by whisper_encode, GELU MLP; final layer norm and
 * logits = x . token_embedding^T. whisper_decode runs n tokens of one
 * sequence; whisper_decode_batch one token of each of n sequences with one
 * pass over the weights. No allocation: all scratch lives in the state.
 */
#include <math.h>
#include <string.h>

#include "whisper/state_internal.h"

/* A run of consecutive rows of the batch that belong to one sequence. */
struct dec_group {
    int seq, row0, n_rows, n_past;
};

static void self_attention(struct whisper_state *s, int l, const struct dec_group *g, int n_g)
{
    const struct whisper_hparams *h = &s->m->hp;
    int S = h->n_text_state, d = S / h->n_text_head;
    for (int i = 0; i < n_g; i++) {
        uint16_t *kc = whisper_kv_at(s->kv_k, s, g[i].seq, l);
        uint16_t *vc = whisper_kv_at(s->kv_v, s, g[i].seq, l);
        /* append this step's K/V rows to the f16 cache (one "head" of S values per row) */
        sd_op_to_f16_heads(s->be, s->dk + (size_t)g[i].row0 * S, g[i].n_rows, 1, S,
                           kc + (size_t)g[i].n_past * S);
        sd_op_to_f16_heads(s->be, s->dv + (size_t)g[i].row0 * S, g[i].n_rows, 1, S,
                           vc + (size_t)g[i].n_past * S);
        struct sd_attention att = {.n_q = g[i].n_rows, .n_kv = g[i].n_past + g[i].n_rows,
                                   .n_head = h->n_text_head, .d_head = d,
                                   .q = s->dq + (size_t)g[i].row0 * S, .k = kc, .v = vc,
                                   .ldq = S, .ldk = S, .ldv = S,
                                   .out = s->da + (size_t)g[i].row0 * S, .ldo = S,
                                   .scale = 1.0f / sqrtf((float)d), .causal = 1,
                                   .n_past = g[i].n_past, .kv_type = SD_TYPE_F16};
        sd_op_attention(s->be, &att);
    }
}

static void decoder_block(struct whisper_state *s, int l, int n, const struct dec_group *g,
                          int n_g)
{
    const struct whisper_hparams *h = &s->m->hp;
    const struct whisper_dec_layer *L = &s->m->dec[l];
    struct sd_backend *be = s->be;
    int S = h->n_text_state, d = S / h->n_text_head;

    const struct whisper_attn_weights *A = &L->attn;
    struct sd_weight wq = sd_weight_of(A->q_w), wk = sd_weight_of(A->k_w);
    struct sd_weight wv = sd_weight_of(A->v_w), wo = sd_weight_of(A->o_w);
    sd_op_layer_norm(be, s->dx, n, S, A->ln_w->data, A->ln_b->data, WHISPER_LN_EPS, s->dh);
    struct sd_matmul_out qkv[3] = {{&wq, A->q_b->data, s->dq, S, 0}, {&wk, NULL, s->dk, S, 0},
                                   {&wv, A->v_b->data, s->dv, S, 0}};
    sd_op_matmul_multi(be, s->dh, n, S, 3, qkv);
    self_attention(s, l, g, n_g);
    sd_op_matmul(be, s->da, n, S, &wo, A->o_b->data, s->dx, S, 1);

    const struct whisper_attn_weights *X = &L->cross;
    struct sd_weight xq = sd_weight_of(X->q_w), xo = sd_weight_of(X->o_w);
    size_t TS = (size_t)h->n_audio_ctx * (size_t)S;
    sd_op_layer_norm(be, s->dx, n, S, X->ln_w->data, X->ln_b->data, WHISPER_LN_EPS, s->dh);
    sd_op_matmul(be, s->dh, n, S, &xq, X->q_b->data, s->dq, S, 0);
    if (s->capture)
        whisper_capture_cross_qk(s, l, n); /* word alignment (align.c) */
    int64_t hs = (int64_t)h->n_audio_ctx * d; /* head-major f16 cache, see state_internal.h */
    struct sd_attention att = {.n_q = n, .n_kv = h->n_audio_ctx, .n_head = h->n_text_head,
                               .d_head = d, .q = s->dq, .k = s->cross_k + (size_t)l * TS,
                               .v = s->cross_v + (size_t)l * TS, .ldq = S, .ldk = d,
                               .ldv = h->n_audio_ctx, .out = s->da, .ldo = S,
                               .scale = 1.0f / sqrtf((float)d), .kv_type = SD_TYPE_F16,
                               .k_head_stride = hs, .v_head_stride = hs, .v_transposed = 1};
    sd_op_attention(be, &att);
    sd_op_matmul(be, s->da, n, S, &xo, X->o_b->data, s->dx, S, 1);

    const struct whisper_mlp_weights *M = &L->mlp;
    struct sd_weight w1 = sd_weight_of(M->fc1_w), w2 = sd_weight_of(M->fc2_w);
    sd_op_layer_norm(be, s->dx, n, S, M->ln_w->data, M->ln_b->data, WHISPER_LN_EPS, s->dh);
    sd_op_matmul(be, s->dh, n, S, &w1, M->fc1_b->data, s->dmlp, 4 * S, 0);
    sd_op_gelu(be, s->dmlp, (size_t)n * 4 * (size_t)S);
    sd_op_matmul(be, s->dmlp, n, 4 * S, &w2, M->fc2_b->data, s->dx, S, 1);
}

/*
 * Runs n rows (tokens[i] at the positions given by the groups) through the
 * decoder and writes the logits of the last row of every group to
 * logits[group][n_vocab]. Arguments are validated by the callers.
 */
static void decode_rows(struct whisper_state *s, const int32_t *tokens, int n,
                        const struct dec_group *g, int n_g, float *logits)
{
    const struct whisper_model *m = s->m;
    const struct whisper_hparams *h = &m->hp;
    int S = h->n_text_state;
    struct sd_weight emb = sd_weight_of(m->tok_emb);
    sd_op_get_rows(s->be, &emb, tokens, n, s->dx);
    const float *pos = m->dec_pos->data;
    for (int i = 0; i < n_g; i++)
        sd_op_add(s->be, s->dx + (size_t)g[i].row0 * S, pos + (size_t)g[i].n_past * S,
                  (size_t)g[i].n_rows * S);
    for (int l = 0; l < h->n_text_layer; l++)
        decoder_block(s, l, n, g, n_g);
    /* final layer norm on the rows whose logits are wanted, gathered into dh */
    for (int i = 0; i < n_g; i++) {
        int r = g[i].row0 + g[i].n_rows - 1;
        sd_op_layer_norm(s->be, s->dx + (size_t)r * S, 1, S, m->dec_ln_w->data,
                         m->dec_ln_b->data, WHISPER_LN_EPS, s->dh + (size_t)i * S);
    }
    sd_op_matmul(s->be, s->dh, n_g, S, &emb, NULL, logits, h->n_vocab, 0);
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
    struct dec_group g = {seq, 0, n_tokens, n_past};
    decode_rows(s, tokens, n_tokens, &g, 1, logits);
    return SD_OK;
}

enum sd_err whisper_decode_batch(struct whisper_state *s, int n, const int *seqs,
                                 const int32_t *tokens, const int *n_past, float *logits,
                                 struct sd_error *err)
{
    if (!s || !seqs || !tokens || !n_past || !logits)
        return sd_fail(err, SD_EINVAL, "whisper_decode_batch: missing argument");
    const struct whisper_hparams *h = &s->m->hp;
    if (!s->encoded)
        return sd_fail(err, SD_EINVAL, "whisper_decode_batch: call whisper_encode first");
    if (n < 1 || n > s->n_seq)
        return sd_fail(err, SD_EINVAL, "whisper_decode_batch: %d sequences, state holds %d", n,
                       s->n_seq);
    struct dec_group g[64];
    for (int i = 0; i < n; i++) {
        if (seqs[i] < 0 || seqs[i] >= s->n_seq)
            return sd_fail(err, SD_EINVAL, "whisper_decode_batch: sequence %d out of range",
                           seqs[i]);
        for (int j = 0; j < i; j++)
            if (seqs[j] == seqs[i])
                return sd_fail(err, SD_EINVAL, "whisper_decode_batch: sequence %d appears "
                               "twice", seqs[i]);
        if (n_past[i] < 0 || n_past[i] + 1 > h->n_text_ctx)
            return sd_fail(err, SD_EINVAL, "whisper_decode_batch: position %d exceeds the text "
                           "context of %d", n_past[i], h->n_text_ctx);
        g[i] = (struct dec_group){seqs[i], i, 1, n_past[i]};
    }
    enum sd_err rc = check_tokens(s, tokens, n, err);
    if (rc)
        return rc;
    decode_rows(s, tokens, n, g, n, logits);
    return SD_OK;
}

/*
 * encoder.c - Whisper's audio encoder on one 30 s window: conv1 (k3, pad 1)
 * + GELU, conv2 (k3, stride 2, pad 1) + GELU, + sinusoidal positions, then
 * pre-norm transformer blocks (exact softmax over all n_audio_ctx keys, no
 * padding slots), ln_post; finally the cross-attention K/V of every decoder
 * layer, computed once per window and stored as head-major f16 (K as [head][t][d],
 * V dims-major as [head][d][t]). All arithmetic goes through backend/ops.h;
 * the mel is copied in, and everything else stays in backend memory.
 */
#include <math.h>

#include "whisper/state_internal.h"

static void encoder_block(struct whisper_state *s, const struct whisper_enc_layer *L)
{
    const struct whisper_hparams *h = &s->m->hp;
    struct sd_backend *be = s->be;
    int T = h->n_audio_ctx, S = h->n_audio_state;
    size_t TS = (size_t)T * (size_t)S;
    struct sd_mem x = s->enc_x, hb = s->enc_h;
    struct sd_mem q = s->enc_big, k = sd_mem_f32(q, TS), v = sd_mem_f32(k, TS);
    struct sd_mem a = sd_mem_f32(v, TS);
    const struct whisper_attn_weights *A = &L->attn;
    struct sd_weight wq = sd_weight_of(A->q_w), wk = sd_weight_of(A->k_w);
    struct sd_weight wv = sd_weight_of(A->v_w), wo = sd_weight_of(A->o_w);

    sd_op_layer_norm(be, x, T, S, A->ln_w->mem, A->ln_b->mem, WHISPER_LN_EPS, hb);
    struct sd_matmul_out qkv[3] = {{&wq, A->q_b->mem, q, S, 0}, {&wk, SD_MEM_NONE, k, S, 0},
                                   {&wv, A->v_b->mem, v, S, 0}};
    sd_op_matmul_multi(be, hb, T, S, 3, qkv);
    int d = S / h->n_audio_head;
    struct sd_attention att = {.n_q = T, .n_kv = T, .n_head = h->n_audio_head, .d_head = d,
                               .q = q, .k = k, .v = v, .ldq = S, .ldk = S, .ldv = S, .out = a,
                               .ldo = S, .scale = 1.0f / sqrtf((float)d)};
    sd_op_attention(be, &att);
    sd_op_matmul(be, a, T, S, &wo, A->o_b->mem, x, S, 1);

    const struct whisper_mlp_weights *M = &L->mlp;
    struct sd_weight w1 = sd_weight_of(M->fc1_w), w2 = sd_weight_of(M->fc2_w);
    struct sd_mem mid = s->enc_big;
    sd_op_layer_norm(be, x, T, S, M->ln_w->mem, M->ln_b->mem, WHISPER_LN_EPS, hb);
    sd_op_matmul(be, hb, T, S, &w1, M->fc1_b->mem, mid, 4 * S, 0);
    sd_op_gelu(be, mid, TS * 4);
    sd_op_matmul(be, mid, T, 4 * S, &w2, M->fc2_b->mem, x, S, 1);
}

enum sd_err whisper_encode(struct whisper_state *s, const float *mel, int n_frames,
                           struct sd_error *err)
{
    if (!s || !mel)
        return sd_fail(err, SD_EINVAL, "whisper_encode: state and mel are required");
    const struct whisper_model *m = s->m;
    const struct whisper_hparams *h = &m->hp;
    if (n_frames != 2 * h->n_audio_ctx)
        return sd_fail(err, SD_EINVAL, "whisper_encode: expected %d mel frames, got %d",
                       2 * h->n_audio_ctx, n_frames);
    struct sd_backend *be = s->be;
    int T = h->n_audio_ctx, S = h->n_audio_state;
    size_t TS = (size_t)T * (size_t)S;

    sd_copy_in(be, s->mel, mel, sizeof(float) * (size_t)h->n_mels * (size_t)n_frames);
    struct sd_mem c1 = s->enc_big; /* [2T][S] fits in [T][4S] */
    struct sd_weight w1 = sd_weight_of(m->conv1_w), w2 = sd_weight_of(m->conv2_w);
    sd_op_conv1d_k3(be, s->mel, h->n_mels, n_frames, 1, &w1, m->conv1_b->mem, 1, c1,
                    s->enc_col);
    sd_op_gelu(be, c1, 2 * TS);
    sd_op_conv1d_k3(be, c1, S, n_frames, 0, &w2, m->conv2_b->mem, 2, s->enc_x, s->enc_col);
    sd_op_gelu(be, s->enc_x, TS);
    sd_op_add(be, s->enc_x, m->enc_pos->mem, TS);

    for (int l = 0; l < h->n_audio_layer; l++)
        encoder_block(s, &m->enc[l]);
    sd_op_layer_norm(be, s->enc_x, T, S, m->ln_post_w->mem, m->ln_post_b->mem,
                     WHISPER_LN_EPS, s->enc_out);

    struct sd_mem tk = s->enc_big, tv = sd_mem_f32(tk, TS);
    for (int l = 0; l < h->n_text_layer; l++) {
        const struct whisper_attn_weights *X = &m->dec[l].cross;
        struct sd_weight wk = sd_weight_of(X->k_w), wv = sd_weight_of(X->v_w);
        int nh = h->n_text_head, d = S / nh;
        struct sd_matmul_out kv[2] = {{&wk, SD_MEM_NONE, tk, S, 0}, {&wv, X->v_b->mem, tv, S, 0}};
        sd_op_matmul_multi(be, s->enc_out, T, S, 2, kv);
        sd_op_to_f16_heads(be, tk, T, nh, d, sd_mem_f16(s->cross_k, (size_t)l * TS));
        sd_op_to_f16_heads_transposed(be, tv, T, nh, d, sd_mem_f16(s->cross_v, (size_t)l * TS));
    }
    s->encoded = 1;
    return SD_OK;
}

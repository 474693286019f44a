/*
 * state_internal.h - struct whisper_state, shared by state.c (creation,
 * buffers, KV copy), encoder.c and decoder.c. Private to src/whisper/.
 * Every buffer is sized in whisper_state_create so encode/decode never allocate.
 */
#ifndef SD_WHISPER_STATE_INTERNAL_H
#define SD_WHISPER_STATE_INTERNAL_H

#include "backend/ops.h"
#include "whisper/model_internal.h"
#include "whisper/whisper.h"

#define WHISPER_LN_EPS 1e-5f

struct whisper_state {
    const struct whisper_model *m;
    struct sd_backend *be;
    int n_seq;
    int encoded;        /* whisper_encode succeeded since creation */

    /* encoder */
    float *enc_col;     /* im2col scratch: max(3000 * 3 * n_mels, n_audio_ctx * 3 * S) */
    float *enc_x;       /* residual stream [n_audio_ctx][S] */
    float *enc_h;       /* layer-norm output [n_audio_ctx][S] */
    float *enc_big;     /* [n_audio_ctx][4S]: conv1 output, then q|k|v|attn, then MLP hidden */
    float *enc_out;     /* after ln_post [n_audio_ctx][S] */

    /*
     * cross-attention K/V per decoder layer, f16 and head-major: K as
     * [n_text_layer][n_head][n_audio_ctx][d_head], V dims-major as
     * [n_text_layer][n_head][d_head][n_audio_ctx]. Half the bytes of f32 and
     * each head contiguous: the decoder streams these every token, both
     * products as matrix-vector passes over rows (sd_attention.v_transposed).
     */
    uint16_t *cross_k, *cross_v;

    /* self-attention caches, f16 (as whisper.cpp's): [n_seq][n_text_layer][n_text_ctx][S] */
    uint16_t *kv_k, *kv_v;

    /* set only during whisper_decode_cross_attention (align.c): copy out cross-attention logits */
    struct whisper_xattn_capture *capture;

    /* decoder scratch, dec_rows = max(n_text_ctx, n_seq) rows */
    int dec_rows;
    float *dx, *dh, *dq, *dk, *dv, *da; /* [dec_rows][S] */
    float *dmlp;                        /* [dec_rows][4S] */
};

/* What whisper_decode_cross_attention asks the decoder to copy out. */
struct whisper_xattn_capture {
    const int *layer_head;  /* n_heads (layer, head) pairs */
    int n_heads;
    int n_frames;           /* audio frames kept (<= n_audio_ctx) */
    float *out;             /* [n_heads][n_rows][n_frames]: q.k / sqrt(d_head), before softmax */
};

/* align.c: called by the decoder after layer l's cross-attention queries are in s->dq. */
void whisper_capture_cross_qk(struct whisper_state *s, int layer, int n_rows);

/* Start of the cache rows of (seq, layer): [n_text_ctx][S]. */
static inline uint16_t *whisper_kv_at(uint16_t *base, const struct whisper_state *s, int seq,
                                      int layer)
{
    const struct whisper_hparams *h = &s->m->hp;
    return base + ((size_t)seq * (size_t)h->n_text_layer + (size_t)layer) *
                      (size_t)h->n_text_ctx * (size_t)h->n_text_state;
}

#endif

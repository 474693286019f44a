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

/*
 * Decoder activations for up to `rows` rows decoded together, in backend
 * memory (the engine reaches them through ops and copies only).
 */
struct whisper_dec_buffers {
    int rows;
    struct sd_mem x, h, q, k, v, a; /* [rows][n_text_state] */
    struct sd_mem mlp;              /* [rows][4 n_text_state] */
};

/*
 * A backend of n_threads on the model's device, with attention scratch
 * reserved for the model's shapes.
 */
enum sd_err whisper_backend_create(const struct whisper_model *m, int n_threads,
                                   struct sd_backend **out, struct sd_error *err);

/* Allocates on be (zeroed on failure, so _free is always safe). */
enum sd_err whisper_dec_buffers_alloc(struct sd_backend *be, const struct whisper_hparams *h,
                                      int rows, struct whisper_dec_buffers *out,
                                      struct sd_error *err);
void whisper_dec_buffers_free(struct sd_backend *be, struct whisper_dec_buffers *b);

struct whisper_state {
    const struct whisper_model *m;
    struct sd_backend *be;
    int n_seq;
    int encoded;        /* whisper_encode succeeded since creation */

    /* encoder; every buffer below is backend memory */
    struct sd_mem mel;     /* the window's log-mel, copied in: [n_mels][2 n_audio_ctx] */
    struct sd_mem enc_col; /* im2col scratch: max(3000 * 3 * n_mels, n_audio_ctx * 3 * S) */
    struct sd_mem enc_x;   /* residual stream [n_audio_ctx][S] */
    struct sd_mem enc_h;   /* layer-norm output [n_audio_ctx][S] */
    struct sd_mem enc_big; /* [n_audio_ctx][4S]: conv1 output, q|k|v|attn, then MLP hidden */
    struct sd_mem enc_out; /* after ln_post [n_audio_ctx][S] */

    /*
     * cross-attention K/V per decoder layer, f16 and head-major: K as
     * [n_text_layer][n_head][n_audio_ctx][d_head], V dims-major as
     * [n_text_layer][n_head][d_head][n_audio_ctx]. Half the bytes of f32 and
     * each head contiguous: the decoder streams these every token, both
     * products as matrix-vector passes over rows (sd_attention.v_transposed).
     */
    struct sd_mem cross_k, cross_v;

    /* self-attention caches, f16 (as whisper.cpp's): [n_seq][n_text_layer][n_text_ctx][S] */
    struct sd_mem kv_k, kv_v;
    /* the last decoding pass's logits [n_seq][n_vocab], copied out to the caller */
    struct sd_mem logits;

    /* set only during whisper_decode_cross_attention (align.c): copy out cross-attention logits */
    struct whisper_xattn_capture *capture;

    /* decoder activations for max(n_text_ctx, n_seq) rows (a whole prompt) */
    struct whisper_dec_buffers dec;
};

/* What whisper_decode_cross_attention asks the decoder to copy out. */
struct whisper_xattn_capture {
    const int *layer_head;  /* n_heads (layer, head) pairs */
    int n_heads;
    int n_frames;           /* audio frames kept (<= n_audio_ctx) */
    float *out;             /* [n_heads][n_rows][n_frames]: q.k / sqrt(d_head), before softmax */
    struct sd_mem scratch;  /* backend memory for one head's [n_rows][n_frames], copied out */
};

/* One state's share of a decoding step: token tokens[i] of sequence seqs[i] at n_past[i]. */
struct whisper_step {
    struct whisper_state *st;
    int n;
    const int *seqs;
    const int32_t *tokens;
    const int *n_past;
};

/* The checks whisper_decode_batch makes, for a step about to join a batch. */
enum sd_err whisper_step_check(const struct whisper_step *step, struct sd_error *err);

/*
 * decoder.c: runs checked steps of several states (all of model m) as one
 * pass over the weights, on backend be with activations buf (rows >= the
 * steps' total); logits[row][n_vocab] in step order (backend memory, rows
 * >= the steps' total: copy out). tokens/groups: host scratch of buf->rows
 * entries each.
 */
/*
 * A run of consecutive rows of a decoding pass that belong to one sequence
 * of one state. The rows of one state are consecutive groups (their
 * cross-attention runs over that state's encoder output).
 */
struct whisper_dec_group {
    struct whisper_state *st;
    int seq, row0, n_rows, n_past;
};
void whisper_decode_steps(const struct whisper_model *m, struct sd_backend *be,
                          struct whisper_dec_buffers *buf, const struct whisper_step *steps,
                          int n_steps, int32_t *tokens, struct whisper_dec_group *groups,
                          struct sd_mem logits);

/* align.c: called by the decoder after layer l's cross-attention queries are in s->dec.q. */
void whisper_capture_cross_qk(struct whisper_state *s, int layer, int n_rows);

/* Start of the cache rows of (seq, layer): [n_text_ctx][S] halves (a view of base). */
static inline struct sd_mem whisper_kv_at(struct sd_mem base, const struct whisper_state *s,
                                          int seq, int layer)
{
    const struct whisper_hparams *h = &s->m->hp;
    return sd_mem_f16(base, ((size_t)seq * (size_t)h->n_text_layer + (size_t)layer) *
                                (size_t)h->n_text_ctx * (size_t)h->n_text_state);
}

#endif

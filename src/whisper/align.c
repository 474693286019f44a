/*
 * align.c - the decoder's cross-attention, copied out for word-level
 * timestamps (whisper.h: whisper_decode_cross_attention). The decoder calls
 * whisper_capture_cross_qk after each layer's cross-attention queries; here
 * the logits of the requested heads are recomputed from the f16 cross K with
 * sd_op_attention_logits (the backend's GEMM; a device backend does it there)
 * into backend scratch, then copied out head by head.
 */
#include <math.h>
#include <stdlib.h>

#include "whisper/state_internal.h"

void whisper_capture_cross_qk(struct whisper_state *s, int layer, int n_rows)
{
    const struct whisper_xattn_capture *c = s->capture;
    const struct whisper_hparams *h = &s->m->hp;
    const int S = h->n_text_state, d = S / h->n_text_head, T = h->n_audio_ctx;
    /* head-major cache: [layer][head][n_audio_ctx][d] (state_internal.h) */
    struct sd_attention a = {.n_q = n_rows, .n_kv = c->n_frames, .n_head = h->n_text_head,
                             .d_head = d, .q = s->dec.q, .ldq = S,
                             .k = sd_mem_f16(s->cross_k, (size_t)layer * h->n_text_head * T * d),
                             .ldk = d,
                             .scale = 1.0f / sqrtf((float)d), .kv_type = SD_TYPE_F16,
                             .k_head_stride = (int64_t)T * d};
    for (int i = 0; i < c->n_heads; i++) {
        if (c->layer_head[2 * i] != layer)
            continue;
        float *out = c->out + (size_t)i * n_rows * c->n_frames;
        sd_op_attention_logits(s->be, &a, c->layer_head[2 * i + 1], c->scratch, c->n_frames);
        sd_copy_out(s->be, out, c->scratch, sizeof(float) * (size_t)n_rows * c->n_frames);
    }
}

enum sd_err whisper_decode_cross_attention(struct whisper_state *s, int seq,
                                           const int32_t *tokens, int n_tokens,
                                           const int *layer_head, int n_heads, int n_frames,
                                           float *qk, struct sd_error *err)
{
    if (!s || !layer_head || !qk || n_heads < 1)
        return sd_fail(err, SD_EINVAL, "whisper_decode_cross_attention: missing argument");
    const struct whisper_hparams *h = &s->m->hp;
    if (n_frames < 1 || n_frames > h->n_audio_ctx)
        return sd_fail(err, SD_EINVAL, "whisper_decode_cross_attention: %d frames out of range",
                       n_frames);
    for (int a = 0; a < n_heads; a++)
        if (layer_head[2 * a] < 0 || layer_head[2 * a] >= h->n_text_layer ||
            layer_head[2 * a + 1] < 0 || layer_head[2 * a + 1] >= h->n_text_head)
            return sd_fail(err, SD_EINVAL, "alignment head (%d, %d) is not in the model",
                           layer_head[2 * a], layer_head[2 * a + 1]);
    if (n_tokens < 1 || n_tokens > h->n_text_ctx)
        return sd_fail(err, SD_EINVAL, "whisper_decode_cross_attention: %d tokens out of range",
                       n_tokens);
    float *logits = malloc((size_t)h->n_vocab * sizeof(float));
    struct sd_mem scratch = sd_backend_alloc(s->be, sizeof(float) * (size_t)n_tokens * n_frames);
    if (!logits || sd_mem_is_none(scratch)) {
        free(logits);
        sd_backend_free(s->be, scratch);
        return sd_fail(err, SD_ENOMEM, "alignment logits");
    }
    struct whisper_xattn_capture c = {layer_head, n_heads, n_frames, qk, scratch};
    s->capture = &c;
    enum sd_err rc = whisper_decode(s, seq, tokens, n_tokens, 0, logits, err);
    s->capture = NULL;
    free(logits);
    sd_backend_free(s->be, scratch);
    return rc;
}

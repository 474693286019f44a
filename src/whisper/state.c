/*
 * state.c - whisper_state lifetime: creates the compute backend (thread
 * pool) and allocates every buffer the encoder and decoder need, once, so the
 * decode loop never allocates (all of it backend memory); KV-cache copies for
 * beam search (device to device). The forward passes are in encoder.c and
 * decoder.c.
 */
#include <stdlib.h>

#include "whisper/state_internal.h"

static struct sd_mem alloc_floats(struct whisper_state *s, size_t n)
{
    return sd_backend_alloc(s->be, n * sizeof(float));
}

static struct sd_mem alloc_halves(struct whisper_state *s, size_t n)
{
    return sd_backend_alloc(s->be, n * sizeof(uint16_t));
}

enum sd_err whisper_backend_create(const struct whisper_model *m, int n_threads,
                                   struct sd_backend **out, struct sd_error *err)
{
    const struct whisper_hparams *h = &m->hp;
    enum sd_err rc = sd_backend_open(m->dev, n_threads, 0, out, err);
    if (rc)
        return rc;
    rc = sd_backend_use_kernels(*out, m->kernels, err); /* whisper_model_calibrate's choice */
    if (rc) {
        sd_backend_destroy(*out);
        *out = NULL;
        return rc;
    }
    /* attention over the audio frames (cross) or the text positions (self) */
    int kv_max = h->n_audio_ctx > h->n_text_ctx ? h->n_audio_ctx : h->n_text_ctx;
    rc = sd_backend_reserve_attention(*out, kv_max, h->n_audio_state, err);
    if (rc) {
        sd_backend_destroy(*out);
        *out = NULL;
    }
    return rc;
}

enum sd_err whisper_dec_buffers_alloc(struct sd_backend *be, const struct whisper_hparams *h,
                                      int rows, struct whisper_dec_buffers *out,
                                      struct sd_error *err)
{
    size_t R = (size_t)rows, S = (size_t)h->n_text_state;
    *out = (struct whisper_dec_buffers){.rows = rows};
    struct sd_mem *plain[] = {&out->x, &out->h, &out->q, &out->k, &out->v, &out->a};
    int ok = 1;
    for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++) {
        *plain[i] = sd_backend_alloc(be, R * S * sizeof(float));
        ok = ok && !sd_mem_is_none(*plain[i]);
    }
    out->mlp = sd_backend_alloc(be, R * 4 * S * sizeof(float));
    if (!ok || sd_mem_is_none(out->mlp)) {
        whisper_dec_buffers_free(be, out);
        return sd_fail(err, SD_ENOMEM, "out of memory allocating decoder buffers (%d rows)",
                       rows);
    }
    return SD_OK;
}

void whisper_dec_buffers_free(struct sd_backend *be, struct whisper_dec_buffers *b)
{
    struct sd_mem bufs[] = {b->x, b->h, b->q, b->k, b->v, b->a, b->mlp};
    for (size_t i = 0; i < sizeof(bufs) / sizeof(bufs[0]); i++)
        sd_backend_free(be, bufs[i]);
    *b = (struct whisper_dec_buffers){0};
}

enum sd_err whisper_state_create(const struct whisper_model *m, int n_threads, int n_seq,
                                 struct whisper_state **out, struct sd_error *err)
{
    if (!m || !out)
        return sd_fail(err, SD_EINVAL, "whisper_state_create: model and out are required");
    if (n_seq < 1 || n_seq > 64)
        return sd_fail(err, SD_EINVAL, "n_seq must be 1..64, got %d", n_seq);
    struct whisper_state *s = calloc(1, sizeof(*s));
    if (!s)
        return sd_fail(err, SD_ENOMEM, "out of memory creating a whisper state");
    const struct whisper_hparams *h = &m->hp;
    enum sd_err rc = whisper_backend_create(m, n_threads, &s->be, err);
    if (rc) {
        free(s);
        return rc;
    }
    size_t S = (size_t)h->n_audio_state, T = (size_t)h->n_audio_ctx;
    size_t L = (size_t)h->n_text_layer, C = (size_t)h->n_text_ctx;
    s->m = m;
    s->n_seq = n_seq;
    size_t col1 = 2 * T * 3 * (size_t)h->n_mels, col2 = T * 3 * S;
    s->mel = alloc_floats(s, 2 * T * (size_t)h->n_mels);
    s->enc_col = alloc_floats(s, col1 > col2 ? col1 : col2);
    s->enc_x = alloc_floats(s, T * S);
    s->enc_h = alloc_floats(s, T * S);
    s->enc_big = alloc_floats(s, T * 4 * S);
    s->enc_out = alloc_floats(s, T * S);
    s->cross_k = alloc_halves(s, L * T * S);
    s->cross_v = alloc_halves(s, L * T * S);
    s->kv_k = alloc_halves(s, (size_t)n_seq * L * C * S);
    s->kv_v = alloc_halves(s, (size_t)n_seq * L * C * S);
    s->logits = alloc_floats(s, (size_t)n_seq * (size_t)h->n_vocab);
    struct sd_mem all[] = {s->mel, s->enc_col, s->enc_x, s->enc_h, s->enc_big, s->enc_out,
                           s->cross_k, s->cross_v, s->kv_k, s->kv_v, s->logits};
    int ok = 1;
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        ok = ok && !sd_mem_is_none(all[i]);
    if (!ok) {
        whisper_state_destroy(s);
        return sd_fail(err, SD_ENOMEM, "out of memory allocating whisper state buffers "
                       "(%d sequences)", n_seq);
    }
    rc = whisper_dec_buffers_alloc(s->be, h, h->n_text_ctx > n_seq ? h->n_text_ctx : n_seq,
                                   &s->dec, err);
    if (rc) {
        whisper_state_destroy(s);
        return rc;
    }
    *out = s;
    return SD_OK;
}

void whisper_state_destroy(struct whisper_state *s)
{
    if (!s)
        return;
    struct sd_mem bufs[] = {s->mel, s->enc_col, s->enc_x, s->enc_h, s->enc_big, s->enc_out,
                            s->cross_k, s->cross_v, s->kv_k, s->kv_v, s->logits};
    for (size_t i = 0; i < sizeof(bufs) / sizeof(bufs[0]) && s->be; i++)
        sd_backend_free(s->be, bufs[i]);
    if (s->be)
        whisper_dec_buffers_free(s->be, &s->dec);
    sd_backend_destroy(s->be);
    free(s);
}

enum sd_err whisper_state_set_seqs(struct whisper_state *s, int n_seq, struct sd_error *err)
{
    if (n_seq < 1 || n_seq > 64)
        return sd_fail(err, SD_EINVAL, "n_seq must be 1..64, got %d", n_seq);
    if (n_seq == s->n_seq)
        return SD_OK;
    const struct whisper_hparams *h = &s->m->hp;
    size_t n = (size_t)n_seq * (size_t)h->n_text_layer * (size_t)h->n_text_ctx *
               (size_t)h->n_text_state;
    struct sd_mem k = alloc_halves(s, n), v = alloc_halves(s, n);
    struct sd_mem logits = alloc_floats(s, (size_t)n_seq * (size_t)h->n_vocab);
    struct whisper_dec_buffers dec = {0};
    enum sd_err rc = SD_OK;
    if (sd_mem_is_none(k) || sd_mem_is_none(v) || sd_mem_is_none(logits))
        rc = sd_fail(err, SD_ENOMEM, "out of memory for the KV caches of %d sequences", n_seq);
    else if (n_seq > s->dec.rows)
        rc = whisper_dec_buffers_alloc(s->be, h, n_seq, &dec, err);
    if (rc) {
        sd_backend_free(s->be, k);
        sd_backend_free(s->be, v);
        sd_backend_free(s->be, logits);
        return rc;
    }
    sd_backend_free(s->be, s->kv_k);
    sd_backend_free(s->be, s->kv_v);
    sd_backend_free(s->be, s->logits);
    s->kv_k = k;
    s->kv_v = v;
    s->logits = logits;
    s->n_seq = n_seq;
    if (dec.rows) {
        whisper_dec_buffers_free(s->be, &s->dec);
        s->dec = dec;
    }
    return SD_OK;
}

int whisper_state_seqs(const struct whisper_state *s)
{
    return s->n_seq;
}

const struct whisper_model *whisper_state_model(const struct whisper_state *s)
{
    return s->m;
}

struct sd_backend *whisper_state_backend(struct whisper_state *s)
{
    return s->be;
}

void whisper_encoder_output(struct whisper_state *s, float *out)
{
    const struct whisper_hparams *h = &s->m->hp;
    sd_copy_out(s->be, out, s->enc_out,
                sizeof(float) * (size_t)h->n_audio_ctx * (size_t)h->n_audio_state);
}

void whisper_kv_copy(struct whisper_state *s, int src_seq, int dst_seq, int n_pos)
{
    const struct whisper_hparams *h = &s->m->hp;
    if (src_seq == dst_seq || src_seq < 0 || dst_seq < 0 || src_seq >= s->n_seq ||
        dst_seq >= s->n_seq || n_pos <= 0)
        return;
    if (n_pos > h->n_text_ctx)
        n_pos = h->n_text_ctx;
    size_t n = (size_t)n_pos * (size_t)h->n_text_state * sizeof(uint16_t);
    for (int l = 0; l < h->n_text_layer; l++) { /* device to device: the caches stay there */
        sd_copy(s->be, whisper_kv_at(s->kv_k, s, dst_seq, l),
                whisper_kv_at(s->kv_k, s, src_seq, l), n);
        sd_copy(s->be, whisper_kv_at(s->kv_v, s, dst_seq, l),
                whisper_kv_at(s->kv_v, s, src_seq, l), n);
    }
}

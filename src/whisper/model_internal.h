/*
 * model_internal.h - the loaded model's layout as the forward passes use it
 * (resolved tensor pointers per layer). Private to src/whisper/: other areas
 * use the accessors of model.h.
 */
#ifndef SD_WHISPER_MODEL_INTERNAL_H
#define SD_WHISPER_MODEL_INTERNAL_H

#include "backend/ops.h"
#include "whisper/model.h"

/* One attention block: q/k/v/out projections and the layer norm before it. */
struct whisper_attn_weights {
    const struct sd_tensor *ln_w, *ln_b;
    const struct sd_tensor *q_w, *q_b, *k_w, *v_w, *v_b, *o_w, *o_b;
};

struct whisper_mlp_weights {
    const struct sd_tensor *ln_w, *ln_b, *fc1_w, *fc1_b, *fc2_w, *fc2_b;
};

struct whisper_enc_layer {
    struct whisper_attn_weights attn;
    struct whisper_mlp_weights mlp;
};

struct whisper_dec_layer {
    struct whisper_attn_weights attn;
    struct whisper_attn_weights cross;
    struct whisper_mlp_weights mlp;
};

struct whisper_model {
    char *path;
    void *map;
    size_t map_size;
    struct whisper_hparams hp;
    struct whisper_special_tokens sp;
    struct whisper_vocab vocab;
    const uint8_t **tok_bytes;
    uint32_t *tok_len;
    float *filters;            /* [n_mels][n_fft_bins], owned copy */
    int n_filter_mels, n_fft_bins;
    enum sd_type wtype;        /* type of the big matrices */
    const struct sd_backend_ops *dev; /* where the tensors were uploaded (their .mem) */

    struct sd_tensor *tensors; /* n_tensors, in expected order */
    int n_tensors;
    char *names;               /* backing store of tensors[i].name */
    void **owned;              /* aligned copies of misaligned f32 tensors */
    int n_owned;

    const struct sd_tensor *enc_pos, *conv1_w, *conv1_b, *conv2_w, *conv2_b;
    const struct sd_tensor *ln_post_w, *ln_post_b;
    struct whisper_enc_layer *enc;
    const struct sd_tensor *dec_pos, *tok_emb, *dec_ln_w, *dec_ln_b;
    struct whisper_dec_layer *dec;
    char desc[64];
    char kernels[SD_KERNEL_CHOICE_MAX]; /* whisper_model_calibrate's choice; "" before */
};

#endif

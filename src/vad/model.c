/*
 * model.c - loading the ggml Silero VAD file (whisper.cpp's format) into an
 * immutable struct vad_model with every weight converted to f32.
 *
 * File layout (little endian): magic "ggml" (0x67676d6c), type string
 * (i32 length + bytes, "silero-16k"), version i32 x3, n_window, n_context,
 * n_encoder_layers, per layer (in, out, kernel), lstm_input, lstm_hidden,
 * final_conv_in, final_conv_out; then tensors until the end of the file:
 * n_dims, name length, type (0 f32, 1 f16), ne[n_dims], name, raw data
 * (no alignment padding). Every read is bounds-checked: a bad file is an
 * SD_EFORMAT error, never a crash. This file does not run the network.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vad/silero.h"
#include "vad/vad.h"

#define GGML_MAGIC 0x67676d6cu
#define MAX_MODEL_BYTES (64u << 20)

struct reader {
    const uint8_t *p;
    size_t n, off;
};

static int rd_i32(struct reader *r, int32_t *v)
{
    if (r->n - r->off < 4)
        return 0;
    const uint8_t *b = r->p + r->off;
    *v = (int32_t)((uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
                   (uint32_t)b[3] << 24);
    r->off += 4;
    return 1;
}

/* One tensor as found in the file, data still raw. */
struct raw_tensor {
    char name[96];
    int type;
    int n_dims;
    int64_t ne[4];
    int64_t n_elems;
    const uint8_t *data;
};

/* What the network needs: name, expected type-independent shape (ne order). */
struct want {
    const char *name;
    int64_t ne[3];
};

enum {
    T_ENC0_W, T_ENC0_B, T_ENC1_W, T_ENC1_B, T_ENC2_W, T_ENC2_B, T_ENC3_W, T_ENC3_B,
    T_W_IH, T_W_HH, T_B_IH, T_B_HH, T_OUT_W, T_OUT_B, T_STFT, T_COUNT
};

static const struct want wanted[T_COUNT] = {
    [T_ENC0_W] = {"_model.encoder.0.reparam_conv.weight", {3, 129, 128}},
    [T_ENC0_B] = {"_model.encoder.0.reparam_conv.bias", {128, 1, 1}},
    [T_ENC1_W] = {"_model.encoder.1.reparam_conv.weight", {3, 128, 64}},
    [T_ENC1_B] = {"_model.encoder.1.reparam_conv.bias", {64, 1, 1}},
    [T_ENC2_W] = {"_model.encoder.2.reparam_conv.weight", {3, 64, 64}},
    [T_ENC2_B] = {"_model.encoder.2.reparam_conv.bias", {64, 1, 1}},
    [T_ENC3_W] = {"_model.encoder.3.reparam_conv.weight", {3, 64, 128}},
    [T_ENC3_B] = {"_model.encoder.3.reparam_conv.bias", {128, 1, 1}},
    [T_W_IH] = {"_model.decoder.rnn.weight_ih", {128, 512, 1}},
    [T_W_HH] = {"_model.decoder.rnn.weight_hh", {128, 512, 1}},
    [T_B_IH] = {"_model.decoder.rnn.bias_ih", {512, 1, 1}},
    [T_B_HH] = {"_model.decoder.rnn.bias_hh", {512, 1, 1}},
    [T_OUT_W] = {"_model.decoder.decoder.2.weight", {128, 1, 1}},
    [T_OUT_B] = {"_model.decoder.decoder.2.bias", {1, 1, 1}},
    [T_STFT] = {"_model.stft.forward_basis_buffer", {256, 1, 258}},
};

/* Channels and strides of the four conv layers (strides are not in the file). */
static const int layer_in[SILERO_N_LAYERS] = {129, 128, 64, 64};
static const int layer_out[SILERO_N_LAYERS] = {128, 64, 64, 128};
static const int layer_stride[SILERO_N_LAYERS] = {1, 2, 2, 1};

/* Element i of a raw tensor as f32 (data may be unaligned). */
static float raw_at(const struct raw_tensor *t, int64_t i)
{
    if (t->type == 1) {
        const uint8_t *b = t->data + 2 * i;
        return silero_f16_to_f32((uint16_t)(b[0] | b[1] << 8));
    }
    float f;
    memcpy(&f, t->data + 4 * i, sizeof f);
    return f;
}

static enum sd_err read_header(struct reader *r, struct vad_model *m, struct sd_error *err)
{
    int32_t magic, len, ver[3], n_window, n_context, n_layers, v;
    if (!rd_i32(r, &magic) || (uint32_t)magic != GGML_MAGIC)
        return sd_fail(err, SD_EFORMAT, "not a ggml model file (bad magic)");
    if (!rd_i32(r, &len) || len < 0 || len > 64 || r->n - r->off < (size_t)len)
        return sd_fail(err, SD_EFORMAT, "ggml VAD file: bad model type string");
    char type[65];
    memcpy(type, r->p + r->off, (size_t)len);
    type[len] = '\0';
    r->off += (size_t)len;
    if (strcmp(type, "silero-16k") != 0)
        return sd_fail(err, SD_EFORMAT, "ggml VAD file: model type '%s' is not silero-16k", type);
    if (!rd_i32(r, &ver[0]) || !rd_i32(r, &ver[1]) || !rd_i32(r, &ver[2]))
        return sd_fail(err, SD_EFORMAT, "ggml VAD file: truncated header");
    if (ver[0] < 5 || ver[0] > 6)
        return sd_fail(err, SD_EFORMAT, "Silero VAD version %d is not supported (5 or 6)",
                       ver[0]);
    snprintf(m->version, sizeof m->version, "%d.%d.%d", ver[0], ver[1] & 0xffff, ver[2] & 0xffff);
    if (!rd_i32(r, &n_window) || !rd_i32(r, &n_context) || !rd_i32(r, &n_layers))
        return sd_fail(err, SD_EFORMAT, "ggml VAD file: truncated header");
    if (n_window != VAD_WINDOW_SAMPLES)
        return sd_fail(err, SD_EFORMAT, "Silero VAD window of %d samples is not supported (512)",
                       n_window);
    if (n_layers != SILERO_N_LAYERS)
        return sd_fail(err, SD_EFORMAT, "Silero VAD with %d encoder layers is not supported",
                       n_layers);
    for (int i = 0; i < n_layers; i++) {
        int32_t in, out, k;
        if (!rd_i32(r, &in) || !rd_i32(r, &out) || !rd_i32(r, &k))
            return sd_fail(err, SD_EFORMAT, "ggml VAD file: truncated header");
        if (in != layer_in[i] || out != layer_out[i] || k != SILERO_KERNEL)
            return sd_fail(err, SD_EFORMAT, "Silero VAD encoder layer %d has shape %dx%dx%d", i,
                           in, out, k);
    }
    static const int32_t tail[4] = {SILERO_HIDDEN, SILERO_HIDDEN, SILERO_HIDDEN, 1};
    for (int i = 0; i < 4; i++)
        if (!rd_i32(r, &v) || v != tail[i])
            return sd_fail(err, SD_EFORMAT, "Silero VAD decoder sizes are not 128/128/128/1");
    return SD_OK;
}

static enum sd_err read_tensor(struct reader *r, struct raw_tensor *t, struct sd_error *err)
{
    int32_t n_dims, name_len, type;
    if (!rd_i32(r, &n_dims) || !rd_i32(r, &name_len) || !rd_i32(r, &type))
        return sd_fail(err, SD_EFORMAT, "ggml VAD file: truncated tensor header");
    if (n_dims < 0 || n_dims > 4 || name_len <= 0 || name_len >= (int32_t)sizeof t->name ||
        (type != 0 && type != 1))
        return sd_fail(err, SD_EFORMAT, "ggml VAD file: bad tensor header at byte %zu", r->off);
    t->n_dims = n_dims;
    t->type = type;
    t->n_elems = 1;
    for (int i = 0; i < 4; i++)
        t->ne[i] = 1;
    for (int i = 0; i < n_dims; i++) {
        int32_t ne;
        if (!rd_i32(r, &ne) || ne <= 0 || ne > (1 << 20))
            return sd_fail(err, SD_EFORMAT, "ggml VAD file: bad tensor dimension");
        t->ne[i] = ne;
        t->n_elems *= ne;
        if (t->n_elems > (int64_t)MAX_MODEL_BYTES)
            return sd_fail(err, SD_EFORMAT, "ggml VAD file: tensor too large");
    }
    if (r->n - r->off < (size_t)name_len)
        return sd_fail(err, SD_EFORMAT, "ggml VAD file: truncated tensor name");
    memcpy(t->name, r->p + r->off, (size_t)name_len);
    t->name[name_len] = '\0';
    r->off += (size_t)name_len;
    size_t n_bytes = (size_t)t->n_elems * (type == 1 ? 2u : 4u);
    if (r->n - r->off < n_bytes)
        return sd_fail(err, SD_EFORMAT, "ggml VAD file: tensor %s is truncated", t->name);
    t->data = r->p + r->off;
    r->off += n_bytes;
    return SD_OK;
}

/* Fills found[] (indexed like wanted[]) from the tensor section. */
static enum sd_err read_tensors(struct reader *r, struct raw_tensor *found, struct sd_error *err)
{
    int have[T_COUNT] = {0};
    while (r->off < r->n) {
        struct raw_tensor t;
        enum sd_err rc = read_tensor(r, &t, err);
        if (rc != SD_OK)
            return rc;
        for (int i = 0; i < T_COUNT; i++) {
            if (strcmp(t.name, wanted[i].name) != 0)
                continue;
            if (have[i])
                return sd_fail(err, SD_EFORMAT, "ggml VAD file: tensor %s appears twice", t.name);
            for (int d = 0; d < 3; d++)
                if (t.ne[d] != wanted[i].ne[d] || t.ne[3] != 1)
                    return sd_fail(err, SD_EFORMAT,
                                   "ggml VAD file: tensor %s has an unexpected shape", t.name);
            found[i] = t;
            have[i] = 1;
        }
    }
    for (int i = 0; i < T_COUNT; i++)
        if (!have[i])
            return sd_fail(err, SD_EFORMAT, "ggml VAD file: tensor %s is missing",
                           wanted[i].name);
    return SD_OK;
}

static size_t arena_floats(void)
{
    size_t n = (size_t)SILERO_STFT_ROWS * SILERO_STFT_LEN;
    for (int i = 0; i < SILERO_N_LAYERS; i++)
        n += (size_t)layer_out[i] * layer_in[i] * SILERO_KERNEL + (size_t)layer_out[i];
    n += 512u * 256u + 512u + 128u;
    return n;
}

static void copy_tensor(float *dst, const struct raw_tensor *t)
{
    for (int64_t i = 0; i < t->n_elems; i++)
        dst[i] = raw_at(t, i);
}

/* Lays the raw tensors out as struct vad_model documents. */
static void fill_model(struct vad_model *m, const struct raw_tensor *t)
{
    float *p = m->arena;
    m->stft = p; /* ne (256, 1, 258): row c is basis c, already contiguous */
    copy_tensor(p, &t[T_STFT]);
    p += SILERO_STFT_ROWS * SILERO_STFT_LEN;
    for (int l = 0; l < SILERO_N_LAYERS; l++) {
        m->enc_in[l] = layer_in[l];
        m->enc_out[l] = layer_out[l];
        m->enc_stride[l] = layer_stride[l];
        m->enc_w[l] = p; /* ne (3, in, out): [out][in][tap] */
        copy_tensor(p, &t[T_ENC0_W + 2 * l]);
        p += layer_out[l] * layer_in[l] * SILERO_KERNEL;
        m->enc_b[l] = p;
        copy_tensor(p, &t[T_ENC0_B + 2 * l]);
        p += layer_out[l];
    }
    m->lstm_w = p; /* row r: W_ih[r][0..127] then W_hh[r][0..127] */
    for (int r = 0; r < 512; r++)
        for (int k = 0; k < SILERO_HIDDEN; k++) {
            p[r * 256 + k] = raw_at(&t[T_W_IH], (int64_t)r * SILERO_HIDDEN + k);
            p[r * 256 + SILERO_HIDDEN + k] = raw_at(&t[T_W_HH], (int64_t)r * SILERO_HIDDEN + k);
        }
    p += 512 * 256;
    m->lstm_b = p;
    for (int r = 0; r < 512; r++)
        p[r] = raw_at(&t[T_B_IH], r) + raw_at(&t[T_B_HH], r);
    p += 512;
    m->out_w = p;
    copy_tensor(p, &t[T_OUT_W]);
    m->out_b = raw_at(&t[T_OUT_B], 0);
}

enum sd_err vad_model_load_buffer(const void *data, size_t n_bytes, struct vad_model **out,
                                  struct sd_error *err)
{
    if (!data || !out)
        return sd_fail(err, SD_EINVAL, "vad_model_load_buffer: NULL argument");
    struct reader r = {data, n_bytes, 0};
    struct raw_tensor found[T_COUNT];
    struct vad_model *m = calloc(1, sizeof *m);
    if (!m)
        return sd_fail(err, SD_ENOMEM, "out of memory loading the VAD model");
    enum sd_err rc = read_header(&r, m, err);
    if (rc == SD_OK)
        rc = read_tensors(&r, found, err);
    if (rc != SD_OK)
        goto fail;
    m->arena = malloc(arena_floats() * sizeof(float));
    if (!m->arena) {
        rc = sd_fail(err, SD_ENOMEM, "out of memory loading the VAD model");
        goto fail;
    }
    fill_model(m, found);
    *out = m;
    return SD_OK;
fail:
    free(m);
    return rc;
}

enum sd_err vad_model_load(const char *path, struct vad_model **out, struct sd_error *err)
{
    if (!path || !out)
        return sd_fail(err, SD_EINVAL, "vad_model_load: NULL argument");
    enum sd_err rc = SD_OK;
    uint8_t *buf = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return sd_fail(err, errno == ENOENT ? SD_ENOTFOUND : SD_EIO, "%s: %s", path,
                       strerror(errno));
    if (fseek(f, 0, SEEK_END) != 0) {
        rc = sd_fail(err, SD_EIO, "%s: cannot seek", path);
        goto fail;
    }
    long size = ftell(f);
    if (size < 0 || (unsigned long)size > MAX_MODEL_BYTES) {
        rc = sd_fail(err, SD_EFORMAT, "%s: not a Silero VAD model (size %ld bytes)", path, size);
        goto fail;
    }
    rewind(f);
    buf = malloc(size > 0 ? (size_t)size : 1);
    if (!buf) {
        rc = sd_fail(err, SD_ENOMEM, "out of memory reading %s", path);
        goto fail;
    }
    if (fread(buf, 1, (size_t)size, f) != (size_t)size) {
        rc = sd_fail(err, SD_EIO, "%s: read failed", path);
        goto fail;
    }
    rc = vad_model_load_buffer(buf, (size_t)size, out, err);
    if (rc != SD_OK && err) { /* name the file: the buffer loader cannot */
        char msg[sizeof err->msg];
        memcpy(msg, err->msg, sizeof msg);
        sd_fail(err, rc, "%s: %.200s", path, msg);
    }
fail:
    free(buf);
    fclose(f);
    return rc;
}

void vad_model_free(struct vad_model *model)
{
    if (!model)
        return;
    free(model->arena);
    free(model);
}

const char *vad_model_version(const struct vad_model *model)
{
    return model->version;
}

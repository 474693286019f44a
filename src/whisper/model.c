/*
 * model.c - loads whisper.cpp's ggml model files (magic "ggml", hparams, mel
 * filters, vocabulary, then named tensors) by memory-mapping them: weights
 * are used in place, only small misaligned f32 tensors are copied.
 * Every tensor is checked by name, shape and type against the list the
 * hyper-parameters imply. Does not compute anything (see encoder.c/decoder.c)
 * and does not build the tokenizer (tokenizer.c reads whisper_model_vocab()).
 */
#include "whisper/model_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define GGML_FILE_MAGIC 0x67676d6cu
#define GGUF_FILE_MAGIC 0x46554747u /* "GGUF" read as little-endian uint32 */
#define NAME_CAP 64

/* Bounded little-endian reader over the mapping; every read names what it reads. */
struct reader {
    const uint8_t *p;
    size_t size, off;
    const char *path;
    struct sd_error *err;
};

static enum sd_err rd_truncated(struct reader *r, const char *what, size_t need)
{
    return sd_fail(r->err, SD_EFORMAT,
                   "model %s: file is truncated: %s needs %zu bytes at offset %zu but the file "
                   "has %zu bytes", r->path, what, need, r->off, r->size);
}

static enum sd_err rd_i32(struct reader *r, int32_t *v, const char *what)
{
    if (r->size - r->off < 4)
        return rd_truncated(r, what, 4);
    memcpy(v, r->p + r->off, 4);
    r->off += 4;
    return SD_OK;
}

static enum sd_err rd_bytes(struct reader *r, size_t n, const uint8_t **at, const char *what)
{
    if (r->size - r->off < n)
        return rd_truncated(r, what, n);
    *at = r->p + r->off;
    r->off += n;
    return SD_OK;
}

/* ------------------------------------------------------------ hparams */

static enum sd_err check_range(struct reader *r, const char *name, int32_t v, int32_t lo,
                               int32_t hi)
{
    if (v < lo || v > hi)
        return sd_fail(r->err, SD_EFORMAT,
                       "model %s: hyper-parameter %s = %d is out of range [%d, %d] (corrupt or "
                       "not a Whisper model)", r->path, name, v, lo, hi);
    return SD_OK;
}

static enum sd_type wtype_of_ftype(int32_t ftype, int *known)
{
    *known = 1;
    switch (ftype) {
    case 0: return SD_TYPE_F32;
    case 1: return SD_TYPE_F16;
    case 2: return SD_TYPE_Q4_0;
    case 3: return SD_TYPE_Q4_1;
    case 7: return SD_TYPE_Q8_0;
    case 8: return SD_TYPE_Q5_0;
    case 9: return SD_TYPE_Q5_1;
    }
    *known = 0;
    return SD_TYPE_F32;
}

static enum sd_err read_hparams(struct reader *r, struct whisper_model *m)
{
    uint32_t magic;
    if (r->size < 4)
        return sd_fail(r->err, SD_EFORMAT, "model %s: file is too short (%zu bytes) to be a "
                       "Whisper ggml model", r->path, r->size);
    memcpy(&magic, r->p, 4);
    if (magic == GGUF_FILE_MAGIC)
        return sd_fail(r->err, SD_EUNSUPPORTED, "model %s: is a GGUF file; scribed reads "
                       "whisper.cpp's ggml .bin models (ggml-base.en.bin, ...)", r->path);
    if (magic != GGML_FILE_MAGIC)
        return sd_fail(r->err, SD_EFORMAT, "model %s: not a Whisper ggml model (bad magic "
                       "0x%08x, expected 0x%08x)", r->path, magic, GGML_FILE_MAGIC);
    r->off = 4;
    struct whisper_hparams *h = &m->hp;
    int32_t *fields[] = {&h->n_vocab, &h->n_audio_ctx, &h->n_audio_state, &h->n_audio_head,
                         &h->n_audio_layer, &h->n_text_ctx, &h->n_text_state, &h->n_text_head,
                         &h->n_text_layer, &h->n_mels, &h->ftype};
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
        if (rd_i32(r, fields[i], "the header") != SD_OK)
            return SD_EFORMAT;
    enum sd_err rc;
    if ((rc = check_range(r, "n_vocab", h->n_vocab, 51864, 51966)) ||
        (rc = check_range(r, "n_audio_ctx", h->n_audio_ctx, 1, 1500)) ||
        (rc = check_range(r, "n_audio_state", h->n_audio_state, 1, 8192)) ||
        (rc = check_range(r, "n_audio_head", h->n_audio_head, 1, 256)) ||
        (rc = check_range(r, "n_audio_layer", h->n_audio_layer, 1, 256)) ||
        (rc = check_range(r, "n_text_ctx", h->n_text_ctx, 1, 4096)) ||
        (rc = check_range(r, "n_text_state", h->n_text_state, 1, 8192)) ||
        (rc = check_range(r, "n_text_head", h->n_text_head, 1, 256)) ||
        (rc = check_range(r, "n_text_layer", h->n_text_layer, 1, 256)) ||
        (rc = check_range(r, "n_mels", h->n_mels, 1, 512)))
        return rc;
    if (h->n_audio_state % h->n_audio_head || h->n_text_state % h->n_text_head)
        return sd_fail(r->err, SD_EFORMAT, "model %s: state size is not a multiple of the "
                       "number of heads", r->path);
    if (h->n_audio_state != h->n_text_state)
        return sd_fail(r->err, SD_EUNSUPPORTED, "model %s: n_audio_state %d != n_text_state "
                       "%d is not supported", r->path, h->n_audio_state, h->n_text_state);
    int32_t ftype = h->ftype % 1000; /* ggml stores quantization version * 1000 + ftype */
    int known;
    m->wtype = wtype_of_ftype(ftype, &known);
    if (h->ftype < 0 || !known)
        return sd_fail(r->err, SD_EFORMAT, "model %s: unknown ftype %d", r->path, h->ftype);
    if (!sd_type_traits(m->wtype)->supported)
        return sd_fail(r->err, SD_EUNSUPPORTED, "model %s: quantized models (%s) are not "
                       "supported yet; use an f16 or f32 model", r->path,
                       sd_type_traits(m->wtype)->name);
    h->ftype = ftype;
    return SD_OK;
}

static void set_special_tokens(struct whisper_model *m)
{
    struct whisper_special_tokens *s = &m->sp;
    int multi = m->hp.n_vocab >= 51865;
    int n_langs = multi ? m->hp.n_vocab - 51765 - 1 : 0; /* 99, or 100 for large-v3 */
    int dt = multi ? n_langs - 98 : 0;
    s->eot = 50256 + multi;
    s->sot = 50257 + multi;
    s->lang_first = s->sot + 1;
    s->n_langs = n_langs;
    s->translate = 50357 + dt;
    s->transcribe = 50358 + dt;
    s->solm = 50359 + dt;
    s->prev = 50360 + dt;
    s->nosp = 50361 + dt;
    s->no_timestamps = 50362 + dt;
    s->timestamp_begin = 50363 + dt;
}

static enum sd_err read_filters_vocab(struct reader *r, struct whisper_model *m)
{
    int32_t n_mel = 0, n_fft = 0, n_tok = 0;
    const uint8_t *at = NULL;
    if (rd_i32(r, &n_mel, "the mel filter header") || rd_i32(r, &n_fft, "the mel filter header"))
        return SD_EFORMAT;
    if (n_mel != m->hp.n_mels || n_fft != 201)
        return sd_fail(r->err, SD_EFORMAT, "model %s: mel filter bank is %d x %d, expected "
                       "%d x 201", r->path, n_mel, n_fft, m->hp.n_mels);
    size_t n_bytes = (size_t)n_mel * (size_t)n_fft * 4;
    if (rd_bytes(r, n_bytes, &at, "the mel filter bank"))
        return SD_EFORMAT;
    m->filters = aligned_alloc(64, (n_bytes + 63) / 64 * 64);
    if (!m->filters)
        return sd_fail(r->err, SD_ENOMEM, "model %s: out of memory", r->path);
    memcpy(m->filters, at, n_bytes);
    m->n_filter_mels = n_mel;
    m->n_fft_bins = n_fft;

    if (rd_i32(r, &n_tok, "the vocabulary size"))
        return SD_EFORMAT;
    if (n_tok < 1 || n_tok > m->hp.n_vocab)
        return sd_fail(r->err, SD_EFORMAT, "model %s: vocabulary has %d tokens, expected 1 .. "
                       "%d", r->path, n_tok, m->hp.n_vocab);
    m->tok_bytes = calloc((size_t)n_tok, sizeof(*m->tok_bytes));
    m->tok_len = calloc((size_t)n_tok, sizeof(*m->tok_len));
    if (!m->tok_bytes || !m->tok_len)
        return sd_fail(r->err, SD_ENOMEM, "model %s: out of memory", r->path);
    for (int32_t i = 0; i < n_tok; i++) {
        int32_t len = 0;
        if (rd_i32(r, &len, "a vocabulary entry"))
            return SD_EFORMAT;
        if (len < 0 || len > 4096)
            return sd_fail(r->err, SD_EFORMAT, "model %s: vocabulary token %d has a bad length "
                           "%d", r->path, i, len);
        if (rd_bytes(r, (size_t)len, &at, "a vocabulary token"))
            return SD_EFORMAT;
        m->tok_bytes[i] = at;
        m->tok_len[i] = (uint32_t)len;
    }
    m->vocab.n_file_tokens = n_tok;
    m->vocab.bytes = m->tok_bytes;
    m->vocab.len = m->tok_len;
    return SD_OK;
}

/* ------------------------------------------------------- tensor list */

enum { KIND_W, KIND_F32 }; /* W: f32 or f16 weight matrix; F32: must be f32 */

struct spec {
    struct whisper_model *m;
    uint8_t *kinds; /* KIND_* per expected tensor */
    int i;
};

static const struct sd_tensor *spec_add(struct spec *sp, int kind, int n_dims, int64_t ne0,
                                        int64_t ne1, int64_t ne2, const char *prefix,
                                        const char *suffix)
{
    struct sd_tensor *t = &sp->m->tensors[sp->i];
    char *name = sp->m->names + (size_t)sp->i * NAME_CAP;
    snprintf(name, NAME_CAP, "%s%s", prefix, suffix);
    t->name = name;
    t->type = kind == KIND_W ? SD_TYPE_F16 : SD_TYPE_F32; /* expected; fixed when read */
    t->n_dims = n_dims;
    t->ne[0] = ne0;
    t->ne[1] = ne1;
    t->ne[2] = ne2;
    t->ne[3] = 1;
    t->data = NULL;
    t->n_bytes = 0;
    sp->kinds[sp->i] = (uint8_t)kind;
    sp->i++;
    return t;
}

static void spec_attn(struct spec *sp, struct whisper_attn_weights *a, const char *pre,
                      const char *which, int64_t S)
{
    char sfx[48];
#define ADD(field, kind, nd, a0, a1, tail)                                                   \
    do {                                                                                       \
        snprintf(sfx, sizeof(sfx), "%s%s", which, tail);                                       \
        a->field = spec_add(sp, kind, nd, a0, a1, 1, pre, sfx);                             \
    } while (0)
    ADD(q_w, KIND_W, 2, S, S, ".query.weight");
    ADD(q_b, KIND_F32, 1, S, 1, ".query.bias");
    ADD(k_w, KIND_W, 2, S, S, ".key.weight");
    ADD(v_w, KIND_W, 2, S, S, ".value.weight");
    ADD(v_b, KIND_F32, 1, S, 1, ".value.bias");
    ADD(o_w, KIND_W, 2, S, S, ".out.weight");
    ADD(o_b, KIND_F32, 1, S, 1, ".out.bias");
    ADD(ln_w, KIND_F32, 1, S, 1, "_ln.weight");
    ADD(ln_b, KIND_F32, 1, S, 1, "_ln.bias");
#undef ADD
}

static void spec_mlp(struct spec *sp, struct whisper_mlp_weights *w, const char *pre, int64_t S)
{
    w->fc1_w = spec_add(sp, KIND_W, 2, S, 4 * S, 1, pre, "mlp.0.weight");
    w->fc1_b = spec_add(sp, KIND_F32, 1, 4 * S, 1, 1, pre, "mlp.0.bias");
    w->fc2_w = spec_add(sp, KIND_W, 2, 4 * S, S, 1, pre, "mlp.2.weight");
    w->fc2_b = spec_add(sp, KIND_F32, 1, S, 1, 1, pre, "mlp.2.bias");
    w->ln_w = spec_add(sp, KIND_F32, 1, S, 1, 1, pre, "mlp_ln.weight");
    w->ln_b = spec_add(sp, KIND_F32, 1, S, 1, 1, pre, "mlp_ln.bias");
}

static enum sd_err build_spec(struct whisper_model *m, uint8_t **kinds, struct sd_error *err)
{
    const struct whisper_hparams *h = &m->hp;
    int64_t S = h->n_audio_state;
    m->n_tensors = 5 + 15 * h->n_audio_layer + 2 + 2 + 24 * h->n_text_layer + 2;
    m->tensors = calloc((size_t)m->n_tensors, sizeof(*m->tensors));
    m->names = calloc((size_t)m->n_tensors, NAME_CAP);
    m->enc = calloc((size_t)h->n_audio_layer, sizeof(*m->enc));
    m->dec = calloc((size_t)h->n_text_layer, sizeof(*m->dec));
    *kinds = calloc((size_t)m->n_tensors, 1);
    if (!m->tensors || !m->names || !m->enc || !m->dec || !*kinds)
        return sd_fail(err, SD_ENOMEM, "model %s: out of memory", m->path);
    struct spec sp = {m, *kinds, 0};
    const char *g = "";
    char pre[32];
    m->enc_pos = spec_add(&sp, KIND_F32, 2, S, h->n_audio_ctx, 1, g,
                          "encoder.positional_embedding");
    m->conv1_w = spec_add(&sp, KIND_W, 3, 3, h->n_mels, S, g, "encoder.conv1.weight");
    m->conv1_b = spec_add(&sp, KIND_F32, 2, 1, S, 1, g, "encoder.conv1.bias");
    m->conv2_w = spec_add(&sp, KIND_W, 3, 3, S, S, g, "encoder.conv2.weight");
    m->conv2_b = spec_add(&sp, KIND_F32, 2, 1, S, 1, g, "encoder.conv2.bias");
    for (int l = 0; l < h->n_audio_layer; l++) {
        snprintf(pre, sizeof(pre), "encoder.blocks.%d.", l);
        spec_attn(&sp, &m->enc[l].attn, pre, "attn", S);
        spec_mlp(&sp, &m->enc[l].mlp, pre, S);
    }
    m->ln_post_w = spec_add(&sp, KIND_F32, 1, S, 1, 1, g, "encoder.ln_post.weight");
    m->ln_post_b = spec_add(&sp, KIND_F32, 1, S, 1, 1, g, "encoder.ln_post.bias");
    m->dec_pos = spec_add(&sp, KIND_F32, 2, S, h->n_text_ctx, 1, g,
                          "decoder.positional_embedding");
    m->tok_emb = spec_add(&sp, KIND_W, 2, S, h->n_vocab, 1, g,
                          "decoder.token_embedding.weight");
    for (int l = 0; l < h->n_text_layer; l++) {
        snprintf(pre, sizeof(pre), "decoder.blocks.%d.", l);
        spec_attn(&sp, &m->dec[l].attn, pre, "attn", S);
        spec_attn(&sp, &m->dec[l].cross, pre, "cross_attn", S);
        spec_mlp(&sp, &m->dec[l].mlp, pre, S);
    }
    m->dec_ln_w = spec_add(&sp, KIND_F32, 1, S, 1, 1, g, "decoder.ln.weight");
    m->dec_ln_b = spec_add(&sp, KIND_F32, 1, S, 1, 1, g, "decoder.ln.bias");
    return sp.i == m->n_tensors ? SD_OK
                                : sd_fail(err, SD_EINTERNAL, "model tensor count mismatch");
}

/* ------------------------------------------------------------ tensors */

static int find_tensor(const struct whisper_model *m, const char *name, size_t len, int hint)
{
    for (int j = 0; j < m->n_tensors; j++) {
        int i = (hint + j) % m->n_tensors; /* files list tensors in order: try the next first */
        const char *n = m->tensors[i].name;
        if (strlen(n) == len && memcmp(n, name, len) == 0)
            return i;
    }
    return -1;
}

static void format_ne(char *buf, size_t cap, int n_dims, const int64_t *ne)
{
    size_t o = (size_t)snprintf(buf, cap, "[");
    for (int d = 0; d < n_dims && o < cap; d++)
        o += (size_t)snprintf(buf + o, cap - o, d ? ", %lld" : "%lld", (long long)ne[d]);
    if (o < cap)
        snprintf(buf + o, cap - o, "]");
}

/* Reads one tensor record at r->off and binds it to its expected slot. */
static enum sd_err read_tensor(struct reader *r, struct whisper_model *m, const uint8_t *kinds,
                               int *hint)
{
    int32_t n_dims = 0, name_len = 0, ttype = 0;
    int64_t ne[4] = {1, 1, 1, 1};
    const uint8_t *name = NULL, *data = NULL;
    if (rd_i32(r, &n_dims, "a tensor header") || rd_i32(r, &name_len, "a tensor header") ||
        rd_i32(r, &ttype, "a tensor header"))
        return SD_EFORMAT;
    if (n_dims < 1 || n_dims > 4 || name_len < 1 || name_len >= NAME_CAP)
        return sd_fail(r->err, SD_EFORMAT, "model %s: corrupt tensor header at offset %zu "
                       "(n_dims %d, name length %d)", r->path, r->off - 12, n_dims, name_len);
    for (int d = 0; d < n_dims; d++) {
        int32_t v = 0;
        if (rd_i32(r, &v, "a tensor shape"))
            return SD_EFORMAT;
        if (v < 1)
            return sd_fail(r->err, SD_EFORMAT, "model %s: corrupt tensor shape at offset %zu",
                           r->path, r->off - 4);
        ne[d] = v;
    }
    if (rd_bytes(r, (size_t)name_len, &name, "a tensor name"))
        return SD_EFORMAT;
    char shown[NAME_CAP];
    for (int i = 0; i < name_len; i++)
        shown[i] = (name[i] >= 32 && name[i] < 127) ? (char)name[i] : '?';
    shown[name_len] = 0;
    int idx = find_tensor(m, (const char *)name, (size_t)name_len, *hint);
    if (idx < 0)
        return sd_fail(r->err, SD_EFORMAT, "model %s: unknown tensor '%s' (not part of a Whisper "
                       "model with these hyper-parameters)", r->path, shown);
    struct sd_tensor *t = &m->tensors[idx];
    if (t->data)
        return sd_fail(r->err, SD_EFORMAT, "model %s: tensor '%s' appears twice", r->path, shown);
    char got[64], want[64];
    int same = n_dims == t->n_dims;
    for (int d = 0; d < 4 && same; d++)
        same = ne[d] == t->ne[d];
    if (!same) {
        format_ne(got, sizeof(got), n_dims, ne);
        format_ne(want, sizeof(want), t->n_dims, t->ne);
        return sd_fail(r->err, SD_EFORMAT, "model %s: tensor '%s' has shape ne=%s, expected "
                       "ne=%s", r->path, shown, got, want);
    }
    const struct sd_type_traits *tt = sd_type_traits(ttype);
    if (!tt)
        return sd_fail(r->err, SD_EFORMAT, "model %s: tensor '%s' has unknown type %d", r->path,
                       shown, ttype);
    if (!tt->supported)
        return sd_fail(r->err, SD_EUNSUPPORTED, "model %s: tensor '%s' is %s, which this build "
                       "cannot compute with", r->path, shown, tt->name);
    if (ne[0] % tt->block_size)
        return sd_fail(r->err, SD_EFORMAT, "model %s: tensor '%s' is %s but its rows of %lld "
                       "values are not whole %d-value blocks", r->path, shown, tt->name,
                       (long long)ne[0], tt->block_size);
    if (kinds[idx] == KIND_F32 && ttype != SD_TYPE_F32)
        return sd_fail(r->err, SD_EFORMAT, "model %s: tensor '%s' is %s, expected f32", r->path,
                       shown, tt->name);
    int64_t n_el = ne[0] * ne[1] * ne[2] * ne[3];
    size_t n_bytes = sd_type_bytes(ttype, n_el);
    char what[NAME_CAP + 32];
    snprintf(what, sizeof(what), "the data of tensor '%s'", shown);
    if (rd_bytes(r, n_bytes, &data, what))
        return SD_EFORMAT;
    t->type = (enum sd_type)ttype;
    t->n_bytes = n_bytes;
    t->data = data;
    if (ttype == SD_TYPE_F32 && ((uintptr_t)data & 3u)) {
        /* f32 data is read as float by the kernels: give it an aligned home */
        void *copy = aligned_alloc(64, (n_bytes + 63) / 64 * 64);
        if (!copy)
            return sd_fail(r->err, SD_ENOMEM, "model %s: out of memory", r->path);
        memcpy(copy, data, n_bytes);
        m->owned[m->n_owned++] = copy;
        t->data = copy;
    }
    *hint = idx + 1;
    return SD_OK;
}

static enum sd_err read_tensors(struct reader *r, struct whisper_model *m, const uint8_t *kinds)
{
    m->owned = calloc((size_t)m->n_tensors, sizeof(*m->owned));
    if (!m->owned)
        return sd_fail(r->err, SD_ENOMEM, "model %s: out of memory", r->path);
    int hint = 0, n_read = 0;
    while (r->off < r->size) {
        enum sd_err rc = read_tensor(r, m, kinds, &hint);
        if (rc)
            return rc;
        n_read++;
    }
    for (int i = 0; i < m->n_tensors; i++)
        if (!m->tensors[i].data)
            return sd_fail(r->err, SD_EFORMAT, "model %s: tensor '%s' is missing (file has %d of "
                           "%d tensors; truncated?)", r->path, m->tensors[i].name, n_read,
                           m->n_tensors);
    return SD_OK;
}

static void describe(struct whisper_model *m)
{
    const struct whisper_hparams *h = &m->hp;
    static const struct { int layers, state; const char *name; } SIZES[] = {
        {4, 384, "tiny"}, {6, 512, "base"}, {12, 768, "small"}, {24, 1024, "medium"},
        {32, 1280, "large"},
    };
    const char *size = NULL;
    for (size_t i = 0; i < sizeof(SIZES) / sizeof(SIZES[0]); i++)
        if (SIZES[i].layers == h->n_audio_layer && SIZES[i].state == h->n_audio_state)
            size = SIZES[i].name;
    char base[40];
    if (size && h->n_audio_state == 1280 && h->n_mels == 128)
        snprintf(base, sizeof(base), "%s", h->n_text_layer == 4 ? "large-v3-turbo" : "large-v3");
    else if (size && h->n_text_layer == h->n_audio_layer)
        snprintf(base, sizeof(base), "%s", size);
    else
        snprintf(base, sizeof(base), "custom-%dx%d+%d", h->n_audio_state, h->n_audio_layer,
                 h->n_text_layer);
    snprintf(m->desc, sizeof(m->desc), "%s%s %s", base, h->n_vocab == 51864 ? ".en" : "",
             sd_type_traits(m->wtype)->name);
}

/* Every tensor to the device (the CPU keeps reading the mapping in place). */
static enum sd_err upload_tensors(struct whisper_model *m, struct sd_error *err)
{
    for (int i = 0; i < m->n_tensors; i++) {
        struct sd_tensor *t = &m->tensors[i];
        enum sd_err rc = m->dev->upload(t->data, t->n_bytes, &t->mem, err);
        if (rc != SD_OK)
            return rc;
    }
    return SD_OK;
}

enum sd_err whisper_model_load(const char *path, struct whisper_model **out, struct sd_error *err)
{
    return whisper_model_load_on(path, NULL, out, err);
}

enum sd_err whisper_model_load_on(const char *path, const struct sd_backend_ops *dev,
                                  struct whisper_model **out, struct sd_error *err)
{
    enum sd_err rc;
    uint8_t *kinds = NULL;
    if (!path || !out)
        return sd_fail(err, SD_EINVAL, "whisper_model_load: path and out are required");
    if (!dev && (rc = sd_backend_find(NULL, &dev, err)) != SD_OK)
        return rc;
    struct whisper_model *m = calloc(1, sizeof(*m));
    if (!m || !(m->path = strdup(path))) {
        free(m);
        return sd_fail(err, SD_ENOMEM, "model %s: out of memory", path);
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK); /* a FIFO must not block us */
    if (fd < 0) {
        int e = errno;
        rc = sd_fail(err, e == ENOENT ? SD_ENOTFOUND : SD_EIO, "model %s: cannot open: %s", path,
                     strerror(e));
        goto fail;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        rc = sd_fail(err, SD_EIO, "model %s: not a regular file", path);
        goto fail;
    }
    if (st.st_size == 0) {
        close(fd);
        rc = sd_fail(err, SD_EFORMAT, "model %s: file is empty", path);
        goto fail;
    }
    m->dev = dev;
    m->map_size = (size_t)st.st_size;
    m->map = mmap(NULL, m->map_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (m->map == MAP_FAILED) {
        m->map = NULL;
        rc = sd_fail(err, SD_EIO, "model %s: cannot map: %s", path, strerror(errno));
        goto fail;
    }
    madvise(m->map, m->map_size, MADV_WILLNEED); /* start reading ahead; a hint only */
    struct reader r = {m->map, m->map_size, 0, path, err};
    if ((rc = read_hparams(&r, m)) || (rc = read_filters_vocab(&r, m)))
        goto fail;
    set_special_tokens(m);
    if ((rc = build_spec(m, &kinds, err)) || (rc = read_tensors(&r, m, kinds)) ||
        (rc = upload_tensors(m, err)))
        goto fail;
    free(kinds);
    describe(m);
    *out = m;
    return SD_OK;
fail:
    free(kinds);
    whisper_model_free(m);
    return rc;
}

void whisper_model_free(struct whisper_model *m)
{
    if (!m)
        return;
    for (int i = 0; m->tensors && i < m->n_tensors; i++)
        if (m->tensors[i].mem.buf)
            m->dev->release(m->tensors[i].mem);
    if (m->map)
        munmap(m->map, m->map_size);
    for (int i = 0; i < m->n_owned; i++)
        free(m->owned[i]);
    free(m->owned);
    free(m->tensors);
    free(m->names);
    free(m->enc);
    free(m->dec);
    free(m->filters);
    free(m->tok_bytes);
    free(m->tok_len);
    free(m->path);
    free(m);
}

const struct whisper_hparams *whisper_model_hparams(const struct whisper_model *m)
{
    return &m->hp;
}

const struct whisper_special_tokens *whisper_model_special(const struct whisper_model *m)
{
    return &m->sp;
}

const struct whisper_vocab *whisper_model_vocab(const struct whisper_model *m)
{
    return &m->vocab;
}

int whisper_model_is_multilingual(const struct whisper_model *m)
{
    return m->hp.n_vocab >= 51865;
}

const float *whisper_model_mel_filters(const struct whisper_model *m, int *n_mels, int *n_fft_bins)
{
    if (n_mels)
        *n_mels = m->n_filter_mels;
    if (n_fft_bins)
        *n_fft_bins = m->n_fft_bins;
    return m->filters;
}

const struct sd_tensor *whisper_model_tensor(const struct whisper_model *m, const char *name)
{
    int i = find_tensor(m, name, strlen(name), 0);
    return i < 0 ? NULL : &m->tensors[i];
}

const char *whisper_model_device(const struct whisper_model *m)
{
    return m->dev->name;
}

const char *whisper_model_describe(const struct whisper_model *m)
{
    return m->desc;
}

const char *whisper_model_kernels(const struct whisper_model *m)
{
    return m->kernels;
}

size_t whisper_model_step_bytes(const struct whisper_model *m)
{
    size_t bytes = 0;
    for (int l = 0; l < m->hp.n_text_layer; l++) {
        const struct whisper_dec_layer *d = &m->dec[l];
        const struct sd_tensor *t[] = {d->attn.q_w,  d->attn.k_w,  d->attn.v_w, d->attn.o_w,
                                       d->cross.q_w, d->cross.o_w, d->mlp.fc1_w, d->mlp.fc2_w};
        for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
            struct sd_weight w = sd_weight_of(t[i]);
            bytes += sd_type_bytes(w.type, w.ld) * (size_t)w.n;
        }
        bytes += 2 * (size_t)m->hp.n_audio_ctx * (size_t)m->hp.n_text_state * 2; /* K, V f16 */
    }
    struct sd_weight e = sd_weight_of(m->tok_emb);
    return bytes + sd_type_bytes(e.type, e.ld) * (size_t)e.n;
}

enum sd_err whisper_model_calibrate(struct whisper_model *m, int n_threads,
                                    const char *cache_path, const char *version, int force,
                                    struct sd_calibration *c, struct sd_error *err)
{
    /* one decoder step's matrix products, in the order the decoder runs them */
    int n_layer = m->hp.n_text_layer, n = 0;
    struct sd_weight *w = calloc((size_t)n_layer * 8 + 1, sizeof(*w));
    const struct sd_weight **wp = calloc((size_t)n_layer * 8 + 1, sizeof(*wp));
    if (!w || !wp) {
        free(w);
        free(wp);
        return sd_fail(err, SD_ENOMEM, "out of memory choosing the kernels");
    }
    for (int l = 0; l < n_layer; l++) {
        const struct whisper_dec_layer *d = &m->dec[l];
        const struct sd_tensor *t[] = {d->attn.q_w,  d->attn.k_w,  d->attn.v_w, d->attn.o_w,
                                       d->cross.q_w, d->cross.o_w, d->mlp.fc1_w, d->mlp.fc2_w};
        for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
            w[n++] = sd_weight_of(t[i]);
    }
    w[n++] = sd_weight_of(m->tok_emb); /* the vocabulary product */
    for (int i = 0; i < n; i++)
        wp[i] = &w[i];
    *c = (struct sd_calibration){.w = wp, .n_w = n, .cache_path = cache_path,
                                 .version = version, .force = force};
    struct sd_backend *be = NULL;
    enum sd_err rc = sd_backend_open(m->dev, n_threads, 0, &be, err);
    if (rc == SD_OK)
        rc = sd_backend_calibrate(be, c, err);
    if (rc == SD_OK)
        snprintf(m->kernels, sizeof(m->kernels), "%s", c->choice);
    sd_backend_destroy(be);
    c->w = NULL;
    c->n_w = 0;
    free(w);
    free(wp);
    return rc;
}

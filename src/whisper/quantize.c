/*
 * quantize.c - whisper_model_quantize: streams a ggml model file (header,
 * mel filters, vocabulary copied as they are; ftype rewritten as ggml's
 * "quantization version 2" code) and re-encodes each eligible matrix row by
 * row with sd_quantize (backend/quant.c). Reads with stdio, one tensor in
 * memory at a time; never touches the loader's mapping. Validation of shapes
 * and names is left to whisper_model_load of the result.
 */
#include "whisper/quantize.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define QNT_VERSION_FACTOR 2000 /* ggml writes version 2 as ftype + 2 * 1000 */

int whisper_quant_type_parse(const char *s)
{
    static const int types[] = {SD_TYPE_Q4_0, SD_TYPE_Q4_1, SD_TYPE_Q5_0, SD_TYPE_Q5_1,
                                SD_TYPE_Q8_0};
    for (size_t i = 0; s && i < sizeof(types) / sizeof(types[0]); i++)
        if (!strcmp(s, sd_type_traits(types[i])->name))
            return types[i];
    return -1;
}

/* ggml's "mostly" file type code of a weight type. */
static int32_t ftype_code(enum sd_type t)
{
    switch (t) {
    case SD_TYPE_Q4_0: return 2;
    case SD_TYPE_Q4_1: return 3;
    case SD_TYPE_Q8_0: return 7;
    case SD_TYPE_Q5_0: return 8;
    case SD_TYPE_Q5_1: return 9;
    default: return -1;
    }
}

struct qio {
    FILE *in, *out;
    const char *path;
    struct sd_error *err;
};

static enum sd_err rd(struct qio *q, void *p, size_t n, const char *what)
{
    if (fread(p, 1, n, q->in) != n)
        return sd_fail(q->err, SD_EFORMAT, "model %s: truncated while reading %s", q->path, what);
    return SD_OK;
}

static enum sd_err wr(struct qio *q, const void *p, size_t n)
{
    if (fwrite(p, 1, n, q->out) != n)
        return sd_fail(q->err, SD_EIO, "cannot write the quantized model: write failed");
    return SD_OK;
}

/* Copies n bytes from in to out. */
static enum sd_err copy_bytes(struct qio *q, size_t n, const char *what)
{
    char buf[65536];
    while (n) {
        size_t c = n < sizeof(buf) ? n : sizeof(buf);
        enum sd_err rc = rd(q, buf, c, what);
        if (rc || (rc = wr(q, buf, c)))
            return rc;
        n -= c;
    }
    return SD_OK;
}

static enum sd_err copy_i32(struct qio *q, int32_t *v, const char *what)
{
    enum sd_err rc = rd(q, v, 4, what);
    return rc ? rc : wr(q, v, 4);
}

/* Header, mel filters and vocabulary; returns the input's element type in *src_f16. */
static enum sd_err copy_preamble(struct qio *q, enum sd_type type)
{
    int32_t hdr[12];
    enum sd_err rc = rd(q, hdr, sizeof(hdr), "the header");
    if (rc)
        return rc;
    if ((uint32_t)hdr[0] != 0x67676d6cu)
        return sd_fail(q->err, SD_EFORMAT, "model %s: not a Whisper ggml model", q->path);
    if (hdr[11] != 0 && hdr[11] != 1)
        return sd_fail(q->err, SD_EUNSUPPORTED, "model %s: is already quantized (ftype %d); "
                       "quantize an f16 or f32 model", q->path, hdr[11]);
    hdr[11] = QNT_VERSION_FACTOR + ftype_code(type);
    if ((rc = wr(q, hdr, sizeof(hdr))))
        return rc;
    int32_t n_mel, n_fft, n_tok;
    if ((rc = copy_i32(q, &n_mel, "the mel filters")) ||
        (rc = copy_i32(q, &n_fft, "the mel filters")))
        return rc;
    if (n_mel < 1 || n_mel > 512 || n_fft < 1 || n_fft > 4096)
        return sd_fail(q->err, SD_EFORMAT, "model %s: corrupt mel filter header", q->path);
    if ((rc = copy_bytes(q, (size_t)n_mel * (size_t)n_fft * 4, "the mel filters")) ||
        (rc = copy_i32(q, &n_tok, "the vocabulary")))
        return rc;
    if (n_tok < 0 || n_tok > 1000000)
        return sd_fail(q->err, SD_EFORMAT, "model %s: corrupt vocabulary size", q->path);
    for (int32_t i = 0; i < n_tok; i++) {
        int32_t len;
        if ((rc = copy_i32(q, &len, "the vocabulary")))
            return rc;
        if (len < 0 || len > 4096)
            return sd_fail(q->err, SD_EFORMAT, "model %s: corrupt vocabulary entry", q->path);
        if ((rc = copy_bytes(q, (size_t)len, "the vocabulary")))
            return rc;
    }
    return SD_OK;
}

static int eligible(int32_t n_dims, const int32_t *ne, int32_t ttype, const char *name)
{
    return n_dims == 2 && ne[0] % 32 == 0 && (ttype == SD_TYPE_F32 || ttype == SD_TYPE_F16) &&
           !strstr(name, "positional_embedding");
}

/* One tensor record; returns SD_OK with *done = 1 at a clean end of file. */
static enum sd_err copy_tensor(struct qio *q, enum sd_type type, struct whisper_quantize_stats *st,
                               int *done)
{
    int32_t h[3], ne[4] = {1, 1, 1, 1};
    size_t got = fread(h, 1, sizeof(h), q->in);
    if (got == 0 && feof(q->in)) {
        *done = 1;
        return SD_OK;
    }
    if (got != sizeof(h) || h[0] < 1 || h[0] > 4 || h[1] < 1 || h[1] > 255)
        return sd_fail(q->err, SD_EFORMAT, "model %s: corrupt tensor header", q->path);
    enum sd_err rc = rd(q, ne, (size_t)h[0] * 4, "a tensor shape");
    char name[256];
    if (rc || (rc = rd(q, name, (size_t)h[1], "a tensor name")))
        return rc;
    name[h[1]] = 0;
    int64_t n_el = 1;
    for (int d = 0; d < h[0]; d++) {
        if (ne[d] < 1)
            return sd_fail(q->err, SD_EFORMAT, "model %s: tensor '%s' has a bad shape", q->path,
                           name);
        n_el *= ne[d];
    }
    const struct sd_type_traits *tt = sd_type_traits(h[2]);
    if (!tt || n_el % tt->block_size)
        return sd_fail(q->err, SD_EFORMAT, "model %s: tensor '%s' has an unknown type %d",
                       q->path, name, h[2]);
    size_t in_bytes = sd_type_bytes(h[2], n_el);
    int quant = eligible(h[0], ne, h[2], name);
    int32_t out_h[3] = {h[0], h[1], quant ? (int32_t)type : h[2]};
    st->n_tensors++;
    if ((rc = wr(q, out_h, sizeof(out_h))) || (rc = wr(q, ne, (size_t)h[0] * 4)) ||
        (rc = wr(q, name, (size_t)h[1])))
        return rc;
    if (!quant)
        return copy_bytes(q, in_bytes, "tensor data");
    st->n_quantized++;
    size_t row_in = sd_type_bytes(h[2], ne[0]), row_out = sd_type_bytes(type, ne[0]);
    uint8_t *raw = malloc(row_in), *enc = malloc(row_out);
    float *f = malloc((size_t)ne[0] * sizeof(float));
    if (!raw || !enc || !f) {
        rc = sd_fail(q->err, SD_ENOMEM, "out of memory quantizing '%s'", name);
        goto done;
    }
    for (int64_t r = 0; r < n_el / ne[0]; r++) {
        if ((rc = rd(q, raw, row_in, "tensor data")))
            goto done;
        sd_dequantize(h[2], raw, f, ne[0]);
        sd_quantize(type, f, enc, ne[0]);
        if ((rc = wr(q, enc, row_out)))
            goto done;
    }
done:
    free(raw);
    free(enc);
    free(f);
    return rc;
}

enum sd_err whisper_model_quantize(const char *in_path, const char *out_path, enum sd_type type,
                                   struct whisper_quantize_stats *stats, struct sd_error *err)
{
    if (!in_path || !out_path || ftype_code(type) < 0)
        return sd_fail(err, SD_EINVAL, "quantize: need input, output and a quantized type "
                       "(q8_0, q5_0, q5_1, q4_0, q4_1)");
    struct whisper_quantize_stats st = {0};
    struct qio q = {NULL, NULL, in_path, err};
    char *tmp = malloc(strlen(out_path) + 5);
    enum sd_err rc = SD_OK;
    if (!tmp)
        return sd_fail(err, SD_ENOMEM, "out of memory");
    sprintf(tmp, "%s.tmp", out_path);
    if (!(q.in = fopen(in_path, "rb"))) {
        rc = sd_fail(err, SD_EIO, "cannot open model %s", in_path);
        goto fail;
    }
    if (!(q.out = fopen(tmp, "wb"))) {
        rc = sd_fail(err, SD_EIO, "cannot create %s", tmp);
        goto fail;
    }
    if ((rc = copy_preamble(&q, type)))
        goto fail;
    for (int done = 0; !done;)
        if ((rc = copy_tensor(&q, type, &st, &done)))
            goto fail;
    st.bytes_in = (size_t)ftell(q.in);
    st.bytes_out = (size_t)ftell(q.out);
    fclose(q.in);
    q.in = NULL;
    int bad = fclose(q.out) != 0;
    q.out = NULL;
    if (bad || rename(tmp, out_path) != 0) {
        rc = sd_fail(err, SD_EIO, "cannot write %s", out_path);
        goto fail;
    }
    if (stats)
        *stats = st;
    free(tmp);
    return SD_OK;
fail:
    if (q.in)
        fclose(q.in);
    if (q.out)
        fclose(q.out);
    remove(tmp);
    free(tmp);
    return rc;
}

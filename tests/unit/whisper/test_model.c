/*
 * test_model.c - the model loader: the micro reference model loads with the
 * right hyper-parameters, special tokens, vocabulary and tensors; corrupted
 * copies (truncated, bad magic, wrong shape/type, unknown/missing tensor,
 * empty, text, a quantized 1-D tensor) each fail with one error naming the file.
 * Multilingual layouts are made by widening the token embedding of a copy.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "whisper/model.h"
#include "whisper/whisper.h"

struct rec {
    size_t hdr, data, n_bytes;
    int32_t n_dims, ttype;
    char name[64];
};

struct file {
    uint8_t *buf;
    size_t size;
    struct rec recs[128];
    int n_recs;
    size_t first_tensor;
};

static int32_t get_i32(const uint8_t *p)
{
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

static void put_i32(uint8_t *p, int32_t v)
{
    memcpy(p, &v, 4);
}

/* Loads the micro model and indexes its tensor records. */
static int load_micro(struct file *f, char *path, size_t cap)
{
    snprintf(path, cap, "%s/reference/micro-en.f16.bin", check_shared_dir());
    f->buf = check_read_file(path, &f->size);
    if (!f->buf)
        return 0;
    size_t o = 48;
    o += 8 + (size_t)get_i32(f->buf + 48) * (size_t)get_i32(f->buf + 52) * 4;
    int32_t n_tok = get_i32(f->buf + o);
    o += 4;
    for (int i = 0; i < n_tok; i++)
        o += 4 + (uint32_t)get_i32(f->buf + o);
    f->first_tensor = o;
    f->n_recs = 0;
    while (o < f->size && f->n_recs < 128) {
        struct rec *r = &f->recs[f->n_recs++];
        r->hdr = o;
        r->n_dims = get_i32(f->buf + o);
        int32_t name_len = get_i32(f->buf + o + 4);
        r->ttype = get_i32(f->buf + o + 8);
        int64_t n = 1;
        for (int d = 0; d < r->n_dims; d++)
            n *= get_i32(f->buf + o + 12 + 4 * d);
        size_t name_at = o + 12 + 4 * (size_t)r->n_dims;
        memcpy(r->name, f->buf + name_at, (size_t)name_len);
        r->name[name_len] = 0;
        r->data = name_at + (size_t)name_len;
        r->n_bytes = (size_t)n * (r->ttype == 1 ? 2 : 4);
        o = r->data + r->n_bytes;
    }
    return 1;
}

static const struct rec *find_rec(const struct file *f, const char *name)
{
    for (int i = 0; i < f->n_recs; i++)
        if (strcmp(f->recs[i].name, name) == 0)
            return &f->recs[i];
    return NULL;
}

static void write_file(const char *path, const void *data, size_t n)
{
    FILE *fp = fopen(path, "wb");
    CHECK(fp != NULL);
    if (!fp)
        return;
    if (n)
        CHECK(fwrite(data, 1, n, fp) == n);
    fclose(fp);
}

/* Writes data to a temp file and expects the load to fail with `want` in the message. */
static void expect_fail(const void *data, size_t n, const char *want, enum sd_err code)
{
    char dir[] = "/tmp/sd_model_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[128];
    snprintf(path, sizeof(path), "%s/bad-model.bin", dir);
    write_file(path, data, n);
    struct whisper_model *m = NULL;
    struct sd_error err = {0};
    enum sd_err rc = whisper_model_load(path, &m, &err);
    CHECK_MSG(rc != SD_OK, "loading %s should fail (%s)", path, want);
    CHECK(m == NULL);
    if (rc != SD_OK) {
        CHECK_MSG(strstr(err.msg, path) != NULL, "message does not name the file: %s", err.msg);
        CHECK_MSG(strstr(err.msg, want) != NULL, "expected '%s' in: %s", want, err.msg);
        if (code != SD_OK)
            CHECK_MSG(rc == code, "code %d != %d for: %s", rc, code, err.msg);
    } else {
        whisper_model_free(m);
    }
    unlink(path);
    rmdir(dir);
}

TEST(model_load_micro)
{
    char path[512];
    struct file f;
    if (!load_micro(&f, path, sizeof(path)))
        return;
    CHECK_EQ_INT(f.n_recs, 89);
    struct whisper_model *m = NULL;
    struct sd_error err = {0};
    CHECK_OK(whisper_model_load(path, &m, &err), &err);
    if (!m) {
        free(f.buf);
        return;
    }
    const struct whisper_hparams *h = whisper_model_hparams(m);
    CHECK_EQ_INT(h->n_vocab, 51864);
    CHECK_EQ_INT(h->n_audio_ctx, 1500);
    CHECK_EQ_INT(h->n_audio_state, 64);
    CHECK_EQ_INT(h->n_audio_head, 2);
    CHECK_EQ_INT(h->n_text_layer, 2);
    CHECK_EQ_INT(h->n_text_ctx, 448);
    CHECK_EQ_INT(h->n_mels, 80);
    CHECK_EQ_INT(h->ftype, 1);
    const struct whisper_special_tokens *s = whisper_model_special(m);
    CHECK_EQ_INT(s->eot, 50256);
    CHECK_EQ_INT(s->sot, 50257);
    CHECK_EQ_INT(s->translate, 50357);
    CHECK_EQ_INT(s->transcribe, 50358);
    CHECK_EQ_INT(s->solm, 50359);
    CHECK_EQ_INT(s->prev, 50360);
    CHECK_EQ_INT(s->nosp, 50361);
    CHECK_EQ_INT(s->no_timestamps, 50362);
    CHECK_EQ_INT(s->timestamp_begin, 50363);
    CHECK_EQ_INT(s->n_langs, 0);
    CHECK_EQ_INT(whisper_model_is_multilingual(m), 0);
    const struct whisper_vocab *v = whisper_model_vocab(m);
    CHECK_EQ_INT(v->n_file_tokens, 50257);
    CHECK(v->len[50256] == 13 && memcmp(v->bytes[50256], "<|endoftext|>", 13) == 0);
    CHECK(v->len[0] == 1 && v->bytes[0][0] == '!');
    int n_mels = 0, n_bins = 0;
    const float *fb = whisper_model_mel_filters(m, &n_mels, &n_bins);
    CHECK_EQ_INT(n_mels, 80);
    CHECK_EQ_INT(n_bins, 201);
    float f0;
    memcpy(&f0, f.buf + 56 + 4 * 5, 4);
    CHECK(fb[5] == f0);
    const struct sd_tensor *t = whisper_model_tensor(m, "decoder.token_embedding.weight");
    CHECK(t != NULL);
    if (t) {
        CHECK_EQ_INT(t->type, SD_TYPE_F16);
        CHECK_EQ_INT(t->ne[0], 64);
        CHECK_EQ_INT(t->ne[1], 51864);
        CHECK_EQ_INT(t->n_bytes, 64 * 51864 * 2);
        const struct rec *r = find_rec(&f, t->name);
        CHECK(r && memcmp(t->data, f.buf + r->data, r->n_bytes) == 0);
    }
    t = whisper_model_tensor(m, "encoder.conv1.bias");
    CHECK(t && t->type == SD_TYPE_F32 && t->ne[0] == 1 && t->ne[1] == 64);
    CHECK(t && ((uintptr_t)t->data & 3u) == 0);
    CHECK(whisper_model_tensor(m, "decoder.blocks.1.cross_attn.key.weight") != NULL);
    CHECK(whisper_model_tensor(m, "decoder.blocks.2.attn.key.weight") == NULL);
    CHECK(whisper_model_tensor(m, "encoder.blocks.0.attn.key.bias") == NULL);
    CHECK_STR(whisper_model_describe(m), "custom-64x2+2.en f16");
    whisper_model_free(m);
    free(f.buf);
}

TEST(model_missing_file)
{
    struct whisper_model *m = NULL;
    struct sd_error err = {0};
    enum sd_err rc = whisper_model_load("/nonexistent/dir/ggml-base.bin", &m, &err);
    CHECK_EQ_INT(rc, SD_ENOTFOUND);
    CHECK(strstr(err.msg, "/nonexistent/dir/ggml-base.bin") != NULL);
    CHECK(m == NULL);
}

TEST(model_not_a_regular_file)
{
    char dir[] = "/tmp/sd_model_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char fifo[128];
    snprintf(fifo, sizeof(fifo), "%s/pipe.bin", dir);
    CHECK(mkfifo(fifo, 0600) == 0);
    struct whisper_model *m = NULL;
    struct sd_error err = {0};
    CHECK_EQ_INT(whisper_model_load(fifo, &m, &err), SD_EIO); /* must not block */
    CHECK(strstr(err.msg, "not a regular file") != NULL);
    CHECK_EQ_INT(whisper_model_load(dir, &m, &err), SD_EIO);
    CHECK(strstr(err.msg, dir) != NULL);
    unlink(fifo);
    rmdir(dir);
}

TEST(model_empty_and_text_files)
{
    expect_fail("", 0, "empty", SD_EFORMAT);
    const char *text = "This is not a model.\nJust some text that someone uploaded.\n";
    expect_fail(text, strlen(text), "bad magic", SD_EFORMAT);
    expect_fail("GGUF\3\0\0\0 more bytes here", 24, "GGUF", SD_EUNSUPPORTED);
    expect_fail("lm", 2, "too short", SD_EFORMAT);
}

TEST(model_truncated)
{
    char path[512];
    struct file f;
    if (!load_micro(&f, path, sizeof(path)))
        return;
    const struct rec *last = &f.recs[f.n_recs - 1];
    size_t cuts[] = {4, 20, 47, 60, 48 + 8 + 3000, f.first_tensor - 3, f.first_tensor + 5,
                     f.recs[3].data + 100, last->data + last->n_bytes - 1};
    for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++)
        expect_fail(f.buf, cuts[i], "truncated", SD_EFORMAT);
    /* cut exactly between two tensors: the rest is missing */
    expect_fail(f.buf, last->hdr, "is missing", SD_EFORMAT);
    free(f.buf);
}

TEST(model_corrupt_header_and_tensors)
{
    char path[512];
    struct file f;
    if (!load_micro(&f, path, sizeof(path)))
        return;
    uint8_t *c = malloc(f.size);
    CHECK(c != NULL);
    if (!c) {
        free(f.buf);
        return;
    }
    memcpy(c, f.buf, f.size);
    put_i32(c, 0x12345678);
    expect_fail(c, f.size, "bad magic", SD_EFORMAT);

    memcpy(c, f.buf, f.size);
    put_i32(c + 4 * 3, -5); /* n_audio_state */
    expect_fail(c, f.size, "n_audio_state", SD_EFORMAT);

    memcpy(c, f.buf, f.size);
    put_i32(c + 4 * 11, 42); /* an ftype ggml does not have (q8_0 = 7 is now supported) */
    expect_fail(c, f.size, "unknown ftype 42", SD_EFORMAT);

    const struct rec *r = find_rec(&f, "encoder.blocks.1.attn.out.weight");
    memcpy(c, f.buf, f.size);
    put_i32(c + r->hdr + 12, 32); /* ne[0] 64 -> 32 */
    expect_fail(c, f.size, "encoder.blocks.1.attn.out.weight' has shape", SD_EFORMAT);

    r = find_rec(&f, "encoder.conv1.weight");
    memcpy(c, f.buf, f.size);
    memcpy(c + r->data - 12, "convX", 5); /* "encoder.conv1.weight" -> "encoder.convX.weight" */
    expect_fail(c, f.size, "unknown tensor 'encoder.convX.weight'", SD_EFORMAT);

    r = find_rec(&f, "encoder.ln_post.bias"); /* 1-D f32 claimed as f16 */
    memcpy(c, f.buf, f.size);
    put_i32(c + r->hdr + 8, 1);
    expect_fail(c, f.size, "expected f32", SD_EFORMAT);

    memcpy(c, f.buf, f.size);
    put_i32(c + r->hdr + 8, 8); /* a q8_0 bias: quantized types are only for the big matrices */
    expect_fail(c, f.size, "is q8_0, expected f32", SD_EFORMAT);

    memcpy(c, f.buf, f.size);
    put_i32(c + r->hdr + 8, 5); /* no such ggml type in the table */
    expect_fail(c, f.size, "unknown type", SD_EFORMAT);

    /* remove one tensor from the middle: its record is missing */
    r = find_rec(&f, "decoder.blocks.0.cross_attn.query.bias");
    size_t rec_len = r->data + r->n_bytes - r->hdr;
    memcpy(c, f.buf, r->hdr);
    memcpy(c + r->hdr, f.buf + r->hdr + rec_len, f.size - r->hdr - rec_len);
    expect_fail(c, f.size - rec_len, "'decoder.blocks.0.cross_attn.query.bias' is missing",
                SD_EFORMAT);

    /* duplicate a tensor record at the end */
    r = find_rec(&f, "decoder.ln.bias");
    uint8_t *d = malloc(f.size + (r->data + r->n_bytes - r->hdr));
    if (d) {
        memcpy(d, f.buf, f.size);
        memcpy(d + f.size, f.buf + r->hdr, r->data + r->n_bytes - r->hdr);
        expect_fail(d, f.size + (r->data + r->n_bytes - r->hdr), "twice", SD_EFORMAT);
        free(d);
    }
    free(c);
    free(f.buf);
}

/* Widens the micro model's vocabulary to n_vocab rows and checks the special ids. */
static void check_multilingual(int32_t n_vocab, int32_t sot, int32_t translate, int32_t ts_begin,
                               int n_langs)
{
    char path[512];
    struct file f;
    if (!load_micro(&f, path, sizeof(path)))
        return;
    const struct rec *r = find_rec(&f, "decoder.token_embedding.weight");
    size_t extra = (size_t)(n_vocab - 51864) * 64 * 2;
    size_t end = r->data + r->n_bytes;
    uint8_t *c = calloc(1, f.size + extra);
    CHECK(c != NULL);
    if (!c) {
        free(f.buf);
        return;
    }
    memcpy(c, f.buf, end);
    memcpy(c + end + extra, f.buf + end, f.size - end);
    put_i32(c + 4, n_vocab);
    put_i32(c + r->hdr + 16, n_vocab);
    char dir[] = "/tmp/sd_model_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char p2[128];
    snprintf(p2, sizeof(p2), "%s/multi.bin", dir);
    write_file(p2, c, f.size + extra);
    struct whisper_model *m = NULL;
    struct sd_error err = {0};
    CHECK_OK(whisper_model_load(p2, &m, &err), &err);
    if (m) {
        const struct whisper_special_tokens *s = whisper_model_special(m);
        CHECK_EQ_INT(whisper_model_is_multilingual(m), 1);
        CHECK_EQ_INT(s->eot, 50257);
        CHECK_EQ_INT(s->sot, sot);
        CHECK_EQ_INT(s->lang_first, sot + 1);
        CHECK_EQ_INT(s->n_langs, n_langs);
        CHECK_EQ_INT(s->translate, translate);
        CHECK_EQ_INT(s->transcribe, translate + 1);
        CHECK_EQ_INT(s->no_timestamps, translate + 5);
        CHECK_EQ_INT(s->timestamp_begin, ts_begin);
        CHECK_STR(whisper_model_describe(m), "custom-64x2+2 f16");
        whisper_model_free(m);
    }
    unlink(p2);
    rmdir(dir);
    free(c);
    free(f.buf);
}

TEST(model_multilingual_special_tokens)
{
    check_multilingual(51865, 50258, 50358, 50364, 99);
    check_multilingual(51866, 50258, 50359, 50365, 100);
}

TEST(model_f16_roundtrip)
{
    CHECK(sd_f16_to_f32(0x3c00) == 1.0f);
    CHECK(sd_f16_to_f32(0xc000) == -2.0f);
    CHECK(sd_f16_to_f32(0x0001) == 5.9604644775390625e-8f);
    CHECK(sd_f32_to_f16(1.0f) == 0x3c00);
    CHECK(sd_f32_to_f16(65504.0f) == 0x7bff);
    CHECK(sd_f32_to_f16(1e6f) == 0x7c00);
    for (uint32_t h = 0; h < 0x7c00; h++)
        CHECK_EQ_INT(sd_f32_to_f16(sd_f16_to_f32((uint16_t)h)), h);
    CHECK(sd_f32_to_f16(1.0f + 1.0f / 2048) == 0x3c00);     /* tie -> even */
    CHECK(sd_f32_to_f16(1.0f + 3.0f / 2048) == 0x3c02);     /* tie -> even (up) */
    CHECK(sd_type_traits(SD_TYPE_Q8_0) && sd_type_traits(SD_TYPE_Q8_0)->block_bytes == 34);
    CHECK(sd_type_traits(4) == NULL);
    CHECK_EQ_INT(sd_type_bytes(SD_TYPE_Q4_0, 64), 36);
}

/* Appends n bytes to a growing buffer. */
static void put(uint8_t **buf, size_t *len, const void *src, size_t n)
{
    *buf = realloc(*buf, *len + n);
    if (n)
        memcpy(*buf + *len, src, n);
    *len += n;
}

/*
 * A large-v3-shaped variant of the micro model: 128 mel bins (filters and
 * conv1 widened by repeating rows) and 51866 tokens. Checks it loads with the
 * large-v3 special tokens and that the engine encodes a 128-bin window and
 * decodes to finite logits.
 */
TEST(model_128_mels_and_v3_vocab_run)
{
    char path[512];
    struct file f;
    if (!load_micro(&f, path, sizeof(path)))
        return;
    uint8_t *o = NULL;
    size_t n = 0;
    put(&o, &n, f.buf, 48);
    put_i32(o + 4, 51866);
    put_i32(o + 4 * 10, 128);
    int32_t nm = 128, nf = 201;
    put(&o, &n, &nm, 4);
    put(&o, &n, &nf, 4);
    put(&o, &n, f.buf + 56, 80 * 201 * 4);
    put(&o, &n, f.buf + 56, 48 * 201 * 4); /* 48 more filter rows */
    size_t vocab_at = 56 + 80 * 201 * 4;
    put(&o, &n, f.buf + vocab_at, f.first_tensor - vocab_at);
    for (int i = 0; i < f.n_recs; i++) {
        const struct rec *r = &f.recs[i];
        size_t hdr_len = r->data - r->hdr;
        size_t at = n;
        put(&o, &n, f.buf + r->hdr, hdr_len);
        if (strcmp(r->name, "encoder.conv1.weight") == 0) {
            put_i32(o + at + 16, 128); /* ne = [3, 128, 64] */
            for (int oc = 0; oc < 64; oc++) {
                const uint8_t *src = f.buf + r->data + (size_t)oc * 80 * 3 * 2;
                put(&o, &n, src, 80 * 3 * 2);
                put(&o, &n, src, 48 * 3 * 2);
            }
        } else if (strcmp(r->name, "decoder.token_embedding.weight") == 0) {
            put_i32(o + at + 16, 51866);
            put(&o, &n, f.buf + r->data, r->n_bytes);
            put(&o, &n, f.buf + r->data, 2 * 64 * 2); /* two more rows */
        } else {
            put(&o, &n, f.buf + r->data, r->n_bytes);
        }
    }
    char dir[] = "/tmp/sd_model_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char p2[128];
    snprintf(p2, sizeof(p2), "%s/v3ish.bin", dir);
    write_file(p2, o, n);
    struct whisper_model *m = NULL;
    struct whisper_state *st = NULL;
    struct sd_error err = {0};
    CHECK_OK(whisper_model_load(p2, &m, &err), &err);
    if (m) {
        const struct whisper_special_tokens *s = whisper_model_special(m);
        CHECK_EQ_INT(whisper_model_hparams(m)->n_mels, 128);
        CHECK_EQ_INT(s->sot, 50258);
        CHECK_EQ_INT(s->n_langs, 100);
        CHECK_EQ_INT(s->translate, 50359);
        CHECK_EQ_INT(s->timestamp_begin, 50365);
        int nmel = 0;
        const float *fb = whisper_model_mel_filters(m, &nmel, NULL);
        CHECK_EQ_INT(nmel, 128);
        CHECK(fb[80 * 201 + 7] == fb[7]);
        CHECK_OK(whisper_state_create(m, 2, 1, &st, &err), &err);
    }
    if (st) {
        float *mel = malloc(sizeof(float) * 128 * 3000);
        float *logits = malloc(sizeof(float) * 51866);
        for (int i = 0; i < 128 * 3000; i++)
            mel[i] = (float)(((long long)i * 7919) % 200) / 100.0f - 1.0f;
        CHECK_OK(whisper_encode(st, mel, 3000, &err), &err);
        int32_t prompt[2] = {50258, 50364};
        CHECK_OK(whisper_decode(st, 0, prompt, 2, 0, logits, &err), &err);
        int finite = 1;
        for (int i = 0; i < 51866; i++)
            finite &= isfinite(logits[i]);
        CHECK(finite);
        CHECK(whisper_encode(st, mel, 2999, &err) == SD_EINVAL);
        free(mel);
        free(logits);
        whisper_state_destroy(st);
    }
    whisper_model_free(m);
    unlink(p2);
    rmdir(dir);
    free(o);
    free(f.buf);
}

/*
 * The micro model rewritten as an f32 file (ftype 0, every f16 tensor widened
 * exactly) must load, and since the values are identical the engine must give
 * the same encoder output and logits as from the f16 file.
 */
TEST(model_f32_file_matches_f16)
{
    char path[512];
    struct file f;
    if (!load_micro(&f, path, sizeof(path)))
        return;
    uint8_t *o = NULL;
    size_t n = 0;
    put(&o, &n, f.buf, f.first_tensor);
    put_i32(o + 4 * 11, 0);
    for (int i = 0; i < f.n_recs; i++) {
        const struct rec *r = &f.recs[i];
        size_t at = n;
        put(&o, &n, f.buf + r->hdr, r->data - r->hdr);
        if (r->ttype != 1) {
            put(&o, &n, f.buf + r->data, r->n_bytes);
            continue;
        }
        put_i32(o + at + 8, 0);
        float *wide = malloc(r->n_bytes * 2);
        for (size_t e = 0; e < r->n_bytes / 2; e++) {
            uint16_t h;
            memcpy(&h, f.buf + r->data + 2 * e, 2);
            wide[e] = sd_f16_to_f32(h);
        }
        put(&o, &n, wide, r->n_bytes * 2);
        free(wide);
    }
    char dir[] = "/tmp/sd_model_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char p2[128];
    snprintf(p2, sizeof(p2), "%s/micro-f32.bin", dir);
    write_file(p2, o, n);
    struct whisper_model *m[2] = {NULL, NULL};
    struct whisper_state *st[2] = {NULL, NULL};
    struct sd_error err = {0};
    CHECK_OK(whisper_model_load(path, &m[0], &err), &err);
    CHECK_OK(whisper_model_load(p2, &m[1], &err), &err);
    float *mel = malloc(sizeof(float) * 80 * 3000);
    float *logits[2] = {malloc(sizeof(float) * 51864), malloc(sizeof(float) * 51864)};
    for (int i = 0; i < 80 * 3000; i++)
        mel[i] = (float)(((long long)i * 7919) % 200) / 100.0f - 1.0f;
    for (int k = 0; k < 2 && m[0] && m[1]; k++) {
        CHECK_OK(whisper_state_create(m[k], 2, 1, &st[k], &err), &err);
        if (!st[k])
            continue;
        CHECK_OK(whisper_encode(st[k], mel, 3000, &err), &err);
        int32_t prompt[3] = {50257, 50362, 383};
        CHECK_OK(whisper_decode(st[k], 0, prompt, 3, 0, logits[k], &err), &err);
    }
    if (m[1]) {
        CHECK_STR(whisper_model_describe(m[1]), "custom-64x2+2.en f32");
        CHECK_EQ_INT(whisper_model_tensor(m[1], "encoder.blocks.0.mlp.0.weight")->type,
                     SD_TYPE_F32);
    }
    if (st[0] && st[1]) {
        float *e0 = malloc(sizeof(float) * 1500 * 64), *e1 = malloc(sizeof(float) * 1500 * 64);
        CHECK(e0 && e1);
        whisper_encoder_output(st[0], e0);
        whisper_encoder_output(st[1], e1);
        double d = 0;
        for (int i = 0; i < 1500 * 64; i++)
            d = fmax(d, fabs(e0[i] - e1[i]));
        free(e0);
        free(e1);
        for (int i = 0; i < 51864; i++)
            d = fmax(d, fabs(logits[0][i] - logits[1][i]));
        CHECK_MSG(d <= 1e-5, "f32 vs f16 file: max diff %g", d);
    }
    for (int k = 0; k < 2; k++) {
        whisper_state_destroy(st[k]);
        whisper_model_free(m[k]);
        free(logits[k]);
    }
    free(mel);
    unlink(p2);
    rmdir(dir);
    free(o);
    free(f.buf);
}

/*
 * test_tokenizer.c - conformance of whisper/tokenizer.c with true BPE ids
 * (../shared/reference/tokenizer-bpe.json, made with tiktoken rules on the
 * base.en vocabulary) using the vocabulary stored in the micro model file,
 * plus round trips of the other reference strings (tokenizer.json, whose ids
 * come from whisper.cpp's greedy shortcut and are deliberately not compared).
 */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "whisper/model.h"
#include "whisper/tokenizer.h"

struct tok_test_vocab {
    struct whisper_model *model;
    const struct whisper_vocab *vocab;
};

/* The reference model's vocabulary and its tokenizer (NULL on failure). */
static struct tokenizer *tok_conf_create(struct tok_test_vocab *tv)
{
    char path[1024];
    struct sd_error err = {0};
    struct tokenizer *t = NULL;
    memset(tv, 0, sizeof(*tv));
    snprintf(path, sizeof(path), "%s/reference/micro-en.f16.bin", check_shared_dir());
    enum sd_err rc = whisper_model_load(path, &tv->model, &err);
    CHECK_MSG(rc == SD_OK, "%s", err.msg);
    if (rc != SD_OK)
        return NULL;
    tv->vocab = whisper_model_vocab(tv->model);
    const struct whisper_hparams *hp = whisper_model_hparams(tv->model);
    rc = tok_create(tv->vocab, whisper_model_special(tv->model), hp->n_vocab, &t, &err);
    CHECK_MSG(rc == SD_OK, "%s", err.msg);
    return t;
}

static void tok_test_vocab_free(struct tok_test_vocab *tv)
{
    whisper_model_free(tv->model);
}

static json_t *tok_conf_json(const char *name)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/reference/%s", check_shared_dir(), name);
    json_error_t jerr;
    json_t *j = json_load_file(path, 0, &jerr);
    CHECK_MSG(j != NULL, "%s: %s", path, jerr.text);
    return j;
}

TEST(tok_conf_bpe_ids_exact)
{
    struct tok_test_vocab tv;
    struct tokenizer *t = tok_conf_create(&tv);
    json_t *j = tok_conf_json("tokenizer-bpe.json");
    if (!t || !j)
        goto out;
    json_t *cases = json_object_get(j, "cases");
    size_t i, n_ok = 0;
    json_t *c;
    CHECK(json_array_size(cases) >= 17);
    json_array_foreach(cases, i, c) {
        const char *text = json_string_value(json_object_get(c, "text"));
        json_t *want = json_object_get(c, "ids");
        int32_t *ids = NULL;
        int n = 0;
        struct sd_error err = {0};
        CHECK_OK(tok_encode(t, text, strlen(text), &ids, &n, &err), &err);
        int same = n == (int)json_array_size(want);
        for (int k = 0; same && k < n; k++)
            same = ids[k] == json_integer_value(json_array_get(want, (size_t)k));
        CHECK_MSG(same, "ids differ for \"%s\" (got %d ids)", text, n);
        n_ok += same;
        char *back = tok_decode(t, ids, n);
        CHECK_STR(back, text);
        free(back);
        free(ids);
    }
    printf("# tokenizer-bpe.json: %zu of %zu cases exact\n", n_ok, json_array_size(cases));
out:
    json_decref(j);
    tok_destroy(t);
    tok_test_vocab_free(&tv);
}

/* Every reference string (non-ASCII included) round-trips, and every id's bytes are its token's. */
TEST(tok_conf_reference_round_trips)
{
    struct tok_test_vocab tv;
    struct tokenizer *t = tok_conf_create(&tv);
    json_t *j = tok_conf_json("tokenizer.json");
    if (!t || !j)
        goto out;
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(j, "cases"), i, c) {
        const char *text = json_string_value(json_object_get(c, "text"));
        int32_t *ids = NULL;
        int n = 0;
        struct sd_error err = {0};
        CHECK_OK(tok_encode(t, text, strlen(text), &ids, &n, &err), &err);
        char *back = tok_decode(t, ids, n);
        CHECK_STR(back, text);
        for (int k = 0; k < n; k++)
            CHECK(ids[k] >= 0 && ids[k] < 50256);
        free(back);
        free(ids);
    }
out:
    json_decref(j);
    tok_destroy(t);
    tok_test_vocab_free(&tv);
}

/* The file's ASCII byte tokens agree with the GPT-2 order the tokenizer assumes for ids 0..255. */
TEST(tok_conf_byte_tokens_match_file)
{
    struct tok_test_vocab tv;
    struct tokenizer *t = tok_conf_create(&tv);
    if (!t)
        goto out;
    int n_same = 0;
    for (int32_t id = 0; id < 256; id++) {
        size_t len = 0;
        const uint8_t *b = tok_bytes(t, id, &len);
        CHECK_EQ_INT(len, 1);
        if (tv.vocab->len[id] == 1 && tv.vocab->bytes[id][0] == b[0])
            n_same++;
        else
            CHECK(tv.vocab->len[id] == 3 && memcmp(tv.vocab->bytes[id], "\xEF\xBF\xBD", 3) == 0);
    }
    CHECK_EQ_INT(n_same, 128); /* the 128 ASCII bytes survive in the lossy file */
out:
    tok_destroy(t);
    tok_test_vocab_free(&tv);
}

/* Language tokens of a multilingual (51865-token) model agree with whisper.cpp's table. */
TEST(tok_conf_multilingual_language_tokens)
{
    char path[1024];
    struct sd_error err = {0};
    struct whisper_model *model = NULL;
    struct tokenizer *t = NULL;
    json_t *j = NULL;
    snprintf(path, sizeof(path), "%s/reference/decoding/nano4-ml.f16.bin", check_shared_dir());
    enum sd_err rc = whisper_model_load(path, &model, &err);
    CHECK_MSG(rc == SD_OK, "%s", err.msg);
    if (rc != SD_OK)
        return;
    rc = tok_create(whisper_model_vocab(model), whisper_model_special(model),
                    whisper_model_hparams(model)->n_vocab, &t, &err);
    CHECK_MSG(rc == SD_OK, "%s", err.msg);
    j = tok_conf_json("decoding/a_short.lang.json");
    if (!t || !j)
        goto out;
    CHECK_EQ_INT(tok_n_languages(t), 99);
    size_t i, n_checked = 0;
    json_t *c;
    json_array_foreach(json_object_get(j, "langs"), i, c) {
        const char *code = json_string_value(json_object_get(c, "code"));
        int32_t token = (int32_t)json_integer_value(json_object_get(c, "token"));
        if (i >= 99) { /* "yue" does not exist in a 99-language vocabulary */
            CHECK_EQ_INT(tok_language_id(t, code), -1);
            continue;
        }
        CHECK_EQ_INT(tok_language_id(t, code), token);
        CHECK_STR(tok_language_code(t, token), code);
        n_checked++;
    }
    CHECK_EQ_INT(n_checked, 99);
    /* the multilingual vocabulary encodes and round-trips like the English one */
    static const char text[] = " Hello world, \xC3\xBC" "ber Gr\xC3\xB6\xC3\x9F" "e \xE6\x97\xA5\xE6\x9C\xAC";
    int32_t *ids = NULL;
    int n = 0;
    CHECK_OK(tok_encode(t, text, strlen(text), &ids, &n, &err), &err);
    CHECK(n >= 2);
    for (int k = 0; k < n; k++)
        CHECK(ids[k] >= 0 && ids[k] < tok_n_text(t));
    char *back = tok_decode(t, ids, n);
    CHECK_STR(back, text);
    free(back);
    free(ids);
out:
    json_decref(j);
    tok_destroy(t);
    whisper_model_free(model);
}

/*
 * test_tokenizer.c - unit tests of whisper/tokenizer.c: merge order on a
 * tiny synthetic vocabulary, the pre-split rules and round trips on the
 * reference base.en vocabulary (empty input, spaces, digits, newlines,
 * contractions, "<|endoftext|>" as text, UTF-8 split across tokens, invalid
 * bytes), lossy-vocabulary handling, languages and special-token names.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "whisper/lang.h"
#include "whisper/model.h"
#include "whisper/tokenizer.h"

/* ---- a synthetic vocabulary: the 256 byte tokens, then the given merges in rank order ---- */

struct tiny_vocab {
    uint8_t bytes[512][16];
    const uint8_t *ptr[512];
    uint32_t len[512];
    struct whisper_vocab v;
    struct whisper_special_tokens sp;
};

static void tiny_byte_order(uint8_t out[256])
{
    int id = 0, used[256] = {0};
    for (int b = 0; b < 256; b++)
        if ((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE)
            used[b] = 1, out[id++] = (uint8_t)b;
    for (int b = 0; b < 256; b++)
        if (!used[b])
            out[id++] = (uint8_t)b;
}

/* extra: NULL-terminated list of token strings, ids 256.. in order; eot follows them. */
static struct tokenizer *tiny_tokenizer(struct tiny_vocab *tv, const char *const *extra)
{
    uint8_t order[256];
    tiny_byte_order(order);
    int n = 0;
    for (; n < 256; n++) {
        tv->bytes[n][0] = order[n];
        tv->len[n] = 1;
    }
    for (; extra && extra[n - 256]; n++) {
        tv->len[n] = (uint32_t)strlen(extra[n - 256]);
        memcpy(tv->bytes[n], extra[n - 256], tv->len[n]);
    }
    for (int i = 0; i < n; i++)
        tv->ptr[i] = tv->bytes[i];
    tv->v = (struct whisper_vocab){.n_file_tokens = n, .bytes = tv->ptr, .len = tv->len};
    tv->sp = (struct whisper_special_tokens){
        .eot = n, .sot = n + 1, .lang_first = n + 2, .n_langs = 3, .translate = n + 5,
        .transcribe = n + 6, .solm = n + 7, .prev = n + 8, .nosp = n + 9,
        .no_timestamps = n + 10, .timestamp_begin = n + 11,
    };
    struct tokenizer *t = NULL;
    struct sd_error err = {0};
    enum sd_err rc = tok_create(&tv->v, &tv->sp, n + 11 + 1501, &t, &err);
    CHECK_MSG(rc == SD_OK, "%s", err.msg);
    return t;
}

/* Encodes s and compares with the expected token strings (ids looked up by bytes). */
static void expect_pieces(const struct tokenizer *t, const char *s, const char *const *want)
{
    int32_t *ids = NULL;
    int n = 0;
    struct sd_error err = {0};
    CHECK_OK(tok_encode(t, s, strlen(s), &ids, &n, &err), &err);
    int n_want = 0;
    while (want[n_want])
        n_want++;
    CHECK_MSG(n == n_want, "\"%s\": %d tokens, want %d", s, n, n_want);
    for (int i = 0; i < n && i < n_want; i++) {
        size_t len = 0;
        const uint8_t *b = tok_bytes(t, ids[i], &len);
        CHECK_MSG(len == strlen(want[i]) && memcmp(b, want[i], len) == 0,
                  "\"%s\": token %d is \"%.*s\", want \"%s\"", s, i, (int)len, (const char *)b,
                  want[i]);
    }
    free(ids);
}

TEST(tok_merges_lowest_rank_first)
{
    struct tiny_vocab *tv = calloc(1, sizeof(*tv));
    /* "bc" outranks "ab": "abc" -> a + bc even though "ab" is also a token */
    static const char *const extra[] = {"bc", "ab", "abcd", "cd", "aa", NULL};
    struct tokenizer *t = tiny_tokenizer(tv, extra);
    expect_pieces(t, "abc", (const char *const[]){"a", "bc", NULL});
    /* "abcd" is a token as a whole piece: taken directly (tiktoken's shortcut) */
    expect_pieces(t, "abcd", (const char *const[]){"abcd", NULL});
    /* ties go leftmost: aaa -> aa + a */
    expect_pieces(t, "aaa", (const char *const[]){"aa", "a", NULL});
    expect_pieces(t, "aaaaa", (const char *const[]){"aa", "aa", "a", NULL});
    /* bcd: bc (rank 256) before cd (259) */
    expect_pieces(t, "bcd", (const char *const[]){"bc", "d", NULL});
    tok_destroy(t);
    free(tv);
}

TEST(tok_lossy_tokens_never_emitted)
{
    struct tiny_vocab *tv = calloc(1, sizeof(*tv));
    static const char *const extra[] = {"\xEF\xBF\xBD", "x\xEF\xBF\xBD", "\xEF\xBF", NULL};
    struct tokenizer *t = tiny_tokenizer(tv, extra);
    /* a real vocabulary: U+FFFD tokens are genuine and merge */
    expect_pieces(t, "\xEF\xBF\xBD", (const char *const[]){"\xEF\xBF\xBD", NULL});
    tok_destroy(t);
    /* make it lossy like whisper.cpp's test vocab: byte token 0xFF stored as U+FFFD */
    memcpy(tv->bytes[187], "\xEF\xBF\xBD", 3);
    tv->len[187] = 3;
    struct sd_error err = {0};
    CHECK_OK(tok_create(&tv->v, &tv->sp, tv->sp.timestamp_begin + 1501, &t, &err), &err);
    int32_t *ids = NULL;
    int n = 0;
    CHECK_OK(tok_encode(t, "x\xEF\xBF\xBD\xFF", 5, &ids, &n, &err), &err);
    /* no U+FFFD merges: bytes EF, BF stay apart; EF+BF merges ("\xEF\xBF" has no U+FFFD) */
    for (int i = 0; i < n; i++)
        CHECK(ids[i] != 256 && ids[i] != 257);
    CHECK_EQ_INT(ids[n - 1], 187); /* the repaired byte token for 0xFF */
    char *back = tok_decode(t, ids, n);
    CHECK(memcmp(back, "x\xEF\xBF\xBD\xFF", 6) == 0);
    free(back);
    free(ids);
    tok_destroy(t);
    free(tv);
}

TEST(tok_create_rejects_bad_input)
{
    struct tiny_vocab *tv = calloc(1, sizeof(*tv));
    struct tokenizer *t = tiny_tokenizer(tv, NULL);
    tok_destroy(t);
    t = NULL;
    struct sd_error err = {0};
    struct whisper_special_tokens sp = tv->sp;
    sp.eot = 10;
    CHECK_EQ_INT(tok_create(&tv->v, &sp, 51864, &t, &err), SD_EFORMAT);
    CHECK_EQ_INT(tok_create(NULL, &tv->sp, 51864, &t, &err), SD_EINVAL);
    CHECK_EQ_INT(tok_create(&tv->v, &tv->sp, 100, &t, &err), SD_EFORMAT);
    CHECK(t == NULL);
    tok_destroy(NULL);
    free(tv);
}

/* ---- the reference vocabulary ---- */

struct ref_tok {
    struct whisper_model *model;
    struct tokenizer *t;
};

static int ref_tok_open(struct ref_tok *r)
{
    char path[1024];
    struct sd_error err = {0};
    memset(r, 0, sizeof(*r));
    snprintf(path, sizeof(path), "%s/reference/micro-en.f16.bin", check_shared_dir());
    enum sd_err rc = whisper_model_load(path, &r->model, &err);
    CHECK_MSG(rc == SD_OK, "%s", err.msg);
    if (rc != SD_OK)
        return 0;
    rc = tok_create(whisper_model_vocab(r->model), whisper_model_special(r->model),
                    whisper_model_hparams(r->model)->n_vocab, &r->t, &err);
    CHECK_MSG(rc == SD_OK, "%s", err.msg);
    whisper_model_free(r->model); /* the tokenizer keeps its own copy */
    r->model = NULL;
    return rc == SD_OK;
}

static void round_trip(const struct tokenizer *t, const char *s, size_t len)
{
    int32_t *ids = NULL;
    int n = 0;
    struct sd_error err = {0};
    CHECK_OK(tok_encode(t, s, len, &ids, &n, &err), &err);
    CHECK(n <= (int)len);
    char *back = tok_decode(t, ids, n);
    CHECK_MSG(back && memcmp(back, s, len) == 0 && back[len] == 0, "round trip of %zu bytes", len);
    free(back);
    free(ids);
}

TEST(tok_ref_edge_cases)
{
    struct ref_tok r;
    if (!ref_tok_open(&r))
        return;
    const struct tokenizer *t = r.t;
    expect_pieces(t, "", (const char *const[]){NULL});
    /* GPT-2 has no multi-space tokens: one piece, three tokens */
    expect_pieces(t, "   ", (const char *const[]){" ", " ", " ", NULL});
    expect_pieces(t, "  a", (const char *const[]){" ", " a", NULL});
    /* \s+(?!\S) leaves the last whitespace before a word on its own */
    expect_pieces(t, "a\n\nb", (const char *const[]){"a", "\n", "\n", "b", NULL});
    expect_pieces(t, "a\n\n", (const char *const[]){"a", "\n\n", NULL});
    expect_pieces(t, "x \n y", (const char *const[]){"x", " ", "\n", " y", NULL});
    expect_pieces(t, "end\n", (const char *const[]){"end", "\n", NULL});
    expect_pieces(t, "I'll", (const char *const[]){"I", "'ll", NULL});
    expect_pieces(t, "don't", (const char *const[]){"don", "'t", NULL});
    expect_pieces(t, "'x", (const char *const[]){"'", "x", NULL});
    expect_pieces(t, " 42", (const char *const[]){" 42", NULL});
    expect_pieces(t, "a1", (const char *const[]){"a", "1", NULL});
    expect_pieces(t, "<|endoftext|>",
                  (const char *const[]){"<", "|", "end", "of", "text", "|", ">", NULL});
    round_trip(t, "", 0);
    round_trip(t, "     ", 5);
    round_trip(t, "0123456789 9876543210", 21);
    round_trip(t, "\n\r\n\t \v\f", 7);
    round_trip(t, "It's we're they've I'm you'll he'd 'S 'RE", 41);
    tok_destroy(r.t);
}

TEST(tok_ref_utf8_and_invalid_bytes)
{
    struct ref_tok r;
    if (!ref_tok_open(&r))
        return;
    const struct tokenizer *t = r.t;
    static const char *const texts[] = {
        "caf\xC3\xA9 na\xC3\xAFve",                      /* Latin-1 letters */
        "\xE3\x81\x93\xE3\x82\x93\xE3\x81\xAB\xE3\x81\xA1\xE3\x81\xAF\xE4\xB8\x96\xE7\x95\x8C",
        "\xF0\x9F\x98\x80 emoji \xF0\x9F\x8E\x89",     /* 4-byte characters */
        "\xD0\x9F\xD1\x80\xD0\xB8\xD0\xB2\xD0\xB5\xD1\x82, \xD0\xBC\xD0\xB8\xD1\x80!",
        "\xE2\x80\x94 \xE2\x80\x9Cquoted\xE2\x80\x9D \xC2\xA0nbsp\xE3\x80\x80ideo",
        "\xFF\xFE\x80 bad \xC3 \xE3\x81 \xED\xA0\x80 \xC0\xAF \xF5\x80\x80\x80",
        "\xEF\xBF\xBD replacement",
    };
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        round_trip(t, texts[i], strlen(texts[i]));
        int32_t *ids = NULL;
        int n = 0;
        struct sd_error err = {0};
        CHECK_OK(tok_encode(t, texts[i], strlen(texts[i]), &ids, &n, &err), &err);
        for (int k = 0; k < n; k++) { /* no lossy token is ever emitted */
            size_t len = 0;
            const uint8_t *b = tok_bytes(t, ids[k], &len);
            CHECK(len < 3 || memmem(b, len, "\xEF\xBF\xBD", 3) == NULL);
        }
        free(ids);
    }
    /* a character split across tokens decodes only when joined */
    int32_t *ids = NULL;
    int n = 0;
    struct sd_error err = {0};
    CHECK_OK(tok_encode(t, "\xF0\x9F\x98\x80", 4, &ids, &n, &err), &err);
    CHECK(n >= 2);
    char *half = tok_decode(t, ids, 1);
    CHECK(strlen(half) < 4);
    free(half);
    free(ids);
    /* every single byte value survives */
    char all[256];
    for (int b = 0; b < 256; b++)
        all[b] = (char)(b ? b : 1);
    round_trip(t, all, sizeof(all));
    tok_destroy(r.t);
}

TEST(tok_ref_random_bytes_round_trip)
{
    struct ref_tok r;
    if (!ref_tok_open(&r))
        return;
    uint64_t x = 0x9E3779B97F4A7C15ull;
    char buf[300];
    for (int iter = 0; iter < 300; iter++) {
        size_t len = (size_t)(iter % 7 == 0 ? 299 : iter % 40);
        for (size_t i = 0; i < len; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            /* mostly text-like bytes, some arbitrary */
            static const char alpha[] = "ab  c'sre\n\t19.,!\xC3\xA9\xE3\x81\x82";
            buf[i] = (x >> 8) % 4 ? alpha[(x >> 16) % (sizeof(alpha) - 1)] : (char)(x >> 24);
        }
        round_trip(r.t, buf, len);
    }
    tok_destroy(r.t);
}

TEST(tok_long_piece_is_fast)
{
    struct ref_tok r;
    if (!ref_tok_open(&r))
        return;
    size_t len = 1 << 20; /* one megabyte, one pre-split piece */
    char *s = malloc(len);
    for (size_t i = 0; i < len; i++)
        s[i] = "abcdefghij"[i * 7 % 10];
    round_trip(r.t, s, len);
    memset(s, 'a', len);
    round_trip(r.t, s, len);
    free(s);
    tok_destroy(r.t);
}

TEST(tok_ref_decode_skips_special_and_bad_ids)
{
    struct ref_tok r;
    if (!ref_tok_open(&r))
        return;
    const struct tokenizer *t = r.t;
    int32_t ids[] = {50257, 15496, 50256, -5, 995, 50363, 999999};
    char *s = tok_decode(t, ids, 7);
    CHECK_STR(s, "Hello world");
    free(s);
    s = tok_decode(t, ids, 0);
    CHECK_STR(s, "");
    free(s);
    size_t len = 99;
    CHECK(tok_bytes(t, 50256, &len) == NULL);
    CHECK_EQ_INT(len, 0);
    CHECK(tok_bytes(t, -1, &len) == NULL);
    CHECK_EQ_INT(tok_n_text(t), 50256);
    char name[32];
    CHECK_EQ_INT(tok_special_name(t, 50256, name, sizeof(name)), 1);
    CHECK_STR(name, "<|endoftext|>");
    CHECK_EQ_INT(tok_special_name(t, 50257, name, sizeof(name)), 1);
    CHECK_STR(name, "<|startoftranscript|>");
    CHECK_EQ_INT(tok_special_name(t, 50362, name, sizeof(name)), 1);
    CHECK_STR(name, "<|notimestamps|>");
    CHECK_EQ_INT(tok_special_name(t, 50363 + 62, name, sizeof(name)), 1);
    CHECK_STR(name, "<|1.24|>");
    CHECK_EQ_INT(tok_special_name(t, 50258, name, sizeof(name)), 1);
    CHECK_STR(name, "<|en|>");
    CHECK_EQ_INT(tok_special_name(t, 100, name, sizeof(name)), 0);
    CHECK_STR(name, "");
    /* English-only: no language tokens */
    CHECK_EQ_INT(tok_n_languages(t), 0);
    CHECK_EQ_INT(tok_language_id(t, "en"), -1);
    CHECK(tok_language_code(t, 50258) == NULL);
    tok_destroy(r.t);
}

TEST(tok_languages_multilingual_layout)
{
    struct tiny_vocab *tv = calloc(1, sizeof(*tv));
    struct tokenizer *t = tiny_tokenizer(tv, NULL);
    tok_destroy(t);
    /* 51865-token layout: eot 50257, sot 50258, 99 languages from 50259 */
    tv->sp = (struct whisper_special_tokens){
        .eot = 256, .sot = 257, .lang_first = 258, .n_langs = 99, .translate = 357,
        .transcribe = 358, .solm = 359, .prev = 360, .nosp = 361, .no_timestamps = 362,
        .timestamp_begin = 363,
    };
    struct sd_error err = {0};
    CHECK_OK(tok_create(&tv->v, &tv->sp, 363 + 1501, &t, &err), &err);
    CHECK_STR(tok_language_code(t, 258), "en");
    CHECK_STR(tok_language_code(t, 259), "zh");
    CHECK_STR(tok_language_code(t, 258 + 98), "su");
    CHECK(tok_language_code(t, 258 + 99) == NULL);
    CHECK(tok_language_code(t, 257) == NULL);
    CHECK_EQ_INT(tok_language_id(t, "de"), 260);
    CHECK_EQ_INT(tok_language_id(t, "DE"), 260);
    CHECK_EQ_INT(tok_language_id(t, "german"), 260);
    CHECK_EQ_INT(tok_language_id(t, "haw"), 258 + 93);
    CHECK_EQ_INT(tok_language_id(t, "yue"), -1); /* large-v3 only */
    CHECK_EQ_INT(tok_language_id(t, "xx"), -1);
    CHECK_EQ_INT(tok_language_id(t, NULL), -1);
    CHECK_EQ_INT(tok_n_languages(t), 99);
    char name[16];
    tok_special_name(t, 260, name, sizeof(name));
    CHECK_STR(name, "<|de|>");
    tok_destroy(t);
    CHECK_EQ_INT(whisper_lang_index("yue"), 99);
    CHECK_STR(whisper_lang_name(2), "german");
    CHECK(whisper_lang_code(100) == NULL);
    free(tv);
}

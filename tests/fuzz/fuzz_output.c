/*
 * fuzz_output.c - libFuzzer target over the response renderers: any
 * transcript (text with invalid or edge-case UTF-8, NUL-free but otherwise
 * arbitrary bytes; times negative, huge, NaN or infinite; words; language
 * probabilities) rendered in every format.
 *
 * Input: a small byte reader builds the transcript (see build()).
 * Contracts: every body is valid UTF-8; json and verbose_json bodies parse
 * as JSON objects; srt/vtt bodies hold no control characters beyond
 * newlines and tabs; no crash, leak or sanitizer report.
 */
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "fuzz_common.h"
#include "output/format.h"
#include "util/utf8.h"

struct reader {
    const uint8_t *p;
    size_t n;
};

static uint8_t take_byte(struct reader *r)
{
    if (!r->n)
        return 0;
    r->n--;
    return *r->p++;
}

static double take_time(struct reader *r)
{
    static const double special[] = {0, -1, 1e300, -1e300, NAN, INFINITY, -INFINITY, 59.999,
                                     3599.9995, 359999.9996, 1e-9, 30};
    uint8_t b = take_byte(r);
    if (b < 12)
        return special[b];
    return (double)b * 0.37 + take_byte(r) * 97.0;
}

/* A NUL-terminated string of up to 40 bytes from the input (never NULL). */
static char *take_text(struct reader *r)
{
    size_t len = take_byte(r) % 41;
    if (len > r->n)
        len = r->n;
    char *s = malloc(len + 1);
    FUZZ_REQUIRE(s != NULL, "malloc");
    for (size_t i = 0; i < len; i++)
        s[i] = r->p[i] ? (char)r->p[i] : ' ';
    s[len] = '\0';
    r->p += len;
    r->n -= len;
    return s;
}

static struct transcript *build(struct reader *r)
{
    struct transcript *t = calloc(1, sizeof(*t));
    FUZZ_REQUIRE(t != NULL, "calloc");
    t->task = strdup(take_byte(r) & 1 ? "translate" : "transcribe");
    t->language = take_text(r);
    t->duration = take_time(r);
    t->n_segments = take_byte(r) % 6;
    t->segments = calloc((size_t)t->n_segments + 1, sizeof(*t->segments));
    for (int i = 0; i < t->n_segments; i++) {
        struct transcript_segment *s = &t->segments[i];
        s->id = i;
        s->start = take_time(r);
        s->end = take_time(r);
        s->text = take_text(r);
        s->avg_logprob = (float)take_time(r);
        s->compression_ratio = (float)take_time(r);
        s->no_speech_prob = (float)take_time(r);
        s->n_tokens = take_byte(r) % 4;
        s->tokens = calloc((size_t)s->n_tokens + 1, sizeof(*s->tokens));
        for (int k = 0; k < s->n_tokens; k++)
            s->tokens[k] = (int32_t)(take_byte(r) * 211);
        s->n_words = take_byte(r) % 4;
        s->words = calloc((size_t)s->n_words + 1, sizeof(*s->words));
        for (int w = 0; w < s->n_words; w++) {
            s->words[w].word = take_text(r);
            s->words[w].start = take_time(r);
            s->words[w].end = take_time(r);
            s->words[w].probability = (float)take_time(r);
        }
    }
    t->text = take_text(r);
    t->n_langs = take_byte(r) % 3;
    t->lang_codes = calloc((size_t)t->n_langs + 1, sizeof(*t->lang_codes));
    t->lang_probs = calloc((size_t)t->n_langs + 1, sizeof(*t->lang_probs));
    for (int i = 0; i < t->n_langs; i++) {
        char *code = take_text(r);
        snprintf(t->lang_codes[i], sizeof(t->lang_codes[i]), "%s", code);
        free(code);
        t->lang_probs[i] = (float)take_time(r);
    }
    return t;
}

static void check_utf8(const char *s)
{
    size_t n = strlen(s);
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t k = sd_utf8_char((const uint8_t *)s + i, n - i, &cp);
        FUZZ_REQUIRE(k > 0, "the body is valid UTF-8");
        i += k;
    }
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    struct reader r = {data, size};
    struct transcript *t = build(&r);
    static const enum output_format formats[] = {OUTPUT_JSON, OUTPUT_TEXT, OUTPUT_SRT,
                                                 OUTPUT_VTT, OUTPUT_VERBOSE_JSON};
    for (size_t f = 0; f < sizeof(formats) / sizeof(formats[0]); f++) {
        char *body = output_render(t, formats[f]);
        FUZZ_REQUIRE(body != NULL, "rendered");
        check_utf8(body);
        if (formats[f] == OUTPUT_JSON || formats[f] == OUTPUT_VERBOSE_JSON) {
            json_error_t je;
            json_t *o = json_loads(body, 0, &je);
            if (!o)
                fprintf(stderr, "not JSON (%s): %s\n", je.text, body);
            FUZZ_REQUIRE(json_is_object(o), "a json body is a JSON object");
            json_decref(o);
        }
        if (formats[f] == OUTPUT_SRT || formats[f] == OUTPUT_VTT)
            for (const char *c = body; *c; c++)
                FUZZ_REQUIRE((unsigned char)*c >= ' ' || *c == '\n' || *c == '\t' || *c == '\r',
                             "no control characters in a subtitle file");
        free(body);
    }
    transcript_destroy(t);
    return 0;
}

/*
 * test_format.c - unit tests of output/: format names and content types,
 * json/text/srt/vtt/verbose_json renderings of small transcripts (exact
 * bodies), timestamps past one hour, empty and NULL transcripts, special
 * characters, invalid UTF-8 (always valid output), non-finite numbers.
 */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "output/format.h"

/* Two segments; the second starts after one hour. Strings are static: never destroy. */
static struct transcript sample(struct transcript_segment segs[2])
{
    static int32_t tok0[] = {50363, 2425, 995, 50413};
    static int32_t tok1[] = {50363, 3387, 50400};
    segs[0] = (struct transcript_segment){
        .id = 0, .seek = 0, .start = 0.0, .end = 2.5, .text = " Hello world.",
        .tokens = tok0, .n_tokens = 4, .temperature = 0.0f, .avg_logprob = -0.25f,
        .compression_ratio = 1.5f, .no_speech_prob = 0.1f,
    };
    segs[1] = (struct transcript_segment){
        .id = 1, .seek = 360000, .start = 3725.5, .end = 3727.0004, .text = " Bye \"now\" & <then>",
        .tokens = tok1, .n_tokens = 3, .temperature = 0.2f, .avg_logprob = -0.5f,
        .compression_ratio = 1.25f, .no_speech_prob = 0.0f,
    };
    return (struct transcript){
        .task = "transcribe", .language = "en", .duration = 3727.25,
        .text = " Hello world. Bye \"now\" & <then>", .segments = segs, .n_segments = 2,
    };
}

TEST(output_format_names)
{
    enum output_format f = OUTPUT_TEXT;
    struct sd_error err = {0};
    static const char *const names[] = {"json", "text", "srt", "vtt", "verbose_json"};
    for (int i = 0; i < 5; i++) {
        CHECK_OK(output_format_parse(names[i], &f, &err), &err);
        CHECK_EQ_INT(f, i);
        CHECK_STR(output_format_name(f), names[i]);
    }
    CHECK_EQ_INT(output_format_parse("xml", &f, &err), SD_EINVAL);
    CHECK(strstr(err.msg, "verbose_json") != NULL);
    CHECK_EQ_INT(output_format_parse(NULL, &f, &err), SD_EINVAL);
    CHECK_EQ_INT(output_format_parse("JSON", &f, &err), SD_EINVAL);
    CHECK_STR(output_content_type(OUTPUT_JSON), "application/json");
    CHECK_STR(output_content_type(OUTPUT_VERBOSE_JSON), "application/json");
    CHECK_STR(output_content_type(OUTPUT_TEXT), "text/plain; charset=utf-8");
    CHECK_STR(output_content_type(OUTPUT_SRT), "text/plain; charset=utf-8");
    CHECK_STR(output_content_type(OUTPUT_VTT), "text/plain; charset=utf-8");
}

TEST(output_json_and_text)
{
    struct transcript_segment segs[2];
    struct transcript t = sample(segs);
    char *s = output_render(&t, OUTPUT_JSON);
    CHECK_STR(s, "{\"text\": \"Hello world. Bye \\\"now\\\" & <then>\"}");
    free(s);
    s = output_render(&t, OUTPUT_TEXT);
    CHECK_STR(s, "Hello world. Bye \"now\" & <then>\n");
    free(s);
    /* no t->text: the segments are joined */
    t.text = NULL;
    s = output_render(&t, OUTPUT_TEXT);
    CHECK_STR(s, "Hello world. Bye \"now\" & <then>\n");
    free(s);
}

TEST(output_srt_exact)
{
    struct transcript_segment segs[2];
    struct transcript t = sample(segs);
    char *s = output_render(&t, OUTPUT_SRT);
    CHECK_STR(s, "1\n00:00:00,000 --> 00:00:02,500\nHello world.\n\n"
                 "2\n01:02:05,500 --> 01:02:07,000\nBye \"now\" & <then>\n\n");
    free(s);
}

TEST(output_vtt_exact)
{
    struct transcript_segment segs[2];
    struct transcript t = sample(segs);
    char *s = output_render(&t, OUTPUT_VTT);
    CHECK_STR(s, "WEBVTT\n\n00:00:00.000 --> 00:00:02.500\nHello world.\n\n"
                 "01:02:05.500 --> 01:02:07.000\nBye \"now\" &amp; &lt;then&gt;\n\n");
    free(s);
}

TEST(output_subtitles_long_times_and_odd_text)
{
    struct transcript_segment segs[4] = {
        {.start = 0, .end = 1, .text = "   "},                        /* empty: no cue */
        {.start = 360000.0005, .end = 360001.9996, .text = "a\n\n\r\nb -->"}, /* 100 h */
        {.start = -3, .end = NAN, .text = NULL},                      /* NULL text: no cue */
        {.start = NAN, .end = -1, .text = " z "},
    };
    struct transcript t = {.segments = segs, .n_segments = 4};
    char *s = output_render(&t, OUTPUT_SRT);
    CHECK_STR(s, "1\n100:00:00,001 --> 100:00:02,000\na\nb -->\n\n"
                 "2\n00:00:00,000 --> 00:00:00,000\nz\n\n");
    free(s);
    s = output_render(&t, OUTPUT_VTT);
    CHECK_STR(s, "WEBVTT\n\n100:00:00.001 --> 100:00:02.000\na\nb --&gt;\n\n"
                 "00:00:00.000 --> 00:00:00.000\nz\n\n");
    free(s);
}

TEST(output_empty_and_null_transcripts)
{
    struct transcript empty = {0};
    static const char *const want[] = {"{\"text\": \"\"}", "\n", "", "WEBVTT\n\n", NULL};
    for (int f = 0; f < 4; f++) {
        char *a = output_render(&empty, (enum output_format)f);
        char *b = output_render(NULL, (enum output_format)f);
        CHECK_STR(a, want[f]);
        CHECK_STR(b, want[f]);
        free(a);
        free(b);
    }
    char *s = output_render(&empty, OUTPUT_VERBOSE_JSON);
    CHECK_STR(s, "{\"task\": \"transcribe\", \"language\": \"\", \"duration\": 0.0, \"text\": \"\", "
                 "\"segments\": []}");
    free(s);
}

TEST(output_verbose_json_shape)
{
    struct transcript_segment segs[2];
    struct transcript t = sample(segs);
    char *s = output_render(&t, OUTPUT_VERBOSE_JSON);
    json_error_t jerr;
    json_t *j = json_loads(s, 0, &jerr);
    CHECK_MSG(j != NULL, "%s in %s", jerr.text, s);
    /* OpenAI's key order and values */
    static const char prefix[] = "{\"task\": \"transcribe\", \"language\": \"english\", "
                                 "\"duration\": 3727.25, \"text\": \"Hello world. Bye";
    CHECK(strncmp(s, prefix, strlen(prefix)) == 0);
    CHECK(strstr(s, "\"avg_logprob\": -0.25") != NULL);
    CHECK(strstr(s, "\"no_speech_prob\": 0.1,") || strstr(s, "\"no_speech_prob\": 0.1}"));
    CHECK(strstr(s, "\"temperature\": 0.2,") != NULL); /* float 0.2 printed as 0.2 */
    json_t *segs_j = json_object_get(j, "segments");
    CHECK_EQ_INT(json_array_size(segs_j), 2);
    json_t *s1 = json_array_get(segs_j, 1);
    static const char *const keys[] = {"id", "seek", "start", "end", "text", "tokens",
                                       "temperature", "avg_logprob", "compression_ratio",
                                       "no_speech_prob"};
    for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
        CHECK_MSG(json_object_get(s1, keys[k]) != NULL, "segment lacks %s", keys[k]);
    CHECK_EQ_INT(json_object_size(s1), 10);
    CHECK_EQ_INT(json_integer_value(json_object_get(s1, "id")), 1);
    CHECK_EQ_INT(json_integer_value(json_object_get(s1, "seek")), 360000);
    CHECK_NEAR(json_real_value(json_object_get(s1, "start")), 3725.5, 1e-9);
    CHECK_NEAR(json_real_value(json_object_get(s1, "end")), 3727.0, 1e-9); /* rounded to ms */
    CHECK_STR(json_string_value(json_object_get(s1, "text")), " Bye \"now\" & <then>");
    CHECK_EQ_INT(json_array_size(json_object_get(s1, "tokens")), 3);
    CHECK_EQ_INT(json_integer_value(json_array_get(json_object_get(s1, "tokens"), 1)), 3387);
    CHECK(json_object_get(j, "words") == NULL);
    CHECK(json_object_get(j, "language_probabilities") == NULL);
    json_decref(j);
    free(s);
}

TEST(output_verbose_json_words_and_languages)
{
    struct transcript_segment segs[2];
    struct transcript t = sample(segs);
    struct transcript_word words[2] = {
        {.word = " Bye", .start = 3725.5, .end = 3725.9, .probability = 0.9f},
        {.word = " now", .start = 3725.9, .end = 3726.3, .probability = 0.8f},
    };
    segs[1].words = words;
    segs[1].n_words = 2;
    char codes[2][8] = {"en", "de"};
    float probs[2] = {0.75f, 0.25f};
    t.lang_codes = codes;
    t.lang_probs = probs;
    t.n_langs = 2;
    t.task = "translate";
    t.language = "xx-unknown";
    char *s = output_render(&t, OUTPUT_VERBOSE_JSON);
    json_t *j = json_loads(s, 0, NULL);
    CHECK(j != NULL);
    CHECK_STR(json_string_value(json_object_get(j, "task")), "translate");
    CHECK_STR(json_string_value(json_object_get(j, "language")), "xx-unknown");
    json_t *w = json_object_get(j, "words");
    CHECK_EQ_INT(json_array_size(w), 2);
    CHECK_STR(json_string_value(json_object_get(json_array_get(w, 1), "word")), " now");
    CHECK_NEAR(json_real_value(json_object_get(json_array_get(w, 1), "end")), 3726.3, 1e-9);
    CHECK_EQ_INT(json_object_size(json_array_get(w, 0)), 3);
    json_t *lp = json_object_get(j, "language_probabilities");
    CHECK_NEAR(json_real_value(json_object_get(lp, "en")), 0.75, 1e-9);
    CHECK_NEAR(json_real_value(json_object_get(lp, "de")), 0.25, 1e-9);
    json_decref(j);
    free(s);
}

TEST(output_invalid_utf8_and_specials_stay_valid)
{
    struct transcript_segment segs[1] = {{
        .start = 0, .end = 1, .text = " bad\xC3 \xFF\xFEok \xE2\x82 \xF0\x9F\x98\x80 \t\x01\"\\/",
        .avg_logprob = -INFINITY, .compression_ratio = NAN, .tokens = NULL, .n_tokens = 0,
    }};
    struct transcript_word word = {.word = "w\xC0\xAF", .start = 0, .end = 1};
    segs[0].words = &word;
    segs[0].n_words = 1;
    char codes[1][8] = {{'e', '\xFF', 0}};
    float probs[1] = {NAN};
    struct transcript t = {
        .task = "transcribe\xFF", .language = "e\x80", .duration = INFINITY,
        .text = segs[0].text, .segments = segs, .n_segments = 1,
        .lang_codes = codes, .lang_probs = probs, .n_langs = 1,
    };
    for (int f = 0; f < 5; f++) {
        char *s = output_render(&t, (enum output_format)f);
        CHECK_MSG(s != NULL, "format %d", f);
        if (!s)
            continue;
        /* the output is valid UTF-8: jansson accepts it as a string */
        json_t *probe = json_string(s);
        CHECK_MSG(probe != NULL, "format %d is not valid UTF-8: %s", f, s);
        json_decref(probe);
        CHECK(strstr(s, "\xEF\xBF\xBD") != NULL);
        CHECK(strstr(s, "\xF0\x9F\x98\x80") != NULL); /* valid 4-byte characters survive */
        if (f == OUTPUT_JSON || f == OUTPUT_VERBOSE_JSON) {
            json_error_t jerr;
            json_t *j = json_loads(s, 0, &jerr);
            CHECK_MSG(j != NULL, "format %d: %s", f, jerr.text);
            json_decref(j);
        }
        free(s);
    }
    char *s = output_render(&t, OUTPUT_VERBOSE_JSON);
    CHECK(strstr(s, "\"avg_logprob\": 0.0") != NULL);
    CHECK(strstr(s, "\"duration\": 0.0") != NULL);
    CHECK(strstr(s, "\\u0001") != NULL);
    free(s);
}

TEST(output_many_segments)
{
    int n = 5000;
    struct transcript_segment *segs = calloc((size_t)n, sizeof(*segs));
    for (int i = 0; i < n; i++)
        segs[i] = (struct transcript_segment){.id = i, .start = i * 2.0, .end = i * 2.0 + 1.5,
                                              .text = " word"};
    struct transcript t = {.segments = segs, .n_segments = n, .text = "x"};
    for (int f = 0; f < 5; f++) {
        char *s = output_render(&t, (enum output_format)f);
        CHECK(s != NULL);
        if (f == OUTPUT_SRT)
            CHECK(strstr(s, "5000\n02:46:38,000 --> 02:46:39,500\nword\n\n") != NULL);
        free(s);
    }
    free(segs);
}

/*
 * Tests of the request parameter table (pipeline/param_table.c,
 * stt_params.c): one parameter set given as OpenAI form fields, as
 * whisper.cpp server fields, as command-line flags and through a stored
 * job's JSON yields the same engine parameters; every out-of-range value is
 * refused with a message naming the field and its range; nothing is clamped.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "pipeline/stt_params.h"

/* A form: name/value pairs up to a NULL name, repeated names allowed. */
struct form {
    const char *kv[64];
};

static int form_fields(void *user, const char *name, const char **vals, int max)
{
    const struct form *f = user;
    int n = 0;
    for (int i = 0; f->kv[i] && n < max; i += 2)
        if (strcmp(f->kv[i], name) == 0)
            vals[n++] = f->kv[i + 1];
    return n;
}

static enum sd_err parse_form(const struct form *f, enum param_dialect d, struct stt_params *p,
                              char *field, struct sd_error *e)
{
    enum sd_err rc = param_parse_fields(&stt_param_table, d, form_fields, (void *)f, p, field, e);
    const char *param = NULL;
    return rc == SD_OK ? stt_params_check(p, &param, e) : rc;
}

static void check_same_engine(const struct stt_engine_params *a, const struct stt_engine_params *b)
{
    const struct transcribe_params *x = &a->decode, *y = &b->decode;
    CHECK_EQ_INT(x->task, y->task);
    CHECK_STR(x->language ? x->language : "-", y->language ? y->language : "-");
    CHECK_STR(x->prompt ? x->prompt : "-", y->prompt ? y->prompt : "-");
    CHECK_EQ_INT(x->beam_size, y->beam_size);
    CHECK_EQ_INT(x->best_of, y->best_of);
    CHECK(x->patience == y->patience);
    CHECK(x->temperature == y->temperature);
    CHECK(x->temperature_inc == y->temperature_inc);
    CHECK_EQ_INT(x->no_fallback, y->no_fallback);
    CHECK_EQ_INT(x->repetition_fallback, y->repetition_fallback);
    CHECK(x->compression_ratio_threshold == y->compression_ratio_threshold);
    CHECK(x->logprob_threshold == y->logprob_threshold);
    CHECK(x->no_speech_threshold == y->no_speech_threshold);
    CHECK_EQ_INT(x->timestamps, y->timestamps);
    CHECK_EQ_INT(x->condition_on_previous_text, y->condition_on_previous_text);
    CHECK_EQ_INT(x->carry_initial_prompt, y->carry_initial_prompt);
    CHECK_EQ_INT(x->max_tokens, y->max_tokens);
    CHECK_EQ_INT(x->word_timestamps, y->word_timestamps);
    CHECK_EQ_INT(x->suppress_non_speech, y->suppress_non_speech);
    CHECK_EQ_INT(x->seed, y->seed);
    CHECK(a->vad.threshold == b->vad.threshold);
    CHECK_EQ_INT(a->vad.min_speech_ms, b->vad.min_speech_ms);
    CHECK_EQ_INT(a->vad.min_silence_ms, b->vad.min_silence_ms);
    CHECK(a->vad.max_speech_s == b->vad.max_speech_s);
    CHECK_EQ_INT(a->vad.speech_pad_ms, b->vad.speech_pad_ms);
    CHECK_EQ_INT(a->vad_filter, b->vad_filter);
}

TEST(params_same_engine_parameters_from_every_source)
{
    struct sd_error e_ = {0}, *e = &e_;
    char field[64];
    /* the same request in OpenAI's (and our) field names ... */
    struct form openai = {{"model", "whisper-1", "task", "translate", "language", "de",
                           "prompt", "Grüße", "response_format", "srt", "temperature", "0.4",
                           "beam_size", "8", "best_of", "3", "logprob_threshold", "-0.5",
                           "no_speech_threshold", "0.5", "condition_on_previous_text", "true",
                           "no_timestamps", "false", "timestamp_granularities[]", "segment",
                           "timestamp_granularities[]", "word", "suppress_non_speech", "1",
                           "vad_filter", "false", "vad_threshold", "0.5",
                           "vad_min_silence_duration_ms", "150"}};
    /* ... in whisper.cpp server's ... */
    struct form wcpp = {{"model", "whisper-1", "translate", "true", "language", "de",
                         "prompt", "Grüße", "response_format", "srt", "temperature", "0.4",
                         "beam_size", "8", "best_of", "3", "logprob_thold", "-0.5",
                         "no_speech_thold", "0.5", "no_context", "false",
                         "token_timestamps", "true", "suppress_nst", "true", "vad", "false",
                         "vad_threshold", "0.5", "vad_min_silence_duration_ms", "150"}};
    /* ... and as flags */
    char *argv[] = {"transcribe", "--task", "translate", "--language", "de", "--prompt", "Grüße",
                    "--format", "srt", "--temperature=0.4", "--beam-size", "8", "--best-of", "3",
                    "--logprob-threshold", "-0.5", "--no-speech-threshold", "0.5",
                    "--condition-on-previous-text", "--word-timestamps",
                    "--suppress-non-speech", "--no-vad-filter", "--vad-threshold", "0.5",
                    "--vad-min-silence-ms", "150"};
    int argc = (int)(sizeof(argv) / sizeof(argv[0]));

    struct stt_params a, b, c, d;
    stt_params_init(&a);
    stt_params_init(&b);
    stt_params_init(&c);
    stt_params_init(&d);
    CHECK_OK(parse_form(&openai, PARAM_DIALECT_FORM, &a, field, e), e);
    CHECK_OK(parse_form(&wcpp, PARAM_DIALECT_WCPP, &b, field, e), e);
    for (int i = 1; i < argc; i++)
        CHECK_EQ_INT(param_parse_cli(&stt_param_table, argc, argv, &i, &c, e), 1);
    /* through the store: the async job's parameters as JSON and back */
    char *json = stt_params_to_json(&a);
    CHECK(json != NULL);
    CHECK_OK(stt_params_from_json(json, &d, e), e);

    struct stt_engine_params ea, eb, ec, ed;
    stt_params_to_engine(&a, &ea);
    stt_params_to_engine(&b, &eb);
    stt_params_to_engine(&c, &ec);
    stt_params_to_engine(&d, &ed);
    check_same_engine(&ea, &eb);
    check_same_engine(&ea, &ec);
    check_same_engine(&ea, &ed);
    /* and the values are the ones asked for, not clamped or defaulted */
    CHECK_EQ_INT(ea.decode.beam_size, 8);
    CHECK_EQ_INT(ea.decode.task, TASK_TRANSLATE);
    CHECK(ea.decode.no_fallback); /* a positive temperature alone: OpenAI's rule */
    CHECK(ea.decode.word_timestamps && ea.decode.condition_on_previous_text);
    CHECK(!ea.vad_filter);
    CHECK_EQ_INT(ea.vad.min_silence_ms, 150);
    CHECK_EQ_INT(a.response_format, OUTPUT_SRT);
    CHECK_EQ_INT(d.response_format, OUTPUT_SRT);
    CHECK_STR(d.model, "whisper-1");
    free(json);
    stt_params_clear(&a);
    stt_params_clear(&b);
    stt_params_clear(&c);
    stt_params_clear(&d);
}

TEST(params_out_of_range_is_refused_with_field_and_range)
{
    static const struct {
        enum param_dialect d;
        const char *name, *value, *range;
    } cases[] = {
        {PARAM_DIALECT_FORM, "beam_size", "17", "1 to 16"},
        {PARAM_DIALECT_FORM, "beam_size", "0", "1 to 16"},
        {PARAM_DIALECT_FORM, "beam_size", "2.5", "1 to 16"},
        {PARAM_DIALECT_FORM, "best_of", "99", "1 to 16"},
        {PARAM_DIALECT_FORM, "temperature", "7", "0 to 1"},
        {PARAM_DIALECT_FORM, "temperature", "nan", "0 to 1"},
        {PARAM_DIALECT_FORM, "max_tokens", "225", "0 to 224"},
        {PARAM_DIALECT_FORM, "vad_threshold", "0", "0.01 to 1"},
        {PARAM_DIALECT_FORM, "response_format", "docx", "json, text, srt, vtt, verbose_json"},
        {PARAM_DIALECT_FORM, "timestamp_granularities[]", "sentence", "'word' or 'segment'"},
        {PARAM_DIALECT_FORM, "stream", "perhaps", "true or false"},
        {PARAM_DIALECT_WCPP, "beam_size", "-2", "1 to 16"},
        {PARAM_DIALECT_WCPP, "no_speech_thold", "1.5", "0 to 1"},
        {PARAM_DIALECT_WCPP, "translate", "maybe", "true or false"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct sd_error e = {0};
        char field[64] = "";
        struct form f = {{cases[i].name, cases[i].value}};
        struct stt_params p;
        stt_params_init(&p);
        CHECK_EQ_INT(parse_form(&f, cases[i].d, &p, field, &e), SD_EINVAL);
        CHECK_STR(field, cases[i].name);
        CHECK_MSG(strstr(e.msg, cases[i].name) && strstr(e.msg, cases[i].range),
                  "%s=%s: %s", cases[i].name, cases[i].value, e.msg);
        stt_params_clear(&p);
    }
    /* the same from the command line names the flag */
    char *argv[] = {"transcribe", "--beam-size", "17"};
    int i = 1;
    struct sd_error e = {0};
    struct stt_params p;
    stt_params_init(&p);
    CHECK_EQ_INT(param_parse_cli(&stt_param_table, 3, argv, &i, &p, &e), -1);
    CHECK(strstr(e.msg, "--beam-size") && strstr(e.msg, "1 to 16"));
    /* and from a stored row */
    CHECK_EQ_INT(stt_params_from_json("{\"beam_size\": 40}", &p, &e), SD_EINVAL);
    CHECK(strstr(e.msg, "beam_size") && strstr(e.msg, "1 to 16"));
    stt_params_clear(&p);
}

TEST(params_whisper_cpp_quirks)
{
    struct sd_error e_ = {0}, *e = &e_;
    char field[64];
    struct stt_params p;
    /* -1 is whisper.cpp's "greedy"; translate=false keeps transcribing */
    struct form f = {{"beam_size", "-1", "translate", "false", "no_timestamps", "true"}};
    stt_params_init(&p);
    CHECK_OK(parse_form(&f, PARAM_DIALECT_WCPP, &p, field, e), e);
    CHECK_EQ_INT(p.beam_size, 1);
    CHECK_EQ_INT(p.task, TASK_TRANSCRIBE);
    CHECK(p.no_timestamps);
    stt_params_clear(&p);
    /* -1 means nothing special in OpenAI's names */
    struct form g = {{"beam_size", "-1"}};
    stt_params_init(&p);
    CHECK_EQ_INT(parse_form(&g, PARAM_DIALECT_FORM, &p, field, e), SD_EINVAL);
    stt_params_clear(&p);
}

TEST(params_empty_values_are_absent_and_defaults_stay)
{
    struct sd_error e_ = {0}, *e = &e_;
    char field[64];
    struct stt_params p;
    struct form f = {{"language", "", "temperature", "", "response_format", ""}};
    stt_params_init(&p);
    CHECK_OK(parse_form(&f, PARAM_DIALECT_FORM, &p, field, e), e);
    CHECK_EQ_INT(p.given, 0);
    CHECK(p.language == NULL);
    CHECK_EQ_INT(p.beam_size, 5);
    CHECK(p.vad_filter);
    struct stt_engine_params ep;
    stt_params_to_engine(&p, &ep);
    struct transcribe_params d = transcribe_params_default();
    CHECK_EQ_INT(ep.decode.beam_size, d.beam_size);
    CHECK_EQ_INT(ep.decode.no_fallback, 0);
    CHECK(ep.decode.temperature_inc == d.temperature_inc);
    stt_params_clear(&p);
}

TEST(params_language_is_checked_and_named_languages_become_codes)
{
    struct sd_error e_ = {0}, *e = &e_;
    char field[64];
    struct stt_params p;
    struct form f = {{"language", "German"}};
    stt_params_init(&p);
    CHECK_OK(parse_form(&f, PARAM_DIALECT_FORM, &p, field, e), e);
    CHECK_STR(p.language, "de");
    stt_params_clear(&p);
    struct form g = {{"language", "xx"}};
    stt_params_init(&p);
    CHECK_EQ_INT(parse_form(&g, PARAM_DIALECT_FORM, &p, field, e), SD_EINVAL);
    CHECK(strstr(e->msg, "'xx'") != NULL);
    stt_params_clear(&p);
}

TEST(params_temperature_with_a_step_keeps_the_fallback)
{
    struct sd_error e_ = {0}, *e = &e_;
    char field[64];
    struct stt_params p;
    struct form f = {{"temperature", "0.2", "temperature_inc", "0.2"}};
    stt_params_init(&p);
    CHECK_OK(parse_form(&f, PARAM_DIALECT_WCPP, &p, field, e), e);
    struct stt_engine_params ep;
    stt_params_to_engine(&p, &ep);
    CHECK(!ep.decode.no_fallback);
    stt_params_clear(&p);
}

TEST(params_json_keeps_only_what_was_given_and_reads_old_rows)
{
    struct sd_error e_ = {0}, *e = &e_;
    struct stt_params p;
    stt_params_init(&p);
    STT_SET(&p, beam_size, 3);
    CHECK_OK(param_set_text(&stt_param_table, &p, STT_P_prompt, "Hallo \"Welt\"", NULL, e), e);
    char *s = stt_params_to_json(&p);
    CHECK_STR(s, "{\"prompt\":\"Hallo \\\"Welt\\\"\",\"beam_size\":3}");
    free(s);
    stt_params_clear(&p);
    /* a row written before the table: every field present, "unset" spelled out */
    const char *old = "{\"task\":\"transcribe\",\"model\":\"whisper-1\",\"language\":\"\","
                      "\"response_format\":\"vtt\",\"word_timestamps\":true,\"stream\":false,"
                      "\"has_temperature\":false,\"beam_size\":0,\"no_timestamps\":false,"
                      "\"temperature\":0.0,\"vad_filter\":true,\"no_fallback\":false,"
                      "\"max_tokens\":0}";
    stt_params_init(&p);
    CHECK_OK(stt_params_from_json(old, &p, e), e);
    CHECK_EQ_INT(p.response_format, OUTPUT_VTT);
    CHECK(p.word_timestamps);
    CHECK_EQ_INT(p.beam_size, 5);
    CHECK(!STT_GIVEN(&p, beam_size) && !STT_GIVEN(&p, temperature) && !STT_GIVEN(&p, language));
    stt_params_clear(&p); /* from_json initialises *p: what it held must be freed first */
    CHECK_EQ_INT(stt_params_from_json("{not json", &p, e), SD_EFORMAT);
    stt_params_clear(&p);
    CHECK_EQ_INT(stt_params_from_json("{\"response_format\":\"docx\"}", &p, e), SD_EINVAL);
    stt_params_clear(&p);
}

TEST(params_help_lists_every_flag_with_its_range)
{
    struct stt_params p;
    stt_params_init(&p);
    FILE *f = tmpfile();
    param_print_cli_help(&stt_param_table, &p, f);
    long n = ftell(f);
    rewind(f);
    char *text = calloc(1, (size_t)n + 1);
    CHECK(fread(text, 1, (size_t)n, f) == (size_t)n);
    CHECK(strstr(text, "--beam-size N") && strstr(text, "default 5, 1..16"));
    CHECK(strstr(text, "--no-vad-filter") && strstr(text, "(default off)"));
    CHECK(strstr(text, "--format json|text|srt|vtt|verbose_json"));
    CHECK(strstr(text, "--condition-on-previous-text, --no-context"));
    free(text);
    fclose(f);
    stt_params_clear(&p);
}

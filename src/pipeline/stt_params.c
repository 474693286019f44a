/*
 * stt_params.c - the transcription parameter table (stt_params.def), the
 * checks that need more than a range, the stored JSON (with the older
 * fixed-field rows still readable), and the mapping onto engine parameters.
 */
#include "pipeline/stt_params.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "whisper/lang.h"

/* Enum parameters are read and written as int by the table. */
_Static_assert(sizeof(enum transcribe_task) == sizeof(int), "task is stored as int");
_Static_assert(sizeof(enum output_format) == sizeof(int), "response_format is stored as int");

static const struct param_desc stt_descs[] = {
#define P_BOOL(name, def, form, wcpp, cli, help) \
    {#name, PARAM_BOOL, offsetof(struct stt_params, name), (def) ? 1 : 0, 0, 1, NULL, form, wcpp, cli, help},
#define P_INT(name, def, lo, hi, form, wcpp, cli, help) \
    {#name, PARAM_INT, offsetof(struct stt_params, name), def, lo, hi, NULL, form, wcpp, cli, help},
#define P_FLOAT(name, def, lo, hi, form, wcpp, cli, help) \
    {#name, PARAM_FLOAT, offsetof(struct stt_params, name), def, lo, hi, NULL, form, wcpp, cli, help},
#define P_ENUM(name, ctype, choices, form, wcpp, cli, help) \
    {#name, PARAM_ENUM, offsetof(struct stt_params, name), 0, 0, 0, choices, form, wcpp, cli, help},
#define P_TEXT(name, max, form, wcpp, cli, help) \
    {#name, PARAM_TEXT, offsetof(struct stt_params, name), 0, 0, max, NULL, form, wcpp, cli, help},
#include "pipeline/stt_params.def"
#undef P_BOOL
#undef P_INT
#undef P_FLOAT
#undef P_ENUM
#undef P_TEXT
};

_Static_assert(sizeof(stt_descs) / sizeof(stt_descs[0]) == STT_PARAM_COUNT, "one row per id");
_Static_assert(STT_PARAM_COUNT <= 64, "the given mask has 64 bits");

const struct param_table stt_param_table = {
    stt_descs, STT_PARAM_COUNT, offsetof(struct stt_params, given)};

void stt_params_init(struct stt_params *p)
{
    param_defaults(&stt_param_table, p);
}

void stt_params_clear(struct stt_params *p)
{
    param_clear(&stt_param_table, p);
}

enum sd_err stt_params_copy(struct stt_params *dst, const struct stt_params *src,
                            struct sd_error *err)
{
    return param_copy(&stt_param_table, dst, src, err);
}

enum sd_err stt_params_check(struct stt_params *p, const char **param, struct sd_error *err)
{
    if (p->language && *p->language && strcmp(p->language, "auto") != 0) {
        int i = whisper_lang_index(p->language);
        if (i < 0) {
            *param = "language";
            return sd_fail(err, SD_EINVAL, "unknown language '%.32s': not a language Whisper "
                           "knows (use a code such as en, de, fr, or auto)", p->language);
        }
        const char *code = whisper_lang_code(i);
        if (strcmp(code, p->language) != 0) {
            char *c = strdup(code);
            if (!c)
                return sd_fail(err, SD_ENOMEM, "language");
            free(p->language);
            p->language = c;
        }
    }
    return SD_OK;
}

char *stt_params_to_json(const struct stt_params *p)
{
    json_t *o = param_to_json(&stt_param_table, p);
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    return s;
}

/*
 * Rows written before the parameter table held every field, with "unset"
 * spelled as has_temperature=false, beam_size 0, language "" and false
 * switches. Those become absent keys, so the row reads as the request it was.
 */
static void drop_legacy_unset(json_t *o)
{
    if (!json_object_get(o, "has_temperature"))
        return;
    if (!json_is_true(json_object_get(o, "has_temperature")))
        json_object_del(o, "temperature");
    json_object_del(o, "has_temperature");
    static const char *const zero_means_unset[] = {"beam_size", "max_tokens"};
    for (size_t i = 0; i < sizeof(zero_means_unset) / sizeof(zero_means_unset[0]); i++)
        if (json_integer_value(json_object_get(o, zero_means_unset[i])) == 0)
            json_object_del(o, zero_means_unset[i]);
    const char *lang = json_string_value(json_object_get(o, "language"));
    if (lang && !*lang)
        json_object_del(o, "language");
    static const char *const false_means_unset[] = {"word_timestamps", "stream", "no_timestamps",
                                                    "no_fallback"};
    for (size_t i = 0; i < sizeof(false_means_unset) / sizeof(false_means_unset[0]); i++)
        if (json_is_false(json_object_get(o, false_means_unset[i])))
            json_object_del(o, false_means_unset[i]);
    if (json_is_true(json_object_get(o, "vad_filter")))
        json_object_del(o, "vad_filter");
}

enum sd_err stt_params_from_json(const char *json, struct stt_params *p, struct sd_error *err)
{
    json_error_t je;
    stt_params_init(p); /* as the header promises, whatever the outcome */
    json_t *o = json_loads(json ? json : "", 0, &je);
    if (!o)
        return sd_fail(err, SD_EFORMAT, "stored job parameters: %s", je.text);
    drop_legacy_unset(o);
    struct sd_error why = {0}; /* err may be NULL: callers that only want the outcome */
    enum sd_err rc = param_from_json(&stt_param_table, o, p, &why);
    json_decref(o);
    if (rc != SD_OK)
        sd_fail(err, rc, "stored job parameters: %.200s", why.msg);
    return rc;
}

void stt_params_to_engine(const struct stt_params *p, struct stt_engine_params *out)
{
    struct transcribe_params *d = &out->decode;
    *d = transcribe_params_default();
    d->task = p->task;
    d->language = p->language && *p->language ? p->language : NULL;
    d->prompt = p->prompt && *p->prompt ? p->prompt : NULL;
    d->temperature = p->temperature;
    d->temperature_inc = p->temperature_inc;
    /*
     * OpenAI's rule: temperature 0 means "start at 0 and raise it when a
     * window fails"; a positive temperature is used alone, unless the
     * request also asked for a fallback step (whisper.cpp's temperature_inc).
     */
    d->no_fallback = p->no_fallback || (p->temperature > 0 && !STT_GIVEN(p, temperature_inc));
    d->repetition_fallback = p->repetition_fallback;
    d->beam_size = p->beam_size;
    d->best_of = p->best_of;
    d->patience = p->patience;
    d->compression_ratio_threshold = p->compression_ratio_threshold;
    d->logprob_threshold = p->logprob_threshold;
    d->no_speech_threshold = p->no_speech_threshold;
    d->condition_on_previous_text = p->condition_on_previous_text;
    d->carry_initial_prompt = p->carry_initial_prompt;
    d->timestamps = !p->no_timestamps;
    d->max_tokens = p->max_tokens;
    d->word_timestamps = p->word_timestamps;
    d->suppress_non_speech = p->suppress_non_speech;
    d->seed = (uint64_t)p->seed;

    out->vad = vad_params_default();
    out->vad.threshold = p->vad_threshold;
    out->vad.min_speech_ms = p->vad_min_speech_ms;
    out->vad.min_silence_ms = p->vad_min_silence_ms;
    out->vad.max_speech_s = p->vad_max_speech_s;
    out->vad.speech_pad_ms = p->vad_speech_pad_ms;
    out->vad_filter = p->vad_filter;
}

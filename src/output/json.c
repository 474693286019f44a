/*
 * json.c - the "json" ({"text"}) and "verbose_json" response formats, built
 * with jansson. verbose_json follows OpenAI's shape: task, language (English
 * name, e.g. "english", as OpenAI answers), duration, text, segments[] with
 * decoding statistics, words[] (only when some segment has words) and, as an
 * extension, language_probabilities {code: p} when detection ran. Strings
 * are UTF-8-repaired first (jansson rejects invalid UTF-8); non-finite
 * numbers become 0 (JSON cannot carry them); times are rounded to 1 ms.
 */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "output/output_internal.h"
#include "whisper/lang.h"

#define JSON_FLAGS (JSON_REAL_PRECISION(12) | JSON_PRESERVE_ORDER)

/* A float as the shortest decimal that reads back as that float (0.1f -> 0.1). */
static json_t *jfloat(float v)
{
    if (!isfinite(v))
        return json_real(0.0);
    char buf[32];
    snprintf(buf, sizeof(buf), "%.7g", (double)v);
    return json_real(strtod(buf, NULL));
}

/* Seconds rounded to milliseconds. */
static json_t *jtime(double s)
{
    if (!isfinite(s))
        return json_real(0.0);
    return json_real(round(s * 1000.0) / 1000.0);
}

/* A repaired copy of s as a JSON string (NULL reads as ""). */
static json_t *jstr(const char *s)
{
    char *fixed = out_utf8_repair(s);
    if (!fixed)
        return NULL;
    json_t *j = json_string(fixed);
    free(fixed);
    return j;
}

/* Moves v into o under key; fails (returns -1) if v is NULL. */
static int put(json_t *o, const char *key, json_t *v)
{
    return v ? json_object_set_new(o, key, v) : -1;
}

static char *dump_and_free(json_t *root, int ok)
{
    char *s = ok ? json_dumps(root, JSON_FLAGS) : NULL;
    json_decref(root);
    return s;
}

char *output_render_json(const struct transcript *t)
{
    json_t *root = json_object();
    char *text = out_full_text(t);
    int ok = root && text && put(root, "text", json_string(text)) == 0;
    free(text);
    return dump_and_free(root, ok);
}

static json_t *segment_json(const struct transcript_segment *s)
{
    json_t *o = json_object(), *tokens = json_array();
    int ok = o && tokens;
    for (int i = 0; ok && i < s->n_tokens; i++)
        ok = json_array_append_new(tokens, json_integer(s->tokens[i])) == 0;
    ok = ok && put(o, "id", json_integer(s->id)) == 0 && put(o, "seek", json_integer(s->seek)) == 0 &&
         put(o, "start", jtime(s->start)) == 0 && put(o, "end", jtime(s->end)) == 0 &&
         put(o, "text", jstr(s->text)) == 0;
    if (ok)
        ok = put(o, "tokens", tokens) == 0; /* steals tokens either way */
    else
        json_decref(tokens);
    ok = ok && put(o, "temperature", jfloat(s->temperature)) == 0 &&
         put(o, "avg_logprob", jfloat(s->avg_logprob)) == 0 &&
         put(o, "compression_ratio", jfloat(s->compression_ratio)) == 0 &&
         put(o, "no_speech_prob", jfloat(s->no_speech_prob)) == 0;
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* words[] across all segments, or NULL (and *ok kept) when no segment has words. */
static json_t *words_json(const struct transcript *t, int *ok)
{
    int any = 0;
    for (int i = 0; i < t->n_segments; i++)
        any |= t->segments[i].n_words > 0;
    if (!any)
        return NULL;
    json_t *arr = json_array();
    *ok = arr != NULL;
    for (int i = 0; *ok && i < t->n_segments; i++) {
        const struct transcript_segment *s = &t->segments[i];
        for (int w = 0; *ok && w < s->n_words; w++) {
            json_t *o = json_object();
            *ok = o && put(o, "word", jstr(s->words[w].word)) == 0 &&
                  put(o, "start", jtime(s->words[w].start)) == 0 &&
                  put(o, "end", jtime(s->words[w].end)) == 0 && json_array_append_new(arr, o) == 0;
            if (!*ok)
                json_decref(o);
        }
    }
    return arr;
}

static json_t *lang_probs_json(const struct transcript *t)
{
    json_t *o = json_object();
    for (int i = 0; o && i < t->n_langs; i++) {
        char code[sizeof(t->lang_codes[0]) + 1];
        snprintf(code, sizeof(code), "%.*s", (int)sizeof(t->lang_codes[0]), t->lang_codes[i]);
        char *fixed = out_utf8_repair(code);
        int ok = fixed && put(o, fixed, jfloat(t->lang_probs ? t->lang_probs[i] : 0.0f)) == 0;
        free(fixed);
        if (!ok) {
            json_decref(o);
            return NULL;
        }
    }
    return o;
}

/* OpenAI names the language in full ("english"); unknown codes pass through. */
static json_t *language_json(const char *code)
{
    int i = whisper_lang_index(code);
    return i >= 0 ? json_string(whisper_lang_name(i)) : jstr(code ? code : "");
}

char *output_render_verbose_json(const struct transcript *t)
{
    json_t *root = json_object(), *segs = json_array();
    char *text = out_full_text(t);
    int ok = root && segs && text;
    ok = ok && put(root, "task", jstr(t->task ? t->task : "transcribe")) == 0 &&
         put(root, "language", language_json(t->language)) == 0 &&
         put(root, "duration", jtime(t->duration)) == 0 &&
         put(root, "text", json_string(text)) == 0;
    free(text);
    for (int i = 0; ok && i < t->n_segments; i++)
        ok = json_array_append_new(segs, segment_json(&t->segments[i])) == 0;
    if (ok)
        ok = put(root, "segments", segs) == 0; /* steals segs either way */
    else
        json_decref(segs);
    json_t *words = ok ? words_json(t, &ok) : NULL;
    if (words) {
        if (ok)
            ok = put(root, "words", words) == 0;
        else
            json_decref(words);
    }
    if (ok && t->n_langs > 0)
        ok = put(root, "language_probabilities", lang_probs_json(t)) == 0;
    return dump_and_free(root, ok);
}

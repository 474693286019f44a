/*
 * format.h - rendering a transcript in the response formats of OpenAI's
 * audio API: json ({"text"}), text, srt, vtt, verbose_json (task, language,
 * duration, text, segments[...], words[...] when present).
 *
 * Top-level text is trimmed; segment text in verbose_json is kept as decoded
 * (leading space included), in srt/vtt cues it is trimmed, and control characters
 * and blank lines are dropped; segments with no text get no cue. verbose_json names the language
 * in full ("english", as OpenAI does) and adds language_probabilities {code:
 * p} when t->n_langs > 0. Invalid UTF-8 becomes U+FFFD, so every body is
 * valid UTF-8 (and valid JSON); non-finite numbers are written as 0.
 * Pure functions of t; thread-safe.
 */
#ifndef SD_OUTPUT_FORMAT_H
#define SD_OUTPUT_FORMAT_H

#include "util/err.h"
#include "whisper/transcript.h"

enum output_format {
    OUTPUT_JSON,
    OUTPUT_TEXT,
    OUTPUT_SRT,
    OUTPUT_VTT,
    OUTPUT_VERBOSE_JSON,
};

/* "json" | "text" | "srt" | "vtt" | "verbose_json" -> format; SD_EINVAL otherwise. */
enum sd_err output_format_parse(const char *name, enum output_format *out, struct sd_error *err);
const char *output_format_name(enum output_format f);
/* MIME type of the rendered body ("application/json", "text/plain; charset=utf-8", ...). */
const char *output_content_type(enum output_format f);
/* Renders t; returns a malloc'd NUL-terminated string (caller frees), NULL on ENOMEM. */
char *output_render(const struct transcript *t, enum output_format f);

#endif

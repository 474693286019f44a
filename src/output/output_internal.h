/*
 * output_internal.h - helpers shared by the renderers of output/: a growable
 * string buffer, UTF-8 repair, trimming and subtitle timestamps. Not part of
 * the public API (format.h is); nothing here touches a transcript.
 */
#ifndef SD_OUTPUT_INTERNAL_H
#define SD_OUTPUT_INTERNAL_H

#include <stddef.h>

#include "whisper/transcript.h"

/* Growable NUL-terminated string; after any allocation failure oom is set and appends stop. */
struct out_buf {
    char *p;
    size_t len, cap;
    int oom;
};

void out_buf_append(struct out_buf *b, const char *s, size_t n);
void out_buf_puts(struct out_buf *b, const char *s);
void out_buf_printf(struct out_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Hands the string over (caller frees), or NULL after an allocation failure. Resets b. */
char *out_buf_take(struct out_buf *b);

/* Copy of s (NULL reads as "") with every invalid UTF-8 byte replaced by U+FFFD. Caller frees. */
char *out_utf8_repair(const char *s);
/* Copy of s[0..n) without leading/trailing ASCII whitespace. Caller frees. */
char *out_trim(const char *s);

/* "HH:MM:SS<sep>mmm" (hours grow past 99 as needed); negative or NaN reads as 0. */
void out_timestamp(double seconds, char sep, char *buf, size_t buf_len);

/* The whole text (t->text, else the segments joined), trimmed and UTF-8-repaired. Caller frees. */
char *out_full_text(const struct transcript *t);

char *output_render_json(const struct transcript *t);
char *output_render_verbose_json(const struct transcript *t);
char *output_render_text(const struct transcript *t);
char *output_render_srt(const struct transcript *t);
char *output_render_vtt(const struct transcript *t);

#endif

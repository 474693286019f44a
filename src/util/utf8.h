/*
 * utf8.h - strict UTF-8 decoding of one character (no overlongs, no
 * surrogates, nothing above U+10FFFF). Shared by the tokenizer's pre-split,
 * the output renderers' repair of invalid text, and word splitting.
 */
#ifndef SD_UTIL_UTF8_H
#define SD_UTIL_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* Byte length of the valid character at s (n bytes available) and its code point in *cp; 0 if invalid. */
size_t sd_utf8_char(const uint8_t *s, size_t n, uint32_t *cp);

#endif

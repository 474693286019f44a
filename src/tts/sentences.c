/*
 * sentences.c - long text into pieces (sentences.h).
 */
#include "tts/sentences.h"

#include <ctype.h>
#include <stdint.h>
#include <string.h>

/* Bytes of the sentence end mark at s, or 0. */
static size_t end_mark(const unsigned char *s, size_t n)
{
    if (s[0] == '.' || s[0] == '!' || s[0] == '?' || s[0] == ';')
        return 1;
    static const char *const wide[] = {"\xE3\x80\x82", "\xEF\xBC\x81", "\xEF\xBC\x9F",
                                       "\xE2\x80\xA6"}; /* 。 ！ ？ … */
    for (size_t i = 0; i < sizeof(wide) / sizeof(wide[0]); i++)
        if (n >= 3 && memcmp(s, wide[i], 3) == 0)
            return 3;
    return 0;
}

static size_t skip_spaces(const unsigned char *s, size_t i, size_t n)
{
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
        i++;
    return i;
}

size_t tts_next_piece(const char *text, size_t n, size_t max_bytes)
{
    const unsigned char *s = (const unsigned char *)text;
    if (max_bytes < 8)
        max_bytes = 8;
    size_t last_space = 0;
    for (size_t i = 0; i < n; i++) {
        if (i >= max_bytes) {
            if (last_space > 0)
                return last_space;
            size_t cut = max_bytes;
            while (cut > 0 && (s[cut] & 0xC0) == 0x80) /* not inside a character */
                cut--;
            return cut > 0 ? cut : max_bytes;
        }
        if (s[i] == '\n')
            return skip_spaces(s, i + 1, n);
        if (s[i] == ' ' || s[i] == '\t')
            last_space = i + 1;
        size_t m = end_mark(s + i, n - i);
        if (m) {
            size_t j = i + m;
            while (j < n && end_mark(s + j, n - j)) /* "?!", "..." */
                j += end_mark(s + j, n - j);
            while (j < n && (s[j] == '"' || s[j] == '\'' || s[j] == ')')) /* closing quotes */
                j++;
            if (j >= n)
                return n;
            if (m == 3 || s[j] == ' ' || s[j] == '\t' || s[j] == '\n' || s[j] == '\r')
                return skip_spaces(s, j, n);
            i = j - 1;
        }
    }
    return n;
}

int tts_piece_speakable(const char *piece, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)piece[i];
        if (c >= 0x80 || isalnum(c))
            return 1;
    }
    return 0;
}

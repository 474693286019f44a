/*
 * common.c - helpers of the renderers (output_internal.h): string buffer,
 * UTF-8 repair (so no renderer can emit invalid UTF-8, which jansson would
 * refuse), trimming, subtitle timestamps. No transcript logic here.
 */
#include "output/output_internal.h"
#include "util/utf8.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void out_buf_append(struct out_buf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}

void out_buf_puts(struct out_buf *b, const char *s)
{
    out_buf_append(b, s, strlen(s));
}

void out_buf_printf(struct out_buf *b, const char *fmt, ...)
{
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->oom = 1;
        return;
    }
    if ((size_t)n < sizeof(small)) {
        out_buf_append(b, small, (size_t)n);
        return;
    }
    char *big = malloc((size_t)n + 1);
    if (!big) {
        b->oom = 1;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    out_buf_append(b, big, (size_t)n);
    free(big);
}

char *out_buf_take(struct out_buf *b)
{
    char *p = b->p;
    if (b->oom) {
        free(p);
        p = NULL;
    } else if (!p) {
        p = calloc(1, 1);
    }
    *b = (struct out_buf){0};
    return p;
}

/* Length of the valid UTF-8 sequence at s (n bytes left), 0 if invalid. */
static size_t out_utf8_len(const unsigned char *s, size_t n)
{
    uint32_t cp;
    return sd_utf8_char(s, n, &cp);
}

char *out_utf8_repair(const char *s)
{
    if (!s)
        s = "";
    size_t n = strlen(s);
    char *out = malloc(3 * n + 1); /* each bad byte becomes 3 bytes at most */
    if (!out)
        return NULL;
    const unsigned char *u = (const unsigned char *)s;
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        size_t len = out_utf8_len(u + i, n - i);
        if (len == 0) {
            memcpy(out + o, "\xEF\xBF\xBD", 3);
            o += 3;
            i++;
        } else {
            memcpy(out + o, u + i, len);
            o += len;
            i += len;
        }
    }
    out[o] = 0;
    return out;
}

static int out_is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

char *out_trim(const char *s)
{
    if (!s)
        s = "";
    size_t n = strlen(s);
    while (n && out_is_space(s[n - 1]))
        n--;
    while (n && out_is_space(*s))
        s++, n--;
    char *out = malloc(n + 1);
    if (!out)
        return NULL;
    memcpy(out, s, n);
    out[n] = 0;
    return out;
}

void out_timestamp(double seconds, char sep, char *buf, size_t buf_len)
{
    if (!(seconds > 0)) /* negative and NaN */
        seconds = 0;
    if (seconds > 1e9)
        seconds = 1e9;
    long long ms = llround(seconds * 1000.0);
    long long h = ms / 3600000, m = ms / 60000 % 60, s = ms / 1000 % 60;
    snprintf(buf, buf_len, "%02lld:%02lld:%02lld%c%03lld", h, m, s, sep, ms % 1000);
}

char *out_full_text(const struct transcript *t)
{
    if (!t)
        return calloc(1, 1);
    struct out_buf b = {0};
    if (t->text) {
        out_buf_puts(&b, t->text);
    } else {
        for (int i = 0; i < t->n_segments; i++)
            if (t->segments[i].text)
                out_buf_puts(&b, t->segments[i].text);
    }
    char *joined = out_buf_take(&b);
    if (!joined)
        return NULL;
    char *trimmed = out_trim(joined);
    free(joined);
    if (!trimmed)
        return NULL;
    char *fixed = out_utf8_repair(trimmed);
    free(trimmed);
    return fixed;
}

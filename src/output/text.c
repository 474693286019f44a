/*
 * text.c - the "text" response format: the whole transcript, trimmed, then a
 * newline (as OpenAI's API answers). No segment structure, no timestamps.
 */
#include "output/output_internal.h"

#include <stdlib.h>
#include <string.h>

char *output_render_text(const struct transcript *t)
{
    char *text = out_full_text(t);
    if (!text)
        return NULL;
    struct out_buf b = {0};
    out_buf_puts(&b, text);
    out_buf_puts(&b, "\n");
    free(text);
    return out_buf_take(&b);
}

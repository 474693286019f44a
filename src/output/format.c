/*
 * format.c - response formats of the OpenAI audio API (see format.h): name
 * parsing, content types, and dispatch to the renderers (json.c, text.c,
 * subtitle.c). Rendering never fails on odd transcripts (NULL strings, no
 * segments, invalid UTF-8, NaN times); only allocation failure returns NULL.
 */
#include "output/format.h"

#include <stdlib.h>
#include <string.h>

#include "output/output_internal.h"

static const char *const format_names[] = {"json", "text", "srt", "vtt", "verbose_json"};

enum sd_err output_format_parse(const char *name, enum output_format *out, struct sd_error *err)
{
    for (int i = 0; i < 5; i++)
        if (name && strcmp(name, format_names[i]) == 0) {
            *out = (enum output_format)i;
            return SD_OK;
        }
    return sd_fail(err, SD_EINVAL,
                   "response_format must be one of json, text, srt, vtt, verbose_json");
}

const char *output_format_name(enum output_format f)
{
    return (unsigned)f < 5 ? format_names[f] : "json";
}

const char *output_content_type(enum output_format f)
{
    switch (f) {
    case OUTPUT_JSON:
    case OUTPUT_VERBOSE_JSON: return "application/json";
    case OUTPUT_VTT: /* OpenAI serves subtitles as text/plain too */
    case OUTPUT_SRT:
    case OUTPUT_TEXT: return "text/plain; charset=utf-8";
    }
    return "text/plain; charset=utf-8";
}

char *output_render(const struct transcript *t, enum output_format f)
{
    static const struct transcript empty = {0};
    if (!t)
        t = &empty;
    switch (f) {
    case OUTPUT_JSON: return output_render_json(t);
    case OUTPUT_TEXT: return output_render_text(t);
    case OUTPUT_SRT: return output_render_srt(t);
    case OUTPUT_VTT: return output_render_vtt(t);
    case OUTPUT_VERBOSE_JSON: return output_render_verbose_json(t);
    }
    return output_render_json(t);
}

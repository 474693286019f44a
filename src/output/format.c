/* format.c - response formats (placeholder until the renderers land; see format.h). */
#include "output/format.h"

#include <stdlib.h>
#include <string.h>

enum sd_err output_format_parse(const char *name, enum output_format *out, struct sd_error *err)
{
    static const char *const names[] = {"json", "text", "srt", "vtt", "verbose_json"};
    for (int i = 0; i < 5; i++)
        if (name && strcmp(name, names[i]) == 0) {
            *out = (enum output_format)i;
            return SD_OK;
        }
    return sd_fail(err, SD_EINVAL, "response_format must be one of json, text, srt, vtt, verbose_json");
}

const char *output_format_name(enum output_format f)
{
    static const char *const names[] = {"json", "text", "srt", "vtt", "verbose_json"};
    return names[f];
}

const char *output_content_type(enum output_format f)
{
    return (f == OUTPUT_JSON || f == OUTPUT_VERBOSE_JSON) ? "application/json"
                                                         : "text/plain; charset=utf-8";
}

char *output_render(const struct transcript *t, enum output_format f)
{
    (void)f;
    return strdup(t && t->text ? t->text : "");
}

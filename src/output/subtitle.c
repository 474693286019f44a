/*
 * subtitle.c - the "srt" and "vtt" response formats: one cue per segment with
 * non-empty text, numbered from 1 (SRT), times HH:MM:SS,mmm / HH:MM:SS.mmm.
 * Cue text is trimmed, UTF-8-repaired, stripped of control characters and
 * has its blank lines removed (a blank line would end the cue early); VTT
 * escapes & < > as the WebVTT syntax requires (which also rules out "-->"
 * inside a cue). Does not split
 * long segments into shorter cues or build cues from words.
 */
#include "output/output_internal.h"

#include <stdlib.h>
#include <string.h>

/* Appends the cue text of s: no empty lines, no CR or other controls; escaped for VTT if vtt. */
static void append_cue_text(struct out_buf *b, const char *s, int vtt)
{
    int at_line_start = 1, pending_newline = 0;
    for (; *s; s++) {
        char c = *s;
        if (c == '\r' || (c != '\n' && c != '\t' && ((unsigned char)c < 0x20 || c == 0x7F)))
            continue; /* control bytes (the byte-level vocabulary can emit them) upset players */
        if (c == '\n') {
            if (!at_line_start)
                pending_newline = 1;
            at_line_start = 1;
            continue;
        }
        if (pending_newline) {
            out_buf_puts(b, "\n");
            pending_newline = 0;
        }
        at_line_start = 0;
        if (vtt && c == '&')
            out_buf_puts(b, "&amp;");
        else if (vtt && c == '<')
            out_buf_puts(b, "&lt;");
        else if (vtt && c == '>')
            out_buf_puts(b, "&gt;");
        else
            out_buf_append(b, &c, 1);
    }
}

static char *render_cues(const struct transcript *t, int vtt)
{
    struct out_buf b = {0};
    const char sep = vtt ? '.' : ',';
    int index = 0;
    if (vtt)
        out_buf_puts(&b, "WEBVTT\n\n");
    for (int i = 0; i < t->n_segments; i++) {
        const struct transcript_segment *s = &t->segments[i];
        char *trimmed = out_trim(s->text);
        char *text = trimmed ? out_utf8_repair(trimmed) : NULL;
        free(trimmed);
        if (!text) {
            b.oom = 1;
            break;
        }
        if (text[0]) {
            char t0[32], t1[32];
            out_timestamp(s->start, sep, t0, sizeof(t0));
            out_timestamp(s->end > s->start ? s->end : s->start, sep, t1, sizeof(t1));
            if (!vtt)
                out_buf_printf(&b, "%d\n", ++index);
            out_buf_printf(&b, "%s --> %s\n", t0, t1);
            append_cue_text(&b, text, vtt);
            out_buf_puts(&b, "\n\n");
        }
        free(text);
    }
    return out_buf_take(&b);
}

char *output_render_srt(const struct transcript *t)
{
    return render_cues(t, 0);
}

char *output_render_vtt(const struct transcript *t)
{
    return render_cues(t, 1);
}

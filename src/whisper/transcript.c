/* transcript.c - freeing a struct transcript (see transcript.h). */
#include "whisper/transcript.h"

#include <stdlib.h>

void transcript_destroy(struct transcript *t)
{
    if (!t)
        return;
    for (int i = 0; i < t->n_segments; i++) {
        struct transcript_segment *s = &t->segments[i];
        free(s->text);
        free(s->tokens);
        for (int w = 0; w < s->n_words; w++)
            free(s->words[w].word);
        free(s->words);
    }
    free(t->segments);
    free(t->task);
    free(t->language);
    free(t->text);
    free(t->lang_codes);
    free(t->lang_probs);
    free(t);
}

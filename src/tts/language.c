/* language.c - guessing a text's language from its common words (language.h). */
#include "tts/language.h"

#include <ctype.h>
#include <stdint.h>
#include <string.h>

#include "util/utf8.h"

/*
 * Each language's most frequent short words (articles, pronouns,
 * prepositions): a few sentences of running text hold several. Words are
 * compared lowercased; ASCII-only lowercasing is enough, since the accented
 * words listed are compared byte for byte as written in lowercase.
 */
static const struct {
    const char *code;
    const char *words; /* space-separated, with a space at both ends */
} stopwords[] = {
    {"en", " the and is are of to in that it you was for with this have not be on "},
    {"de", " der die das und ist nicht ich sie es ein eine mit auf den dem zu von sich wir "},
    {"fr", " le la les et est une des du que qui pas je vous nous dans pour sur au avec "},
    {"es", " el la los las y es una que del por para con no se lo muy como pero está "},
    {"it", " il lo gli e è una che di non per con sono della questo anche come ma "},
    {"pt", " o os as e é uma que do da não para com em um mas você são isso "},
    {"nl", " de het een en is niet dat ik je van op te met zijn voor maar ook "},
    {"pl", " i w nie na się że jest to z do jak ale co tak czy już jestem "},
};
#define N_LANGS (sizeof(stopwords) / sizeof(stopwords[0]))

static int score_word(const char *word, size_t n, int *scores)
{
    char key[24];
    if (n == 0 || n + 2 >= sizeof(key))
        return 0;
    key[0] = ' ';
    for (size_t i = 0; i < n; i++)
        key[i + 1] = (char)tolower((unsigned char)word[i]);
    key[n + 1] = ' ';
    key[n + 2] = '\0';
    for (size_t l = 0; l < N_LANGS; l++)
        if (strstr(stopwords[l].words, key))
            scores[l]++;
    return 1;
}

const char *tts_guess_language(const char *text, size_t len)
{
    int scores[N_LANGS] = {0};
    size_t cyrillic = 0, letters = 0, start = 0;
    for (size_t i = 0; i <= len;) {
        uint32_t cp = ' ';
        size_t k = i < len ? sd_utf8_char((const uint8_t *)text + i, len - i, &cp) : 1;
        if (k == 0) { /* not UTF-8: treat the byte as a separator */
            cp = ' ';
            k = 1;
        }
        bool letter = (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') || cp >= 0xC0;
        if (cp >= 0x400 && cp <= 0x4FF)
            cyrillic++;
        if (letter) {
            letters++;
        } else {
            score_word(text + start, i - start, scores);
            start = i + k;
        }
        i += k;
    }
    if (letters && cyrillic * 2 > letters)
        return "ru";
    size_t best = 0;
    for (size_t l = 1; l < N_LANGS; l++)
        if (scores[l] > scores[best])
            best = l;
    return scores[best] > 0 ? stopwords[best].code : "en";
}

const struct tts_voice *tts_voice_for_language(const char *lang)
{
    if (!lang)
        return NULL;
    if (strcmp(lang, "en") == 0)
        return tts_voice_find(TTS_DEFAULT_VOICE);
    size_t n = strlen(lang);
    for (size_t i = 0; i < tts_voice_count(); i++) {
        const struct tts_voice *v = tts_voice_at(i);
        if (strncmp(v->language, lang, n) == 0 && (v->language[n] == '\0' || v->language[n] == '-'))
            return v;
    }
    return NULL;
}

/*
 * language.h - which language a text is in, well enough to pick a voice:
 * the languages the voice table (voices.def) speaks, told apart by their
 * most common short words (and Cyrillic script for Russian). Used when a
 * request asks for the voice "auto". Pure functions; thread-safe.
 */
#ifndef SD_TTS_LANGUAGE_H
#define SD_TTS_LANGUAGE_H
#include <stddef.h>

#include "tts/tts.h"

#define TTS_AUTO_VOICE "auto"

/*
 * The text's language as a two-letter code ("en", "de", "fr", "es", "it",
 * "pt", "nl", "pl", "ru"), or "en" when nothing points elsewhere.
 */
const char *tts_guess_language(const char *text, size_t len);

/*
 * The voice for a language code: English gets the default voice (flite's
 * are far clearer than espeak-ng's), another language the first voice of
 * the table that speaks it; NULL when none does.
 */
const struct tts_voice *tts_voice_for_language(const char *lang);
#endif

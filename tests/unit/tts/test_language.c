/* test_language.c - the text's language and the voice picked for it (voice "auto"). */
#include <string.h>

#include "check.h"
#include "tts/language.h"

static const char *guess(const char *text)
{
    return tts_guess_language(text, strlen(text));
}

TEST(language_guessed_from_common_words)
{
    CHECK_STR(guess("The meeting is on Tuesday and we have to be there on time."), "en");
    CHECK_STR(guess("Ich glaube, das ist nicht die richtige Antwort auf die Frage."), "de");
    CHECK_STR(guess("Je pense que le rendez-vous est pour demain dans la matinée."), "fr");
    CHECK_STR(guess("Creo que la reunión es el martes por la tarde, pero no estoy seguro."), "es");
    CHECK_STR(guess("Penso che il treno per Milano non sia ancora partito, ma è tardi."), "it");
    CHECK_STR(guess("Eu acho que o ônibus não passa por aqui, mas você pode perguntar."), "pt");
    CHECK_STR(guess("Ik denk dat het niet te laat is voor een kopje koffie."), "nl");
    CHECK_STR(guess("Myślę, że to nie jest dobry pomysł, ale co zrobić."), "pl");
    CHECK_STR(guess("Я думаю, что это хорошая идея."), "ru");
}

TEST(language_unknown_or_empty_is_english)
{
    CHECK_STR(guess(""), "en");
    CHECK_STR(guess("12345 !!! ..."), "en");
    CHECK_STR(tts_guess_language("\xff\xfe\x80 der", 8), "de"); /* bad bytes are separators */
}

TEST(voice_for_language)
{
    CHECK_STR(tts_voice_for_language("en")->id, TTS_DEFAULT_VOICE);
    CHECK_STR(tts_voice_for_language("de")->id, "espeak-de");
    CHECK_STR(tts_voice_for_language("ru")->id, "espeak-ru");
    CHECK(tts_voice_for_language("xx") == NULL);
    CHECK(tts_voice_for_language(NULL) == NULL);
}

/*
 * lang.c - the language table of Whisper (see lang.h): the order of the
 * language tokens after <|startoftranscript|> in multilingual models, which
 * the released checkpoints fix; only large-v3 has the 100th ("yue").
 * Lookup only; choosing or detecting a language happens elsewhere.
 */
#include "whisper/lang.h"

#include <stddef.h>
#include <strings.h>

static const struct {
    const char *code, *name;
} lang_table[WHISPER_LANG_COUNT] = {
    {"en", "english"},    {"zh", "chinese"},     {"de", "german"},      {"es", "spanish"},
    {"ru", "russian"},    {"ko", "korean"},      {"fr", "french"},      {"ja", "japanese"},
    {"pt", "portuguese"}, {"tr", "turkish"},     {"pl", "polish"},      {"ca", "catalan"},
    {"nl", "dutch"},      {"ar", "arabic"},      {"sv", "swedish"},     {"it", "italian"},
    {"id", "indonesian"}, {"hi", "hindi"},       {"fi", "finnish"},     {"vi", "vietnamese"},
    {"he", "hebrew"},     {"uk", "ukrainian"},   {"el", "greek"},       {"ms", "malay"},
    {"cs", "czech"},      {"ro", "romanian"},    {"da", "danish"},      {"hu", "hungarian"},
    {"ta", "tamil"},      {"no", "norwegian"},   {"th", "thai"},        {"ur", "urdu"},
    {"hr", "croatian"},   {"bg", "bulgarian"},   {"lt", "lithuanian"},  {"la", "latin"},
    {"mi", "maori"},      {"ml", "malayalam"},   {"cy", "welsh"},       {"sk", "slovak"},
    {"te", "telugu"},     {"fa", "persian"},     {"lv", "latvian"},     {"bn", "bengali"},
    {"sr", "serbian"},    {"az", "azerbaijani"}, {"sl", "slovenian"},   {"kn", "kannada"},
    {"et", "estonian"},   {"mk", "macedonian"},  {"br", "breton"},      {"eu", "basque"},
    {"is", "icelandic"},  {"hy", "armenian"},    {"ne", "nepali"},      {"mn", "mongolian"},
    {"bs", "bosnian"},    {"kk", "kazakh"},      {"sq", "albanian"},    {"sw", "swahili"},
    {"gl", "galician"},   {"mr", "marathi"},     {"pa", "punjabi"},     {"si", "sinhala"},
    {"km", "khmer"},      {"sn", "shona"},       {"yo", "yoruba"},      {"so", "somali"},
    {"af", "afrikaans"},  {"oc", "occitan"},     {"ka", "georgian"},    {"be", "belarusian"},
    {"tg", "tajik"},      {"sd", "sindhi"},      {"gu", "gujarati"},    {"am", "amharic"},
    {"yi", "yiddish"},    {"lo", "lao"},         {"uz", "uzbek"},       {"fo", "faroese"},
    {"ht", "haitian creole"}, {"ps", "pashto"},  {"tk", "turkmen"},     {"nn", "nynorsk"},
    {"mt", "maltese"},    {"sa", "sanskrit"},    {"lb", "luxembourgish"}, {"my", "myanmar"},
    {"bo", "tibetan"},    {"tl", "tagalog"},     {"mg", "malagasy"},    {"as", "assamese"},
    {"tt", "tatar"},      {"haw", "hawaiian"},   {"ln", "lingala"},     {"ha", "hausa"},
    {"ba", "bashkir"},    {"jw", "javanese"},    {"su", "sundanese"},   {"yue", "cantonese"},
};

const char *whisper_lang_code(int index)
{
    return index >= 0 && index < WHISPER_LANG_COUNT ? lang_table[index].code : NULL;
}

const char *whisper_lang_name(int index)
{
    return index >= 0 && index < WHISPER_LANG_COUNT ? lang_table[index].name : NULL;
}

int whisper_lang_index(const char *code_or_name)
{
    if (!code_or_name)
        return -1;
    for (int i = 0; i < WHISPER_LANG_COUNT; i++)
        if (strcasecmp(code_or_name, lang_table[i].code) == 0 ||
            strcasecmp(code_or_name, lang_table[i].name) == 0)
            return i;
    return -1;
}

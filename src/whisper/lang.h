/*
 * lang.h - Whisper's language table: the codes of the language tokens in
 * token order (index 0 = "en" = sot + 1) and their English names. Constant
 * data, thread-safe. The tokenizer maps ids to indices (tokenizer.h).
 */
#ifndef SD_WHISPER_LANG_H
#define SD_WHISPER_LANG_H

/* Languages Whisper knows: 100 (large-v3 adds "yue"); 99 for older multilingual models. */
#define WHISPER_LANG_COUNT 100

/* Code ("de") of language index i, or NULL if out of range. */
const char *whisper_lang_code(int index);
/* English name ("german") of language index i, or NULL. */
const char *whisper_lang_name(int index);
/* Index of a code or English name, case-insensitive ("DE", "german"); -1 if unknown. */
int whisper_lang_index(const char *code_or_name);

#endif

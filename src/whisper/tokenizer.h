/*
 * tokenizer.h - Whisper's byte-level BPE (GPT-2 / tiktoken rules).
 *
 * encode: GPT-2 pre-split pattern, then within each piece repeatedly merge
 * the adjacent pair whose concatenation has the lowest rank (rank = token id).
 * decode: concatenates the tokens' raw bytes (a UTF-8 character may span
 * tokens, so callers join before validating). Special tokens (>= eot) have no
 * text: decode skips them; tok_special_name() gives e.g. "<|en|>".
 * decode(encode(s)) == s for any bytes (invalid UTF-8 included).
 * Immutable after creation; safe to share between threads.
 *
 * Pre-split classes: \s, \p{L}, \p{N} and "other" for every code point, from
 * a range table generated from Unicode 16 data (exact for assigned code
 * points; unassigned ones take their neighbour's class). Bytes that are not
 * valid UTF-8 count as "other", one byte each.
 * Lossy vocabularies (whisper.cpp's test files store some tokens as U+FFFD):
 * ids 0..255 are always the 256 byte tokens in GPT-2 order, and tokens whose
 * stored bytes contain U+FFFD never take part in merges, so every id encode
 * emits means exactly the bytes it stands for.
 */
#ifndef SD_WHISPER_TOKENIZER_H
#define SD_WHISPER_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "util/err.h"
#include "whisper/model.h"

struct tokenizer;

/* Builds from the model's vocabulary (copied; the model may be freed after). */
enum sd_err tok_create(const struct whisper_vocab *vocab, const struct whisper_special_tokens *sp,
                       int32_t n_vocab, struct tokenizer **out, struct sd_error *err);
void tok_destroy(struct tokenizer *t);

/* Encodes text (any bytes) into ids; *out is malloc'd, caller frees. */
enum sd_err tok_encode(const struct tokenizer *t, const char *text, size_t len, int32_t **out,
                       int *n_out, struct sd_error *err);
/* Raw bytes of one text token (NULL, *len 0 for special ids). Borrowed. */
const uint8_t *tok_bytes(const struct tokenizer *t, int32_t id, size_t *len);
/* Appends the bytes of ids (special tokens skipped) to a malloc'd NUL-terminated string. */
char *tok_decode(const struct tokenizer *t, const int32_t *ids, int n);
/* Language code of a language token ("en"), or NULL. */
const char *tok_language_code(const struct tokenizer *t, int32_t id);
/* Id of the language token for a code ("de", case-insensitive) or English name, or -1. */
int32_t tok_language_id(const struct tokenizer *t, const char *code);
/* Number of language tokens (0 for English-only models). */
int tok_n_languages(const struct tokenizer *t);
/* Special tokens of the model this tokenizer was built for. Borrowed. */
const struct whisper_special_tokens *tok_special(const struct tokenizer *t);
/* Text tokens are ids 0 .. tok_n_text()-1 (= eot). */
int32_t tok_n_text(const struct tokenizer *t);
/*
 * Writes the name of a special id ("<|endoftext|>", "<|en|>", "<|1.24|>") to
 * buf (NUL-terminated, truncated to buf_len). Returns 1 if id is special, 0
 * otherwise (buf then holds "").
 */
int tok_special_name(const struct tokenizer *t, int32_t id, char *buf, size_t buf_len);

#endif

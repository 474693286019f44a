/*
 * sentences.h - cutting long text into pieces synthesised one at a time,
 * so memory stays bounded by a piece and audio can leave before the text
 * is done. A piece ends after a sentence's end mark (. ! ? ; and their
 * CJK and ellipsis forms) followed by a space or the end, or at a line
 * break; a piece with no end within max_bytes is cut at its last space,
 * else at max_bytes on a character boundary. Pure functions: no state.
 */
#ifndef SD_TTS_SENTENCES_H
#define SD_TTS_SENTENCES_H

#include <stddef.h>

#define TTS_PIECE_MAX_BYTES 600

/* Length in bytes of the piece starting at text (n bytes left, valid UTF-8); 0 only when n is 0. */
size_t tts_next_piece(const char *text, size_t n, size_t max_bytes);
/* True when the piece has something to say (not only spaces and punctuation). */
int tts_piece_speakable(const char *piece, size_t n);

#endif

/*
 * encode.h - synthesised PCM into the response formats of
 * /v1/audio/speech, written to a callback as it is produced (so HTTP can
 * stream it): resampled to 24 kHz mono by libswresample, then
 *   mp3  (libmp3lame via libavcodec, MPEG audio stream)
 *   opus (libopus in Ogg)          aac (AAC-LC in ADTS)
 *   flac (raw FLAC stream)         wav (16-bit PCM, streaming header)
 *   pcm  (raw 24 kHz 16-bit mono little-endian, as OpenAI)
 * The output is never seeked: wav's RIFF and data sizes are 0xFFFFFFFF
 * (the length is unknown when the header leaves), and FLAC's STREAMINFO
 * carries no total sample count.
 *
 * Ownership: the caller owns the encoder (tts_encoder_destroy). Threads: one
 * encoder belongs to one thread at a time.
 */
#ifndef SD_TTS_ENCODE_H
#define SD_TTS_ENCODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

#define TTS_OUT_RATE 24000

enum tts_format { TTS_MP3, TTS_OPUS, TTS_AAC, TTS_FLAC, TTS_WAV, TTS_PCM, TTS_N_FORMATS };

/* "mp3" -> TTS_MP3; false if unknown. */
bool tts_format_parse(const char *name, enum tts_format *out);
const char *tts_format_name(enum tts_format f);
/* The Content-Type OpenAI sends for it ("audio/mpeg"). */
const char *tts_format_mime(enum tts_format f);
/* Every format's name, "mp3, opus, ..." (for error messages). */
const char *tts_format_list(void);

/* Receives encoded bytes; false stops the encoder (SD_ECANCELLED). */
typedef bool (*tts_write_fn)(void *user, const uint8_t *data, size_t n);

struct tts_encoder;

enum sd_err tts_encoder_create(enum tts_format f, tts_write_fn write, void *user,
                               struct tts_encoder **out, struct sd_error *err);
/* n samples of 16-bit mono at rate Hz (any rate; it may change between calls). */
enum sd_err tts_encoder_feed(struct tts_encoder *e, const int16_t *pcm, size_t n, int rate,
                             struct sd_error *err);
/* Pushes out what the container holds so far (at the end of a sentence). */
enum sd_err tts_encoder_flush(struct tts_encoder *e, struct sd_error *err);
/* Encodes the rest and writes the trailer. */
enum sd_err tts_encoder_finish(struct tts_encoder *e, struct sd_error *err);
/* 24 kHz samples encoded so far. */
int64_t tts_encoder_samples(const struct tts_encoder *e);
void tts_encoder_destroy(struct tts_encoder *e);

#endif

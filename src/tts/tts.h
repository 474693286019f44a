/*
 * tts.h - speech synthesis with the Debian libraries linked in: flite
 * (libflite, English voices kal16, rms, slt, awb) and espeak-ng
 * (libespeak-ng, many languages). Text in, 16-bit mono PCM out at the
 * voice's own rate (encode.h resamples and encodes it).
 *
 * One struct tts per process is enough: it registers flite's voices once
 * (flite keeps each voice as a global object, so a second handle shares
 * them) and initialises espeak-ng once, on its first use (its audio-device
 * object reaches for PulseAudio even when it only fills buffers). Global state the libraries force,
 * none of it ours: espeak-ng keeps its whole state in library globals and
 * is not thread-safe (the handle owns the mutex that serialises every
 * espeak-ng call); flite's clustergen voices (rms, slt, awb) draw noise
 * from libc rand(), so the handle reseeds it per utterance under a second
 * mutex, which makes every request's audio reproducible byte for byte.
 *
 * Threads: tts_synthesize may be called from any number of threads at
 * once; each flite call has its own utterance (the speed is set on the
 * utterance, never on the shared voice): kal16 runs concurrently, the
 * clustergen voices' synthesis step one at a time, espeak-ng one call at a
 * time.
 */
#ifndef SD_TTS_TTS_H
#define SD_TTS_TTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

enum tts_engine_kind { TTS_FLITE, TTS_ESPEAK };

struct tts_voice {
    const char *id;            /* "flite-slt" */
    enum tts_engine_kind engine;
    const char *engine_voice;  /* the library's name for it: "slt", "en-us" */
    const char *language;      /* BCP 47 */
    const char *gender;
    const char *description;
};

struct tts;

/* The lowest measured WER of the four flite voices (docs/PERFORMANCE.md). */
#define TTS_DEFAULT_VOICE "flite-rms"
#define TTS_SPEED_MIN 0.25
#define TTS_SPEED_MAX 4.0

/* The voice table (voices.def). */
size_t tts_voice_count(void);
const struct tts_voice *tts_voice_at(size_t i);
/* A voice by our id or an OpenAI name (case-sensitive, as OpenAI); NULL if unknown. */
const struct tts_voice *tts_voice_find(const char *name);
/* The OpenAI name table: name i and the voice it maps to; false past the end. */
bool tts_openai_voice_at(size_t i, const char **name, const struct tts_voice **voice);
const char *tts_engine_name(enum tts_engine_kind e);
/* The voice's sample rate in Hz (flite: 16000; espeak-ng: what it reported). */
int tts_voice_rate(const struct tts *t, const struct tts_voice *v);
/* "flite 2.2, espeak-ng 1.51": part of a cache key and of /v1/models. */
const char *tts_version(const struct tts *t);

/* Caller owns *out: tts_close(). */
enum sd_err tts_open(struct tts **out, struct sd_error *err);
void tts_close(struct tts *t);

/*
 * Receives the audio as it is made: n samples of 16-bit mono at rate Hz.
 * Returns false to stop (tts_synthesize then returns SD_ECANCELLED).
 */
typedef bool (*tts_pcm_fn)(void *user, const int16_t *pcm, size_t n, int rate);

/*
 * Speaks text (UTF-8, one sentence or a few: the caller splits long text,
 * sentences.h) with voice at speed (TTS_SPEED_MIN..MAX; 1 is the voice's
 * own pace). flite stretches durations by 1/speed; espeak-ng's rate is
 * 175 words per minute times speed, clamped to what it supports (80..450).
 */
enum sd_err tts_synthesize(struct tts *t, const struct tts_voice *v, const char *text,
                           double speed, tts_pcm_fn fn, void *user, struct sd_error *err);

#endif

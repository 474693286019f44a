/*
 * speech.h - the text-to-speech engine of the pipeline, beside
 * transcription: text -> pieces at sentence boundaries (tts/sentences.h)
 * -> synthesis one piece at a time (tts/, flite or espeak-ng) -> encoding
 * (tts/encode.h) written to a callback as each piece is done. Memory stays
 * bounded by one piece, and the first bytes leave after the first piece.
 *
 * The engine (struct tts) is loaded once by pipeline.c through
 * speech_engine_ops, or opened alone by the CLI (tts_open), and shared by
 * every thread; it needs no per-worker state. A speech_run belongs to one
 * thread at a time. Runs take speech parameters, never HTTP structs; the
 * parameters are checked here, once, for the API and the CLI alike.
 */
#ifndef SD_PIPELINE_SPEECH_H
#define SD_PIPELINE_SPEECH_H

#include <stdbool.h>
#include <stddef.h>

#include "pipeline/pipeline.h"
#include "tts/encode.h"
#include "tts/tts.h"
#include "util/err.h"

extern const struct pipeline_engine_ops speech_engine_ops;

#define SPEECH_INPUT_MAX_CHARS 4096
#define SPEECH_PARAM_MAX 32

struct speech_params {
    const struct tts_voice *voice;
    enum tts_format format;
    double speed;
};

/*
 * Checks a request: input 1..4096 characters of valid UTF-8 without control
 * characters (tab and line breaks allowed); voice our id, an OpenAI name or
 * "auto" (the voice for the text's language, tts/language.h) (NULL: the
 * default); format one of tts/encode.h's (NULL: mp3); speed
 * 0.25..4.0. On failure param (SPEECH_PARAM_MAX bytes) names the field.
 */
enum sd_err speech_params_check(const char *input, size_t input_len, const char *voice,
                                const char *format, double speed, struct speech_params *out,
                                char *param, struct sd_error *err);

struct speech_run;

/* Starts a run over a copy of text; nothing is synthesised yet. Caller owns *out. */
enum sd_err speech_run_start(struct tts *engine, const char *text, size_t len,
                             const struct speech_params *p, tts_write_fn write, void *user,
                             struct speech_run **out, struct sd_error *err);
/*
 * Synthesises and encodes the next piece (its bytes go to write before this
 * returns); after the last piece it finishes the container and sets *done.
 */
enum sd_err speech_run_step(struct speech_run *r, bool *done, struct sd_error *err);
/* Seconds of audio produced so far. */
double speech_run_audio_s(const struct speech_run *r);
void speech_run_destroy(struct speech_run *r);

/* A whole run at once (the CLI). */
enum sd_err speech_synthesize(struct tts *engine, const char *text, size_t len,
                              const struct speech_params *p, tts_write_fn write, void *user,
                              double *audio_s, struct sd_error *err);

#endif

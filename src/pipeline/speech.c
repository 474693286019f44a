/*
 * speech.c - the speech engine of the pipeline (speech.h).
 */
#include "pipeline/speech.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tts/language.h"
#include "tts/sentences.h"
#include "util/utf8.h"

static enum sd_err speech_load(const struct pipeline_opts *o, void **engine,
                               struct sd_error *err)
{
    (void)o;
    return tts_open((struct tts **)engine, err);
}

static void speech_unload(void *engine)
{
    tts_close(engine);
}

static const char *speech_describe(const void *engine)
{
    return tts_version(engine);
}

/* Synthesis keeps no per-worker state: the engine is shared, a run is per request. */
static enum sd_err speech_state_create(void *engine, void **state, struct sd_error *err)
{
    (void)engine;
    (void)err;
    *state = NULL;
    return SD_OK;
}

static void speech_state_destroy(void *state)
{
    (void)state;
}

const struct pipeline_engine_ops speech_engine_ops = {
    .kind = "speech",
    .load = speech_load,
    .unload = speech_unload,
    .describe = speech_describe,
    .state_create = speech_state_create,
    .state_destroy = speech_state_destroy,
};

static enum sd_err bad(struct sd_error *err, char *param, const char *name, const char *msg)
{
    snprintf(param, SPEECH_PARAM_MAX, "%s", name);
    return sd_fail(err, SD_EINVAL, "%s", msg);
}

enum sd_err speech_params_check(const char *input, size_t input_len, const char *voice,
                                const char *format, double speed, struct speech_params *out,
                                char *param, struct sd_error *err)
{
    param[0] = '\0';
    if (!input || input_len == 0)
        return bad(err, param, "input", "input must not be empty");
    size_t chars = 0, speakable = 0;
    for (size_t i = 0; i < input_len;) {
        uint32_t cp = 0;
        size_t k = sd_utf8_char((const uint8_t *)input + i, input_len - i, &cp);
        if (k == 0)
            return bad(err, param, "input", "input is not valid UTF-8");
        if ((cp < 0x20 && cp != '\t' && cp != '\n' && cp != '\r') || (cp >= 0x7F && cp < 0xA0))
            return bad(err, param, "input", "input contains a control character");
        if (cp > ' ')
            speakable++;
        chars++;
        i += k;
    }
    if (chars > SPEECH_INPUT_MAX_CHARS) {
        char msg[128];
        snprintf(msg, sizeof(msg), "input is %zu characters; the most is %d", chars,
                 SPEECH_INPUT_MAX_CHARS);
        return bad(err, param, "input", msg);
    }
    if (speakable == 0)
        return bad(err, param, "input", "input has nothing to say (only spaces)");
    if (voice && strcmp(voice, TTS_AUTO_VOICE) == 0) /* by the text's language */
        out->voice = tts_voice_for_language(tts_guess_language(input, input_len));
    else
        out->voice = tts_voice_find(voice ? voice : TTS_DEFAULT_VOICE);
    if (!out->voice)
        return bad(err, param, "voice",
                   "unknown voice; GET /v1/audio/voices lists ours (OpenAI's names are accepted)");
    if (!format)
        out->format = TTS_MP3;
    else if (!tts_format_parse(format, &out->format)) {
        char msg[128];
        snprintf(msg, sizeof(msg), "unknown response_format; one of %s", tts_format_list());
        return bad(err, param, "response_format", msg);
    }
    if (!(speed >= TTS_SPEED_MIN && speed <= TTS_SPEED_MAX))
        return bad(err, param, "speed", "speed must be between 0.25 and 4.0");
    out->speed = speed;
    return SD_OK;
}

struct speech_run {
    struct tts *engine;
    struct speech_params p;
    char *text;
    size_t len, pos;
    struct tts_encoder *enc;
    enum sd_err enc_rc;        /* the encoder's failure inside a synthesis callback */
    struct sd_error enc_err;
    bool done;
};

enum sd_err speech_run_start(struct tts *engine, const char *text, size_t len,
                             const struct speech_params *p, tts_write_fn write, void *user,
                             struct speech_run **out, struct sd_error *err)
{
    struct speech_run *r = calloc(1, sizeof(*r));
    if (!r || !(r->text = malloc(len + 1))) {
        free(r);
        return sd_fail(err, SD_ENOMEM, "speech run");
    }
    memcpy(r->text, text, len);
    r->text[len] = '\0';
    r->len = len;
    r->engine = engine;
    r->p = *p;
    enum sd_err rc = tts_encoder_create(p->format, write, user, &r->enc, err);
    if (rc != SD_OK) {
        speech_run_destroy(r);
        return rc;
    }
    *out = r;
    return SD_OK;
}

static bool to_encoder(void *user, const int16_t *pcm, size_t n, int rate)
{
    struct speech_run *r = user;
    r->enc_rc = tts_encoder_feed(r->enc, pcm, n, rate, &r->enc_err);
    return r->enc_rc == SD_OK;
}

enum sd_err speech_run_step(struct speech_run *r, bool *done, struct sd_error *err)
{
    *done = r->done;
    if (r->done)
        return SD_OK;
    /* the next piece that has something to say; punctuation alone is skipped */
    while (r->pos < r->len) {
        size_t n = tts_next_piece(r->text + r->pos, r->len - r->pos, TTS_PIECE_MAX_BYTES);
        char *piece = r->text + r->pos;
        r->pos += n;
        if (!tts_piece_speakable(piece, n))
            continue;
        char saved = piece[n];
        piece[n] = '\0';
        enum sd_err rc = tts_synthesize(r->engine, r->p.voice, piece, r->p.speed, to_encoder, r,
                                        err);
        piece[n] = saved;
        if (rc == SD_ECANCELLED && r->enc_rc != SD_OK) /* the encoder stopped it: say why */
            return sd_fail(err, r->enc_rc, "%s", r->enc_err.msg);
        if (rc != SD_OK)
            return rc;
        return tts_encoder_flush(r->enc, err);
    }
    enum sd_err rc = tts_encoder_finish(r->enc, err);
    if (rc == SD_OK)
        r->done = *done = true;
    return rc;
}

double speech_run_audio_s(const struct speech_run *r)
{
    return (double)tts_encoder_samples(r->enc) / TTS_OUT_RATE;
}

void speech_run_destroy(struct speech_run *r)
{
    if (!r)
        return;
    tts_encoder_destroy(r->enc);
    free(r->text);
    free(r);
}

enum sd_err speech_synthesize(struct tts *engine, const char *text, size_t len,
                              const struct speech_params *p, tts_write_fn write, void *user,
                              double *audio_s, struct sd_error *err)
{
    struct speech_run *r = NULL;
    enum sd_err rc = speech_run_start(engine, text, len, p, write, user, &r, err);
    bool done = false;
    while (rc == SD_OK && !done)
        rc = speech_run_step(r, &done, err);
    if (audio_s && r)
        *audio_s = speech_run_audio_s(r);
    speech_run_destroy(r);
    return rc;
}

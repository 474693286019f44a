/*
 * passes.h - one transcription over a recording that is never held whole:
 * the audio is played from its source several times, in order, and each
 * pass keeps only what it needs (a bounded buffer, plus values that grow
 * slowly with the length: VAD probabilities, 450 KB per hour, and the
 * transcript itself):
 *
 *   1. the length, and with a VAD model the speech probabilities -> spans;
 *   2. the log-mel maximum of what the decoder will hear (its global
 *      normalisation needs the whole clip before the first window);
 *   3. the windows, each decoded as soon as its 30 s of audio are in.
 *
 * With a VAD model only the speech spans are heard, packed together
 * (vad/pack.h) and every time mapped back; a recording without speech
 * gives an empty transcript without running the decoder. The transcript is
 * identical to transcribing the whole recording held in memory.
 * Private to the pipeline (transcription.c).
 */
#ifndef SD_PIPELINE_PASSES_H
#define SD_PIPELINE_PASSES_H

#include <stddef.h>

#include "util/err.h"
#include "vad/vad.h"
#include "whisper/transcribe.h"

/* Receives the next samples of a pass (valid during the call); anything but SD_OK stops it. */
typedef enum sd_err (*pcm_sink_fn)(void *user, const float *pcm, size_t n, struct sd_error *err);

/* A recording that can be played from the start, in order, as often as asked. */
struct pcm_source {
    /* One pass: every sample to sink, in order, in chunks of any size. */
    enum sd_err (*play)(void *self, pcm_sink_fn sink, void *sink_user, struct sd_error *err);
    void *self;
};

/*
 * Transcribes src with state st (vad NULL: every sample is heard). p's
 * progress callback sees the whole run (the first passes count for a few
 * percent) and may cancel it. On SD_OK the caller owns *out; *n_samples is
 * the recording's length.
 */
enum sd_err transcribe_source(struct whisper_state *st, const struct tokenizer *tok,
                              const struct vad_model *vad, const struct vad_params *vp,
                              const struct pcm_source *src, const struct transcribe_params *p,
                              struct transcript **out, size_t *n_samples, struct sd_error *err);

#endif

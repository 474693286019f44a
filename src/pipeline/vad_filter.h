/*
 * vad_filter.h - transcription with the VAD filter: only the speech spans
 * that Silero VAD finds are packed together and sent to the engine; every
 * timestamp is mapped back to the original audio's time. Audio with no
 * speech gives an empty transcript without running the decoder.
 * Private to the pipeline (transcription.c).
 */
#ifndef SD_PIPELINE_VAD_FILTER_H
#define SD_PIPELINE_VAD_FILTER_H

#include <stddef.h>

#include "util/err.h"
#include "vad/vad.h"
#include "whisper/transcribe.h"

/*
 * Like transcribe_pcm; with vad == NULL it is exactly transcribe_pcm.
 * On SD_OK the caller owns *out: transcript_destroy().
 */
enum sd_err transcribe_pcm_vad(struct whisper_state *st, const struct tokenizer *tok,
                               const struct vad_model *vad, const struct vad_params *vp,
                               const float *pcm, size_t n_samples,
                               const struct transcribe_params *p, struct transcript **out,
                               struct sd_error *err);

#endif

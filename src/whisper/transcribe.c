/* transcribe.c - whole-file transcription (being written; see transcribe.h). */
#include "whisper/transcribe.h"

struct transcribe_params transcribe_params_default(void)
{
    struct transcribe_params p = {
        .task = TASK_TRANSCRIBE,
        .language = NULL,
        .beam_size = 5,
        .best_of = 5,
        .patience = 1.0f,
        .length_penalty = -1.0f,
        .temperature = 0.0f,
        .temperature_inc = 0.2f,
        .compression_ratio_threshold = 2.4f,
        .logprob_threshold = -1.0f,
        .no_speech_threshold = 0.6f,
        .timestamps = true,
        .max_initial_timestamp = 1.0f,
        .suppress_blank = true,
    };
    return p;
}

enum sd_err transcribe_pcm(struct whisper_state *st, const struct tokenizer *tok, const float *pcm,
                           size_t n_samples, const struct transcribe_params *p,
                           struct transcript **out, struct sd_error *err)
{
    (void)st, (void)tok, (void)pcm, (void)n_samples, (void)p, (void)out;
    return sd_fail(err, SD_EINTERNAL, "transcription is not implemented yet");
}

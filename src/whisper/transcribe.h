/*
 * transcribe.h - whole-file transcription: log-mel, 30 s windows with seeking,
 * prompts and conditioning, decoding (greedy / beam / sampling with
 * temperature fallback), timestamp rules, segments. The layer the CLI, the
 * job workers and the realtime endpoint call.
 *
 * Input is 16 kHz mono float PCM in [-1, 1] (audio/ turns files into that).
 */
#ifndef SD_WHISPER_TRANSCRIBE_H
#define SD_WHISPER_TRANSCRIBE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"
#include "whisper/batcher.h"
#include "whisper/tokenizer.h"
#include "whisper/transcript.h"
#include "whisper/whisper.h"

enum transcribe_task { TASK_TRANSCRIBE, TASK_TRANSLATE };

/* What one window decoded, for tests and debugging (borrowed during the call). */
struct transcribe_window_trace {
    int seek;                 /* mel frame where the window starts */
    const int32_t *prompt;
    int n_prompt;
    const int32_t *tokens;    /* every sampled token, including those cut from the result */
    int n_sampled;
    int result_len;           /* tokens kept */
    int seek_delta;
    int advance;              /* frames the next window moves on */
    float temperature;
    int n_beams;              /* sequences searched: beams at temperature 0, best_of samples above */
    float no_speech_prob;
    bool failed;
};

struct transcribe_params {
    enum transcribe_task task;
    const char *language;       /* NULL or "auto": detect (multilingual models); "en" otherwise */
    int beam_size;              /* 5; 1 = greedy */
    int best_of;                /* 5: samples per window at temperature > 0 */
    float patience;             /* 1.0 */
    float length_penalty;       /* < 0: openai/whisper's default (divide by length) */
    float temperature;          /* first temperature: 0.0 */
    float temperature_inc;      /* 0.2; fallback runs temperature, +inc, ... <= 1.0 */
    bool no_fallback;           /* only the first temperature */
    bool repetition_fallback;   /* true: a window ending in a repeated n-gram loop falls back too */
    float compression_ratio_threshold; /* 2.4 */
    float logprob_threshold;    /* -1.0 */
    float no_speech_threshold;  /* 0.6 */
    bool timestamps;            /* true; false = <|notimestamps|> */
    bool condition_on_previous_text; /* false (research recommends off) */
    const char *prompt;         /* initial prompt text or NULL */
    bool carry_initial_prompt;  /* keep the initial prompt in every window */
    int max_tokens;             /* per window; 0 = no limit beyond n_text_ctx/2 */
    float max_initial_timestamp;/* 1.0 s */
    bool suppress_blank;        /* true */
    bool suppress_non_speech;   /* false */
    bool word_timestamps;       /* false */
    uint64_t seed;              /* sampling generator seed */
    int n_threads;              /* threads for the log-mel (the state has its own) */
    /* NULL, or shared with other workers: decoding steps run together (batcher.h) */
    struct whisper_batcher *batcher;
    /* Called after each window with progress in [0, 1]; return false to cancel. */
    bool (*progress)(void *user, float fraction);
    void *progress_user;
    /* Optional: called for each segment once it is final (streaming replies). */
    void (*on_segment)(void *user, const struct transcript_segment *s);
    void *on_segment_user;
    /* Optional: called after each window with what it decoded. */
    void (*on_window)(void *user, const struct transcribe_window_trace *w);
    void *on_window_user;
};

struct transcribe_params transcribe_params_default(void);

/*
 * Decoder sequences a whisper_state needs for these parameters: the beams
 * plus beam search's greedy companion, or the best_of samples.
 */
int transcribe_n_seq(const struct transcribe_params *p);

/*
 * Transcribes pcm[0..n_samples) with state st (whose model matches tok).
 * On SD_OK the caller owns *out: transcript_destroy(). A cancelled run
 * returns SD_ECANCELLED.
 */
enum sd_err transcribe_pcm(struct whisper_state *st, const struct tokenizer *tok, const float *pcm,
                           size_t n_samples, const struct transcribe_params *p,
                           struct transcript **out, struct sd_error *err);

/*
 * The same for audio that is never held whole (a long file decoded as a
 * stream): the clip's length and log-mel maximum come first (one pass over
 * the samples through a mel_max from transcribe_mel_max_begin), then the
 * samples are pushed in order in chunks of any size and each 30 s window
 * runs as soon as its audio is in, so at most ~60 s of samples are held.
 * The transcript is identical to transcribe_pcm's on the same samples
 * (transcribe_pcm is this with one push). p, st and tok are borrowed until
 * transcribe_stream_free; callbacks run inside push and finish.
 */
struct mel_max;
struct transcribe_stream;
/* A log-mel maximum for the model of st. Caller owns *out: mel_max_free(). */
enum sd_err transcribe_mel_max_begin(const struct whisper_state *st, int n_threads,
                                     struct mel_max **out, struct sd_error *err);
enum sd_err transcribe_stream_begin(struct whisper_state *st, const struct tokenizer *tok,
                                    size_t n_samples, double mel_max_log,
                                    const struct transcribe_params *p,
                                    struct transcribe_stream **out, struct sd_error *err);
/* The next samples; SD_EINVAL past the announced length. */
enum sd_err transcribe_stream_push(struct transcribe_stream *s, const float *pcm, size_t n,
                                   struct sd_error *err);
/* Every sample pushed: the last windows run. On SD_OK the caller owns *out. */
enum sd_err transcribe_stream_finish(struct transcribe_stream *s, struct transcript **out,
                                     struct sd_error *err);
void transcribe_stream_free(struct transcribe_stream *s);

#endif

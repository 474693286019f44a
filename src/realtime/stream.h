/*
 * stream.h - the streaming transcription policy for one live audio stream,
 * with no I/O and no threads: 16 kHz float PCM goes in, utterances come out.
 * A streaming Silero VAD cuts the audio into utterances (speech start, end
 * after min_silence, forced split at max_utterance_s); the utterance in
 * progress is re-decoded as audio arrives (at most one decode per
 * min_new_audio_s of new audio, one decode in flight); words that two
 * consecutive decodes agree on become the stable prefix and are not sent as
 * changed again; a finished utterance gets one final decode of exactly its
 * span [start, end) - the same audio a file transcription of that span sees.
 *
 * The owner runs the decodes (realtime/decode.h puts them on the shared job
 * queue): rt_stream_next_decode hands out a request, rt_stream_decoded takes
 * the text back. Events (speech started/stopped, partial, final) go to the
 * callback during feed/finish/commit/decoded calls.
 *
 * Threads: one rt_stream is used by one thread at a time. Units: samples at
 * 16 kHz unless a name says otherwise.
 */
#ifndef SD_REALTIME_STREAM_H
#define SD_REALTIME_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"
#include "vad/vad.h"

#define RT_SAMPLE_RATE 16000

struct rt_params {
    struct vad_params vad;     /* threshold, min_silence_ms, speech_pad_ms, min_speech_ms */
    bool use_vad;              /* false: utterances end only by commit, finish or length */
    double min_new_audio_s;    /* 0.5: new audio needed before the next partial decode */
    double max_utterance_s;    /* 30 (the model's window): longer speech is split */
};

/* VAD on (scribed's VAD defaults), 0.5 s between decodes, 30 s utterances. */
struct rt_params rt_params_default(void);
/* SD_EINVAL naming the field when a value is out of range. */
enum sd_err rt_params_check(const struct rt_params *p, struct sd_error *err);

enum rt_event_type {
    RT_EV_SPEECH_STARTED,      /* utterance id, start */
    RT_EV_SPEECH_STOPPED,      /* utterance id, start, end: the span is now fixed */
    RT_EV_PARTIAL,             /* utterance id, start, end (audio decoded so far), text, stable */
    RT_EV_FINAL,               /* utterance id, start, end, text (final, never changes) */
    RT_EV_DISCARDED,           /* utterance id: cleared, or too short to keep */
};

struct rt_event {
    enum rt_event_type type;
    int64_t utt_id;            /* 0, 1, 2, ... per stream */
    int64_t start, end;        /* samples since the stream began */
    const char *text;          /* borrowed for the callback; trimmed */
    const char *stable;        /* RT_EV_PARTIAL: the prefix two decodes agreed on */
};

typedef void (*rt_event_fn)(void *user, const struct rt_event *ev);

/* A decode the owner should run: pcm[0..n) is the span [start, end). */
struct rt_decode_req {
    int64_t utt_id;
    bool final;                /* false: a partial of the utterance in progress */
    int64_t start, end;
    const float *pcm;          /* borrowed: valid until the next call on the stream */
    size_t n;
};

struct rt_stream;

/*
 * vad may be NULL (then p->use_vad is ignored: no VAD). The model must
 * outlive the stream. Caller owns *out: rt_stream_destroy().
 */
enum sd_err rt_stream_create(const struct rt_params *p, const struct vad_model *vad,
                             rt_event_fn fn, void *user, struct rt_stream **out,
                             struct sd_error *err);
void rt_stream_destroy(struct rt_stream *s);

/* Appends 16 kHz mono float PCM; runs the VAD. SD_ENOMEM is the only failure. */
enum sd_err rt_stream_feed(struct rt_stream *s, const float *pcm, size_t n, struct sd_error *err);
/* Ends the utterance in progress now (OpenAI input_audio_buffer.commit). */
void rt_stream_commit(struct rt_stream *s);
/* Drops the utterance in progress and the audio not yet committed (input_audio_buffer.clear). */
void rt_stream_clear(struct rt_stream *s);
/* End of audio: the utterance in progress ends at the last sample. No feeding afterwards. */
void rt_stream_finish(struct rt_stream *s);

/*
 * The next decode to run, if one is due and none is in flight (final
 * decodes first, oldest first). Returns false if there is nothing to do.
 */
bool rt_stream_next_decode(struct rt_stream *s, struct rt_decode_req *req);
/*
 * Result of the request in flight: text (NULL when the decode failed: a
 * partial is simply skipped, a final is retried by the next next_decode).
 */
void rt_stream_decoded(struct rt_stream *s, const char *text);
/* A decode is out (next_decode handed one and decoded was not called yet). */
bool rt_stream_busy(const struct rt_stream *s);

/* Seconds of audio the stream holds that are not final yet (back-pressure). */
double rt_stream_backlog_s(const struct rt_stream *s);
/* Samples fed so far. */
int64_t rt_stream_samples(const struct rt_stream *s);
/* True after finish once every utterance has its final. */
bool rt_stream_done(const struct rt_stream *s);

#endif

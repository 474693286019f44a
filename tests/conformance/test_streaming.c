/*
 * test_streaming.c - transcription of audio that is never held whole gives
 * exactly what the whole-clip path gives: the log-mel maximum gathered from
 * chunks of any size, windows read from a partial view, the transcriber fed
 * in chunks, VAD probabilities and packing streamed, and the pipeline's
 * passes against the former whole-array path (vad_detect + vad_pack +
 * transcribe_pcm + time mapping). Bitwise, on the reference clips.
 */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "pipeline/transcription.h"
#include "refdata.h"
#include "vad/pack.h"
#include "vad/vad.h"
#include "whisper/mel.h"
#include "whisper/model.h"
#include "whisper/transcribe.h"

/* Chunk sizes a streamed decode might deliver, from 1 sample to more than a window. */
static const size_t CHUNKS[] = {1, 7, 160, 511, 512, 4096, 16000, 77, 480000, 480401};
#define N_CHUNKS (sizeof(CHUNKS) / sizeof(CHUNKS[0]))

static float *clip(const char *rel, size_t *n)
{
    char path[512];
    return ref_read_wav(ref_path(path, sizeof(path), rel), n);
}

static void check_same_transcript(const struct transcript *a, const struct transcript *b)
{
    CHECK_STR(a->text, b->text);
    CHECK_EQ_INT(a->n_segments, b->n_segments);
    CHECK(a->duration == b->duration);
    for (int i = 0; i < a->n_segments && i < b->n_segments; i++) {
        const struct transcript_segment *x = &a->segments[i], *y = &b->segments[i];
        CHECK(x->start == y->start && x->end == y->end);
        CHECK_STR(x->text, y->text);
        CHECK_EQ_INT(x->n_words, y->n_words);
        for (int w = 0; w < x->n_words && w < y->n_words; w++)
            CHECK(x->words[w].start == y->words[w].start && x->words[w].end == y->words[w].end);
    }
}

TEST(streaming_mel_max_and_views_equal_the_whole_clip)
{
    struct ref_engine e;
    if (ref_engine_open(&e, "micro-en.f16.bin", 1))
        return;
    int n_mels = 0, n_bins = 0;
    const float *filters = whisper_model_mel_filters(e.m, &n_mels, &n_bins);
    size_t n = 0;
    float *pcm = clip("c_passage.wav", &n);
    struct sd_error err = {0};
    struct mel_spec whole = {0};
    CHECK_OK(mel_compute(pcm, n, filters, n_mels, 2, &whole, &err), &err);
    float *a = malloc((size_t)n_mels * 3000 * sizeof(float));
    float *b = malloc((size_t)n_mels * 3000 * sizeof(float));
    for (size_t c = 0; c < N_CHUNKS; c++) {
        struct mel_max *mx = NULL;
        CHECK_OK(mel_max_begin(filters, n_mels, 2, &mx, &err), &err);
        for (size_t off = 0; off < n; off += CHUNKS[c]) {
            size_t k = n - off < CHUNKS[c] ? n - off : CHUNKS[c];
            CHECK_OK(mel_max_push(mx, pcm + off, k, &err), &err);
        }
        struct mel_spec lazy = {0};
        CHECK_OK(mel_prepare_view(n, mel_max_finish(mx), filters, n_mels, 2, &lazy, &err), &err);
        mel_max_free(mx);
        static const int offsets[] = {0, 1, 1500, 3000, 4100, 5000};
        for (size_t i = 0; i < sizeof(offsets) / sizeof(offsets[0]); i++) {
            int64_t from, to;
            mel_window_samples(&lazy, offsets[i], &from, &to);
            CHECK(from >= 0 && to <= (int64_t)n && from <= to);
            /* a view holding only what the window reads */
            mel_set_view(&lazy, pcm + from, from);
            mel_window(&whole, offsets[i], a);
            mel_window(&lazy, offsets[i], b);
            CHECK_MSG(memcmp(a, b, (size_t)n_mels * 3000 * sizeof(float)) == 0,
                      "chunks of %zu, window at %d", CHUNKS[c], offsets[i]);
        }
        mel_spec_free(&lazy);
    }
    free(a);
    free(b);
    mel_spec_free(&whole);
    free(pcm);
    ref_engine_close(&e);
}

TEST(streaming_transcriber_in_chunks_equals_transcribe_pcm)
{
    struct ref_engine e;
    if (ref_engine_open(&e, "micro-en.f16.bin", 6))
        return;
    size_t n = 0;
    float *pcm = clip("c_passage.wav", &n);
    struct sd_error err = {0};
    struct transcribe_params p = transcribe_params_default();
    p.n_threads = 2;
    p.word_timestamps = true;
    p.no_fallback = true; /* random weights fall back at every window: the time goes nowhere */
    struct transcript *whole = NULL;
    CHECK_OK(transcribe_pcm(e.st, e.tok, pcm, n, &p, &whole, &err), &err);
    static const size_t sizes[] = {1000, 16000, 480000, 700001};
    for (size_t c = 0; c < sizeof(sizes) / sizeof(sizes[0]); c++) {
        struct mel_max *mx = NULL;
        struct transcribe_stream *s = NULL;
        CHECK_OK(transcribe_mel_max_begin(e.st, 2, &mx, &err), &err);
        CHECK_OK(mel_max_push(mx, pcm, n, &err), &err);
        CHECK_OK(transcribe_stream_begin(e.st, e.tok, n, mel_max_finish(mx), &p, &s, &err), &err);
        for (size_t off = 0; off < n; off += sizes[c]) {
            size_t k = n - off < sizes[c] ? n - off : sizes[c];
            CHECK_OK(transcribe_stream_push(s, pcm + off, k, &err), &err);
        }
        struct transcript *t = NULL;
        CHECK_OK(transcribe_stream_finish(s, &t, &err), &err);
        check_same_transcript(whole, t);
        transcript_destroy(t);
        transcribe_stream_free(s);
        mel_max_free(mx);
    }
    /* more audio than announced, or less, is an error, not a silent cut */
    struct transcribe_stream *s = NULL;
    struct transcript *t = NULL;
    CHECK_OK(transcribe_stream_begin(e.st, e.tok, 1000, 0.0, &p, &s, &err), &err);
    CHECK_EQ_INT(transcribe_stream_push(s, pcm, 1001, &err), SD_EINVAL);
    CHECK_OK(transcribe_stream_push(s, pcm, 10, &err), &err);
    CHECK_EQ_INT(transcribe_stream_finish(s, &t, &err), SD_EFORMAT);
    transcribe_stream_free(s);
    transcript_destroy(whole);
    free(pcm);
    ref_engine_close(&e);
}

static struct vad_model *load_vad(void)
{
    char path[512];
    struct vad_model *m = NULL;
    struct sd_error err = {0};
    snprintf(path, sizeof(path), "%s/models/silero-v6.2.0.bin", check_shared_dir());
    CHECK_OK(vad_model_load(path, &m, &err), &err);
    return m;
}

static enum sd_err collect(void *user, const float *pcm, size_t n, struct sd_error *err)
{
    float **cursor = user;
    (void)err;
    memcpy(*cursor, pcm, n * sizeof(float));
    *cursor += n;
    return SD_OK;
}

TEST(streaming_vad_probabilities_and_packing_equal_the_whole_clip)
{
    struct vad_model *vad = load_vad();
    if (!vad)
        return;
    size_t n = 0;
    float *pcm = clip("c_passage.wav", &n);
    struct sd_error err = {0};
    float *probs = NULL;
    size_t n_probs = 0;
    CHECK_OK(vad_probs(vad, pcm, n, VAD_PRECISION_REFERENCE, &probs, &n_probs, &err), &err);
    struct vad_params vp = vad_params_default();
    struct vad_segment *segs = NULL;
    size_t n_segs = 0;
    CHECK_OK(vad_segments_from_probs(probs, n_probs, &vp, &segs, &n_segs, &err), &err);
    CHECK(n_segs > 0);
    float *packed = NULL;
    size_t n_packed = 0;
    struct vad_map *map = NULL;
    CHECK_OK(vad_pack(pcm, n, segs, n_segs, VAD_PACK_GAP_MS, &packed, &n_packed, &map, &err),
             &err);
    float *streamed = malloc((n_packed + 1) * sizeof(float));
    for (size_t c = 0; c < N_CHUNKS; c++) {
        struct vad_stream *vs = NULL;
        struct vad_packer pk;
        float *cursor = streamed;
        vad_packer_init(&pk, map);
        CHECK_OK(vad_stream_begin(vad, VAD_PRECISION_REFERENCE, &vs, &err), &err);
        for (size_t off = 0; off < n; off += CHUNKS[c]) {
            size_t k = n - off < CHUNKS[c] ? n - off : CHUNKS[c];
            CHECK_OK(vad_stream_push(vs, pcm + off, k, &err), &err);
            CHECK_OK(vad_packer_push(&pk, pcm + off, k, collect, &cursor, &err), &err);
        }
        float *p2 = NULL;
        size_t n2 = 0;
        CHECK_OK(vad_stream_finish(vs, &p2, &n2, &err), &err);
        CHECK_EQ_INT(n2, n_probs);
        CHECK_MSG(memcmp(p2, probs, n_probs * sizeof(float)) == 0, "chunks of %zu", CHUNKS[c]);
        CHECK_EQ_INT(cursor - streamed, n_packed);
        CHECK(memcmp(streamed, packed, n_packed * sizeof(float)) == 0);
        free(p2);
        vad_stream_free(vs);
    }
    free(streamed);
    vad_map_free(map);
    free(packed);
    free(segs);
    free(probs);
    free(pcm);
    vad_model_free(vad);
}

/* What transcription with the VAD filter did before the passes: everything in memory. */
static struct transcript *whole_array_with_vad(const struct vad_model *vad, const float *pcm,
                                               size_t n, const struct transcribe_params *p)
{
    struct ref_engine e;
    struct sd_error err = {0};
    struct vad_params vp = vad_params_default();
    struct vad_segment *segs = NULL;
    size_t n_segs = 0, n_packed = 0;
    float *packed = NULL;
    struct vad_map *map = NULL;
    struct transcript *t = NULL;
    if (ref_engine_open(&e, "micro-en.f16.bin", 6))
        return NULL;
    CHECK_OK(vad_detect(vad, pcm, n, &vp, &segs, &n_segs, &err), &err);
    CHECK_OK(vad_pack(pcm, n, segs, n_segs, VAD_PACK_GAP_MS, &packed, &n_packed, &map, &err),
             &err);
    CHECK_OK(transcribe_pcm(e.st, e.tok, packed, n_packed, p, &t, &err), &err);
    for (int i = 0; t && i < t->n_segments; i++) {
        struct transcript_segment *s = &t->segments[i];
        s->start = vad_map_time(map, s->start);
        s->end = vad_map_time(map, s->end);
        for (int w = 0; w < s->n_words; w++) {
            s->words[w].start = vad_map_time(map, s->words[w].start);
            s->words[w].end = vad_map_time(map, s->words[w].end);
        }
    }
    if (t)
        t->duration = (double)n / VAD_SAMPLE_RATE;
    vad_map_free(map);
    free(packed);
    free(segs);
    ref_engine_close(&e);
    return t;
}

TEST(streaming_pipeline_with_vad_equals_the_whole_array_path)
{
    char model[512], vad_path[512];
    struct sd_error err = {0};
    snprintf(vad_path, sizeof(vad_path), "%s/models/silero-v6.2.0.bin", check_shared_dir());
    struct pipeline_opts o = {.model_path = ref_path(model, sizeof(model), "micro-en.f16.bin"),
                              .vad_path = vad_path, .threads_per_worker = 2};
    struct pipeline *pl = NULL;
    struct pipeline_worker *w = NULL;
    CHECK_OK(pipeline_create(&o, &pl, &err), &err);
    CHECK_OK(pipeline_worker_create(pl, &w, &err), &err);
    struct vad_model *vad = load_vad();
    static const char *const clips[] = {"c_passage.wav", "b_sentence.wav", "d_silence.wav"};
    for (size_t c = 0; c < sizeof(clips) / sizeof(clips[0]) && w && vad; c++) {
        size_t n = 0;
        float *pcm = clip(clips[c], &n);
        struct stt_params rp;
        stt_params_init(&rp);
        STT_SET(&rp, word_timestamps, true);
        STT_SET(&rp, no_fallback, true);
        struct stt_engine_params ep;
        stt_params_to_engine(&rp, &ep);
        struct transcript *t = NULL;
        CHECK_OK(pipeline_transcribe_pcm(w, pcm, n, &ep, NULL, &t, &err), &err);
        struct transcribe_params p = ep.decode;
        p.n_threads = 2;
        struct transcript *ref = whole_array_with_vad(vad, pcm, n, &p);
        if (t && ref)
            check_same_transcript(ref, t);
        transcript_destroy(t);
        transcript_destroy(ref);
        stt_params_clear(&rp);
        free(pcm);
    }
    vad_model_free(vad);
    pipeline_worker_destroy(w);
    pipeline_destroy(pl);
}

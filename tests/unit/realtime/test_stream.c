/*
 * test_stream.c - the streaming policy (realtime/stream.h) without a network
 * or an engine: PCM in, decode requests out, fake decoder texts back. Covers
 * partial scheduling (one per 0.5 s of new audio, one in flight), the stable
 * prefix, utterance ends by VAD / length / commit / finish, clear, the
 * speculative final, and the real Silero model on a reference recording.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "realtime/stream.h"

#define MAX_EV 256

struct rec {
    int n;
    struct rt_event ev[MAX_EV];
    char text[MAX_EV][128];
    char stable[MAX_EV][128];
};

static void on_ev(void *user, const struct rt_event *ev)
{
    struct rec *r = user;
    if (r->n >= MAX_EV)
        return;
    r->ev[r->n] = *ev;
    snprintf(r->text[r->n], sizeof(r->text[0]), "%s", ev->text ? ev->text : "");
    snprintf(r->stable[r->n], sizeof(r->stable[0]), "%s", ev->stable ? ev->stable : "");
    r->n++;
}

static int count(const struct rec *r, enum rt_event_type t)
{
    int n = 0;
    for (int i = 0; i < r->n; i++)
        n += r->ev[i].type == t;
    return n;
}

static const struct rt_event *last(const struct rec *r, enum rt_event_type t, int *idx)
{
    for (int i = r->n - 1; i >= 0; i--)
        if (r->ev[i].type == t) {
            if (idx)
                *idx = i;
            return &r->ev[i];
        }
    return NULL;
}

static float *tone(size_t n, float amp)
{
    float *p = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++)
        p[i] = amp * sinf((float)i * 0.05f);
    return p;
}

static struct rt_stream *plain_stream(struct rec *r)
{
    struct rt_params p = rt_params_default();
    p.use_vad = false;
    struct rt_stream *s = NULL;
    struct sd_error err = {0};
    CHECK_OK(rt_stream_create(&p, NULL, on_ev, r, &s, &err), &err);
    return s;
}

TEST(rt_partials_follow_new_audio_and_one_in_flight)
{
    struct rec r = {0};
    struct rt_stream *s = plain_stream(&r);
    struct sd_error err = {0};
    float *a = tone(16000, 0.3f);
    struct rt_decode_req q;
    CHECK_OK(rt_stream_feed(s, a, 4000, &err), &err); /* 0.25 s: too little */
    CHECK(!rt_stream_next_decode(s, &q));
    CHECK_OK(rt_stream_feed(s, a, 4000, &err), &err); /* 0.5 s */
    CHECK(rt_stream_next_decode(s, &q));
    CHECK(!q.final);
    CHECK_EQ_INT(q.start, 0);
    CHECK_EQ_INT(q.end, 8000);
    CHECK_EQ_INT(q.n, 8000);
    CHECK_OK(rt_stream_feed(s, a, 16000, &err), &err);
    CHECK(!rt_stream_next_decode(s, &q)); /* one in flight */
    rt_stream_decoded(s, " hello");
    CHECK_EQ_INT(count(&r, RT_EV_PARTIAL), 1);
    int p = -1;
    CHECK(last(&r, RT_EV_PARTIAL, &p) != NULL);
    CHECK_STR(r.text[p], "hello");
    CHECK(rt_stream_next_decode(s, &q));
    CHECK_EQ_INT(q.end, 24000);
    rt_stream_decoded(s, NULL); /* a failed partial is skipped */
    CHECK_EQ_INT(count(&r, RT_EV_PARTIAL), 1);
    CHECK(!rt_stream_next_decode(s, &q)); /* no new audio since */
    rt_stream_finish(s);
    CHECK(rt_stream_next_decode(s, &q));
    CHECK(q.final);
    CHECK_EQ_INT(q.start, 0);
    CHECK_EQ_INT(q.end, 24000);
    CHECK(!rt_stream_done(s));
    rt_stream_decoded(s, "  hello world \n");
    int k = -1;
    CHECK(last(&r, RT_EV_FINAL, &k) != NULL);
    CHECK_STR(r.text[k], "hello world");
    CHECK(rt_stream_done(s));
    free(a);
    rt_stream_destroy(s);
}

TEST(rt_stable_prefix_is_not_resent_as_changed)
{
    struct rec r = {0};
    struct rt_stream *s = plain_stream(&r);
    struct sd_error err = {0};
    float *a = tone(8000, 0.3f);
    const char *texts[] = {"the cat", "the cat sat on", "the cat sat in a", "a dog"};
    const char *stable[] = {"", "the cat", "the cat sat", "the cat sat"};
    const char *shown[] = {"the cat", "the cat sat on", "the cat sat in a", "the cat sat"};
    for (int i = 0; i < 4; i++) {
        struct rt_decode_req q;
        CHECK_OK(rt_stream_feed(s, a, 8000, &err), &err);
        CHECK(rt_stream_next_decode(s, &q));
        rt_stream_decoded(s, texts[i]);
        int k = -1;
        CHECK(last(&r, RT_EV_PARTIAL, &k) != NULL);
        CHECK_STR(r.stable[k], stable[i]);
        CHECK_STR(r.text[k], shown[i]);
    }
    free(a);
    rt_stream_destroy(s);
}

TEST(rt_long_speech_splits_at_max_utterance)
{
    struct rec r = {0};
    struct rt_stream *s = plain_stream(&r);
    struct sd_error err = {0};
    float *a = tone(16000, 0.3f);
    for (int i = 0; i < 65; i++)
        CHECK_OK(rt_stream_feed(s, a, 16000, &err), &err);
    rt_stream_finish(s);
    struct rt_decode_req q;
    int64_t ends[3] = {30 * 16000, 60 * 16000, 65 * 16000}, prev = 0;
    for (int i = 0; i < 3; i++) {
        CHECK(rt_stream_next_decode(s, &q));
        CHECK(q.final);
        CHECK_EQ_INT(q.start, prev);
        CHECK_EQ_INT(q.end, ends[i]);
        CHECK_EQ_INT(q.utt_id, i);
        prev = q.end;
        rt_stream_decoded(s, "x");
    }
    CHECK(rt_stream_done(s));
    CHECK_EQ_INT(count(&r, RT_EV_FINAL), 3);
    CHECK(rt_stream_backlog_s(s) == 0);
    free(a);
    rt_stream_destroy(s);
}

TEST(rt_commit_clear_and_failed_finals)
{
    struct rec r = {0};
    struct rt_stream *s = plain_stream(&r);
    struct sd_error err = {0};
    float *a = tone(16000, 0.3f);
    struct rt_decode_req q;
    CHECK_OK(rt_stream_feed(s, a, 16000, &err), &err);
    rt_stream_clear(s);
    CHECK_EQ_INT(count(&r, RT_EV_DISCARDED), 1);
    CHECK(!rt_stream_next_decode(s, &q));
    CHECK_OK(rt_stream_feed(s, a, 8000, &err), &err);
    rt_stream_commit(s);
    CHECK(rt_stream_next_decode(s, &q));
    CHECK(q.final);
    CHECK_EQ_INT(q.start, 16000);
    CHECK_EQ_INT(q.end, 24000);
    /* a final whose decodes keep failing ends empty after three tries, never stuck */
    rt_stream_decoded(s, NULL);
    CHECK(rt_stream_next_decode(s, &q) && q.final);
    rt_stream_decoded(s, NULL);
    CHECK(rt_stream_next_decode(s, &q) && q.final);
    rt_stream_decoded(s, NULL);
    CHECK_EQ_INT(count(&r, RT_EV_FINAL), 1);
    int k = -1;
    CHECK(last(&r, RT_EV_FINAL, &k) != NULL);
    CHECK_STR(r.text[k], "");
    rt_stream_finish(s);
    CHECK(rt_stream_done(s));
    free(a);
    rt_stream_destroy(s);
}

TEST(rt_params_are_checked)
{
    struct rt_params p = rt_params_default();
    struct sd_error err = {0};
    CHECK_OK(rt_params_check(&p, &err), &err);
    p.max_utterance_s = 31;
    CHECK(rt_params_check(&p, &err) == SD_EINVAL);
    p = rt_params_default();
    p.vad.threshold = 2;
    CHECK(rt_params_check(&p, &err) == SD_EINVAL);
    p = rt_params_default();
    p.min_new_audio_s = 0;
    CHECK(rt_params_check(&p, &err) == SD_EINVAL);
}

/* ---- with the real Silero model ---- */

static float *read_wav16k(const char *name, size_t *n)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/reference/%s", check_shared_dir(), name);
    size_t bytes = 0;
    unsigned char *b = check_read_file(path, &bytes);
    if (!b || bytes < 44)
        return NULL;
    /* the reference files are canonical 44-byte-header 16 kHz s16 mono WAVs */
    *n = (bytes - 44) / 2;
    float *p = malloc(*n * sizeof(float));
    for (size_t i = 0; i < *n; i++)
        p[i] = (float)(int16_t)(b[44 + 2 * i] | b[45 + 2 * i] << 8) / 32768.0f;
    free(b);
    return p;
}

static struct vad_model *load_vad(void)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/models/silero-v6.2.0.bin", check_shared_dir());
    struct vad_model *m = NULL;
    struct sd_error err = {0};
    CHECK_OK(vad_model_load(path, &m, &err), &err);
    return m;
}

/* Feeds pcm in 100 ms chunks, answering every decode at once with "u<id>". */
static int drive(struct rt_stream *s, const float *pcm, size_t n, int *n_decodes)
{
    struct sd_error err = {0};
    struct rt_decode_req q;
    char text[32];
    for (size_t i = 0; i < n; i += 1600) {
        size_t k = n - i < 1600 ? n - i : 1600;
        if (rt_stream_feed(s, pcm + i, k, &err) != SD_OK)
            return -1;
        while (rt_stream_next_decode(s, &q)) {
            (*n_decodes)++;
            snprintf(text, sizeof(text), "u%lld", (long long)q.utt_id);
            rt_stream_decoded(s, text);
        }
    }
    rt_stream_finish(s);
    while (rt_stream_next_decode(s, &q)) {
        (*n_decodes)++;
        snprintf(text, sizeof(text), "u%lld", (long long)q.utt_id);
        rt_stream_decoded(s, text);
    }
    return 0;
}

TEST(rt_vad_passage_gives_ordered_final_spans)
{
    size_t n = 0;
    float *pcm = read_wav16k("c_passage.wav", &n);
    CHECK(pcm != NULL);
    struct vad_model *m = load_vad();
    struct rec r = {0};
    struct rt_params p = rt_params_default();
    struct rt_stream *s = NULL;
    struct sd_error err = {0};
    CHECK_OK(rt_stream_create(&p, m, on_ev, &r, &s, &err), &err);
    int decodes = 0;
    CHECK_EQ_INT(drive(s, pcm, n, &decodes), 0);
    CHECK(rt_stream_done(s));
    int finals = count(&r, RT_EV_FINAL);
    CHECK(finals >= 2); /* 52 s cannot be one 30 s utterance */
    CHECK_EQ_INT(count(&r, RT_EV_SPEECH_STARTED), finals);
    CHECK_EQ_INT(count(&r, RT_EV_SPEECH_STOPPED), finals);
    int64_t prev_end = 0, covered = 0, id = 0;
    for (int i = 0; i < r.n; i++) {
        if (r.ev[i].type != RT_EV_FINAL)
            continue;
        const struct rt_event *e = &r.ev[i];
        CHECK_EQ_INT(e->utt_id, id++);
        CHECK(e->start >= prev_end);
        CHECK(e->end > e->start);
        CHECK(e->end - e->start <= 30 * 16000);
        CHECK(e->end <= (int64_t)n);
        char want[32];
        snprintf(want, sizeof(want), "u%lld", (long long)e->utt_id);
        CHECK_STR(r.text[i], want);
        covered += e->end - e->start;
        prev_end = e->end;
    }
    CHECK_MSG(covered > (int64_t)n * 8 / 10, "finals cover %lld of %zu samples",
              (long long)covered, n);
    /* at most one decode per 0.5 s of audio plus one final per utterance (+ speculation) */
    CHECK_MSG(decodes <= (int)(n / 8000) + 2 * finals, "%d decodes", decodes);
    rt_stream_destroy(s);
    vad_model_free(m);
    free(pcm);
}

TEST(rt_vad_silence_after_speech_reuses_the_speculative_decode)
{
    size_t n = 0;
    float *speech = read_wav16k("a_short.wav", &n);
    CHECK(speech != NULL);
    size_t total = n + 32000;
    float *pcm = calloc(total, sizeof(float));
    memcpy(pcm, speech, n * sizeof(float));
    struct vad_model *m = load_vad();
    struct rec r = {0};
    struct rt_params p = rt_params_default();
    struct rt_stream *s = NULL;
    struct sd_error err = {0};
    CHECK_OK(rt_stream_create(&p, m, on_ev, &r, &s, &err), &err);
    struct rt_decode_req q;
    int finals_decoded = 0;
    for (size_t i = 0; i < total; i += 512) {
        CHECK_OK(rt_stream_feed(s, pcm + i, total - i < 512 ? total - i : 512, &err), &err);
        while (rt_stream_next_decode(s, &q)) {
            finals_decoded += q.final;
            rt_stream_decoded(s, q.final ? "final-decode" : "not-final");
        }
    }
    /* the speaker stopped within the 2 s of silence: the final came without its own decode */
    CHECK_EQ_INT(count(&r, RT_EV_FINAL), 1);
    CHECK_EQ_INT(finals_decoded, 0);
    int k = -1;
    CHECK(last(&r, RT_EV_FINAL, &k) != NULL);
    CHECK_STR(r.text[k], "not-final"); /* the speculative decode's text */
    CHECK(r.ev[k].end < (int64_t)n + 16000);
    rt_stream_finish(s);
    CHECK(rt_stream_done(s));
    rt_stream_destroy(s);
    vad_model_free(m);
    free(pcm);
    free(speech);
}

/*
 * stream.c - one live stream's utterance segmentation, decode scheduling,
 * stable prefix and finalisation (see stream.h). The VAD rules are the
 * streaming form of vad_segments_from_probs: speech starts at p >= threshold,
 * a pending end opens below neg_threshold and closes after min_silence_ms,
 * padding speech_pad_ms on both sides (never overlapping the previous
 * utterance), speech shorter than min_speech_ms is dropped.
 *
 * One trick reuses decoder work: once silence opens a pending end, the next
 * decode is the would-be final span; if the silence holds, that result is
 * the final (same audio, same parameters) and no second decode is needed.
 */
#include "realtime/stream.h"

#include <stdlib.h>
#include <string.h>

enum req_kind { REQ_NONE, REQ_PARTIAL, REQ_FINAL, REQ_SPEC };

struct pending_final {
    int64_t id, start, end;
    int failures;
};

struct rt_stream {
    struct rt_params p;
    bool use_vad;
    struct vad_state *vs;
    rt_event_fn fn;
    void *user;
    float thr, neg;
    int64_t pad, min_silence, min_speech, max_len, min_new;

    float *buf;                /* samples [base, base + n) */
    size_t n, cap;
    int64_t base;
    int64_t vad_pos;           /* samples the VAD has seen (whole windows) */
    float *probs;
    size_t probs_cap;

    bool in_utt, confirmed;
    int64_t cur_id, cur_start, speech_start, temp_end;
    int64_t last_end;          /* previous utterance's end: the next starts here at the earliest */
    int64_t next_id;
    int64_t last_partial_end;
    char *prev_text, *stable;
    int stable_words;

    struct pending_final *pf;
    size_t npf, pf_cap;

    enum req_kind busy;
    int64_t busy_id, busy_start, busy_end;

    bool spec_valid;           /* cached decode of a would-be final span */
    int64_t spec_id, spec_end, spec_asked_end;
    char *spec_text;

    bool finished;
};

struct rt_params rt_params_default(void)
{
    return (struct rt_params){.vad = vad_params_default(), .use_vad = true,
                              .min_new_audio_s = 0.5, .max_utterance_s = 30.0};
}

enum sd_err rt_params_check(const struct rt_params *p, struct sd_error *err)
{
    enum sd_err rc = vad_params_check(&p->vad, err);
    if (rc != SD_OK)
        return rc;
    if (!(p->min_new_audio_s >= 0.1 && p->min_new_audio_s <= 30))
        return sd_fail(err, SD_EINVAL, "min_new_audio_s must be 0.1..30");
    if (!(p->max_utterance_s >= 1 && p->max_utterance_s <= 30))
        return sd_fail(err, SD_EINVAL, "max_utterance_s must be 1..30");
    return SD_OK;
}

static int64_t ms_to_samples(double ms)
{
    return (int64_t)(ms * RT_SAMPLE_RATE / 1000.0 + 0.5);
}

enum sd_err rt_stream_create(const struct rt_params *p, const struct vad_model *vad,
                             rt_event_fn fn, void *user, struct rt_stream **out,
                             struct sd_error *err)
{
    enum sd_err rc = rt_params_check(p, err);
    if (rc != SD_OK)
        return rc;
    struct rt_stream *s = calloc(1, sizeof(*s));
    if (!s)
        return sd_fail(err, SD_ENOMEM, "realtime stream");
    s->p = *p;
    s->fn = fn;
    s->user = user;
    s->use_vad = p->use_vad && vad;
    if (s->use_vad && (rc = vad_state_new(vad, VAD_PRECISION_REFERENCE, &s->vs, err)) != SD_OK) {
        free(s);
        return rc;
    }
    s->thr = p->vad.threshold;
    s->neg = p->vad.neg_threshold >= 0 ? p->vad.neg_threshold
                                       : (s->thr - 0.15f > 0.01f ? s->thr - 0.15f : 0.01f);
    s->pad = ms_to_samples(p->vad.speech_pad_ms);
    s->min_silence = ms_to_samples(p->vad.min_silence_ms);
    s->min_speech = ms_to_samples(p->vad.min_speech_ms);
    s->max_len = (int64_t)(p->max_utterance_s * RT_SAMPLE_RATE);
    s->min_new = (int64_t)(p->min_new_audio_s * RT_SAMPLE_RATE);
    s->temp_end = -1;
    s->last_partial_end = -1;
    *out = s;
    return SD_OK;
}

void rt_stream_destroy(struct rt_stream *s)
{
    if (!s)
        return;
    vad_state_free(s->vs);
    free(s->buf);
    free(s->probs);
    free(s->prev_text);
    free(s->stable);
    free(s->pf);
    free(s->spec_text);
    free(s);
}

static int64_t total(const struct rt_stream *s)
{
    return s->base + (int64_t)s->n;
}

static void emit(struct rt_stream *s, enum rt_event_type t, int64_t id, int64_t start,
                 int64_t end, const char *text, const char *stable)
{
    struct rt_event ev = {t, id, start, end, text, stable};
    if (s->fn)
        s->fn(s->user, &ev);
}

/* Copy of text without leading/trailing white space (NULL on ENOMEM). */
static char *trimmed(const char *text)
{
    while (*text == ' ' || *text == '\t' || *text == '\n')
        text++;
    size_t n = strlen(text);
    while (n && (text[n - 1] == ' ' || text[n - 1] == '\t' || text[n - 1] == '\n'))
        n--;
    return strndup(text, n);
}

static void reset_utterance_text(struct rt_stream *s)
{
    free(s->prev_text);
    free(s->stable);
    s->prev_text = s->stable = NULL;
    s->stable_words = 0;
    s->last_partial_end = -1;
    s->spec_asked_end = -1;
}

/* ---- utterance boundaries ---- */

static void begin_utterance(struct rt_stream *s, int64_t speech_start, bool confirmed)
{
    int64_t start = speech_start - s->pad;
    if (start < s->last_end)
        start = s->last_end;
    if (start < s->base)
        start = s->base;
    s->in_utt = true;
    s->confirmed = false;
    s->speech_start = speech_start;
    s->cur_start = start;
    s->temp_end = -1;
    reset_utterance_text(s);
    if (confirmed) {
        s->confirmed = true;
        s->cur_id = s->next_id++;
        emit(s, RT_EV_SPEECH_STARTED, s->cur_id, s->cur_start, -1, NULL, NULL);
    }
}

static void confirm(struct rt_stream *s)
{
    if (s->confirmed)
        return;
    s->confirmed = true;
    s->cur_id = s->next_id++;
    emit(s, RT_EV_SPEECH_STARTED, s->cur_id, s->cur_start, -1, NULL, NULL);
}

static bool push_final(struct rt_stream *s, int64_t id, int64_t start, int64_t end)
{
    if (s->npf == s->pf_cap) {
        size_t cap = s->pf_cap ? s->pf_cap * 2 : 8;
        struct pending_final *n = realloc(s->pf, cap * sizeof(*n));
        if (!n)
            return false;
        s->pf = n;
        s->pf_cap = cap;
    }
    s->pf[s->npf++] = (struct pending_final){id, start, end, 0};
    return true;
}

/* Ends the utterance at `end`; a confirmed one waits for its final decode. */
static void end_utterance(struct rt_stream *s, int64_t end)
{
    if (!s->in_utt)
        return;
    if (end > total(s))
        end = total(s);
    if (s->confirmed && end > s->cur_start) {
        if (push_final(s, s->cur_id, s->cur_start, end))
            emit(s, RT_EV_SPEECH_STOPPED, s->cur_id, s->cur_start, end, NULL, NULL);
        else
            emit(s, RT_EV_DISCARDED, s->cur_id, s->cur_start, end, NULL, NULL);
    }
    s->last_end = end;
    s->in_utt = false;
    s->confirmed = false;
    s->temp_end = -1;
    reset_utterance_text(s);
}

/* One VAD window [w, w + 512) with speech probability prob. */
static void on_window(struct rt_stream *s, int64_t w, float prob)
{
    int64_t w_end = w + VAD_WINDOW_SAMPLES;
    if (!s->in_utt) {
        if (prob >= s->thr)
            begin_utterance(s, w, false);
        else
            return;
    }
    if (prob >= s->thr) {
        s->temp_end = -1;
    } else if (prob < s->neg) {
        if (s->temp_end < 0)
            s->temp_end = w;
        if (w_end - s->temp_end >= s->min_silence) {
            int64_t end = s->temp_end + s->pad;
            if (!s->confirmed && s->temp_end - s->speech_start >= s->min_speech)
                confirm(s);
            end_utterance(s, end < w_end ? end : w_end);
            return;
        }
    }
    int64_t speech_end = s->temp_end >= 0 ? s->temp_end : w_end;
    if (!s->confirmed && speech_end - s->speech_start >= s->min_speech)
        confirm(s);
    if (w_end - s->cur_start >= s->max_len) {
        /* longer than one decoder window: split here, speech (if any) goes on */
        int64_t cut = s->cur_start + s->max_len;
        bool speaking = s->temp_end < 0;
        confirm(s);
        end_utterance(s, cut);
        if (speaking)
            begin_utterance(s, cut, true);
    }
}

static enum sd_err run_vad(struct rt_stream *s, struct sd_error *err)
{
    int64_t avail = total(s) - s->vad_pos;
    size_t n_win = (size_t)(avail / VAD_WINDOW_SAMPLES);
    if (n_win == 0)
        return SD_OK;
    if (n_win > s->probs_cap) {
        float *p = realloc(s->probs, n_win * sizeof(*p));
        if (!p)
            return sd_fail(err, SD_ENOMEM, "VAD probabilities");
        s->probs = p;
        s->probs_cap = n_win;
    }
    vad_state_run(s->vs, s->buf + (s->vad_pos - s->base), n_win * VAD_WINDOW_SAMPLES, s->probs);
    for (size_t i = 0; i < n_win; i++)
        on_window(s, s->vad_pos + (int64_t)i * VAD_WINDOW_SAMPLES, s->probs[i]);
    s->vad_pos += (int64_t)n_win * VAD_WINDOW_SAMPLES;
    return SD_OK;
}

/* Without a VAD every sample is speech; only length, commit and finish end utterances. */
static void run_plain(struct rt_stream *s)
{
    while (total(s) > s->last_end) {
        if (!s->in_utt)
            begin_utterance(s, s->last_end, true);
        if (total(s) - s->cur_start < s->max_len)
            break;
        end_utterance(s, s->cur_start + s->max_len);
    }
}

/* ---- buffer ---- */

/* Drops audio nothing can need any more (before the oldest open span). */
static void compact(struct rt_stream *s)
{
    int64_t keep = total(s) - s->pad - 2 * VAD_WINDOW_SAMPLES;
    if (s->vad_pos - s->pad < keep)
        keep = s->vad_pos - s->pad;
    if (s->in_utt && s->cur_start < keep)
        keep = s->cur_start;
    if (s->npf && s->pf[0].start < keep)
        keep = s->pf[0].start;
    if (s->busy != REQ_NONE && s->busy_start < keep)
        keep = s->busy_start;
    if (keep - s->base < RT_SAMPLE_RATE * 4)
        return;
    size_t drop = (size_t)(keep - s->base);
    memmove(s->buf, s->buf + drop, (s->n - drop) * sizeof(float));
    s->n -= drop;
    s->base = keep;
}

static void flush_cached_finals(struct rt_stream *s);

enum sd_err rt_stream_feed(struct rt_stream *s, const float *pcm, size_t n, struct sd_error *err)
{
    if (s->finished || n == 0)
        return SD_OK;
    compact(s);
    if (s->n + n > s->cap) {
        size_t cap = s->cap ? s->cap : RT_SAMPLE_RATE;
        while (cap < s->n + n)
            cap *= 2;
        float *b = realloc(s->buf, cap * sizeof(float));
        if (!b)
            return sd_fail(err, SD_ENOMEM, "realtime audio buffer");
        s->buf = b;
        s->cap = cap;
    }
    memcpy(s->buf + s->n, pcm, n * sizeof(float));
    s->n += n;
    enum sd_err rc = SD_OK;
    if (s->use_vad)
        rc = run_vad(s, err);
    else
        run_plain(s);
    flush_cached_finals(s);
    return rc;
}

void rt_stream_commit(struct rt_stream *s)
{
    if (!s->in_utt)
        return;
    confirm(s);
    end_utterance(s, total(s));
    flush_cached_finals(s);
}

void rt_stream_clear(struct rt_stream *s)
{
    if (s->in_utt && s->confirmed)
        emit(s, RT_EV_DISCARDED, s->cur_id, s->cur_start, total(s), NULL, NULL);
    s->in_utt = false;
    s->confirmed = false;
    s->temp_end = -1;
    s->last_end = total(s);
    reset_utterance_text(s);
}

void rt_stream_finish(struct rt_stream *s)
{
    if (s->finished)
        return;
    if (s->use_vad && total(s) > s->vad_pos) {
        /* the last, partial window: zero-padded as a file's last window */
        float prob = vad_state_step(s->vs, s->buf + (s->vad_pos - s->base),
                                    (size_t)(total(s) - s->vad_pos));
        on_window(s, s->vad_pos, prob);
        s->vad_pos = total(s);
    }
    if (s->in_utt) {
        int64_t speech_end = s->temp_end >= 0 ? s->temp_end : total(s);
        if (!s->use_vad || speech_end - s->speech_start >= s->min_speech)
            confirm(s);
        int64_t end = s->temp_end >= 0 ? s->temp_end + s->pad : total(s);
        end_utterance(s, end);
    }
    s->finished = true;
    flush_cached_finals(s);
}

/* ---- decodes ---- */

static void emit_final(struct rt_stream *s, const char *text)
{
    struct pending_final f = s->pf[0];
    char *t = trimmed(text ? text : "");
    emit(s, RT_EV_FINAL, f.id, f.start, f.end, t ? t : "", NULL);
    free(t);
    memmove(s->pf, s->pf + 1, (s->npf - 1) * sizeof(*s->pf));
    s->npf--;
}

/* Finals whose span was already decoded speculatively need no decode. */
static void flush_cached_finals(struct rt_stream *s)
{
    while (s->npf && s->spec_valid && s->pf[0].id == s->spec_id && s->pf[0].end == s->spec_end) {
        s->spec_valid = false;
        emit_final(s, s->spec_text);
    }
}

static void fill(struct rt_stream *s, struct rt_decode_req *req, enum req_kind k, int64_t id,
                 int64_t start, int64_t end)
{
    s->busy = k;
    s->busy_id = id;
    s->busy_start = start;
    s->busy_end = end;
    *req = (struct rt_decode_req){id, k == REQ_FINAL, start, end, s->buf + (start - s->base),
                                  (size_t)(end - start)};
}

bool rt_stream_next_decode(struct rt_stream *s, struct rt_decode_req *req)
{
    if (s->busy != REQ_NONE)
        return false;
    flush_cached_finals(s);
    if (s->npf) {
        fill(s, req, REQ_FINAL, s->pf[0].id, s->pf[0].start, s->pf[0].end);
        return true;
    }
    if (!s->in_utt || !s->confirmed || s->finished)
        return false;
    if (s->use_vad && s->temp_end >= 0) {
        /* silence started: decode the span the final would have, once its padding is in */
        int64_t end = s->temp_end + s->pad;
        if (total(s) < end || s->spec_asked_end == end)
            return false;
        s->spec_asked_end = end;
        fill(s, req, REQ_SPEC, s->cur_id, s->cur_start, end);
        return true;
    }
    int64_t now = s->use_vad ? s->vad_pos : total(s);
    int64_t from = s->last_partial_end > s->cur_start ? s->last_partial_end : s->cur_start;
    if (now - from < s->min_new)
        return false;
    s->last_partial_end = now;
    fill(s, req, REQ_PARTIAL, s->cur_id, s->cur_start, now);
    return true;
}

/* Moves *p past spaces and one word; returns the word's length (0 at the end). */
static size_t next_word(const char **p, const char **word)
{
    while (**p == ' ')
        (*p)++;
    *word = *p;
    while (**p && **p != ' ')
        (*p)++;
    return (size_t)(*p - *word);
}

/* Number of leading words a and b share; *b_len = bytes of b they span. */
static int common_words(const char *a, const char *b, size_t *b_len)
{
    const char *pa = a, *pb = b, *wa, *wb;
    int words = 0;
    *b_len = 0;
    for (;;) {
        size_t la = next_word(&pa, &wa), lb = next_word(&pb, &wb);
        if (la == 0 || la != lb || memcmp(wa, wb, la) != 0)
            return words;
        words++;
        *b_len = (size_t)(pb - b);
    }
}

/* A partial for the utterance in progress: updates the stable prefix and emits. */
static void on_partial(struct rt_stream *s, const char *text, int64_t end)
{
    char *t = trimmed(text);
    if (!t)
        return;
    if (s->prev_text) {
        size_t len;
        int agree = common_words(s->prev_text, t, &len);
        if (agree > s->stable_words) {
            char *st = strndup(t, len);
            if (st) {
                free(s->stable);
                s->stable = st;
                s->stable_words = agree;
            }
        }
    }
    /* text confirmed twice stays as it was, even if this decode disagrees */
    char *shown = t;
    size_t sl = s->stable ? strlen(s->stable) : 0;
    if (sl && strncmp(t, s->stable, sl) != 0) {
        const char *tail = t;
        for (int w = 0; w < s->stable_words && *tail; w++) {
            while (*tail == ' ')
                tail++;
            while (*tail && *tail != ' ')
                tail++;
        }
        shown = malloc(sl + strlen(tail) + 1);
        if (shown) {
            memcpy(shown, s->stable, sl);
            strcpy(shown + sl, tail);
        } else {
            shown = t;
        }
    }
    emit(s, RT_EV_PARTIAL, s->cur_id, s->cur_start, end, shown, s->stable ? s->stable : "");
    if (shown != t)
        free(shown);
    free(s->prev_text);
    s->prev_text = t;
}

void rt_stream_decoded(struct rt_stream *s, const char *text)
{
    enum req_kind k = s->busy;
    s->busy = REQ_NONE;
    bool current = s->in_utt && s->confirmed && s->cur_id == s->busy_id;
    switch (k) {
    case REQ_FINAL:
        if (!s->npf || s->pf[0].id != s->busy_id)
            break;
        if (text || ++s->pf[0].failures >= 3)
            emit_final(s, text); /* three failed decodes: an empty final, not a stuck stream */
        break;
    case REQ_SPEC:
        if (!text)
            break;
        free(s->spec_text);
        s->spec_text = strdup(text);
        s->spec_valid = s->spec_text != NULL;
        s->spec_id = s->busy_id;
        s->spec_end = s->busy_end;
        if (current)
            on_partial(s, text, s->busy_end);
        break;
    case REQ_PARTIAL:
        if (text && current)
            on_partial(s, text, s->busy_end);
        break;
    case REQ_NONE:
        break;
    }
    flush_cached_finals(s);
}

bool rt_stream_busy(const struct rt_stream *s)
{
    return s->busy != REQ_NONE;
}

double rt_stream_backlog_s(const struct rt_stream *s)
{
    int64_t from = total(s);
    if (s->in_utt)
        from = s->cur_start;
    if (s->npf)
        from = s->pf[0].start;
    return (double)(total(s) - from) / RT_SAMPLE_RATE;
}

int64_t rt_stream_samples(const struct rt_stream *s)
{
    return total(s);
}

bool rt_stream_done(const struct rt_stream *s)
{
    return s->finished && s->npf == 0 && s->busy == REQ_NONE;
}

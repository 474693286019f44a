/*
 * transcribe.c - whole-file transcription (transcribe.h): log-mel of the
 * clip, then 30 s windows: encode, build the prompt (past context, SOT,
 * language, task), search for tokens with temperature fallback, cut the
 * result into timestamped segments, and seek to the next window.
 *
 * The window and context rules follow reference-decoding-vad.md §3.2 (what
 * whisper.cpp does, so the conformance data can be matched); fallback and
 * silence skipping follow openai/whisper's transcribe(). Token choice lives
 * in search.c, logit rules in logits.c.
 */
#include "whisper/transcribe.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "whisper/mel.h"
#include "whisper/search.h"
#include "whisper/words.h"

#define FRAMES_PER_WINDOW 3000
#define MAX_PAST_TOKENS 223     /* n_text_ctx / 2 - 1 */
#define PROMPT_CAP (MAX_PAST_TOKENS + 8)

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
        .repetition_fallback = true,
        .compression_ratio_threshold = 2.4f,
        .logprob_threshold = -1.0f,
        .no_speech_threshold = 0.6f,
        .timestamps = true,
        .max_initial_timestamp = 1.0f,
        .suppress_blank = true,
        .seed = 0,
        .n_threads = 1,
    };
    return p;
}

int transcribe_n_seq(const struct transcribe_params *p)
{
    int beams = p->beam_size > 1 ? p->beam_size + 1 : 1;
    int n = beams > p->best_of ? beams : p->best_of;
    return n > 0 ? n : 1;
}

/* Everything one run needs, owned here and freed by run_free(). */
struct run {
    struct whisper_state *st;
    const struct tokenizer *tok;
    const struct transcribe_params *p;
    const struct whisper_hparams *hp;
    const struct whisper_special_tokens *sp;
    struct mel_spec mel;
    float *window_mel;            /* [n_mels][3000] */
    float *logits, *logprobs;     /* n_seq x n_vocab */
    int n_seq;
    int32_t lang_token;           /* -1 for English-only models */
    int32_t *initial;             /* initial prompt tokens */
    int n_initial;
    int32_t past[PROMPT_CAP * 2];
    int n_past;
    struct sd_rng rng;
    uint8_t *suppress;            /* n_vocab flags: non-speech tokens, or NULL */
    int32_t last_prompt[PROMPT_CAP];
    int n_last_prompt;
    float fraction_done;          /* progress reported to p->progress */
    struct transcript *out;
    int cap_segments;
};

static void run_free(struct run *r)
{
    if (!r->st)
        return; /* never initialised */
    mel_spec_free(&r->mel);
    free(r->window_mel);
    free(r->logits);
    free(r->logprobs);
    free(r->initial);
    free(r->suppress);
    transcript_destroy(r->out);
}

static enum sd_err check_params(const struct transcribe_params *p, const struct whisper_model *m,
                                struct sd_error *err)
{
    if (p->beam_size < 1 || p->beam_size > SEARCH_MAX_BEAM)
        return sd_fail(err, SD_EINVAL, "beam_size must be between 1 and %d (got %d)",
                       SEARCH_MAX_BEAM, p->beam_size);
    if (p->best_of < 1 || p->best_of > 16)
        return sd_fail(err, SD_EINVAL, "best_of must be between 1 and 16 (got %d)", p->best_of);
    if (!(p->temperature >= 0.0f && p->temperature <= 1.0f))
        return sd_fail(err, SD_EINVAL, "temperature must be between 0 and 1 (got %g)",
                       (double)p->temperature);
    if (!(p->temperature_inc >= 0.0f && p->temperature_inc <= 1.0f))
        return sd_fail(err, SD_EINVAL, "temperature_inc must be between 0 and 1 (got %g)",
                       (double)p->temperature_inc);
    if (p->max_tokens < 0)
        return sd_fail(err, SD_EINVAL, "max_tokens must be >= 0 (got %d)", p->max_tokens);
    if (!(p->patience > 0.0f))
        return sd_fail(err, SD_EINVAL, "patience must be > 0 (got %g)", (double)p->patience);
    bool multilingual = whisper_model_is_multilingual(m);
    bool auto_lang = !p->language || !*p->language || strcmp(p->language, "auto") == 0;
    if (!multilingual && p->task == TASK_TRANSLATE)
        return sd_fail(err, SD_EINVAL, "task translate needs a multilingual model (%s is English-only)",
                       whisper_model_describe(m));
    if (!multilingual && !auto_lang && strcmp(p->language, "en") != 0)
        return sd_fail(err, SD_EINVAL, "language '%s' needs a multilingual model (%s is English-only)",
                       p->language, whisper_model_describe(m));
    return SD_OK;
}

static enum sd_err build_non_speech_mask(struct run *r, struct sd_error *err);

static enum sd_err run_init(struct run *r, struct whisper_state *st, const struct tokenizer *tok,
                            size_t n_samples, double mel_max_log,
                            const struct transcribe_params *p, struct sd_error *err)
{
    const struct whisper_model *m = whisper_state_model(st);
    memset(r, 0, sizeof(*r));
    r->st = st;
    r->tok = tok;
    r->p = p;
    r->hp = whisper_model_hparams(m);
    r->sp = whisper_model_special(m);
    r->lang_token = -1;
    sd_rng_seed(&r->rng, p->seed);
    enum sd_err rc = check_params(p, m, err);
    if (rc)
        return rc;
    bool auto_lang = !p->language || !*p->language || strcmp(p->language, "auto") == 0;
    if (whisper_model_is_multilingual(m) && !auto_lang) {
        r->lang_token = tok_language_id(tok, p->language);
        if (r->lang_token < 0)
            return sd_fail(err, SD_EINVAL, "unknown language code '%s'", p->language);
    }
    if (p->prompt && *p->prompt) {
        rc = tok_encode(tok, p->prompt, strlen(p->prompt), &r->initial, &r->n_initial, err);
        if (rc)
            return rc;
        if (r->n_initial > r->hp->n_text_ctx / 2)
            return sd_fail(err, SD_EINVAL, "prompt is %d tokens; at most %d are allowed",
                           r->n_initial, r->hp->n_text_ctx / 2);
    }
    int n_mels = 0, n_bins = 0;
    const float *filters = whisper_model_mel_filters(m, &n_mels, &n_bins);
    rc = mel_prepare_view(n_samples, mel_max_log, filters, n_mels,
                          p->n_threads > 0 ? p->n_threads : 1, &r->mel, err);
    if (rc)
        return rc;
    if (p->suppress_non_speech) {
        rc = build_non_speech_mask(r, err);
        if (rc)
            return rc;
    }
    r->n_seq = transcribe_n_seq(p);
    size_t n_vocab = (size_t)r->hp->n_vocab;
    r->window_mel = malloc((size_t)n_mels * FRAMES_PER_WINDOW * sizeof(float));
    r->logits = malloc((size_t)r->n_seq * n_vocab * sizeof(float));
    r->logprobs = malloc((size_t)r->n_seq * n_vocab * sizeof(float));
    r->out = calloc(1, sizeof(*r->out));
    if (!r->window_mel || !r->logits || !r->logprobs || !r->out)
        return sd_fail(err, SD_ENOMEM, "transcription buffers");
    r->out->duration = (double)n_samples / MEL_SAMPLE_RATE;
    return SD_OK;
}

/*
 * Tokens that are only symbols or music notes, never speech (openai/whisper's
 * suppress_tokens="-1" list): each symbol alone or after a space when it is a
 * single token, plus " -" and " '".
 */
static enum sd_err build_non_speech_mask(struct run *r, struct sd_error *err)
{
    static const char *const symbols[] = {
        "\"", "#", "(", ")", "*", "+", "/", ":", ";", "<", "=", ">", "@", "[", "\\", "]", "^",
        "_", "`", "{", "|", "}", "~", "\u300c", "\u300d", "\u300e", "\u300f", "<<", ">>", "<<<",
        ">>>", "--", "---", "-(", "-[", "('", "(\"", "((", "))", "(((", ")))", "[[", "]]", "{{",
        "}}", "\u266a\u266a", "\u266a\u266a\u266a"};
    static const char *const music[] = {"\u2669", "\u266a", "\u266b", "\u266c", "\u266d",
                                        "\u266e", "\u266f"};
    r->suppress = calloc((size_t)r->hp->n_vocab, 1);
    if (!r->suppress)
        return sd_fail(err, SD_ENOMEM, "non-speech token list");
    const size_t n_sym = sizeof(symbols) / sizeof(symbols[0]);
    const size_t n_all = n_sym + sizeof(music) / sizeof(music[0]) + 1;
    for (size_t i = 0; i < n_all; i++) {
        bool is_music = i >= n_sym && i + 1 < n_all;
        const char *sym = i < n_sym ? symbols[i] : is_music ? music[i - n_sym] : NULL;
        for (int spaced = 0; spaced < 2; spaced++) {
            char text[32];
            if (sym)
                snprintf(text, sizeof(text), "%s%s", spaced ? " " : "", sym);
            else
                snprintf(text, sizeof(text), "%s", spaced ? " '" : " -");
            int32_t *ids = NULL;
            int n = 0;
            enum sd_err rc = tok_encode(r->tok, text, strlen(text), &ids, &n, err);
            if (rc)
                return rc;
            if (n > 0 && (n == 1 || is_music || !sym) && ids[0] < r->sp->eot)
                r->suppress[ids[0]] = 1;
            free(ids);
        }
    }
    return SD_OK;
}

/*
 * A decoding stuck in a loop: the result ends with one short n-gram repeated
 * at least 4 times over at least 16 tokens. Treated like a high compression
 * ratio: the window is decoded again at the next temperature.
 */
static bool has_repetition_loop(const int32_t *tokens, int n)
{
    for (int period = 1; period <= 8; period++) {
        int repeats = 1;
        for (int end = n - period; end - period >= 0; end -= period) {
            if (memcmp(tokens + end - period, tokens + end, (size_t)period * sizeof(int32_t)) != 0)
                break;
            repeats++;
        }
        if (repeats >= 4 && repeats * period >= 16)
            return true;
    }
    return false;
}

static void past_reset(struct run *r)
{
    r->n_past = 0;
    if (r->p->carry_initial_prompt)
        for (int i = 0; i < r->n_initial && r->n_past < MAX_PAST_TOKENS; i++)
            r->past[r->n_past++] = r->initial[i];
}

static void past_append(struct run *r, const int32_t *tokens, int n)
{
    for (int i = 0; i < n; i++) {
        if (r->n_past == (int)(sizeof(r->past) / sizeof(r->past[0]))) {
            memmove(r->past, r->past + MAX_PAST_TOKENS, (size_t)(r->n_past - MAX_PAST_TOKENS) * sizeof(int32_t));
            r->n_past -= MAX_PAST_TOKENS;
        }
        r->past[r->n_past++] = tokens[i];
    }
}

/* [PREV, last past tokens] SOT [lang task] [NOT]; returns the SOT index. */
static int build_prompt(const struct run *r, float temperature, int32_t *prompt, int *n_prompt)
{
    int n = 0;
    if (r->n_past > 0 && temperature < 0.5f) {
        int take = r->n_past < MAX_PAST_TOKENS ? r->n_past : MAX_PAST_TOKENS;
        prompt[n++] = r->sp->prev;
        memcpy(prompt + n, r->past + r->n_past - take, (size_t)take * sizeof(int32_t));
        n += take;
    }
    int sot_index = n;
    prompt[n++] = r->sp->sot;
    if (r->lang_token >= 0) {
        prompt[n++] = r->lang_token;
        prompt[n++] = r->p->task == TASK_TRANSLATE ? r->sp->translate : r->sp->transcribe;
    }
    if (!r->p->timestamps)
        prompt[n++] = r->sp->no_timestamps;
    *n_prompt = n;
    return sot_index;
}

static enum sd_err encode_window(struct run *r, int seek, struct sd_error *err)
{
    mel_window(&r->mel, seek, r->window_mel);
    return whisper_encode(r->st, r->window_mel, FRAMES_PER_WINDOW, err);
}

/* Language probabilities from [SOT] over the model's language tokens (window 0). */
static enum sd_err detect_language(struct run *r, struct sd_error *err)
{
    const int32_t sot = r->sp->sot;
    enum sd_err rc = whisper_decode(r->st, 0, &sot, 1, 0, r->logits, err);
    if (rc)
        return rc;
    int n = r->sp->n_langs;
    struct transcript *t = r->out;
    t->lang_codes = calloc((size_t)n, sizeof(*t->lang_codes));
    t->lang_probs = calloc((size_t)n, sizeof(float));
    if (!t->lang_codes || !t->lang_probs)
        return sd_fail(err, SD_ENOMEM, "language probabilities");
    double max = -INFINITY, sum = 0.0;
    for (int i = 0; i < n; i++)
        if (r->logits[r->sp->lang_first + i] > max)
            max = r->logits[r->sp->lang_first + i];
    for (int i = 0; i < n; i++)
        sum += exp(r->logits[r->sp->lang_first + i] - max);
    int best = 0;
    for (int i = 0; i < n; i++) {
        t->lang_probs[i] = (float)(exp(r->logits[r->sp->lang_first + i] - max) / sum);
        const char *code = tok_language_code(r->tok, r->sp->lang_first + i);
        snprintf(t->lang_codes[i], sizeof(t->lang_codes[i]), "%s", code ? code : "?");
        if (t->lang_probs[i] > t->lang_probs[best])
            best = i;
    }
    t->n_langs = n;
    r->lang_token = r->sp->lang_first + best;
    return SD_OK;
}

static float compression_ratio(const char *text)
{
    size_t n = strlen(text);
    if (n == 0)
        return 0.0f;
    uLongf cap = compressBound((uLong)n);
    unsigned char *buf = malloc(cap);
    if (!buf)
        return 0.0f;
    float ratio = 0.0f;
    if (compress2(buf, &cap, (const Bytef *)text, (uLong)n, 6) == Z_OK && cap > 0)
        ratio = (float)n / (float)cap;
    free(buf);
    return ratio;
}

struct window_outcome {
    struct search_result res;
    float temperature;
    float avg_logprob;
    float compression_ratio;
    bool loop;              /* ends in a repeated n-gram */
};

/* The caller's progress hook doubles as "keep going?" inside a window. */
static bool run_keep_going(void *user)
{
    const struct run *r = user;
    return r->p->progress(r->p->progress_user, r->fraction_done);
}

/* One search at one temperature, with the statistics the fallback rules read. */
static enum sd_err decode_window(struct run *r, int seek, float temperature,
                                 struct window_outcome *o, struct sd_error *err)
{
    int32_t prompt[PROMPT_CAP];
    int n_prompt = 0;
    int sot_index = build_prompt(r, temperature, prompt, &n_prompt);
    memcpy(r->last_prompt, prompt, (size_t)n_prompt * sizeof(int32_t));
    r->n_last_prompt = n_prompt;
    const struct transcribe_params *p = r->p;
    struct search_window w = {
        .st = r->st,
        .rules = {
            .be = whisper_state_backend(r->st),
            .sp = r->sp,
            .n_vocab = r->hp->n_vocab,
            .timestamps = p->timestamps,
            .suppress_blank = p->suppress_blank,
            .max_initial_ts_steps = p->max_initial_timestamp >= 0
                                        ? (int)lroundf(p->max_initial_timestamp / 0.02f) : -1,
            .max_tokens = p->max_tokens > 0 ? p->max_tokens - 1 : 0,
            .suppress = r->suppress,
        },
        .prompt = prompt,
        .n_prompt = n_prompt,
        .sot_index = sot_index,
        .seek = seek,
        .seek_end = r->mel.n_frames_audio,
        .max_tokens = p->max_tokens,
        .n_max = r->hp->n_text_ctx / 2 - 4,
        .temperature = temperature,
        .length_penalty = p->length_penalty,
        .rng = &r->rng,
        .keep_going = p->progress ? run_keep_going : NULL,
        .keep_going_user = r,
        .batcher = p->batcher,
        .logits = r->logits,
        .logprobs = r->logprobs,
    };
    enum sd_err rc;
    if (temperature > 0.0f)
        rc = p->best_of > 1 ? search_best_of(&w, p->best_of, &o->res, err)
                            : search_greedy(&w, &o->res, err);
    else
        rc = p->beam_size > 1 ? search_beam(&w, p->beam_size, p->patience, &o->res, err)
                              : search_greedy(&w, &o->res, err);
    if (rc)
        return rc;
    const struct search_seq *s = &o->res.seq;
    double sum = 0.0;
    for (int i = 0; i < s->n_tokens; i++)
        sum += s->plog[i];
    o->temperature = temperature;
    o->avg_logprob = (float)(sum / (s->n_tokens > 0 ? s->n_tokens : 1));
    char *text = tok_decode(r->tok, s->tokens, s->n_tokens);
    o->compression_ratio = text ? compression_ratio(text) : 0.0f;
    o->loop = has_repetition_loop(s->tokens, s->n_tokens);
    free(text);
    return SD_OK;
}

static void trace_window(const struct run *r, int seek, int advance, const struct window_outcome *o)
{
    if (!r->p->on_window)
        return;
    const struct search_seq *s = &o->res.seq;
    struct transcribe_window_trace t = {
        .seek = seek,
        .prompt = r->last_prompt,
        .n_prompt = r->n_last_prompt,
        .tokens = s->tokens,
        .n_sampled = s->n_sampled,
        .result_len = s->result_len,
        .seek_delta = s->seek_delta,
        .advance = advance,
        .temperature = o->temperature,
        .n_beams = o->res.n_beams,
        .no_speech_prob = o->res.no_speech_prob,
        .failed = s->failed,
    };
    r->p->on_window(r->p->on_window_user, &t);
}

static bool is_silence(const struct run *r, const struct window_outcome *o)
{
    return o->res.no_speech_prob > r->p->no_speech_threshold &&
           o->avg_logprob < r->p->logprob_threshold;
}

static bool needs_fallback(const struct run *r, const struct window_outcome *o)
{
    if (is_silence(r, o))
        return false;
    return o->res.seq.failed || (o->loop && r->p->repetition_fallback) ||
           o->compression_ratio > r->p->compression_ratio_threshold ||
           o->avg_logprob < r->p->logprob_threshold;
}

/* Decodes at temperature, temperature + inc, ... until the result is acceptable. */
static enum sd_err decode_with_fallback(struct run *r, int seek, struct window_outcome *o,
                                        struct sd_error *err)
{
    const struct transcribe_params *p = r->p;
    float t = p->temperature;
    for (;;) {
        enum sd_err rc = decode_window(r, seek, t, o, err);
        if (rc)
            return rc;
        float next = t + p->temperature_inc;
        if (p->no_fallback || p->temperature_inc <= 0.0f || next > 1.0f + 1e-4f ||
            !needs_fallback(r, o))
            return SD_OK;
        t = next;
    }
}

static enum sd_err add_segment(struct run *r, const struct window_outcome *o, int seek, int t0,
                               int t1, const int32_t *tokens, int n_tokens, struct sd_error *err)
{
    struct transcript *t = r->out;
    char *text = tok_decode(r->tok, tokens, n_tokens);
    if (!text)
        return sd_fail(err, SD_ENOMEM, "segment text");
    if (!*text) {
        free(text);
        return SD_OK;
    }
    if (t->n_segments == r->cap_segments) {
        int cap = r->cap_segments ? 2 * r->cap_segments : 16;
        void *grown = realloc(t->segments, (size_t)cap * sizeof(*t->segments));
        if (!grown) {
            free(text);
            return sd_fail(err, SD_ENOMEM, "segments");
        }
        t->segments = grown;
        r->cap_segments = cap;
    }
    /* a timestamp past the audio's end (the window is padded to 30 s) ends with the audio */
    const int audio_cs = (int)(t->duration * 100.0 + 0.5);
    t1 = t1 < audio_cs ? t1 : audio_cs;
    t0 = t0 < t1 ? t0 : t1;
    struct transcript_segment *s = &t->segments[t->n_segments];
    memset(s, 0, sizeof(*s));
    s->tokens = malloc((size_t)(n_tokens > 0 ? n_tokens : 1) * sizeof(int32_t));
    if (!s->tokens) {
        free(text);
        return sd_fail(err, SD_ENOMEM, "segment tokens");
    }
    memcpy(s->tokens, tokens, (size_t)n_tokens * sizeof(int32_t));
    s->n_tokens = n_tokens;
    s->id = t->n_segments;
    s->seek = seek;
    s->start = t0 / 100.0;
    s->end = t1 / 100.0;
    s->text = text;
    s->temperature = o->temperature;
    s->avg_logprob = o->avg_logprob;
    s->compression_ratio = o->compression_ratio;
    s->no_speech_prob = o->res.no_speech_prob;
    t->n_segments++;
    return SD_OK;
}

/*
 * Cuts a window's tokens into segments (reference §3.2): a timestamp after
 * text closes a segment; consecutive timestamps are skipped and the last one
 * opens the next; trailing text ends at the window's advance.
 */
static enum sd_err window_segments(struct run *r, const struct window_outcome *o, int seek,
                                   struct sd_error *err)
{
    const struct search_seq *s = &o->res.seq;
    const int32_t beg = r->sp->timestamp_begin, eot = r->sp->eot;
    if (!r->p->timestamps) {
        int end = seek + FRAMES_PER_WINDOW;
        if (end > r->mel.n_frames_audio)
            end = r->mel.n_frames_audio;
        return add_segment(r, o, seek, seek, end, s->tokens, s->n_tokens, err);
    }
    int t0 = seek + (s->n_tokens > 0 && s->tid[0] >= beg ? 2 * (s->tid[0] - beg) : 0);
    int i0 = 0;
    bool has_text = false;
    for (int i = 0; i < s->n_tokens; i++) {
        if (s->tokens[i] < eot)
            has_text = true;
        if (s->tokens[i] <= beg)
            continue;
        int t1 = seek + 2 * (s->tokens[i] - beg);
        if (has_text) {
            enum sd_err rc = add_segment(r, o, seek, t0, t1, s->tokens + i0, i - i0 + 1, err);
            if (rc)
                return rc;
        }
        has_text = false;
        while (i + 1 < s->n_tokens && s->tokens[i + 1] > beg)
            i++;
        t0 = seek + 2 * (s->tokens[i] - beg);
        i0 = i + 1;
    }
    if (has_text)
        return add_segment(r, o, seek, t0, seek + s->seek_delta, s->tokens + i0, s->n_tokens - i0,
                           err);
    return SD_OK;
}

/* Gives each segment of this window its words (and start/end from them). */
static void attach_words(struct run *r, int first_seg, struct word_timing *w, int n_words)
{
    int text_pos = 0, wi = 0;
    for (int si = first_seg; si < r->out->n_segments; si++) {
        struct transcript_segment *seg = &r->out->segments[si];
        int n_text = 0;
        for (int k = 0; k < seg->n_tokens; k++)
            n_text += seg->tokens[k] < r->sp->eot;
        int end = text_pos + n_text, n = 0;
        while (wi + n < n_words && w[wi + n].token_begin < end)
            n++;
        if (n > 0) {
            seg->words = calloc((size_t)n, sizeof(*seg->words));
            const double duration = r->out->duration;
            for (int k = 0; seg->words && k < n; k++) {
                seg->words[k].word = w[wi + k].word;
                w[wi + k].word = NULL; /* moved */
                seg->words[k].end = w[wi + k].end < duration ? w[wi + k].end : duration;
                seg->words[k].start =
                    w[wi + k].start < seg->words[k].end ? w[wi + k].start : seg->words[k].end;
                seg->words[k].probability = w[wi + k].probability;
            }
            if (seg->words) {
                seg->n_words = n;
                seg->start = seg->words[0].start;
                seg->end = seg->words[n - 1].end;
            }
        }
        wi += n;
        text_pos = end;
    }
}

/* Word-level timestamps for the segments window_segments just added. */
static enum sd_err window_words(struct run *r, const struct window_outcome *o, int seek,
                                int first_seg, struct sd_error *err)
{
    const struct search_seq *s = &o->res.seq;
    int32_t text[SEARCH_MAX_TOKENS];
    float logprob[SEARCH_MAX_TOKENS];
    int n_text = 0;
    for (int i = 0; i < s->n_tokens; i++)
        if (s->tokens[i] < r->sp->eot) {
            text[n_text] = s->tokens[i];
            logprob[n_text++] = s->plog[i];
        }
    if (n_text == 0 || first_seg == r->out->n_segments)
        return SD_OK;
    int32_t sot_seq[3] = {r->sp->sot};
    int n_sot = 1;
    if (r->lang_token >= 0) {
        sot_seq[n_sot++] = r->lang_token;
        sot_seq[n_sot++] = r->p->task == TASK_TRANSLATE ? r->sp->translate : r->sp->transcribe;
    }
    int left = r->mel.n_frames_audio - seek;
    struct words_input in = {
        .st = r->st, .tok = r->tok, .sot_seq = sot_seq, .n_sot = n_sot, .text = text,
        .text_logprob = logprob, .n_text = n_text,
        .n_mel_frames = left < FRAMES_PER_WINDOW ? left : FRAMES_PER_WINDOW,
        .offset_s = seek / 100.0,
        .language = r->lang_token >= 0 ? tok_language_code(r->tok, r->lang_token) : "en",
    };
    struct word_timing *w = NULL;
    int n_words = 0;
    enum sd_err rc = words_align(&in, &w, &n_words, err);
    if (rc)
        return rc;
    attach_words(r, first_seg, w, n_words);
    words_free(w, n_words);
    return SD_OK;
}

/* How far the window advances (a lone final timestamp means "to the end of the window"). */
static int window_advance(const struct run *r, const struct search_seq *s, int seek)
{
    const int32_t beg = r->sp->timestamp_begin;
    int n = s->n_tokens;
    int delta = s->seek_delta;
    if (r->p->timestamps && n >= 2 && s->tokens[n - 2] < beg && s->tokens[n - 1] > beg) {
        int left = r->mel.n_frames_audio - seek;
        delta = left < FRAMES_PER_WINDOW ? left : FRAMES_PER_WINDOW;
    }
    return delta > 0 ? delta : FRAMES_PER_WINDOW;
}

static enum sd_err set_transcript_text(struct run *r, struct sd_error *err)
{
    struct transcript *t = r->out;
    size_t len = 0;
    for (int i = 0; i < t->n_segments; i++)
        len += strlen(t->segments[i].text);
    char *text = malloc(len + 1), *w = text;
    if (!text)
        return sd_fail(err, SD_ENOMEM, "transcript text");
    for (int i = 0; i < t->n_segments; i++) {
        size_t n = strlen(t->segments[i].text);
        memcpy(w, t->segments[i].text, n);
        w += n;
    }
    *w = 0;
    /* The API's "text" has no leading or trailing blank (segments keep theirs). */
    char *start = text;
    while (*start == ' ' || *start == '\n')
        start++;
    size_t n = strlen(start);
    while (n > 0 && (start[n - 1] == ' ' || start[n - 1] == '\n'))
        n--;
    memmove(text, start, n);
    text[n] = 0;
    t->text = text;
    const char *task = r->p->task == TASK_TRANSLATE ? "translate" : "transcribe";
    const char *lang = r->lang_token >= 0 ? tok_language_code(r->tok, r->lang_token) : "en";
    t->task = strdup(task);
    t->language = strdup(lang ? lang : "en");
    if (!t->task || !t->language)
        return sd_fail(err, SD_ENOMEM, "transcript fields");
    return SD_OK;
}

/*
 * A transcription fed in order (transcription.h): the run, the part of the
 * audio its next window needs, and where the window loop stands. Windows run
 * as soon as their audio is in, so at most ~60 s of samples are held.
 */
struct transcribe_stream {
    struct run r;
    float *buf;                   /* samples [first, first + len) */
    int64_t first;
    size_t len, cap;
    int64_t n_total;              /* announced at begin */
    int seek, seek_end;
    bool need_lang;
};

/* One 30 s window at s->seek: encode, decode with fallback, segments, advance. */
static enum sd_err run_window(struct transcribe_stream *s, struct sd_error *err)
{
    struct run *r = &s->r;
    const struct transcribe_params *p = r->p;
    const int seek = s->seek, seek_end = s->seek_end;
    enum sd_err rc = encode_window(r, seek, err);
    if (rc)
        return rc;
    if (s->need_lang) {
        rc = detect_language(r, err);
        if (rc)
            return rc;
        s->need_lang = false;
    }
    struct window_outcome o;
    rc = decode_with_fallback(r, seek, &o, err);
    if (rc)
        return rc;
    if (is_silence(r, &o)) {
        /* openai/whisper: a confident no-speech window yields no text. */
        int left = seek_end - seek;
        int advance = left < FRAMES_PER_WINDOW ? left : FRAMES_PER_WINDOW;
        trace_window(r, seek, advance, &o);
        s->seek += advance;
        past_reset(r);
    } else {
        int first_seg = r->out->n_segments;
        rc = window_segments(r, &o, seek, err);
        if (rc == SD_OK && p->word_timestamps)
            rc = window_words(r, &o, seek, first_seg, err);
        if (rc)
            return rc;
        for (int i = first_seg; p->on_segment && i < r->out->n_segments; i++)
            p->on_segment(p->on_segment_user, &r->out->segments[i]);
        int advance = window_advance(r, &o.res.seq, seek);
        int n_result = o.res.seq.n_tokens;
        trace_window(r, seek, advance, &o);
        s->seek += advance;
        if (p->condition_on_previous_text && o.temperature <= 0.5f && s->seek + 500 < seek_end)
            past_append(r, o.res.seq.tokens, n_result);
        else
            past_reset(r);
    }
    r->fraction_done = s->seek >= seek_end ? 1.0f : (float)s->seek / (float)seek_end;
    if (p->progress && !p->progress(p->progress_user, r->fraction_done))
        return sd_fail(err, SD_ECANCELLED, "transcription cancelled");
    return SD_OK;
}

/* Runs every window whose samples are all in, then forgets the samples behind the next one. */
static enum sd_err run_ready_windows(struct transcribe_stream *s, struct sd_error *err)
{
    int64_t from = 0, to = 0;
    while (s->seek + 10 < s->seek_end) {
        mel_window_samples(&s->r.mel, s->seek, &from, &to);
        if (to > s->first + (int64_t)s->len)
            break;
        mel_set_view(&s->r.mel, s->buf, s->first);
        enum sd_err rc = run_window(s, err);
        if (rc)
            return rc;
    }
    mel_window_samples(&s->r.mel, s->seek, &from, &to);
    if (from > s->first) {
        size_t drop = (size_t)(from - s->first) < s->len ? (size_t)(from - s->first) : s->len;
        memmove(s->buf, s->buf + drop, (s->len - drop) * sizeof(float));
        s->len -= drop;
        s->first += (int64_t)drop;
    }
    return SD_OK;
}

enum sd_err transcribe_stream_begin(struct whisper_state *st, const struct tokenizer *tok,
                                    size_t n_samples, double mel_max_log,
                                    const struct transcribe_params *p,
                                    struct transcribe_stream **out, struct sd_error *err)
{
    struct transcribe_stream *s = calloc(1, sizeof(*s));
    if (!s)
        return sd_fail(err, SD_ENOMEM, "transcription");
    enum sd_err rc = run_init(&s->r, st, tok, n_samples, mel_max_log, p, err);
    if (rc) {
        transcribe_stream_free(s);
        return rc;
    }
    struct run *r = &s->r;
    for (int i = 0; i < r->n_initial && r->n_past < MAX_PAST_TOKENS; i++)
        r->past[r->n_past++] = r->initial[i];
    s->n_total = (int64_t)n_samples;
    s->seek_end = r->mel.n_frames_audio;
    s->need_lang = whisper_model_is_multilingual(whisper_state_model(st)) && r->lang_token < 0;
    *out = s;
    return SD_OK;
}

enum sd_err transcribe_stream_push(struct transcribe_stream *s, const float *pcm, size_t n,
                                   struct sd_error *err)
{
    if (s->first + (int64_t)s->len + (int64_t)n > s->n_total)
        return sd_fail(err, SD_EINVAL, "more audio than the %lld samples announced",
                       (long long)s->n_total);
    /* a window's worth at a time: the buffer holds at most two windows of samples */
    const size_t piece_max = (size_t)FRAMES_PER_WINDOW * MEL_HOP;
    while (n > 0) {
        size_t piece = n < piece_max ? n : piece_max;
        if (s->len + piece > s->cap) {
            size_t cap = s->len + 2 * piece_max + MEL_N_FFT;
            float *grown = realloc(s->buf, cap * sizeof(float));
            if (!grown)
                return sd_fail(err, SD_ENOMEM, "audio buffer");
            s->buf = grown;
            s->cap = cap;
        }
        memcpy(s->buf + s->len, pcm, piece * sizeof(float));
        s->len += piece;
        pcm += piece;
        n -= piece;
        enum sd_err rc = run_ready_windows(s, err);
        if (rc)
            return rc;
    }
    return SD_OK;
}

enum sd_err transcribe_stream_finish(struct transcribe_stream *s, struct transcript **out,
                                     struct sd_error *err)
{
    int64_t have = s->first + (int64_t)s->len;
    if (have != s->n_total)
        return sd_fail(err, SD_EFORMAT, "the audio ended after %lld of %lld samples",
                       (long long)have, (long long)s->n_total);
    enum sd_err rc = run_ready_windows(s, err);
    if (rc == SD_OK)
        rc = set_transcript_text(&s->r, err);
    if (rc == SD_OK) {
        *out = s->r.out;
        s->r.out = NULL;
    }
    return rc;
}

void transcribe_stream_free(struct transcribe_stream *s)
{
    if (!s)
        return;
    run_free(&s->r);
    free(s->buf);
    free(s);
}

enum sd_err transcribe_mel_max_begin(const struct whisper_state *st, int n_threads,
                                     struct mel_max **out, struct sd_error *err)
{
    int n_mels = 0, n_bins = 0;
    const float *filters = whisper_model_mel_filters(whisper_state_model(st), &n_mels, &n_bins);
    return mel_max_begin(filters, n_mels, n_threads > 0 ? n_threads : 1, out, err);
}

enum sd_err transcribe_pcm(struct whisper_state *st, const struct tokenizer *tok, const float *pcm,
                           size_t n_samples, const struct transcribe_params *p,
                           struct transcript **out, struct sd_error *err)
{
    /* the streaming path with all the audio at once: one code path, the same numbers */
    struct mel_max *mx = NULL;
    struct transcribe_stream *s = NULL;
    enum sd_err rc = transcribe_mel_max_begin(st, p->n_threads, &mx, err);
    if (rc == SD_OK)
        rc = mel_max_push(mx, pcm, n_samples, err);
    if (rc == SD_OK)
        rc = transcribe_stream_begin(st, tok, n_samples, mel_max_finish(mx), p, &s, err);
    if (rc == SD_OK)
        rc = transcribe_stream_push(s, pcm, n_samples, err);
    if (rc == SD_OK)
        rc = transcribe_stream_finish(s, out, err);
    transcribe_stream_free(s);
    mel_max_free(mx);
    return rc;
}

/*
 * words.c - word-level timestamps (words.h): alignment heads, cross-attention
 * normalisation, median filter, DTW, splitting tokens into words, merging
 * punctuation. Follows openai/whisper's timing.py step by step; the numbers
 * (50 audio frames per second, median width 7, the punctuation sets) are its.
 */
#include "whisper/words.h"
#include "util/utf8.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define FRAMES_PER_SECOND 50.0 /* encoder frames: 20 ms each */
#define MEDIAN_WIDTH 7
#define MAX_WORDS 512

/* Published alignment heads, (layer, head) pairs, per model shape. */
struct heads_preset {
    int n_layer, n_state, multilingual, n;
    const int *pairs;
};

static const int heads_tiny_en[] = {1, 0, 2, 0, 2, 5, 3, 0, 3, 1, 3, 2, 3, 3, 3, 4};
static const int heads_tiny[] = {2, 2, 3, 0, 3, 2, 3, 3, 3, 4, 3, 5};
static const int heads_base_en[] = {3, 3, 4, 7, 5, 1, 5, 5, 5, 7};
static const int heads_base[] = {3, 1, 4, 2, 4, 3, 4, 7, 5, 1, 5, 2, 5, 4, 5, 6};
static const int heads_small_en[] = {6, 6, 7, 0, 7, 3, 7, 8, 8, 2, 8, 5, 8, 7, 9, 0, 9, 4, 9, 8,
                                     9, 10, 10, 0, 10, 1, 10, 2, 10, 3, 10, 6, 10, 11, 11, 2, 11, 4};
static const int heads_small[] = {5, 3, 5, 9, 8, 0, 8, 4, 8, 7, 8, 8, 9, 0, 9, 7, 9, 9, 10, 5};
static const int heads_medium_en[] = {11, 4, 14, 1, 14, 12, 14, 14, 15, 4, 16, 0, 16, 4, 16, 9,
                                      17, 12, 17, 14, 18, 7, 18, 10, 18, 15, 20, 0, 20, 3, 20, 9,
                                      20, 14, 21, 12};
static const int heads_medium[] = {13, 15, 15, 4, 15, 15, 16, 1, 20, 0, 23, 4};

#define PRESET(L, S, ML, arr) {L, S, ML, (int)(sizeof(arr) / sizeof(arr[0]) / 2), arr}
static const struct heads_preset presets[] = {
    PRESET(4, 384, 0, heads_tiny_en),     PRESET(4, 384, 1, heads_tiny),
    PRESET(6, 512, 0, heads_base_en),     PRESET(6, 512, 1, heads_base),
    PRESET(12, 768, 0, heads_small_en),   PRESET(12, 768, 1, heads_small),
    PRESET(24, 1024, 0, heads_medium_en), PRESET(24, 1024, 1, heads_medium),
};

int words_alignment_heads(const struct whisper_model *m, int *pairs)
{
    const struct whisper_hparams *h = whisper_model_hparams(m);
    int ml = whisper_model_is_multilingual(m) ? 1 : 0;
    for (size_t i = 0; i < sizeof(presets) / sizeof(presets[0]); i++) {
        const struct heads_preset *p = &presets[i];
        if (p->n_layer == h->n_text_layer && p->n_state == h->n_text_state && p->multilingual == ml) {
            memcpy(pairs, p->pairs, (size_t)p->n * 2 * sizeof(int));
            return p->n;
        }
    }
    int n = 0;
    for (int l = h->n_text_layer / 2; l < h->n_text_layer; l++)
        for (int hd = 0; hd < h->n_text_head; hd++) {
            pairs[2 * n] = l;
            pairs[2 * n + 1] = hd;
            n++;
        }
    return n;
}

/* ---- attention matrix -> cost -------------------------------------------- */

static void softmax_row(float *x, int n)
{
    float max = -INFINITY;
    for (int i = 0; i < n; i++)
        if (x[i] > max)
            max = x[i];
    double sum = 0.0;
    for (int i = 0; i < n; i++)
        sum += exp((double)x[i] - max);
    for (int i = 0; i < n; i++)
        x[i] = (float)(exp((double)x[i] - max) / sum);
}

/* Per head: standardise each frame column over the tokens (population std). */
static void standardise(float *w, int n_rows, int n_frames)
{
    for (int t = 0; t < n_frames; t++) {
        double mean = 0.0, var = 0.0;
        for (int r = 0; r < n_rows; r++)
            mean += w[(size_t)r * n_frames + t];
        mean /= n_rows;
        for (int r = 0; r < n_rows; r++) {
            double d = w[(size_t)r * n_frames + t] - mean;
            var += d * d;
        }
        double sd = sqrt(var / n_rows);
        for (int r = 0; r < n_rows; r++) {
            float *v = &w[(size_t)r * n_frames + t];
            *v = sd > 1e-12 ? (float)((*v - mean) / sd) : 0.0f;
        }
    }
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* Median over a sliding window of 7 along a row, reflecting at the edges. */
static void median_filter_row(const float *in, float *out, int n)
{
    const int half = MEDIAN_WIDTH / 2;
    float win[MEDIAN_WIDTH];
    for (int t = 0; t < n; t++) {
        for (int k = -half; k <= half; k++) {
            int i = t + k;
            if (n > 1) {
                while (i < 0 || i >= n)
                    i = i < 0 ? -i : 2 * (n - 1) - i;
            } else {
                i = 0;
            }
            win[k + half] = in[i];
        }
        qsort(win, MEDIAN_WIDTH, sizeof(float), cmp_float);
        out[t] = win[half];
    }
}

/*
 * Dynamic time warping over cost[n_rows][n_frames] (lower is better): the
 * monotonic path from (0, 0) to the end. path_row/path_col get its steps;
 * returns the number of steps.
 */
int words_dtw(const float *cost, int n_rows, int n_frames, int *path_row, int *path_col)
{
    const int W = n_frames + 1;
    double *acc = malloc((size_t)(n_rows + 1) * W * sizeof(double));
    signed char *trace = malloc((size_t)(n_rows + 1) * W);
    if (!acc || !trace) {
        free(acc);
        free(trace);
        return -1;
    }
    for (int i = 0; i <= n_rows; i++)
        for (int j = 0; j <= n_frames; j++) {
            acc[(size_t)i * W + j] = INFINITY;
            trace[(size_t)i * W + j] = -1;
        }
    acc[0] = 0.0;
    for (int j = 1; j <= n_frames; j++)
        for (int i = 1; i <= n_rows; i++) {
            double c0 = acc[(size_t)(i - 1) * W + j - 1], c1 = acc[(size_t)(i - 1) * W + j];
            double c2 = acc[(size_t)i * W + j - 1], c;
            signed char t;
            if (c0 < c1 && c0 < c2) {
                c = c0;
                t = 0;
            } else if (c1 < c0 && c1 < c2) {
                c = c1;
                t = 1;
            } else {
                c = c2;
                t = 2;
            }
            acc[(size_t)i * W + j] = cost[(size_t)(i - 1) * n_frames + j - 1] + c;
            trace[(size_t)i * W + j] = t;
        }
    for (int j = 0; j <= n_frames; j++)
        trace[j] = 2;
    for (int i = 0; i <= n_rows; i++)
        trace[(size_t)i * W] = 1;
    int n = 0, i = n_rows, j = n_frames;
    while (i > 0 || j > 0) {
        path_row[n] = i - 1;
        path_col[n] = j - 1;
        n++;
        int t = trace[(size_t)i * W + j];
        if (t == 0) {
            i--;
            j--;
        } else if (t == 1) {
            i--;
        } else {
            j--;
        }
    }
    for (int a = 0, b = n - 1; a < b; a++, b--) {
        int r = path_row[a], c = path_col[a];
        path_row[a] = path_row[b];
        path_col[a] = path_col[b];
        path_row[b] = r;
        path_col[b] = c;
    }
    free(acc);
    free(trace);
    return n;
}

/* ---- tokens -> words ----------------------------------------------------- */

struct word_span {
    int begin, end; /* token range in text */
};

static bool utf8_complete(const uint8_t *b, size_t n)
{
    uint32_t cp;
    for (size_t i = 0, len; i < n; i += len)
        if ((len = sd_utf8_char(b + i, n - i, &cp)) == 0)
            return false;
    return true;
}

/* Text of tokens [begin, end), malloc'd. */
static char *span_text(const struct tokenizer *tok, const int32_t *text, int begin, int end)
{
    return tok_decode(tok, text + begin, end - begin);
}

static bool is_punctuation_run(const char *s)
{
    static const char punct[] = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";
    while (*s == ' ')
        s++;
    size_t n = strlen(s);
    while (n > 0 && s[n - 1] == ' ')
        n--;
    if (n == 0)
        return true; /* openai: "" is "in" string.punctuation */
    for (size_t i = 0; i + n <= sizeof(punct) - 1; i++)
        if (strncmp(punct + i, s, n) == 0)
            return true;
    return false;
}

/*
 * Groups tokens into units that decode to whole UTF-8 characters, then (for
 * languages with spaces) joins units into words: a unit starting with a space,
 * or made of punctuation, starts a new word.
 */
static int split_words(const struct words_input *in, struct word_span *words)
{
    int n_units = 0, begin = 0;
    struct word_span units[MAX_WORDS * 2];
    for (int i = 0; i < in->n_text && n_units < MAX_WORDS * 2; i++) {
        size_t len = 0;
        uint8_t buf[256];
        for (int k = begin; k <= i; k++) {
            size_t n = 0;
            const uint8_t *b = tok_bytes(in->tok, in->text[k], &n);
            if (len + n > sizeof(buf))
                n = 0;
            memcpy(buf + len, b, n);
            len += n;
        }
        if (utf8_complete(buf, len) || i - begin >= 7) {
            units[n_units++] = (struct word_span){begin, i + 1};
            begin = i + 1;
        }
    }
    if (begin < in->n_text && n_units < MAX_WORDS * 2)
        units[n_units++] = (struct word_span){begin, in->n_text};
    static const char *const no_space[] = {"zh", "ja", "th", "lo", "my", "yue"};
    bool by_char = false;
    for (size_t i = 0; in->language && i < sizeof(no_space) / sizeof(no_space[0]); i++)
        by_char |= strcmp(in->language, no_space[i]) == 0;
    int n_words = 0;
    for (int u = 0; u < n_units; u++) {
        char *s = span_text(in->tok, in->text, units[u].begin, units[u].end);
        bool starts_word = by_char || n_words == 0 || (s && (s[0] == ' ' || is_punctuation_run(s)));
        free(s);
        if (starts_word && n_words < MAX_WORDS)
            words[n_words++] = units[u];
        else if (n_words > 0)
            words[n_words - 1].end = units[u].end;
    }
    return n_words;
}

/* ---- punctuation --------------------------------------------------------- */

static bool in_set(const char *word, const char *const *set, size_t n)
{
    const char *w = word;
    while (*w == ' ')
        w++;
    for (size_t i = 0; i < n; i++)
        if (strcmp(w, set[i]) == 0)
            return true;
    return false;
}

static char *concat(const char *a, const char *b)
{
    size_t na = strlen(a), nb = strlen(b);
    char *s = malloc(na + nb + 1);
    if (s) {
        memcpy(s, a, na);
        memcpy(s + na, b, nb + 1);
    }
    return s;
}

/* openai's merge_punctuations: opening marks join the next word, closing marks the previous. */
static void merge_punctuation(struct word_timing *w, int n)
{
    static const char *const prepend[] = {"\"", "'", "\u201c", "\u00bf", "(", "[", "{", "-"};
    static const char *const append[] = {"\"", "'", ".", "\u3002", ",", "\uff0c", "!", "\uff01",
                                         "?", "\uff1f", ":", "\uff1a", "\u201d", ")", "]", "}",
                                         "\u3001"};
    for (int i = n - 2; i >= 0; i--) {
        if (!w[i].word[0] || !w[i + 1].word[0])
            continue;
        if (w[i].word[0] == ' ' && in_set(w[i].word, prepend, sizeof(prepend) / sizeof(prepend[0]))) {
            char *s = concat(w[i].word, w[i + 1].word);
            if (!s)
                continue;
            free(w[i + 1].word);
            w[i + 1].word = s;
            w[i + 1].token_begin = w[i].token_begin;
            w[i].word[0] = 0;
        }
    }
    for (int i = 0; i + 1 < n; i++) {
        size_t len = strlen(w[i].word);
        if (!len || w[i].word[len - 1] == ' ' || !w[i + 1].word[0])
            continue;
        if (in_set(w[i + 1].word, append, sizeof(append) / sizeof(append[0])) &&
            w[i + 1].word[0] != ' ') {
            char *s = concat(w[i].word, w[i + 1].word);
            if (!s)
                continue;
            free(w[i].word);
            w[i].word = s;
            w[i].token_end = w[i + 1].token_end;
            w[i + 1].word[0] = 0;
        }
    }
}

/* ---- the whole alignment ------------------------------------------------- */

void words_free(struct word_timing *w, int n)
{
    for (int i = 0; w && i < n; i++)
        free(w[i].word);
    free(w);
}

/* Cost matrix for DTW: -(mean over heads of the normalised, filtered weights). */
static enum sd_err attention_cost(const struct words_input *in, const int32_t *tokens,
                                  int n_tokens, int n_frames, float *cost, struct sd_error *err)
{
    const struct whisper_model *m = whisper_state_model(in->st);
    const struct whisper_hparams *h = whisper_model_hparams(m);
    int *pairs = malloc((size_t)2 * h->n_text_layer * h->n_text_head * sizeof(int));
    float *qk = NULL, *row = malloc((size_t)n_frames * sizeof(float));
    enum sd_err rc = SD_OK;
    if (!pairs || !row) {
        rc = sd_fail(err, SD_ENOMEM, "word alignment");
        goto done;
    }
    int n_heads = words_alignment_heads(m, pairs);
    qk = malloc((size_t)n_heads * n_tokens * n_frames * sizeof(float));
    if (!qk) {
        rc = sd_fail(err, SD_ENOMEM, "word alignment weights");
        goto done;
    }
    rc = whisper_decode_cross_attention(in->st, 0, tokens, n_tokens, pairs, n_heads, n_frames, qk,
                                        err);
    if (rc)
        goto done;
    /* rows n_sot .. n_tokens-2: the no-timestamps token and each text token (they predict the next) */
    const int r0 = in->n_sot, n_rows = n_tokens - 1 - in->n_sot;
    memset(cost, 0, (size_t)n_rows * n_frames * sizeof(float));
    for (int a = 0; a < n_heads; a++) {
        float *w = qk + (size_t)a * n_tokens * n_frames;
        for (int r = 0; r < n_tokens; r++)
            softmax_row(w + (size_t)r * n_frames, n_frames);
        standardise(w, n_tokens, n_frames);
        for (int r = 0; r < n_rows; r++) {
            median_filter_row(w + (size_t)(r0 + r) * n_frames, row, n_frames);
            for (int t = 0; t < n_frames; t++)
                cost[(size_t)r * n_frames + t] -= row[t] / (float)n_heads;
        }
    }
done:
    free(pairs);
    free(qk);
    free(row);
    return rc;
}

static int cmp_double_asc(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* openai's heuristic: sentence-final words may not stretch over a long pause. */
static void clamp_long_words(struct word_timing *w, int n)
{
    double d[MAX_WORDS];
    int k = 0;
    for (int i = 0; i < n; i++)
        if (w[i].end > w[i].start)
            d[k++] = w[i].end - w[i].start;
    if (k == 0)
        return;
    qsort(d, (size_t)k, sizeof(double), cmp_double_asc);
    double median = d[k / 2] < 0.7 ? d[k / 2] : 0.7, max_d = 2.0 * median;
    for (int i = 1; i < n; i++) {
        if (w[i].end - w[i].start <= max_d)
            continue;
        size_t len = strlen(w[i].word);
        char last = len ? w[i].word[len - 1] : 0;
        if (last == '.' || last == '!' || last == '?')
            w[i].end = w[i].start + max_d;
    }
}

enum sd_err words_align(const struct words_input *in, struct word_timing **out, int *n_out,
                        struct sd_error *err)
{
    *out = NULL;
    *n_out = 0;
    if (in->n_text <= 0)
        return SD_OK;
    const struct whisper_special_tokens *sp = whisper_model_special(whisper_state_model(in->st));
    int n_tokens = in->n_sot + 1 + in->n_text + 1;
    int n_frames = in->n_mel_frames / 2;
    if (n_frames < 1)
        n_frames = 1;
    if (n_frames > 1500)
        n_frames = 1500;
    int n_rows = in->n_text + 1;
    int32_t *tokens = malloc((size_t)n_tokens * sizeof(int32_t));
    float *cost = malloc((size_t)n_rows * n_frames * sizeof(float));
    int *prow = malloc((size_t)(n_rows + n_frames) * 2 * sizeof(int));
    struct word_span *spans = malloc(MAX_WORDS * sizeof(*spans));
    struct word_timing *w = NULL;
    double *row_time = NULL; /* time at which the path first enters each row */
    enum sd_err rc = SD_OK;
    if (!tokens || !cost || !prow || !spans) {
        rc = sd_fail(err, SD_ENOMEM, "word alignment");
        goto done;
    }
    memcpy(tokens, in->sot_seq, (size_t)in->n_sot * sizeof(int32_t));
    tokens[in->n_sot] = sp->no_timestamps;
    memcpy(tokens + in->n_sot + 1, in->text, (size_t)in->n_text * sizeof(int32_t));
    tokens[n_tokens - 1] = sp->eot;
    rc = attention_cost(in, tokens, n_tokens, n_frames, cost, err);
    if (rc)
        goto done;
    int *pcol = prow + (n_rows + n_frames);
    int n_path = words_dtw(cost, n_rows, n_frames, prow, pcol);
    if (n_path < 0) {
        rc = sd_fail(err, SD_ENOMEM, "word alignment path");
        goto done;
    }
    /* the path is monotonic and visits every row */
    row_time = malloc((size_t)n_rows * sizeof(double));
    if (!row_time) {
        rc = sd_fail(err, SD_ENOMEM, "word alignment");
        goto done;
    }
    for (int k = 0, last = -1; k < n_path; k++)
        if (prow[k] != last) {
            last = prow[k];
            row_time[last] = pcol[k] / FRAMES_PER_SECOND;
        }
    int n_words = split_words(in, spans);
    w = calloc((size_t)(n_words ? n_words : 1), sizeof(*w));
    if (!w) {
        rc = sd_fail(err, SD_ENOMEM, "words");
        goto done;
    }
    for (int i = 0; i < n_words; i++) {
        w[i].word = span_text(in->tok, in->text, spans[i].begin, spans[i].end);
        if (!w[i].word) {
            words_free(w, i);
            w = NULL;
            rc = sd_fail(err, SD_ENOMEM, "word text");
            goto done;
        }
        w[i].token_begin = spans[i].begin;
        w[i].token_end = spans[i].end;
        w[i].start = in->offset_s + row_time[spans[i].begin];
        w[i].end = in->offset_s + row_time[spans[i].end];
        double p = 0.0;
        for (int k = spans[i].begin; k < spans[i].end; k++)
            p += exp(in->text_logprob[k]);
        w[i].probability = (float)(p / (spans[i].end - spans[i].begin));
    }
    clamp_long_words(w, n_words);
    merge_punctuation(w, n_words);
    int kept = 0;
    for (int i = 0; i < n_words; i++) {
        if (w[i].word[0])
            w[kept++] = w[i];
        else
            free(w[i].word);
    }
    *out = w;
    *n_out = kept;
    w = NULL;
done:
    free(tokens);
    free(cost);
    free(prow);
    free(spans);
    free(row_time);
    free(w);
    return rc;
}

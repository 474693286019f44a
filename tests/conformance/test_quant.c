/*
 * test_quant.c - quantized models against the f16 run of the same random
 * model (the micro model of ../shared/reference, converted here with
 * whisper_model_quantize): top-1 agreement of the logits on the teacher-forced
 * positions of every clip (reference/nofa/<clip>.tf.json), fed the stored
 * mel. Counted where the f16 top-1 leads its runner-up by >= 0.1 and by
 * >= 0.3: random weights give many near-ties that any rounding flips, and
 * q5_0 moves each logit by ~0.17 rms (the gap between two by ~0.25).
 * whisper.cpp itself, on the same files (our quantizer writes the same
 * bytes) and positions, measured with its own f16 run as the reference:
 * q8_0 100 % at 0.1; q5_0 85.5 % at 0.1 and 97.8 % at 0.3 (ours: 84.9 % and
 * the same flips), so the 95 % for q5_0 holds at the 0.3 lead, as it
 * does for the reference. Ours against whisper.cpp's q5_0 logits directly:
 * 100 % at 0.1. Bounds per type in `need`; overall agreement and the logits'
 * rms difference are printed on stderr. SCRIBED_QUANT_F16=path runs another
 * f16 model (e.g. base-shaped: q5_0 93.6 % at 0.1, both engines).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "refdata.h"
#include "whisper/quantize.h"
#include "whisper/whisper.h"

static const char *const QCLIPS[] = {"a_short", "b_sentence", "c_passage", "d_silence", "e_noise"};

static int q_argmax(const float *v, int n)
{
    int best = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[best])
            best = i;
    return best;
}

struct qrun {
    struct whisper_model *m;
    struct whisper_state *st;
    float *logits;
};

static int qrun_open(struct qrun *r, const char *path)
{
    struct sd_error err = {0};
    memset(r, 0, sizeof(*r));
    CHECK_OK(whisper_model_load(path, &r->m, &err), &err);
    if (!r->m)
        return 0;
    CHECK_OK(whisper_state_create(r->m, 2, 1, &r->st, &err), &err);
    r->logits = malloc(sizeof(float) * (size_t)whisper_model_hparams(r->m)->n_vocab);
    return r->st != NULL;
}

static void qrun_close(struct qrun *r)
{
    whisper_state_destroy(r->st);
    whisper_model_free(r->m);
    free(r->logits);
}

/* Agreement counts: all positions, and those where f16's top-1 leads by >= MARGIN (WIDE). */
#define MARGIN 0.1
#define MARGIN_WIDE 0.3
struct qstats {
    int agree, total, agree_decided, decided, agree_wide, wide;
    double sq_diff, n_diff;
};

/* f16's lead of its top-1 over the runner-up. */
static float lead_of(const float *v, int n, int top)
{
    float second = -INFINITY;
    for (int i = 0; i < n; i++)
        if (i != top && v[i] > second)
            second = v[i];
    return v[top] - second;
}

/* Teacher-forced positions of one clip, accumulated into *q. */
static void compare_clip(struct qrun *a, struct qrun *b, const char *clip, struct qstats *q)
{
    char rel[128], path[512];
    struct sd_error err = {0};
    size_t n = 0;
    snprintf(rel, sizeof(rel), "%s.mel.f32", clip);
    float *mel = ref_read_f32(ref_path(path, sizeof(path), rel), &n);
    snprintf(rel, sizeof(rel), "nofa/%s.tf.json", clip);
    json_t *j = ref_read_json(ref_path(path, sizeof(path), rel));
    if (!mel || !j || n != 80 * 3000) {
        CHECK(!"reference data missing");
        free(mel);
        json_decref(j);
        return;
    }
    CHECK_OK(whisper_encode(a->st, mel, 3000, &err), &err);
    CHECK_OK(whisper_encode(b->st, mel, 3000, &err), &err);
    json_t *seq = json_object_get(j, "sequence");
    size_t n_seq = json_array_size(seq);
    int32_t *toks = calloc(n_seq + 1, sizeof(int32_t));
    for (size_t i = 0; i < n_seq; i++)
        toks[i] = (int32_t)json_integer_value(json_array_get(seq, i));
    int V = whisper_model_hparams(a->m)->n_vocab;
    for (size_t pos = 1; pos < n_seq; pos++) {
        struct qrun *runs[2] = {a, b};
        for (int r = 0; r < 2; r++) {
            if (pos == 1)
                CHECK_OK(whisper_decode(runs[r]->st, 0, toks, 2, 0, runs[r]->logits, &err), &err);
            else
                CHECK_OK(whisper_decode(runs[r]->st, 0, &toks[pos], 1, (int)pos, runs[r]->logits,
                                        &err), &err);
        }
        int ta = q_argmax(a->logits, V), tb = q_argmax(b->logits, V);
        float lead = lead_of(a->logits, V, ta);
        int decided = lead >= MARGIN, wide = lead >= MARGIN_WIDE;
        q->agree += ta == tb;
        q->total++;
        q->agree_decided += decided && ta == tb;
        q->decided += decided;
        q->agree_wide += wide && ta == tb;
        q->wide += wide;
        for (int i = 0; i < V; i++)
            q->sq_diff += (double)(a->logits[i] - b->logits[i]) * (a->logits[i] - b->logits[i]);
        q->n_diff += V;
    }
    free(toks);
    free(mel);
    json_decref(j);
}

TEST(quant_models_agree_with_f16)
{
    static const char *const types[] = {"q8_0", "q5_0", "q5_1", "q4_0", "q4_1"};
    /* [type][lead >= MARGIN, >= MARGIN_WIDE]: the 99 % (q8_0) and 95 % (q5_0) */
    static const double need[][2] = {{0.99, 0.99}, {0.80, 0.95}, {0.85, 0.90}, {0.60, 0.75},
                                     {0.70, 0.80}};
    char f16[512], out[512];
    if (getenv("SCRIBED_QUANT_F16")) /* e.g. a base-shaped mkmodel file: slower, fewer ties */
        snprintf(f16, sizeof(f16), "%s", getenv("SCRIBED_QUANT_F16"));
    else
        ref_path(f16, sizeof(f16), "micro-en.f16.bin");
    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    struct qrun a;
    if (!qrun_open(&a, f16))
        return;
    for (size_t t = 0; t < sizeof(types) / sizeof(types[0]); t++) {
        struct sd_error err = {0};
        snprintf(out, sizeof(out), "%s/scribed-quant-test-%d-%s.bin", tmp, (int)getpid(), types[t]);
        CHECK_OK(whisper_model_quantize(f16, out, (enum sd_type)whisper_quant_type_parse(types[t]),
                                        NULL, &err), &err);
        struct qrun b;
        struct qstats q = {0};
        if (qrun_open(&b, out))
            for (size_t c = 0; c < sizeof(QCLIPS) / sizeof(QCLIPS[0]); c++)
                compare_clip(&a, &b, QCLIPS[c], &q);
        qrun_close(&b);
        unlink(out);
        double frac = q.decided ? (double)q.agree_decided / q.decided : 0;
        double frac_wide = q.wide ? (double)q.agree_wide / q.wide : 0;
        fprintf(stderr, "quant %s: top-1 agrees with f16 at %d/%d teacher-forced positions "
                "(%.1f %%); where f16 leads by >= %.2f: %d/%d (%.1f %%), by >= %.2f: %d/%d "
                "(%.1f %%); logits rms diff %.4f\n",
                types[t], q.agree, q.total, 100.0 * q.agree / (q.total ? q.total : 1), MARGIN,
                q.agree_decided, q.decided, 100 * frac, MARGIN_WIDE, q.agree_wide, q.wide,
                100 * frac_wide, sqrt(q.sq_diff / (q.n_diff + 1e-30)));
        CHECK_MSG(q.decided > q.total / 2 && frac >= need[t][0], "%s: agreement %.3f < %.2f",
                  types[t], frac, need[t][0]);
        CHECK_MSG(q.wide > q.total / 4 && frac_wide >= need[t][1],
                  "%s: agreement at lead %.1f %.3f < %.2f", types[t], MARGIN_WIDE, frac_wide,
                  need[t][1]);
    }
    qrun_close(&a);
}

TEST(quant_rejects_bad_input)
{
    struct sd_error err = {0};
    char f16[512];
    ref_path(f16, sizeof(f16), "micro-en.f16.bin");
    CHECK(whisper_model_quantize(f16, "/nonexistent-dir/x.bin", SD_TYPE_Q8_0, NULL, &err) ==
          SD_EIO);
    CHECK(whisper_model_quantize("/nonexistent.bin", "/tmp/x.bin", SD_TYPE_Q8_0, NULL, &err) ==
          SD_EIO);
    CHECK(whisper_model_quantize(f16, "/tmp/x.bin", SD_TYPE_F16, NULL, &err) == SD_EINVAL);
    CHECK_EQ_INT(whisper_quant_type_parse("q9_9"), -1);
    CHECK_EQ_INT(whisper_quant_type_parse("q5_1"), SD_TYPE_Q5_1);
}

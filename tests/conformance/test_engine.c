/*
 * test_engine.c - the encoder and decoder against whisper.cpp's exact-
 * attention outputs (reference/nofa/) on the micro model, fed the STORED
 * reference mel so this does not depend on our mel: encoder output, prompt
 * logits, teacher-forced top-1/top-5/logsumexp per position. Prints the
 * measured differences per clip on stderr. Also: batched decode equals single
 * decodes, KV copies, a long prompt equals token-by-token, scalar kernels.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "refdata.h"
#include "whisper/whisper.h"

static const char *const CLIPS[] = {"a_short", "b_sentence", "c_passage", "d_silence", "e_noise"};

struct eng {
    struct whisper_model *m;
    struct whisper_state *st;
    int n_vocab;
    float *logits;
};

static int eng_open(struct eng *e, int n_seq)
{
    char path[512];
    struct sd_error err = {0};
    memset(e, 0, sizeof(*e));
    CHECK_OK(whisper_model_load(ref_path(path, sizeof(path), "micro-en.f16.bin"), &e->m, &err),
             &err);
    if (!e->m)
        return 0;
    CHECK_OK(whisper_state_create(e->m, 2, n_seq, &e->st, &err), &err);
    e->n_vocab = whisper_model_hparams(e->m)->n_vocab;
    e->logits = malloc(sizeof(float) * (size_t)e->n_vocab * (size_t)n_seq);
    return e->st != NULL;
}

static void eng_close(struct eng *e)
{
    whisper_state_destroy(e->st);
    whisper_model_free(e->m);
    free(e->logits);
}

static int eng_encode(struct eng *e, const char *clip)
{
    char rel[128], path[512];
    size_t n = 0;
    struct sd_error err = {0};
    snprintf(rel, sizeof(rel), "%s.mel.f32", clip);
    float *mel = ref_read_f32(ref_path(path, sizeof(path), rel), &n);
    if (!mel)
        return 0;
    CHECK_EQ_INT(n, 80 * 3000);
    enum sd_err rc = whisper_encode(e->st, mel, 3000, &err);
    CHECK_OK(rc, &err);
    free(mel);
    return rc == SD_OK;
}

static int argmax(const float *v, int n)
{
    int best = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[best])
            best = i;
    return best;
}

static double logsumexp(const float *v, int n)
{
    double mx = v[argmax(v, n)], s = 0;
    for (int i = 0; i < n; i++)
        s += exp((double)v[i] - mx);
    return mx + log(s);
}

/* Encoder output and prompt logits of one clip; returns the max diffs through *out. */
static void check_encoder_prompt(struct eng *e, const char *clip, const char *tag)
{
    char rel[128], path[512];
    size_t n = 0;
    struct sd_error err = {0};
    if (!eng_encode(e, clip))
        return;
    snprintf(rel, sizeof(rel), "nofa/%s.enc.f32", clip);
    float *ref = ref_read_f32(ref_path(path, sizeof(path), rel), &n);
    if (!ref)
        return;
    CHECK_EQ_INT(n, 1500 * 64);
    float *enc = malloc(sizeof(float) * n);
    CHECK(enc != NULL);
    if (!enc) {
        free(ref);
        return;
    }
    whisper_encoder_output(e->st, enc);
    double mx = 0, mean = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)enc[i] - ref[i]);
        mx = d > mx || d != d ? d : mx;
        mean += d;
    }
    mean /= (double)n;
    free(ref);
    free(enc);

    int32_t prompt[2] = {50257, 50362};
    CHECK_OK(whisper_decode(e->st, 0, prompt, 2, 0, e->logits, &err), &err);
    snprintf(rel, sizeof(rel), "nofa/%s.prompt_logits.f32", clip);
    ref = ref_read_f32(ref_path(path, sizeof(path), rel), &n);
    if (!ref)
        return;
    CHECK_EQ_INT(n, e->n_vocab);
    double lmx = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)e->logits[i] - ref[i]);
        lmx = d > lmx || d != d ? d : lmx;
    }
    int am = argmax(e->logits, e->n_vocab), ram = argmax(ref, e->n_vocab);
    fprintf(stderr, "engine%s %-10s encoder max %.3g mean %.3g | prompt logits max %.3g, argmax "
            "%d vs %d\n", tag, clip, mx, mean, lmx, am, ram);
    CHECK_MSG(mx <= 3e-2, "%s: encoder max diff %g", clip, mx);
    CHECK_MSG(mean <= 3e-3, "%s: encoder mean diff %g", clip, mean);
    CHECK_MSG(lmx <= 0.15, "%s: prompt logits max diff %g", clip, lmx);
    CHECK_EQ_INT(am, ram);
    free(ref);
}

TEST(engine_encoder_and_prompt_logits)
{
    struct eng e;
    if (eng_open(&e, 1))
        for (size_t c = 0; c < sizeof(CLIPS) / sizeof(CLIPS[0]); c++)
            check_encoder_prompt(&e, CLIPS[c], "");
    eng_close(&e);
}

/* The narrower kernel tables conform too (the default run uses the widest the CPU has). */
static void check_kernels_conform(const char *simd)
{
    setenv("SCRIBED_SIMD", simd, 1); /* each test runs in its own process */
    char label[32];
    snprintf(label, sizeof(label), "(%s)", simd);
    struct eng e;
    if (eng_open(&e, 1)) {
        check_encoder_prompt(&e, "b_sentence", label);
        check_encoder_prompt(&e, "e_noise", label);
    }
    eng_close(&e);
}

TEST(engine_scalar_kernels_conform)
{
    check_kernels_conform("scalar");
}

TEST(engine_avx2_kernels_conform)
{
    check_kernels_conform("avx2");
}

/*
 * The AVX-512 variants calibration may pick (on a CPU without AVX-512 this reruns avx2);
 * avx512 itself, which is not the default where the CPU has AMX, and amx (its GEMM on
 * tiles with bf16 hi/lo splitting; without AMX the widest table the CPU has).
 */
TEST(engine_avx512_kernels_conform)
{
    check_kernels_conform("avx512");
}

TEST(engine_amx_kernels_conform)
{
    check_kernels_conform("amx");
}

TEST(engine_avx512y_kernels_conform)
{
    check_kernels_conform("avx512y");
}

TEST(engine_avx512np_kernels_conform)
{
    check_kernels_conform("avx512np");
}

TEST(engine_avx512r4_kernels_conform)
{
    check_kernels_conform("avx512r4");
}

TEST(engine_avx512l2_kernels_conform)
{
    check_kernels_conform("avx512l2");
}

static void check_teacher_forced(struct eng *e, const char *clip)
{
    char rel[128], path[512];
    struct sd_error err = {0};
    if (!eng_encode(e, clip))
        return;
    snprintf(rel, sizeof(rel), "nofa/%s.tf.json", clip);
    json_t *j = ref_read_json(ref_path(path, sizeof(path), rel));
    if (!j)
        return;
    json_t *seq = json_object_get(j, "sequence"), *positions = json_object_get(j, "positions");
    CHECK(json_is_array(seq) && json_is_array(positions));
    size_t n_seq = json_array_size(seq);
    int32_t *toks = calloc(n_seq + 1, sizeof(int32_t));
    for (size_t i = 0; i < n_seq; i++)
        toks[i] = (int32_t)json_integer_value(json_array_get(seq, i));
    int n_checked = 0, n_agree = 0, n_pos = 0, n_agree_all = 0;
    double top5_max = 0, lse_max = 0;
    size_t k;
    json_t *p;
    json_array_foreach(positions, k, p) {
        int pos = (int)json_integer_value(json_object_get(p, "pos"));
        if (pos == 1)
            CHECK_OK(whisper_decode(e->st, 0, toks, 2, 0, e->logits, &err), &err);
        else
            CHECK_OK(whisper_decode(e->st, 0, &toks[pos], 1, pos, e->logits, &err), &err);
        json_t *ids = json_object_get(p, "top5_ids"), *vals = json_object_get(p, "top5_logits");
        double v0 = json_real_value(json_array_get(vals, 0));
        double v1 = json_real_value(json_array_get(vals, 1));
        int ref_top = (int)json_integer_value(json_array_get(ids, 0));
        int our_top = argmax(e->logits, e->n_vocab);
        n_pos++;
        n_agree_all += our_top == ref_top;
        if (v0 - v1 >= 2e-2) {
            n_checked++;
            n_agree += our_top == ref_top;
            CHECK_MSG(our_top == ref_top, "%s pos %d: top-1 %d vs reference %d (margin %.3g)",
                      clip, pos, our_top, ref_top, v0 - v1);
        }
        for (int t = 0; t < 5; t++) {
            int id = (int)json_integer_value(json_array_get(ids, (size_t)t));
            double d = fabs(e->logits[id] - json_real_value(json_array_get(vals, (size_t)t)));
            top5_max = d > top5_max ? d : top5_max;
        }
        double lse = logsumexp(e->logits, e->n_vocab);
        double d = fabs(lse - json_real_value(json_object_get(p, "logsumexp")));
        lse_max = d > lse_max ? d : lse_max;
    }
    fprintf(stderr, "engine %-10s teacher-forced %d positions: top-1 agrees %d/%d with margin >= "
            "0.02 (%d/%d overall), top-5 logits max diff %.3g, logsumexp max diff %.3g\n",
            clip, n_pos, n_agree, n_checked, n_agree_all, n_pos, top5_max, lse_max);
    CHECK_MSG(top5_max <= 0.15, "%s: top-5 logits differ by %g", clip, top5_max);
    CHECK_MSG(lse_max <= 2e-2, "%s: logsumexp differs by %g", clip, lse_max);
    CHECK(n_pos > 0);
    free(toks);
    json_decref(j);
}

TEST(engine_teacher_forced)
{
    struct eng e;
    if (eng_open(&e, 1))
        for (size_t c = 0; c < sizeof(CLIPS) / sizeof(CLIPS[0]); c++)
            check_teacher_forced(&e, CLIPS[c]);
    eng_close(&e);
}

static double max_diff(const float *a, const float *b, int n)
{
    double mx = 0;
    for (int i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        mx = d > mx || d != d ? d : mx;
    }
    return mx;
}

TEST(engine_batch_equals_single_and_kv_copy)
{
    enum { N = 5 };
    struct eng e;
    struct sd_error err = {0};
    if (!eng_open(&e, N) || !eng_encode(&e, "b_sentence")) {
        eng_close(&e);
        return;
    }
    int V = e.n_vocab;
    int32_t prompt[2] = {50257, 50362};
    float *single = malloc(sizeof(float) * (size_t)V * N);
    float *ref0 = malloc(sizeof(float) * (size_t)V);
    CHECK_OK(whisper_decode(e.st, 0, prompt, 2, 0, e.logits, &err), &err);
    for (int s = 1; s < N; s++)
        whisper_kv_copy(e.st, 0, s, 2);
    /* a copied cache continues exactly like the original */
    int32_t t0 = 383;
    CHECK_OK(whisper_decode(e.st, 0, &t0, 1, 2, ref0, &err), &err);
    CHECK_OK(whisper_decode(e.st, 1, &t0, 1, 2, e.logits, &err), &err);
    CHECK(max_diff(ref0, e.logits, V) == 0.0);
    /* sequence 3 gets one more token so the batch mixes positions */
    int32_t extra = 1000;
    CHECK_OK(whisper_decode(e.st, 3, &extra, 1, 2, e.logits, &err), &err);
    int seqs[N] = {0, 1, 2, 3, 4}, n_past[N] = {2, 2, 2, 3, 2};
    int32_t toks[N] = {383, 2068, 7586, 21146, 50256};
    for (int s = 0; s < N; s++)
        CHECK_OK(whisper_decode(e.st, s, &toks[s], 1, n_past[s], single + (size_t)s * V, &err),
                 &err);
    float *batch = malloc(sizeof(float) * (size_t)V * N);
    CHECK_OK(whisper_decode_batch(e.st, N, seqs, toks, n_past, batch, &err), &err);
    double worst = 0;
    for (int s = 0; s < N; s++) {
        double d = max_diff(single + (size_t)s * V, batch + (size_t)s * V, V);
        worst = d > worst ? d : worst;
    }
    CHECK_MSG(worst <= 1e-4, "batch vs single max diff %g", worst);
    /* a batch in another order of sequences gives the same rows */
    int seqs_r[N] = {4, 3, 2, 1, 0}, past_r[N] = {2, 3, 2, 2, 2};
    int32_t toks_r[N] = {50256, 21146, 7586, 2068, 383};
    CHECK_OK(whisper_decode_batch(e.st, N, seqs_r, toks_r, past_r, batch, &err), &err);
    for (int s = 0; s < N; s++)
        CHECK(max_diff(single + (size_t)(N - 1 - s) * V, batch + (size_t)s * V, V) <= 1e-4);
    /* bad arguments are errors, not crashes */
    int dup[2] = {1, 1}, past2[2] = {2, 2};
    CHECK(whisper_decode_batch(e.st, 2, dup, toks, past2, batch, &err) == SD_EINVAL);
    int32_t bad = 99999;
    CHECK(whisper_decode(e.st, 0, &bad, 1, 2, batch, &err) == SD_EINVAL);
    CHECK(whisper_decode(e.st, N, toks, 1, 2, batch, &err) == SD_EINVAL);
    CHECK(whisper_decode(e.st, 0, toks, 1, 448, batch, &err) == SD_EINVAL);
    CHECK(whisper_encode(e.st, batch, 2999, &err) == SD_EINVAL);
    free(single);
    free(ref0);
    free(batch);
    eng_close(&e);
}

TEST(engine_long_prompt_equals_incremental)
{
    struct eng e;
    struct sd_error err = {0};
    if (!eng_open(&e, 2) || !eng_encode(&e, "c_passage")) {
        eng_close(&e);
        return;
    }
    int V = e.n_vocab;
    int32_t toks[200];
    toks[0] = 50257;
    toks[1] = 50362;
    for (int i = 2; i < 200; i++)
        toks[i] = (int32_t)((i * 7919) % 50000);
    float *all = malloc(sizeof(float) * (size_t)V);
    /* 40 tokens at once (blocked causal attention, one query block) */
    CHECK_OK(whisper_decode(e.st, 0, toks, 40, 0, all, &err), &err);
    for (int i = 0; i < 40; i++)
        CHECK_OK(whisper_decode(e.st, 1, &toks[i], 1, i, e.logits, &err), &err);
    double d = max_diff(all, e.logits, V);
    CHECK_MSG(d <= 1e-3, "40-token prompt vs incremental: max diff %g", d);
    /* then 160 more at once after that history (several query blocks, shared packed K) */
    CHECK_OK(whisper_decode(e.st, 0, toks + 40, 160, 40, all, &err), &err);
    for (int i = 40; i < 200; i++)
        CHECK_OK(whisper_decode(e.st, 1, &toks[i], 1, i, e.logits, &err), &err);
    d = max_diff(all, e.logits, V);
    CHECK_MSG(d <= 1e-3, "160 tokens after 40 vs incremental: max diff %g", d);
    free(all);
    eng_close(&e);
}

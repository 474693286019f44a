/*
 * test_vad.c - Silero VAD against whisper.cpp's stored output
 * (../shared/reference/vad) and against the clips' ground truth.
 *
 *   probabilities: max abs diff < 1e-3 with the reference's f16 conv inputs,
 *                  < 1e-2 in plain f32;
 *   segments from the stored probabilities: identical (both parameter sets);
 *   segments from our probabilities: same count, boundaries within 4 cs;
 *   ground truth: every speech part found, every gap >= 300 ms splits;
 *   silence and noise clips: no segments.
 * Figures are printed as "# vad ..." lines for the report.
 */
#include <float.h>
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "check.h"
#include "vad/vad.h"

static const char *clips[] = {"vad_a_clean", "vad_b_noise", "vad_c_shortgaps"};
#define N_CLIPS 3

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* 16-bit mono 16 kHz PCM WAV -> floats (s16 / 32768). NULL on any surprise. */
static float *read_wav(const char *path, size_t *n_samples)
{
    size_t n = 0;
    uint8_t *b = check_read_file(path, &n);
    float *out = NULL;
    if (!b || n < 12 || memcmp(b, "RIFF", 4) != 0 || memcmp(b + 8, "WAVE", 4) != 0)
        goto done;
    int fmt_ok = 0;
    for (size_t off = 12; off + 8 <= n;) {
        uint32_t len = le32(b + off + 4);
        const uint8_t *body = b + off + 8;
        if (len > n - off - 8)
            break;
        if (memcmp(b + off, "fmt ", 4) == 0 && len >= 16)
            fmt_ok = (body[0] | body[1] << 8) == 1 && (body[2] | body[3] << 8) == 1 &&
                     le32(body + 4) == 16000 && (body[14] | body[15] << 8) == 16;
        if (memcmp(b + off, "data", 4) == 0 && fmt_ok) {
            *n_samples = len / 2;
            out = malloc((*n_samples ? *n_samples : 1) * sizeof *out);
            for (size_t i = 0; out && i < *n_samples; i++)
                out[i] = (float)(int16_t)(body[2 * i] | body[2 * i + 1] << 8) / 32768.0f;
            break;
        }
        off += 8 + len + (len & 1);
    }
done:
    free(b);
    CHECK_MSG(out != NULL, "cannot read %s as 16 kHz mono s16 WAV", path);
    return out;
}

static struct vad_model *load_model(void)
{
    char path[512];
    snprintf(path, sizeof path, "%s/models/silero-v6.2.0.bin", check_shared_dir());
    struct vad_model *m = NULL;
    struct sd_error err = {0};
    CHECK_OK(vad_model_load(path, &m, &err), &err);
    return m;
}

static float *clip_pcm(const char *clip, size_t *n)
{
    char path[512];
    snprintf(path, sizeof path, "%s/reference/vad/%s.wav", check_shared_dir(), clip);
    return read_wav(path, n);
}

static float *clip_ref_probs(const char *clip, size_t *n)
{
    char path[512];
    size_t bytes = 0;
    snprintf(path, sizeof path, "%s/reference/vad/%s.vad_probs.f32", check_shared_dir(), clip);
    float *p = check_read_file(path, &bytes);
    *n = bytes / sizeof(float);
    return p;
}

/* The manifest's entry for a clip (borrowed from root). */
static json_t *manifest_clip(json_t *root, const char *clip)
{
    json_t *arr = json_object_get(root, "clips"), *c;
    size_t i;
    json_array_foreach(arr, i, c)
        if (strcmp(json_string_value(json_object_get(c, "name")), clip) == 0)
            return c;
    return NULL;
}

static json_t *load_manifest(void)
{
    char path[512];
    snprintf(path, sizeof path, "%s/reference/vad/manifest.json", check_shared_dir());
    json_error_t jerr;
    json_t *root = json_load_file(path, 0, &jerr);
    CHECK_MSG(root != NULL, "%s: %s", path, jerr.text);
    return root;
}

/* The two parameter sets of the reference run (max speech = FLT_MAX, no limit). */
static struct vad_params params_custom(void)
{
    struct vad_params p = vad_params_default();
    p.max_speech_s = FLT_MAX;
    return p;
}

static struct vad_params params_default(void)
{
    struct vad_params p = vad_params_whisper_cpp();
    p.max_speech_s = FLT_MAX;
    return p;
}

static void segments_of(const float *probs, size_t n, const struct vad_params *p,
                        struct vad_segment **s, size_t *ns)
{
    struct sd_error err = {0};
    CHECK_OK(vad_segments_from_probs(probs, n, p, s, ns, &err), &err);
}

/* tol_cs 0: identical; else same count and each boundary within tol_cs. */
static void compare_cs(const char *what, const struct vad_segment *s, size_t ns, json_t *ref,
                       int tol_cs)
{
    CHECK_MSG(ns == json_array_size(ref), "%s: %zu segments, reference %zu", what, ns,
              json_array_size(ref));
    int64_t worst = 0;
    for (size_t i = 0; i < ns && i < json_array_size(ref); i++) {
        json_t *r = json_array_get(ref, i);
        int64_t t0 = json_integer_value(json_array_get(r, 0));
        int64_t t1 = json_integer_value(json_array_get(r, 1));
        int64_t d0 = llabs(vad_samples_to_cs(s[i].start) - t0);
        int64_t d1 = llabs(vad_samples_to_cs(s[i].end) - t1);
        worst = d0 > worst ? d0 : worst;
        worst = d1 > worst ? d1 : worst;
        CHECK_MSG(d0 <= tol_cs && d1 <= tol_cs, "%s segment %zu: [%lld, %lld] cs vs [%lld, %lld]",
                  what, i, (long long)vad_samples_to_cs(s[i].start),
                  (long long)vad_samples_to_cs(s[i].end), (long long)t0, (long long)t1);
    }
    printf("# vad %s: %zu segments, max boundary diff %lld cs\n", what, ns, (long long)worst);
}

TEST(vad_conf_probs_match_reference)
{
    struct vad_model *m = load_model();
    for (int c = 0; c < N_CLIPS; c++) {
        size_t n = 0, n_ref = 0;
        float *pcm = clip_pcm(clips[c], &n);
        float *ref = clip_ref_probs(clips[c], &n_ref);
        for (int prec = 0; prec < 2; prec++) {
            float *p = NULL;
            size_t np = 0;
            struct sd_error err = {0};
            CHECK_OK(vad_probs(m, pcm, n, (enum vad_precision)prec, &p, &np, &err), &err);
            CHECK_EQ_INT(np, n_ref);
            double worst = 0;
            size_t at = 0;
            for (size_t i = 0; i < np && i < n_ref; i++)
                if (fabs((double)p[i] - ref[i]) > worst) {
                    worst = fabs((double)p[i] - ref[i]);
                    at = i;
                }
            printf("# vad %s probs (%s): %zu windows, max abs diff %.3g at window %zu\n",
                   clips[c], prec ? "f32" : "f16 conv inputs", np, worst, at);
            CHECK_MSG(worst < (prec ? 1e-2 : 1e-3), "%s: max diff %g", clips[c], worst);
            free(p);
        }
        free(pcm);
        free(ref);
    }
    vad_model_free(m);
}

TEST(vad_conf_segments_from_stored_probs_exact)
{
    json_t *root = load_manifest();
    for (int c = 0; c < N_CLIPS; c++) {
        size_t n_ref = 0, ns = 0;
        float *ref = clip_ref_probs(clips[c], &n_ref);
        json_t *mc = manifest_clip(root, clips[c]);
        struct vad_segment *s = NULL;
        char what[96];
        struct vad_params pc = params_custom(), pd = params_default();
        segments_of(ref, n_ref, &pc, &s, &ns);
        snprintf(what, sizeof what, "%s stored probs, seed params", clips[c]);
        compare_cs(what, s, ns, json_object_get(mc, "segments_custom_cs"), 0);
        free(s);
        segments_of(ref, n_ref, &pd, &s, &ns);
        snprintf(what, sizeof what, "%s stored probs, whisper.cpp defaults", clips[c]);
        compare_cs(what, s, ns, json_object_get(mc, "segments_default_cs"), 0);
        free(s);
        free(ref);
    }
    json_decref(root);
}

TEST(vad_conf_segments_from_own_probs)
{
    struct vad_model *m = load_model();
    json_t *root = load_manifest();
    for (int c = 0; c < N_CLIPS; c++) {
        size_t n = 0;
        float *pcm = clip_pcm(clips[c], &n);
        json_t *mc = manifest_clip(root, clips[c]);
        for (int prec = 0; prec < 2; prec++) {
            float *p = NULL;
            size_t np = 0, ns = 0;
            struct sd_error err = {0};
            CHECK_OK(vad_probs(m, pcm, n, (enum vad_precision)prec, &p, &np, &err), &err);
            struct vad_segment *s = NULL;
            struct vad_params pc = params_custom(), pd = params_default();
            char what[96];
            segments_of(p, np, &pc, &s, &ns);
            snprintf(what, sizeof what, "%s own probs (%s), seed params", clips[c],
                     prec ? "f32" : "ref");
            compare_cs(what, s, ns, json_object_get(mc, "segments_custom_cs"), 4);
            free(s);
            segments_of(p, np, &pd, &s, &ns);
            snprintf(what, sizeof what, "%s own probs (%s), whisper.cpp defaults", clips[c],
                     prec ? "f32" : "ref");
            compare_cs(what, s, ns, json_object_get(mc, "segments_default_cs"), 4);
            free(s);
            free(p);
        }
        free(pcm);
    }
    json_decref(root);
    vad_model_free(m);
}

/* Ground truth with scribed's defaults (30 s max speech included). */
TEST(vad_conf_ground_truth)
{
    struct vad_model *m = load_model();
    json_t *root = load_manifest();
    struct vad_params params = vad_params_default();
    for (int c = 0; c < N_CLIPS; c++) {
        size_t n = 0, ns = 0;
        float *pcm = clip_pcm(clips[c], &n);
        struct vad_segment *s = NULL;
        struct sd_error err = {0};
        CHECK_OK(vad_detect(m, pcm, n, &params, &s, &ns, &err), &err);
        json_t *truth = json_object_get(manifest_clip(root, clips[c]), "ground_truth_speech_samples");
        size_t nt = json_array_size(truth);
        CHECK(nt > 0);
        for (size_t t = 0; t < nt; t++) {
            int64_t a = json_integer_value(json_array_get(json_array_get(truth, t), 0));
            int64_t b = json_integer_value(json_array_get(json_array_get(truth, t), 1));
            int64_t covered = 0; /* speech samples inside some segment */
            for (size_t i = 0; i < ns; i++) {
                int64_t lo = s[i].start > a ? s[i].start : a, hi = s[i].end < b ? s[i].end : b;
                covered += hi > lo ? hi - lo : 0;
            }
            CHECK_MSG(covered >= (b - a) * 9 / 10, "%s: speech part %zu only %lld of %lld samples",
                      clips[c], t, (long long)covered, (long long)(b - a));
            if (t + 1 < nt) {
                int64_t next = json_integer_value(json_array_get(json_array_get(truth, t + 1), 0));
                if (next - b < VAD_SAMPLE_RATE * 3 / 10)
                    continue;
                for (size_t i = 0; i < ns; i++) /* no segment may bridge a >= 300 ms gap */
                    CHECK_MSG(!(s[i].start <= b && s[i].end >= next),
                              "%s: segment %zu bridges the gap after part %zu", clips[c], i, t);
            }
        }
        for (size_t i = 0; i < ns; i++) { /* and nothing outside the speech */
            int hits = 0;
            for (size_t t = 0; t < nt; t++) {
                int64_t a = json_integer_value(json_array_get(json_array_get(truth, t), 0));
                int64_t b = json_integer_value(json_array_get(json_array_get(truth, t), 1));
                hits += s[i].start < b && s[i].end > a;
            }
            CHECK_MSG(hits > 0, "%s: segment %zu covers no speech", clips[c], i);
        }
        printf("# vad %s ground truth: %zu speech parts, %zu segments\n", clips[c], nt, ns);
        free(s);
        free(pcm);
    }
    json_decref(root);
    vad_model_free(m);
}

TEST(vad_conf_silence_and_noise_give_nothing)
{
    static const char *quiet[] = {"d_silence", "e_noise"};
    struct vad_model *m = load_model();
    struct vad_params params = vad_params_default();
    for (int c = 0; c < 2; c++) {
        char path[512];
        snprintf(path, sizeof path, "%s/reference/%s.wav", check_shared_dir(), quiet[c]);
        size_t n = 0, ns = 0, np = 0;
        float *pcm = read_wav(path, &n);
        float *p = NULL;
        struct vad_segment *s = NULL;
        struct sd_error err = {0};
        CHECK_OK(vad_probs(m, pcm, n, VAD_PRECISION_REFERENCE, &p, &np, &err), &err);
        float pmax = 0;
        for (size_t i = 0; i < np; i++)
            pmax = p[i] > pmax ? p[i] : pmax;
        CHECK_OK(vad_segments_from_probs(p, np, &params, &s, &ns, &err), &err);
        printf("# vad %s: %zu windows, max prob %.3f, %zu segments\n", quiet[c], np, pmax, ns);
        CHECK_EQ_INT(ns, 0);
        free(s);
        free(p);
        free(pcm);
    }
    vad_model_free(m);
}

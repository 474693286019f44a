/*
 * Tests of vad/model.c and vad/net.c: loading the shared Silero file, every
 * kind of damaged file, and the state rules (reset per call, carry-over,
 * one model shared by threads).
 */
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

#include "check.h"
#include "vad/vad.h"

static uint8_t *model_bytes(size_t *n)
{
    char path[512];
    snprintf(path, sizeof path, "%s/models/silero-v6.2.0.bin", check_shared_dir());
    return check_read_file(path, n);
}

static struct vad_model *load(void)
{
    size_t n = 0;
    uint8_t *b = model_bytes(&n);
    struct vad_model *m = NULL;
    struct sd_error err = {0};
    CHECK_OK(vad_model_load_buffer(b, n, &m, &err), &err);
    free(b);
    return m;
}

/* A deterministic test signal: a chirp-like tone with bursts, plus noise. */
static float *signal(size_t n)
{
    float *v = malloc(n * sizeof *v);
    uint32_t r = 12345;
    for (size_t i = 0; i < n; i++) {
        r = r * 1664525u + 1013904223u;
        double t = i / 16000.0;
        double env = fmod(t, 1.0) < 0.6 ? 0.3 : 0.0;
        v[i] = (float)(env * sin(2 * M_PI * (200 + 150 * sin(7 * t)) * t) +
                       0.01 * ((r >> 8) / 16777216.0 - 0.5));
    }
    return v;
}

TEST(vad_model_loads_shared_file)
{
    char path[512];
    snprintf(path, sizeof path, "%s/models/silero-v6.2.0.bin", check_shared_dir());
    struct vad_model *m = NULL;
    struct sd_error err = {0};
    CHECK_OK(vad_model_load(path, &m, &err), &err);
    CHECK_STR(vad_model_version(m), "6.2.0");
    vad_model_free(m);
    vad_model_free(NULL);
}

TEST(vad_model_missing_file)
{
    struct vad_model *m = NULL;
    struct sd_error err = {0};
    CHECK_EQ_INT(vad_model_load("/nonexistent/silero.bin", &m, &err), SD_ENOTFOUND);
    CHECK(strstr(err.msg, "/nonexistent/silero.bin") != NULL);
    CHECK(m == NULL);
}

TEST(vad_model_every_truncation_fails_cleanly)
{
    size_t n = 0;
    uint8_t *b = model_bytes(&n);
    for (size_t cut = 0; cut < n; cut += (cut < 400 ? 1 : 3001)) {
        struct vad_model *m = NULL;
        struct sd_error err = {0};
        enum sd_err rc = vad_model_load_buffer(b, cut, &m, &err);
        CHECK_MSG(rc == SD_EFORMAT, "cut at %zu: rc %d", cut, (int)rc);
        CHECK(m == NULL);
    }
    free(b);
}

TEST(vad_model_damaged_headers)
{
    size_t n = 0;
    uint8_t *b = model_bytes(&n);
    struct vad_model *m = NULL;
    struct sd_error err = {0};
    uint8_t *c = malloc(n);
    memcpy(c, b, n);
    c[0] ^= 1; /* magic */
    CHECK_EQ_INT(vad_model_load_buffer(c, n, &m, &err), SD_EFORMAT);
    memcpy(c, b, n);
    c[8] = 'X'; /* "silero-16k" -> "Xilero-16k" */
    CHECK_EQ_INT(vad_model_load_buffer(c, n, &m, &err), SD_EFORMAT);
    CHECK(strstr(err.msg, "Xilero") != NULL);
    memcpy(c, b, n);
    c[30] = 0x00; c[31] = 0x04; /* n_window 512 -> 1024 */
    CHECK_EQ_INT(vad_model_load_buffer(c, n, &m, &err), SD_EFORMAT);
    memcpy(c, b, n);
    c[4] = 0xff; c[5] = 0xff; c[6] = 0xff; c[7] = 0x7f; /* absurd string length */
    CHECK_EQ_INT(vad_model_load_buffer(c, n, &m, &err), SD_EFORMAT);
    memcpy(c, b, n);
    c[106 + 12] = 4; /* first tensor's ne[0]: 3 -> 4 */
    CHECK_EQ_INT(vad_model_load_buffer(c, n, &m, &err), SD_EFORMAT);
    CHECK(strstr(err.msg, "shape") != NULL || strstr(err.msg, "truncated") != NULL);
    memcpy(c, b, n);
    c[106 + 8] = 7; /* first tensor's type: f16 -> q5_1 */
    CHECK_EQ_INT(vad_model_load_buffer(c, n, &m, &err), SD_EFORMAT);
    memcpy(c, b, n);
    c[106 + 4] = 0xff; /* name length */
    CHECK_EQ_INT(vad_model_load_buffer(c, n, &m, &err), SD_EFORMAT);
    CHECK(m == NULL);
    free(c);
    free(b);
}

TEST(vad_model_random_bytes_never_crash)
{
    size_t n = 0;
    uint8_t *b = model_bytes(&n);
    uint32_t r = 7;
    for (int trial = 0; trial < 300; trial++) {
        uint8_t *c = malloc(n);
        memcpy(c, b, n);
        for (int k = 0; k < 4; k++) { /* flip bytes in the headers region */
            r = r * 1664525u + 1013904223u;
            c[(r >> 8) % 1024] = (uint8_t)(r >> 24);
        }
        struct vad_model *m = NULL;
        struct sd_error err = {0};
        if (vad_model_load_buffer(c, n, &m, &err) == SD_OK)
            vad_model_free(m); /* a harmless flip inside weights */
        free(c);
    }
    free(b);
}

TEST(vad_state_reset_and_carry_over)
{
    struct vad_model *m = load();
    size_t n = 16000 * 3;
    float *pcm = signal(n);
    float *p1 = NULL, *p2 = NULL;
    size_t n1 = 0, n2 = 0;
    struct sd_error err = {0};
    CHECK_OK(vad_probs(m, pcm, n, VAD_PRECISION_REFERENCE, &p1, &n1, &err), &err);
    CHECK_OK(vad_probs(m, pcm, n, VAD_PRECISION_REFERENCE, &p2, &n2, &err), &err);
    CHECK_EQ_INT(n1, (n + 511) / 512);
    CHECK(memcmp(p1, p2, n1 * sizeof *p1) == 0); /* fresh state per call */
    struct vad_state *st = NULL;
    CHECK_OK(vad_state_new(m, VAD_PRECISION_REFERENCE, &st, &err), &err);
    for (size_t i = 0; i < n1; i++) /* streaming steps = one call */
        CHECK(vad_state_step(st, pcm + i * 512, n - i * 512) == p1[i]);
    float again = vad_state_step(st, pcm, n); /* carried state: differs from a fresh start */
    vad_state_reset(st);
    CHECK(vad_state_step(st, pcm, n) == p1[0]);
    CHECK(again != p1[0]);
    for (size_t i = 0; i < n1; i++)
        CHECK(p1[i] >= 0.0f && p1[i] <= 1.0f);
    vad_state_free(st);
    free(p1);
    free(p2);
    free(pcm);
    vad_model_free(m);
}

TEST(vad_probs_edges)
{
    struct vad_model *m = load();
    float *p = (void *)1;
    size_t np = 9;
    struct sd_error err = {0};
    CHECK_OK(vad_probs(m, NULL, 0, VAD_PRECISION_F32, &p, &np, &err), &err);
    CHECK(p == NULL && np == 0);
    float one = 0.5f;
    CHECK_OK(vad_probs(m, &one, 1, VAD_PRECISION_F32, &p, &np, &err), &err);
    CHECK_EQ_INT(np, 1);
    CHECK(isfinite(p[0]));
    free(p);
    CHECK_EQ_INT(vad_probs(NULL, &one, 1, VAD_PRECISION_F32, &p, &np, &err), SD_EINVAL);
    CHECK_EQ_INT(vad_probs(m, &one, 1, (enum vad_precision)5, &p, &np, &err), SD_EINVAL);
    /* loud garbage (clipped square wave, NaN-free) stays finite */
    float *loud = malloc(4096 * sizeof *loud);
    for (int i = 0; i < 4096; i++)
        loud[i] = (i / 3) % 2 ? 1.0f : -1.0f;
    CHECK_OK(vad_probs(m, loud, 4096, VAD_PRECISION_REFERENCE, &p, &np, &err), &err);
    for (size_t i = 0; i < np; i++)
        CHECK(isfinite(p[i]) && p[i] >= 0 && p[i] <= 1);
    free(p);
    free(loud);
    vad_model_free(m);
}

struct thread_job {
    const struct vad_model *m;
    const float *pcm;
    size_t n;
    float *probs;
    size_t n_probs;
};

static void *thread_run(void *arg)
{
    struct thread_job *j = arg;
    vad_probs(j->m, j->pcm, j->n, VAD_PRECISION_REFERENCE, &j->probs, &j->n_probs, NULL);
    return NULL;
}

TEST(vad_model_shared_by_threads)
{
    struct vad_model *m = load();
    size_t n = 16000 * 2;
    float *pcm = signal(n);
    struct thread_job jobs[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        jobs[i] = (struct thread_job){m, pcm, n, NULL, 0};
        CHECK(pthread_create(&th[i], NULL, thread_run, &jobs[i]) == 0);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    for (int i = 1; i < 4; i++) {
        CHECK_EQ_INT(jobs[i].n_probs, jobs[0].n_probs);
        CHECK(memcmp(jobs[i].probs, jobs[0].probs, jobs[0].n_probs * sizeof(float)) == 0);
    }
    for (int i = 0; i < 4; i++)
        free(jobs[i].probs);
    free(pcm);
    vad_model_free(m);
}

TEST(vad_state_run_in_chunks_equals_one_call)
{
    struct vad_model *m = load();
    size_t n = 16000 * 4 + 100; /* 126 windows, last one partial */
    float *pcm = signal(n);
    float *ref = NULL;
    size_t nr = 0;
    struct sd_error err = {0};
    CHECK_OK(vad_probs(m, pcm, n, VAD_PRECISION_REFERENCE, &ref, &nr, &err), &err);
    struct vad_state *st = NULL;
    CHECK_OK(vad_state_new(m, VAD_PRECISION_REFERENCE, &st, &err), &err);
    float *got = calloc(nr, sizeof *got);
    size_t chunks[] = {3, 17, 1, 40}, w = 0; /* windows per call, then the rest */
    for (int c = 0; c < 4; c++) {
        vad_state_run(st, pcm + w * 512, chunks[c] * 512, got + w);
        w += chunks[c];
    }
    vad_state_run(st, pcm + w * 512, n - w * 512, got + w);
    CHECK(memcmp(got, ref, nr * sizeof *got) == 0);
    free(got);
    vad_state_free(st);
    free(ref);
    free(pcm);
    vad_model_free(m);
}

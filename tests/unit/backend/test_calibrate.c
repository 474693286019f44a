/*
 * test_calibrate.c - the CPU backend's kernel choice by measurement
 * (calibrate.c): it picks one of the candidate tables per primitive, writes
 * the cache, reuses it for the same key, measures again when the key (CPU
 * string, version) differs or when forced, and SCRIBED_SIMD turns it off.
 * Asserts the mechanism only, never which kernel wins or how long it took.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend/cpu/cpu.h"
#include "backend/cpu/kernels.h"
#include "backend/ops.h"
#include "check.h"

#define N_W 3
#define ROWS 96
#define COLS 256

struct weights {
    struct sd_weight w[N_W];
    const struct sd_weight *wp[N_W];
    void *data[N_W];
};

/* Two f16 matrices and a q8_0 one: every matrix-vector primitive has something to time. */
static void make_weights(struct weights *ws)
{
    float *f = malloc(sizeof(float) * ROWS * COLS);
    for (int i = 0; i < ROWS * COLS; i++)
        f[i] = (float)((i * 37) % 101) / 101.0f - 0.5f;
    for (int i = 0; i < N_W; i++) {
        int quant = i == N_W - 1;
        size_t bytes = quant ? sd_type_bytes(SD_TYPE_Q8_0, COLS) * ROWS : 2u * ROWS * COLS;
        uint8_t *d = malloc(bytes);
        if (quant)
            sd_quantize(SD_TYPE_Q8_0, f, d, (int64_t)ROWS * COLS);
        else
            for (int j = 0; j < ROWS * COLS; j++)
                ((uint16_t *)d)[j] = sd_f32_to_f16(f[j]);
        ws->data[i] = d;
        ws->w[i] = (struct sd_weight){quant ? SD_TYPE_Q8_0 : SD_TYPE_F16, sd_cpu_mem(d), ROWS,
                                      COLS, COLS};
        ws->wp[i] = &ws->w[i];
    }
    free(f);
}

static void free_weights(struct weights *ws)
{
    for (int i = 0; i < N_W; i++)
        free(ws->data[i]);
}

/* Calibrates a fresh 1-thread backend; returns it (caller destroys). */
static struct sd_backend *calibrate(struct weights *ws, const char *cache, const char *version,
                                    int force, struct sd_calibration *c)
{
    struct sd_backend *b = NULL;
    struct sd_error err;
    CHECK_OK(sd_cpu_backend_create(1, 0, &b, &err), &err);
    *c = (struct sd_calibration){.w = ws->wp, .n_w = N_W, .cache_path = cache,
                                 .version = version, .force = force};
    CHECK_OK(sd_backend_calibrate(b, c, &err), &err);
    return b;
}

/* Every primitive of the choice names a table this CPU runs. */
static void check_choice_is_candidates(const char *choice)
{
    static const char *const prims[] = {"gemv_f16=", "gemv_q=", "gemm="};
    for (size_t i = 0; i < sizeof(prims) / sizeof(prims[0]); i++) {
        const char *p = strstr(choice, prims[i]);
        CHECK_MSG(p != NULL, "choice '%s' lacks %s", choice, prims[i]);
        if (!p)
            continue;
        char name[64];
        CHECK(sscanf(p + strlen(prims[i]), "%63s", name) == 1);
        const struct sd_kernel_table *t = sd_kernel_table_named(name);
        CHECK_MSG(t && t->runs(), "choice '%s': %s is no candidate here", choice, name);
    }
}

static int count_lines(const char *path)
{
    FILE *f = fopen(path, "r");
    int n = 0, ch;
    if (!f)
        return -1;
    while ((ch = fgetc(f)) != EOF)
        n += ch == '\n';
    fclose(f);
    return n;
}

/* Rewrites the cache's CPU identity as another CPU's ("cpu=...|" up to the flags). */
static void pretend_other_cpu(const char *path)
{
    FILE *f = fopen(path, "r");
    char line[2048];
    CHECK(f && fgets(line, sizeof(line), f));
    fclose(f);
    char *flags = strstr(line, "|flags=");
    CHECK(flags != NULL);
    char other[2100];
    snprintf(other, sizeof(other), "cpu=Some Other CPU|25/17/1%s", flags);
    f = fopen(path, "w");
    fputs(other, f);
    fclose(f);
}

TEST(calibrate_picks_caches_reuses_and_remeasures)
{
    struct weights ws;
    make_weights(&ws);
    char dir[] = "/tmp/sd_calib_XXXXXX", cache[64];
    CHECK(mkdtemp(dir) != NULL);
    snprintf(cache, sizeof(cache), "%s/kernels.cache", dir);
    unsetenv("SCRIBED_SIMD");

    struct sd_calibration c;
    struct sd_backend *b = calibrate(&ws, cache, "v1", 0, &c);
    CHECK_STR(c.source, "measured");
    check_choice_is_candidates(c.choice);
    CHECK(strstr(c.report, "gemv_f16 ") && strstr(c.report, "gemv_q ") &&
          strstr(c.report, "gemm "));
    CHECK_EQ_INT(count_lines(cache), 1);
    char first[SD_KERNEL_CHOICE_MAX];
    snprintf(first, sizeof(first), "%s", c.choice);
    sd_backend_destroy(b);

    /* the same key: the cache, no timing, the same choice */
    b = calibrate(&ws, cache, "v1", 0, &c);
    CHECK_STR(c.source, "cache");
    CHECK_STR(c.choice, first);
    CHECK(c.report[0] == 0);
    sd_backend_destroy(b);

    /* forced: measured again, still one line for the key */
    b = calibrate(&ws, cache, "v1", 1, &c);
    CHECK_STR(c.source, "measured");
    CHECK_EQ_INT(count_lines(cache), 1);
    sd_backend_destroy(b);

    /* another version: measured, kept beside the first key */
    b = calibrate(&ws, cache, "v2", 0, &c);
    CHECK_STR(c.source, "measured");
    check_choice_is_candidates(c.choice);
    CHECK_EQ_INT(count_lines(cache), 2);
    sd_backend_destroy(b);

    /* a cache written on another CPU: not reused */
    pretend_other_cpu(cache);
    b = calibrate(&ws, cache, "v1", 0, &c);
    CHECK_STR(c.source, "measured");
    CHECK_EQ_INT(count_lines(cache), 2);
    sd_backend_destroy(b);

    /* no cache path: measured, nothing written */
    b = calibrate(&ws, NULL, "v1", 0, &c);
    CHECK_STR(c.source, "measured");
    sd_backend_destroy(b);

    /* SCRIBED_SIMD: one table for every primitive, no timing, no cache use */
    setenv("SCRIBED_SIMD", "scalar", 1);
    b = calibrate(&ws, cache, "v3", 0, &c);
    unsetenv("SCRIBED_SIMD");
    CHECK_STR(c.source, "forced");
    CHECK_STR(c.choice, "gemv_f16=scalar gemv_q=scalar gemm=scalar");
    CHECK_EQ_INT(count_lines(cache), 2);
    sd_backend_destroy(b);

    unlink(cache);
    rmdir(dir);
    free_weights(&ws);
}

TEST(calibrate_choice_applies_to_other_backends)
{
    struct sd_backend *b = NULL;
    struct sd_error err;
    unsetenv("SCRIBED_SIMD");
    CHECK_OK(sd_cpu_backend_create(2, 0, &b, &err), &err);
    /* every table the CPU runs can be named for every primitive */
    for (int i = 0; i < sd_n_kernel_tables; i++) {
        if (!sd_kernel_tables[i].runs())
            continue;
        const char *n = sd_kernel_tables[i].kr->name;
        char choice[SD_KERNEL_CHOICE_MAX];
        snprintf(choice, sizeof(choice), "gemv_f16=%s gemv_q=%s gemm=%s", n, n, n);
        CHECK_OK(sd_backend_use_kernels(b, choice, &err), &err);
        struct sd_kernel_set s;
        sd_cpu_get_kernels(b, &s);
        CHECK(s.gemv == sd_kernel_tables[i].kr && s.gemv_q == sd_kernel_tables[i].kr &&
              s.gemm == sd_kernel_tables[i].kr);
    }
    CHECK(sd_backend_use_kernels(b, "gemv_f16=avx513", &err) == SD_EINVAL);
    CHECK(sd_backend_use_kernels(b, "nonsense", &err) == SD_EINVAL);
    CHECK(sd_backend_use_kernels(b, "gemv_x=scalar", &err) == SD_EINVAL);
    CHECK_OK(sd_backend_use_kernels(b, "", &err), &err); /* nothing chosen: nothing to do */
    sd_backend_destroy(b);
}

/* Made-up timings: times[round][candidate], and how often each candidate was timed. */
struct scripted {
    double times[3][4];
    int calls[4];
};

static double scripted_time(void *ctx, int i)
{
    struct scripted *s = ctx;
    return s->times[s->calls[i]++][i];
}

TEST(calibrate_rounds_keep_the_default_through_one_bad_round)
{
    double best[4];
    /* the default's first round disturbed (40 against 10), its later ones 9: it still wins */
    struct scripted s = {{{40, 10, 11, 30}, {9, 10, 11, 30}, {9, 10, 11, 30}}, {0}};
    CHECK_EQ_INT(sd_calibrate_rounds(4, scripted_time, &s, best), 0);
    CHECK_EQ_INT(s.calls[0], 3); /* the default is timed every round though far behind after one */
    CHECK_EQ_INT(s.calls[1], 3);
    CHECK_EQ_INT(s.calls[2], 3);
    CHECK_EQ_INT(s.calls[3], 1); /* 3x behind the best after a round: not timed again */
    CHECK(best[0] == 9 && best[1] == 10 && best[3] == 30);

    /* another candidate 3 % faster than the default: within the margin, the default stays */
    struct scripted near = {{{10, 9.7, 20, 20}, {10, 9.7, 20, 20}, {10, 9.7, 20, 20}}, {0}};
    CHECK_EQ_INT(sd_calibrate_rounds(2, scripted_time, &near, best), 0);
    /* 20 % faster: it wins; among the others the plain fastest */
    struct scripted far = {{{10, 8, 7.5, 20}, {10, 8, 7.5, 20}, {10, 8, 7.5, 20}}, {0}};
    CHECK_EQ_INT(sd_calibrate_rounds(3, scripted_time, &far, best), 2);
}

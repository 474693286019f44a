/*
 * bench.c - `scribed bench --model PATH [--threads N] [--runs N] [--device D]`: times the
 * engine the way whisper.cpp's bench does and prints key=value lines:
 * encoder_ms (one 30 s window, best of --runs), decode_ms_per_token (one
 * sequence, 256 single-token steps with a growing self-attention cache),
 * batched5_ms_per_token (5 sequences per step, 64 steps; beam5_ms_per_step is
 * the same run per 5-beam step, i.e. 5 tokens), prompt_ms_per_token
 * (one 256-token prompt); every figure is the best of --runs, wall clock, and
 * *_cpu_* gives the process CPU time of that run (all threads; the machine is
 * shared, so wall time alone overstates cost). The input is a synthetic mel:
 * speed does not depend on the values. Does not touch audio files or the service.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>

#include "backend/ops.h"
#include "cli/cli.h"
#include "server/app.h" /* SCRIBED_VERSION: part of the kernel cache key */
#include "whisper/whisper.h"
#include "util/clock.h"

static double now_ms(void)
{
    return sd_mono_s() * 1e3;
}

/* CPU time of the whole process (all threads, spinning workers included). */
static double cpu_ms(void)
{
    return sd_cpu_s() * 1e3;
}

/* Wall and CPU time of one measurement; the best run is the one with least wall time. */
struct timing {
    double wall, cpu;
};

static void keep_best(struct timing *best, double wall, double cpu)
{
    if (wall < best->wall) {
        best->wall = wall;
        best->cpu = cpu;
    }
}

static int usage(void)
{
    fprintf(stderr,
            "usage: scribed bench --model PATH [--threads N] [--runs N] "
            "[--device cpu|cuda|auto]\n"
            "                     [--calibrate | --no-calibrate] [--data-dir DIR]\n"
            "  kernels are chosen as `scribed serve` does: timed on the model's shapes, the\n"
            "  choice cached in DIR/kernels.cache (DIR: --data-dir, else SCRIBED_DATA_DIR,\n"
            "  else ./data; no cache if it is not a directory); --calibrate measures again and\n"
            "  prints every candidate's time; --no-calibrate keeps the default table.\n");
    return 2;
}

struct bench_opts {
    const char *model;
    const char *device; /* NULL: auto */
    const char *data_dir;
    int threads, runs;
    int calibrate; /* 0: default kernels, 1: calibrate (cache), 2: measure again, print */
};

static int parse_args(int argc, char **argv, struct bench_opts *o)
{
    o->model = NULL;
    o->device = NULL;
    o->threads = 2;
    o->runs = 3;
    o->calibrate = 1;
    o->data_dir = getenv("SCRIBED_DATA_DIR");
    if (!o->data_dir || !*o->data_dir)
        o->data_dir = "./data";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if ((!strcmp(a, "--model") || !strcmp(a, "-m")) && i + 1 < argc) {
            o->model = argv[++i];
        } else if ((!strcmp(a, "--threads") || !strcmp(a, "-t")) && i + 1 < argc) {
            o->threads = atoi(argv[++i]);
        } else if (!strcmp(a, "--device") && i + 1 < argc) {
            o->device = argv[++i];
        } else if (!strcmp(a, "--calibrate")) {
            o->calibrate = 2;
        } else if (!strcmp(a, "--no-calibrate")) {
            o->calibrate = 0;
        } else if (!strcmp(a, "--data-dir") && i + 1 < argc) {
            o->data_dir = argv[++i];
        } else if (!strcmp(a, "--runs") && i + 1 < argc) {
            o->runs = atoi(argv[++i]);
        } else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            return usage();
        } else {
            fprintf(stderr, "scribed bench: unknown argument '%s'\n", a);
            return usage();
        }
    }
    if (!o->model || o->threads < 1 || o->threads > 256 || o->runs < 1 || o->runs > 100)
        return usage();
    return 0;
}

/* Times n_steps decode steps of `width` sequences each; returns ms per token. */
static void time_decode(struct whisper_state *st, int width, int n_steps, int32_t first_tok,
                        float *logits, struct sd_error *err, int *ok, struct timing *best)
{
    int seqs[8], past[8];
    int32_t toks[8];
    double t0 = now_ms(), c0 = cpu_ms();
    for (int step = 0; step < n_steps && *ok; step++) {
        for (int i = 0; i < width; i++) {
            seqs[i] = i;
            past[i] = step;
            toks[i] = first_tok + (step * 31 + i * 7) % 1000;
        }
        enum sd_err rc = width == 1 ? whisper_decode(st, 0, toks, 1, step, logits, err)
                                    : whisper_decode_batch(st, width, seqs, toks, past, logits,
                                                           err);
        if (rc)
            *ok = 0;
    }
    keep_best(best, (now_ms() - t0) / (n_steps * width), (cpu_ms() - c0) / (n_steps * width));
}

static int run_bench(const struct bench_opts *o, struct whisper_model *m)
{
    const struct whisper_hparams *h = whisper_model_hparams(m);
    struct whisper_state *st = NULL;
    struct sd_error err = {0};
    int ok = 1, n_frames = 2 * h->n_audio_ctx;
    float *mel = malloc(sizeof(float) * (size_t)h->n_mels * (size_t)n_frames);
    float *logits = malloc(sizeof(float) * (size_t)h->n_vocab * 5);
    int32_t *prompt = malloc(sizeof(int32_t) * 256);
    if (!mel || !logits || !prompt || whisper_state_create(m, o->threads, 5, &st, &err)) {
        fprintf(stderr, "scribed bench: %s\n", err.msg[0] ? err.msg : "out of memory");
        free(mel), free(logits), free(prompt);
        return 1;
    }
    for (int b = 0; b < h->n_mels; b++)
        for (int t = 0; t < n_frames; t++)
            mel[(size_t)b * n_frames + t] = 0.5f * sinf(0.01f * (float)(t * (b + 1)));
    struct timing enc = {1e30, 0}, dec = {1e30, 0}, bat = {1e30, 0}, pr = {1e30, 0};
    for (int r = 0; r < o->runs && ok; r++) {
        double t0 = now_ms(), c0 = cpu_ms();
        ok = whisper_encode(st, mel, n_frames, &err) == SD_OK;
        keep_best(&enc, now_ms() - t0, cpu_ms() - c0);
    }
    int n_dec = 256 < h->n_text_ctx ? 256 : h->n_text_ctx;
    for (int r = 0; r < o->runs && ok; r++) {
        time_decode(st, 1, n_dec, 100, logits, &err, &ok, &dec);
        time_decode(st, 5, n_dec < 64 ? n_dec : 64, 100, logits, &err, &ok, &bat);
        for (int i = 0; i < n_dec; i++)
            prompt[i] = 100 + (i * 13) % 1000;
        double t0 = now_ms(), c0 = cpu_ms();
        ok = ok && whisper_decode(st, 0, prompt, n_dec, 0, logits, &err) == SD_OK;
        keep_best(&pr, (now_ms() - t0) / n_dec, (cpu_ms() - c0) / n_dec);
    }
    if (!ok) {
        fprintf(stderr, "scribed bench: %s\n", err.msg);
    } else {
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        printf("encoder_ms=%.1f\n", enc.wall);
        printf("decode_ms_per_token=%.3f\n", dec.wall);
        printf("batched5_ms_per_token=%.3f\n", bat.wall);
        printf("beam5_ms_per_step=%.3f\n", 5.0 * bat.wall);
        printf("prompt_ms_per_token=%.3f\n", pr.wall);
        printf("encoder_cpu_ms=%.1f\n", enc.cpu);
        printf("decode_cpu_ms_per_token=%.3f\n", dec.cpu);
        printf("batched5_cpu_ms_per_token=%.3f\n", bat.cpu);
        printf("prompt_cpu_ms_per_token=%.3f\n", pr.cpu);
        printf("peak_rss_mib=%.0f\n", ru.ru_maxrss / 1024.0);
    }
    whisper_state_destroy(st);
    free(mel), free(logits), free(prompt);
    return ok ? 0 : 1;
}

/* Chooses the kernels as the service does (kernels.cache in the data dir) and prints the choice. */
static int calibrate(const struct bench_opts *o, struct whisper_model *m)
{
    char cache[4096] = "";
    struct stat sb;
    if (stat(o->data_dir, &sb) == 0 && S_ISDIR(sb.st_mode))
        snprintf(cache, sizeof(cache), "%s/kernels.cache", o->data_dir);
    struct sd_calibration c;
    struct sd_error err = {0};
    if (whisper_model_calibrate(m, o->threads, cache, SCRIBED_VERSION, o->calibrate == 2, &c,
                                &err) != SD_OK) {
        fprintf(stderr, "scribed bench: %s\n", err.msg);
        return 1;
    }
    printf("kernels=%s\n", c.choice[0] ? c.choice : "default");
    printf("calibrate_source=%s\n", c.source);
    printf("calibrate_ms=%.1f\n", c.ms);
    if (o->calibrate == 2) /* "gemv_f16 avx512 1.234 ms" -> calib_gemv_f16_avx512_ms=1.234 */
        for (const char *l = c.report; *l;) {
            char prim[32], table[32];
            double ms;
            if (sscanf(l, "%31s %31s %lf", prim, table, &ms) == 3)
                printf("calib_%s_%s_ms=%.3f\n", prim, table, ms);
            const char *nl = strchr(l, '\n');
            l = nl ? nl + 1 : l + strlen(l);
        }
    return 0;
}

int cmd_bench(int argc, char **argv)
{
    struct bench_opts o;
    int rc = parse_args(argc, argv, &o);
    if (rc)
        return rc;
    struct whisper_model *m = NULL;
    struct sd_error err = {0};
    const struct sd_backend_ops *dev = NULL;
    if (sd_backend_find(o.device, &dev, &err) != SD_OK) {
        fprintf(stderr, "scribed bench: %s\n", err.msg);
        return 2;
    }
    double t0 = now_ms();
    if (whisper_model_load_on(o.model, dev, &m, &err) != SD_OK) {
        fprintf(stderr, "scribed bench: %s\n", err.msg);
        return 1;
    }
    double load_ms = now_ms() - t0;
    struct sd_backend *probe = NULL;
    const char *simd = "unknown";
    if (sd_backend_open(dev, 1, 0, &probe, &err) == SD_OK)
        simd = sd_backend_simd(probe);
    printf("model=%s\n", whisper_model_describe(m));
    printf("device=%s\n", whisper_model_device(m));
    printf("threads=%d\n", o.threads);
    printf("simd=%s\n", simd);
    printf("runs=%d\n", o.runs);
    printf("load_ms=%.1f\n", load_ms);
    printf("decode_mb_per_token=%.1f\n", (double)whisper_model_step_bytes(m) / 1e6);
    sd_backend_destroy(probe);
    if (o.calibrate && calibrate(&o, m) != 0) {
        whisper_model_free(m);
        return 1;
    }
    fflush(stdout);
    rc = run_bench(&o, m);
    whisper_model_free(m);
    return rc;
}

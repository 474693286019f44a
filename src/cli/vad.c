/*
 * vad.c - `scribed vad`: the speech segments of one audio file as JSON,
 *   {"segments": [{"start": 0.89, "end": 3.43}, ...]}   (seconds, 10 ms steps)
 * using the Silero VAD (vad/vad.h) on audio decoded by audio/. `--bench`
 * times the network alone (one thread) and prints ms per minute of audio.
 * It does not transcribe; `scribed transcribe` applies the VAD filter itself.
 */
#include <getopt.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audio/audio.h"
#include "cli/args.h"
#include "cli/cli.h"
#include "vad/vad.h"
#include "util/clock.h"

#define DEFAULT_VAD_FILE "ggml-silero-v6.2.0.bin"

struct vad_cli {
    const char *model_path;
    const char *data_dir;
    const char *file;
    struct vad_params params;
    enum vad_precision precision;
    int print_probs;
    int bench;
    int repeat;
};

static void usage(FILE *f)
{
    struct vad_params d = vad_params_default();
    fprintf(f,
            "usage: scribed vad [--model PATH] [options] FILE\n"
            "       scribed vad --bench [--model PATH] [--repeat N] [FILE]\n\n"
            "  --model PATH          ggml Silero VAD file (default DATA_DIR/models/%s)\n"
            "  --data-dir DIR        where `scribed model download` put it (default ./data)\n"
            "  --threshold P         speech starts at p >= P (default %.2f)\n"
            "  --neg-threshold P     speech ends below P (default threshold - 0.15)\n"
            "  --min-silence-ms MS   silence that ends a segment (default %d)\n"
            "  --speech-pad-ms MS    padding on each side (default %d)\n"
            "  --min-speech-ms MS    shorter speech is dropped (default %d)\n"
            "  --max-speech-s S      longer speech is split; 0 = no limit (default %.0f)\n"
            "  --probs               also print the per-window (32 ms) probabilities\n"
            "  --f32                 f32 conv inputs instead of the reference's f16 rounding\n"
            "  --bench               time the network on FILE (or 60 s of synthetic audio)\n"
            "  --repeat N            bench repetitions, best is reported (default 5)\n",
            DEFAULT_VAD_FILE, (double)d.threshold, d.min_silence_ms, d.speech_pad_ms,
            d.min_speech_ms, (double)d.max_speech_s);
}

static int parse_float(const char *flag, const char *s, float *out)
{
    return cli_parse_float("vad", flag, s, out);
}

static int parse_int(const char *flag, const char *s, int *out)
{
    return cli_parse_int("vad", flag, s, out);
}

enum { OPT_MODEL = 256, OPT_DATA_DIR, OPT_THRESHOLD, OPT_NEG, OPT_MIN_SIL, OPT_PAD, OPT_MIN_SPEECH,
       OPT_MAX_SPEECH, OPT_PROBS, OPT_F32, OPT_BENCH, OPT_REPEAT, OPT_HELP };

static const struct option long_opts[] = {
    {"model", required_argument, 0, OPT_MODEL},
    {"data-dir", required_argument, 0, OPT_DATA_DIR},
    {"threshold", required_argument, 0, OPT_THRESHOLD},
    {"neg-threshold", required_argument, 0, OPT_NEG},
    {"min-silence-ms", required_argument, 0, OPT_MIN_SIL},
    {"speech-pad-ms", required_argument, 0, OPT_PAD},
    {"min-speech-ms", required_argument, 0, OPT_MIN_SPEECH},
    {"max-speech-s", required_argument, 0, OPT_MAX_SPEECH},
    {"probs", no_argument, 0, OPT_PROBS},
    {"f32", no_argument, 0, OPT_F32},
    {"bench", no_argument, 0, OPT_BENCH},
    {"repeat", required_argument, 0, OPT_REPEAT},
    {"help", no_argument, 0, OPT_HELP},
    {0, 0, 0, 0},
};

/* Returns -1 to go on, else the exit code. */
static int parse_args(int argc, char **argv, struct vad_cli *c)
{
    int ok = 1, opt;
    optind = 1;
    opterr = 0;
    while (ok && (opt = getopt_long(argc, argv, "h", long_opts, NULL)) != -1) {
        switch (opt) {
        case OPT_MODEL: c->model_path = optarg; break;
        case OPT_DATA_DIR: c->data_dir = optarg; break;
        case OPT_THRESHOLD: ok = parse_float("--threshold", optarg, &c->params.threshold); break;
        case OPT_NEG: ok = parse_float("--neg-threshold", optarg, &c->params.neg_threshold); break;
        case OPT_MIN_SIL: ok = parse_int("--min-silence-ms", optarg, &c->params.min_silence_ms); break;
        case OPT_PAD: ok = parse_int("--speech-pad-ms", optarg, &c->params.speech_pad_ms); break;
        case OPT_MIN_SPEECH: ok = parse_int("--min-speech-ms", optarg, &c->params.min_speech_ms); break;
        case OPT_MAX_SPEECH: ok = parse_float("--max-speech-s", optarg, &c->params.max_speech_s); break;
        case OPT_PROBS: c->print_probs = 1; break;
        case OPT_F32: c->precision = VAD_PRECISION_F32; break;
        case OPT_BENCH: c->bench = 1; break;
        case OPT_REPEAT:
            ok = parse_int("--repeat", optarg, &c->repeat);
            if (ok && (c->repeat < 1 || c->repeat > 1000)) {
                fprintf(stderr, "scribed vad: --repeat must be in [1, 1000]\n");
                ok = 0;
            }
            break;
        case OPT_HELP: case 'h': usage(stdout); return 0;
        default:
            fprintf(stderr, "scribed vad: unknown or incomplete option '%s' (see --help)\n",
                    argv[optind - 1]);
            return 2;
        }
    }
    if (!ok)
        return 2;
    if (optind < argc)
        c->file = argv[optind++];
    if (optind < argc) {
        fprintf(stderr, "scribed vad: one FILE only ('%s' is extra)\n", argv[optind]);
        return 2;
    }
    if (!c->file && !c->bench) {
        fprintf(stderr, "scribed vad: no audio FILE given (see --help)\n");
        return 2;
    }
    struct sd_error err = {0};
    if (vad_params_check(&c->params, &err) != SD_OK) {
        fprintf(stderr, "scribed vad: %s\n", err.msg);
        return 2;
    }
    return -1;
}

static void print_result(const struct vad_segment *s, size_t ns, int with_probs,
                         const float *probs, size_t np)
{
    printf("{\"segments\": [");
    for (size_t i = 0; i < ns; i++)
        printf("%s{\"start\": %.2f, \"end\": %.2f}", i ? ", " : "",
               vad_samples_to_cs(s[i].start) / 100.0, vad_samples_to_cs(s[i].end) / 100.0);
    printf("]");
    if (with_probs) {
        printf(", \"window_s\": %.3f, \"probs\": [", (double)VAD_WINDOW_SAMPLES / VAD_SAMPLE_RATE);
        for (size_t i = 0; i < np; i++)
            printf("%s%.4f", i ? ", " : "", (double)probs[i]);
        printf("]");
    }
    printf("}\n");
}

/* 60 s of speech-like bursts and noise when --bench has no file. */
static float *synthetic_audio(size_t n)
{
    float *v = malloc(n * sizeof *v);
    uint32_t r = 1;
    for (size_t i = 0; v && i < n; i++) {
        r = r * 1664525u + 1013904223u;
        double t = (double)i / VAD_SAMPLE_RATE;
        double env = fmod(t, 2.0) < 1.3 ? 0.2 : 0.0;
        v[i] = (float)(env * sin(2 * M_PI * (180 + 60 * sin(5 * t)) * t) +
                       0.005 * ((r >> 8) / 16777216.0 - 0.5));
    }
    return v;
}

static int run_bench(const struct vad_model *m, const float *pcm, size_t n, const struct vad_cli *c)
{
    double best = 1e30, best_cpu = 1e30;
    size_t np = 0;
    for (int i = 0; i < c->repeat; i++) {
        float *probs = NULL;
        struct sd_error err = {0};
        double t0 = sd_mono_s(), c0 = sd_cpu_s();
        if (vad_probs(m, pcm, n, c->precision, &probs, &np, &err) != SD_OK) {
            fprintf(stderr, "scribed vad: %s\n", err.msg);
            return 1;
        }
        double dt = sd_mono_s() - t0, dc = sd_cpu_s() - c0;
        best = dt < best ? dt : best;
        best_cpu = dc < best_cpu ? dc : best_cpu;
        free(probs);
    }
    double audio_s = (double)n / VAD_SAMPLE_RATE;
    /* wall time is what a caller waits; CPU time is steadier on a busy machine */
    double per_min = audio_s > 0 ? 60.0 / audio_s : 0.0;
    printf("{\"audio_s\": %.3f, \"windows\": %zu, \"threads\": 1, \"repeat\": %d, "
           "\"best_ms\": %.3f, \"ms_per_audio_minute\": %.3f, \"cpu_ms_per_audio_minute\": %.3f, "
           "\"realtime_factor\": %.1f}\n",
           audio_s, np, c->repeat, best * 1e3, best * 1e3 * per_min, best_cpu * 1e3 * per_min,
           best > 0 ? audio_s / best : 0.0);
    return 0;
}

static int load_audio(const char *path, float **pcm, size_t *n)
{
    struct audio_decode_opts opts = audio_decode_opts_default();
    struct audio_info info;
    struct sd_error err = {0};
    if (audio_decode_file(path, &opts, pcm, n, &info, &err) != SD_OK) {
        fprintf(stderr, "scribed vad: %s\n", err.msg);
        return 0;
    }
    return 1;
}

int cmd_vad(int argc, char **argv)
{
    struct vad_cli c = {.data_dir = "./data", .params = vad_params_default(), .repeat = 5};
    int rc = parse_args(argc, argv, &c);
    if (rc >= 0)
        return rc;
    char model_path[4096];
    if (!c.model_path) {
        snprintf(model_path, sizeof model_path, "%s/models/%s", c.data_dir, DEFAULT_VAD_FILE);
        c.model_path = model_path;
    }
    struct vad_model *m = NULL;
    struct sd_error err = {0};
    float *pcm = NULL, *probs = NULL;
    struct vad_segment *segs = NULL;
    size_t n = 0, np = 0, ns = 0;
    rc = 1;
    if (vad_model_load(c.model_path, &m, &err) != SD_OK) {
        fprintf(stderr, "scribed vad: %s%s\n", err.msg,
                err.code == SD_ENOTFOUND ? " (get it with `scribed model download silero-v6.2.0`)"
                                         : "");
        goto done;
    }
    if (c.file && !load_audio(c.file, &pcm, &n))
        goto done;
    if (c.bench) {
        if (!c.file) {
            n = (size_t)60 * VAD_SAMPLE_RATE;
            pcm = synthetic_audio(n);
            if (!pcm) {
                fprintf(stderr, "scribed vad: out of memory\n");
                goto done;
            }
        }
        rc = run_bench(m, pcm, n, &c);
        goto done;
    }
    if (vad_probs(m, pcm, n, c.precision, &probs, &np, &err) != SD_OK ||
        vad_segments_from_probs(probs, np, &c.params, &segs, &ns, &err) != SD_OK) {
        fprintf(stderr, "scribed vad: %s\n", err.msg);
        goto done;
    }
    print_result(segs, ns, c.print_probs, probs, np);
    rc = 0;
done:
    free(segs);
    free(probs);
    free(pcm);
    vad_model_free(m);
    return rc;
}

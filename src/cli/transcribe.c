/*
 * transcribe.c - `scribed transcribe`: one audio file to text on stdout, in
 * any of the API's response formats. The decoding flags are the request
 * parameter table's (pipeline/stt_params.def), so a flag means exactly what
 * the same API field means; the file goes through the same pipeline as a
 * job (pipeline/transcription.h) and is rendered by output/.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend/ops.h"
#include "cli/args.h"
#include "cli/cli.h"
#include "output/format.h"
#include "pipeline/stt_params.h"
#include "pipeline/transcription.h"
#include "util/clock.h"

struct transcribe_cli {
    const char *model_path;
    const char *vad_model_path;   /* Silero VAD: only speech goes to the decoder */
    const char *device;           /* cpu | cuda | auto (NULL: auto) */
    const char *file;
    int threads;
    struct stt_params params;
};

static void usage(FILE *f, const struct transcribe_cli *c)
{
    fprintf(f,
            "usage: scribed transcribe --model PATH [options] FILE\n\n"
            "  --model PATH                   ggml Whisper model file (required)\n"
            "  --vad-model PATH               Silero VAD model: decode speech only\n"
            "  --threads N                    compute threads (default %d)\n"
            "  --device cpu|cuda|auto         compute device (default auto: cuda when this\n"
            "                                 binary has it and a GPU is present, else cpu)\n"
            "\nDecoding options (the same parameters as the HTTP API's fields):\n",
            c->threads);
    param_print_cli_help(&stt_param_table, &c->params, f);
}

/* The subcommand's own flags; 1 taken, 0 not one of them, -1 bad (message printed). */
static int parse_own_flag(struct transcribe_cli *c, int argc, char **argv, int *i)
{
    static const char *const own[] = {"--model", "--vad-model", "--threads", "--device"};
    const size_t n_own = sizeof(own) / sizeof(own[0]);
    const char *a = argv[*i];
    size_t k = 0;
    while (k < n_own && strncmp(a, own[k], strlen(own[k])) != 0)
        k++;
    if (k == n_own || (a[strlen(own[k])] != '\0' && a[strlen(own[k])] != '='))
        return 0;
    const char *v = a[strlen(own[k])] == '=' ? a + strlen(own[k]) + 1 : NULL;
    if (!v && (*i + 1 >= argc || !(v = argv[++*i]))) {
        fprintf(stderr, "scribed transcribe: %s needs a value\n", own[k]);
        return -1;
    }
    if (k == 0)
        c->model_path = v;
    else if (k == 1)
        c->vad_model_path = v;
    else if (k == 3)
        c->device = v;
    else if (!cli_parse_int("transcribe", "--threads", v, &c->threads))
        return -1;
    return 1;
}

/* 0 when the arguments are good; else the exit code (2) after one line on stderr. */
static int parse_args(struct transcribe_cli *c, int argc, char **argv)
{
    struct sd_error err = {0};
    for (int i = 1; i < argc; i++) {
        int r = parse_own_flag(c, argc, argv, &i);
        if (r == 0)
            r = param_parse_cli(&stt_param_table, argc, argv, &i, &c->params, &err);
        if (r < 0) {
            if (err.msg[0])
                fprintf(stderr, "scribed transcribe: %s (see --help)\n", err.msg);
            return 2;
        }
        if (r > 0)
            continue;
        if (strncmp(argv[i], "--", 2) == 0) {
            fprintf(stderr, "scribed transcribe: unknown option '%s' (see --help)\n", argv[i]);
            return 2;
        }
        if (c->file) {
            fprintf(stderr, "scribed transcribe: one FILE only ('%s' and '%s')\n", c->file,
                    argv[i]);
            return 2;
        }
        c->file = argv[i];
    }
    const char *param = NULL;
    if (stt_params_check(&c->params, &param, &err) != SD_OK) {
        fprintf(stderr, "scribed transcribe: %s\n", err.msg);
        return 2;
    }
    if (!c->model_path || !c->file) {
        fprintf(stderr, "scribed transcribe: need --model PATH and one FILE (see --help)\n");
        return 2;
    }
    if (c->threads < 1 || c->threads > 64) {
        fprintf(stderr, "scribed transcribe: --threads must be between 1 and 64\n");
        return 2;
    }
    const struct sd_backend_ops *dev = NULL;
    if (sd_backend_find(c->device, &dev, &err) != SD_OK) {
        fprintf(stderr, "scribed transcribe: %s\n", err.msg);
        return 2;
    }
    return 0;
}

/* One updating line on a terminal while a long file transcribes (as `model download`). */
struct terminal_progress {
    double t0;
    int percent, windows;
    double audio_s;           /* audio the decoder has heard so far */
    bool shown;
};

static bool show_percent(void *user, float fraction)
{
    struct terminal_progress *tp = user;
    double elapsed = sd_mono_s() - tp->t0;
    tp->percent = (int)(fraction * 100.0f);
    fprintf(stderr, "\r  %3d%%  %d window%s, %.1f s of audio in %.1f s (%.1fx real time)  ",
            tp->percent, tp->windows, tp->windows == 1 ? "" : "s", tp->audio_s, elapsed,
            elapsed > 0 ? tp->audio_s / elapsed : 0.0);
    tp->shown = true;
    return true;
}

/* Called before show_percent for each window the decoder finishes. */
static void count_window(void *user, const struct transcribe_window_trace *w)
{
    struct terminal_progress *tp = user;
    tp->windows++;
    tp->audio_s = (w->seek + w->advance) / 100.0;
}

/* Prints the transcript in the requested format; false on ENOMEM. */
static bool print_transcript(const struct transcript *t, enum output_format f)
{
    char *body = output_render(t, f);
    if (!body)
        return false;
    fputs(body, stdout);
    size_t n = strlen(body);
    if (n == 0 || body[n - 1] != '\n')
        fputc('\n', stdout);
    free(body);
    return true;
}

static int run(const struct transcribe_cli *c)
{
    struct sd_error err = {0};
    struct pipeline *p = NULL;
    struct pipeline_worker *w = NULL;
    struct transcript *t = NULL;
    struct stt_engine_params ep;
    double audio_s = 0;
    int status = 1;
    struct pipeline_opts o = {.model_path = c->model_path, .vad_path = c->vad_model_path,
                              .threads_per_worker = c->threads, .device = c->device};
    struct terminal_progress tp = {.t0 = sd_mono_s()};
    struct stt_hooks hooks = {show_percent, NULL, count_window, &tp, NULL};
    stt_params_to_engine(&c->params, &ep);
    if (pipeline_create(&o, &p, &err) != SD_OK || pipeline_worker_create(p, &w, &err) != SD_OK)
        goto fail;
    /* progress only where someone watches: stdout may be a pipe, stderr a terminal */
    enum sd_err rc = pipeline_transcribe_file(w, c->file, &ep,
                                              isatty(STDERR_FILENO) ? &hooks : NULL, &t,
                                              &audio_s, &err);
    if (tp.shown)
        fputc('\n', stderr);
    if (rc != SD_OK) {
        if (err.code != SD_EINVAL && !strstr(err.msg, c->file)) { /* name the file in its errors */
            char msg[2 * sizeof(err.msg) + 8];
            snprintf(msg, sizeof(msg), "%s: %s", c->file, err.msg);
            snprintf(err.msg, sizeof(err.msg), "%.*s", (int)sizeof(err.msg) - 1, msg);
        }
        goto fail;
    }
    if (!print_transcript(t, c->params.response_format)) {
        sd_fail(&err, SD_ENOMEM, "rendering the transcript");
        goto fail;
    }
    status = 0;
    goto done;
fail:
    fprintf(stderr, "scribed transcribe: %s\n", err.msg);
done:
    transcript_destroy(t);
    pipeline_worker_destroy(w);
    pipeline_destroy(p);
    return status;
}

int cmd_transcribe(int argc, char **argv)
{
    struct transcribe_cli c = {.threads = 2};
    stt_params_init(&c.params);
    c.params.response_format = OUTPUT_TEXT; /* the terminal's default, not the API's json */
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout, &c);
            stt_params_clear(&c.params);
            return 0;
        }
    }
    int status = parse_args(&c, argc, argv);
    if (status == 0)
        status = run(&c);
    stt_params_clear(&c.params);
    return status;
}

/*
 * speak.c - `scribed speak`: text to an audio file on stdout (or --output),
 * with the same engine, parameter checks and encoders as POST
 * /v1/audio/speech (pipeline/speech.h). `--list-voices` prints the voices.
 * Errors are one line on stderr and exit 2 (usage) or 1 (synthesis).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "pipeline/speech.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: scribed speak [--voice V] [--format F] [--speed S] [--output FILE] \"text\"\n"
            "       scribed speak --list-voices\n\n"
            "  --voice V        one of --list-voices, or an OpenAI name (alloy, echo, ...);\n"
            "                   default %s\n"
            "  --format F       %s (default mp3)\n"
            "  --speed S        0.25 .. 4.0 (default 1.0)\n"
            "  --output FILE    write there instead of stdout\n"
            "  -                as the text: read it from stdin\n",
            TTS_DEFAULT_VOICE, tts_format_list());
}

static void list_voices(void)
{
    for (size_t i = 0; i < tts_voice_count(); i++) {
        const struct tts_voice *v = tts_voice_at(i);
        printf("%-14s %-10s %-6s %s", v->id, tts_engine_name(v->engine), v->language,
               v->description);
        const char *name;
        const struct tts_voice *to;
        int n = 0;
        for (size_t k = 0; tts_openai_voice_at(k, &name, &to); k++)
            if (to == v)
                printf("%s%s", n++ ? ", " : "  [OpenAI: ", name);
        printf("%s\n", n ? "]" : "");
    }
}

static bool write_file(void *user, const uint8_t *data, size_t n)
{
    return fwrite(data, 1, n, user) == n;
}

/* All of stdin (at most a little over the input limit, which the check then refuses). */
static char *read_stdin(size_t *len)
{
    size_t cap = SPEECH_INPUT_MAX_CHARS * 4 + 2, n = 0;
    char *buf = malloc(cap + 1);
    if (!buf)
        return NULL;
    size_t got;
    while (n < cap && (got = fread(buf + n, 1, cap - n, stdin)) > 0)
        n += got;
    buf[n] = '\0';
    *len = n;
    return buf;
}

enum { OPT_VOICE = 256, OPT_FORMAT, OPT_SPEED, OPT_OUTPUT, OPT_LIST, OPT_HELP };

int cmd_speak(int argc, char **argv)
{
    static const struct option opts[] = {
        {"voice", required_argument, 0, OPT_VOICE},   {"format", required_argument, 0, OPT_FORMAT},
        {"speed", required_argument, 0, OPT_SPEED},   {"output", required_argument, 0, OPT_OUTPUT},
        {"list-voices", no_argument, 0, OPT_LIST},    {"help", no_argument, 0, OPT_HELP},
        {0, 0, 0, 0},
    };
    const char *voice = NULL, *format = NULL, *output = NULL;
    float speed = 1.0f;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case OPT_VOICE: voice = optarg; break;
        case OPT_FORMAT: format = optarg; break;
        case OPT_OUTPUT: output = optarg; break;
        case OPT_SPEED:
            if (!cli_parse_float("speak", "--speed", optarg, &speed))
                return 2;
            break;
        case OPT_LIST: list_voices(); return 0;
        case OPT_HELP: usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, "scribed speak: give the text as one argument (or - for stdin)\n");
        return 2;
    }
    char *text = NULL;
    size_t len;
    if (strcmp(argv[optind], "-") == 0) {
        text = read_stdin(&len);
        if (!text) {
            fprintf(stderr, "scribed speak: out of memory\n");
            return 1;
        }
    } else {
        text = strdup(argv[optind]);
        len = text ? strlen(text) : 0;
    }
    struct speech_params sp;
    char param[SPEECH_PARAM_MAX];
    struct sd_error err = {0};
    if (speech_params_check(text, len, voice, format, speed, &sp, param, &err) != SD_OK) {
        const char *flag = strcmp(param, "response_format") == 0 ? "format" : param;
        fprintf(stderr, "scribed speak: %s%s: %s\n", strcmp(param, "input") ? "--" : "", flag,
                err.msg);
        free(text);
        return 2;
    }
    if (!output && isatty(STDOUT_FILENO)) {
        fprintf(stderr, "scribed speak: stdout is a terminal; redirect it or use --output FILE\n");
        free(text);
        return 2;
    }
    FILE *f = output ? fopen(output, "wb") : stdout;
    if (!f) {
        fprintf(stderr, "scribed speak: %s: %s\n", output, strerror(errno));
        free(text);
        return 1;
    }
    struct tts *engine = NULL;
    enum sd_err rc = tts_open(&engine, &err);
    double audio_s = 0;
    if (rc == SD_OK)
        rc = speech_synthesize(engine, text, len, &sp, write_file, f, &audio_s, &err);
    tts_close(engine);
    free(text);
    if ((output && fclose(f) != 0) || (!output && fflush(f) != 0)) {
        if (rc == SD_OK)
            rc = sd_fail(&err, SD_EIO, "writing the audio: %s", strerror(errno));
    }
    if (rc != SD_OK) {
        fprintf(stderr, "scribed speak: %s\n", err.msg);
        return 1;
    }
    return 0;
}

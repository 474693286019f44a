/*
 * main.c - entry point of the scribed binary: dispatches to a subcommand.
 * Each subcommand is in src/cli/; the service itself is `scribed serve`.
 */
#include <stdio.h>
#include <string.h>

#include "audio/audio.h"
#include "cli/cli.h"

#ifndef SCRIBED_VERSION
#define SCRIBED_VERSION "0.1.0"
#endif

struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *help;
};

static const struct command commands[] = {
    {"serve", cmd_serve, "run the HTTP service"},
    {"worker", cmd_worker, "run jobs from a shared PostgreSQL queue (no API; --health-port)"},
    {"transcribe", cmd_transcribe, "transcribe an audio file"},
    {"speak", cmd_speak, "text to speech: write an audio file (mp3, opus, aac, flac, wav, pcm)"},
    {"vad", cmd_vad, "print the speech segments of an audio file"},
    {"bench", cmd_bench, "measure encoder and decoder speed"},
    {"quantize", cmd_quantize, "convert an f16 model to q8_0/q5_0/q5_1/q4_0/q4_1"},
    {"model", cmd_model, "download models (whisper, silero VAD) with checksums"},
    {"keys", cmd_keys, "create, list and revoke API keys"},
    {"backup", cmd_backup, "online copy of the database"},
    {"restore", cmd_restore, "restore the database from a backup"},
    {"store", cmd_store, "store copy: move a data dir's SQLite store into PostgreSQL"},
};

static void usage(FILE *f)
{
    fprintf(f, "scribed %s - self-hosted speech-to-text\n\nusage: scribed COMMAND [options]\n\n",
            SCRIBED_VERSION);
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(f, "  %-11s %s\n", commands[i].name, commands[i].help);
    fprintf(f, "\n`scribed COMMAND --help` lists a command's options and defaults.\n");
}

int main(int argc, char **argv)
{
    /* When started as the sandboxed audio decoder (see audio.h), this never returns. */
    audio_helper_maybe_run(argc, argv);
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
        printf("scribed %s\n", SCRIBED_VERSION);
        return 0;
    }
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "scribed: unknown command '%s' (try scribed --help)\n", argv[1]);
    return 2;
}

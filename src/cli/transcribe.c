/*
 * transcribe.c - `scribed transcribe`: one audio file to text on stdout, in
 * any of the API's response formats. Loads the model, decodes the audio
 * (audio/), runs the engine (whisper/transcribe.h) and renders (output/).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audio/audio.h"
#include "cli/args.h"
#include "cli/cli.h"
#include "jobs/vad_filter.h"
#include "output/format.h"
#include "whisper/model.h"
#include "whisper/tokenizer.h"
#include "whisper/transcribe.h"
#include "vad/vad.h"
#include "whisper/whisper.h"

struct transcribe_cli {
    const char *model_path;
    const char *vad_model_path;   /* Silero VAD: only speech goes to the decoder */
    bool vad_filter;
    struct vad_params vad;
    const char *file;
    int threads;
    enum output_format format;
    struct transcribe_params params;
};

static void usage(FILE *f, const struct transcribe_params *d)
{
    fprintf(f,
            "usage: scribed transcribe --model PATH [options] FILE\n\n"
            "  --model PATH                  ggml Whisper model file (required)\n"
            "  --threads N                   compute threads (default 2)\n"
            "  --format F                    text|json|verbose_json|srt|vtt (default text)\n"
            "  --language CODE               language, or auto to detect (default: en / auto)\n"
            "  --task T                      transcribe|translate (default transcribe)\n"
            "  --beam-size N                 beam width at temperature 0; 1 = greedy (default %d)\n"
            "  --best-of N                   samples per window at temperature > 0 (default %d)\n"
            "  --patience X                  beam search patience (default %.1f)\n"
            "  --temperature T               first temperature (default %.1f)\n"
            "  --temperature-inc T           fallback step (default %.1f)\n"
            "  --no-fallback                 decode each window once\n"
            "  --no-repetition-fallback      do not re-decode windows that end in a loop\n"
            "  --compression-ratio-threshold X  fallback when above (default %.1f)\n"
            "  --logprob-threshold X         fallback when average log-prob below (default %.1f)\n"
            "  --no-speech-threshold X       silence when no-speech prob above (default %.1f)\n"
            "  --prompt TEXT                 initial prompt (vocabulary, style)\n"
            "  --carry-initial-prompt        keep the initial prompt in every window\n"
            "  --condition-on-previous-text  prompt each window with the previous text (default off)\n"
            "  --no-context                  explicit off for the above\n"
            "  --no-timestamps               decode without timestamp tokens\n"
            "  --max-tokens N                tokens per window, 0 = no limit (default 0)\n"
            "  --word-timestamps             word-level times\n"
            "  --suppress-non-speech         never emit symbol-only tokens (music notes, brackets)\n"
            "  --seed N                      sampling seed (default 0)\n"
            "  --vad-model PATH              Silero VAD model: decode speech only (vad filter on)\n"
            "  --no-vad-filter               keep the VAD model unused\n"
            "  --vad-threshold X             speech probability threshold (default 0.35)\n"
            "  --vad-min-silence-ms N        silence that splits speech (default 300)\n"
            "  --vad-speech-pad-ms N         padding around speech (default 100)\n",
            d->beam_size, d->best_of, (double)d->patience, (double)d->temperature,
            (double)d->temperature_inc, (double)d->compression_ratio_threshold,
            (double)d->logprob_threshold, (double)d->no_speech_threshold);
}

enum { OPT_MODEL = 256, OPT_THREADS, OPT_FORMAT, OPT_LANGUAGE, OPT_TASK, OPT_BEAM, OPT_BEST_OF,
       OPT_PATIENCE, OPT_TEMP, OPT_TEMP_INC, OPT_NO_FALLBACK, OPT_CR, OPT_LOGPROB, OPT_NOSPEECH,
       OPT_PROMPT, OPT_CARRY, OPT_COND, OPT_NO_CONTEXT, OPT_NO_TS, OPT_MAX_TOKENS, OPT_WORDS,
       OPT_SEED, OPT_VAD_MODEL, OPT_NO_VAD, OPT_VAD_THRESHOLD, OPT_VAD_SILENCE, OPT_VAD_PAD,
       OPT_NON_SPEECH, OPT_NO_REP, OPT_HELP };

static const struct option long_opts[] = {
    {"model", required_argument, 0, OPT_MODEL},
    {"threads", required_argument, 0, OPT_THREADS},
    {"format", required_argument, 0, OPT_FORMAT},
    {"language", required_argument, 0, OPT_LANGUAGE},
    {"task", required_argument, 0, OPT_TASK},
    {"beam-size", required_argument, 0, OPT_BEAM},
    {"best-of", required_argument, 0, OPT_BEST_OF},
    {"patience", required_argument, 0, OPT_PATIENCE},
    {"temperature", required_argument, 0, OPT_TEMP},
    {"temperature-inc", required_argument, 0, OPT_TEMP_INC},
    {"no-fallback", no_argument, 0, OPT_NO_FALLBACK},
    {"compression-ratio-threshold", required_argument, 0, OPT_CR},
    {"logprob-threshold", required_argument, 0, OPT_LOGPROB},
    {"no-speech-threshold", required_argument, 0, OPT_NOSPEECH},
    {"prompt", required_argument, 0, OPT_PROMPT},
    {"carry-initial-prompt", no_argument, 0, OPT_CARRY},
    {"condition-on-previous-text", no_argument, 0, OPT_COND},
    {"no-context", no_argument, 0, OPT_NO_CONTEXT},
    {"no-timestamps", no_argument, 0, OPT_NO_TS},
    {"max-tokens", required_argument, 0, OPT_MAX_TOKENS},
    {"word-timestamps", no_argument, 0, OPT_WORDS},
    {"seed", required_argument, 0, OPT_SEED},
    {"vad-model", required_argument, 0, OPT_VAD_MODEL},
    {"no-vad-filter", no_argument, 0, OPT_NO_VAD},
    {"vad-threshold", required_argument, 0, OPT_VAD_THRESHOLD},
    {"vad-min-silence-ms", required_argument, 0, OPT_VAD_SILENCE},
    {"vad-speech-pad-ms", required_argument, 0, OPT_VAD_PAD},
    {"suppress-non-speech", no_argument, 0, OPT_NON_SPEECH},
    {"no-repetition-fallback", no_argument, 0, OPT_NO_REP},
    {"help", no_argument, 0, OPT_HELP},
    {0, 0, 0, 0},
};

/* 0 on success, -1 after a message (parse_option's convention). */
static int parse_int(const char *flag, const char *s, int *out)
{
    return cli_parse_int("transcribe", flag, s, out) ? 0 : -1;
}

static int parse_float(const char *flag, const char *s, float *out)
{
    return cli_parse_float("transcribe", flag, s, out) ? 0 : -1;
}

static int parse_option(struct transcribe_cli *c, int opt, const char *arg)
{
    struct transcribe_params *p = &c->params;
    struct sd_error err = {0};
    switch (opt) {
    case OPT_MODEL: c->model_path = arg; return 0;
    case OPT_THREADS: return parse_int("--threads", arg, &c->threads);
    case OPT_FORMAT:
        if (output_format_parse(arg, &c->format, &err)) {
            fprintf(stderr, "scribed transcribe: --format: %s\n", err.msg);
            return -1;
        }
        return 0;
    case OPT_LANGUAGE: p->language = arg; return 0;
    case OPT_TASK:
        if (strcmp(arg, "transcribe") == 0)
            p->task = TASK_TRANSCRIBE;
        else if (strcmp(arg, "translate") == 0)
            p->task = TASK_TRANSLATE;
        else {
            fprintf(stderr, "scribed transcribe: --task must be transcribe or translate\n");
            return -1;
        }
        return 0;
    case OPT_BEAM: return parse_int("--beam-size", arg, &p->beam_size);
    case OPT_BEST_OF: return parse_int("--best-of", arg, &p->best_of);
    case OPT_PATIENCE: return parse_float("--patience", arg, &p->patience);
    case OPT_TEMP: return parse_float("--temperature", arg, &p->temperature);
    case OPT_TEMP_INC: return parse_float("--temperature-inc", arg, &p->temperature_inc);
    case OPT_NO_FALLBACK: p->no_fallback = true; return 0;
    case OPT_CR: return parse_float("--compression-ratio-threshold", arg, &p->compression_ratio_threshold);
    case OPT_LOGPROB: return parse_float("--logprob-threshold", arg, &p->logprob_threshold);
    case OPT_NOSPEECH: return parse_float("--no-speech-threshold", arg, &p->no_speech_threshold);
    case OPT_PROMPT: p->prompt = arg; return 0;
    case OPT_CARRY: p->carry_initial_prompt = true; return 0;
    case OPT_COND: p->condition_on_previous_text = true; return 0;
    case OPT_NO_CONTEXT: p->condition_on_previous_text = false; return 0;
    case OPT_NO_TS: p->timestamps = false; return 0;
    case OPT_MAX_TOKENS: return parse_int("--max-tokens", arg, &p->max_tokens);
    case OPT_WORDS: p->word_timestamps = true; return 0;
    case OPT_NON_SPEECH: p->suppress_non_speech = true; return 0;
    case OPT_NO_REP: p->repetition_fallback = false; return 0;
    case OPT_VAD_MODEL: c->vad_model_path = arg; return 0;
    case OPT_NO_VAD: c->vad_filter = false; return 0;
    case OPT_VAD_THRESHOLD: return parse_float("--vad-threshold", arg, &c->vad.threshold);
    case OPT_VAD_SILENCE: return parse_int("--vad-min-silence-ms", arg, &c->vad.min_silence_ms);
    case OPT_VAD_PAD: return parse_int("--vad-speech-pad-ms", arg, &c->vad.speech_pad_ms);
    case OPT_SEED: {
        int seed = 0;
        if (parse_int("--seed", arg, &seed))
            return -1;
        p->seed = (uint64_t)seed;
        return 0;
    }
    }
    return -1;
}

static int run(const struct transcribe_cli *c)
{
    struct sd_error err = {0};
    struct whisper_model *model = NULL;
    struct tokenizer *tok = NULL;
    struct whisper_state *st = NULL;
    struct transcript *t = NULL;
    struct vad_model *vad = NULL;
    float *pcm = NULL;
    size_t n_samples = 0;
    struct audio_info info;
    int status = 1;
    struct audio_decode_opts aopts = audio_decode_opts_default();
    aopts.helper_exe = "/proc/self/exe";
    if (whisper_model_load(c->model_path, &model, &err))
        goto fail;
    const struct whisper_hparams *hp = whisper_model_hparams(model);
    if (tok_create(whisper_model_vocab(model), whisper_model_special(model), hp->n_vocab, &tok, &err))
        goto fail;
    if (whisper_state_create(model, c->threads, transcribe_n_seq(&c->params), &st, &err))
        goto fail;
    if (c->vad_model_path && c->vad_filter) {
        if (vad_params_check(&c->vad, &err) || vad_model_load(c->vad_model_path, &vad, &err))
            goto fail;
    }
    if (audio_decode_file(c->file, &aopts, &pcm, &n_samples, &info, &err)) {
        if (!strstr(err.msg, c->file)) {
            char msg[2 * sizeof(err.msg) + 8];
            snprintf(msg, sizeof(msg), "%s: %s", c->file, err.msg);
            snprintf(err.msg, sizeof(err.msg), "%.*s", (int)sizeof(err.msg) - 1, msg);
        }
        goto fail;
    }
    struct transcribe_params p = c->params;
    p.n_threads = c->threads;
    if (transcribe_pcm_vad(st, tok, vad, &c->vad, pcm, n_samples, &p, &t, &err))
        goto fail;
    char *body = output_render(t, c->format);
    if (!body) {
        sd_fail(&err, SD_ENOMEM, "rendering the transcript");
        goto fail;
    }
    fputs(body, stdout);
    size_t n = strlen(body);
    if (n == 0 || body[n - 1] != '\n')
        fputc('\n', stdout);
    free(body);
    status = 0;
    goto done;
fail:
    fprintf(stderr, "scribed transcribe: %s\n", err.msg);
done:
    transcript_destroy(t);
    free(pcm);
    whisper_state_destroy(st);
    vad_model_free(vad);
    tok_destroy(tok);
    whisper_model_free(model);
    return status;
}

int cmd_transcribe(int argc, char **argv)
{
    struct transcribe_cli c = {.threads = 2, .format = OUTPUT_TEXT, .vad_filter = true,
                               .vad = vad_params_default(), .params = transcribe_params_default()};
    optind = 1;
    int opt;
    while ((opt = getopt_long(argc, argv, "", long_opts, NULL)) != -1) {
        if (opt == OPT_HELP) {
            usage(stdout, &c.params);
            return 0;
        }
        if (opt == '?' || parse_option(&c, opt, optarg)) {
            usage(stderr, &c.params);
            return 2;
        }
    }
    if (optind != argc - 1 || !c.model_path) {
        fprintf(stderr, "scribed transcribe: need --model PATH and exactly one FILE\n");
        usage(stderr, &c.params);
        return 2;
    }
    if (c.threads < 1 || c.threads > 64) {
        fprintf(stderr, "scribed transcribe: --threads must be between 1 and 64\n");
        return 2;
    }
    c.file = argv[optind];
    return run(&c);
}

/*
 * audio_decode_main.c - a small driver over src/audio for manual checks and
 * measurements (`make audio-tool`): decodes one file, prints what
 * audio_info says, the outcome and the peak RSS of this process and of the
 * decoder child. Not part of the service; the unit tests do not need it.
 *
 *   build/tests/audio_decode [--stream] [--in-process] [--allowed LIST] [--max-duration S]
 *                            [--max-memory MB] [--max-cpu S] [--raw] [--ballast MB] [--helper]
 *                            FILE [OUT.f32]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "audio/audio.h"

struct sink {
    FILE *out;
    size_t n;
};

static enum sd_err on_chunk(void *user, const struct audio_info *info, const float *pcm,
                            size_t n, struct sd_error *err)
{
    (void)info, (void)err;
    struct sink *s = user;
    s->n += n;
    if (s->out)
        fwrite(pcm, sizeof(float), n, s->out);
    return SD_OK;
}

int main(int argc, char **argv)
{
    audio_helper_maybe_run(argc, argv);
    struct audio_decode_opts o = audio_decode_opts_default();
    int stream = 0, i = 1;
    for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
        if (strcmp(argv[i], "--stream") == 0)
            stream = 1;
        else if (strcmp(argv[i], "--in-process") == 0)
            o.sandbox = 0;
        else if (strcmp(argv[i], "--max-cpu") == 0 && i + 1 < argc)
            o.max_cpu_s = atoi(argv[++i]);
        else if (strcmp(argv[i], "--helper") == 0)
            o.helper_exe = "/proc/self/exe";
        else if (strcmp(argv[i], "--raw") == 0)
            o.raw_pcm_s16le = 1;
        else if (strcmp(argv[i], "--allowed") == 0 && i + 1 < argc)
            o.allowed = argv[++i];
        else if (strcmp(argv[i], "--max-duration") == 0 && i + 1 < argc)
            o.max_duration_s = atof(argv[++i]);
        else if (strcmp(argv[i], "--max-memory") == 0 && i + 1 < argc)
            o.max_memory_mb = atoi(argv[++i]);
        else if (strcmp(argv[i], "--ballast") == 0 && i + 1 < argc) {
            /* Touched heap, like a loaded model: shows what fork() costs in a big process. */
            size_t mb = (size_t)atol(argv[++i]);
            char *b = malloc(mb << 20);
            if (b)
                memset(b, 1, mb << 20);
        }
        else {
            fprintf(stderr, "unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (i >= argc) {
        fprintf(stderr, "usage: %s [options] FILE [OUT.f32]\n", argv[0]);
        return 2;
    }
    struct sink s = {NULL, 0};
    if (i + 1 < argc && !(s.out = fopen(argv[i + 1], "wb"))) {
        perror(argv[i + 1]);
        return 2;
    }
    struct audio_info info = {0};
    struct sd_error err = {0};
    enum sd_err rc;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (stream) {
        rc = audio_decode_stream(argv[i], &o, on_chunk, &s, &info, &err);
    } else {
        float *pcm = NULL;
        rc = audio_decode_file(argv[i], &o, &pcm, &s.n, &info, &err);
        if (rc == SD_OK && s.out)
            fwrite(pcm, sizeof(float), s.n, s.out);
        free(pcm);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (s.out)
        fclose(s.out);
    struct rusage self, kids;
    getrusage(RUSAGE_SELF, &self);
    getrusage(RUSAGE_CHILDREN, &kids);
    if (rc == SD_OK)
        printf("ok format=%s codec=%s rate=%d channels=%d duration=%.3f samples=%zu\n",
               info.format, info.codec, info.sample_rate, info.channels, info.duration_s, s.n);
    else
        printf("error %s: %s\n", sd_err_name(rc), err.msg);
    printf("decode_ms=%.1f maxrss_kib self=%ld decoder=%ld\n",
           (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6,
           self.ru_maxrss, kids.ru_maxrss);
    return rc == SD_OK ? 0 : 1;
}

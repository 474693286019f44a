/*
 * fuzz_audio.c - libFuzzer target over the public decode entry point,
 * audio_decode_file, with the sandbox on (the service's configuration).
 *
 * Each input is written to a memfd and decoded by a forked, limited child.
 * A finding is anything that goes wrong in this (the parent) process: a
 * crash, an ASan/UBSan report, a leak, an error code outside the documented
 * set, or a "successful" result that breaks the output contract. Decoder
 * crashes inside the child are expected and must come back as errors.
 * Build and run: `make fuzz-audio [FUZZ_SECONDS=60]`.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "audio/audio.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_require(int ok, const char *what, const struct sd_error *err)
{
    if (!ok) {
        fprintf(stderr, "fuzz_audio: contract broken: %s (%s)\n", what, err->msg);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int fd = -1;
    static char path[64];
    if (fd < 0) {
        fd = memfd_create("fuzz-audio", MFD_CLOEXEC);
        if (fd < 0)
            abort();
        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    }
    if (ftruncate(fd, 0) != 0 || (size && pwrite(fd, data, size, 0) != (ssize_t)size))
        abort();

    struct audio_decode_opts o = audio_decode_opts_default();
    o.max_duration_s = 3600;
    o.max_memory_mb = 512;
    o.max_cpu_s = 10;
    o.timeout_ms = 20000;
    o.allowed = size && (data[0] & 1) ? "mp3,wav,m4a" : NULL;
    struct audio_info info;
    struct sd_error err = {0};
    float *pcm = NULL;
    size_t n = 0;
    enum sd_err rc = audio_decode_file(path, &o, &pcm, &n, &info, &err);
    fuzz_require(rc == SD_OK || rc == SD_EFORMAT || rc == SD_EUNSUPPORTED || rc == SD_ETOOBIG ||
                 rc == SD_ETIMEOUT, "unexpected error code", &err);
    if (rc == SD_OK) {
        fuzz_require(pcm && n > 0, "success without samples", &err);
        fuzz_require(n <= (size_t)(o.max_duration_s * AUDIO_SAMPLE_RATE), "over the limit", &err);
        fuzz_require(info.sample_rate > 0 && info.channels > 0 && info.channels <= 64,
                     "bad info", &err);
        fuzz_require(fabs(info.duration_s - (double)n / AUDIO_SAMPLE_RATE) < 1e-6, "duration",
                     &err);
        fuzz_require(memchr(info.format, 0, sizeof(info.format)) != NULL, "format string", &err);
        for (size_t i = 0; i < n; i++)
            fuzz_require(isfinite(pcm[i]), "non-finite sample", &err);
    } else {
        fuzz_require(err.msg[0] != 0, "error without a message", &err);
    }
    free(pcm);
    return 0;
}

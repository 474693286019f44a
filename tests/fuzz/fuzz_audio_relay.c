/*
 * fuzz_audio_relay.c - libFuzzer target over the parent's half of the
 * sandbox pipe protocol (audio_relay_records): if a decoder child were
 * compromised, these bytes are all it could send us. Whatever arrives, the
 * parent must return a documented error or deliver well-formed chunks.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "audio/audio_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static enum sd_err relay_info(void *user, const struct audio_info *info, struct sd_error *err)
{
    (void)user, (void)err;
    if (!memchr(info->format, 0, sizeof(info->format)) || !memchr(info->codec, 0,
                                                                  sizeof(info->codec)))
        abort();
    return SD_OK;
}

static enum sd_err relay_pcm(void *user, const float *pcm, size_t n, struct sd_error *err)
{
    (void)err;
    size_t *total = user;
    if (n == 0 || n > AUDIO_REC_MAX_PCM)
        abort();
    for (size_t i = 0; i < n; i++)
        if (!isfinite(pcm[i]))
            abort();
    *total += n;
    return SD_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int fd = -1;
    if (fd < 0 && (fd = memfd_create("fuzz-relay", MFD_CLOEXEC)) < 0)
        abort();
    if (ftruncate(fd, 0) != 0 || (size && pwrite(fd, data, size, 0) != (ssize_t)size) ||
        lseek(fd, 0, SEEK_SET) != 0)
        abort();
    struct audio_decode_opts o = audio_decode_opts_default();
    o.max_duration_s = 1; /* 16000 samples: reachable, so the limit path gets exercised */
    o.timeout_ms = 1000;
    size_t total = 0;
    struct audio_sink sink = {relay_info, relay_pcm, &total};
    struct sd_error err = {0};
    int state = AUDIO_RELAY_RUNNING;
    enum sd_err rc = audio_relay_records(fd, &o, &sink, &state, &err);
    if (total > 16000)
        abort();
    if (rc == SD_OK && state != AUDIO_RELAY_DONE)
        abort();
    if (state == AUDIO_RELAY_DIED && rc != SD_EINTERNAL)
        abort();
    if (rc != SD_OK && state != AUDIO_RELAY_DIED && !err.msg[0])
        abort();
    return 0;
}

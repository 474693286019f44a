/*
 * audio.h - turning any audio file users send into 16 kHz mono float PCM.
 *
 * Untrusted media is decoded in a separate, resource-limited child process
 * (FFmpeg libraries), so a crash, hang or memory blow-up in a decoder becomes
 * an error for that file only. Format is detected from the content.
 */
#ifndef SD_AUDIO_AUDIO_H
#define SD_AUDIO_AUDIO_H

#include <stddef.h>

#include "util/err.h"

#define AUDIO_SAMPLE_RATE 16000

struct audio_info {
    double duration_s;      /* of the decoded audio */
    char format[32];        /* container as detected: "wav", "mp3", "mp4", "flac", "ogg", "webm", ... */
    char codec[32];         /* "pcm_s16le", "mp3", "aac", "opus", ... */
    int sample_rate;        /* original */
    int channels;           /* original */
};

struct audio_decode_opts {
    double max_duration_s;  /* enforced while decoding; default 4 h */
    const char *allowed;    /* comma list of allowed formats ("mp3,wav,m4a"), NULL = all */
    int raw_pcm_s16le;      /* input is headerless s16le 16 kHz mono (the caller says so) */
    int sandbox;            /* 1 = decode in the limited child process (default) */
};

struct audio_decode_opts audio_decode_opts_default(void);

/*
 * Decodes the file at path. On SD_OK the caller owns *pcm (free()).
 * Errors: SD_EUNSUPPORTED (not audio / format not allowed), SD_EFORMAT
 * (corrupt, truncated, decoder crashed), SD_ETOOBIG (over max_duration_s or
 * the memory limit), SD_ENOTFOUND / SD_EIO (cannot read).
 */
enum sd_err audio_decode_file(const char *path, const struct audio_decode_opts *opts, float **pcm,
                              size_t *n_samples, struct audio_info *info, struct sd_error *err);

#endif

/*
 * audio_internal.h - pieces shared by the files of src/audio, not an API.
 *
 * ffdec.c decodes an opened file descriptor with FFmpeg in the calling
 * process and hands PCM to a sink; sandbox.c runs that in a limited child
 * and speaks the pipe protocol below; decode.c is the public face.
 */
#ifndef SD_AUDIO_INTERNAL_H
#define SD_AUDIO_INTERNAL_H

#include <stdint.h>
#include <sys/types.h>

#include "audio/audio.h"

struct audio_sink {
    /* Once, before any PCM: format facts and the duration the header declares (0 = unknown). */
    enum sd_err (*on_info)(void *user, const struct audio_info *info, struct sd_error *err);
    enum sd_err (*on_pcm)(void *user, const float *pcm, size_t n_samples, struct sd_error *err);
    void *user;
};

/* opts with every 0 limit replaced by its default; NULL -> all defaults. */
struct audio_decode_opts audio_opts_resolve(const struct audio_decode_opts *opts);

/*
 * Decodes fd (positioned anywhere; read with pread/lseek from offset 0) in
 * this process. probe_only stops after on_info. Enforces opts->allowed and
 * opts->max_duration_s (declared and decoded). Opens no file, logs nothing
 * (the caller decides what FFmpeg's global logger does).
 */
enum sd_err audio_ff_decode_fd(int fd, const struct audio_decode_opts *opts, int probe_only,
                               const struct audio_sink *sink, struct sd_error *err);

/* Maps a detected container to our format name and checks it against allowed (NULL = all). */
int audio_format_allowed(const char *format, const char *allowed);

/*
 * Runs audio_ff_decode_fd on fd in a forked, limited child and relays its
 * output to sink. Errors of the child arrive as their own codes; a crash,
 * limit or timeout becomes SD_EFORMAT / SD_ETOOBIG / SD_ETIMEOUT.
 */
enum sd_err audio_sandbox_decode(int fd, const struct audio_decode_opts *opts, int probe_only,
                                 const struct audio_sink *sink, struct sd_error *err);

/*
 * The child's whole life after fork (or in the exec'd helper): limits,
 * seccomp, decode in_fd, records to out_fd, _exit. Never returns.
 */
_Noreturn void audio_sandbox_child_main(int in_fd, int out_fd, const struct audio_decode_opts *o,
                                        int probe_only);

/* posix_spawn()s exe as the helper (helper.c) with in_fd and out_fd as its fds 3 and 4. */
enum sd_err audio_helper_spawn(const char *exe, int in_fd, int out_fd,
                               const struct audio_decode_opts *o, int probe_only, pid_t *pid,
                               struct sd_error *err);

/*
 * The parent's half of the pipe protocol: reads records from fd (within
 * opts->timeout_ms of waiting), checks them and feeds sink. *state ends as
 * AUDIO_RELAY_DONE (END or ERR record seen), AUDIO_RELAY_DIED (EOF: the
 * child's wait status explains) or stays AUDIO_RELAY_RUNNING (we stopped it).
 * Separate so the fuzzer can hit it with arbitrary bytes.
 */
enum { AUDIO_RELAY_RUNNING, AUDIO_RELAY_DONE, AUDIO_RELAY_DIED };
enum sd_err audio_relay_records(int fd, const struct audio_decode_opts *opts,
                                const struct audio_sink *sink, int *state, struct sd_error *err);

/* Pipe protocol, child -> parent: a header then len bytes of payload. */
enum audio_rec_type {
    AUDIO_REC_INFO = 1,  /* struct audio_info */
    AUDIO_REC_PCM = 2,   /* float samples */
    AUDIO_REC_END = 3,   /* no payload: success */
    AUDIO_REC_ERR = 4,   /* int32 code, then the message (not NUL-terminated) */
};

struct audio_rec_hdr {
    uint32_t type;
    uint32_t len;
};

#define AUDIO_REC_MAX_PCM 4096    /* samples per PCM record */
#define AUDIO_REC_MAX_LEN (AUDIO_REC_MAX_PCM * 4)

#endif

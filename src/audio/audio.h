/*
 * audio.h - turning any audio file users send into 16 kHz mono float PCM.
 *
 * Untrusted media is decoded in a separate, resource-limited child process
 * (FFmpeg libraries), so a crash, hang or memory blow-up in a decoder becomes
 * an error for that file only. Format is detected from the content, never
 * from the file name. This module does not log and keeps no global state.
 *
 * Threads: every function here may be called from several threads at once.
 * The sandboxed path fork()s the calling process, or posix_spawn()s
 * opts.helper_exe; the caller must not set SIGCHLD to SIG_IGN (the child is
 * reaped with waitpid).
 */
#ifndef SD_AUDIO_AUDIO_H
#define SD_AUDIO_AUDIO_H

#include <stdbool.h>
#include <stddef.h>

#include "util/err.h"

#define AUDIO_SAMPLE_RATE 16000

/* Names accepted in audio_decode_opts.allowed (aliases map to the first name of each group). */
#define AUDIO_FORMATS_ALL "wav,mp3,m4a,mp4,flac,ogg,webm,mkv,aac,aiff"

struct audio_info {
    double duration_s;      /* of the decoded audio (audio_probe_file: as the header declares,
                               0 when unknown) */
    char format[32];        /* container as detected: "wav", "mp3", "m4a", "mp4", "flac", "ogg",
                               "webm", "mkv", "aac", "aiff", "pcm" (raw) */
    char codec[32];         /* "pcm_s16le", "mp3float", "aac", "opus", ... (FFmpeg decoder name) */
    int sample_rate;        /* original */
    int channels;           /* original */
};

/*
 * Numeric limits set to 0 take their default, so `{0}` plus a few fields is
 * valid; audio_decode_opts_default() gives every default (sandbox on).
 */
struct audio_decode_opts {
    double max_duration_s;  /* enforced while decoding; default 4 h */
    const char *allowed;    /* comma list of allowed formats ("mp3,wav,m4a"), case-insensitive;
                               NULL or empty = all; aliases: mpeg/mpga = mp3, m4a and mp4 both
                               admit the MP4 family, oga/opus = ogg, wave = wav, matroska = mkv,
                               aif = aiff; unknown names match nothing (validate the config
                               value once with audio_formats_check) */
    int raw_pcm_s16le;      /* input is headerless s16le 16 kHz mono (the caller says so);
                               converted in-process, no FFmpeg involved */
    int sandbox;            /* 1 = decode in the limited child process (default); 0 = decode in
                               this process (trusted input only, e.g. the CLI on local files) */
    int max_memory_mb;      /* address space the child may add to what it inherits; default 1024 */
    int max_cpu_s;          /* CPU seconds of the child; default 300 (-> SD_ETIMEOUT) */
    int timeout_ms;         /* wall-clock time spent waiting for the child, not counting time
                               spent in the caller's callback; default 600000 (-> SD_ETIMEOUT) */
    int timeout_ms_per_audio_s; /* waiting time the child earns per second of audio it
                               delivers, on top of timeout_ms, so the wall limit follows the
                               audio's length (a stopped or stalled child fails soon; a long
                               file still decodes); 0: timeout_ms alone */
    /*
     * Asked while waiting on the child (at least every 100 ms) with the
     * seconds since it last sent anything; returning false kills the child at
     * once and the call returns SD_ECANCELLED (a cancelled job, a drain: a
     * stopped child cannot hold its caller). NULL: never asked. Runs on the
     * calling thread.
     */
    bool (*keep_going)(void *user, double stalled_s);
    void *keep_going_user;
    const char *helper_exe; /* NULL: the child is a fork() of this process (inherits a copy of
                               its memory). Set (e.g. "/proc/self/exe"): the child is that program
                               run via posix_spawn as `exe __audio-decode ...`, a fresh image that
                               holds none of the server's memory, locks or secrets and costs the
                               same whatever the server's size; its main() must start with
                               audio_helper_maybe_run(). */
};

struct audio_decode_opts audio_decode_opts_default(void);

/*
 * Decodes the file at path. On SD_OK the caller owns *pcm (free()).
 * Errors: SD_EUNSUPPORTED (not audio / no audio stream / format or codec not
 * allowed), SD_EFORMAT (empty, corrupt, truncated, decoder crashed),
 * SD_ETOOBIG (over max_duration_s, declared or decoded, or the memory limit),
 * SD_ETIMEOUT (CPU or wall-clock limit), SD_ENOTFOUND / SD_EIO (cannot read).
 * info may be NULL.
 */
enum sd_err audio_decode_file(const char *path, const struct audio_decode_opts *opts, float **pcm,
                              size_t *n_samples, struct audio_info *info, struct sd_error *err);

/*
 * Called with consecutive chunks of 16 kHz mono PCM (at most a few thousand
 * samples each; pcm is only valid during the call). info holds the detected
 * format from the first call on; info->duration_s is the audio delivered so
 * far. Returning anything but SD_OK stops decoding (the child is killed) and
 * audio_decode_stream returns that code with the callback's err.
 */
typedef enum sd_err (*audio_chunk_fn)(void *user, const struct audio_info *info, const float *pcm,
                                      size_t n_samples, struct sd_error *err);

/*
 * Streaming variant of audio_decode_file: memory stays bounded whatever the
 * length of the audio. Same errors; *info (may be NULL) is filled on SD_OK.
 * A file that fails part-way may already have delivered chunks.
 */
enum sd_err audio_decode_stream(const char *path, const struct audio_decode_opts *opts,
                                audio_chunk_fn on_chunk, void *user, struct audio_info *info,
                                struct sd_error *err);

/*
 * Detects format, codec, rate and channels and the declared duration
 * (info->duration_s, 0 when the container does not say) without decoding
 * the samples; same sandbox, allowed list and declared-duration check.
 */
enum sd_err audio_probe_file(const char *path, const struct audio_decode_opts *opts,
                             struct audio_info *info, struct sd_error *err);

#define AUDIO_HELPER_ARG "__audio-decode"

/*
 * For programs used as helper_exe: call first thing in main(). When argv is
 * a helper invocation (argv[1] == AUDIO_HELPER_ARG) it decodes and _exit()s;
 * otherwise it returns at once and does nothing.
 */
void audio_helper_maybe_run(int argc, char **argv);

/*
 * Silences FFmpeg's process-wide logger (it prints to stderr by default).
 * The sandbox child is always silent; call this once at start-up when using
 * sandbox = 0 in a program whose stderr matters. Not thread-safe with other
 * FFmpeg users changing the log level.
 */
void audio_ffmpeg_quiet(void);

/*
 * Checks a comma list of format names (a config value such as
 * ALLOWED_AUDIO_FORMATS): SD_EINVAL naming the first unknown entry.
 */
enum sd_err audio_formats_check(const char *list, struct sd_error *err);

#endif

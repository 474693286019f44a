/*
 * test_bad_input.c - the bad-input table: every hostile or broken file gets
 * the server-facing error it should (415 unsupported, 422 corrupt, 413 too
 * long/too big, 504 timeout), from the sandboxed decoder, and this process
 * survives. Ends with a seeded mutation run over valid files.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audio/audio.h"
#include "check.h"
#include "fixtures.h"

struct bad {
    const char *file;
    enum sd_err want;
    const char *msg_has;      /* substring of the error message */
    const char *allowed;
    double max_duration_s;
    int max_memory_mb;
    int timeout_ms;
    int asan_may_crash;       /* ASan's allocator dies (SIGSYS in the sandbox) instead of NULL */
};

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#else
#define UNDER_ASAN 0
#endif

static void check_bad(const struct bad *b)
{
    char p[4200];
    struct audio_decode_opts o = audio_decode_opts_default();
    o.allowed = b->allowed;
    if (b->max_duration_s > 0)
        o.max_duration_s = b->max_duration_s;
    if (b->max_memory_mb > 0)
        o.max_memory_mb = b->max_memory_mb;
    if (b->timeout_ms > 0)
        o.timeout_ms = b->timeout_ms;
    struct sd_error err = {0};
    float *pcm = (float *)&err; /* must stay untouched on failure */
    size_t n = 12345;
    enum sd_err rc = audio_decode_file(afx_path(b->file, p, sizeof(p)), &o, &pcm, &n, NULL, &err);
    if (UNDER_ASAN && b->asan_may_crash && rc == SD_EFORMAT)
        return;
    CHECK_MSG(rc == b->want, "%s: got %s (%s), want %s", b->file, sd_err_name(rc), err.msg,
              sd_err_name(b->want));
    CHECK_MSG(!b->msg_has || strstr(err.msg, b->msg_has), "%s: message \"%s\" lacks \"%s\"",
              b->file, err.msg, b->msg_has);
    CHECK(pcm == (float *)&err && n == 12345);
    fprintf(stderr, "    %-22s -> %-18s %s\n", b->file, sd_err_name(rc), err.msg);
}

#define BAD_TEST(name, file_, want_, msg_, ...)                                    \
    TEST(audio_bad_##name)                                                         \
    {                                                                              \
        static const struct bad b = {.file = file_, .want = want_, .msg_has = msg_, \
                                     __VA_ARGS__};                                 \
        check_bad(&b);                                                             \
    }

BAD_TEST(empty_file, "empty.mp3", SD_EFORMAT, "empty")
BAD_TEST(text_as_mp3, "text.mp3", SD_EUNSUPPORTED, "not a recognised audio format")
BAD_TEST(truncated_mp3, "trunc.mp3", SD_EFORMAT, "truncated")
BAD_TEST(truncated_m4a_faststart, "trunc_faststart.m4a", SD_EFORMAT, "truncated")
BAD_TEST(truncated_m4a_no_moov, "trunc_moov_at_end.m4a", SD_EFORMAT, "corrupt")
BAD_TEST(truncated_flac, "trunc.flac", SD_EFORMAT, "truncated")
BAD_TEST(wav_claims_10h, "claims_10h.wav", SD_ETOOBIG, "declares 36000 s")
/* No length in the header: caught while decoding, at the limit. */
BAD_TEST(bomb_over_limit, "bomb_20min.flac", SD_ETOOBIG, "longer than the limit of 600 s",
                           .max_duration_s = 600)
BAD_TEST(video_without_audio, "video_only.mp4", SD_EUNSUPPORTED, "no audio stream")
BAD_TEST(format_not_allowed, "flac_44k_stereo.flac", SD_EUNSUPPORTED, "not allowed",
                              .allowed = "mp3,wav,m4a")
BAD_TEST(webm_not_allowed, "webm_live_opus.webm", SD_EUNSUPPORTED, "not allowed",
                            .allowed = "mp3,wav,m4a")
BAD_TEST(playlist_as_mp3, "playlist.mp3", SD_EUNSUPPORTED, NULL)
/* The decoder child needs more memory than it may have: an error, not a dead server. */
BAD_TEST(child_over_memory_limit, "odd_rate.wav", SD_ETOOBIG, "memory", .max_memory_mb = 2,
         .asan_may_crash = 1)
BAD_TEST(wall_clock_timeout, "bomb_20min.flac", SD_ETIMEOUT, "longer than 1 ms",
                              .timeout_ms = 1)
BAD_TEST(missing_file, "no-such-file.wav", SD_ENOTFOUND, "no-such-file.wav")

TEST(audio_bad_directory_is_not_a_file)
{
    struct sd_error err = {0};
    float *pcm = NULL;
    size_t n = 0;
    CHECK_EQ_INT(audio_decode_file("/tmp", NULL, &pcm, &n, NULL, &err), SD_EIO);
}

TEST(audio_bad_same_result_in_process)
{
    /* The in-process path gives the same codes for the files it can safely see. */
    const char *files[] = {"empty.mp3", "text.mp3", "trunc.flac", "claims_10h.wav",
                           "video_only.mp4", "playlist.mp3"};
    enum sd_err want[] = {SD_EFORMAT, SD_EUNSUPPORTED, SD_EFORMAT, SD_ETOOBIG, SD_EUNSUPPORTED,
                          SD_EUNSUPPORTED};
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        char p[4200];
        struct audio_decode_opts o = audio_decode_opts_default();
        o.sandbox = 0;
        audio_ffmpeg_quiet();
        struct sd_error err = {0};
        float *pcm = NULL;
        size_t n = 0;
        enum sd_err rc = audio_decode_file(afx_path(files[i], p, sizeof(p)), &o, &pcm, &n, NULL,
                                           &err);
        CHECK_MSG(rc == want[i], "%s: %s (%s)", files[i], sd_err_name(rc), err.msg);
        free(pcm);
    }
}

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Flips, zeroes, truncates and splices valid files; any outcome but a crash here is fine. */
TEST(audio_bad_mutations_never_hurt_parent)
{
    const char *files[] = {"mp3_22k_mono.mp3", "m4a_16k_mono.m4a", "flac_16k_mono.flac",
                           "ogg_opus_48k_mono.ogg", "webm_live_opus.webm", "wav_s16_16k_mono.wav"};
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    char tmpl[] = "/tmp/scribed-audio-mut-XXXXXX";
    int fd = mkstemp(tmpl);
    CHECK(fd >= 0);
    if (fd < 0)
        return;
    int n_ok = 0, n_err = 0;
    for (int round = 0; round < 60; round++) {
        char p[4200];
        size_t n = 0;
        unsigned char *buf = check_read_file(afx_path(files[round % 6], p, sizeof(p)), &n);
        if (!buf || n < 64) {
            free(buf);
            continue;
        }
        int kind = (int)(rng_next(&seed) % 4);
        for (int k = 0; k < 1 + (int)(rng_next(&seed) % 20); k++) {
            size_t at = (size_t)(rng_next(&seed) % n);
            if (kind == 0)
                buf[at] ^= (unsigned char)(1u << (rng_next(&seed) % 8));
            else if (kind == 1)
                buf[at] = (unsigned char)rng_next(&seed);
            else if (kind == 2)
                memset(buf + at, 0xff, n - at < 16 ? n - at : 16);
        }
        if (kind == 3) /* keep the header, lose the middle */
            memmove(buf + n / 8, buf + n / 2, n - n / 2), n -= n / 2 - n / 8;
        if (ftruncate(fd, 0) != 0 || pwrite(fd, buf, n, 0) != (ssize_t)n)
            CHECK(0);
        free(buf);
        struct audio_decode_opts o = audio_decode_opts_default();
        o.timeout_ms = 20000;
        struct sd_error err = {0};
        float *pcm = NULL;
        size_t ns = 0;
        enum sd_err rc = audio_decode_file(tmpl, &o, &pcm, &ns, NULL, &err);
        CHECK_MSG(rc == SD_OK || rc == SD_EFORMAT || rc == SD_EUNSUPPORTED || rc == SD_ETOOBIG,
                  "round %d: %s (%s)", round, sd_err_name(rc), err.msg);
        rc == SD_OK ? n_ok++ : n_err++;
        free(pcm);
    }
    close(fd);
    unlink(tmpl);
    fprintf(stderr, "    mutations: %d decoded, %d rejected\n", n_ok, n_err);
}

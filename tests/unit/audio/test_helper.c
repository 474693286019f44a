/*
 * test_helper.c - the exec'd helper variant of the sandbox (opts.helper_exe):
 * this test binary is its own helper (a constructor runs
 * audio_helper_maybe_run before check's main), so the tests below decode via
 * posix_spawn("/proc/self/exe", "__audio-decode", ...) exactly as a server
 * whose main() calls audio_helper_maybe_run would.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audio/audio.h"
#include "check.h"
#include "fixtures.h"

/* glibc passes argc/argv to constructors of the main program. */
__attribute__((constructor)) static void audio_test_helper_hook(int argc, char **argv)
{
    audio_helper_maybe_run(argc, argv);
}

static enum sd_err helper_decode(const char *name, struct audio_decode_opts *o, size_t *n,
                                 struct audio_info *info, struct sd_error *err)
{
    char p[4200];
    float *pcm = NULL;
    o->helper_exe = "/proc/self/exe";
    enum sd_err rc = audio_decode_file(afx_path(name, p, sizeof(p)), o, &pcm, n, info, err);
    free(pcm);
    return rc;
}

TEST(audio_helper_decodes_like_fork)
{
    const char *files[] = {"mp3_44k_stereo.mp3", "m4a_48k_stereo.m4a", "webm_live_opus.webm",
                           "flac_16k_mono.flac", "ogg_vorbis_44k_stereo.ogg"};
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        char p[4200];
        struct audio_decode_opts o = audio_decode_opts_default();
        struct audio_info ia, ib;
        struct sd_error err = {0};
        float *a = NULL, *b = NULL;
        size_t na = 0, nb = 0;
        afx_path(files[i], p, sizeof(p));
        CHECK_OK(audio_decode_file(p, &o, &a, &na, &ia, &err), &err);
        o.helper_exe = "/proc/self/exe";
        CHECK_OK(audio_decode_file(p, &o, &b, &nb, &ib, &err), &err);
        CHECK(a && b && na == nb && memcmp(a, b, na * sizeof(float)) == 0);
        CHECK(memcmp(&ia, &ib, sizeof(ia)) == 0);
        free(a);
        free(b);
    }
}

TEST(audio_helper_bad_inputs)
{
    static const struct {
        const char *file;
        enum sd_err want;
    } rows[] = {
        {"empty.mp3", SD_EFORMAT},         {"text.mp3", SD_EUNSUPPORTED},
        {"trunc.flac", SD_EFORMAT},        {"claims_10h.wav", SD_ETOOBIG},
        {"video_only.mp4", SD_EUNSUPPORTED}, {"playlist.mp3", SD_EUNSUPPORTED},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct audio_decode_opts o = audio_decode_opts_default();
        struct sd_error err = {0};
        size_t n = 0;
        enum sd_err rc = helper_decode(rows[i].file, &o, &n, NULL, &err);
        CHECK_MSG(rc == rows[i].want, "%s: %s (%s)", rows[i].file, sd_err_name(rc), err.msg);
    }
}

TEST(audio_helper_limits_reach_the_child)
{
    struct audio_decode_opts o = audio_decode_opts_default();
    struct sd_error err = {0};
    size_t n = 0;
    o.allowed = "mp3,wav,m4a";
    CHECK_EQ_INT(helper_decode("flac_16k_mono.flac", &o, &n, NULL, &err), SD_EUNSUPPORTED);
    o = audio_decode_opts_default();
    o.max_duration_s = 600;
    CHECK_EQ_INT(helper_decode("bomb_20min.flac", &o, &n, NULL, &err), SD_ETOOBIG);
    o = audio_decode_opts_default();
    o.max_memory_mb = 2;
    enum sd_err rc = helper_decode("odd_rate.wav", &o, &n, NULL, &err);
    CHECK_MSG(rc == SD_ETOOBIG || rc == SD_EFORMAT, "%s (%s)", sd_err_name(rc), err.msg);
    struct audio_info info;
    o = audio_decode_opts_default();
    o.helper_exe = "/proc/self/exe";
    char p[4200];
    CHECK_OK(audio_probe_file(afx_path("m4a_16k_mono.m4a", p, sizeof(p)), &o, &info, &err), &err);
    CHECK_STR(info.format, "m4a");
}

TEST(audio_helper_missing_exe)
{
    struct audio_decode_opts o = audio_decode_opts_default();
    o.helper_exe = "/nonexistent/scribed";
    char p[4200];
    struct sd_error err = {0};
    float *pcm = NULL;
    size_t n = 0;
    CHECK_EQ_INT(audio_decode_file(afx_path("mp3_22k_mono.mp3", p, sizeof(p)), &o, &pcm, &n, NULL,
                                   &err), SD_EINTERNAL);
    CHECK(strstr(err.msg, "/nonexistent/scribed") != NULL);
}

TEST(audio_helper_rejects_stray_argv)
{
    /* Wrong version or arguments: exits 2 at once, no decoding. */
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "/proc/%d/exe %s v0 1 1 1 0 '*' 1 </dev/null", (int)getpid(),
             AUDIO_HELPER_ARG);
    int st = system(cmd);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 2);
}

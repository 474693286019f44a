/*
 * test_formats.c - every accepted format decodes, in the sandbox, to 16 kHz
 * mono PCM that matches an independent decode by the ffmpeg CLI and the
 * spoken source (normalised cross-correlation > 0.99), with the right
 * duration and metadata. Also: streaming, in-process, raw PCM, probing.
 */
#include <math.h>
#include <stdio.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "audio/audio.h"
#include "check.h"
#include "fixtures.h"

#define SRC_DURATION_TOL 0.1
#define MAX_LAG 1600 /* 100 ms: encoder delay and padding */

struct clip {
    const char *file, *format, *codec;
    int rate, channels;
    double min_corr_src; /* against the 16 kHz source; narrowband clips lose the top octave */
};

static void check_clip(const struct clip *c)
{
    char p[4200], r[4300];
    struct audio_decode_opts o = audio_decode_opts_default();
    struct audio_info info;
    struct sd_error err = {0};
    float *pcm = NULL;
    size_t n = 0;
    CHECK_OK(audio_decode_file(afx_path(c->file, p, sizeof(p)), &o, &pcm, &n, &info, &err), &err);
    if (!pcm)
        return;
    CHECK_STR(info.format, c->format);
    CHECK_STR(info.codec, c->codec);
    CHECK_EQ_INT(info.sample_rate, c->rate);
    CHECK_EQ_INT(info.channels, c->channels);
    CHECK_NEAR(info.duration_s, (double)n / AUDIO_SAMPLE_RATE, 1e-9);

    size_t n_src = 0, n_ref = 0;
    float *src = afx_read_f32(afx_path("src16k.f32", r, sizeof(r)), &n_src);
    snprintf(r, sizeof(r), "%s.ref.f32", p);
    float *ref = afx_read_f32(r, &n_ref);
    if (src && ref) {
        CHECK_NEAR(info.duration_s, (double)n_src / AUDIO_SAMPLE_RATE, SRC_DURATION_TOL);
        double c_ref = afx_xcorr(pcm, n, ref, n_ref, MAX_LAG);
        double c_src = afx_xcorr(pcm, n, src, n_src, MAX_LAG);
        fprintf(stderr, "    %-28s corr ref %.5f src %.5f dur %.3f\n", c->file, c_ref, c_src,
                info.duration_s);
        CHECK_MSG(c_ref > 0.99, "%s: correlation with the ffmpeg CLI decode %.4f", c->file, c_ref);
        CHECK_MSG(c_src > c->min_corr_src, "%s: correlation with the source %.4f", c->file, c_src);
        float peak = 0;
        for (size_t i = 0; i < n; i++)
            peak = fabsf(pcm[i]) > peak ? fabsf(pcm[i]) : peak;
        CHECK_MSG(peak > 0.05f && peak <= 1.5f, "%s: peak %.3f", c->file, peak);
    }
    free(src);
    free(ref);
    free(pcm);
}

#define CLIP_TEST(name, ...)                                                       \
    TEST(audio_fmt_##name)                                                         \
    {                                                                              \
        static const struct clip c = __VA_ARGS__;                                  \
        check_clip(&c);                                                            \
    }

CLIP_TEST(wav_s16_16k_mono, {"wav_s16_16k_mono.wav", "wav", "pcm_s16le", 16000, 1, 0.99})
CLIP_TEST(wav_s16_44k_stereo, {"wav_s16_44k_stereo.wav", "wav", "pcm_s16le", 44100, 2, 0.99})
CLIP_TEST(wav_u8_8k_mono, {"wav_u8_8k_mono.wav", "wav", "pcm_u8", 8000, 1, 0.9})
CLIP_TEST(wav_s24_48k_mono, {"wav_s24_48k_mono.wav", "wav", "pcm_s24le", 48000, 1, 0.99})
CLIP_TEST(wav_s32_96k_4ch, {"wav_s32_96k_4ch.wav", "wav", "pcm_s32le", 96000, 4, 0.99})
CLIP_TEST(wav_f32_22k_mono, {"wav_f32_22k_mono.wav", "wav", "pcm_f32le", 22050, 1, 0.99})
CLIP_TEST(wav_f64_32k_6ch, {"wav_f64_32k_6ch.wav", "wav", "pcm_f64le", 32000, 6, 0.99})
CLIP_TEST(mp3_44k_stereo, {"mp3_44k_stereo.mp3", "mp3", "mp3float", 44100, 2, 0.99})
CLIP_TEST(mp3_22k_mono, {"mp3_22k_mono.mp3", "mp3", "mp3float", 22050, 1, 0.99})
CLIP_TEST(m4a_48k_stereo, {"m4a_48k_stereo.m4a", "m4a", "aac", 48000, 2, 0.99})
CLIP_TEST(m4a_16k_mono, {"m4a_16k_mono.m4a", "m4a", "aac", 16000, 1, 0.99})
CLIP_TEST(mp4_video_aac, {"mp4_video_aac.mp4", "mp4", "aac", 22050, 1, 0.99})
CLIP_TEST(flac_44k_stereo, {"flac_44k_stereo.flac", "flac", "flac", 44100, 2, 0.99})
CLIP_TEST(flac_16k_mono, {"flac_16k_mono.flac", "flac", "flac", 16000, 1, 0.99})
CLIP_TEST(ogg_vorbis_44k_stereo, {"ogg_vorbis_44k_stereo.ogg", "ogg", "vorbis", 44100, 2, 0.99})
CLIP_TEST(ogg_opus_48k_mono, {"ogg_opus_48k_mono.ogg", "ogg", "opus", 48000, 1, 0.99})
CLIP_TEST(webm_opus_48k_stereo, {"webm_opus_48k_stereo.webm", "webm", "opus", 48000, 2, 0.99})
CLIP_TEST(webm_live_opus, {"webm_live_opus.webm", "webm", "opus", 48000, 1, 0.99})
/* Raw ADTS has no gapless info: its 1024 priming samples are 371.5 samples at 16 kHz, and the
 * half-sample offset alone costs ~2% correlation with the source. */
CLIP_TEST(aac_adts_44k, {"aac_adts_44k.aac", "aac", "aac", 44100, 1, 0.95})

/* The resampler is rebuilt when the rate or layout changes between frames. */
TEST(audio_rate_and_layout_change_midway)
{
    char p[4200], r[4200];
    struct sd_error err = {0};
    float *pcm = NULL;
    size_t n = 0, n_src = 0;
    struct audio_info info;
    CHECK_OK(audio_decode_file(afx_path("changes_midway.mp3", p, sizeof(p)), NULL, &pcm, &n, &info,
                               &err), &err);
    float *src = afx_read_f32(afx_path("src16k.f32", r, sizeof(r)), &n_src);
    CHECK_NEAR((double)n, 2.0 * (double)n_src, 0.1 * AUDIO_SAMPLE_RATE);
    if (pcm && src && n > n_src + MAX_LAG) {
        CHECK(afx_xcorr(pcm, n_src, src, n_src, MAX_LAG) > 0.99);
        CHECK(afx_xcorr(pcm + (n - n_src), n_src, src, n_src, MAX_LAG) > 0.99);
    }
    free(pcm);
    free(src);
}

TEST(audio_raw_pcm_s16le)
{
    char p[4200], r[4200];
    struct audio_decode_opts o = audio_decode_opts_default();
    o.raw_pcm_s16le = 1;
    struct audio_info info;
    struct sd_error err = {0};
    float *pcm = NULL;
    size_t n = 0, n_src = 0;
    CHECK_OK(audio_decode_file(afx_path("raw_s16le_16k.pcm", p, sizeof(p)), &o, &pcm, &n, &info,
                               &err), &err);
    float *src = afx_read_f32(afx_path("src16k.f32", r, sizeof(r)), &n_src);
    CHECK_EQ_INT(n, n_src);
    CHECK_STR(info.format, "pcm");
    for (size_t i = 0; src && pcm && i < n && i < n_src; i++)
        if (fabsf(pcm[i] - src[i]) > 4.0f / 32768) { /* s16 rounding of another resampler run */
            CHECK_MSG(0, "sample %zu: %f vs %f", i, pcm[i], src[i]);
            break;
        }
    free(pcm);
    free(src);
    /* The caller's word is not checked against the content: a WAV passed as raw is noise,
     * but never an error or a crash; an odd length is. */
    CHECK_EQ_INT(audio_decode_file(afx_path("text.mp3", p, sizeof(p)), &o, &pcm, &n, &info, &err),
                 SD_EFORMAT);
}

TEST(audio_in_process_matches_sandbox)
{
    char p[4200];
    const char *files[] = {"mp3_44k_stereo.mp3", "webm_live_opus.webm", "wav_s32_96k_4ch.wav"};
    for (size_t f = 0; f < sizeof(files) / sizeof(files[0]); f++) {
        struct audio_decode_opts o = audio_decode_opts_default();
        struct sd_error err = {0};
        float *a = NULL, *b = NULL;
        size_t na = 0, nb = 0;
        afx_path(files[f], p, sizeof(p));
        CHECK_OK(audio_decode_file(p, &o, &a, &na, NULL, &err), &err);
        o.sandbox = 0;
        CHECK_OK(audio_decode_file(p, &o, &b, &nb, NULL, &err), &err);
        CHECK_EQ_INT(na, nb);
        CHECK(a && b && na == nb && memcmp(a, b, na * sizeof(float)) == 0);
        free(a);
        free(b);
    }
}

struct chunks {
    size_t n, calls, max_chunk;
    int info_ok;
    double sum;
};

static enum sd_err on_chunk(void *user, const struct audio_info *info, const float *pcm, size_t n,
                            struct sd_error *err)
{
    (void)err;
    struct chunks *c = user;
    c->info_ok += strcmp(info->format, "flac") == 0 && info->channels == 2;
    c->n += n;
    c->calls++;
    c->max_chunk = n > c->max_chunk ? n : c->max_chunk;
    for (size_t i = 0; i < n; i++)
        c->sum += pcm[i];
    return SD_OK;
}

TEST(audio_stream_matches_file)
{
    char p[4200];
    afx_path("flac_44k_stereo.flac", p, sizeof(p));
    struct audio_decode_opts o = audio_decode_opts_default();
    struct sd_error err = {0};
    struct chunks c = {0};
    struct audio_info info;
    CHECK_OK(audio_decode_stream(p, &o, on_chunk, &c, &info, &err), &err);
    float *pcm = NULL;
    size_t n = 0;
    CHECK_OK(audio_decode_file(p, &o, &pcm, &n, NULL, &err), &err);
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += pcm[i];
    CHECK_EQ_INT(c.n, n);
    CHECK_NEAR(c.sum, sum, 1e-6);
    CHECK(c.calls > 1 && c.max_chunk <= 4096);
    CHECK_EQ_INT(c.info_ok, c.calls);
    CHECK_NEAR(info.duration_s, (double)n / AUDIO_SAMPLE_RATE, 1e-9);
    free(pcm);
}

static enum sd_err stop_after_one(void *user, const struct audio_info *info, const float *pcm,
                                  size_t n, struct sd_error *err)
{
    (void)info, (void)pcm, (void)n;
    ++*(int *)user;
    return sd_fail(err, SD_ECANCELLED, "enough");
}

TEST(audio_stream_callback_stops)
{
    char p[4200];
    int calls = 0;
    struct sd_error err = {0};
    enum sd_err rc = audio_decode_stream(afx_path("bomb_20min.flac", p, sizeof(p)), NULL,
                                         stop_after_one, &calls, NULL, &err);
    CHECK_EQ_INT(rc, SD_ECANCELLED);
    CHECK_EQ_INT(calls, 1);
    CHECK_STR(err.msg, "enough");
}

/* 20 minutes streamed: this process keeps no PCM, so its peak RSS stays flat. */
TEST(audio_stream_long_bounded_memory)
{
    char p[4200];
    struct rusage ru0, ru1;
    getrusage(RUSAGE_SELF, &ru0);
    struct audio_decode_opts o = audio_decode_opts_default();
    struct sd_error err = {0};
    struct chunks c = {0};
    CHECK_OK(audio_decode_stream(afx_path("bomb_20min.flac", p, sizeof(p)), &o, on_chunk, &c,
                                 NULL, &err), &err);
    getrusage(RUSAGE_SELF, &ru1);
    CHECK_EQ_INT(c.n, 1200 * AUDIO_SAMPLE_RATE);
    /* 20 min of PCM would be 75 MiB; allow a few MiB of noise. */
    CHECK_MSG(ru1.ru_maxrss - ru0.ru_maxrss < 8 * 1024, "RSS grew by %ld KiB",
              ru1.ru_maxrss - ru0.ru_maxrss);
}

TEST(audio_probe_reports_declared)
{
    char p[4200];
    struct audio_info info;
    struct sd_error err = {0};
    CHECK_OK(audio_probe_file(afx_path("m4a_48k_stereo.m4a", p, sizeof(p)), NULL, &info, &err),
             &err);
    CHECK_STR(info.format, "m4a");
    CHECK_EQ_INT(info.channels, 2);
    CHECK_EQ_INT(info.sample_rate, 48000);
    CHECK_NEAR(info.duration_s, 4.8, 0.1);
    CHECK_OK(audio_probe_file(afx_path("webm_live_opus.webm", p, sizeof(p)), NULL, &info, &err),
             &err);
    CHECK_STR(info.format, "webm");
    CHECK_NEAR(info.duration_s, 0, 0); /* MediaRecorder-style: unknown until decoded */
}

struct thread_job {
    const char *file;
    enum sd_err rc;
    size_t n;
};

static void *decode_thread(void *arg)
{
    struct thread_job *j = arg;
    struct sd_error err = {0};
    float *pcm = NULL;
    for (int k = 0; k < 3; k++) {
        free(pcm);
        pcm = NULL;
        j->rc = audio_decode_file(j->file, NULL, &pcm, &j->n, NULL, &err);
        if (j->rc != SD_OK)
            break;
    }
    free(pcm);
    return NULL;
}

/* The service decodes from worker threads: concurrent forks must not mix up pipes or children. */
TEST(audio_concurrent_threads)
{
    static char paths[4][4200];
    const char *files[4] = {"mp3_44k_stereo.mp3", "m4a_48k_stereo.m4a", "ogg_opus_48k_mono.ogg",
                            "text.mp3"};
    struct thread_job jobs[4];
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        jobs[i] = (struct thread_job){afx_path(files[i], paths[i], sizeof(paths[i])), -1, 0};
        CHECK(pthread_create(&t[i], NULL, decode_thread, &jobs[i]) == 0);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < 3; i++) {
        CHECK_EQ_INT(jobs[i].rc, SD_OK);
        CHECK_NEAR((double)jobs[i].n / AUDIO_SAMPLE_RATE, 4.8, 0.1);
    }
    CHECK_EQ_INT(jobs[3].rc, SD_EUNSUPPORTED);
}

TEST(audio_formats_list_names)
{
    struct sd_error err = {0};
    CHECK_OK(audio_formats_check("mp3,wav,m4a", &err), &err);
    CHECK_OK(audio_formats_check(" flac , ogg,webm,mpeg,mpga,mp4 ,", &err), &err);
    CHECK_OK(audio_formats_check(AUDIO_FORMATS_ALL, &err), &err);
    CHECK_EQ_INT(audio_formats_check("mp3,midi", &err), SD_EINVAL);
    CHECK(strstr(err.msg, "\"midi\"") != NULL);
    /* mpeg selects mp3; mp4 selects an m4a file too. */
    char p[4200];
    struct audio_decode_opts o = audio_decode_opts_default();
    struct audio_info info;
    o.allowed = "mpeg";
    CHECK_OK(audio_probe_file(afx_path("mp3_22k_mono.mp3", p, sizeof(p)), &o, &info, &err), &err);
    o.allowed = "mp4";
    CHECK_OK(audio_probe_file(afx_path("m4a_16k_mono.m4a", p, sizeof(p)), &o, &info, &err), &err);
    /* An unknown name matches nothing rather than failing every request. */
    o.allowed = "wav,nonsense";
    CHECK_EQ_INT(audio_probe_file(p, &o, &info, &err), SD_EUNSUPPORTED);
    o.allowed = " , "; /* lists nothing: same as NULL */
    CHECK_OK(audio_probe_file(p, &o, &info, &err), &err);
}

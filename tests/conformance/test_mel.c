/*
 * test_mel.c - conformance of whisper/mel.c with whisper.cpp's log-mel on the
 * reference clips (../shared/reference/<clip>.wav -> <clip>.mel.f32, the
 * first 3000 frames). Filters come from the micro model file. A minimal WAV
 * reader lives here so the test does not depend on the audio library; it
 * accepts only what the clips are (PCM16 mono 16 kHz).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "whisper/mel.h"
#include "whisper/model.h"

/* The reference model; on SD_OK the caller frees it. */
static struct whisper_model *mel_test_model(const float **filters)
{
    char path[1024];
    struct sd_error err = {0};
    struct whisper_model *model = NULL;
    snprintf(path, sizeof(path), "%s/reference/micro-en.f16.bin", check_shared_dir());
    enum sd_err rc = whisper_model_load(path, &model, &err);
    CHECK_MSG(rc == SD_OK, "%s", err.msg);
    if (rc != SD_OK)
        return NULL;
    int n_mels = 0, n_bins = 0;
    *filters = whisper_model_mel_filters(model, &n_mels, &n_bins);
    CHECK_EQ_INT(n_mels, 80);
    CHECK_EQ_INT(n_bins, 201);
    return model;
}

static uint32_t rd_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint16_t rd_u16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

/* PCM16 mono 16 kHz WAV -> samples / 32768 (as whisper-cli). NULL on anything else. */
static float *mel_test_read_wav(const char *path, size_t *n_samples)
{
    size_t n = 0;
    uint8_t *buf = check_read_file(path, &n);
    if (!buf)
        return NULL;
    float *pcm = NULL;
    int fmt_ok = 0;
    if (n < 12 || memcmp(buf, "RIFF", 4) != 0 || memcmp(buf + 8, "WAVE", 4) != 0)
        goto done;
    for (size_t off = 12; off + 8 <= n;) {
        uint32_t len = rd_u32(buf + off + 4);
        const uint8_t *body = buf + off + 8;
        if (len > n - off - 8)
            break;
        if (memcmp(buf + off, "fmt ", 4) == 0 && len >= 16)
            fmt_ok = rd_u16(body) == 1 && rd_u16(body + 2) == 1 && rd_u32(body + 4) == 16000 &&
                     rd_u16(body + 14) == 16;
        if (memcmp(buf + off, "data", 4) == 0 && fmt_ok) {
            size_t ns = len / 2;
            pcm = malloc(sizeof(float) * (ns ? ns : 1));
            for (size_t i = 0; pcm && i < ns; i++)
                pcm[i] = (float)(int16_t)rd_u16(body + 2 * i) / 32768.0f;
            *n_samples = ns;
            break;
        }
        off += 8 + len + (len & 1);
    }
done:
    free(buf);
    return pcm;
}

static void mel_conf_clip(const char *clip, int n_len, int n_len_org)
{
    char path[1024];
    const char *dir = check_shared_dir();
    struct sd_error err = {0};

    const float *filters = NULL;
    struct whisper_model *model = mel_test_model(&filters);
    if (!model)
        return;

    snprintf(path, sizeof(path), "%s/reference/%s.wav", dir, clip);
    size_t n_samples = 0;
    float *pcm = mel_test_read_wav(path, &n_samples);
    CHECK_MSG(pcm != NULL, "cannot read %s", path);

    snprintf(path, sizeof(path), "%s/reference/%s.mel.f32", dir, clip);
    size_t n_ref = 0;
    float *ref = check_read_file(path, &n_ref);
    CHECK_EQ_INT(n_ref, sizeof(float) * 80 * 3000);
    if (!pcm || !ref || n_ref != sizeof(float) * 80 * 3000)
        goto out;

    struct mel_spec m = {0};
    CHECK_OK(mel_compute(pcm, n_samples, filters, 80, 2, &m, &err), &err);
    CHECK_EQ_INT(m.n_frames, n_len);
    CHECK_EQ_INT(m.n_frames_audio, n_len_org);
    float *win = malloc(sizeof(float) * 80 * 3000);
    mel_window(&m, 0, win);
    double max_diff = 0.0;
    for (size_t i = 0; i < 80 * 3000; i++) {
        double d = fabs((double)win[i] - (double)ref[i]);
        if (d > max_diff)
            max_diff = d;
    }
    printf("# mel %-10s n_samples %zu n_frames %d n_frames_audio %d max|diff| %.3g\n", clip,
           n_samples, m.n_frames, m.n_frames_audio, max_diff);
    CHECK(max_diff <= 5e-4);
    free(win);
    mel_spec_free(&m);
out:
    free(pcm);
    free(ref);
    whisper_model_free(model);
}

TEST(mel_conf_a_short) { mel_conf_clip("a_short", 3197, 197); }
TEST(mel_conf_b_sentence) { mel_conf_clip("b_sentence", 3958, 958); }
TEST(mel_conf_c_passage) { mel_conf_clip("c_passage", 8221, 5221); }
TEST(mel_conf_d_silence) { mel_conf_clip("d_silence", 3500, 499); }
TEST(mel_conf_e_noise) { mel_conf_clip("e_noise", 3500, 499); }

/* Thread count must not change a single value. */
TEST(mel_conf_threads_identical)
{
    char path[1024];
    struct sd_error err = {0};
    const float *filters = NULL;
    struct whisper_model *model = mel_test_model(&filters);
    if (!model)
        return;
    snprintf(path, sizeof(path), "%s/reference/b_sentence.wav", check_shared_dir());
    size_t n = 0;
    float *pcm = mel_test_read_wav(path, &n);
    CHECK(pcm != NULL);
    struct mel_spec a = {0}, b = {0};
    CHECK_OK(mel_compute(pcm, n, filters, 80, 1, &a, &err), &err);
    CHECK_OK(mel_compute(pcm, n, filters, 80, 7, &b, &err), &err);
    CHECK_EQ_INT(a.n_frames, b.n_frames);
    CHECK(memcmp(a.data, b.data, sizeof(float) * 80 * (size_t)a.n_frames) == 0);
    mel_spec_free(&a);
    mel_spec_free(&b);
    free(pcm);
    whisper_model_free(model);
}

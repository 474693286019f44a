/*
 * test_mel_lazy.c - mel_prepare + mel_window (windows computed on demand for
 * long audio) give exactly the values of the whole-clip mel_compute.
 */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "refdata.h"
#include "whisper/mel.h"
#include "whisper/model.h"

TEST(mel_lazy_windows_equal_whole_clip)
{
    static const char *const clips[] = {"a_short", "c_passage", "d_silence"};
    char path[512], rel[64];
    struct sd_error err = {0};
    struct whisper_model *m = NULL;
    CHECK_OK(whisper_model_load(ref_path(path, sizeof(path), "micro-en.f16.bin"), &m, &err), &err);
    if (!m)
        return;
    int n_mels = 0, n_bins = 0;
    const float *filters = whisper_model_mel_filters(m, &n_mels, &n_bins);
    float *a = malloc((size_t)n_mels * 3000 * sizeof(float));
    float *b = malloc((size_t)n_mels * 3000 * sizeof(float));
    for (int c = 0; c < 3; c++) {
        snprintf(rel, sizeof(rel), "%s.wav", clips[c]);
        size_t n = 0;
        float *pcm = ref_read_wav(ref_path(path, sizeof(path), rel), &n);
        struct mel_spec whole = {0}, lazy = {0};
        CHECK_OK(mel_compute(pcm, n, filters, n_mels, 2, &whole, &err), &err);
        CHECK_OK(mel_prepare(pcm, n, filters, n_mels, 3, &lazy, &err), &err);
        CHECK_EQ_INT(lazy.n_frames, whole.n_frames);
        CHECK_EQ_INT(lazy.n_frames_audio, whole.n_frames_audio);
        CHECK(lazy.data == NULL);
        const int offsets[] = {0, 1, 2999, 3000, 5221, -5, whole.n_frames - 100};
        for (size_t o = 0; o < sizeof(offsets) / sizeof(offsets[0]); o++) {
            mel_window(&whole, offsets[o], a);
            mel_window(&lazy, offsets[o], b);
            CHECK_MSG(memcmp(a, b, (size_t)n_mels * 3000 * sizeof(float)) == 0,
                      "%s offset %d differs", clips[c], offsets[o]);
        }
        mel_spec_free(&whole);
        mel_spec_free(&lazy);
        free(pcm);
    }
    free(a);
    free(b);
    whisper_model_free(m);
}

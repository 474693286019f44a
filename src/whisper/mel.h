/*
 * mel.h - Whisper's log-mel spectrogram, exactly as whisper.cpp computes it:
 * reflect-pad 200 samples at the start, 30 s + 200 zeros at the end, STFT
 * (n_fft 400, hop 160, periodic Hann), power spectrum times the model's mel
 * filters, log10(max(x, 1e-10)), clamp to (global max - 8), (x + 4) / 4.
 */
#ifndef SD_WHISPER_MEL_H
#define SD_WHISPER_MEL_H

#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

#define MEL_SAMPLE_RATE 16000
#define MEL_N_FFT 400
#define MEL_HOP 160
#define MEL_FRAMES_PER_WINDOW 3000

struct mel_spec {
    int n_mels;
    int n_frames;       /* n_len: (n_samples + 480000) / 160 */
    int n_frames_audio; /* n_len_org = 1 + (n_samples + 200 - 400) / 160: where audio ends */
    float pad_value;    /* what an all-zero (padding) frame normalises to */
    float *data;        /* [n_mels][n_frames] row-major, owned; NULL for a lazy spec */
    struct mel_lazy *lazy; /* mel_prepare: what mel_window needs to compute frames on demand */
};

/*
 * Computes the whole clip's log-mel. filters: [n_mels][201]. n_threads >= 1
 * (frames are split between that many pthreads; values do not depend on it).
 * Inputs shorter than 201 samples reflect what there is and pad the rest of
 * the 200-sample head with zeros. n_samples may be 0 (an all-padding spec).
 * Fails with SD_EINVAL on bad arguments, SD_ETOOBIG past ~37 h of audio.
 * On SD_OK the caller owns out->data: mel_spec_free(). Thread-safe.
 */
enum sd_err mel_compute(const float *pcm, size_t n_samples, const float *filters, int n_mels,
                        int n_threads, struct mel_spec *out, struct sd_error *err);
void mel_spec_free(struct mel_spec *m);

/*
 * Like mel_compute, but keeps only the clip's global maximum (one pass over
 * all frames) and computes each window's frames when mel_window asks, so a
 * long recording costs no whole-file spectrogram. The values are bit-identical
 * to mel_compute's. pcm and filters are borrowed and must outlive the spec.
 * On SD_OK the caller owns the spec: mel_spec_free().
 */
enum sd_err mel_prepare(const float *pcm, size_t n_samples, const float *filters, int n_mels,
                        int n_threads, struct mel_spec *out, struct sd_error *err);

/*
 * The same in bounded memory, for audio that arrives in order and is never
 * held whole: the global maximum is gathered by a mel_max from the samples
 * as they come (any chunk sizes: the result does not depend on them), and
 * mel_prepare_view makes a lazy spec of the clip's length whose windows are
 * read from whatever part of the clip the caller holds (mel_set_view), which
 * must cover mel_window_samples. Values are bit-identical to mel_compute's.
 */
struct mel_max;
/* filters borrowed (outlive the mel_max). Caller owns *out: mel_max_free(). */
enum sd_err mel_max_begin(const float *filters, int n_mels, int n_threads, struct mel_max **out,
                          struct sd_error *err);
/* The next samples of the clip (copied as needed; ~30 s are kept at most). */
enum sd_err mel_max_push(struct mel_max *m, const float *pcm, size_t n, struct sd_error *err);
/* After the last push: the clip's maximum log10 power (what mel_prepare_view takes). */
double mel_max_finish(struct mel_max *m);
void mel_max_free(struct mel_max *m);
/* A lazy spec of a clip of n_samples whose maximum is max_log; no samples yet (mel_set_view). */
enum sd_err mel_prepare_view(size_t n_samples, double max_log, const float *filters, int n_mels,
                             int n_threads, struct mel_spec *out, struct sd_error *err);
/* Windows of a lazy spec read pcm[i] as sample first + i (borrowed until the next call). */
void mel_set_view(struct mel_spec *m, const float *pcm, int64_t first);
/* The samples [*from, *to) of the clip that mel_window(m, offset, ...) reads. */
void mel_window_samples(const struct mel_spec *m, int offset, int64_t *from, int64_t *to);

/*
 * Copies frames [offset, offset + MEL_FRAMES_PER_WINDOW) into window
 * [n_mels][3000]; frames past the end (or before 0) read as m->pad_value.
 */
void mel_window(const struct mel_spec *m, int offset, float *window);

#endif

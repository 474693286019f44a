/*
 * mel.c - Whisper's log-mel spectrogram (see mel.h for the procedure).
 *
 * Frames are read straight from the caller's PCM through an index map (200
 * reflected samples, the audio, then zeros), so no padded copy of the signal
 * is made; each frame gets a periodic Hann window and a double-precision DFT
 * (fft.c), its power spectrum is multiplied by the model's filters over each
 * filter's nonzero bins only (skipping exact zeros does not change the sum).
 * Worker threads own disjoint frame ranges. Normalisation (global max - 8,
 * then (x + 4) / 4) runs after all frames are known. No resampling here.
 */
#include "whisper/mel.h"

#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "whisper/fft.h"

#define MEL_N_BINS (MEL_N_FFT / 2 + 1)
#define MEL_PAD_HEAD (MEL_N_FFT / 2)          /* reflected samples before the audio */
#define MEL_PAD_TAIL_SAMPLES (30 * MEL_SAMPLE_RATE)
#define MEL_MAX_THREADS 64
#define MEL_MAX_SAMPLES ((int64_t)24 * 3600 * MEL_SAMPLE_RATE)
#define MEL_LOG_FLOOR (-10.0)                 /* log10(1e-10): an all-zero frame */

/* Nonzero range of one filter row. */
struct mel_band {
    int first, last; /* first > last: all zero */
};

struct mel_job {
    const float *pcm;
    int64_t n_samples;
    const float *filters;
    int n_mels;
    const struct mel_band *bands;
    const double *hann;
    const struct fft_plan *plan;
    int frame_begin, frame_end; /* this job's frames */
    int n_frames;               /* row stride of data */
    int frame_base;             /* frame f is written at column f - frame_base */
    int n_frames_computed;      /* frames at or past this are pure padding: -10 */
    float *data;                /* NULL: only find the maximum */
    double max_log;             /* out: max over this job's frames */
};

/* Sample p of the conceptually padded signal: reflection, audio, zeros. */
static double mel_padded_sample(const float *pcm, int64_t n_samples, int64_t p)
{
    if (p < MEL_PAD_HEAD) {
        int64_t j = MEL_PAD_HEAD - p; /* padded[0..199] = pcm[200..1] */
        return j < n_samples ? (double)pcm[j] : 0.0;
    }
    p -= MEL_PAD_HEAD;
    return p < n_samples ? (double)pcm[p] : 0.0;
}

static void mel_load_frame(const struct mel_job *j, int frame, double *x)
{
    int64_t start = (int64_t)frame * MEL_HOP;
    if (start >= MEL_PAD_HEAD && start - MEL_PAD_HEAD + MEL_N_FFT <= j->n_samples) {
        const float *src = j->pcm + (start - MEL_PAD_HEAD);
        for (int k = 0; k < MEL_N_FFT; k++)
            x[k] = (double)src[k] * j->hann[k];
        return;
    }
    for (int k = 0; k < MEL_N_FFT; k++)
        x[k] = mel_padded_sample(j->pcm, j->n_samples, start + k) * j->hann[k];
}

static void *mel_worker(void *arg)
{
    struct mel_job *j = arg;
    double x[MEL_N_FFT], re[MEL_N_BINS], im[MEL_N_BINS], power[MEL_N_BINS];
    double work[4 * MEL_N_FFT];
    double max_log = MEL_LOG_FLOOR;

    for (int f = j->frame_begin; f < j->frame_end; f++) {
        const int col = f - j->frame_base;
        if (f >= j->n_frames_computed) {
            for (int m = 0; j->data && m < j->n_mels; m++)
                j->data[(size_t)m * j->n_frames + col] = (float)MEL_LOG_FLOOR;
            continue;
        }
        mel_load_frame(j, f, x);
        fft_real_forward(j->plan, x, re, im, work);
        for (int k = 0; k < MEL_N_BINS; k++)
            power[k] = re[k] * re[k] + im[k] * im[k];
        for (int m = 0; m < j->n_mels; m++) {
            const float *row = j->filters + (size_t)m * MEL_N_BINS;
            double sum = 0.0;
            for (int k = j->bands[m].first; k <= j->bands[m].last; k++)
                sum += power[k] * (double)row[k];
            double v = log10(sum > 1e-10 ? sum : 1e-10);
            if (v > max_log)
                max_log = v;
            if (j->data)
                j->data[(size_t)m * j->n_frames + col] = (float)v;
        }
    }
    j->max_log = max_log;
    return NULL;
}

static void mel_find_bands(const float *filters, int n_mels, struct mel_band *bands)
{
    for (int m = 0; m < n_mels; m++) {
        const float *row = filters + (size_t)m * MEL_N_BINS;
        int first = 0, last = MEL_N_BINS - 1;
        while (first < MEL_N_BINS && row[first] == 0.0f)
            first++;
        while (last >= first && row[last] == 0.0f)
            last--;
        bands[m].first = first;
        bands[m].last = last;
    }
}

/* Runs the jobs: job 0 on the calling thread, the rest on pthreads (inline if one cannot start). */
static void mel_run_jobs(struct mel_job *jobs, int n_jobs)
{
    pthread_t tids[MEL_MAX_THREADS];
    int started[MEL_MAX_THREADS] = {0};
    for (int t = 1; t < n_jobs; t++)
        started[t] = pthread_create(&tids[t], NULL, mel_worker, &jobs[t]) == 0;
    mel_worker(&jobs[0]);
    for (int t = 1; t < n_jobs; t++) {
        if (started[t])
            pthread_join(tids[t], NULL);
        else
            mel_worker(&jobs[t]);
    }
}

static enum sd_err mel_check_args(const float *pcm, size_t n_samples, const float *filters,
                                  int n_mels, struct mel_spec *out, struct sd_error *err)
{
    if (!out || !filters || (n_samples > 0 && !pcm))
        return sd_fail(err, SD_EINVAL, "mel_compute: missing pcm, filters or output");
    if (n_mels < 1 || n_mels > 512)
        return sd_fail(err, SD_EINVAL, "mel_compute: n_mels %d out of range", n_mels);
    if (n_samples > (size_t)MEL_MAX_SAMPLES)
        return sd_fail(err, SD_ETOOBIG, "audio of %zu samples is longer than 24 h", n_samples);
    return SD_OK;
}

enum sd_err mel_compute(const float *pcm, size_t n_samples, const float *filters, int n_mels,
                        int n_threads, struct mel_spec *out, struct sd_error *err)
{
    enum sd_err rc = mel_check_args(pcm, n_samples, filters, n_mels, out, err);
    if (rc != SD_OK)
        return rc;
    const int64_t ns = (int64_t)n_samples;
    const int n_frames = (int)((ns + MEL_PAD_TAIL_SAMPLES) / MEL_HOP);
    int64_t n_audio = 1 + (ns + MEL_PAD_HEAD - MEL_N_FFT) / MEL_HOP; /* C division, as whisper.cpp */
    if (n_audio < 0)
        n_audio = 0;
    const int n_computed = (int)((ns + MEL_PAD_HEAD) / MEL_HOP + 1);

    struct fft_plan *plan = NULL;
    struct mel_band *bands = NULL;
    float *data = NULL;
    double hann[MEL_N_FFT];
    struct mel_job jobs[MEL_MAX_THREADS];

    rc = fft_plan_create(MEL_N_FFT, &plan, err);
    if (rc != SD_OK)
        goto fail;
    bands = malloc(sizeof(*bands) * (size_t)n_mels);
    data = malloc(sizeof(float) * (size_t)n_mels * (size_t)n_frames);
    if (!bands || !data) {
        rc = sd_fail(err, SD_ENOMEM, "out of memory for a log-mel of %d frames", n_frames);
        goto fail;
    }
    mel_find_bands(filters, n_mels, bands);
    for (int k = 0; k < MEL_N_FFT; k++)
        hann[k] = 0.5 * (1.0 - cos(2.0 * M_PI * (double)k / MEL_N_FFT));

    if (n_threads < 1)
        n_threads = 1;
    if (n_threads > MEL_MAX_THREADS)
        n_threads = MEL_MAX_THREADS;
    if (n_threads > n_computed)
        n_threads = n_computed;
    /* Split the computed frames evenly; the cheap padding frames go to the last job. */
    for (int t = 0; t < n_threads; t++) {
        jobs[t] = (struct mel_job){
            .pcm = pcm, .n_samples = ns, .filters = filters, .n_mels = n_mels, .bands = bands,
            .hann = hann, .plan = plan, .n_frames = n_frames, .n_frames_computed = n_computed,
            .data = data,
            .frame_begin = (int)((int64_t)n_computed * t / n_threads),
            .frame_end = t == n_threads - 1 ? n_frames
                                            : (int)((int64_t)n_computed * (t + 1) / n_threads),
        };
    }
    mel_run_jobs(jobs, n_threads);

    double max_log = MEL_LOG_FLOOR;
    for (int t = 0; t < n_threads; t++)
        if (jobs[t].max_log > max_log)
            max_log = jobs[t].max_log;
    const float lo = (float)(max_log - 8.0);
    const size_t n_values = (size_t)n_mels * (size_t)n_frames;
    for (size_t i = 0; i < n_values; i++) {
        float v = data[i] < lo ? lo : data[i];
        data[i] = (v + 4.0f) / 4.0f;
    }
    const float floor_v = (float)MEL_LOG_FLOOR < lo ? lo : (float)MEL_LOG_FLOOR;

    *out = (struct mel_spec){
        .n_mels = n_mels, .n_frames = n_frames, .n_frames_audio = (int)n_audio,
        .pad_value = (floor_v + 4.0f) / 4.0f, .data = data,
    };
    data = NULL;
    rc = SD_OK;
fail:
    free(data);
    free(bands);
    fft_plan_free(plan);
    return rc;
}

/* What a lazy spec keeps to compute windows later (mel_prepare). */
struct mel_lazy {
    const float *pcm;       /* borrowed */
    int64_t n_samples;
    const float *filters;   /* borrowed */
    struct mel_band *bands;
    struct fft_plan *plan;
    double hann[MEL_N_FFT];
    int n_threads;
    int n_computed;
    float lo;               /* global max - 8 */
};

static void mel_lazy_free(struct mel_lazy *z)
{
    if (!z)
        return;
    free(z->bands);
    fft_plan_free(z->plan);
    free(z);
}

/* Splits frames [begin, end) of one computation between z->n_threads jobs. */
static void mel_lazy_run(const struct mel_lazy *z, int n_mels, int begin, int end, float *data,
                         int stride, double *max_log)
{
    struct mel_job jobs[MEL_MAX_THREADS];
    int n_threads = z->n_threads;
    if (n_threads > end - begin)
        n_threads = end - begin > 0 ? end - begin : 1;
    for (int t = 0; t < n_threads; t++)
        jobs[t] = (struct mel_job){
            .pcm = z->pcm, .n_samples = z->n_samples, .filters = z->filters, .n_mels = n_mels,
            .bands = z->bands, .hann = z->hann, .plan = z->plan, .n_frames = stride,
            .frame_base = data ? begin : 0, .n_frames_computed = z->n_computed, .data = data,
            .frame_begin = begin + (int)((int64_t)(end - begin) * t / n_threads),
            .frame_end = begin + (int)((int64_t)(end - begin) * (t + 1) / n_threads),
        };
    mel_run_jobs(jobs, n_threads);
    double m = MEL_LOG_FLOOR;
    for (int t = 0; t < n_threads; t++)
        if (jobs[t].max_log > m)
            m = jobs[t].max_log;
    *max_log = m;
}

enum sd_err mel_prepare(const float *pcm, size_t n_samples, const float *filters, int n_mels,
                        int n_threads, struct mel_spec *out, struct sd_error *err)
{
    enum sd_err rc = mel_check_args(pcm, n_samples, filters, n_mels, out, err);
    if (rc != SD_OK)
        return rc;
    const int64_t ns = (int64_t)n_samples;
    struct mel_lazy *z = calloc(1, sizeof(*z));
    if (!z)
        return sd_fail(err, SD_ENOMEM, "log-mel state");
    z->pcm = pcm;
    z->n_samples = ns;
    z->filters = filters;
    z->n_threads = n_threads < 1 ? 1 : n_threads > MEL_MAX_THREADS ? MEL_MAX_THREADS : n_threads;
    z->n_computed = (int)((ns + MEL_PAD_HEAD) / MEL_HOP + 1);
    z->bands = malloc(sizeof(*z->bands) * (size_t)n_mels);
    rc = fft_plan_create(MEL_N_FFT, &z->plan, err);
    if (rc == SD_OK && !z->bands)
        rc = sd_fail(err, SD_ENOMEM, "log-mel bands");
    if (rc != SD_OK) {
        mel_lazy_free(z);
        return rc;
    }
    mel_find_bands(filters, n_mels, z->bands);
    for (int k = 0; k < MEL_N_FFT; k++)
        z->hann[k] = 0.5 * (1.0 - cos(2.0 * M_PI * (double)k / MEL_N_FFT));
    /* Pass 1: the global maximum (padding frames are -10 and cannot raise it). */
    double max_log = MEL_LOG_FLOOR;
    mel_lazy_run(z, n_mels, 0, z->n_computed, NULL, 0, &max_log);
    z->lo = (float)(max_log - 8.0);
    int64_t n_audio = 1 + (ns + MEL_PAD_HEAD - MEL_N_FFT) / MEL_HOP;
    const float floor_v = (float)MEL_LOG_FLOOR < z->lo ? z->lo : (float)MEL_LOG_FLOOR;
    *out = (struct mel_spec){
        .n_mels = n_mels, .n_frames = (int)((ns + MEL_PAD_TAIL_SAMPLES) / MEL_HOP),
        .n_frames_audio = n_audio < 0 ? 0 : (int)n_audio, .pad_value = (floor_v + 4.0f) / 4.0f,
        .data = NULL, .lazy = z,
    };
    return SD_OK;
}

/* Computes one window of a lazy spec, normalised exactly as mel_compute does. */
static void mel_lazy_window(const struct mel_spec *m, int offset, float *window)
{
    const struct mel_lazy *z = m->lazy;
    const int w = MEL_FRAMES_PER_WINDOW;
    int begin = offset < 0 ? 0 : offset;
    int end = offset + w < m->n_frames ? offset + w : m->n_frames;
    for (size_t i = 0; i < (size_t)m->n_mels * w; i++)
        window[i] = m->pad_value;
    if (begin >= end)
        return;
    double unused;
    mel_lazy_run(z, m->n_mels, begin, end, window + (begin - offset), w, &unused);
    for (int r = 0; r < m->n_mels; r++) {
        float *row = window + (size_t)r * w;
        for (int i = begin - offset; i < end - offset; i++) {
            float v = row[i] < z->lo ? z->lo : row[i];
            row[i] = (v + 4.0f) / 4.0f;
        }
    }
}

void mel_spec_free(struct mel_spec *m)
{
    if (!m)
        return;
    free(m->data);
    mel_lazy_free(m->lazy);
    m->data = NULL;
    m->lazy = NULL;
    m->n_frames = 0;
}

void mel_window(const struct mel_spec *m, int offset, float *window)
{
    if (m->lazy) {
        mel_lazy_window(m, offset, window);
        return;
    }
    const int w = MEL_FRAMES_PER_WINDOW;
    for (int r = 0; r < m->n_mels; r++) {
        float *dst = window + (size_t)r * w;
        const float *src = m->data + (size_t)r * m->n_frames;
        for (int i = 0; i < w; i++) {
            int64_t f = (int64_t)offset + i;
            dst[i] = (f >= 0 && f < m->n_frames) ? src[f] : m->pad_value;
        }
    }
}

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

#include <limits.h>
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
    const float *pcm;           /* pcm[i] is sample first + i (a view of the clip) */
    int64_t first;
    int64_t n_samples;          /* the clip's length: samples at or past it read as zero */
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
static double mel_padded_sample(const struct mel_job *j, int64_t p)
{
    int64_t s = p < MEL_PAD_HEAD ? MEL_PAD_HEAD - p /* padded[0..199] = pcm[200..1] */
                                 : p - MEL_PAD_HEAD;
    return s < j->n_samples ? (double)j->pcm[s - j->first] : 0.0;
}

static void mel_load_frame(const struct mel_job *j, int frame, double *x)
{
    int64_t start = (int64_t)frame * MEL_HOP;
    if (start >= MEL_PAD_HEAD && start - MEL_PAD_HEAD + MEL_N_FFT <= j->n_samples) {
        const float *src = j->pcm + (start - MEL_PAD_HEAD - j->first);
        for (int k = 0; k < MEL_N_FFT; k++)
            x[k] = (double)src[k] * j->hann[k];
        return;
    }
    for (int k = 0; k < MEL_N_FFT; k++)
        x[k] = mel_padded_sample(j, start + k) * j->hann[k];
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

/* What computing frames on demand needs: the filters' bands, the FFT plan, the window. */
struct mel_core {
    const float *filters;   /* borrowed */
    int n_mels;
    struct mel_band *bands;
    struct fft_plan *plan;
    double hann[MEL_N_FFT];
    int n_threads;
};

static void mel_core_free(struct mel_core *c)
{
    free(c->bands);
    fft_plan_free(c->plan);
    memset(c, 0, sizeof(*c));
}

static enum sd_err mel_core_init(struct mel_core *c, const float *filters, int n_mels,
                                 int n_threads, struct sd_error *err)
{
    memset(c, 0, sizeof(*c));
    if (!filters || n_mels < 1 || n_mels > 512)
        return sd_fail(err, SD_EINVAL, "log-mel: missing filters or n_mels %d out of range",
                       n_mels);
    c->filters = filters;
    c->n_mels = n_mels;
    c->n_threads = n_threads < 1 ? 1 : n_threads > MEL_MAX_THREADS ? MEL_MAX_THREADS : n_threads;
    c->bands = malloc(sizeof(*c->bands) * (size_t)n_mels);
    enum sd_err rc = fft_plan_create(MEL_N_FFT, &c->plan, err);
    if (rc == SD_OK && !c->bands)
        rc = sd_fail(err, SD_ENOMEM, "log-mel bands");
    if (rc != SD_OK) {
        mel_core_free(c);
        return rc;
    }
    mel_find_bands(filters, n_mels, c->bands);
    for (int k = 0; k < MEL_N_FFT; k++)
        c->hann[k] = 0.5 * (1.0 - cos(2.0 * M_PI * (double)k / MEL_N_FFT));
    return SD_OK;
}

/* The samples frames are read from: pcm[i] is sample first + i of a clip of n_samples. */
struct mel_view {
    const float *pcm;       /* borrowed */
    int64_t first;
    int64_t n_samples;
};

/*
 * Computes frames [begin, end) from view v, split between c->n_threads jobs;
 * log10 values into data (row stride `stride`, column f - begin), or only
 * their maximum when data is NULL.
 */
static void mel_core_run(const struct mel_core *c, const struct mel_view *v, int n_computed,
                         int begin, int end, float *data, int stride, double *max_log)
{
    struct mel_job jobs[MEL_MAX_THREADS];
    int n_threads = c->n_threads;
    /* a thread is worth starting for a few hundred frames, not for a handful */
    if (n_threads > (end - begin) / 256)
        n_threads = (end - begin) / 256 > 0 ? (end - begin) / 256 : 1;
    for (int t = 0; t < n_threads; t++)
        jobs[t] = (struct mel_job){
            .pcm = v->pcm, .first = v->first, .n_samples = v->n_samples, .filters = c->filters,
            .n_mels = c->n_mels, .bands = c->bands, .hann = c->hann, .plan = c->plan,
            .n_frames = stride, .frame_base = data ? begin : 0, .n_frames_computed = n_computed,
            .data = data,
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

/*
 * Frames that hold audio (the rest of the n_frames are all padding: -10).
 * Saturates at INT_MAX: mel_max_push passes INT64_MAX while the length is not
 * known yet (no frame is padding), which overflowed here (UBSan).
 */
static int mel_frames_computed(int64_t n_samples)
{
    if (n_samples >= ((int64_t)INT_MAX - 1) * MEL_HOP - MEL_PAD_HEAD)
        return INT_MAX;
    return (int)((n_samples + MEL_PAD_HEAD) / MEL_HOP + 1);
}

/* What a lazy spec keeps to compute windows later (mel_prepare, mel_prepare_view). */
struct mel_lazy {
    struct mel_core core;
    struct mel_view view;
    int n_computed;
    float lo;               /* global max - 8 */
};

static void mel_lazy_free(struct mel_lazy *z)
{
    if (!z)
        return;
    mel_core_free(&z->core);
    free(z);
}

/* A frame's first sample (head reflection included) and one past its last. */
static void mel_frame_samples(int frame, int64_t *from, int64_t *to)
{
    int64_t start = (int64_t)frame * MEL_HOP - MEL_PAD_HEAD;
    *from = start < 0 ? 0 : start;
    /* frames 0 and 1 reflect samples up to 200 */
    *to = start + MEL_N_FFT > MEL_PAD_HEAD + 1 ? start + MEL_N_FFT : MEL_PAD_HEAD + 1;
}

/* ---- the global maximum, from samples in order ---- */

/* Frames computed per batch: a window's worth keeps the buffer at ~30 s. */
#define MEL_MAX_BATCH MEL_FRAMES_PER_WINDOW

struct mel_max {
    struct mel_core core;
    float *buf;             /* samples [first, first + len) */
    int64_t first;
    size_t len, cap;
    int next_frame;         /* frames below it are in max_log */
    double max_log;
};

enum sd_err mel_max_begin(const float *filters, int n_mels, int n_threads, struct mel_max **out,
                          struct sd_error *err)
{
    struct mel_max *m = calloc(1, sizeof(*m));
    if (!m)
        return sd_fail(err, SD_ENOMEM, "log-mel maximum");
    enum sd_err rc = mel_core_init(&m->core, filters, n_mels, n_threads, err);
    if (rc != SD_OK) {
        free(m);
        return rc;
    }
    m->max_log = MEL_LOG_FLOOR;
    *out = m;
    return SD_OK;
}

/* Computes frames [next_frame, end) with a clip length of n_samples, then drops what they used. */
static void mel_max_frames(struct mel_max *m, int end, int64_t n_samples)
{
    if (end > m->next_frame) {
        struct mel_view v = {m->buf, m->first, n_samples};
        double batch_max;
        mel_core_run(&m->core, &v, mel_frames_computed(n_samples), m->next_frame, end, NULL, 0,
                     &batch_max);
        if (batch_max > m->max_log)
            m->max_log = batch_max;
        m->next_frame = end;
    }
    int64_t keep, unused;
    mel_frame_samples(m->next_frame, &keep, &unused);
    if (keep > m->first) {
        size_t drop = (size_t)(keep - m->first) < m->len ? (size_t)(keep - m->first) : m->len;
        if (m->len > drop) /* buf is NULL while nothing was pushed: no memmove on it */
            memmove(m->buf, m->buf + drop, (m->len - drop) * sizeof(float));
        m->len -= drop;
        m->first += (int64_t)drop;
    }
}

enum sd_err mel_max_push(struct mel_max *m, const float *pcm, size_t n, struct sd_error *err)
{
    const size_t piece_max = (size_t)MEL_MAX_BATCH * MEL_HOP;
    while (n > 0) {
        size_t piece = n < piece_max ? n : piece_max;
        if (m->len + piece > m->cap) {
            size_t cap = m->len + piece_max + MEL_N_FFT + MEL_HOP;
            float *grown = realloc(m->buf, cap * sizeof(float));
            if (!grown)
                return sd_fail(err, SD_ENOMEM, "log-mel buffer");
            m->buf = grown;
            m->cap = cap;
        }
        memcpy(m->buf + m->len, pcm, piece * sizeof(float));
        m->len += piece;
        pcm += piece;
        n -= piece;
        /* frames whose samples (reflection of the first 200 included) have all arrived */
        int64_t have = m->first + (int64_t)m->len;
        int ready = have > MEL_PAD_HEAD ? (int)((have - MEL_PAD_HEAD - 1) / MEL_HOP) : 0;
        if (ready - m->next_frame >= MEL_MAX_BATCH)
            mel_max_frames(m, ready, INT64_MAX);
    }
    return SD_OK;
}

double mel_max_finish(struct mel_max *m)
{
    int64_t n_samples = m->first + (int64_t)m->len;
    mel_max_frames(m, mel_frames_computed(n_samples), n_samples);
    return m->max_log;
}

void mel_max_free(struct mel_max *m)
{
    if (!m)
        return;
    mel_core_free(&m->core);
    free(m->buf);
    free(m);
}

enum sd_err mel_prepare_view(size_t n_samples, double max_log, const float *filters, int n_mels,
                             int n_threads, struct mel_spec *out, struct sd_error *err)
{
    if (!out)
        return sd_fail(err, SD_EINVAL, "mel_prepare_view: no output");
    if (n_samples > (size_t)MEL_MAX_SAMPLES)
        return sd_fail(err, SD_ETOOBIG, "audio of %zu samples is longer than 24 h", n_samples);
    struct mel_lazy *z = calloc(1, sizeof(*z));
    if (!z)
        return sd_fail(err, SD_ENOMEM, "log-mel state");
    enum sd_err rc = mel_core_init(&z->core, filters, n_mels, n_threads, err);
    if (rc != SD_OK) {
        free(z);
        return rc;
    }
    const int64_t ns = (int64_t)n_samples;
    z->view.n_samples = ns;
    z->n_computed = mel_frames_computed(ns);
    z->lo = (float)(max_log - 8.0);
    int64_t n_audio = 1 + (ns + MEL_PAD_HEAD - MEL_N_FFT) / MEL_HOP; /* C division, as whisper.cpp */
    const float floor_v = (float)MEL_LOG_FLOOR < z->lo ? z->lo : (float)MEL_LOG_FLOOR;
    *out = (struct mel_spec){
        .n_mels = n_mels, .n_frames = (int)((ns + MEL_PAD_TAIL_SAMPLES) / MEL_HOP),
        .n_frames_audio = n_audio < 0 ? 0 : (int)n_audio, .pad_value = (floor_v + 4.0f) / 4.0f,
        .data = NULL, .lazy = z,
    };
    return SD_OK;
}

void mel_set_view(struct mel_spec *m, const float *pcm, int64_t first)
{
    m->lazy->view.pcm = pcm;
    m->lazy->view.first = first;
}

void mel_window_samples(const struct mel_spec *m, int offset, int64_t *from, int64_t *to)
{
    int64_t ns = m->lazy ? m->lazy->view.n_samples : 0, a, b, unused;
    int begin = offset < 0 ? 0 : offset;
    int end = offset + MEL_FRAMES_PER_WINDOW < m->n_frames ? offset + MEL_FRAMES_PER_WINDOW
                                                           : m->n_frames;
    mel_frame_samples(begin, &a, &unused);
    mel_frame_samples(end > begin ? end - 1 : begin, &unused, &b);
    *from = a < ns ? a : ns;
    *to = b < ns ? b : ns;
}

enum sd_err mel_prepare(const float *pcm, size_t n_samples, const float *filters, int n_mels,
                        int n_threads, struct mel_spec *out, struct sd_error *err)
{
    enum sd_err rc = mel_check_args(pcm, n_samples, filters, n_mels, out, err);
    struct mel_max *mx = NULL;
    if (rc == SD_OK)
        rc = mel_max_begin(filters, n_mels, n_threads, &mx, err);
    if (rc == SD_OK)
        rc = mel_max_push(mx, pcm, n_samples, err);
    if (rc == SD_OK)
        rc = mel_prepare_view(n_samples, mel_max_finish(mx), filters, n_mels, n_threads, out, err);
    if (rc == SD_OK)
        mel_set_view(out, pcm, 0);
    mel_max_free(mx);
    return rc;
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
    mel_core_run(&z->core, &z->view, z->n_computed, begin, end, window + (begin - offset), w,
                 &unused);
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

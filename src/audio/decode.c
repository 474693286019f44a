/*
 * decode.c - the public face of src/audio: options, allowed-list names,
 * opening the input, raw s16le PCM, and collecting chunks into one buffer.
 *
 * FFmpeg work happens in ffdec.c, normally inside the sandbox child of
 * sandbox.c; this file never parses media bytes except raw PCM, which needs
 * no parser. The input is opened here (so a missing file is SD_ENOTFOUND,
 * not a decoder failure) and handed to the child as an fd.
 */
#include "audio/audio_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEFAULT_MAX_DURATION_S (4 * 3600.0)
#define DEFAULT_MAX_MEMORY_MB 1024
#define DEFAULT_MAX_CPU_S 300
#define DEFAULT_TIMEOUT_MS 600000

struct audio_decode_opts audio_decode_opts_default(void)
{
    struct audio_decode_opts o = {
        .max_duration_s = DEFAULT_MAX_DURATION_S,
        .allowed = NULL,
        .sandbox = 1,
        .max_memory_mb = DEFAULT_MAX_MEMORY_MB,
        .max_cpu_s = DEFAULT_MAX_CPU_S,
        .timeout_ms = DEFAULT_TIMEOUT_MS,
    };
    return o;
}

struct audio_decode_opts audio_opts_resolve(const struct audio_decode_opts *opts)
{
    struct audio_decode_opts o = opts ? *opts : audio_decode_opts_default();
    if (!(o.max_duration_s > 0))
        o.max_duration_s = DEFAULT_MAX_DURATION_S;
    if (o.max_memory_mb <= 0)
        o.max_memory_mb = DEFAULT_MAX_MEMORY_MB;
    if (o.max_cpu_s <= 0)
        o.max_cpu_s = DEFAULT_MAX_CPU_S;
    if (o.timeout_ms <= 0)
        o.timeout_ms = DEFAULT_TIMEOUT_MS;
    return o;
}

/* Each group: our canonical name first, then the names that select it in an allowed list. */
static const char *const FORMAT_GROUPS[][5] = {
    {"wav", "wav", "wave", NULL},
    {"mp3", "mp3", "mpeg", "mpga", NULL},
    {"mp4", "m4a", "mp4", NULL},
    {"m4a", "m4a", "mp4", NULL},
    {"flac", "flac", NULL},
    {"ogg", "ogg", "oga", "opus", NULL},
    {"webm", "webm", NULL},
    {"mkv", "mkv", "matroska", NULL},
    {"aac", "aac", NULL},
    {"aiff", "aiff", "aif", NULL},
};
#define N_GROUPS (sizeof(FORMAT_GROUPS) / sizeof(FORMAT_GROUPS[0]))

/* Calls fn on each trimmed, non-empty entry of a comma list; stops when fn returns nonzero. */
static int list_each(const char *list, int (*fn)(const char *s, size_t n, const void *ctx),
                     const void *ctx)
{
    const char *p = list;
    while (p && *p) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        const char *s = p;
        while (n && (*s == ' ' || *s == '\t'))
            s++, n--;
        while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
            n--;
        int r = n ? fn(s, n, ctx) : 0;
        if (r)
            return r;
        p = end ? end + 1 : NULL;
    }
    return 0;
}

static int name_eq(const char *s, size_t n, const char *name)
{
    return strlen(name) == n && strncasecmp(s, name, n) == 0;
}

static int entry_selects(const char *s, size_t n, const void *ctx)
{
    const char *const *group = ctx;
    for (int i = 1; group[i]; i++)
        if (name_eq(s, n, group[i]))
            return 1;
    return 0;
}

static int entry_any(const char *s, size_t n, const void *ctx)
{
    (void)s, (void)ctx;
    return n > 0;
}

int audio_format_allowed(const char *format, const char *allowed)
{
    if (allowed && !list_each(allowed, entry_any, NULL))
        allowed = NULL; /* "" or ", ," lists nothing: no restriction, as if unset */
    for (size_t g = 0; g < N_GROUPS; g++)
        if (strcmp(FORMAT_GROUPS[g][0], format) == 0)
            return !allowed || list_each(allowed, entry_selects, FORMAT_GROUPS[g]);
    return 0;
}

static int entry_unknown(const char *s, size_t n, const void *ctx)
{
    (void)ctx;
    for (size_t g = 0; g < N_GROUPS; g++)
        if (entry_selects(s, n, FORMAT_GROUPS[g]))
            return 0;
    return 1;
}

static int entry_find_unknown(const char *s, size_t n, const void *ctx)
{
    if (!entry_unknown(s, n, NULL))
        return 0;
    const char **where = (const char **)ctx;
    *where = s;
    return (int)n;
}

enum sd_err audio_formats_check(const char *list, struct sd_error *err)
{
    const char *bad = NULL;
    int n = list_each(list, entry_find_unknown, (const void *)&bad);
    if (n)
        return sd_fail(err, SD_EINVAL, "unknown audio format \"%.*s\" (known: %s, also mpeg, "
                       "mpga, wave, oga, opus, matroska, aif)", n, bad, AUDIO_FORMATS_ALL);
    return SD_OK;
}

static enum sd_err open_input(const char *path, int *fd, struct sd_error *err)
{
    int f = open(path, O_RDONLY | O_CLOEXEC);
    if (f < 0) {
        int e = errno;
        return sd_fail(err, e == ENOENT || e == ENOTDIR ? SD_ENOTFOUND : SD_EIO,
                       "cannot open %s: %s", path, strerror(e));
    }
    struct stat sb;
    if (fstat(f, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(f);
        return sd_fail(err, SD_EIO, "%s is not a regular file", path);
    }
    *fd = f;
    return SD_OK;
}

/* Headerless s16le 16 kHz mono: nothing to parse, so no sandbox; limits checked up front. */
static enum sd_err decode_raw(int fd, const struct audio_decode_opts *o,
                              const struct audio_sink *sink, int probe_only, struct sd_error *err)
{
    struct stat sb;
    if (fstat(fd, &sb) != 0)
        return sd_fail(err, SD_EIO, "cannot stat the audio file: %s", strerror(errno));
    if (sb.st_size == 0)
        return sd_fail(err, SD_EFORMAT, "the audio file is empty");
    if (sb.st_size % 2)
        return sd_fail(err, SD_EFORMAT, "raw s16le audio has an odd number of bytes");
    double dur = (double)sb.st_size / 2 / AUDIO_SAMPLE_RATE;
    if (dur > o->max_duration_s)
        return sd_fail(err, SD_ETOOBIG, "audio lasts %.0f s, over the limit of %.0f s", dur,
                       o->max_duration_s);
    struct audio_info info = {.duration_s = dur, .format = "pcm", .codec = "pcm_s16le",
                              .sample_rate = AUDIO_SAMPLE_RATE, .channels = 1};
    enum sd_err e = sink->on_info(sink->user, &info, err);
    if (e != SD_OK || probe_only)
        return e;
    int16_t in[4096];
    float out[4096];
    for (;;) {
        ssize_t n = read(fd, in, sizeof(in));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return sd_fail(err, SD_EIO, "cannot read the audio file: %s", strerror(errno));
        if (n == 0)
            return SD_OK;
        if (n % 2) /* a short read split a sample: step back one byte */
            lseek(fd, -1, SEEK_CUR), n--;
        size_t k = (size_t)n / 2;
        for (size_t i = 0; i < k; i++)
            out[i] = (float)in[i] / 32768.0f;
        if ((e = sink->on_pcm(sink->user, out, k, err)) != SD_OK)
            return e;
    }
}

static enum sd_err decode_any(const char *path, const struct audio_decode_opts *opts,
                              const struct audio_sink *sink, int probe_only, struct sd_error *err)
{
    /* Unknown names in o.allowed match nothing; audio_formats_check is for config time. */
    struct audio_decode_opts o = audio_opts_resolve(opts);
    int fd = -1;
    enum sd_err e = open_input(path, &fd, err);
    if (e != SD_OK)
        return e;
    if (o.raw_pcm_s16le)
        e = decode_raw(fd, &o, sink, probe_only, err);
    else if (o.sandbox)
        e = audio_sandbox_decode(fd, &o, probe_only, sink, err);
    else
        e = audio_ff_decode_fd(fd, &o, probe_only, sink, err);
    close(fd);
    return e;
}

/* ---- streaming and whole-file front ends ---------------------------------------------- */

struct stream_ctx {
    audio_chunk_fn fn;
    void *user;
    struct audio_info info;
    uint64_t n_samples;
};

static enum sd_err stream_info(void *user, const struct audio_info *info, struct sd_error *err)
{
    (void)err;
    struct stream_ctx *s = user;
    s->info = *info;
    s->info.duration_s = 0;
    return SD_OK;
}

static enum sd_err stream_pcm(void *user, const float *pcm, size_t n, struct sd_error *err)
{
    struct stream_ctx *s = user;
    s->n_samples += n;
    s->info.duration_s = (double)s->n_samples / AUDIO_SAMPLE_RATE;
    return s->fn ? s->fn(s->user, &s->info, pcm, n, err) : SD_OK;
}

enum sd_err audio_decode_stream(const char *path, const struct audio_decode_opts *opts,
                                audio_chunk_fn on_chunk, void *user, struct audio_info *info,
                                struct sd_error *err)
{
    struct stream_ctx s = {.fn = on_chunk, .user = user};
    struct audio_sink sink = {stream_info, stream_pcm, &s};
    enum sd_err e = decode_any(path, opts, &sink, 0, err);
    if (e == SD_OK && info)
        *info = s.info;
    return e;
}

struct collect {
    float *pcm;
    size_t n, cap;
};

static enum sd_err collect_chunk(void *user, const struct audio_info *info, const float *pcm,
                                 size_t n, struct sd_error *err)
{
    (void)info;
    struct collect *c = user;
    if (c->n + n > c->cap) {
        /* Grow by half: glibc grows large blocks with mremap, so no copy and no 2x peak. */
        size_t cap = c->cap ? c->cap + c->cap / 2 : 16000 * 30;
        if (cap < c->n + n)
            cap = c->n + n;
        float *p = realloc(c->pcm, cap * sizeof(float));
        if (!p)
            return sd_fail(err, SD_ENOMEM, "out of memory for %zu samples of audio", cap);
        c->pcm = p;
        c->cap = cap;
    }
    memcpy(c->pcm + c->n, pcm, n * sizeof(float));
    c->n += n;
    return SD_OK;
}

enum sd_err audio_decode_file(const char *path, const struct audio_decode_opts *opts, float **pcm,
                              size_t *n_samples, struct audio_info *info, struct sd_error *err)
{
    struct collect c = {0};
    struct audio_info got;
    enum sd_err e = audio_decode_stream(path, opts, collect_chunk, &c, &got, err);
    if (e != SD_OK) {
        free(c.pcm);
        return e;
    }
    *pcm = c.pcm;
    *n_samples = c.n;
    if (info)
        *info = got;
    return SD_OK;
}

static enum sd_err probe_info(void *user, const struct audio_info *info, struct sd_error *err)
{
    (void)err;
    *(struct audio_info *)user = *info;
    return SD_OK;
}

static enum sd_err probe_pcm(void *user, const float *pcm, size_t n, struct sd_error *err)
{
    (void)user, (void)pcm, (void)n, (void)err;
    return SD_OK;
}

enum sd_err audio_probe_file(const char *path, const struct audio_decode_opts *opts,
                             struct audio_info *info, struct sd_error *err)
{
    struct audio_info got = {0};
    struct audio_sink sink = {probe_info, probe_pcm, &got};
    enum sd_err e = decode_any(path, opts, &sink, 1, err);
    if (e == SD_OK)
        *info = got;
    return e;
}

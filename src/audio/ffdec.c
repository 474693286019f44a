/*
 * ffdec.c - the FFmpeg side of audio decoding: probe an open fd by content,
 * check the container and codec against fixed whitelists and the caller's
 * allowed list, decode, downmix and resample to 16 kHz mono float.
 *
 * Runs in whatever process calls it (normally the sandbox child of
 * sandbox.c). It opens nothing itself: I/O goes through a custom AVIOContext
 * on the given fd and FFmpeg's io_open is refused, so references to other
 * files or URLs (HLS playlists, mov drefs) cannot be followed.
 */
#include "audio/audio_internal.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/channel_layout.h>
#include <libavutil/opt.h>
#include <libswresample/swresample.h>

/* Demuxers FFmpeg may pick (names as in avformat's format_whitelist option). */
static const char FF_FORMATS[] = "wav,mp3,mov,mp4,m4a,3gp,3g2,mj2,matroska,webm,ogg,flac,aac,aiff";
/* Decoders we let run on untrusted bytes: the common speech/music codecs only. */
static const char FF_CODECS[] = "pcm_s16le,pcm_s16be,pcm_s24le,pcm_s24be,pcm_s32le,pcm_s32be,"
                                "pcm_u8,pcm_s8,pcm_f32le,pcm_f32be,pcm_f64le,pcm_f64be,pcm_alaw,"
                                "pcm_mulaw,adpcm_ms,adpcm_ima_wav,mp3float,mp3,mp2float,mp2,aac,"
                                "aac_fixed,alac,flac,vorbis,opus,libopus";

#define FF_IO_BUF 65536
#define FF_MAX_CHANNELS 64
#define FF_MAX_RATE 768000

struct ffdec {
    int fd;
    int64_t size;
    AVIOContext *avio;
    AVFormatContext *fmt;
    AVCodecContext *dec;
    SwrContext *swr;
    AVPacket *pkt;
    AVFrame *frame;
    int stream;
    int swr_rate, swr_fmt;         /* input configuration of swr */
    AVChannelLayout swr_layout;
    float *out;
    int out_cap;
    uint64_t n_out, max_out;       /* samples delivered / allowed */
    long n_pkt, n_bad;             /* packets sent / rejected by the decoder */
    const struct audio_sink *sink;
};

static int ff_read(void *opaque, uint8_t *buf, int size)
{
    struct ffdec *d = opaque;
    for (;;) {
        ssize_t n = read(d->fd, buf, (size_t)size);
        if (n > 0)
            return (int)n;
        if (n == 0)
            return AVERROR_EOF;
        if (errno != EINTR)
            return AVERROR(errno);
    }
}

static int64_t ff_seek(void *opaque, int64_t offset, int whence)
{
    struct ffdec *d = opaque;
    whence &= ~AVSEEK_FORCE;
    if (whence == AVSEEK_SIZE)
        return d->size;
    off_t r = lseek(d->fd, (off_t)offset, whence);
    return r < 0 ? AVERROR(errno) : (int64_t)r;
}

/* Nothing may be opened beyond the one input: no playlists, references or URLs. */
static int ff_io_open_denied(struct AVFormatContext *s, AVIOContext **pb, const char *url,
                             int flags, AVDictionary **options)
{
    (void)s, (void)pb, (void)url, (void)flags, (void)options;
    return AVERROR(EPERM);
}

/* FFmpeg's ENOMEM under our memory limit is the limit speaking, not a corrupt file. */
static enum sd_err ff_code(int rc, enum sd_err otherwise)
{
    return rc == AVERROR(ENOMEM) ? SD_ETOOBIG : otherwise;
}

static const char *ff_errstr(int rc, char *buf, size_t n)
{
    av_strerror(rc, buf, n);
    return buf;
}

/* Our name for the container FFmpeg detected, NULL when it is not one we take. */
static const char *ff_format_name(const struct ffdec *d, const AVInputFormat *ifmt)
{
    static const struct { const char *ff, *ours; } map[] = {
        {"wav", "wav"}, {"mp3", "mp3"}, {"flac", "flac"}, {"ogg", "ogg"}, {"aac", "aac"},
        {"aiff", "aiff"}, {"mov,mp4,m4a,3gp,3g2,mj2", "mp4"},
    };
    if (strcmp(ifmt->name, "matroska,webm") == 0) {
        /* The EBML header at the start carries the DocType string. */
        char head[64];
        ssize_t n = pread(d->fd, head, sizeof(head), 0);
        return n > 0 && memmem(head, (size_t)n, "webm", 4) ? "webm" : "mkv";
    }
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (strcmp(ifmt->name, map[i].ff) == 0)
            return map[i].ours;
    return NULL;
}

static enum sd_err ff_open(struct ffdec *d, const struct audio_decode_opts *o,
                           struct audio_info *info, struct sd_error *err)
{
    char eb[128];
    unsigned char *buf = av_malloc(FF_IO_BUF);
    if (!buf)
        return sd_fail(err, SD_ETOOBIG, "decoding needs more memory than allowed");
    d->avio = avio_alloc_context(buf, FF_IO_BUF, 0, d, ff_read, NULL, ff_seek);
    if (!d->avio) {
        av_free(buf);
        return sd_fail(err, SD_ETOOBIG, "decoding needs more memory than allowed");
    }
    /*
     * Probing runs every demuxer's signature check on the first bytes (the
     * public API has no whitelist for it); no demuxer outside FF_FORMATS and
     * no decoder outside FF_CODECS goes further.
     */
    const AVInputFormat *ifmt = NULL;
    int rc = av_probe_input_buffer2(d->avio, &ifmt, "", NULL, 0, 0);
    if (rc < 0 || !ifmt)
        return sd_fail(err, ff_code(rc, SD_EUNSUPPORTED), "not a recognised audio format");
    const char *name = ff_format_name(d, ifmt);
    if (!name)
        return sd_fail(err, SD_EUNSUPPORTED, "%s is not an accepted audio format", ifmt->name);
    if (!audio_format_allowed(name, o->allowed))
        return sd_fail(err, SD_EUNSUPPORTED, "%s audio is not allowed here (allowed: %s)",
                       strcmp(name, "mp4") == 0 ? "m4a/mp4" : name, o->allowed);
    snprintf(info->format, sizeof(info->format), "%s", name);

    d->fmt = avformat_alloc_context();
    if (!d->fmt)
        return sd_fail(err, SD_ETOOBIG, "decoding needs more memory than allowed");
    d->fmt->pb = d->avio;
    d->fmt->io_open = ff_io_open_denied;
    AVDictionary *fo = NULL;
    av_dict_set(&fo, "format_whitelist", FF_FORMATS, 0);
    /*
     * Before avformat_find_stream_info: it opens a decoder for every stream
     * to fill in parameters, and only decoders on this list may see the
     * upload (an mp4's video track no longer reaches the h264 decoder).
     */
    av_dict_set(&fo, "codec_whitelist", FF_CODECS, 0);
    av_dict_set(&fo, "protocol_whitelist", "none", 0);
    av_dict_set(&fo, "probesize", "5000000", 0);
    av_dict_set(&fo, "max_streams", "64", 0);
    rc = avformat_open_input(&d->fmt, "", ifmt, &fo);
    av_dict_free(&fo);
    if (rc >= 0)
        rc = avformat_find_stream_info(d->fmt, NULL);
    if (rc < 0) /* avformat_open_input freed and cleared d->fmt if it failed */
        return sd_fail(err, ff_code(rc, SD_EFORMAT), "corrupt %s file: %s", name,
                       ff_errstr(rc, eb, sizeof(eb)));
    if (strcmp(name, "mp4") == 0) {
        AVDictionaryEntry *e = av_dict_get(d->fmt->metadata, "major_brand", NULL, 0);
        if (e && (strncmp(e->value, "M4A", 3) == 0 || strncmp(e->value, "M4B", 3) == 0))
            snprintf(info->format, sizeof(info->format), "m4a");
    }
    d->stream = av_find_best_stream(d->fmt, AVMEDIA_TYPE_AUDIO, -1, -1, NULL, 0);
    if (d->stream < 0)
        return sd_fail(err, SD_EUNSUPPORTED, "the %s file has no audio stream", name);
    return SD_OK;
}

static enum sd_err ff_open_codec(struct ffdec *d, struct audio_info *info, struct sd_error *err)
{
    char eb[128];
    AVStream *st = d->fmt->streams[d->stream];
    const AVCodec *codec = avcodec_find_decoder(st->codecpar->codec_id);
    if (!codec)
        return sd_fail(err, SD_EUNSUPPORTED, "no decoder for the %s codec",
                       avcodec_get_name(st->codecpar->codec_id));
    snprintf(info->codec, sizeof(info->codec), "%s", codec->name);
    /* Exact match within the comma list. */
    const char *p = strstr(FF_CODECS, codec->name);
    size_t nl = strlen(codec->name);
    while (p && !((p == FF_CODECS || p[-1] == ',') && (p[nl] == ',' || p[nl] == 0)))
        p = strstr(p + 1, codec->name);
    if (!p)
        return sd_fail(err, SD_EUNSUPPORTED, "the %s audio codec is not supported", codec->name);
    int ch = st->codecpar->ch_layout.nb_channels, rate = st->codecpar->sample_rate;
    if (ch < 1 || ch > FF_MAX_CHANNELS || rate < 1 || rate > FF_MAX_RATE)
        return sd_fail(err, SD_EFORMAT, "corrupt %s file: %d channels at %d Hz", info->format, ch,
                       rate);
    info->channels = ch;
    info->sample_rate = rate;

    d->dec = avcodec_alloc_context3(codec);
    if (!d->dec)
        return sd_fail(err, SD_ETOOBIG, "decoding needs more memory than allowed");
    int rc = avcodec_parameters_to_context(d->dec, st->codecpar);
    if (rc < 0)
        return sd_fail(err, SD_EFORMAT, "corrupt %s stream: %s", codec->name,
                       ff_errstr(rc, eb, sizeof(eb)));
    d->dec->thread_count = 1;   /* the sandbox allows no thread creation */
    d->dec->pkt_timebase = st->time_base;
    AVDictionary *co = NULL;
    av_dict_set(&co, "codec_whitelist", FF_CODECS, 0);
    rc = avcodec_open2(d->dec, codec, &co);
    av_dict_free(&co);
    if (rc < 0)
        return sd_fail(err, ff_code(rc, SD_EFORMAT), "cannot decode %s: %s", codec->name,
                       ff_errstr(rc, eb, sizeof(eb)));
    return SD_OK;
}

static uint32_t ff_le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/*
 * FFmpeg clips a WAV's data size to the file, hiding a header that claims
 * hours; read the claim from the RIFF chunks. Streaming writers' placeholder
 * sizes (0, ~2^31, ~2^32) mean "unknown" and give 0.
 */
static double ff_wav_declared_s(int fd)
{
    unsigned char h[16];
    if (pread(fd, h, 12, 0) != 12 || memcmp(h, "RIFF", 4) || memcmp(h + 8, "WAVE", 4))
        return 0;
    uint32_t byte_rate = 0;
    off_t at = 12;
    for (int i = 0; i < 64; i++) {
        if (pread(fd, h, 16, at) < 8)
            return 0;
        uint32_t size = ff_le32(h + 4);
        unsigned char fmt[16];
        if (memcmp(h, "fmt ", 4) == 0 && size >= 16 && pread(fd, fmt, 16, at + 8) == 16)
            byte_rate = ff_le32(fmt + 8);
        if (memcmp(h, "data", 4) == 0) {
            if (!byte_rate || size == 0 || size >= 0x7FFFF000u)
                return 0;
            return (double)size / byte_rate;
        }
        at += 8 + (off_t)size + (size & 1);
    }
    return 0;
}

/* Duration the container states, 0 when unknown or only guessed from the bitrate. */
static double ff_declared_s(const struct ffdec *d, const struct audio_info *info)
{
    if (strcmp(info->format, "wav") == 0)
        return ff_wav_declared_s(d->fd);
    if (d->fmt->duration_estimation_method == AVFMT_DURATION_FROM_BITRATE)
        return 0;
    const AVStream *st = d->fmt->streams[d->stream];
    if (st->duration > 0 && st->duration != AV_NOPTS_VALUE)
        return (double)st->duration * av_q2d(st->time_base);
    if (d->fmt->duration > 0 && d->fmt->duration != AV_NOPTS_VALUE)
        return (double)d->fmt->duration / AV_TIME_BASE;
    return 0;
}

/* (Re)configures the resampler for the frame's layout, after draining the old one. */
static enum sd_err ff_swr_setup(struct ffdec *d, const AVFrame *f, struct sd_error *err);

static enum sd_err ff_emit(struct ffdec *d, int n, struct sd_error *err)
{
    if (n <= 0)
        return SD_OK;
    for (int i = 0; i < n; i++)
        if (!isfinite(d->out[i]))
            d->out[i] = 0;
    if (d->n_out + (uint64_t)n > d->max_out)
        return sd_fail(err, SD_ETOOBIG, "audio is longer than the limit of %.0f s",
                       (double)d->max_out / AUDIO_SAMPLE_RATE);
    d->n_out += (uint64_t)n;
    return d->sink->on_pcm(d->sink->user, d->out, (size_t)n, err);
}

static enum sd_err ff_convert(struct ffdec *d, const uint8_t **in, int n_in, struct sd_error *err)
{
    int need = swr_get_out_samples(d->swr, n_in);
    if (need < 0)
        return sd_fail(err, SD_EFORMAT, "resampler failed");
    if (need + 16 > d->out_cap) {
        float *p = av_realloc_array(d->out, (size_t)need + 16, sizeof(float));
        if (!p)
            return sd_fail(err, SD_ETOOBIG, "decoding needs more memory than allowed");
        d->out = p;
        d->out_cap = need + 16;
    }
    uint8_t *outp = (uint8_t *)d->out;
    int n = swr_convert(d->swr, &outp, d->out_cap, in, n_in);
    if (n < 0)
        return sd_fail(err, SD_EFORMAT, "resampler failed");
    return ff_emit(d, n, err);
}

static enum sd_err ff_swr_setup(struct ffdec *d, const AVFrame *f, struct sd_error *err)
{
    AVChannelLayout in = {0};
    enum sd_err rc = SD_OK;
    if (f->ch_layout.order == AV_CHANNEL_ORDER_UNSPEC || f->ch_layout.nb_channels == 0)
        av_channel_layout_default(&in, f->ch_layout.nb_channels ? f->ch_layout.nb_channels
                                                                : d->dec->ch_layout.nb_channels);
    else if (av_channel_layout_copy(&in, &f->ch_layout) < 0)
        return sd_fail(err, SD_ETOOBIG, "decoding needs more memory than allowed");
    if (in.nb_channels < 1 || in.nb_channels > FF_MAX_CHANNELS || f->sample_rate < 1 ||
        f->sample_rate > FF_MAX_RATE) {
        rc = sd_fail(err, SD_EFORMAT, "corrupt stream: %d channels at %d Hz", in.nb_channels,
                     f->sample_rate);
        goto out;
    }
    if (d->swr && d->swr_rate == f->sample_rate && d->swr_fmt == f->format &&
        av_channel_layout_compare(&d->swr_layout, &in) == 0)
        goto out;
    if (d->swr && (rc = ff_convert(d, NULL, 0, err)) != SD_OK)
        goto out;
    swr_free(&d->swr);
    AVChannelLayout mono = AV_CHANNEL_LAYOUT_MONO;
    int frc = swr_alloc_set_opts2(&d->swr, &mono, AV_SAMPLE_FMT_FLT, AUDIO_SAMPLE_RATE, &in,
                                  f->format, f->sample_rate, 0, NULL);
    /* Plain average of the channels (what Whisper expects), not FFmpeg's surround downmix. */
    double matrix[FF_MAX_CHANNELS];
    for (int i = 0; i < in.nb_channels && frc >= 0; i++)
        matrix[i] = 1.0 / in.nb_channels;
    if (frc >= 0)
        frc = swr_set_matrix(d->swr, matrix, in.nb_channels);
    if (frc >= 0)
        frc = swr_init(d->swr);
    if (frc < 0) {
        rc = frc == AVERROR(ENOMEM)
                 ? sd_fail(err, SD_ETOOBIG, "decoding needs more memory than allowed")
                 : sd_fail(err, SD_EFORMAT, "resampler rejects %d Hz, %d channels",
                           f->sample_rate, in.nb_channels);
        goto out;
    }
    d->swr_rate = f->sample_rate;
    d->swr_fmt = f->format;
    av_channel_layout_uninit(&d->swr_layout);
    d->swr_layout = in;
    return SD_OK;
out:
    av_channel_layout_uninit(&in);
    return rc;
}

/* Pulls every frame the decoder has ready; counts decode errors instead of failing at once. */
static enum sd_err ff_drain(struct ffdec *d, struct sd_error *err)
{
    for (;;) {
        int rc = avcodec_receive_frame(d->dec, d->frame);
        if (rc == AVERROR(EAGAIN) || rc == AVERROR_EOF)
            return SD_OK;
        if (rc == AVERROR(ENOMEM))
            return sd_fail(err, SD_ETOOBIG, "decoding needs more memory than allowed");
        if (rc < 0) {
            d->n_bad++;
            continue;
        }
        enum sd_err e = ff_swr_setup(d, d->frame, err);
        if (e == SD_OK)
            e = ff_convert(d, (const uint8_t **)d->frame->extended_data, d->frame->nb_samples, err);
        av_frame_unref(d->frame);
        if (e != SD_OK)
            return e;
    }
}

static enum sd_err ff_decode_all(struct ffdec *d, const struct audio_info *info,
                                 struct sd_error *err)
{
    char eb[128];
    enum sd_err e;
    int rc;
    while ((rc = av_read_frame(d->fmt, d->pkt)) >= 0) {
        if (d->pkt->stream_index != d->stream) {
            av_packet_unref(d->pkt);
            continue;
        }
        d->n_pkt++;
        if (d->pkt->flags & AV_PKT_FLAG_CORRUPT)
            d->n_bad++;
        rc = avcodec_send_packet(d->dec, d->pkt);
        av_packet_unref(d->pkt);
        if (rc == AVERROR(ENOMEM))
            return sd_fail(err, SD_ETOOBIG, "decoding needs more memory than allowed");
        if (rc < 0 && rc != AVERROR(EAGAIN))
            d->n_bad++;
        if ((e = ff_drain(d, err)) != SD_OK)
            return e;
    }
    if (rc == AVERROR(ENOMEM))
        return sd_fail(err, SD_ETOOBIG, "decoding needs more memory than allowed");
    if (rc != AVERROR_EOF)
        return sd_fail(err, SD_EFORMAT, "corrupt %s file after %.1f s: %s", info->format,
                       (double)d->n_out / AUDIO_SAMPLE_RATE, ff_errstr(rc, eb, sizeof(eb)));
    avcodec_send_packet(d->dec, NULL);
    if ((e = ff_drain(d, err)) != SD_OK)
        return e;
    if (d->swr && (e = ff_convert(d, NULL, 0, err)) != SD_OK)
        return e;
    return SD_OK;
}

/* After a clean EOF: too many rejected packets, no audio at all, or much less than declared. */
static enum sd_err ff_check_result(const struct ffdec *d, const struct audio_info *info,
                                   double declared_s, struct sd_error *err)
{
    double got_s = (double)d->n_out / AUDIO_SAMPLE_RATE;
    long allowed_bad = d->n_pkt / 20 > 5 ? d->n_pkt / 20 : 5;
    if (d->n_bad > allowed_bad || (d->n_out == 0 && d->n_bad > 0))
        return sd_fail(err, SD_EFORMAT, "corrupt %s file: %ld of %ld packets failed to decode",
                       info->format, d->n_bad, d->n_pkt);
    if (d->n_out == 0)
        return sd_fail(err, SD_EFORMAT, "the %s file contains no audio samples", info->format);
    if (declared_s > 0 && got_s < declared_s - (0.5 + 0.02 * declared_s))
        return sd_fail(err, SD_EFORMAT, "truncated %s file: header declares %.1f s, only %.1f s "
                       "present", info->format, declared_s, got_s);
    return SD_OK;
}

static void ff_close(struct ffdec *d)
{
    av_packet_free(&d->pkt);
    av_frame_free(&d->frame);
    swr_free(&d->swr);
    av_channel_layout_uninit(&d->swr_layout);
    avcodec_free_context(&d->dec);
    avformat_close_input(&d->fmt);
    if (d->avio) {
        av_freep(&d->avio->buffer);
        avio_context_free(&d->avio);
    }
    av_free(d->out);
}

void audio_ffmpeg_quiet(void)
{
    av_log_set_level(AV_LOG_QUIET);
}

enum sd_err audio_ff_decode_fd(int fd, const struct audio_decode_opts *opts, int probe_only,
                               const struct audio_sink *sink, struct sd_error *err)
{
    struct ffdec d = {.fd = fd, .sink = sink, .stream = -1};
    struct audio_info info = {0};
    struct stat sb;
    enum sd_err e;
    if (fstat(fd, &sb) != 0)
        return sd_fail(err, SD_EIO, "cannot stat the audio file: %s", strerror(errno));
    if (sb.st_size == 0)
        return sd_fail(err, SD_EFORMAT, "the audio file is empty");
    d.size = S_ISREG(sb.st_mode) ? (int64_t)sb.st_size : -1;
    if (lseek(fd, 0, SEEK_SET) < 0)
        return sd_fail(err, SD_EIO, "cannot seek in the audio file: %s", strerror(errno));
    d.max_out = (uint64_t)(opts->max_duration_s * AUDIO_SAMPLE_RATE);

    if ((e = ff_open(&d, opts, &info, err)) != SD_OK ||
        (e = ff_open_codec(&d, &info, err)) != SD_OK)
        goto done;
    double declared_s = ff_declared_s(&d, &info);
    if (declared_s > opts->max_duration_s + 1) {
        e = sd_fail(err, SD_ETOOBIG, "audio declares %.0f s, over the limit of %.0f s", declared_s,
                    opts->max_duration_s);
        goto done;
    }
    info.duration_s = declared_s;
    if ((e = sink->on_info(sink->user, &info, err)) != SD_OK || probe_only)
        goto done;
    d.pkt = av_packet_alloc();
    d.frame = av_frame_alloc();
    if (!d.pkt || !d.frame) {
        e = sd_fail(err, SD_ETOOBIG, "decoding needs more memory than allowed");
        goto done;
    }
    if ((e = ff_decode_all(&d, &info, err)) == SD_OK)
        e = ff_check_result(&d, &info, declared_s, err);
done:
    ff_close(&d);
    return e;
}

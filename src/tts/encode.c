/*
 * encode.c - PCM -> 24 kHz -> response format, written as it is made
 * (encode.h). mp3, opus, aac and flac go through libavcodec and a libavformat
 * muxer writing to a custom, non-seekable AVIOContext; wav and pcm need no
 * codec and are written here.
 */
#include "tts/encode.h"

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/audio_fifo.h>
#include <libavutil/channel_layout.h>
#include <libavutil/opt.h>
#include <libswresample/swresample.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static const struct format_info {
    const char *name, *mime;
    const char *codec, *muxer; /* NULL: written here */
    int64_t bit_rate;
} formats[TTS_N_FORMATS] = {
    [TTS_MP3] = {"mp3", "audio/mpeg", "libmp3lame", "mp3", 48000},
    [TTS_OPUS] = {"opus", "audio/opus", "libopus", "ogg", 32000},
    [TTS_AAC] = {"aac", "audio/aac", "aac", "adts", 64000},
    [TTS_FLAC] = {"flac", "audio/flac", "flac", "flac", 0},
    [TTS_WAV] = {"wav", "audio/wav", NULL, NULL, 0},
    [TTS_PCM] = {"pcm", "audio/pcm", NULL, NULL, 0},
};

bool tts_format_parse(const char *name, enum tts_format *out)
{
    for (int f = 0; f < TTS_N_FORMATS; f++)
        if (name && strcmp(formats[f].name, name) == 0) {
            *out = (enum tts_format)f;
            return true;
        }
    return false;
}

const char *tts_format_name(enum tts_format f)
{
    return formats[f].name;
}

const char *tts_format_mime(enum tts_format f)
{
    return formats[f].mime;
}

const char *tts_format_list(void)
{
    return "mp3, opus, aac, flac, wav, pcm";
}

struct tts_encoder {
    enum tts_format f;
    tts_write_fn write;
    void *user;
    bool stopped;              /* write said stop */
    bool finished;
    SwrContext *swr;
    int in_rate;
    enum AVSampleFormat sfmt;  /* what swr makes: the codec's format, or s16 */
    int bps;                   /* bytes per sample of sfmt */
    uint8_t *conv;             /* swr output buffer */
    int conv_cap;              /* in samples */
    int64_t samples;           /* 24 kHz samples consumed */
    /* codec formats only */
    AVFormatContext *oc;
    AVCodecContext *cc;
    AVStream *st;
    AVAudioFifo *fifo;
    AVFrame *frame;
    AVPacket *pkt;
    int frame_size;
    int64_t pts;
};

static enum sd_err av_fail(struct tts_encoder *e, struct sd_error *err, int ret, const char *what)
{
    if (e->stopped)
        return sd_fail(err, SD_ECANCELLED, "the client stopped reading");
    char buf[128];
    av_strerror(ret, buf, sizeof(buf));
    return sd_fail(err, SD_EINTERNAL, "%s %s: %s", formats[e->f].name, what, buf);
}

static int io_write(void *opaque, uint8_t *buf, int size)
{
    struct tts_encoder *e = opaque;
    if (e->stopped || (size > 0 && !e->write(e->user, buf, (size_t)size))) {
        e->stopped = true;
        return AVERROR(EPIPE);
    }
    return size;
}

static void put_le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put_le16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

/* The length is unknown when the header leaves: both sizes say "to the end". */
static bool write_wav_header(struct tts_encoder *e)
{
    uint8_t h[44];
    memcpy(h, "RIFF", 4);
    put_le32(h + 4, 0xFFFFFFFFu);
    memcpy(h + 8, "WAVEfmt ", 8);
    put_le32(h + 16, 16);
    put_le16(h + 20, 1); /* PCM */
    put_le16(h + 22, 1); /* mono */
    put_le32(h + 24, TTS_OUT_RATE);
    put_le32(h + 28, TTS_OUT_RATE * 2);
    put_le16(h + 32, 2);
    put_le16(h + 34, 16);
    memcpy(h + 36, "data", 4);
    put_le32(h + 40, 0xFFFFFFFFu);
    return e->write(e->user, h, sizeof(h));
}

static enum sd_err open_codec(struct tts_encoder *e, struct sd_error *err)
{
    const struct format_info *fi = &formats[e->f];
    const AVCodec *codec = avcodec_find_encoder_by_name(fi->codec);
    if (!codec)
        return sd_fail(err, SD_EUNSUPPORTED, "this FFmpeg has no %s encoder", fi->codec);
    int ret = avformat_alloc_output_context2(&e->oc, NULL, fi->muxer, NULL);
    if (ret < 0 || !e->oc)
        return av_fail(e, err, ret, "muxer");
    e->cc = avcodec_alloc_context3(codec);
    e->st = avformat_new_stream(e->oc, NULL);
    e->frame = av_frame_alloc();
    e->pkt = av_packet_alloc();
    uint8_t *iobuf = av_malloc(4096);
    if (!e->cc || !e->st || !e->frame || !e->pkt || !iobuf) {
        av_free(iobuf);
        return sd_fail(err, SD_ENOMEM, "encoder");
    }
    e->oc->pb = avio_alloc_context(iobuf, 4096, 1, e, NULL, io_write, NULL);
    if (!e->oc->pb) {
        av_free(iobuf);
        return sd_fail(err, SD_ENOMEM, "encoder output");
    }
    e->oc->flags |= AVFMT_FLAG_CUSTOM_IO | AVFMT_FLAG_FLUSH_PACKETS;
    e->sfmt = codec->sample_fmts ? codec->sample_fmts[0] : AV_SAMPLE_FMT_S16;
    e->cc->sample_fmt = e->sfmt;
    e->cc->sample_rate = TTS_OUT_RATE;
    av_channel_layout_default(&e->cc->ch_layout, 1);
    e->cc->time_base = (AVRational){1, TTS_OUT_RATE};
    if (fi->bit_rate)
        e->cc->bit_rate = fi->bit_rate;
    if (e->oc->oformat->flags & AVFMT_GLOBALHEADER)
        e->cc->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    if ((ret = avcodec_open2(e->cc, codec, NULL)) < 0)
        return av_fail(e, err, ret, "encoder");
    if ((ret = avcodec_parameters_from_context(e->st->codecpar, e->cc)) < 0)
        return av_fail(e, err, ret, "stream");
    e->st->time_base = e->cc->time_base;
    e->frame_size = e->cc->frame_size > 0 ? e->cc->frame_size : 1024;
    e->fifo = av_audio_fifo_alloc(e->sfmt, 1, e->frame_size * 2);
    if (!e->fifo)
        return sd_fail(err, SD_ENOMEM, "encoder fifo");
    AVDictionary *opts = NULL;
    if (e->f == TTS_MP3) { /* plain MPEG frames: no ID3 tag, no Xing header to seek back to */
        av_dict_set(&opts, "id3v2_version", "0", 0);
        av_dict_set(&opts, "write_xing", "0", 0);
    }
    ret = avformat_write_header(e->oc, &opts);
    av_dict_free(&opts);
    if (ret < 0)
        return av_fail(e, err, ret, "header");
    return SD_OK;
}

/*
 * FFmpeg's log level is process-wide (the library's global, not ours). Its
 * encoders report at info/warning level on stderr ("Qavg", "unable to
 * rewrite FLAC header" on a stream that cannot seek); errors still show.
 * The audio decoder's own sandboxed child sets its level itself.
 */
static void quiet_ffmpeg(void)
{
    if (av_log_get_level() > AV_LOG_ERROR)
        av_log_set_level(AV_LOG_ERROR);
}

enum sd_err tts_encoder_create(enum tts_format f, tts_write_fn write, void *user,
                               struct tts_encoder **out, struct sd_error *err)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, quiet_ffmpeg);
    if ((unsigned)f >= TTS_N_FORMATS)
        return sd_fail(err, SD_EINVAL, "unknown audio format");
    struct tts_encoder *e = calloc(1, sizeof(*e));
    if (!e)
        return sd_fail(err, SD_ENOMEM, "encoder");
    e->f = f;
    e->write = write;
    e->user = user;
    e->sfmt = AV_SAMPLE_FMT_S16;
    enum sd_err rc = SD_OK;
    if (formats[f].codec)
        rc = open_codec(e, err);
    else if (f == TTS_WAV && !write_wav_header(e))
        rc = sd_fail(err, SD_ECANCELLED, "the client stopped reading");
    if (rc != SD_OK) {
        tts_encoder_destroy(e);
        return rc;
    }
    e->bps = av_get_bytes_per_sample(e->sfmt);
    *out = e;
    return SD_OK;
}

static enum sd_err encode_frame(struct tts_encoder *e, AVFrame *fr, struct sd_error *err)
{
    int ret = avcodec_send_frame(e->cc, fr);
    if (ret < 0)
        return av_fail(e, err, ret, "encode");
    for (;;) {
        ret = avcodec_receive_packet(e->cc, e->pkt);
        if (ret == AVERROR(EAGAIN) || ret == AVERROR_EOF)
            return SD_OK;
        if (ret < 0)
            return av_fail(e, err, ret, "encode");
        av_packet_rescale_ts(e->pkt, e->cc->time_base, e->st->time_base);
        e->pkt->stream_index = 0;
        ret = av_interleaved_write_frame(e->oc, e->pkt); /* takes the packet */
        if (ret < 0)
            return av_fail(e, err, ret, "write");
    }
}

/* Encodes whole frames from the fifo; at the end also the rest, padded with silence. */
static enum sd_err drain_fifo(struct tts_encoder *e, bool last, struct sd_error *err)
{
    for (;;) {
        int have = av_audio_fifo_size(e->fifo);
        if (have == 0 || (have < e->frame_size && !last))
            return SD_OK;
        av_frame_unref(e->frame);
        e->frame->nb_samples = e->frame_size;
        e->frame->format = e->sfmt;
        e->frame->sample_rate = TTS_OUT_RATE;
        av_channel_layout_default(&e->frame->ch_layout, 1);
        int ret = av_frame_get_buffer(e->frame, 0);
        if (ret < 0)
            return av_fail(e, err, ret, "frame");
        int got = av_audio_fifo_read(e->fifo, (void **)e->frame->data, e->frame_size);
        if (got < e->frame_size)
            av_samples_set_silence(e->frame->data, got, e->frame_size - got, 1, e->sfmt);
        e->frame->pts = e->pts;
        e->pts += e->frame_size;
        enum sd_err rc = encode_frame(e, e->frame, err);
        if (rc != SD_OK)
            return rc;
    }
}

/* Resampled samples (sfmt, mono) onward to the output. */
static enum sd_err consume(struct tts_encoder *e, const uint8_t *data, int n, struct sd_error *err)
{
    if (n <= 0)
        return SD_OK;
    e->samples += n;
    if (!e->cc) {
        if (!e->write(e->user, data, (size_t)n * 2)) { /* s16 mono little-endian */
            e->stopped = true;
            return sd_fail(err, SD_ECANCELLED, "the client stopped reading");
        }
        return SD_OK;
    }
    void *planes[1] = {(void *)data};
    if (av_audio_fifo_write(e->fifo, planes, n) < n)
        return sd_fail(err, SD_ENOMEM, "encoder fifo");
    return drain_fifo(e, false, err);
}

static enum sd_err convert(struct tts_encoder *e, const int16_t *pcm, int n, struct sd_error *err)
{
    int cap = swr_get_out_samples(e->swr, n);
    if (cap > e->conv_cap) {
        av_freep(&e->conv);
        if (av_samples_alloc(&e->conv, NULL, 1, cap, e->sfmt, 0) < 0)
            return sd_fail(err, SD_ENOMEM, "resampler buffer");
        e->conv_cap = cap;
    }
    const uint8_t *in[1] = {(const uint8_t *)pcm};
    int got = swr_convert(e->swr, &e->conv, e->conv_cap, pcm ? in : NULL, n);
    if (got < 0)
        return av_fail(e, err, got, "resample");
    return consume(e, e->conv, got, err);
}

/* Out with what the resampler still holds (before a rate change, at the end). */
static enum sd_err drain_swr(struct tts_encoder *e, struct sd_error *err)
{
    if (!e->swr)
        return SD_OK;
    enum sd_err rc = convert(e, NULL, 0, err);
    swr_free(&e->swr);
    return rc;
}

enum sd_err tts_encoder_feed(struct tts_encoder *e, const int16_t *pcm, size_t n, int rate,
                             struct sd_error *err)
{
    if (e->stopped || e->finished)
        return sd_fail(err, SD_ECANCELLED, "the encoder has stopped");
    if (n == 0)
        return SD_OK;
    if (rate <= 0 || n > (size_t)INT32_MAX / 8)
        return sd_fail(err, SD_EINVAL, "bad audio for the encoder");
    if (!e->swr || rate != e->in_rate) {
        enum sd_err rc = drain_swr(e, err);
        if (rc != SD_OK)
            return rc;
        AVChannelLayout mono = AV_CHANNEL_LAYOUT_MONO;
        if (swr_alloc_set_opts2(&e->swr, &mono, e->sfmt, TTS_OUT_RATE, &mono,
                                AV_SAMPLE_FMT_S16, rate, 0, NULL) < 0 ||
            swr_init(e->swr) < 0) {
            swr_free(&e->swr);
            return sd_fail(err, SD_ENOMEM, "resampler");
        }
        e->in_rate = rate;
    }
    return convert(e, pcm, (int)n, err);
}

enum sd_err tts_encoder_flush(struct tts_encoder *e, struct sd_error *err)
{
    if (!e->oc || e->stopped)
        return e->stopped ? sd_fail(err, SD_ECANCELLED, "the client stopped reading") : SD_OK;
    /* a NULL packet makes muxers that buffer (ogg's pages) write what they hold */
    if (e->oc->oformat->flags & AVFMT_ALLOW_FLUSH)
        av_write_frame(e->oc, NULL);
    avio_flush(e->oc->pb);
    return e->stopped ? sd_fail(err, SD_ECANCELLED, "the client stopped reading") : SD_OK;
}

enum sd_err tts_encoder_finish(struct tts_encoder *e, struct sd_error *err)
{
    if (e->finished)
        return SD_OK;
    enum sd_err rc = drain_swr(e, err);
    if (rc == SD_OK && e->cc) {
        rc = drain_fifo(e, true, err);
        if (rc == SD_OK)
            rc = encode_frame(e, NULL, err); /* the encoder's delayed packets */
        if (rc == SD_OK) {
            int ret = av_write_trailer(e->oc);
            if (ret < 0)
                rc = av_fail(e, err, ret, "trailer");
            else
                avio_flush(e->oc->pb);
        }
    }
    e->finished = true;
    if (rc == SD_OK && e->stopped)
        rc = sd_fail(err, SD_ECANCELLED, "the client stopped reading");
    return rc;
}

int64_t tts_encoder_samples(const struct tts_encoder *e)
{
    return e->samples;
}

void tts_encoder_destroy(struct tts_encoder *e)
{
    if (!e)
        return;
    swr_free(&e->swr);
    av_freep(&e->conv);
    if (e->oc) {
        if (e->oc->pb) {
            av_freep(&e->oc->pb->buffer);
            avio_context_free(&e->oc->pb);
        }
        avformat_free_context(e->oc);
    }
    avcodec_free_context(&e->cc);
    av_audio_fifo_free(e->fifo);
    av_frame_free(&e->frame);
    av_packet_free(&e->pkt);
    free(e);
}

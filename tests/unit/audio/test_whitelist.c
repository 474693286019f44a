/*
 * test_whitelist.c - probing a file opens no decoder outside the codec
 * whitelist (issue 16: avformat_find_stream_info ran before the whitelist,
 * so any FFmpeg decoder, here h264 for an mp4's video track, saw the
 * uploaded bytes). Decoded in-process with FFmpeg's log captured: FFmpeg
 * reports each decoder it refuses for not being on the whitelist.
 */
#include <libavutil/log.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audio/audio.h"
#include "check.h"
#include "fixtures.h"

static char refused[4096];

static void capture(void *avcl, int level, const char *fmt, va_list vl)
{
    (void)avcl, (void)level;
    char line[512];
    vsnprintf(line, sizeof(line), fmt, vl);
    if (strstr(line, "whitelist") && strlen(refused) + strlen(line) + 1 < sizeof(refused))
        strcat(refused, line);
}

TEST(audio_probe_opens_no_decoder_outside_the_whitelist)
{
    char p[4200];
    struct audio_decode_opts o = audio_decode_opts_default();
    o.sandbox = 0; /* in this process, so its log can be read */
    float *pcm = NULL;
    size_t n = 0;
    struct audio_info info;
    struct sd_error err = {0};
    refused[0] = '\0';
    av_log_set_level(AV_LOG_ERROR);
    av_log_set_callback(capture);
    enum sd_err rc = audio_decode_file(afx_path("mp4_video_aac.mp4", p, sizeof(p)), &o, &pcm, &n,
                                       &info, &err);
    av_log_set_callback(av_log_default_callback);
    audio_ffmpeg_quiet();
    CHECK_OK(rc, &err); /* the audio track still decodes */
    CHECK(n > 16000);
    CHECK_STR(info.codec, "aac");
    CHECK_MSG(strstr(refused, "h264") != NULL, "the h264 decoder was not refused: '%s'", refused);
    free(pcm);
}

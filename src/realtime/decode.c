/*
 * decode.c - a realtime decode as a synchronous job on the shared queue
 * (see decode.h). The WAV round trip costs a file write and the sandboxed
 * decoder's start (tens of ms against a decode of 100+ ms); float samples
 * keep the audio bit-exact, so a final equals the file transcription of the
 * same span.
 */
#include "realtime/decode.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "output/format.h"
#include "realtime/stream.h"

struct rt_decode {
    struct jobs *js;
    struct job *j;
    char path[1200];
    bool ended;
};

static void put_u32(unsigned char *b, uint32_t v)
{
    b[0] = (unsigned char)v;
    b[1] = (unsigned char)(v >> 8);
    b[2] = (unsigned char)(v >> 16);
    b[3] = (unsigned char)(v >> 24);
}

enum sd_err rt_write_wav(const char *path, const float *pcm, size_t n, struct sd_error *err)
{
    if (n > (UINT32_MAX - 64) / 4)
        return sd_fail(err, SD_ETOOBIG, "span too long for a WAV file");
    unsigned char h[58];
    uint32_t data = (uint32_t)(n * 4);
    memcpy(h, "RIFF", 4);
    put_u32(h + 4, 50 + data);
    memcpy(h + 8, "WAVEfmt ", 8);
    put_u32(h + 16, 18);
    h[20] = 3, h[21] = 0;                  /* WAVE_FORMAT_IEEE_FLOAT */
    h[22] = 1, h[23] = 0;                  /* mono */
    put_u32(h + 24, RT_SAMPLE_RATE);
    put_u32(h + 28, RT_SAMPLE_RATE * 4);
    h[32] = 4, h[33] = 0, h[34] = 32, h[35] = 0, h[36] = 0, h[37] = 0;
    memcpy(h + 38, "fact", 4);
    put_u32(h + 42, 4);
    put_u32(h + 46, (uint32_t)n);
    memcpy(h + 50, "data", 4);
    put_u32(h + 54, data);
    FILE *f = fopen(path, "wb");
    if (!f)
        return sd_fail(err, SD_EIO, "cannot write %s: %s", path, strerror(errno));
    bool ok = fwrite(h, 1, sizeof(h), f) == sizeof(h);
    /* little-endian host (x86-64, arm64): the floats go out as they are */
    ok = ok && (n == 0 || fwrite(pcm, sizeof(float), n, f) == n);
    ok = (fclose(f) == 0) && ok;
    if (!ok) {
        unlink(path);
        return sd_fail(err, SD_EIO, "cannot write %s", path);
    }
    return SD_OK;
}

enum sd_err rt_decode_start(struct jobs *js, const char *dir, const struct job_params *p,
                            const float *pcm, size_t n, struct rt_decode **out,
                            struct sd_error *err)
{
    struct rt_decode *d = calloc(1, sizeof(*d));
    if (!d)
        return sd_fail(err, SD_ENOMEM, "realtime decode");
    char id[STORE_ID_MAX];
    job_new_id("rt", id, sizeof(id));
    snprintf(d->path, sizeof(d->path), "%s/%s.wav", dir, id);
    d->js = js;
    enum sd_err rc = rt_write_wav(d->path, pcm, n, err);
    if (rc != SD_OK) {
        free(d);
        return rc;
    }
    rc = jobs_submit_sync(js, id, p, d->path, (int64_t)(n * 4 + 58), &d->j, err);
    if (rc != SD_OK) {
        unlink(d->path);
        free(d);
        return rc;
    }
    *out = d;
    return SD_OK;
}

bool rt_decode_poll(struct rt_decode *d, int timeout_ms, char **text, struct sd_error *err)
{
    if (!d->ended && !jobq_wait(d->js->q, d->j, timeout_ms))
        return false;
    d->ended = true;
    *text = NULL;
    struct job *j = d->j;
    if (j->status == JOB_SUCCEEDED && j->transcript) {
        /* the "text" of the JSON response format: trimmed, UTF-8 repaired, as a file gets it */
        char *body = output_render(j->transcript, OUTPUT_JSON);
        json_t *o = body ? json_loads(body, 0, NULL) : NULL;
        const char *t = json_string_value(json_object_get(o, "text"));
        *text = t ? strdup(t) : NULL;
        json_decref(o);
        free(body);
        if (!*text)
            sd_fail(err, SD_ENOMEM, "transcript text");
    } else if (j->status == JOB_CANCELLED) {
        sd_fail(err, SD_ECANCELLED, "the decode was cancelled");
    } else {
        sd_fail(err, j->rc ? j->rc : SD_EINTERNAL, "%s", j->err.msg[0] ? j->err.msg
                                                                       : "decode failed");
    }
    return true;
}

void rt_decode_free(struct rt_decode *d)
{
    if (!d)
        return;
    if (!d->ended) {
        jobq_cancel(d->js->q, d->j->id);
        /* a running window ends on its own; the WAV must outlive the worker's use of it */
        jobq_wait(d->js->q, d->j, 60000);
    }
    jobq_release(d->js->q, d->j);
    unlink(d->path);
    free(d);
}

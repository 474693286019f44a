/*
 * decode.c - a realtime decode as a synchronous job on the shared queue
 * (see decode.h). The samples go to the worker as they are (no WAV file,
 * no sandboxed decoder start), so a final equals the file transcription of
 * the same span.
 */
#include "realtime/decode.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "output/format.h"
#include "realtime/stream.h"

struct rt_decode {
    struct jobs *js;
    struct job *j;
    bool ended;
};

enum sd_err rt_decode_start(struct jobs *js, const struct stt_params *p, const float *pcm,
                            size_t n, struct rt_decode **out, struct sd_error *err)
{
    struct rt_decode *d = calloc(1, sizeof(*d));
    if (!d)
        return sd_fail(err, SD_ENOMEM, "realtime decode");
    char id[STORE_ID_MAX];
    job_new_id("rt", id, sizeof(id));
    d->js = js;
    enum sd_err rc = jobs_submit_pcm(js, id, p, pcm, n, &d->j, err);
    if (rc != SD_OK) {
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
    if (!d->ended)
        jobq_cancel(d->js->q, d->j->id); /* the job's own reference keeps its samples alive */
    jobq_release(d->js->q, d->j);
    free(d);
}

/*
 * route_audio.c - the synchronous endpoints: POST /v1/audio/transcriptions,
 * /v1/audio/translations (OpenAI) and /inference (whisper.cpp). The request
 * becomes a sync job on the shared queue; this connection's thread waits for
 * it, watching the socket: a client that hangs up cancels its work.
 * Replies in the requested format, or as SSE (transcript.text.delta/done).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "output/format.h"
#include "server/app.h"
#include "server/routes.h"
#include "util/clock.h"

/* SSE events, one delta per segment then done (OpenAI's stream shape). */
static char *render_sse(const struct transcript *t)
{
    size_t cap = 256, len = 0;
    char *out = malloc(cap);
    if (!out)
        return NULL;
    out[0] = '\0';
    for (int i = 0; i <= t->n_segments; i++) {
        char *s = i < t->n_segments ? sse_delta_event(t->segments[i].text) : sse_done_event(t->text);
        if (!s)
            continue; /* a segment that is not valid UTF-8 is skipped, not fatal */
        size_t need = len + strlen(s) + 1;
        if (need > cap) {
            cap = need * 2;
            char *n = realloc(out, cap);
            if (!n) {
                free(s);
                free(out);
                return NULL;
            }
            out = n;
        }
        len += (size_t)snprintf(out + len, cap - len, "%s", s);
        free(s);
    }
    return out;
}

/* ---- stream=true: events as segments become final ------------------------ */

struct sse_reply {
    struct app *a;
    struct job *j;      /* one reference, released in sse_done */
    size_t offset;      /* bytes of j->stream already sent */
    bool finished;      /* the closing event is in the stream */
    double deadline;
};

/* The job is over: transcript.text.done with the whole text, or an error event. */
static void sse_finish(struct sse_reply *c, enum sd_err rc, const char *msg)
{
    const struct job *j = c->j;
    if (rc == SD_OK && j->status == JOB_SUCCEEDED && j->transcript)
        job_stream_append_event(j->stream, sse_done_event(j->transcript->text));
    else {
        enum sd_err code = rc ? rc : j->rc ? j->rc : SD_EINTERNAL;
        const char *why = msg ? msg : j->err.msg[0] ? j->err.msg : "transcription failed";
        job_stream_append_event(j->stream,
                                sse_event(json_pack("{s:s, s:{s:s, s:s, s:s}}", "type", "error",
                                                    "error", "message", why, "type",
                                                    errors_http_type(code), "code",
                                                    sd_err_name(code))));
    }
    job_stream_close(j->stream);
    c->finished = true;
}

static long sse_next(void *user, char *buf, size_t max)
{
    struct sse_reply *c = user;
    for (;;) {
        bool eof = false;
        size_t n = job_stream_read(c->j->stream, c->offset, buf, max, 200, &eof);
        if (n > 0) {
            c->offset += n;
            return (long)n;
        }
        if (eof)
            return 0;
        if (!c->finished && jobq_wait(c->a->jobs->q, c->j, 0)) {
            sse_finish(c, SD_OK, NULL);
        } else if (!c->finished && sd_mono_s() > c->deadline) {
            jobq_cancel(c->a->jobs->q, c->j->id);
            sse_finish(c, SD_ETIMEOUT, "the transcription took longer than the synchronous "
                                       "limit; use POST /v1/jobs");
        }
    }
}

static void sse_done(void *user)
{
    struct sse_reply *c = user;
    if (!jobq_wait(c->a->jobs->q, c->j, 0))
        jobq_cancel(c->a->jobs->q, c->j->id); /* the client went away */
    jobq_release(c->a->jobs->q, c->j);
    free(c);
}

/* Hands the job to a streaming reply; false if that could not start (j untouched). */
static bool reply_streaming(struct http_request *r, struct job *j)
{
    struct app *a = http_app(r);
    struct sse_reply *c = calloc(1, sizeof(*c));
    if (!c)
        return false;
    *c = (struct sse_reply){a, j, 0, false, sd_mono_s() + (double)a->cfg.sync_timeout_s};
    http_reply_stream(r, 200, "text/event-stream", sse_next, sse_done, c);
    return true;
}

static void reply_transcript(struct http_request *r, const struct job *j)
{
    char *body;
    const char *ctype;
    if (j->params.stream) {
        body = render_sse(j->transcript);
        ctype = "text/event-stream";
    } else {
        body = output_render(j->transcript, j->params.response_format);
        ctype = output_content_type(j->params.response_format);
        if (body && j->extraction) { /* json or verbose_json (fields.c): one more key */
            char *with = jobs_verbose_with_extraction(body, j->extraction);
            free(body);
            body = with;
        }
    }
    if (!body) {
        http_reply_error(r, SD_ENOMEM, "out of memory rendering the transcript", NULL);
        return;
    }
    http_reply_body(r, 200, ctype, body, strlen(body));
}

/* Waits for the job; true if it reached a final status (else a reply was given). */
static bool wait_for(struct http_request *r, struct job *j)
{
    struct app *a = http_app(r);
    double deadline = sd_mono_s() + (double)a->cfg.sync_timeout_s;
    while (!jobq_wait(a->jobs->q, j, 200)) {
        if (http_client_gone(r)) {
            jobq_cancel(a->jobs->q, j->id);
            log_event(a->log, LOG_INFO, "http.client_gone",
                      (struct log_field[]){LOG_STR("req", http_request_id(r)), LOG_END});
            http_reply_error(r, SD_ECANCELLED, "client disconnected", NULL);
            return false;
        }
        if (sd_mono_s() > deadline) {
            jobq_cancel(a->jobs->q, j->id);
            http_reply_error(r, SD_ETIMEOUT, "the transcription took longer than the "
                                             "synchronous limit; use POST /v1/jobs", NULL);
            return false;
        }
        if (atomic_load(&a->draining) && jobq_cancel_pending(a->jobs->q, j->id)) {
            http_reply_condition(r, HTTP_COND_UNAVAILABLE, "the service is shutting down");
            return false;
        }
    }
    return true;
}

/* The error a stored failed job recorded, as the code it was named after. */
static enum sd_err stored_error(const struct store_job *sj)
{
    for (int c = 1; c <= SD_EINTERNAL; c++)
        if (sj->error_code && strcmp(sd_err_name((enum sd_err)c), sj->error_code) == 0)
            return (enum sd_err)c;
    return SD_EINTERNAL;
}

/* ---- API-only node: the job goes through the store ---------------------- */

/*
 * stream=true on an API-only node: segments are not written to the store as
 * they become final, so the events come once the job is over (a documented
 * choice, docs/DEPLOYMENT.md): one transcript.text.delta per segment of the
 * stored verbose_json, then transcript.text.done, or an error event. The
 * connection stays open meanwhile, polling the store like the plain reply.
 */
struct store_sse {
    struct app *a;
    char id[STORE_ID_MAX];
    char *events;       /* rendered once the job is over; NULL before */
    size_t len, sent;
    double deadline;
};

/* Appends ev (malloc'd event text, taken; NULL skipped) to c->events. */
static void store_sse_add(struct store_sse *c, char *ev)
{
    if (!ev)
        return;
    size_t n = strlen(ev);
    char *grown = realloc(c->events, c->len + n + 1);
    if (grown) {
        memcpy(grown + c->len, ev, n + 1);
        c->events = grown;
        c->len += n;
    }
    free(ev);
}

static void store_sse_error(struct store_sse *c, enum sd_err code, const char *why)
{
    store_sse_add(c, sse_event(json_pack("{s:s, s:{s:s, s:s, s:s}}", "type", "error", "error",
                                         "message", why, "type", errors_http_type(code), "code",
                                         sd_err_name(code))));
}

/* The finished job's events: its stored segments as deltas, then the whole text. */
static void store_sse_render(struct store_sse *c, const struct store_job *sj)
{
    char *body = NULL, *ctype = NULL;
    size_t len = 0;
    struct sd_error err = {0};
    if (sj->status == JOB_CANCELLED) {
        store_sse_error(c, SD_ECANCELLED, "the request was cancelled");
    } else if (sj->status != JOB_SUCCEEDED) {
        store_sse_error(c, stored_error(sj),
                        sj->error_message ? sj->error_message : "transcription failed");
    } else if (store_result_get(c->a->store, c->id, NULL, "verbose_json", &body, &len, &ctype,
                                &err) != SD_OK) {
        store_sse_error(c, err.code, err.msg);
    } else {
        json_t *v = json_loadb(body, len, 0, NULL);
        json_t *seg;
        size_t i;
        json_array_foreach(json_object_get(v, "segments"), i, seg)
            store_sse_add(c, sse_delta_event(json_string_value(json_object_get(seg, "text"))));
        const char *text = json_string_value(json_object_get(v, "text"));
        store_sse_add(c, sse_done_event(text ? text : ""));
        json_decref(v);
    }
    free(body);
    free(ctype);
    if (!c->events) /* out of memory: end the reply rather than wait forever */
        c->events = calloc(1, 1);
}

static long store_sse_next(void *user, char *buf, size_t max)
{
    struct store_sse *c = user;
    while (!c->events) {
        struct store_job sj = {0};
        struct sd_error err = {0};
        if (store_job_get(c->a->store, c->id, NULL, &sj, &err) == SD_OK &&
            job_status_is_final(sj.status)) {
            store_sse_render(c, &sj);
        } else if (sd_mono_s() > c->deadline || atomic_load(&c->a->draining)) {
            enum job_status was;
            jobs_cancel(c->a->jobs, c->id, NULL, &was, NULL);
            if (sd_mono_s() > c->deadline)
                store_sse_error(c, SD_ETIMEOUT, "the transcription took longer than the "
                                                "synchronous limit; use POST /v1/jobs");
            else
                store_sse_error(c, SD_ECANCELLED, "the service is shutting down");
            if (!c->events)
                c->events = calloc(1, 1);
        } else {
            struct timespec ts = {0, 100 * 1000000L};
            nanosleep(&ts, NULL);
        }
        store_job_clear(&sj);
    }
    size_t n = c->len - c->sent < max ? c->len - c->sent : max;
    memcpy(buf, c->events + c->sent, n);
    c->sent += n;
    return (long)n;
}

static void store_sse_done(void *user)
{
    struct store_sse *c = user;
    if (!c->events) { /* the client went away before the end: its work stops */
        enum job_status was;
        jobs_cancel(c->a->jobs, c->id, NULL, &was, NULL);
    }
    free(c->events);
    free(c);
}

/*
 * An API-only node (--workers 0 on a shared queue): the request becomes a
 * job in the store, some node's worker runs it, and this node answers with
 * the stored result in the requested format once the store says it is done
 * (stream=true: as events, see struct store_sse). The job stays listed in
 * /v1/jobs like any other.
 */
static void transcribe_via_store(struct http_request *r, const struct stt_params *p)
{
    struct app *a = http_app(r);
    struct upload *u = http_upload(r);
    struct sd_error err = {0};
    struct store_job sj = {0};
    char id[STORE_ID_MAX], path[1200];

    job_new_id("job", id, sizeof(id));
    snprintf(path, sizeof(path), "%s/%s", a->uploads_dir, id);
    if (upload_keep_as(u, path, &err) != SD_OK ||
        jobs_submit_async(a->jobs, id, http_principal(r), p, path, upload_file_bytes(u),
                          upload_file_name(u), NULL, &err) != SD_OK) {
        unlink(path);
        http_reply_error(r, err.code, err.msg, NULL);
        return;
    }
    double deadline = sd_mono_s() + (double)a->cfg.sync_timeout_s;
    if (p->stream) {
        struct store_sse *c = calloc(1, sizeof(*c));
        if (c) {
            *c = (struct store_sse){.a = a, .deadline = deadline};
            snprintf(c->id, sizeof(c->id), "%s", id);
            http_reply_stream(r, 200, "text/event-stream", store_sse_next, store_sse_done, c);
            return;
        }
        enum job_status was;
        jobs_cancel(a->jobs, id, NULL, &was, NULL);
        http_reply_error(r, SD_ENOMEM, "out of memory starting the event stream", NULL);
        return;
    }
    for (;;) {
        enum job_status was;
        if (store_job_get(a->store, id, NULL, &sj, &err) == SD_OK && job_status_is_final(sj.status))
            break;
        store_job_clear(&sj);
        if (http_client_gone(r) || sd_mono_s() > deadline || atomic_load(&a->draining)) {
            jobs_cancel(a->jobs, id, NULL, &was, NULL);
            if (sd_mono_s() > deadline)
                http_reply_error(r, SD_ETIMEOUT, "the transcription took longer than the "
                                                 "synchronous limit; use POST /v1/jobs", NULL);
            else
                http_reply_condition(r, HTTP_COND_UNAVAILABLE, "the request was cancelled");
            return;
        }
        struct timespec ts = {0, 100 * 1000000L};
        nanosleep(&ts, NULL);
    }
    if (sj.status == JOB_SUCCEEDED) {
        char *body = NULL, *ctype = NULL;
        size_t len = 0;
        if (store_result_get(a->store, id, NULL, output_format_name(p->response_format), &body,
                             &len, &ctype, &err) == SD_OK)
            http_reply_body(r, 200, ctype, body, len);
        else
            http_reply_error(r, err.code, err.msg, NULL);
        free(ctype);
    } else if (sj.status == JOB_CANCELLED) {
        http_reply_condition(r, HTTP_COND_UNAVAILABLE, "the request was cancelled");
    } else {
        enum sd_err code = stored_error(&sj);
        http_reply_error(r, code, sj.error_message ? sj.error_message : "transcription failed",
                         code == SD_EUNSUPPORTED || code == SD_EFORMAT ? "file" : NULL);
    }
    store_job_clear(&sj);
}

static void transcribe_sync(struct http_request *r, enum fields_dialect d)
{
    struct app *a = http_app(r);
    struct upload *u = http_upload(r);
    struct stt_params p;
    struct sd_error err = {0};
    const char *cb = NULL;
    struct job *j = NULL;

    stt_params_init(&p);
    if (!fields_read_request(r, d, &p, &cb))
        goto out;
    if (a->n_workers == 0) {
        transcribe_via_store(r, &p);
        goto out;
    }
    if (jobs_submit_sync(a->jobs, http_request_id(r), &p, upload_path(u), upload_file_bytes(u),
                         &j, &err) != SD_OK) {
        http_reply_error(r, err.code, err.msg, NULL);
        goto out;
    }
    if (j->stream && reply_streaming(r, j)) {
        j = NULL; /* the streaming reply holds the reference now */
        goto out;
    }
    if (!wait_for(r, j))
        goto out;
    if (j->status == JOB_SUCCEEDED && j->transcript)
        reply_transcript(r, j);
    else if (j->status == JOB_CANCELLED)
        http_reply_condition(r, HTTP_COND_UNAVAILABLE, "the request was cancelled (shutdown)");
    else
        http_reply_error(r, j->rc ? j->rc : SD_EINTERNAL, j->err.msg,
                         j->rc == SD_EUNSUPPORTED || j->rc == SD_EFORMAT ? "file" : NULL);
out:
    if (j)
        jobq_release(a->jobs->q, j);
    stt_params_clear(&p);
}

void route_transcriptions(struct http_request *r)
{
    transcribe_sync(r, FIELDS_TRANSCRIPTION);
}

void route_translations(struct http_request *r)
{
    transcribe_sync(r, FIELDS_TRANSLATION);
}

void route_inference(struct http_request *r)
{
    transcribe_sync(r, FIELDS_WHISPER_CPP);
}

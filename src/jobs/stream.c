/* stream.c - growing byte buffer with one writer and one blocking reader, and SSE framing (stream.h). */
#include "jobs/stream.h"
#include "util/clock.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct job_stream {
    pthread_mutex_t mu;  /* guards everything below */
    pthread_cond_t more; /* signalled on append and close */
    char *buf;
    size_t len, cap;
    bool closed;
};

struct job_stream *job_stream_create(void)
{
    struct job_stream *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    pthread_mutex_init(&s->mu, NULL);
    sd_cond_init_monotonic(&s->more);
    return s;
}

void job_stream_free(struct job_stream *s)
{
    if (!s)
        return;
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->more);
    free(s->buf);
    free(s);
}

bool job_stream_append(struct job_stream *s, const char *data, size_t n)
{
    bool ok = true;
    pthread_mutex_lock(&s->mu);
    if (s->closed) {
        ok = false;
    } else if (s->len + n > s->cap) {
        size_t cap = (s->len + n) * 2 + 256;
        char *grown = realloc(s->buf, cap);
        if (!grown)
            ok = false;
        else {
            s->buf = grown;
            s->cap = cap;
        }
    }
    if (ok) {
        memcpy(s->buf + s->len, data, n);
        s->len += n;
        pthread_cond_signal(&s->more);
    }
    pthread_mutex_unlock(&s->mu);
    return ok;
}

void job_stream_close(struct job_stream *s)
{
    pthread_mutex_lock(&s->mu);
    s->closed = true;
    pthread_cond_signal(&s->more);
    pthread_mutex_unlock(&s->mu);
}

size_t job_stream_read(struct job_stream *s, size_t offset, char *buf, size_t max, int timeout_ms,
                       bool *eof)
{
    struct timespec until = sd_deadline_ms(CLOCK_MONOTONIC, timeout_ms);
    size_t n = 0;
    *eof = false;
    pthread_mutex_lock(&s->mu);
    while (offset >= s->len && !s->closed)
        if (pthread_cond_timedwait(&s->more, &s->mu, &until) == ETIMEDOUT)
            break;
    if (offset < s->len) {
        n = s->len - offset < max ? s->len - offset : max;
        memcpy(buf, s->buf + offset, n);
    } else if (s->closed) {
        *eof = true;
    }
    pthread_mutex_unlock(&s->mu);
    return n;
}

char *sse_event(json_t *ev)
{
    char *json = ev ? json_dumps(ev, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(ev);
    if (!json)
        return NULL;
    size_t n = strlen(json);
    char *out = malloc(n + 9);
    if (out) {
        memcpy(out, "data: ", 6);
        memcpy(out + 6, json, n);
        memcpy(out + 6 + n, "\n\n", 3);
    }
    free(json);
    return out;
}

char *sse_delta_event(const char *delta)
{
    return sse_event(json_pack("{s:s, s:s}", "type", "transcript.text.delta", "delta",
                               delta ? delta : ""));
}

char *sse_done_event(const char *text)
{
    return sse_event(json_pack("{s:s, s:s}", "type", "transcript.text.done", "text",
                               text ? text : ""));
}

bool job_stream_append_event(struct job_stream *s, char *event)
{
    bool ok = event && job_stream_append(s, event, strlen(event));
    free(event);
    return ok;
}

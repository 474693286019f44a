/*
 * log.c - JSON-lines logging (see log.h). Strings are escaped by jansson, so
 * a client-controlled value (file name, URL) can never break a line. Write
 * errors are ignored: logging must not fail a request.
 */
#include "telemetry/log.h"

#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/clock.h"

struct sd_log {
    pthread_mutex_t mu; /* guards out: one whole line at a time */
    FILE *out;
    enum log_level min_level;
};

static const char *const level_names[] = {"debug", "info", "warn", "error"};

struct sd_log *log_create(FILE *out, enum log_level min_level)
{
    struct sd_log *l = calloc(1, sizeof(*l));
    if (!l)
        return NULL;
    pthread_mutex_init(&l->mu, NULL);
    l->out = out;
    l->min_level = min_level;
    return l;
}

void log_destroy(struct sd_log *l)
{
    if (!l)
        return;
    pthread_mutex_destroy(&l->mu);
    free(l);
}

int log_level_parse(const char *name)
{
    for (int i = 0; name && i < 4; i++)
        if (strcmp(name, level_names[i]) == 0)
            return i;
    return -1;
}

void log_event(struct sd_log *l, enum log_level level, const char *event,
               const struct log_field *fields)
{
    if (!l || level < l->min_level)
        return;
    int64_t now_ms = sd_wall_ms();
    time_t secs = (time_t)(now_ms / 1000);
    struct tm tm;
    char when[40];
    gmtime_r(&secs, &tm);
    size_t n = strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(when + n, sizeof(when) - n, ".%03dZ", (int)(now_ms % 1000));

    json_t *o = json_object();
    if (!o)
        return;
    json_object_set_new(o, "ts", json_string(when));
    json_object_set_new(o, "level", json_string(level_names[level]));
    json_object_set_new(o, "event", json_string(event));
    for (const struct log_field *f = fields; f && f->type != LOG_T_END; f++) {
        json_t *v = NULL;
        switch (f->type) {
        case LOG_T_STR: v = f->s ? json_string(f->s) : json_null(); break;
        case LOG_T_I64: v = json_integer(f->i); break;
        case LOG_T_F64: v = isfinite(f->f) ? json_real(f->f) : json_null(); break;
        case LOG_T_BOOL: v = json_boolean(f->i); break;
        case LOG_T_END: break;
        }
        if (!v) /* invalid UTF-8 from a client: keep the line, lose the value */
            v = json_string("(invalid utf-8)");
        json_object_set_new(o, f->key, v);
    }
    char *line = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6));
    json_decref(o);
    if (!line)
        return;
    pthread_mutex_lock(&l->mu);
    fputs(line, l->out);
    fputc('\n', l->out);
    fflush(l->out);
    pthread_mutex_unlock(&l->mu);
    free(line);
}

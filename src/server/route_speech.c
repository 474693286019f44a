/*
 * route_speech.c - text to speech over HTTP:
 *   POST /v1/audio/speech   OpenAI's JSON body -> audio, streamed (chunked)
 *                           as each sentence is synthesised and encoded
 *   GET  /v1/audio/voices   our voices, their engines, rates, OpenAI names
 * and the speech entries of GET /v1/models (route_speech_models).
 *
 * Identical requests are answered from the speech cache (jobs/speech_cache.h)
 * while it is fresh; its key is the ETag (speech is reproducible byte for
 * byte), so If-None-Match with it is a 304 without any lookup.
 *
 * A synthesis holds one of the job system's synthesis slots (jobs/synth.h)
 * from before the reply until the reply ends; it runs on the connection's
 * thread inside MHD's reader callback, one sentence per call that finds
 * the buffer empty, so the client's reading paces it and memory holds one
 * sentence's audio. `instructions` is accepted and ignored (our voices
 * have no style control).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pipeline/speech.h"
#include "server/app.h"
#include "server/routes.h"
#include "util/clock.h"
#include "util/utf8.h"

/* A slot is waited for at most this long before 429. */
#define SPEECH_SLOT_WAIT_MS 60000

/* Model names accepted besides the voice ids: OpenAI's and our engines'. */
static const char *const speech_models[] = {"tts-1", "tts-1-hd", "gpt-4o-mini-tts", "flite",
                                            "espeak-ng"};
#define N_SPEECH_MODELS (sizeof(speech_models) / sizeof(speech_models[0]))

static bool known_model(const char *m)
{
    for (size_t i = 0; i < N_SPEECH_MODELS; i++)
        if (strcmp(speech_models[i], m) == 0)
            return true;
    const struct tts_voice *v = tts_voice_find(m); /* our voice ids; OpenAI's voice names are not models */
    return v && strcmp(v->id, m) == 0;
}

struct speech_reply {
    struct app *app;
    struct speech_run *run;
    char *buf;                 /* encoded bytes not yet sent */
    size_t len, off, cap;
    bool done, failed;
    int64_t sent;
    double t0;
    char req[64];
    const char *voice, *format;
    FILE *cache_file;          /* the producer's copy for the cache, or NULL */
    bool cache_ok;             /* every byte reached cache_file */
    char key[SPEECH_KEY_HEX];  /* "" when not caching */
};

static bool to_buffer(void *user, const uint8_t *data, size_t n)
{
    struct speech_reply *s = user;
    if (s->len + n > s->cap) {
        size_t cap = s->cap ? s->cap : 64 * 1024;
        while (cap < s->len + n)
            cap *= 2;
        char *b = realloc(s->buf, cap);
        if (!b)
            return false;
        s->buf = b;
        s->cap = cap;
    }
    memcpy(s->buf + s->len, data, n);
    s->len += n;
    if (s->cache_file && fwrite(data, 1, n, s->cache_file) != n)
        s->cache_ok = false; /* a full disk spoils the cache entry, not the reply */
    return true;
}

static long speech_read(void *user, char *out, size_t max)
{
    struct speech_reply *s = user;
    while (s->off == s->len && !s->done && !s->failed) {
        s->off = s->len = 0;
        struct sd_error err = {0};
        if (speech_run_step(s->run, &s->done, &err) != SD_OK) {
            s->failed = true;
            log_event(s->app->log, LOG_ERROR, "speech.failed",
                      (struct log_field[]){LOG_STR("req", s->req), LOG_STR("error", err.msg),
                                           LOG_END});
        }
    }
    size_t n = s->len - s->off;
    if (n == 0)
        return s->failed ? -1 : 0; /* cut the chunked body short: the client sees an error */
    if (n > max)
        n = max;
    memcpy(out, s->buf + s->off, n);
    s->off += n;
    s->sent += (int64_t)n;
    return (long)n;
}

static void speech_done(void *user)
{
    struct speech_reply *s = user;
    bool ok = s->done && !s->failed && s->off == s->len;
    double audio_s = speech_run_audio_s(s->run);
    synth_record(s->app->jobs->synth, ok, audio_s, s->sent);
    synth_release(s->app->jobs->synth);
    if (s->key[0]) /* waiters for the same speech go on: from the file, or one of them makes it */
        speech_cache_finish(s->app->jobs->speech_cache, s->key, s->cache_file, ok && s->cache_ok);
    log_event(s->app->log, ok ? LOG_INFO : LOG_WARN, "speech.done",
              (struct log_field[]){LOG_STR("req", s->req), LOG_STR("voice", s->voice),
                                   LOG_STR("format", s->format), LOG_F64("audio_s", audio_s),
                                   LOG_I64("bytes", s->sent), LOG_F64("s", sd_mono_s() - s->t0),
                                   LOG_BOOL("complete", ok), LOG_END});
    speech_run_destroy(s->run);
    free(s->buf);
    free(s);
}

static void bad_request(struct http_request *r, const char *param, const char *msg)
{
    http_reply_error(r, SD_EINVAL, msg, param);
}

/* A string member or NULL; false (after answering 400) when it is there but not a string. */
static bool string_member(struct http_request *r, json_t *body, const char *key, const char **out,
                          size_t *len)
{
    json_t *v = json_object_get(body, key);
    *out = NULL;
    if (!v || json_is_null(v))
        return true;
    if (!json_is_string(v)) {
        char msg[96];
        snprintf(msg, sizeof(msg), "'%s' must be a string", key);
        bad_request(r, key, msg);
        return false;
    }
    *out = json_string_value(v);
    if (len)
        *len = json_string_length(v);
    return true;
}

struct file_reply {
    int fd;
};

static long file_read(void *user, char *out, size_t max)
{
    struct file_reply *f = user;
    ssize_t n = read(f->fd, out, max);
    return n > 0 ? (long)n : n == 0 ? 0 : -1;
}

static void file_done(void *user)
{
    struct file_reply *f = user;
    close(f->fd);
    free(f);
}

/*
 * The cache's answer, if it has one: 304 for a matching If-None-Match, the
 * file for a fresh entry. Otherwise *producer says whether this request makes
 * the entry (key is then the caller's to finish). True when answered.
 */
static bool answer_from_cache(struct http_request *r, struct speech_cache *c,
                              const struct speech_params *sp, const char *key, bool *producer)
{
    char etag[SPEECH_KEY_HEX + 2], max_age[48];
    snprintf(etag, sizeof(etag), "\"%s\"", key);
    snprintf(max_age, sizeof(max_age), "private, max-age=%d", speech_cache_ttl_s(c));
    const char *inm = http_header(r, "If-None-Match");
    *producer = false;
    if (inm && strcmp(inm, etag) == 0) {
        http_reply_body(r, 304, tts_format_mime(sp->format), NULL, 0);
        return true;
    }
    int fd;
    int64_t size;
    struct sd_error err = {0};
    if (speech_cache_get(c, key, &fd, &size, producer, SPEECH_SLOT_WAIT_MS, &err) != SD_OK) {
        http_reply_error(r, err.code, err.msg, NULL);
        return true;
    }
    if (fd < 0)
        return false;
    struct file_reply *f = malloc(sizeof(*f));
    if (!f) {
        close(fd);
        http_reply_error(r, SD_ENOMEM, "out of memory", NULL);
        return true;
    }
    f->fd = fd;
    const char *headers[] = {"ETag", etag, "Cache-Control", max_age, "X-Cache", "hit", NULL};
    http_reply_stream_headers(r, 200, tts_format_mime(sp->format), headers, file_read, file_done,
                              f);
    return true;
}

void route_speech(struct http_request *r)
{
    struct app *a = http_app(r);
    size_t n;
    const char *text = http_body(r, &n);
    json_error_t jerr;
    /* NULs inside strings are allowed here so the input check can name them */
    json_t *body = json_loadb(text, n, JSON_ALLOW_NUL, &jerr);
    if (!body || !json_is_object(body)) {
        json_decref(body);
        /* jansson refuses invalid UTF-8 anywhere; the text to speak is where it comes from */
        bool utf8 = false;
        for (size_t i = 0; i < n;) {
            uint32_t cp;
            size_t k = sd_utf8_char((const uint8_t *)text + i, n - i, &cp);
            if (k == 0) {
                utf8 = true;
                break;
            }
            i += k;
        }
        if (utf8)
            bad_request(r, "input", "input is not valid UTF-8");
        else
            bad_request(r, NULL, "the body must be a JSON object (Content-Type: application/json)");
        return;
    }
    const char *model, *input, *voice, *format, *ignored;
    size_t input_len = 0;
    if (!string_member(r, body, "model", &model, NULL) ||
        !string_member(r, body, "input", &input, &input_len) ||
        !string_member(r, body, "voice", &voice, NULL) ||
        !string_member(r, body, "response_format", &format, NULL) ||
        !string_member(r, body, "instructions", &ignored, NULL)) {
        json_decref(body);
        return;
    }
    json_t *jspeed = json_object_get(body, "speed");
    double speed = 1.0;
    if (jspeed && !json_is_null(jspeed)) {
        if (!json_is_number(jspeed)) {
            json_decref(body);
            bad_request(r, "speed", "'speed' must be a number between 0.25 and 4.0");
            return;
        }
        speed = json_number_value(jspeed);
    }
    if (model && !known_model(model)) {
        json_decref(body);
        bad_request(r, "model",
                    "unknown speech model; use tts-1, tts-1-hd, flite, espeak-ng or a voice id");
        return;
    }
    /* a voice id given as the model picks the voice when none is named */
    if (!voice && model && strchr(model, '-') && tts_voice_find(model))
        voice = model;
    struct speech_params sp;
    char param[SPEECH_PARAM_MAX];
    struct sd_error err = {0};
    if (!input) {
        json_decref(body);
        bad_request(r, "input", "'input' is required");
        return;
    }
    if (speech_params_check(input, input_len, voice, format, speed, &sp, param, &err) != SD_OK) {
        json_decref(body);
        http_reply_error(r, err.code, err.msg, param[0] ? param : NULL);
        return;
    }
    if (atomic_load(&a->draining)) {
        json_decref(body);
        http_reply_condition(r, HTTP_COND_UNAVAILABLE, "the service is shutting down");
        return;
    }
    char msg[3000];
    if (!pipeline_wait_ready(a->jobs->pipeline, &a->jobs->stop)) {
        json_decref(body);
        pipeline_status(a->jobs->pipeline, msg, sizeof(msg));
        http_reply_condition(r, HTTP_COND_UNAVAILABLE, msg[0] ? msg : "the engines did not load");
        return;
    }
    struct tts *engine = pipeline_engine(a->jobs->pipeline, PIPELINE_TTS);
    struct speech_cache *cache = a->jobs->speech_cache;
    char key[SPEECH_KEY_HEX] = "";
    bool producer = false;
    if (cache) {
        speech_cache_key(tts_version(engine), sp.voice->id, tts_format_name(sp.format), sp.speed,
                         input, input_len, key);
        if (answer_from_cache(r, cache, &sp, key, &producer)) {
            json_decref(body);
            return;
        }
    }
    if (synth_acquire(a->jobs->synth, SPEECH_SLOT_WAIT_MS, &err) != SD_OK) {
        if (producer)
            speech_cache_finish(cache, key, NULL, false);
        json_decref(body);
        http_reply_error(r, err.code, err.msg, NULL);
        return;
    }
    struct speech_reply *s = calloc(1, sizeof(*s));
    enum sd_err rc = s ? SD_OK : sd_fail(&err, SD_ENOMEM, "speech reply");
    if (rc == SD_OK) {
        s->app = a;
        s->t0 = sd_mono_s();
        s->voice = sp.voice->id;
        s->format = tts_format_name(sp.format);
        snprintf(s->req, sizeof(s->req), "%s", http_request_id(r));
        if (producer) {
            snprintf(s->key, sizeof(s->key), "%s", key);
            s->cache_file = speech_cache_create(cache, key);
            s->cache_ok = s->cache_file != NULL;
        }
        rc = speech_run_start(engine, input, input_len, &sp, to_buffer, s, &s->run, &err);
    }
    json_decref(body);
    if (rc != SD_OK) {
        synth_release(a->jobs->synth);
        if (producer)
            speech_cache_finish(cache, key, s ? s->cache_file : NULL, false);
        if (s)
            free(s->buf);
        free(s);
        http_reply_error(r, err.code, err.msg, NULL);
        return;
    }
    char etag[SPEECH_KEY_HEX + 2], max_age[48];
    snprintf(etag, sizeof(etag), "\"%s\"", key);
    snprintf(max_age, sizeof(max_age), "private, max-age=%d", cache ? speech_cache_ttl_s(cache) : 0);
    const char *headers[] = {"ETag", etag, "Cache-Control", max_age, "X-Cache", "miss", NULL};
    http_reply_stream_headers(r, 200, tts_format_mime(sp.format), cache ? headers : NULL,
                              speech_read, speech_done, s);
}

static json_t *openai_names(const struct tts_voice *v)
{
    json_t *names = json_array();
    const char *name;
    const struct tts_voice *to;
    for (size_t k = 0; tts_openai_voice_at(k, &name, &to); k++)
        if (to == v)
            json_array_append_new(names, json_string(name));
    return names;
}

void route_voices(struct http_request *r)
{
    struct app *a = http_app(r);
    struct tts *engine = pipeline_engine(a->jobs->pipeline, PIPELINE_TTS);
    json_t *data = json_array();
    for (size_t i = 0; i < tts_voice_count(); i++) {
        const struct tts_voice *v = tts_voice_at(i);
        json_t *names = openai_names(v);
        json_t *first = json_array_size(names) ? json_incref(json_array_get(names, 0)) : json_null();
        json_array_append_new(
            data, json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:i, s:o, s:o, s:b}", "id", v->id,
                            "object", "voice", "language", v->language, "engine",
                            tts_engine_name(v->engine), "gender", v->gender, "description",
                            v->description, "sample_rate", tts_voice_rate(engine, v),
                            "output_sample_rate", TTS_OUT_RATE, "openai_name", first,
                            "openai_names", names, "default",
                            strcmp(v->id, TTS_DEFAULT_VOICE) == 0));
    }
    http_reply_json(r, 200, json_pack("{s:s, s:o}", "object", "list", "data", data));
}

/* When this binary was installed: the speech models and voices are built into it. */
static json_int_t built_in_created(void)
{
    struct stat st;
    return stat("/proc/self/exe", &st) == 0 ? (json_int_t)st.st_mtime : 1;
}

void route_speech_models(json_t *data)
{
    json_int_t created = built_in_created();
    for (size_t i = 0; i < N_SPEECH_MODELS; i++)
        json_array_append_new(data, json_pack("{s:s, s:s, s:I, s:s, s:s}", "id", speech_models[i],
                                              "object", "model", "created", created, "owned_by",
                                              "scribed", "type", "speech"));
    for (size_t i = 0; i < tts_voice_count(); i++)
        json_array_append_new(data, json_pack("{s:s, s:s, s:I, s:s, s:s}", "id",
                                              tts_voice_at(i)->id, "object", "model", "created",
                                              created, "owned_by", "scribed", "type", "voice"));
}

char *route_speech_metrics(struct http_request *r)
{
    struct synth_stats st;
    synth_stats(http_app(r)->jobs->synth, &st);
    struct speech_cache_stats cs = {0};
    if (http_app(r)->jobs->speech_cache)
        speech_cache_stats(http_app(r)->jobs->speech_cache, &cs);
    char *out = NULL;
    if (asprintf(&out,
                 "# HELP scribed_speech_slots Speech syntheses that may run at once.\n"
                 "# TYPE scribed_speech_slots gauge\nscribed_speech_slots %d\n"
                 "# HELP scribed_speech_running Speech syntheses running now.\n"
                 "# TYPE scribed_speech_running gauge\nscribed_speech_running %lld\n"
                 "# HELP scribed_speech_waiting Speech requests waiting for a slot.\n"
                 "# TYPE scribed_speech_waiting gauge\nscribed_speech_waiting %lld\n"
                 "# HELP scribed_speech_requests_total Speech syntheses by outcome.\n"
                 "# TYPE scribed_speech_requests_total counter\n"
                 "scribed_speech_requests_total{outcome=\"ok\"} %lld\n"
                 "scribed_speech_requests_total{outcome=\"failed\"} %lld\n"
                 "# HELP scribed_speech_audio_seconds_total Seconds of speech synthesised.\n"
                 "# TYPE scribed_speech_audio_seconds_total counter\n"
                 "scribed_speech_audio_seconds_total %.3f\n"
                 "# HELP scribed_speech_bytes_total Encoded speech bytes sent.\n"
                 "# TYPE scribed_speech_bytes_total counter\nscribed_speech_bytes_total %lld\n"
                 "# HELP scribed_speech_cache_requests_total Speech requests by cache outcome.\n"
                 "# TYPE scribed_speech_cache_requests_total counter\n"
                 "scribed_speech_cache_requests_total{result=\"hit\"} %lld\n"
                 "scribed_speech_cache_requests_total{result=\"miss\"} %lld\n"
                 "# HELP scribed_speech_cache_evictions_total Cached speech files removed (expired or over the cap).\n"
                 "# TYPE scribed_speech_cache_evictions_total counter\n"
                 "scribed_speech_cache_evictions_total %lld\n"
                 "# HELP scribed_speech_cache_bytes Bytes of speech in the cache.\n"
                 "# TYPE scribed_speech_cache_bytes gauge\nscribed_speech_cache_bytes %lld\n"
                 "# HELP scribed_speech_cache_files Files in the speech cache.\n"
                 "# TYPE scribed_speech_cache_files gauge\nscribed_speech_cache_files %lld\n",
                 st.slots, (long long)st.running, (long long)st.waiting, (long long)st.done,
                 (long long)st.failed, st.audio_s, (long long)st.bytes, (long long)cs.hits,
                 (long long)cs.misses, (long long)cs.evictions, (long long)cs.stored_bytes,
                 (long long)cs.files) < 0)
        return NULL;
    return out;
}

/*
 * route_realtime.c - GET /v1/realtime: live transcription over a WebSocket.
 * Two dialects on one endpoint:
 *  - scribed's own (default): a JSON config text frame, then binary PCM;
 *    {"type":"end"} or the bytes END_OF_AUDIO finish. Server messages:
 *    ready, segments ({id,start,end,text,final}), error, done, and
 *    extraction (after done) when the config or the end asked for one
 *    ("extract": template, or "extract_schema").
 *  - OpenAI Realtime transcription (?intent=transcription): session.update,
 *    input_audio_buffer.append/commit/clear in; speech_started/stopped,
 *    committed, ...input_audio_transcription.delta/.completed out.
 * The session runs on the connection's own thread (MHD thread per
 * connection): socket I/O, PCM conversion and the VAD. Decodes are jobs on
 * the shared queue (realtime/decode.h); this thread only polls them.
 * Policy (utterances, partials, finals) is realtime/stream.h's.
 * Fair share: while auth is on, one principal holds at most
 * --realtime-streams-per-key streams, and only audio keeps a stream from
 * its idle timeout (a client sending text messages alone cannot hold a slot).
 */
#include <math.h>
#include <nettle/base64.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "llm/schema.h"
#include "realtime/decode.h"
#include "realtime/pcm.h"
#include "realtime/stream.h"
#include "server/app.h"
#include "server/ratelimit.h"
#include "server/routes.h"
#include "server/ws.h"
#include "util/clock.h"

struct rt_limits {
    int max_streams;
    int per_key;                 /* streams one principal may hold; 0: no limit */
    double idle_s, max_session_s, max_backlog_s;
    size_t max_msg_bytes, max_out_bytes;
};

static struct rt_limits limits_for(const struct app *a)
{
    int def = a->n_workers * 4 > 8 ? a->n_workers * 4 : 8;
    return (struct rt_limits){
        .max_streams = a->cfg.realtime_max_streams > 0 ? (int)a->cfg.realtime_max_streams : def,
        .per_key = (int)a->cfg.realtime_streams_per_key,
        .idle_s = (double)a->cfg.realtime_idle_s,
        .max_session_s = (double)a->cfg.realtime_max_session_s,
        .max_backlog_s = (double)a->cfg.realtime_max_backlog_s,
        .max_msg_bytes = 4u << 20,
        .max_out_bytes = 8u << 20,
    };
}

struct session {
    struct app *a;
    struct rt_limits lim;
    char id[64];
    bool openai;
    char language[16], model[64];
    struct ws_conn *ws;
    bool full, configured, ending, closing, quit, done_sent;
    bool key_full;               /* the caller already holds lim.per_key streams */
    char slot[80];               /* the principal whose per-key slot this holds; "" none */
    struct stt_params jp;        /* every decode of the session runs with these */
    struct stt_params xp;        /* only the extraction fields: the end's, not each decode's */
    struct rt_params rp;
    enum rt_pcm_format fmt;
    int rate;
    const struct vad_model *vad; /* the app's, shared */
    struct rt_pcm *pcm;
    struct rt_stream *st;
    struct rt_decode *dec;
    json_t *finals;            /* final segments so far, for "done" */
    json_t *partial;           /* the utterance in progress, or NULL */
    char *sent_delta;          /* openai: text already sent as deltas for the current item */
    int64_t audio_samples;
    double t_start, t_closing;
    double t_last_audio;         /* idle timeout: only audio (or pausing reads) resets it */
};

/* ---- sending ---- */

static void send_json(struct session *s, json_t *o)
{
    size_t flags = JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10);
    char *txt = o ? json_dumps(o, flags) : NULL;
    json_decref(o);
    struct sd_error err = {0};
    if (!txt || ws_conn_send_text(s->ws, txt, strlen(txt), &err) != SD_OK)
        s->quit = s->quit || !txt;
    free(txt);
}

/* An error message; fatal ones close the connection with code. */
static void send_error(struct session *s, const char *code, const char *msg, uint16_t close)
{
    if (s->openai)
        send_json(s, json_pack("{s:s, s:{s:s, s:s, s:s, s:n}}", "type", "error", "error", "type",
                               "invalid_request_error", "code", code, "message", msg, "param"));
    else
        send_json(s, json_pack("{s:s, s:s, s:s}", "type", "error", "code", code, "message", msg));
    if (close) {
        ws_conn_close(s->ws, close, msg);
        s->closing = true;
    }
}

static json_t *segment_json(const struct rt_event *ev, bool final)
{
    /* microseconds: start * 16000 rounds back to the exact sample of the span */
    return json_pack("{s:I, s:f, s:f, s:s, s:b}", "id", (json_int_t)ev->utt_id, "start",
                     round((double)ev->start / RT_SAMPLE_RATE * 1e6) / 1e6, "end",
                     round((double)ev->end / RT_SAMPLE_RATE * 1e6) / 1e6, "text",
                     ev->text ? ev->text : "", "final", final);
}

static void send_segments(struct session *s, json_t *final_seg)
{
    json_t *arr = json_array();
    if (final_seg)
        json_array_append(arr, final_seg);
    if (s->partial)
        json_array_append(arr, s->partial);
    send_json(s, json_pack("{s:s, s:o}", "type", "segments", "segments", arr));
}

static void item_id(const struct session *s, int64_t utt, char *buf, size_t n)
{
    snprintf(buf, n, "item_%.24s_%lld", s->id + (strncmp(s->id, "req_", 4) == 0 ? 4 : 0),
             (long long)utt);
}

static void on_event_openai(struct session *s, const struct rt_event *ev)
{
    char item[64], prev[64];
    item_id(s, ev->utt_id, item, sizeof(item));
    int ms_start = (int)(ev->start * 1000 / RT_SAMPLE_RATE);
    /* without server VAD (turn_detection null) OpenAI reports commits, not speech */
    bool vad = s->rp.use_vad && s->vad;
    switch (ev->type) {
    case RT_EV_SPEECH_STARTED:
        free(s->sent_delta);
        s->sent_delta = NULL;
        if (vad)
            send_json(s, json_pack("{s:s, s:i, s:s}", "type",
                                   "input_audio_buffer.speech_started", "audio_start_ms",
                                   ms_start, "item_id", item));
        break;
    case RT_EV_SPEECH_STOPPED:
        if (vad)
            send_json(s, json_pack("{s:s, s:i, s:s}", "type", "input_audio_buffer.speech_stopped",
                                   "audio_end_ms", (int)(ev->end * 1000 / RT_SAMPLE_RATE),
                                   "item_id", item));
        if (ev->utt_id > 0)
            item_id(s, ev->utt_id - 1, prev, sizeof(prev));
        send_json(s, json_pack("{s:s, s:o, s:s}", "type", "input_audio_buffer.committed",
                               "previous_item_id",
                               ev->utt_id > 0 ? json_string(prev) : json_null(), "item_id",
                               item));
        break;
    case RT_EV_PARTIAL: {
        /* deltas only append: send the new tail when the text grew from what was sent */
        size_t sent = s->sent_delta ? strlen(s->sent_delta) : 0;
        if (strncmp(ev->text, s->sent_delta ? s->sent_delta : "", sent) != 0 ||
            strlen(ev->text) == sent)
            break;
        const char *tail = ev->text + sent;
        send_json(s, json_pack("{s:s, s:s, s:i, s:s}", "type",
                               "conversation.item.input_audio_transcription.delta", "item_id",
                               item, "content_index", 0, "delta", tail));
        free(s->sent_delta);
        s->sent_delta = strdup(ev->text);
        break;
    }
    case RT_EV_FINAL:
        send_json(s, json_pack("{s:s, s:s, s:i, s:s}", "type",
                               "conversation.item.input_audio_transcription.completed",
                               "item_id", item, "content_index", 0, "transcript", ev->text));
        json_array_append_new(s->finals, segment_json(ev, true));
        break;
    case RT_EV_DISCARDED:
        break;
    }
}

static void on_event(void *user, const struct rt_event *ev)
{
    struct session *s = user;
    if (s->openai) {
        on_event_openai(s, ev);
        return;
    }
    switch (ev->type) {
    case RT_EV_PARTIAL:
        json_decref(s->partial);
        s->partial = segment_json(ev, false);
        send_segments(s, NULL);
        break;
    case RT_EV_FINAL: {
        json_t *seg = segment_json(ev, true);
        if (s->partial && json_integer_value(json_object_get(s->partial, "id")) == ev->utt_id) {
            json_decref(s->partial);
            s->partial = NULL;
        }
        send_segments(s, seg);
        json_array_append_new(s->finals, seg);
        break;
    }
    case RT_EV_DISCARDED:
        json_decref(s->partial);
        s->partial = NULL;
        break;
    default:
        break;
    }
}

/* The whole session's final text, segments joined by spaces (malloc'd; NULL on ENOMEM). */
static char *session_text(const struct session *s)
{
    size_t cap = 1, len = 0, i;
    json_t *seg;
    json_array_foreach(s->finals, i, seg)
        cap += strlen(json_string_value(json_object_get(seg, "text"))) + 1;
    char *text = malloc(cap);
    if (text) {
        text[0] = '\0';
        json_array_foreach(s->finals, i, seg) {
            const char *t = json_string_value(json_object_get(seg, "text"));
            if (!*t)
                continue;
            len += (size_t)sprintf(text + len, "%s%s", len ? " " : "", t);
        }
    }
    return text;
}

static void send_done(struct session *s)
{
    char *text = session_text(s);
    send_json(s, json_pack("{s:s, s:s, s:O, s:f}", "type", "done", "text", text ? text : "",
                           "segments", s->finals, "duration",
                           (double)s->audio_samples / RT_SAMPLE_RATE));
    /*
     * The extraction the client asked for, of the whole session's text, as the
     * last message before the close: this thread waits for the LLM (bounded
     * by --llm-timeout and the retries, cut short by a drain); the decodes
     * are all done by now.
     */
    if (jobs_wants_extraction(&s->xp)) {
        json_t *rec = jobs_extract(s->a->jobs, s->id, &s->xp, text ? text : "",
                                   &s->a->draining); /* SIGTERM does not wait for the LLM */
        if (rec) {
            json_object_set_new(rec, "type", json_string("extraction"));
            send_json(s, rec);
        }
    }
    free(text);
    s->done_sent = true;
}

/* ---- configuration ---- */

static enum sd_err open_stream(struct session *s, struct sd_error *err)
{
    rt_stream_destroy(s->st);
    s->st = NULL;
    rt_pcm_free(s->pcm);
    s->pcm = NULL;
    enum sd_err rc = rt_pcm_new(s->fmt, s->rate, &s->pcm, err);
    if (rc == SD_OK)
        rc = rt_stream_create(&s->rp, s->vad, on_event, s, &s->st, err);
    return rc;
}

static enum sd_err vad_options(struct session *s, json_t *v, struct sd_error *err)
{
    if (json_is_boolean(v)) {
        s->rp.use_vad = json_is_true(v);
        return SD_OK;
    }
    if (!json_is_object(v))
        return sd_fail(err, SD_EINVAL, "vad must be an object or a boolean");
    json_t *x;
    if ((x = json_object_get(v, "enabled")) && json_is_boolean(x))
        s->rp.use_vad = json_is_true(x);
    if ((x = json_object_get(v, "threshold")))
        s->rp.vad.threshold = (float)json_number_value(x);
    if ((x = json_object_get(v, "min_silence_ms")) ||
        (x = json_object_get(v, "silence_duration_ms")))
        s->rp.vad.min_silence_ms = (int)json_number_value(x);
    if ((x = json_object_get(v, "speech_pad_ms")) || (x = json_object_get(v, "prefix_padding_ms")))
        s->rp.vad.speech_pad_ms = (int)json_number_value(x);
    if ((x = json_object_get(v, "min_speech_ms")))
        s->rp.vad.min_speech_ms = (int)json_number_value(x);
    if ((x = json_object_get(v, "max_speech_s")))
        s->rp.max_utterance_s = json_number_value(x);
    return rt_params_check(&s->rp, err);
}

static enum sd_err set_language(struct session *s, json_t *v, struct sd_error *err)
{
    if (!v || json_is_null(v))
        return SD_OK;
    const char *l = json_string_value(v), *param = NULL;
    if (!l)
        return sd_fail(err, SD_EINVAL, "language must be a language code");
    enum sd_err rc = param_set_text(&stt_param_table, &s->jp, STT_P_language, l, "language", err);
    return rc == SD_OK ? stt_params_check(&s->jp, &param, err) : rc;
}

/*
 * The extraction a session asks for: "extract" (a template's name) or
 * "extract_schema" (an object, when the operator allows inline schemas) with
 * "extract_instructions"; in the config or in the closing {"type":"end"}.
 */
static enum sd_err extraction_options(struct session *s, json_t *o, struct sd_error *err)
{
    json_t *name = json_object_get(o, "extract"), *schema = json_object_get(o, "extract_schema");
    json_t *ins = json_object_get(o, "extract_instructions");
    if ((!name || json_is_null(name)) && (!schema || json_is_null(schema)))
        return SD_OK;
    const struct app *a = s->a;
    if (!a->llm)
        return sd_fail(err, SD_EINVAL, "structured extraction is not configured on this server");
    if (ins && !json_is_string(ins))
        return sd_fail(err, SD_EINVAL, "extract_instructions must be a string");
    if (schema && !json_is_null(schema)) {
        if (!a->cfg.extraction_allow_inline)
            return sd_fail(err, SD_EINVAL, "this server does not accept inline schemas; use "
                                           "extract with a template's name");
        if (schema_check(schema, err) != SD_OK)
            return err->code;
        char *text = json_dumps(schema, JSON_COMPACT);
        enum sd_err rc = text ? param_set_text(&stt_param_table, &s->xp, STT_P_extract_schema,
                                               text, "extract_schema", err)
                              : sd_fail(err, SD_ENOMEM, "extract_schema");
        free(text);
        if (rc == SD_OK && ins)
            rc = param_set_text(&stt_param_table, &s->xp, STT_P_extract_instructions,
                                json_string_value(ins), "extract_instructions", err);
        return rc;
    }
    if (!json_is_string(name) || !llm_templates_find(&a->templates, json_string_value(name)))
        return sd_fail(err, SD_EINVAL, "extract: no extraction template of this name (GET "
                                       "/v1/extraction/templates lists them)");
    return param_set_text(&stt_param_table, &s->xp, STT_P_extract, json_string_value(name),
                          "extract", err);
}

/* The native dialect's first text frame. */
static enum sd_err parse_config(struct session *s, json_t *o, struct sd_error *err)
{
    json_t *v;
    if (!json_is_object(o))
        return sd_fail(err, SD_EINVAL, "the first message must be a JSON config object");
    if ((v = json_object_get(o, "type")) &&
        !(json_is_string(v) && strcmp(json_string_value(v), "config") == 0))
        return sd_fail(err, SD_EINVAL, "the first message must be the config, not a %s message",
                       json_is_string(v) ? json_string_value(v) : "typed");
    if (set_language(s, json_object_get(o, "language"), err) != SD_OK)
        return err->code;
    if ((v = json_object_get(o, "task"))) {
        const char *t = json_string_value(v);
        if (!t || param_set_text(&stt_param_table, &s->jp, STT_P_task, t, "task", err) != SD_OK)
            return sd_fail(err, SD_EINVAL, "task must be transcribe or translate");
    }
    if ((v = json_object_get(o, "model")) && !json_is_string(v))
        return sd_fail(err, SD_EINVAL, "model must be a string");
    if ((v = json_object_get(o, "sample_rate"))) {
        if (!json_is_integer(v) || json_integer_value(v) < RT_PCM_MIN_RATE ||
            json_integer_value(v) > RT_PCM_MAX_RATE)
            return sd_fail(err, SD_EINVAL, "sample_rate must be an integer %d..%d",
                           RT_PCM_MIN_RATE, RT_PCM_MAX_RATE);
        s->rate = (int)json_integer_value(v);
    }
    if ((v = json_object_get(o, "format"))) {
        const char *f = json_string_value(v);
        if (f && strcmp(f, "pcm_s16le") == 0)
            s->fmt = RT_PCM_S16LE;
        else if (f && strcmp(f, "pcm_f32le") == 0)
            s->fmt = RT_PCM_F32LE;
        else
            return sd_fail(err, SD_EINVAL, "format must be pcm_s16le or pcm_f32le");
    }
    if ((v = json_object_get(o, "use_vad")) && json_is_boolean(v))
        s->rp.use_vad = json_is_true(v);
    if ((v = json_object_get(o, "vad")) && vad_options(s, v, err) != SD_OK)
        return err->code;
    if (extraction_options(s, o, err) != SD_OK)
        return err->code;
    return open_stream(s, err);
}

/* ---- audio ---- */

static void feed(struct session *s, const void *bytes, size_t n, bool flush)
{
    float *pcm = NULL;
    size_t np = 0;
    struct sd_error err = {0};
    enum sd_err rc = flush ? rt_pcm_flush(s->pcm, &pcm, &np, &err)
                           : rt_pcm_push(s->pcm, bytes, n, &pcm, &np, &err);
    if (!flush && n > 0)
        s->t_last_audio = sd_mono_s();
    if (rc == SD_OK && np) {
        s->audio_samples += (int64_t)np;
        rc = rt_stream_feed(s->st, pcm, np, &err);
    }
    free(pcm);
    if (rc != SD_OK)
        send_error(s, "internal_error", err.msg, WS_CLOSE_INTERNAL);
}

static void finish_audio(struct session *s)
{
    if (s->ending)
        return;
    s->ending = true;
    feed(s, NULL, 0, true);
    rt_stream_finish(s->st);
}

/* ---- OpenAI dialect ---- */

static json_t *openai_session(const struct session *s)
{
    json_t *td = s->rp.use_vad && s->vad
                     ? json_pack("{s:s, s:f, s:i, s:i}", "type", "server_vad", "threshold",
                                 (double)s->rp.vad.threshold, "prefix_padding_ms",
                                 s->rp.vad.speech_pad_ms, "silence_duration_ms",
                                 s->rp.vad.min_silence_ms)
                     : json_null();
    return json_pack("{s:s, s:s, s:s, s:{s:s, s:s}, s:o}", "id", s->id, "object",
                     "realtime.transcription_session", "input_audio_format", "pcm16",
                     "input_audio_transcription", "model", s->model, "language",
                     s->jp.language ? s->jp.language : "", "turn_detection", td);
}

static void openai_update(struct session *s, const char *type, json_t *o)
{
    struct sd_error err = {0};
    json_t *sess = json_object_get(o, "session");
    if (!json_is_object(sess)) {
        send_error(s, "invalid_value", "session must be an object", 0);
        return;
    }
    if (s->audio_samples > 0) {
        send_error(s, "invalid_value", "the session can only be updated before any audio", 0);
        return;
    }
    json_t *tr = json_object_get(sess, "input_audio_transcription");
    json_t *fmt = json_object_get(sess, "input_audio_format");
    if (fmt && !(json_is_string(fmt) && strcmp(json_string_value(fmt), "pcm16") == 0)) {
        send_error(s, "invalid_value", "input_audio_format must be pcm16", 0);
        return;
    }
    if (json_is_object(tr)) {
        json_t *m = json_object_get(tr, "model");
        if (json_is_string(m))
            snprintf(s->model, sizeof(s->model), "%s", json_string_value(m));
        if (set_language(s, json_object_get(tr, "language"), &err) != SD_OK) {
            send_error(s, "invalid_value", err.msg, 0);
            return;
        }
    }
    json_t *td = json_object_get(sess, "turn_detection");
    if (td && json_is_null(td))
        s->rp.use_vad = false;
    else if (json_is_object(td) && (s->rp.use_vad = true, vad_options(s, td, &err) != SD_OK)) {
        send_error(s, "invalid_value", err.msg, 0);
        return;
    }
    if (open_stream(s, &err) != SD_OK) {
        send_error(s, "invalid_value", err.msg, WS_CLOSE_POLICY);
        return;
    }
    const char *reply = strcmp(type, "session.update") == 0 ? "session.updated"
                                                             : "transcription_session.updated";
    send_json(s, json_pack("{s:s, s:o}", "type", reply, "session", openai_session(s)));
}

static void openai_append(struct session *s, json_t *o)
{
    const char *b64 = json_string_value(json_object_get(o, "audio"));
    if (!b64) {
        send_error(s, "invalid_value", "input_audio_buffer.append needs audio (base64 PCM16)", 0);
        return;
    }
    size_t n = strlen(b64);
    uint8_t *bytes = malloc(BASE64_DECODE_LENGTH(n) + 1);
    struct base64_decode_ctx ctx;
    size_t out_n = BASE64_DECODE_LENGTH(n);
    base64_decode_init(&ctx);
    if (!bytes || !base64_decode_update(&ctx, &out_n, bytes, n, b64) ||
        !base64_decode_final(&ctx)) {
        free(bytes);
        send_error(s, "invalid_value", "audio is not valid base64", 0);
        return;
    }
    feed(s, bytes, out_n, false);
    free(bytes);
}

static void openai_message(struct session *s, json_t *o)
{
    const char *type = json_string_value(json_object_get(o, "type"));
    if (!type) {
        send_error(s, "invalid_value", "every event needs a type", 0);
    } else if (strcmp(type, "session.update") == 0 ||
               strcmp(type, "transcription_session.update") == 0) {
        openai_update(s, type, o);
    } else if (strcmp(type, "input_audio_buffer.append") == 0) {
        if (!s->ending)
            openai_append(s, o);
    } else if (strcmp(type, "input_audio_buffer.commit") == 0) {
        feed(s, NULL, 0, true);
        double before = rt_stream_backlog_s(s->st);
        rt_stream_commit(s->st);
        if (before <= 0)
            send_error(s, "input_audio_buffer_commit_empty", "the audio buffer is empty", 0);
    } else if (strcmp(type, "input_audio_buffer.clear") == 0) {
        rt_stream_clear(s->st);
        send_json(s, json_pack("{s:s}", "type", "input_audio_buffer.cleared"));
    } else if (strcmp(type, "end") == 0) {
        finish_audio(s);
    } else {
        char msg[160];
        snprintf(msg, sizeof(msg), "unsupported event type %.100s", type);
        send_error(s, "unsupported_event", msg, 0);
    }
}

/* ---- messages ---- */

static void on_text(void *user, const char *msg, size_t n)
{
    struct session *s = user;
    if (s->closing)
        return;
    if (!s->openai && n == 12 && memcmp(msg, "END_OF_AUDIO", 12) == 0 && s->configured) {
        finish_audio(s);
        return;
    }
    json_error_t jerr;
    json_t *o = json_loadb(msg, n, JSON_REJECT_DUPLICATES, &jerr);
    struct sd_error err = {0};
    if (!o) {
        char m[256];
        snprintf(m, sizeof(m), "not valid JSON: %s", jerr.text);
        send_error(s, "invalid_json", m, s->configured ? 0 : WS_CLOSE_POLICY);
    } else if (s->openai) {
        openai_message(s, o);
    } else if (!s->configured) {
        if (parse_config(s, o, &err) != SD_OK) {
            send_error(s, "invalid_config", err.msg, WS_CLOSE_POLICY);
        } else {
            s->configured = true;
            send_json(s, json_pack("{s:s, s:s, s:s, s:b, s:i}", "type", "ready", "id", s->id,
                                   "model", pipeline_model_name(s->a->jobs->pipeline), "vad",
                                   s->rp.use_vad && s->vad, "sample_rate", s->rate));
        }
    } else {
        const char *type = json_string_value(json_object_get(o, "type"));
        if (type && strcmp(type, "end") == 0) {
            if (extraction_options(s, o, &err) != SD_OK)
                send_error(s, "invalid_value", err.msg, 0); /* the transcript still comes */
            finish_audio(s);
        } else
            send_error(s, "unsupported_message",
                       "after the config only {\"type\":\"end\"} and binary audio are expected",
                       0);
    }
    json_decref(o);
}

static void on_binary(void *user, const uint8_t *msg, size_t n)
{
    struct session *s = user;
    if (s->closing || s->ending)
        return;
    if (s->openai) {
        send_error(s, "unsupported_event", "send audio as input_audio_buffer.append events", 0);
        return;
    }
    if (!s->configured) {
        send_error(s, "no_config", "send the JSON config before any audio", WS_CLOSE_POLICY);
        return;
    }
    if (n == 12 && memcmp(msg, "END_OF_AUDIO", 12) == 0) {
        finish_audio(s);
        return;
    }
    feed(s, msg, n, false);
}

/* ---- the session loop ---- */

/* Collects a finished decode and starts the next one if the stream has one due. */
static void pump_decodes(struct session *s)
{
    char *text = NULL;
    struct sd_error err = {0};
    if (s->dec && rt_decode_poll(s->dec, 0, &text, &err)) {
        rt_decode_free(s->dec);
        s->dec = NULL;
        rt_stream_decoded(s->st, text);
        free(text);
    }
    struct rt_decode_req req;
    if (s->dec || !s->st || s->closing || !jobq_has_room(s->a->jobs->q))
        return;
    if (!rt_stream_next_decode(s->st, &req))
        return;
    /*
     * Live decodes put latency first: one temperature, and at most 8 tokens plus
     * 6 per second of speech (people say 2-4 tokens a second), which also cuts
     * any repetition loop short. File jobs keep the full fallback.
     */
    int max_tokens = 8 + (int)(6.0 * (double)req.n / 16000.0);
    STT_SET(&s->jp, no_fallback, true);
    STT_SET(&s->jp, max_tokens, max_tokens < 224 ? max_tokens : 224);
    if (rt_decode_start(s->a->jobs, &s->jp, req.pcm, req.n, &s->dec, &err) != SD_OK) {
        s->dec = NULL;
        rt_stream_decoded(s->st, NULL); /* a partial is skipped; a final is retried */
    }
}

/* Session-level limits; true when the session should stop reading audio. */
static bool check_limits(struct session *s, double now)
{
    if (atomic_load(&s->a->draining)) {
        send_error(s, "shutting_down", "the service is shutting down", WS_CLOSE_GOING_AWAY);
        return true;
    }
    if (!s->ending && now - s->t_last_audio > s->lim.idle_s) {
        send_error(s, "idle_timeout", "no audio for too long; closing", WS_CLOSE_NORMAL);
        return true;
    }
    if (!s->ending && now - s->t_start > s->lim.max_session_s && s->st) {
        send_error(s, "session_too_long", "the maximum session time was reached", 0);
        finish_audio(s);
    }
    if (ws_conn_queued_bytes(s->ws) > s->lim.max_out_bytes) {
        /* the client does not read what it is sent */
        ws_conn_close(s->ws, WS_CLOSE_POLICY, "the client is not reading");
        s->closing = true;
        return true;
    }
    return s->st && rt_stream_backlog_s(s->st) > s->lim.max_backlog_s;
}

static void session_loop(struct session *s)
{
    struct sd_error err = {0};
    while (!s->quit) {
        double now = sd_mono_s();
        if (s->st && !s->closing)
            pump_decodes(s);
        if (s->ending && !s->closing && s->st && rt_stream_done(s->st) && !s->done_sent) {
            send_done(s);
            ws_conn_close(s->ws, WS_CLOSE_NORMAL, "done");
            s->closing = true;
        }
        bool paused = s->closing ? false : check_limits(s, now);
        if (paused)
            s->t_last_audio = now; /* not reading is our choice, not the client's idleness */
        if (s->closing && s->t_closing == 0)
            s->t_closing = now;
        /* a close handshake gets 2 s once our close is out, 5 s in all (a client not reading) */
        if (s->closing && ((ws_conn_close_sent(s->ws) && !ws_conn_want_write(s->ws) &&
                            (ws_conn_close_received(s->ws) || now - s->t_closing > 2.0)) ||
                           now - s->t_closing > 5.0))
            break;
        struct pollfd p = {.fd = ws_conn_fd(s->ws)};
        if (ws_conn_want_read(s->ws) && !paused)
            p.events |= POLLIN;
        if (ws_conn_want_write(s->ws))
            p.events |= POLLOUT;
        if (!p.events && s->closing)
            break;
        int r = poll(&p, 1, s->dec ? 10 : 100);
        if (r > 0 && (p.revents & (POLLIN | POLLHUP | POLLERR)) &&
            ws_conn_read(s->ws, &err) != SD_OK)
            break;
        if (ws_conn_want_write(s->ws) && ws_conn_flush(s->ws, &err) != SD_OK)
            break;
        if (s->closing && !ws_conn_want_read(s->ws) && !ws_conn_want_write(s->ws))
            break;
    }
}

static void session_free(struct session *s)
{
    if (!s)
        return;
    rt_decode_free(s->dec);
    rt_stream_destroy(s->st);
    rt_pcm_free(s->pcm);
    ws_conn_free(s->ws);
    json_decref(s->finals);
    json_decref(s->partial);
    free(s->sent_delta);
    stt_params_clear(&s->jp);
    stt_params_clear(&s->xp);
    free(s);
}

static void drop_session(void *user)
{
    struct session *s = user;
    struct app *a = s->a;
    if (s->slot[0])
        rl_slot_release(a->rt_by_key, s->slot);
    session_free(s);
    atomic_fetch_sub(&a->n_realtime, 1);
}

static void run_session(void *user, int fd, const char *extra, size_t n_extra, void *handle)
{
    struct session *s = user;
    struct sd_error err = {0};
    struct ws_handlers h = {on_text, on_binary};
    s->t_start = s->t_last_audio = sd_mono_s();
    if (ws_conn_new(fd, extra, n_extra, s->lim.max_msg_bytes, &h, s, &s->ws, &err) == SD_OK) {
        log_event(s->a->log, LOG_INFO, "realtime.open",
                  (struct log_field[]){LOG_STR("req", s->id), LOG_BOOL("openai", s->openai),
                                       LOG_END});
        if (s->full) {
            char m[160];
            snprintf(m, sizeof(m), "the server is full (%d live streams); try again later",
                     s->lim.max_streams);
            send_error(s, "server_full", m, WS_CLOSE_TRY_AGAIN);
        } else if (s->key_full) {
            char m[160];
            snprintf(m, sizeof(m), "this API key already has %d live streams open; close one "
                                   "or try again later", s->lim.per_key);
            send_error(s, "too_many_streams", m, WS_CLOSE_TRY_AGAIN);
        } else if (s->openai) {
            if (open_stream(s, &err) == SD_OK)
                send_json(s, json_pack("{s:s, s:o}", "type", "transcription_session.created",
                                       "session", openai_session(s)));
            else
                send_error(s, "internal_error", err.msg, WS_CLOSE_INTERNAL);
        }
        session_loop(s);
        log_event(s->a->log, LOG_INFO, "realtime.close",
                  (struct log_field[]){LOG_STR("req", s->id),
                                       LOG_F64("audio_s", (double)s->audio_samples / 16000.0),
                                       LOG_I64("finals", (int64_t)json_array_size(s->finals)),
                                       LOG_F64("s", sd_mono_s() - s->t_start), LOG_END});
    }
    drop_session(s);
    http_upgrade_close(handle);
}

/* ---- the route ---- */

static bool header_has_token(const char *v, const char *token)
{
    size_t n = strlen(token);
    for (const char *p = v; p && *p;) {
        while (*p == ' ' || *p == ',')
            p++;
        if (strncasecmp(p, token, n) == 0 && (p[n] == '\0' || p[n] == ',' || p[n] == ' '))
            return true;
        p = strchr(p, ',');
    }
    return false;
}

void route_realtime(struct http_request *r)
{
    struct app *a = http_app(r);
    const char *up = http_header(r, "Upgrade");
    const char *key = http_header(r, "Sec-WebSocket-Key");
    const char *ver = http_header(r, "Sec-WebSocket-Version");
    char accept[32], msg[3000];
    /* authentication (Bearer, X-API-Key, or ?api_key= on upgrades) and rate limits were
       decided by the gate in http.c before this handler runs */
    if (!up || strcasecmp(up, "websocket") != 0 ||
        !header_has_token(http_header(r, "Connection"), "upgrade")) {
        http_reply_json(r, 426, errors_body("GET /v1/realtime is a WebSocket endpoint: connect "
                                            "with Upgrade: websocket",
                                            "invalid_request_error", NULL, "upgrade_required"));
        return;
    }
    if (!ver || strcmp(ver, "13") != 0 || !ws_accept_key(key, accept)) {
        http_reply_error(r, SD_EINVAL, "bad WebSocket handshake (Sec-WebSocket-Key/Version 13)",
                         NULL);
        return;
    }
    if (atomic_load(&a->draining)) {
        http_reply_condition(r, HTTP_COND_UNAVAILABLE, "the service is shutting down");
        return;
    }
    /* a live stream decodes on the node that holds its socket: it needs workers here */
    if (a->n_workers == 0) {
        http_reply_error(r, SD_EUNSUPPORTED,
                         "this node is API-only (--workers 0): open /v1/realtime on a node"
                         " with workers",
                         NULL);
        return;
    }
    if (pipeline_status(a->jobs->pipeline, msg, sizeof(msg)) != PIPELINE_READY) {
        http_reply_condition(r, HTTP_COND_UNAVAILABLE, "the model is not loaded");
        return;
    }
    struct session *s = calloc(1, sizeof(*s));
    if (!s) {
        http_reply_error(r, SD_ENOMEM, "out of memory", NULL);
        return;
    }
    s->a = a;
    s->lim = limits_for(a);
    snprintf(s->id, sizeof(s->id), "%s", http_request_id(r));
    const char *intent = http_query(r, "intent");
    s->openai = intent && strcmp(intent, "transcription") == 0;
    stt_params_init(&s->jp);
    stt_params_init(&s->xp);
    STT_SET(&s->jp, beam_size, 1);      /* greedy: the latency budget has no room for 5 beams */
    STT_SET(&s->jp, vad_filter, false); /* the span is already one VAD utterance */
    s->rp = rt_params_default();
    s->fmt = RT_PCM_S16LE;
    s->rate = s->openai ? 24000 : RT_SAMPLE_RATE;
    s->finals = json_array();
    const char *q;
    snprintf(s->model, sizeof(s->model), "%s", (q = http_query(r, "model")) ? q : "whisper-1");
    struct sd_error err = {0};
    const char *param = NULL;
    if ((q = http_query(r, "language")) && *q &&
        (param_set_text(&stt_param_table, &s->jp, STT_P_language, q, "language", &err) != SD_OK ||
         stt_params_check(&s->jp, &param, &err) != SD_OK)) {
        session_free(s);
        http_reply_error(r, err.code, err.msg, "language");
        return;
    }
    s->vad = a->rt_vad; /* shared, read-only; NULL: live streams go on without VAD */
    /* full: the client still gets the 101, then a clear message and 1013 */
    bool full = atomic_fetch_add(&a->n_realtime, 1) >= s->lim.max_streams;
    s->full = full;
    /* auth off: one tenant, the server-wide cap alone applies */
    const char *who = http_principal(r);
    if (!full && who[0] && s->lim.per_key > 0) {
        if (rl_slot_acquire(a->rt_by_key, who, s->lim.per_key))
            snprintf(s->slot, sizeof(s->slot), "%s", who);
        else
            s->key_full = true;
    }
    static const char *const hdr_names[] = {"Upgrade", "Connection", "Sec-WebSocket-Accept"};
    const char *headers[] = {hdr_names[0], "websocket", hdr_names[1], "Upgrade", hdr_names[2],
                             accept, NULL, NULL};
    http_reply_upgrade(r, headers, run_session, drop_session, s);
}

/*
 * client.c - the LLM client of llm.h: request bodies for both protocols,
 * one libcurl easy handle per request, retries with backoff, a counting
 * semaphore for the concurrency cap, and reading the answers (object and
 * token usage) from both response shapes.
 */
#include "llm/llm.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "util/clock.h"

#define RETRY_AFTER_MAX_S 60
#define ERROR_TEXT_MAX 200

struct llm_client {
    char *url;                  /* base, no trailing '/' */
    char *model;
    char *api_key;
    struct llm_opts o;          /* strings above; these pointers are not used */
    pthread_mutex_t mu;         /* guards in_flight */
    pthread_cond_t cv;
    int in_flight;
    atomic_int reachable;       /* see llm_client_reachable */
};

bool llm_protocol_parse(const char *name, enum llm_protocol *out)
{
    if (name && strcmp(name, "openai") == 0)
        *out = LLM_OPENAI;
    else if (name && strcmp(name, "anthropic") == 0)
        *out = LLM_ANTHROPIC;
    else
        return false;
    return true;
}

const char *llm_protocol_name(enum llm_protocol p)
{
    return p == LLM_ANTHROPIC ? "anthropic" : "openai";
}

enum sd_err llm_client_create(const struct llm_opts *o, struct llm_client **out,
                              struct sd_error *err)
{
    *out = NULL;
    if (!o->url || (strncmp(o->url, "http://", 7) != 0 && strncmp(o->url, "https://", 8) != 0))
        return sd_fail(err, SD_EINVAL, "--llm-url must be an http(s) URL such as "
                                       "https://api.openai.com/v1");
    if (!o->model || !*o->model)
        return sd_fail(err, SD_EINVAL, "--llm-model is required with --llm-url");
    struct llm_client *c = calloc(1, sizeof(*c));
    if (!c)
        return sd_fail(err, SD_ENOMEM, "llm client");
    c->o = *o;
    c->url = strdup(o->url);
    c->model = strdup(o->model);
    c->api_key = strdup(o->api_key ? o->api_key : "");
    if (!c->url || !c->model || !c->api_key) {
        llm_client_destroy(c);
        return sd_fail(err, SD_ENOMEM, "llm client");
    }
    size_t n = strlen(c->url);
    while (n > 0 && c->url[n - 1] == '/')
        c->url[--n] = '\0';
    if (c->o.concurrency < 1)
        c->o.concurrency = 1;
    if (c->o.max_response_bytes == 0)
        c->o.max_response_bytes = 1 << 20;
    if (c->o.max_tokens < 1)
        c->o.max_tokens = 4096;
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    atomic_init(&c->reachable, -1);
    *out = c;
    return SD_OK;
}

void llm_client_destroy(struct llm_client *c)
{
    if (!c)
        return;
    if (c->api_key) /* the secret does not linger in freed memory */
        memset(c->api_key, 0, strlen(c->api_key));
    free(c->api_key);
    free(c->url);
    free(c->model);
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
    free(c);
}

enum llm_protocol llm_client_protocol(const struct llm_client *c)
{
    return c->o.protocol;
}

const char *llm_client_model(const struct llm_client *c)
{
    return c->model;
}

int llm_client_reachable(const struct llm_client *c)
{
    return atomic_load(&((struct llm_client *)c)->reachable);
}

/* ---- request bodies ------------------------------------------------------ */

static json_t *openai_body(const struct llm_client *c, const char *system,
                           const struct llm_message *msgs, int n, const char *name,
                           const json_t *schema)
{
    json_t *m = json_array();
    json_array_append_new(m, json_pack("{s:s, s:s}", "role", "system", "content", system));
    for (int i = 0; i < n; i++)
        json_array_append_new(m, json_pack("{s:s, s:s}", "role", msgs[i].role, "content",
                                           msgs[i].content));
    return json_pack("{s:s, s:o, s:{s:s, s:{s:s, s:O, s:b}}}", "model", c->model, "messages", m,
                     "response_format", "type", "json_schema", "json_schema", "name", name,
                     "schema", schema, "strict", 1);
}

static json_t *anthropic_body(const struct llm_client *c, const char *system,
                              const struct llm_message *msgs, int n, const char *name,
                              const json_t *schema)
{
    json_t *m = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(m, json_pack("{s:s, s:s}", "role", msgs[i].role, "content",
                                           msgs[i].content));
    return json_pack("{s:s, s:i, s:s, s:o, s:[{s:s, s:s, s:O}], s:{s:s, s:s}}", "model",
                     c->model, "max_tokens", c->o.max_tokens, "system", system, "messages", m,
                     "tools", "name", name, "description",
                     "Record the data extracted from the transcript.", "input_schema", schema,
                     "tool_choice", "type", "tool", "name", name);
}

/* ---- one HTTP request ---------------------------------------------------- */

struct response {
    char *body;
    size_t len, cap, max;
    bool too_big;
    long retry_after_s;         /* -1: none */
};

static size_t on_body(char *p, size_t size, size_t n, void *user)
{
    struct response *r = user;
    size_t add = size * n;
    if (r->len + add > r->max) {
        r->too_big = true;
        return 0; /* curl stops with CURLE_WRITE_ERROR */
    }
    if (r->len + add + 1 > r->cap) {
        size_t cap = (r->len + add + 1) * 2;
        if (cap > r->max + 1)
            cap = r->max + 1;
        char *b = realloc(r->body, cap);
        if (!b)
            return 0;
        r->body = b;
        r->cap = cap;
    }
    memcpy(r->body + r->len, p, add);
    r->len += add;
    r->body[r->len] = '\0';
    return add;
}

static size_t on_header(char *p, size_t size, size_t n, void *user)
{
    struct response *r = user;
    size_t len = size * n;
    static const char name[] = "retry-after:";
    if (len > sizeof(name) - 1 && strncasecmp(p, name, sizeof(name) - 1) == 0) {
        char v[32];
        size_t vl = len - (sizeof(name) - 1);
        if (vl >= sizeof(v))
            vl = sizeof(v) - 1;
        memcpy(v, p + sizeof(name) - 1, vl);
        v[vl] = '\0';
        char *end = NULL;
        long s = strtol(v, &end, 10);
        /* an HTTP date instead of seconds is not honoured: the backoff applies */
        if (end != v && s >= 0)
            r->retry_after_s = s;
    }
    return len;
}

/* The provider's error text (error.message in both APIs), cut short, never holding the key. */
static void provider_message(const struct llm_client *c, const struct response *r, char *out,
                             size_t n)
{
    out[0] = '\0';
    json_t *o = r->body ? json_loadb(r->body, r->len, 0, NULL) : NULL;
    const char *m = json_string_value(json_object_get(json_object_get(o, "error"), "message"));
    if (m)
        snprintf(out, n < ERROR_TEXT_MAX ? n : ERROR_TEXT_MAX, "%s", m);
    json_decref(o);
    size_t kl = strlen(c->api_key);
    char *hit;
    while (kl >= 4 && (hit = strstr(out, c->api_key)) != NULL)
        memset(hit, '*', kl);
}

enum attempt { ATTEMPT_OK, ATTEMPT_RETRY, ATTEMPT_FAIL };

static bool cancelled(const atomic_bool *cancel)
{
    return cancel && atomic_load(cancel);
}

/* curl calls this about once a second and on every transfer step: nonzero aborts. */
static int on_progress(void *user, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    (void)dt, (void)dn, (void)ut, (void)un;
    return cancelled(user) ? 1 : 0;
}

/* One POST. Fills *resp and *status; tells whether to retry. */
static enum attempt post_once(struct llm_client *c, const char *url, const char *body,
                              const atomic_bool *cancel, struct response *resp, long *status,
                              enum sd_err *code, char *why, size_t why_n)
{
    CURL *h = curl_easy_init();
    struct curl_slist *hd = NULL;
    char auth[1200];
    *status = 0;
    if (!h) {
        *code = SD_ENOMEM;
        snprintf(why, why_n, "out of memory");
        return ATTEMPT_FAIL;
    }
    hd = curl_slist_append(hd, "Content-Type: application/json");
    hd = curl_slist_append(hd, "User-Agent: scribed");
    hd = curl_slist_append(hd, "Expect:"); /* a long transcript is no reason to wait for 100 */
    if (c->o.protocol == LLM_ANTHROPIC) {
        hd = curl_slist_append(hd, "anthropic-version: 2023-06-01");
        if (*c->api_key) {
            snprintf(auth, sizeof(auth), "x-api-key: %s", c->api_key);
            hd = curl_slist_append(hd, auth);
        }
    } else if (*c->api_key) {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", c->api_key);
        hd = curl_slist_append(hd, auth);
    }
    memset(auth, 0, sizeof(auth));
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, (long)c->o.timeout_s);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, (long)c->o.connect_timeout_s);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, resp);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, resp);
    if (cancel) {
        curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
        curl_easy_setopt(h, CURLOPT_XFERINFODATA, (void *)cancel);
        curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    }
    CURLcode cc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
    curl_off_t connected_us = 0;
    curl_easy_getinfo(h, CURLINFO_CONNECT_TIME_T, &connected_us);
    curl_easy_cleanup(h);
    curl_slist_free_all(hd); /* holds the key: freed right away */
    if (resp->too_big) {
        atomic_store(&c->reachable, 1);
        *code = SD_ETOOBIG;
        snprintf(why, why_n, "the model's answer is larger than %zu bytes", c->o.max_response_bytes);
        return ATTEMPT_FAIL;
    }
    if (cc == CURLE_ABORTED_BY_CALLBACK) {
        *code = SD_ECANCELLED;
        snprintf(why, why_n, "the extraction was cancelled");
        return ATTEMPT_FAIL;
    }
    if (cc != CURLE_OK) {
        atomic_store(&c->reachable, 0);
        if (cc == CURLE_OPERATION_TIMEDOUT && connected_us == 0) {
            *code = SD_EIO;
            snprintf(why, why_n, "connecting to the LLM API timed out");
            return ATTEMPT_RETRY;
        }
        if (cc == CURLE_OPERATION_TIMEDOUT) {
            *code = SD_ETIMEOUT;
            snprintf(why, why_n, "the LLM API did not answer within %d s", c->o.timeout_s);
            return ATTEMPT_FAIL;
        }
        *code = SD_EIO;
        snprintf(why, why_n, "the LLM API could not be reached: %s", curl_easy_strerror(cc));
        return ATTEMPT_RETRY;
    }
    atomic_store(&c->reachable, 1);
    if (*status >= 200 && *status < 300)
        return ATTEMPT_OK;
    char pm[ERROR_TEXT_MAX];
    provider_message(c, resp, pm, sizeof(pm));
    snprintf(why, why_n, "the LLM API answered HTTP %ld%s%s", *status, *pm ? ": " : "", pm);
    if (*status == 429) {
        *code = SD_EBUSY;
        return ATTEMPT_RETRY;
    }
    if (*status >= 500) {
        *code = SD_EIO;
        return ATTEMPT_RETRY;
    }
    *code = *status == 401 || *status == 403 ? SD_EAUTH : SD_EINVAL;
    return ATTEMPT_FAIL;
}

/* Sleeps ms in slices of 100 ms; false if cancelled meanwhile. */
static bool sleep_ms(long ms, const atomic_bool *cancel)
{
    while (ms > 0 && !cancelled(cancel)) {
        long step = ms < 100 ? ms : 100;
        struct timespec ts = {0, step * 1000000L};
        while (nanosleep(&ts, &ts) != 0)
            ;
        ms -= step;
    }
    return !cancelled(cancel);
}

/* Waits for one of the concurrency cap's slots; false if cancelled first. */
static bool slot_take(struct llm_client *c, const atomic_bool *cancel)
{
    pthread_mutex_lock(&c->mu);
    while (c->in_flight >= c->o.concurrency && !cancelled(cancel)) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += 100000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&c->cv, &c->mu, &until);
    }
    bool ok = !cancelled(cancel);
    if (ok)
        c->in_flight++;
    pthread_mutex_unlock(&c->mu);
    return ok;
}

static void slot_give(struct llm_client *c)
{
    pthread_mutex_lock(&c->mu);
    c->in_flight--;
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

/* POSTs body with retries; on SD_OK *resp holds a 2xx answer (caller frees resp->body). */
static enum sd_err post(struct llm_client *c, const char *url, const char *body,
                        const atomic_bool *cancel, struct response *resp, struct llm_stats *st,
                        struct sd_error *err)
{
    char why[400] = "";
    enum sd_err code = SD_EIO;
    for (int attempt = 0;; attempt++) {
        *resp = (struct response){.max = c->o.max_response_bytes, .retry_after_s = -1};
        long status = 0;
        if (!slot_take(c, cancel))
            return sd_fail(err, SD_ECANCELLED, "the extraction was cancelled");
        double t0 = sd_mono_s();
        enum attempt a = post_once(c, url, body, cancel, resp, &status, &code, why, sizeof(why));
        st->seconds += sd_mono_s() - t0;
        slot_give(c);
        st->requests++;
        if (a == ATTEMPT_OK)
            return SD_OK;
        st->failures++;
        long retry_after = resp->retry_after_s;
        free(resp->body);
        resp->body = NULL;
        if (a == ATTEMPT_FAIL || attempt >= c->o.max_retries)
            break;
        long wait_ms = (long)c->o.retry_backoff_ms << (attempt < 16 ? attempt : 16);
        if (retry_after >= 0)
            wait_ms = (retry_after < RETRY_AFTER_MAX_S ? retry_after : RETRY_AFTER_MAX_S) * 1000L;
        if (!sleep_ms(wait_ms, cancel))
            return sd_fail(err, SD_ECANCELLED, "the extraction was cancelled");
    }
    return sd_fail(err, code, "%s", why);
}

/* ---- answers ------------------------------------------------------------- */

static void read_usage(const json_t *o, struct llm_stats *st)
{
    const json_t *u = json_object_get(o, "usage");
    /* OpenAI: prompt_tokens/completion_tokens; Anthropic: input_tokens/output_tokens */
    const json_t *in = json_object_get(u, "prompt_tokens");
    const json_t *out = json_object_get(u, "completion_tokens");
    if (!in)
        in = json_object_get(u, "input_tokens");
    if (!out)
        out = json_object_get(u, "output_tokens");
    st->input_tokens += json_integer_value(in);
    st->output_tokens += json_integer_value(out);
}

/* The answer's object: from message content (OpenAI) or the tool_use block (Anthropic). */
static enum sd_err read_answer(const struct llm_client *c, const json_t *o, const char *tool,
                               json_t **out, char **raw, struct sd_error *err)
{
    if (c->o.protocol == LLM_OPENAI) {
        const json_t *msg = json_object_get(json_array_get(json_object_get(o, "choices"), 0),
                                            "message");
        const char *refusal = json_string_value(json_object_get(msg, "refusal"));
        if (refusal)
            return sd_fail(err, SD_EFORMAT, "the model refused to answer");
        const char *text = json_string_value(json_object_get(msg, "content"));
        if (!text)
            return sd_fail(err, SD_EFORMAT, "the LLM API's answer has no message content");
        *raw = strdup(text);
        /* jansson's parse errors quote the text: they are not passed on (a transcript's words) */
        json_t *v = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
        if (!json_is_object(v)) {
            json_decref(v);
            return sd_fail(err, SD_EFORMAT, "the model's answer is not a JSON object");
        }
        *out = v;
        return SD_OK;
    }
    size_t i;
    const json_t *b;
    json_array_foreach(json_object_get(o, "content"), i, b)
    {
        const char *type = json_string_value(json_object_get(b, "type"));
        const char *name = json_string_value(json_object_get(b, "name"));
        json_t *input = json_object_get(b, "input");
        if (type && strcmp(type, "tool_use") == 0 && name && strcmp(name, tool) == 0) {
            if (!json_is_object(input))
                return sd_fail(err, SD_EFORMAT, "the model's tool input is not an object");
            *raw = json_dumps(input, JSON_COMPACT);
            *out = json_incref(input);
            return SD_OK;
        }
    }
    return sd_fail(err, SD_EFORMAT, "the LLM API's answer has no tool_use block for '%s'", tool);
}

enum sd_err llm_structured(struct llm_client *c, const char *system,
                           const struct llm_message *msgs, int n_msgs, const char *schema_name,
                           const json_t *schema, const atomic_bool *cancel, json_t **out,
                           char **raw, struct llm_stats *st, struct sd_error *err)
{
    char url[2100];
    *out = NULL;
    *raw = NULL;
    json_t *b = c->o.protocol == LLM_ANTHROPIC
                    ? anthropic_body(c, system, msgs, n_msgs, schema_name, schema)
                    : openai_body(c, system, msgs, n_msgs, schema_name, schema);
    char *body = b ? json_dumps(b, JSON_COMPACT) : NULL;
    json_decref(b);
    if (!body)
        return sd_fail(err, SD_ENOMEM, "building the LLM request");
    snprintf(url, sizeof(url), "%s/%s", c->url,
             c->o.protocol == LLM_ANTHROPIC ? "messages" : "chat/completions");
    struct response resp;
    enum sd_err rc = post(c, url, body, cancel, &resp, st, err);
    free(body);
    if (rc != SD_OK)
        return rc;
    json_error_t je;
    json_t *o = json_loadb(resp.body ? resp.body : "", resp.len, 0, &je);
    free(resp.body);
    if (!json_is_object(o)) {
        json_decref(o);
        st->failures++;
        return sd_fail(err, SD_EFORMAT, "the LLM API's answer is not JSON");
    }
    read_usage(o, st);
    rc = read_answer(c, o, schema_name, out, raw, err);
    json_decref(o);
    return rc;
}

/*
 * callback.c - webhook delivery: when an async job with a callback_url ends,
 * its job object (and result, in the requested format) is POSTed once as
 * JSON. Failures (network error, non-2xx) are retried with exponential
 * backoff up to callback_max_attempts; the state lives in the store, so
 * deliveries pending at a restart resume. One thread, libcurl easy API.
 * On a shared store every node resumes the pending deliveries at start, and
 * each attempt first claims the delivery (store_callback_claim), so one
 * node posts each webhook.
 * It does not follow redirects (a webhook target should answer directly).
 */
#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jobs/service.h"
#include "util/netaddr.h"
#include "util/clock.h"

struct delivery {
    char id[STORE_ID_MAX];
    int attempts;              /* done so far */
    int64_t due_ms;            /* monotonic */
    struct delivery *next;
};

struct callbacks {
    struct jobs *js;
    pthread_t thread;
    pthread_mutex_t mu;        /* guards list and stopping */
    pthread_cond_t cv;
    struct delivery *list;
    bool stopping;
};

void callbacks_push(struct callbacks *cb, const char *id, int attempts_done)
{
    if (!cb)
        return;
    struct delivery *d = calloc(1, sizeof(*d));
    if (!d)
        return; /* stays PENDING in the store; retried after a restart */
    snprintf(d->id, sizeof(d->id), "%s", id);
    d->attempts = attempts_done;
    d->due_ms = sd_mono_ms();
    pthread_mutex_lock(&cb->mu);
    d->next = cb->list;
    cb->list = d;
    pthread_cond_signal(&cb->cv);
    pthread_mutex_unlock(&cb->mu);
}

static size_t discard(char *p, size_t size, size_t n, void *user)
{
    (void)p, (void)user;
    return size * n;
}

/* The JSON body: the job object plus its result in the requested format. */
static char *payload(struct jobs *js, const struct store_job *j)
{
    json_t *o = job_to_json(j);
    if (!o)
        return NULL;
    json_t *req = json_object_get(o, "request");
    const char *fmt = json_string_value(json_object_get(req, "response_format"));
    char *body = NULL, *ct = NULL;
    size_t len = 0;
    if (j->status == JOB_SUCCEEDED &&
        store_result_get(js->store, j->id, fmt ? fmt : "json", &body, &len, &ct, NULL) == SD_OK) {
        json_t *parsed = NULL;
        if (ct && strncmp(ct, "application/json", 16) == 0)
            parsed = json_loadb(body, len, 0, NULL);
        json_object_set_new(o, "result", parsed ? parsed : json_stringn(body, len));
    }
    free(body);
    free(ct);
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return s;
}

/*
 * Every address curl is about to connect to passes here, after DNS: a
 * webhook may only reach the public internet unless the operator allows
 * internal targets, so a caller cannot aim the server at its own network or
 * the cloud metadata service, and DNS tricks (rebinding) cannot either.
 */
static curl_socket_t open_public_socket(void *clientp, curlsocktype purpose,
                                        struct curl_sockaddr *address)
{
    bool *refused = clientp;
    (void)purpose;
    if (!sd_addr_is_public(&address->addr)) {
        *refused = true;
        return CURL_SOCKET_BAD;
    }
    return socket(address->family, address->socktype, address->protocol);
}

/* One POST; true on a 2xx answer. */
static bool post_once(struct jobs *js, const struct store_job *j, long *status, char *why,
                      size_t why_n)
{
    char *body = payload(js, j);
    CURL *c = curl_easy_init();
    struct curl_slist *h = NULL;
    bool ok = false;
    *status = 0;
    if (!body || !c) {
        snprintf(why, why_n, "out of memory");
        goto out;
    }
    h = curl_slist_append(h, "Content-Type: application/json");
    h = curl_slist_append(h, "User-Agent: scribed-webhook");
    curl_easy_setopt(c, CURLOPT_URL, j->callback_url);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)js->o.callback_timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)js->o.callback_timeout_ms);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
    bool refused = false;
    if (!js->o.callback_allow_private) {
        curl_easy_setopt(c, CURLOPT_OPENSOCKETFUNCTION, open_public_socket);
        curl_easy_setopt(c, CURLOPT_OPENSOCKETDATA, &refused);
    }
    CURLcode cc = curl_easy_perform(c);
    if (cc != CURLE_OK) {
        snprintf(why, why_n, "%s", refused ? "the callback address is not public (set "
                                             "SCRIBED_CALLBACK_ALLOW_PRIVATE=1 for internal "
                                             "services)"
                                           : curl_easy_strerror(cc));
        goto out;
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
    ok = *status >= 200 && *status < 300;
    if (!ok)
        snprintf(why, why_n, "HTTP %ld", *status);
out:
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    free(body);
    return ok;
}

static void deliver(struct callbacks *cb, struct delivery *d)
{
    struct jobs *js = cb->js;
    struct store_job j = {0};
    char why[256] = "";
    long status = 0;
    /* held past one attempt and its backoff: another node waits rather than posts twice */
    int hold_ms = js->o.callback_timeout_ms * 2 + js->o.callback_backoff_ms * 4 + 60000;
    if (store_job_get(js->store, d->id, &j, NULL) != SD_OK || !j.callback_url ||
        j.cb_state != STORE_CB_PENDING ||
        store_callback_claim(js->store, d->id, hold_ms, NULL) != SD_OK) {
        store_job_clear(&j);
        free(d);
        return;
    }
    bool ok = post_once(js, &j, &status, why, sizeof(why));
    d->attempts++;
    enum store_cb_state st = ok                                         ? STORE_CB_DELIVERED
                             : d->attempts >= js->o.callback_max_attempts ? STORE_CB_FAILED
                                                                        : STORE_CB_PENDING;
    store_callback_set(js->store, d->id, st, d->attempts, NULL);
    log_event(js->log, ok ? LOG_INFO : LOG_WARN, "callback.attempt",
              (struct log_field[]){LOG_STR("job", d->id), LOG_I64("attempt", d->attempts),
                                   LOG_I64("status", status), LOG_BOOL("delivered", ok),
                                   LOG_STR("error", ok ? NULL : why),
                                   LOG_BOOL("gave_up", st == STORE_CB_FAILED), LOG_END});
    store_job_clear(&j);
    if (st != STORE_CB_PENDING) {
        free(d);
        return;
    }
    int64_t delay = (int64_t)js->o.callback_backoff_ms << (d->attempts - 1 < 16 ? d->attempts - 1 : 16);
    d->due_ms = sd_mono_ms() + delay;
    pthread_mutex_lock(&cb->mu);
    d->next = cb->list;
    cb->list = d;
    pthread_mutex_unlock(&cb->mu);
}

/* Takes the earliest due delivery off the list, or sets *wait_ms (caller holds mu). */
static struct delivery *take_due_locked(struct callbacks *cb, int64_t *wait_ms)
{
    struct delivery **best = NULL;
    for (struct delivery **pp = &cb->list; *pp; pp = &(*pp)->next)
        if (!best || (*pp)->due_ms < (*best)->due_ms)
            best = pp;
    *wait_ms = 60000;
    if (!best)
        return NULL;
    int64_t now = sd_mono_ms();
    if ((*best)->due_ms > now) {
        *wait_ms = (*best)->due_ms - now;
        return NULL;
    }
    struct delivery *d = *best;
    *best = d->next;
    return d;
}

static void *callbacks_main(void *arg)
{
    struct callbacks *cb = arg;
    pthread_mutex_lock(&cb->mu);
    while (!cb->stopping) {
        int64_t wait_ms;
        struct delivery *d = take_due_locked(cb, &wait_ms);
        if (d) {
            pthread_mutex_unlock(&cb->mu);
            deliver(cb, d);
            pthread_mutex_lock(&cb->mu);
            continue;
        }
        struct timespec ts = sd_deadline_ms(CLOCK_MONOTONIC, wait_ms);
        pthread_cond_timedwait(&cb->cv, &cb->mu, &ts);
    }
    pthread_mutex_unlock(&cb->mu);
    return NULL;
}

enum sd_err callbacks_start(struct jobs *js, struct callbacks **out, struct sd_error *err)
{
    struct callbacks *cb = calloc(1, sizeof(*cb));
    if (!cb)
        return sd_fail(err, SD_ENOMEM, "webhooks");
    cb->js = js;
    pthread_mutex_init(&cb->mu, NULL);
    sd_cond_init_monotonic(&cb->cv);
    if (pthread_create(&cb->thread, NULL, callbacks_main, cb) != 0) {
        pthread_cond_destroy(&cb->cv);
        pthread_mutex_destroy(&cb->mu);
        free(cb);
        return sd_fail(err, SD_EINTERNAL, "cannot start the webhook thread");
    }
    *out = cb;
    return SD_OK;
}

void callbacks_stop(struct callbacks *cb)
{
    if (!cb)
        return;
    pthread_mutex_lock(&cb->mu);
    cb->stopping = true;
    pthread_cond_signal(&cb->cv);
    pthread_mutex_unlock(&cb->mu);
    pthread_join(cb->thread, NULL);
    while (cb->list) { /* still PENDING in the store: resumed at the next start */
        struct delivery *d = cb->list;
        cb->list = d->next;
        free(d);
    }
    pthread_cond_destroy(&cb->cv);
    pthread_mutex_destroy(&cb->mu);
    free(cb);
}

/*
 * callback.c - webhook delivery: when an async job with a callback_url ends,
 * its job object (and result, in the requested format, and extraction, if
 * it asked for one) is POSTed once as JSON. Failures (network error,
 * non-2xx) are retried with exponential backoff up to callback_max_attempts; the state lives in the store, so
 * deliveries pending at a restart resume. libcurl easy API, on
 * callback_concurrency threads; at most callback_per_host deliveries to one
 * host at a time, so one tenant's slow endpoint cannot hold everyone's.
 * On a shared store every node resumes the pending deliveries at start, and
 * each attempt first claims the delivery (store_callback_claim), so one
 * node posts each webhook.
 * With a callback_secret each POST is signed the way Stripe and GitHub do:
 * Scribed-Signature: t=UNIX_SECONDS,v1=hex(HMAC-SHA256(secret, "t.BODY")).
 * It does not follow redirects (a webhook target should answer directly).
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <nettle/hmac.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "jobs/service.h"
#include "util/netaddr.h"
#include "util/clock.h"

#define CB_HOST_MAX 256

struct delivery {
    char id[STORE_ID_MAX];
    char host[CB_HOST_MAX];    /* the destination, lowercase ("" if the URL does not parse) */
    int attempts;              /* done so far */
    int64_t due_ms;            /* monotonic */
    struct delivery *next;
};

struct cb_thread {
    struct callbacks *cb;
    pthread_t thread;
    char busy_host[CB_HOST_MAX]; /* what it delivers to now, "" when idle (under cb->mu) */
    char busy_id[STORE_ID_MAX];  /* the job it delivers now, "" when idle (under cb->mu) */
    bool started;
};

struct callbacks {
    struct jobs *js;
    struct cb_thread *threads;
    int n_threads;
    int per_host;
    pthread_mutex_t mu;        /* guards list and every busy_host */
    pthread_cond_t cv;         /* a delivery queued, a host freed, or stopping */
    struct delivery *list;
    atomic_bool stopping;      /* also read by curl's progress callback, without mu */
};

/* The URL's host, lowercase, into out ("" when it does not parse). */
static void url_host(const char *url, char *out, size_t n)
{
    CURLU *u = curl_url();
    char *host = NULL;
    out[0] = '\0';
    if (u && url && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK) {
        size_t i = 0;
        for (; host[i] && i + 1 < n; i++)
            out[i] = (char)tolower((unsigned char)host[i]);
        out[i] = '\0';
    }
    curl_free(host);
    curl_url_cleanup(u);
}

/* True if this node already has job id's delivery queued or in flight (caller holds mu). */
static bool delivery_known_locked(const struct callbacks *cb, const char *id)
{
    for (const struct delivery *d = cb->list; d; d = d->next)
        if (strcmp(d->id, id) == 0)
            return true;
    for (int i = 0; i < cb->n_threads; i++)
        if (strcmp(cb->threads[i].busy_id, id) == 0)
            return true;
    return false;
}

void callbacks_push(struct callbacks *cb, const char *id, const char *url, int attempts_done)
{
    if (!cb)
        return;
    struct delivery *d = calloc(1, sizeof(*d));
    if (!d)
        return; /* stays PENDING in the store; retried after a restart */
    snprintf(d->id, sizeof(d->id), "%s", id);
    url_host(url, d->host, sizeof(d->host));
    d->attempts = attempts_done;
    d->due_ms = sd_mono_ms();
    pthread_mutex_lock(&cb->mu);
    /* one delivery per job on a node: a re-claimed one may be ours already (both would post) */
    if (delivery_known_locked(cb, id)) {
        pthread_mutex_unlock(&cb->mu);
        free(d);
        return;
    }
    d->next = cb->list;
    cb->list = d;
    pthread_cond_broadcast(&cb->cv);
    pthread_mutex_unlock(&cb->mu);
}

/* The signature header of body at unix time t (see the file comment); out holds 128 bytes. */
static void sign(const char *secret, const char *body, int64_t t, char *out, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    char ts[24];
    uint8_t mac[SHA256_DIGEST_SIZE];
    struct hmac_sha256_ctx h;
    int tl = snprintf(ts, sizeof(ts), "%lld.", (long long)t);
    hmac_sha256_set_key(&h, strlen(secret), (const uint8_t *)secret);
    hmac_sha256_update(&h, (size_t)tl, (const uint8_t *)ts);
    hmac_sha256_update(&h, strlen(body), (const uint8_t *)body);
    hmac_sha256_digest(&h, sizeof(mac), mac);
    char mac_hex[2 * SHA256_DIGEST_SIZE + 1];
    for (size_t i = 0; i < sizeof(mac); i++) {
        mac_hex[2 * i] = hex[mac[i] >> 4];
        mac_hex[2 * i + 1] = hex[mac[i] & 15];
    }
    mac_hex[sizeof(mac_hex) - 1] = '\0';
    snprintf(out, n, "Scribed-Signature: t=%lld,v1=%s", (long long)t, mac_hex);
}

static size_t discard(char *p, size_t size, size_t n, void *user)
{
    (void)p, (void)user;
    return size * n;
}

/* The JSON body: the job object plus its result in the requested format and its extraction. */
static char *payload(struct jobs *js, const struct store_job *j)
{
    json_t *o = job_to_json(j);
    if (!o)
        return NULL;
    json_t *req = json_object_get(o, "request");
    const char *fmt = json_string_value(json_object_get(req, "response_format"));
    char *body = NULL, *ct = NULL;
    size_t len = 0;
    /* the job's own result, read under its owner: a payload is only ever about this job */
    if (j->status == JOB_SUCCEEDED &&
        store_result_get(js->store, j->id, j->owner, fmt ? fmt : "json", &body, &len, &ct,
                         NULL) == SD_OK) {
        json_t *parsed = NULL;
        if (ct && strncmp(ct, "application/json", 16) == 0)
            parsed = json_loadb(body, len, 0, NULL);
        json_object_set_new(o, "result", parsed ? parsed : json_stringn(body, len));
    }
    free(body);
    free(ct);
    body = ct = NULL;
    if (j->status == JOB_SUCCEEDED &&
        store_result_get(js->store, j->id, j->owner, "extraction", &body, &len, &ct, NULL) == SD_OK) {
        json_t *ex = json_loadb(body, len, 0, NULL);
        if (ex)
            json_object_set_new(o, "extraction", ex);
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

/* localhost and *.localhost always name this machine (RFC 6761), whatever DNS says. */
static bool names_loopback(const char *host)
{
    size_t n = strlen(host);
    return strcasecmp(host, "localhost") == 0 ||
           (n > 10 && strcasecmp(host + n - 10, ".localhost") == 0);
}

/* True when host is an IP literal (IPv6 in brackets) of an address that is not public. */
static bool literal_not_public(const char *host)
{
    char buf[64];
    size_t n = strlen(host);
    struct sockaddr_in v4 = {.sin_family = AF_INET};
    struct sockaddr_in6 v6 = {.sin6_family = AF_INET6};
    if (inet_pton(AF_INET, host, &v4.sin_addr) == 1)
        return !sd_addr_is_public((const struct sockaddr *)&v4);
    if (n > 2 && n < sizeof(buf) && host[0] == '[' && host[n - 1] == ']') {
        snprintf(buf, sizeof(buf), "%.*s", (int)(n - 2), host + 1);
        char *zone = strchr(buf, '%'); /* fe80::1%eth0: link-local either way */
        if (zone)
            *zone = '\0';
        if (inet_pton(AF_INET6, buf, &v6.sin6_addr) == 1)
            return !sd_addr_is_public((const struct sockaddr *)&v6);
    }
    return false;
}

enum sd_err callbacks_check_url(const struct jobs *js, const char *url, struct sd_error *err)
{
    if (js->o.callback_allow_private)
        return SD_OK;
    CURLU *u = curl_url();
    char *host = NULL;
    enum sd_err rc = SD_OK;
    if (!u)
        return sd_fail(err, SD_ENOMEM, "callback_url: out of memory");
    /* curl's own parser: the host checked is the host curl would connect to */
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || !host) {
        rc = sd_fail(err, SD_EINVAL, "callback_url is not a valid URL");
    } else if (names_loopback(host) || literal_not_public(host)) {
        rc = sd_fail(err, SD_EINVAL,
                     "callback_url: %.100s is not a public address; webhooks reach only the "
                     "public internet unless the server runs with --callback-allow-private 1 "
                     "(SCRIBED_CALLBACK_ALLOW_PRIVATE=1)",
                     host);
    }
    curl_free(host);
    curl_url_cleanup(u);
    return rc;
}

/* One POST; true on a 2xx answer. */
/* curl's progress callback: a POST in flight ends at once when the service stops. */
static int abort_when_stopping(void *user, curl_off_t dt, curl_off_t dn, curl_off_t ut,
                               curl_off_t un)
{
    (void)dt, (void)dn, (void)ut, (void)un;
    return atomic_load((atomic_bool *)user) ? 1 : 0;
}

static bool post_once(struct callbacks *cb, const struct store_job *j, long *status, char *why,
                      size_t why_n)
{
    struct jobs *js = cb->js;
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
    if (js->o.callback_secret && *js->o.callback_secret) {
        char sig[160];
        sign(js->o.callback_secret, body, sd_wall_ms() / 1000, sig, sizeof(sig));
        h = curl_slist_append(h, sig);
    }
    curl_easy_setopt(c, CURLOPT_URL, j->callback_url);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)js->o.callback_timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)js->o.callback_timeout_ms);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, abort_when_stopping);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, &cb->stopping);
    bool refused = false;
    if (!js->o.callback_allow_private) {
        curl_easy_setopt(c, CURLOPT_OPENSOCKETFUNCTION, open_public_socket);
        curl_easy_setopt(c, CURLOPT_OPENSOCKETDATA, &refused);
    }
    CURLcode cc = curl_easy_perform(c);
    if (cc != CURLE_OK) {
        snprintf(why, why_n, "%s", refused ? "the callback address is not public (set "
                                             "--callback-allow-private 1 or "
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

/*
 * How long one claim of a delivery holds: past one attempt and its first
 * backoffs (another node waits rather than posts twice), plus the lease, so
 * a dead node's webhooks move after about the time its jobs do.
 */
static int hold_for(const struct jobs *js)
{
    return js->o.callback_timeout_ms * 2 + js->o.callback_backoff_ms * 4 +
           (js->o.lease_ms > 0 ? js->o.lease_ms : 60000);
}

void callbacks_reclaim(struct callbacks *cb)
{
    struct jobs *js = cb ? cb->js : NULL;
    struct store_job *v = NULL;
    int n = 0;
    struct sd_error err = {0};
    if (!js || store_callbacks_reclaim(js->store, hold_for(js), js->o.lease_ms, &v, &n, &err) !=
                   SD_OK)
        return; /* the database is away: the next beat tries again */
    for (int i = 0; i < n; i++) {
        log_event(js->log, LOG_INFO, "callback.reclaimed",
                  (struct log_field[]){LOG_STR("job", v[i].id),
                                       LOG_I64("attempts_done", v[i].cb_attempts), LOG_END});
        callbacks_push(cb, v[i].id, v[i].callback_url, v[i].cb_attempts);
    }
    store_jobs_free(v, n);
}

static void deliver(struct callbacks *cb, struct delivery *d)
{
    struct jobs *js = cb->js;
    struct store_job j = {0};
    char why[256] = "";
    long status = 0;
    int hold_ms = hold_for(js);
    if (store_job_get(js->store, d->id, NULL, &j, NULL) != SD_OK || !j.callback_url ||
        j.cb_state != STORE_CB_PENDING ||
        store_callback_claim(js->store, d->id, hold_ms, NULL) != SD_OK) {
        store_job_clear(&j);
        free(d);
        return;
    }
    bool ok = post_once(cb, &j, &status, why, sizeof(why));
    if (!ok && atomic_load(&cb->stopping)) {
        /* cut short by the shutdown: not an attempt; still PENDING, resumed at the next start */
        store_job_clear(&j);
        free(d);
        return;
    }
    d->attempts++;
    enum store_cb_state st = ok                                         ? STORE_CB_DELIVERED
                             : d->attempts >= js->o.callback_max_attempts ? STORE_CB_FAILED
                                                                        : STORE_CB_PENDING;
    store_callback_set(js->store, d->id, st, d->attempts, ok ? NULL : why, NULL);
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
    int64_t delay = (int64_t)js->o.callback_backoff_ms
                    << (d->attempts - 1 < 16 ? d->attempts - 1 : 16);
    d->due_ms = sd_mono_ms() + delay;
    pthread_mutex_lock(&cb->mu);
    d->next = cb->list;
    cb->list = d;
    pthread_mutex_unlock(&cb->mu);
}

/* Deliveries to host in progress now (caller holds mu). */
static int host_busy_locked(const struct callbacks *cb, const char *host)
{
    int n = 0;
    for (int i = 0; i < cb->n_threads; i++)
        n += cb->threads[i].busy_host[0] && strcmp(cb->threads[i].busy_host, host) == 0;
    return n;
}

/*
 * Takes the earliest due delivery whose host has a free slot off the list,
 * or sets *wait_ms (caller holds mu). A host at its cap waits for a slot:
 * the thread finishing there broadcasts cv.
 */
static struct delivery *take_due_locked(struct callbacks *cb, int64_t *wait_ms)
{
    struct delivery **best = NULL;
    for (struct delivery **pp = &cb->list; *pp; pp = &(*pp)->next)
        if ((!best || (*pp)->due_ms < (*best)->due_ms) &&
            host_busy_locked(cb, (*pp)->host) < cb->per_host)
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
    struct cb_thread *self = arg;
    struct callbacks *cb = self->cb;
    pthread_mutex_lock(&cb->mu);
    while (!atomic_load(&cb->stopping)) {
        int64_t wait_ms;
        struct delivery *d = take_due_locked(cb, &wait_ms);
        if (d) {
            snprintf(self->busy_host, sizeof(self->busy_host), "%s", d->host);
            snprintf(self->busy_id, sizeof(self->busy_id), "%s", d->id);
            pthread_mutex_unlock(&cb->mu);
            deliver(cb, d);
            pthread_mutex_lock(&cb->mu);
            self->busy_host[0] = '\0';
            self->busy_id[0] = '\0';
            pthread_cond_broadcast(&cb->cv); /* a slot of that host is free again */
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
    atomic_init(&cb->stopping, false);
    cb->n_threads = js->o.callback_concurrency > 0 ? js->o.callback_concurrency : 1;
    cb->per_host = js->o.callback_per_host > 0 ? js->o.callback_per_host : 1;
    cb->threads = calloc((size_t)cb->n_threads, sizeof(*cb->threads));
    if (!cb->threads) {
        free(cb);
        return sd_fail(err, SD_ENOMEM, "webhooks");
    }
    pthread_mutex_init(&cb->mu, NULL);
    sd_cond_init_monotonic(&cb->cv);
    for (int i = 0; i < cb->n_threads; i++) {
        cb->threads[i].cb = cb;
        if (pthread_create(&cb->threads[i].thread, NULL, callbacks_main, &cb->threads[i]) != 0) {
            callbacks_stop(cb);
            return sd_fail(err, SD_EINTERNAL, "cannot start the webhook threads");
        }
        cb->threads[i].started = true;
    }
    *out = cb;
    return SD_OK;
}

void callbacks_stop(struct callbacks *cb)
{
    if (!cb)
        return;
    pthread_mutex_lock(&cb->mu);
    atomic_store(&cb->stopping, true);
    pthread_cond_broadcast(&cb->cv);
    pthread_mutex_unlock(&cb->mu);
    for (int i = 0; i < cb->n_threads; i++)
        if (cb->threads[i].started)
            pthread_join(cb->threads[i].thread, NULL);
    free(cb->threads);
    while (cb->list) { /* still PENDING in the store: resumed at the next start */
        struct delivery *d = cb->list;
        cb->list = d->next;
        free(d);
    }
    pthread_cond_destroy(&cb->cv);
    pthread_mutex_destroy(&cb->mu);
    free(cb);
}

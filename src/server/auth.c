/*
 * auth.c - API keys, JWTs and the admission gate (see auth.h).
 *
 * Keys: AUTH_KEY_PREFIX + 32 random bytes in base64url. The store keeps the
 * SHA-256 of the whole key; a presented key is hashed and compared with
 * every cached hash in constant time (no early exit), so neither the answer
 * time nor a look-up by prefix tells an attacker how close a guess was. The
 * cache reloads from the store at most every refresh_ms, on the request that
 * finds it stale, and writes last-used times back then (never per request).
 *
 * JWTs: HS256 only (the header's alg must say so: "none" and everything else
 * are refused), signature checked in constant time, exp required, nbf honoured,
 * 30 s of clock skew allowed. A token may not live longer than the configured
 * cap (exp - iat, and exp - now: `exp: 1e300` would be a key nobody can
 * revoke); aud and iss are checked when configured. Other claims are not
 * interpreted.
 */
#include "server/auth.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <nettle/hmac.h>
#include <nettle/memops.h>
#include <nettle/sha2.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#include "telemetry/log.h"
#include "server/config.h"
#include "server/http.h"
#include "server/ratelimit.h"
#include "util/clock.h"

#define JWT_SKEW_S 30
#define JWT_MAX_LEN 8192

const char *auth_outcome_name(enum auth_outcome o)
{
    switch (o) {
    case AUTH_OK: return "ok";
    case AUTH_MISSING: return "missing";
    case AUTH_INVALID: return "invalid";
    case AUTH_REVOKED: return "revoked";
    case AUTH_BAD_TOKEN: return "bad_token";
    case AUTH_EXPIRED: return "expired";
    }
    return "invalid";
}

/* ---- encodings and hashes ---- */

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* Unpadded base64url of n bytes into out (4n/3 + 2 bytes suffice). */
static void b64url_encode(const uint8_t *in, size_t n, char *out)
{
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        acc = (acc << 8) | in[i];
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            *out++ = b64url[(acc >> bits) & 63];
        }
    }
    if (bits > 0)
        *out++ = b64url[(acc << (6 - bits)) & 63];
    *out = '\0';
}

/* Unpadded base64url of len chars -> bytes; -1 on a bad character or length. */
static long b64url_decode(const char *in, size_t len, uint8_t *out, size_t cap)
{
    uint32_t acc = 0;
    int bits = 0;
    size_t n = 0;
    if (len % 4 == 1)
        return -1;
    for (size_t i = 0; i < len; i++) {
        const char *p = memchr(b64url, in[i], 64);
        if (!p || in[i] == '\0')
            return -1;
        acc = (acc << 6) | (uint32_t)(p - b64url);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (n >= cap)
                return -1;
            out[n++] = (uint8_t)(acc >> bits);
        }
    }
    return (long)n;
}

static void sha256(const void *data, size_t n, uint8_t out[AUTH_HASH_BYTES])
{
    struct sha256_ctx c;
    sha256_init(&c);
    sha256_update(&c, n, data);
    sha256_digest(&c, AUTH_HASH_BYTES, out);
}

static void to_hex(const uint8_t *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

static bool from_hex(const char *s, uint8_t *out, size_t n)
{
    if (strlen(s) != 2 * n)
        return false;
    for (size_t i = 0; i < 2 * n; i++) {
        char c = s[i];
        int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (v < 0)
            return false;
        out[i / 2] = (uint8_t)(i % 2 ? (out[i / 2] | v) : v << 4);
    }
    return true;
}

void auth_key_hash_hex(const char *key, char hex[2 * AUTH_HASH_BYTES + 1])
{
    uint8_t h[AUTH_HASH_BYTES];
    sha256(key, strlen(key), h);
    to_hex(h, sizeof(h), hex);
}

enum sd_err auth_key_generate(char key[AUTH_KEY_MAX], struct store_key *row, int64_t now_ms,
                              struct sd_error *err)
{
    uint8_t rnd[32], idb[8];
    if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd) ||
        getrandom(idb, sizeof(idb), 0) != (ssize_t)sizeof(idb))
        return sd_fail(err, SD_EIO, "no randomness from the kernel (getrandom)");
    char body[48];
    b64url_encode(rnd, sizeof(rnd), body);
    snprintf(key, AUTH_KEY_MAX, "%s%s", AUTH_KEY_PREFIX, body);
    char idhex[2 * sizeof(idb) + 1];
    to_hex(idb, sizeof(idb), idhex);
    snprintf(row->id, sizeof(row->id), "key_%s", idhex);
    /* the prefix shows 4 of the 43 random characters: enough to tell keys apart */
    snprintf(row->prefix, sizeof(row->prefix), "%s%.4s", AUTH_KEY_PREFIX, body);
    auth_key_hash_hex(key, row->hash_hex);
    row->created_ms = now_ms;
    row->last_used_ms = 0;
    row->revoked_ms = 0;
    explicit_bzero(rnd, sizeof(rnd));
    explicit_bzero(body, sizeof(body));
    return SD_OK;
}

/* ---- JWT (HS256) ---- */

/* The JSON object in one base64url segment; NULL if it is not one. */
static json_t *jwt_segment(const char *s, size_t len)
{
    uint8_t buf[JWT_MAX_LEN];
    long n = b64url_decode(s, len, buf, sizeof(buf));
    if (n <= 0)
        return NULL;
    json_t *o = json_loadb((const char *)buf, (size_t)n, JSON_REJECT_DUPLICATES, NULL);
    if (o && !json_is_object(o)) {
        json_decref(o);
        o = NULL;
    }
    return o;
}

/* aud as RFC 7519 allows it: a string, or an array of strings; true if it names want. */
static bool audience_has(json_t *aud, const char *want)
{
    if (json_is_string(aud))
        return strcmp(json_string_value(aud), want) == 0;
    size_t i;
    json_t *v;
    json_array_foreach(aud, i, v) {
        if (json_is_string(v) && strcmp(json_string_value(v), want) == 0)
            return true;
    }
    return false;
}

/* The lifetime cap and the configured aud / iss; AUTH_OK or AUTH_BAD_TOKEN with *why. */
static enum auth_outcome jwt_rules_check(json_t *claims, const struct auth_jwt_rules *r,
                                         int64_t now_s, const char **why)
{
    double exp = json_number_value(json_object_get(claims, "exp"));
    json_t *iat = json_object_get(claims, "iat");
    if (iat && !json_is_number(iat)) {
        *why = "the token's iat is not a number";
        return AUTH_BAD_TOKEN;
    }
    if (r->max_lifetime_s > 0) {
        double cap = (double)r->max_lifetime_s + JWT_SKEW_S;
        if (exp - (double)now_s > cap || (iat && exp - json_number_value(iat) > cap)) {
            *why = "the token lives longer than this server allows (--jwt-max-lifetime-s)";
            return AUTH_BAD_TOKEN;
        }
    }
    if (iat && json_number_value(iat) > (double)now_s + JWT_SKEW_S) {
        *why = "the token was issued in the future (iat)";
        return AUTH_BAD_TOKEN;
    }
    if (r->audience && *r->audience && !audience_has(json_object_get(claims, "aud"), r->audience)) {
        *why = "the token's aud does not name this server";
        return AUTH_BAD_TOKEN;
    }
    const char *iss = json_string_value(json_object_get(claims, "iss"));
    if (r->issuer && *r->issuer && (!iss || strcmp(iss, r->issuer) != 0)) {
        *why = "the token's iss is not the configured issuer";
        return AUTH_BAD_TOKEN;
    }
    return AUTH_OK;
}

static enum auth_outcome jwt_claims(json_t *claims, const struct auth_jwt_rules *rules,
                                    int64_t now_s, char *sub, size_t sub_n, const char **why)
{
    json_t *exp = json_object_get(claims, "exp"), *nbf = json_object_get(claims, "nbf");
    if (!exp || !json_is_number(exp)) {
        *why = "the token has no exp claim";
        return AUTH_BAD_TOKEN;
    }
    if ((double)now_s > json_number_value(exp) + JWT_SKEW_S) {
        *why = "the token has expired";
        return AUTH_EXPIRED;
    }
    if (nbf && (!json_is_number(nbf) || (double)now_s + JWT_SKEW_S < json_number_value(nbf))) {
        *why = "the token is not valid yet (nbf)";
        return AUTH_EXPIRED;
    }
    if (rules) {
        enum auth_outcome o = jwt_rules_check(claims, rules, now_s, why);
        if (o != AUTH_OK)
            return o;
    }
    const char *s = json_string_value(json_object_get(claims, "sub"));
    if (sub && sub_n) {
        /* only plain characters reach logs and bucket names */
        size_t j = 0;
        for (size_t i = 0; s && s[i] && j + 1 < sub_n && i < 40; i++) {
            char c = s[i];
            bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                         (c >= '0' && c <= '9') || strchr("-_.@:|", c);
            sub[j++] = plain ? c : '_';
        }
        sub[j] = '\0';
        if (j == 0)
            snprintf(sub, sub_n, "-");
    }
    return AUTH_OK;
}

enum auth_outcome auth_jwt_check(const char *secret, size_t secret_len, const char *token,
                                 const struct auth_jwt_rules *rules, int64_t now_s, char *sub,
                                 size_t sub_n, const char **why)
{
    const char *dummy;
    why = why ? why : &dummy;
    *why = "the token is not a JWT (header.payload.signature)";
    size_t len = strnlen(token, JWT_MAX_LEN + 1);
    const char *d1 = memchr(token, '.', len);
    const char *d2 = d1 ? memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - token)) : NULL;
    if (!secret || !secret_len || len > JWT_MAX_LEN || !d1 || !d2 ||
        memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - token)))
        return AUTH_BAD_TOKEN;
    json_t *head = jwt_segment(token, (size_t)(d1 - token));
    const char *alg = json_string_value(json_object_get(head, "alg"));
    bool hs256 = alg && strcmp(alg, "HS256") == 0;
    json_decref(head);
    if (!hs256) {
        *why = "the token's alg must be HS256";
        return AUTH_BAD_TOKEN;
    }
    uint8_t sig[64], mac[SHA256_DIGEST_SIZE];
    long n_sig = b64url_decode(d2 + 1, len - (size_t)(d2 + 1 - token), sig, sizeof(sig));
    struct hmac_sha256_ctx h;
    hmac_sha256_set_key(&h, secret_len, (const uint8_t *)secret);
    hmac_sha256_update(&h, (size_t)(d2 - token), (const uint8_t *)token);
    hmac_sha256_digest(&h, sizeof(mac), mac);
    if (n_sig != (long)sizeof(mac) || !memeql_sec(sig, mac, sizeof(mac))) {
        *why = "the token's signature does not match";
        return AUTH_BAD_TOKEN;
    }
    json_t *claims = jwt_segment(d1 + 1, (size_t)(d2 - d1 - 1));
    if (!claims) {
        *why = "the token's payload is not a JSON object";
        return AUTH_BAD_TOKEN;
    }
    enum auth_outcome o = jwt_claims(claims, rules, now_s, sub, sub_n, why);
    json_decref(claims);
    return o;
}

/* ---- the key cache ---- */

struct cached_key {
    char id[STORE_ID_MAX];
    uint8_t hash[AUTH_HASH_BYTES];
    bool revoked;
    bool admin;        /* sees every tenant's jobs */
    int64_t used_ms;   /* wall time of the last use not yet written to the store; 0: none */
};

struct auth {
    struct store *store;  /* borrowed */
    bool has_static;
    uint8_t static_hash[AUTH_HASH_BYTES];
    char *jwt_secret;
    size_t jwt_len;
    struct auth_jwt_rules jwt_rules; /* audience and issuer: owned copies (or NULL) */
    int refresh_ms;
    pthread_mutex_t mu;   /* guards everything below */
    struct cached_key *keys;
    int n_keys;
    int64_t loaded_ms;    /* monotonic time of the last load */
};


/* Under a->mu: writes pending last-used times. A failure is retried at the next flush. */
static void flush_locked(struct auth *a)
{
    for (int i = 0; a->store && i < a->n_keys; i++) {
        struct sd_error err = {0};
        if (a->keys[i].used_ms &&
            store_key_touch(a->store, a->keys[i].id, a->keys[i].used_ms, &err) == SD_OK)
            a->keys[i].used_ms = 0;
    }
}

/* Under a->mu: reloads the cache; on failure the old one stays. */
static enum sd_err reload_locked(struct auth *a, int64_t now_ms, struct sd_error *err)
{
    a->loaded_ms = now_ms;
    if (!a->store)
        return SD_OK;
    flush_locked(a);
    struct store_key *rows = NULL;
    int n = 0;
    enum sd_err rc = store_key_list(a->store, &rows, &n, err);
    if (rc != SD_OK)
        return rc;
    struct cached_key *keys = calloc(n ? (size_t)n : 1, sizeof(*keys));
    if (!keys) {
        free(rows);
        return sd_fail(err, SD_ENOMEM, "key cache");
    }
    int m = 0;
    for (int i = 0; i < n; i++) {
        if (!from_hex(rows[i].hash_hex, keys[m].hash, AUTH_HASH_BYTES))
            continue; /* a damaged row can never match; skip it */
        snprintf(keys[m].id, sizeof(keys[m].id), "%s", rows[i].id);
        keys[m].revoked = rows[i].revoked_ms != 0;
        keys[m].admin = rows[i].admin;
        for (int j = 0; j < a->n_keys; j++) /* keep uses the flush could not write */
            if (strcmp(a->keys[j].id, keys[m].id) == 0)
                keys[m].used_ms = a->keys[j].used_ms;
        m++;
    }
    free(rows);
    free(a->keys);
    a->keys = keys;
    a->n_keys = m;
    return SD_OK;
}

enum sd_err auth_create(const struct auth_opts *o, struct store *store, struct auth **out,
                        struct sd_error *err)
{
    struct auth *a = calloc(1, sizeof(*a));
    if (!a)
        return sd_fail(err, SD_ENOMEM, "auth");
    pthread_mutex_init(&a->mu, NULL);
    a->store = store;
    a->refresh_ms = o->refresh_ms > 0 ? o->refresh_ms : 2000;
    if (o->static_key && *o->static_key) {
        a->has_static = true;
        sha256(o->static_key, strlen(o->static_key), a->static_hash);
    }
    if (o->jwt_secret && *o->jwt_secret) {
        a->jwt_secret = strdup(o->jwt_secret);
        a->jwt_len = strlen(o->jwt_secret);
        a->jwt_rules.max_lifetime_s = o->jwt.max_lifetime_s;
        bool aud = o->jwt.audience && *o->jwt.audience, iss = o->jwt.issuer && *o->jwt.issuer;
        a->jwt_rules.audience = aud ? strdup(o->jwt.audience) : NULL;
        a->jwt_rules.issuer = iss ? strdup(o->jwt.issuer) : NULL;
        if (!a->jwt_secret || (aud && !a->jwt_rules.audience) || (iss && !a->jwt_rules.issuer)) {
            auth_destroy(a);
            return sd_fail(err, SD_ENOMEM, "auth");
        }
    }
    enum sd_err rc = reload_locked(a, sd_mono_ms(), err);
    if (rc != SD_OK) {
        auth_destroy(a);
        return rc;
    }
    *out = a;
    return SD_OK;
}

void auth_destroy(struct auth *a)
{
    if (!a)
        return;
    pthread_mutex_lock(&a->mu);
    flush_locked(a);
    pthread_mutex_unlock(&a->mu);
    pthread_mutex_destroy(&a->mu);
    free(a->keys);
    if (a->jwt_secret)
        explicit_bzero(a->jwt_secret, a->jwt_len);
    free(a->jwt_secret);
    free((char *)a->jwt_rules.audience);
    free((char *)a->jwt_rules.issuer);
    explicit_bzero(a->static_hash, sizeof(a->static_hash));
    free(a);
}

void auth_flush(struct auth *a)
{
    pthread_mutex_lock(&a->mu);
    flush_locked(a);
    pthread_mutex_unlock(&a->mu);
}

/* Under a->mu. */
static void refresh_locked(struct auth *a, int64_t now_ms)
{
    if (now_ms - a->loaded_ms >= a->refresh_ms || now_ms < a->loaded_ms) {
        struct sd_error err = {0};
        reload_locked(a, now_ms, &err); /* a busy database: keep serving the old cache */
    }
}

bool auth_required(struct auth *a, int64_t now_ms)
{
    if (a->has_static || a->jwt_secret)
        return true;
    pthread_mutex_lock(&a->mu);
    refresh_locked(a, now_ms);
    bool any = a->n_keys > 0;
    pthread_mutex_unlock(&a->mu);
    return any;
}

static bool looks_like_jwt(const char *s)
{
    const char *d = strchr(s, '.');
    return strncmp(s, "eyJ", 3) == 0 && d && strchr(d + 1, '.');
}

enum auth_outcome auth_verify(struct auth *a, const char *credential, int64_t now_ms,
                              int64_t wall, char *principal, size_t principal_n, bool *admin)
{
    bool admin_dummy;
    admin = admin ? admin : &admin_dummy;
    *admin = false;
    principal[0] = '\0';
    if (!credential || !*credential)
        return AUTH_MISSING;
    if (a->jwt_secret && looks_like_jwt(credential)) {
        char sub[48];
        enum auth_outcome o =
            auth_jwt_check(a->jwt_secret, a->jwt_len, credential, &a->jwt_rules, wall / 1000, sub,
                           sizeof(sub), NULL);
        if (o == AUTH_OK)
            snprintf(principal, principal_n, "jwt:%s", sub);
        return o;
    }
    uint8_t h[AUTH_HASH_BYTES];
    sha256(credential, strnlen(credential, 4096), h);
    int match = -1;
    bool static_ok = a->has_static && memeql_sec(h, a->static_hash, sizeof(h));
    pthread_mutex_lock(&a->mu);
    refresh_locked(a, now_ms);
    for (int i = 0; i < a->n_keys; i++) { /* every hash, no early exit */
        int eq = memeql_sec(h, a->keys[i].hash, sizeof(h));
        match = eq ? i : match;
    }
    enum auth_outcome o = AUTH_INVALID;
    if (match >= 0) {
        snprintf(principal, principal_n, "%s", a->keys[match].id);
        if (a->keys[match].revoked) {
            o = AUTH_REVOKED;
        } else {
            o = AUTH_OK;
            *admin = a->keys[match].admin;
            if (wall > a->keys[match].used_ms)
                a->keys[match].used_ms = wall;
        }
    } else if (static_ok) {
        snprintf(principal, principal_n, "static");
        o = AUTH_OK;
    }
    pthread_mutex_unlock(&a->mu);
    return o;
}

/* ---- the admission gate ---- */

struct auth_gate {
    struct auth *auth;
    struct rl_buckets *by_key, *by_ip;
    struct store *shared_buckets; /* borrowed; per-key buckets shared by the cluster, or NULL */
    double key_rpm, burst;
    atomic_bool shared_failing;   /* the last shared take failed (logged once per outage) */
    struct rl_slots *uploads;
    struct rl_slots *conns;       /* open connections per address */
    struct sd_log *log;           /* borrowed */
    bool protect_metrics;
    int max_uploads;
    int max_conns;                /* per address; 0: no limit */
    char client_ip_header[64];    /* "" : the peer address */
    atomic_ullong n_denied[AUTH_EXPIRED + 1];
    atomic_ullong n_limited_key, n_limited_ip, n_upload_capped, n_conn_capped;
};

enum sd_err auth_gate_create(const struct config *cfg, struct store *store, struct sd_log *log,
                             struct auth_gate **out, struct sd_error *err)
{
    struct auth_gate *g = calloc(1, sizeof(*g));
    if (!g)
        return sd_fail(err, SD_ENOMEM, "auth gate");
    g->log = log;
    g->protect_metrics = cfg->protect_metrics != 0;
    /* a key's limit is the cluster's when the store can share it (PostgreSQL) */
    if (store && store_has_shared_rate_limits(store))
        g->shared_buckets = store;
    g->key_rpm = (double)cfg->rate_limit_key_rpm;
    g->burst = (double)cfg->rate_limit_burst;
    g->max_uploads = (int)cfg->max_uploads_per_key;
    g->max_conns = (int)cfg->max_connections_per_ip;
    snprintf(g->client_ip_header, sizeof(g->client_ip_header), "%s",
             cfg->client_ip_header ? cfg->client_ip_header : "");
    struct auth_opts ao = {
        .static_key = cfg->api_key,
        .jwt_secret = cfg->jwt_secret && *cfg->jwt_secret ? cfg->jwt_secret : cfg->jwt_secret_alias,
        .jwt = {.max_lifetime_s = cfg->jwt_max_lifetime_s,
                .audience = cfg->jwt_audience,
                .issuer = cfg->jwt_issuer},
        .refresh_ms = 2000,
    };
    enum sd_err rc;
    if ((rc = auth_create(&ao, store, &g->auth, err)) != SD_OK ||
        (rc = rl_buckets_create((double)cfg->rate_limit_key_rpm, (double)cfg->rate_limit_burst,
                                4096, &g->by_key, err)) != SD_OK ||
        (rc = rl_buckets_create((double)cfg->rate_limit_ip_rpm, (double)cfg->rate_limit_burst,
                                16384, &g->by_ip, err)) != SD_OK ||
        (rc = rl_slots_create(&g->uploads, err)) != SD_OK ||
        (rc = rl_slots_create(&g->conns, err)) != SD_OK) {
        auth_gate_destroy(g);
        return rc;
    }
    /* what is on, never with what: no secret, no hash */
    bool on = auth_required(g->auth, sd_mono_ms());
    log_event(log, on ? LOG_INFO : LOG_WARN, "auth.config",
              (struct log_field[]){LOG_BOOL("required", on),
                                   LOG_STR("hint", on ? NULL
                                                      : "the API is open to anyone who can reach "
                                                        "it: create a key with `scribed keys "
                                                        "create` (taken up within seconds) or "
                                                        "set SCRIBED_API_KEY"),
                                   LOG_BOOL("static_key", g->auth->has_static),
                                   LOG_BOOL("jwt", g->auth->jwt_secret != NULL),
                                   LOG_I64("stored_keys", g->auth->n_keys),
                                   LOG_BOOL("protect_metrics", g->protect_metrics),
                                   LOG_I64("rate_limit_key_rpm", cfg->rate_limit_key_rpm),
                                   LOG_I64("rate_limit_ip_rpm", cfg->rate_limit_ip_rpm),
                                   LOG_I64("max_uploads_per_key", g->max_uploads), LOG_END});
    *out = g;
    return SD_OK;
}

void auth_gate_destroy(struct auth_gate *g)
{
    if (!g)
        return;
    auth_destroy(g->auth);
    rl_buckets_destroy(g->by_key);
    rl_buckets_destroy(g->by_ip);
    rl_slots_destroy(g->uploads);
    rl_slots_destroy(g->conns);
    free(g);
}

/*
 * One token of principal's per-key bucket: the cluster's bucket in the store
 * when there is one; while the database cannot answer, this node's own
 * bucket (the limit then holds per node, and the node keeps serving).
 */
static bool take_key_token(struct auth_gate *g, const char *principal, double now_s,
                           int *retry_after_s)
{
    if (g->shared_buckets) {
        bool taken = true;
        struct sd_error err = {0};
        if (store_rate_take(g->shared_buckets, principal, g->key_rpm, g->burst, &taken,
                            retry_after_s, &err) == SD_OK) {
            if (atomic_exchange(&g->shared_failing, false))
                log_event(g->log, LOG_INFO, "ratelimit.shared_back", NULL);
            return taken;
        }
        if (!atomic_exchange(&g->shared_failing, true))
            log_event(g->log, LOG_WARN, "ratelimit.shared_failed",
                      (struct log_field[]){LOG_STR("error", err.msg),
                                           LOG_STR("fallback", "per-node buckets"), LOG_END});
    }
    return rl_take(g->by_key, principal, now_s, retry_after_s);
}

/* The key an address counts under: IPv4 as is (also when v4-mapped), IPv6 by /64. */
static void address_key(const char *buf, char *out, size_t n)
{
    struct in6_addr a6;
    if (inet_pton(AF_INET6, buf, &a6) == 1) {
        if (IN6_IS_ADDR_V4MAPPED(&a6)) {
            inet_ntop(AF_INET, &a6.s6_addr[12], out, (socklen_t)n);
            return;
        }
        memset(&a6.s6_addr[8], 0, 8);
        char p[INET6_ADDRSTRLEN];
        inet_ntop(AF_INET6, &a6, p, sizeof(p));
        snprintf(out, n, "%s/64", p);
        return;
    }
    struct in_addr a4;
    snprintf(out, n, "%s", inet_pton(AF_INET, buf, &a4) == 1 ? buf : "invalid");
}

/*
 * The address requests are counted against: the peer, or (behind a proxy
 * that sets it) the configured header, X-Forwarded-For's last hop. IPv6
 * addresses count by /64, the block one subscriber usually gets.
 */
static void client_ip(struct auth_gate *g, struct http_request *r, const char *peer, char *out,
                      size_t n)
{
    const char *v = g->client_ip_header[0] ? http_header(r, g->client_ip_header) : NULL;
    char buf[INET6_ADDRSTRLEN + 8];
    if (v) {
        const char *last = strrchr(v, ',');
        v = last ? last + 1 : v;
        while (*v == ' ')
            v++;
        snprintf(buf, sizeof(buf), "%s", v);
        buf[strcspn(buf, " ")] = '\0';
    } else {
        snprintf(buf, sizeof(buf), "%s", peer ? peer : "-");
    }
    address_key(buf, out, n);
}

/*
 * The presented credential: Authorization: Bearer, X-API-Key, or ?api_key=
 * on the WebSocket upgrade of a ROUTE_QUERY_KEY route (/v1/realtime:
 * browsers cannot set headers there). A query key anywhere else is refused,
 * also on a REST route whose request carries an Upgrade header: URLs end up
 * in proxy logs and browser history.
 */
static const char *credential(struct http_request *r, unsigned route_flags, const char **why)
{
    const char *h = http_header(r, "Authorization");
    if (h) {
        if (strncasecmp(h, "Bearer ", 7) != 0) {
            *why = "the Authorization header must be 'Bearer KEY'";
            return NULL;
        }
        h += 7;
        while (*h == ' ')
            h++;
        return h;
    }
    if ((h = http_header(r, "X-API-Key")) != NULL)
        return h;
    if ((h = http_query(r, "api_key")) != NULL) {
        const char *up = http_header(r, "Upgrade");
        if ((route_flags & ROUTE_QUERY_KEY) && up && strcasecmp(up, "websocket") == 0)
            return h;
        *why = "?api_key= is only accepted on /v1/realtime WebSocket upgrades: send "
               "Authorization: Bearer KEY";
        return NULL;
    }
    return NULL;
}

static void deny(struct auth_admission *out, int status, const char *code, const char *deny_as,
                 const char *msg)
{
    out->status = status;
    out->code = code;
    out->deny = deny_as;
    snprintf(out->message, sizeof(out->message), "%s", msg);
}

static void limited(struct auth_admission *out, int retry, const char *what, const char *deny_as)
{
    char m[200];
    snprintf(m, sizeof(m), "too many requests for this %s; retry in %d s", what, retry);
    deny(out, 429, "rate_limit_exceeded", deny_as, m);
    out->retry_after_s = retry;
}

/* Checks credentials; on failure fills out (401, or 429 once the address is over its rate). */
static bool authenticate(struct auth_gate *g, struct http_request *r, unsigned route_flags,
                         const char *ip, double now_s, struct auth_admission *out)
{
    const char *why = NULL;
    const char *cred = credential(r, route_flags, &why);
    enum auth_outcome o = auth_verify(g->auth, cred, sd_mono_ms(), sd_wall_ms(), out->principal,
                                      sizeof(out->principal), &out->admin);
    if (o == AUTH_OK)
        return true;
    if (o == AUTH_MISSING && why)
        o = AUTH_INVALID;
    atomic_fetch_add(&g->n_denied[o], 1);
    int retry = 0;
    if (!rl_take(g->by_ip, ip, now_s, &retry)) { /* guessing keys costs the address its rate */
        atomic_fetch_add(&g->n_limited_ip, 1);
        limited(out, retry, "address", "rate_ip");
        return false;
    }
    const char *msg = why                   ? why
                      : o == AUTH_MISSING   ? "this endpoint needs an API key: send "
                                              "Authorization: Bearer KEY (or X-API-Key: KEY)"
                      : o == AUTH_EXPIRED   ? "the token has expired or is not valid yet"
                      : o == AUTH_BAD_TOKEN ? "the token is not valid"
                                            : "the API key is not valid (unknown or revoked)";
    deny(out, 401, o == AUTH_MISSING ? "missing_api_key" : "invalid_api_key",
         auth_outcome_name(o), msg);
    return false;
}

bool auth_gate_connect(struct auth_gate *g, const char *peer_ip)
{
    if (g->max_conns <= 0)
        return true;
    char key[80];
    address_key(peer_ip, key, sizeof(key));
    return rl_slot_acquire(g->conns, key, g->max_conns);
}

void auth_gate_disconnect(struct auth_gate *g, const char *peer_ip)
{
    if (g->max_conns <= 0)
        return;
    char key[80];
    address_key(peer_ip, key, sizeof(key));
    rl_slot_release(g->conns, key);
}

void auth_gate_admit(struct auth_gate *g, struct http_request *r, const char *peer_ip,
                     bool conn_over_limit, unsigned route_flags, struct auth_admission *out)
{
    memset(out, 0, sizeof(*out));
    if (route_flags & ROUTE_PROBE)
        return; /* health checks: never limited, never authenticated */
    if (conn_over_limit) {
        atomic_fetch_add(&g->n_conn_capped, 1);
        char m[200];
        snprintf(m, sizeof(m), "this address already has %d connections open; retry on one of "
                               "them", g->max_conns);
        deny(out, 429, "too_many_connections", "connections", m);
        out->retry_after_s = 1;
        return;
    }
    char ip[80];
    client_ip(g, r, peer_ip, ip, sizeof(ip));
    double now_s = (double)sd_mono_ms() / 1000.0;
    int retry = 0;
    bool open = (route_flags & ROUTE_OPEN) ||
                ((route_flags & ROUTE_METRICS) && !g->protect_metrics);
    if (!open && auth_required(g->auth, sd_mono_ms())) {
        if (!authenticate(g, r, route_flags, ip, now_s, out))
            return;
        if (!take_key_token(g, out->principal, now_s, &retry)) {
            atomic_fetch_add(&g->n_limited_key, 1);
            limited(out, retry, "API key", "rate_key");
            return;
        }
    } else if (!rl_take(g->by_ip, ip, now_s, &retry)) {
        atomic_fetch_add(&g->n_limited_ip, 1);
        limited(out, retry, "address", "rate_ip");
        return;
    }
    if ((route_flags & ROUTE_MULTIPART) && g->max_uploads > 0) {
        char slot[sizeof(out->slot)];
        if (out->principal[0])
            snprintf(slot, sizeof(slot), "%s", out->principal);
        else
            snprintf(slot, sizeof(slot), "ip:%.64s", ip);
        if (!rl_slot_acquire(g->uploads, slot, g->max_uploads)) {
            atomic_fetch_add(&g->n_upload_capped, 1);
            char m[200];
            snprintf(m, sizeof(m), "%d uploads of this %s are already in progress; retry when "
                                   "one finishes", g->max_uploads,
                     out->principal[0] ? "API key" : "address");
            deny(out, 429, "too_many_uploads", "uploads", m);
            out->retry_after_s = 5;
            return;
        }
        memcpy(out->slot, slot, sizeof(slot));
    }
}

void auth_gate_release(struct auth_gate *g, struct auth_admission *a)
{
    if (g && a->slot[0]) {
        rl_slot_release(g->uploads, a->slot);
        a->slot[0] = '\0';
    }
}

char *auth_gate_metrics(struct auth_gate *g, uint64_t slow_headers, uint64_t slow_bodies)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f)
        return NULL;
    fprintf(f, "# HELP scribed_auth_failures_total Requests refused for credentials, by reason.\n"
               "# TYPE scribed_auth_failures_total counter\n");
    for (int o = AUTH_MISSING; o <= AUTH_EXPIRED; o++)
        fprintf(f, "scribed_auth_failures_total{reason=\"%s\"} %llu\n",
                auth_outcome_name((enum auth_outcome)o), atomic_load(&g->n_denied[o]));
    fprintf(f, "# HELP scribed_rate_limited_total Requests refused with 429 by a rate limit.\n"
               "# TYPE scribed_rate_limited_total counter\n"
               "scribed_rate_limited_total{limit=\"key\"} %llu\n"
               "scribed_rate_limited_total{limit=\"ip\"} %llu\n"
               "scribed_rate_limited_total{limit=\"uploads\"} %llu\n"
               "scribed_rate_limited_total{limit=\"connections\"} %llu\n",
            atomic_load(&g->n_limited_key), atomic_load(&g->n_limited_ip),
            atomic_load(&g->n_upload_capped), atomic_load(&g->n_conn_capped));
    fprintf(f, "# HELP scribed_slow_clients_total Connections closed for sending too slowly.\n"
               "# TYPE scribed_slow_clients_total counter\n"
               "scribed_slow_clients_total{phase=\"headers\"} %llu\n"
               "scribed_slow_clients_total{phase=\"body\"} %llu\n",
            (unsigned long long)slow_headers, (unsigned long long)slow_bodies);
    if (fclose(f) != 0) {
        free(text);
        return NULL;
    }
    return text;
}

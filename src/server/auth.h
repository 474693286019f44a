/*
 * auth.h - who is calling, and may they: API keys (made by `scribed keys`,
 * kept as SHA-256 hashes in the store, cached here), the static
 * SCRIBED_API_KEY, HS256 JWTs signed with SCRIBED_JWT_SECRET / JWT_SECRET,
 * and the one admission gate http.c runs before every route handler (rate
 * limits, authentication, the cap on concurrent uploads).
 *
 * Auth is on as soon as any key row exists (revoked ones count: revoking the
 * last key locks the API, it never opens it), or a static key or JWT secret
 * is configured. No secret is ever logged or kept in clear in memory beyond
 * the configured JWT secret; presented keys are hashed, then compared with
 * every known hash in constant time. Thread-safe.
 */
#ifndef SD_SERVER_AUTH_H
#define SD_SERVER_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"
#include "util/err.h"

#define AUTH_KEY_PREFIX "sk-scribed-"
/* AUTH_KEY_PREFIX + 43 base64url characters (32 random bytes) + NUL */
#define AUTH_KEY_MAX 64
#define AUTH_HASH_BYTES 32
/* principal ids: "key_<hex>", "static", "jwt:<sub>" */
#define AUTH_PRINCIPAL_MAX 64

enum auth_outcome {
    AUTH_OK,
    AUTH_MISSING,      /* no credentials presented */
    AUTH_INVALID,      /* unknown key, or a credential in a place it is not accepted */
    AUTH_REVOKED,      /* a key that was revoked (logged; the client just sees "invalid") */
    AUTH_BAD_TOKEN,    /* a JWT with a bad signature, algorithm or shape */
    AUTH_EXPIRED,      /* a JWT outside exp / nbf */
};
const char *auth_outcome_name(enum auth_outcome o);

struct auth;

/* What a JWT must also satisfy besides its signature, exp and nbf. */
struct auth_jwt_rules {
    int64_t max_lifetime_s;   /* exp - iat and exp - now at most this (+ skew); 0: no cap */
    const char *audience;     /* NULL or "": aud not checked; else aud must name it */
    const char *issuer;       /* NULL or "": iss not checked; else iss must equal it */
};

struct auth_opts {
    const char *static_key;   /* "" or NULL: none */
    const char *jwt_secret;   /* "" or NULL: JWTs are not accepted */
    struct auth_jwt_rules jwt; /* strings copied */
    int refresh_ms;           /* how stale the key cache may get (created/revoked keys) */
};

/* Loads the key cache from store (borrowed; may be NULL: no stored keys). Caller owns *out. */
enum sd_err auth_create(const struct auth_opts *o, struct store *store, struct auth **out,
                        struct sd_error *err);
void auth_destroy(struct auth *a);
/* True when requests need credentials (see the header comment). now_ms: monotonic. */
bool auth_required(struct auth *a, int64_t now_ms);
/*
 * Checks one presented credential (an API key or, with a JWT secret, a JWT).
 * On AUTH_OK principal receives the caller's id (never the secret) and
 * *admin (if not NULL) whether it is an admin key (`scribed keys create
 * --admin`: sees every tenant's jobs); on AUTH_REVOKED the revoked key's id;
 * else "". wall_ms: Unix time (JWT exp).
 */
enum auth_outcome auth_verify(struct auth *a, const char *credential, int64_t now_ms,
                              int64_t wall_ms, char *principal, size_t principal_n, bool *admin);
/* Pushes lazily kept last-used times to the store now (also done on each refresh). */
void auth_flush(struct auth *a);

/*
 * HS256 JWT check alone (auth_verify uses it; exposed for tests). rules: NULL
 * for none beyond exp/nbf. A token outside its lifetime cap or the rules'
 * aud/iss is AUTH_BAD_TOKEN. sub may be NULL.
 */
enum auth_outcome auth_jwt_check(const char *secret, size_t secret_len, const char *token,
                                 const struct auth_jwt_rules *rules, int64_t now_s, char *sub,
                                 size_t sub_n, const char **why);

/* ---- keys (cli/keys.c) ---- */

/* SHA-256 of a key, lowercase hex (65 bytes with NUL). */
void auth_key_hash_hex(const char *key, char hex[2 * AUTH_HASH_BYTES + 1]);
/*
 * A new random key (getrandom) and the row that stores it: id, prefix, hash,
 * created_ms; name is the caller's. key receives the secret to show once.
 */
enum sd_err auth_key_generate(char key[AUTH_KEY_MAX], struct store_key *row, int64_t now_ms,
                              struct sd_error *err);

/* ---- the admission gate (http.c) ---- */

struct http_request;
struct sd_log;
struct config;

/* What the gate decided for one request. */
struct auth_admission {
    int status;                       /* 0: go on; 401 or 429: answer that */
    int retry_after_s;                /* with 429 */
    const char *code;                 /* error code for the body */
    const char *deny;                 /* why, for the access log ("missing", "rate_ip", ...) */
    char message[200];
    char principal[AUTH_PRINCIPAL_MAX]; /* who (access log, job owner); "" if anonymous */
    bool admin;                       /* an admin key: every tenant's jobs */
    char slot[AUTH_PRINCIPAL_MAX + 8];  /* held upload slot ("" if none): auth_gate_release */
};

struct auth_gate;

/* Builds the gate from the server settings; store and log are borrowed. Caller owns *out. */
enum sd_err auth_gate_create(const struct config *cfg, struct store *store, struct sd_log *log,
                             struct auth_gate **out, struct sd_error *err);
void auth_gate_destroy(struct auth_gate *g);
/*
 * Connections per address (--max-connections-per-ip), counted from accept to
 * close by the socket's own address (numeric; IPv6 by /64). False when the
 * address already holds its limit: that connection is not counted, its
 * requests get 429 (conn_over_limit below) and it is closed after the answer,
 * so a client whose pool opened a connection too many reads a retryable
 * answer instead of having its connection closed unread. Each connection
 * counted (true) is released with auth_gate_disconnect when it closes.
 */
bool auth_gate_connect(struct auth_gate *g, const char *peer_ip);
void auth_gate_disconnect(struct auth_gate *g, const char *peer_ip);
/*
 * Decides one request once its headers are in. route_flags: the matched
 * route's ROUTE_* flags, 0 for an unknown path (treated as protected).
 * peer_ip: the connection's address (numeric); conn_over_limit: the
 * connection was not counted by auth_gate_connect. On status 0 with a slot,
 * the caller must auth_gate_release(g, out) when the request ends.
 */
void auth_gate_admit(struct auth_gate *g, struct http_request *r, const char *peer_ip,
                     bool conn_over_limit, unsigned route_flags, struct auth_admission *out);
void auth_gate_release(struct auth_gate *g, struct auth_admission *a);
/*
 * Prometheus text of the gate's counters and the slow-client guard's counts
 * (malloc'd, caller frees; NULL on ENOMEM).
 */
char *auth_gate_metrics(struct auth_gate *g, uint64_t slow_headers, uint64_t slow_bodies);

#endif

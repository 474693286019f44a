/*
 * http.h - the HTTP layer on libmicrohttpd (thread per connection): request
 * state, body streaming into an upload, replies, request ids, access log
 * and per-route metrics. The only file that includes <microhttpd.h> is
 * http.c (upload.c gets the post processor through it).
 *
 * A route handler runs once the whole request is in, on the connection's
 * own thread, and may block (a synchronous transcription waits there);
 * /health stays fast because every connection has its own thread.
 */
#ifndef SD_SERVER_HTTP_H
#define SD_SERVER_HTTP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "server/errors.h"
#include "util/err.h"

struct app;
struct upload;
struct http_request;
struct http_server;

typedef void (*route_fn)(struct http_request *r);

enum route_flags {
    ROUTE_MULTIPART = 1,   /* body is multipart/form-data with an upload */
    ROUTE_OPEN = 2,        /* no API key needed (the web page); still rate-limited per address */
    ROUTE_PROBE = 4,       /* no key, no rate limit (/health) */
    ROUTE_METRICS = 8,     /* needs a key only with --protect-metrics (the default) */
    ROUTE_FALLBACK = 16,   /* catch-all (the web page's files): another method is a 404, not a 405 */
    ROUTE_QUERY_KEY = 32,  /* a WebSocket browsers open: ?api_key= accepted on its upgrade */
    ROUTE_JSON = 64,       /* body read into memory (HTTP_JSON_BODY_MAX at most): http_body() */
};

#define HTTP_JSON_BODY_MAX ((int64_t)64 << 10)

struct route {
    const char *method;
    const char *pattern;   /* "/v1/jobs/{id}": one {param} segment at most */
    const char *name;      /* metrics label */
    route_fn fn;
    unsigned flags;
};

/* router.c: the table, and matching a path against it. */
const struct route *router_match(const char *method, const char *path, char *param,
                                 size_t param_n, bool *method_mismatch);

/*
 * Binds host:port and listens (before anything else starts, so that a port
 * in use fails the start with one clear message). *fd_out is the caller's
 * until handed to http_start.
 */
enum sd_err http_listen(const char *host, int port, int *fd_out, struct sd_error *err);
/* Serves on listen_fd, which it owns from here (closed on failure too). */
enum sd_err http_start(struct app *app, int listen_fd, struct http_server **out,
                       struct sd_error *err);
int http_port(const struct http_server *s);
/* Stops accepting new connections (existing ones finish). */
void http_quiesce(struct http_server *s);
/* Closes every connection and joins their threads. */
void http_stop(struct http_server *s);

/* Accessors for route handlers. */
struct app *http_app(struct http_request *r);
const char *http_request_id(struct http_request *r);
const char *http_path_param(struct http_request *r);
const char *http_query(struct http_request *r, const char *key);
const char *http_header(struct http_request *r, const char *name);
struct upload *http_upload(struct http_request *r);
/* A ROUTE_JSON request's body, NUL-terminated ("" if none); valid until the request ends. */
const char *http_body(struct http_request *r, size_t *len);
/* Who is calling: an API key id, "static", "jwt:SUB", or "" (auth off, open route). */
const char *http_principal(struct http_request *r);
/*
 * The owner filter of this caller's job reads and cancels (store.h
 * "Tenants"): NULL for an admin key (every tenant), else http_principal.
 */
const char *http_owner_scope(struct http_request *r);
/* Prometheus text of the auth, rate-limit and slow-client counters (caller frees; NULL: ENOMEM). */
char *http_security_metrics(struct http_request *r);
/* True when the client closed its side (a waiting sync request should give up). */
bool http_client_gone(struct http_request *r);

/*
 * Protocol upgrade (WebSocket): answers 101 with headers (name, value, ...,
 * NULL). Once the 101 is out, fn(user, fd, extra, n_extra, handle) runs on the
 * connection's thread and owns user and the socket until it calls
 * http_upgrade_close(handle) (which closes fd). If the upgrade never happens,
 * drop(user) runs instead (drop may be NULL).
 */
typedef void (*http_upgrade_fn)(void *user, int fd, const char *extra, size_t n_extra,
                                void *handle);
void http_reply_upgrade(struct http_request *r, const char *const *headers, http_upgrade_fn fn,
                        void (*drop)(void *user), void *user);
void http_upgrade_close(void *handle);

/* Replies (each takes ownership of what it is given; one reply per request). */
void http_reply_json(struct http_request *r, int status, json_t *body);
void http_reply_body(struct http_request *r, int status, const char *content_type, char *body,
                     size_t len);
/*
 * A body produced while it is sent (server-sent events): fn fills up to max
 * bytes and returns the count (it may block until it has some), 0 at the end,
 * -1 to abort the connection. done(user) runs exactly once, when the reply is
 * over or the client has gone.
 */
typedef long (*http_stream_fn)(void *user, char *buf, size_t max);
void http_reply_stream(struct http_request *r, int status, const char *content_type,
                       http_stream_fn fn, void (*done)(void *user), void *user);
/* The same with extra headers (name, value, ..., NULL); a Cache-Control among them replaces no-cache. */
void http_reply_stream_headers(struct http_request *r, int status, const char *content_type,
                               const char *const *headers, http_stream_fn fn,
                               void (*done)(void *user), void *user);
void http_reply_error(struct http_request *r, enum sd_err code, const char *message,
                      const char *param);
void http_reply_condition(struct http_request *r, enum http_condition c, const char *message);

#endif

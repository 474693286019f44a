/*
 * http.c - libmicrohttpd glue: one thread per connection, request state,
 * protocol checks MHD leaves to the application (duplicate Content-Length,
 * missing Host, oversize bodies), streaming bodies into an upload, the reply
 * helpers, X-Request-Id, and one JSON access-log line + metrics per request.
 *
 * An answer decided from the headers alone (the gate's 401 / 429, an unknown
 * route, a service shutting down, a declared body over the limit) waits for
 * the body: answered before it, MHD 0.9.75 closes the connection with the
 * body unread, the kernel resets it, and a client still writing (Node: write
 * EPIPE) never reads the answer. So such a body is read and dropped up to
 * DROP_BODY_MAX, then answered as usual (the connection stays alive).
 *
 * MHD cannot queue a response while a body is still arriving, so a body past
 * that bound, or one that goes over the upload limit (or turns out malformed)
 * mid-stream, gets its answer written straight to the socket, then a
 * lingering close (as nginx's) lets the client read it instead of a reset.
 */
#include "server/http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "jobs/job.h"
#include "server/app.h"
#include "server/auth.h"
#include "server/ratelimit.h"
#include "server/upload.h"
#include "util/clock.h"

struct http_server {
    struct MHD_Daemon *d;
    struct app *app;
    int port;
    bool quiesced;
    struct auth_gate *gate;    /* rate limits, credentials, upload caps (server/auth.c) */
    struct conn_guard *guard;  /* slow headers / bodies (server/ratelimit.c) */
};

struct upgrade_ctx;

/* One TCP connection, accept to close (MHD's socket context). */
struct http_conn {
    struct guard_conn *guard;    /* its slow-client clock (may be NULL) */
    char peer[INET6_ADDRSTRLEN]; /* numeric address, "" if unknown */
    bool counted;                /* within the per-address limit (auth_gate_connect) */
};

struct http_request {
    struct app *app;
    struct MHD_Connection *conn;
    char id[64];
    char method[16];
    char path[256];
    char param[STORE_ID_MAX + 16];
    const struct route *route;
    double t0;
    int status;               /* 0 until answered */
    bool raw_answered;        /* answered on the socket directly (mid-body error) */
    int early_status;         /* decided from the headers: answer this once the body is */
    json_t *early_body;       /* dropped (NULL: none) */
    struct upload *up;
    char *body;               /* ROUTE_JSON: the body in memory (NUL-terminated), up to HTTP_JSON_BODY_MAX */
    size_t body_len, body_cap;
    int64_t body_bytes;       /* received so far */
    int64_t body_declared;    /* Content-Length, -1 if none (chunked) */
    int64_t body_limit;       /* the most this route reads: the upload limit + 1 MiB, or 1 MiB */
    enum MHD_Result result;
    struct upgrade_ctx *upgrade; /* 101 queued: on_upgraded takes it, or on_completed drops it */
    struct http_server *srv;
    struct http_conn *hc;        /* this request's connection (may be NULL: ENOMEM) */
    struct guard_conn *guard;    /* hc's slow-client clock (may be NULL) */
    struct auth_admission adm;   /* the gate's decision; adm.status != 0: refused */
};

/* ---- accessors ---- */

struct app *http_app(struct http_request *r)
{
    return r->app;
}

const char *http_request_id(struct http_request *r)
{
    return r->id;
}

const char *http_path_param(struct http_request *r)
{
    return r->param;
}

const char *http_query(struct http_request *r, const char *key)
{
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, key);
}

const char *http_header(struct http_request *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

struct upload *http_upload(struct http_request *r)
{
    return r->up;
}

const char *http_body(struct http_request *r, size_t *len)
{
    *len = r->body_len;
    return r->body ? r->body : "";
}

/* A ROUTE_JSON body grows in memory; false when out of memory. */
static bool body_append(struct http_request *r, const char *data, size_t n)
{
    if (r->body_len + n + 1 > r->body_cap) {
        size_t cap = r->body_cap ? r->body_cap : 4096;
        while (cap < r->body_len + n + 1)
            cap *= 2;
        char *b = realloc(r->body, cap);
        if (!b)
            return false;
        r->body = b;
        r->body_cap = cap;
    }
    memcpy(r->body + r->body_len, data, n);
    r->body_len += n;
    r->body[r->body_len] = '\0';
    return true;
}

const char *http_principal(struct http_request *r)
{
    return r->adm.principal;
}

const char *http_owner_scope(struct http_request *r)
{
    return r->adm.admin ? NULL : r->adm.principal;
}

char *http_security_metrics(struct http_request *r)
{
    uint64_t slow_headers = 0, slow_bodies = 0;
    conn_guard_counts(r->srv->guard, &slow_headers, &slow_bodies);
    return auth_gate_metrics(r->srv->gate, slow_headers, slow_bodies);
}

static int conn_fd(struct http_request *r)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    return ci ? ci->connect_fd : -1;
}

bool http_client_gone(struct http_request *r)
{
    int fd = conn_fd(r);
    if (fd < 0)
        return true;
    struct pollfd p = {.fd = fd, .events = POLLRDHUP};
    if (poll(&p, 1, 0) <= 0)
        return false;
    return (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) != 0;
}

/* ---- replies ---- */

static void add_common_headers(struct http_request *r, struct MHD_Response *resp,
                               const char *content_type)
{
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    MHD_add_response_header(resp, "X-Request-Id", r->id);
}

/* A header that comes with a status (both reply paths add it). */
struct status_header {
    const char *name;
    char value[48];
};

/* Fills h with the header status needs; false if none. */
static bool status_header(const struct http_request *r, int status, struct status_header *h)
{
    if (status == 429) {
        *h = (struct status_header){"Retry-After", ""};
        snprintf(h->value, sizeof(h->value), "%d",
                 r->adm.retry_after_s > 0 ? r->adm.retry_after_s : 5);
    } else if (status == 401) {
        *h = (struct status_header){"WWW-Authenticate", "Bearer realm=\"scribed\""};
    } else if (status == 503) {
        *h = (struct status_header){"Retry-After", "10"};
    } else {
        return false;
    }
    return true;
}

static void queue(struct http_request *r, int status, struct MHD_Response *resp)
{
    if (!resp) {
        r->result = MHD_NO;
        return;
    }
    struct status_header h;
    if (status_header(r, status, &h))
        MHD_add_response_header(resp, h.name, h.value);
    if (r->hc && !r->hc->counted) /* over its address's limit: one answer, then it goes */
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    r->status = status;
    r->result = MHD_queue_response(r->conn, (unsigned)status, resp);
    MHD_destroy_response(resp);
}

struct stream_reply {
    http_stream_fn fn;
    void (*done)(void *user);
    void *user;
};

static ssize_t stream_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct stream_reply *s = cls;
    (void)pos;
    long n = s->fn(s->user, buf, max);
    if (n > 0)
        return (ssize_t)n;
    return n == 0 ? MHD_CONTENT_READER_END_OF_STREAM : MHD_CONTENT_READER_END_WITH_ERROR;
}

static void stream_free(void *cls)
{
    struct stream_reply *s = cls;
    s->done(s->user);
    free(s);
}

void http_reply_stream(struct http_request *r, int status, const char *content_type,
                       http_stream_fn fn, void (*done)(void *user), void *user)
{
    http_reply_stream_headers(r, status, content_type, NULL, fn, done, user);
}

void http_reply_stream_headers(struct http_request *r, int status, const char *content_type,
                               const char *const *headers, http_stream_fn fn,
                               void (*done)(void *user), void *user)
{
    struct stream_reply *s = r->status ? NULL : malloc(sizeof(*s));
    if (!s) {
        done(user);
        if (!r->status)
            r->result = MHD_NO;
        return;
    }
    *s = (struct stream_reply){fn, done, user};
    /* MHD owns s from here: stream_free runs when the response is destroyed */
    struct MHD_Response *resp =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, stream_reader, s,
                                          stream_free);
    if (!resp) {
        stream_free(s);
        r->result = MHD_NO;
        return;
    }
    add_common_headers(r, resp, content_type);
    bool cache_control = false;
    for (size_t i = 0; headers && headers[i] && headers[i + 1]; i += 2) {
        MHD_add_response_header(resp, headers[i], headers[i + 1]);
        cache_control |= strcasecmp(headers[i], "Cache-Control") == 0;
    }
    if (!cache_control)
        MHD_add_response_header(resp, "Cache-Control", "no-cache");
    queue(r, status, resp);
}

void http_reply_body(struct http_request *r, int status, const char *content_type, char *body,
                     size_t len)
{
    if (r->status) { /* one reply per request: a second one is a bug, not a crash */
        free(body);
        return;
    }
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, body ? body : (char *)"", body ? MHD_RESPMEM_MUST_FREE
                                                                           : MHD_RESPMEM_PERSISTENT);
    if (!resp) {
        free(body);
        r->result = MHD_NO;
        return;
    }
    add_common_headers(r, resp, content_type);
    queue(r, status, resp);
}

void http_reply_json(struct http_request *r, int status, json_t *body)
{
    char *s = body ? json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(body);
    if (!s) {
        r->result = MHD_NO;
        return;
    }
    size_t n = strlen(s);
    http_reply_body(r, status, "application/json", s, n);
}

static json_t *error_json(enum sd_err code, const char *message, const char *param)
{
    return errors_body(message, errors_http_type(code), param, sd_err_name(code));
}

static json_t *condition_json(enum http_condition c, const char *message)
{
    return errors_body(message, errors_condition_type(c), NULL, errors_condition_code(c));
}

void http_reply_error(struct http_request *r, enum sd_err code, const char *message,
                      const char *param)
{
    http_reply_json(r, errors_http_status(code), error_json(code, message, param));
}

void http_reply_condition(struct http_request *r, enum http_condition c, const char *message)
{
    http_reply_json(r, errors_condition_status(c), condition_json(c, message));
}

/* Writes all of buf to a non-blocking socket, waiting up to 2 s in total. */
static void write_all(int fd, const char *buf, size_t n)
{
    double deadline = sd_mono_s() + 2.0;
    while (n > 0 && sd_mono_s() < deadline) {
        ssize_t w = send(fd, buf, n, MSG_NOSIGNAL);
        if (w > 0) {
            buf += w;
            n -= (size_t)w;
            continue;
        }
        if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            return;
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        poll(&p, 1, 100);
    }
}

/*
 * Answers written on the socket before the body has been read (the body is
 * too big to drop, or turned out bad mid-stream): status line, headers and
 * JSON error, then a lingering close.
 */
static const char *reason(int status)
{
    switch (status) {
    case 401: return "Unauthorized";
    case 404: return "Not Found";
    case 408: return "Request Timeout";
    case 405: return "Method Not Allowed";
    case 413: return "Payload Too Large";
    case 415: return "Unsupported Media Type";
    case 429: return "Too Many Requests";
    case 503: return "Service Unavailable";
    }
    return "Bad Request";
}

/*
 * A body nobody will use is read and dropped up to this, then answered and
 * closed; also the most a route without an upload reads.
 */
#define DROP_BODY_MAX ((int64_t)1 << 20)
/* The lingering close after a raw answer: nginx's lingering_time / lingering_timeout. */
#define LINGER_S 30.0
#define LINGER_IDLE_S 5.0
#define LINGER_MAX_BYTES ((int64_t)8 << 20)

/*
 * What a lingering close may drop: the rest of a body whose declared length
 * the route accepts (Node's undici and Python's requests send it all before
 * they read the answer), else LINGER_MAX_BYTES (no declared size, or over
 * the limit: the client is cut off after that, answer read or not).
 */
static int64_t linger_bytes(const struct http_request *r)
{
    int64_t rest = r->body_declared - r->body_bytes;
    if (r->body_declared >= 0 && r->body_declared <= r->body_limit && rest > LINGER_MAX_BYTES)
        return rest;
    return LINGER_MAX_BYTES;
}

/*
 * Reads and drops what the client still sends after the answer went out,
 * until it closes (it has read the answer), max_bytes, linger_s in all or
 * LINGER_IDLE_S without data. Closing with unread bytes would reset the
 * connection, and a reset can destroy an answer the client has not read.
 */
static void linger(int fd, int64_t max_bytes, double linger_s)
{
    char sink[16384];
    double deadline = sd_mono_s() + linger_s, last_data = sd_mono_s();
    int64_t drained = 0;
    while (drained < max_bytes) {
        double now = sd_mono_s();
        if (now >= deadline || now - last_data >= LINGER_IDLE_S)
            break;
        ssize_t got = recv(fd, sink, sizeof(sink), 0);
        if (got == 0)
            break;
        if (got > 0) {
            drained += got;
            last_data = sd_mono_s();
            continue;
        }
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            break;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        poll(&p, 1, 100);
    }
}

/* Writes the answer on the socket, lingers linger_s at most, and ends the connection. */
static enum MHD_Result answer_raw(struct http_request *r, int status, json_t *b, double linger_s)
{
    char *body = b ? json_dumps(b, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(b);
    int fd = conn_fd(r);
    r->status = status;
    r->raw_answered = true;
    if (fd >= 0 && body) {
        char head[640], extra[128] = "";
        struct status_header h;
        if (status_header(r, status, &h))
            snprintf(extra, sizeof(extra), "%s: %s\r\n", h.name, h.value);
        int hn = snprintf(head, sizeof(head),
                          "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
                          "Content-Length: %zu\r\nX-Request-Id: %s\r\n%sConnection: close\r\n\r\n",
                          status, reason(status), strlen(body), r->id, extra);
        write_all(fd, head, (size_t)hn);
        write_all(fd, body, strlen(body));
        shutdown(fd, SHUT_WR);
        linger(fd, linger_bytes(r), linger_s);
    }
    free(body);
    return MHD_NO;
}

static enum MHD_Result abort_raw(struct http_request *r, enum sd_err code, const char *msg)
{
    return answer_raw(r, errors_http_status(code),
                      error_json(code, msg,
                                 code == SD_ETOOBIG || code == SD_EUNSUPPORTED ? "file" : NULL),
                      LINGER_S);
}

/* The answer decided from the headers goes out once the body is in (see the top). */
static void answer_after_body(struct http_request *r, int status, json_t *body)
{
    if (r->early_body) {
        json_decref(body); /* the first decision stands */
        return;
    }
    r->early_status = status;
    r->early_body = body;
}

/* The early answer, now, on the socket: the body is too big to read and drop. */
static enum MHD_Result answer_early_raw(struct http_request *r)
{
    json_t *b = r->early_body;
    r->early_body = NULL;
    return answer_raw(r, r->early_status, b, LINGER_S);
}

/* ---- protocol upgrade (WebSocket, server/ws.c) ---- */

struct upgrade_ctx {
    http_upgrade_fn fn;
    void (*drop)(void *user);
    void *user;
};

static void on_upgraded(void *cls, struct MHD_Connection *c, void *req_cls, const char *extra_in,
                        size_t extra_in_size, MHD_socket sock, struct MHD_UpgradeResponseHandle *urh)
{
    struct upgrade_ctx *u = cls;
    struct http_request *r = req_cls;
    (void)c;
    /* ownership of user passes to fn; on_completed (at the connection's end) must not drop it */
    struct upgrade_ctx copy = *u;
    if (r)
        r->upgrade = NULL;
    free(u);
    copy.fn(copy.user, (int)sock, extra_in, extra_in_size, urh);
}

void http_reply_upgrade(struct http_request *r, const char *const *headers, http_upgrade_fn fn,
                        void (*drop)(void *user), void *user)
{
    struct upgrade_ctx *u = r->status ? NULL : malloc(sizeof(*u));
    struct MHD_Response *resp = u ? MHD_create_response_for_upgrade(on_upgraded, u) : NULL;
    if (!resp) {
        free(u);
        if (drop)
            drop(user);
        if (!r->status)
            r->result = MHD_NO;
        return;
    }
    *u = (struct upgrade_ctx){fn, drop, user};
    for (size_t i = 0; headers && headers[i] && headers[i + 1]; i += 2)
        MHD_add_response_header(resp, headers[i], headers[i + 1]);
    MHD_add_response_header(resp, "X-Request-Id", r->id);
    r->upgrade = u;
    conn_guard_upgraded(r->srv->guard, r->guard); /* a live stream is not a slow client */
    queue(r, 101, resp);
}

void http_upgrade_close(void *handle)
{
    MHD_upgrade_action(handle, MHD_UPGRADE_ACTION_CLOSE);
}

/* ---- request lifecycle ---- */

/* The connection's numeric address ("" if unknown). */
static void peer_address(struct MHD_Connection *c, char *out, size_t n)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const struct sockaddr *sa = ci ? ci->client_addr : NULL;
    out[0] = '\0';
    if (sa && sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out, (socklen_t)n);
    else if (sa && sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, out, (socklen_t)n);
}

static bool valid_request_id(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > 60)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.'))
            return false;
    }
    return true;
}

static enum MHD_Result count_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                    const char *value)
{
    int *n = cls;
    (void)kind, (void)value;
    if (key && strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0)
        (*n)++;
    return MHD_YES;
}

/* Request-level problems MHD lets through; SD_OK if none. */
static enum sd_err check_protocol(struct http_request *r, const char *version, char *msg,
                                  size_t n)
{
    int n_len = 0;
    MHD_get_connection_values(r->conn, MHD_HEADER_KIND, count_header, &n_len);
    if (n_len > 1) {
        snprintf(msg, n, "more than one Content-Length header");
        return SD_EINVAL;
    }
    if (strcmp(version, MHD_HTTP_VERSION_1_1) == 0 && !http_header(r, MHD_HTTP_HEADER_HOST)) {
        snprintf(msg, n, "HTTP/1.1 requests need a Host header");
        return SD_EINVAL;
    }
    return SD_OK;
}

static struct http_request *request_new(struct http_server *srv, struct MHD_Connection *c,
                                        const char *url, const char *method)
{
    struct http_request *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->app = srv->app;
    r->srv = srv;
    const union MHD_ConnectionInfo *sc =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    r->hc = sc ? sc->socket_context : NULL;
    r->guard = r->hc ? r->hc->guard : NULL;
    conn_guard_headers_done(srv->guard, r->guard);
    r->conn = c;
    r->t0 = sd_mono_s();
    r->result = MHD_YES;
    snprintf(r->method, sizeof(r->method), "%s", method);
    snprintf(r->path, sizeof(r->path), "%s", url);
    const char *given = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Request-Id");
    if (valid_request_id(given))
        snprintf(r->id, sizeof(r->id), "%s", given);
    else
        job_new_id("req", r->id, sizeof(r->id));
    return r;
}

/* Header-time decisions for a body-carrying route: size limit, upload file. */
static void begin_multipart(struct http_request *r)
{
    struct app *a = r->app;
    if (r->body_declared > r->body_limit) {
        char msg[160];
        snprintf(msg, sizeof(msg),
                 "the request body (%lld bytes) is larger than the limit of %lld MB",
                 (long long)r->body_declared, (long long)(a->max_upload_bytes >> 20));
        answer_after_body(r, errors_http_status(SD_ETOOBIG), error_json(SD_ETOOBIG, msg, "file"));
        return;
    }
    if (atomic_load(&a->draining)) {
        answer_after_body(r, errors_condition_status(HTTP_COND_UNAVAILABLE),
                          condition_json(HTTP_COND_UNAVAILABLE, "the service is shutting down"));
        return;
    }
    char path[1100];
    struct sd_error err = {0};
    snprintf(path, sizeof(path), "%s/%s.part", a->uploads_dir, r->id);
    if (upload_create(r->conn, path, a->max_upload_bytes, a->cfg.allowed_formats, &r->up, &err) !=
        SD_OK)
        answer_after_body(r, errors_http_status(err.code), error_json(err.code, err.msg, NULL));
}

/* The gate's refusal (401 / 429) as an error body from the one status table. */
static json_t *denied_json(const struct http_request *r)
{
    enum sd_err code = r->adm.status == 401 ? SD_EAUTH : SD_EBUSY;
    return errors_body(r->adm.message, errors_http_type(code), NULL, r->adm.code);
}

/*
 * THE authentication and rate-limit check: every request, before routing
 * decides anything else and before any handler runs. Unknown paths count
 * as protected routes, so they answer 401 rather than reveal the API.
 */
static bool admit(struct http_request *r)
{
    char peer[INET6_ADDRSTRLEN] = "";
    if (r->hc)
        snprintf(peer, sizeof(peer), "%s", r->hc->peer);
    else
        peer_address(r->conn, peer, sizeof(peer));
    auth_gate_admit(r->srv->gate, r, peer, r->hc && !r->hc->counted,
                    r->route ? r->route->flags : 0, &r->adm);
    return r->adm.status == 0;
}

/* What the headers alone decide: an early answer (answer_after_body), or the upload. */
static void decide(struct http_request *r)
{
    bool wrong_method = false;
    char path[256];
    snprintf(path, sizeof(path), "%s", r->path);
    r->route = router_match(r->method, path, r->param, sizeof(r->param), &wrong_method);
    /* the multipart envelope and text fields get 1 MiB on top of the file limit */
    if (r->route && (r->route->flags & ROUTE_MULTIPART))
        r->body_limit = r->app->max_upload_bytes + (1 << 20);
    if (r->route && (r->route->flags & ROUTE_JSON))
        r->body_limit = HTTP_JSON_BODY_MAX;
    if (!admit(r)) {
        answer_after_body(r, r->adm.status, denied_json(r));
        return;
    }
    if (!r->route) {
        char msg[256];
        snprintf(msg, sizeof(msg), "%s %.160s: %s", r->method, r->path,
                 wrong_method ? "method not allowed" : "no such endpoint");
        enum http_condition c = wrong_method ? HTTP_COND_METHOD : HTTP_COND_NO_ROUTE;
        answer_after_body(r, errors_condition_status(c), condition_json(c, msg));
        return;
    }
    if (!r->app->cfg.api && !(r->route->flags & (ROUTE_PROBE | ROUTE_METRICS))) {
        answer_after_body(r, errors_condition_status(HTTP_COND_NO_ROUTE),
                          condition_json(HTTP_COND_NO_ROUTE,
                                         "this node is a worker (scribed worker): it serves"
                                         " only /health and /metrics"));
        return;
    }
    if (r->route->flags & ROUTE_MULTIPART)
        begin_multipart(r);
    else if ((r->route->flags & ROUTE_JSON) && r->body_declared > r->body_limit)
        answer_after_body(r, errors_http_status(SD_ETOOBIG),
                          error_json(SD_ETOOBIG, "the JSON body is larger than 64 KiB", NULL));
}

static enum MHD_Result first_call(struct http_request *r, const char *version)
{
    char msg[256];
    enum sd_err rc = check_protocol(r, version, msg, sizeof(msg));
    const char *cl = http_header(r, MHD_HTTP_HEADER_CONTENT_LENGTH);
    r->body_declared = cl ? strtoll(cl, NULL, 10) : -1;
    r->body_limit = DROP_BODY_MAX; /* decide() raises it for uploads */
    if (rc != SD_OK) /* the body cannot be trusted to be one (two lengths): no reading it */
        return answer_raw(r, errors_http_status(rc), error_json(rc, msg, NULL), LINGER_S);
    decide(r);
    if (r->early_body && r->body_declared > DROP_BODY_MAX)
        return answer_early_raw(r); /* too much to read for nothing */
    /* answer on the next calls, after the body: answering now would reset the connection */
    return MHD_YES;
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *c, const char *url,
                                 const char *method, const char *version,
                                 const char *upload_data, size_t *upload_data_size, void **ctx)
{
    struct http_request *r = *ctx;
    if (!r) {
        r = request_new((struct http_server *)cls, c, url, method);
        if (!r)
            return MHD_NO;
        *ctx = r;
        return first_call(r, version);
    }
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        r->body_bytes += (int64_t)n;
        if (!conn_guard_body(r->srv->guard, r->guard, n)) /* a slow client: no long lingering */
            return answer_raw(r, 408,
                              errors_body("the request body is arriving too slowly",
                                          "invalid_request_error", NULL, "request_timeout"),
                              1.0);
        if (r->early_body) /* nobody reads this body: drop it, up to a bound */
            return r->body_bytes > DROP_BODY_MAX ? answer_early_raw(r) : MHD_YES;
        if (r->up) {
            struct sd_error err = {0};
            if (upload_feed(r->up, upload_data, n, &err) != SD_OK)
                return abort_raw(r, err.code, err.msg);
        } else if (r->route && (r->route->flags & ROUTE_JSON)) {
            if (r->body_bytes > r->body_limit)
                return abort_raw(r, SD_ETOOBIG, "the JSON body is larger than 64 KiB");
            if (!body_append(r, upload_data, n))
                return abort_raw(r, SD_ENOMEM, "out of memory reading the body");
        } else if (r->body_bytes > r->body_limit) {
            return abort_raw(r, SD_ETOOBIG, "unexpected request body");
        }
        return MHD_YES;
    }
    if (r->status)
        return MHD_YES;
    if (r->early_body) {
        json_t *b = r->early_body;
        r->early_body = NULL;
        http_reply_json(r, r->early_status, b);
        return r->result;
    }
    if (r->up) {
        struct sd_error err = {0};
        if (upload_finish(r->up, &err) != SD_OK) {
            http_reply_error(r, err.code, err.msg, err.code == SD_ETOOBIG ? "file" : NULL);
            return r->result;
        }
    }
    conn_guard_handler(r->srv->guard, r->guard);
    r->route->fn(r);
    if (!r->status)
        http_reply_error(r, SD_EINTERNAL, "the handler gave no answer", NULL);
    return r->result;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **ctx,
                         enum MHD_RequestTerminationCode toe)
{
    struct app *a = cls;
    struct http_request *r = *ctx;
    (void)c;
    if (!r)
        return;
    *ctx = NULL;
    int status = r->status ? r->status : 499; /* nginx's "client closed request" */
    const char *route = r->route ? r->route->name : "unmatched";
    metrics_http(a->metrics, route, status);
    double ms = (sd_mono_s() - r->t0) * 1000.0;
    /* 503 is a state (loading, draining), not a fault */
    enum log_level lv = status == 503 ? LOG_WARN : status >= 500 ? LOG_ERROR : LOG_INFO;
    /* health probes every 30 s would drown the log: debug level unless they fail */
    if (r->route && strcmp(route, "health") == 0 && status == 200)
        lv = LOG_DEBUG;
    log_event(a->log, lv, "http.request",
              (struct log_field[]){LOG_STR("req", r->id), LOG_STR("method", r->method),
                                   LOG_STR("path", r->path), LOG_STR("route", route),
                                   LOG_I64("status", status), LOG_F64("ms", ms),
                                   LOG_I64("bytes_in", r->body_bytes),
                                   LOG_STR("key", r->adm.principal[0] ? r->adm.principal : NULL),
                                   LOG_STR("deny", r->adm.deny),
                                   LOG_BOOL("completed", toe == MHD_REQUEST_TERMINATED_COMPLETED_OK),
                                   LOG_END});
    if (r->upgrade && toe != MHD_REQUEST_TERMINATED_COMPLETED_OK) {
        /* the 101 never went out: the upgrade handler will not run */
        if (r->upgrade->drop)
            r->upgrade->drop(r->upgrade->user);
        free(r->upgrade);
    }
    json_decref(r->early_body);
    free(r->body);
    upload_destroy(r->up);
    auth_gate_release(r->srv->gate, &r->adm);
    conn_guard_request_done(r->srv->guard, r->guard);
    free(r);
}

/*
 * Each connection's slow-client clock and its place in its address's count
 * live from accept to close (before MHD closes the fd).
 */
static void on_connection(void *cls, struct MHD_Connection *c, void **socket_ctx,
                          enum MHD_ConnectionNotificationCode code)
{
    struct http_server *s = cls;
    struct http_conn *hc = *socket_ctx;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        hc = calloc(1, sizeof(*hc));
        if (hc) {
            const union MHD_ConnectionInfo *ci =
                MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
            hc->guard = conn_guard_open(s->guard, ci ? (int)ci->connect_fd : -1);
            peer_address(c, hc->peer, sizeof(hc->peer));
            hc->counted = auth_gate_connect(s->gate, hc->peer);
        }
        *socket_ctx = hc;
    } else if (hc) {
        conn_guard_close(s->guard, hc->guard);
        if (hc->counted)
            auth_gate_disconnect(s->gate, hc->peer);
        free(hc);
        *socket_ctx = NULL;
    }
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    struct app *a = cls;
    char msg[512];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    log_event(a->log, LOG_DEBUG, "http.mhd", (struct log_field[]){LOG_STR("msg", msg), LOG_END});
}

enum sd_err http_listen(const char *host, int port, int *fd_out, struct sd_error *err)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *ai = NULL;
    char port_s[16];
    snprintf(port_s, sizeof(port_s), "%d", port);
    int gai = getaddrinfo(host && *host ? host : NULL, port_s, &hints, &ai);
    if (gai != 0)
        return sd_fail(err, SD_EINVAL, "--host %s: %s", host, gai_strerror(gai));
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1, e = 0;
    if (fd < 0) {
        e = errno;
    } else {
        /*
         * SO_REUSEADDR: a restart may bind while the last run's connections
         * linger in TIME_WAIT. Never SO_REUSEPORT: a second server would bind
         * too, and the kernel would split requests between the two.
         */
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (ai->ai_family == AF_INET6) /* "::" serves IPv6 only, as MHD's own socket did */
            setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, SOMAXCONN) != 0)
            e = errno;
    }
    freeaddrinfo(ai);
    if (e != 0) {
        if (fd >= 0)
            close(fd);
        return sd_fail(err, SD_EIO, "cannot listen on %s port %d: %s%s", host, port, strerror(e),
                       e == EADDRINUSE ? " (is another scribed serve running there?)" : "");
    }
    *fd_out = fd;
    return SD_OK;
}

enum sd_err http_start(struct app *app, int listen_fd, struct http_server **out,
                       struct sd_error *err)
{
    struct http_server *s = calloc(1, sizeof(*s));
    if (!s) {
        close(listen_fd);
        return sd_fail(err, SD_ENOMEM, "http server");
    }
    s->app = app;
    struct conn_guard_opts go = {.header_timeout_s = (double)app->cfg.header_timeout_s,
                                 .body_timeout_s = (double)app->cfg.body_timeout_s,
                                 .body_min_rate = (double)app->cfg.body_min_rate};
    enum sd_err rc = auth_gate_create(&app->cfg, app->store, app->log, &s->gate, err);
    if (rc == SD_OK)
        rc = conn_guard_start(&go, &s->guard, err);
    if (rc != SD_OK) {
        auth_gate_destroy(s->gate);
        free(s);
        close(listen_fd);
        return rc;
    }
    struct sockaddr_storage bound;
    socklen_t blen = sizeof(bound);
    bool v6 = getsockname(listen_fd, (struct sockaddr *)&bound, &blen) == 0 &&
              bound.ss_family == AF_INET6;
    /*
     * Connections past --max-connections-per-ip are answered 429 and closed
     * (auth_gate_connect); past twice that, a flood rather than a client's
     * pool, MHD closes them at accept, before any thread serves them.
     */
    unsigned per_ip_hard = (unsigned)app->cfg.max_connections_per_ip * 2u;
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                     MHD_USE_POLL | MHD_USE_ITC | MHD_USE_ERROR_LOG | MHD_ALLOW_UPGRADE;
    if (v6)
        flags |= MHD_USE_IPv6;
    /* MHD owns listen_fd once started (MHD_stop_daemon closes it) */
    s->d = MHD_start_daemon(
        flags, 0, NULL, NULL, on_access, s, MHD_OPTION_LISTEN_SOCKET, listen_fd,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, app, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)app->cfg.max_connections, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)app->cfg.idle_timeout_s, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)64 * 1024,
        MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, app, MHD_OPTION_NOTIFY_CONNECTION, on_connection,
        s, MHD_OPTION_PER_IP_CONNECTION_LIMIT, per_ip_hard, MHD_OPTION_END);
    if (!s->d) {
        conn_guard_stop(s->guard);
        auth_gate_destroy(s->gate);
        free(s);
        close(listen_fd);
        return sd_fail(err, SD_EIO, "cannot start the HTTP server");
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di ? di->port : 0;
    *out = s;
    return SD_OK;
}

int http_port(const struct http_server *s)
{
    return s ? s->port : 0;
}

void http_quiesce(struct http_server *s)
{
    if (!s || s->quiesced)
        return;
    MHD_socket fd = MHD_quiesce_daemon(s->d);
    if (fd != MHD_INVALID_SOCKET)
        close(fd);
    s->quiesced = true;
}

void http_stop(struct http_server *s)
{
    if (!s)
        return;
    MHD_stop_daemon(s->d);
    conn_guard_stop(s->guard);
    auth_gate_destroy(s->gate);
    free(s);
}

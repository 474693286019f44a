/*
 * errors.c - the one table from error codes to HTTP statuses (see errors.h).
 * SD_EBUSY is 429 (queue full, with Retry-After); a service that cannot take
 * work at all (no model yet, draining) is the 503 condition instead.
 */
#include "server/errors.h"

struct err_row {
    enum sd_err code;
    int status;
    const char *type;
};

static const struct err_row rows[] = {
    {SD_EINVAL, 400, "invalid_request_error"},
    {SD_EFORMAT, 422, "invalid_request_error"},
    {SD_EUNSUPPORTED, 415, "invalid_request_error"},
    {SD_ETOOBIG, 413, "invalid_request_error"},
    {SD_ENOTFOUND, 404, "invalid_request_error"},
    {SD_EBUSY, 429, "rate_limit_error"},
    {SD_ETIMEOUT, 504, "timeout_error"},
    {SD_ECANCELLED, 499, "cancelled"},
    {SD_EAUTH, 401, "authentication_error"},
    {SD_ENOMEM, 503, "server_error"},
    {SD_EIO, 500, "server_error"},
    {SD_EINTERNAL, 500, "server_error"},
    {SD_ENOSPACE, 507, "server_error"},
};

static const struct err_row *find(enum sd_err code)
{
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
        if (rows[i].code == code)
            return &rows[i];
    return NULL;
}

int errors_http_status(enum sd_err code)
{
    const struct err_row *r = find(code);
    return r ? r->status : 500;
}

const char *errors_http_type(enum sd_err code)
{
    const struct err_row *r = find(code);
    return r ? r->type : "server_error";
}

int errors_condition_status(enum http_condition c)
{
    switch (c) {
    case HTTP_COND_NO_ROUTE: return 404;
    case HTTP_COND_METHOD: return 405;
    case HTTP_COND_UNAVAILABLE: return 503;
    case HTTP_COND_NO_MODEL: return 404;
    case HTTP_COND_CONFLICT: return 409;
    case HTTP_COND_NONE: break;
    }
    return 500;
}

const char *errors_condition_type(enum http_condition c)
{
    return c == HTTP_COND_UNAVAILABLE ? "server_error" : "invalid_request_error";
}

const char *errors_condition_code(enum http_condition c)
{
    switch (c) {
    case HTTP_COND_NO_ROUTE: return "unknown_url";
    case HTTP_COND_METHOD: return "method_not_allowed";
    case HTTP_COND_UNAVAILABLE: return "service_unavailable";
    case HTTP_COND_NO_MODEL: return "model_not_found";
    case HTTP_COND_CONFLICT: return "conflict";
    case HTTP_COND_NONE: break;
    }
    return "internal_error";
}

json_t *errors_body(const char *message, const char *type, const char *param, const char *code)
{
    json_t *e = json_object();
    json_t *msg = json_string(message ? message : "");
    json_object_set_new(e, "message", msg ? msg : json_string("(message was not valid UTF-8)"));
    json_object_set_new(e, "type", json_string(type));
    json_object_set_new(e, "param", param ? json_string(param) : json_null());
    json_object_set_new(e, "code", code ? json_string(code) : json_null());
    json_t *o = json_object();
    json_object_set_new(o, "error", e);
    return o;
}

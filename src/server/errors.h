/*
 * errors.h - THE mapping from enum sd_err to an HTTP status and an
 * OpenAI-style error type, plus the few protocol conditions that have no
 * sd_err (unknown route, wrong method, service not ready). Routes never
 * choose an error status themselves; they pass the code here.
 */
#ifndef SD_SERVER_ERRORS_H
#define SD_SERVER_ERRORS_H

#include <jansson.h>

#include "util/err.h"

enum http_condition {
    HTTP_COND_NONE = 0,
    HTTP_COND_NO_ROUTE,    /* 404 */
    HTTP_COND_METHOD,      /* 405 */
    HTTP_COND_UNAVAILABLE, /* 503: model loading / failed, shutting down */
    HTTP_COND_NO_MODEL,    /* 404 model_not_found: a model id nobody offers (param "model") */
    HTTP_COND_CONFLICT,    /* 409: the resource is not in a state that allows it (results of a running job) */
};

int errors_http_status(enum sd_err code);
/* OpenAI's error "type": "invalid_request_error", "server_error", ... */
const char *errors_http_type(enum sd_err code);
int errors_condition_status(enum http_condition c);
const char *errors_condition_type(enum http_condition c);
const char *errors_condition_code(enum http_condition c);
/* {"error": {"message", "type", "param", "code"}}; param may be NULL. Caller owns. */
json_t *errors_body(const char *message, const char *type, const char *param, const char *code);

#endif

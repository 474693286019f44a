/*
 * router.c - the route table: method + path pattern -> handler. Patterns are
 * literal segments plus at most one {param} segment. Matching is a linear
 * scan (a dozen routes); the table is the API's table of contents.
 * Every route needs an API key (while auth is on) unless flagged ROUTE_OPEN
 * or ROUTE_PROBE; http.c checks that before any handler runs.
 */
#include <string.h>

#include "server/routes.h"

static const struct route routes[] = {
    {"GET", "/health", "health", route_health, ROUTE_PROBE},
    {"HEAD", "/health", "health", route_health, ROUTE_PROBE},
    {"GET", "/metrics", "metrics", route_metrics, ROUTE_METRICS},
    {"GET", "/v1/models", "models", route_models, 0},
    {"GET", "/v1/models/{id}", "model_get", route_model_get, 0},
    {"POST", "/v1/audio/transcriptions", "transcriptions", route_transcriptions, ROUTE_MULTIPART},
    {"POST", "/v1/audio/translations", "translations", route_translations, ROUTE_MULTIPART},
    {"POST", "/v1/audio/speech", "speech", route_speech, ROUTE_JSON},
    {"GET", "/v1/audio/voices", "voices", route_voices, 0},
    {"POST", "/inference", "inference", route_inference, ROUTE_MULTIPART},
    {"POST", "/v1/jobs", "jobs_create", route_jobs_create, ROUTE_MULTIPART},
    {"GET", "/v1/jobs", "jobs_list", route_jobs_list, 0},
    {"GET", "/v1/jobs/{id}", "job_get", route_job_get, 0},
    {"DELETE", "/v1/jobs/{id}", "job_delete", route_job_delete, 0},
    {"GET", "/v1/jobs/{id}/result", "job_result", route_job_result, 0},
    {"GET", "/v1/jobs/{id}/extraction", "job_extraction", route_job_extraction, 0},
    {"GET", "/v1/extraction/templates", "extraction_templates", route_extraction_templates, 0},
    {"GET", "/v1/realtime", "realtime", route_realtime, ROUTE_QUERY_KEY},
    /* The web page: last, so every API route above matches first. */
    {"GET", "/", "web", route_web, ROUTE_OPEN},
    {"HEAD", "/", "web", route_web, ROUTE_OPEN},
    {"GET", "/{asset}", "web", route_web, ROUTE_OPEN | ROUTE_FALLBACK},
    {"HEAD", "/{asset}", "web", route_web, ROUTE_OPEN | ROUTE_FALLBACK},
};

/* Compares one pattern with a path; copies the {param} segment on a match. */
static bool match(const char *pattern, const char *path, char *param, size_t param_n)
{
    while (*pattern && *path) {
        if (pattern[0] == '{') {
            const char *pend = strchr(pattern, '}');
            const char *seg_end = strchr(path, '/');
            size_t len = seg_end ? (size_t)(seg_end - path) : strlen(path);
            if (!pend || len == 0 || len >= param_n)
                return false;
            memcpy(param, path, len);
            param[len] = '\0';
            pattern = pend + 1;
            path += len;
            continue;
        }
        if (*pattern != *path)
            return false;
        pattern++;
        path++;
    }
    /* one trailing slash is tolerated ("/v1/models/") */
    if (!*pattern && path[0] == '/' && path[1] == '\0')
        return true;
    return !*pattern && !*path;
}

const struct route *router_match(const char *method, const char *path, char *param,
                                 size_t param_n, bool *method_mismatch)
{
    *method_mismatch = false;
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        if (!match(routes[i].pattern, path, param, param_n))
            continue;
        if (strcmp(routes[i].method, method) == 0)
            return &routes[i];
        if (!(routes[i].flags & ROUTE_FALLBACK))
            *method_mismatch = true;
    }
    param[0] = '\0';
    return NULL;
}

/*
 * models.c - model ids, /v1/models and /v1/models/{id}, and the check of a
 * request's `model` field (see models.h for the naming rules).
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "pipeline/pipeline.h"
#include "server/app.h"
#include "server/models.h"
#include "server/routes.h"

/* The file's name as an id: basename, no ".bin", no "ggml-", lowercase, [a-z0-9._-]. */
static void slug_from_path(const char *path, char *out, size_t n)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    if (strncmp(base, "ggml-", 5) == 0)
        base += 5;
    size_t len = strlen(base);
    if (len > 4 && strcmp(base + len - 4, ".bin") == 0)
        len -= 4;
    size_t o = 0;
    for (size_t i = 0; i < len && o + 1 < n; i++) {
        unsigned char c = (unsigned char)tolower((unsigned char)base[i]);
        out[o++] = isalnum(c) || c == '.' || c == '_' || c == '-' ? (char)c : '-';
    }
    if (n)
        out[o] = '\0';
    if (o == 0)
        snprintf(out, n, "model");
}

void models_slug(const char *desc, const char *path, char *out, size_t n)
{
    /* desc is "<shape>[.en] <type>", e.g. "base.en f16", "custom-64x2+2.en f16" */
    const char *space = strchr(desc, ' ');
    size_t shape_len = space ? (size_t)(space - desc) : strlen(desc);
    const char *type = space ? space + 1 : "";
    if (shape_len == 0 || strncmp(desc, "custom-", 7) == 0) {
        slug_from_path(path, out, n);
        return;
    }
    bool plain = !*type || strcmp(type, "f16") == 0 || strcmp(type, "f32") == 0;
    snprintf(out, n, "%.*s%s%s", (int)shape_len, desc, plain ? "" : "-", plain ? "" : type);
}

/* The loaded model's entry; false unless the model is loaded. */
static bool loaded_entry(struct app *a, struct model_entry *e)
{
    struct pipeline *p = a->jobs->pipeline;
    if (pipeline_status(p, NULL, 0) != PIPELINE_READY)
        return false;
    models_slug(pipeline_model_name(p), a->model_path, e->id, sizeof(e->id));
    struct stat st;
    e->created = stat(a->model_path, &st) == 0 ? (int64_t)st.st_mtime : 0;
    return true;
}

int models_list(struct app *a, struct model_entry *out, int max)
{
    struct model_entry e;
    if (max < 2 || !loaded_entry(a, &e))
        return 0;
    out[0] = e;
    out[1] = e;
    snprintf(out[1].id, sizeof(out[1].id), "%s", MODELS_ALIAS);
    return 2;
}

bool models_find(struct app *a, const char *id, struct model_entry *out)
{
    struct model_entry list[2];
    if (pipeline_status(a->jobs->pipeline, NULL, 0) == PIPELINE_LOADING)
        return true; /* the slug is not known yet; the request waits for the model */
    int n = models_list(a, list, 2);
    for (int i = 0; i < n; i++) {
        if (strcmp(list[i].id, id) == 0) {
            if (out)
                *out = list[i];
            return true;
        }
    }
    return false;
}

void models_reply_not_found(struct http_request *r, const char *id)
{
    char msg[MODELS_ID_MAX + 64];
    snprintf(msg, sizeof(msg), "The model '%.*s' does not exist", MODELS_ID_MAX, id);
    /* the param is what OpenAI names: the field (or path part) holding the id */
    http_reply_json(r, errors_condition_status(HTTP_COND_NO_MODEL),
                    errors_body(msg, errors_condition_type(HTTP_COND_NO_MODEL), "model",
                                errors_condition_code(HTTP_COND_NO_MODEL)));
}

static json_t *entry_json(const struct model_entry *e)
{
    return json_pack("{s:s, s:s, s:I, s:s}", "id", e->id, "object", "model", "created",
                     (json_int_t)e->created, "owned_by", "scribed");
}

void route_models(struct http_request *r)
{
    struct model_entry list[2];
    int n = models_list(http_app(r), list, 2);
    json_t *data = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(data, entry_json(&list[i]));
    route_speech_models(data); /* text to speech: tts-1, ... and the voices */
    http_reply_json(r, 200, json_pack("{s:s, s:o}", "object", "list", "data", data));
}

void route_model_get(struct http_request *r)
{
    struct app *a = http_app(r);
    struct model_entry e;
    if (pipeline_status(a->jobs->pipeline, NULL, 0) == PIPELINE_LOADING) {
        http_reply_condition(r, HTTP_COND_UNAVAILABLE, "the model is still loading");
        return;
    }
    if (!models_find(a, http_path_param(r), &e)) {
        /* the speech models and voices are listed too, so they can be retrieved */
        json_t *speech = json_array(), *v;
        size_t i;
        route_speech_models(speech);
        json_array_foreach(speech, i, v) {
            if (strcmp(json_string_value(json_object_get(v, "id")), http_path_param(r)) == 0) {
                http_reply_json(r, 200, json_incref(v));
                json_decref(speech);
                return;
            }
        }
        json_decref(speech);
        models_reply_not_found(r, http_path_param(r));
        return;
    }
    http_reply_json(r, 200, entry_json(&e));
}

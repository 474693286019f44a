/*
 * models.h - the models the service offers, as OpenAI's /v1/models shows
 * them, and the check of a request's `model` field. One module owns the
 * names: the loaded model's id (a stable slug), its alias whisper-1, and
 * OpenAI's 404 model_not_found answer for anything else.
 *
 * Ids: a known Whisper shape is named as whisper.cpp names its files, with
 * the quantization when it is not f16/f32: "base.en", "large-v3",
 * "large-v3-q5_0", "tiny". A shape that is none of the published ones (the
 * random-weight test models) takes the file's name: basename without
 * ".bin" and a leading "ggml-", lowercased, other characters than
 * [a-z0-9._-] as '-' ("micro-en.f16.bin" -> "micro-en.f16").
 *
 * Threads: every function may be called from any connection thread; the
 * loaded model never changes while the service runs.
 */
#ifndef SD_SERVER_MODELS_H
#define SD_SERVER_MODELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MODELS_ID_MAX 128
#define MODELS_ALIAS "whisper-1" /* what clients written for OpenAI ask for */

struct app;
struct http_request;

/* The slug for a model described as "base.en f16" (whisper_model_describe) at path. */
void models_slug(const char *desc, const char *path, char *out, size_t n);

struct model_entry {
    char id[MODELS_ID_MAX];
    int64_t created;       /* the model file's mtime (Unix seconds) */
};

/*
 * The models: the loaded one's slug, then its alias. None until the model
 * is loaded (a service still loading or without a model offers nothing).
 * Returns the count written (at most max).
 */
int models_list(struct app *a, struct model_entry *out, int max);
/*
 * True when id names an offered model (*out filled; out may be NULL). While
 * the model is still loading its slug is not known yet: any id is taken
 * then (the request waits for the model like every other).
 */
bool models_find(struct app *a, const char *id, struct model_entry *out);
/* OpenAI's 404: {"error": {"message": "The model 'x' does not exist", ..., "code": "model_not_found"}}. */
void models_reply_not_found(struct http_request *r, const char *id);

#endif

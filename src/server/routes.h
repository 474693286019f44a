/*
 * routes.h - the route handlers (route_*.c), wired up in router.c.
 * Each runs once the request body is in and answers through http.h.
 */
#ifndef SD_SERVER_ROUTES_H
#define SD_SERVER_ROUTES_H

#include "server/http.h"

/* route_status.c */
void route_health(struct http_request *r);
void route_metrics(struct http_request *r);
/* models.c */
void route_models(struct http_request *r);
void route_model_get(struct http_request *r);
/* route_audio.c: synchronous transcription (OpenAI + whisper.cpp shapes) */
void route_transcriptions(struct http_request *r);
void route_translations(struct http_request *r);
void route_inference(struct http_request *r);
/* route_speech.c: text to speech */
void route_speech(struct http_request *r);
void route_voices(struct http_request *r);
/* The speech models and voices, appended to GET /v1/models's data array. */
void route_speech_models(json_t *data);
/* Prometheus text of the synthesis slots and counters (caller frees; NULL: ENOMEM). */
char *route_speech_metrics(struct http_request *r);
/* route_jobs.c: async jobs */
void route_jobs_create(struct http_request *r);
void route_jobs_list(struct http_request *r);
void route_job_get(struct http_request *r);
void route_job_result(struct http_request *r);
void route_job_delete(struct http_request *r);
void route_job_extraction(struct http_request *r);
/* route_extraction.c: the extraction templates the server was started with */
void route_extraction_templates(struct http_request *r);
/* route_realtime.c: live transcription over a WebSocket */
void route_realtime(struct http_request *r);
/* route_web.c: the web page at / (files compiled in from web/). */
void route_web(struct http_request *r);


/* fields.c: request fields of the multipart endpoints -> request parameters */
#include "pipeline/stt_params.h"
#include "server/upload.h"

enum fields_dialect {
    FIELDS_TRANSCRIPTION, /* OpenAI /v1/audio/transcriptions */
    FIELDS_TRANSLATION,   /* OpenAI /v1/audio/translations */
    FIELDS_WHISPER_CPP,   /* whisper.cpp /inference names */
    FIELDS_JOB,           /* /v1/jobs: transcription fields + callback_url */
};

#define FIELDS_PARAM_MAX 64

/*
 * Checks the upload (present, non-empty, allowed type) and reads the request
 * parameters into *p (initialised by the caller; clear it after). On failure
 * param (FIELDS_PARAM_MAX bytes) names the offending field for the error body.
 */
enum sd_err fields_parse(const struct upload *u, enum fields_dialect d, struct stt_params *p,
                         const char **callback_url, char *param, struct sd_error *err);
/*
 * A multipart endpoint's request, ready to queue: fields_parse on the
 * request's upload, and a model that can run (not failed to load). False
 * after replying with the error (400, 415, 503). Clear *p either way.
 */
bool fields_read_request(struct http_request *r, enum fields_dialect d, struct stt_params *p,
                         const char **callback_url);

#endif

/*
 * llm.h - a client for a language model's HTTP API, for structured output
 * only: one call sends a system prompt and a conversation and gets back a
 * JSON object shaped by a schema. Two protocols:
 *
 *   openai     POST {url}/chat/completions, Authorization: Bearer KEY,
 *              response_format {"type":"json_schema", "json_schema":
 *              {"name", "schema", "strict": true}}; the object is the JSON
 *              text of choices[0].message.content. OpenAI, vLLM, llama.cpp's
 *              server, Ollama and LocalAI speak it.
 *   anthropic  POST {url}/messages, x-api-key: KEY, anthropic-version:
 *              2023-06-01; one tool whose input_schema is the schema and
 *              tool_choice {"type":"tool","name"}; the object is the
 *              tool_use block's input.
 *
 * url is the API base as the providers' SDKs take it
 * ("https://api.openai.com/v1", "https://api.anthropic.com/v1",
 * "http://localhost:8080/v1"). The key goes into a header and nowhere else:
 * this layer logs nothing, and error messages never contain it.
 *
 * Robustness: a connect timeout and a total timeout per request; 429, 5xx
 * and connection failures are retried up to max_retries times with
 * exponential backoff (Retry-After, in seconds, is honoured, capped at a
 * minute); a total timeout is not retried (a model that is this slow
 * would be again). Answers above max_response_bytes are refused. At most
 * `concurrency` requests run at once; more wait for a slot.
 *
 * Thread-safe: one client is shared by every caller.
 */
#ifndef SD_LLM_LLM_H
#define SD_LLM_LLM_H

#include <jansson.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

enum llm_protocol { LLM_OPENAI, LLM_ANTHROPIC };

/* "openai" | "anthropic" -> protocol; false if neither. */
bool llm_protocol_parse(const char *name, enum llm_protocol *out);
const char *llm_protocol_name(enum llm_protocol p);

struct llm_opts {
    const char *url;              /* API base, without the trailing endpoint */
    enum llm_protocol protocol;
    const char *model;
    const char *api_key;          /* may be "" (local servers) */
    int timeout_s;                /* one request, end to end */
    int connect_timeout_s;
    int max_retries;              /* after the first request */
    int retry_backoff_ms;         /* first retry delay; doubles each retry */
    int concurrency;              /* requests in flight at once */
    int max_tokens;               /* the answer's token budget (Anthropic requires one) */
    size_t max_response_bytes;
};

struct llm_client;

/* Copies what it needs from *o. Caller owns *out: llm_client_destroy(). */
enum sd_err llm_client_create(const struct llm_opts *o, struct llm_client **out,
                              struct sd_error *err);
void llm_client_destroy(struct llm_client *c);

enum llm_protocol llm_client_protocol(const struct llm_client *c);
const char *llm_client_model(const struct llm_client *c);
/*
 * Whether the API answered the last request at the HTTP level (any status):
 * 1 yes, 0 no (connection failure or timeout), -1 nothing sent yet. /health
 * reports this rather than probing a paid API on every check.
 */
int llm_client_reachable(const struct llm_client *c);

/* What calls cost, added up over every request one operation made. */
struct llm_stats {
    int requests;                 /* HTTP requests sent, retries included */
    int failures;                 /* of those: not answered with a usable 2xx */
    double seconds;               /* wall time of the requests (backoff waits excluded) */
    int64_t input_tokens, output_tokens;
};

struct llm_message {
    const char *role;             /* "user" or "assistant" */
    const char *content;
};

/*
 * One structured-output call. On SD_OK *out is the object the model
 * answered (caller owns: json_decref), not yet validated against the
 * schema; *raw (caller frees; may be NULL on error) is its text as the
 * model sent it, for a repair turn. SD_EFORMAT: the model answered but not
 * with a JSON object (*raw then holds what it said). SD_ETIMEOUT, SD_EIO,
 * SD_EBUSY (429 after the retries), SD_EAUTH (401/403), SD_EINVAL (other
 * 4xx), SD_ETOOBIG (answer over the cap), SD_ECANCELLED (*cancel became
 * true: a request in flight, a wait for a slot or a backoff is cut short
 * within ~100 ms). cancel may be NULL. *st accumulates.
 */
enum sd_err llm_structured(struct llm_client *c, const char *system,
                           const struct llm_message *msgs, int n_msgs, const char *schema_name,
                           const json_t *schema, const atomic_bool *cancel, json_t **out,
                           char **raw, struct llm_stats *st, struct sd_error *err);

/* ---- templates.c: named extraction templates from a directory ---------- */

struct llm_template {
    char name[65];                /* the file's name without .json */
    char *instructions;
    json_t *schema;
};

struct llm_templates {
    struct llm_template *v;
    int n;
};

/*
 * Loads every NAME.json in dir ({"instructions": "...", "schema": {...}};
 * NAME of letters, digits, '-' and '_'). SD_EINVAL names the bad file and
 * what is wrong with it. Caller owns *out: llm_templates_free().
 */
enum sd_err llm_templates_load(const char *dir, struct llm_templates *out, struct sd_error *err);
void llm_templates_free(struct llm_templates *t);
const struct llm_template *llm_templates_find(const struct llm_templates *t, const char *name);

/* ---- extract.c: transcript -> validated object, with one repair round --- */

/*
 * Runs one extraction and returns its record (never NULL unless out of
 * memory; caller owns): {"status": "succeeded"|"failed", "template",
 * "model", "data" (the object, or null), "usage": {"input_tokens",
 * "output_tokens"}, "timings": {"llm_s", "requests"}, "error" (null or
 * {"code", "message"})}. An answer that fails the schema (or is not JSON)
 * is sent back once with the errors; a second failure fails the record.
 * *st (may be NULL) receives the call's costs for metrics; cancel (may be
 * NULL) stops it early (see llm_structured).
 */
json_t *llm_extract(struct llm_client *c, const char *template_name, const char *instructions,
                    const json_t *schema, const char *transcript, const atomic_bool *cancel,
                    struct llm_stats *st);

#endif

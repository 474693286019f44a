/*
 * stt_params.h - the parameters of a transcription request (the table is
 * stt_params.def) and their meaning for the engine.
 *
 * A request's parameters arrive as form fields, flags or a stored job's
 * JSON (param_table.h reads each), are checked once (stt_params_check:
 * ranges are the table's, plus what needs knowledge, such as the language
 * list), and are turned into engine parameters by stt_params_to_engine, the
 * one place where request fields map onto decoding and VAD settings.
 *
 * Ownership: struct stt_params owns its strings (stt_params_clear).
 * struct stt_engine_params borrows them from the stt_params it came from.
 */
#ifndef SD_PIPELINE_STT_PARAMS_H
#define SD_PIPELINE_STT_PARAMS_H

#include <stdbool.h>
#include <stdint.h>

#include "output/format.h"
#include "pipeline/param_table.h"
#include "util/err.h"
#include "vad/vad.h"
#include "whisper/transcribe.h"

struct stt_params {
#define P_BOOL(name, def, form, wcpp, cli, help) bool name;
#define P_INT(name, def, lo, hi, form, wcpp, cli, help) int name;
#define P_FLOAT(name, def, lo, hi, form, wcpp, cli, help) float name;
#define P_ENUM(name, ctype, choices, form, wcpp, cli, help) ctype name;
#define P_TEXT(name, max, form, wcpp, cli, help) char *name;
#include "pipeline/stt_params.def"
#undef P_BOOL
#undef P_INT
#undef P_FLOAT
#undef P_ENUM
#undef P_TEXT
    uint64_t given;           /* bit STT_P_<name>: the request set it */
};

enum stt_param_id {
#define P_BOOL(name, ...) STT_P_##name,
#define P_INT(name, ...) STT_P_##name,
#define P_FLOAT(name, ...) STT_P_##name,
#define P_ENUM(name, ...) STT_P_##name,
#define P_TEXT(name, ...) STT_P_##name,
#include "pipeline/stt_params.def"
#undef P_BOOL
#undef P_INT
#undef P_FLOAT
#undef P_ENUM
#undef P_TEXT
    STT_PARAM_COUNT
};

/* The table behind struct stt_params. */
extern const struct param_table stt_param_table;

/* Sets a non-text parameter as a request would (marks it given). */
#define STT_SET(p, name, value) ((p)->name = (value), (p)->given |= 1ull << STT_P_##name)
#define STT_GIVEN(p, name) ((((p)->given) >> STT_P_##name) & 1)

void stt_params_init(struct stt_params *p);
void stt_params_clear(struct stt_params *p);
enum sd_err stt_params_copy(struct stt_params *dst, const struct stt_params *src,
                            struct sd_error *err);

/*
 * Checks what the table's ranges cannot: the language is "auto" or one
 * Whisper knows (a name such as "german" becomes its code). On SD_EINVAL
 * *param is the parameter's canonical name.
 */
enum sd_err stt_params_check(struct stt_params *p, const char **param, struct sd_error *err);

/* The given parameters as compact JSON (malloc'd; NULL on ENOMEM): what the store keeps. */
char *stt_params_to_json(const struct stt_params *p);
/* Reads stt_params_to_json's output, or the older fixed-field shape; *p initialised. */
enum sd_err stt_params_from_json(const char *json, struct stt_params *p, struct sd_error *err);

/* What the engine runs: decoding and VAD settings (strings borrowed from the request). */
struct stt_engine_params {
    struct transcribe_params decode; /* callbacks, threads and batcher are the pipeline's */
    struct vad_params vad;
    bool vad_filter;                 /* decode only speech, when a VAD model is loaded */
};

/* The one mapping of request parameters onto the engine's. */
void stt_params_to_engine(const struct stt_params *p, struct stt_engine_params *out);

#endif

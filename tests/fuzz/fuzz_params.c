/*
 * fuzz_params.c - libFuzzer target over request parameters: form fields in
 * both dialects (OpenAI's names and whisper.cpp server's), the checks that
 * follow, and the stored JSON round trip a queued job makes.
 *
 * Input: lines "name=value" (a field may repeat, as
 * timestamp_granularities[] does); the first byte picks the dialect. The
 * same input is also read as a stored job's parameter JSON.
 * Contracts: no crash, leak or sanitizer report; whatever is accepted
 * survives to_json -> from_json -> to_json unchanged (a queued job runs
 * with exactly the parameters the request gave); every refusal names a field.
 */
#include <stdint.h>
#include <string.h>

#include "fuzz_common.h"
#include "pipeline/stt_params.h"

#define MAX_FIELDS 64

struct fields {
    char *names[MAX_FIELDS];
    char *vals[MAX_FIELDS];
    int n;
};

static int get_field(void *user, const char *name, const char **vals, int max)
{
    const struct fields *f = user;
    int k = 0;
    for (int i = 0; i < f->n && k < max; i++)
        if (strcmp(f->names[i], name) == 0)
            vals[k++] = f->vals[i];
    return k;
}

static void split_fields(char *text, struct fields *f)
{
    f->n = 0;
    for (char *line = text; line && f->n < MAX_FIELDS;) {
        char *next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        char *eq = strchr(line, '=');
        if (eq) {
            *eq = '\0';
            f->names[f->n] = line;
            f->vals[f->n] = eq + 1;
            f->n++;
        }
        line = next;
    }
}

static void round_trip(const struct stt_params *p)
{
    char *a = stt_params_to_json(p);
    FUZZ_REQUIRE(a != NULL, "to_json");
    struct stt_params q;
    struct sd_error err = {0};
    FUZZ_REQUIRE(stt_params_from_json(a, &q, &err) == SD_OK, "stored parameters read back");
    char *b = stt_params_to_json(&q);
    FUZZ_REQUIRE(b != NULL && strcmp(a, b) == 0, "stored parameters unchanged by a round trip");
    free(a);
    free(b);
    stt_params_clear(&q);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    if (size == 0 || size > 8192)
        return 0;
    char *text = malloc(size);
    FUZZ_REQUIRE(text != NULL, "malloc");
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';

    /* the input as a stored job's parameters */
    struct stt_params p;
    struct sd_error err = {0};
    if (stt_params_from_json(text, &p, &err) == SD_OK)
        round_trip(&p);
    stt_params_clear(&p);

    /* the input as form fields */
    struct fields f;
    split_fields(text, &f);
    enum param_dialect d = (data[0] & 1) ? PARAM_DIALECT_WCPP : PARAM_DIALECT_FORM;
    char field[64] = "";
    stt_params_init(&p);
    enum sd_err rc = param_parse_fields(&stt_param_table, d, get_field, &f, &p, field, &err);
    if (rc == SD_OK) {
        const char *param = NULL;
        rc = stt_params_check(&p, &param, &err);
        if (rc == SD_OK) {
            round_trip(&p);
            struct stt_engine_params e;
            stt_params_to_engine(&p, &e);
        } else {
            FUZZ_REQUIRE(param != NULL && err.msg[0], "a refused check names its parameter");
        }
    } else {
        FUZZ_REQUIRE(field[0] && err.msg[0], "a refused field is named");
    }
    stt_params_clear(&p);
    free(text);
    return 0;
}

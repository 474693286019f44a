/*
 * extract.c - the extraction step of a job: after a successful
 * transcription, the template (or the request's own schema) and the
 * transcript text go to the LLM (llm/). The outcome is a record stored
 * beside the transcript; it never changes the job's status. The worker
 * thread waits for the LLM meanwhile (bounded by the client's timeouts and
 * retries, and by --llm-concurrency).
 */
#include <string.h>

#include "jobs/service.h"

bool jobs_wants_extraction(const struct stt_params *p)
{
    return (p->extract && *p->extract) || (p->extract_schema && *p->extract_schema);
}

static json_t *failed_record(const char *template_name, const char *model, const char *code,
                             const char *msg)
{
    return json_pack("{s:s, s:s?, s:s?, s:n, s:{s:i, s:i}, s:{s:f, s:i, s:i}, s:{s:s, s:s}}",
                     "status", "failed", "template", template_name, "model", model, "data",
                     "usage", "input_tokens", 0, "output_tokens", 0, "timings", "llm_s", 0.0,
                     "requests", 0, "repair_rounds", 0, "error", "code", code, "message", msg);
}

json_t *jobs_extract(struct jobs *js, const char *id, const struct stt_params *p,
                     const char *text, const atomic_bool *cancel)
{
    if (!jobs_wants_extraction(p))
        return NULL;
    const char *name = p->extract && *p->extract ? p->extract : NULL;
    json_t *rec = NULL, *inline_schema = NULL;
    struct llm_stats st = {0};
    if (!js->o.llm) {
        /* the request was checked against a configured LLM; a restart without one lands here */
        rec = failed_record(name, NULL, sd_err_name(SD_EUNSUPPORTED),
                            "no LLM is configured (--llm-url)");
    } else if (p->extract_schema && *p->extract_schema) {
        inline_schema = json_loads(p->extract_schema, 0, NULL);
        const char *ins = p->extract_instructions && *p->extract_instructions
                              ? p->extract_instructions
                              : "Extract the data the schema describes.";
        rec = inline_schema
                  ? llm_extract(js->o.llm, name, ins, inline_schema, text, cancel, &st)
                  : failed_record(name, llm_client_model(js->o.llm), sd_err_name(SD_EINVAL),
                                  "extract_schema is not JSON");
    } else {
        const struct llm_template *t = llm_templates_find(js->o.templates, name);
        rec = t ? llm_extract(js->o.llm, name, t->instructions, t->schema, text, cancel, &st)
                : failed_record(name, llm_client_model(js->o.llm), sd_err_name(SD_ENOTFOUND),
                                "no extraction template of this name (templates are read at "
                                "start)");
    }
    json_decref(inline_schema);
    if (!rec)
        return NULL;
    const char *status = json_string_value(json_object_get(rec, "status"));
    bool ok = status && strcmp(status, "succeeded") == 0;
    metrics_llm(js->metrics, ok ? "succeeded" : "failed", st.requests, st.failures, st.seconds,
                st.input_tokens, st.output_tokens);
    const char *why = json_string_value(
        json_object_get(json_object_get(rec, "error"), "message"));
    log_event(js->log, ok ? LOG_INFO : LOG_WARN, "extraction.done",
              (struct log_field[]){LOG_STR("job", id), LOG_STR("template", name),
                                   LOG_STR("status", status), LOG_I64("requests", st.requests),
                                   LOG_F64("llm_s", st.seconds),
                                   LOG_STR("error", why), LOG_END});
    return rec;
}

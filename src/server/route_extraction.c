/*
 * route_extraction.c - GET /v1/extraction/templates: the extraction
 * templates this server was started with (--extraction-templates), each
 * with its instructions and schema, so a client can see what `extract`
 * accepts and what shape the data will have.
 */
#include "server/app.h"
#include "server/routes.h"

void route_extraction_templates(struct http_request *r)
{
    struct app *a = http_app(r);
    json_t *data = json_array();
    for (int i = 0; i < a->templates.n; i++) {
        const struct llm_template *t = &a->templates.v[i];
        json_array_append_new(data, json_pack("{s:s, s:s, s:s, s:O}", "object",
                                              "extraction_template", "name", t->name,
                                              "instructions", t->instructions, "schema",
                                              t->schema));
    }
    http_reply_json(r, 200,
                    json_pack("{s:s, s:o, s:b, s:b}", "object", "list", "data", data,
                              "llm_configured", a->llm != NULL, "inline_schemas",
                              a->cfg.extraction_allow_inline != 0));
}

/* Tests of llm/templates.c: loading extraction templates, and refusing bad ones by name. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "llm/llm.h"

static void write_file(const char *dir, const char *name, const char *text)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

static void make_dir(char *tmpl)
{
    CHECK(mkdtemp(tmpl) != NULL);
}

static void remove_dir(const char *dir)
{
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
}

static const char good[] =
    "{\"instructions\": \"List the items.\", \"schema\": {\"type\": \"object\", \"properties\": "
    "{\"items\": {\"type\": \"array\", \"items\": {\"type\": \"string\"}}}}}";

TEST(templates_load_sorted_and_found_by_name)
{
    char dir[] = "/tmp/sd-templates-XXXXXX";
    make_dir(dir);
    write_file(dir, "zeta.json", good);
    write_file(dir, "alpha_1.json", good);
    write_file(dir, "notes.txt", "not a template");
    struct llm_templates t;
    struct sd_error err = {0};
    CHECK_OK(llm_templates_load(dir, &t, &err), &err);
    CHECK_EQ_INT(t.n, 2);
    CHECK_STR(t.v[0].name, "alpha_1");
    CHECK_STR(t.v[1].name, "zeta");
    const struct llm_template *z = llm_templates_find(&t, "zeta");
    CHECK(z && strcmp(z->instructions, "List the items.") == 0 && json_is_object(z->schema));
    CHECK(llm_templates_find(&t, "missing") == NULL);
    llm_templates_free(&t);
    remove_dir(dir);
}

TEST(templates_bad_files_are_named)
{
    static const struct {
        const char *name, *text, *says;
    } cases[] = {
        {"broken.json", "{\"instructions\": ", "broken.json"},
        {"noins.json", "{\"schema\": {}}", "instructions"},
        {"noschema.json", "{\"instructions\": \"x\"}", "schema"},
        {"badschema.json", "{\"instructions\": \"x\", \"schema\": {\"type\": \"nope\"}}", "type"},
        {"bad name.json", good, "bad name.json"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char dir[] = "/tmp/sd-templates-XXXXXX";
        make_dir(dir);
        write_file(dir, cases[i].name, cases[i].text);
        struct llm_templates t;
        struct sd_error err = {0};
        CHECK_EQ_INT(llm_templates_load(dir, &t, &err), SD_EINVAL);
        CHECK_MSG(strstr(err.msg, cases[i].says) != NULL, "%s: %s", cases[i].name, err.msg);
        CHECK_EQ_INT(t.n, 0);
        remove_dir(dir);
    }
    struct llm_templates t;
    struct sd_error err = {0};
    CHECK_EQ_INT(llm_templates_load("/nonexistent/dir", &t, &err), SD_EINVAL);
}

TEST(llm_client_refuses_bad_settings)
{
    struct llm_client *c = NULL;
    struct sd_error err = {0};
    struct llm_opts o = {.url = "ftp://x", .model = "m"};
    CHECK_EQ_INT(llm_client_create(&o, &c, &err), SD_EINVAL);
    o.url = "http://127.0.0.1:1/v1/";
    o.model = "";
    CHECK_EQ_INT(llm_client_create(&o, &c, &err), SD_EINVAL);
    CHECK(strstr(err.msg, "--llm-model") != NULL);
    o.model = "m";
    CHECK_OK(llm_client_create(&o, &c, &err), &err);
    CHECK_EQ_INT(llm_client_reachable(c), -1);
    CHECK_STR(llm_client_model(c), "m");
    llm_client_destroy(c);
    enum llm_protocol p;
    CHECK(llm_protocol_parse("anthropic", &p) && p == LLM_ANTHROPIC);
    CHECK(!llm_protocol_parse("gemini", &p));
}

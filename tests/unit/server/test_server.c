/*
 * Tests of server/config.c, server/router.c and server/errors.c (no sockets),
 * and http_listen on loopback.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"
#include "server/config.h"
#include "server/errors.h"
#include "server/models.h"
#include "server/http.h"

TEST(config_defaults)
{
    struct config c;
    struct sd_error e_ = {0}, *e = &e_;
    char *argv[] = {"serve", NULL};
    CHECK_OK(config_parse(&c, 1, argv, NULL, e), e);
    CHECK_EQ_INT(c.port, 8080);
    CHECK_STR(c.data_dir, "./data");
    CHECK_EQ_INT(c.max_file_size_mb, 200);
    CHECK_EQ_INT(c.upload_retention_days, 7);
    CHECK_EQ_INT(c.result_retention_days, 30);
    CHECK_STR(c.model, "");
    CHECK_EQ_INT(c.show_help, 0);
    config_clear(&c);
}

TEST(config_env_then_flags)
{
    struct config c;
    struct sd_error e_ = {0}, *e = &e_;
    char *env[] = {"SCRIBED_PORT=9000", "SCRIBED_DATA_DIR=/srv/d", "OTHER=1", "SCRIBED_WORKERS=2",
                   NULL};
    char *argv[] = {"serve", "--port", "7000", "--model=/m.bin", "--help", NULL};
    CHECK_OK(config_parse(&c, 5, argv, env, e), e);
    CHECK_EQ_INT(c.port, 7000);
    CHECK_STR(c.data_dir, "/srv/d");
    CHECK_STR(c.model, "/m.bin");
    CHECK_EQ_INT(c.workers, 2);
    CHECK_EQ_INT(c.show_help, 1);
    config_clear(&c);
}

TEST(config_rejects_bad_values)
{
    struct config c;
    struct sd_error e_ = {0}, *e = &e_;
    char *a1[] = {"serve", "--port", "70000", NULL};
    CHECK_EQ_INT(config_parse(&c, 3, a1, NULL, e), SD_EINVAL);
    CHECK(strstr(e->msg, "--port") != NULL);
    char *a2[] = {"serve", "--workers", "two", NULL};
    CHECK_EQ_INT(config_parse(&c, 3, a2, NULL, e), SD_EINVAL);
    char *a3[] = {"serve", "--nope", "1", NULL};
    CHECK_EQ_INT(config_parse(&c, 3, a3, NULL, e), SD_EINVAL);
    char *a4[] = {"serve", "--port", NULL};
    CHECK_EQ_INT(config_parse(&c, 2, a4, NULL, e), SD_EINVAL);
    char *a5[] = {"serve", "stray", NULL};
    CHECK_EQ_INT(config_parse(&c, 2, a5, NULL, e), SD_EINVAL);
    char *env[] = {"SCRIBED_MAX_QUEUE=0", NULL};
    char *a6[] = {"serve", NULL};
    CHECK_EQ_INT(config_parse(&c, 1, a6, env, e), SD_EINVAL);
    CHECK(strstr(e->msg, "SCRIBED_MAX_QUEUE") != NULL);
}

TEST(router_matches_routes_and_params)
{
    char param[64];
    bool wrong = false;
    const struct route *r = router_match("GET", "/health", param, sizeof(param), &wrong);
    CHECK(r && strcmp(r->name, "health") == 0);
    r = router_match("GET", "/v1/jobs/job_abc", param, sizeof(param), &wrong);
    CHECK(r && strcmp(r->name, "job_get") == 0);
    CHECK_STR(param, "job_abc");
    r = router_match("GET", "/v1/jobs/job_abc/result", param, sizeof(param), &wrong);
    CHECK(r && strcmp(r->name, "job_result") == 0);
    CHECK_STR(param, "job_abc");
    r = router_match("DELETE", "/v1/jobs/x", param, sizeof(param), &wrong);
    CHECK(r && strcmp(r->name, "job_delete") == 0);
    r = router_match("POST", "/v1/audio/transcriptions", param, sizeof(param), &wrong);
    CHECK(r && (r->flags & ROUTE_MULTIPART));
    r = router_match("GET", "/v1/models/", param, sizeof(param), &wrong);
    CHECK(r && strcmp(r->name, "models") == 0);
    r = router_match("PUT", "/health", param, sizeof(param), &wrong);
    CHECK(r == NULL && wrong);
    r = router_match("GET", "/v1/jobs//result", param, sizeof(param), &wrong);
    CHECK(r == NULL);
    /* unknown single-segment paths go to the web page's catch-all (which answers 404) */
    r = router_match("GET", "/nothing", param, sizeof(param), &wrong);
    CHECK(r && strcmp(r->name, "web") == 0);
    r = router_match("POST", "/nothing", param, sizeof(param), &wrong);
    CHECK(r == NULL && !wrong);
    r = router_match("GET", "/no/such/path", param, sizeof(param), &wrong);
    CHECK(r == NULL && !wrong);
    char longid[200];
    memset(longid, 'a', sizeof(longid));
    memcpy(longid, "/v1/jobs/", 9);
    longid[199] = '\0';
    CHECK(router_match("GET", longid, param, sizeof(param), &wrong) == NULL);
}

TEST(errors_one_table)
{
    CHECK_EQ_INT(errors_http_status(SD_EINVAL), 400);
    CHECK_EQ_INT(errors_http_status(SD_EUNSUPPORTED), 415);
    CHECK_EQ_INT(errors_http_status(SD_ETOOBIG), 413);
    CHECK_EQ_INT(errors_http_status(SD_ENOTFOUND), 404);
    CHECK_EQ_INT(errors_http_status(SD_EBUSY), 429);
    CHECK_EQ_INT(errors_http_status(SD_EFORMAT), 422);
    CHECK_EQ_INT(errors_http_status(SD_ETIMEOUT), 504);
    CHECK_EQ_INT(errors_http_status(SD_EINTERNAL), 500);
    CHECK_EQ_INT(errors_condition_status(HTTP_COND_UNAVAILABLE), 503);
    CHECK_STR(errors_http_type(SD_EBUSY), "rate_limit_error");
    json_t *b = errors_body("bad \"thing\"", "invalid_request_error", "file", "invalid_request");
    json_t *e = json_object_get(b, "error");
    CHECK_STR(json_string_value(json_object_get(e, "message")), "bad \"thing\"");
    CHECK_STR(json_string_value(json_object_get(e, "param")), "file");
    CHECK(json_is_string(json_object_get(e, "code")));
    json_decref(b);
    b = errors_body("\xff\xfe invalid utf-8", "server_error", NULL, NULL);
    e = json_object_get(b, "error");
    CHECK(json_is_string(json_object_get(e, "message")));
    CHECK(json_is_null(json_object_get(e, "param")));
    json_decref(b);
}

TEST(http_listen_refuses_a_port_in_use)
{
    struct sd_error e_ = {0}, *e = &e_;
    int fd = -1, fd2 = -1;
    CHECK_OK(http_listen("127.0.0.1", 0, &fd, e), e);
    struct sockaddr_in a;
    socklen_t n = sizeof(a);
    CHECK(getsockname(fd, (struct sockaddr *)&a, &n) == 0);
    int port = ntohs(a.sin_port);
    CHECK(port > 0);
    /* never shared (no SO_REUSEPORT): the second bind fails, saying why */
    CHECK_EQ_INT(http_listen("127.0.0.1", port, &fd2, e), SD_EIO);
    CHECK(strstr(e->msg, "Address already in use") != NULL);
    CHECK_EQ_INT(fd2, -1);
    CHECK_EQ_INT(http_listen("no such host", 0, &fd2, e), SD_EINVAL);
    close(fd);
    /* free again once the first is closed (SO_REUSEADDR: no wait for TIME_WAIT) */
    CHECK_OK(http_listen("127.0.0.1", port, &fd2, e), e);
    close(fd2);
}

TEST(model_ids_are_slugs)
{
    char id[MODELS_ID_MAX];
    models_slug("base.en f16", "/m/ggml-base.en.bin", id, sizeof(id));
    CHECK_STR(id, "base.en");
    models_slug("large-v3 q5_0", "/m/x.bin", id, sizeof(id));
    CHECK_STR(id, "large-v3-q5_0");
    models_slug("tiny f32", "/m/x.bin", id, sizeof(id));
    CHECK_STR(id, "tiny");
    models_slug("large-v3-turbo q8_0", "/m/x.bin", id, sizeof(id));
    CHECK_STR(id, "large-v3-turbo-q8_0");
    /* a shape nobody published: the file's name, lowercased, safe characters only */
    models_slug("custom-64x2+2.en f16", "/ref/micro-en.f16.bin", id, sizeof(id));
    CHECK_STR(id, "micro-en.f16");
    models_slug("custom-64x2+2 f16", "/ref/ggml-My Model+1.BIN", id, sizeof(id));
    CHECK_STR(id, "my-model-1.bin");
    models_slug("custom-64x2+2 f16", "/ref/ggml-My Model+1.bin", id, sizeof(id));
    CHECK_STR(id, "my-model-1");
}

/* Tests of telemetry/: the Prometheus exposition and the JSON-lines log. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "telemetry/log.h"
#include "telemetry/metrics.h"

TEST(metrics_render_prometheus)
{
    struct metrics *m = metrics_create();
    metrics_http(m, "health", 200);
    metrics_http(m, "health", 200);
    metrics_http(m, "transcriptions", 413);
    metrics_job(m, "succeeded", 1.5, 3.0);
    struct metrics_gauges g = {.queue_depth = 4, .jobs_running = 1, .workers = 2,
                               .model_loaded = 1};
    char *t = metrics_render(m, &g);
    CHECK(strstr(t, "scribed_http_requests_total{route=\"health\",status=\"200\"} 2") != NULL);
    CHECK(strstr(t, "status=\"413\"} 1") != NULL);
    CHECK(strstr(t, "scribed_job_duration_seconds_bucket{le=\"2\"} 1") != NULL);
    CHECK(strstr(t, "scribed_job_duration_seconds_bucket{le=\"1\"} 0") != NULL);
    CHECK(strstr(t, "scribed_queue_depth 4") != NULL);
    CHECK(strstr(t, "scribed_real_time_factor 0.5000") != NULL);
    CHECK(strstr(t, "process_resident_memory_bytes ") != NULL);
    free(t);
    metrics_destroy(m);
}

TEST(log_writes_one_json_line)
{
    FILE *f = tmpfile();
    struct sd_log *l = log_create(f, LOG_INFO);
    log_event(l, LOG_DEBUG, "hidden", NULL);
    log_event(l, LOG_INFO, "job.done",
              (struct log_field[]){LOG_STR("job", "j\"1\n"), LOG_I64("n", 3), LOG_F64("x", 0.5),
                                   LOG_BOOL("ok", 1), LOG_STR("none", NULL), LOG_END});
    log_destroy(l);
    rewind(f);
    char line[1024] = "";
    CHECK(fgets(line, sizeof(line), f) != NULL);
    json_t *o = json_loads(line, 0, NULL);
    CHECK(o != NULL);
    CHECK_STR(json_string_value(json_object_get(o, "event")), "job.done");
    CHECK_STR(json_string_value(json_object_get(o, "job")), "j\"1\n");
    CHECK_EQ_INT(json_integer_value(json_object_get(o, "n")), 3);
    CHECK(json_is_true(json_object_get(o, "ok")));
    CHECK(json_is_null(json_object_get(o, "none")));
    CHECK(fgets(line, sizeof(line), f) == NULL); /* debug line filtered */
    json_decref(o);
    fclose(f);
    CHECK_EQ_INT(log_level_parse("warn"), LOG_WARN);
    CHECK_EQ_INT(log_level_parse("loud"), -1);
}

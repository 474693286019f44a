/* Tests of jobs/queue.c (scheduling, limits, cancel), jobs/job.c, metrics and log. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "jobs/job.h"
#include "jobs/log.h"
#include "jobs/metrics.h"
#include "jobs/queue.h"

static struct job *mk(const char *id, int64_t bytes, bool sync)
{
    struct job_params p;
    struct job *j = NULL;
    job_params_init(&p);
    struct sd_error e_ = {0}, *e = &e_;
    CHECK_OK(job_create(id, sync, &p, "/tmp/x", bytes, NULL, &j, e), e);
    return j;
}

static struct job_queue *mkq(int workers, int max_pending)
{
    struct jobq_opts o = {.max_pending = max_pending, .n_workers = workers,
                          .long_job_bytes = 1000, .age_credit_bytes_per_s = 10};
    struct job_queue *q = NULL;
    struct sd_error e_ = {0}, *e = &e_;
    CHECK_OK(jobq_create(&o, &q, e), e);
    return q;
}

static void push(struct job_queue *q, struct job *j)
{
    struct sd_error e_ = {0}, *e = &e_;
    CHECK_OK(jobq_push(q, j, false, e), e);
    jobq_release(q, j);
}

TEST(jobq_short_first)
{
    struct job_queue *q = mkq(2, 10);
    push(q, mk("big", 900, false));
    push(q, mk("small", 10, false));
    struct job *a = jobq_claim(q);
    CHECK_STR(a->id, "small");
    struct job *b = jobq_claim(q);
    CHECK_STR(b->id, "big");
    jobq_finish(q, a, JOB_SUCCEEDED);
    jobq_finish(q, b, JOB_SUCCEEDED);
    jobq_destroy(q);
}

TEST(jobq_long_jobs_leave_a_worker_free)
{
    struct job_queue *q = mkq(2, 10);
    push(q, mk("long1", 5000, false));
    push(q, mk("long2", 6000, false));
    struct job *a = jobq_claim(q);
    CHECK_STR(a->id, "long1");
    /* long2 may not run while long1 holds n_workers - 1 = 1 slot; a short job may */
    push(q, mk("short", 10, false));
    struct job *b = jobq_claim(q);
    CHECK_STR(b->id, "short");
    jobq_finish(q, b, JOB_SUCCEEDED);
    jobq_finish(q, a, JOB_SUCCEEDED);
    struct job *c = jobq_claim(q);
    CHECK_STR(c->id, "long2");
    jobq_finish(q, c, JOB_SUCCEEDED);
    jobq_destroy(q);
}

TEST(jobq_full_refuses_and_cancel)
{
    struct job_queue *q = mkq(1, 2);
    struct sd_error e_ = {0}, *e = &e_;
    push(q, mk("a", 1, false));
    push(q, mk("b", 1, false));
    struct job *c = mk("c", 1, false);
    CHECK_EQ_INT(jobq_push(q, c, false, e), SD_EBUSY);
    CHECK(!jobq_has_room(q));
    CHECK_OK(jobq_push(q, c, true, e), e); /* recovery ignores the limit */
    jobq_release(q, c);
    int64_t pending, running;
    jobq_counts(q, &pending, &running);
    CHECK_EQ_INT(pending, 3);
    CHECK_EQ_INT(jobq_cancel(q, "b"), JOB_QUEUED);
    CHECK_EQ_INT(jobq_cancel(q, "nope"), -1);
    struct job *r = jobq_claim(q);
    CHECK(strcmp(r->id, "b") != 0);
    CHECK_EQ_INT(jobq_cancel(q, r->id), JOB_RUNNING);
    CHECK(atomic_load(&r->cancel));
    CHECK(!jobq_cancel_pending(q, r->id));
    CHECK(jobq_progress(q, r->id) >= 0);
    jobq_finish(q, r, JOB_CANCELLED);
    jobq_stop(q);
    CHECK(jobq_claim(q) == NULL);
    jobq_destroy(q);
}

TEST(jobq_wait_sees_final_status)
{
    struct job_queue *q = mkq(1, 4);
    struct job *j = mk("s", 1, true);
    struct sd_error e_ = {0}, *e = &e_;
    CHECK_OK(jobq_push(q, j, false, e), e);
    CHECK(!jobq_wait(q, j, 10));
    struct job *w = jobq_claim(q);
    CHECK(w == j);
    jobq_finish(q, w, JOB_SUCCEEDED);
    CHECK(jobq_wait(q, j, 10));
    CHECK_EQ_INT(j->status, JOB_SUCCEEDED);
    jobq_release(q, j);
    CHECK_EQ_INT(jobq_drain(q, 10, 10), 0);
    jobq_destroy(q);
}

TEST(job_params_json_roundtrip)
{
    struct job_params p, back;
    struct sd_error e_ = {0}, *e = &e_;
    job_params_init(&p);
    job_params_init(&back);
    p.task = TASK_TRANSLATE;
    snprintf(p.language, sizeof(p.language), "de");
    p.prompt = strdup("Hallo \"Welt\"");
    p.temperature = 0.4f;
    p.has_temperature = true;
    p.format = OUTPUT_VTT;
    p.word_timestamps = true;
    p.beam_size = 2;
    p.no_vad = true;
    char *s = job_params_to_json(&p);
    CHECK(s != NULL);
    CHECK_OK(job_params_from_json(s, &back, e), e);
    CHECK_EQ_INT(back.task, TASK_TRANSLATE);
    CHECK_STR(back.language, "de");
    CHECK_STR(back.prompt, "Hallo \"Welt\"");
    CHECK_NEAR(back.temperature, 0.4, 1e-6);
    CHECK(back.has_temperature && back.word_timestamps && back.no_vad);
    CHECK_EQ_INT(back.format, OUTPUT_VTT);
    CHECK_EQ_INT(back.beam_size, 2);
    CHECK_EQ_INT(job_params_from_json("{not json", &back, e), SD_EFORMAT);
    CHECK_EQ_INT(job_params_from_json("{\"response_format\":\"docx\"}", &back, e), SD_EINVAL);
    free(s);
    job_params_clear(&p);
    job_params_clear(&back);
}

TEST(job_ids_are_unique_hex)
{
    char a[STORE_ID_MAX], b[STORE_ID_MAX];
    job_new_id("job", a, sizeof(a));
    job_new_id("job", b, sizeof(b));
    CHECK_EQ_INT(strlen(a), 4 + 24);
    CHECK(strncmp(a, "job_", 4) == 0);
    CHECK(strcmp(a, b) != 0);
}

TEST(job_json_shape)
{
    struct store_job sj = {0};
    snprintf(sj.id, sizeof(sj.id), "job_1");
    sj.status = JOB_SUCCEEDED;
    sj.created_ms = 1000000;
    sj.started_ms = 1000500;
    sj.finished_ms = 1002500;
    sj.audio_s = 4.0;
    sj.run_s = 2.0;
    sj.params_json = strdup("{\"response_format\":\"srt\"}");
    json_t *o = job_to_json(&sj);
    CHECK_STR(json_string_value(json_object_get(o, "status")), "succeeded");
    json_t *t = json_object_get(o, "timings");
    CHECK_EQ_INT(json_integer_value(json_object_get(t, "queued_ms")), 500);
    CHECK_EQ_INT(json_integer_value(json_object_get(t, "run_ms")), 2000);
    CHECK_NEAR(json_real_value(json_object_get(t, "real_time_factor")), 0.5, 1e-9);
    CHECK(json_is_null(json_object_get(o, "error")));
    CHECK_STR(json_string_value(json_object_get(json_object_get(o, "request"), "response_format")),
              "srt");
    json_decref(o);
    store_job_clear(&sj);
}

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

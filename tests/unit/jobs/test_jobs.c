/* Tests of jobs/queue.c (scheduling, limits, cancel), jobs/job.c and jobs/reserve.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "jobs/job.h"
#include "jobs/queue.h"
#include "jobs/reserve.h"

static struct job *mk(const char *id, int64_t bytes, bool sync)
{
    struct stt_params p;
    struct job *j = NULL;
    stt_params_init(&p);
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

/* reserve.c: the disk reserve holds real blocks, is given back once, and comes back. */
TEST(disk_reserve)
{
    char dir[] = "/tmp/scribed-reserve-XXXXXX", path[64];
    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof(path), "%s/.disk-reserve", dir);
    struct sd_error e_ = {0}, *e = &e_;
    struct reserve *r = NULL;
    CHECK_OK(reserve_open(dir, 0, &r, e), e);
    CHECK(r == NULL && !reserve_release(r) && !reserve_restore(r)); /* 0: none, all no-ops */
    CHECK_OK(reserve_open(dir, 64 * 1024, &r, e), e);
    struct stat sb;
    CHECK(stat(path, &sb) == 0 && sb.st_blocks * 512 >= 64 * 1024);
    CHECK(reserve_release(r));
    CHECK(stat(path, &sb) != 0);
    CHECK(!reserve_release(r)); /* given back once */
    CHECK(reserve_restore(r));
    CHECK(stat(path, &sb) == 0 && sb.st_blocks * 512 >= 64 * 1024);
    reserve_close(r);
    CHECK(unlink(path) == 0 && rmdir(dir) == 0);
}

/*
 * Tests of the store through the store.h interface (a fresh database per
 * test): SQLite, or PostgreSQL with $SCRIBED_TEST_PG (store_under_test.h).
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "store/store.h"
#include "store_under_test.h"

static char *temp_dir(void)
{
    return sut_temp_dir();
}

static struct store *open_in(const char *dir)
{
    return sut_open(dir);
}

static void add_job(struct store *s, const char *id, int64_t created_ms, const char *cb)
{
    struct sd_error e_ = {0}, *e = &e_;
    struct store_job j = {0};
    snprintf(j.id, sizeof(j.id), "%s", id);
    j.params_json = (char *)"{\"response_format\":\"json\"}";
    j.upload_path = (char *)sut_upload_file();
    j.filename = (char *)"a.wav";
    j.upload_bytes = 1234;
    j.callback_url = (char *)cb;
    j.created_ms = created_ms;
    CHECK_OK(store_job_insert(s, &j, e), e);
}

static void cleanup(struct store *s, char *dir)
{
    sut_cleanup(s, dir);
}

TEST(store_insert_get_roundtrip)
{
    char *dir = temp_dir();
    struct store *s = open_in(dir);
    struct sd_error e_ = {0}, *e = &e_;
    struct store_job j = {0};
    add_job(s, "job_a", 1000, NULL);
    CHECK_OK(store_job_get(s, "job_a", NULL, &j, e), e);
    CHECK_STR(j.id, "job_a");
    CHECK_EQ_INT(j.status, JOB_QUEUED);
    CHECK_STR(j.filename, "a.wav");
    CHECK_EQ_INT(j.upload_bytes, 1234);
    CHECK_EQ_INT(j.created_ms, 1000);
    CHECK(j.callback_url == NULL);
    CHECK_EQ_INT(j.cb_state, STORE_CB_NONE);
    store_job_clear(&j);
    CHECK_EQ_INT(store_job_get(s, "nope", NULL, &j, e), SD_ENOTFOUND);
    struct store_job dup = {0};
    snprintf(dup.id, sizeof(dup.id), "job_a");
    CHECK_EQ_INT(store_job_insert(s, &dup, e), SD_EINVAL);
    cleanup(s, dir);
}

TEST(store_list_paginates_newest_first)
{
    char *dir = temp_dir();
    struct store *s = open_in(dir);
    struct sd_error e_ = {0}, *e = &e_;
    char id[16];
    for (int i = 0; i < 5; i++) {
        snprintf(id, sizeof(id), "job_%d", i);
        add_job(s, id, 1000 + i, NULL);
    }
    struct store_job *v = NULL;
    int n = 0;
    bool more = false;
    CHECK_OK(store_job_list(s, NULL, NULL, 2, -1, &v, &n, &more, e), e);
    CHECK_EQ_INT(n, 2);
    CHECK(more);
    CHECK_STR(v[0].id, "job_4");
    CHECK_STR(v[1].id, "job_3");
    store_jobs_free(v, n);
    CHECK_OK(store_job_list(s, NULL, "job_3", 10, -1, &v, &n, &more, e), e);
    CHECK_EQ_INT(n, 3);
    CHECK(!more);
    CHECK_STR(v[2].id, "job_0");
    store_jobs_free(v, n);
    CHECK_EQ_INT(store_job_list(s, NULL, "missing", 10, -1, &v, &n, &more, e), SD_EINVAL);
    CHECK_EQ_INT(store_job_list(s, NULL, NULL, 0, -1, &v, &n, &more, e), SD_EINVAL);
    CHECK_OK(store_job_list(s, NULL, NULL, 10, JOB_RUNNING, &v, &n, &more, e), e);
    CHECK_EQ_INT(n, 0);
    store_jobs_free(v, n);
    cleanup(s, dir);
}

/* Tenants: every client-facing read takes an owner filter; another owner's job reads as missing. */
TEST(store_owner_scopes_jobs)
{
    char *dir = temp_dir();
    struct store *s = open_in(dir);
    struct sd_error e_ = {0}, *e = &e_, e2 = {0};
    const char *ids[] = {"job_a1", "job_b1", "job_a2"}, *owners[] = {"key_a", "key_b", "key_a"};
    for (int i = 0; i < 3; i++) {
        struct store_job j = {0};
        snprintf(j.id, sizeof(j.id), "%s", ids[i]);
        snprintf(j.owner, sizeof(j.owner), "%s", owners[i]);
        j.created_ms = 1000 + i;
        CHECK_OK(store_job_insert(s, &j, e), e);
    }
    struct store_job j = {0};
    CHECK_OK(store_job_get(s, "job_b1", "key_b", &j, e), e);
    CHECK_STR(j.owner, "key_b");
    store_job_clear(&j);
    CHECK_OK(store_job_get(s, "job_b1", NULL, &j, e), e); /* NULL: any owner */
    store_job_clear(&j);
    /* the same answer, word for word, as for an id nobody has */
    CHECK_EQ_INT(store_job_get(s, "job_b1", "key_a", &j, e), SD_ENOTFOUND);
    CHECK_EQ_INT(store_job_get(s, "job_zz", "key_a", &j, &e2), SD_ENOTFOUND);
    CHECK(strstr(e->msg, "job_b1") && strstr(e2.msg, "job_zz"));
    CHECK_EQ_INT(store_job_get(s, "job_b1", "", &j, e), SD_ENOTFOUND);

    struct store_job *v = NULL;
    int n = 0;
    bool more = false;
    CHECK_OK(store_job_list(s, "key_a", NULL, 10, -1, &v, &n, &more, e), e);
    CHECK_EQ_INT(n, 2);
    CHECK_STR(v[0].id, "job_a2");
    CHECK_STR(v[1].id, "job_a1");
    store_jobs_free(v, n);
    CHECK_OK(store_job_list(s, NULL, NULL, 10, -1, &v, &n, &more, e), e);
    CHECK_EQ_INT(n, 3);
    store_jobs_free(v, n);
    /* another owner's id as the cursor is an unknown cursor */
    CHECK_EQ_INT(store_job_list(s, "key_a", "job_b1", 10, -1, &v, &n, &more, e), SD_EINVAL);
    CHECK_OK(store_job_list(s, "key_a", "job_a2", 10, -1, &v, &n, &more, e), e);
    CHECK_EQ_INT(n, 1);
    store_jobs_free(v, n);

    enum job_status was = JOB_FAILED;
    CHECK_EQ_INT(store_job_cancel(s, "job_b1", "key_a", 5000, &was, e), SD_ENOTFOUND);
    CHECK_OK(store_job_get(s, "job_b1", NULL, &j, e), e);
    CHECK_EQ_INT(j.status, JOB_QUEUED);
    store_job_clear(&j);

    struct store_result res = {
        .format = "text", .content_type = "text/plain", .body = "b\n", .len = 2};
    struct store_finish f = {.status = JOB_SUCCEEDED, .finished_ms = 3000, .results = &res,
                             .n_results = 1};
    CHECK_OK(store_job_start(s, "job_b1", 2000, e), e);
    CHECK_OK(store_job_finish(s, "job_b1", &f, e), e);
    char *body = NULL, *ct = NULL;
    size_t len = 0;
    CHECK_EQ_INT(store_result_get(s, "job_b1", "key_a", "text", &body, &len, &ct, e),
                 SD_ENOTFOUND);
    CHECK_OK(store_result_get(s, "job_b1", "key_b", "text", &body, &len, &ct, e), e);
    CHECK_STR(body, "b\n");
    free(body);
    free(ct);
    CHECK_OK(store_job_cancel(s, "job_a1", "key_a", 5000, &was, e), e);
    CHECK_EQ_INT(was, JOB_QUEUED);
    cleanup(s, dir);
}

TEST(store_lifecycle_and_results)
{
    char *dir = temp_dir();
    struct store *s = open_in(dir);
    struct sd_error e_ = {0}, *e = &e_;
    add_job(s, "job_x", 1000, "http://127.0.0.1:9/cb");
    CHECK_OK(store_job_start(s, "job_x", 2000, e), e);
    CHECK_EQ_INT(store_job_start(s, "job_x", 2000, e), SD_ENOTFOUND); /* not queued */
    CHECK_OK(store_job_progress(s, "job_x", 0.5, e), e);
    struct store_result r[2] = {
        {"json", "application/json", "{\"text\":\"hi\"}", 13},
        {"text", "text/plain; charset=utf-8", "hi\n", 3},
    };
    struct store_finish f = {.status = JOB_SUCCEEDED, .finished_ms = 3000, .audio_s = 2.5,
                             .run_s = 0.5, .results = r, .n_results = 2};
    CHECK_OK(store_job_finish(s, "job_x", &f, e), e);
    struct store_job j = {0};
    CHECK_OK(store_job_get(s, "job_x", NULL, &j, e), e);
    CHECK_EQ_INT(j.status, JOB_SUCCEEDED);
    CHECK_EQ_INT(j.attempts, 1);
    CHECK_NEAR(j.progress, 1.0, 1e-9);
    CHECK_NEAR(j.audio_s, 2.5, 1e-9);
    CHECK_EQ_INT(j.cb_state, STORE_CB_PENDING);
    store_job_clear(&j);
    char *body = NULL, *ct = NULL;
    size_t len = 0;
    CHECK_OK(store_result_get(s, "job_x", NULL, "text", &body, &len, &ct, e), e);
    CHECK_EQ_INT(len, 3);
    CHECK_STR(body, "hi\n");
    CHECK_STR(ct, "text/plain; charset=utf-8");
    free(body);
    free(ct);
    CHECK_EQ_INT(store_result_get(s, "job_x", NULL, "srt", &body, &len, &ct, e), SD_ENOTFOUND);
    struct store_job *v = NULL;
    int n = 0;
    CHECK_OK(store_callbacks_pending(s, &v, &n, e), e);
    CHECK_EQ_INT(n, 1);
    store_jobs_free(v, n);
    CHECK_OK(store_callback_set(s, "job_x", STORE_CB_PENDING, 1, "HTTP 500", e), e);
    CHECK_OK(store_job_get(s, "job_x", NULL, &j, e), e);
    CHECK_STR(j.callback_error, "HTTP 500");
    store_job_clear(&j);
    CHECK_OK(store_callback_set(s, "job_x", STORE_CB_DELIVERED, 1, NULL, e), e);
    CHECK_OK(store_callbacks_pending(s, &v, &n, e), e);
    CHECK_EQ_INT(n, 0);
    store_jobs_free(v, n);
    CHECK_OK(store_job_get(s, "job_x", NULL, &j, e), e);
    CHECK(j.callback_error == NULL);
    store_job_clear(&j);
    enum job_status was;
    CHECK_OK(store_job_cancel(s, "job_x", NULL, 4000, &was, e), e);
    CHECK_EQ_INT(was, JOB_SUCCEEDED); /* left alone */
    cleanup(s, dir);
}

TEST(store_recover_requeues_running_jobs)
{
    char *dir = temp_dir();
    struct store *s = open_in(dir);
    struct sd_error e_ = {0}, *e = &e_;
    add_job(s, "job_1", 1000, NULL);
    add_job(s, "job_2", 1001, NULL);
    add_job(s, "job_3", 1002, NULL);
    CHECK_OK(store_job_start(s, "job_2", 2000, e), e);
    enum job_status was;
    CHECK_OK(store_job_cancel(s, "job_3", NULL, 2000, &was, e), e);
    CHECK_EQ_INT(was, JOB_QUEUED);
    store_close(s);
    s = open_in(dir); /* as after kill -9 */
    struct store_job *v = NULL;
    int n = 0;
    CHECK_OK(store_jobs_recover(s, 3, &v, &n, e), e);
    CHECK_EQ_INT(n, 2);
    CHECK_STR(v[0].id, "job_1");
    CHECK_STR(v[1].id, "job_2");
    CHECK_EQ_INT(v[1].attempts, 1);
    store_jobs_free(v, n);
    /* a job that keeps killing the service fails after max_attempts */
    CHECK_OK(store_job_start(s, "job_2", 3000, e), e);
    CHECK_OK(store_jobs_recover(s, 3, &v, &n, e), e);
    store_jobs_free(v, n);
    struct store_job j = {0};
    CHECK_OK(store_job_get(s, "job_2", NULL, &j, e), e);
    CHECK_EQ_INT(j.status, JOB_QUEUED);
    store_job_clear(&j);
    CHECK_OK(store_job_start(s, "job_2", 3000, e), e);
    CHECK_OK(store_jobs_recover(s, 3, &v, &n, e), e);
    CHECK_EQ_INT(n, 1);
    store_jobs_free(v, n);
    CHECK_OK(store_job_get(s, "job_2", NULL, &j, e), e);
    CHECK_EQ_INT(j.status, JOB_FAILED);
    store_job_clear(&j);
    cleanup(s, dir);
}

TEST(store_purge_and_backup)
{
    char *dir = temp_dir();
    struct store *s = open_in(dir);
    struct sd_error e_ = {0}, *e = &e_;
    add_job(s, "job_old", 1000, NULL);
    add_job(s, "job_new", 50000, NULL);
    add_job(s, "job_waiting", 1000, NULL);
    struct store_result r = {"json", "application/json", "{}", 2};
    struct store_finish f = {.status = JOB_SUCCEEDED, .finished_ms = 2000, .results = &r,
                             .n_results = 1};
    CHECK_OK(store_job_start(s, "job_old", 1500, e), e);
    CHECK_OK(store_job_finish(s, "job_old", &f, e), e);
    CHECK_OK(store_job_start(s, "job_new", 50000, e), e);
    f.finished_ms = 60000;
    CHECK_OK(store_job_finish(s, "job_new", &f, e), e);
    struct store_purge p = {0};
    CHECK_OK(store_purge(s, 10000, 10000, &p, e), e);
    CHECK_EQ_INT(p.n_upload_paths, 1); /* job_waiting is not final: its upload stays */
    CHECK_EQ_INT(p.n_results_deleted, 1);
    store_purge_clear(&p);
    char *body = NULL, *ct = NULL;
    size_t len;
    CHECK_EQ_INT(store_result_get(s, "job_old", NULL, "json", &body, &len, &ct, e), SD_ENOTFOUND);
    CHECK_OK(store_result_get(s, "job_new", NULL, "json", &body, &len, &ct, e), e);
    free(body);
    free(ct);
    struct store_job j = {0};
    CHECK_OK(store_job_get(s, "job_old", NULL, &j, e), e);
    CHECK(j.results_expired);
    CHECK(j.upload_path == NULL);
    store_job_clear(&j);

    char bpath[600];
    snprintf(bpath, sizeof(bpath), "%s/backup.db", dir);
    if (sut_pg_base()) {
        /* PostgreSQL is backed up with pg_dump; the store says so */
        CHECK_EQ_INT(store_backup(s, bpath, e), SD_EUNSUPPORTED);
        cleanup(s, dir);
        return;
    }
    CHECK_OK(store_backup(s, bpath, e), e);
    struct store *b = NULL;
    CHECK_OK(store_open_sqlite(bpath, &b, e), e);
    int64_t cnt = 0;
    CHECK_OK(store_count(b, JOB_SUCCEEDED, &cnt, e), e);
    CHECK_EQ_INT(cnt, 2);
    store_close(b);
    char rpath[600];
    snprintf(rpath, sizeof(rpath), "%s/restored.db", dir);
    CHECK_OK(store_restore_sqlite(bpath, rpath, e), e);
    CHECK_EQ_INT(store_restore_sqlite("/nonexistent/x.db", rpath, e), SD_ENOTFOUND);
    cleanup(s, dir);
}

TEST(store_job_delete_removes_a_final_job)
{
    char *dir = temp_dir();
    struct store *s = open_in(dir);
    struct sd_error e_ = {0}, *e = &e_;
    enum job_status was;
    char *path = (char *)"unset";
    add_job(s, "job_d", 1000, NULL);
    /* not final: left alone */
    CHECK_OK(store_job_delete(s, "job_d", NULL, &was, &path, e), e);
    CHECK_EQ_INT(was, JOB_QUEUED);
    CHECK(path == NULL);
    CHECK_OK(store_job_start(s, "job_d", 2000, e), e);
    struct store_result r = {"text", "text/plain; charset=utf-8", "hi\n", 3};
    struct store_finish f = {.status = JOB_SUCCEEDED, .finished_ms = 3000, .results = &r,
                             .n_results = 1};
    CHECK_OK(store_job_finish(s, "job_d", &f, e), e);
    CHECK_OK(store_job_delete(s, "job_d", NULL, &was, &path, e), e);
    CHECK_EQ_INT(was, JOB_SUCCEEDED);
    CHECK_STR(path, sut_upload_file());
    free(path);
    struct store_job j = {0};
    CHECK_EQ_INT(store_job_get(s, "job_d", NULL, &j, e), SD_ENOTFOUND);
    char *body = NULL, *ct = NULL;
    size_t len = 0;
    CHECK_EQ_INT(store_result_get(s, "job_d", NULL, "text", &body, &len, &ct, e), SD_ENOTFOUND);
    CHECK_EQ_INT(store_job_delete(s, "job_d", NULL, &was, &path, e), SD_ENOTFOUND);
    CHECK(path == NULL);
    int64_t n = -1;
    CHECK_OK(store_count(s, JOB_SUCCEEDED, &n, e), e);
    CHECK_EQ_INT(n, 0);
    cleanup(s, dir);
}

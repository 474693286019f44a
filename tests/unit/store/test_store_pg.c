/*
 * Tests of what only the PostgreSQL store has: migrations under an advisory
 * lock when several nodes open at once, a newer schema refused, start-up
 * failures as one line without the password, and store_open's URL rules.
 * The PostgreSQL cases pass trivially without $SCRIBED_TEST_PG (make test-pg).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "store/store.h"
#include "store_under_test.h"

TEST(store_url_picks_the_implementation)
{
    CHECK(store_url_is_postgres("postgres://u:p@h:5432/db"));
    CHECK(store_url_is_postgres("postgresql://h/db"));
    CHECK(store_url_is_postgres("host=127.0.0.1 port=5432 dbname=x"));
    CHECK(store_url_is_postgres("  dbname = x"));
    CHECK(!store_url_is_postgres("sqlite:///var/lib/scribed/scribed.db"));
    CHECK(!store_url_is_postgres("./data/scribed.db"));
    CHECK(!store_url_is_postgres("/data/a=b/scribed.db"));
    struct store *s = NULL;
    struct sd_error e = {0};
    CHECK_EQ_INT(store_open("", &s, &e), SD_EINVAL);
    CHECK_EQ_INT(store_open("sqlite://", &s, &e), SD_EINVAL);
    char *dir = sut_temp_dir();
    char url[600];
    snprintf(url, sizeof(url), "sqlite://%s/x.db", dir);
    CHECK_OK(store_open(url, &s, &e), &e);
    CHECK_STR(s->ops->name, "sqlite");
    store_close(s);
    snprintf(url, sizeof(url), "rm -rf '%s'", dir);
    CHECK(system(url) == 0);
    free(dir);
}

struct opener {
    const char *url;
    struct store *s;
    enum sd_err rc;
    struct sd_error err;
};

static void *open_one(void *arg)
{
    struct opener *o = arg;
    o->rc = store_open(o->url, &o->s, &o->err);
    return NULL;
}

TEST(store_pg_nodes_starting_together_migrate_once)
{
    if (!sut_pg_base())
        return;
    enum { N = 6 };
    char *dir = sut_temp_dir();
    struct store *first = sut_open(dir); /* creates the database (and migrates) */
    CHECK(sut_pg_exec(dir, "DROP TABLE results, uploads, upload_chunks, rate_buckets,"
                           " api_keys, jobs, scribed_schema"));
    char url[1024];
    sut_url(dir, url, sizeof(url));
    struct opener o[N];
    pthread_t t[N];
    for (int i = 0; i < N; i++) {
        o[i] = (struct opener){.url = url};
        CHECK(pthread_create(&t[i], NULL, open_one, &o[i]) == 0);
    }
    for (int i = 0; i < N; i++) {
        pthread_join(t[i], NULL);
        CHECK_OK(o[i].rc, &o[i].err);
    }
    /* every node sees one schema: a job one inserts, the others read */
    struct store_job j = {0}, got = {0};
    struct sd_error e = {0};
    snprintf(j.id, sizeof(j.id), "job_shared");
    j.created_ms = 1;
    CHECK_OK(store_job_insert(o[0].s, &j, &e), &e);
    for (int i = 1; i < N; i++) {
        CHECK_OK(store_job_get(o[i].s, "job_shared", NULL, &got, &e), &e);
        store_job_clear(&got);
    }
    for (int i = 0; i < N; i++)
        store_close(o[i].s);
    sut_cleanup(first, dir);
}

TEST(store_pg_newer_schema_is_refused)
{
    if (!sut_pg_base())
        return;
    char *dir = sut_temp_dir();
    struct store *s = sut_open(dir);
    CHECK(sut_pg_exec(dir, "UPDATE scribed_schema SET version = 999"));
    char url[1024];
    struct store *again = NULL;
    struct sd_error e = {0};
    sut_url(dir, url, sizeof(url));
    CHECK_EQ_INT(store_open(url, &again, &e), SD_EFORMAT);
    CHECK(strstr(e.msg, "newer") != NULL);
    CHECK(strchr(e.msg, '\n') == NULL);
    sut_cleanup(s, dir);
}

TEST(store_pg_refused_login_is_one_line_without_the_password)
{
    if (!sut_pg_base())
        return;
    char url[1024];
    struct store *s = NULL;
    struct sd_error e = {0};
    snprintf(url, sizeof(url), "%s password=Wr0ngSecret dbname=scribed", sut_pg_base());
    CHECK_EQ_INT(store_open(url, &s, &e), SD_EIO);
    CHECK(strstr(e.msg, "password authentication failed") != NULL);
    CHECK(strstr(e.msg, "Wr0ngSecret") == NULL);
    CHECK(strchr(e.msg, '\n') == NULL);
    /* nothing listens on port 1: refused at once */
    CHECK_EQ_INT(store_open("postgres://u:Wr0ngSecret@127.0.0.1:1/x", &s, &e), SD_EIO);
    CHECK(strstr(e.msg, "Wr0ngSecret") == NULL);
    CHECK_EQ_INT(store_open("postgres://u@127.0.0.1:notaport/x", &s, &e), SD_EIO);
    CHECK(strchr(e.msg, '\n') == NULL);
}

/* ---- the shared queue ---- */

static void queue_job(struct store *s, const char *id, int64_t bytes, int64_t created_ms)
{
    struct sd_error e = {0};
    struct store_job j = {0};
    snprintf(j.id, sizeof(j.id), "%s", id);
    j.upload_path = (char *)sut_upload_file();
    j.upload_bytes = bytes;
    j.created_ms = created_ms;
    CHECK_OK(store_job_insert(s, &j, &e), &e);
}

/* A second node on the same database as dir's. */
static struct store *node(const char *dir, const char *node_id)
{
    char url[1024];
    struct store *s = NULL;
    struct sd_error e = {0};
    sut_url(dir, url, sizeof(url));
    CHECK_OK(store_open(url, &s, &e), &e);
    CHECK_OK(store_queue_attach(s, node_id, 5000, &e), &e);
    return s;
}

static void check_claim(struct store *s, const char *want_id)
{
    struct store_job j = {0};
    struct sd_error e = {0};
    enum sd_err rc = store_job_claim(s, 3, INT64_MAX, &j, &e);
    if (!want_id) {
        CHECK_EQ_INT(rc, SD_ENOTFOUND);
        return;
    }
    CHECK_OK(rc, &e);
    CHECK_STR(j.id, want_id);
    CHECK_EQ_INT(j.status, JOB_RUNNING);
    store_job_clear(&j);
}

TEST(store_sqlite_is_not_a_shared_queue)
{
    char *dir = sut_temp_dir();
    char url[600];
    struct store *s = NULL;
    struct sd_error e = {0};
    snprintf(url, sizeof(url), "%s/q.db", dir);
    CHECK_OK(store_open(url, &s, &e), &e);
    CHECK(!store_has_shared_queue(s));
    CHECK_EQ_INT(store_queue_attach(s, "n1", 5000, &e), SD_EUNSUPPORTED);
    struct store_job j = {0};
    CHECK_EQ_INT(store_job_claim(s, 3, INT64_MAX, &j, &e), SD_EUNSUPPORTED);
    /* nor does it keep uploads, share rate buckets or re-claim webhooks (one node) */
    CHECK(!store_keeps_uploads(s));
    CHECK(!store_has_shared_rate_limits(s));
    snprintf(url, sizeof(url), "%s/out", dir);
    CHECK_EQ_INT(store_upload_fetch(s, "job_x", url, &e), SD_ENOTFOUND);
    bool taken = false;
    int retry = 0;
    CHECK_EQ_INT(store_rate_take(s, "k", 60, 5, &taken, &retry, &e), SD_EUNSUPPORTED);
    struct store_job *v = NULL;
    int n = -1;
    CHECK_OK(store_callbacks_reclaim(s, 1000, 1000, &v, &n, &e), &e);
    CHECK_EQ_INT(n, 0);
    store_close(s);
    snprintf(url, sizeof(url), "rm -rf '%s'", dir);
    CHECK(system(url) == 0);
    free(dir);
}

TEST(store_pg_claims_short_first_once_each)
{
    if (!sut_pg_base())
        return;
    char *dir = sut_temp_dir();
    struct store *base = sut_open(dir);
    struct store *a = node(dir, "node_a"), *b = node(dir, "node_b");
    CHECK(store_has_shared_queue(a));
    int64_t now = 1700000000000;
    queue_job(base, "job_big", 5 << 20, now);
    queue_job(base, "job_small", 1000, now);
    queue_job(base, "job_mid", 100000, now);
    check_claim(a, "job_small");
    check_claim(b, "job_mid");
    /* a node keeping a worker free for short jobs asks for small uploads only */
    struct store_job j = {0};
    struct sd_error e = {0};
    CHECK_EQ_INT(store_job_claim(a, 3, 1 << 20, &j, &e), SD_ENOTFOUND);
    check_claim(a, "job_big");
    check_claim(b, NULL);
    /* each finishes its own; a result from a node without the lease is dropped */
    struct store_finish f = {.status = JOB_SUCCEEDED, .finished_ms = now};
    CHECK_EQ_INT(store_job_finish(b, "job_small", &f, &e), SD_ENOTFOUND);
    CHECK_EQ_INT(store_job_progress(b, "job_small", 0.5, &e), SD_ENOTFOUND);
    CHECK_OK(store_job_progress(a, "job_small", 0.5, &e), &e);
    CHECK_OK(store_job_finish(a, "job_small", &f, &e), &e);
    CHECK_EQ_INT(store_job_finish(a, "job_small", &f, &e), SD_ENOTFOUND); /* once */
    store_close(a);
    store_close(b);
    sut_cleanup(base, dir);
}

TEST(store_pg_expired_lease_moves_to_another_node)
{
    if (!sut_pg_base())
        return;
    char *dir = sut_temp_dir();
    struct store *base = sut_open(dir);
    struct store *a = node(dir, "node_a"), *b = node(dir, "node_b");
    struct sd_error e = {0};
    queue_job(base, "job_1", 1000, 1);
    check_claim(a, "job_1");
    int renewed = 0;
    const char held[2][STORE_ID_MAX] = {"job_1", "job_other"};
    CHECK_OK(store_leases_renew(a, held, 2, &renewed, &e), &e);
    CHECK_EQ_INT(renewed, 1);
    check_claim(b, NULL); /* a live lease is nobody else's */
    /* node_a dies: its lease runs out */
    CHECK(sut_pg_exec(dir, "UPDATE jobs SET lease_expires_ms = 0"));
    check_claim(b, "job_1");
    struct store_job j = {0};
    CHECK_OK(store_job_get(base, "job_1", NULL, &j, &e), &e);
    CHECK_EQ_INT(j.attempts, 2);
    store_job_clear(&j);
    /* node_a's late result is dropped; node_b's counts */
    struct store_result r = {"text", "text/plain", "late", 4};
    struct store_finish f = {.status = JOB_SUCCEEDED, .finished_ms = 5, .results = &r,
                             .n_results = 1};
    CHECK_EQ_INT(store_job_finish(a, "job_1", &f, &e), SD_ENOTFOUND);
    CHECK_OK(store_leases_renew(a, held, 1, &renewed, &e), &e);
    CHECK_EQ_INT(renewed, 0);
    r.body = "good";
    CHECK_OK(store_job_finish(b, "job_1", &f, &e), &e);
    char *body = NULL, *ct = NULL;
    size_t len = 0;
    CHECK_OK(store_result_get(base, "job_1", NULL, "text", &body, &len, &ct, &e), &e);
    CHECK_STR(body, "good");
    free(body);
    free(ct);
    store_close(a);
    store_close(b);
    sut_cleanup(base, dir);
}

TEST(store_pg_lost_too_often_fails)
{
    if (!sut_pg_base())
        return;
    char *dir = sut_temp_dir();
    struct store *base = sut_open(dir);
    struct store *a = node(dir, "node_a");
    struct sd_error e = {0};
    queue_job(base, "job_1", 1000, 1);
    for (int i = 0; i < 3; i++) {
        check_claim(a, "job_1");
        CHECK(sut_pg_exec(dir, "UPDATE jobs SET lease_expires_ms = 0"));
    }
    check_claim(a, NULL);
    struct store_job j = {0};
    CHECK_OK(store_job_get(base, "job_1", NULL, &j, &e), &e);
    CHECK_EQ_INT(j.status, JOB_FAILED);
    CHECK_EQ_INT(j.attempts, 3);
    store_job_clear(&j);
    store_close(a);
    sut_cleanup(base, dir);
}

TEST(store_pg_recovery_touches_only_own_expired_leases)
{
    if (!sut_pg_base())
        return;
    char *dir = sut_temp_dir();
    struct store *base = sut_open(dir);
    struct store *a = node(dir, "node_a"), *b = node(dir, "node_b");
    struct sd_error e = {0};
    queue_job(base, "job_a", 1000, 1);
    queue_job(base, "job_b", 2000, 1);
    check_claim(a, "job_a");
    check_claim(b, "job_b");
    /* node_a restarts under the same id (its lease still runs) while node_b lives */
    store_close(a);
    a = node(dir, "node_a");
    struct store_job *v = NULL;
    int n = -1;
    CHECK_OK(store_jobs_recover(a, 3, &v, &n, &e), &e);
    CHECK_EQ_INT(n, 0);
    store_jobs_free(v, n);
    struct store_job j = {0};
    CHECK_OK(store_job_get(base, "job_a", NULL, &j, &e), &e);
    CHECK_EQ_INT(j.status, JOB_QUEUED);
    store_job_clear(&j);
    CHECK_OK(store_job_get(base, "job_b", NULL, &j, &e), &e);
    CHECK_EQ_INT(j.status, JOB_RUNNING);
    store_job_clear(&j);
    store_close(a);
    store_close(b);
    sut_cleanup(base, dir);
}

TEST(store_pg_insert_wakes_a_waiting_node)
{
    if (!sut_pg_base())
        return;
    char *dir = sut_temp_dir();
    struct store *base = sut_open(dir);
    struct store *a = node(dir, "node_a");
    CHECK(!store_wait_for_jobs(a, 10)); /* starts listening; nothing yet */
    queue_job(base, "job_1", 1000, 1);
    CHECK(store_wait_for_jobs(a, 60000)); /* woken, not timed out */
    check_claim(a, "job_1");
    struct sd_error e = {0};
    CHECK_OK(store_job_requeue(a, "job_1", &e), &e);
    CHECK(store_wait_for_jobs(a, 60000));
    store_close(a);
    sut_cleanup(base, dir);
}

TEST(store_pg_one_node_delivers_each_webhook)
{
    if (!sut_pg_base())
        return;
    char *dir = sut_temp_dir();
    struct store *base = sut_open(dir);
    struct store *a = node(dir, "node_a"), *b = node(dir, "node_b");
    struct sd_error e = {0};
    struct store_job j = {0};
    snprintf(j.id, sizeof(j.id), "job_cb");
    j.callback_url = (char *)"http://127.0.0.1:9/cb";
    j.created_ms = 1;
    CHECK_OK(store_job_insert(base, &j, &e), &e);
    CHECK_OK(store_callback_claim(a, "job_cb", 60000, &e), &e);
    CHECK_EQ_INT(store_callback_claim(b, "job_cb", 60000, &e), SD_ENOTFOUND);
    CHECK_OK(store_callback_claim(a, "job_cb", 60000, &e), &e); /* the holder again: a retry */
    CHECK(sut_pg_exec(dir, "UPDATE jobs SET cb_until_ms = 0")); /* node_a died */
    CHECK_OK(store_callback_claim(b, "job_cb", 60000, &e), &e);
    CHECK_OK(store_callback_set(b, "job_cb", STORE_CB_DELIVERED, 1, NULL, &e), &e);
    CHECK_EQ_INT(store_callback_claim(a, "job_cb", 60000, &e), SD_ENOTFOUND);
    store_close(a);
    store_close(b);
    sut_cleanup(base, dir);
}

TEST(store_pg_a_claimed_job_keeps_its_owner)
{
    if (!sut_pg_base())
        return;
    char *dir = sut_temp_dir();
    struct store *base = sut_open(dir);
    struct store *a = node(dir, "node_a");
    struct sd_error e = {0};
    struct store_job j = {0};
    snprintf(j.id, sizeof(j.id), "job_t");
    snprintf(j.owner, sizeof(j.owner), "key_alice");
    j.upload_path = (char *)sut_upload_file();
    j.upload_bytes = 1000;
    j.created_ms = 1;
    CHECK_OK(store_job_insert(base, &j, &e), &e);
    struct store_job got = {0};
    CHECK_OK(store_job_claim(a, 3, INT64_MAX, &got, &e), &e);
    CHECK_STR(got.owner, "key_alice");
    store_job_clear(&got);
    /* another tenant cannot see or cancel it on any node; its owner can */
    enum job_status was;
    CHECK_EQ_INT(store_job_get(a, "job_t", "key_bob", &got, &e), SD_ENOTFOUND);
    CHECK_EQ_INT(store_job_cancel(base, "job_t", "key_bob", 5, &was, &e), SD_ENOTFOUND);
    struct store_finish f = {.status = JOB_SUCCEEDED, .finished_ms = 5};
    CHECK_OK(store_job_finish(a, "job_t", &f, &e), &e);
    CHECK_OK(store_job_get(base, "job_t", "key_alice", &got, &e), &e);
    CHECK_EQ_INT(got.status, JOB_SUCCEEDED);
    CHECK_STR(got.owner, "key_alice");
    store_job_clear(&got);
    store_close(a);
    sut_cleanup(base, dir);
}

TEST(store_pg_import_keeps_owner_and_webhook_error)
{
    if (!sut_pg_base())
        return;
    char *dir = sut_temp_dir();
    struct store *s = sut_open(dir);
    struct sd_error e = {0};
    struct store_job j = {0};
    snprintf(j.id, sizeof(j.id), "job_old");
    snprintf(j.owner, sizeof(j.owner), "key_alice");
    j.status = JOB_SUCCEEDED;
    j.created_ms = 1;
    j.finished_ms = 2;
    j.cb_state = STORE_CB_FAILED;
    j.callback_url = (char *)"http://127.0.0.1:9/cb";
    j.callback_error = (char *)"connection refused";
    struct store_result r = {"extraction", "application/json", "{}", 2};
    bool added = false;
    CHECK_OK(store_job_import(s, &j, &r, 1, &added, &e), &e);
    CHECK(added);
    struct store_job got = {0};
    CHECK_EQ_INT(store_job_get(s, "job_old", "key_bob", &got, &e), SD_ENOTFOUND);
    CHECK_OK(store_job_get(s, "job_old", "key_alice", &got, &e), &e);
    CHECK_STR(got.owner, "key_alice");
    CHECK_STR(got.callback_error, "connection refused");
    store_job_clear(&got);
    char *body = NULL, *ct = NULL;
    size_t len = 0;
    CHECK_EQ_INT(store_result_get(s, "job_old", "key_bob", "extraction", &body, &len, &ct, &e),
                 SD_ENOTFOUND);
    CHECK_OK(store_result_get(s, "job_old", "key_alice", "extraction", &body, &len, &ct, &e), &e);
    CHECK_STR(body, "{}");
    free(body);
    free(ct);
    sut_cleanup(s, dir);
}

/* ---- uploads, rate buckets and webhooks shared through the store ---- */

/* A file of n bytes of a counting pattern at path. */
static void write_pattern(const char *path, size_t n)
{
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    for (size_t i = 0; i < n; i++)
        CHECK(fputc((int)((i * 7 + i / 1000) & 0xff), f) != EOF);
    CHECK(fclose(f) == 0);
}

static bool same_file(const char *a, const char *b)
{
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    bool same = fa && fb;
    for (int ca = 0, cb = 0; same && ca != EOF;) {
        ca = fgetc(fa);
        cb = fgetc(fb);
        same = ca == cb;
    }
    if (fa)
        fclose(fa);
    if (fb)
        fclose(fb);
    return same;
}

TEST(store_pg_keeps_uploads_in_chunks)
{
    if (!sut_pg_base())
        return;
    char *dir = sut_temp_dir();
    struct store *s = sut_open(dir);
    struct sd_error e = {0};
    char in[600], out[600];
    snprintf(in, sizeof(in), "%s/in.wav", dir);
    snprintf(out, sizeof(out), "%s/out.wav", dir);
    /* more than two chunks, the last one short */
    write_pattern(in, (size_t)STORE_UPLOAD_CHUNK * 2 + 12345);
    CHECK(store_keeps_uploads(s));
    struct store_job j = {0};
    snprintf(j.id, sizeof(j.id), "job_up");
    j.upload_path = in;
    j.upload_bytes = STORE_UPLOAD_CHUNK * 2 + 12345;
    j.created_ms = 1;
    CHECK_OK(store_job_insert(s, &j, &e), &e);
    CHECK_OK(store_upload_fetch(s, "job_up", out, &e), &e);
    CHECK(same_file(in, out));
    /* an upload that is not there fails the insert: no job without its audio */
    snprintf(j.id, sizeof(j.id), "job_gone");
    snprintf(out, sizeof(out), "%s/missing.wav", dir);
    j.upload_path = out;
    CHECK_EQ_INT(store_job_insert(s, &j, &e), SD_EIO);
    struct store_job got = {0};
    CHECK_EQ_INT(store_job_get(s, "job_gone", NULL, &got, &e), SD_ENOTFOUND);
    /* the bytes go with the job */
    struct store_finish f = {.status = JOB_SUCCEEDED, .finished_ms = 2};
    CHECK_OK(store_job_finish(s, "job_up", &f, &e), &e);
    enum job_status was;
    char *path = NULL;
    CHECK_OK(store_job_delete(s, "job_up", NULL, &was, &path, &e), &e);
    free(path);
    CHECK_EQ_INT(store_upload_fetch(s, "job_up", out, &e), SD_ENOTFOUND);
    CHECK(access(out, F_OK) != 0); /* no empty file left behind */
    /* and with retention */
    snprintf(j.id, sizeof(j.id), "job_old");
    j.upload_path = in;
    CHECK_OK(store_job_insert(s, &j, &e), &e);
    CHECK_OK(store_job_finish(s, "job_old", &f, &e), &e);
    struct store_purge p = {0};
    CHECK_OK(store_purge(s, 10, 0, &p, &e), &e);
    CHECK_EQ_INT(p.n_upload_paths, 1);
    store_purge_clear(&p);
    CHECK_EQ_INT(store_upload_fetch(s, "job_old", out, &e), SD_ENOTFOUND);
    sut_cleanup(s, dir);
}

TEST(store_pg_rate_bucket_is_shared_by_nodes)
{
    if (!sut_pg_base())
        return;
    char *dir = sut_temp_dir();
    struct store *base = sut_open(dir);
    struct store *a = node(dir, "node_a"), *b = node(dir, "node_b");
    struct sd_error e = {0};
    bool taken = false;
    int retry = 0, n_taken = 0;
    CHECK(store_has_shared_rate_limits(a));
    /* one token a minute after a burst of 3: six tries across two nodes take 3 */
    for (int i = 0; i < 6; i++) {
        CHECK_OK(store_rate_take(i % 2 ? b : a, "key_1", 1, 3, &taken, &retry, &e), &e);
        n_taken += taken;
    }
    CHECK_EQ_INT(n_taken, 3);
    CHECK(!taken);
    CHECK(retry >= 1 && retry <= 60);
    /* another key has its own bucket; no limit means no row at all */
    CHECK_OK(store_rate_take(b, "key_2", 1, 3, &taken, &retry, &e), &e);
    CHECK(taken);
    CHECK_OK(store_rate_take(b, "key_3", 0, 3, &taken, &retry, &e), &e);
    CHECK(taken);
    store_close(a);
    store_close(b);
    sut_cleanup(base, dir);
}

TEST(store_pg_dead_nodes_webhook_is_reclaimed)
{
    if (!sut_pg_base())
        return;
    char *dir = sut_temp_dir();
    struct store *base = sut_open(dir);
    struct store *a = node(dir, "node_a"), *b = node(dir, "node_b");
    struct sd_error e = {0};
    struct store_job j = {0}, *v = NULL;
    int n = 0;
    j.callback_url = (char *)"http://127.0.0.1:9/cb";
    j.created_ms = 1;
    struct store_finish f = {.status = JOB_SUCCEEDED, .finished_ms = 2};
    for (int i = 0; i < 2; i++) {
        snprintf(j.id, sizeof(j.id), "job_cb%d", i);
        CHECK_OK(store_job_insert(base, &j, &e), &e);
        CHECK_OK(store_job_finish(base, j.id, &f, &e), &e);
    }
    /* job_cb0 is node_a's delivery; job_cb1 ended long ago and nobody claimed it */
    CHECK_OK(store_callback_claim(a, "job_cb0", 60000, &e), &e);
    CHECK(sut_pg_exec(dir, "UPDATE jobs SET finished_ms = "
                           "(extract(epoch from clock_timestamp()) * 1000)::bigint"
                           " WHERE id = 'job_cb0'"));
    CHECK_OK(store_callbacks_reclaim(b, 60000, 60000, &v, &n, &e), &e);
    CHECK_EQ_INT(n, 1);
    CHECK_STR(v[0].id, "job_cb1");
    CHECK_STR(v[0].callback_url, "http://127.0.0.1:9/cb");
    store_jobs_free(v, n);
    CHECK_EQ_INT(store_callback_claim(a, "job_cb1", 60000, &e), SD_ENOTFOUND);
    /* node_a dies: its claim runs out and node_b takes the delivery over, once */
    CHECK(sut_pg_exec(dir, "UPDATE jobs SET cb_until_ms = 0 WHERE id = 'job_cb0'"));
    CHECK_OK(store_callbacks_reclaim(b, 60000, 60000, &v, &n, &e), &e);
    CHECK_EQ_INT(n, 1);
    CHECK_STR(v[0].id, "job_cb0");
    store_jobs_free(v, n);
    CHECK_OK(store_callbacks_reclaim(a, 60000, 60000, &v, &n, &e), &e);
    CHECK_EQ_INT(n, 0);
    store_jobs_free(v, n);
    CHECK_EQ_INT(store_callback_claim(a, "job_cb0", 60000, &e), SD_ENOTFOUND);
    store_close(a);
    store_close(b);
    sut_cleanup(base, dir);
}

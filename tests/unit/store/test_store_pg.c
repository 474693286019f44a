/*
 * Tests of what only the PostgreSQL store has: migrations under an advisory
 * lock when several nodes open at once, a newer schema refused, start-up
 * failures as one line without the password, and store_open's URL rules.
 * The PostgreSQL cases pass trivially without $SCRIBED_TEST_PG (make test-pg).
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

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
    CHECK(sut_pg_exec(dir, "DROP TABLE results, uploads, api_keys, jobs, scribed_schema"));
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
        CHECK_OK(store_job_get(o[i].s, "job_shared", &got, &e), &e);
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

/* store_under_test.c - see store_under_test.h. */
#include "store_under_test.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"

const char *sut_pg_base(void)
{
    const char *b = getenv("SCRIBED_TEST_PG");
    return b && *b ? b : NULL;
}

static char upload_file[] = "/tmp/sd_store_upload_XXXXXX";

static void remove_upload_file(void)
{
    unlink(upload_file);
}

const char *sut_upload_file(void)
{
    static bool made;
    if (!made) {
        int fd = mkstemp(upload_file);
        CHECK(fd >= 0);
        CHECK(write(fd, "RIFF-not-really-audio", 21) == 21);
        close(fd);
        atexit(remove_upload_file);
        made = true;
    }
    return upload_file;
}

char *sut_temp_dir(void)
{
    char *d = strdup("/tmp/sd_store_XXXXXX");
    CHECK(d && mkdtemp(d) != NULL);
    return d;
}

/* A database name from the directory's unique suffix (lowercase: unquoted names fold). */
static void db_name(const char *dir, char *out, size_t n)
{
    const char *base = strrchr(dir, '/');
    int o = snprintf(out, n, "sdt_");
    for (const char *p = base ? base + 1 : dir; *p && o + 3 < (int)n; p++)
        out[o++] = (*p >= 'A' && *p <= 'Z') ? (char)(*p - 'A' + 'a')
                   : ((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9')) ? *p : '_';
    out[o] = '\0';
}

/* One statement on a database of the cluster (dbname NULL: the test role's own). */
static bool exec_on(const char *dbname, const char *sql, bool quiet)
{
    char conninfo[1024];
    snprintf(conninfo, sizeof(conninfo), "%s dbname=%s", sut_pg_base(),
             dbname ? dbname : "scribed");
    PGconn *c = PQconnectdb(conninfo);
    bool ok = PQstatus(c) == CONNECTION_OK;
    if (ok) {
        PGresult *r = PQexec(c, sql);
        ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
        if (!ok)
            fprintf(stderr, "# %s: %s", sql, PQresultErrorMessage(r));
        PQclear(r);
    } else if (!quiet) {
        fprintf(stderr, "# connect: %s", PQerrorMessage(c));
    }
    PQfinish(c);
    return ok;
}

void sut_url(const char *dir, char *out, size_t n)
{
    char db[128];
    if (!sut_pg_base()) {
        snprintf(out, n, "%s/scribed.db", dir);
        return;
    }
    db_name(dir, db, sizeof(db));
    snprintf(out, n, "%s dbname=%s", sut_pg_base(), db);
}

bool sut_pg_exec(const char *dir, const char *sql)
{
    char db[128];
    db_name(dir, db, sizeof(db));
    return exec_on(db, sql, false);
}

struct store *sut_open(const char *dir)
{
    char url[1024], db[128], sql[256];
    struct store *s = NULL;
    struct sd_error e_ = {0}, *e = &e_;
    if (sut_pg_base()) {
        db_name(dir, db, sizeof(db));
        snprintf(sql, sizeof(sql), "CREATE DATABASE %s", db);
        /* reopening the same dir (a restart) finds its database */
        if (!exec_on(db, "SELECT 1", true))
            CHECK(exec_on(NULL, sql, false));
    }
    sut_url(dir, url, sizeof(url));
    CHECK_OK(store_open(url, &s, e), e);
    return s;
}

void sut_cleanup(struct store *s, char *dir)
{
    char cmd[600], db[128];
    store_close(s);
    if (sut_pg_base()) {
        db_name(dir, db, sizeof(db));
        snprintf(cmd, sizeof(cmd), "DROP DATABASE IF EXISTS %s", db);
        CHECK(exec_on(NULL, cmd, false));
    }
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
    free(dir);
}

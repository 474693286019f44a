/*
 * store_copy.c - `scribed store copy --from DATA_DIR --to URL`: moves a
 * single-node deployment's SQLite store (jobs with their results, upload
 * metadata, API keys) into PostgreSQL, so users who outgrow one machine keep
 * their data. Run it with the service stopped. The uploads of jobs not yet
 * finished go into the database with them (store_job_import), so the new
 * nodes need nothing of DATA_DIR. Re-running it copies only what is missing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "store/store.h"

static int copy_usage(void)
{
    fprintf(stderr, "usage: scribed store copy --from DATA_DIR --to postgres://USER:PASS@HOST/DB\n"
                    "  copies DATA_DIR/scribed.db (jobs, results, API keys) into PostgreSQL;\n"
                    "  stop the service first. Uploads of unfinished jobs are copied too.\n");
    return 2;
}

static enum sd_err copy_keys(struct store *from, struct store *to, int *n_copied,
                             struct sd_error *err)
{
    struct store_key *keys = NULL;
    int n = 0;
    enum sd_err rc = store_key_list(from, &keys, &n, err);
    for (int i = 0; rc == SD_OK && i < n; i++) {
        struct sd_error e = {0};
        enum sd_err r = store_key_insert(to, &keys[i], &e);
        if (r == SD_EINVAL)
            continue; /* copied before */
        rc = r == SD_OK ? SD_OK : sd_fail(err, r, "%s", e.msg);
        if (rc == SD_OK && keys[i].revoked_ms)
            rc = store_key_revoke(to, keys[i].id, keys[i].revoked_ms, err);
        if (rc == SD_OK && keys[i].last_used_ms)
            rc = store_key_touch(to, keys[i].id, keys[i].last_used_ms, err);
        *n_copied += rc == SD_OK;
    }
    free(keys);
    return rc;
}

/* One job (its owner too) with whichever of its results it has: five formats and an extraction. */
static enum sd_err copy_job(struct store *from, struct store *to, const struct store_job *j,
                            bool *added, struct sd_error *err)
{
    static const char *const formats[] = {"json", "text", "srt", "vtt", "verbose_json",
                                          "extraction"};
    enum { N_FORMATS = sizeof(formats) / sizeof(formats[0]) };
    struct store_result r[N_FORMATS];
    char *bodies[N_FORMATS] = {0}, *types[N_FORMATS] = {0};
    int n = 0;
    for (int i = 0; i < N_FORMATS; i++) {
        size_t len = 0;
        if (store_result_get(from, j->id, NULL, formats[i], &bodies[n], &len, &types[n], NULL) ==
            SD_OK) {
            r[n] = (struct store_result){formats[i], types[n], bodies[n], len};
            n++;
        }
    }
    enum sd_err rc = store_job_import(to, j, r, n, added, err);
    for (int i = 0; i < n; i++) {
        free(bodies[i]);
        free(types[i]);
    }
    return rc;
}

/* Every job of from, oldest first (so the destination keeps their order). */
static enum sd_err copy_jobs(struct store *from, struct store *to, int *n_copied, int *n_seen,
                             struct sd_error *err)
{
    struct store_job *all = NULL;
    int n_all = 0;
    char cursor[STORE_ID_MAX] = "";
    enum sd_err rc = SD_OK;
    for (bool more = true; more && rc == SD_OK;) {
        struct store_job *page = NULL;
        int n = 0;
        rc = store_job_list(from, NULL, cursor[0] ? cursor : NULL, 1000, -1, &page, &n, &more, err);
        if (rc != SD_OK)
            break;
        struct store_job *grown = realloc(all, (size_t)(n_all + n) * sizeof(*all) + 1);
        if (!grown) {
            store_jobs_free(page, n);
            rc = sd_fail(err, SD_ENOMEM, "listing jobs");
            break;
        }
        all = grown;
        memcpy(all + n_all, page, (size_t)n * sizeof(*page));
        n_all += n;
        free(page); /* the rows' strings moved to all */
        if (n > 0)
            snprintf(cursor, sizeof(cursor), "%s", all[n_all - 1].id);
        more = more && n > 0;
    }
    for (int i = n_all - 1; rc == SD_OK && i >= 0; i--) {
        bool added = false;
        rc = copy_job(from, to, &all[i], &added, err);
        *n_copied += added;
        (*n_seen)++;
    }
    store_jobs_free(all, n_all);
    return rc;
}

int cmd_store(int argc, char **argv)
{
    const char *from = NULL, *to = NULL;
    if (argc < 2 || strcmp(argv[1], "copy") != 0)
        return copy_usage();
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--from") == 0 && i + 1 < argc)
            from = argv[++i];
        else if (strcmp(argv[i], "--to") == 0 && i + 1 < argc)
            to = argv[++i];
        else
            return copy_usage();
    }
    if (!from || !to)
        return copy_usage();
    if (!store_url_is_postgres(to)) {
        fprintf(stderr, "scribed store copy: --to must be a PostgreSQL URL (postgres://...)\n");
        return 2;
    }
    char db[4096];
    snprintf(db, sizeof(db), "%s/scribed.db", from);
    struct store *src = NULL, *dst = NULL;
    struct sd_error err = {0};
    int keys = 0, jobs = 0, seen = 0;
    enum sd_err rc = access(db, R_OK) == 0
                         ? SD_OK
                         : sd_fail(&err, SD_ENOTFOUND, "no database at %s (wrong --from?)", db);
    if (rc == SD_OK)
        rc = store_open_sqlite(db, &src, &err);
    if (rc == SD_OK)
        rc = store_open(to, &dst, &err);
    if (rc == SD_OK)
        rc = copy_keys(src, dst, &keys, &err);
    if (rc == SD_OK)
        rc = copy_jobs(src, dst, &jobs, &seen, &err);
    store_close(src);
    store_close(dst);
    if (rc != SD_OK) {
        fprintf(stderr, "scribed store copy: %s\n", err.msg);
        return 1;
    }
    printf("copied %d jobs (%d already there) and %d API keys from %s\n", jobs, seen - jobs, keys,
           db);
    return 0;
}

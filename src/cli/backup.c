/*
 * backup.c - `scribed backup PATH [--data-dir DIR]`: a consistent online
 * copy of the service database (sqlite3 backup API: one read snapshot,
 * safe while the service runs). Uploads are files; copy them with rsync.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "store/store.h"

/* DIR from --data-dir, else $SCRIBED_DATA_DIR, else ./data. */
static const char *data_dir_arg(int argc, char **argv, const char **path)
{
    const char *dir = getenv("SCRIBED_DATA_DIR");
    *path = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--data-dir") == 0 && i + 1 < argc)
            dir = argv[++i];
        else if (strncmp(argv[i], "--data-dir=", 11) == 0)
            dir = argv[i] + 11;
        else if (argv[i][0] != '-' && !*path)
            *path = argv[i];
        else
            return NULL;
    }
    return dir && *dir ? dir : "./data";
}

int cmd_backup(int argc, char **argv)
{
    const char *dest = NULL;
    const char *dir = data_dir_arg(argc, argv, &dest);
    struct sd_error err = {0};
    struct store *s = NULL;
    char db[4096];

    if (!dir || !dest) {
        fprintf(stderr, "usage: scribed backup PATH [--data-dir DIR]\n"
                        "  copies DIR/scribed.db to PATH; safe while the service runs\n");
        return 2;
    }
    snprintf(db, sizeof(db), "%s/scribed.db", dir);
    if (store_open_sqlite(db, &s, &err) != SD_OK || store_backup(s, dest, &err) != SD_OK) {
        fprintf(stderr, "scribed backup: %s\n", err.msg);
        store_close(s);
        return 1;
    }
    int64_t n[5] = {0};
    for (int st = 0; st < 5; st++)
        store_count(s, (enum job_status)st, &n[st], NULL);
    store_close(s);
    printf("backed up %s to %s (%lld jobs)\n", db, dest,
           (long long)(n[0] + n[1] + n[2] + n[3] + n[4]));
    return 0;
}

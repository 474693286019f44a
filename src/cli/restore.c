/*
 * restore.c - `scribed restore PATH [--data-dir DIR]`: replaces the service
 * database with a backup made by `scribed backup`. Stop the service first;
 * jobs that were running in the backup are re-queued at the next start.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "store/store.h"

int cmd_restore(int argc, char **argv)
{
    const char *dir = getenv("SCRIBED_DATA_DIR");
    const char *src = NULL;
    struct sd_error err = {0};
    char db[4096];

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--data-dir") == 0 && i + 1 < argc) {
            dir = argv[++i];
        } else if (strncmp(argv[i], "--data-dir=", 11) == 0) {
            dir = argv[i] + 11;
        } else if (argv[i][0] != '-' && !src) {
            src = argv[i];
        } else {
            src = NULL;
            break;
        }
    }
    if (!src) {
        fprintf(stderr, "usage: scribed restore PATH [--data-dir DIR]\n"
                        "  replaces DIR/scribed.db with the backup at PATH (stop the service "
                        "first)\n");
        return 2;
    }
    snprintf(db, sizeof(db), "%s/scribed.db", dir && *dir ? dir : "./data");
    if (store_restore_sqlite(src, db, &err) != SD_OK) {
        fprintf(stderr, "scribed restore: %s\n", err.msg);
        return 1;
    }
    printf("restored %s from %s\n", db, src);
    return 0;
}

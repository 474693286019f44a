/*
 * worker.c - `scribed worker`: a node that only runs jobs from the shared
 * queue (PostgreSQL, --database-url): `scribed serve --api 0`, whose HTTP
 * port (--health-port, or --port) answers only /health and /metrics for the
 * orchestrator. Every other setting is serve's (server/config.def).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

int cmd_worker(int argc, char **argv)
{
    /* serve's arguments: "--api 0" first, so an explicit --api later still says what it says */
    char **args = calloc((size_t)argc + 3, sizeof(char *));
    int n = 0;
    if (!args) {
        fprintf(stderr, "scribed worker: out of memory\n");
        return 1;
    }
    args[n++] = "serve";
    args[n++] = "--api";
    args[n++] = "0";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--health-port") == 0)
            args[n++] = "--port";
        else if (strncmp(argv[i], "--health-port=", 14) == 0) {
            static char buf[64];
            snprintf(buf, sizeof(buf), "--port=%.50s", argv[i] + 14);
            args[n++] = buf;
        } else
            args[n++] = argv[i];
    }
    int rc = cmd_serve(n, args);
    free(args);
    return rc;
}

/* backup.c - `scribed backup` (not built yet). */
#include <stdio.h>

#include "cli/cli.h"

int cmd_backup(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "scribed backup: not available yet\n");
    return 2;
}

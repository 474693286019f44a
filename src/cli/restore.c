/* restore.c - `scribed restore` (not built yet). */
#include <stdio.h>

#include "cli/cli.h"

int cmd_restore(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "scribed restore: not available yet\n");
    return 2;
}

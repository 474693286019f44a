/* keys.c - `scribed keys` (not built yet). */
#include <stdio.h>

#include "cli/cli.h"

int cmd_keys(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "scribed keys: not available yet\n");
    return 2;
}

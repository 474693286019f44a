/* serve.c - `scribed serve` (not built yet). */
#include <stdio.h>

#include "cli/cli.h"

int cmd_serve(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "scribed serve: not available yet\n");
    return 2;
}

/* bench.c - `scribed bench` (not built yet). */
#include <stdio.h>

#include "cli/cli.h"

int cmd_bench(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "scribed bench: not available yet\n");
    return 2;
}

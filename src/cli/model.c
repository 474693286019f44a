/* model.c - `scribed model` (not built yet). */
#include <stdio.h>

#include "cli/cli.h"

int cmd_model(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "scribed model: not available yet\n");
    return 2;
}

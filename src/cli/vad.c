/* vad.c - `scribed vad` (not built yet). */
#include <stdio.h>

#include "cli/cli.h"

int cmd_vad(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "scribed vad: not available yet\n");
    return 2;
}

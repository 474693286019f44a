/* transcribe.c - `scribed transcribe` (not built yet). */
#include <stdio.h>

#include "cli/cli.h"

int cmd_transcribe(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "scribed transcribe: not available yet\n");
    return 2;
}

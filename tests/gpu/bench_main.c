/*
 * bench_main.c - `scribed bench` alone, for the engine-only build of
 * tests/gpu/run.sh (the GPU machine has no libmicrohttpd or FFmpeg, so the
 * full binary cannot be linked there).
 */
#include "cli/cli.h"

int main(int argc, char **argv)
{
    return cmd_bench(argc, argv);
}

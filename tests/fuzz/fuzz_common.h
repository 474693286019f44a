/*
 * fuzz_common.h - small helpers shared by the libFuzzer targets in this
 * folder: splitting an input into fields and failing loudly when a contract
 * breaks. Header-only; each target is its own program.
 */
#ifndef SD_FUZZ_COMMON_H
#define SD_FUZZ_COMMON_H
#include <stdio.h>
#include <stdlib.h>

/* A broken contract is a finding: print what broke, then abort so libFuzzer keeps the input. */
#define FUZZ_REQUIRE(cond, what)                                                         \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            fprintf(stderr, "%s:%d: contract broken: %s\n", __FILE__, __LINE__, (what)); \
            abort();                                                                     \
        }                                                                                \
    } while (0)

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);
#endif

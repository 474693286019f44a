/*
 * fuzz_model.c - libFuzzer target over the model loader: whisper.cpp's ggml
 * file format (header, mel filters, vocabulary, tensor table), as a user's
 * download or a damaged file gives it.
 *
 * Each input is written to a memfd and loaded through its /proc path, as a
 * file on disk is. The seed corpus holds small real-shaped files (made by
 * run_fuzz.sh with mkmodel, cut short); most mutations land in the header
 * and tables, where the parsing is.
 * Contracts: a load either succeeds or fails with a message; no crash, no
 * sanitizer report, no allocation the file's size does not justify (the
 * run's -rss_limit_mb and -malloc_limit_mb catch those).
 */
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz_common.h"
#include "whisper/model.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    static int fd = -1;
    static char path[64];
    if (fd < 0) {
        fd = memfd_create("fuzz-model", MFD_CLOEXEC);
        FUZZ_REQUIRE(fd >= 0, "memfd_create");
        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    }
    FUZZ_REQUIRE(ftruncate(fd, 0) == 0, "ftruncate");
    FUZZ_REQUIRE(!size || pwrite(fd, data, size, 0) == (ssize_t)size, "pwrite");
    struct whisper_model *m = NULL;
    struct sd_error err = {0};
    if (whisper_model_load(path, &m, &err) == SD_OK) {
        FUZZ_REQUIRE(m != NULL, "a loaded model");
        FUZZ_REQUIRE(whisper_model_describe(m)[0], "a loaded model describes itself");
        whisper_model_free(m);
    } else {
        FUZZ_REQUIRE(err.msg[0], "a refused file says why");
    }
    return 0;
}

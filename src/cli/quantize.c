/*
 * quantize.c - `scribed quantize IN.bin OUT.bin TYPE`: converts a whisper.cpp
 * ggml model (f16 or f32) to q8_0, q5_0, q5_1, q4_0 or q4_1 with
 * whisper_model_quantize, then loads the result once to check it. Prints a
 * key=value summary. Does not download anything.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "whisper/quantize.h"
#include "whisper/whisper.h"

static int usage(void)
{
    fprintf(stderr, "usage: scribed quantize IN.bin OUT.bin TYPE   (TYPE: q8_0 q5_0 q5_1 q4_0 "
                    "q4_1)\n");
    return 2;
}

int cmd_quantize(int argc, char **argv)
{
    const char *pos[3];
    int n_pos = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
            return usage();
        if (argv[i][0] == '-' || n_pos == 3) {
            fprintf(stderr, "scribed quantize: unexpected argument '%s'\n", argv[i]);
            return usage();
        }
        pos[n_pos++] = argv[i];
    }
    if (n_pos != 3)
        return usage();
    int type = whisper_quant_type_parse(pos[2]);
    if (type < 0) {
        fprintf(stderr, "scribed quantize: unknown type '%s'\n", pos[2]);
        return usage();
    }
    struct sd_error err = {0};
    struct whisper_quantize_stats st;
    if (whisper_model_quantize(pos[0], pos[1], (enum sd_type)type, &st, &err) != SD_OK) {
        fprintf(stderr, "scribed quantize: %s\n", err.msg);
        return 1;
    }
    struct whisper_model *m = NULL;
    if (whisper_model_load(pos[1], &m, &err) != SD_OK) {
        fprintf(stderr, "scribed quantize: the result does not load: %s\n", err.msg);
        return 1;
    }
    printf("model=%s\n", whisper_model_describe(m));
    printf("tensors=%d\nquantized=%d\n", st.n_tensors, st.n_quantized);
    printf("bytes_in=%zu\nbytes_out=%zu\n", st.bytes_in, st.bytes_out);
    whisper_model_free(m);
    return 0;
}

/* refdata.c - readers for the shared conformance data (refdata.h). */
#include "refdata.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "whisper/model.h"
#include "whisper/tokenizer.h"
#include "whisper/whisper.h"

const char *ref_path(char *buf, size_t n, const char *rel)
{
    snprintf(buf, n, "%s/reference/%s", check_shared_dir(), rel);
    return buf;
}

static uint32_t rd_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

float *ref_read_wav(const char *path, size_t *n_samples)
{
    size_t n = 0;
    uint8_t *buf = check_read_file(path, &n);
    if (!buf)
        return NULL;
    /* Walk the RIFF chunks to "data"; the clips are 16-bit mono 16 kHz. */
    size_t off = 12;
    float *pcm = NULL;
    while (off + 8 <= n) {
        uint32_t len = rd_u32(buf + off + 4);
        if (memcmp(buf + off, "data", 4) == 0) {
            size_t count = (len < n - off - 8 ? len : n - off - 8) / 2;
            pcm = malloc((count ? count : 1) * sizeof(float));
            for (size_t i = 0; pcm && i < count; i++) {
                int16_t s = (int16_t)(buf[off + 8 + 2 * i] | buf[off + 9 + 2 * i] << 8);
                pcm[i] = (float)s / 32768.0f;
            }
            *n_samples = count;
            break;
        }
        off += 8 + len + (len & 1);
    }
    free(buf);
    CHECK_MSG(pcm != NULL, "no data chunk in %s", path);
    return pcm;
}

float *ref_read_f32(const char *path, size_t *n)
{
    size_t bytes = 0;
    float *v = check_read_file(path, &bytes);
    *n = bytes / sizeof(float);
    return v;
}

int32_t *ref_read_i32(const char *path, size_t *n)
{
    size_t bytes = 0;
    int32_t *v = check_read_file(path, &bytes);
    *n = bytes / sizeof(int32_t);
    return v;
}

json_t *ref_read_json(const char *path)
{
    json_error_t jerr;
    json_t *j = json_load_file(path, 0, &jerr);
    CHECK_MSG(j != NULL, "%s: %s (line %d)", path, jerr.text, jerr.line);
    return j;
}

int ref_engine_open(struct ref_engine *e, const char *model_rel, int n_seq)
{
    char path[512];
    struct sd_error err = {0};
    memset(e, 0, sizeof(*e));
    CHECK_OK(whisper_model_load(ref_path(path, sizeof(path), model_rel), &e->m, &err), &err);
    if (!e->m)
        return -1;
    const struct whisper_hparams *hp = whisper_model_hparams(e->m);
    CHECK_OK(tok_create(whisper_model_vocab(e->m), whisper_model_special(e->m), hp->n_vocab, &e->tok,
                        &err), &err);
    CHECK_OK(whisper_state_create(e->m, 2, n_seq, &e->st, &err), &err);
    return e->tok && e->st ? 0 : -1;
}

void ref_engine_close(struct ref_engine *e)
{
    whisper_state_destroy(e->st);
    tok_destroy(e->tok);
    whisper_model_free(e->m);
}

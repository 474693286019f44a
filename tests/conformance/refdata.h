/*
 * refdata.h - reading the conformance data in ../shared/reference (WAV clips,
 * raw f32/i32 arrays, JSON) for the conformance tests. Test-only code.
 */
#ifndef SD_TESTS_REFDATA_H
#define SD_TESTS_REFDATA_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* "<shared>/reference/<rel>" into buf. */
const char *ref_path(char *buf, size_t n, const char *rel);
/* 16-bit PCM WAV -> floats (s / 32768), malloc'd; NULL on failure (and a CHECK failure). */
float *ref_read_wav(const char *path, size_t *n_samples);
/* Raw little-endian arrays, malloc'd. */
float *ref_read_f32(const char *path, size_t *n);
int32_t *ref_read_i32(const char *path, size_t *n);
/* Parsed JSON (json_decref when done); NULL on failure. */
json_t *ref_read_json(const char *path);

struct whisper_model;
struct tokenizer;
struct whisper_state;

/* A loaded reference model with its tokenizer and a 2-thread state of n_seq sequences. */
struct ref_engine {
    struct whisper_model *m;
    struct tokenizer *tok;
    struct whisper_state *st;
};
/* model_rel is relative to reference/; 0 on success (failures are CHECKs). */
int ref_engine_open(struct ref_engine *e, const char *model_rel, int n_seq);
void ref_engine_close(struct ref_engine *e);

#endif

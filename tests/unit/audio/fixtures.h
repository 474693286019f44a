/*
 * fixtures.h - helpers shared by the audio tests: the fixture folder made by
 * mkfixtures.sh (generated once per script version, cached under $TMPDIR),
 * reading raw float files and comparing signals.
 */
#ifndef SD_TESTS_AUDIO_FIXTURES_H
#define SD_TESTS_AUDIO_FIXTURES_H

#include <stddef.h>

/* Folder holding the fixtures, generating them on first use; NULL (and a failure) if impossible. */
const char *afx_dir(void);
/* afx_dir()/name in a static buffer (one per call site is enough for the tests). */
const char *afx_path(const char *name, char *buf, size_t n);
/* A whole file of f32le samples; caller frees. */
float *afx_read_f32(const char *path, size_t *n);
/* Best normalised cross-correlation of a and b over lags within +-max_lag samples. */
double afx_xcorr(const float *a, size_t na, const float *b, size_t nb, int max_lag);

#endif

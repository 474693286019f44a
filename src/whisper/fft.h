/*
 * fft.h - a small double-precision DFT for real input, used by the log-mel
 * front end (mel.c) with n = 400.
 *
 * Sizes of the form 2^a * m (m odd): a naive DFT of size m at the leaves and
 * radix-2 decimation-in-time stages above. It is not a general-purpose FFT
 * library: no inverse, no complex input, no SIMD; m should be small.
 */
#ifndef SD_WHISPER_FFT_H
#define SD_WHISPER_FFT_H

#include "util/err.h"

struct fft_plan;

/* Plans a size-n transform (n >= 1, odd part <= 1024). Caller owns *out: fft_plan_free(). */
enum sd_err fft_plan_create(int n, struct fft_plan **out, struct sd_error *err);
void fft_plan_free(struct fft_plan *p);
int fft_plan_size(const struct fft_plan *p);

/*
 * X[k] = sum_j in[j] * exp(-2 pi i j k / n) for k = 0 .. n/2 (the other half
 * mirrors it for real input). re/im hold n/2 + 1 values. work must hold
 * 4 * n doubles; it makes the call reentrant (the plan is read-only, so any
 * number of threads may share it, each with its own work buffer).
 */
void fft_real_forward(const struct fft_plan *p, const double *in, double *re, double *im,
                      double *work);

#endif

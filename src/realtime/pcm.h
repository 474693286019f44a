/*
 * pcm.h - what a live client sends, turned into 16 kHz mono float PCM:
 * little-endian s16 or f32 samples (frames may split a sample anywhere) and a
 * streaming windowed-sinc resampler for any rate 8..48 kHz (OpenAI Realtime
 * sends 24 kHz). No I/O, no threads; one converter per stream.
 */
#ifndef SD_REALTIME_PCM_H
#define SD_REALTIME_PCM_H

#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

enum rt_pcm_format { RT_PCM_S16LE, RT_PCM_F32LE };

#define RT_PCM_MIN_RATE 8000
#define RT_PCM_MAX_RATE 48000

struct rt_pcm;

/* Caller owns *out: rt_pcm_free(). SD_EINVAL for a rate outside 8000..48000. */
enum sd_err rt_pcm_new(enum rt_pcm_format f, int sample_rate, struct rt_pcm **out,
                       struct sd_error *err);
void rt_pcm_free(struct rt_pcm *c);
/*
 * Converts n_bytes of client audio. *out (malloc'd, caller frees; NULL when
 * *n_out is 0) receives the 16 kHz samples ready so far. Non-finite f32
 * samples become 0 and all samples are clamped to [-1, 1].
 */
enum sd_err rt_pcm_push(struct rt_pcm *c, const void *bytes, size_t n_bytes, float **out,
                        size_t *n_out, struct sd_error *err);
/* The samples the resampler still holds back (end of stream). Same ownership as push. */
enum sd_err rt_pcm_flush(struct rt_pcm *c, float **out, size_t *n_out, struct sd_error *err);

#endif

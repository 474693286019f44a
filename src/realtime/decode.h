/*
 * decode.h - runs one realtime decode on the service's shared worker pool:
 * the span's samples are queued as a synchronous job (in memory, no file),
 * so live streams and file jobs share the same workers, the same queue
 * order (short work first, with ageing) and the same limits (a full queue
 * answers SD_EBUSY). The pipeline, decoding parameters and hallucination
 * guards are exactly those of a file transcription.
 *
 * Deliberately not here: deciding what to decode (stream.h).
 * Thread safety: one rt_decode belongs to one thread.
 */
#ifndef SD_REALTIME_DECODE_H
#define SD_REALTIME_DECODE_H

#include <stdbool.h>
#include <stddef.h>

#include "jobs/job.h"
#include "jobs/service.h"
#include "util/err.h"

struct rt_decode;

/*
 * Queues the transcription of pcm[0..n) (16 kHz, copied) with request
 * parameters p. SD_EBUSY when the queue is full. Caller owns *out: rt_decode_free().
 */
enum sd_err rt_decode_start(struct jobs *js, const struct stt_params *p, const float *pcm,
                            size_t n, struct rt_decode **out, struct sd_error *err);
/*
 * Waits up to timeout_ms (0: just looks). Returns false while it runs.
 * When it ended: *text = the transcript text (malloc'd, caller frees) or
 * NULL with err set when the decode failed or was cancelled.
 */
bool rt_decode_poll(struct rt_decode *d, int timeout_ms, char **text, struct sd_error *err);
/* Cancels the job if it still runs, frees. */
void rt_decode_free(struct rt_decode *d);

#endif

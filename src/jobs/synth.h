/*
 * synth.h - the share of the machine that speech synthesis gets: a bounded
 * number of synthesis slots beside the transcription workers.
 *
 * Why slots and not jobs on the run queue: a synthesis streams its audio to
 * the client as each sentence is done, so it runs on the connection's own
 * thread, paced by the client's reading, and keeps no worker busy while the
 * client reads. The slot count bounds how many syntheses run at once
 * (default: half the workers, at least one), so synthesis can never take
 * the cores of every transcription worker; and it never waits behind the
 * transcription queue, so a long transcription backlog cannot starve it.
 * A request finding every slot taken waits (up to max_waiting of them, then
 * SD_EBUSY, HTTP 429) for the next free one.
 *
 * Thread-safe: one mutex guards the counts.
 */
#ifndef SD_JOBS_SYNTH_H
#define SD_JOBS_SYNTH_H

#include <stdbool.h>
#include <stdint.h>

#include "util/err.h"

struct synth_slots;

/* Caller owns *out: synth_slots_destroy() (once no slot is held). */
enum sd_err synth_slots_create(int slots, int max_waiting, struct synth_slots **out,
                               struct sd_error *err);
void synth_slots_destroy(struct synth_slots *s);
/*
 * Takes a slot, waiting up to timeout_ms for one. SD_EBUSY when max_waiting
 * requests already wait or the wait timed out, or after synth_slots_stop.
 */
enum sd_err synth_acquire(struct synth_slots *s, int timeout_ms, struct sd_error *err);
void synth_release(struct synth_slots *s);
/* Waiters give up; no new slot is handed out. */
void synth_slots_stop(struct synth_slots *s);
/* A finished synthesis: its audio length and the bytes sent; ok false when it failed or was cut. */
void synth_record(struct synth_slots *s, bool ok, double audio_s, int64_t bytes);

struct synth_stats {
    int slots;
    int64_t running, waiting;
    int64_t done, failed, bytes;
    double audio_s;
};
void synth_stats(struct synth_slots *s, struct synth_stats *out);

#endif

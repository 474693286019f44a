/*
 * batcher.h - the decoding steps of several transcriptions run as one.
 *
 * Each worker thread transcribes its own request on its own whisper_state.
 * A decoding step streams every decoder weight from memory for a handful of
 * rows (the beams), so it is memory bound: while several workers are in the
 * token-by-token phase of a window, their steps meet here and run as one
 * pass over the weights, on the batcher's backend (all the service's
 * compute threads). Each request keeps its own KV caches and cross-attention.
 *
 * Protocol, per window: whisper_batcher_join before the first step,
 * whisper_batcher_step for every step, whisper_batcher_leave after the last
 * (also on errors). A batch runs as soon as every member has submitted its
 * step: nobody waits for a worker that is encoding, reading audio or idle.
 * The thread whose submission completes the batch computes it; the others
 * sleep until their rows are ready.
 *
 * A request's logits are bitwise those whisper_decode_batch gives on its own
 * state (every kernel computes a row the same way whatever rows share the
 * product), so a transcript does not depend on the server's load.
 * Thread safety: every call may come from any thread.
 */
#ifndef SD_WHISPER_BATCHER_H
#define SD_WHISPER_BATCHER_H

#include <stdbool.h>
#include <stdint.h>

#include "util/err.h"
#include "whisper/whisper.h"

struct whisper_batcher;

/*
 * For states of model m whose steps decode at most max_rows_per_member
 * sequences, up to max_members of them at once; n_threads compute threads.
 * Caller owns *out: whisper_batcher_destroy() once no member is left.
 */
enum sd_err whisper_batcher_create(const struct whisper_model *m, int n_threads,
                                   int max_members, int max_rows_per_member,
                                   struct whisper_batcher **out, struct sd_error *err);
void whisper_batcher_destroy(struct whisper_batcher *b);

/*
 * st's steps, of at most rows_per_step sequences, go through the batcher
 * until whisper_batcher_leave. False when they cannot (another model, more
 * rows than a member may have, all places taken): the caller then decodes
 * on its own state.
 */
bool whisper_batcher_join(struct whisper_batcher *b, const struct whisper_state *st,
                          int rows_per_step);
void whisper_batcher_leave(struct whisper_batcher *b);

/*
 * whisper_decode_batch's contract, for a member: returns once this step has
 * run (with the steps other members submitted meanwhile).
 */
enum sd_err whisper_batcher_step(struct whisper_batcher *b, struct whisper_state *st, int n,
                                 const int *seqs, const int32_t *tokens, const int *n_past,
                                 float *logits, struct sd_error *err);

/* Totals since creation, for /metrics. */
struct whisper_batcher_stats {
    uint64_t batches;  /* passes over the weights */
    uint64_t steps;    /* member steps they ran (> batches: steps shared a pass) */
    uint64_t rows;     /* sequences decoded */
};
void whisper_batcher_stats(struct whisper_batcher *b, struct whisper_batcher_stats *out);

#endif

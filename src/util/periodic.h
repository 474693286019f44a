/*
 * periodic.h - a background thread that calls one function every interval
 * until stopped: the shape of the job system's housekeeping (retention, the
 * orphan sweep). The wait counts on CLOCK_MONOTONIC and a stop wakes it at
 * once, so stopping never waits out an interval.
 *
 * Ownership: sd_periodic_start gives the caller the handle; sd_periodic_stop
 * joins the thread (after a call in progress returns) and frees it.
 * Threads: fn runs on the periodic's own thread only, never twice at once;
 * start and stop are called from one owning thread.
 */
#ifndef SD_UTIL_PERIODIC_H
#define SD_UTIL_PERIODIC_H

#include <stdbool.h>
#include <stdint.h>

#include "util/err.h"

struct sd_periodic;

/*
 * Starts a thread calling fn(arg) every interval_ms (> 0), the first time at
 * once when run_first, else after one interval. `what` names the thread in
 * the error when it cannot be started.
 */
enum sd_err sd_periodic_start(const char *what, void (*fn)(void *arg), void *arg,
                              int64_t interval_ms, bool run_first, struct sd_periodic **out,
                              struct sd_error *err);
/* Stops and frees p (NULL: nothing). */
void sd_periodic_stop(struct sd_periodic *p);

#endif

/*
 * reserve.h - a few hundred KB of the data dir's disk held back in a file,
 * DATA/.disk-reserve, so that when the disk fills up the service can still
 * write what it must: the row saying a job failed because its results could
 * not be saved. Without it that small write fails as well and the job would
 * stay `running`. Given back (deleted) only for that; made again once space
 * allows (reserve_restore, from the sweep).
 *
 * Threads: every call may come from any thread (one mutex inside).
 */
#ifndef SD_JOBS_RESERVE_H
#define SD_JOBS_RESERVE_H

#include <stdbool.h>
#include <stdint.h>

#include "util/err.h"

struct reserve;

/*
 * Holds bytes in dir/.disk-reserve (created, or kept if there already).
 * bytes 0: no reserve (*out NULL, every call a no-op). A disk too full to
 * hold it is not an error: the file is made later by reserve_restore.
 * Caller owns *out: reserve_close (the file stays for the next start).
 */
enum sd_err reserve_open(const char *dir, int64_t bytes, struct reserve **out,
                         struct sd_error *err);
void reserve_close(struct reserve *r);
/* Deletes the file so its space can be used now; true if it held space. */
bool reserve_release(struct reserve *r);
/* Makes the file again if it is missing and the disk has room; true if it is in place. */
bool reserve_restore(struct reserve *r);

#endif

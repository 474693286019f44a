/*
 * speech_cache.h - synthesised speech kept in DATA/speech-cache/ so the same
 * request is answered from a file: keyed by (engine version, voice, format,
 * speed, text), with a time-to-live (default 1 hour) and a size cap, swept
 * by the retention thread and after every insert. Speech is reproducible
 * byte for byte (tts.h), so the key also serves as the response's ETag.
 *
 * Concurrent identical requests synthesise once: the first becomes the
 * producer (it streams to its client and writes the file), the others wait
 * for it and are then answered from the file. A producer that fails gives
 * the turn to one of the waiters.
 *
 * Thread-safe: one mutex guards the in-flight keys and the counters; files
 * appear by rename, whole.
 */
#ifndef SD_JOBS_SPEECH_CACHE_H
#define SD_JOBS_SPEECH_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "util/err.h"

#define SPEECH_KEY_HEX 65 /* 64 hex digits of SHA-256 + NUL */

struct speech_cache;

struct speech_cache_stats {
    int64_t hits, misses, evictions, stored_bytes, files;
};

/* max_bytes 0: no cache (speech_cache_open gives NULL). Caller owns *out. */
enum sd_err speech_cache_open(const char *data_dir, int64_t max_bytes, int ttl_s,
                              struct speech_cache **out, struct sd_error *err);
void speech_cache_close(struct speech_cache *c);
int speech_cache_ttl_s(const struct speech_cache *c);

/* The key of a request. */
void speech_cache_key(const char *engine_version, const char *voice, const char *format,
                      double speed, const char *text, size_t len, char key[SPEECH_KEY_HEX]);

/*
 * A fresh entry: *fd open on it (caller closes), *size its length; or, on a
 * miss, *producer true: the caller synthesises and ends with
 * speech_cache_finish. Waits (up to timeout_ms) while another request
 * produces the same key; SD_ETIMEOUT if that takes longer.
 */
enum sd_err speech_cache_get(struct speech_cache *c, const char *key, int *fd, int64_t *size,
                             bool *producer, int timeout_ms, struct sd_error *err);
/* The producer's file to write (a temporary name); NULL if it cannot be created. */
FILE *speech_cache_create(struct speech_cache *c, const char *key);
/* The producer is done: ok keeps what it wrote (f is closed either way). */
void speech_cache_finish(struct speech_cache *c, const char *key, FILE *f, bool ok);
/* Removes expired entries, then the oldest while over the cap; returns how many. */
int speech_cache_sweep(struct speech_cache *c);
void speech_cache_stats(struct speech_cache *c, struct speech_cache_stats *out);

#endif

/*
 * ratelimit.h - limits on how much of the server one client can take:
 * token buckets (requests per minute with a burst, per key or per address),
 * counted slots (concurrent uploads per key), and the slow-client guard that
 * closes connections whose headers or body trickle in (slowloris).
 *
 * No policy lives here (which key, which route): server/auth.c decides and
 * http.c calls the guard's hooks. Everything is thread-safe; times are
 * seconds on the monotonic clock unless a name says otherwise.
 */
#ifndef SD_SERVER_RATELIMIT_H
#define SD_SERVER_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

/* ---- token buckets ---- */

struct rl_buckets;

/*
 * per_minute tokens refill continuously up to burst. per_minute <= 0: no
 * limit (rl_take always succeeds). max_keys bounds memory: when the table
 * fills, buckets that have refilled are forgotten first (a full bucket is
 * the same as a new one), then the least recently used. Caller owns *out.
 */
enum sd_err rl_buckets_create(double per_minute, double burst, int max_keys,
                              struct rl_buckets **out, struct sd_error *err);
void rl_buckets_destroy(struct rl_buckets *b);
/* Takes one token for key; false if none: *retry_after_s (>= 1) says when one will be there. */
bool rl_take(struct rl_buckets *b, const char *key, double now_s, int *retry_after_s);
int rl_buckets_count(struct rl_buckets *b);

/* ---- counted slots ---- */

struct rl_slots;

enum sd_err rl_slots_create(struct rl_slots **out, struct sd_error *err);
void rl_slots_destroy(struct rl_slots *s);
/* One more slot for key if it holds fewer than max (max <= 0: unlimited). */
bool rl_slot_acquire(struct rl_slots *s, const char *key, int max);
void rl_slot_release(struct rl_slots *s, const char *key);
int rl_slots_held(struct rl_slots *s, const char *key);

/* ---- slow-client guard ---- */

struct conn_guard;
struct guard_conn;

struct conn_guard_opts {
    double header_timeout_s;  /* request line + headers, from accept or (kept alive) first byte */
    double body_timeout_s;    /* body, from the end of the headers ... */
    double body_min_rate;     /* ... plus 1 s per this many bytes received (0: no extension) */
    double tick_s;            /* how often the watchdog looks (0: 0.25 s) */
};

/* Starts the watchdog thread. Caller owns *out: conn_guard_stop(). */
enum sd_err conn_guard_start(const struct conn_guard_opts *o, struct conn_guard **out,
                             struct sd_error *err);
/* Joins the watchdog; every connection must have been closed before. */
void conn_guard_stop(struct conn_guard *g);
/*
 * A new connection on socket fd (waiting for headers). NULL on ENOMEM (the
 * connection then goes unguarded). The fd must stay open until
 * conn_guard_close(), which the caller runs before closing it.
 */
struct guard_conn *conn_guard_open(struct conn_guard *g, int fd);
void conn_guard_close(struct conn_guard *g, struct guard_conn *c);
/* Headers are in: the body clock starts. */
void conn_guard_headers_done(struct conn_guard *g, struct guard_conn *c);
/* n more body bytes; false once the body is past its deadline (answer 408). */
bool conn_guard_body(struct conn_guard *g, struct guard_conn *c, size_t n);
/* The handler runs (may take an hour): no clock. */
void conn_guard_handler(struct conn_guard *g, struct guard_conn *c);
/*
 * The answer is out: the connection waits for its next request. Idle, it is
 * left to libmicrohttpd's idle timeout; once bytes of a request arrive (seen
 * through TCP_INFO), the header clock runs. Not a TCP socket: it runs at once.
 */
void conn_guard_request_done(struct conn_guard *g, struct guard_conn *c);
/* The connection became a WebSocket: never timed again here. */
void conn_guard_upgraded(struct conn_guard *g, struct guard_conn *c);
/* Connections closed so far for slow headers / slow bodies. */
void conn_guard_counts(struct conn_guard *g, uint64_t *slow_headers, uint64_t *slow_bodies);

#endif

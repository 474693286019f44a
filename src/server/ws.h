/*
 * ws.h - WebSocket (RFC 6455) server connections: the handshake's accept
 * key (SHA-1 + base64 from nettle) and message framing (wslay) over a
 * socket MHD handed over after a 101. Non-blocking: the owner polls
 * ws_conn_fd() for ws_conn_want_read/write and calls ws_conn_read/flush.
 * Pings are answered and close frames echoed by wslay.
 *
 * Not here: what the messages mean (route_realtime.c), threads.
 * Thread safety: one ws_conn belongs to one thread.
 */
#ifndef SD_SERVER_WS_H
#define SD_SERVER_WS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

#define WS_CLOSE_NORMAL 1000
#define WS_CLOSE_GOING_AWAY 1001
#define WS_CLOSE_PROTOCOL 1002
#define WS_CLOSE_UNSUPPORTED 1003
#define WS_CLOSE_POLICY 1008
#define WS_CLOSE_TOO_BIG 1009
#define WS_CLOSE_INTERNAL 1011
#define WS_CLOSE_TRY_AGAIN 1013

/* Sec-WebSocket-Accept for a client's Sec-WebSocket-Key; false if the key is malformed. */
bool ws_accept_key(const char *client_key, char out[32]);

struct ws_conn;

struct ws_handlers {
    void (*on_text)(void *user, const char *msg, size_t n);      /* valid UTF-8 checked by wslay */
    void (*on_binary)(void *user, const uint8_t *msg, size_t n);
};

/*
 * Wraps a connected socket; extra[0..n_extra) are bytes MHD already read
 * past the request. Messages above max_msg_bytes close the connection (1009).
 * Caller owns *out: ws_conn_free() (does not close fd).
 */
enum sd_err ws_conn_new(int fd, const char *extra, size_t n_extra, size_t max_msg_bytes,
                        const struct ws_handlers *h, void *user, struct ws_conn **out,
                        struct sd_error *err);
void ws_conn_free(struct ws_conn *c);
int ws_conn_fd(const struct ws_conn *c);

/*
 * Reads what the socket has (at most 256 KiB per call, so the owner's
 * back-pressure checks run between reads), dispatching whole messages.
 * SD_EIO when the peer is gone.
 */
enum sd_err ws_conn_read(struct ws_conn *c, struct sd_error *err);
/* Writes what it can without blocking. SD_EIO when the peer is gone. */
enum sd_err ws_conn_flush(struct ws_conn *c, struct sd_error *err);
bool ws_conn_want_read(const struct ws_conn *c);
bool ws_conn_want_write(const struct ws_conn *c);
/* Queues a text message (copied). */
enum sd_err ws_conn_send_text(struct ws_conn *c, const char *s, size_t n, struct sd_error *err);
/* Queues a close frame; nothing is sent after it. */
void ws_conn_close(struct ws_conn *c, uint16_t code, const char *reason);
/* True once a close frame was received from the peer. */
bool ws_conn_close_received(const struct ws_conn *c);
bool ws_conn_close_sent(const struct ws_conn *c);
/* Bytes queued for sending (a slow reader makes this grow). */
size_t ws_conn_queued_bytes(const struct ws_conn *c);

#endif

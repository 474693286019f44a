/*
 * ws.c - WebSocket connections on wslay over a socket from MHD's upgrade
 * (see ws.h). wslay does the framing, masking, fragmentation, UTF-8 check
 * of text frames, ping/pong and the close handshake; this file moves bytes
 * between it and a non-blocking socket, the bytes MHD read ahead first.
 */
#include "server/ws.h"

#include <errno.h>
#include <fcntl.h>
#include <nettle/base64.h>
#include <nettle/sha1.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <wslay/wslay.h>

struct ws_conn {
    int fd;
    wslay_event_context_ptr ctx;
    struct ws_handlers h;
    void *user;
    char *extra;
    size_t n_extra, extra_off;
    bool peer_gone;
    size_t read_budget;        /* bytes one ws_conn_read may still take from the socket */
    /* wslay sends control frames before queued data: a close waits for the data to go */
    bool close_pending;
    uint16_t close_code;
    char close_reason[124];
    size_t close_len;
};

bool ws_accept_key(const char *client_key, char out[32])
{
    static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    size_t n = client_key ? strlen(client_key) : 0;
    if (n != 24) /* base64 of 16 bytes */
        return false;
    struct sha1_ctx sha;
    uint8_t digest[SHA1_DIGEST_SIZE];
    sha1_init(&sha);
    sha1_update(&sha, n, (const uint8_t *)client_key);
    sha1_update(&sha, sizeof(guid) - 1, (const uint8_t *)guid);
    sha1_digest(&sha, sizeof(digest), digest);
    base64_encode_raw((char *)out, sizeof(digest), digest);
    out[BASE64_ENCODE_RAW_LENGTH(SHA1_DIGEST_SIZE)] = '\0';
    return true;
}

static ssize_t on_recv(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags,
                       void *user_data)
{
    struct ws_conn *c = user_data;
    (void)flags;
    if (c->extra_off < c->n_extra) {
        size_t k = c->n_extra - c->extra_off;
        if (k > len)
            k = len;
        memcpy(buf, c->extra + c->extra_off, k);
        c->extra_off += k;
        return (ssize_t)k;
    }
    if (c->read_budget == 0) {
        /* wslay reads until the socket runs dry; a fast sender would never let it */
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    if (len > c->read_budget)
        len = c->read_budget;
    ssize_t r;
    do
        r = recv(c->fd, buf, len, 0);
    while (r < 0 && errno == EINTR);
    if (r > 0) {
        c->read_budget -= (size_t)r;
        return r;
    }
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
    } else {
        c->peer_gone = true;
        wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
    }
    return -1;
}

static ssize_t on_send(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
                       void *user_data)
{
    struct ws_conn *c = user_data;
    (void)flags;
    ssize_t r;
    do
        r = send(c->fd, data, len, MSG_NOSIGNAL);
    while (r < 0 && errno == EINTR);
    if (r >= 0)
        return r;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
    } else {
        c->peer_gone = true;
        wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
    }
    return -1;
}

static void on_msg(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg,
                   void *user_data)
{
    struct ws_conn *c = user_data;
    (void)ctx;
    if (arg->opcode == WSLAY_TEXT_FRAME && c->h.on_text)
        c->h.on_text(c->user, (const char *)arg->msg, arg->msg_length);
    else if (arg->opcode == WSLAY_BINARY_FRAME && c->h.on_binary)
        c->h.on_binary(c->user, arg->msg, arg->msg_length);
}

enum sd_err ws_conn_new(int fd, const char *extra, size_t n_extra, size_t max_msg_bytes,
                        const struct ws_handlers *h, void *user, struct ws_conn **out,
                        struct sd_error *err)
{
    struct ws_conn *c = calloc(1, sizeof(*c));
    if (!c)
        return sd_fail(err, SD_ENOMEM, "websocket");
    c->fd = fd;
    c->h = *h;
    c->user = user;
    if (n_extra) {
        c->extra = malloc(n_extra);
        if (!c->extra) {
            free(c);
            return sd_fail(err, SD_ENOMEM, "websocket");
        }
        memcpy(c->extra, extra, n_extra);
        c->n_extra = n_extra;
    }
    struct wslay_event_callbacks cb = {on_recv, on_send, NULL, NULL, NULL, NULL, on_msg};
    if (wslay_event_context_server_init(&c->ctx, &cb, c) != 0) {
        free(c->extra);
        free(c);
        return sd_fail(err, SD_ENOMEM, "websocket context");
    }
    wslay_event_config_set_max_recv_msg_length(c->ctx, max_msg_bytes);
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0)
        fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    int one = 1; /* small JSON messages must not wait for Nagle */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    *out = c;
    return SD_OK;
}

void ws_conn_free(struct ws_conn *c)
{
    if (!c)
        return;
    wslay_event_context_free(c->ctx);
    free(c->extra);
    free(c);
}

int ws_conn_fd(const struct ws_conn *c)
{
    return c->fd;
}

enum sd_err ws_conn_read(struct ws_conn *c, struct sd_error *err)
{
    c->read_budget = 256 * 1024;
    if (wslay_event_recv(c->ctx) != 0 || c->peer_gone)
        return sd_fail(err, SD_EIO, "the client went away");
    return SD_OK;
}

static void queue_pending_close(struct ws_conn *c)
{
    if (c->close_pending && wslay_event_get_queued_msg_count(c->ctx) == 0) {
        c->close_pending = false;
        wslay_event_queue_close(c->ctx, c->close_code, (const uint8_t *)c->close_reason,
                                c->close_len);
    }
}

enum sd_err ws_conn_flush(struct ws_conn *c, struct sd_error *err)
{
    queue_pending_close(c);
    if (wslay_event_send(c->ctx) != 0 || c->peer_gone)
        return sd_fail(err, SD_EIO, "the client went away");
    if (c->close_pending) {
        queue_pending_close(c);
        if (wslay_event_send(c->ctx) != 0 || c->peer_gone)
            return sd_fail(err, SD_EIO, "the client went away");
    }
    return SD_OK;
}

bool ws_conn_want_read(const struct ws_conn *c)
{
    return wslay_event_want_read(c->ctx) != 0;
}

bool ws_conn_want_write(const struct ws_conn *c)
{
    return wslay_event_want_write(c->ctx) != 0 || c->close_pending;
}

enum sd_err ws_conn_send_text(struct ws_conn *c, const char *s, size_t n, struct sd_error *err)
{
    struct wslay_event_msg m = {WSLAY_TEXT_FRAME, (const uint8_t *)s, n};
    int rc = wslay_event_queue_msg(c->ctx, &m);
    if (rc == WSLAY_ERR_NOMEM)
        return sd_fail(err, SD_ENOMEM, "websocket send queue");
    if (rc != 0)
        return sd_fail(err, SD_EIO, "the connection is closing");
    return SD_OK;
}

void ws_conn_close(struct ws_conn *c, uint16_t code, const char *reason)
{
    if (c->close_pending || wslay_event_get_close_sent(c->ctx))
        return;
    size_t n = reason ? strlen(reason) : 0;
    if (n > 120) /* a control frame carries at most 125 bytes */
        n = 120;
    /* cut at a UTF-8 character boundary */
    while (n > 0 && n < strlen(reason) && ((unsigned char)reason[n] & 0xC0) == 0x80)
        n--;
    if (n)
        memcpy(c->close_reason, reason, n);
    c->close_len = n;
    c->close_code = code;
    c->close_pending = true;
}

bool ws_conn_close_received(const struct ws_conn *c)
{
    return wslay_event_get_close_received(c->ctx) != 0;
}

bool ws_conn_close_sent(const struct ws_conn *c)
{
    return !c->close_pending && wslay_event_get_close_sent(c->ctx) != 0;
}

size_t ws_conn_queued_bytes(const struct ws_conn *c)
{
    return wslay_event_get_queued_msg_length(c->ctx);
}

/*
 * fuzz_ws.c - libFuzzer target over a live stream's incoming bytes: the
 * WebSocket framing (wslay behind ws.c: masking, fragmentation, control
 * frames, the message size cap) and the JSON of each text message, as the
 * realtime route receives them after the 101 handshake.
 *
 * Input: first byte: how many of the following bytes arrive as "extra"
 * (read by MHD past the request, handed to ws_conn_new); the rest arrive
 * on the socket. Messages above 4 KiB must close the stream (1009).
 * Contracts: no crash, hang, leak or sanitizer report; each message handed
 * up is within the cap and, for text, valid UTF-8 (checked by wslay).
 */
#include <jansson.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fuzz_common.h"
#include "server/ws.h"
#include "util/utf8.h"

#define CAP 4096

static void on_text(void *user, const char *msg, size_t n)
{
    (void)user;
    FUZZ_REQUIRE(n <= CAP, "a message within the cap");
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t k = sd_utf8_char((const uint8_t *)msg + i, n - i, &cp);
        FUZZ_REQUIRE(k > 0, "a text message is valid UTF-8");
        i += k;
    }
    json_t *o = json_loadb(msg, n, JSON_REJECT_DUPLICATES, NULL);
    json_decref(o);
}

static void on_binary(void *user, const uint8_t *msg, size_t n)
{
    (void)user;
    (void)msg;
    FUZZ_REQUIRE(n <= CAP, "a message within the cap");
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    if (size < 1 || size > 65536)
        return 0;
    size_t n_extra = data[0] < size - 1 ? data[0] : size - 1;
    const char *extra = (const char *)data + 1;
    const uint8_t *rest = data + 1 + n_extra;
    size_t n_rest = size - 1 - n_extra;

    int sv[2];
    FUZZ_REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) == 0, "socketpair");
    int buf = 1 << 20;
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf));
    setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
    if (n_rest)
        FUZZ_REQUIRE(write(sv[0], rest, n_rest) == (ssize_t)n_rest, "write");
    shutdown(sv[0], SHUT_WR);

    struct ws_handlers h = {on_text, on_binary};
    struct ws_conn *c = NULL;
    struct sd_error err = {0};
    FUZZ_REQUIRE(ws_conn_new(sv[1], extra, n_extra, CAP, &h, NULL, &c, &err) == SD_OK,
                 "ws_conn_new");
    for (int round = 0; round < 64; round++) {
        if (ws_conn_read(c, &err) != SD_OK)
            break;
        (void)ws_conn_flush(c, &err);
        char sink[4096];
        while (read(sv[0], sink, sizeof(sink)) > 0) /* what the server answers */
            ;
        if (!ws_conn_want_read(c) || ws_conn_close_sent(c))
            break;
    }
    ws_conn_free(c);
    close(sv[0]);
    close(sv[1]);
    return 0;
}

/*
 * fuzz_multipart.c - libFuzzer target over request bodies as the server
 * reads them: multipart/form-data (or urlencoded) parsed by libmicrohttpd's
 * post processor, the pieces assembled by upload.c, then the request
 * parameters read from the fields by fields_parse.
 *
 * The post processor needs a real connection, so the harness runs a
 * libmicrohttpd daemon on 127.0.0.1 inside this process and sends each
 * input as one request. In the handler the same body is parsed twice: fed
 * whole, and fed in pieces whose sizes come from the input (1 byte up to
 * the whole), because clients (Node's fetch with a stream, curl with
 * chunked encoding) split bodies anywhere.
 * Input: byte 0: split seed; then the Content-Type value up to the first
 * '\n'; then the body.
 * Contracts: both parses agree (accepted or refused alike; the same field
 * values and the same file bytes); fields_parse refusals name a field; no
 * crash, leak or sanitizer report.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz_common.h"
#include "pipeline/stt_params.h"
#include "server/routes.h"
#include "server/upload.h"

#define BODY_MAX 65536
#define ALLOWED "wav,mp3,m4a,ogg,flac,webm,mp4,aac"

static char g_dir[64];
static uint8_t g_seed;       /* the current input's split seed (one request at a time) */

struct req {
    char body[BODY_MAX];
    size_t n;
};

static const char *const checked_fields[] = {
    "model", "language", "response_format", "temperature", "prompt", "stream",
    "timestamp_granularities[]", "callback_url", "beam_size", "vad_filter", "",
};

static enum sd_err parse(struct MHD_Connection *c, const struct req *q, bool split,
                         const char *path, struct upload **out, struct sd_error *err)
{
    enum sd_err rc = upload_create(c, path, 1 << 20, ALLOWED, out, err);
    if (rc != SD_OK)
        return rc;
    uint32_t rng = 0x9E3779B9u ^ g_seed;
    for (size_t off = 0; off < q->n && rc == SD_OK;) {
        size_t piece = q->n - off;
        if (split) {
            rng = rng * 1664525u + 1013904223u;
            size_t max = (g_seed & 0x80) ? 3 : 64;
            piece = 1 + (rng >> 16) % max;
            if (piece > q->n - off)
                piece = q->n - off;
        }
        rc = upload_feed(*out, q->body + off, piece, err);
        off += piece;
    }
    if (rc == SD_OK)
        rc = upload_finish(*out, err);
    return rc;
}

static void file_bytes(const char *path, char **data, size_t *n)
{
    *data = NULL;
    *n = 0;
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return;
    struct stat st;
    if (fstat(fd, &st) == 0 && st.st_size > 0) {
        *data = malloc((size_t)st.st_size);
        *n = *data ? (size_t)read(fd, *data, (size_t)st.st_size) : 0;
    }
    close(fd);
}

static void compare(const struct upload *a, const struct upload *b)
{
    FUZZ_REQUIRE(upload_has_file(a) == upload_has_file(b), "the same file part");
    for (int i = 0; checked_fields[i][0]; i++) {
        const char *va[16], *vb[16];
        int na = upload_field_all(a, checked_fields[i], va, 16);
        int nb = upload_field_all(b, checked_fields[i], vb, 16);
        if (na != nb)
            fprintf(stderr, "%s: %d values whole, %d split\n", checked_fields[i], na, nb);
        FUZZ_REQUIRE(na == nb, "the same number of values per field");
        for (int k = 0; k < na; k++) {
            if (strcmp(va[k], vb[k]) != 0)
                fprintf(stderr, "%s: whole '%s', split '%s'\n", checked_fields[i], va[k], vb[k]);
            FUZZ_REQUIRE(strcmp(va[k], vb[k]) == 0, "the same field values, however split");
        }
    }
    if (upload_has_file(a)) {
        FUZZ_REQUIRE(strcmp(upload_file_name(a), upload_file_name(b)) == 0, "the same file name");
        char *fa, *fb;
        size_t na, nb;
        file_bytes(upload_path(a), &fa, &na);
        file_bytes(upload_path(b), &fb, &nb);
        FUZZ_REQUIRE(na == nb && (na == 0 || memcmp(fa, fb, na) == 0), "the same file bytes");
        free(fa);
        free(fb);
    }
}

static void check_request(struct MHD_Connection *c, const struct req *q)
{
    char pa[96], pb[96];
    snprintf(pa, sizeof(pa), "%s/whole", g_dir);
    snprintf(pb, sizeof(pb), "%s/split", g_dir);
    struct upload *a = NULL, *b = NULL;
    struct sd_error ea = {0}, eb = {0};
    enum sd_err ra = parse(c, q, false, pa, &a, &ea);
    enum sd_err rb = parse(c, q, true, pb, &b, &eb);
    FUZZ_REQUIRE((ra == SD_OK) == (rb == SD_OK), "accepted or refused alike, however split");
    if (ra == SD_OK) {
        compare(a, b);
        static const enum fields_dialect dialects[] = {FIELDS_TRANSCRIPTION, FIELDS_TRANSLATION,
                                                       FIELDS_WHISPER_CPP, FIELDS_JOB};
        for (size_t d = 0; d < sizeof(dialects) / sizeof(dialects[0]); d++) {
            struct stt_params p;
            stt_params_init(&p);
            const char *callback_url = NULL;
            char param[FIELDS_PARAM_MAX] = "";
            struct sd_error err = {0};
            if (fields_parse(a, dialects[d], &p, &callback_url, param,
                             &err) != SD_OK)
                FUZZ_REQUIRE(err.msg[0], "a refused request says why");
            stt_params_clear(&p);
        }
    }
    if (a)
        upload_destroy(a);
    if (b)
        upload_destroy(b);
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload_data,
                              size_t *upload_data_size, void **con_cls)
{
    (void)cls, (void)url, (void)method, (void)version;
    struct req *q = *con_cls;
    if (!q) {
        q = calloc(1, sizeof(*q));
        *con_cls = q;
        return q ? MHD_YES : MHD_NO;
    }
    if (*upload_data_size) {
        size_t k = *upload_data_size < BODY_MAX - q->n ? *upload_data_size : BODY_MAX - q->n;
        memcpy(q->body + q->n, upload_data, k);
        q->n += k;
        *upload_data_size = 0;
        return MHD_YES;
    }
    check_request(c, q);
    struct MHD_Response *r = MHD_create_response_from_buffer(2, (void *)"ok",
                                                             MHD_RESPMEM_PERSISTENT);
    enum MHD_Result ok = MHD_queue_response(c, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return ok;
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
                      enum MHD_RequestTerminationCode toe)
{
    (void)cls, (void)c, (void)toe;
    free(*con_cls);
    *con_cls = NULL;
}

static uint16_t start_daemon(void)
{
    snprintf(g_dir, sizeof(g_dir), "/tmp/fuzz-multipart-XXXXXX");
    FUZZ_REQUIRE(mkdtemp(g_dir) != NULL, "mkdtemp");
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL, handle, NULL,
        MHD_OPTION_NOTIFY_COMPLETED, completed, NULL, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)10, MHD_OPTION_END);
    FUZZ_REQUIRE(d != NULL, "MHD_start_daemon");
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    FUZZ_REQUIRE(info && info->port, "a port");
    return info->port;
}

static void send_all(int fd, const void *p, size_t n)
{
    const char *s = p;
    while (n) {
        ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
        if (w <= 0)
            return;
        s += w;
        n -= (size_t)w;
    }
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    static uint16_t port;
    if (!port)
        port = start_daemon();
    if (size < 2 || size > BODY_MAX)
        return 0;
    g_seed = data[0];
    const char *ct = (const char *)data + 1;
    const char *nl = memchr(ct, '\n', size - 1);
    if (!nl)
        return 0;
    size_t n_ct = (size_t)(nl - ct);
    for (size_t i = 0; i < n_ct; i++)
        if (ct[i] == '\r' || ct[i] == '\0')
            return 0; /* a header value cannot hold these */
    const char *body = nl + 1;
    size_t n_body = size - 1 - n_ct - 1;

    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    FUZZ_REQUIRE(fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0, "connect");
    char head[512];
    int k = snprintf(head, sizeof(head),
                     "POST /v1/audio/transcriptions HTTP/1.1\r\nHost: fuzz\r\n"
                     "Content-Type: %.*s\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
                     (int)(n_ct < 300 ? n_ct : 300), ct, n_body);
    send_all(fd, head, (size_t)k);
    send_all(fd, body, n_body);
    char sink[1024];
    while (recv(fd, sink, sizeof(sink), 0) > 0) /* until the server closes */
        ;
    close(fd);
    return 0;
}

/*
 * upload.c - multipart parsing with MHD_PostProcessor (see upload.h). The
 * post processor calls back per piece of a part; file pieces are appended
 * to the file with write(2), text fields are accumulated up to small caps
 * (64 KiB a field, 64 fields) so a hostile body cannot grow memory.
 *
 * How MHD 0.9.75 hands over a value (postprocessor.c, process_value_to_boundary):
 * the first piece of a part comes at offset 0 and may be EMPTY (it is sent as
 * soon as the part's headers are in, even if none of the value has arrived:
 * a chunked body, as the openai SDK sends a streamed file, splits anywhere);
 * later pieces come at the offset where the value so far ends, so the piece
 * after an empty one is at offset 0 again. A piece therefore continues the
 * field opened last when it has the same key and starts where that value ends.
 * The one case this cannot tell apart, an empty field followed directly by
 * a field of the same name, reads as that second field alone, whatever the
 * splitting (empty values count as absent anyway: pipeline/param_table.h).
 */
#include "server/upload.h"

#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define MAX_FIELDS 64
#define MAX_FIELD_BYTES (64 * 1024)
#define SNIFF_BYTES 16

struct field {
    char *key;
    char *val;
    size_t len;
};

struct upload {
    struct MHD_PostProcessor *pp;
    bool urlencoded;           /* application/x-www-form-urlencoded, not multipart */
    char path[1100];
    int fd;
    int64_t file_bytes, max_file_bytes;
    char *filename;
    bool has_file, in_file, file_ended, kept;
    bool file_removed;         /* dropped after a failure, before the answer goes out */
    struct field fields[MAX_FIELDS];
    int n_fields;
    int open_field;            /* the field the last piece went to; -1 after a file piece */
    unsigned char head[SNIFF_BYTES];
    size_t head_len;
    char delim[256];           /* "\r\n--BOUNDARY--": the end of the multipart body */
    size_t delim_len;
    char carry[256];           /* last delim_len - 1 bytes fed, to find a split delimiter */
    size_t carry_len;
    bool body_ended;           /* closing delimiter seen: the epilogue is ignored */
    const char *allowed;       /* accepted extensions, comma list (not owned) */
    bool type_checked;         /* the early check on name and first bytes ran */
    enum sd_err rc;            /* first failure inside the iterator */
    struct sd_error err;
};

static enum sd_err fail(struct upload *u, enum sd_err code, const char *msg)
{
    if (u->rc == SD_OK)
        u->rc = sd_fail(&u->err, code, "%s", msg);
    return u->rc;
}

static enum MHD_Result on_file_piece(struct upload *u, const char *filename, const char *data,
                                     uint64_t off, size_t size)
{
    u->open_field = -1;
    if (off == 0 && u->has_file && (u->file_bytes > 0 || u->file_ended)) {
        fail(u, SD_EINVAL, "more than one 'file' part in the request");
        return MHD_NO;
    }
    if (!u->has_file) {
        u->has_file = u->in_file = true;
        u->filename = strdup(filename ? filename : "");
        u->fd = open(u->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (u->fd < 0 || !u->filename) {
            fail(u, SD_EIO, "cannot store the upload");
            return MHD_NO;
        }
    }
    if (u->file_bytes + (int64_t)size > u->max_file_bytes) {
        char msg[128];
        snprintf(msg, sizeof(msg), "the file is larger than the limit of %lld MB",
                 (long long)(u->max_file_bytes / (1024 * 1024)));
        fail(u, SD_ETOOBIG, msg);
        return MHD_NO;
    }
    if (u->head_len < SNIFF_BYTES) {
        size_t k = SNIFF_BYTES - u->head_len < size ? SNIFF_BYTES - u->head_len : size;
        memcpy(u->head + u->head_len, data, k);
        u->head_len += k;
    }
    if (!u->type_checked && u->head_len == SNIFF_BYTES) { /* refuse non-audio now, not at the end */
        u->type_checked = true;
        if (upload_check_type(u, &u->err) != SD_OK) {
            u->rc = u->err.code;
            return MHD_NO;
        }
    }
    for (size_t done = 0; done < size;) {
        ssize_t w = write(u->fd, data + done, size - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            bool full = w < 0 && (errno == ENOSPC || errno == EDQUOT);
            fail(u, full ? SD_ENOSPACE : SD_EIO,
                 full ? "the server's disk is full: the upload could not be stored (try later)"
                      : "cannot store the upload");
            return MHD_NO;
        }
        done += (size_t)w;
    }
    u->file_bytes += (int64_t)size;
    return MHD_YES;
}

static enum MHD_Result on_field_piece(struct upload *u, const char *key, const char *data,
                                      uint64_t off, size_t size)
{
    struct field *f = u->open_field >= 0 ? &u->fields[u->open_field] : NULL;
    /* a continuation: same key, and it starts where the value so far ends (see the top) */
    if (!f || strcmp(f->key, key) != 0 || off != f->len) {
        if (u->n_fields == MAX_FIELDS) {
            fail(u, SD_EINVAL, "too many form fields");
            return MHD_NO;
        }
        f = &u->fields[u->n_fields];
        f->key = strdup(key);
        f->val = calloc(1, 1);
        f->len = 0;
        if (!f->key || !f->val) {
            free(f->key);
            free(f->val);
            fail(u, SD_ENOMEM, "form field");
            return MHD_NO;
        }
        u->open_field = u->n_fields++;
    }
    if (f->len + size > MAX_FIELD_BYTES) {
        fail(u, SD_EINVAL, "a form field is longer than 64 KiB");
        return MHD_NO;
    }
    char *nv = realloc(f->val, f->len + size + 1);
    if (!nv) {
        fail(u, SD_ENOMEM, "form field");
        return MHD_NO;
    }
    memcpy(nv + f->len, data, size);
    f->len += size;
    nv[f->len] = '\0';
    f->val = nv;
    return MHD_YES;
}

static enum MHD_Result iterate(void *cls, enum MHD_ValueKind kind, const char *key,
                               const char *filename, const char *content_type,
                               const char *transfer_encoding, const char *data, uint64_t off,
                               size_t size)
{
    struct upload *u = cls;
    (void)kind, (void)content_type, (void)transfer_encoding;
    if (!key)
        return MHD_YES;
    if (strcmp(key, UPLOAD_FILE_FIELD) == 0) {
        /* a "file" part without a filename is still the file (some clients omit it) */
        return on_file_piece(u, filename, data, off, size);
    }
    if (u->in_file) {
        u->in_file = false;
        u->file_ended = true;
    }
    return on_field_piece(u, key, data ? data : "", off, size);
}

/* Remembers the closing delimiter from Content-Type's boundary parameter. */
static void set_delimiter(struct upload *u, const char *ctype)
{
    const char *b = ctype ? strcasestr(ctype, "boundary=") : NULL;
    if (!b)
        return;
    b += 9;
    bool quoted = *b == '"';
    b += quoted;
    size_t n = strcspn(b, quoted ? "\"" : "; \t");
    if (n == 0 || n > 200)
        return;
    u->delim_len = (size_t)snprintf(u->delim, sizeof(u->delim), "\r\n--%.*s--", (int)n, b);
}

/*
 * How many bytes of data belong to the body proper. MHD's post processor
 * rejects an epilogue after the closing delimiter (the openai SDK sends
 * "\r\n" there), so parsing stops at the delimiter's end.
 */
static size_t body_part(struct upload *u, const char *data, size_t n)
{
    size_t dl = u->delim_len;
    if (dl == 0)
        return n;
    char win[512];
    size_t take = n < dl - 1 ? n : dl - 1;
    memcpy(win, u->carry, u->carry_len);
    memcpy(win + u->carry_len, data, take);
    const char *p = memmem(win, u->carry_len + take, u->delim, dl);
    if (p) {
        u->body_ended = true;
        return (size_t)(p - win) + dl - u->carry_len;
    }
    p = memmem(data, n, u->delim, dl);
    if (p) {
        u->body_ended = true;
        return (size_t)(p - data) + dl;
    }
    /* keep the last dl - 1 bytes of carry + data */
    size_t total = u->carry_len + n, keep = total < dl - 1 ? total : dl - 1;
    if (n >= keep) {
        memcpy(u->carry, data + n - keep, keep);
    } else {
        size_t from_carry = keep - n;
        memmove(u->carry, u->carry + u->carry_len - from_carry, from_carry);
        memcpy(u->carry + from_carry, data, n);
    }
    u->carry_len = keep;
    return n;
}

enum sd_err upload_create(struct MHD_Connection *c, const char *path, int64_t max_file_bytes,
                          const char *allowed, struct upload **out, struct sd_error *err)
{
    struct upload *u = calloc(1, sizeof(*u));
    if (!u)
        return sd_fail(err, SD_ENOMEM, "upload");
    u->fd = -1;
    u->open_field = -1;
    u->max_file_bytes = max_file_bytes;
    u->allowed = allowed ? allowed : "";
    snprintf(u->path, sizeof(u->path), "%s", path);
    const char *ctype = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                    MHD_HTTP_HEADER_CONTENT_TYPE);
    set_delimiter(u, ctype);
    u->urlencoded = ctype && strncasecmp(ctype, MHD_HTTP_POST_ENCODING_FORM_URLENCODED,
                                         strlen(MHD_HTTP_POST_ENCODING_FORM_URLENCODED)) == 0;
    u->pp = MHD_create_post_processor(c, 64 * 1024, iterate, u);
    if (!u->pp) {
        free(u);
        return sd_fail(err, SD_EINVAL,
                       "the body must be multipart/form-data with a boundary (field 'file')");
    }
    *out = u;
    return SD_OK;
}

/*
 * Frees the disk space of a failed upload at once: the error answer goes out
 * before MHD runs its completion callback (upload_destroy), and a client that
 * retries on a full disk must find the space of its failed attempt given back.
 */
static void drop_file(struct upload *u)
{
    if (u->fd >= 0) {
        close(u->fd);
        u->fd = -1;
    }
    if (u->has_file && !u->kept && !u->file_removed) {
        unlink(u->path);
        u->file_removed = true;
    }
}

enum sd_err upload_feed(struct upload *u, const char *data, size_t n, struct sd_error *err)
{
    if (u->body_ended)
        return u->rc;
    n = body_part(u, data, n);
    /*
     * A raw NUL is not valid in a urlencoded body (it is spelled %00), and MHD
     * ends a value at one only within the piece that holds it: the same body
     * would read differently depending on how it was split (tests/fuzz).
     */
    if (u->urlencoded && memchr(data, '\0', n))
        fail(u, SD_EINVAL, "a urlencoded body cannot hold a raw NUL byte (spell it %00)");
    if (u->rc == SD_OK && MHD_post_process(u->pp, data, n) != MHD_YES && u->rc == SD_OK)
        fail(u, SD_EINVAL, "malformed multipart/form-data body");
    if (u->rc != SD_OK) {
        drop_file(u);
        if (err)
            *err = u->err;
    }
    return u->rc;
}

enum sd_err upload_finish(struct upload *u, struct sd_error *err)
{
    if (u->pp) {
        if (MHD_destroy_post_processor(u->pp) != MHD_YES && u->rc == SD_OK)
            fail(u, SD_EINVAL, "malformed multipart/form-data body (truncated?)");
        u->pp = NULL;
    }
    if (u->fd >= 0) {
        if (close(u->fd) != 0 && u->rc == SD_OK)
            fail(u, SD_EIO, "cannot store the upload");
        u->fd = -1;
    }
    if (u->rc != SD_OK) {
        drop_file(u);
        if (err)
            *err = u->err;
    }
    return u->rc;
}

void upload_destroy(struct upload *u)
{
    if (!u)
        return;
    if (u->pp)
        MHD_destroy_post_processor(u->pp);
    drop_file(u);
    for (int i = 0; i < u->n_fields; i++) {
        free(u->fields[i].key);
        free(u->fields[i].val);
    }
    free(u->filename);
    free(u);
}

bool upload_has_file(const struct upload *u)
{
    return u->has_file;
}

int64_t upload_file_bytes(const struct upload *u)
{
    return u->file_bytes;
}

const char *upload_file_name(const struct upload *u)
{
    return u->filename ? u->filename : "";
}

const char *upload_path(const struct upload *u)
{
    return u->path;
}

enum sd_err upload_keep_as(struct upload *u, const char *new_path, struct sd_error *err)
{
    if (rename(u->path, new_path) != 0)
        return sd_fail(err, SD_EIO, "cannot keep the upload: %s", strerror(errno));
    snprintf(u->path, sizeof(u->path), "%s", new_path);
    u->kept = true;
    return SD_OK;
}

const char *upload_field(const struct upload *u, const char *key)
{
    for (int i = 0; i < u->n_fields; i++)
        if (strcmp(u->fields[i].key, key) == 0)
            return u->fields[i].val;
    return NULL;
}

int upload_field_all(const struct upload *u, const char *key, const char **vals, int max)
{
    int n = 0;
    for (int i = 0; i < u->n_fields && n < max; i++)
        if (strcmp(u->fields[i].key, key) == 0)
            vals[n++] = u->fields[i].val;
    return n;
}

const char *upload_sniff(const struct upload *u)
{
    const unsigned char *h = u->head;
    size_t n = u->head_len;
    if (n >= 12 && memcmp(h, "RIFF", 4) == 0 && memcmp(h + 8, "WAVE", 4) == 0)
        return "wav";
    if (n >= 3 && memcmp(h, "ID3", 3) == 0)
        return "mp3";
    if (n >= 4 && memcmp(h, "fLaC", 4) == 0)
        return "flac";
    if (n >= 4 && memcmp(h, "OggS", 4) == 0)
        return "ogg";
    if (n >= 4 && h[0] == 0x1A && h[1] == 0x45 && h[2] == 0xDF && h[3] == 0xA3)
        return "webm";
    if (n >= 8 && memcmp(h + 4, "ftyp", 4) == 0)
        return "mp4";
    if (n >= 12 && memcmp(h, "FORM", 4) == 0 && memcmp(h + 8, "AIF", 3) == 0)
        return "aiff";
    if (n >= 4 && h[0] == 0 && h[1] == 0 && h[2] == 1 && (h[3] == 0xBA || h[3] == 0xB3))
        return "mpeg";
    if (n >= 2 && h[0] == 0xFF && (h[1] & 0xE0) == 0xE0)
        return "mp3"; /* MPEG audio or ADTS AAC frame sync */
    return NULL;
}

/* True if ext is in the comma list (case-insensitive). */
static bool in_list(const char *list, const char *ext)
{
    size_t n = strlen(ext);
    for (const char *p = list; p && *p;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (len == n && strncasecmp(p, ext, n) == 0)
            return true;
        p = comma ? comma + 1 : NULL;
    }
    return false;
}

enum sd_err upload_check_type(const struct upload *u, struct sd_error *err)
{
    const char *name = u->filename ? u->filename : "";
    const char *dot = strrchr(name, '.');
    if (dot && dot[1] && strlen(dot + 1) < 8 && !in_list(u->allowed, dot + 1))
        return sd_fail(err, SD_EUNSUPPORTED, "file type '.%s' is not accepted; supported: %s",
                       dot + 1, u->allowed);
    if (!upload_sniff(u))
        return sd_fail(err, SD_EUNSUPPORTED,
                       "the file does not look like audio we can read; supported: %s",
                       u->allowed);
    return SD_OK;
}

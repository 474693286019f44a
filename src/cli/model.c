/*
 * model.c - `scribed model`: download Whisper and Silero VAD models into
 * <data-dir>/models/ with checksum verification, list them, hash a file.
 *
 *   scribed model download NAME [--data-dir DIR] [--base-url URL] [--sha256 HEX]
 *                               [--no-verify] [--force]
 *   scribed model list [--data-dir DIR]
 *   scribed model hash FILE
 *
 * A download goes to a temporary `.part` file in the target folder, is
 * hashed while it streams, and is renamed into place only when the checksum
 * matches; on any failure nothing is left behind. Checksums: whisper.cpp's
 * published SHA-1 table (its models/README.md) for the Whisper files, the
 * SHA-256 of the Silero v6.2.0 ggml file as shipped with whisper.cpp for the
 * VAD model. A file without a known checksum is refused unless the user gives
 * --sha256 or --no-verify. SHA-1/SHA-256 are implemented here (no crypto
 * library is linked); they check integrity against a table, nothing more.
 */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"

#define WHISPER_HOST "https://huggingface.co/ggerganov/whisper.cpp/resolve/main"
#define VAD_HOST "https://huggingface.co/ggml-org/whisper-vad/resolve/main"
#define MAX_DOWNLOAD_BYTES (8LL << 30)

/* ---- SHA-256 (FIPS 180-4) ---- */

struct sha256 {
    uint32_t h[8];
    uint64_t n_bytes;
    uint8_t buf[64];
    size_t n_buf;
};

static const uint32_t sha256_k[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static uint32_t rotr(uint32_t x, int n)
{
    return (x >> n) | (x << (32 - n));
}

static uint32_t load_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void sha256_block(uint32_t *h, const uint8_t *blk)
{
    uint32_t w[64], v[8];
    for (int i = 0; i < 16; i++)
        w[i] = load_be32(blk + 4 * i);
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    memcpy(v, h, sizeof v);
    for (int i = 0; i < 64; i++) {
        uint32_t t1 = v[7] + (rotr(v[4], 6) ^ rotr(v[4], 11) ^ rotr(v[4], 25)) +
                      ((v[4] & v[5]) ^ (~v[4] & v[6])) + sha256_k[i] + w[i];
        uint32_t t2 = (rotr(v[0], 2) ^ rotr(v[0], 13) ^ rotr(v[0], 22)) +
                      ((v[0] & v[1]) ^ (v[0] & v[2]) ^ (v[1] & v[2]));
        memmove(v + 1, v, 7 * sizeof *v);
        v[4] += t1;
        v[0] = t1 + t2;
    }
    for (int i = 0; i < 8; i++)
        h[i] += v[i];
}

/* ---- SHA-1 (FIPS 180-4) ---- */

struct sha1 {
    uint32_t h[5];
    uint64_t n_bytes;
    uint8_t buf[64];
    size_t n_buf;
};

static uint32_t rotl(uint32_t x, int n)
{
    return (x << n) | (x >> (32 - n));
}

static void sha1_block(uint32_t *h, const uint8_t *blk)
{
    uint32_t w[80], a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
    for (int i = 0; i < 16; i++)
        w[i] = load_be32(blk + 4 * i);
    for (int i = 16; i < 80; i++)
        w[i] = rotl(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    for (int i = 0; i < 80; i++) {
        uint32_t f, k;
        if (i < 20) {
            f = (b & c) | (~b & d);
            k = 0x5a827999;
        } else if (i < 40) {
            f = b ^ c ^ d;
            k = 0x6ed9eba1;
        } else if (i < 60) {
            f = (b & c) | (b & d) | (c & d);
            k = 0x8f1bbcdc;
        } else {
            f = b ^ c ^ d;
            k = 0xca62c1d6;
        }
        uint32_t t = rotl(a, 5) + f + e + k + w[i];
        e = d;
        d = c;
        c = rotl(b, 30);
        b = a;
        a = t;
    }
    h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e;
}

/* Both digests over one stream: the table may hold either. */
struct hashes {
    struct sha256 s256;
    struct sha1 s1;
};

static void hashes_init(struct hashes *x)
{
    static const uint32_t h256[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                     0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    static const uint32_t h1[5] = {0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0xc3d2e1f0};
    memset(x, 0, sizeof *x);
    memcpy(x->s256.h, h256, sizeof h256);
    memcpy(x->s1.h, h1, sizeof h1);
}

/* Shared Merkle-Damgard buffering: both use 64-byte blocks. */
static void md_update(uint8_t *buf, size_t *n_buf, uint64_t *n_bytes, uint32_t *h,
                      void (*block)(uint32_t *, const uint8_t *), const uint8_t *p, size_t n)
{
    *n_bytes += n;
    while (n > 0) {
        if (*n_buf == 0 && n >= 64) {
            block(h, p);
            p += 64, n -= 64;
            continue;
        }
        size_t take = 64 - *n_buf < n ? 64 - *n_buf : n;
        memcpy(buf + *n_buf, p, take);
        *n_buf += take, p += take, n -= take;
        if (*n_buf == 64) {
            block(h, buf);
            *n_buf = 0;
        }
    }
}

static void hashes_update(struct hashes *x, const void *data, size_t n)
{
    md_update(x->s256.buf, &x->s256.n_buf, &x->s256.n_bytes, x->s256.h, sha256_block, data, n);
    md_update(x->s1.buf, &x->s1.n_buf, &x->s1.n_bytes, x->s1.h, sha1_block, data, n);
}

/* Padding + big-endian length, then hex of n_words words. */
static void md_final(uint8_t *buf, size_t n_buf, uint64_t n_bytes, uint32_t *h, int n_words,
                     void (*block)(uint32_t *, const uint8_t *), char *hex)
{
    uint64_t bits = n_bytes * 8;
    buf[n_buf++] = 0x80;
    if (n_buf > 56) {
        memset(buf + n_buf, 0, 64 - n_buf);
        block(h, buf);
        n_buf = 0;
    }
    memset(buf + n_buf, 0, 56 - n_buf);
    for (int i = 0; i < 8; i++)
        buf[56 + i] = (uint8_t)(bits >> (56 - 8 * i));
    block(h, buf);
    for (int i = 0; i < n_words; i++)
        snprintf(hex + 8 * i, 9, "%08x", h[i]);
}

static void hashes_final(struct hashes *x, char sha256_hex[65], char sha1_hex[41])
{
    md_final(x->s256.buf, x->s256.n_buf, x->s256.n_bytes, x->s256.h, 8, sha256_block, sha256_hex);
    md_final(x->s1.buf, x->s1.n_buf, x->s1.n_bytes, x->s1.h, 5, sha1_block, sha1_hex);
}

/* ---- the model table ---- */

struct known_model {
    const char *name;     /* file is ggml-<name>.bin */
    int is_vad;
    const char *sha256;   /* preferred when known */
    const char *sha1;     /* whisper.cpp's published table */
};

/*
 * Names: whisper.cpp's models/download-ggml-model.sh (tinydiarize variant left
 * out: another host) and download-vad-model.sh. SHA-1: whisper.cpp
 * models/README.md "Available models". SHA-256 of silero-v6.2.0: the file as
 * whisper.cpp ships it (models/for-tests-silero-v6.2.0-ggml.bin).
 */
static const struct known_model known[] = {
    {"tiny", 0, NULL, "bd577a113a864445d4c299885e0cb97d4ba92b5f"},
    {"tiny.en", 0, NULL, "c78c86eb1a8faa21b369bcd33207cc90d64ae9df"},
    {"tiny-q5_1", 0, NULL, NULL},
    {"tiny.en-q5_1", 0, NULL, NULL},
    {"tiny-q8_0", 0, NULL, NULL},
    {"base", 0, NULL, "465707469ff3a37a2b9b8d8f89f2f99de7299dac"},
    {"base.en", 0, NULL, "137c40403d78fd54d454da0f9bd998f78703390c"},
    {"base-q5_1", 0, NULL, NULL},
    {"base.en-q5_1", 0, NULL, NULL},
    {"base-q8_0", 0, NULL, NULL},
    {"small", 0, NULL, "55356645c2b361a969dfd0ef2c5a50d530afd8d5"},
    {"small.en", 0, NULL, "db8a495a91d927739e50b3fc1cc4c6b8f6c2d022"},
    {"small-q5_1", 0, NULL, NULL},
    {"small.en-q5_1", 0, NULL, NULL},
    {"small-q8_0", 0, NULL, NULL},
    {"medium", 0, NULL, "fd9727b6e1217c2f614f9b698455c4ffd82463b4"},
    {"medium.en", 0, NULL, "8c30f0e44ce9560643ebd10bbe50cd20eafd3723"},
    {"medium-q5_0", 0, NULL, NULL},
    {"medium.en-q5_0", 0, NULL, NULL},
    {"medium-q8_0", 0, NULL, NULL},
    {"large-v1", 0, NULL, "b1caaf735c4cc1429223d5a74f0f4d0b9b59a299"},
    {"large-v2", 0, NULL, "0f4c8e34f21cf1a914c59d8b3ce882345ad349d6"},
    {"large-v2-q5_0", 0, NULL, "00e39f2196344e901b3a2bd5814807a769bd1630"},
    {"large-v2-q8_0", 0, NULL, NULL},
    {"large-v3", 0, NULL, "ad82bf6a9043ceed055076d0fd39f5f186ff8062"},
    {"large-v3-q5_0", 0, NULL, "e6e2ed78495d403bef4b7cff42ef4aaadcfea8de"},
    {"large-v3-turbo", 0, NULL, "4af2b29d7ec73d781377bfd1758ca957a807e941"},
    {"large-v3-turbo-q5_0", 0, NULL, "e050f7970618a659205450ad97eb95a18d69c9ee"},
    {"large-v3-turbo-q8_0", 0, NULL, NULL},
    {"silero-v6.2.0", 1, "2aa269b785eeb53a82983a20501ddf7c1d9c48e33ab63a41391ac6c9f7fb6987", NULL},
};
#define N_KNOWN (sizeof known / sizeof known[0])

/* Accepts "base.en", "ggml-base.en", "ggml-base.en.bin", and "silero" for the VAD model. */
static const struct known_model *find_model(const char *arg)
{
    char name[128];
    if (strncmp(arg, "ggml-", 5) == 0)
        arg += 5;
    snprintf(name, sizeof name, "%s", arg);
    size_t len = strlen(name);
    if (len > 4 && strcmp(name + len - 4, ".bin") == 0)
        name[len - 4] = '\0';
    if (strcmp(name, "silero") == 0 || strcmp(name, "silero-vad") == 0)
        snprintf(name, sizeof name, "silero-v6.2.0");
    for (size_t i = 0; i < N_KNOWN; i++)
        if (strcmp(known[i].name, name) == 0)
            return &known[i];
    return NULL;
}

/* ---- download ---- */

struct download_opts {
    const char *data_dir;
    const char *base_url;
    const char *sha256;   /* user-given, overrides the table */
    int no_verify;
    int force;
};

struct sink {
    FILE *f;
    struct hashes h;
    long long n_bytes;
    int write_failed;
    int show_progress;    /* stderr is a terminal */
    int last_percent;
};

/* One updating line on a terminal: big models take minutes. */
static int on_progress(void *arg, curl_off_t total, curl_off_t now, curl_off_t ut, curl_off_t un)
{
    (void)ut, (void)un;
    struct sink *s = arg;
    if (!s->show_progress || total <= 0)
        return 0;
    int pct = (int)(now * 100 / total);
    if (pct != s->last_percent) {
        s->last_percent = pct;
        fprintf(stderr, "\r  %3d%%  %lld / %lld MiB", pct, (long long)(now >> 20),
                (long long)(total >> 20));
        if (pct == 100)
            fputc('\n', stderr);
    }
    return 0;
}

static size_t on_data(char *p, size_t size, size_t n, void *arg)
{
    struct sink *s = arg;
    size_t len = size * n;
    if (fwrite(p, 1, len, s->f) != len) {
        s->write_failed = 1;
        return 0; /* makes curl stop with CURLE_WRITE_ERROR */
    }
    hashes_update(&s->h, p, len);
    s->n_bytes += len;
    return len;
}

static int mkdir_p(const char *path)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return mkdir(tmp, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

static int is_hex(const char *s, size_t len)
{
    if (strlen(s) != len)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!strchr("0123456789abcdefABCDEF", s[i]))
            return 0;
    return 1;
}

/* Runs the transfer into the sink. Returns 0 or prints why and returns 1. */
static int fetch(const char *url, struct sink *s)
{
    char errbuf[CURL_ERROR_SIZE] = "";
    CURL *c = curl_easy_init();
    if (!c) {
        fprintf(stderr, "scribed model: cannot start libcurl\n");
        return 1;
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L); /* the hub redirects to its CDN */
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
#if LIBCURL_VERSION_NUM >= 0x075500 /* 7.85: the string forms; the bitmasks are deprecated */
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https"); /* never file://, ftp://, ... */
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#else
    curl_easy_setopt(c, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    curl_easy_setopt(c, CURLOPT_FAILONERROR, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 30L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1024L); /* < 1 KiB/s for 60 s: give up */
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
    curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)MAX_DOWNLOAD_BYTES);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "scribed-model-download/1");
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, s);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, s);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    CURLcode rc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(c);
    if (s->show_progress && s->last_percent >= 0 && s->last_percent < 100)
        fputc('\n', stderr); /* end the progress line */
    if (rc == CURLE_OK)
        return 0;
    if (rc == CURLE_HTTP_RETURNED_ERROR)
        fprintf(stderr, "scribed model: %s: HTTP %ld%s\n", url, status,
                status == 404 ? " (no such file on the server)" : "");
    else if (s->write_failed)
        fprintf(stderr, "scribed model: writing the download failed: %s\n", strerror(errno));
    else
        fprintf(stderr, "scribed model: %s: %s\n", url, errbuf[0] ? errbuf : curl_easy_strerror(rc));
    return 1;
}

/* Compares the computed digests with what is expected; prints the verdict. */
static int verify(const struct known_model *m, const struct download_opts *o,
                  const char *sha256_hex, const char *sha1_hex)
{
    const char *want256 = o->sha256 ? o->sha256 : m->sha256;
    if (want256) {
        if (strcasecmp(want256, sha256_hex) == 0)
            return 0;
        fprintf(stderr, "scribed model: SHA-256 mismatch: expected %s, got %s; nothing installed\n",
                want256, sha256_hex);
        return 1;
    }
    if (m->sha1) {
        if (strcasecmp(m->sha1, sha1_hex) == 0)
            return 0;
        fprintf(stderr, "scribed model: SHA-1 mismatch: expected %s, got %s; nothing installed\n",
                m->sha1, sha1_hex);
        return 1;
    }
    if (o->no_verify) {
        fprintf(stderr, "scribed model: warning: installed without verification (--no-verify)\n");
        return 0;
    }
    return 1; /* unreachable: refused before downloading */
}

static int download(const struct known_model *m, const struct download_opts *o)
{
    char dir[4096], final[4200], part[4300], url[4096];
    snprintf(dir, sizeof dir, "%s/models", o->data_dir);
    snprintf(final, sizeof final, "%s/ggml-%s.bin", dir, m->name);
    const char *base = o->base_url ? o->base_url : (m->is_vad ? VAD_HOST : WHISPER_HOST);
    size_t blen = strlen(base);
    while (blen > 0 && base[blen - 1] == '/')
        blen--;
    snprintf(url, sizeof url, "%.*s/ggml-%s.bin", (int)blen, base, m->name);
    if (!o->sha256 && !m->sha256 && !m->sha1 && !o->no_verify) {
        fprintf(stderr,
                "scribed model: no published checksum is known for %s; refusing to install an "
                "unverified file (give --sha256 HEX, or --no-verify to accept it as is)\n",
                m->name);
        return 1;
    }
    if (!o->force && access(final, F_OK) == 0) {
        fprintf(stderr, "scribed model: %s is already installed (--force downloads it again)\n",
                final);
        printf("%s\n", final);
        return 0;
    }
    if (mkdir_p(dir) != 0) {
        fprintf(stderr, "scribed model: cannot create %s: %s\n", dir, strerror(errno));
        return 1;
    }
    snprintf(part, sizeof part, "%s.part.XXXXXX", final);
    int fd = mkstemp(part);
    if (fd < 0) {
        fprintf(stderr, "scribed model: cannot create a file in %s: %s\n", dir, strerror(errno));
        return 1;
    }
    fchmod(fd, 0644);
    struct sink s = {.f = fdopen(fd, "wb"), .show_progress = isatty(STDERR_FILENO),
                     .last_percent = -1};
    if (!s.f) {
        close(fd);
        unlink(part);
        fprintf(stderr, "scribed model: cannot open %s\n", part);
        return 1;
    }
    hashes_init(&s.h);
    fprintf(stderr, "scribed model: downloading %s\n", url);
    int rc = fetch(url, &s);
    if (fflush(s.f) != 0 || fsync(fileno(s.f)) != 0) {
        if (!rc)
            fprintf(stderr, "scribed model: writing %s failed: %s\n", part, strerror(errno));
        rc = 1;
    }
    fclose(s.f);
    char sha256_hex[65], sha1_hex[41];
    hashes_final(&s.h, sha256_hex, sha1_hex);
    if (!rc)
        rc = verify(m, o, sha256_hex, sha1_hex);
    if (!rc && rename(part, final) != 0) {
        fprintf(stderr, "scribed model: cannot rename into %s: %s\n", final, strerror(errno));
        rc = 1;
    }
    if (rc) {
        unlink(part);
        return 1;
    }
    int dfd = open(dir, O_RDONLY | O_DIRECTORY);
    if (dfd >= 0) { /* make the rename durable */
        fsync(dfd);
        close(dfd);
    }
    fprintf(stderr, "scribed model: installed %s (%lld bytes, sha256 %s)\n", final, s.n_bytes,
            sha256_hex);
    printf("%s\n", final);
    return 0;
}

/* ---- subcommands ---- */

static int hash_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "scribed model: %s: %s\n", path, strerror(errno));
        return 1;
    }
    struct hashes h;
    hashes_init(&h);
    static uint8_t buf[1 << 16];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        hashes_update(&h, buf, n);
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        fprintf(stderr, "scribed model: %s: read error\n", path);
        return 1;
    }
    char s256[65], s1[41];
    hashes_final(&h, s256, s1);
    printf("sha256 %s\nsha1 %s\n", s256, s1);
    return 0;
}

static int list_models(const char *data_dir)
{
    printf("%-22s %-8s %-8s %s\n", "NAME", "KIND", "CHECKSUM", "INSTALLED");
    for (size_t i = 0; i < N_KNOWN; i++) {
        char path[4200];
        struct stat st;
        snprintf(path, sizeof path, "%s/models/ggml-%s.bin", data_dir, known[i].name);
        char inst[64] = "-";
        if (stat(path, &st) == 0)
            snprintf(inst, sizeof inst, "yes (%lld MiB)", (long long)st.st_size >> 20);
        printf("%-22s %-8s %-8s %s\n", known[i].name, known[i].is_vad ? "vad" : "whisper",
               known[i].sha256 ? "sha256" : known[i].sha1 ? "sha1" : "none", inst);
    }
    printf("\nmodels folder: %s/models\n", data_dir);
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: scribed model download NAME [options]\n"
            "       scribed model list [--data-dir DIR]\n"
            "       scribed model hash FILE\n\n"
            "  NAME              a Whisper model (tiny, base.en, large-v3-turbo, ...) or\n"
            "                    silero-v6.2.0 (alias: silero); see `scribed model list`\n"
            "  --data-dir DIR    installs into DIR/models (default ./data)\n"
            "  --base-url URL    fetch URL/ggml-NAME.bin instead of the public host\n"
            "  --sha256 HEX      expected SHA-256 (for files without a known checksum)\n"
            "  --no-verify       accept a file whose checksum is not known\n"
            "  --force           download again even if the file is installed\n");
}

enum { OPT_DATA_DIR = 256, OPT_BASE_URL, OPT_SHA256, OPT_NO_VERIFY, OPT_FORCE, OPT_HELP };

static const struct option long_opts[] = {
    {"data-dir", required_argument, 0, OPT_DATA_DIR},
    {"base-url", required_argument, 0, OPT_BASE_URL},
    {"sha256", required_argument, 0, OPT_SHA256},
    {"no-verify", no_argument, 0, OPT_NO_VERIFY},
    {"force", no_argument, 0, OPT_FORCE},
    {"help", no_argument, 0, OPT_HELP},
    {0, 0, 0, 0},
};

int cmd_model(int argc, char **argv)
{
    struct download_opts o = {.data_dir = "./data"};
    int opt;
    optind = 1;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "h", long_opts, NULL)) != -1) {
        switch (opt) {
        case OPT_DATA_DIR: o.data_dir = optarg; break;
        case OPT_BASE_URL: o.base_url = optarg; break;
        case OPT_SHA256: o.sha256 = optarg; break;
        case OPT_NO_VERIFY: o.no_verify = 1; break;
        case OPT_FORCE: o.force = 1; break;
        case OPT_HELP: case 'h': usage(stdout); return 0;
        default:
            fprintf(stderr, "scribed model: unknown or incomplete option '%s' (see --help)\n",
                    argv[optind - 1]);
            return 2;
        }
    }
    const char *sub = optind < argc ? argv[optind++] : NULL;
    const char *arg = optind < argc ? argv[optind++] : NULL;
    if (!sub || optind < argc) {
        usage(stderr);
        return 2;
    }
    if (o.sha256 && !is_hex(o.sha256, 64)) {
        fprintf(stderr, "scribed model: --sha256 needs 64 hex digits\n");
        return 2;
    }
    if (strcmp(sub, "list") == 0 && !arg)
        return list_models(o.data_dir);
    if (strcmp(sub, "hash") == 0 && arg)
        return hash_file(arg);
    if (strcmp(sub, "download") != 0 || !arg) {
        usage(stderr);
        return 2;
    }
    const struct known_model *m = find_model(arg);
    if (!m) {
        fprintf(stderr, "scribed model: unknown model '%s' (see `scribed model list`)\n", arg);
        return 2;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "scribed model: cannot initialise libcurl\n");
        return 1;
    }
    int rc = download(m, &o);
    curl_global_cleanup();
    return rc;
}

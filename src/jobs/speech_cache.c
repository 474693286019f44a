/*
 * speech_cache.c - synthesised speech on disk (speech_cache.h).
 */
#include "jobs/speech_cache.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <nettle/sha2.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util/clock.h"

#define MAX_IN_FLIGHT 256

struct speech_cache {
    char dir[1100];
    int64_t max_bytes;
    int ttl_s;
    pthread_mutex_t mu;
    pthread_cond_t cv;                   /* an in-flight key finished */
    char in_flight[MAX_IN_FLIGHT][SPEECH_KEY_HEX];
    int n_in_flight;
    int64_t hits, misses, evictions;
};

/* A producer's file left by a crash: nothing produces before the cache is open. */
static void remove_temporaries(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (strncmp(de->d_name, ".tmp-", 5) != 0)
            continue;
        char path[1200];
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        unlink(path);
    }
    closedir(d);
}

enum sd_err speech_cache_open(const char *data_dir, int64_t max_bytes, int ttl_s,
                              struct speech_cache **out, struct sd_error *err)
{
    *out = NULL;
    if (max_bytes <= 0)
        return SD_OK;
    struct speech_cache *c = calloc(1, sizeof(*c));
    if (!c)
        return sd_fail(err, SD_ENOMEM, "speech cache");
    snprintf(c->dir, sizeof(c->dir), "%s/speech-cache", data_dir);
    if (mkdir(c->dir, 0700) != 0 && errno != EEXIST) {
        int e = errno;
        free(c);
        return sd_fail(err, SD_EIO, "cannot create %s: %s", data_dir, strerror(e));
    }
    c->max_bytes = max_bytes;
    c->ttl_s = ttl_s > 0 ? ttl_s : 3600;
    pthread_mutex_init(&c->mu, NULL);
    sd_cond_init_monotonic(&c->cv);
    *out = c;
    remove_temporaries(c->dir);
    speech_cache_sweep(c); /* what expired while the service was down */
    return SD_OK;
}

void speech_cache_close(struct speech_cache *c)
{
    if (!c)
        return;
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

int speech_cache_ttl_s(const struct speech_cache *c)
{
    return c->ttl_s;
}

void speech_cache_key(const char *engine_version, const char *voice, const char *format,
                      double speed, const char *text, size_t len, char key[SPEECH_KEY_HEX])
{
    char head[256];
    int n = snprintf(head, sizeof(head), "speech-v1\n%s\n%s\n%s\n%.4f\n", engine_version, voice,
                     format, speed);
    struct sha256_ctx h;
    uint8_t d[SHA256_DIGEST_SIZE];
    sha256_init(&h);
    sha256_update(&h, (size_t)(n < (int)sizeof(head) ? n : (int)sizeof(head) - 1),
                  (const uint8_t *)head);
    sha256_update(&h, len, (const uint8_t *)text);
    sha256_digest(&h, sizeof(d), d);
    for (size_t i = 0; i < sizeof(d); i++)
        snprintf(key + 2 * i, 3, "%02x", d[i]);
}

static void entry_path(const struct speech_cache *c, const char *key, char *out, size_t n)
{
    snprintf(out, n, "%s/%s", c->dir, key);
}

static int find_in_flight(const struct speech_cache *c, const char *key)
{
    for (int i = 0; i < c->n_in_flight; i++)
        if (strcmp(c->in_flight[i], key) == 0)
            return i;
    return -1;
}

/* A fresh entry's fd, or -1 (an expired one is removed). Called with mu held. */
static int open_fresh(struct speech_cache *c, const char *key, int64_t *size)
{
    char path[1200];
    entry_path(c, key, path, sizeof(path));
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    struct stat st;
    if (fstat(fd, &st) != 0 || time(NULL) - st.st_mtime >= c->ttl_s) {
        close(fd);
        if (unlink(path) == 0)
            c->evictions++;
        return -1;
    }
    *size = st.st_size;
    return fd;
}

enum sd_err speech_cache_get(struct speech_cache *c, const char *key, int *fd, int64_t *size,
                             bool *producer, int timeout_ms, struct sd_error *err)
{
    *fd = -1;
    *producer = false;
    struct timespec deadline = sd_deadline_ms(CLOCK_MONOTONIC, timeout_ms);
    pthread_mutex_lock(&c->mu);
    for (;;) {
        *fd = open_fresh(c, key, size);
        if (*fd >= 0) {
            c->hits++;
            break;
        }
        if (find_in_flight(c, key) < 0) {
            if (c->n_in_flight < MAX_IN_FLIGHT) {
                snprintf(c->in_flight[c->n_in_flight++], SPEECH_KEY_HEX, "%s", key);
                *producer = true;
            } /* else: too many at once to track, synthesise uncached */
            c->misses++;
            break;
        }
        if (pthread_cond_timedwait(&c->cv, &c->mu, &deadline) == ETIMEDOUT) {
            pthread_mutex_unlock(&c->mu);
            return sd_fail(err, SD_ETIMEOUT, "the same speech is still being synthesised");
        }
    }
    pthread_mutex_unlock(&c->mu);
    return SD_OK;
}

static void tmp_path(const struct speech_cache *c, const char *key, char *out, size_t n)
{
    snprintf(out, n, "%s/.tmp-%s", c->dir, key);
}

FILE *speech_cache_create(struct speech_cache *c, const char *key)
{
    char path[1200];
    tmp_path(c, key, path, sizeof(path));
    return fopen(path, "wb"); /* one producer per key: the name is its own */
}

void speech_cache_finish(struct speech_cache *c, const char *key, FILE *f, bool ok)
{
    char tmp[1200], path[1200];
    tmp_path(c, key, tmp, sizeof(tmp));
    entry_path(c, key, path, sizeof(path));
    if (f && fclose(f) != 0)
        ok = false;
    if (!f || !ok || rename(tmp, path) != 0)
        unlink(tmp);
    pthread_mutex_lock(&c->mu);
    int i = find_in_flight(c, key);
    if (i >= 0) {
        c->n_in_flight--;
        memmove(c->in_flight[i], c->in_flight[c->n_in_flight], SPEECH_KEY_HEX);
    }
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    if (ok)
        speech_cache_sweep(c);
}

struct entry {
    char name[SPEECH_KEY_HEX + 8];
    struct timespec mtime;     /* to the nanosecond: entries of one second keep their order */
    int64_t size;
};

static int by_age(const void *a, const void *b)
{
    const struct entry *x = a, *y = b;
    if (x->mtime.tv_sec != y->mtime.tv_sec)
        return (x->mtime.tv_sec > y->mtime.tv_sec) - (x->mtime.tv_sec < y->mtime.tv_sec);
    return (x->mtime.tv_nsec > y->mtime.tv_nsec) - (x->mtime.tv_nsec < y->mtime.tv_nsec);
}

/* Lists the entries (not temporary files); caller frees *out. */
static int list_entries(struct speech_cache *c, struct entry **out, int64_t *total)
{
    *out = NULL;
    *total = 0;
    DIR *d = opendir(c->dir);
    if (!d)
        return 0;
    int n = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (strlen(de->d_name) != SPEECH_KEY_HEX - 1)
            continue; /* ".", "..", ".tmp-*": a producer's or a crash's */
        char path[1200];
        struct stat st;
        snprintf(path, sizeof(path), "%s/%s", c->dir, de->d_name);
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            struct entry *e = realloc(*out, (size_t)cap * sizeof(**out));
            if (!e)
                break;
            *out = e;
        }
        snprintf((*out)[n].name, sizeof((*out)[n].name), "%s", de->d_name);
        (*out)[n].mtime = st.st_mtim;
        (*out)[n].size = st.st_size;
        *total += st.st_size;
        n++;
    }
    closedir(d);
    return n;
}

int speech_cache_sweep(struct speech_cache *c)
{
    if (!c)
        return 0;
    struct entry *e;
    int64_t total;
    pthread_mutex_lock(&c->mu); /* one sweep at a time; lookups wait briefly */
    int n = list_entries(c, &e, &total), removed = 0;
    if (n > 1)
        qsort(e, (size_t)n, sizeof(*e), by_age);
    time_t now = time(NULL);
    for (int i = 0; i < n; i++) {
        bool expired = now - e[i].mtime.tv_sec >= c->ttl_s;
        if (!expired && total <= c->max_bytes)
            continue;
        char path[1200];
        snprintf(path, sizeof(path), "%s/%s", c->dir, e[i].name);
        if (unlink(path) == 0) {
            removed++;
            total -= e[i].size;
        }
    }
    c->evictions += removed;
    pthread_mutex_unlock(&c->mu);
    free(e);
    return removed;
}

void speech_cache_stats(struct speech_cache *c, struct speech_cache_stats *out)
{
    struct entry *e;
    int64_t total;
    pthread_mutex_lock(&c->mu);
    int n = list_entries(c, &e, &total);
    *out = (struct speech_cache_stats){c->hits, c->misses, c->evictions, total, n};
    pthread_mutex_unlock(&c->mu);
    free(e);
}

/*
 * reserve.c - the data dir's disk reserve (see reserve.h). The file is
 * written with real blocks (posix_fallocate), so the file system counts them
 * as used: tmpfs, ext4 and xfs all do.
 */
#include "jobs/reserve.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct reserve {
    pthread_mutex_t mu;
    char path[1024];
    int64_t bytes;
    bool held;               /* the file is in place with all its bytes */
};

/* Creates the file with every byte allocated; a partial one is removed (caller holds mu). */
static bool make_file(struct reserve *r)
{
    struct stat sb;
    if (stat(r->path, &sb) == 0 && sb.st_blocks * 512 >= r->bytes)
        return true;
    int fd = open(r->path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return false;
    int e = posix_fallocate(fd, 0, (off_t)r->bytes);
    close(fd);
    if (e != 0) { /* no room yet: leave no half reserve to confuse the next look */
        unlink(r->path);
        return false;
    }
    return true;
}

enum sd_err reserve_open(const char *dir, int64_t bytes, struct reserve **out,
                         struct sd_error *err)
{
    *out = NULL;
    if (bytes <= 0)
        return SD_OK;
    struct reserve *r = calloc(1, sizeof(*r));
    if (!r)
        return sd_fail(err, SD_ENOMEM, "disk reserve");
    if (snprintf(r->path, sizeof(r->path), "%s/.disk-reserve", dir) >= (int)sizeof(r->path)) {
        free(r);
        return sd_fail(err, SD_EINVAL, "data dir path too long");
    }
    r->bytes = bytes;
    pthread_mutex_init(&r->mu, NULL);
    r->held = make_file(r);
    *out = r;
    return SD_OK;
}

void reserve_close(struct reserve *r)
{
    if (!r)
        return;
    pthread_mutex_destroy(&r->mu);
    free(r);
}

bool reserve_release(struct reserve *r)
{
    if (!r)
        return false;
    pthread_mutex_lock(&r->mu);
    bool freed = r->held && unlink(r->path) == 0;
    r->held = false;
    pthread_mutex_unlock(&r->mu);
    return freed;
}

bool reserve_restore(struct reserve *r)
{
    if (!r)
        return false;
    pthread_mutex_lock(&r->mu);
    if (!r->held)
        r->held = make_file(r);
    bool held = r->held;
    pthread_mutex_unlock(&r->mu);
    return held;
}

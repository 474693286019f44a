/*
 * periodic.c - see periodic.h. The mutex guards only the stop flag; fn runs
 * with it released, so a stop during a long call waits for that call alone.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "util/clock.h"
#include "util/periodic.h"

struct sd_periodic {
    void (*fn)(void *arg);
    void *arg;
    int64_t interval_ms;
    bool run_first;
    pthread_t thread;
    pthread_mutex_t mu; /* guards stopping */
    pthread_cond_t cv;
    bool stopping;
};

static void *periodic_main(void *arg)
{
    struct sd_periodic *p = arg;
    bool run = p->run_first;
    pthread_mutex_lock(&p->mu);
    while (!p->stopping) {
        if (run) {
            pthread_mutex_unlock(&p->mu);
            p->fn(p->arg);
            pthread_mutex_lock(&p->mu);
        }
        run = true;
        struct timespec ts = sd_deadline_ms(CLOCK_MONOTONIC, p->interval_ms);
        while (!p->stopping && pthread_cond_timedwait(&p->cv, &p->mu, &ts) != ETIMEDOUT)
            ;
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

enum sd_err sd_periodic_start(const char *what, void (*fn)(void *arg), void *arg,
                              int64_t interval_ms, bool run_first, struct sd_periodic **out,
                              struct sd_error *err)
{
    if (interval_ms <= 0)
        return sd_fail(err, SD_EINVAL, "%s: the interval must be positive", what);
    struct sd_periodic *p = calloc(1, sizeof(*p));
    if (!p)
        return sd_fail(err, SD_ENOMEM, "%s", what);
    p->fn = fn;
    p->arg = arg;
    p->interval_ms = interval_ms;
    p->run_first = run_first;
    pthread_mutex_init(&p->mu, NULL);
    sd_cond_init_monotonic(&p->cv);
    if (pthread_create(&p->thread, NULL, periodic_main, p) != 0) {
        pthread_cond_destroy(&p->cv);
        pthread_mutex_destroy(&p->mu);
        free(p);
        return sd_fail(err, SD_EINTERNAL, "cannot start the %s thread", what);
    }
    *out = p;
    return SD_OK;
}

void sd_periodic_stop(struct sd_periodic *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->stopping = true;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
    pthread_join(p->thread, NULL);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

/*
 * synth.c - synthesis slots (synth.h): a counting semaphore with a bounded
 * number of waiters and a deadline on the wait.
 */
#include "jobs/synth.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#include "util/clock.h"

struct synth_slots {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int slots, running, waiting, max_waiting;
    int64_t done, failed, bytes;
    double audio_s;
    bool stopped;
};

enum sd_err synth_slots_create(int slots, int max_waiting, struct synth_slots **out,
                               struct sd_error *err)
{
    struct synth_slots *s = calloc(1, sizeof(*s));
    if (!s)
        return sd_fail(err, SD_ENOMEM, "synthesis slots");
    pthread_mutex_init(&s->mu, NULL);
    sd_cond_init_monotonic(&s->cv);
    s->slots = slots > 0 ? slots : 1;
    s->max_waiting = max_waiting > 0 ? max_waiting : 1;
    *out = s;
    return SD_OK;
}

void synth_slots_destroy(struct synth_slots *s)
{
    if (!s)
        return;
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

enum sd_err synth_acquire(struct synth_slots *s, int timeout_ms, struct sd_error *err)
{
    pthread_mutex_lock(&s->mu);
    if (s->stopped) {
        pthread_mutex_unlock(&s->mu);
        return sd_fail(err, SD_EBUSY, "the service is shutting down");
    }
    if (s->running >= s->slots && s->waiting >= s->max_waiting) {
        pthread_mutex_unlock(&s->mu);
        return sd_fail(err, SD_EBUSY, "too many speech requests are waiting; try again later");
    }
    s->waiting++;
    struct timespec deadline = sd_deadline_ms(CLOCK_MONOTONIC, timeout_ms);
    bool timed_out = false;
    while (!s->stopped && s->running >= s->slots && !timed_out)
        timed_out = pthread_cond_timedwait(&s->cv, &s->mu, &deadline) != 0;
    s->waiting--;
    bool got = !s->stopped && s->running < s->slots;
    if (got)
        s->running++;
    bool stopped = s->stopped;
    pthread_mutex_unlock(&s->mu);
    if (!got)
        return sd_fail(err, SD_EBUSY, stopped ? "the service is shutting down"
                                                 : "every speech synthesis slot stayed busy");
    return SD_OK;
}

void synth_release(struct synth_slots *s)
{
    pthread_mutex_lock(&s->mu);
    if (s->running > 0)
        s->running--;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

void synth_slots_stop(struct synth_slots *s)
{
    pthread_mutex_lock(&s->mu);
    s->stopped = true;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

void synth_record(struct synth_slots *s, bool ok, double audio_s, int64_t bytes)
{
    pthread_mutex_lock(&s->mu);
    if (ok)
        s->done++;
    else
        s->failed++;
    s->audio_s += audio_s;
    s->bytes += bytes;
    pthread_mutex_unlock(&s->mu);
}

void synth_stats(struct synth_slots *s, struct synth_stats *out)
{
    pthread_mutex_lock(&s->mu);
    *out = (struct synth_stats){s->slots, s->running, s->waiting, s->done, s->failed, s->bytes,
                                s->audio_s};
    pthread_mutex_unlock(&s->mu);
}

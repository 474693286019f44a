/*
 * queue.c - the run queue (see queue.h). Pending jobs sit in a singly linked
 * list; claiming scans it for the lowest score = upload bytes - age credit
 * (sync requests get a head start, since a person waits on them). Lists
 * are short (bounded by max_pending), so the scan is cheaper than a heap.
 * It never touches the store or the engine.
 */
#include "jobs/queue.h"
#include "util/clock.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct job_queue {
    struct jobq_opts o;
    pthread_mutex_t mu;        /* guards everything below and the jobs' guarded fields */
    pthread_cond_t avail;      /* a job was pushed, or stop */
    pthread_cond_t changed;    /* a job finished or changed state */
    struct job *pending;       /* waiting jobs, push order */
    struct job **running;      /* n_workers slots */
    int n_pending, n_running, n_long_running;
    bool stopping;
};

enum sd_err jobq_create(const struct jobq_opts *o, struct job_queue **out, struct sd_error *err)
{
    if (o->n_workers < 1 || o->max_pending < 1)
        return sd_fail(err, SD_EINVAL, "queue needs at least one worker and one slot");
    struct job_queue *q = calloc(1, sizeof(*q));
    if (!q || !(q->running = calloc((size_t)o->n_workers, sizeof(*q->running)))) {
        free(q);
        return sd_fail(err, SD_ENOMEM, "job queue");
    }
    q->o = *o;
    pthread_mutex_init(&q->mu, NULL);
    sd_cond_init_monotonic(&q->avail);
    sd_cond_init_monotonic(&q->changed);
    *out = q;
    return SD_OK;
}

static void unref_locked(struct job *j)
{
    if (--j->refs == 0)
        job_free(j);
}

void jobq_destroy(struct job_queue *q)
{
    if (!q)
        return;
    while (q->pending) {
        struct job *j = q->pending;
        q->pending = j->next;
        unref_locked(j);
    }
    pthread_cond_destroy(&q->avail);
    pthread_cond_destroy(&q->changed);
    pthread_mutex_destroy(&q->mu);
    free(q->running);
    free(q);
}

enum sd_err jobq_push(struct job_queue *q, struct job *j, bool force, struct sd_error *err)
{
    enum sd_err rc = SD_OK;
    pthread_mutex_lock(&q->mu);
    if (q->stopping) {
        rc = sd_fail(err, SD_EBUSY, "the service is shutting down");
    } else if (!force && q->n_pending >= q->o.max_pending) {
        rc = sd_fail(err, SD_EBUSY, "the queue is full (%d jobs waiting); retry later",
                     q->n_pending);
    } else {
        j->refs++;
        j->status = JOB_QUEUED;
        j->enqueued_ms = sd_mono_ms();
        j->long_job = j->upload_bytes > q->o.long_job_bytes;
        j->next = NULL;
        struct job **tail = &q->pending;
        while (*tail)
            tail = &(*tail)->next;
        *tail = j;
        q->n_pending++;
        pthread_cond_signal(&q->avail);
    }
    pthread_mutex_unlock(&q->mu);
    return rc;
}

bool jobq_has_room(struct job_queue *q)
{
    pthread_mutex_lock(&q->mu);
    bool ok = !q->stopping && q->n_pending < q->o.max_pending;
    pthread_mutex_unlock(&q->mu);
    return ok;
}

/* The pending job to run next, or NULL if none may run now (caller holds mu). */
static struct job **pick_locked(struct job_queue *q)
{
    int64_t t = sd_mono_ms();
    bool long_allowed = q->o.n_workers < 2 || q->n_long_running < q->o.n_workers - 1;
    struct job **best = NULL;
    double best_score = 0;
    for (struct job **pp = &q->pending; *pp; pp = &(*pp)->next) {
        struct job *j = *pp;
        if (j->long_job && !long_allowed)
            continue;
        double age_s = (double)(t - j->enqueued_ms) / 1000.0;
        double score = (double)j->upload_bytes - age_s * q->o.age_credit_bytes_per_s;
        if (j->sync)
            score -= 30.0 * q->o.age_credit_bytes_per_s; /* a person is waiting */
        if (!best || score < best_score) {
            best = pp;
            best_score = score;
        }
    }
    return best;
}

struct job *jobq_claim(struct job_queue *q)
{
    struct job *j = NULL;
    pthread_mutex_lock(&q->mu);
    for (;;) {
        if (q->stopping)
            break;
        struct job **pp = pick_locked(q);
        if (pp) {
            j = *pp;
            *pp = j->next;
            j->next = NULL;
            q->n_pending--;
            q->n_running++;
            if (j->long_job)
                q->n_long_running++;
            for (int i = 0; i < q->o.n_workers; i++) {
                if (!q->running[i]) {
                    q->running[i] = j;
                    break;
                }
            }
            j->status = JOB_RUNNING;
            pthread_cond_broadcast(&q->changed);
            break;
        }
        pthread_cond_wait(&q->avail, &q->mu);
    }
    pthread_mutex_unlock(&q->mu);
    return j; /* the queue's reference passes to the worker */
}

void jobq_finish(struct job_queue *q, struct job *j, enum job_status final)
{
    pthread_mutex_lock(&q->mu);
    for (int i = 0; i < q->o.n_workers; i++)
        if (q->running[i] == j)
            q->running[i] = NULL;
    q->n_running--;
    if (j->long_job)
        q->n_long_running--;
    j->status = final;
    if (final == JOB_SUCCEEDED)
        j->progress = 1.0f;
    pthread_cond_broadcast(&q->changed);
    pthread_cond_broadcast(&q->avail); /* a long-job slot may have opened */
    unref_locked(j);
    pthread_mutex_unlock(&q->mu);
}

bool jobq_wait(struct job_queue *q, struct job *j, int timeout_ms)
{
    struct timespec dl = sd_deadline_ms(CLOCK_MONOTONIC, timeout_ms);
    pthread_mutex_lock(&q->mu);
    while (!job_status_is_final(j->status)) {
        if (pthread_cond_timedwait(&q->changed, &q->mu, &dl) == ETIMEDOUT)
            break;
    }
    bool done = job_status_is_final(j->status);
    pthread_mutex_unlock(&q->mu);
    return done;
}

void jobq_release(struct job_queue *q, struct job *j)
{
    if (!j)
        return;
    pthread_mutex_lock(&q->mu);
    unref_locked(j);
    pthread_mutex_unlock(&q->mu);
}

static int cancel(struct job_queue *q, const char *id, bool running_too)
{
    int was = -1;
    pthread_mutex_lock(&q->mu);
    for (struct job **pp = &q->pending; *pp; pp = &(*pp)->next) {
        struct job *j = *pp;
        if (strcmp(j->id, id) == 0) {
            *pp = j->next;
            q->n_pending--;
            was = JOB_QUEUED;
            atomic_store(&j->cancel, true);
            j->status = JOB_CANCELLED;
            pthread_cond_broadcast(&q->changed);
            unref_locked(j);
            goto out;
        }
    }
    for (int i = 0; running_too && i < q->o.n_workers; i++) {
        if (q->running[i] && strcmp(q->running[i]->id, id) == 0) {
            atomic_store(&q->running[i]->cancel, true);
            was = JOB_RUNNING;
            break;
        }
    }
out:
    pthread_mutex_unlock(&q->mu);
    return was;
}

int jobq_cancel(struct job_queue *q, const char *id)
{
    return cancel(q, id, true);
}

bool jobq_cancel_pending(struct job_queue *q, const char *id)
{
    return cancel(q, id, false) == JOB_QUEUED;
}

void jobq_set_progress(struct job_queue *q, struct job *j, float fraction)
{
    pthread_mutex_lock(&q->mu);
    j->progress = fraction;
    pthread_mutex_unlock(&q->mu);
}

double jobq_progress(struct job_queue *q, const char *id)
{
    double p = -1;
    pthread_mutex_lock(&q->mu);
    for (int i = 0; i < q->o.n_workers; i++)
        if (q->running[i] && strcmp(q->running[i]->id, id) == 0)
            p = q->running[i]->progress;
    for (struct job *j = q->pending; p < 0 && j; j = j->next)
        if (strcmp(j->id, id) == 0)
            p = 0;
    pthread_mutex_unlock(&q->mu);
    return p;
}

void jobq_counts(struct job_queue *q, int64_t *pending, int64_t *running)
{
    pthread_mutex_lock(&q->mu);
    *pending = q->n_pending;
    *running = q->n_running;
    pthread_mutex_unlock(&q->mu);
}

bool jobq_wait_free(struct job_queue *q, int timeout_ms, bool *long_allowed)
{
    struct timespec dl = sd_deadline_ms(CLOCK_MONOTONIC, timeout_ms);
    pthread_mutex_lock(&q->mu);
    while (!q->stopping && q->n_running + q->n_pending >= q->o.n_workers)
        if (pthread_cond_timedwait(&q->changed, &q->mu, &dl) == ETIMEDOUT)
            break;
    bool free_slot = !q->stopping && q->n_running + q->n_pending < q->o.n_workers;
    *long_allowed = q->o.n_workers < 2 || q->n_long_running < q->o.n_workers - 1;
    pthread_mutex_unlock(&q->mu);
    return free_slot;
}

void jobq_stop(struct job_queue *q)
{
    pthread_mutex_lock(&q->mu);
    q->stopping = true;
    pthread_cond_broadcast(&q->avail);
    pthread_cond_broadcast(&q->changed);
    pthread_mutex_unlock(&q->mu);
}

static void wait_idle_locked(struct job_queue *q, int timeout_ms)
{
    struct timespec dl = sd_deadline_ms(CLOCK_MONOTONIC, timeout_ms);
    while (q->n_running > 0)
        if (pthread_cond_timedwait(&q->changed, &q->mu, &dl) == ETIMEDOUT)
            break;
}

int jobq_drain(struct job_queue *q, int timeout_ms, int grace_ms)
{
    pthread_mutex_lock(&q->mu);
    q->stopping = true;
    pthread_cond_broadcast(&q->avail);
    wait_idle_locked(q, timeout_ms);
    for (int i = 0; i < q->o.n_workers; i++) {
        if (q->running[i]) {
            atomic_store(&q->running[i]->requeue, true);
            atomic_store(&q->running[i]->cancel, true);
        }
    }
    wait_idle_locked(q, grace_ms);
    int left = q->n_running;
    pthread_mutex_unlock(&q->mu);
    return left;
}

int jobq_held_async(struct job_queue *q, char (*ids)[STORE_ID_MAX], int max)
{
    int n = 0;
    pthread_mutex_lock(&q->mu);
    for (struct job *j = q->pending; j && n < max; j = j->next)
        if (!j->sync)
            snprintf(ids[n++], STORE_ID_MAX, "%s", j->id);
    for (int i = 0; i < q->o.n_workers && n < max; i++)
        if (q->running[i] && !q->running[i]->sync)
            snprintf(ids[n++], STORE_ID_MAX, "%s", q->running[i]->id);
    pthread_mutex_unlock(&q->mu);
    return n;
}

int jobq_running_async(struct job_queue *q, char (*ids)[STORE_ID_MAX], int max)
{
    int n = 0;
    pthread_mutex_lock(&q->mu);
    for (int i = 0; i < q->o.n_workers && n < max; i++)
        if (q->running[i] && !q->running[i]->sync)
            snprintf(ids[n++], STORE_ID_MAX, "%s", q->running[i]->id);
    pthread_mutex_unlock(&q->mu);
    return n;
}

/*
 * pool.c - persistent worker threads for the CPU backend (see pool.h).
 *
 * A job is published as one atomic word `next` = job number (24 bits) |
 * n_tasks (20 bits) | next task index (20 bits). Anyone (workers and the
 * caller) claims a task with a CAS on that word, which only succeeds while
 * the job is unchanged and the index is below n_tasks taken from the SAME
 * word; fn/ctx are read after a successful claim, when the job cannot be
 * replaced (the caller publishes the next job only after `done` reaches
 * n_tasks, which needs this task). The caller returns as soon as all tasks
 * are done, so it never waits for a worker that is descheduled before
 * claiming anything: it simply runs the remaining tasks itself. Idle workers
 * spin briefly, then sleep on a condition variable.
 */
#include "backend/cpu/pool.h"
#include "util/clock.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

/* A spin-wait hint to the core: PAUSE on x86-64, YIELD on AArch64. */
static inline void spin_pause(void)
{
#if defined(__x86_64__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ volatile("yield");
#endif
}

#define SPIN_ITERS 20000 /* ~0.1 ms of pause instructions before sleeping */
#ifndef LATE_NS
#define LATE_NS 1000000 /* waiting this long for a worker's task means it was descheduled */
#endif
#define LATE_WINDOW 1000 /* two late workers within this many jobs: the machine is busy */
#define SOLO_JOBS 1000   /* small jobs then run inline (~15 decoder steps), then retry */

struct worker {
    struct sd_pool *pool;
    int id;
    pthread_t th;
};

struct sd_pool {
    int n_threads;
    struct worker *workers;
    int n_started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    _Atomic uint64_t next;  /* job << 40 | n_tasks << 20 | next task */
    atomic_int done;        /* tasks finished in the current job */
    atomic_int n_sleeping;
    atomic_int stop;
    _Atomic(sd_pool_fn) fn;
    _Atomic(void *) ctx;
    int solo_left;          /* caller-only: small jobs still to run inline */
    int since_late;         /* caller-only: jobs since a worker was last late */
};

#define JOB_SHIFT 40
#define N_SHIFT 20
#define FIELD_MASK ((1u << 20) - 1)

static uint32_t job_of(uint64_t v)
{
    return (uint32_t)(v >> JOB_SHIFT);
}

/* Claims and runs tasks of job `job` until none are left or the job changed. */
static void run_tasks(struct sd_pool *p, uint32_t job, int thread)
{
    for (;;) {
        uint64_t v = atomic_load(&p->next);
        if (job_of(v) != job)
            return;
        int n = (int)((v >> N_SHIFT) & FIELD_MASK), t = (int)(v & FIELD_MASK);
        if (t >= n)
            return;
        if (!atomic_compare_exchange_weak(&p->next, &v, v + 1))
            continue;
        sd_pool_fn fn = atomic_load(&p->fn); /* stable: the job cannot end before this task */
        void *ctx = atomic_load(&p->ctx);
        fn(ctx, t, thread);
        atomic_fetch_add(&p->done, 1);
    }
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct sd_pool *p = w->pool;
    uint32_t seen = 0;
    for (;;) {
        int spins = 0;
        uint32_t job;
        while ((job = job_of(atomic_load(&p->next))) == seen &&
               !atomic_load(&p->stop)) {
            if (++spins < SPIN_ITERS) {
                spin_pause();
                continue;
            }
            pthread_mutex_lock(&p->mu);
            atomic_fetch_add(&p->n_sleeping, 1);
            while (job_of(atomic_load(&p->next)) == seen && !atomic_load(&p->stop))
                pthread_cond_wait(&p->cv, &p->mu);
            atomic_fetch_sub(&p->n_sleeping, 1);
            pthread_mutex_unlock(&p->mu);
            spins = 0;
        }
        if (atomic_load(&p->stop))
            return NULL;
        seen = job;
        run_tasks(p, job, w->id);
    }
}

struct sd_pool *sd_pool_create(int n_threads)
{
    if (n_threads < 1)
        n_threads = 1;
    struct sd_pool *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->n_threads = n_threads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    atomic_init(&p->next, 0);
    atomic_init(&p->done, 0);
    atomic_init(&p->n_sleeping, 0);
    atomic_init(&p->stop, 0);
    atomic_init(&p->fn, NULL);
    atomic_init(&p->ctx, NULL);
    p->since_late = LATE_WINDOW; /* one late worker alone is not a trend */
    if (n_threads > 1) {
        p->workers = calloc((size_t)n_threads - 1, sizeof(*p->workers));
        if (!p->workers) {
            sd_pool_destroy(p);
            return NULL;
        }
        for (int i = 0; i < n_threads - 1; i++) {
            p->workers[i].pool = p;
            p->workers[i].id = i + 1;
            if (pthread_create(&p->workers[i].th, NULL, worker_main, &p->workers[i]) != 0) {
                sd_pool_destroy(p);
                return NULL;
            }
            p->n_started++;
        }
    }
    return p;
}

void sd_pool_destroy(struct sd_pool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->stop, 1);
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->n_started; i++)
        pthread_join(p->workers[i].th, NULL);
    free(p->workers);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p);
}

int sd_pool_n_threads(const struct sd_pool *p)
{
    return p->n_threads;
}

void sd_pool_run(struct sd_pool *p, int n_tasks, sd_pool_fn fn, void *ctx)
{
    if (n_tasks <= 0)
        return;
    if (p->n_started == 0 || n_tasks == 1) {
        for (int t = 0; t < n_tasks; t++)
            fn(ctx, t, 0);
        return;
    }
    if (n_tasks > (int)FIELD_MASK) { /* never in practice; stay correct anyway */
        for (int t = 0; t < n_tasks; t++)
            fn(ctx, t, 0);
        return;
    }
    /* the previous job is complete: nobody can claim a task until `next` moves on */
    atomic_store(&p->fn, fn);
    atomic_store(&p->ctx, ctx);
    atomic_store(&p->done, 0);
    uint32_t job = (job_of(atomic_load(&p->next)) + 1) & 0xffffffu;
    atomic_store(&p->next, (uint64_t)job << JOB_SHIFT | (uint64_t)n_tasks << N_SHIFT);
    if (atomic_load(&p->n_sleeping) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
    }
    run_tasks(p, job, 0);
    int spins = 0, late = 0;
    double t0 = 0;
    if (p->since_late < LATE_WINDOW)
        p->since_late++;
    while (atomic_load(&p->done) < n_tasks) {
        if (++spins < 2000) {
            spin_pause();
            continue;
        }
        if (spins == 2000)
            t0 = sd_mono_s();
        sched_yield(); /* a worker mid-task may be waiting for this CPU */
        if (!late && (spins & 63) == 0) {
            late = (sd_mono_s() - t0) * 1e9 > LATE_NS;
        }
    }
    if (late) {
        if (p->since_late < LATE_WINDOW)
            p->solo_left = SOLO_JOBS;
        p->since_late = 0;
    }
}

void sd_pool_run_small(struct sd_pool *p, int n_tasks, sd_pool_fn fn, void *ctx)
{
    if (p->solo_left > 0) {
        p->solo_left--;
        for (int t = 0; t < n_tasks; t++)
            fn(ctx, t, 0);
        return;
    }
    sd_pool_run(p, n_tasks, fn, ctx);
}

/*
 * test_pool.c - the CPU backend's thread pool: every task of every job runs
 * exactly once and the job is complete when sd_pool_run returns, over many
 * back-to-back jobs of varying size (the decoder's pattern), with workers
 * that sleep between bursts, and for the small-job entry point.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "backend/cpu/pool.h"
#include "check.h"

struct count_ctx {
    atomic_int *hits;
    atomic_int max_thread;
    int n_threads;
};

static void count_task(void *arg, int task, int thread)
{
    struct count_ctx *c = arg;
    atomic_fetch_add(&c->hits[task], 1);
    if (thread >= c->n_threads || thread < 0)
        atomic_store(&c->max_thread, 1000);
}

static void check_jobs(struct sd_pool *p, int n_threads, int n_jobs, int small)
{
    enum { MAX_TASKS = 97 };
    atomic_int hits[MAX_TASKS];
    struct count_ctx c = {hits, 0, n_threads};
    for (int j = 0; j < n_jobs; j++) {
        int n = 1 + (j * 31) % MAX_TASKS;
        for (int t = 0; t < MAX_TASKS; t++)
            atomic_init(&hits[t], 0);
        if (small)
            sd_pool_run_small(p, n, count_task, &c);
        else
            sd_pool_run(p, n, count_task, &c);
        int bad = 0;
        for (int t = 0; t < MAX_TASKS; t++)
            bad += atomic_load(&hits[t]) != (t < n ? 1 : 0);
        CHECK_MSG(bad == 0, "job %d (%d tasks): %d tasks ran not exactly once", j, n, bad);
        if (bad)
            return;
        if (j % 1000 == 999) { /* let the workers fall asleep, then wake them */
            struct timespec ts = {0, 2000000};
            nanosleep(&ts, NULL);
        }
    }
    CHECK(atomic_load(&c.max_thread) == 0);
}

TEST(backend_pool_runs_every_task_once)
{
    for (int n_threads = 1; n_threads <= 4; n_threads++) {
        struct sd_pool *p = sd_pool_create(n_threads);
        CHECK(p != NULL);
        if (!p)
            return;
        CHECK_EQ_INT(sd_pool_n_threads(p), n_threads);
        check_jobs(p, n_threads, 5000, 0);
        check_jobs(p, n_threads, 2000, 1);
        sd_pool_run(p, 0, count_task, NULL); /* nothing to do */
        sd_pool_destroy(p);
    }
}

TEST(backend_pool_create_destroy_idle)
{
    for (int i = 0; i < 50; i++) {
        struct sd_pool *p = sd_pool_create(1 + i % 4);
        CHECK(p != NULL);
        sd_pool_destroy(p);
    }
}

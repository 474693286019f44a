/*
 * pool.h - the CPU backend's persistent thread pool. Workers are started
 * once (sd_pool_create) and reused for every op: a job is n_tasks calls of
 * fn(ctx, task, thread), handed out dynamically (an atomic counter), with the
 * calling thread working as thread 0. Idle workers spin briefly, then sleep
 * on a condition variable. One caller at a time; no globals.
 */
#ifndef SD_BACKEND_CPU_POOL_H
#define SD_BACKEND_CPU_POOL_H

struct sd_pool;

typedef void (*sd_pool_fn)(void *ctx, int task, int thread);

/* n_threads >= 1 (n_threads - 1 workers). Returns NULL when out of resources. */
struct sd_pool *sd_pool_create(int n_threads);
void sd_pool_destroy(struct sd_pool *p);
int sd_pool_n_threads(const struct sd_pool *p);
/* Runs fn for tasks 0 .. n_tasks-1 across the pool and returns when all are done. */
void sd_pool_run(struct sd_pool *p, int n_tasks, sd_pool_fn fn, void *ctx);

/*
 * The same for a job of well under a millisecond (decoder ops). When a worker
 * was recently caught descheduled in the middle of a task (the machine is
 * oversubscribed), such jobs run on the calling thread alone for a while: a
 * stalled task costs a whole scheduler time slice, far more than the job.
 */
void sd_pool_run_small(struct sd_pool *p, int n_tasks, sd_pool_fn fn, void *ctx);

#endif

/*
 * batcher.c - see batcher.h. Members queue a `pending` entry (on their own
 * stack) and sleep; the thread that makes the queue complete (every member
 * queued, no batch running) takes the whole queue, computes it outside the
 * lock on the batcher's backend and buffers, and wakes everyone. Each member
 * copies its own logits rows out of the batch's logits (backend memory, a
 * copy op: safe from any thread once the pass is done): they cannot be
 * overwritten before that, since the next batch needs this member's next step.
 */
#include "whisper/batcher.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "whisper/state_internal.h"

struct pending {
    struct whisper_step step;
    int row0;   /* first row of this step in the batch's logits */
    bool done;
};

struct whisper_batcher {
    const struct whisper_model *m;
    struct sd_backend *be;
    int max_members, max_rows_per_member, max_rows;
    /* used only by the thread computing a batch (`running`) */
    struct whisper_dec_buffers buf;
    int32_t *tokens;
    struct whisper_dec_group *groups;
    struct whisper_step *steps;
    struct pending **batch;
    struct sd_mem logits; /* [max_rows][n_vocab]: copied out by members after their batch */

    pthread_mutex_t mu;
    pthread_cond_t done_cv;
    int n_members;
    struct pending **queue; /* [max_members] */
    int n_queued;
    bool running;
    struct whisper_batcher_stats stats;
};

enum sd_err whisper_batcher_create(const struct whisper_model *m, int n_threads,
                                   int max_members, int max_rows_per_member,
                                   struct whisper_batcher **out, struct sd_error *err)
{
    if (!m || !out || max_members < 1 || max_members > 256 || max_rows_per_member < 1 ||
        max_rows_per_member > 64)
        return sd_fail(err, SD_EINVAL, "whisper_batcher_create: bad arguments");
    const struct whisper_hparams *h = whisper_model_hparams(m);
    struct whisper_batcher *b = calloc(1, sizeof(*b));
    if (!b)
        return sd_fail(err, SD_ENOMEM, "decode batcher");
    b->m = m;
    b->max_members = max_members;
    b->max_rows_per_member = max_rows_per_member;
    b->max_rows = max_members * max_rows_per_member;
    pthread_mutex_init(&b->mu, NULL);
    pthread_cond_init(&b->done_cv, NULL);
    enum sd_err rc = whisper_backend_create(m, n_threads, &b->be, err);
    if (rc == SD_OK)
        rc = whisper_dec_buffers_alloc(b->be, h, b->max_rows, &b->buf, err);
    if (rc) {
        whisper_batcher_destroy(b);
        return rc;
    }
    size_t R = (size_t)b->max_rows, M = (size_t)max_members;
    b->tokens = calloc(R, sizeof(*b->tokens));
    b->groups = calloc(R, sizeof(*b->groups));
    b->steps = calloc(M, sizeof(*b->steps));
    b->batch = calloc(M, sizeof(*b->batch));
    b->queue = calloc(M, sizeof(*b->queue));
    b->logits = sd_backend_alloc(b->be, R * (size_t)h->n_vocab * sizeof(float));
    if (!b->tokens || !b->groups || !b->steps || !b->batch || !b->queue ||
        sd_mem_is_none(b->logits)) {
        whisper_batcher_destroy(b);
        return sd_fail(err, SD_ENOMEM, "decode batcher buffers (%d rows)", b->max_rows);
    }
    *out = b;
    return SD_OK;
}

void whisper_batcher_destroy(struct whisper_batcher *b)
{
    if (!b)
        return;
    if (b->be) {
        whisper_dec_buffers_free(b->be, &b->buf);
        sd_backend_free(b->be, b->logits);
        sd_backend_destroy(b->be);
    }
    free(b->tokens);
    free(b->groups);
    free(b->steps);
    free(b->batch);
    free(b->queue);
    pthread_cond_destroy(&b->done_cv);
    pthread_mutex_destroy(&b->mu);
    free(b);
}

bool whisper_batcher_join(struct whisper_batcher *b, const struct whisper_state *st,
                          int rows_per_step)
{
    if (!b || !st || st->m != b->m || rows_per_step < 1 ||
        rows_per_step > b->max_rows_per_member)
        return false;
    pthread_mutex_lock(&b->mu);
    bool ok = b->n_members < b->max_members;
    if (ok)
        b->n_members++;
    pthread_mutex_unlock(&b->mu);
    return ok;
}

/*
 * With b->mu held: while every member has queued a step and no batch runs,
 * takes the queue and computes it (the lock is released meanwhile).
 */
static void run_ready_batches(struct whisper_batcher *b)
{
    while (!b->running && b->n_queued > 0 && b->n_queued == b->n_members) {
        int n = b->n_queued, rows = 0;
        memcpy(b->batch, b->queue, (size_t)n * sizeof(*b->batch));
        b->n_queued = 0;
        b->running = true;
        for (int i = 0; i < n; i++) {
            b->batch[i]->row0 = rows;
            rows += b->batch[i]->step.n;
            b->steps[i] = b->batch[i]->step;
        }
        pthread_mutex_unlock(&b->mu);
        whisper_decode_steps(b->m, b->be, &b->buf, b->steps, n, b->tokens, b->groups,
                             b->logits);
        pthread_mutex_lock(&b->mu);
        for (int i = 0; i < n; i++)
            b->batch[i]->done = true;
        b->stats.batches++;
        b->stats.steps += (uint64_t)n;
        b->stats.rows += (uint64_t)rows;
        b->running = false;
        pthread_cond_broadcast(&b->done_cv);
    }
}

void whisper_batcher_leave(struct whisper_batcher *b)
{
    pthread_mutex_lock(&b->mu);
    b->n_members--;
    run_ready_batches(b); /* the others may have been waiting only for this member */
    pthread_mutex_unlock(&b->mu);
}

enum sd_err whisper_batcher_step(struct whisper_batcher *b, struct whisper_state *st, int n,
                                 const int *seqs, const int32_t *tokens, const int *n_past,
                                 float *logits, struct sd_error *err)
{
    struct pending me = {.step = {st, n, seqs, tokens, n_past}};
    if (!b || !logits)
        return sd_fail(err, SD_EINVAL, "whisper_batcher_step: missing argument");
    enum sd_err rc = whisper_step_check(&me.step, err);
    if (rc)
        return rc; /* checked here: a bad step never reaches the others' batch */
    if (st->m != b->m || n > b->max_rows_per_member)
        return sd_fail(err, SD_EINVAL, "whisper_batcher_step: this state did not join");
    pthread_mutex_lock(&b->mu);
    if (b->n_queued >= b->n_members) { /* every member has a step queued: st is not one */
        pthread_mutex_unlock(&b->mu);
        return sd_fail(err, SD_EINVAL, "whisper_batcher_step: this state did not join");
    }
    b->queue[b->n_queued++] = &me;
    run_ready_batches(b);
    while (!me.done)
        pthread_cond_wait(&b->done_cv, &b->mu);
    pthread_mutex_unlock(&b->mu);
    size_t n_vocab = (size_t)b->m->hp.n_vocab;
    sd_copy_out(b->be, logits, sd_mem_f32(b->logits, (size_t)me.row0 * n_vocab),
                (size_t)n * n_vocab * sizeof(float));
    return SD_OK;
}

void whisper_batcher_stats(struct whisper_batcher *b, struct whisper_batcher_stats *out)
{
    pthread_mutex_lock(&b->mu);
    *out = b->stats;
    pthread_mutex_unlock(&b->mu);
}

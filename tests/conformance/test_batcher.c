/*
 * test_batcher.c - several requests' decoding steps run as one (batcher.h):
 * the logits a member gets are bitwise those of decoding alone, a batch
 * waits for exactly the members, whole transcriptions on threads sharing a
 * batcher equal the same transcriptions run one after another without one,
 * and misuse is refused without blocking anyone.
 */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "refdata.h"
#include "whisper/batcher.h"
#include "whisper/model.h"
#include "whisper/tokenizer.h"
#include "whisper/transcribe.h"
#include "whisper/whisper.h"

#define N_MEMBERS 3
#define N_SEQ 3
#define N_STEPS 12

/* One member: its own state, encoded on its own synthetic window. */
struct member {
    struct whisper_state *st;
    struct whisper_batcher *b;
    const struct whisper_hparams *hp;
    int index, n_prompt;
    float *alone, *batched; /* [N_STEPS][N_SEQ][n_vocab] */
    enum sd_err rc;
};

static void member_init(struct member *mb, struct whisper_model *m, int which)
{
    struct sd_error err = {0};
    mb->index = which;
    mb->hp = whisper_model_hparams(m);
    const struct whisper_hparams *h = mb->hp;
    CHECK_OK(whisper_state_create(m, 1, N_SEQ, &mb->st, &err), &err);
    int n_frames = 2 * h->n_audio_ctx;
    float *mel = malloc(sizeof(float) * (size_t)h->n_mels * n_frames);
    for (int i = 0; i < h->n_mels * n_frames; i++)
        mel[i] = 0.4f * sinf(0.013f * (float)i * (float)(which + 1));
    CHECK_OK(whisper_encode(mb->st, mel, n_frames, &err), &err);
    free(mel);
    int32_t prompt[4] = {50257, 50362, 300 + which, 400};
    mb->n_prompt = 4;
    float *lg = malloc(sizeof(float) * (size_t)h->n_vocab);
    CHECK_OK(whisper_decode(mb->st, 0, prompt, 4, 0, lg, &err), &err);
    free(lg);
    for (int s = 1; s < N_SEQ; s++)
        whisper_kv_copy(mb->st, 0, s, 4);
    size_t n = (size_t)N_STEPS * N_SEQ * (size_t)h->n_vocab;
    mb->alone = malloc(n * sizeof(float));
    mb->batched = malloc(n * sizeof(float));
}

static void step_inputs(int member, int step, int seqs[N_SEQ], int32_t toks[N_SEQ],
                        int pos[N_SEQ], int n_prompt)
{
    for (int s = 0; s < N_SEQ; s++) {
        seqs[s] = N_SEQ - 1 - s; /* rows in another order than the sequences */
        toks[s] = 500 + (member * 97 + step * 31 + s * 7) % 2000;
        pos[s] = n_prompt + step;
    }
}

static float *step_logits(float *all, int step, const struct whisper_hparams *h)
{
    return all + (size_t)step * N_SEQ * (size_t)h->n_vocab;
}

static void *member_main(void *arg)
{
    struct member *mb = arg;
    struct sd_error err = {0};
    int seqs[N_SEQ], pos[N_SEQ];
    int32_t toks[N_SEQ];
    for (int step = 0; step < N_STEPS && mb->rc == SD_OK; step++) {
        step_inputs(mb->index, step, seqs, toks, pos, mb->n_prompt);
        mb->rc = whisper_batcher_step(mb->b, mb->st, N_SEQ, seqs, toks, pos,
                                      step_logits(mb->batched, step, mb->hp), &err);
    }
    whisper_batcher_leave(mb->b);
    return NULL;
}

TEST(batcher_logits_bitwise_equal_decoding_alone)
{
    struct ref_engine f;
    if (ref_engine_open(&f, "micro-en.f16.bin", 1))
        return;
    struct sd_error err = {0};
    struct member mb[N_MEMBERS];
    for (int i = 0; i < N_MEMBERS; i++)
        member_init(&mb[i], f.m, i);
    /* alone: each state on its own, steps in order */
    for (int i = 0; i < N_MEMBERS; i++)
        for (int step = 0; step < N_STEPS; step++) {
            int seqs[N_SEQ], pos[N_SEQ];
            int32_t toks[N_SEQ];
            step_inputs(i, step, seqs, toks, pos, mb[i].n_prompt);
            CHECK_OK(whisper_decode_batch(mb[i].st, N_SEQ, seqs, toks, pos,
                                          step_logits(mb[i].alone, step, mb[i].hp), &err),
                     &err);
        }
    /* batched: all members joined before any step, so every batch holds all three */
    struct whisper_batcher *b = NULL;
    CHECK_OK(whisper_batcher_create(f.m, 2, N_MEMBERS, N_SEQ, &b, &err), &err);
    pthread_t th[N_MEMBERS];
    for (int i = 0; i < N_MEMBERS; i++) {
        mb[i].b = b;
        mb[i].rc = SD_OK;
        CHECK(whisper_batcher_join(b, mb[i].st, N_SEQ));
    }
    for (int i = 0; i < N_MEMBERS; i++)
        pthread_create(&th[i], NULL, member_main, &mb[i]);
    for (int i = 0; i < N_MEMBERS; i++)
        pthread_join(th[i], NULL);
    struct whisper_batcher_stats st;
    whisper_batcher_stats(b, &st);
    CHECK_EQ_INT((int)st.batches, N_STEPS);
    CHECK_EQ_INT((int)st.steps, N_STEPS * N_MEMBERS);
    CHECK_EQ_INT((int)st.rows, N_STEPS * N_MEMBERS * N_SEQ);
    size_t n = (size_t)N_STEPS * N_SEQ * (size_t)mb[0].hp->n_vocab;
    for (int i = 0; i < N_MEMBERS; i++) {
        CHECK_EQ_INT(mb[i].rc, SD_OK);
        CHECK_MSG(memcmp(mb[i].alone, mb[i].batched, n * sizeof(float)) == 0,
                  "member %d: batched logits differ from decoding alone", i);
        free(mb[i].alone);
        free(mb[i].batched);
        whisper_state_destroy(mb[i].st);
    }
    whisper_batcher_destroy(b);
    ref_engine_close(&f);
}

TEST(batcher_refuses_misuse_without_blocking)
{
    struct ref_engine f;
    if (ref_engine_open(&f, "micro-en.f16.bin", 4))
        return;
    struct sd_error err = {0};
    struct whisper_batcher *b = NULL;
    CHECK(whisper_batcher_create(f.m, 1, 0, 3, &b, &err) == SD_EINVAL);
    CHECK_OK(whisper_batcher_create(f.m, 1, 1, 3, &b, &err), &err);
    struct member mb;
    member_init(&mb, f.m, 0);
    float *lg = malloc(sizeof(float) * N_SEQ * (size_t)mb.hp->n_vocab);
    int seqs[N_SEQ] = {0, 1, 2}, pos[N_SEQ] = {4, 4, 4};
    int32_t toks[N_SEQ] = {600, 601, 602};
    /* steps of more rows than a member may have decode alone */
    CHECK(!whisper_batcher_join(b, f.st, 4));
    CHECK(!whisper_batcher_join(b, f.st, 0));
    /* not a member: refused, not queued */
    CHECK(whisper_batcher_step(b, mb.st, N_SEQ, seqs, toks, pos, lg, &err) == SD_EINVAL);
    CHECK(whisper_batcher_join(b, mb.st, N_SEQ));
    CHECK(!whisper_batcher_join(b, mb.st, 1)); /* the one place is taken */
    /* a bad token fails this member's step alone, before it reaches a batch */
    int32_t bad[N_SEQ] = {600, -1, 602};
    CHECK(whisper_batcher_step(b, mb.st, N_SEQ, seqs, bad, pos, lg, &err) == SD_EINVAL);
    CHECK_OK(whisper_batcher_step(b, mb.st, N_SEQ, seqs, toks, pos, lg, &err), &err);
    whisper_batcher_leave(b);
    struct whisper_batcher_stats st;
    whisper_batcher_stats(b, &st);
    CHECK_EQ_INT((int)st.batches, 1);
    free(lg);
    free(mb.alone);
    free(mb.batched);
    whisper_state_destroy(mb.st);
    whisper_batcher_destroy(b);
    ref_engine_close(&f);
}

/* ---- whole transcriptions on threads sharing a batcher --------------------------- */

static const char *const CLIPS[] = {"a_short", "b_sentence", "c_passage"};
#define N_CLIPS 3

struct job {
    struct whisper_state *st;
    const struct tokenizer *tok;
    const float *pcm;
    size_t n;
    struct transcribe_params p;
    struct transcript *t;
    enum sd_err rc;
};

static void *job_main(void *arg)
{
    struct job *j = arg;
    struct sd_error err = {0};
    j->rc = transcribe_pcm(j->st, j->tok, j->pcm, j->n, &j->p, &j->t, &err);
    return NULL;
}

static void check_same_transcript(const struct transcript *a, const struct transcript *b,
                                  const char *clip)
{
    CHECK_STR(a->text, b->text);
    CHECK_EQ_INT(a->n_segments, b->n_segments);
    for (int i = 0; i < a->n_segments && i < b->n_segments; i++) {
        const struct transcript_segment *x = &a->segments[i], *y = &b->segments[i];
        CHECK_MSG(x->n_tokens == y->n_tokens && x->start == y->start && x->end == y->end &&
                      memcmp(x->tokens, y->tokens, sizeof(int32_t) * (size_t)x->n_tokens) == 0 &&
                      x->avg_logprob == y->avg_logprob,
                  "%s segment %d differs with the batcher", clip, i);
    }
}

/* Every clip transcribed alone, then all at once on threads sharing a batcher. */
static void check_transcripts_with_batcher(struct ref_engine *f, struct transcribe_params p,
                                           int rows_per_member)
{
    struct sd_error err = {0};
    int n_seq = transcribe_n_seq(&p);
    struct job jobs[N_CLIPS];
    float *pcm[N_CLIPS];
    for (int c = 0; c < N_CLIPS; c++) {
        char rel[64], path[512];
        snprintf(rel, sizeof(rel), "%s.wav", CLIPS[c]);
        pcm[c] = ref_read_wav(ref_path(path, sizeof(path), rel), &jobs[c].n);
        if (!pcm[c])
            return;
        jobs[c].pcm = pcm[c];
        jobs[c].tok = f->tok;
        jobs[c].p = p;
        CHECK_OK(whisper_state_create(f->m, 1, n_seq, &jobs[c].st, &err), &err);
    }
    struct transcript *alone[N_CLIPS];
    for (int c = 0; c < N_CLIPS; c++)
        CHECK_OK(transcribe_pcm(jobs[c].st, f->tok, pcm[c], jobs[c].n, &p, &alone[c], &err),
                 &err);
    struct whisper_batcher *b = NULL;
    CHECK_OK(whisper_batcher_create(f->m, 2, N_CLIPS, rows_per_member, &b, &err), &err);
    pthread_t th[N_CLIPS];
    for (int c = 0; c < N_CLIPS; c++) {
        jobs[c].p.batcher = b;
        pthread_create(&th[c], NULL, job_main, &jobs[c]);
    }
    for (int c = 0; c < N_CLIPS; c++)
        pthread_join(th[c], NULL);
    struct whisper_batcher_stats st;
    whisper_batcher_stats(b, &st);
    CHECK(st.batches > 0 && st.steps >= st.batches); /* how many shared a pass is timing */
    for (int c = 0; c < N_CLIPS; c++) {
        CHECK_EQ_INT(jobs[c].rc, SD_OK);
        if (jobs[c].t)
            check_same_transcript(alone[c], jobs[c].t, CLIPS[c]);
        transcript_destroy(jobs[c].t);
        transcript_destroy(alone[c]);
        whisper_state_destroy(jobs[c].st);
        free(pcm[c]);
    }
    whisper_batcher_destroy(b);
}

TEST(batcher_transcripts_equal_one_after_another)
{
    struct ref_engine f;
    if (ref_engine_open(&f, "micro-en.f16.bin", 1))
        return;
    /* beam 5 with fallback: beams, greedy companion and best_of samples all batched */
    struct transcribe_params p = transcribe_params_default();
    check_transcripts_with_batcher(&f, p, transcribe_n_seq(&p));
    /* greedy, the service's setting (realtime): only the 1-row steps are batched */
    p.beam_size = 1;
    check_transcripts_with_batcher(&f, p, 2);
    ref_engine_close(&f);
}

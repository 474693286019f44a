/*
 * whisper.h - the encoder/decoder forward passes, on a per-worker state.
 *
 * struct whisper_state holds everything mutable for one transcription at a
 * time: the encoder output, the cross-attention K/V computed once per window,
 * a self-attention KV cache for up to n_seq sequences (beams), and scratch
 * buffers sized at creation so the decode loop never allocates. One state is
 * used by one thread at a time; the model it borrows must outlive it.
 * Attention is exact: softmax over exactly n_audio_ctx keys.
 */
#ifndef SD_WHISPER_WHISPER_H
#define SD_WHISPER_WHISPER_H

#include <stdint.h>

#include "util/err.h"
#include "whisper/model.h"

struct sd_backend;

struct whisper_state;

/* n_threads: compute threads for this state; n_seq: decoder sequences (beams) it can hold. */
enum sd_err whisper_state_create(const struct whisper_model *m, int n_threads, int n_seq,
                                 struct whisper_state **out, struct sd_error *err);
void whisper_state_destroy(struct whisper_state *s);
/*
 * Resizes the self-attention caches to hold n_seq sequences (1..64), so a
 * request with more beams than the state was made for is served, and the
 * memory is given back after it. The caches' contents are lost: call it
 * between transcriptions, never inside one. On failure the state is unchanged.
 */
enum sd_err whisper_state_set_seqs(struct whisper_state *s, int n_seq, struct sd_error *err);
/* Sequences the state holds now. */
int whisper_state_seqs(const struct whisper_state *s);
const struct whisper_model *whisper_state_model(const struct whisper_state *s);
/* The compute backend (kernels, threads) the state runs on; owned by the state. */
struct sd_backend *whisper_state_backend(struct whisper_state *s);

/*
 * Runs the encoder on one window of log-mel, `mel` = [n_mels][n_frames]
 * row-major with n_frames = 2 * n_audio_ctx (3000), then computes the
 * cross-attention K/V of every decoder layer. Resets all KV caches.
 */
enum sd_err whisper_encode(struct whisper_state *s, const float *mel, int n_frames,
                           struct sd_error *err);
/* Copies the encoder output of the last whisper_encode, [n_audio_ctx][n_audio_state], to out. */
void whisper_encoder_output(struct whisper_state *s, float *out);

/*
 * Feeds n_tokens tokens of sequence `seq` at positions n_past .. n_past+n_tokens-1
 * (its KV cache must hold n_past positions) and writes the raw logits of the
 * LAST position to logits[n_vocab].
 */
enum sd_err whisper_decode(struct whisper_state *s, int seq, const int32_t *tokens, int n_tokens,
                           int n_past, float *logits, struct sd_error *err);

/*
 * One step for n sequences at once (beam search): sequence seqs[i] gets
 * tokens[i] at position n_past[i]; logits[i * n_vocab ...] receives its row.
 * One pass over the weights for all n.
 */
enum sd_err whisper_decode_batch(struct whisper_state *s, int n, const int *seqs,
                                 const int32_t *tokens, const int *n_past, float *logits,
                                 struct sd_error *err);

/*
 * For word-level timestamps: decodes tokens[0..n_tokens) of sequence seq from
 * position 0 and writes, for each (layer, head) pair in layer_head[2 * n_heads],
 * the cross-attention logits q.k / sqrt(d_head) of every token over the first
 * n_frames audio frames: qk[n_heads][n_tokens][n_frames]. Overwrites seq's
 * KV cache. Needs a prior whisper_encode.
 */
enum sd_err whisper_decode_cross_attention(struct whisper_state *s, int seq,
                                           const int32_t *tokens, int n_tokens,
                                           const int *layer_head, int n_heads, int n_frames,
                                           float *qk, struct sd_error *err);

/* Copies the first n_pos self-attention cache positions of src_seq into dst_seq. */
void whisper_kv_copy(struct whisper_state *s, int src_seq, int dst_seq, int n_pos);

#endif

/*
 * silero.h - internal to src/vad: the loaded Silero network (all weights in
 * f32, laid out for contiguous dot products) and the f16 helpers the loader
 * and the forward pass share. Not part of the public API (see vad.h).
 */
#ifndef SD_VAD_SILERO_H
#define SD_VAD_SILERO_H

#include <stdint.h>
#include <string.h>

#define SILERO_N_FFT_BINS 129          /* magnitude bins of the STFT */
#define SILERO_STFT_ROWS 258           /* real + imaginary basis rows */
#define SILERO_STFT_LEN 256            /* basis length (samples) */
#define SILERO_STFT_HOP 128
#define SILERO_PAD 64                  /* reflect padding on each side of a window */
#define SILERO_PADDED (512 + 2 * SILERO_PAD)
#define SILERO_N_FRAMES 4              /* (640 - 256) / 128 + 1 */
#define SILERO_N_LAYERS 4
#define SILERO_KERNEL 3
#define SILERO_HIDDEN 128              /* LSTM input and hidden size */

/* The immutable network. Weight rows are contiguous: w[out][in]. */
struct vad_model {
    char version[16];
    float *stft;                         /* [258][256] */
    int enc_in[SILERO_N_LAYERS];         /* input channels */
    int enc_out[SILERO_N_LAYERS];        /* output channels */
    int enc_stride[SILERO_N_LAYERS];
    float *enc_w[SILERO_N_LAYERS];       /* [out][in * 3]: (in, tap) pairs, tap fastest */
    float *enc_b[SILERO_N_LAYERS];       /* [out] */
    float *lstm_w;                       /* [512][256]: W_ih | W_hh per gate row (i, f, g, o) */
    float *lstm_b;                       /* [512]: b_ih + b_hh */
    float *out_w;                        /* [128] final 1x1 conv */
    float out_b;
    float *arena;                        /* one allocation holding every array above */
};

static inline float silero_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t mant = h & 0x3ffu;
    uint32_t bits;
    if (exp == 0) {
        if (mant == 0) {
            bits = sign;
        } else { /* subnormal half: normalise into a float */
            int e = -1;
            do {
                mant <<= 1;
                e++;
            } while ((mant & 0x400u) == 0);
            bits = sign | ((uint32_t)(127 - 15 - e) << 23) | ((mant & 0x3ffu) << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (mant << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
    }
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

#endif

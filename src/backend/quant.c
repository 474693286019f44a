/*
 * quant.c - portable reference code for ggml's block-quantized weight
 * formats (q4_0, q4_1, q5_0, q5_1, q8_0; 32 values per block, an f16 scale
 * d, for the _1 types an f16 offset m, 4- or 5-bit or 8-bit codes): turning a
 * row of blocks into floats and floats into blocks. The model loader, the
 * quantizer (`scribed quantize`) and the scalar kernels use it; the AVX2
 * kernels decode the same layouts in registers (cpu/kern_avx2.c).
 * Layouts were learnt from ggml's public documentation of the block structs;
 * the code is ours. Not thread-aware: pure functions of their arguments.
 */
#include "backend/tensor.h"

#include <math.h>
#include <string.h>

#define QK 32

static float half_at(const uint8_t *p)
{
    uint16_t h;
    memcpy(&h, p, 2);
    return sd_f16_to_f32(h);
}

static void put_half(uint8_t *p, float v)
{
    uint16_t h = sd_f32_to_f16(v);
    memcpy(p, &h, 2);
}

/* One block of 32 values: blk -> out[32]. */
static void dequant_block(enum sd_type t, const uint8_t *blk, float *out)
{
    float d = half_at(blk);
    switch (t) {
    case SD_TYPE_Q8_0:
        for (int j = 0; j < QK; j++)
            out[j] = d * (float)(int8_t)blk[2 + j];
        break;
    case SD_TYPE_Q4_0:
        for (int j = 0; j < QK / 2; j++) {
            out[j] = d * (float)((blk[2 + j] & 0x0f) - 8);
            out[j + 16] = d * (float)((blk[2 + j] >> 4) - 8);
        }
        break;
    case SD_TYPE_Q4_1: {
        float m = half_at(blk + 2);
        for (int j = 0; j < QK / 2; j++) {
            out[j] = d * (float)(blk[4 + j] & 0x0f) + m;
            out[j + 16] = d * (float)(blk[4 + j] >> 4) + m;
        }
        break;
    }
    case SD_TYPE_Q5_0:
    case SD_TYPE_Q5_1: {
        int one = t == SD_TYPE_Q5_1;
        float m = one ? half_at(blk + 2) : 0.0f;
        uint32_t qh;
        memcpy(&qh, blk + 2 + 2 * one, 4);
        const uint8_t *qs = blk + 6 + 2 * one;
        int off = one ? 0 : 16;
        for (int j = 0; j < QK / 2; j++) {
            int lo = (qs[j] & 0x0f) | (int)(((qh >> j) & 1u) << 4);
            int hi = (qs[j] >> 4) | (int)(((qh >> (j + 16)) & 1u) << 4);
            out[j] = d * (float)(lo - off) + m;
            out[j + 16] = d * (float)(hi - off) + m;
        }
        break;
    }
    default:
        memset(out, 0, QK * sizeof(float));
    }
}

void sd_dequantize(enum sd_type t, const void *src, float *dst, int64_t n)
{
    const struct sd_type_traits *tt = sd_type_traits(t);
    const uint8_t *s = src;
    if (t == SD_TYPE_F32) {
        memcpy(dst, src, (size_t)n * sizeof(float));
        return;
    }
    if (t == SD_TYPE_F16) {
        for (int64_t i = 0; i < n; i++)
            dst[i] = half_at(s + 2 * i);
        return;
    }
    for (int64_t b = 0; b < n / QK; b++)
        dequant_block(t, s + b * tt->block_bytes, dst + b * QK);
}

/* Symmetric types: the value of largest magnitude maps to code -range (ggml's convention). */
static float signed_absmax(const float *x)
{
    float amax = 0.0f, mx = 0.0f;
    for (int j = 0; j < QK; j++)
        if (fabsf(x[j]) > amax) {
            amax = fabsf(x[j]);
            mx = x[j];
        }
    return mx;
}

static int clampi(int v, int lo, int hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

static void quant_block(enum sd_type t, const float *x, uint8_t *blk)
{
    switch (t) {
    case SD_TYPE_Q8_0: {
        float amax = 0.0f;
        for (int j = 0; j < QK; j++)
            amax = fmaxf(amax, fabsf(x[j]));
        float d = amax / 127.0f, id = d ? 1.0f / d : 0.0f;
        put_half(blk, d);
        for (int j = 0; j < QK; j++)
            blk[2 + j] = (uint8_t)(int8_t)clampi((int)roundf(x[j] * id), -127, 127);
        break;
    }
    case SD_TYPE_Q4_0:
    case SD_TYPE_Q5_0: {
        int five = t == SD_TYPE_Q5_0, half = five ? 16 : 8, top = five ? 31 : 15;
        float d = signed_absmax(x) / (float)-half, id = d ? 1.0f / d : 0.0f;
        put_half(blk, d);
        uint8_t *qs = blk + (five ? 6 : 2);
        uint32_t qh = 0;
        for (int j = 0; j < QK / 2; j++) {
            int lo = clampi((int)(x[j] * id + (float)half + 0.5f), 0, top);
            int hi = clampi((int)(x[j + 16] * id + (float)half + 0.5f), 0, top);
            qs[j] = (uint8_t)((lo & 0x0f) | ((hi & 0x0f) << 4));
            qh |= (uint32_t)((lo >> 4) & 1) << j;
            qh |= (uint32_t)((hi >> 4) & 1) << (j + 16);
        }
        if (five)
            memcpy(blk + 2, &qh, 4);
        break;
    }
    case SD_TYPE_Q4_1:
    case SD_TYPE_Q5_1: {
        int five = t == SD_TYPE_Q5_1, top = five ? 31 : 15;
        float lo_v = x[0], hi_v = x[0];
        for (int j = 1; j < QK; j++) {
            lo_v = fminf(lo_v, x[j]);
            hi_v = fmaxf(hi_v, x[j]);
        }
        float d = (hi_v - lo_v) / (float)top, id = d ? 1.0f / d : 0.0f;
        put_half(blk, d);
        put_half(blk + 2, lo_v);
        uint8_t *qs = blk + (five ? 8 : 4);
        uint32_t qh = 0;
        for (int j = 0; j < QK / 2; j++) {
            int lo = clampi((int)((x[j] - lo_v) * id + 0.5f), 0, top);
            int hi = clampi((int)((x[j + 16] - lo_v) * id + 0.5f), 0, top);
            qs[j] = (uint8_t)((lo & 0x0f) | ((hi & 0x0f) << 4));
            qh |= (uint32_t)((lo >> 4) & 1) << j;
            qh |= (uint32_t)((hi >> 4) & 1) << (j + 16);
        }
        if (five)
            memcpy(blk + 4, &qh, 4);
        break;
    }
    default:
        break;
    }
}

size_t sd_quantize(enum sd_type t, const float *src, void *dst, int64_t n)
{
    const struct sd_type_traits *tt = sd_type_traits(t);
    uint8_t *d = dst;
    if (!tt || n < 0 || n % tt->block_size)
        return 0;
    if (t == SD_TYPE_F32) {
        memcpy(dst, src, (size_t)n * sizeof(float));
    } else if (t == SD_TYPE_F16) {
        for (int64_t i = 0; i < n; i++)
            put_half(d + 2 * i, src[i]);
    } else {
        for (int64_t b = 0; b < n / QK; b++)
            quant_block(t, src + b * QK, d + b * tt->block_bytes);
    }
    return sd_type_bytes(t, n);
}

int sd_type_is_quantized(enum sd_type t)
{
    return t != SD_TYPE_F32 && t != SD_TYPE_F16;
}

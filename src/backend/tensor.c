/*
 * tensor.c - the element-type table shared by the model loader and the
 * kernels, and portable half-precision conversions. The table already lists
 * ggml's quantized block formats so the loader can size and name them; the
 * block codecs live in quant.c.
 */
#include "backend/tensor.h"

#include <string.h>

static const struct sd_type_traits TYPE_TABLE[] = {
    [SD_TYPE_F32] = {"f32", 1, 4, 1},
    [SD_TYPE_F16] = {"f16", 1, 2, 1},
    [SD_TYPE_Q4_0] = {"q4_0", 32, 18, 1},
    [SD_TYPE_Q4_1] = {"q4_1", 32, 20, 1},
    [SD_TYPE_Q5_0] = {"q5_0", 32, 22, 1},
    [SD_TYPE_Q5_1] = {"q5_1", 32, 24, 1},
    [SD_TYPE_Q8_0] = {"q8_0", 32, 34, 1},
};

const struct sd_type_traits *sd_type_traits(int type)
{
    if (type < 0 || type >= (int)(sizeof(TYPE_TABLE) / sizeof(TYPE_TABLE[0])))
        return NULL;
    if (!TYPE_TABLE[type].name)
        return NULL;
    return &TYPE_TABLE[type];
}

size_t sd_type_bytes(int type, int64_t n)
{
    const struct sd_type_traits *t = sd_type_traits(type);
    if (!t || n < 0)
        return 0;
    return (size_t)(n / t->block_size) * (size_t)t->block_bytes;
}

float sd_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t e = (h >> 10) & 0x1fu, m = h & 0x3ffu, x;
    if (e == 0) {
        if (m == 0) {
            x = sign;
        } else { /* subnormal: normalise */
            e = 113;
            while (!(m & 0x400u)) {
                m <<= 1;
                e--;
            }
            x = sign | (e << 23) | ((m & 0x3ffu) << 13);
        }
    } else if (e == 31) {
        x = sign | 0x7f800000u | (m << 13);
    } else {
        x = sign | ((e + 112) << 23) | (m << 13);
    }
    float f;
    memcpy(&f, &x, 4);
    return f;
}

uint16_t sd_f32_to_f16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000u;
    uint32_t ax = x & 0x7fffffffu;
    if (ax >= 0x7f800000u) /* inf or nan */
        return (uint16_t)(sign | 0x7c00u | (ax > 0x7f800000u ? 0x200u : 0));
    if (ax >= 0x477ff000u) /* rounds to >= 65520: overflow to inf */
        return (uint16_t)(sign | 0x7c00u);
    if (ax < 0x38800000u) { /* subnormal half (or zero) */
        if (ax < 0x33000000u)
            return (uint16_t)sign;
        uint32_t e = ax >> 23, m = (ax & 0x7fffffu) | 0x800000u;
        uint32_t shift = 126 - e; /* 14..24 */
        uint32_t hm = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (hm & 1)))
            hm++;
        return (uint16_t)(sign | hm);
    }
    uint32_t hm = ((ax >> 13) - (112u << 10));
    uint32_t rem = ax & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (hm & 1)))
        hm++;
    return (uint16_t)(sign | hm);
}

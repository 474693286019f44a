/*
 * rng.h - a small seedable random generator (xoshiro256** seeded through
 * splitmix64) for sampling at temperature > 0, so a fixed seed gives the same
 * transcript every run. State is a plain struct owned by the caller.
 */
#ifndef SD_UTIL_RNG_H
#define SD_UTIL_RNG_H

#include <stdint.h>

struct sd_rng {
    uint64_t s[4];
};

void sd_rng_seed(struct sd_rng *r, uint64_t seed);
uint64_t sd_rng_next(struct sd_rng *r);
/* Uniform double in [0, 1). */
double sd_rng_uniform(struct sd_rng *r);

#endif

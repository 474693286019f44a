/*
 * cuda.h - the CUDA backend (src/backend/cuda/, built only with make CUDA=1).
 * NEVER RUN: no GPU machine was available to this change. The code is a
 * first version for CUDA 13 / cuBLAS 13; it compiles and links (nvcc 13.0
 * on the build machine, which has no GPU) and is to be tested by
 * tests/gpu/run.sh on the GPU machine.
 */
#ifndef SD_BACKEND_CUDA_CUDA_H
#define SD_BACKEND_CUDA_CUDA_H

#ifdef __cplusplus
extern "C" { /* cuda.cu is C++: the C headers' functions keep C linkage */
#endif

#include "backend/ops.h"

extern const struct sd_backend_ops sd_cuda_ops;

/* 1 when the CUDA runtime finds at least one device. */
int sd_cuda_present(void);

#ifdef __cplusplus
}
#endif

#endif

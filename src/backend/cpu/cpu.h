/*
 * cpu.h - the CPU backend's entry points (src/backend/cpu/): its table for
 * sd_backend_find, a direct constructor, and sd_cpu_mem for code that runs
 * the CPU kernels on its own host arrays (the backend's unit tests, the
 * checking backend). The engine uses ops.h only.
 */
#ifndef SD_BACKEND_CPU_CPU_H
#define SD_BACKEND_CPU_CPU_H

#include "backend/ops.h"

extern const struct sd_backend_ops sd_cpu_ops;

/* sd_backend_open(&sd_cpu_ops, ...): n_threads 1..256, flags SD_BACKEND_*. */
enum sd_err sd_cpu_backend_create(int n_threads, unsigned flags, struct sd_backend **out,
                                  struct sd_error *err);

/*
 * A place naming host memory directly, valid only with the CPU backend's ops
 * (never free it): lets a test hand its own arrays to the kernels.
 */
struct sd_mem sd_cpu_mem(const void *host);

#endif

/*
 * device.c - the devices this binary has, looked up by name at run time
 * (ops.h: sd_backend_find), and the weight view of an uploaded tensor.
 * One table lists the devices: adding one (CUDA=1 builds) is one line there.
 */
#include <stdlib.h>
#include <string.h>

#include "backend/check/check.h"
#include "backend/cpu/cpu.h"
#ifdef SD_HAVE_CUDA
#include "backend/cuda/cuda.h"
#endif
#include "backend/ops.h"

struct device {
    const char *name;
    const struct sd_backend_ops *ops;
    int (*present)(void); /* NULL: always usable (the CPU) */
};

/* In order of preference for "auto". */
static const struct device DEVICES[] = {
#ifdef SD_HAVE_CUDA
    {"cuda", &sd_cuda_ops, sd_cuda_present},
#endif
    {"cpu", &sd_cpu_ops, NULL},
};

/* SCRIBED_BACKEND_CHECK=1: the CPU's memory is kept out of the engine's reach (check.h). */
static const struct sd_backend_ops *checked(const struct sd_backend_ops *ops)
{
    const char *env = getenv("SCRIBED_BACKEND_CHECK");
    if (ops == &sd_cpu_ops && env && *env && strcmp(env, "0") != 0)
        return &sd_check_ops;
    return ops;
}

enum sd_err sd_backend_find(const char *name, const struct sd_backend_ops **out,
                            struct sd_error *err)
{
    size_t n = sizeof(DEVICES) / sizeof(DEVICES[0]);
    int any = !name || !*name || !strcmp(name, "auto");
    for (size_t i = 0; i < n; i++) {
        const struct device *d = &DEVICES[i];
        if (!any && strcmp(name, d->name) != 0)
            continue;
        if (d->present && !d->present()) {
            if (any)
                continue;
            return sd_fail(err, SD_EUNSUPPORTED, "device %s: no usable GPU found", name);
        }
        *out = checked(d->ops);
        return SD_OK;
    }
    if (!strcmp(name, "cuda"))
        return sd_fail(err, SD_EUNSUPPORTED, "device cuda: this scribed was built without CUDA "
                       "(rebuild with make CUDA=1 where nvcc is installed)");
    return sd_fail(err, SD_EINVAL, "unknown device '%s' (expected cpu, cuda or auto)", name);
}

struct sd_weight sd_weight_of(const struct sd_tensor *t)
{
    struct sd_weight w = {t->type, t->mem, t->ne[t->n_dims - 1], 1, 0};
    for (int d = 0; d < t->n_dims - 1; d++)
        w.k *= t->ne[d];
    w.ld = w.k;
    return w;
}

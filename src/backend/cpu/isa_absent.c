/*
 * isa_absent.c - the kernel-table probes of the instruction sets this build
 * does not target: the Makefile compiles kern_*avx*.c only for x86-64 and
 * kern_*neon*.c only for aarch64, so on the other targets these answer "no"
 * (backend.c and the backend's tests ask them everywhere). Stateless.
 */
#include "backend/cpu/kernels.h"

#if !defined(__x86_64__)
int sd_cpu_has_avx2(void)
{
    return 0;
}

int sd_cpu_has_avx512(void)
{
    return 0;
}

int sd_cpu_has_amx(void)
{
    return 0;
}
#endif

#if !defined(__aarch64__)
int sd_cpu_has_neon(void)
{
    return 0;
}

int sd_cpu_has_neon_dotprod(void)
{
    return 0;
}
#endif

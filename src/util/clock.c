/*
 * clock.c - thin wrappers over clock_gettime (see clock.h).
 */
#include "util/clock.h"

static struct timespec now_on(clockid_t clk)
{
    struct timespec ts;
    clock_gettime(clk, &ts);
    return ts;
}

int64_t sd_wall_ms(void)
{
    struct timespec ts = now_on(CLOCK_REALTIME);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t sd_mono_ms(void)
{
    struct timespec ts = now_on(CLOCK_MONOTONIC);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

double sd_mono_s(void)
{
    struct timespec ts = now_on(CLOCK_MONOTONIC);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double sd_cpu_s(void)
{
    struct timespec ts = now_on(CLOCK_PROCESS_CPUTIME_ID);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct timespec sd_deadline_ms(clockid_t clk, int64_t ms)
{
    struct timespec ts = now_on(clk);
    if (ms < 0)
        ms = 0;
    ts.tv_sec += (time_t)(ms / 1000);
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

void sd_cond_init_monotonic(pthread_cond_t *cv)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(cv, &ca);
    pthread_condattr_destroy(&ca);
}

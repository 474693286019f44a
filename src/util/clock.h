/*
 * clock.h - the service's clocks in one place: wall time (CLOCK_REALTIME) for
 * timestamps that people and the store read, monotonic time for durations and
 * deadlines (it never jumps when the system clock is set), process CPU time
 * for benchmarks, and absolute deadlines for pthread_cond_timedwait.
 * Stateless and thread-safe.
 */
#ifndef SD_UTIL_CLOCK_H
#define SD_UTIL_CLOCK_H

#include <pthread.h>
#include <stdint.h>
#include <time.h>

/* Milliseconds since the Unix epoch. */
int64_t sd_wall_ms(void);
/* Monotonic milliseconds / seconds (arbitrary origin: only differences mean anything). */
int64_t sd_mono_ms(void);
double sd_mono_s(void);
/* CPU seconds used by the whole process (every thread). */
double sd_cpu_s(void);
/*
 * The time ms milliseconds from now on clock clk, normalised, as an absolute
 * deadline for pthread_cond_timedwait (clk must be the condition's clock:
 * CLOCK_REALTIME unless pthread_condattr_setclock chose another).
 */
struct timespec sd_deadline_ms(clockid_t clk, int64_t ms);
/*
 * Initialises a condition variable whose timed waits count on CLOCK_MONOTONIC,
 * so a wait is not cut short or stretched when the system clock is set.
 */
void sd_cond_init_monotonic(pthread_cond_t *cv);

#endif

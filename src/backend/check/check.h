/*
 * check.h - the checking backend (SCRIBED_BACKEND_CHECK=1, see ops.h): the
 * CPU backend's arithmetic on "device" memory the engine cannot reach.
 * Every buffer and uploaded weight is its own memfd, mapped twice: the
 * mapping a handle leads to is PROT_NONE for its whole life, and the ops
 * compute through a second, private mapping of the same pages with a
 * PROT_NONE guard page on each side. An engine read or write of backend
 * memory (anything but the copy ops) is a SIGSEGV, reported as one line
 * naming the buffer before the process aborts; so is an op running off the
 * end of a buffer. Host memory (sd_cpu_mem, a borrowed mapping) handed to an
 * op, or an offset past a buffer's end, aborts too. The conformance suite,
 * run this way, proves that the engine would work on a device backend whose
 * memory the host cannot address. Costs a mapping per buffer: for tests.
 */
#ifndef SD_BACKEND_CHECK_CHECK_H
#define SD_BACKEND_CHECK_CHECK_H

#include "backend/ops.h"

extern const struct sd_backend_ops sd_check_ops;

#endif

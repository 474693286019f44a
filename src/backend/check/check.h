/*
 * check.h - the checking backend (SCRIBED_BACKEND_CHECK=1, see ops.h): the
 * CPU backend's arithmetic with "device" memory the engine cannot reach.
 * Every buffer and uploaded weight lives in its own pages, PROT_NONE except
 * while an op that names it runs; copies go through the copy ops. An engine
 * read or write of backend memory outside them is a SIGSEGV, reported as one
 * line naming the buffer before the process aborts. A host place (sd_cpu_mem,
 * a borrowed mapping) handed to an op aborts too. So the conformance suite,
 * run this way, proves that the engine would work on a device backend
 * whose memory the host cannot address. Slower (two mprotect calls per
 * buffer per op): for tests, never for service.
 */
#ifndef SD_BACKEND_CHECK_CHECK_H
#define SD_BACKEND_CHECK_CHECK_H

#include "backend/ops.h"

extern const struct sd_backend_ops sd_check_ops;

#endif

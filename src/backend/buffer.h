/*
 * buffer.h - private to src/backend/: what a struct sd_buffer is for the
 * host-memory backends (the CPU and the checking backend). A device backend
 * defines its own. The engine never sees this header.
 */
#ifndef SD_BACKEND_BUFFER_H
#define SD_BACKEND_BUFFER_H

#include <stddef.h>
#include <stdint.h>

#include "backend/mem.h"

enum sd_buffer_kind {
    SD_BUF_OWNED,    /* aligned_alloc'd by the CPU backend */
    SD_BUF_BORROWED, /* uploaded weights the CPU keeps reading in place (the model mapping) */
    SD_BUF_HOST,     /* sd_cpu_mem: any host address (the CPU's unit tests); offset = address */
    SD_BUF_GUARDED,  /* the checking backend's: own pages, PROT_NONE outside its ops */
};

struct sd_buffer {
    void *ptr;            /* host address of byte 0 (NULL for SD_BUF_HOST) */
    size_t size;          /* bytes the caller asked for */
    size_t map_bytes;     /* SD_BUF_GUARDED: the page-rounded mapping */
    enum sd_buffer_kind kind;
    int refs;             /* SD_BUF_GUARDED: ops using it now (reachable while > 0) */
};

/* Host address of m (host-memory backends only); NULL for a none place. */
static inline void *sd_buffer_host(struct sd_mem m)
{
    if (!m.buf)
        return NULL;
    return (void *)((uintptr_t)m.buf->ptr + m.off);
}

#endif

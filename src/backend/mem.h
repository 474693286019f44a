/*
 * mem.h - how the engine names backend memory: struct sd_mem, an opaque
 * buffer plus a byte offset. The engine moves offsets (views) but never
 * dereferences one: the data lives wherever the backend put it (host memory
 * for the CPU, GPU memory for a device backend, unreachable pages for the
 * checking backend) and crosses only through the copy ops of ops.h.
 * Plain values: no ownership (the buffer belongs to whoever allocated it).
 */
#ifndef SD_BACKEND_MEM_H
#define SD_BACKEND_MEM_H

#include <stddef.h>
#include <stdint.h>

struct sd_buffer; /* backend memory; defined by the backends (backend/buffer.h) */

/* A place in backend memory: buffer + byte offset. buf == NULL: none (e.g. no bias). */
struct sd_mem {
    struct sd_buffer *buf;
    size_t off;
};

#define SD_MEM_NONE ((struct sd_mem){NULL, 0})

/* Views: the place i floats (f32) or halves (f16) further on. */
static inline struct sd_mem sd_mem_f32(struct sd_mem m, size_t i)
{
    m.off += i * sizeof(float);
    return m;
}

static inline struct sd_mem sd_mem_f16(struct sd_mem m, size_t i)
{
    m.off += i * sizeof(uint16_t);
    return m;
}

static inline int sd_mem_is_none(struct sd_mem m)
{
    return m.buf == NULL;
}

#endif

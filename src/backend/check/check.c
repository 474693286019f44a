/*
 * check.c - see check.h. Each op takes the buffers it names (making their
 * pages reachable), runs the CPU backend's op on them, and gives them back
 * (PROT_NONE again once no running op uses them). A buffer's use count and
 * the list of guarded buffers are process-wide, under one mutex: page
 * protection is process-wide, and the batcher's backend runs ops on the
 * buffers of other threads' states.
 */
#include "backend/check/check.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "backend/buffer.h"
#include "backend/cpu/cpu.h"

struct check {
    struct sd_backend base; /* first: the table */
    struct sd_backend *cpu;
};

/* Guarded buffers, for the use counts and for naming a faulting address. */
struct guarded {
    struct sd_buffer buf;
    struct guarded *next, *prev;
    const char *what;
};

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static struct guarded *g_list;
static pthread_once_t g_handler_once = PTHREAD_ONCE_INIT;

/* --------------------------------------------------------- the fault */

static void say(const char *s)
{
    ssize_t r = write(STDERR_FILENO, s, strlen(s));
    (void)r;
}

static void hex(char *out, uintptr_t v)
{
    char tmp[2 + 2 * sizeof(v) + 1];
    int n = 0;
    do {
        tmp[n++] = "0123456789abcdef"[v & 15];
        v >>= 4;
    } while (v);
    out[0] = '0', out[1] = 'x';
    for (int i = 0; i < n; i++)
        out[2 + i] = tmp[n - 1 - i];
    out[2 + n] = 0;
}

/* Async-signal-safe: reads the list without the lock (a diagnosis, then abort). */
static void on_segv(int sig, siginfo_t *si, void *ctx)
{
    (void)ctx;
    uintptr_t a = (uintptr_t)si->si_addr;
    for (struct guarded *g = g_list; g; g = g->next) {
        uintptr_t p = (uintptr_t)g->buf.ptr;
        if (a >= p && a < p + g->buf.map_bytes) {
            char at[24], off[24];
            hex(at, a);
            hex(off, a - p);
            say("backend check: the engine touched backend memory outside the backend's ops "
                "(address ");
            say(at);
            say(", offset ");
            say(off);
            say(" of ");
            say(g->what);
            say("): use sd_copy_in / sd_copy_out / sd_copy\n");
            abort();
        }
    }
    signal(sig, SIG_DFL); /* not ours: the usual crash */
    raise(sig);
}

static void install_handler(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO | SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, NULL);
}

/* ----------------------------------------------------------- buffers */

static struct sd_mem guarded_new(size_t n_bytes, const void *init, const char *what)
{
    pthread_once(&g_handler_once, install_handler);
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t map = (n_bytes + page - 1) / page * page;
    if (map == 0)
        map = page;
    struct guarded *g = calloc(1, sizeof(*g));
    if (!g)
        return (struct sd_mem){0};
    void *p = mmap(NULL, map, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        free(g);
        return (struct sd_mem){0};
    }
    if (init)
        memcpy(p, init, n_bytes);
    mprotect(p, map, PROT_NONE);
    g->buf = (struct sd_buffer){.ptr = p, .size = n_bytes, .map_bytes = map,
                                .kind = SD_BUF_GUARDED};
    g->what = what;
    pthread_mutex_lock(&g_mu);
    g->next = g_list;
    if (g_list)
        g_list->prev = g;
    g_list = g;
    pthread_mutex_unlock(&g_mu);
    return (struct sd_mem){&g->buf, 0};
}

static void guarded_free(struct sd_mem m)
{
    if (!m.buf)
        return;
    struct guarded *g = (struct guarded *)m.buf; /* buf is its first member */
    pthread_mutex_lock(&g_mu);
    if (g->prev)
        g->prev->next = g->next;
    else
        g_list = g->next;
    if (g->next)
        g->next->prev = g->prev;
    pthread_mutex_unlock(&g_mu);
    munmap(g->buf.ptr, g->buf.map_bytes);
    free(g);
}

/* Makes m's buffer reachable for the op about to run; aborts on memory that is not ours. */
static void take(struct sd_mem m, size_t n_bytes)
{
    if (!m.buf)
        return;
    if (m.buf->kind != SD_BUF_GUARDED) {
        say("backend check: an op was given memory that is not the backend's (host memory "
            "or a borrowed mapping)\n");
        abort();
    }
    if (m.off + n_bytes > m.buf->size) {
        fprintf(stderr, "backend check: an op reaches past its buffer (offset %zu + %zu bytes "
                "of %zu)\n", m.off, n_bytes, m.buf->size);
        abort();
    }
    pthread_mutex_lock(&g_mu);
    if (m.buf->refs++ == 0)
        mprotect(m.buf->ptr, m.buf->map_bytes, PROT_READ | PROT_WRITE);
    pthread_mutex_unlock(&g_mu);
}

static void give(struct sd_mem m)
{
    if (!m.buf)
        return;
    pthread_mutex_lock(&g_mu);
    if (--m.buf->refs == 0)
        mprotect(m.buf->ptr, m.buf->map_bytes, PROT_NONE);
    pthread_mutex_unlock(&g_mu);
}

/* ---------------------------------------------------------- the table */

static struct sd_backend *CPU(struct sd_backend *b)
{
    return ((struct check *)b)->cpu;
}

static enum sd_err op_upload(const void *host, size_t n_bytes, struct sd_mem *out,
                             struct sd_error *err)
{
    *out = guarded_new(n_bytes, host, "an uploaded weight");
    if (!out->buf)
        return sd_fail(err, SD_ENOMEM, "out of memory uploading the weights");
    return SD_OK;
}

static enum sd_err op_create(int n_threads, unsigned flags, struct sd_backend **out,
                             struct sd_error *err)
{
    struct check *c = calloc(1, sizeof(*c));
    if (!c)
        return sd_fail(err, SD_ENOMEM, "out of memory creating the compute backend");
    enum sd_err rc = sd_cpu_backend_create(n_threads, flags, &c->cpu, err);
    if (rc) {
        free(c);
        return rc;
    }
    c->base.ops = &sd_check_ops;
    *out = &c->base;
    return SD_OK;
}

static void op_destroy(struct sd_backend *b)
{
    sd_backend_destroy(CPU(b));
    free(b);
}

static int op_n_threads(const struct sd_backend *b)
{
    return sd_backend_n_threads(((const struct check *)b)->cpu);
}

static const char *op_simd(const struct sd_backend *b)
{
    return sd_backend_simd(((const struct check *)b)->cpu);
}

static struct sd_mem op_alloc(struct sd_backend *b, size_t n_bytes)
{
    (void)b;
    return guarded_new(n_bytes, NULL, "a compute buffer");
}

static void op_free(struct sd_backend *b, struct sd_mem m)
{
    (void)b;
    guarded_free(m);
}

static void op_copy_in(struct sd_backend *b, struct sd_mem dst, const void *src, size_t n)
{
    take(dst, n);
    sd_copy_in(CPU(b), dst, src, n);
    give(dst);
}

static void op_copy_out(struct sd_backend *b, void *dst, struct sd_mem src, size_t n)
{
    take(src, n);
    sd_copy_out(CPU(b), dst, src, n);
    give(src);
}

static void op_copy(struct sd_backend *b, struct sd_mem dst, struct sd_mem src, size_t n)
{
    take(dst, n);
    take(src, n);
    sd_copy(CPU(b), dst, src, n);
    give(src);
    give(dst);
}

static enum sd_err op_reserve_attention(struct sd_backend *b, int n_kv_max, int n_state_max,
                                        struct sd_error *err)
{
    return sd_backend_reserve_attention(CPU(b), n_kv_max, n_state_max, err);
}

static void op_matmul_multi(struct sd_backend *b, struct sd_mem x, int m, int64_t ldx, int n,
                            const struct sd_matmul_out *outs)
{
    take(x, 0);
    for (int p = 0; p < n; p++) {
        take(outs[p].w->data, 0);
        take(outs[p].bias, 0);
        take(outs[p].y, 0);
    }
    sd_op_matmul_multi(CPU(b), x, m, ldx, n, outs);
    for (int p = 0; p < n; p++) {
        give(outs[p].w->data);
        give(outs[p].bias);
        give(outs[p].y);
    }
    give(x);
}

static void op_layer_norm(struct sd_backend *b, struct sd_mem x, int m, int n,
                          struct sd_mem gamma, struct sd_mem beta, float eps, struct sd_mem y)
{
    size_t rows = (size_t)m * (size_t)n * sizeof(float);
    take(x, rows), take(gamma, 0), take(beta, 0), take(y, rows);
    sd_op_layer_norm(CPU(b), x, m, n, gamma, beta, eps, y);
    give(x), give(gamma), give(beta), give(y);
}

static void op_gelu(struct sd_backend *b, struct sd_mem x, size_t n)
{
    take(x, n * sizeof(float));
    sd_op_gelu(CPU(b), x, n);
    give(x);
}

static void op_add(struct sd_backend *b, struct sd_mem y, struct sd_mem x, size_t n)
{
    take(y, n * sizeof(float)), take(x, n * sizeof(float));
    sd_op_add(CPU(b), y, x, n);
    give(y), give(x);
}

static void op_softmax(struct sd_backend *b, struct sd_mem x, int m, int n)
{
    take(x, (size_t)m * (size_t)n * sizeof(float));
    sd_op_softmax(CPU(b), x, m, n);
    give(x);
}

static float op_logsumexp(struct sd_backend *b, const float *host_x, int n)
{
    return sd_op_logsumexp(CPU(b), host_x, n); /* host memory by contract */
}

static void op_get_rows(struct sd_backend *b, const struct sd_weight *w, const int32_t *ids,
                        int n, struct sd_mem out)
{
    take(w->data, 0), take(out, (size_t)n * (size_t)w->k * sizeof(float));
    sd_op_get_rows(CPU(b), w, ids, n, out);
    give(w->data), give(out);
}

static void op_attention(struct sd_backend *b, const struct sd_attention *a)
{
    take(a->q, 0), take(a->k, 0), take(a->v, 0), take(a->out, 0);
    sd_op_attention(CPU(b), a);
    give(a->q), give(a->k), give(a->v), give(a->out);
}

static void op_attention_logits(struct sd_backend *b, const struct sd_attention *a, int head,
                                struct sd_mem out, int64_t ldo)
{
    take(a->q, 0), take(a->k, 0), take(out, 0);
    sd_op_attention_logits(CPU(b), a, head, out, ldo);
    give(a->q), give(a->k), give(out);
}

static void op_to_f16_heads(struct sd_backend *b, struct sd_mem src, int n_rows, int n_head,
                            int d, struct sd_mem dst)
{
    size_t n = (size_t)n_rows * (size_t)n_head * (size_t)d;
    take(src, n * sizeof(float)), take(dst, n * sizeof(uint16_t));
    sd_op_to_f16_heads(CPU(b), src, n_rows, n_head, d, dst);
    give(src), give(dst);
}

static void op_to_f16_heads_transposed(struct sd_backend *b, struct sd_mem src, int n_rows,
                                       int n_head, int d, struct sd_mem dst)
{
    size_t n = (size_t)n_rows * (size_t)n_head * (size_t)d;
    take(src, n * sizeof(float)), take(dst, n * sizeof(uint16_t));
    sd_op_to_f16_heads_transposed(CPU(b), src, n_rows, n_head, d, dst);
    give(src), give(dst);
}

static void op_conv1d_k3(struct sd_backend *b, struct sd_mem in, int c_in, int t_in,
                         int channels_first, const struct sd_weight *w, struct sd_mem bias,
                         int stride, struct sd_mem out, struct sd_mem col)
{
    take(in, (size_t)c_in * (size_t)t_in * sizeof(float)), take(w->data, 0), take(bias, 0);
    take(out, 0), take(col, 0);
    sd_op_conv1d_k3(CPU(b), in, c_in, t_in, channels_first, w, bias, stride, out, col);
    give(in), give(w->data), give(bias), give(out), give(col);
}

const struct sd_backend_ops sd_check_ops = {
    .name = "cpu-check",
    .upload = op_upload,
    .release = guarded_free,
    .create = op_create,
    .destroy = op_destroy,
    .n_threads = op_n_threads,
    .simd = op_simd,
    .alloc = op_alloc,
    .free = op_free,
    .copy_in = op_copy_in,
    .copy_out = op_copy_out,
    .copy = op_copy,
    .reserve_attention = op_reserve_attention,
    .matmul_multi = op_matmul_multi,
    .layer_norm = op_layer_norm,
    .gelu = op_gelu,
    .add = op_add,
    .softmax = op_softmax,
    .logsumexp = op_logsumexp,
    .get_rows = op_get_rows,
    .attention = op_attention,
    .attention_logits = op_attention_logits,
    .to_f16_heads = op_to_f16_heads,
    .to_f16_heads_transposed = op_to_f16_heads_transposed,
    .conv1d_k3 = op_conv1d_k3,
};

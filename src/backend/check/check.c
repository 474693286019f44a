/*
 * check.c - see check.h. Each op translates the handles it is given to the
 * backend's private views (checking that they are guarded buffers and, where
 * the extent is simple, in bounds) and runs the CPU backend's op on those.
 * No protection changes per op, so the suite stays fast. The list of guarded
 * buffers (for naming a faulting address) is process-wide under one mutex:
 * buffers are made and freed on any thread.
 */
#include "backend/check/check.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/types.h>
#include <unistd.h>

#include "backend/buffer.h"
#include "backend/cpu/cpu.h"

struct check {
    struct sd_backend base; /* first: the table */
    struct sd_backend *cpu;
};

/*
 * A guarded buffer: one memfd mapped twice. `buf.ptr` (what a handle leads
 * to) is a PROT_NONE mapping, always; the ops compute through `alias`, a
 * read-write mapping of the same pages between two PROT_NONE guard pages.
 */
struct guarded {
    struct sd_buffer buf;   /* first: a handle's buf points here */
    struct sd_buffer alias; /* the backend's private view */
    void *reserved;         /* alias - one page, map_bytes + 2 pages */
    struct guarded *next, *prev;
    const char *what;
};

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static struct guarded *g_list;
static pthread_once_t g_handler_once = PTHREAD_ONCE_INIT;
static size_t g_page;

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

static void report(const char *what_happened, uintptr_t a, uintptr_t base, const char *what)
{
    char at[24], off[24];
    hex(at, a);
    hex(off, a - base);
    say("backend check: ");
    say(what_happened);
    say(" (address ");
    say(at);
    say(", offset ");
    say(off);
    say(" of ");
    say(what);
    say(")\n");
    abort();
}

/* Async-signal-safe: reads the list without the lock (a diagnosis, then abort). */
static void on_segv(int sig, siginfo_t *si, void *ctx)
{
    (void)ctx;
    uintptr_t a = (uintptr_t)si->si_addr;
    for (struct guarded *g = g_list; g; g = g->next) {
        uintptr_t seen = (uintptr_t)g->buf.ptr, alias = (uintptr_t)g->alias.ptr;
        if (a >= seen && a < seen + g->buf.map_bytes)
            report("the engine touched backend memory outside the backend's ops: use "
                   "sd_copy_in / sd_copy_out / sd_copy", a, seen, g->what);
        if (a + g_page >= alias && a < alias + g->buf.map_bytes + g_page)
            report("an op reached past the end of its buffer", a, alias, g->what);
    }
    signal(sig, SIG_DFL); /* not ours: the usual crash */
    raise(sig);
}

static void install_handler(void)
{
    g_page = (size_t)sysconf(_SC_PAGESIZE);
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
    size_t page = g_page, map = (n_bytes + page - 1) / page * page;
    if (map == 0)
        map = page;
    struct guarded *g = calloc(1, sizeof(*g));
    int fd = memfd_create("scribed-check", MFD_CLOEXEC);
    if (!g || fd < 0 || ftruncate(fd, (off_t)map) != 0)
        goto fail;
    void *seen = mmap(NULL, map, PROT_NONE, MAP_SHARED, fd, 0);
    void *res = mmap(NULL, map + 2 * page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    void *alias = res == MAP_FAILED ? MAP_FAILED
                                    : mmap((char *)res + page, map, PROT_READ | PROT_WRITE,
                                           MAP_SHARED | MAP_FIXED, fd, 0);
    close(fd);
    fd = -1;
    if (seen == MAP_FAILED || alias == MAP_FAILED) {
        if (seen != MAP_FAILED)
            munmap(seen, map);
        if (res != MAP_FAILED)
            munmap(res, map + 2 * page);
        goto fail;
    }
    if (init)
        memcpy(alias, init, n_bytes);
    g->buf = (struct sd_buffer){.ptr = seen, .size = n_bytes, .map_bytes = map,
                                .kind = SD_BUF_GUARDED};
    g->alias = (struct sd_buffer){.ptr = alias, .size = n_bytes, .map_bytes = map,
                                  .kind = SD_BUF_OWNED};
    g->reserved = res;
    g->what = what;
    pthread_mutex_lock(&g_mu);
    g->next = g_list;
    if (g_list)
        g_list->prev = g;
    g_list = g;
    pthread_mutex_unlock(&g_mu);
    return (struct sd_mem){&g->buf, 0};
fail:
    if (fd >= 0)
        close(fd);
    free(g);
    return (struct sd_mem){0};
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
    munmap(g->reserved, g->buf.map_bytes + 2 * g_page);
    free(g);
}

/*
 * The backend's view of m, checked: aborts on memory that is not a guarded
 * buffer and on n_bytes past its end (0: the op's extent is not simple).
 */
static struct sd_mem A(struct sd_mem m, size_t n_bytes)
{
    if (!m.buf)
        return m;
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
    return (struct sd_mem){&((struct guarded *)m.buf)->alias, m.off};
}

static struct sd_weight AW(const struct sd_weight *w)
{
    struct sd_weight v = *w;
    v.data = A(w->data, 0);
    return v;
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
    sd_copy_in(CPU(b), A(dst, n), src, n);
}

static void op_copy_out(struct sd_backend *b, void *dst, struct sd_mem src, size_t n)
{
    sd_copy_out(CPU(b), dst, A(src, n), n);
}

static void op_copy(struct sd_backend *b, struct sd_mem dst, struct sd_mem src, size_t n)
{
    sd_copy(CPU(b), A(dst, n), A(src, n), n);
}

static enum sd_err op_reserve_attention(struct sd_backend *b, int n_kv_max, int n_state_max,
                                        struct sd_error *err)
{
    return sd_backend_reserve_attention(CPU(b), n_kv_max, n_state_max, err);
}

static void op_matmul_multi(struct sd_backend *b, struct sd_mem x, int m, int64_t ldx, int n,
                            const struct sd_matmul_out *outs)
{
    enum { CHUNK = 8 };
    struct sd_weight w[CHUNK];
    struct sd_matmul_out o[CHUNK];
    for (int done = 0; done < n; done += CHUNK) {
        int k = n - done < CHUNK ? n - done : CHUNK;
        for (int p = 0; p < k; p++) {
            w[p] = AW(outs[done + p].w);
            o[p] = outs[done + p];
            o[p].w = &w[p];
            o[p].bias = A(o[p].bias, 0);
            o[p].y = A(o[p].y, 0);
        }
        sd_op_matmul_multi(CPU(b), A(x, 0), m, ldx, k, o);
    }
}

static void op_layer_norm(struct sd_backend *b, struct sd_mem x, int m, int n,
                          struct sd_mem gamma, struct sd_mem beta, float eps, struct sd_mem y)
{
    size_t rows = (size_t)m * (size_t)n * sizeof(float), row = (size_t)n * sizeof(float);
    sd_op_layer_norm(CPU(b), A(x, rows), m, n, A(gamma, row), A(beta, row), eps, A(y, rows));
}

static void op_gelu(struct sd_backend *b, struct sd_mem x, size_t n)
{
    sd_op_gelu(CPU(b), A(x, n * sizeof(float)), n);
}

static void op_add(struct sd_backend *b, struct sd_mem y, struct sd_mem x, size_t n)
{
    sd_op_add(CPU(b), A(y, n * sizeof(float)), A(x, n * sizeof(float)), n);
}

static void op_softmax(struct sd_backend *b, struct sd_mem x, int m, int n)
{
    sd_op_softmax(CPU(b), A(x, (size_t)m * (size_t)n * sizeof(float)), m, n);
}

static float op_logsumexp(struct sd_backend *b, const float *host_x, int n)
{
    return sd_op_logsumexp(CPU(b), host_x, n); /* host memory by contract */
}

static void op_get_rows(struct sd_backend *b, const struct sd_weight *w, const int32_t *ids,
                        int n, struct sd_mem out)
{
    struct sd_weight v = AW(w);
    sd_op_get_rows(CPU(b), &v, ids, n, A(out, (size_t)n * (size_t)w->k * sizeof(float)));
}

static struct sd_attention att_alias(const struct sd_attention *a)
{
    struct sd_attention v = *a;
    v.q = A(a->q, 0), v.k = A(a->k, 0), v.v = A(a->v, 0), v.out = A(a->out, 0);
    return v;
}

static void op_attention(struct sd_backend *b, const struct sd_attention *a)
{
    struct sd_attention v = att_alias(a);
    sd_op_attention(CPU(b), &v);
}

static void op_attention_logits(struct sd_backend *b, const struct sd_attention *a, int head,
                                struct sd_mem out, int64_t ldo)
{
    struct sd_attention v = att_alias(a);
    sd_op_attention_logits(CPU(b), &v, head, A(out, 0), ldo);
}

static void op_to_f16_heads(struct sd_backend *b, struct sd_mem src, int n_rows, int n_head,
                            int d, struct sd_mem dst)
{
    size_t n = (size_t)n_rows * (size_t)n_head * (size_t)d;
    sd_op_to_f16_heads(CPU(b), A(src, n * sizeof(float)), n_rows, n_head, d,
                       A(dst, n * sizeof(uint16_t)));
}

static void op_to_f16_heads_transposed(struct sd_backend *b, struct sd_mem src, int n_rows,
                                       int n_head, int d, struct sd_mem dst)
{
    size_t n = (size_t)n_rows * (size_t)n_head * (size_t)d;
    sd_op_to_f16_heads_transposed(CPU(b), A(src, n * sizeof(float)), n_rows, n_head, d,
                                  A(dst, n * sizeof(uint16_t)));
}

static void op_conv1d_k3(struct sd_backend *b, struct sd_mem in, int c_in, int t_in,
                         int channels_first, const struct sd_weight *w, struct sd_mem bias,
                         int stride, struct sd_mem out, struct sd_mem col)
{
    struct sd_weight v = AW(w);
    int t_out = (t_in - 1) / stride + 1;
    sd_op_conv1d_k3(CPU(b), A(in, (size_t)c_in * (size_t)t_in * sizeof(float)), c_in, t_in,
                    channels_first, &v, A(bias, 0), stride,
                    A(out, (size_t)t_out * (size_t)w->n * sizeof(float)),
                    A(col, (size_t)t_out * 3 * (size_t)c_in * sizeof(float)));
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

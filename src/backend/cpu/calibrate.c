/*
 * calibrate.c - the CPU backend's kernel choice by measurement: for each
 * primitive (the f16/f32 matrix-vector product, the quantized one, the GEMM
 * micro-kernel) every kernel table this CPU runs is timed on the caller's
 * weights (one decoder step, as the decoder reads them) and the fastest is
 * kept; the choice is cached in a file keyed by the CPU (model string,
 * family/model/stepping, flags), the thread count, the binary's version and
 * the candidate list, so a later start with the same key skips the timing.
 * Runs on the caller's thread with the backend's pool; the backend must not be
 * in use by anyone else meanwhile. No global state: the cache is a path the
 * caller gives, rewritten whole (temporary file + rename) under one key per line.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

#include "backend/cpu/cpu.h"
#include "backend/cpu/kernels.h"
#include "util/clock.h"

/*
 * A timed pass reads at most this much of the weights: more than a core
 * complex's L3 (32 MiB on Zen 4/5), so it measures streaming from memory as
 * decoding does, and little enough that a candidate costs a few ms.
 */
#define PASS_MAX_BYTES ((size_t)48 << 20)
#define ROUNDS 3       /* timed rounds per candidate (best kept), after one warm-up pass */
#define BATCH_ROWS 5   /* the batched (beam) product timed beside the 1-row one */
#define GEMM_ROWS 384  /* rows of the timed GEMM: enough to amortise packing as the encoder does */
#define MARGIN 0.05     /* how much faster than the default a candidate must be to replace it */
#define DROP_BEHIND 1.3 /* a candidate this much slower than the best after a round stops */
#define CACHE_LINE_MAX 1024

enum prim { P_GEMV, P_GEMV_Q, P_GEMM, P_N };
static const char *const PRIM_NAME[P_N] = {"gemv_f16", "gemv_q", "gemm"};

/* ------------------------------------------------------------ the key */

/* The CPU's model string and family/model/stepping ("unknown" off x86). */
static void cpu_identity(char *out, size_t cap)
{
#if defined(__x86_64__) || defined(__i386__)
    unsigned r[12] = {0}, a, b, c, d;
    char brand[49] = {0};
    if ((unsigned)__get_cpuid_max(0x80000000u, NULL) >= 0x80000004u) {
        for (unsigned i = 0; i < 3; i++)
            __get_cpuid(0x80000002u + i, &r[4 * i], &r[4 * i + 1], &r[4 * i + 2], &r[4 * i + 3]);
        memcpy(brand, r, 48);
    }
    /* trim the padding some CPUs put around the string */
    char *s = brand;
    while (*s == ' ')
        s++;
    for (size_t n = strlen(s); n > 0 && s[n - 1] == ' '; n--)
        s[n - 1] = 0;
    unsigned fam = 0, model = 0, step = 0;
    if (__get_cpuid(1, &a, &b, &c, &d)) {
        unsigned base_fam = (a >> 8) & 0xf, base_model = (a >> 4) & 0xf;
        fam = base_fam == 0xf ? base_fam + ((a >> 20) & 0xff) : base_fam;
        model = base_fam == 0xf || base_fam == 6 ? base_model | ((a >> 12) & 0xf0) : base_model;
        step = a & 0xf;
    }
    snprintf(out, cap, "%s|%u/%u/%u", *s ? s : "unknown", fam, model, step);
#else
    snprintf(out, cap, "unknown|0/0/0");
#endif
}

/* The CPU features the kernel tables depend on. */
#if defined(__x86_64__) || defined(__i386__)
/* F16C from cpuid leaf 1 (ECX bit 29): clang 14's __builtin_cpu_supports has no "f16c". */
static int cpu_has_f16c(void)
{
    unsigned a, b, c, d;
    return __get_cpuid(1, &a, &b, &c, &d) && (c >> 29 & 1u);
}
#endif

static void cpu_flags(char *out, size_t cap)
{
    out[0] = 0;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    static const char *const names[] = {"avx2", "fma", "f16c", "avx512f", "avx512vl",
                                        "avx512bw", "avx512dq", "avx512vnni", "avx512bf16"};
    int have[] = {__builtin_cpu_supports("avx2"),     __builtin_cpu_supports("fma"),
                  cpu_has_f16c(),     __builtin_cpu_supports("avx512f"),
                  __builtin_cpu_supports("avx512vl"), __builtin_cpu_supports("avx512bw"),
                  __builtin_cpu_supports("avx512dq"), __builtin_cpu_supports("avx512vnni"),
                  __builtin_cpu_supports("avx512bf16")};
    size_t used = 0;
    for (size_t i = 0; i < sizeof(have) / sizeof(have[0]) && used < cap; i++)
        if (have[i])
            used += (size_t)snprintf(out + used, cap - used, "%s%s", used ? "," : "", names[i]);
#else
    (void)cap;
#endif
}

void sd_cpu_kernel_key(int n_threads, const char *version, char *out, size_t cap)
{
    char id[128], flags[160], tables[160] = "";
    cpu_identity(id, sizeof(id));
    cpu_flags(flags, sizeof(flags));
    size_t used = 0;
    for (int i = 0; i < sd_n_kernel_tables && used < sizeof(tables); i++)
        if (sd_kernel_tables[i].runs())
            used += (size_t)snprintf(tables + used, sizeof(tables) - used, "%s%s",
                                     used ? "," : "", sd_kernel_tables[i].kr->name);
    snprintf(out, cap, "cpu=%s|flags=%s|threads=%d|version=%s|tables=%s", id, flags, n_threads,
             version && *version ? version : "unknown", tables);
}

/* ------------------------------------------------------------ the cache */

/* The cached choice for key into choice (SD_KERNEL_CHOICE_MAX); 1 if found. */
static int cache_read(const char *path, const char *key, char *choice)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    char line[CACHE_LINE_MAX];
    size_t klen = strlen(key);
    int found = 0;
    while (!found && fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\n")] = 0;
        if (!strncmp(line, key, klen) && line[klen] == '\t' &&
            strlen(line + klen + 1) < SD_KERNEL_CHOICE_MAX) {
            strcpy(choice, line + klen + 1);
            found = 1;
        }
    }
    fclose(f);
    return found;
}

/*
 * Rewrites the cache with key's line replaced (other keys kept: another thread
 * count, another binary sharing the data dir). Best effort: a cache that
 * cannot be written only means the next start measures again.
 */
static void cache_write(const char *path, const char *key, const char *choice)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof(tmp), "%s.%ld.tmp", path, (long)getpid()) >= (int)sizeof(tmp))
        return;
    FILE *out = fopen(tmp, "w");
    if (!out)
        return;
    FILE *in = fopen(path, "r");
    size_t klen = strlen(key);
    char line[CACHE_LINE_MAX];
    while (in && fgets(line, sizeof(line), in))
        if (strchr(line, '\t') && !(!strncmp(line, key, klen) && line[klen] == '\t'))
            fputs(line, out);
    if (in)
        fclose(in);
    fprintf(out, "%s\t%s\n", key, choice);
    if (fclose(out) != 0 || rename(tmp, path) != 0)
        unlink(tmp);
}

/* ------------------------------------------------------------ timing */

struct bench {
    struct sd_backend *b;
    struct sd_mem x, y; /* inputs (random) and outputs, sized for the largest product */
    const struct sd_weight *w[256];
    int n_w;
};

/*
 * One pass: each weight of the group times m rows, in order. Returns the
 * process's CPU ms, not wall: a start-up shares the machine, and a thread
 * preempted meanwhile would make wall time pick at random; CPU time counts
 * only the work (and the pool's short spins, alike for every candidate).
 */
static double time_pass(struct bench *t, int m)
{
    double t0 = sd_cpu_s();
    for (int i = 0; i < t->n_w; i++)
        sd_op_matmul(t->b, t->x, m, t->w[i]->k, t->w[i], SD_MEM_NONE, t->y, t->w[i]->n, 0);
    return (sd_cpu_s() - t0) * 1e3;
}

/* The group of weights one primitive reads: quantized or not, up to PASS_MAX_BYTES. */
static int pick_group(const struct sd_calibration *c, int quantized, struct bench *t)
{
    size_t bytes = 0;
    t->n_w = 0;
    for (int i = 0; i < c->n_w && t->n_w < 256; i++) {
        const struct sd_weight *w = c->w[i];
        size_t wb = sd_type_bytes(w->type, w->ld) * (size_t)w->n;
        if (sd_type_is_quantized(w->type) != quantized || (t->n_w && bytes + wb > PASS_MAX_BYTES))
            continue;
        t->w[t->n_w++] = w;
        bytes += wb;
    }
    return t->n_w;
}

/* The candidates for a primitive: every table the CPU runs but scalar (unless alone). */
static int candidates(enum prim p, const struct sd_kernels *out[])
{
    int n = 0;
    for (int i = 0; i < sd_n_kernel_tables; i++) {
        const struct sd_kernels *kr = sd_kernel_tables[i].kr;
        if (!sd_kernel_tables[i].runs() || kr == &sd_kernels_scalar)
            continue;
        int dup = 0; /* tables sharing the primitive's function are one candidate */
        for (int j = 0; j < n; j++)
            dup |= p == P_GEMM ? out[j]->micro == kr->micro && out[j]->gemm_block == kr->gemm_block
                               : out[j]->gemv == kr->gemv;
        if (!dup)
            out[n++] = kr;
    }
    if (n == 0)
        out[n++] = &sd_kernels_scalar;
    return n;
}

static void set_prim(struct sd_kernel_set *s, enum prim p, const struct sd_kernels *kr)
{
    if (p == P_GEMV)
        s->gemv = kr;
    else if (p == P_GEMV_Q)
        s->gemv_q = kr;
    else
        s->gemm = kr;
}

/* Appends "name ms" lines to the report. */
static void report_add(struct sd_calibration *c, enum prim p, const char *name, double ms)
{
    size_t used = strlen(c->report);
    if (used < sizeof(c->report))
        snprintf(c->report + used, sizeof(c->report) - used, "%s %s %.3f ms\n", PRIM_NAME[p],
                 name, ms);
}

int sd_calibrate_rounds(int n, double (*time_one)(void *ctx, int i), void *ctx, double best[])
{
    for (int i = 0; i < n; i++)
        best[i] = INFINITY;
    double lead = INFINITY;
    for (int r = 0; r < ROUNDS; r++)
        for (int i = 0; i < n; i++) {
            if (r > 0 && i > 0 && best[i] > DROP_BEHIND * lead)
                continue; /* far behind after a round: not worth more start-up time */
            double ms = time_one(ctx, i);
            best[i] = ms < best[i] ? ms : best[i];
            lead = best[i] < lead ? best[i] : lead;
        }
    /* the preferred (first) candidate stays unless another is clearly faster: noise must not flip it */
    int win = 0;
    for (int i = 1; i < n; i++)
        if (best[i] < best[win] * (win == 0 ? 1.0 - MARGIN : 1.0))
            win = i;
    return win;
}

struct timing {
    struct sd_backend *b;
    struct sd_kernel_set *s;
    enum prim p;
    struct bench *t;
    const struct sd_kernels *const *cand;
};

/*
 * One timing of candidate i. The score of a matrix-vector kernel is a pass at
 * 1 row plus one at BATCH_ROWS rows (greedy and beam decoding); of a GEMM
 * kernel, one GEMM_ROWS-row product of the largest weight that fits the pass.
 */
static double time_candidate(void *ctx, int i)
{
    struct timing *tm = ctx;
    set_prim(tm->s, tm->p, tm->cand[i]);
    sd_cpu_set_kernels(tm->b, tm->s);
    return tm->p == P_GEMM ? time_pass(tm->t, GEMM_ROWS)
                           : time_pass(tm->t, 1) + time_pass(tm->t, BATCH_ROWS);
}

/* Times the candidates of one primitive (sd_calibrate_rounds) and sets the fastest in *s. */
static void measure(struct sd_backend *b, struct sd_kernel_set *s, enum prim p, struct bench *t,
                    struct sd_calibration *c)
{
    const struct sd_kernels *cand[16];
    int n = candidates(p, cand);
    for (int i = 0; i < n; i++) {
        set_prim(s, p, cand[i]);
        sd_cpu_set_kernels(b, s);
        time_pass(t, p == P_GEMM ? GEMM_ROWS : 1); /* warm-up: page faults, caches */
    }
    struct timing tm = {b, s, p, t, cand};
    double best[16];
    int win = sd_calibrate_rounds(n, time_candidate, &tm, best);
    for (int i = 0; i < n; i++)
        report_add(c, p, cand[i]->name, best[i]);
    set_prim(s, p, cand[win]);
    sd_cpu_set_kernels(b, s);
}

/* ------------------------------------------------------------ choice text */

static void choice_text(const struct sd_kernel_set *s, char *out)
{
    snprintf(out, SD_KERNEL_CHOICE_MAX, "%s=%s %s=%s %s=%s", PRIM_NAME[P_GEMV], s->gemv->name,
             PRIM_NAME[P_GEMV_Q], s->gemv_q->name, PRIM_NAME[P_GEMM], s->gemm->name);
}

enum sd_err sd_cpu_parse_choice(const char *choice, const struct sd_kernel_set *base,
                                struct sd_kernel_set *out, struct sd_error *err)
{
    *out = *base;
    const char *s = choice;
    while (*s) {
        while (*s == ' ')
            s++;
        if (!*s)
            break;
        size_t len = strcspn(s, " ");
        const char *eq = memchr(s, '=', len);
        if (!eq)
            return sd_fail(err, SD_EINVAL, "kernel choice '%s': '%.*s' is not primitive=table",
                           choice, (int)len, s);
        int p = -1;
        for (int i = 0; i < P_N; i++)
            if ((size_t)(eq - s) == strlen(PRIM_NAME[i]) && !strncmp(s, PRIM_NAME[i], eq - s))
                p = i;
        char name[64];
        snprintf(name, sizeof(name), "%.*s", (int)(s + len - eq - 1), eq + 1);
        const struct sd_kernel_table *tb = sd_kernel_table_named(name);
        if (p < 0 || !tb || !tb->runs())
            return sd_fail(err, SD_EINVAL, "kernel choice '%s': unknown or unusable '%.*s'",
                           choice, (int)len, s);
        set_prim(out, (enum prim)p, tb->kr);
        s += len;
    }
    return SD_OK;
}

enum sd_err sd_cpu_calibrate(struct sd_backend *b, struct sd_calibration *c,
                             struct sd_error *err)
{
    double t0 = sd_mono_s();
    struct sd_kernel_set s;
    sd_cpu_get_kernels(b, &s);
    c->report[0] = 0;
    if (sd_cpu_kernels_forced(b)) { /* SCRIBED_SIMD: one table, no timing */
        choice_text(&s, c->choice);
        c->source = "forced";
        c->ms = 0;
        return SD_OK;
    }
    char key[CACHE_LINE_MAX / 2];
    sd_cpu_kernel_key(sd_backend_n_threads(b), c->version, key, sizeof(key));
    int cache = c->cache_path && *c->cache_path;
    if (cache && !c->force && cache_read(c->cache_path, key, c->choice)) {
        struct sd_kernel_set cached;
        if (sd_cpu_parse_choice(c->choice, &s, &cached, NULL) == SD_OK) {
            sd_cpu_set_kernels(b, &cached);
            c->source = "cache";
            c->ms = (sd_mono_s() - t0) * 1e3;
            return SD_OK;
        }
    }
    /* buffers for the largest product: GEMM_ROWS rows of the widest k, n */
    int64_t max_k = 1, max_n = 1;
    for (int i = 0; i < c->n_w; i++) {
        max_k = c->w[i]->k > max_k ? c->w[i]->k : max_k;
        max_n = c->w[i]->n > max_n ? c->w[i]->n : max_n;
    }
    struct bench t = {.b = b};
    t.x = sd_backend_alloc(b, (size_t)GEMM_ROWS * (size_t)max_k * sizeof(float));
    t.y = sd_backend_alloc(b, (size_t)GEMM_ROWS * (size_t)max_n * sizeof(float));
    float *xh = malloc((size_t)GEMM_ROWS * (size_t)max_k * sizeof(float));
    if (sd_mem_is_none(t.x) || sd_mem_is_none(t.y) || !xh) {
        free(xh);
        sd_backend_free(b, t.x);
        sd_backend_free(b, t.y);
        return sd_fail(err, SD_ENOMEM, "out of memory timing the kernels");
    }
    for (size_t i = 0; i < (size_t)GEMM_ROWS * (size_t)max_k; i++)
        xh[i] = (float)((i * 2654435761u) % 1000) * 1e-3f - 0.5f;
    sd_copy_in(b, t.x, xh, (size_t)GEMM_ROWS * (size_t)max_k * sizeof(float));
    free(xh);
    if (pick_group(c, 0, &t))
        measure(b, &s, P_GEMV, &t, c);
    if (pick_group(c, 1, &t))
        measure(b, &s, P_GEMV_Q, &t, c);
    /* GEMM: the largest weight up to 1 M elements (a layer's, not the vocabulary) */
    if (pick_group(c, 0, &t) || pick_group(c, 1, &t)) {
        const struct sd_weight *big = t.w[0];
        for (int i = 1; i < t.n_w; i++)
            if (t.w[i]->n * t.w[i]->k > big->n * big->k && t.w[i]->n * t.w[i]->k <= (1 << 20))
                big = t.w[i];
        t.w[0] = big;
        t.n_w = 1;
        measure(b, &s, P_GEMM, &t, c);
    }
    sd_backend_free(b, t.x);
    sd_backend_free(b, t.y);
    choice_text(&s, c->choice);
    if (cache)
        cache_write(c->cache_path, key, c->choice);
    c->source = "measured";
    c->ms = (sd_mono_s() - t0) * 1e3;
    return SD_OK;
}

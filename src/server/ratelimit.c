/*
 * ratelimit.c - token buckets, counted slots and the slow-client guard (see
 * ratelimit.h). Buckets live in one open-addressing table per limit, behind
 * one mutex: a lookup is a hash and a probe or two, far below the cost of the
 * request it guards. The guard is one watchdog thread that shuts down the
 * sockets of connections past their deadline; libmicrohttpd's own timeout is
 * an idle timeout, which a client sending one byte a second never reaches.
 * It does not decide who is limited (server/auth.c) nor answer (http.c).
 */
#include "server/ratelimit.h"
#include "util/clock.h"

#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define RL_KEY_MAX 80

/* ---- token buckets ---- */

struct rl_bucket {
    char key[RL_KEY_MAX]; /* "" : free */
    double tokens;
    double t_last;
};

struct rl_buckets {
    pthread_mutex_t mu; /* guards everything below */
    double rate_s;      /* tokens per second */
    double burst;
    struct rl_bucket *tab;
    size_t cap;         /* power of two */
    size_t n;
    size_t max_n;       /* rebuild above this */
};

enum sd_err rl_buckets_create(double per_minute, double burst, int max_keys,
                              struct rl_buckets **out, struct sd_error *err)
{
    struct rl_buckets *b = calloc(1, sizeof(*b));
    size_t cap = 16;
    while (cap < (size_t)(max_keys > 16 ? max_keys : 16) * 2)
        cap *= 2;
    if (b)
        b->tab = calloc(cap, sizeof(*b->tab));
    if (!b || !b->tab) {
        free(b);
        return sd_fail(err, SD_ENOMEM, "rate limit table");
    }
    pthread_mutex_init(&b->mu, NULL);
    b->rate_s = per_minute > 0 ? per_minute / 60.0 : 0;
    b->burst = burst >= 1 ? burst : 1;
    b->cap = cap;
    b->max_n = cap / 2;
    *out = b;
    return SD_OK;
}

void rl_buckets_destroy(struct rl_buckets *b)
{
    if (!b)
        return;
    pthread_mutex_destroy(&b->mu);
    free(b->tab);
    free(b);
}

static uint64_t hash_key(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static struct rl_bucket *probe(struct rl_bucket *tab, size_t cap, const char *key)
{
    size_t i = (size_t)hash_key(key) & (cap - 1);
    while (tab[i].key[0] && strcmp(tab[i].key, key) != 0)
        i = (i + 1) & (cap - 1);
    return &tab[i];
}

static int by_age_desc(const void *a, const void *b)
{
    double ta = ((const struct rl_bucket *)a)->t_last, tb = ((const struct rl_bucket *)b)->t_last;
    return ta < tb ? 1 : ta > tb ? -1 : 0;
}

/*
 * The table is full: keep only buckets still below their burst (a refilled
 * bucket is the same as a new one); if that is still too many, keep the most
 * recently used half. Re-inserts into the same array, so it cannot fail.
 */
static void rebuild(struct rl_buckets *b, double now_s)
{
    size_t keep = 0;
    for (size_t i = 0; i < b->cap; i++) {
        struct rl_bucket *e = &b->tab[i];
        if (!e->key[0])
            continue;
        double t = e->tokens + (now_s - e->t_last) * b->rate_s;
        if (t < b->burst)
            b->tab[keep++] = *e;
    }
    if (keep > b->max_n / 2) {
        qsort(b->tab, keep, sizeof(*b->tab), by_age_desc);
        keep = b->max_n / 2;
    }
    struct rl_bucket *kept = malloc(keep ? keep * sizeof(*kept) : 1);
    if (kept)
        memcpy(kept, b->tab, keep * sizeof(*kept));
    memset(b->tab, 0, b->cap * sizeof(*b->tab));
    b->n = 0;
    for (size_t i = 0; kept && i < keep; i++) {
        *probe(b->tab, b->cap, kept[i].key) = kept[i];
        b->n++;
    }
    free(kept);
}

bool rl_take(struct rl_buckets *b, const char *key, double now_s, int *retry_after_s)
{
    if (!b || b->rate_s <= 0)
        return true;
    char k[RL_KEY_MAX];
    snprintf(k, sizeof(k), "%s", key && *key ? key : "-");
    pthread_mutex_lock(&b->mu);
    struct rl_bucket *e = probe(b->tab, b->cap, k);
    if (!e->key[0]) {
        if (b->n + 1 > b->max_n) {
            rebuild(b, now_s);
            e = probe(b->tab, b->cap, k);
        }
        memcpy(e->key, k, sizeof(k));
        e->tokens = b->burst;
        e->t_last = now_s;
        b->n++;
    }
    double t = e->tokens + (now_s - e->t_last) * b->rate_s;
    e->tokens = t > b->burst ? b->burst : t;
    e->t_last = now_s;
    bool ok = e->tokens >= 1.0;
    if (ok)
        e->tokens -= 1.0;
    else if (retry_after_s)
        *retry_after_s = (int)ceil((1.0 - e->tokens) / b->rate_s);
    pthread_mutex_unlock(&b->mu);
    if (!ok && retry_after_s && *retry_after_s < 1)
        *retry_after_s = 1;
    return ok;
}

int rl_buckets_count(struct rl_buckets *b)
{
    pthread_mutex_lock(&b->mu);
    int n = (int)b->n;
    pthread_mutex_unlock(&b->mu);
    return n;
}

/* ---- counted slots: a short list (one entry per key with requests in flight) ---- */

struct rl_slot {
    char key[RL_KEY_MAX];
    int n;
};

struct rl_slots {
    pthread_mutex_t mu; /* guards the list */
    struct rl_slot *v;
    int n, cap;
};

enum sd_err rl_slots_create(struct rl_slots **out, struct sd_error *err)
{
    struct rl_slots *s = calloc(1, sizeof(*s));
    if (!s)
        return sd_fail(err, SD_ENOMEM, "upload slots");
    pthread_mutex_init(&s->mu, NULL);
    *out = s;
    return SD_OK;
}

void rl_slots_destroy(struct rl_slots *s)
{
    if (!s)
        return;
    pthread_mutex_destroy(&s->mu);
    free(s->v);
    free(s);
}

static int slot_find(struct rl_slots *s, const char *key)
{
    for (int i = 0; i < s->n; i++)
        if (strncmp(s->v[i].key, key, RL_KEY_MAX - 1) == 0)
            return i;
    return -1;
}

bool rl_slot_acquire(struct rl_slots *s, const char *key, int max)
{
    bool ok = false;
    pthread_mutex_lock(&s->mu);
    int i = slot_find(s, key);
    if (i < 0 && s->n == s->cap) {
        int cap = s->cap ? s->cap * 2 : 16;
        struct rl_slot *v = realloc(s->v, (size_t)cap * sizeof(*v));
        if (!v)
            goto out; /* out of memory: refuse rather than go uncounted */
        s->v = v;
        s->cap = cap;
    }
    if (i < 0) {
        i = s->n++;
        snprintf(s->v[i].key, sizeof(s->v[i].key), "%s", key);
        s->v[i].n = 0;
    }
    if (max <= 0 || s->v[i].n < max) {
        s->v[i].n++;
        ok = true;
    } else if (s->v[i].n == 0) {
        s->v[i] = s->v[--s->n];
    }
out:
    pthread_mutex_unlock(&s->mu);
    return ok;
}

void rl_slot_release(struct rl_slots *s, const char *key)
{
    pthread_mutex_lock(&s->mu);
    int i = slot_find(s, key);
    if (i >= 0 && --s->v[i].n <= 0)
        s->v[i] = s->v[--s->n];
    pthread_mutex_unlock(&s->mu);
}

int rl_slots_held(struct rl_slots *s, const char *key)
{
    pthread_mutex_lock(&s->mu);
    int i = slot_find(s, key);
    int n = i >= 0 ? s->v[i].n : 0;
    pthread_mutex_unlock(&s->mu);
    return n;
}

/* ---- slow-client guard ---- */

enum guard_state { G_HEADERS, G_BODY, G_HANDLER, G_UPGRADED };

struct guard_conn {
    int fd;
    enum guard_state state;
    double since;          /* start of the current state */
    uint64_t body_bytes;
    bool kept_alive;       /* waiting for the next request on a reused connection */
    double next_began;     /* when that request's first byte came (0: not yet) */
    bool cut;              /* shut down already */
    struct guard_conn *prev, *next;
};

struct conn_guard {
    struct conn_guard_opts o;
    pthread_mutex_t mu;    /* guards the list, every guard_conn, stop and the counts */
    pthread_cond_t wake;
    pthread_t thread;
    struct guard_conn *head;
    bool stop;
    uint64_t n_slow_headers, n_slow_bodies;
};

static double body_deadline(const struct conn_guard *g, const struct guard_conn *c)
{
    double extra = g->o.body_min_rate > 0 ? (double)c->body_bytes / g->o.body_min_rate : 0;
    return c->since + g->o.body_timeout_s + extra;
}

/* Seconds since data last arrived on a TCP socket; < 0 if the kernel cannot say. */
static double idle_recv_s(int fd)
{
    struct tcp_info ti;
    socklen_t n = sizeof(ti);
    if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &n) != 0 || n < sizeof(ti))
        return -1;
    return ti.tcpi_last_data_recv / 1000.0;
}

/*
 * When the headers being waited for began to arrive. A new connection's clock
 * starts at accept (as nginx's client_header_timeout). On a kept-alive one it
 * starts at the next request's first byte, seen through TCP_INFO: an idle
 * connection is left to libmicrohttpd's idle timeout, longer than a proxy's
 * upstream keep-alive, so the proxy never reuses a connection being closed.
 * Returns < 0 while an idle kept-alive connection has received nothing.
 */
static double headers_began(struct guard_conn *c, double now)
{
    if (!c->kept_alive || c->next_began > 0)
        return c->kept_alive ? c->next_began : c->since;
    double idle = idle_recv_s(c->fd);
    if (idle < 0)
        return c->since; /* not TCP: the strict clock */
    /* the kernel counts in jiffies (4 ms and more): bytes within 0.1 s of the answer
     * may be the previous request's, so the clock starts with the next ones */
    if (now - idle <= c->since + 0.1)
        return -1;
    c->next_began = now - idle;
    return c->next_began;
}

/* Under g->mu. The MHD thread sees the socket end and closes the connection itself. */
static void guard_scan(struct conn_guard *g, double now)
{
    for (struct guard_conn *c = g->head; c; c = c->next) {
        if (c->cut)
            continue;
        double began = c->state == G_HEADERS ? headers_began(c, now) : 0;
        if (c->state == G_HEADERS && began >= 0 && now - began > g->o.header_timeout_s) {
            g->n_slow_headers++;
        } else if (c->state == G_BODY && now > body_deadline(g, c) + 2.0) {
            /* a body that stopped: http.c answers 408 to one that still trickles */
            g->n_slow_bodies++;
        } else {
            continue;
        }
        c->cut = true;
        shutdown(c->fd, SHUT_RDWR);
    }
}

static void *guard_main(void *arg)
{
    struct conn_guard *g = arg;
    pthread_mutex_lock(&g->mu);
    while (!g->stop) {
        struct timespec ts = sd_deadline_ms(CLOCK_REALTIME, (int64_t)(g->o.tick_s * 1000));
        pthread_cond_timedwait(&g->wake, &g->mu, &ts);
        if (!g->stop)
            guard_scan(g, sd_mono_s());
    }
    pthread_mutex_unlock(&g->mu);
    return NULL;
}

enum sd_err conn_guard_start(const struct conn_guard_opts *o, struct conn_guard **out,
                             struct sd_error *err)
{
    struct conn_guard *g = calloc(1, sizeof(*g));
    if (!g)
        return sd_fail(err, SD_ENOMEM, "connection guard");
    g->o = *o;
    if (g->o.tick_s <= 0)
        g->o.tick_s = 0.25;
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->wake, NULL);
    if (pthread_create(&g->thread, NULL, guard_main, g) != 0) {
        pthread_cond_destroy(&g->wake);
        pthread_mutex_destroy(&g->mu);
        free(g);
        return sd_fail(err, SD_ENOMEM, "connection guard thread");
    }
    *out = g;
    return SD_OK;
}

void conn_guard_stop(struct conn_guard *g)
{
    if (!g)
        return;
    pthread_mutex_lock(&g->mu);
    g->stop = true;
    pthread_cond_signal(&g->wake);
    pthread_mutex_unlock(&g->mu);
    pthread_join(g->thread, NULL);
    while (g->head) { /* only if the caller broke the contract; do not leak */
        struct guard_conn *c = g->head;
        g->head = c->next;
        free(c);
    }
    pthread_cond_destroy(&g->wake);
    pthread_mutex_destroy(&g->mu);
    free(g);
}

struct guard_conn *conn_guard_open(struct conn_guard *g, int fd)
{
    struct guard_conn *c = calloc(1, sizeof(*c));
    if (!c || fd < 0) {
        free(c);
        return NULL;
    }
    c->fd = fd;
    c->state = G_HEADERS;
    c->since = sd_mono_s();
    pthread_mutex_lock(&g->mu);
    c->next = g->head;
    if (g->head)
        g->head->prev = c;
    g->head = c;
    pthread_mutex_unlock(&g->mu);
    return c;
}

void conn_guard_close(struct conn_guard *g, struct guard_conn *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&g->mu);
    if (c->prev)
        c->prev->next = c->next;
    else
        g->head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    pthread_mutex_unlock(&g->mu);
    free(c);
}

static void set_state(struct conn_guard *g, struct guard_conn *c, enum guard_state st)
{
    if (!c)
        return;
    pthread_mutex_lock(&g->mu);
    if (c->state != G_UPGRADED) { /* an upgraded connection stays so */
        c->state = st;
        c->since = sd_mono_s();
        c->body_bytes = 0;
        c->kept_alive = st == G_HEADERS;
        c->next_began = 0;
    }
    pthread_mutex_unlock(&g->mu);
}

void conn_guard_headers_done(struct conn_guard *g, struct guard_conn *c)
{
    set_state(g, c, G_BODY);
}

bool conn_guard_body(struct conn_guard *g, struct guard_conn *c, size_t n)
{
    if (!c)
        return true;
    pthread_mutex_lock(&g->mu);
    c->body_bytes += n;
    bool late = c->state == G_BODY && sd_mono_s() > body_deadline(g, c);
    if (late)
        g->n_slow_bodies++;
    pthread_mutex_unlock(&g->mu);
    return !late;
}

void conn_guard_handler(struct conn_guard *g, struct guard_conn *c)
{
    set_state(g, c, G_HANDLER);
}

void conn_guard_request_done(struct conn_guard *g, struct guard_conn *c)
{
    set_state(g, c, G_HEADERS);
}

void conn_guard_upgraded(struct conn_guard *g, struct guard_conn *c)
{
    set_state(g, c, G_UPGRADED);
}

void conn_guard_counts(struct conn_guard *g, uint64_t *slow_headers, uint64_t *slow_bodies)
{
    pthread_mutex_lock(&g->mu);
    *slow_headers = g->n_slow_headers;
    *slow_bodies = g->n_slow_bodies;
    pthread_mutex_unlock(&g->mu);
}

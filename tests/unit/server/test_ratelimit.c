/* Tests of server/ratelimit.c: token buckets, slots, the slow-client guard (socketpairs). */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "server/ratelimit.h"

TEST(ratelimit_bucket_burst_then_rate)
{
    struct sd_error e_ = {0}, *e = &e_;
    struct rl_buckets *b = NULL;
    int retry = 0;
    CHECK_OK(rl_buckets_create(60, 3, 100, &b, e), e); /* 1 per second, 3 at once */
    for (int i = 0; i < 3; i++)
        CHECK(rl_take(b, "k", 100.0, &retry));
    CHECK(!rl_take(b, "k", 100.0, &retry));
    CHECK_EQ_INT(retry, 1);
    CHECK(rl_take(b, "other", 100.0, &retry)); /* keys are independent */
    CHECK(!rl_take(b, "k", 100.5, &retry));
    CHECK(rl_take(b, "k", 101.01, &retry)); /* recovered one token */
    CHECK(!rl_take(b, "k", 101.02, &retry));
    CHECK(rl_take(b, "k", 200.0, &retry)); /* full again after a pause, not more than burst */
    CHECK(rl_take(b, "k", 200.0, &retry));
    CHECK(rl_take(b, "k", 200.0, &retry));
    CHECK(!rl_take(b, "k", 200.0, &retry));
    rl_buckets_destroy(b);
}

TEST(ratelimit_slow_rate_retry_after)
{
    struct sd_error e_ = {0}, *e = &e_;
    struct rl_buckets *b = NULL;
    int retry = 0;
    CHECK_OK(rl_buckets_create(6, 1, 100, &b, e), e); /* one per 10 s */
    CHECK(rl_take(b, "k", 0.0, &retry));
    CHECK(!rl_take(b, "k", 1.0, &retry));
    CHECK_EQ_INT(retry, 9);
    rl_buckets_destroy(b);
    CHECK_OK(rl_buckets_create(0, 1, 100, &b, e), e); /* 0: unlimited */
    for (int i = 0; i < 1000; i++)
        CHECK(rl_take(b, "k", 0.0, &retry));
    rl_buckets_destroy(b);
}

TEST(ratelimit_table_stays_bounded)
{
    struct sd_error e_ = {0}, *e = &e_;
    struct rl_buckets *b = NULL;
    char key[32];
    CHECK_OK(rl_buckets_create(60, 2, 64, &b, e), e);
    CHECK(rl_take(b, "hot", 0.0, NULL));
    CHECK(rl_take(b, "hot", 0.0, NULL));
    for (int i = 0; i < 100000; i++) {
        snprintf(key, sizeof(key), "10.0.%d.%d", i / 256, i % 256);
        rl_take(b, key, 0.001 * i, NULL);
    }
    CHECK(rl_buckets_count(b) <= 64);
    rl_buckets_destroy(b);
}

TEST(ratelimit_slots)
{
    struct sd_error e_ = {0}, *e = &e_;
    struct rl_slots *s = NULL;
    CHECK_OK(rl_slots_create(&s, e), e);
    CHECK(rl_slot_acquire(s, "a", 2));
    CHECK(rl_slot_acquire(s, "a", 2));
    CHECK(!rl_slot_acquire(s, "a", 2));
    CHECK(rl_slot_acquire(s, "b", 2));
    CHECK_EQ_INT(rl_slots_held(s, "a"), 2);
    rl_slot_release(s, "a");
    CHECK(rl_slot_acquire(s, "a", 2));
    rl_slot_release(s, "a");
    rl_slot_release(s, "a");
    rl_slot_release(s, "b");
    CHECK_EQ_INT(rl_slots_held(s, "a"), 0);
    rl_slot_release(s, "never"); /* harmless */
    for (int i = 0; i < 100; i++) { /* many keys: the list grows */
        char k[16];
        snprintf(k, sizeof(k), "k%d", i);
        CHECK(rl_slot_acquire(s, k, 0));
    }
    CHECK_EQ_INT(rl_slots_held(s, "k99"), 1);
    rl_slots_destroy(s);
}

/* True once the peer of fd was shut down (EOF) within ms. */
static bool peer_closed(int fd, int ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, ms) <= 0)
        return false;
    char c;
    return recv(fd, &c, 1, MSG_DONTWAIT) == 0;
}

TEST(ratelimit_guard_cuts_slow_headers_only)
{
    struct sd_error e_ = {0}, *e = &e_;
    struct conn_guard *g = NULL;
    int slow[2], busy[2], up[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, slow) == 0);
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, busy) == 0);
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, up) == 0);
    struct conn_guard_opts o = {.header_timeout_s = 0.3, .body_timeout_s = 5, .tick_s = 0.05};
    CHECK_OK(conn_guard_start(&o, &g, e), e);
    struct guard_conn *cs = conn_guard_open(g, slow[0]);
    struct guard_conn *cb = conn_guard_open(g, busy[0]);
    struct guard_conn *cu = conn_guard_open(g, up[0]);
    conn_guard_headers_done(g, cb);
    conn_guard_handler(g, cb);     /* a long handler is not slow */
    conn_guard_upgraded(g, cu);
    conn_guard_request_done(g, cu); /* an upgraded connection stays untimed */
    CHECK(peer_closed(slow[1], 2000));
    CHECK(!peer_closed(busy[1], 300));
    CHECK(!peer_closed(up[1], 10));
    uint64_t nh = 0, nb = 0;
    conn_guard_counts(g, &nh, &nb);
    CHECK_EQ_INT(nh, 1);
    CHECK_EQ_INT(nb, 0);
    /* after its answer, the busy connection waits for headers again: idle keep-alive ends */
    conn_guard_request_done(g, cb);
    CHECK(peer_closed(busy[1], 2000));
    conn_guard_close(g, cs);
    conn_guard_close(g, cb);
    conn_guard_close(g, cu);
    conn_guard_stop(g);
    for (int i = 0; i < 2; i++) {
        close(slow[i]);
        close(busy[i]);
        close(up[i]);
    }
}

TEST(ratelimit_guard_body_min_rate)
{
    struct sd_error e_ = {0}, *e = &e_;
    struct conn_guard *g = NULL;
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    struct conn_guard_opts o = {.header_timeout_s = 10, .body_timeout_s = 0.2,
                                .body_min_rate = 1000, .tick_s = 0.05};
    CHECK_OK(conn_guard_start(&o, &g, e), e);
    struct guard_conn *c = conn_guard_open(g, sv[0]);
    conn_guard_headers_done(g, c);
    CHECK(conn_guard_body(g, c, 1000)); /* 1000 bytes buy one more second */
    struct timespec ts = {0, 400 * 1000 * 1000};
    nanosleep(&ts, NULL);
    CHECK(conn_guard_body(g, c, 1));    /* 0.4 s < 0.2 + 1.0 */
    ts.tv_sec = 1;
    ts.tv_nsec = 0;
    nanosleep(&ts, NULL);
    CHECK(!conn_guard_body(g, c, 1));   /* 1.4 s > 0.2 + 1.002 */
    conn_guard_close(g, c);
    CHECK(conn_guard_body(g, NULL, 1)); /* unguarded connection */
    conn_guard_stop(g);
    close(sv[0]);
    close(sv[1]);
}
